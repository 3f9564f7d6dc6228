//! Level 3 / Lumen account configuration, checked once by [`crate::Level3::new`].

use std::collections::BTreeMap;
use std::fmt;

use purgekit_core::{Error, RateLimit, Result, Secret};
use serde::Deserialize;

/// The `kind` a config table names to use this provider: `kind = "level3"`.
pub const KIND: &str = "level3";

/// The table `purgekit config init` writes for this provider: every key it needs, with
/// placeholder values to replace, secrets read from the environment (`${PURGEKIT_LEVEL3_*}`), the
/// endpoint and rate limits left to their defaults.
pub const TEMPLATE: &str = r#"kind = "level3"
key_id = "10042"
secret = "${PURGEKIT_LEVEL3_SECRET}"
access_group = "12345"
scid = "BBBN56789"
"#;

/// The current Media Web Services host (`https://ws.level3.com` is the older name).
pub const DEFAULT_ENDPOINT: &str = "https://ws.lumen.com";

/// One Level 3 / Lumen API key and the service it purges: the `[providers.<name>]` table of
/// `kind = "level3"` deserializes into it (unknown keys are refused).
///
/// ```
/// use purgekit_level3::Level3Config;
/// let mut config = Level3Config::new("10042", "s3cr3t", "12345", "BBBN56789");
/// config
///     .network_identifiers
///     .insert("www.example.com".into(), "cdn.exampleni.com".into());
/// assert_eq!(config.endpoint, "https://ws.lumen.com");
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level3Config {
    /// `scheme://host[:port]`, no path. Default [`DEFAULT_ENDPOINT`].
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The numeric API key ID (public).
    pub key_id: String,
    /// The API key's secret (signs every request; never shown).
    pub secret: Secret,
    /// The numeric access group ID.
    pub access_group: String,
    /// The service component ID (SCID) the network identifiers belong to.
    pub scid: String,
    /// Host → network identifier (NI). A URL whose host is not listed is purged on the NI named
    /// like its host (lower-cased). Hosts are matched case-insensitively.
    #[serde(default)]
    pub network_identifiers: BTreeMap<String, String>,
    /// Overrides the documented 10 requests per minute per key.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Lets one request carry several network identifiers at access-group scope (the Lumen
    /// document's Examples 3 and 4), when that takes fewer requests. Default `true`; `false`
    /// sends one request per network identifier.
    #[serde(default = "yes")]
    pub access_group_scope: bool,
}

fn yes() -> bool {
    true
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_owned()
}

impl Level3Config {
    /// A configuration with the default endpoint, no NI map and the documented rate limit.
    pub fn new(
        key_id: impl Into<String>,
        secret: impl Into<Secret>,
        access_group: impl Into<String>,
        scid: impl Into<String>,
    ) -> Self {
        Level3Config {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            key_id: key_id.into(),
            secret: secret.into(),
            access_group: access_group.into(),
            scid: scid.into(),
            network_identifiers: BTreeMap::new(),
            rate_limit: None,
            access_group_scope: true,
        }
    }

    /// Checks every field; the error names the first wrong one.
    pub(crate) fn validate(&self) -> Result<()> {
        purgekit_core::normalize_endpoint("endpoint", &self.endpoint)?;
        check_numeric("key_id", &self.key_id, "the API key ID")?;
        if self.secret.expose().is_empty() {
            return Err(Error::config("secret", "must not be empty"));
        }
        check_numeric("access_group", &self.access_group, "the access group ID")?;
        if !is_segment(&self.scid) {
            return Err(Error::config(
                "scid",
                format!(
                    "`{}` is not a service component ID (letters, digits, `.`, `-`, `_`)",
                    self.scid
                ),
            ));
        }
        for (host, ni) in &self.network_identifiers {
            let field = format!("network_identifiers.{host}");
            if host.is_empty() || host.contains(['/', '*']) || host.chars().any(char::is_whitespace)
            {
                return Err(Error::config(field, "the key must be a bare host name"));
            }
            if !is_segment(ni) {
                return Err(Error::config(
                    field,
                    format!("`{ni}` is not a network identifier (letters, digits, `.`, `-`, `_`)"),
                ));
            }
        }
        if let Some(rate) = &self.rate_limit {
            let zero = |b: &Option<purgekit_core::Budget>| {
                b.is_some_and(|b| b.amount == 0 || b.per.is_zero())
            };
            if zero(&rate.requests) || zero(&rate.items) {
                return Err(Error::config(
                    "rate_limit",
                    "a budget needs a positive amount and a positive window",
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Level3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Level3Config")
            .field("endpoint", &self.endpoint)
            .field("key_id", &self.key_id)
            .field("secret", &self.secret)
            .field("access_group", &self.access_group)
            .field("scid", &self.scid)
            .field("network_identifiers", &self.network_identifiers)
            .field("rate_limit", &self.rate_limit)
            .field("access_group_scope", &self.access_group_scope)
            .finish()
    }
}

/// Whether `s` can stand as one path segment unencoded (SCIDs and network identifiers).
pub(crate) fn is_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn check_numeric(field: &str, value: &str, what: &str) -> Result<()> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::config(
            field,
            format!("`{value}` is not {what}: it must be numeric"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Level3Config {
        Level3Config::new("10042", "s3cr3t", "12345", "BBBN56789")
    }

    fn field_of(config: Level3Config) -> String {
        match config.validate().unwrap_err() {
            Error::Config { field, .. } => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_validate() {
        ok().validate().unwrap();
        assert_eq!(ok().endpoint, DEFAULT_ENDPOINT);
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut c = ok();
        c.endpoint = "https://ws.lumen.com/api".into();
        assert_eq!(field_of(c), "endpoint");
        let mut c = ok();
        c.endpoint = "ws.lumen.com".into();
        assert_eq!(field_of(c), "endpoint");
        let mut c = ok();
        c.key_id = "abc".into();
        assert_eq!(field_of(c), "key_id");
        let mut c = ok();
        c.secret = Secret::new("");
        assert_eq!(field_of(c), "secret");
        let mut c = ok();
        c.access_group = "".into();
        assert_eq!(field_of(c), "access_group");
        let mut c = ok();
        c.scid = "a/b".into();
        assert_eq!(field_of(c), "scid");
        let mut c = ok();
        c.network_identifiers
            .insert("www.example.com".into(), "bad ni".into());
        assert_eq!(field_of(c), "network_identifiers.www.example.com");
        let mut c = ok();
        c.rate_limit = Some(RateLimit {
            requests: Some(purgekit_core::Budget::per_minute(0)),
            items: None,
        });
        assert_eq!(field_of(c), "rate_limit");
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", ok());
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("10042"));
    }
}
