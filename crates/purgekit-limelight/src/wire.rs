//! The purge request body: compact JSON with only the documented keys, in a fixed order, so its
//! size is known before it is built.
//!
//! `{"patterns":[P,…],"tags":[T,…],"email":{"to":…},"callback":{"url":…},"notes":…,"dry-run":true}`
//! — an array appears only when it has entries (an empty array is refused with code 1005), the
//! option members only when set.

use std::borrow::Cow;

use purgekit_core::{Action, Error, Item, Options, Result, TargetKind};

/// Longest `pattern`, in characters.
pub const MAX_PATTERN_CHARS: usize = 4096;
/// Longest `tag`, in characters.
pub const MAX_TAG_CHARS: usize = 256;
/// Longest `email.to` (comma-joined recipients), in characters.
pub const MAX_EMAIL_TO_CHARS: usize = 256;
/// Longest `callback.url`, in characters.
pub const MAX_CALLBACK_CHARS: usize = 512;
/// Longest `notes`, in characters.
pub const MAX_NOTES_CHARS: usize = 512;

/// Bytes of the envelope around the two arrays, counted as if both were present:
/// `{` `"patterns":[` `]` `,` `"tags":[` `]` `}` (25) minus the comma each array's last item
/// does not write (items are counted with their comma). Exact for a batch holding patterns and
/// tags; a batch of one kind is 9 (patterns only) or 13 (tags only) bytes smaller than counted,
/// so the planner's count is an upper bound that is never exceeded.
pub(crate) const ENVELOPE_BYTES: usize = 23;

/// Where body text goes: the body being built, or a count of its bytes ([`Len`]). Every piece
/// of the body is written through one of these, so the planner's byte count and the bytes sent
/// come from the same code.
trait Sink {
    /// Appends `text` as it is.
    fn raw(&mut self, text: &str);

    /// Appends `s` as a JSON string literal, escaped exactly as `serde_json` escapes it.
    fn json_string(&mut self, s: &str) {
        self.raw("\"");
        self.raw(&escaped(s));
        self.raw("\"");
    }
}

impl Sink for String {
    fn raw(&mut self, text: &str) {
        self.push_str(text);
    }
}

/// A [`Sink`] that only counts bytes.
struct Len(usize);

impl Sink for Len {
    fn raw(&mut self, text: &str) {
        self.0 += text.len();
    }
}

/// The inside of `s`'s JSON string literal (no quotes). Only `"`, `\` and control characters
/// below U+0020 are escaped in JSON, so a string without them is its own escape and is borrowed
/// (every URL and tag in practice); any other string is escaped by `serde_json` itself.
fn escaped(s: &str) -> Cow<'_, str> {
    // A fold rather than `any`: without the early exit the scan vectorises, and almost every
    // string is scanned to its end anyway.
    let needs_escape = s.bytes().fold(false, |found, b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !needs_escape {
        return Cow::Borrowed(s);
    }
    let quoted = serde_json::to_string(s).expect("a str always serializes");
    Cow::Owned(quoted[1..quoted.len() - 1].to_owned())
}

/// `true` or `false`.
fn json_bool(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// The pattern as sent: spaces percent-encoded (core already refuses raw white space in URLs;
/// this keeps the wire form safe whatever the caller built).
pub(crate) fn wire_pattern(pattern: &str) -> String {
    if pattern.contains(' ') {
        pattern.replace(' ', "%20")
    } else {
        pattern.to_owned()
    }
}

/// Writes the entry an item of `kind` with wire value `value` is sent as: a `patterns[]` entry
/// (all four members mandatory) or a `tags[]` entry.
fn write_entry(out: &mut impl Sink, kind: TargetKind, value: &str, options: &Options) {
    let evict = json_bool(options.action == Action::Delete);
    match kind {
        // The provider maps prefixes and hosts to patterns: every non-tag item is a pattern.
        TargetKind::Url
        | TargetKind::Pattern
        | TargetKind::Prefix
        | TargetKind::Host
        | TargetKind::Everything => {
            out.raw(r#"{"pattern":"#);
            out.json_string(value);
            out.raw(r#","evict":"#);
            out.raw(evict);
            out.raw(r#","exact":"#);
            out.raw(json_bool(kind == TargetKind::Url));
            out.raw(r#","incqs":"#);
            out.raw(json_bool(options.include_query));
            out.raw("}");
        }
        TargetKind::Tag => {
            out.raw(r#"{"tag":"#);
            out.json_string(value);
            out.raw(r#","evict":"#);
            out.raw(evict);
            out.raw("}");
        }
    }
}

/// Writes the option members, each with its leading comma (they always follow an array).
fn write_option_members(out: &mut impl Sink, options: &Options) {
    if !options.notify.is_empty() {
        out.raw(r#","email":{"to":"#);
        out.json_string(&options.notify.join(","));
        out.raw("}");
    }
    if let Some(url) = &options.callback {
        out.raw(r#","callback":{"url":"#);
        out.json_string(url);
        out.raw("}");
    }
    if let Some(note) = &options.note {
        out.raw(r#","notes":"#);
        out.json_string(note);
    }
    if options.dry_run {
        out.raw(r#","dry-run":true"#);
    }
}

/// The body for `items` under `options`: `patterns[]` (URLs and patterns, in order), then
/// `tags[]`, then the option members, written straight into one buffer sized from the items'
/// counted bytes.
pub(crate) fn encode(items: &[Item], options: &Options) -> String {
    // The counted bytes are an upper bound of the body (see `ENVELOPE_BYTES`); `Item::bytes` is
    // public, so the hint is capped rather than trusted.
    let counted = items.iter().fold(overhead(options), |sum, item| {
        sum.saturating_add(item.bytes)
    });
    let mut out = String::with_capacity(counted.min(1 << 20));
    out.push('{');
    let mut arrays = 0;
    for (name, tags) in [(r#""patterns":["#, false), (r#""tags":["#, true)] {
        let mut entries = items.iter().filter(|i| (i.kind == TargetKind::Tag) == tags);
        let Some(first) = entries.next() else {
            continue;
        };
        if arrays > 0 {
            out.push(',');
        }
        arrays += 1;
        out.push_str(name);
        write_entry(&mut out, first.kind, &first.value, options);
        for item in entries {
            out.push(',');
            write_entry(&mut out, item.kind, &item.value, options);
        }
        out.push(']');
    }
    write_option_members(&mut out, options);
    out.push('}');
    out
}

/// The bytes of a body with no items under `options` (see [`ENVELOPE_BYTES`]).
pub(crate) fn overhead(options: &Options) -> usize {
    let mut len = Len(ENVELOPE_BYTES);
    write_option_members(&mut len, options);
    len.0
}

/// Bytes an item of `kind` with wire value `value` adds to the body: its entry and the comma
/// after it. Counted, not built.
pub(crate) fn item_bytes(kind: TargetKind, value: &str, options: &Options) -> usize {
    let mut len = Len(1);
    write_entry(&mut len, kind, value, options);
    len.0
}

/// SmartPurge's own limits on the options, checked before anything is sent.
pub(crate) fn check_options(options: &Options) -> Result<()> {
    if !options.notify.is_empty() {
        let to = options.notify.join(",");
        let chars = to.chars().count();
        if chars > MAX_EMAIL_TO_CHARS {
            return Err(Error::invalid(
                &to,
                format!(
                    "Limelight sends the notification list as `email.to`, at most \
                     {MAX_EMAIL_TO_CHARS} characters; these {} addresses join to {chars}",
                    options.notify.len()
                ),
            ));
        }
    }
    if let Some(callback) = &options.callback {
        check_callback(callback)?;
    }
    if let Some(note) = &options.note {
        let chars = note.chars().count();
        if chars > MAX_NOTES_CHARS {
            return Err(Error::invalid(
                note.chars().take(60).collect::<String>() + "…",
                format!(
                    "Limelight's `notes` holds at most {MAX_NOTES_CHARS} characters (this note has {chars})"
                ),
            ));
        }
    }
    Ok(())
}

fn check_callback(callback: &str) -> Result<()> {
    let chars = callback.chars().count();
    if chars > MAX_CALLBACK_CHARS {
        return Err(Error::invalid(
            callback,
            format!(
                "Limelight's `callback.url` holds at most {MAX_CALLBACK_CHARS} characters (this one has {chars})"
            ),
        ));
    }
    let url = url::Url::parse(callback)
        .map_err(|e| Error::invalid(callback, format!("not a callback URL ({e})")))?;
    let rule = if !url.username().is_empty() || url.password().is_some() {
        Some("user info (`user:password@`)")
    } else if url.query().is_some() {
        Some(
            "a query string (SmartPurge appends its own `purge_request_id` and `purge_request_state`)",
        )
    } else if url.fragment().is_some() {
        Some("a #fragment")
    } else {
        None
    };
    match rule {
        Some(what) => Err(Error::invalid(
            callback,
            format!("a Limelight callback URL must not have {what}"),
        )),
        None => Ok(()),
    }
}

/// Checks a mapped pattern or tag against SmartPurge's length limits.
pub(crate) fn check_value(kind: TargetKind, shown: &str, value: &str) -> Result<()> {
    let (max, what) = match kind {
        TargetKind::Tag => (MAX_TAG_CHARS, "a Limelight tag"),
        _ => (MAX_PATTERN_CHARS, "a Limelight pattern or URL"),
    };
    if kind == TargetKind::Tag && !value.bytes().all(|b| (33..=126).contains(&b) && b != b',') {
        return Err(Error::invalid(
            shown,
            "a Limelight tag is printable ASCII without white space or commas (Cache-Tag format)",
        ));
    }
    // A string's characters never outnumber its bytes: count them only when they might exceed.
    let chars = if value.len() > max {
        value.chars().count()
    } else {
        0
    };
    if chars > max {
        let head: String = shown.chars().take(60).collect();
        return Err(Error::invalid(
            format!("{head}…"),
            format!("{what} is at most {max} characters (this one has {chars})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: TargetKind, value: &str, options: &Options) -> Item {
        Item {
            kind,
            value: value.into(),
            scope: String::new(),
            wildcard: kind == TargetKind::Pattern,
            bytes: item_bytes(kind, value, options),
        }
    }

    fn counted(items: &[Item], options: &Options) -> usize {
        overhead(options) + items.iter().map(|i| i.bytes).sum::<usize>()
    }

    #[test]
    fn envelope_constant_is_the_two_array_envelope_less_two_commas() {
        assert_eq!(ENVELOPE_BYTES, r#"{"patterns":[],"tags":[]}"#.len() - 2);
    }

    #[test]
    fn counted_bytes_are_exact_for_mixed_batches_and_an_upper_bound_otherwise() {
        let mut options = Options {
            notify: vec!["a@example.com".into(), "b@example.com".into()],
            callback: Some("https://cb.example.com/done".into()),
            note: Some("deploy \"42\"\nrollout".into()),
            dry_run: true,
            ..Options::default()
        };
        for delete in [false, true] {
            options.action = if delete {
                Action::Delete
            } else {
                Action::Invalidate
            };
            let p = item(TargetKind::Pattern, "http://o.example.com/img/*", &options);
            let u = item(TargetKind::Url, "https://cdn.example.com/a b.jpg", &options);
            let t = item(TargetKind::Tag, "product-42", &options);
            let mixed = [p.clone(), t.clone(), u.clone()];
            assert_eq!(encode(&mixed, &options).len(), counted(&mixed, &options));
            let patterns = [p, u];
            assert_eq!(
                encode(&patterns, &options).len() + 9,
                counted(&patterns, &options)
            );
            let tags = [t];
            assert_eq!(encode(&tags, &options).len() + 13, counted(&tags, &options));
        }
        // With no options: the body is exactly the documented shape.
        let options = Options::default();
        let p = item(
            TargetKind::Pattern,
            "http://*.example.com/images/*",
            &options,
        );
        assert_eq!(
            encode(std::slice::from_ref(&p), &options),
            r#"{"patterns":[{"pattern":"http://*.example.com/images/*","evict":false,"exact":false,"incqs":false}]}"#
        );
    }

    #[test]
    fn callbacks_with_userinfo_query_or_fragment_are_refused() {
        for (bad, why) in [
            ("https://u:p@cb.example.com/x", "user info"),
            ("https://cb.example.com/x?a=1", "query string"),
            ("https://cb.example.com/x#f", "fragment"),
        ] {
            let err = check_callback(bad).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains(why), "{err}");
        }
        let long = format!("https://cb.example.com/{}", "c".repeat(MAX_CALLBACK_CHARS));
        assert!(
            check_callback(&long)
                .unwrap_err()
                .to_string()
                .contains("at most 512")
        );
        assert!(check_callback("https://cb.example.com/done").is_ok());
    }

    #[test]
    fn option_lengths_are_checked() {
        let notify = (0..20).map(|i| format!("ops{i}@example.com")).collect();
        let err = check_options(&Options {
            notify,
            ..Options::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("email.to"), "{err}");
        let err = check_options(&Options {
            note: Some("é".repeat(513)),
            ..Options::default()
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("at most 512 characters (this note has 513)"),
            "{err}"
        );
        assert!(
            check_options(&Options {
                note: Some("é".repeat(512)),
                ..Options::default()
            })
            .is_ok(),
            "512 characters is the limit, not 512 bytes"
        );
    }

    #[test]
    fn tags_follow_the_cache_tag_format() {
        assert!(
            check_value(TargetKind::Tag, "a,b", "a,b")
                .unwrap_err()
                .to_string()
                .contains("commas")
        );
        assert!(check_value(TargetKind::Tag, "café", "café").is_err());
        assert!(check_value(TargetKind::Tag, "tag456/*", "tag456/*").is_ok());
    }

    #[test]
    fn json_strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let controls: String = (0u8..0x20).map(char::from).collect();
        for s in [
            "",
            "https://cdn.example.com/assets/v2/0000042.jpg",
            "quote \" and backslash \\ and \\\"",
            "\\",
            "\"",
            "line\nfeed\rreturn\ttab\u{8}backspace\u{c}formfeed",
            &controls,
            "\u{7f} delete and \u{1f} unit separator",
            "</script><!-- é ü 日本 🦀 \u{2028}\u{2029} -->",
            "tail\\",
            "mixé\"\u{0}🦀",
        ] {
            let expected = serde_json::to_string(s).unwrap();
            let mut written = String::from("[");
            written.json_string(s);
            assert_eq!(&written[1..], expected, "{s:?}");
            let mut len = Len(0);
            len.json_string(s);
            assert_eq!(len.0, expected.len(), "{s:?}");
            assert_eq!(
                matches!(escaped(s), Cow::Borrowed(_)),
                expected.len() == s.len() + 2,
                "borrowed exactly when nothing needs escaping: {s:?}"
            );
        }
    }

    #[test]
    fn pattern_length_is_counted_in_characters_not_bytes() {
        let at_limit = "é".repeat(MAX_PATTERN_CHARS);
        assert!(check_value(TargetKind::Pattern, &at_limit, &at_limit).is_ok());
        let over = format!("{at_limit}a");
        let err = check_value(TargetKind::Pattern, &over, &over).unwrap_err();
        assert!(
            err.to_string()
                .contains("at most 4096 characters (this one has 4097)"),
            "{err}"
        );
    }

    #[test]
    fn spaces_are_percent_encoded() {
        assert_eq!(
            wire_pattern("http://o.example/a b/*"),
            "http://o.example/a%20b/*"
        );
    }
}
