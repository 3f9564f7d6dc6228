//! The purgekit configuration file: named provider accounts, in TOML.
//!
//! ```toml
//! [providers.cdn-eu]
//! kind = "limelight"                       # level3 | limelight | dynamic-media
//! shortname = "example"
//! username = "deploy"
//! shared_key = "${LLNW_SHARED_KEY}"        # any string value may use ${ENV_VAR}
//! rate_limit = { items = 30, per = "60s" } # optional override of the documented limits
//! ```
//!
//! Parsing is strict and happens before anything is sent: an unknown key is an error naming the
//! key and its table, an unset `${VAR}` is an error naming the variable, and a plain `http://`
//! endpoint is refused unless its host is a loopback address. [`Config::load`] reads a file,
//! [`Config::parse`] a string; secrets are kept as [`Secret`]s from the start.
//!
//! ```
//! use purgekit::config::{Config, ProviderSettings};
//! let config = Config::parse_with_env(
//!     r#"
//!     [providers.main]
//!     kind = "level3"
//!     key_id = "KEY"
//!     secret = "${L3_SECRET}"
//!     access_group = "12345"
//!     scid = "BBBN56789"
//!     network_identifiers = { "cdn.example.com" = "cdn.exampleni.com" }
//!     "#,
//!     |name| (name == "L3_SECRET").then(|| "s3cret".to_owned()),
//! )
//! .unwrap();
//! let main = &config.providers[0];
//! assert_eq!(main.name, "main");
//! let ProviderSettings::Level3(l3) = &main.settings else { unreachable!() };
//! assert_eq!(l3.secret.expose(), "s3cret");
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::{Table, Value};

use crate::{
    Budget, EngineConfig, Error, FanOut, Provider, ProviderPurger, Purger, RateLimit,
    ReqwestTransport, Result, Secret, Transport,
};

/// The environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "PURGEKIT_CONFIG";

/// The config file used when neither `--config` nor [`CONFIG_ENV`] is given.
pub const DEFAULT_CONFIG_FILE: &str = "purgekit.toml";

/// The provider kinds a config may name, as written in `kind = "…"`.
pub const KINDS: [&str; 3] = ["level3", "limelight", "dynamic-media"];

/// The name of the fan-out [`Config::build`] makes over several providers.
pub const FAN_OUT_NAME: &str = "all";

/// The window of a `rate_limit` without `per`.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

/// A parsed configuration: the provider accounts to purge through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The configured providers, sorted by name. Several providers mean a fan-out.
    pub providers: Vec<ProviderConfig>,
}

/// One `[providers.<name>]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// The table's name (`cdn-eu`): the provider's name in reports and `--provider`.
    pub name: String,
    /// `scheme://host[:port]`, when overriding the vendor's production host.
    pub endpoint: Option<String>,
    /// An override of the provider's documented rate limits.
    pub rate_limit: Option<RateLimit>,
    /// The kind and its account settings.
    pub settings: ProviderSettings,
}

/// The per-kind settings of a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSettings {
    /// `kind = "level3"`.
    Level3(Level3Settings),
    /// `kind = "limelight"`.
    Limelight(LimelightSettings),
    /// `kind = "dynamic-media"`.
    DynamicMedia(DynamicMediaSettings),
}

impl ProviderSettings {
    /// The kind as written in the config (`level3`, `limelight`, `dynamic-media`).
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderSettings::Level3(_) => KINDS[0],
            ProviderSettings::Limelight(_) => KINDS[1],
            ProviderSettings::DynamicMedia(_) => KINDS[2],
        }
    }
}

/// Level 3 / Lumen account settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level3Settings {
    /// The API key id.
    pub key_id: String,
    /// The API secret.
    pub secret: Secret,
    /// The access group id.
    pub access_group: String,
    /// The service (SCID) to invalidate.
    pub scid: String,
    /// Public host → network identifier, when they differ.
    pub network_identifiers: BTreeMap<String, String>,
}

/// Limelight SmartPurge account settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimelightSettings {
    /// The account shortname.
    pub shortname: String,
    /// The API user.
    pub username: String,
    /// The hex shared key.
    pub shared_key: Secret,
    /// Public host → origin host, for patterns matched against origin URLs.
    pub origins: BTreeMap<String, String>,
}

/// Adobe Dynamic Media account settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicMediaSettings {
    /// The IPS user (an email address).
    pub user: String,
    /// The IPS password.
    pub password: Secret,
    /// The company handle (`c|6`).
    pub company_handle: String,
    /// The company root id every URL must contain.
    pub company_root: String,
    /// `appName` in the auth header, when not the default.
    pub app_name: Option<String>,
    /// `appVersion` in the auth header, when not the default.
    pub app_version: Option<String>,
    /// `north-america`, `europe` or `asia-pacific`, when not the default.
    pub region: Option<String>,
    /// The IPS API version, when not the default.
    pub api_version: Option<String>,
    /// Use the region's staging host.
    pub staging: bool,
}

/// The field an error about the whole file names (replaced by the path in [`Config::load`]).
const WHOLE_FILE: &str = "<config>";

const COMMON_KEYS: [&str; 3] = ["kind", "endpoint", "rate_limit"];
const LEVEL3_KEYS: [&str; 5] = [
    "key_id",
    "secret",
    "access_group",
    "scid",
    "network_identifiers",
];
const LIMELIGHT_KEYS: [&str; 4] = ["shortname", "username", "shared_key", "origins"];
const DYNAMIC_MEDIA_KEYS: [&str; 9] = [
    "user",
    "password",
    "company_handle",
    "company_root",
    "app_name",
    "app_version",
    "region",
    "api_version",
    "staging",
];
const RATE_LIMIT_KEYS: [&str; 3] = ["requests", "items", "per"];

impl Config {
    /// The config file to read: `explicit` (`--config`), else `$PURGEKIT_CONFIG`, else
    /// `./purgekit.toml`.
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        Self::locate_with(explicit, std::env::var_os(CONFIG_ENV))
    }

    /// [`Config::locate`] with the value of `$PURGEKIT_CONFIG` given.
    pub fn locate_with(explicit: Option<&Path>, env_value: Option<OsString>) -> PathBuf {
        match (explicit, env_value) {
            (Some(path), _) => path.to_owned(),
            (None, Some(value)) if !value.is_empty() => PathBuf::from(value),
            _ => PathBuf::from(DEFAULT_CONFIG_FILE),
        }
    }

    /// Reads and parses the file at `path`, interpolating `${VAR}` from the process environment.
    pub fn load(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                path.display().to_string(),
                format!("cannot read the config file: {e}"),
            )
        })?;
        Self::parse(&text).map_err(|e| match e {
            Error::Config { field, message } if field == WHOLE_FILE => {
                Error::config(path.display().to_string(), message)
            }
            Error::Config { field, message } => {
                Error::config(field, format!("{message} (in {})", path.display()))
            }
            other => other,
        })
    }

    /// Parses `text`, interpolating `${VAR}` from the process environment.
    pub fn parse(text: &str) -> Result<Config> {
        Self::parse_with_env(text, |name| std::env::var(name).ok())
    }

    /// Parses `text`, looking `${VAR}` up with `env` (for tests and embedding).
    pub fn parse_with_env(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let table: Table = text.parse().map_err(|e: toml::de::Error| {
            Error::config(WHOLE_FILE, format!("not valid TOML: {e}"))
        })?;
        let mut root = Fields {
            path: String::new(),
            table,
            env: &env,
        };
        root.check_keys(&["providers"], "")?;
        let Some(providers) = root.table("providers")? else {
            return Err(Error::config(
                "providers",
                "no providers configured: add a [providers.<name>] table",
            ));
        };
        let mut out = Vec::new();
        for (name, value) in providers.table {
            let path = format!("providers.{name}");
            if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(Error::config(
                    path,
                    "a provider name must be non-empty, without white space or control characters",
                ));
            }
            let table = match value {
                Value::Table(table) => table,
                other => {
                    return Err(Error::config(
                        path,
                        format!("expected a table, found {}", describe(&other)),
                    ));
                }
            };
            out.push(parse_provider(
                name,
                Fields {
                    path,
                    table,
                    env: &env,
                },
            )?);
        }
        if out.is_empty() {
            return Err(Error::config(
                "providers",
                "no providers configured: add a [providers.<name>] table",
            ));
        }
        Ok(Config { providers: out })
    }

    /// The provider named `name`.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The same config with only the providers named in `names` (all when `names` is empty).
    /// An unknown name is an [`Error::InvalidInput`] listing the configured ones.
    pub fn select(&self, names: &[impl AsRef<str>]) -> Result<Config> {
        if names.is_empty() {
            return Ok(self.clone());
        }
        for name in names {
            let name = name.as_ref();
            if self.provider(name).is_none() {
                return Err(Error::invalid(
                    name,
                    format!(
                        "no provider of that name is configured (configured: {})",
                        self.names().join(", ")
                    ),
                ));
            }
        }
        Ok(Config {
            providers: self
                .providers
                .iter()
                .filter(|p| names.iter().any(|n| n.as_ref() == p.name))
                .cloned()
                .collect(),
        })
    }

    /// The configured provider names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.providers.iter().map(|p| p.name.as_str()).collect()
    }
}

impl Config {
    /// Builds the purger: the provider's [`ProviderPurger`] when one is configured, a
    /// [`FanOut`] over all of them otherwise. Every provider's own checks run here, before
    /// anything is sent; their errors name the config field.
    ///
    /// ```
    /// use purgekit::Config;
    /// let config = Config::parse(
    ///     r#"
    ///     [providers.eu]
    ///     kind = "limelight"
    ///     shortname = "example"
    ///     username = "deploy"
    ///     shared_key = "00112233445566778899aabbccddeeff"
    ///     "#,
    /// )
    /// .unwrap();
    /// let purger = config.build().unwrap();
    /// assert_eq!(purger.providers()[0].kind, "limelight");
    /// ```
    pub fn build(&self) -> Result<Arc<dyn Purger>> {
        self.build_with(&EngineConfig::default(), &default_transport())
    }

    /// [`Config::build`] with the engine settings `engine` (the run's deadline, retries, …) and
    /// one `transport` shared by every provider (e.g. a [`ReqwestTransport`] with a
    /// [`crate::ProxyPolicy`]).
    pub fn build_with(
        &self,
        engine: &EngineConfig,
        transport: &Arc<dyn Transport>,
    ) -> Result<Arc<dyn Purger>> {
        let mut purgers = self
            .providers
            .iter()
            .map(|p| p.build_with(engine, transport))
            .collect::<Result<Vec<_>>>()?;
        if purgers.len() == 1 {
            return Ok(purgers.remove(0));
        }
        Ok(Arc::new(FanOut::new(FAN_OUT_NAME, purgers)?))
    }

    /// One purger per provider, in order, without the fan-out.
    pub fn build_each(&self) -> Result<Vec<Arc<dyn Purger>>> {
        self.providers.iter().map(ProviderConfig::build).collect()
    }
}

fn default_transport() -> Arc<dyn Transport> {
    Arc::new(ReqwestTransport::default())
}

/// `provider` driven by the engine under `name`.
fn drive<P: Provider>(
    name: &str,
    provider: P,
    engine: &EngineConfig,
    transport: &Arc<dyn Transport>,
) -> Arc<dyn Purger> {
    Arc::new(
        ProviderPurger::with_transport_of(name, provider, transport.clone())
            .with_config(engine.clone()),
    )
}

impl ProviderConfig {
    /// Builds this provider's purger.
    pub fn build(&self) -> Result<Arc<dyn Purger>> {
        self.build_with(&EngineConfig::default(), &default_transport())
    }

    /// Builds this provider's purger with `engine` settings, sending through `transport`.
    pub fn build_with(
        &self,
        engine: &EngineConfig,
        transport: &Arc<dyn Transport>,
    ) -> Result<Arc<dyn Purger>> {
        let in_table = |e: Error| match e {
            Error::Config { field, message } => {
                Error::config(format!("providers.{}.{field}", self.name), message)
            }
            other => other,
        };
        match &self.settings {
            #[cfg(feature = "level3")]
            ProviderSettings::Level3(s) => {
                let mut c = crate::level3::Level3Config::new(
                    s.key_id.clone(),
                    s.secret.clone(),
                    s.access_group.clone(),
                    s.scid.clone(),
                );
                if let Some(endpoint) = &self.endpoint {
                    c.endpoint = endpoint.clone();
                }
                c.network_identifiers = s.network_identifiers.clone();
                c.rate_limit = self.rate_limit;
                let provider = crate::level3::Level3::new(c).map_err(in_table)?;
                Ok(drive(&self.name, provider, engine, transport))
            }
            #[cfg(feature = "limelight")]
            ProviderSettings::Limelight(s) => {
                let mut c = crate::limelight::LimelightConfig::new(
                    s.shortname.clone(),
                    s.username.clone(),
                    s.shared_key.clone(),
                );
                if let Some(endpoint) = &self.endpoint {
                    c.endpoint = endpoint.clone();
                }
                c.origins = s.origins.clone();
                c.rate_limit = self.rate_limit;
                let provider = crate::limelight::Limelight::new(c).map_err(in_table)?;
                Ok(drive(&self.name, provider, engine, transport))
            }
            #[cfg(feature = "dynamicmedia")]
            ProviderSettings::DynamicMedia(s) => {
                let mut c = crate::dynamicmedia::DynamicMediaConfig::new(
                    s.user.clone(),
                    s.password.clone(),
                    s.company_handle.clone(),
                    s.company_root.clone(),
                );
                c.endpoint = self.endpoint.clone();
                if let Some(region) = &s.region {
                    c.region = region.parse().map_err(|e| {
                        Error::config(format!("providers.{}.region", self.name), format!("{e}"))
                    })?;
                }
                c.staging = s.staging;
                let set = |target: &mut String, value: &Option<String>| {
                    if let Some(v) = value {
                        target.clone_from(v);
                    }
                };
                set(&mut c.app_name, &s.app_name);
                set(&mut c.app_version, &s.app_version);
                set(&mut c.api_version, &s.api_version);
                c.rate_limit = self.rate_limit;
                let provider = crate::dynamicmedia::DynamicMedia::new(c).map_err(in_table)?;
                Ok(drive(&self.name, provider, engine, transport))
            }
            #[allow(unreachable_patterns)]
            other => Err(Error::config(
                format!("providers.{}.kind", self.name),
                format!(
                    "this purgekit was built without the `{}` provider (cargo feature)",
                    other.kind()
                ),
            )),
        }
    }
}

fn parse_provider(name: String, mut fields: Fields<'_>) -> Result<ProviderConfig> {
    let kind = fields.required("kind").map_err(|e| match e {
        Error::Config { field, message } if message.starts_with("missing") => Error::config(
            field,
            format!("missing key `kind` (one of {})", KINDS.join(", ")),
        ),
        other => other,
    })?;
    let specific: &[&str] = match kind.as_str() {
        "level3" => &LEVEL3_KEYS,
        "limelight" => &LIMELIGHT_KEYS,
        "dynamic-media" => &DYNAMIC_MEDIA_KEYS,
        other => {
            return Err(Error::config(
                format!("{}.kind", fields.path),
                format!(
                    "unknown kind `{other}`; expected one of {}",
                    KINDS.join(", ")
                ),
            ));
        }
    };
    let allowed: Vec<&str> = COMMON_KEYS.iter().chain(specific).copied().collect();
    fields.check_keys(&allowed, &format!(" (kind `{kind}`)"))?;

    let endpoint = match fields.string("endpoint")? {
        Some(endpoint) => Some(crate::normalize_endpoint(
            &format!("{}.endpoint", fields.path),
            &endpoint,
        )?),
        None => None,
    };
    let rate_limit = match fields.table("rate_limit")? {
        Some(table) => Some(parse_rate_limit(table)?),
        None => None,
    };
    let settings = match kind.as_str() {
        "level3" => ProviderSettings::Level3(Level3Settings {
            key_id: fields.required("key_id")?,
            secret: fields.secret("secret")?,
            access_group: fields.required("access_group")?,
            scid: fields.required("scid")?,
            network_identifiers: fields.string_map("network_identifiers")?,
        }),
        "limelight" => ProviderSettings::Limelight(LimelightSettings {
            shortname: fields.required("shortname")?,
            username: fields.required("username")?,
            shared_key: fields.secret("shared_key")?,
            origins: fields.string_map("origins")?,
        }),
        _ => ProviderSettings::DynamicMedia(DynamicMediaSettings {
            user: fields.required("user")?,
            password: fields.secret("password")?,
            company_handle: fields.required("company_handle")?,
            company_root: fields.required("company_root")?,
            app_name: fields.string("app_name")?,
            app_version: fields.string("app_version")?,
            region: fields.string("region")?,
            api_version: fields.string("api_version")?,
            staging: fields.bool("staging")?.unwrap_or(false),
        }),
    };
    Ok(ProviderConfig {
        name,
        endpoint,
        rate_limit,
        settings,
    })
}

fn parse_rate_limit(mut fields: Fields<'_>) -> Result<RateLimit> {
    fields.check_keys(&RATE_LIMIT_KEYS, "")?;
    let per = match fields.string("per")? {
        Some(text) => {
            let field = format!("{}.per", fields.path);
            let per = parse_duration(&text).map_err(|m| Error::config(&field, m))?;
            if per.is_zero() {
                return Err(Error::config(field, "the window must be longer than zero"));
            }
            per
        }
        None => DEFAULT_RATE_WINDOW,
    };
    let requests = fields.positive("requests")?;
    let items = fields.positive("items")?;
    if requests.is_none() && items.is_none() {
        return Err(Error::config(
            fields.path,
            "a rate limit needs `requests`, `items` or both",
        ));
    }
    Ok(RateLimit {
        requests: requests.map(|n| Budget::new(n, per)),
        items: items.map(|n| Budget::new(n, per)),
    })
}

/// Parses a duration such as `90s`, `5m`, `1h`, `250ms` or `1m30s`; a bare number is seconds.
///
/// ```
/// use std::time::Duration;
/// use purgekit::config::parse_duration;
/// assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let bad =
        || format!("`{text}` is not a duration: use a number with a unit, e.g. 90s, 5m, 1h, 500ms");
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let amount: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let part = u32::try_from(amount)
            .ok()
            .and_then(|n| unit.checked_mul(n))
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
    }
    Ok(total)
}

/// Replaces every `${NAME}` in `value` with the variable's value (`$$` is a literal `$`).
fn interpolate(field: &str, value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err(Error::config(
                    field,
                    "unterminated `${` (write `${NAME}`, or `$$` for a literal `$`)",
                ));
            };
            let name = &after[..end];
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(Error::config(
                    field,
                    format!("`${{{name}}}` is not a valid environment variable reference"),
                ));
            }
            let Some(found) = env(name) else {
                return Err(Error::config(
                    field,
                    format!("environment variable `{name}` is not set"),
                ));
            };
            out.push_str(&found);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A TOML table being read, with its dotted path for error messages.
struct Fields<'a> {
    path: String,
    table: Table,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Fields<'a> {
    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn table_name(&self) -> String {
        if self.path.is_empty() {
            "the top level of the file".to_owned()
        } else {
            format!("table [{}]", self.path)
        }
    }

    /// Fails on the first key not in `allowed`, naming it and its table.
    fn check_keys(&self, allowed: &[&str], note: &str) -> Result<()> {
        if let Some(key) = self.table.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(Error::config(
                self.field(key),
                format!(
                    "unknown key `{key}` in {}{note}; expected one of: {}",
                    self.table_name(),
                    allowed.join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.table.remove(key)
    }

    fn type_error(&self, key: &str, expected: &str, found: &Value) -> Error {
        Error::config(
            self.field(key),
            format!("expected {expected}, found {}", describe(found)),
        )
    }

    fn string(&mut self, key: &str) -> Result<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => interpolate(&self.field(key), &s, self.env).map(Some),
            Some(other) => Err(self.type_error(key, "a string", &other)),
        }
    }

    fn required(&mut self, key: &str) -> Result<String> {
        let value = self.string(key)?.ok_or_else(|| {
            Error::config(
                self.field(key),
                format!("missing key `{key}` in {}", self.table_name()),
            )
        })?;
        if value.is_empty() {
            return Err(Error::config(self.field(key), "must not be empty"));
        }
        Ok(value)
    }

    fn secret(&mut self, key: &str) -> Result<Secret> {
        self.required(key).map(Secret::new)
    }

    fn bool(&mut self, key: &str) -> Result<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(b)),
            Some(other) => Err(self.type_error(key, "true or false", &other)),
        }
    }

    fn positive(&mut self, key: &str) -> Result<Option<u32>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Integer(n)) => match u32::try_from(n) {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(Error::config(
                    self.field(key),
                    format!("expected a positive whole number, found {n}"),
                )),
            },
            Some(other) => Err(self.type_error(key, "a positive whole number", &other)),
        }
    }

    fn table(&mut self, key: &str) -> Result<Option<Fields<'a>>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Table(table)) => Ok(Some(Fields {
                path: self.field(key),
                table,
                env: self.env,
            })),
            Some(other) => Err(self.type_error(key, "a table", &other)),
        }
    }

    fn string_map(&mut self, key: &str) -> Result<BTreeMap<String, String>> {
        let Some(mut map) = self.table(key)? else {
            return Ok(BTreeMap::new());
        };
        let keys: Vec<String> = map.table.keys().cloned().collect();
        keys.into_iter()
            .map(|k| {
                let value = map.string(&k)?.unwrap_or_default();
                Ok((k, value))
            })
            .collect()
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Table(_) => "a table".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        other => format!("{} `{other}`", other.type_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LL_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn env(name: &str) -> Option<String> {
        match name {
            "L3_SECRET" => Some("l3-secret-value".into()),
            "LL_KEY" => Some(LL_KEY.into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config> {
        Config::parse_with_env(text, env)
    }

    fn config_error(text: &str) -> (String, String) {
        match parse(text).unwrap_err() {
            Error::Config { field, message } => (field, message),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    const FULL: &str = r#"
        [providers.l3]
        kind = "level3"
        endpoint = "https://ws.lumen.com/"
        key_id = "10042"
        secret = "${L3_SECRET}"
        access_group = "12345"
        scid = "BBBN56789"
        network_identifiers = { "cdn.example.com" = "cdn.exampleni.com" }
        rate_limit = { requests = 5, per = "30s" }

        [providers.ll]
        kind = "limelight"
        shortname = "example"
        username = "deploy"
        shared_key = "${LL_KEY}"
        origins = { "cdn.example.com" = "origin.example.com" }
        rate_limit = { items = 30 }

        [providers.adobe]
        kind = "dynamic-media"
        endpoint = "http://127.0.0.1:8080"
        user = "ops@example.com"
        password = "p$$w${EMPTY}rd"
        company_handle = "c|6"
        company_root = "JJEsquire"
        region = "europe"
        staging = true
    "#;

    #[test]
    fn parses_every_kind() {
        let config = parse(FULL).unwrap();
        assert_eq!(config.names(), ["adobe", "l3", "ll"]);
        let l3 = config.provider("l3").unwrap();
        assert_eq!(l3.endpoint.as_deref(), Some("https://ws.lumen.com"));
        assert_eq!(
            l3.rate_limit,
            Some(RateLimit {
                requests: Some(Budget::new(5, Duration::from_secs(30))),
                items: None
            })
        );
        let ProviderSettings::Level3(s) = &l3.settings else {
            panic!("{l3:?}")
        };
        assert_eq!(s.secret.expose(), "l3-secret-value");
        assert_eq!(
            s.network_identifiers["cdn.example.com"],
            "cdn.exampleni.com"
        );
        assert_eq!((s.key_id.as_str(), s.scid.as_str()), ("10042", "BBBN56789"));

        let ll = config.provider("ll").unwrap();
        assert_eq!(ll.settings.kind(), "limelight");
        assert_eq!(ll.rate_limit.unwrap().items, Some(Budget::per_minute(30)));
        let ProviderSettings::Limelight(s) = &ll.settings else {
            panic!()
        };
        assert_eq!(s.shared_key.expose(), LL_KEY);
        assert_eq!(s.origins["cdn.example.com"], "origin.example.com");

        let adobe = config.provider("adobe").unwrap();
        assert_eq!(adobe.endpoint.as_deref(), Some("http://127.0.0.1:8080"));
        let ProviderSettings::DynamicMedia(s) = &adobe.settings else {
            panic!()
        };
        assert_eq!(s.password.expose(), "p$wrd");
        assert_eq!(s.region.as_deref(), Some("europe"));
        assert!(s.staging);
        assert_eq!(s.app_name, None);
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let config = parse(FULL).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("l3-secret-value"), "{debug}");
        assert!(!debug.contains(LL_KEY), "{debug}");
        assert!(!debug.contains("p$wrd"), "{debug}");
    }

    #[test]
    fn unset_variable_is_named() {
        let (field, message) = config_error(
            r#"
            [providers.x]
            kind = "limelight"
            shortname = "s"
            username = "u"
            shared_key = "${LLNW_KEY_MISSING}"
            "#,
        );
        assert_eq!(field, "providers.x.shared_key");
        assert_eq!(
            message,
            "environment variable `LLNW_KEY_MISSING` is not set"
        );
    }

    #[test]
    fn interpolation_rules() {
        let e = |v: &str| interpolate("f", v, &env);
        assert_eq!(
            e("a${L3_SECRET}b${LL_KEY}").unwrap(),
            format!("al3-secret-valueb{LL_KEY}")
        );
        assert_eq!(e("$$ and $ alone and $x").unwrap(), "$ and $ alone and $x");
        assert_eq!(e("no refs").unwrap(), "no refs");
        assert!(
            e("${L3_SECRET")
                .unwrap_err()
                .to_string()
                .contains("unterminated")
        );
        assert!(e("${1X}").unwrap_err().to_string().contains("not a valid"));
        assert!(e("${}").unwrap_err().to_string().contains("not a valid"));
        // A variable's value is not interpolated again.
        let nested = |name: &str| (name == "A").then(|| "${B}".to_owned());
        assert_eq!(interpolate("f", "${A}", &nested).unwrap(), "${B}");
    }

    #[test]
    fn interpolation_applies_in_maps_too() {
        let config = parse(
            r#"
            [providers.x]
            kind = "limelight"
            shortname = "s"
            username = "u"
            shared_key = "k"
            origins = { "a.example" = "${MISSING_ORIGIN}" }
            "#,
        );
        let err = config.unwrap_err().to_string();
        assert!(err.contains("providers.x.origins.a.example"), "{err}");
        assert!(err.contains("MISSING_ORIGIN"), "{err}");
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_table() {
        let (field, message) = config_error(
            r#"
            [providers.eu]
            kind = "limelight"
            shortname = "s"
            username = "u"
            shared_key = "k"
            secret = "wrong kind's key"
            "#,
        );
        assert_eq!(field, "providers.eu.secret");
        assert!(
            message.starts_with("unknown key `secret` in table [providers.eu] (kind `limelight`)"),
            "{message}"
        );
        assert!(message.contains("shared_key"), "{message}");

        let (field, message) = config_error(
            r#"
            [providers.eu]
            kind = "level3"
            key_id = "k"
            secret = "s"
            access_group = "1"
            scid = "S"
            rate_limit = { requests = 1, window = "1s" }
            "#,
        );
        assert_eq!(field, "providers.eu.rate_limit.window");
        assert!(
            message.contains("unknown key `window` in table [providers.eu.rate_limit]"),
            "{message}"
        );

        let (field, message) = config_error("verbose = true\n[providers.a]\nkind = \"level3\"");
        assert_eq!(field, "verbose");
        assert!(
            message.contains("in the top level of the file"),
            "{message}"
        );
    }

    #[test]
    fn missing_and_wrong_kinds() {
        let (field, message) = config_error("[providers.a]\nshortname = \"x\"");
        assert_eq!(field, "providers.a.kind");
        assert!(
            message.contains("level3, limelight, dynamic-media"),
            "{message}"
        );
        let (field, message) = config_error("[providers.a]\nkind = \"fastly\"");
        assert_eq!(field, "providers.a.kind");
        assert!(message.contains("unknown kind `fastly`"), "{message}");
    }

    #[test]
    fn missing_required_and_wrong_types() {
        let (field, message) = config_error(
            "[providers.a]\nkind = \"limelight\"\nshortname = \"s\"\nusername = \"u\"",
        );
        assert_eq!(field, "providers.a.shared_key");
        assert!(message.contains("missing key `shared_key`"), "{message}");
        let (field, message) = config_error(
            "[providers.a]\nkind = \"limelight\"\nshortname = 7\nusername = \"u\"\nshared_key = \"k\"",
        );
        assert_eq!(field, "providers.a.shortname");
        assert_eq!(message, "expected a string, found integer `7`");
        let (field, _) = config_error(
            "[providers.a]\nkind = \"limelight\"\nshortname = \"\"\nusername = \"u\"\nshared_key = \"k\"",
        );
        assert_eq!(field, "providers.a.shortname");
        let (field, message) = config_error("providers = 3");
        assert_eq!(field, "providers");
        assert!(message.contains("expected a table"), "{message}");
        let (field, _) = config_error("[providers]\na = \"x\"");
        assert_eq!(field, "providers.a");
    }

    #[test]
    fn no_providers_is_an_error() {
        assert_eq!(config_error("").0, "providers");
        assert_eq!(config_error("[providers]").0, "providers");
    }

    #[test]
    fn bad_toml_is_an_error() {
        let (field, message) = config_error("[providers.a\nkind=");
        assert_eq!(field, WHOLE_FILE);
        assert!(message.starts_with("not valid TOML"), "{message}");
    }

    #[test]
    fn rate_limit_rules() {
        let base = "[providers.a]\nkind = \"level3\"\nkey_id = \"k\"\nsecret = \"s\"\naccess_group = \"1\"\nscid = \"S\"\n";
        let with = |rl: &str| parse(&format!("{base}rate_limit = {rl}"));
        let rl = with(r#"{ requests = 10, items = 600, per = "1m" }"#)
            .unwrap()
            .providers[0]
            .rate_limit
            .unwrap();
        assert_eq!(rl.requests, Some(Budget::per_minute(10)));
        assert_eq!(rl.items, Some(Budget::per_minute(600)));
        for (bad, needle) in [
            ("{ per = \"60s\" }", "needs `requests`, `items` or both"),
            ("{ requests = 0 }", "positive whole number, found 0"),
            ("{ requests = -3 }", "positive whole number"),
            ("{ requests = \"ten\" }", "expected a positive whole number"),
            ("{ requests = 1, per = \"0s\" }", "longer than zero"),
            ("{ requests = 1, per = \"a minute\" }", "not a duration"),
            ("5", "expected a table"),
        ] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
            assert!(err.contains("providers.a.rate_limit"), "{bad}: {err}");
        }
    }

    #[test]
    fn endpoint_rules() {
        // The rule itself is core's `normalize_endpoint`; here: it applies, naming the field.
        let with = |endpoint: &str| {
            parse(&format!(
                "[providers.a]\nkind = \"limelight\"\nendpoint = \"{endpoint}\"\nshortname = \"s\"\nusername = \"u\"\nshared_key = \"k\""
            ))
        };
        let endpoint = |e: &str| with(e).unwrap().providers[0].endpoint.clone().unwrap();
        assert_eq!(
            endpoint("https://APIS.llnw.com:443/"),
            "https://apis.llnw.com"
        );
        assert_eq!(endpoint("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
        assert_eq!(endpoint("http://[::1]:80"), "http://[::1]");
        assert_eq!(endpoint("http://localhost:9"), "http://localhost:9");
        for (bad, needle) in [
            ("http://apis.llnw.com", "only allowed to a loopback host"),
            ("http://10.0.0.1:80", "only allowed to a loopback host"),
            ("ftp://apis.llnw.com", "must use https"),
            ("https://apis.llnw.com/path", "path"),
        ] {
            match with(bad).unwrap_err() {
                Error::Config { field, message } => {
                    assert_eq!(field, "providers.a.endpoint");
                    assert!(message.contains(needle), "{bad}: {message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn builds_one_purger_per_provider_with_the_settings() {
        let config = parse(FULL).unwrap();
        let purgers = config.build_each().unwrap();
        let infos: Vec<(String, String, String)> = purgers
            .iter()
            .map(|p| {
                let info = &p.providers()[0];
                (info.name.clone(), info.kind.clone(), info.endpoint.clone())
            })
            .collect();
        assert_eq!(
            infos,
            [
                (
                    "adobe".into(),
                    "dynamic-media".into(),
                    "http://127.0.0.1:8080".into()
                ),
                ("l3".into(), "level3".into(), "https://ws.lumen.com".into()),
                (
                    "ll".into(),
                    "limelight".into(),
                    "https://apis.llnw.com".into()
                ),
            ]
        );
        // The rate limit override reaches the provider's limits.
        let l3 = &purgers[1].providers()[0];
        assert_eq!(
            l3.limits.rate.requests,
            Some(Budget::new(5, Duration::from_secs(30)))
        );
        // Region and staging pick Adobe's host when no endpoint is given.
        let adobe = parse(
            "[providers.a]\nkind = \"dynamic-media\"\nuser = \"u@example.com\"\npassword = \"p\"\ncompany_handle = \"c|6\"\ncompany_root = \"Root\"\nregion = \"europe\"\nstaging = true\n",
        )
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(
            adobe.providers()[0].endpoint,
            "https://s7sps3apissl-staging.scene7.com"
        );
    }

    #[test]
    fn provider_checks_name_the_config_field() {
        let base = "[providers.l3]\nkind = \"level3\"\nsecret = \"s\"\naccess_group = \"12345\"\nscid = \"S\"\n";
        let err = parse(&format!("{base}key_id = \"not-numeric\"\n"))
            .unwrap()
            .build()
            .err()
            .unwrap();
        assert!(err.is_usage(), "{err}");
        assert!(err.to_string().contains("`providers.l3.key_id`"), "{err}");

        let err = parse(
            "[providers.a]\nkind = \"dynamic-media\"\nuser = \"u\"\npassword = \"p\"\ncompany_handle = \"c|6\"\ncompany_root = \"Root\"\nregion = \"mars\"\n",
        )
        .unwrap()
        .build()
        .err()
        .unwrap();
        assert!(err.to_string().contains("`providers.a.region`"), "{err}");
        assert!(err.to_string().contains("mars"), "{err}");
    }

    #[test]
    fn several_providers_fan_out() {
        let purger = parse(FULL).unwrap().build().unwrap();
        assert_eq!(purger.name(), FAN_OUT_NAME);
        let names: Vec<String> = purger.providers().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["adobe", "l3", "ll"]);
        let one = parse(FULL)
            .unwrap()
            .select(&["ll"])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(one.name(), "ll");
    }

    #[test]
    fn durations() {
        let d = |s| parse_duration(s);
        assert_eq!(d("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(d("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(d("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(d("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(d("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(d("45"), Ok(Duration::from_secs(45)));
        assert_eq!(d(" 10s "), Ok(Duration::from_secs(10)));
        for bad in ["", "s", "10x", "1.5s", "-1s", "m5", "10 s", "99999999999h"] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn locate_prefers_flag_then_env_then_default() {
        let flag = Path::new("/etc/pk.toml");
        assert_eq!(
            Config::locate_with(Some(flag), Some("/env.toml".into())),
            flag
        );
        assert_eq!(
            Config::locate_with(None, Some("/env.toml".into())),
            Path::new("/env.toml")
        );
        assert_eq!(
            Config::locate_with(None, Some("".into())),
            Path::new(DEFAULT_CONFIG_FILE)
        );
        assert_eq!(
            Config::locate_with(None, None),
            Path::new(DEFAULT_CONFIG_FILE)
        );
    }

    #[test]
    fn load_names_the_file() {
        let err = Config::load("/nonexistent/purgekit.toml").unwrap_err();
        assert!(err.is_usage());
        assert!(
            err.to_string().contains("/nonexistent/purgekit.toml"),
            "{err}"
        );
    }

    #[test]
    fn select_filters_and_rejects_unknown_names() {
        let config = parse(FULL).unwrap();
        assert_eq!(config.select(&["ll", "l3"]).unwrap().names(), ["l3", "ll"]);
        assert_eq!(config.select(&[] as &[&str]).unwrap().names().len(), 3);
        let err = config.select(&["nope"]).unwrap_err();
        assert!(err.is_usage());
        assert!(
            err.to_string().contains("configured: adobe, l3, ll"),
            "{err}"
        );
    }
}
