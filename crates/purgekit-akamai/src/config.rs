//! The account configuration (the `[providers.NAME]` table with `kind = "akamai"`), the
//! `.edgerc` file it may point to, and their validation into what the codec signs with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use purgekit_core::{Budget, Error, Result, Secret, TokenBucket};
use serde::{Deserialize, Deserializer};

use crate::sign::DEFAULT_MAX_BODY;
use crate::wire::Network;

/// The `kind` a config table names to use this provider: `kind = "akamai"`.
pub const KIND: &str = "akamai";

/// The table `purgekit config init` writes for this provider: every key it needs, with
/// placeholder values to replace, secrets read from the environment (`${PURGEKIT_AKAMAI_*}`), the
/// endpoint and rate limits left to their defaults.
pub const TEMPLATE: &str = r#"kind = "akamai"
host = "akab-xxxxxxxxxxxxxxxx-xxxxxxxxxxxxxxxx.purge.akamaiapis.net"
client_token = "${PURGEKIT_AKAMAI_CLIENT_TOKEN}"
client_secret = "${PURGEKIT_AKAMAI_CLIENT_SECRET}"
access_token = "${PURGEKIT_AKAMAI_ACCESS_TOKEN}"
# cpcodes = [12345]    # what `everything` purges
"#;

/// The section of `.edgerc` read when none is named.
pub const DEFAULT_SECTION: &str = "default";

/// Most CP codes one request may carry: the CP code bucket holds 300 tokens, so a request with
/// more could never be accepted.
pub const MAX_CPCODES: usize = 300;

/// One Fast Purge API client: credentials given directly, or read from an `.edgerc` section
/// (keys given here override the file's).
///
/// ```
/// let config: purgekit_akamai::AkamaiConfig = toml::from_str(r#"
///     host = "akab-xxxxxxxxxxxxxxxx-xxxxxxxxxxxxxxxx.purge.akamaiapis.net"
///     client_token = "akab-client"
///     client_secret = "c2VjcmV0"
///     access_token = "akab-access"
///     network = "staging"
///     cpcodes = [12345]
/// "#).unwrap();
/// let provider = purgekit_akamai::Akamai::new(config).unwrap();
/// # let _ = provider;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AkamaiConfig {
    /// The API client's host name (`akab-….purge.akamaiapis.net`), without scheme.
    #[serde(default)]
    pub host: Option<String>,
    /// `client_token`.
    #[serde(default)]
    pub client_token: Option<String>,
    /// `client_secret`, as written in `.edgerc` (never Base64-decoded).
    #[serde(default, deserialize_with = "secret")]
    pub client_secret: Option<Secret>,
    /// `access_token`.
    #[serde(default)]
    pub access_token: Option<String>,
    /// `production` (default) or `staging`.
    #[serde(default)]
    pub network: Network,
    /// The CP codes an `everything` target purges.
    #[serde(default)]
    pub cpcodes: Vec<u32>,
    /// An `.edgerc` file to read `host`, the tokens, the secret and `max-body` from
    /// (`~/` is the home directory).
    #[serde(default)]
    pub edgerc: Option<PathBuf>,
    /// The `.edgerc` section ([`DEFAULT_SECTION`] when not given).
    #[serde(default)]
    pub section: Option<String>,
    /// Most body bytes hashed in the signature (`max_body`, [`DEFAULT_MAX_BODY`] by default).
    #[serde(default)]
    pub max_body: Option<usize>,
    /// `scheme://host[:port]` to send to instead of `https://{host}` (an emulator, a proxy).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Token buckets other than Akamai's documented ones (a contract with other limits, an
    /// emulator running faster); a bucket not named keeps the documented figures.
    #[serde(default)]
    pub buckets: BucketsConfig,
}

/// `buckets = { url = { burst = 10000, refill = 200, per = "1s" }, … }`: the account's token
/// buckets by name (`requests`, `url`, `tag`, `cpcode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketsConfig {
    /// The request bucket (documented: 100, refilled 50 a second).
    #[serde(default)]
    pub requests: Option<BucketConfig>,
    /// The URL/ARL bucket (documented: 10,000, refilled 200 a second).
    #[serde(default)]
    pub url: Option<BucketConfig>,
    /// The cache tag bucket (documented: 5,000, refilled 500 a minute).
    #[serde(default)]
    pub tag: Option<BucketConfig>,
    /// The CP code bucket (documented: 300, refilled 30 a minute).
    #[serde(default)]
    pub cpcode: Option<BucketConfig>,
}

/// One token bucket: it holds `burst` tokens and regains `refill` every `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    /// The most tokens it holds.
    pub burst: u32,
    /// Tokens regained every `per`.
    pub refill: u32,
    /// The refill period (`"1s"`, `"1m"`, `"250ms"`).
    #[serde(with = "purgekit_core::duration")]
    pub per: Duration,
}

impl BucketsConfig {
    /// `defaults` (in the order requests, url, tag, cpcode) with the named buckets replaced;
    /// a bucket with a zero figure is a config error naming it (`buckets.url.refill`).
    pub(crate) fn apply(&self, mut defaults: Vec<TokenBucket>) -> Result<Vec<TokenBucket>> {
        let named = [
            ("requests", self.requests),
            ("url", self.url),
            ("tag", self.tag),
            ("cpcode", self.cpcode),
        ];
        for (bucket, (name, given)) in defaults.iter_mut().zip(named) {
            let Some(given) = given else { continue };
            for (key, zero) in [
                ("burst", given.burst == 0),
                ("refill", given.refill == 0),
                ("per", given.per.is_zero()),
            ] {
                if zero {
                    return Err(Error::config(
                        format!("buckets.{name}.{key}"),
                        "must be more than zero",
                    ));
                }
            }
            bucket.burst = given.burst;
            bucket.refill = Budget::new(given.refill, given.per);
        }
        Ok(defaults)
    }
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

impl AkamaiConfig {
    /// Credentials given directly, for `host`.
    pub fn new(
        host: impl Into<String>,
        client_token: impl Into<String>,
        client_secret: impl Into<Secret>,
        access_token: impl Into<String>,
    ) -> Self {
        AkamaiConfig {
            host: Some(host.into()),
            client_token: Some(client_token.into()),
            client_secret: Some(client_secret.into()),
            access_token: Some(access_token.into()),
            ..AkamaiConfig::default()
        }
    }

    /// The same configuration sending to `endpoint` (an emulator, a proxy).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }
}

/// A checked configuration.
#[derive(Clone)]
pub(crate) struct Account {
    /// `scheme://host[:port]` requests go to.
    pub endpoint: String,
    /// The signed scheme and `Host` (from the endpoint).
    pub scheme: String,
    pub host: String,
    pub client_token: String,
    pub client_secret: Secret,
    pub access_token: String,
    pub max_body: usize,
    pub network: Network,
    pub cpcodes: Vec<u32>,
}

impl Account {
    pub fn new(config: AkamaiConfig) -> Result<Self> {
        let file = match (&config.edgerc, &config.section) {
            (None, None) => BTreeMap::new(),
            (path, section) => {
                let path = path.clone().unwrap_or_else(|| PathBuf::from("~/.edgerc"));
                let section = section.as_deref().unwrap_or(DEFAULT_SECTION);
                read_edgerc(&path, section)?
            }
        };
        let pick = |key: &str, given: &Option<String>| -> Option<String> {
            given
                .clone()
                .or_else(|| file.get(key).cloned())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |key: &str, given: &Option<String>| {
            pick(key, given).ok_or_else(|| {
                Error::config(
                    key,
                    "missing: set it in the table or in the `.edgerc` section named by `edgerc`/`section`",
                )
            })
        };
        let client_token = required("client_token", &config.client_token)?;
        let access_token = required("access_token", &config.access_token)?;
        let secret_text = config.client_secret.as_ref().map(|s| s.expose().to_owned());
        let client_secret = Secret::new(required("client_secret", &secret_text)?);
        for (key, value) in [
            ("client_token", &client_token),
            ("access_token", &access_token),
        ] {
            if value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ';')
            {
                return Err(Error::config(
                    key,
                    "must not contain white space, control characters or `;`",
                ));
            }
        }
        let max_body = match (config.max_body, file.get("max_body")) {
            (Some(n), _) => n,
            (None, Some(text)) => text.trim().parse().map_err(|_| {
                Error::config(
                    "max_body",
                    format!("`{text}` in the .edgerc file is not a byte count"),
                )
            })?,
            (None, None) => DEFAULT_MAX_BODY,
        };
        if max_body == 0 {
            return Err(Error::config("max_body", "must be at least 1"));
        }
        let endpoint = match (&config.endpoint, pick("host", &config.host)) {
            (Some(endpoint), _) => purgekit_core::normalize_endpoint("endpoint", endpoint)?,
            (None, Some(host)) => {
                // Akamai's sample .edgerc writes the host with a trailing `/`.
                let host = host.trim_end_matches('/');
                if host.contains("://") || host.contains(['/', '@', '?', '#']) || host.is_empty() {
                    return Err(Error::config(
                        "host",
                        format!(
                            "`{host}` must be the API client's host name alone (no scheme or path)"
                        ),
                    ));
                }
                purgekit_core::normalize_endpoint("host", &format!("https://{host}"))?
            }
            (None, None) => {
                return Err(Error::config(
                    "host",
                    "missing: set `host` (or `edgerc`), or `endpoint`",
                ));
            }
        };
        let (scheme, host) = endpoint
            .split_once("://")
            .expect("normalized endpoints have a scheme");
        if config.cpcodes.len() > MAX_CPCODES {
            return Err(Error::config(
                "cpcodes",
                format!(
                    "{} CP codes: one request carries at most {MAX_CPCODES} (the CP code rate bucket's size)",
                    config.cpcodes.len()
                ),
            ));
        }
        if config.cpcodes.contains(&0) {
            return Err(Error::config("cpcodes", "a CP code is a positive integer"));
        }
        let mut cpcodes = config.cpcodes.clone();
        cpcodes.sort_unstable();
        cpcodes.dedup();
        Ok(Account {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            endpoint: endpoint.clone(),
            client_token,
            client_secret,
            access_token,
            max_body,
            network: config.network,
            cpcodes,
        })
    }
}

/// Reads `section` of the `.edgerc` at `path` (`~/` expanded from `HOME`). A missing file or
/// section is a configuration error naming both.
pub(crate) fn read_edgerc(path: &Path, section: &str) -> Result<BTreeMap<String, String>> {
    let shown = path.display().to_string();
    let expanded = match path.strip_prefix("~") {
        Ok(rest) => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(rest),
            None => {
                return Err(Error::config(
                    "edgerc",
                    format!("`{shown}` (section `{section}`): HOME is not set to expand `~`"),
                ));
            }
        },
        Err(_) => path.to_owned(),
    };
    let text = std::fs::read_to_string(&expanded).map_err(|e| {
        Error::config(
            "edgerc",
            format!("cannot read `{shown}` for section `[{section}]`: {e}"),
        )
    })?;
    parse_edgerc(&text, section).ok_or_else(|| {
        Error::config(
            "section",
            format!("no section `[{section}]` in the .edgerc file `{shown}`"),
        )
    })
}

/// The keys of `section` in an `.edgerc` text (INI), or `None` when the section is absent.
/// Key names are lower-cased with `-` read as `_` (`max-body` = `max_body`), as Akamai's
/// Python reader does; `#` and `;` start comments, whole-line or after a value.
pub(crate) fn parse_edgerc(text: &str, section: &str) -> Option<BTreeMap<String, String>> {
    let mut current: Option<&str> = None;
    let mut found = false;
    let mut keys = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim());
            found |= name.trim() == section;
            continue;
        }
        if current != Some(section) {
            continue;
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            continue;
        };
        let value = strip_inline_comment(value);
        keys.insert(
            key.trim().to_ascii_lowercase().replace('-', "_"),
            value.trim().to_owned(),
        );
    }
    found.then_some(keys)
}

/// `value` up to an inline comment: a `#` or `;` preceded by white space.
fn strip_inline_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    for i in 1..bytes.len() {
        if matches!(bytes[i], b'#' | b';') && bytes[i - 1].is_ascii_whitespace() {
            return &value[..i];
        }
    }
    value
}

#[cfg(test)]
mod tests;
