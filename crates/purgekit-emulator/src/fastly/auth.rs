//! `Fastly-Key` checks: the token, and its scopes for the call, as the emulator's
//! [`Authenticator`]: a refusal is Fastly's `{"msg":…,"detail":…}` with 401 (no or a wrong
//! token) or 403 (a scope the call needs is missing).

use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::Response;

use crate::auth::{Authenticator, Principal};

/// Why a request is refused: (HTTP status, `msg`, `detail`).
pub(super) type Refusal = (u16, &'static str, String);

/// The call a scope is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Needs {
    /// URL and surrogate-key purges: `purge_select` or `global`.
    Select,
    /// Purge-all: `purge_all` or `global`.
    All,
    /// Reading the token's own record (`GET /tokens/self`): any valid token.
    Any,
}

/// Compares without stopping at the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the `Fastly-Key` header against `token` and `scopes`. A URL purge on a service
/// that does not require auth (`required == false`) passes without a key, but a key that is
/// sent must be right. The token is never echoed.
pub(super) fn check(
    headers: &HeaderMap,
    token: &str,
    scopes: &[String],
    needs: Needs,
    required: bool,
) -> Result<(), Refusal> {
    let Some(given) = headers.get("fastly-key") else {
        if !required {
            return Ok(());
        }
        return Err((
            401,
            "Provided credentials are missing or invalid",
            "send the API token in the Fastly-Key header".into(),
        ));
    };
    if !same(given.as_bytes(), token.as_bytes()) {
        return Err((
            401,
            "Provided credentials are missing or invalid",
            "the Fastly-Key token is not valid".into(),
        ));
    }
    let wanted = match needs {
        Needs::Select => "purge_select",
        Needs::All => "purge_all",
        Needs::Any => return Ok(()),
    };
    if !scopes.iter().any(|s| s == "global" || s == wanted) {
        return Err((
            403,
            "Forbidden",
            format!("the token lacks the `{wanted}` scope this purge needs"),
        ));
    }
    Ok(())
}

impl Authenticator for super::FastlyEmulator {
    type Refusal = Refusal;

    /// The call is read from the path: `/purge/…` a URL purge (a token needed only when the
    /// service requires auth), `…/purge_all` purge-all, `/tokens/self` any token, the rest
    /// surrogate-key purges.
    fn verify(&self, parts: &Parts, _body: &[u8]) -> Result<Principal, Refusal> {
        let c = self.config();
        let path = parts.uri.path();
        let (needs, required) = if path.starts_with("/purge/") {
            (Needs::Select, c.urls_require_auth)
        } else if path == super::TOKEN_PATH {
            (Needs::Any, true)
        } else if path.ends_with("/purge_all") {
            (Needs::All, true)
        } else {
            (Needs::Select, true)
        };
        check(
            &parts.headers,
            &c.api_token,
            &c.token_scopes,
            needs,
            required,
        )?;
        let who = if parts.headers.contains_key("fastly-key") {
            "token"
        } else {
            "anonymous"
        };
        Ok(Principal(who.to_owned()))
    }

    fn refuse(&self, refusal: Refusal) -> Response {
        super::refuse(self, refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("fastly-key", k.parse().unwrap());
        h
    }

    #[test]
    fn tokens_and_scopes() {
        let global = vec!["global".to_owned()];
        let select = vec!["purge_select".to_owned()];
        assert!(check(&key("t"), "t", &global, Needs::All, true).is_ok());
        assert_eq!(
            check(&key("x"), "t", &global, Needs::Select, false)
                .unwrap_err()
                .0,
            401
        );
        assert!(check(&HeaderMap::new(), "t", &global, Needs::Select, false).is_ok());
        assert_eq!(
            check(&HeaderMap::new(), "t", &global, Needs::Select, true)
                .unwrap_err()
                .0,
            401
        );
        assert!(check(&key("t"), "t", &select, Needs::Select, true).is_ok());
        let (status, _, detail) =
            check(&key("tok-secret"), "tok-secret", &select, Needs::All, true).unwrap_err();
        assert_eq!(status, 403);
        assert!(detail.contains("purge_all") && !detail.contains("tok-secret"));
    }
}
