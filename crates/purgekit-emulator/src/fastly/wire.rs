//! The request forms it reads and the answers it writes.

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Refusal;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    surrogate_keys: Vec<String>,
}

/// The keys of a batch purge: the `Surrogate-Key` header (space-separated) or the JSON body
/// `{"surrogate_keys":[…]}`; at most `max` keys, each 1 to `max_bytes` bytes of printable ASCII.
pub(super) fn batch_keys(
    headers: &HeaderMap,
    body: &[u8],
    max: usize,
    max_bytes: usize,
) -> Result<Vec<String>, Refusal> {
    let bad = |detail: String| (400, "Bad request", detail);
    let keys: Vec<String> = if let Some(header) = headers.get("surrogate-key") {
        let text = header
            .to_str()
            .map_err(|_| bad("the Surrogate-Key header is not ASCII".into()))?;
        text.split(' ')
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect()
    } else if body.is_empty() {
        return Err(bad(
            "name the keys in a Surrogate-Key header or a {\"surrogate_keys\":[…]} body".into(),
        ));
    } else {
        let json = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if !json {
            return Err(bad(
                "a JSON body needs Content-Type: application/json".into()
            ));
        }
        serde_json::from_slice::<Keys>(body)
            .map_err(|e| bad(format!("the body is not {{\"surrogate_keys\":[…]}}: {e}")))?
            .surrogate_keys
    };
    if keys.is_empty() {
        return Err(bad("no surrogate keys given".into()));
    }
    if keys.len() > max {
        return Err(bad(format!(
            "{} surrogate keys in one request; at most {max} are allowed",
            keys.len()
        )));
    }
    for key in &keys {
        check_key(key, max_bytes)?;
    }
    Ok(keys)
}

/// One key: 1 to `max_bytes` bytes of printable ASCII.
pub(super) fn check_key(key: &str, max_bytes: usize) -> Result<(), Refusal> {
    if key.is_empty() || key.len() > max_bytes || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        let shown: String = key.chars().take(40).collect();
        return Err((
            400,
            "Bad request",
            format!(
                "invalid surrogate key `{}`: 1 to {max_bytes} bytes of printable ASCII",
                shown.escape_default()
            ),
        ));
    }
    Ok(())
}

/// `{"status":"ok","id":…}`.
pub(super) fn ok(id: &str) -> Value {
    json!({"status": "ok", "id": id})
}

/// The token's record `GET /tokens/self` answers (the fields a client reads; never the token).
pub(super) fn token(scope: &str) -> Value {
    json!({
        "id": "5K2iB1UlGbA3fSzeHWA7qN",
        "name": "purgekit sandbox",
        "scope": scope,
        "services": [],
        "expires_at": null
    })
}

/// `{"msg":…,"detail":…}`.
pub(super) fn error(msg: &str, detail: &str) -> Value {
    json!({"msg": msg, "detail": detail})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_batch_forms_are_read() {
        let mut h = HeaderMap::new();
        h.insert("surrogate-key", "a b  c".parse().unwrap());
        assert_eq!(batch_keys(&h, b"", 256, 1024).unwrap(), ["a", "b", "c"]);
        let mut h = HeaderMap::new();
        h.insert("content-type", "application/json".parse().unwrap());
        assert_eq!(
            batch_keys(&h, br#"{"surrogate_keys":["x","y"]}"#, 256, 1024).unwrap(),
            ["x", "y"]
        );
        assert_eq!(
            batch_keys(&h, br#"{"keys":["x"]}"#, 256, 1024)
                .unwrap_err()
                .0,
            400
        );
        let many = format!("{{\"surrogate_keys\":[{}]}}", vec!["\"k\""; 257].join(","));
        assert!(
            batch_keys(&h, many.as_bytes(), 256, 1024)
                .unwrap_err()
                .2
                .contains("257")
        );
        assert!(batch_keys(&HeaderMap::new(), b"", 256, 1024).is_err());
    }
}
