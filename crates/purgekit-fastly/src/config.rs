//! The service's configuration, and its validation into what the codec sends with.

use purgekit_core::{Budget, Error, RateLimit, Result, Secret};
use serde::Deserialize;

/// The `kind` a config table names to use this provider: `kind = "fastly"`.
pub const KIND: &str = "fastly";

/// The table `purgekit config init` writes for this provider: every key it needs, with
/// placeholder values to replace, the token read from the environment
/// (`${PURGEKIT_FASTLY_API_TOKEN}`), the endpoint and rate limits left to their defaults.
pub const TEMPLATE: &str = r#"kind = "fastly"
service_id = "SU1Z0isxPaozGVKXdv0eY"
api_token = "${PURGEKIT_FASTLY_API_TOKEN}"
"#;

/// Fastly's API endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://api.fastly.com";

/// The environment variable read when the table has no `api_token`, as Fastly's CLI reads it.
pub const ENV_API_TOKEN: &str = "FASTLY_API_TOKEN";

/// Fastly's limit on non-read API requests: 1,000 an hour per user. Purge-all counts against
/// it; URL and surrogate-key purges do not.
pub const WRITE_LIMIT: Budget = Budget::new(1000, std::time::Duration::from_secs(3600));

/// Requests in flight at once per account by default: Fastly documents no concurrency limit
/// for purges; sixteen keeps a single-URL-per-request workload moving without flooding.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

/// One Fastly service and the API token that purges it: the `[providers.<name>]` table of
/// `kind = "fastly"` deserializes into it (unknown keys are refused).
///
/// The token comes from `api_token` when the table has it, else from `FASTLY_API_TOKEN`.
///
/// ```
/// use purgekit_fastly::{Fastly, FastlyConfig};
/// let mut config = FastlyConfig::new("SU1Z0isxPaozGVKXdv0eY");
/// config.api_token = Some("my-token".into());
/// let provider = Fastly::new(config).unwrap();
/// # let _ = provider;
/// ```
/// `Debug` shows the token as `<redacted>` ([`Secret`]).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FastlyConfig {
    /// `scheme://host[:port]` of the API; [`DEFAULT_ENDPOINT`] unless testing.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The service whose cache is purged (`SU1Z0isxPaozGVKXdv0eY`).
    pub service_id: String,
    /// The API token (`purge_select` scope for URLs and keys, `purge_all` for everything).
    #[serde(default)]
    pub api_token: Option<Secret>,
    /// A cap on URL and surrogate-key purges (Fastly publishes none; they are exempt from the
    /// hourly API limit). None by default.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// The hourly limit purge-all counts against (`{ requests = 1000, per = "1h" }` by
    /// default, [`WRITE_LIMIT`]): another figure for an account with another allowance.
    #[serde(default)]
    pub write_limit: Option<RateLimit>,
    /// Most requests in flight at once ([`DEFAULT_MAX_IN_FLIGHT`] by default).
    #[serde(default)]
    pub max_in_flight: Option<usize>,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_owned()
}

impl FastlyConfig {
    /// A configuration for `service_id` on Fastly's endpoint, the token from the environment
    /// unless set.
    pub fn new(service_id: impl Into<String>) -> Self {
        FastlyConfig {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            service_id: service_id.into(),
            api_token: None,
            rate_limit: None,
            write_limit: None,
            max_in_flight: None,
        }
    }

    /// The same configuration on another endpoint (an emulator, a proxy).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }
}

/// A checked configuration.
#[derive(Clone)]
pub(crate) struct Account {
    /// `scheme://host[:non-default port]`.
    pub endpoint: String,
    pub service_id: String,
    pub token: Secret,
    pub rate: RateLimit,
    pub writes: Budget,
    pub max_in_flight: usize,
}

impl Account {
    /// Checks `config`; a token absent from it is read through `env`.
    pub fn new(config: FastlyConfig, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let endpoint = purgekit_core::normalize_endpoint("endpoint", &config.endpoint)?;
        let id = config.service_id.trim();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::config(
                "service_id",
                format!(
                    "`{}` is not a Fastly service id (letters and digits, e.g. \
                     SU1Z0isxPaozGVKXdv0eY)",
                    config.service_id.escape_default()
                ),
            ));
        }
        let token = purgekit_core::token_or_env(
            "api_token",
            config.api_token,
            ENV_API_TOKEN,
            "Fastly",
            env,
        )?;
        let writes = match config.write_limit {
            None => WRITE_LIMIT,
            Some(RateLimit {
                requests: Some(budget),
                items: None,
            }) => budget,
            Some(_) => {
                return Err(Error::config(
                    "write_limit",
                    "counts requests only: `{ requests = 1000, per = \"1h\" }`",
                ));
            }
        };
        let max_in_flight = config.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        if max_in_flight == 0 {
            return Err(Error::config("max_in_flight", "must be at least 1"));
        }
        Ok(Account {
            endpoint,
            service_id: id.to_owned(),
            token,
            rate: config.rate_limit.unwrap_or_default(),
            writes,
            max_in_flight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_table_else_the_environment() {
        let env = |k: &str| (k == ENV_API_TOKEN).then(|| "env-token".to_owned());
        let a = Account::new(FastlyConfig::new("SVC1"), env).unwrap();
        assert_eq!(a.token.expose(), "env-token");
        let mut c = FastlyConfig::new("SVC1");
        c.api_token = Some("table-token".into());
        assert_eq!(Account::new(c, env).unwrap().token.expose(), "table-token");
        let error = Account::new(FastlyConfig::new("SVC1"), |_| None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("api_token") && error.contains(ENV_API_TOKEN),
            "{error}"
        );
    }

    #[test]
    fn config_errors_and_debug_show_no_secret() {
        let mut c = FastlyConfig::new("bad id");
        c.api_token = Some("hunter2-token".into());
        assert!(!format!("{c:?}").contains("hunter2"));
        let error = Account::new(c.clone(), |_| None).err().unwrap().to_string();
        assert!(
            error.contains("service_id") && !error.contains("hunter2"),
            "{error}"
        );
        c.service_id = "SVC1".into();
        c.api_token = Some("hunter2 token".into());
        let error = Account::new(c, |_| None).err().unwrap().to_string();
        assert!(
            error.contains("api_token") && !error.contains("hunter2"),
            "{error}"
        );
    }

    #[test]
    fn the_write_limit_counts_requests() {
        let mut c = FastlyConfig::new("SVC1");
        c.api_token = Some("t".into());
        assert_eq!(
            Account::new(c.clone(), |_| None).unwrap().writes,
            WRITE_LIMIT
        );
        c.write_limit = Some(RateLimit {
            requests: None,
            items: Some(Budget::per_minute(5)),
        });
        let error = Account::new(c, |_| None).err().unwrap().to_string();
        assert!(error.contains("write_limit"), "{error}");
    }
}
