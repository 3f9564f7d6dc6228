//! The Fast Purge wire form: request paths and the one body shape, `{"objects":[…]}`, compact
//! JSON with strings for URLs and tags and integers for CP codes.
//!
//! Every object is written through one function, [`write_object`], into either the body or a
//! byte counter, so the planner's byte count and the bytes sent come from the same code.

use std::fmt;
use std::io::{self, Write};

use purgekit_core::{Action, Item};
use serde::Deserialize;

/// Most body bytes Fast Purge accepts (413 above).
pub const MAX_BODY_BYTES: usize = 50_000;

/// `{"objects":[` + `]}` less the comma the last object does not write (objects are counted
/// with their comma): exact for every non-empty body.
pub(crate) const ENVELOPE_BYTES: usize = r#"{"objects":[]}"#.len() - 1;

/// What a request purges: the path segment after the action. One type per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    /// URLs or ARLs (`/url/`), sent as JSON strings.
    Url,
    /// Cache tags (`/tag/`), sent as JSON strings.
    Tag,
    /// CP codes (`/cpcode/`), sent as JSON integers.
    Cpcode,
}

impl ObjectType {
    /// Every type, in path order.
    pub const ALL: [ObjectType; 3] = [ObjectType::Url, ObjectType::Tag, ObjectType::Cpcode];

    /// The path segment, which is also the item's scope (so one request holds one type).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Url => "url",
            ObjectType::Tag => "tag",
            ObjectType::Cpcode => "cpcode",
        }
    }

    /// The type of a path segment / item scope.
    pub fn from_scope(scope: &str) -> Option<Self> {
        ObjectType::ALL.into_iter().find(|t| t.as_str() == scope)
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which Akamai network a purge applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// The production network (the default).
    #[default]
    Production,
    /// The staging network.
    Staging,
}

impl Network {
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Production => "production",
            Network::Staging => "staging",
        }
    }
}

/// The request path: `/ccu/v3/{invalidate|delete}/{url|tag|cpcode}/{network}` (the network is
/// always sent, though the API would default it).
///
/// ```
/// use purgekit_akamai::{Network, ObjectType, path};
/// use purgekit_core::Action;
/// assert_eq!(path(Action::Delete, ObjectType::Tag, Network::Staging), "/ccu/v3/delete/tag/staging");
/// ```
pub fn path(action: Action, object_type: ObjectType, network: Network) -> String {
    let action = match action {
        Action::Invalidate => "invalidate",
        Action::Delete => "delete",
    };
    format!("/ccu/v3/{action}/{object_type}/{}", network.as_str())
}

/// Writes one object: CP codes as their digits (the mapper only makes digit strings, several
/// joined by `,` for `everything`: one JSON integer each), anything else as a JSON string
/// escaped by `serde_json`.
fn write_object(out: &mut impl Write, object_type: ObjectType, value: &str) -> io::Result<()> {
    match object_type {
        ObjectType::Cpcode => out.write_all(value.as_bytes()),
        ObjectType::Url | ObjectType::Tag => {
            serde_json::to_writer(out, value).map_err(io::Error::from)
        }
    }
}

/// A writer that only counts.
struct Len(usize);

impl Write for Len {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Bytes one object adds to the body: itself and the comma after it.
pub(crate) fn object_bytes(object_type: ObjectType, value: &str) -> usize {
    let mut len = Len(1);
    write_object(&mut len, object_type, value).expect("counting never fails");
    len.0
}

/// The body for `items`, all of `object_type`: `{"objects":[…]}`, in item order.
pub(crate) fn encode(object_type: ObjectType, items: &[Item]) -> Vec<u8> {
    // `Item::bytes` is public, so the size hint is capped rather than trusted.
    let counted = items
        .iter()
        .fold(ENVELOPE_BYTES, |sum, i| sum.saturating_add(i.bytes));
    let mut out = Vec::with_capacity(counted.min(MAX_BODY_BYTES * 2));
    out.extend_from_slice(br#"{"objects":["#);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_object(&mut out, object_type, &item.value).expect("a Vec never fails to write");
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use purgekit_core::TargetKind;

    fn item(object_type: ObjectType, value: &str) -> Item {
        Item {
            kind: TargetKind::Url,
            value: value.into(),
            scope: object_type.as_str().into(),
            wildcard: false,
            bytes: object_bytes(object_type, value),
        }
    }

    fn counted(items: &[Item]) -> usize {
        ENVELOPE_BYTES + items.iter().map(|i| i.bytes).sum::<usize>()
    }

    #[test]
    fn counted_bytes_are_exact() {
        for (t, values) in [
            (
                ObjectType::Url,
                vec!["https://a.example/x", "https://a.example/\"q\"\\"],
            ),
            (ObjectType::Tag, vec!["product-123", "é-tag", "a"]),
            (ObjectType::Cpcode, vec!["12345", "98765", "1"]),
        ] {
            for n in 1..=values.len() {
                let items: Vec<Item> = values[..n].iter().map(|v| item(t, v)).collect();
                assert_eq!(encode(t, &items).len(), counted(&items), "{t} × {n}");
            }
        }
    }

    #[test]
    fn bodies_are_the_documented_shapes() {
        let urls = [
            item(ObjectType::Url, "https://www.example.com/index.html"),
            item(ObjectType::Url, "https://www.example.com/css/site.css"),
        ];
        assert_eq!(
            encode(ObjectType::Url, &urls),
            br#"{"objects":["https://www.example.com/index.html","https://www.example.com/css/site.css"]}"#
        );
        let codes = [item(ObjectType::Cpcode, "12345")];
        assert_eq!(
            encode(ObjectType::Cpcode, &codes),
            br#"{"objects":[12345]}"#
        );
    }

    #[test]
    fn paths() {
        assert_eq!(
            path(Action::Invalidate, ObjectType::Url, Network::Production),
            "/ccu/v3/invalidate/url/production"
        );
        assert_eq!(
            path(Action::Delete, ObjectType::Cpcode, Network::Staging),
            "/ccu/v3/delete/cpcode/staging"
        );
        for t in ObjectType::ALL {
            assert_eq!(ObjectType::from_scope(t.as_str()), Some(t));
        }
        assert_eq!(ObjectType::from_scope("arl"), None);
    }
}
