//! EdgeGrid `EG1-HMAC-SHA256` verification, written from the spec independently of the codec:
//! the header is parsed, the tokens and the timestamp's skew checked, the nonce refused if seen
//! before, and the signature recomputed with the stored secret.

use crate::auth::{Authenticator, Principal};
use axum::http::request::Parts;
use axum::response::Response;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method, Uri, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The fields of an `Authorization: EG1-HMAC-SHA256 …` header.
#[derive(Debug, Default)]
pub(super) struct AuthHeader {
    pub client_token: String,
    pub access_token: String,
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
}

/// What the verifier needs from the configuration.
pub(super) struct Verifier<'a> {
    pub client_token: &'a str,
    pub client_secret: &'a str,
    pub access_token: &'a str,
    pub max_body: usize,
    pub max_skew: Duration,
}

/// Why a request was refused (all answered 401).
pub(crate) type Refusal = String;

impl Authenticator for super::AkamaiEmulator {
    type Refusal = Refusal;

    /// EdgeGrid, then the replay check: a nonce seen within twice the allowed skew is refused.
    fn verify(&self, parts: &Parts, body: &[u8]) -> Result<Principal, Refusal> {
        let c = self.config();
        let verifier = Verifier {
            client_token: &c.client_token,
            client_secret: &c.client_secret,
            access_token: &c.access_token,
            max_body: c.max_body,
            max_skew: c.max_clock_skew,
        };
        let auth = verifier.verify(
            &parts.method,
            &parts.uri,
            &parts.headers,
            body,
            SystemTime::now(),
        )?;
        let now = tokio::time::Instant::now();
        if !self
            .ledger()
            .nonces
            .fresh(&auth.nonce, now, c.max_clock_skew * 2)
        {
            return Err("Replayed request: the nonce was used before".into());
        }
        Ok(Principal(auth.client_token))
    }

    /// Akamai's problem+json, 401 "Not authorized".
    fn refuse(&self, why: Refusal) -> Response {
        super::problem(
            &mut self.ledger(),
            &super::Problem::new(401, "Not authorized", why),
        )
    }
}

impl Verifier<'_> {
    /// Verifies the request; the parsed header on success (its nonce is for the replay check).
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<AuthHeader, Refusal> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or("missing Authorization header")?
            .to_str()
            .map_err(|_| "the Authorization header is not text")?;
        let auth = parse(value)?;
        if auth.client_token != self.client_token || auth.access_token != self.access_token {
            return Err("Invalid client token or access token".into());
        }
        let signed_at = parse_timestamp(&auth.timestamp)
            .ok_or_else(|| format!("Invalid timestamp `{}`", auth.timestamp))?;
        let skew = match now.duration_since(signed_at) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        if skew > self.max_skew {
            return Err(format!(
                "Invalid timestamp: {} is {}s off the server clock (at most {}s allowed)",
                auth.timestamp,
                skew.as_secs(),
                self.max_skew.as_secs()
            ));
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or("missing Host header")?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let hash = if method == Method::POST && !body.is_empty() {
            STANDARD.encode(Sha256::digest(&body[..body.len().min(self.max_body)]))
        } else {
            String::new()
        };
        let prefix_end = value
            .rfind("signature=")
            .ok_or("the Authorization header has no signature")?;
        let prefix = &value[..prefix_end];
        // Purge signs no headers: the canonical-headers field is empty.
        let data = format!("{method}\thttp\t{host}\t{path}\t\t{hash}\t{prefix}");
        let key = hmac_base64(self.client_secret.as_bytes(), auth.timestamp.as_bytes());
        let expected = hmac_base64(key.as_bytes(), data.as_bytes());
        if expected != auth.signature {
            return Err("The signature does not match".into());
        }
        Ok(auth)
    }
}

fn hmac_base64(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Parses `EG1-HMAC-SHA256 client_token=…;access_token=…;timestamp=…;nonce=…;signature=…`.
pub(super) fn parse(value: &str) -> Result<AuthHeader, Refusal> {
    let rest = value
        .strip_prefix("EG1-HMAC-SHA256 ")
        .ok_or("the Authorization header is not EG1-HMAC-SHA256")?;
    let mut auth = AuthHeader::default();
    for field in rest.split(';').filter(|f| !f.is_empty()) {
        let (name, value) = field
            .split_once('=')
            .ok_or_else(|| format!("malformed Authorization field `{field}`"))?;
        let slot = match name {
            "client_token" => &mut auth.client_token,
            "access_token" => &mut auth.access_token,
            "timestamp" => &mut auth.timestamp,
            "nonce" => &mut auth.nonce,
            "signature" => &mut auth.signature,
            other => return Err(format!("unknown Authorization field `{other}`")),
        };
        *slot = value.to_owned();
    }
    for (name, v) in [
        ("client_token", &auth.client_token),
        ("access_token", &auth.access_token),
        ("timestamp", &auth.timestamp),
        ("nonce", &auth.nonce),
        ("signature", &auth.signature),
    ] {
        if v.is_empty() {
            return Err(format!("the Authorization header lacks {name}"));
        }
    }
    Ok(auth)
}

/// `yyyyMMddTHH:mm:ss+0000` → the instant.
pub(super) fn parse_timestamp(ts: &str) -> Option<SystemTime> {
    let b = ts.as_bytes();
    if b.len() != 22
        || &ts[8..9] != "T"
        || &ts[11..12] != ":"
        || &ts[14..15] != ":"
        || &ts[17..] != "+0000"
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = &ts[r];
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(12..14)?, num(15..17)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Days from civil (Howard Hinnant), written out here rather than shared with the codec.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// Signs as a client would, for tests of the emulator itself: the `Authorization` value for a
/// POST of `body` to `path_and_query` on `host` (scheme `http`), at `timestamp` with `nonce`.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    client_token: &str,
    client_secret: &str,
    access_token: &str,
    host: &str,
    path_and_query: &str,
    body: &[u8],
    timestamp: &str,
    nonce: &str,
) -> String {
    let prefix = format!(
        "EG1-HMAC-SHA256 client_token={client_token};access_token={access_token};timestamp={timestamp};nonce={nonce};"
    );
    let hash = if body.is_empty() {
        String::new()
    } else {
        STANDARD.encode(Sha256::digest(&body[..body.len().min(131_072)]))
    };
    let data = format!("POST\thttp\t{host}\t{path_and_query}\t\t{hash}\t{prefix}");
    let key = hmac_base64(client_secret.as_bytes(), timestamp.as_bytes());
    format!(
        "{prefix}signature={}",
        hmac_base64(key.as_bytes(), data.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_and_refuse_malformed_ones() {
        let t = parse_timestamp("20140321T19:34:21+0000").unwrap();
        assert_eq!(t, UNIX_EPOCH + Duration::from_secs(1_395_430_461));
        assert_eq!(
            parse_timestamp("20000229T00:00:00+0000").unwrap(),
            UNIX_EPOCH + Duration::from_secs(951_782_400)
        );
        for bad in [
            "20140321T19:34:21Z",
            "2014-03-21T19:34:21+0000",
            "20141321T19:34:21+0000",
            "x",
        ] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_official_post_vector_verifies() {
        // Akamai's case 3 recomputed over https: the emulator's own formula, scheme aside.
        let key = hmac_base64(
            b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=",
            b"20140321T19:34:21+0000",
        );
        assert_eq!(key, "znsRMDBRqTXGJ7Ojip3/h2FGPu3LuoMYWgv9PKEnE/o=");
        let prefix = "EG1-HMAC-SHA256 client_token=akab-client-token-xxx-xxxxxxxxxxxxxxxx;access_token=akab-access-token-xxx-xxxxxxxxxxxxxxxx;timestamp=20140321T19:34:21+0000;nonce=nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx;";
        let hash = STANDARD.encode(Sha256::digest(b"datadatadatadatadatadatadatadata"));
        let data = format!(
            "POST\thttps\takaa-baseurl-xxxxxxxxxxx-xxxxxxxxxxxxx.luna.akamaiapis.net\t/testapi/v1/t3\t\t{hash}\t{prefix}"
        );
        assert_eq!(
            hmac_base64(key.as_bytes(), data.as_bytes()),
            "hXm4iCxtpN22m4cbZb4lVLW5rhX8Ca82vCFqXzSTPe4="
        );
        let parsed = parse(&format!("{prefix}signature=abc")).unwrap();
        assert_eq!(parsed.nonce, "nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
        assert!(parse("EG1-HMAC-SHA256 client_token=a;signature=b").is_err());
        assert!(parse("Basic abc").is_err());
    }
}
