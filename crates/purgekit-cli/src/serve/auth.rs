//! Who may call the API: bearer tokens from the config, compared in constant time; each
//! token's `POST` rate limited. Tokens are never logged, counted by name or echoed.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use purgekit::Secret;
use subtle::ConstantTimeEq;

/// Why a request is refused before it is handled.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No token, or not a configured one (401).
    Unauthorized(&'static str),
    /// A credential in the URL's query (400): it would end up in logs and histories.
    TokenInQuery,
    /// The token's `POST` rate is used up (429), for this long.
    TooMany(Duration),
}

/// The configured tokens and their `POST` limiter.
pub struct Auth {
    tokens: Vec<Secret>,
    /// Keyed by the token's index (0 for everyone when no token is configured).
    posts: DefaultKeyedRateLimiter<usize>,
}

/// Query parameters that carry credentials.
const CREDENTIAL_PARAMS: [&str; 5] = ["token", "access_token", "api_key", "apikey", "key"];

impl Auth {
    /// Tokens `tokens` (none: the API is open), `posts_per_minute` `POST`s a token.
    pub fn new(tokens: &[Secret], posts_per_minute: u32) -> Self {
        let rate = NonZeroU32::new(posts_per_minute).unwrap_or(NonZeroU32::MIN);
        Auth {
            tokens: tokens.to_vec(),
            posts: RateLimiter::keyed(Quota::per_minute(rate)),
        }
    }

    /// Checks a request's `Authorization` header value and query; `post` takes one from the
    /// token's `POST` allowance.
    pub fn check(
        &self,
        authorization: Option<&[u8]>,
        query: Option<&str>,
        post: bool,
    ) -> Result<(), Refusal> {
        if query.is_some_and(has_credential) {
            return Err(Refusal::TokenInQuery);
        }
        let key = if self.tokens.is_empty() {
            0
        } else {
            let Some(header) = authorization else {
                return Err(Refusal::Unauthorized("no Authorization header"));
            };
            let Some(given) = header.strip_prefix(b"Bearer ") else {
                return Err(Refusal::Unauthorized(
                    "the Authorization header is not `Bearer TOKEN`",
                ));
            };
            // Every token compared, in constant time, whichever matches.
            let mut found = None;
            for (i, token) in self.tokens.iter().enumerate() {
                if bool::from(token.expose().as_bytes().ct_eq(given)) {
                    found = Some(i);
                }
            }
            found.ok_or(Refusal::Unauthorized("not a valid token"))?
        };
        if post && let Err(not_until) = self.posts.check_key(&key) {
            return Err(Refusal::TooMany(
                not_until.wait_time_from(DefaultClock::default().now()),
            ));
        }
        Ok(())
    }
}

/// Whether a query string names a credential parameter.
fn has_credential(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or_default();
        CREDENTIAL_PARAMS
            .iter()
            .any(|p| name.eq_ignore_ascii_case(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef-token";

    #[test]
    fn only_a_configured_bearer_token_passes() {
        let auth = Auth::new(&[Secret::new(TOKEN)], 600);
        assert!(
            auth.check(Some(b"Bearer 0123456789abcdef-token"), None, false)
                .is_ok()
        );
        for bad in [
            None,
            Some(&b"Bearer 0123456789abcdef-tokeN"[..]),
            Some(b"Bearer 0123456789abcdef-token "),
            Some(b"Bearer "),
            Some(b"bearer 0123456789abcdef-token"),
            Some(b"Basic 0123456789abcdef-token"),
        ] {
            assert!(
                matches!(auth.check(bad, None, false), Err(Refusal::Unauthorized(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_token_in_the_query_is_refused_even_when_valid() {
        let auth = Auth::new(&[Secret::new(TOKEN)], 600);
        let header = Some(&b"Bearer 0123456789abcdef-token"[..]);
        assert_eq!(
            auth.check(header, Some("limit=5&access_token=x"), false),
            Err(Refusal::TokenInQuery)
        );
        assert_eq!(
            auth.check(header, Some("TOKEN=x"), false),
            Err(Refusal::TokenInQuery)
        );
        assert!(
            auth.check(header, Some("limit=5&state=failed"), false)
                .is_ok()
        );
    }

    #[test]
    fn posts_beyond_the_rate_are_refused_with_a_wait() {
        let auth = Auth::new(
            &[Secret::new(TOKEN), Secret::new("another-token-0123456")],
            2,
        );
        let first = Some(&b"Bearer 0123456789abcdef-token"[..]);
        let second = Some(&b"Bearer another-token-0123456"[..]);
        assert!(auth.check(first, None, true).is_ok());
        assert!(auth.check(first, None, true).is_ok());
        let Err(Refusal::TooMany(wait)) = auth.check(first, None, true) else {
            panic!("a third POST in a minute passed");
        };
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        // GETs are not limited; another token has its own allowance.
        assert!(auth.check(first, None, false).is_ok());
        assert!(auth.check(second, None, true).is_ok());
    }
}
