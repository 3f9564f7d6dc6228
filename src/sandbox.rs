//! The sandbox: every provider emulator serving on loopback with its demo account, and a
//! purger for each, wired to it over real HTTP. The CLI's `--sandbox` and `emulate`, the
//! examples and the cross-provider tests all start it the same way. It names no provider: the
//! emulators come from [`purgekit_emulator::sandbox`], their accounts from each emulator's
//! [`Emulated::config`], and the purgers from the config that makes, read by the registry.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use purgekit::{PurgeRequest, sandbox::Sandbox};
//! let sandbox = Sandbox::start().await?;
//! let request = PurgeRequest::builder()
//!     .url("https://images.example.com/is/image/PurgekitDemo/hero.jpg")
//!     .build()?;
//! for purger in sandbox.purgers() {
//!     let report = purger.purge(&request).await?;
//!     println!("{}: {:?}", purger.name(), report.summary);
//! }
//! # Ok(()) }
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use purgekit_core::{Purger, RateRegistry};
use purgekit_emulator::{Emulated, Running, serve};

use crate::config::Config;
use crate::registry::{Drive, Registry};

/// The emulators, running, and a purger for each demo account.
pub struct Sandbox {
    emulators: Vec<Arc<dyn Emulated>>,
    servers: Vec<Running>,
    config: Config,
    toml: String,
    purgers: Vec<Arc<dyn Purger>>,
}

impl Sandbox {
    /// Starts every emulator on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Sandbox> {
        Sandbox::start_at(IpAddr::V4(Ipv4Addr::LOCALHOST), 0).await
    }

    /// Starts the emulators on `ip`, the i-th (in kind order) at `port + i` (free ports when
    /// `port` is 0), with the documented limits, demo accounts, and purges that complete in
    /// about two seconds.
    pub async fn start_at(ip: IpAddr, port: u16) -> std::io::Result<Sandbox> {
        Sandbox::start_with(purgekit_emulator::sandbox(), ip, port, &Registry::builtin()).await
    }

    /// Starts `emulators` as [`Sandbox::start_at`] does, their purgers read by `registry`.
    pub async fn start_with(
        emulators: Vec<Arc<dyn Emulated>>,
        ip: IpAddr,
        port: u16,
        registry: &Registry,
    ) -> std::io::Result<Sandbox> {
        let mut servers = Vec::with_capacity(emulators.len());
        for (i, emulator) in emulators.iter().enumerate() {
            let port = match (port, u16::try_from(i)) {
                (0, _) => 0,
                (port, Ok(i)) => port.saturating_add(i),
                (_, Err(_)) => 0,
            };
            servers.push(serve(emulator.router(), SocketAddr::new(ip, port)).await?);
        }
        let urls: Vec<String> = servers.iter().map(Running::url).collect();
        let toml = config_toml(
            emulators
                .iter()
                .zip(&urls)
                .map(|(e, url)| (e.kind(), &**e, url.as_str())),
        )
        .map_err(std::io::Error::other)?;
        let config = Config::parse_with(registry, &toml, |_| None)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        // The sandbox's accounts live on its own emulators: its purgers share one rate
        // registry of their own, so two sandboxes in one process never wait on each other.
        let drive = Drive {
            rates: Some(Arc::new(RateRegistry::new())),
            engine: None,
            transport: None,
        };
        let purgers = config
            .build_each(&drive)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Sandbox {
            emulators,
            servers,
            config,
            toml,
            purgers,
        })
    }

    /// The emulators, in kind order.
    pub fn emulators(&self) -> &[Arc<dyn Emulated>] {
        &self.emulators
    }

    /// The emulator of provider kind `kind`.
    pub fn emulator(&self, kind: &str) -> Option<&dyn Emulated> {
        self.emulators
            .iter()
            .find(|e| e.kind() == kind)
            .map(|e| &**e)
    }

    /// `http://ADDR` of each emulator, in [`Sandbox::emulators`] order.
    pub fn endpoints(&self) -> Vec<String> {
        self.servers.iter().map(Running::url).collect()
    }

    /// `http://ADDR` of the emulator of provider kind `kind`.
    pub fn endpoint(&self, kind: &str) -> Option<String> {
        let i = self.emulators.iter().position(|e| e.kind() == kind)?;
        Some(self.servers[i].url())
    }

    /// The demo account of provider kind `kind` as its config table (`kind` included), e.g.
    /// to read its credentials: `sandbox.account("limelight")?["shared_key"]`.
    pub fn account(&self, kind: &str) -> Option<toml::Table> {
        Some(self.emulator(kind)?.config(&self.endpoint(kind)?))
    }

    /// One purger per emulator, named by its kind, in [`Sandbox::emulators`] order.
    pub fn purgers(&self) -> &[Arc<dyn Purger>] {
        &self.purgers
    }

    /// The purger named `kind`.
    pub fn purger(&self, kind: &str) -> Option<&Arc<dyn Purger>> {
        self.purgers.iter().find(|p| p.name() == kind)
    }

    /// The config of the demo accounts, as read from [`Sandbox::config_toml`].
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A `purgekit.toml` for the emulators with the demo credentials, as `emulate` prints
    /// (written by `toml`; every `$` doubled, since the loader reads `${VAR}` in strings).
    pub fn config_toml(&self) -> &str {
        &self.toml
    }

    /// Stops the emulators.
    pub async fn stop(self) {
        for server in self.servers {
            server.stop().await;
        }
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("endpoints", &self.endpoints())
            .finish_non_exhaustive()
    }
}

/// A `purgekit.toml` for demo accounts: one `[providers.<name>]` table per `(name, emulator,
/// endpoint)`, as the emulator writes it, every `$` in its strings doubled (the loader reads
/// `${VAR}` in strings). Written by `toml`, never by hand.
pub fn config_toml<'a>(
    accounts: impl IntoIterator<Item = (&'a str, &'a dyn Emulated, &'a str)>,
) -> Result<String, toml::ser::Error> {
    let mut providers = toml::Table::new();
    for (name, emulator, endpoint) in accounts {
        providers.insert(
            name.to_owned(),
            toml::Value::Table(literal(emulator.config(endpoint))),
        );
    }
    let mut root = toml::Table::new();
    root.insert("providers".to_owned(), toml::Value::Table(providers));
    toml::to_string(&root)
}

/// `table` with every `$` in its strings doubled, so `${…}` interpolation reads them literally.
fn literal(mut table: toml::Table) -> toml::Table {
    fn walk(value: &mut toml::Value) {
        match value {
            toml::Value::String(s) => *s = s.replace('$', "$$"),
            toml::Value::Array(items) => items.iter_mut().for_each(walk),
            toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| walk(v)),
            _ => {}
        }
    }
    table.iter_mut().for_each(|(_, v)| walk(v));
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level3::Level3;

    #[tokio::test]
    async fn its_config_loads_back_to_the_same_accounts() {
        let sandbox = Sandbox::start().await.unwrap();
        let config = Config::parse(sandbox.config_toml()).unwrap();
        let kinds: Vec<&str> = sandbox.emulators().iter().map(|e| e.kind()).collect();
        assert_eq!(config.names(), kinds);
        for (provider, emulator) in config.providers.iter().zip(sandbox.emulators()) {
            assert_eq!(provider.kind(), emulator.kind());
        }
        let names: Vec<&str> = sandbox.purgers().iter().map(|p| p.name()).collect();
        assert_eq!(names, kinds);
        // The limits each emulator enforces are the limits its purger declares, durations
        // included (written by the emulator, read by the config).
        let l3 = sandbox.purger("level3").unwrap().providers()[0].clone();
        assert_eq!(
            l3.limits.rate.requests,
            Some(purgekit_core::Budget::per_minute(10))
        );
    }

    #[test]
    fn strings_survive_toml_and_env_interpolation() {
        let awkward = "p$a\"s${HOME}s\\w\u{7}rd";
        let mut table = purgekit_emulator::table(
            "level3",
            [
                ("key_id", "1"),
                ("access_group", "1"),
                ("scid", "S"),
                ("secret", awkward),
            ],
        );
        table = literal(table);
        let mut providers = toml::Table::new();
        providers.insert("x".into(), toml::Value::Table(table));
        let mut root = toml::Table::new();
        root.insert("providers".into(), toml::Value::Table(providers));
        let text = toml::to_string(&root).unwrap();
        assert!(text.contains("$$"), "{text}");
        let config = Config::parse_with_env(&text, |_| Some("EXPANDED".into())).unwrap();
        let l3 = config.providers[0].provider::<Level3>().unwrap();
        assert_eq!(l3.config().secret.expose(), awkward);
    }
}
