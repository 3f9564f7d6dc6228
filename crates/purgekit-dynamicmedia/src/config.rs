//! Configuration: the account, the region's endpoint, the schema version.

use std::fmt;
use std::str::FromStr;

use purgekit_core::{Error, RateLimit, Result, Secret};
use serde::Deserialize;

/// The `kind` a config table names to use this provider: `kind = "dynamic-media"`.
pub const KIND: &str = "dynamic-media";

/// The table `purgekit config init` writes for this provider: every key it needs, with
/// placeholder values to replace, secrets read from the environment (`${PURGEKIT_DYNAMIC_MEDIA_*}`), the
/// endpoint and rate limits left to their defaults.
pub const TEMPLATE: &str = r#"kind = "dynamic-media"
user = "ops@example.com"
password = "${PURGEKIT_DYNAMIC_MEDIA_PASSWORD}"
company_handle = "c|6"
company_root = "ExampleCompany"
api_version = "2014-04-03"    # answers carry a handle whose status can be polled
"#;

/// The IPS API schema version used when none is configured: the version of Adobe's published
/// `cdnCacheInvalidation` example (its answer carries success/warning/error counts).
pub const DEFAULT_API_VERSION: &str = "2012-02-14";

/// The oldest schema with `cdnCacheInvalidation` ("supported since 6.0", IPS 2012R1).
pub const OLDEST_API_VERSION: &str = "2012-02-14";

/// A Dynamic Media region: which IPS API host serves the company.
///
/// Parsed (case-insensitively, `_` read as `-`) from:
///
/// | region | accepted names |
/// |---|---|
/// | [`Region::NorthAmerica`] | `s7sps1`, `north-america`, `na`, `us` |
/// | [`Region::Europe`] | `s7sps3`, `europe`, `eu`, `emea` |
/// | [`Region::AsiaPacific`] | `s7sps5`, `asia-pacific`, `apac`, `ap`, `jp` |
///
/// ```
/// use purgekit_dynamicmedia::Region;
/// assert_eq!("EMEA".parse::<Region>().unwrap(), Region::Europe);
/// assert_eq!(Region::AsiaPacific.host(false), "s7sps5apissl.scene7.com");
/// assert_eq!(Region::NorthAmerica.host(true), "s7sps1apissl-staging.scene7.com");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum Region {
    /// North America: `s7sps1apissl.scene7.com`.
    #[default]
    NorthAmerica,
    /// Europe, Middle East, Asia: `s7sps3apissl.scene7.com`.
    Europe,
    /// Japan / Asia-Pacific: `s7sps5apissl.scene7.com`.
    AsiaPacific,
}

impl Region {
    /// Every region.
    pub const ALL: [Region; 3] = [Region::NorthAmerica, Region::Europe, Region::AsiaPacific];

    /// Adobe's server name for the region (`s7sps1`, `s7sps3`, `s7sps5`).
    pub fn server(self) -> &'static str {
        match self {
            Region::NorthAmerica => "s7sps1",
            Region::Europe => "s7sps3",
            Region::AsiaPacific => "s7sps5",
        }
    }

    /// The canonical name (`north-america`, `europe`, `asia-pacific`).
    pub fn name(self) -> &'static str {
        match self {
            Region::NorthAmerica => "north-america",
            Region::Europe => "europe",
            Region::AsiaPacific => "asia-pacific",
        }
    }

    /// The IPS API host, production or staging (`s7sps1apissl-staging.scene7.com`).
    pub fn host(self, staging: bool) -> String {
        let staging = if staging { "-staging" } else { "" };
        format!("{}apissl{staging}.scene7.com", self.server())
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<String> for Region {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl FromStr for Region {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let key = s.trim().to_ascii_lowercase().replace('_', "-");
        Ok(match key.as_str() {
            "s7sps1" | "north-america" | "na" | "us" => Region::NorthAmerica,
            "s7sps3" | "europe" | "eu" | "emea" => Region::Europe,
            "s7sps5" | "asia-pacific" | "apac" | "ap" | "jp" => Region::AsiaPacific,
            _ => {
                return Err(Error::invalid(
                    s,
                    "not a Dynamic Media region: use s7sps1 (north-america, na, us), \
                     s7sps3 (europe, eu, emea) or s7sps5 (asia-pacific, apac, ap, jp)",
                ));
            }
        })
    }
}

/// Everything needed to call `cdnCacheInvalidation` for one company: the `[providers.<name>]`
/// table of `kind = "dynamic-media"` deserializes into it (unknown keys are refused).
///
/// ```
/// use purgekit_dynamicmedia::{DynamicMediaConfig, Region};
/// let mut config = DynamicMediaConfig::new("ops@example.com", "s3cret", "c|6", "JJEsquire");
/// config.region = Region::Europe;
/// assert_eq!(config.base_url(), "https://s7sps3apissl.scene7.com");
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicMediaConfig {
    /// An explicit `scheme://host[:port]`; overrides [`DynamicMediaConfig::region`] and
    /// [`DynamicMediaConfig::staging`] (emulators, proxies).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The region whose IPS host serves the company (default North America, `s7sps1`).
    #[serde(default)]
    pub region: Region,
    /// Use the region's `-staging` host.
    #[serde(default)]
    pub staging: bool,
    /// The IPS user (an `IpsAdmin` or `IpsCompanyAdmin`), usually an email address.
    pub user: String,
    /// The IPS user's password.
    pub password: Secret,
    /// The company handle (`c|6`), as `getCompanyInfo` returns it.
    pub company_handle: String,
    /// The company root id (`JJEsquire`): every URL must have it as a path segment.
    pub company_root: String,
    /// `appName` in the auth header (default `purgekit`).
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// `appVersion` in the auth header (default this crate's version).
    #[serde(default = "default_app_version")]
    pub app_version: String,
    /// The IPS schema version of the body's namespace (default [`DEFAULT_API_VERSION`]).
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// A rate limit to respect; Adobe publishes none.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

fn default_app_name() -> String {
    "purgekit".to_owned()
}

fn default_app_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

fn default_api_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}

impl DynamicMediaConfig {
    /// A configuration for North America production with the default app name, version and
    /// schema version.
    pub fn new(
        user: impl Into<String>,
        password: impl Into<Secret>,
        company_handle: impl Into<String>,
        company_root: impl Into<String>,
    ) -> Self {
        DynamicMediaConfig {
            endpoint: None,
            region: Region::default(),
            staging: false,
            user: user.into(),
            password: password.into(),
            company_handle: company_handle.into(),
            company_root: company_root.into(),
            app_name: default_app_name(),
            app_version: default_app_version(),
            api_version: default_api_version(),
            rate_limit: None,
        }
    }

    /// The base URL requests go to: the endpoint if set (without a trailing `/`), else the
    /// region's production or staging host over HTTPS.
    pub fn base_url(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None => format!("https://{}", self.region.host(self.staging)),
        }
    }

    /// Checks every field; the first broken rule is an [`Error::Config`] naming the field.
    /// Never includes the password in a message.
    pub fn validate(&self) -> Result<()> {
        if let Some(endpoint) = &self.endpoint {
            purgekit_core::normalize_endpoint("endpoint", endpoint)?;
        }
        check_text("user", &self.user)?;
        if self.password.expose().is_empty() {
            return Err(Error::config("password", "must not be empty"));
        }
        if self.password.expose().chars().any(char::is_control) {
            return Err(Error::config(
                "password",
                "must not contain control characters (XML cannot carry them)",
            ));
        }
        check_text("company_handle", &self.company_handle)?;
        check_text("company_root", &self.company_root)?;
        if self
            .company_root
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#'))
        {
            return Err(Error::config(
                "company_root",
                format!(
                    "`{}` is not a company root id: it is one URL path segment, without `/`, \
                     `?`, `#` or white space",
                    self.company_root
                ),
            ));
        }
        check_text("app_name", &self.app_name)?;
        check_text("app_version", &self.app_version)?;
        check_api_version(&self.api_version)
    }
}

fn check_text(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::config(field, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::config(
            field,
            "must not contain control characters (XML cannot carry them)",
        ));
    }
    Ok(())
}

/// `YYYY-MM-DD`, not older than [`OLDEST_API_VERSION`].
fn check_api_version(version: &str) -> Result<()> {
    let shape = version.len() == 10
        && version.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape {
        return Err(Error::config(
            "api_version",
            format!("`{version}` is not an IPS schema version (YYYY-MM-DD, e.g. 2012-02-14)"),
        ));
    }
    // Same fixed-width shape, so string order is date order.
    if version < OLDEST_API_VERSION {
        return Err(Error::config(
            "api_version",
            format!(
                "`{version}` predates cdnCacheInvalidation (first in schema {OLDEST_API_VERSION})"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DynamicMediaConfig {
        DynamicMediaConfig::new("u@example.com", "pw", "c|6", "JJEsquire")
    }

    #[test]
    fn region_names_parse() {
        for region in Region::ALL {
            assert_eq!(region.server().parse::<Region>().unwrap(), region);
            assert_eq!(region.name().parse::<Region>().unwrap(), region);
            assert_eq!(region.to_string().parse::<Region>().unwrap(), region);
        }
        assert_eq!(
            "North_America".parse::<Region>().unwrap(),
            Region::NorthAmerica
        );
        assert_eq!(" apac ".parse::<Region>().unwrap(), Region::AsiaPacific);
        let err = "mars".parse::<Region>().unwrap_err();
        assert!(err.to_string().contains("`mars`"), "{err}");
    }

    #[test]
    fn hosts_follow_the_region_and_staging() {
        let mut c = config();
        assert_eq!(c.base_url(), "https://s7sps1apissl.scene7.com");
        c.region = Region::AsiaPacific;
        c.staging = true;
        assert_eq!(c.base_url(), "https://s7sps5apissl-staging.scene7.com");
        c.endpoint = Some("http://127.0.0.1:8080/".into());
        assert_eq!(c.base_url(), "http://127.0.0.1:8080");
        c.validate().unwrap();
    }

    #[test]
    fn bad_fields_name_themselves() {
        let field_of = |c: DynamicMediaConfig| match c.validate().unwrap_err() {
            Error::Config { field, .. } => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        let mut c = config();
        c.endpoint = Some("ftp://x".into());
        assert_eq!(field_of(c), "endpoint");
        let mut c = config();
        c.endpoint = Some("https://x/scene7".into());
        assert_eq!(field_of(c), "endpoint");
        let mut c = config();
        c.password = Secret::new("");
        assert_eq!(field_of(c), "password");
        let mut c = config();
        c.company_root = "a/b".into();
        assert_eq!(field_of(c), "company_root");
        let mut c = config();
        c.company_handle = " ".into();
        assert_eq!(field_of(c), "company_handle");
        let mut c = config();
        c.api_version = "2012-2-14".into();
        assert_eq!(field_of(c), "api_version");
        let mut c = config();
        c.api_version = "2010-01-31".into();
        assert_eq!(field_of(c), "api_version");
        let mut c = config();
        c.api_version = "2014-04-03".into();
        c.validate().unwrap();
    }

    #[test]
    fn a_bad_password_is_not_echoed() {
        let mut c = config();
        c.password = Secret::new("hunter2\u{7}");
        let err = c.validate().unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
