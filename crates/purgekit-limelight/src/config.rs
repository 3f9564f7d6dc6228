//! The account configuration, and its validation into what the codec signs with.

use std::collections::BTreeMap;
use std::fmt;

use purgekit_core::{Error, RateLimit, Result, Secret};
use serde::Deserialize;

/// The `kind` a config table names to use this provider: `kind = "limelight"`.
pub const KIND: &str = "limelight";

/// The table `purgekit config init` writes for this provider: every key it needs, with
/// placeholder values to replace, secrets read from the environment (`${PURGEKIT_LIMELIGHT_*}`), the
/// endpoint and rate limits left to their defaults.
pub const TEMPLATE: &str = r#"kind = "limelight"
shortname = "example"
username = "exampleuser"
shared_key = "${PURGEKIT_LIMELIGHT_SHARED_KEY}"
"#;

/// The documented API host.
pub const DEFAULT_ENDPOINT: &str = "https://apis.llnw.com";

/// One SmartPurge account (shortname) and the user that signs for it: the
/// `[providers.<name>]` table of `kind = "limelight"` deserializes into it (unknown keys are
/// refused).
///
/// ```
/// use purgekit_limelight::{Limelight, LimelightConfig};
/// let mut config = LimelightConfig::new("example", "exampleuser", "00112233445566778899aabbccddeeff");
/// config.origins.insert("cdn.example.com".into(), "origin.example.com".into());
/// let provider = Limelight::new(config).unwrap();
/// # let _ = provider;
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimelightConfig {
    /// `scheme://host[:port]` of the API; [`DEFAULT_ENDPOINT`] unless testing.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The CDN account shortname requests are made for.
    pub shortname: String,
    /// The user (`X-LLNW-Security-Principal`) whose shared key signs.
    pub username: String,
    /// The user's shared key, hex-encoded as the Control shows it.
    pub shared_key: Secret,
    /// Public host → origin host (or `scheme://origin-host`), applied to wildcard patterns.
    ///
    /// SmartPurge matches a pattern with `exact: false` against the ORIGIN URL, not the
    /// published one, so `https://cdn.example.com/img/*` matches nothing unless it is rewritten
    /// to the origin it is fetched from. Exact URLs are matched against the published URL and are
    /// never rewritten.
    #[serde(default)]
    pub origins: BTreeMap<String, String>,
    /// Overrides the documented 60 items per minute (a contract may grant more).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_owned()
}

impl LimelightConfig {
    /// A configuration for `shortname`, signed by `username` with the hex `shared_key`, on the
    /// documented endpoint, with no origin mapping and the documented rate limit.
    pub fn new(
        shortname: impl Into<String>,
        username: impl Into<String>,
        shared_key: impl Into<Secret>,
    ) -> Self {
        LimelightConfig {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            shortname: shortname.into(),
            username: username.into(),
            shared_key: shared_key.into(),
            origins: BTreeMap::new(),
            rate_limit: None,
        }
    }

    /// The same configuration on another endpoint (an emulator, a proxy).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }
}

impl fmt::Debug for LimelightConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimelightConfig")
            .field("endpoint", &self.endpoint)
            .field("shortname", &self.shortname)
            .field("username", &self.username)
            .field("shared_key", &self.shared_key)
            .field("origins", &self.origins)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// A checked configuration: the key decoded, the endpoint normalised.
#[derive(Clone)]
pub(crate) struct Account {
    /// `scheme://host[:non-default port]`, lower-cased host, as signed.
    pub endpoint: String,
    pub shortname: String,
    pub username: String,
    /// The hex-decoded shared key.
    pub key: Vec<u8>,
    /// Lower-cased public host → (origin scheme, if given; origin host).
    pub origins: BTreeMap<String, (Option<String>, String)>,
    pub rate_limit: Option<RateLimit>,
}

impl Account {
    pub fn new(config: LimelightConfig) -> Result<Self> {
        let endpoint = purgekit_core::normalize_endpoint("endpoint", &config.endpoint)?;
        let shortname = config.shortname.trim();
        if shortname.is_empty()
            || !shortname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(Error::config(
                "shortname",
                format!(
                    "`{}` is not a SmartPurge shortname (letters, digits, `-`, `_`, `.`)",
                    config.shortname.escape_default()
                ),
            ));
        }
        let username = config.username.trim();
        if username.is_empty() || username.chars().any(char::is_control) {
            return Err(Error::config(
                "username",
                "must be a non-empty user name without control characters",
            ));
        }
        let key = decode_key(config.shared_key.expose())?;
        let mut origins = BTreeMap::new();
        for (public, origin) in &config.origins {
            let field = || format!("origins.{public}");
            if public.is_empty() || public.contains(['/', ':', '@', ' ', '?', '#']) {
                return Err(Error::config(
                    field(),
                    "the key must be a bare public host name (no scheme, port or path)",
                ));
            }
            let (scheme, host) = match origin.split_once("://") {
                Some((scheme, host)) if matches!(scheme, "http" | "https") => {
                    (Some(scheme.to_owned()), host)
                }
                Some(_) => {
                    return Err(Error::config(
                        field(),
                        "the origin scheme must be http or https",
                    ));
                }
                None => (None, origin.as_str()),
            };
            if host.is_empty()
                || host.contains(['/', '@', '?', '#', '*'])
                || host.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(Error::config(
                    field(),
                    format!(
                        "`{origin}` must be an origin host (optionally `scheme://host[:port]`)"
                    ),
                ));
            }
            origins.insert(public.to_ascii_lowercase(), (scheme, host.to_owned()));
        }
        Ok(Account {
            endpoint,
            shortname: shortname.to_owned(),
            username: username.to_owned(),
            key,
            origins,
            rate_limit: config.rate_limit,
        })
    }

    /// `{endpoint}/purge/v1/account/{shortname}`.
    pub fn account_url(&self) -> String {
        format!("{}/purge/v1/account/{}", self.endpoint, self.shortname)
    }
}

/// Hex-decodes the shared key; any other text is a configuration error that names the field
/// and never echoes the key.
fn decode_key(hex_key: &str) -> Result<Vec<u8>> {
    let hex_key = hex_key.trim();
    if hex_key.is_empty() {
        return Err(Error::config("shared_key", "must not be empty"));
    }
    // Name the first non-hex character before the length, the more useful of the two.
    let why = match hex_key.chars().position(|c| !c.is_ascii_hexdigit()) {
        Some(index) => format!("a non-hex character at position {index}"),
        None if hex_key.len() % 2 == 1 => "an odd number of hex digits".to_owned(),
        None => return Ok(hex::decode(hex_key).expect("even-length hex decodes")),
    };
    Err(Error::config(
        "shared_key",
        format!("must be the hex key shown in the Control (it has {why})"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: Error) -> String {
        match e {
            Error::Config { field, .. } => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn non_hex_key_is_a_config_error_naming_the_field_without_the_key() {
        let config = LimelightConfig::new("example", "user", "not-hex-at-all-secret");
        let err = Account::new(config).err().unwrap();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(err.to_string().contains("position 0"), "{err}");
        assert_eq!(field_of(err), "shared_key");
        let odd = Account::new(LimelightConfig::new("example", "user", "abc"))
            .err()
            .unwrap();
        assert!(odd.to_string().contains("odd number"), "{odd}");
        let empty = Account::new(LimelightConfig::new("example", "user", ""))
            .err()
            .unwrap();
        assert_eq!(field_of(empty), "shared_key");
    }

    #[test]
    fn endpoint_is_normalised_as_signed() {
        let n = |e: &str| purgekit_core::normalize_endpoint("endpoint", e);
        assert_eq!(n("https://APIs.llnw.com").unwrap(), "https://apis.llnw.com");
        assert_eq!(
            n("https://apis.llnw.com:443/").unwrap(),
            "https://apis.llnw.com"
        );
        assert_eq!(n("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        for bad in [
            "ftp://x.example",
            "https://x.example/purge",
            "https://u:p@x.example",
            "x",
        ] {
            assert_eq!(field_of(n(bad).unwrap_err()), "endpoint", "{bad}");
        }
    }

    #[test]
    fn shortname_username_and_origins_are_checked() {
        let key = "00ff";
        let e = Account::new(LimelightConfig::new("a/b", "u", key))
            .err()
            .unwrap();
        assert_eq!(field_of(e), "shortname");
        let e = Account::new(LimelightConfig::new("a", " ", key))
            .err()
            .unwrap();
        assert_eq!(field_of(e), "username");
        let mut c = LimelightConfig::new("a", "u", key);
        c.origins
            .insert("cdn.example.com".into(), "ftp://o.example".into());
        assert_eq!(
            field_of(Account::new(c).err().unwrap()),
            "origins.cdn.example.com"
        );
        let mut c = LimelightConfig::new("a", "u", key);
        c.origins
            .insert("https://cdn.example.com".into(), "o.example".into());
        assert!(field_of(Account::new(c).err().unwrap()).starts_with("origins."));
    }

    #[test]
    fn debug_hides_the_key() {
        let c = LimelightConfig::new("a", "u", "deadbeefcafe");
        assert!(!format!("{c:?}").contains("deadbeefcafe"));
    }
}
