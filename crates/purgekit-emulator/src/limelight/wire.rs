//! The purge request schema, checked exactly as the Request Endpoint Schema documents it: every
//! problem found is reported, each with its code and the path of the offending property.

use serde_json::{Map, Value};

use super::ApiError;

/// A `patterns[]` entry of an accepted purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternEntry {
    /// The pattern (or exact public URL).
    pub pattern: String,
    /// Delete rather than invalidate.
    pub evict: bool,
    /// Literal published URL, or glob on the origin URL.
    pub exact: bool,
    /// Match the query string too.
    pub incqs: bool,
}

/// A `tags[]` entry of an accepted purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagEntry {
    /// The content tag.
    pub tag: String,
    /// Delete rather than invalidate.
    pub evict: bool,
}

/// A request body that passed the schema.
#[derive(Debug, Clone)]
pub(crate) struct PurgeBody {
    pub patterns: Vec<PatternEntry>,
    pub tags: Vec<TagEntry>,
    pub callback: Option<String>,
    pub notes: Option<String>,
    pub dry_run: bool,
    /// The writable members as sent, echoed in answers.
    pub echo: Map<String, Value>,
}

/// Documented limits the schema enforces.
pub(crate) struct Bounds {
    pub max_items: usize,
}

const PATTERN_MAX: usize = 4096;
const TAG_MAX: usize = 256;
const SUBJECT_MAX: usize = 128;
const RECIPIENTS_MAX: usize = 256;
const CALLBACK_MAX: usize = 512;
const NOTES_MAX: usize = 512;

/// Checks `body`; `Err` holds every error found.
pub(crate) fn check(body: &[u8], bounds: &Bounds) -> Result<PurgeBody, Vec<ApiError>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        vec![ApiError::new(
            1009,
            "malformed JSON body",
            format!("The JSON request body is malformed ({e})."),
            "request body",
        )]
    })?;
    let Value::Object(object) = value else {
        return Err(vec![ApiError::new(
            1009,
            "malformed JSON body",
            "The JSON request body is not an object.",
            "request body",
        )]);
    };
    let mut errors = Vec::new();
    let mut out = PurgeBody {
        patterns: Vec::new(),
        tags: Vec::new(),
        callback: None,
        notes: None,
        dry_run: false,
        echo: Map::new(),
    };
    for (key, value) in &object {
        match key.as_str() {
            "patterns" => {
                for (i, entry) in array(value, "patterns", &mut errors).iter().enumerate() {
                    let path = format!("patterns[{i}]");
                    let Some(fields) = fields(
                        entry,
                        &path,
                        &["pattern", "evict", "exact", "incqs"],
                        &mut errors,
                    ) else {
                        continue;
                    };
                    let pattern = string(fields, &path, "pattern", 1, PATTERN_MAX, &mut errors);
                    let evict = boolean(fields, &path, "evict", &mut errors);
                    let exact = boolean(fields, &path, "exact", &mut errors);
                    let incqs = boolean(fields, &path, "incqs", &mut errors);
                    if let Some(p) = &pattern
                        && !valid_pattern(p)
                    {
                        errors.push(ApiError::new(
                            1007,
                            "invalid pattern",
                            format!("The pattern {p} is invalid."),
                            format!("{path}.pattern"),
                        ));
                    }
                    if let (Some(pattern), Some(evict), Some(exact), Some(incqs)) =
                        (pattern, evict, exact, incqs)
                    {
                        out.patterns.push(PatternEntry {
                            pattern,
                            evict,
                            exact,
                            incqs,
                        });
                    }
                }
            }
            "tags" => {
                for (i, entry) in array(value, "tags", &mut errors).iter().enumerate() {
                    let path = format!("tags[{i}]");
                    let Some(fields) = fields(entry, &path, &["tag", "evict"], &mut errors) else {
                        continue;
                    };
                    let tag = string(fields, &path, "tag", 1, TAG_MAX, &mut errors);
                    let evict = boolean(fields, &path, "evict", &mut errors);
                    if let Some(t) = &tag
                        && !valid_tag(t)
                    {
                        errors.push(ApiError::new(
                            1040,
                            "invalid tag",
                            format!("The tag '{t}' is invalid."),
                            format!("{path}.tag"),
                        ));
                    }
                    if let (Some(tag), Some(evict)) = (tag, evict) {
                        out.tags.push(TagEntry { tag, evict });
                    }
                }
            }
            "email" => {
                let Some(fields) = fields(value, "email", &["to"], &mut errors) else {
                    continue;
                };
                for (name, max) in [
                    ("subject", SUBJECT_MAX),
                    ("to", RECIPIENTS_MAX),
                    ("cc", RECIPIENTS_MAX),
                    ("bcc", RECIPIENTS_MAX),
                ] {
                    if name != "to" && !fields.contains_key(name) {
                        continue;
                    }
                    let Some(text) = string(fields, "email", name, 1, max, &mut errors) else {
                        continue;
                    };
                    if name != "subject"
                        && let Some(bad) = text.split(',').find(|a| !valid_email(a.trim()))
                    {
                        errors.push(ApiError::new(
                            1028,
                            "invalid email",
                            format!("The property email.{name} contains the invalid email address {bad}."),
                            format!("email.{name}"),
                        ));
                    }
                }
                unknown(
                    fields,
                    "email",
                    &["subject", "to", "cc", "bcc"],
                    &mut errors,
                );
            }
            "callback" => {
                let Some(fields) = fields(value, "callback", &["url"], &mut errors) else {
                    continue;
                };
                unknown(fields, "callback", &["url"], &mut errors);
                if let Some(url) = string(fields, "callback", "url", 1, CALLBACK_MAX, &mut errors) {
                    if valid_callback(&url) {
                        out.callback = Some(url);
                    } else {
                        errors.push(ApiError::new(
                            1029,
                            "invalid callback URL",
                            format!("The property callback.url contains the invalid URL {url}."),
                            "callback.url",
                        ));
                    }
                }
            }
            "notes" => match value {
                Value::String(s) if s.chars().count() <= NOTES_MAX => out.notes = Some(s.clone()),
                Value::String(_) => errors.push(length_error("notes", 0, NOTES_MAX)),
                _ => errors.push(type_error("notes", "string")),
            },
            "dry-run" => match value {
                Value::Bool(b) => out.dry_run = *b,
                _ => errors.push(type_error("dry-run", "boolean")),
            },
            other => errors.push(extra_error(other)),
        }
        out.echo.insert(key.clone(), value.clone());
    }
    let total = out.patterns.len() + out.tags.len();
    let listed = ["patterns", "tags"].iter().any(|k| object.contains_key(*k));
    if !listed {
        errors.push(ApiError::new(
            1042,
            "request is empty",
            "Please specify patterns and/or tags in your purge request.",
            "patterns and tags",
        ));
    } else if total > bounds.max_items {
        errors.push(ApiError::new(
            1041,
            "request is too big",
            format!(
                "The combined size of patterns and tags arrays must not exceed {}.",
                bounds.max_items
            ),
            "patterns and tags",
        ));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// An array's elements; a non-array or an empty one is an error (size range [1 - max]).
fn array<'a>(value: &'a Value, path: &str, errors: &mut Vec<ApiError>) -> &'a [Value] {
    match value {
        Value::Array(items) if !items.is_empty() => items,
        Value::Array(_) => {
            errors.push(ApiError::new(
                1005,
                "invalid size",
                format!("The size of the property {path} must be in the range [1 - 100]."),
                path,
            ));
            &[]
        }
        _ => {
            errors.push(type_error(path, "array"));
            &[]
        }
    }
}

/// An object's members, after reporting missing `required` ones; `None` if not an object.
fn fields<'a>(
    value: &'a Value,
    path: &str,
    required: &[&str],
    errors: &mut Vec<ApiError>,
) -> Option<&'a Map<String, Value>> {
    let Value::Object(map) = value else {
        errors.push(type_error(path, "object"));
        return None;
    };
    for name in required {
        if !map.contains_key(*name) {
            errors.push(ApiError::new(
                1001,
                "missing required property",
                format!("The required property {name} is missing."),
                path,
            ));
        }
    }
    if path.starts_with("patterns[") || path.starts_with("tags[") {
        unknown(map, path, required, errors);
    }
    Some(map)
}

fn unknown(map: &Map<String, Value>, path: &str, allowed: &[&str], errors: &mut Vec<ApiError>) {
    for key in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
        errors.push(extra_error(&format!("{path}.{key}")));
    }
}

fn string(
    map: &Map<String, Value>,
    path: &str,
    name: &str,
    min: usize,
    max: usize,
    errors: &mut Vec<ApiError>,
) -> Option<String> {
    let full = format!("{path}.{name}");
    match map.get(name)? {
        Value::String(s) => {
            let n = s.chars().count();
            if (min..=max).contains(&n) {
                Some(s.clone())
            } else {
                errors.push(length_error(&full, min, max));
                None
            }
        }
        _ => {
            errors.push(type_error(&full, "string"));
            None
        }
    }
}

fn boolean(
    map: &Map<String, Value>,
    path: &str,
    name: &str,
    errors: &mut Vec<ApiError>,
) -> Option<bool> {
    match map.get(name)? {
        Value::Bool(b) => Some(*b),
        _ => {
            errors.push(type_error(&format!("{path}.{name}"), "boolean"));
            None
        }
    }
}

fn extra_error(path: &str) -> ApiError {
    let name = path.rsplit('.').next().unwrap_or(path);
    ApiError::new(
        1003,
        "no extra properties allowed",
        format!("The unknown property {name} is not allowed."),
        path,
    )
}

fn type_error(path: &str, wanted: &str) -> ApiError {
    let name = path.rsplit('.').next().unwrap_or(path);
    ApiError::new(
        1004,
        "invalid type",
        format!("The property {name} has an invalid type. The required type is {wanted}."),
        path,
    )
}

fn length_error(path: &str, min: usize, max: usize) -> ApiError {
    let name = path.rsplit('.').next().unwrap_or(path);
    ApiError::new(
        1006,
        "invalid length",
        format!("The length of the property {name} must be in the range [{min} - {max}]."),
        path,
    )
}

/// An absolute http(s) URL or glob, with no white space or control characters. In a glob, `*`
/// is a wildcard wherever it stands (the guide: "wildcard characters are treated as
/// wildcards"), so `http*://host/*` covers both schemes.
fn valid_pattern(p: &str) -> bool {
    let rest = p
        .strip_prefix("http://")
        .or_else(|| p.strip_prefix("https://"))
        .or_else(|| p.strip_prefix("http*://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !p.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Cache-Tag format: printable ASCII (32-126) but no white space or comma.
fn valid_tag(t: &str) -> bool {
    t.bytes().all(|b| (33..=126).contains(&b) && b != b',')
}

fn valid_email(a: &str) -> bool {
    let Some((local, domain)) = a.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ';'))
        && !domain.contains('@')
}

/// An http(s) URL with a host and no user info, query or fragment.
fn valid_callback(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    !authority.is_empty()
        && !authority.contains('@')
        && !url.contains(['?', '#'])
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(body: &str) -> Vec<(u32, String)> {
        check(body.as_bytes(), &Bounds { max_items: 100 })
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.code, e.source))
            .collect()
    }

    fn ok(body: &str) -> PurgeBody {
        check(body.as_bytes(), &Bounds { max_items: 100 }).unwrap()
    }

    #[test]
    fn the_documented_example_passes() {
        let body = ok(
            r#"{"patterns":[{"pattern":"http://*.example.com/images/*","evict":false,"exact":false,"incqs":false}],
            "email":{"subject":"purge results","to":"user@example.com"},
            "callback":{"url":"http://test.example.com/my_callback.php"},"notes":"my first purge request"}"#,
        );
        assert_eq!(body.patterns.len(), 1);
        assert_eq!(
            body.callback.as_deref(),
            Some("http://test.example.com/my_callback.php")
        );
    }

    #[test]
    fn a_glob_may_cover_both_schemes_but_not_others() {
        // `*` is a wildcard wherever it stands in a partial pattern: `http*://` is http and https.
        let body = ok(
            r#"{"patterns":[{"pattern":"http*://cdn.example.com/*","evict":false,"exact":false,"incqs":false}]}"#,
        );
        assert_eq!(body.patterns[0].pattern, "http*://cdn.example.com/*");
        for bad in [
            "ftp://cdn.example.com/*",
            "*://cdn.example.com/*",
            "http*:///x",
        ] {
            let body = format!(
                r#"{{"patterns":[{{"pattern":"{bad}","evict":false,"exact":false,"incqs":false}}]}}"#
            );
            assert!(!codes(&body).is_empty(), "{bad}");
        }
    }

    #[test]
    fn every_documented_error_is_found() {
        assert_eq!(codes("{"), [(1009, "request body".into())]);
        assert_eq!(codes("{}"), [(1042, "patterns and tags".into())]);
        assert_eq!(
            codes(r#"{"tags":[{"tag":"a","evict":false}],"size":1}"#),
            [(1003, "size".into())]
        );
        assert_eq!(
            codes(
                r#"{"patterns":[{"pattern":"http://a.example/*","evict":false,"exact":false,"incqs":false,"size":1}]}"#
            ),
            [(1003, "patterns[0].size".into())]
        );
        assert_eq!(
            codes(r#"{"patterns":[{"pattern":"http://a.example/*","evict":false,"exact":false}]}"#),
            [(1001, "patterns[0]".into())]
        );
        assert_eq!(
            codes(
                r#"{"patterns":[{"pattern":"http://a.example/*","evict":false,"exact":false,"incqs":"no"}]}"#
            ),
            [(1004, "patterns[0].incqs".into())]
        );
        assert_eq!(codes(r#"{"patterns":[]}"#), [(1005, "patterns".into())]);
        assert_eq!(
            codes(
                r#"{"patterns":[{"pattern":"foo* bar*","evict":false,"exact":false,"incqs":false}]}"#
            ),
            [(1007, "patterns[0].pattern".into())]
        );
        assert_eq!(
            codes(r#"{"tags":[{"tag":"foo bar","evict":false}]}"#),
            [(1040, "tags[0].tag".into())]
        );
        let long = format!(
            r#"{{"tags":[{{"tag":"{}","evict":false}}]}}"#,
            "t".repeat(257)
        );
        assert_eq!(codes(&long), [(1006, "tags[0].tag".into())]);
        assert_eq!(
            codes(r#"{"tags":[{"tag":"a","evict":false}],"email":{"subject":"s"}}"#),
            [(1001, "email".into())]
        );
        assert_eq!(
            codes(r#"{"tags":[{"tag":"a","evict":false}],"email":{"to":"a@example.com,nope"}}"#),
            [(1028, "email.to".into())]
        );
        assert_eq!(
            codes(
                r#"{"tags":[{"tag":"a","evict":false}],"callback":{"url":"https://x.example/cb?q=1"}}"#
            ),
            [(1029, "callback.url".into())]
        );
        let notes = format!(
            r#"{{"tags":[{{"tag":"a","evict":false}}],"notes":"{}"}}"#,
            "n".repeat(513)
        );
        assert_eq!(codes(&notes), [(1006, "notes".into())]);
        assert_eq!(
            codes(r#"{"tags":[{"tag":"a","evict":false}],"dry-run":"yes"}"#),
            [(1004, "dry-run".into())]
        );
        assert_eq!(
            codes(r#"{"tags":[{"tag":"a","evict":false}],"dry_run":true}"#),
            [(1003, "dry_run".into())]
        );
    }

    #[test]
    fn more_than_100_patterns_and_tags_together_is_1041() {
        let patterns: Vec<String> = (0..60)
            .map(|i| format!(r#"{{"pattern":"http://a.example/{i}","evict":false,"exact":true,"incqs":false}}"#))
            .collect();
        let tags: Vec<String> = (0..41)
            .map(|i| format!(r#"{{"tag":"t{i}","evict":true}}"#))
            .collect();
        let body = format!(
            r#"{{"patterns":[{}],"tags":[{}]}}"#,
            patterns.join(","),
            tags.join(",")
        );
        assert_eq!(codes(&body), [(1041, "patterns and tags".into())]);
        let body = format!(
            r#"{{"patterns":[{}],"tags":[{}]}}"#,
            patterns.join(","),
            tags[..40].join(",")
        );
        assert_eq!(ok(&body).tags.len(), 40);
    }
}
