//! The purge request body: compact JSON with only the documented keys, in a fixed order, so its
//! size is known before it is built.
//!
//! `{"patterns":[P,…],"tags":[T,…],"email":{"to":…},"callback":{"url":…},"notes":…,"dry-run":true}`
//! — an array appears only when it has entries (an empty array is refused with code 1005), the
//! option members only when set.

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

/// A JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a str always serializes")
}

/// The pattern as sent: spaces percent-encoded (core already refuses raw white space in URLs;
/// this keeps the wire form safe whatever the caller built).
pub(crate) fn wire_pattern(pattern: &str) -> String {
    pattern.replace(' ', "%20")
}

/// One `patterns[]` entry. All four members are mandatory.
pub(crate) fn pattern_entry(pattern: &str, exact: bool, options: &Options) -> String {
    format!(
        r#"{{"pattern":{},"evict":{},"exact":{exact},"incqs":{}}}"#,
        json_string(pattern),
        options.action == Action::Delete,
        options.include_query,
    )
}

/// One `tags[]` entry.
pub(crate) fn tag_entry(tag: &str, options: &Options) -> String {
    format!(
        r#"{{"tag":{},"evict":{}}}"#,
        json_string(tag),
        options.action == Action::Delete
    )
}

/// The entry an item of `kind` with wire value `value` is sent as.
pub(crate) fn entry(kind: TargetKind, value: &str, options: &Options) -> String {
    match kind {
        TargetKind::Url => pattern_entry(value, true, options),
        TargetKind::Pattern => pattern_entry(value, false, options),
        TargetKind::Tag => tag_entry(value, options),
    }
}

/// The option members, each with its leading comma (they always follow an array).
pub(crate) fn option_members(options: &Options) -> String {
    let mut out = String::new();
    if !options.notify.is_empty() {
        out.push_str(&format!(
            r#","email":{{"to":{}}}"#,
            json_string(&options.notify.join(","))
        ));
    }
    if let Some(url) = &options.callback {
        out.push_str(&format!(r#","callback":{{"url":{}}}"#, json_string(url)));
    }
    if let Some(note) = &options.note {
        out.push_str(&format!(r#","notes":{}"#, json_string(note)));
    }
    if options.dry_run {
        out.push_str(r#","dry-run":true"#);
    }
    out
}

/// The body for `items` under `options`.
pub(crate) fn encode<'a>(items: impl IntoIterator<Item = &'a Item>, options: &Options) -> String {
    let (mut patterns, mut tags) = (Vec::new(), Vec::new());
    for item in items {
        let list = if item.kind == TargetKind::Tag {
            &mut tags
        } else {
            &mut patterns
        };
        list.push(entry(item.kind, &item.value, options));
    }
    let mut arrays = Vec::new();
    if !patterns.is_empty() {
        arrays.push(format!(r#""patterns":[{}]"#, patterns.join(",")));
    }
    if !tags.is_empty() {
        arrays.push(format!(r#""tags":[{}]"#, tags.join(",")));
    }
    format!("{{{}{}}}", arrays.join(","), option_members(options))
}

/// The bytes of a body with no items under `options` (see [`ENVELOPE_BYTES`]).
pub(crate) fn overhead(options: &Options) -> usize {
    ENVELOPE_BYTES + option_members(options).len()
}

/// Bytes an item adds to the body: its entry and the comma after it.
pub(crate) fn item_bytes(item_entry: &str) -> usize {
    item_entry.len() + 1
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
        TargetKind::Url | TargetKind::Pattern => (MAX_PATTERN_CHARS, "a Limelight pattern or URL"),
    };
    if kind == TargetKind::Tag && !value.bytes().all(|b| (33..=126).contains(&b) && b != b',') {
        return Err(Error::invalid(
            shown,
            "a Limelight tag is printable ASCII without white space or commas (Cache-Tag format)",
        ));
    }
    let chars = value.chars().count();
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
            bytes: item_bytes(&entry(kind, value, options)),
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
            encode([&p], &options),
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
    fn spaces_are_percent_encoded() {
        assert_eq!(
            wire_pattern("http://o.example/a b/*"),
            "http://o.example/a%20b/*"
        );
    }
}
