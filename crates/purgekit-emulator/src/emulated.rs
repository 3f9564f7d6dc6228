//! What the sandbox, `purgekit emulate`, the conformance suite and the benches need of every
//! emulator, so none of them names a provider: [`Emulated`].

use std::time::Duration;

use axum::Router;

use crate::Faults;

/// An emulator seen from outside: which provider it stands in for, its router, its demo
/// account as the provider's config table, and what it received.
///
/// A new emulator implements this in its own module and adds one line to [`crate::sandbox`].
pub trait Emulated: Send + Sync {
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

    /// Every HTTP request it received, faulted ones included, with the status answered.
    fn requests(&self) -> Vec<crate::SeenRequest>;

    /// What it purged, one entry per item received, in a form every provider shares:
    /// `host path` for a URL, path or pattern (Level 3: network identifier and path), `tag NAME`
    /// for a cache tag; the path alone (`/path`) where a path is purged on every host of the
    /// account (CloudFront's distribution).
    fn purged(&self) -> Vec<String>;
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
