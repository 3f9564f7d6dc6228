//! The request schema (one type per request, `additionalProperties: false`) and the problem
//! bodies Fast Purge answers with.

use serde_json::{Value, json};

/// An error answer: status, title and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    pub status: u16,
    pub title: String,
    pub detail: String,
}

impl Problem {
    pub fn new(status: u16, title: impl Into<String>, detail: impl Into<String>) -> Self {
        Problem {
            status,
            title: title.into(),
            detail: detail.into(),
        }
    }

    pub fn bad(title: &str, detail: impl Into<String>) -> Self {
        Problem::new(400, title, detail)
    }

    /// The body: `supportId`, `httpStatus`, `title`, `detail`, `describedBy`.
    pub fn body(&self, support_id: &str) -> Value {
        json!({
            "supportId": support_id,
            "httpStatus": self.status,
            "title": self.title,
            "detail": self.detail,
            "describedBy": format!(
                "https://developer.akamai.com/api/core_features/fast_purge/v3.html#{}",
                self.status
            ),
        })
    }
}

/// A checked request body's objects, as text (CP codes in decimal).
pub(super) fn objects(kind: &str, body: &[u8]) -> Result<Vec<String>, Problem> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::bad("Bad request", format!("The request body is not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(Problem::bad(
            "Bad request",
            "The request body must be a JSON object",
        ));
    };
    for key in map.keys() {
        let allowed = key == "objects" || (kind == "url" && key == "hostname");
        if !allowed {
            return Err(Problem::bad(
                "Bad request",
                format!("Unrecognized field `{key}` (additionalProperties: false)"),
            ));
        }
    }
    let hostname = match map.get("hostname") {
        None => None,
        Some(Value::String(h)) if is_hostname(h) => Some(h.as_str()),
        Some(_) => {
            return Err(Problem::bad(
                "bad URL hostname",
                "Invalid or malformed hostname",
            ));
        }
    };
    let list = match map.get("objects") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => {
            return Err(Problem::bad(
                "Bad request",
                "'objects' attribute cannot be missing or empty",
            ));
        }
    };
    list.iter().map(|o| object(kind, hostname, o)).collect()
}

fn object(kind: &str, hostname: Option<&str>, value: &Value) -> Result<String, Problem> {
    match (kind, value) {
        ("cpcode", Value::Number(n)) => match n.as_u64().filter(|c| *c > 0) {
            Some(code) => Ok(code.to_string()),
            None => Err(Problem::bad("Bad request", format!("Invalid CP code {n}"))),
        },
        ("cpcode", other) => Err(Problem::bad(
            "Bad request",
            format!("CP codes are JSON integers, not {other}"),
        )),
        ("tag", Value::String(t)) if !t.is_empty() => Ok(t.clone()),
        ("url", Value::String(u)) => check_url(hostname, u),
        (_, other) => Err(Problem::bad(
            "Bad request",
            format!("Invalid {kind} object {other}"),
        )),
    }
}

/// A URL (`http(s)://host/…`), an ARL (`/L/…`), or with a `hostname`, a path on it. ASCII only.
fn check_url(hostname: Option<&str>, u: &str) -> Result<String, Problem> {
    if let Some(c) = u
        .chars()
        .find(|c| !c.is_ascii() || c.is_ascii_control() || *c == ' ')
    {
        return Err(Problem::bad(
            "bad URL",
            format!("Invalid or malformed URL '{u}': contains non-ASCII character {c:?}"),
        ));
    }
    if let Some(host) = hostname {
        return if u.starts_with('/') {
            Ok(format!("{host}{u}"))
        } else {
            Err(Problem::bad(
                "bad URL",
                format!("Invalid or malformed URL '{u}'"),
            ))
        };
    }
    if u.starts_with("/L/") {
        return Ok(u.to_owned());
    }
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
            if is_hostname(host) {
                Ok(u.to_owned())
            } else {
                Err(Problem::bad(
                    "bad URL hostname",
                    "Invalid or malformed hostname",
                ))
            }
        }
        None => Err(Problem::bad(
            "bad URL",
            format!("Invalid or malformed URL '{u}'"),
        )),
    }
}

fn is_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(kind: &str, body: &str) -> Result<Vec<String>, (u16, String)> {
        objects(kind, body.as_bytes()).map_err(|p| (p.status, p.title))
    }

    #[test]
    fn every_documented_form_is_accepted() {
        assert_eq!(
            status("url", r#"{"objects":["https://foo1.bar.com/some/path","http://foo2.bar.com/some/other/path","/L/512/6848/1h/www.example1.com/"]}"#).unwrap().len(),
            3
        );
        assert_eq!(
            status(
                "url",
                r#"{"hostname":"origin.qux.com","objects":["/some/path/object1"]}"#
            )
            .unwrap(),
            ["origin.qux.com/some/path/object1"]
        );
        assert_eq!(
            status("tag", r#"{"objects":["black-friday","laptops"]}"#)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            status("cpcode", r#"{"objects":[12345,98765]}"#).unwrap(),
            ["12345", "98765"]
        );
    }

    #[test]
    fn violations_are_400s_with_the_documented_titles() {
        assert_eq!(
            status("url", r#"{"objects":["https://é.example/"]}"#).unwrap_err(),
            (400, "bad URL".into())
        );
        assert_eq!(
            status("url", r#"{"objects":["https://bad_host/"]}"#)
                .unwrap_err()
                .1,
            "bad URL hostname"
        );
        assert_eq!(
            status("cpcode", r#"{"objects":["12345"]}"#).unwrap_err().0,
            400
        );
        assert_eq!(status("tag", r#"{"objects":[1]}"#).unwrap_err().0, 400);
        assert_eq!(status("tag", r#"{"objects":[]}"#).unwrap_err().0, 400);
        assert_eq!(
            status("tag", r#"{"objects":["a"],"extra":1}"#)
                .unwrap_err()
                .0,
            400
        );
        assert_eq!(
            status("tag", r#"{"hostname":"a.com","objects":["a"]}"#)
                .unwrap_err()
                .0,
            400
        );
        assert_eq!(status("url", "not json").unwrap_err().0, 400);
    }
}
