//! The distribution's configuration, and its validation into what the codec signs with.

use std::fmt;

use purgekit_core::{Error, Result, Secret};
use serde::Deserialize;

use crate::sign::Credentials;

/// The `kind` a config table names to use this provider: `kind = "cloudfront"`.
pub const KIND: &str = "cloudfront";

/// The table `purgekit config init` writes for this provider: every key it needs, with
/// placeholder values to replace, secrets read from the environment (`${PURGEKIT_CLOUDFRONT_*}`), the
/// endpoint and rate limits left to their defaults.
pub const TEMPLATE: &str = r#"kind = "cloudfront"
distribution_id = "EDFDVBD6EXAMPLE"
hosts = ["www.example.com"]    # the names the distribution serves
access_key_id = "${PURGEKIT_CLOUDFRONT_ACCESS_KEY_ID}"
secret_access_key = "${PURGEKIT_CLOUDFRONT_SECRET_ACCESS_KEY}"
"#;

/// The global CloudFront API endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://cloudfront.amazonaws.com";

/// The environment variables read when the table holds no keys, as every AWS tool reads them.
pub const ENV_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// See [`ENV_ACCESS_KEY_ID`].
pub const ENV_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// See [`ENV_ACCESS_KEY_ID`].
pub const ENV_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";

/// One CloudFront distribution and the keys that sign for it: the `[providers.<name>]` table of
/// `kind = "cloudfront"` deserializes into it (unknown keys are refused).
///
/// Credentials come from `access_key_id` + `secret_access_key` (+ `session_token`) when the
/// table has them, else from `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+
/// `AWS_SESSION_TOKEN`) in the environment.
///
/// ```
/// use purgekit_cloudfront::{CloudFront, CloudFrontConfig};
/// let mut config = CloudFrontConfig::new("EDFDVBD6EXAMPLE", ["www.example.com"]);
/// config.access_key_id = Some("AKIDEXAMPLE".into());
/// config.secret_access_key = Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into());
/// let provider = CloudFront::new(config).unwrap();
/// # let _ = provider;
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudFrontConfig {
    /// `scheme://host[:port]` of the API; [`DEFAULT_ENDPOINT`] unless testing.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// The distribution whose cache is invalidated (`EDFDVBD6EXAMPLE`).
    pub distribution_id: String,
    /// The host names the distribution serves (its alternate domain names and its
    /// `*.cloudfront.net` name): URLs on other hosts are unsupported rows.
    pub hosts: Vec<String>,
    /// The access key id; with `secret_access_key`, or neither.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// The secret access key.
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// A session token, for temporary credentials.
    #[serde(default)]
    pub session_token: Option<Secret>,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_owned()
}

impl CloudFrontConfig {
    /// A configuration for `distribution_id` serving `hosts`, on the global endpoint, with
    /// credentials from the environment unless set.
    pub fn new<H: Into<String>>(
        distribution_id: impl Into<String>,
        hosts: impl IntoIterator<Item = H>,
    ) -> Self {
        CloudFrontConfig {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            distribution_id: distribution_id.into(),
            hosts: hosts.into_iter().map(Into::into).collect(),
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
        }
    }

    /// The same configuration on another endpoint (an emulator, a proxy).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }
}

impl fmt::Debug for CloudFrontConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudFrontConfig")
            .field("endpoint", &self.endpoint)
            .field("distribution_id", &self.distribution_id)
            .field("hosts", &self.hosts)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .finish()
    }
}

/// A checked configuration.
#[derive(Clone)]
pub(crate) struct Account {
    /// `scheme://host[:non-default port]`, as signed.
    pub endpoint: String,
    pub distribution_id: String,
    /// Lower-cased host names.
    pub hosts: Vec<String>,
    pub credentials: Credentials,
}

impl Account {
    /// Checks `config`; keys absent from it are read through `env`.
    pub fn new(config: CloudFrontConfig, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let endpoint = purgekit_core::normalize_endpoint("endpoint", &config.endpoint)?;
        let id = config.distribution_id.trim();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::config(
                "distribution_id",
                format!(
                    "`{}` is not a CloudFront distribution id (letters and digits, e.g. \
                     EDFDVBD6EXAMPLE)",
                    config.distribution_id.escape_default()
                ),
            ));
        }
        if config.hosts.is_empty() {
            return Err(Error::config(
                "hosts",
                "name at least one host the distribution serves (e.g. [\"www.example.com\", \
                 \"d111abc.cloudfront.net\"])",
            ));
        }
        let mut hosts = Vec::with_capacity(config.hosts.len());
        for host in &config.hosts {
            if host.is_empty()
                || host.contains(['/', ':', '@', '?', '#', '*'])
                || host.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(Error::config(
                    "hosts",
                    format!(
                        "`{}` must be a bare host name (no scheme, port, path or wildcard)",
                        host.escape_default()
                    ),
                ));
            }
            hosts.push(host.to_ascii_lowercase());
        }
        Ok(Account {
            endpoint,
            distribution_id: id.to_owned(),
            hosts,
            credentials: credentials(&config, env)?,
        })
    }

    /// `{endpoint}/2020-05-31/distribution/{id}/invalidation`.
    pub fn invalidations_url(&self) -> String {
        format!(
            "{}/2020-05-31/distribution/{}/invalidation",
            self.endpoint, self.distribution_id
        )
    }
}

/// The table's keys, else the environment's; both halves of a key pair from the same source.
fn credentials(
    config: &CloudFrontConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Credentials> {
    let missing = || {
        Error::config(
            "access_key_id",
            format!(
                "no AWS credentials: set `access_key_id` and `secret_access_key` in the \
                 provider table, or the {ENV_ACCESS_KEY_ID} and {ENV_SECRET_ACCESS_KEY} \
                 environment variables"
            ),
        )
    };
    let present = |s: &Option<String>| s.as_deref().is_some_and(|v| !v.trim().is_empty());
    match (&config.access_key_id, &config.secret_access_key) {
        (Some(id), Some(secret)) if !id.trim().is_empty() && !secret.expose().is_empty() => {
            Ok(Credentials {
                access_key_id: id.trim().to_owned(),
                secret_access_key: secret.clone(),
                session_token: config.session_token.clone(),
            })
        }
        (None, None) => {
            let id = env(ENV_ACCESS_KEY_ID);
            let secret = env(ENV_SECRET_ACCESS_KEY);
            if !present(&id) || !present(&secret) {
                return Err(missing());
            }
            Ok(Credentials {
                access_key_id: id.unwrap_or_default().trim().to_owned(),
                secret_access_key: Secret::new(secret.unwrap_or_default()),
                session_token: env(ENV_SESSION_TOKEN)
                    .filter(|t| !t.is_empty())
                    .map(Secret::new),
            })
        }
        (Some(_), None) | (None, Some(_)) => Err(Error::config(
            if config.access_key_id.is_none() {
                "access_key_id"
            } else {
                "secret_access_key"
            },
            "set both `access_key_id` and `secret_access_key`, or neither (then the \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables are read)",
        )),
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CloudFrontConfig {
        CloudFrontConfig::new("EDFDVBD6EXAMPLE", ["www.example.com"])
    }

    #[test]
    fn missing_credentials_name_both_the_keys_and_the_variables() {
        let error = Account::new(config(), |_| None).err().unwrap().to_string();
        for name in [
            "access_key_id",
            "secret_access_key",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(error.contains(name), "{error}");
        }
    }

    #[test]
    fn the_environment_is_read_only_without_keys_in_the_table() {
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKIDENV".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("envsecret".to_owned()),
            "AWS_SESSION_TOKEN" => Some("envtoken".to_owned()),
            _ => None,
        };
        let a = Account::new(config(), env).unwrap();
        assert_eq!(a.credentials.access_key_id, "AKIDENV");
        assert_eq!(a.credentials.session_token.unwrap().expose(), "envtoken");
        let mut c = config();
        c.access_key_id = Some("AKIDTABLE".into());
        c.secret_access_key = Some("tablesecret".into());
        let a = Account::new(c, env).unwrap();
        assert_eq!(a.credentials.access_key_id, "AKIDTABLE");
        assert!(a.credentials.session_token.is_none());
        let mut half = config();
        half.access_key_id = Some("AKIDTABLE".into());
        let error = Account::new(half, env).err().unwrap().to_string();
        assert!(error.contains("secret_access_key"), "{error}");
    }

    #[test]
    fn config_errors_and_debug_show_no_secret() {
        let mut c = config();
        c.access_key_id = Some("AKID".into());
        c.secret_access_key = Some("hunter2-secret".into());
        c.session_token = Some("token-secret".into());
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("token-secret"));
        c.distribution_id = "bad id".into();
        let error = Account::new(c, |_| None).err().unwrap().to_string();
        assert!(error.contains("distribution_id") && !error.contains("hunter2"));
    }

    #[test]
    fn hosts_are_bare_names() {
        let mut c = config();
        c.hosts = vec!["https://www.example.com".into()];
        c.access_key_id = Some("AKID".into());
        c.secret_access_key = Some("s".into());
        assert!(Account::new(c, |_| None).is_err());
    }
}
