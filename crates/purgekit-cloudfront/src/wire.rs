//! The wire form: targets → invalidation paths, and the `InvalidationBatch` XML body.
//!
//! One function ([`path_element_bytes`]) gives the bytes each path adds to a body, and
//! [`encode`] writes exactly those bytes, so the planner's byte count and the body sent agree.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use purgekit_core::{BatchId, Error, Result, Target, TargetKind};

/// The XML namespace of the 2020-05-31 API.
pub const NAMESPACE: &str = "http://cloudfront.amazonaws.com/doc/2020-05-31/";
/// Most characters in one invalidation path.
pub const MAX_PATH_CHARS: usize = 4000;

/// RFC 1738's "unsafe" characters besides controls and non-ASCII, which CloudFront asks to be
/// URL-encoded (`%` only where it does not already start an escape; `~`, unreserved since RFC
/// 3986, is left as browsers send it).
const UNSAFE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']')
    .add(b'`');

/// What a target becomes: a path, or why it cannot be invalidated.
pub(crate) enum Path {
    /// An invalidation path; `wildcard` when it ends in `*`.
    Path { value: String, wildcard: bool },
    /// Not something CloudFront can invalidate on this distribution.
    Unsupported(String),
}

/// The invalidation path of `target` on a distribution serving `hosts` (lower-case).
pub(crate) fn path(target: &Target, hosts: &[String]) -> Result<Path> {
    let kind = target.kind();
    match kind {
        TargetKind::Tag => {
            return Ok(Path::Unsupported(
                "CloudFront invalidates cache tags only on distributions with a cache tag \
                 configuration, which purgekit does not support yet: purge the tagged URLs"
                    .into(),
            ));
        }
        TargetKind::Everything => return Ok(wildcard("/*".into())),
        _ => {}
    }
    let host = target.host().unwrap_or_default().to_ascii_lowercase();
    if !hosts.contains(&host) {
        return Ok(Path::Unsupported(format!(
            "`{host}` is not served by this distribution (hosts: {})",
            hosts.join(", ")
        )));
    }
    if kind == TargetKind::Host {
        return Ok(wildcard("/*".into()));
    }
    // The query is part of what CloudFront matches (invalidate each variant, or use a
    // trailing `*`); core refuses fragments.
    let value = encode_path(target.path_and_query().unwrap_or("/"));
    let (value, is_wildcard) = match kind {
        TargetKind::Prefix => (format!("{value}*"), true),
        TargetKind::Pattern => {
            let stars = value.matches('*').count();
            if stars != 1 || !value.ends_with('*') {
                return Ok(Path::Unsupported(format!(
                    "CloudFront allows one `*`, only as the last character of the path \
                     (`{value}` has it elsewhere)"
                )));
            }
            (value, true)
        }
        _ => (value, false),
    };
    let chars = value.chars().count();
    if chars > MAX_PATH_CHARS {
        return Err(Error::invalid(
            target.to_string(),
            format!(
                "CloudFront invalidation paths are at most {MAX_PATH_CHARS} characters; this \
                 one is {chars}"
            ),
        ));
    }
    if !is_wildcard && value.contains('*') {
        // A URL's literal `*` would be read as a wildcard by CloudFront.
        return Ok(Path::Unsupported(format!(
            "CloudFront reads `*` as a wildcard; `{value}` is a URL, not a pattern"
        )));
    }
    Ok(Path::Path {
        value,
        wildcard: is_wildcard,
    })
}

fn wildcard(value: String) -> Path {
    Path::Path {
        value,
        wildcard: true,
    }
}

/// Percent-encodes non-ASCII, controls and RFC 1738's unsafe characters, leaving existing
/// `%XX` escapes and everything else as written.
fn encode_path(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let bytes = raw.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%' {
            let escape = bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            out.extend(utf8_percent_encode(&raw[start..i], UNSAFE));
            out.push_str(if escape { "%" } else { "%25" });
            start = i + 1;
        }
    }
    out.extend(utf8_percent_encode(&raw[start..], UNSAFE));
    out
}

/// `<Path>…</Path>` with `& < >` escaped, as botocore writes it.
fn push_path_element(out: &mut String, path: &str) {
    out.push_str("<Path>");
    for c in path.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out.push_str("</Path>");
}

/// Bytes `path` adds to a body.
pub(crate) fn path_element_bytes(path: &str) -> usize {
    let escapes: usize = path
        .bytes()
        .map(|b| match b {
            b'&' => 4,
            b'<' | b'>' => 3,
            _ => 0,
        })
        .sum();
    "<Path></Path>".len() + path.len() + escapes
}

/// The envelope's bytes for a batch of `quantity` paths.
pub(crate) fn overhead(quantity: usize) -> usize {
    envelope(quantity, "").len() + caller_reference(BatchId::default()).len() + CLOSE.len()
}

/// What follows the caller reference.
const CLOSE: &str = "</CallerReference></InvalidationBatch>";

/// The body of batch `id`, botocore's element order, no XML declaration.
pub(crate) fn encode<'a>(
    id: BatchId,
    paths: impl Iterator<Item = &'a str>,
    quantity: usize,
) -> String {
    let reference = caller_reference(id);
    let mut items = String::new();
    for p in paths {
        push_path_element(&mut items, p);
    }
    let mut out = envelope(quantity, &items);
    out.push_str(&reference);
    out.push_str(CLOSE);
    out
}

fn envelope(quantity: usize, items: &str) -> String {
    format!(
        "<InvalidationBatch xmlns=\"{NAMESPACE}\"><Paths><Quantity>{quantity}</Quantity><Items>{items}</Items></Paths><CallerReference>"
    )
}

/// `purgekit-`, the run (32 hex digits), `-`, the batch index (8 hex digits): the batch's
/// [`BatchId`], one length for every batch (the planner counts the body's bytes exactly).
///
/// Every attempt of one batch carries the same reference, so a retry after a lost answer gets
/// the invalidation CloudFront already made; a later run purging the same paths has another
/// run id, so CloudFront makes a new invalidation.
pub(crate) fn caller_reference(id: BatchId) -> String {
    format!("purgekit-{}-{:08x}", id.run, id.index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use purgekit_core::RunId;

    fn hosts() -> Vec<String> {
        vec!["www.example.com".into(), "d111abc.cloudfront.net".into()]
    }

    fn mapped(target: Target) -> Result<(String, bool)> {
        match path(&target, &hosts())? {
            Path::Path { value, wildcard } => Ok((value, wildcard)),
            Path::Unsupported(why) => Ok((format!("unsupported: {why}"), false)),
        }
    }

    #[test]
    fn every_target_kind() {
        let cases = [
            (
                Target::url("https://www.example.com/index.html"),
                "/index.html",
                false,
            ),
            (
                Target::url("https://WWW.example.com:8443/a.jpg?x=1&y=2"),
                "/a.jpg?x=1&y=2",
                false,
            ),
            (Target::url("https://d111abc.cloudfront.net"), "/", false),
            (
                Target::url("https://www.example.com/caf\u{e9}/a%20b|c^{x}"),
                "/caf%C3%A9/a%20b%7Cc%5E%7Bx%7D",
                false,
            ),
            (
                Target::url("https://www.example.com/100%/x"),
                "/100%25/x",
                false,
            ),
            (
                Target::pattern("https://www.example.com/images/*"),
                "/images/*",
                true,
            ),
            (
                Target::pattern("https://www.example.com/a.jpg*"),
                "/a.jpg*",
                true,
            ),
            (
                Target::prefix("https://www.example.com/img/"),
                "/img/*",
                true,
            ),
            (Target::parse("host:www.example.com"), "/*", true),
            (Ok(Target::everything()), "/*", true),
        ];
        for (target, want, wild) in cases {
            let target = target.unwrap();
            assert_eq!(
                mapped(target.clone()).unwrap(),
                (want.to_owned(), wild),
                "{target}"
            );
        }
    }

    #[test]
    fn unsupported_targets_say_why() {
        let (other, _) = mapped(Target::url("https://other.example/a").unwrap()).unwrap();
        assert!(
            other.contains("`other.example`")
                && other.contains("www.example.com, d111abc.cloudfront.net"),
            "{other}"
        );
        let (mid, _) = mapped(Target::pattern("https://www.example.com/*/a.jpg").unwrap()).unwrap();
        assert!(
            mid.starts_with("unsupported: CloudFront allows one `*`"),
            "{mid}"
        );
        let (tag, _) = mapped(Target::tag("product-1").unwrap()).unwrap();
        assert!(tag.starts_with("unsupported:"), "{tag}");
        let (host, _) = mapped(Target::parse("host:other.example").unwrap()).unwrap();
        assert!(host.starts_with("unsupported:"), "{host}");
    }

    #[test]
    fn paths_over_4000_characters_are_refused() {
        let long = format!("https://www.example.com/{}", "a".repeat(4000));
        let error = mapped(Target::url(long).unwrap()).unwrap_err().to_string();
        assert!(
            error.contains("at most 4000 characters") && error.contains("4001"),
            "{error}"
        );
        let fits = format!("https://www.example.com/{}", "a".repeat(3999));
        assert!(mapped(Target::url(fits).unwrap()).is_ok());
    }

    #[test]
    fn byte_counts_match_the_body() {
        let paths = ["/a&b", "/<x>", "/plain"];
        let id = BatchId {
            run: RunId(u128::MAX),
            index: 0xffff_ffff,
        };
        let body = encode(id, paths.iter().copied(), 3);
        let counted: usize =
            paths.iter().map(|p| path_element_bytes(p)).sum::<usize>() + overhead(3);
        assert_eq!(body.len(), counted);
        assert!(body.contains("<Path>/a&amp;b</Path><Path>/&lt;x&gt;</Path>"));
    }

    #[test]
    fn the_caller_reference_is_the_batch_id_at_one_length() {
        let run = RunId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let a = caller_reference(BatchId { run, index: 7 });
        assert_eq!(a, "purgekit-0123456789abcdef0011223344556677-00000007");
        assert_ne!(a, caller_reference(BatchId { run, index: 8 }));
        let other_run = RunId(run.0 + 1);
        assert_ne!(
            a,
            caller_reference(BatchId {
                run: other_run,
                index: 7
            })
        );
        assert_eq!(a.len(), caller_reference(BatchId::default()).len());
    }
}
