//! The purgekit configuration file: named provider accounts, in TOML.
//!
//! ```toml
//! [providers.cdn-eu]
//! kind = "limelight"                       # a registered kind: level3 | limelight | dynamic-media
//! shortname = "example"
//! username = "deploy"
//! shared_key = "${LLNW_SHARED_KEY}"        # any string value may use ${ENV_VAR}
//! rate_limit = { items = 30, per = "60s" } # optional override of the documented limits
//! ```
//!
//! This module knows no provider's keys: `kind` picks the provider from the
//! [`Registry`], whose crate deserializes the rest of the table
//! (refusing unknown keys) and checks it. Before that, one pass replaces every `${VAR}` in the
//! table's strings. Everything happens before anything is sent, and every error names the key
//! with its table (`providers.cdn-eu.shared_key`) and, from [`Config::load`], the file.
//!
//! Errors never show a secret: a TOML syntax error names the file, line, column and key but
//! quotes no value from the file, a secret of the wrong type is refused without its value, and
//! a malformed `${…}` reference is not echoed.
//!
//! ```
//! use purgekit::config::Config;
//! let config = Config::parse_with_env(
//!     r#"
//!     [providers.main]
//!     kind = "level3"
//!     key_id = "10042"
//!     secret = "${L3_SECRET}"
//!     access_group = "12345"
//!     scid = "BBBN56789"
//!     network_identifiers = { "cdn.example.com" = "cdn.exampleni.com" }
//!     "#,
//!     |name| (name == "L3_SECRET").then(|| "s3cret".to_owned()),
//! )
//! .unwrap();
//! let main = &config.providers[0];
//! assert_eq!((main.name.as_str(), main.kind()), ("main", "level3"));
//! assert!(!format!("{config:?}").contains("s3cret"));
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::{Table, Value};

use crate::registry::{Account, Drive, Registry};
use crate::{Error, FanOut, ProxyPolicy, Purger, ReqwestTransport, Result};

pub use purgekit_core::{DEFAULT_RATE_WINDOW, parse_duration};

/// The environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "PURGEKIT_CONFIG";

/// The config file used when neither `--config` nor [`CONFIG_ENV`] is given.
pub const DEFAULT_CONFIG_FILE: &str = "purgekit.toml";

/// The name of the fan-out [`Config::build`] makes over several providers.
pub const FAN_OUT_NAME: &str = "all";

/// A parsed configuration: the provider accounts to purge through.
#[derive(Debug, Clone)]
pub struct Config {
    /// The configured providers, sorted by name. Several providers mean a fan-out.
    pub providers: Vec<ProviderConfig>,
    /// The top-level `proxy = "URL" | "none" | "env"`: the HTTP proxy every provider's requests
    /// go through, used when [`Drive::transport`] gives none (a CLI's `--proxy` does; it wins).
    /// `None`: the environment, as curl reads it ([`ProxyPolicy::Environment`]). Its `Debug`
    /// hides credentials in the URL.
    pub proxy: Option<ProxyPolicy>,
    /// `[journal] url`: where purge runs are journaled (`postgres://…`, `sqlite://PATH` or a
    /// path); `None` for the default location.
    pub journal: Option<String>,
    /// `[server]`: settings of `purgekit serve` (its API tokens, limits).
    pub server: ServerConfig,
}

/// The `[server]` table: `tokens` (bearer tokens, `${VAR}` interpolated, never shown),
/// `posts_per_minute` (each token's `POST` rate), `max_body_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The API's bearer tokens; empty: no authentication (loopback only).
    pub tokens: Vec<crate::Secret>,
    /// `POST`s each token may make a minute.
    pub posts_per_minute: u32,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            tokens: Vec::new(),
            posts_per_minute: 600,
            max_body_bytes: 10 * 1024 * 1024,
        }
    }
}

/// The `[server]` table: `tokens`, `posts_per_minute`, `max_body_bytes`, and nothing else.
fn read_server(value: Value, env: &impl Fn(&str) -> Option<String>) -> Result<ServerConfig> {
    let Value::Table(table) = value else {
        return Err(Error::config(
            "server",
            format!("expected a table, found {}", describe(&value)),
        ));
    };
    let mut server = ServerConfig::default();
    for (key, value) in table {
        let field = format!("server.{key}");
        let positive = |value: &Value| match value {
            Value::Integer(n) if *n > 0 => Ok(*n),
            other => Err(Error::config(
                &field,
                format!("expected a positive integer, found {}", describe(other)),
            )),
        };
        match key.as_str() {
            "tokens" => {
                let Value::Array(items) = value else {
                    return Err(Error::config(
                        &field,
                        format!("expected an array of strings, found {}", describe(&value)),
                    ));
                };
                for (i, item) in items.into_iter().enumerate() {
                    let field = format!("server.tokens[{i}]");
                    // Not echoed: a token is a secret.
                    let Value::String(text) = item else {
                        return Err(Error::config(field, "expected a string"));
                    };
                    let token = interpolate(&field, &text, env)?;
                    if token.len() < 16 {
                        return Err(Error::config(
                            field,
                            "too short: a token has at least 16 characters",
                        ));
                    }
                    server.tokens.push(crate::Secret::new(token));
                }
            }
            "posts_per_minute" => {
                server.posts_per_minute = u32::try_from(positive(&value)?).unwrap_or(u32::MAX)
            }
            "max_body_bytes" => {
                server.max_body_bytes = usize::try_from(positive(&value)?).unwrap_or(usize::MAX)
            }
            _ => {
                return Err(Error::config(
                    field,
                    "unknown key; expected: tokens, posts_per_minute, max_body_bytes",
                ));
            }
        }
    }
    Ok(server)
}

/// One `[providers.<name>]` table, read and checked by its provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The table's name (`cdn-eu`): the provider's name in reports and `--provider`.
    pub name: String,
    account: Arc<dyn Account>,
}

/// The `[journal]` table: `url`, a string (`${VAR}` interpolated), and nothing else.
fn read_journal(value: Value, env: &impl Fn(&str) -> Option<String>) -> Result<String> {
    let Value::Table(mut table) = value else {
        return Err(Error::config(
            "journal",
            format!("expected a table, found {}", describe(&value)),
        ));
    };
    if let Some(key) = table.keys().find(|k| k.as_str() != "url") {
        return Err(Error::config(
            format!("journal.{key}"),
            "unknown key; expected: url",
        ));
    }
    match table.remove("url") {
        Some(Value::String(url)) => interpolate("journal.url", &url, env),
        Some(other) => Err(Error::config(
            "journal.url",
            format!("expected a string, found {}", describe(&other)),
        )),
        None => Err(Error::config(
            "journal.url",
            "missing: give the journal's URL (postgres://…, sqlite://PATH or a path)",
        )),
    }
}

/// The keys the file's top level may hold.
const TOP_LEVEL_KEYS: [&str; 4] = ["providers", "proxy", "journal", "server"];

/// The field an error about the whole file names (replaced by the path in [`Config::load`]).
const WHOLE_FILE: &str = "<config>";

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

    /// Reads and parses the file at `path` with the built-in providers, interpolating `${VAR}`
    /// from the process environment.
    pub fn load(path: impl AsRef<Path>) -> Result<Config> {
        Self::load_with(&Registry::builtin(), path)
    }

    /// [`Config::load`] with the providers of `registry`.
    pub fn load_with(registry: &Registry, path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                path.display().to_string(),
                format!("cannot read the config file: {e}"),
            )
        })?;
        Self::parse_with(registry, &text, |name| std::env::var(name).ok()).map_err(|e| match e {
            Error::Config { field, message } if field == WHOLE_FILE => {
                Error::config(path.display().to_string(), message)
            }
            Error::Config { field, message } => {
                Error::config(field, format!("{message} (in {})", path.display()))
            }
            other => other,
        })
    }

    /// Parses `text` with the built-in providers, interpolating `${VAR}` from the process
    /// environment.
    pub fn parse(text: &str) -> Result<Config> {
        Self::parse_with_env(text, |name| std::env::var(name).ok())
    }

    /// Parses `text` with the built-in providers, looking `${VAR}` up with `env` (for tests and
    /// embedding).
    pub fn parse_with_env(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config> {
        Self::parse_with(&Registry::builtin(), text, env)
    }

    /// Parses `text` with the providers of `registry`, looking `${VAR}` up with `env`.
    pub fn parse_with(
        registry: &Registry,
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config> {
        let mut root: Table = text
            .parse()
            .map_err(|e: toml::de::Error| syntax_error(text, &e))?;
        if let Some(key) = root.keys().find(|k| !TOP_LEVEL_KEYS.contains(&k.as_str())) {
            return Err(Error::config(
                key,
                format!(
                    "unknown key `{}` in the top level of the file; expected one of: {}",
                    key.escape_default(),
                    TOP_LEVEL_KEYS.join(", ")
                ),
            ));
        }
        let proxy = match root.remove("proxy") {
            None => None,
            Some(Value::String(text)) => Some(ProxyPolicy::parse(
                "proxy",
                &interpolate("proxy", &text, &env)?,
            )?),
            // Not echoed: a proxy URL may carry credentials.
            Some(other) => {
                return Err(Error::config(
                    "proxy",
                    format!(
                        "expected a string (a proxy URL, `none` or `env`), found {}",
                        describe(&other)
                    ),
                ));
            }
        };
        let journal = match root.remove("journal") {
            None => None,
            Some(value) => Some(read_journal(value, &env)?),
        };
        let server = match root.remove("server") {
            None => ServerConfig::default(),
            Some(value) => read_server(value, &env)?,
        };
        let none = || {
            Error::config(
                "providers",
                "no providers configured: add a [providers.<name>] table",
            )
        };
        let providers = match root.remove("providers") {
            None => return Err(none()),
            Some(Value::Table(t)) if t.is_empty() => return Err(none()),
            Some(Value::Table(t)) => t,
            Some(other) => {
                return Err(Error::config(
                    "providers",
                    format!("expected a table, found {}", describe(&other)),
                ));
            }
        };
        let providers = providers
            .into_iter()
            .map(|(name, value)| read_provider(registry, name, value, &env))
            .collect::<Result<Vec<_>>>()?;
        Ok(Config {
            providers,
            proxy,
            journal,
            server,
        })
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
            proxy: self.proxy.clone(),
            journal: self.journal.clone(),
            server: self.server.clone(),
        })
    }

    /// The configured provider names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.providers.iter().map(|p| p.name.as_str()).collect()
    }

    /// Builds the purger: the provider's own when one is configured, a [`FanOut`] over all of
    /// them otherwise. Every provider's checks ran when the config was read.
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
        self.build_with(&Drive::default())
    }

    /// [`Config::build`], the purgers driven as `drive` says.
    pub fn build_with(&self, drive: &Drive) -> Result<Arc<dyn Purger>> {
        let mut purgers = self.build_each(drive)?;
        if purgers.len() == 1 {
            return Ok(purgers.remove(0));
        }
        Ok(Arc::new(FanOut::new(FAN_OUT_NAME, purgers)?))
    }

    /// One purger per provider, in order, without the fan-out. They share one transport: the
    /// drive's, else one through the config's [`Config::proxy`] when it names one; the error
    /// is that proxy's (e.g. an `https_proxy` variable that is not a URL, under `env`).
    pub fn build_each(&self, drive: &Drive) -> Result<Vec<Arc<dyn Purger>>> {
        let through_proxy;
        let drive = match (&self.proxy, &drive.transport) {
            (Some(policy), None) => {
                through_proxy = Drive {
                    transport: Some(Arc::new(ReqwestTransport::with_proxy(policy)?)),
                    ..drive.clone()
                };
                &through_proxy
            }
            _ => drive,
        };
        Ok(self.providers.iter().map(|p| p.purger(drive)).collect())
    }
}

impl ProviderConfig {
    /// The provider kind (`level3`).
    pub fn kind(&self) -> &'static str {
        self.account.kind()
    }

    /// The provider as the planner and the codec see it.
    pub fn codec(&self) -> &dyn crate::Provider {
        self.account.codec()
    }

    /// The provider, when it is a `P` (`config.provider::<purgekit::level3::Level3>()`).
    pub fn provider<P: 'static>(&self) -> Option<&P> {
        self.account.as_any().downcast_ref()
    }

    /// This provider's purger, driven as `drive` says.
    pub fn purger(&self, drive: &Drive) -> Arc<dyn Purger> {
        self.account.purger(&self.name, drive)
    }
}

/// Reads `[providers.<name>]`: interpolates its strings, takes `kind`, and hands the rest to
/// the kind's provider. Every error names its key with the table's path.
fn read_provider(
    registry: &Registry,
    name: String,
    value: Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ProviderConfig> {
    let path = format!("providers.{name}");
    if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::config(
            path.escape_default().to_string(),
            "a provider name must be non-empty, without white space or control characters",
        ));
    }
    let Value::Table(mut table) = value else {
        return Err(Error::config(
            path,
            format!("expected a table, found {}", describe(&value)),
        ));
    };
    for (key, value) in table.iter_mut() {
        interpolate_value(&format!("{path}.{key}"), value, env)?;
    }
    let kind = match table.remove("kind") {
        Some(Value::String(kind)) => kind,
        None => {
            return Err(Error::config(
                format!("{path}.kind"),
                format!(
                    "missing key `kind` in table [{path}] (one of {})",
                    registry.kinds().join(", ")
                ),
            ));
        }
        Some(other) => {
            return Err(Error::config(
                format!("{path}.kind"),
                format!("expected a string, found {}", describe(&other)),
            ));
        }
    };
    let account = registry
        .read(&kind, Value::Table(table))
        .map_err(|e| in_table(e, &path, &kind))?;
    Ok(ProviderConfig { name, account })
}

/// Puts a provider's error (its field relative to the table) in the table, in the words of
/// this file format: keys and tables, not serde's fields.
fn in_table(error: Error, path: &str, kind: &str) -> Error {
    let Error::Config { field, message } = error else {
        return error;
    };
    let field = if field.is_empty() {
        path.to_owned()
    } else {
        format!("{path}.{field}")
    };
    let table = field
        .rsplit_once('.')
        .map_or(path, |(table, _)| table)
        .to_owned();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (key, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let expected = expected.trim_start_matches("one of ").replace('`', "");
        // The path already ends with the unknown key: the table is its parent.
        return Error::config(
            field,
            format!(
                "unknown key {key} in table [{table}] (kind `{kind}`); expected one of: {expected}"
            ),
        );
    }
    if let Some(keys) = message.strip_prefix("missing fields ") {
        return Error::config(path, format!("missing keys {keys} in table [{path}]"));
    }
    if let Some(key) = message.strip_prefix("missing field ") {
        let field = format!("{field}.{}", key.trim_matches('`'));
        let table = field.rsplit_once('.').map_or(path, |(table, _)| table);
        return Error::config(&field, format!("missing key {key} in table [{table}]"));
    }
    if let Some((found, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.split_once(", expected "))
    {
        return Error::config(field, format!("expected {expected}, found {found}"));
    }
    Error::config(field, message)
}

/// Replaces `${VAR}` in every string of `value`, keys' values of nested tables and arrays too.
fn interpolate_value(
    field: &str,
    value: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    match value {
        Value::String(s) => *s = interpolate(field, s, env)?,
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_value(&format!("{field}[{i}]"), item, env)?;
            }
        }
        Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                interpolate_value(&format!("{field}.{key}"), item, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Replaces every `${NAME}` in `value` with the variable's value (`$$` is a literal `$`). A
/// malformed reference is refused without echoing it: it may sit in a secret.
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
                    "a `${…}` reference here is not a valid environment variable name (letters, \
                     digits and `_`, not starting with a digit; its text is not shown); write \
                     `$$` for a literal `$`",
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

/// A TOML syntax error as file position and key, never the text around it: the offending line
/// may hold a secret (an unterminated string, a bad escape, a duplicate key).
fn syntax_error(text: &str, error: &toml::de::Error) -> Error {
    let at = error.span().map_or(0, |span| span.start.min(text.len()));
    let mut at = at;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, l)| l)
        .chars()
        .count()
        + 1;
    let lines: Vec<&str> = text.lines().take(line).collect();
    // The key: the last `key =` at or above the error (a multi-line string starts above it);
    // the table: the last `[header]` above that.
    let key_line = lines.iter().rposition(|l| key_of(l).is_some());
    let key = key_line.and_then(|i| key_of(lines[i]));
    let table = lines[..key_line.unwrap_or(lines.len())]
        .iter()
        .rev()
        .find_map(|l| header_of(l));
    let mut place = format!("line {line}, column {column}");
    match (key, table) {
        (Some(key), Some(table)) => place.push_str(&format!(", key `{key}` in [{table}]")),
        (Some(key), None) => place.push_str(&format!(", key `{key}`")),
        (None, Some(table)) => place.push_str(&format!(", in [{table}]")),
        (None, None) => {}
    }
    Error::config(
        WHOLE_FILE,
        format!("not valid TOML at {place}: {}", scrub(error.message(), key)),
    )
}

/// The key of a `key = value` line, when it has one (bare or dotted keys, quoted parts).
fn key_of(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let ok = !key.is_empty()
        && !key.starts_with('[')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | ' '));
    ok.then_some(key)
}

/// The name of a `[table]` or `[[array]]` header line.
fn header_of(line: &str) -> Option<&str> {
    let line = line.trim();
    let inner = line.strip_prefix('[')?.trim_start_matches('[');
    let end = inner.find(']')?;
    let name = inner[..end].trim();
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | ' '))
        .then_some(name)
}

/// The parser's message without anything it quotes from the file but the key and short
/// punctuation tokens (`=`, `.`): quoted text may be part of a value. A list of expected tokens
/// with any hidden entry is left out whole.
fn scrub(message: &str, key: Option<&str>) -> String {
    let first = message.lines().next().unwrap_or("").trim();
    let (head, expected) = first.split_once(", expected ").unwrap_or((first, ""));
    let head = scrub_quotes(head, key);
    let expected = scrub_quotes(expected, key);
    if expected.is_empty() || expected.contains(HIDDEN) {
        head
    } else {
        format!("{head}, expected {expected}")
    }
}

const HIDDEN: &str = "(text not shown)";

fn scrub_quotes(message: &str, key: Option<&str>) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"', '\'']) {
        let quote = rest[open..].chars().next().unwrap_or('`');
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(quote) else {
            rest = "";
            break;
        };
        let quoted = &after[..close];
        let harmless = Some(quoted) == key
            || (quoted.chars().count() <= 2 && quoted.chars().all(|c| c.is_ascii_punctuation()));
        if harmless {
            out.push(quote);
            out.push_str(quoted);
            out.push(quote);
        } else {
            out.push_str(HIDDEN);
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
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
    use crate::{Budget, RateLimit};
    use std::time::Duration;

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

    fn level3(config: &Config, name: &str) -> crate::level3::Level3Config {
        let p = config.provider(name).unwrap();
        p.provider::<crate::level3::Level3>()
            .unwrap()
            .config()
            .clone()
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
        let l3 = level3(&config, "l3");
        assert_eq!(l3.endpoint, "https://ws.lumen.com");
        assert_eq!(
            l3.rate_limit,
            Some(RateLimit {
                requests: Some(Budget::new(5, Duration::from_secs(30))),
                items: None
            })
        );
        assert_eq!(l3.secret.expose(), "l3-secret-value");
        assert_eq!(
            l3.network_identifiers["cdn.example.com"],
            "cdn.exampleni.com"
        );
        assert_eq!(
            (l3.key_id.as_str(), l3.scid.as_str()),
            ("10042", "BBBN56789")
        );

        let ll = config.provider("ll").unwrap();
        assert_eq!(ll.kind(), "limelight");
        let info = &ll.purger(&Drive::default()).providers()[0];
        assert_eq!(info.limits.rate.items, Some(Budget::per_minute(30)));

        let adobe = config.provider("adobe").unwrap();
        let dm = adobe
            .provider::<crate::dynamicmedia::DynamicMedia>()
            .unwrap()
            .config();
        assert_eq!(dm.endpoint.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(dm.password.expose(), "p$wrd");
        assert_eq!(dm.region, crate::dynamicmedia::Region::Europe);
        assert!(dm.staging);
        // Defaults are the crate's own, the same as `DynamicMediaConfig::new`'s.
        let defaults = crate::dynamicmedia::DynamicMediaConfig::new("u", "p", "c", "r");
        assert_eq!(
            (&dm.app_name, &dm.app_version, &dm.api_version),
            (
                &defaults.app_name,
                &defaults.app_version,
                &defaults.api_version
            )
        );
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
        assert!(!message.contains("wrong kind's key"), "{message}");

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
        let kinds = crate::Registry::builtin().kinds().join(", ");
        assert!(kinds.contains("level3, limelight"), "{kinds}");
        let (field, message) = config_error("[providers.a]\nshortname = \"x\"");
        assert_eq!(field, "providers.a.kind");
        assert!(message.contains(&kinds), "{message}");
        let (field, message) = config_error("[providers.a]\nkind = \"nosuchcdn\"");
        assert_eq!(field, "providers.a.kind");
        assert!(message.contains("unknown kind `nosuchcdn`"), "{message}");
        assert!(message.contains(&format!("knows: {kinds}")), "{message}");
    }

    #[test]
    fn every_missing_key_is_named_at_once() {
        let (field, message) = config_error("[providers.a]\nkind = \"level3\"");
        assert_eq!(field, "providers.a");
        assert_eq!(
            message,
            "missing keys `key_id`, `secret`, `access_group`, `scid` in table [providers.a]"
        );
        // A wrong value among them is still the error (it comes first).
        let (field, _) = config_error("[providers.a]\nkind = \"level3\"\nkey_id = 7");
        assert_eq!(field, "providers.a.key_id");
    }

    #[test]
    fn missing_required_and_wrong_types() {
        let (field, message) = config_error(
            "[providers.a]\nkind = \"limelight\"\nshortname = \"s\"\nusername = \"u\"",
        );
        assert_eq!(field, "providers.a.shared_key");
        assert!(
            message.contains("missing key `shared_key` in table [providers.a]"),
            "{message}"
        );
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
        assert!(message.starts_with("not valid TOML at line 1"), "{message}");
    }

    #[test]
    fn rate_limit_rules() {
        let base = "[providers.a]\nkind = \"level3\"\nkey_id = \"1\"\nsecret = \"s\"\naccess_group = \"1\"\nscid = \"S\"\n";
        let with = |rl: &str| parse(&format!("{base}rate_limit = {rl}"));
        let config = with(r#"{ requests = 10, items = 600, per = "1m" }"#).unwrap();
        let rl = level3(&config, "a").rate_limit.unwrap();
        assert_eq!(rl.requests, Some(Budget::per_minute(10)));
        assert_eq!(rl.items, Some(Budget::per_minute(600)));
        for (bad, needle) in [
            ("{ per = \"60s\" }", "needs `requests`, `items` or both"),
            ("{ requests = 0 }", "positive whole number, found 0"),
            ("{ requests = -3 }", "positive whole number"),
            ("{ requests = \"ten\" }", "a positive whole number"),
            ("{ requests = 1, per = \"0s\" }", "longer than zero"),
            ("{ requests = 1, per = \"a minute\" }", "not a duration"),
            ("5", "expected"),
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
                "[providers.a]\nkind = \"limelight\"\nendpoint = \"{endpoint}\"\nshortname = \"s\"\nusername = \"u\"\nshared_key = \"{LL_KEY}\""
            ))
        };
        let endpoint = |e: &str| {
            with(e).unwrap().build().unwrap().providers()[0]
                .endpoint
                .clone()
        };
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
    fn the_server_table_is_read_its_tokens_interpolated_and_never_echoed() {
        let table = "[providers.a]\nkind = \"limelight\"\nshortname = \"s\"\nusername = \"u\"\nshared_key = \"00\"\n";
        let env = |name: &str| (name == "TOKEN").then(|| "secret-token-0123456789".to_owned());
        let config = Config::parse_with_env(table, env).unwrap();
        assert_eq!(config.server, ServerConfig::default());
        let text = format!(
            "{table}[server]\ntokens = [\"${{TOKEN}}\"]\nposts_per_minute = 5\nmax_body_bytes = 1024\n"
        );
        let config = Config::parse_with_env(&text, env).unwrap();
        assert_eq!(config.server.tokens[0].expose(), "secret-token-0123456789");
        assert_eq!(
            (config.server.posts_per_minute, config.server.max_body_bytes),
            (5, 1024)
        );
        assert!(!format!("{config:?}").contains("secret-token"));
        assert_eq!(config.select(&["a"]).unwrap().server, config.server);
        for (bad, needle) in [
            (
                "[server]\ntokens = \"x\"",
                "`server.tokens`: expected an array of strings",
            ),
            (
                "[server]\ntokens = [1]",
                "`server.tokens[0]`: expected a string",
            ),
            ("[server]\ntokens = [\"short-secret\"]", "too short"),
            (
                "[server]\nposts_per_minute = 0",
                "expected a positive integer",
            ),
            ("[server]\nport = 1", "`server.port`: unknown key"),
            ("server = 1", "`server`: expected a table"),
        ] {
            let e = Config::parse_with_env(&format!("{bad}\n{table}"), env)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{bad}: {e}");
            assert!(!e.contains("short-secret"), "{e}");
        }
    }

    #[test]
    fn the_top_level_proxy_is_read_interpolated_and_never_echoed() {
        let table = "[providers.a]\nkind = \"limelight\"\nshortname = \"s\"\nusername = \"u\"\nshared_key = \"00\"\n";
        let env = |name: &str| (name == "PW").then(|| "hunter2".to_owned());
        let config = Config::parse_with_env(&format!("proxy = \"none\"\n{table}"), env).unwrap();
        assert_eq!(config.proxy, Some(ProxyPolicy::None));
        assert_eq!(
            config.select(&["a"]).unwrap().proxy,
            Some(ProxyPolicy::None)
        );
        let config = Config::parse_with_env(
            &format!("proxy = \"http://u:${{PW}}@p.example:3128\"\n{table}"),
            env,
        )
        .unwrap();
        assert_eq!(
            config.proxy,
            Some(ProxyPolicy::Url(
                "http://u:hunter2@p.example:3128".to_owned()
            ))
        );
        assert!(!format!("{config:?}").contains("hunter2"));
        assert_eq!(config.build_each(&Drive::default()).unwrap().len(), 1);
        assert!(Config::parse_with_env(table, env).unwrap().proxy.is_none());
        for (bad, needle) in [
            (
                "proxy = 3128",
                "expected a string (a proxy URL, `none` or `env`), found",
            ),
            ("proxy = \"ftp://u:hunter2@p.example\"", ""),
            ("proxies = \"none\"", "expected one of: providers, proxy"),
        ] {
            let e = Config::parse_with_env(&format!("{bad}\n{table}"), env).unwrap_err();
            let Error::Config { field, message } = &e else {
                panic!("{e:?}")
            };
            assert!(field.starts_with("prox"), "{bad}: {field}");
            assert!(message.contains(needle), "{bad}: {message}");
            assert!(!e.to_string().contains("hunter2"), "{bad}: {e}");
        }
    }

    #[test]
    fn builds_one_purger_per_provider_with_the_settings() {
        let config = parse(FULL).unwrap();
        let purgers = config.build_each(&Drive::default()).unwrap();
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
        let err = parse(&format!("{base}key_id = \"not-numeric\"\n")).unwrap_err();
        assert!(err.is_usage(), "{err}");
        assert!(err.to_string().contains("`providers.l3.key_id`"), "{err}");

        let err = parse(
            "[providers.a]\nkind = \"dynamic-media\"\nuser = \"u\"\npassword = \"p\"\ncompany_handle = \"c|6\"\ncompany_root = \"Root\"\nregion = \"mars\"\n",
        )
        .unwrap_err();
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

    #[test]
    fn a_registry_without_a_kind_lists_what_it_has() {
        let mut registry = Registry::empty();
        registry.register(crate::limelight::KIND, crate::limelight::Limelight::new);
        let err = Config::parse_with(&registry, "[providers.a]\nkind = \"level3\"\n", env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown kind `level3`; this purgekit knows: limelight"),
            "{err}"
        );
    }

    // Issue #10, item 5: config errors never echo secrets. Each case failed before: the TOML
    // parser's message quoted the offending line, serde quoted an integer secret, and a bad
    // `${…}` was echoed.
    const SECRET: &str = "Sup3r-S3cret-Pw";

    /// Loads `text` from a file, as the CLI does, and returns the message.
    fn load_error(tag: &str, text: &str) -> (String, String) {
        let dir =
            std::env::temp_dir().join(format!("purgekit-config-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("purgekit.toml");
        std::fs::write(&path, text).unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        (err, path.display().to_string())
    }

    const HEAD: &str = "[providers.adobe]\nkind = \"dynamic-media\"\nuser = \"u@example.com\"\ncompany_handle = \"c|6\"\ncompany_root = \"Root\"\n";

    #[test]
    fn syntax_error_names_file_line_column_and_key_never_the_secret() {
        for (case, line) in [
            ("unterminated", format!("password = \"{SECRET}\n")),
            ("backslash", format!("password = \"{SECRET}\\q\"\n")),
            (
                "duplicate",
                format!("password = \"{SECRET}\"\npassword = \"{SECRET}\"\n"),
            ),
            ("bare", format!("password = {SECRET}\n")),
            ("trailing", format!("password = \"{SECRET}\" {SECRET}\n")),
        ] {
            let (err, file) = load_error(case, &format!("{HEAD}{line}"));
            assert!(!err.contains(SECRET), "{case}: {err}");
            assert!(!err.contains("Sup3r"), "{case}: {err}");
            assert!(err.contains(&file), "{case}: {err}");
            assert!(err.contains("not valid TOML at line "), "{case}: {err}");
            assert!(err.contains("column "), "{case}: {err}");
            assert!(
                err.contains("key `password` in [providers.adobe]"),
                "{case}: {err}"
            );
        }
        let (err, _) = load_error("line", &format!("{HEAD}password = \"{SECRET}\\q\"\n"));
        assert!(err.contains("at line 6, column "), "{err}");
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_echoed() {
        for value in ["918273645", "-918273645", "9182.73645", "[\"918273645\"]"] {
            let (err, _) = load_error("int", &format!("{HEAD}password = {value}\n"));
            assert!(!err.contains("918273645"), "{value}: {err}");
            assert!(!err.contains("9182.73645"), "{value}: {err}");
            assert!(err.contains("providers.adobe.password"), "{value}: {err}");
            assert!(err.contains("value is not shown"), "{value}: {err}");
        }
    }

    #[test]
    fn a_bad_variable_reference_is_not_echoed() {
        for text in [
            format!("${{{SECRET}!}}"),
            format!("${{9{SECRET}}}"),
            format!("{SECRET}${{"),
            format!("${{ {SECRET} }}"),
        ] {
            let (err, _) = load_error("ref", &format!("{HEAD}password = \"{text}\"\n"));
            assert!(!err.contains(SECRET), "{text}: {err}");
            assert!(err.contains("providers.adobe.password"), "{text}: {err}");
        }
    }
}
