//! The zone's configuration, its plan's limits, and their validation.

use std::time::Duration;

use purgekit_core::{BucketConfig, Budget, Error, RateLimit, Result, Secret};
use serde::Deserialize;

/// The `kind` a config table names to use this provider: `kind = "cloudflare"`.
pub const KIND: &str = "cloudflare";

/// The table `purgekit config init` writes for this provider: every key it needs, with
/// placeholder values to replace, the token read from the environment
/// (`${PURGEKIT_CLOUDFLARE_API_TOKEN}`), the endpoint and rate limits left to their defaults.
pub const TEMPLATE: &str = r#"kind = "cloudflare"
zone_id = "023e105f4ecef8ad9ca31a8372d0c353"
api_token = "${PURGEKIT_CLOUDFLARE_API_TOKEN}"
plan = "free"    # free, pro, business or enterprise: the zone's caps and rate limits
"#;

/// Cloudflare's API endpoint (the `/client/v4` base path is added to it).
pub const DEFAULT_ENDPOINT: &str = "https://api.cloudflare.com";

/// The environment variable read when the table has no `api_token`.
pub const ENV_API_TOKEN: &str = "CLOUDFLARE_API_TOKEN";

/// Cloudflare's global API limit: 1,200 requests per five minutes per user or token.
pub const GLOBAL_LIMIT: Budget = Budget::new(1200, Duration::from_secs(300));

/// Requests in flight at once per zone by default: one, so Cloudflare sees requests in the
/// order they were paced. Token buckets are order-sensitive: a request paced earlier but
/// arriving later, while the bucket is full, finds fewer tokens than the client counted (the
/// refill it waited for was lost at the bucket's cap), and is refused.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1;

/// The zone's plan: it selects the per-request and rate limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// Free (the default: the most conservative limits).
    #[default]
    Free,
    /// Pro.
    Pro,
    /// Business.
    Business,
    /// Enterprise.
    Enterprise,
}

/// One plan's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanLimits {
    /// URLs per `files` request.
    pub files_per_request: usize,
    /// Tags, hosts or prefixes per request.
    pub items_per_request: usize,
    /// The request bucket tag, host, prefix and everything purges share: (burst, refill).
    pub purge_bucket: (u32, Budget),
    /// The URL bucket of `files` purges: (burst, refill).
    pub files_bucket: (u32, Budget),
}

impl Plan {
    /// The plan's limits. Cloudflare's documentation has changed several times and its
    /// versions disagree: per request, the older pages allow 30 URLs, tags, hosts or prefixes
    /// (Enterprise: 500 URLs), the current ones 100 (Enterprise: 500 URLs), so the smaller
    /// figure is taken. The request bucket of tag/host/prefix/everything purges is the current
    /// one (Free 5 a minute, burst 25; Pro 5 a second, burst 25; Business 10 a second, burst
    /// 50; Enterprise 50 a second, burst 500). Single-file purges have a URL rate (Free: 1,000
    /// a minute in the older pages, 800 a second in the current ones, so the former; Pro and
    /// Business 1,500 a second; Enterprise 3,000), not a published bucket size: the burst is
    /// the rate's own figure (1,000 URLs for 1,000 a minute), what the rate allows in its
    /// period.
    pub fn limits(self) -> PlanLimits {
        let second = |n: u32| Budget::new(n, Duration::from_secs(1));
        let (files_per_request, purge_bucket, files_rate) = match self {
            Plan::Free => (30, (25, Budget::per_minute(5)), Budget::per_minute(1000)),
            Plan::Pro => (30, (25, second(5)), second(1500)),
            Plan::Business => (30, (50, second(10)), second(1500)),
            Plan::Enterprise => (500, (500, second(50)), second(3000)),
        };
        PlanLimits {
            files_per_request,
            items_per_request: 30,
            purge_bucket,
            files_bucket: (files_rate.amount, files_rate),
        }
    }
}

/// One Cloudflare zone and the API token that purges it: the `[providers.<name>]` table of
/// `kind = "cloudflare"` deserializes into it (unknown keys are refused).
///
/// ```
/// use purgekit_cloudflare::{Cloudflare, CloudflareConfig, Plan};
/// let mut config = CloudflareConfig::new("023e105f4ecef8ad9ca31a8372d0c353");
/// config.api_token = Some("my-token".into());
/// config.plan = Plan::Business;
/// let provider = Cloudflare::new(config).unwrap();
/// # let _ = provider;
/// ```
/// `Debug` shows the token as `<redacted>` ([`Secret`]).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudflareConfig {
    /// `scheme://host[:port]` of the API; [`DEFAULT_ENDPOINT`] unless testing.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The zone (32 hexadecimal digits, not the domain name).
    pub zone_id: String,
    /// The API token (with the zone's Cache Purge permission).
    #[serde(default)]
    pub api_token: Option<Secret>,
    /// The zone's plan (`free` by default).
    #[serde(default)]
    pub plan: Plan,
    /// URLs per request instead of the plan's.
    #[serde(default)]
    pub max_files_per_request: Option<usize>,
    /// Tags, hosts or prefixes per request instead of the plan's.
    #[serde(default)]
    pub max_items_per_request: Option<usize>,
    /// The request bucket of tag, host, prefix and everything purges instead of the plan's.
    #[serde(default)]
    pub purge_bucket: Option<BucketConfig>,
    /// The URL bucket of single-file purges instead of the plan's.
    #[serde(default)]
    pub files_bucket: Option<BucketConfig>,
    /// The global API limit instead of 1,200 requests per 5 minutes.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Most requests in flight at once ([`DEFAULT_MAX_IN_FLIGHT`] by default).
    #[serde(default)]
    pub max_in_flight: Option<usize>,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_owned()
}

impl CloudflareConfig {
    /// A Free-plan zone on Cloudflare's endpoint, the token from the environment unless set.
    pub fn new(zone_id: impl Into<String>) -> Self {
        CloudflareConfig {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            zone_id: zone_id.into(),
            api_token: None,
            plan: Plan::Free,
            max_files_per_request: None,
            max_items_per_request: None,
            purge_bucket: None,
            files_bucket: None,
            rate_limit: None,
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
    pub endpoint: String,
    pub zone_id: String,
    pub token: Secret,
    pub files_per_request: usize,
    pub items_per_request: usize,
    pub purge_bucket: (u32, Budget),
    pub files_bucket: (u32, Budget),
    pub rate: RateLimit,
    pub max_in_flight: usize,
}

impl Account {
    /// Checks `config`; a token absent from it is read through `env`.
    pub fn new(config: CloudflareConfig, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let endpoint = purgekit_core::normalize_endpoint("endpoint", &config.endpoint)?;
        let zone = config.zone_id.trim();
        if zone.len() != 32 || !zone.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::config(
                "zone_id",
                format!(
                    "`{}` is not a Cloudflare zone id (32 hexadecimal digits, e.g. \
                     023e105f4ecef8ad9ca31a8372d0c353; not the domain name)",
                    config.zone_id.escape_default()
                ),
            ));
        }
        let token = purgekit_core::token_or_env(
            "api_token",
            config.api_token,
            ENV_API_TOKEN,
            "Cloudflare",
            env,
        )?;
        let plan = config.plan.limits();
        let positive = |key: &str, n: Option<usize>, default: usize| match n {
            Some(0) => Err(Error::config(key, "must be at least 1")),
            n => Ok(n.unwrap_or(default)),
        };
        let files_per_request = positive(
            "max_files_per_request",
            config.max_files_per_request,
            plan.files_per_request,
        )?;
        let items_per_request = positive(
            "max_items_per_request",
            config.max_items_per_request,
            plan.items_per_request,
        )?;
        let max_in_flight = positive("max_in_flight", config.max_in_flight, DEFAULT_MAX_IN_FLIGHT)?;
        let bucket = |key: &str, given: Option<BucketConfig>, (burst, refill): (u32, Budget)| {
            let mut b = purgekit_core::TokenBucket {
                unit: purgekit_core::BucketUnit::Requests,
                scopes: vec![],
                burst,
                refill,
            };
            if let Some(given) = given {
                given.apply(key, &mut b)?;
            }
            Ok::<_, Error>((b.burst, b.refill))
        };
        let purge_bucket = bucket("purge_bucket", config.purge_bucket, plan.purge_bucket)?;
        let files_bucket = bucket("files_bucket", config.files_bucket, plan.files_bucket)?;
        if (files_bucket.0 as usize) < files_per_request {
            return Err(Error::config(
                "files_bucket.burst",
                format!(
                    "{} URL tokens can never admit a request of {files_per_request} URLs \
                     (max_files_per_request)",
                    files_bucket.0
                ),
            ));
        }
        Ok(Account {
            endpoint,
            zone_id: zone.to_ascii_lowercase(),
            token,
            files_per_request,
            items_per_request,
            purge_bucket,
            files_bucket,
            rate: config.rate_limit.unwrap_or(RateLimit {
                requests: Some(GLOBAL_LIMIT),
                items: None,
            }),
            max_in_flight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";

    #[test]
    fn the_token_comes_from_the_table_else_the_environment() {
        let env = |k: &str| (k == ENV_API_TOKEN).then(|| "env-token".to_owned());
        assert_eq!(
            Account::new(CloudflareConfig::new(ZONE), env)
                .unwrap()
                .token
                .expose(),
            "env-token"
        );
        let error = Account::new(CloudflareConfig::new(ZONE), |_| None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("api_token") && error.contains(ENV_API_TOKEN),
            "{error}"
        );
    }

    #[test]
    fn plans_select_the_conservative_limits_and_config_overrides_them() {
        let mut c = CloudflareConfig::new(ZONE);
        c.api_token = Some("t".into());
        let free = Account::new(c.clone(), |_| None).unwrap();
        assert_eq!((free.files_per_request, free.items_per_request), (30, 30));
        assert_eq!(free.purge_bucket, (25, Budget::per_minute(5)));
        assert_eq!(free.files_bucket, (1000, Budget::per_minute(1000)));
        c.plan = Plan::Enterprise;
        let ent = Account::new(c.clone(), |_| None).unwrap();
        assert_eq!((ent.files_per_request, ent.items_per_request), (500, 30));
        assert_eq!(ent.files_bucket.0, 3000);
        c.max_items_per_request = Some(100);
        c.purge_bucket = Some(BucketConfig {
            burst: 10,
            refill: 1,
            per: Duration::from_secs(1),
        });
        let custom = Account::new(c.clone(), |_| None).unwrap();
        assert_eq!(custom.items_per_request, 100);
        assert_eq!(
            custom.purge_bucket,
            (10, Budget::new(1, Duration::from_secs(1)))
        );
        c.max_files_per_request = Some(0);
        let e = Account::new(c, |_| None).err().unwrap().to_string();
        assert!(e.contains("max_files_per_request"), "{e}");
    }

    #[test]
    fn config_errors_and_debug_show_no_secret() {
        let mut c = CloudflareConfig::new("example.com");
        c.api_token = Some("hunter2-token".into());
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = Account::new(c, |_| None).err().unwrap().to_string();
        assert!(e.contains("zone_id") && !e.contains("hunter2"), "{e}");
    }
}
