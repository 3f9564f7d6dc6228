//! What the sandbox, `purgekit emulate`, the conformance suite and the benches need of every
//! emulator, so none of them names a provider: [`Emulated`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use crate::Faults;

/// An emulator seen from outside: which provider it stands in for, its router, its demo
/// account as the provider's config table, and what it received.
///
/// A new emulator implements this in its own module and adds one line to [`crate::sandbox`].
pub trait Emulated: std::any::Any + Send + Sync {
    /// The provider kind it stands in for (`level3`), as written in `kind = "…"`.
    fn kind(&self) -> &'static str;

    /// The vendor's name for humans (`Level 3 / Lumen`).
    fn title(&self) -> &'static str;

    /// The routes it serves.
    fn router(&self) -> Router;

    /// Faults to inject.
    fn faults(&self) -> Faults;

    /// The provider's `[providers.<name>]` table for the demo account at `endpoint`, `kind`
    /// included, declaring the limits this emulator enforces (so the engine paces exactly to
    /// them). Durations are written as the config reads them.
    fn config(&self, endpoint: &str) -> toml::Table;

    /// The secrets of its demo account (signing keys, passwords; not the key ids and tokens
    /// that requests carry in the clear), as its config table writes them: what no output,
    /// log or error may ever show. Tests look for them.
    fn secrets(&self) -> Vec<String>;

    /// Every HTTP request it received, faulted ones included, with the status answered.
    fn requests(&self) -> Vec<crate::SeenRequest>;

    /// What it purged, one entry per item received, in a form every provider shares:
    /// `host path` for a URL, path or pattern (Level 3: network identifier and path), `tag NAME`
    /// for a cache tag; the path alone (`/path`) where a path is purged on every host of the
    /// account (CloudFront's distribution).
    fn purged(&self) -> Vec<String>;

    /// The limits and times it enforces that `purgekit emulate` may change, named as in its
    /// config struct, durations as humantime strings (`requests_per_window = 10`,
    /// `rate_window = "1m"`): its rate limits (which [`Emulated::config`] declares, so the
    /// client paces to them) and its completion times. Default: none.
    fn limits(&self) -> toml::Table {
        toml::Table::new()
    }

    /// A new emulator of the same kind and account, with `overrides` (names from
    /// [`Emulated::limits`]; a duration as `"10s"` or whole seconds) applied and then every
    /// rate window and completion time `speed` times shorter. The error names the setting and
    /// the rule it broke. Default: refuses any change (the emulator declares no limits).
    fn adjusted(&self, speed: f64, overrides: &toml::Table) -> Result<Arc<dyn Emulated>, String> {
        let _ = (speed, overrides);
        Err(format!(
            "the {} emulator has no limits or times to adjust",
            self.kind()
        ))
    }
}

impl dyn Emulated {
    /// The emulator as its own type (`Level3Emulator`), for tests of one provider's own rules;
    /// `None` when it is another.
    pub fn downcast_ref<E: Emulated>(&self) -> Option<&E> {
        (self as &dyn std::any::Any).downcast_ref()
    }
}

/// Applies `purgekit emulate` overrides to one emulator's settings, refusing unknown names and
/// bad values; [`Emulated::adjusted`] implementations use it.
pub struct Adjust<'a> {
    kind: &'static str,
    speed: f64,
    overrides: &'a toml::Table,
    used: Vec<&'a str>,
}

impl<'a> Adjust<'a> {
    /// Overrides `overrides` for emulator `kind`, then times `speed` times shorter; `speed` must
    /// be a finite number above zero.
    pub fn new(kind: &'static str, speed: f64, overrides: &'a toml::Table) -> Result<Self, String> {
        if !(speed.is_finite() && speed > 0.0) {
            return Err(format!("--speed {speed}: must be a number above 0"));
        }
        Ok(Adjust {
            kind,
            speed,
            overrides,
            used: Vec::new(),
        })
    }

    fn take(&mut self, name: &str) -> Option<&'a toml::Value> {
        let (key, value) = self.overrides.get_key_value(name)?;
        self.used.push(key.as_str());
        Some(value)
    }

    /// A count: the override if any (a whole number of at least `min`), else `current`.
    pub fn count(&mut self, name: &str, current: usize, min: usize) -> Result<usize, String> {
        let kind = self.kind;
        match self.take(name) {
            None => Ok(current),
            Some(value) => value
                .as_integer()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n >= min)
                .ok_or_else(|| {
                    format!("{kind}.{name} = {value}: must be a whole number of at least {min}")
                }),
        }
    }

    /// A window or completion time: the override if any, else `current`; then divided by
    /// the speed.
    pub fn time(&mut self, name: &str, current: Duration) -> Result<Duration, String> {
        Ok(self.duration(name, current)?.div_f64(self.speed))
    }

    /// A time in whole seconds (Adobe's `estimatedSeconds`): the override if any, else
    /// `current`; then divided by the speed, rounded to the nearest second.
    pub fn seconds(&mut self, name: &str, current: u32) -> Result<u32, String> {
        let kind = self.kind;
        let seconds = match self.take(name) {
            None => current,
            Some(value) => value
                .as_integer()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("{kind}.{name} = {value}: must be whole seconds"))?,
        };
        Ok((f64::from(seconds) / self.speed).round() as u32)
    }

    fn duration(&mut self, name: &str, current: Duration) -> Result<Duration, String> {
        let kind = self.kind;
        match self.take(name) {
            None => Ok(current),
            Some(toml::Value::Integer(n)) => u64::try_from(*n)
                .map(Duration::from_secs)
                .map_err(|_| format!("{kind}.{name} = {n}: must not be negative")),
            Some(toml::Value::String(text)) => humantime::parse_duration(text)
                .map_err(|e| format!("{kind}.{name} = \"{text}\": not a duration ({e})")),
            Some(value) => Err(format!(
                "{kind}.{name} = {value}: must be a duration such as \"10s\""
            )),
        }
    }

    /// Ends the adjustment: an override that named no setting of `known` is an error listing
    /// them.
    pub fn finish(self, known: &toml::Table) -> Result<(), String> {
        match self
            .overrides
            .keys()
            .find(|k| !self.used.contains(&k.as_str()))
        {
            None => Ok(()),
            Some(unknown) => Err(format!(
                "{}.{unknown}: the {} emulator has no such limit (it has: {})",
                self.kind,
                self.kind,
                known.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

/// `emulators`, each [`Emulated::adjusted`] by `speed` and its own `overrides`, written
/// `KIND.NAME=VALUE` as `purgekit emulate --limit` takes them (`level3.requests_per_window=20`,
/// `limelight.item_interval=500ms`); an emulator neither touches is kept as it is. The error
/// names the override and the rule it broke.
pub fn adjust_all(
    emulators: Vec<Arc<dyn Emulated>>,
    speed: f64,
    overrides: &[String],
) -> Result<Vec<Arc<dyn Emulated>>, String> {
    let mut tables: Vec<toml::Table> = vec![toml::Table::new(); emulators.len()];
    for text in overrides {
        let parsed = text
            .split_once('=')
            .and_then(|(key, value)| Some((key.trim().split_once('.')?, value.trim())));
        let Some(((kind, name), value)) = parsed else {
            return Err(format!(
                "--limit `{text}`: expected KIND.NAME=VALUE, e.g. level3.requests_per_window=20"
            ));
        };
        let Some(at) = emulators.iter().position(|e| e.kind() == kind) else {
            let kinds: Vec<&str> = emulators.iter().map(|e| e.kind()).collect();
            return Err(format!(
                "--limit `{text}`: no emulator `{kind}` (there are: {})",
                kinds.join(", ")
            ));
        };
        let value = match value.parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => toml::Value::String(value.to_owned()),
        };
        if tables[at].insert(name.to_owned(), value).is_some() {
            return Err(format!("--limit `{text}`: {kind}.{name} is set twice"));
        }
    }
    emulators
        .into_iter()
        .zip(tables)
        .map(|(emulator, table)| {
            if speed == 1.0 && table.is_empty() {
                Ok(emulator)
            } else if emulator.limits().is_empty() && table.is_empty() {
                // Nothing in it runs on a clock `--speed` shortens.
                Ok(emulator)
            } else {
                emulator.adjusted(speed, &table)
            }
        })
        .collect()
}

/// An emulator's [`Emulated::limits`] on one line: `requests_per_window = 10, rate_window = "1m"`.
pub fn limits_line(emulator: &dyn Emulated) -> String {
    emulator
        .limits()
        .iter()
        .map(|(name, value)| format!("{name} = {value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration as [`Emulated::limits`] writes it (`"1m"`, `"500ms"`).
pub fn duration_value(d: Duration) -> toml::Value {
    toml::Value::String(humantime::format_duration(d).to_string())
}

/// `host path` of an absolute URL or pattern (`https://a.example/x` → `a.example /x`).
pub fn host_and_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    match rest.find('/') {
        Some(i) => format!("{} {}", &rest[..i], &rest[i..]),
        None => format!("{rest} /"),
    }
}

/// A `rate_limit = { … }` table of one budget: `kind` (`requests` or `items`) `amount` per
/// `per`; `None` when `per` is zero (the emulator enforces no limit).
pub fn rate_limit(kind: &str, amount: u32, per: Duration) -> Option<toml::Value> {
    if per.is_zero() {
        return None;
    }
    let mut table = toml::Table::new();
    table.insert(kind.to_owned(), toml::Value::Integer(amount.into()));
    table.insert(
        "per".to_owned(),
        toml::Value::String(humantime::format_duration(per).to_string()),
    );
    Some(toml::Value::Table(table))
}

/// A config table from `(key, value)` string pairs, `kind` first.
pub fn table<'a>(kind: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> toml::Table {
    let mut table = toml::Table::new();
    table.insert("kind".to_owned(), toml::Value::String(kind.to_owned()));
    for (key, value) in pairs {
        table.insert(key.to_owned(), toml::Value::String(value.to_owned()));
    }
    table
}
