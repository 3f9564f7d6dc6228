//! The request bodies it reads (every documented form) and the envelopes it writes.
//!
//! Codes from Cloudflare's documents and clients: 1012 (none of the five fields), 1014 (a
//! field that is not an array), 10000 (authentication), 971 (throttled). Cloudflare documents
//! messages but no code for an invalid value or too many values in one request; the emulator
//! answers those with [`INVALID`] and [`TOO_MANY`], its own choice.

use serde_json::{Map, Value, json};

use super::auth::Refusal;

/// The emulator's code for an invalid value (a relative URL, a prefix with a scheme…).
pub const INVALID: i64 = 1015;
/// The emulator's code for more values in one request than the zone allows.
pub const TOO_MANY: i64 = 1016;

/// The five fields, in Cloudflare's order.
pub const FIELDS: [&str; 5] = ["files", "tags", "hosts", "prefixes", "purge_everything"];

/// One value read from a body: the value and, for a file in the object form, its headers.
pub(super) type Value1 = (String, Vec<(String, String)>);

/// Per-request caps: (files, other values).
pub(super) struct Caps {
    pub files: usize,
    pub items: usize,
    pub tag_chars: usize,
    pub prefix_slashes: usize,
}

fn bad(code: i64, message: impl Into<String>) -> Refusal {
    (400, code, message.into())
}

/// Reads a purge body: exactly one of the five fields, its values checked.
pub(super) fn read(body: &[u8], caps: &Caps) -> Result<(&'static str, Vec<Value1>), Refusal> {
    let none = || {
        bad(
            1012,
            "Request must contain one of \"purge_everything\", \"files\", \"tags\", \"hosts\" or \"prefixes\"",
        )
    };
    let object: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(o)) => o,
        _ => return Err(none()),
    };
    let present: Vec<&'static str> = FIELDS
        .into_iter()
        .filter(|f| object.contains_key(*f))
        .collect();
    if let Some(other) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(bad(
            1012,
            format!("Unknown field \"{}\"", other.escape_default()),
        ));
    }
    let [field] = present.as_slice() else {
        return Err(if present.is_empty() {
            none()
        } else {
            bad(1012, "Request must contain exactly one of the purge fields")
        });
    };
    let value = &object[*field];
    if *field == "purge_everything" {
        return if value == &Value::Bool(true) {
            Ok(("purge_everything", vec![(String::new(), Vec::new())]))
        } else {
            Err(bad(1012, "\"purge_everything\" must be true"))
        };
    }
    let Value::Array(values) = value else {
        return Err(bad(
            1014,
            "\"files\", \"tags\", \"hosts\" or \"prefixes\" must be an array",
        ));
    };
    if values.is_empty() {
        return Err(bad(1012, format!("\"{field}\" must not be empty")));
    }
    let cap = if *field == "files" {
        caps.files
    } else {
        caps.items
    };
    if values.len() > cap {
        return Err(bad(
            TOO_MANY,
            format!(
                "{} {field} in one request; at most {cap} are allowed",
                values.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        out.push(match *field {
            "files" => file(v)?,
            "tags" => (tag(v, caps.tag_chars)?, Vec::new()),
            "hosts" => (host(v)?, Vec::new()),
            _ => (prefix(v, caps.prefix_slashes)?, Vec::new()),
        });
    }
    Ok((field, out))
}

fn text(v: &Value, what: &str) -> Result<String, Refusal> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad(INVALID, format!("each of \"{what}\" must be a string")))
}

/// An absolute http(s) URL with a host.
fn absolute(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
        && !host.is_empty()
        && !url.contains(['*', ' '])
}

/// A file: a URL string, or `{"url": …, "headers": {…}}` (headers optional, not null, values
/// strings).
fn file(v: &Value) -> Result<Value1, Refusal> {
    let (url, headers) = match v {
        Value::String(s) => (s.clone(), Vec::new()),
        Value::Object(o) => {
            let url = o
                .get("url")
                .map_or(Ok(String::new()), |u| text(u, "files[].url"))?;
            let headers = match o.get("headers") {
                None => Vec::new(),
                Some(Value::Object(h)) => h
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), text(v, "files[].headers")?)))
                    .collect::<Result<_, Refusal>>()?,
                Some(_) => return Err(bad(INVALID, "\"headers\" must be an object, not null")),
            };
            if let Some(other) = o.keys().find(|k| !matches!(k.as_str(), "url" | "headers")) {
                return Err(bad(
                    INVALID,
                    format!("Unknown file field \"{}\"", other.escape_default()),
                ));
            }
            (url, headers)
        }
        _ => return Err(bad(INVALID, "each file is a URL or {\"url\",\"headers\"}")),
    };
    if !absolute(&url) {
        let shown: String = url.chars().take(100).collect();
        return Err(bad(
            INVALID,
            format!(
                "Unable to purge {}, which is an invalid URL.",
                shown.escape_default()
            ),
        ));
    }
    Ok((url, headers))
}

fn tag(v: &Value, max: usize) -> Result<String, Refusal> {
    let t = text(v, "tags")?;
    if t.is_empty() || t.chars().count() > max || !t.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(bad(
            INVALID,
            format!("a tag is 1 to {max} characters of printable ASCII without spaces"),
        ));
    }
    Ok(t)
}

fn host(v: &Value) -> Result<String, Refusal> {
    let h = text(v, "hosts")?;
    if h.is_empty() || h.contains(['/', ':', '*', ' ', '?', '#']) {
        return Err(bad(
            INVALID,
            format!("\"{}\" is not a host name", h.escape_default()),
        ));
    }
    Ok(h)
}

fn prefix(v: &Value, max_slashes: usize) -> Result<String, Refusal> {
    let p = text(v, "prefixes")?;
    let shown = p.escape_default();
    if p.contains("://") {
        return Err(bad(
            INVALID,
            format!("prefix \"{shown}\" must not have a scheme"),
        ));
    }
    if p.contains(['?', '#', '*']) {
        return Err(bad(
            INVALID,
            format!("prefix \"{shown}\" must not have a query string, fragment or wildcard"),
        ));
    }
    if p.is_empty() || !p.contains('/') || p.starts_with('/') {
        return Err(bad(
            INVALID,
            format!("prefix \"{shown}\" must be a host and a path"),
        ));
    }
    if p.bytes().filter(|b| *b == b'/').count() > max_slashes {
        return Err(bad(
            INVALID,
            format!("prefix \"{shown}\" has more than {max_slashes} path separators"),
        ));
    }
    Ok(p)
}

/// The success envelope.
pub(super) fn success(id: &str) -> Value {
    json!({"success": true, "errors": [], "messages": [], "result": {"id": id}})
}

/// `GET /user/tokens/verify`'s envelope for a valid token.
pub(super) fn token_active() -> Value {
    json!({
        "success": true,
        "errors": [],
        "messages": [{"code": 10000, "message": "This API Token is valid and active", "type": null}],
        "result": {"id": "ed17574386854bf78a67040be0a770b0", "status": "active"}
    })
}

/// The error envelope.
pub(super) fn failure(code: i64, message: &str) -> Value {
    json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null})
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        files: 2,
        items: 2,
        tag_chars: 1024,
        prefix_slashes: 31,
    };

    #[test]
    fn every_documented_form_is_read() {
        let (f, v) = read(
            br#"{"files":["https://a.example/x","http://b.example/y?q=1"]}"#,
            &CAPS,
        )
        .unwrap();
        assert_eq!((f, v.len()), ("files", 2));
        let (_, v) = read(
            br#"{"files":[{"url":"https://a.example/app.js","headers":{"CF-Device-Type":"mobile"}},{"url":"https://a.example/b"}]}"#,
            &CAPS,
        )
        .unwrap();
        assert_eq!(v[0].1, [("CF-Device-Type".to_owned(), "mobile".to_owned())]);
        assert_eq!(read(br#"{"tags":["a","b"]}"#, &CAPS).unwrap().0, "tags");
        assert_eq!(
            read(br#"{"hosts":["a.example"]}"#, &CAPS).unwrap().0,
            "hosts"
        );
        assert_eq!(
            read(br#"{"prefixes":["a.example/foo/"]}"#, &CAPS)
                .unwrap()
                .0,
            "prefixes"
        );
        assert_eq!(
            read(br#"{"purge_everything":true}"#, &CAPS).unwrap().0,
            "purge_everything"
        );
    }

    #[test]
    fn refusals_carry_the_documented_codes() {
        assert_eq!(read(b"{}", &CAPS).unwrap_err().1, 1012);
        assert_eq!(
            read(br#"{"tags":["a"],"hosts":["b"]}"#, &CAPS)
                .unwrap_err()
                .1,
            1012
        );
        assert_eq!(
            read(br#"{"files":"https://a.example/x"}"#, &CAPS)
                .unwrap_err()
                .1,
            1014
        );
        assert_eq!(
            read(br#"{"files":["/a.jpg"]}"#, &CAPS).unwrap_err().2,
            "Unable to purge /a.jpg, which is an invalid URL."
        );
        assert_eq!(
            read(
                br#"{"files":[{"url":"https://a.example/","headers":null}]}"#,
                &CAPS
            )
            .unwrap_err()
            .1,
            INVALID
        );
        assert_eq!(
            read(br#"{"tags":["a","b","c"]}"#, &CAPS).unwrap_err().1,
            TOO_MANY
        );
        assert_eq!(
            read(br#"{"prefixes":["https://a.example/x/"]}"#, &CAPS)
                .unwrap_err()
                .1,
            INVALID
        );
        assert!(
            read(br#"{"prefixes":["a.example/x/?q=1"]}"#, &CAPS)
                .unwrap_err()
                .2
                .contains("query string")
        );
    }
}
