//! The sandbox: the three provider emulators serving on loopback with demo accounts, and a
//! purger for each, wired to them over real HTTP. The CLI's `--sandbox` and `emulate`, the
//! examples and the cross-provider tests all start it the same way.
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
use std::time::Duration;

use purgekit_core::{Budget, ProviderPurger, Purger, RateLimit, RateRegistry, Result, Secret};
use purgekit_dynamicmedia::{DynamicMedia, DynamicMediaConfig};
use purgekit_emulator::dynamicmedia::{DynamicMediaEmulator, DynamicMediaEmulatorConfig};
use purgekit_emulator::level3::{Level3Emulator, Level3EmulatorConfig};
use purgekit_emulator::limelight::{LimelightEmulator, LimelightEmulatorConfig};
use purgekit_emulator::{Running, serve};
use purgekit_level3::{Level3, Level3Config};
use purgekit_limelight::{Limelight, LimelightConfig};

/// The Dynamic Media schema version the sandbox speaks: the first that answers with an
/// `invalidationHandle`, so `--wait` can poll it (the 2012-02-14 default answers only counts).
pub const SANDBOX_DYNAMIC_MEDIA_API_VERSION: &str = "2014-04-03";

/// The provider names the sandbox uses, in order.
pub const SANDBOX_PROVIDERS: [&str; 3] = ["level3", "limelight", "dynamic-media"];

/// The three emulators, running, and the demo accounts' purgers.
pub struct Sandbox {
    /// The Level 3 / Lumen emulator (its records: what was purged, requests, rejections).
    pub level3: Level3Emulator,
    /// The Limelight SmartPurge emulator.
    pub limelight: LimelightEmulator,
    /// The Adobe Dynamic Media emulator.
    pub dynamic_media: DynamicMediaEmulator,
    servers: Vec<Running>,
    purgers: Vec<Arc<dyn Purger>>,
}

impl Sandbox {
    /// Starts the three emulators on free ports of 127.0.0.1.
    pub async fn start() -> std::io::Result<Sandbox> {
        Sandbox::start_at(IpAddr::V4(Ipv4Addr::LOCALHOST), 0).await
    }

    /// Starts the emulators on `ip`, at `port`, `port + 1` and `port + 2` (free ports when
    /// `port` is 0), with the documented limits, demo accounts, and purges that complete in
    /// about two seconds.
    pub async fn start_at(ip: IpAddr, port: u16) -> std::io::Result<Sandbox> {
        let level3 = Level3Emulator::new(Level3EmulatorConfig {
            completion_time: Duration::from_secs(2),
            ..Level3EmulatorConfig::demo()
        });
        let limelight = LimelightEmulator::new(LimelightEmulatorConfig {
            queued_for: Duration::from_millis(500),
            in_progress_for: Duration::from_millis(1500),
            stats_after: Duration::from_secs(1),
            ..LimelightEmulatorConfig::demo()
        });
        let dynamic_media = DynamicMediaEmulator::new(DynamicMediaEmulatorConfig {
            estimated_seconds: 2,
            completion_after: Duration::from_secs(2),
            ping_after_seconds: 1,
            ..DynamicMediaEmulatorConfig::demo()
        });
        let addr = |offset: u16| {
            let port = if port == 0 {
                0
            } else {
                port.saturating_add(offset)
            };
            SocketAddr::new(ip, port)
        };
        let servers = vec![
            serve(level3.router(), addr(0)).await?,
            serve(limelight.router(), addr(1)).await?,
            serve(dynamic_media.router(), addr(2)).await?,
        ];
        let mut sandbox = Sandbox {
            level3,
            limelight,
            dynamic_media,
            servers,
            purgers: Vec::new(),
        };
        sandbox.purgers = sandbox
            .build_purgers()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(sandbox)
    }

    /// `http://ADDR` of each emulator, in [`SANDBOX_PROVIDERS`] order.
    pub fn endpoints(&self) -> Vec<String> {
        self.servers.iter().map(Running::url).collect()
    }

    /// One purger per provider, named as in [`SANDBOX_PROVIDERS`].
    pub fn purgers(&self) -> &[Arc<dyn Purger>] {
        &self.purgers
    }

    /// The Level 3 provider configuration of the demo account.
    pub fn level3_config(&self) -> Level3Config {
        level3_config_for(&self.level3, &self.servers[0].url())
    }

    /// The Limelight provider configuration of the demo account.
    pub fn limelight_config(&self) -> LimelightConfig {
        limelight_config_for(&self.limelight, &self.servers[1].url())
    }

    /// The Dynamic Media provider configuration of the demo company.
    pub fn dynamic_media_config(&self) -> DynamicMediaConfig {
        dynamic_media_config_for(&self.dynamic_media, &self.servers[2].url())
    }

    /// A `purgekit.toml` for the three emulators with the demo credentials, as `emulate` prints.
    pub fn config_toml(&self) -> String {
        let l3 = self.level3_config();
        let ll = self.limelight_config();
        let dm = self.dynamic_media_config();
        let q = |s: &str| toml_string(s);
        format!(
            "[providers.{}]\nkind = \"level3\"\nendpoint = {}\nkey_id = {}\nsecret = {}\n\
             access_group = {}\nscid = {}\n\n\
             [providers.{}]\nkind = \"limelight\"\nendpoint = {}\nshortname = {}\nusername = {}\n\
             shared_key = {}\n\n\
             [providers.{}]\nkind = \"dynamic-media\"\nendpoint = {}\nuser = {}\npassword = {}\n\
             company_handle = {}\ncompany_root = {}\napi_version = {}\n",
            SANDBOX_PROVIDERS[0],
            q(&l3.endpoint),
            q(&l3.key_id),
            q(l3.secret.expose()),
            q(&l3.access_group),
            q(&l3.scid),
            SANDBOX_PROVIDERS[1],
            q(&ll.endpoint),
            q(&ll.shortname),
            q(&ll.username),
            q(ll.shared_key.expose()),
            SANDBOX_PROVIDERS[2],
            q(dm.endpoint.as_deref().unwrap_or_default()),
            q(&dm.user),
            q(dm.password.expose()),
            q(&dm.company_handle),
            q(&dm.company_root),
            q(&dm.api_version),
        )
    }

    /// Stops the three emulators.
    pub async fn stop(self) {
        for server in self.servers {
            server.stop().await;
        }
    }

    /// The purgers share one rate registry of their own: the sandbox's accounts live on its
    /// own emulators, so two sandboxes in one process never wait on each other.
    fn build_purgers(&self) -> Result<Vec<Arc<dyn Purger>>> {
        let registry = Arc::new(RateRegistry::new());
        Ok(vec![
            Arc::new(
                ProviderPurger::new(SANDBOX_PROVIDERS[0], Level3::new(self.level3_config())?)
                    .with_rate_registry(registry.clone()),
            ),
            Arc::new(
                ProviderPurger::new(
                    SANDBOX_PROVIDERS[1],
                    Limelight::new(self.limelight_config())?,
                )
                .with_rate_registry(registry.clone()),
            ),
            Arc::new(
                ProviderPurger::new(
                    SANDBOX_PROVIDERS[2],
                    DynamicMedia::new(self.dynamic_media_config())?,
                )
                .with_rate_registry(registry),
            ),
        ])
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("endpoints", &self.endpoints())
            .finish_non_exhaustive()
    }
}

/// The Level 3 configuration for `emulator` serving at `endpoint`: its account, and the request
/// rate it enforces declared as the provider's limit (so the engine paces exactly to it).
pub fn level3_config_for(emulator: &Level3Emulator, endpoint: &str) -> Level3Config {
    let e = emulator.config();
    Level3Config {
        endpoint: endpoint.to_owned(),
        rate_limit: Some(RateLimit {
            requests: (!e.rate_window.is_zero())
                .then(|| Budget::new(e.requests_per_window, e.rate_window)),
            items: None,
        }),
        ..Level3Config::new(
            e.key_id.clone(),
            Secret::new(e.secret.clone()),
            e.access_group.clone(),
            e.scid.clone(),
        )
    }
}

/// The Limelight configuration for `emulator` serving at `endpoint`: its account, and the item
/// debt it enforces declared as the provider's limit.
pub fn limelight_config_for(emulator: &LimelightEmulator, endpoint: &str) -> LimelightConfig {
    let e = emulator.config();
    LimelightConfig {
        endpoint: endpoint.to_owned(),
        rate_limit: Some(RateLimit {
            requests: None,
            items: (!e.item_interval.is_zero()).then(|| Budget::new(1, e.item_interval)),
        }),
        ..LimelightConfig::new(
            e.shortname.clone(),
            e.username.clone(),
            Secret::new(e.shared_key.clone()),
        )
    }
}

/// The Dynamic Media configuration for `emulator` serving at `endpoint`: its company, on
/// schema [`SANDBOX_DYNAMIC_MEDIA_API_VERSION`] so purges can be polled. Adobe publishes no
/// rate limit and the emulator enforces none, so none is declared.
pub fn dynamic_media_config_for(
    emulator: &DynamicMediaEmulator,
    endpoint: &str,
) -> DynamicMediaConfig {
    let e = emulator.config();
    DynamicMediaConfig {
        endpoint: Some(endpoint.to_owned()),
        api_version: SANDBOX_DYNAMIC_MEDIA_API_VERSION.to_owned(),
        ..DynamicMediaConfig::new(
            e.user.clone(),
            Secret::new(e.password.clone()),
            e.company_handle.clone(),
            e.company_root.clone(),
        )
    }
}

/// A TOML basic string: quoted, with `"` `\` and control characters escaped, and `$` doubled
/// because the config loader reads `${VAR}` in every string (`$$` is a literal `$`).
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' => out.push_str("$$"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[tokio::test]
    async fn its_config_loads_back_to_the_same_accounts() {
        let sandbox = Sandbox::start().await.unwrap();
        let config = Config::parse(&sandbox.config_toml()).unwrap();
        let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["dynamic-media", "level3", "limelight"]);
        let l3 = config.provider("level3").unwrap().provider::<Level3>().unwrap();
        assert_eq!(l3.config().secret, sandbox.level3_config().secret);
        let dm = config
            .provider("dynamic-media")
            .unwrap()
            .provider::<DynamicMedia>()
            .unwrap();
        assert_eq!(dm.config().password, sandbox.dynamic_media_config().password);
        assert_eq!(dm.config().api_version, SANDBOX_DYNAMIC_MEDIA_API_VERSION);
    }

    #[test]
    fn strings_survive_toml_and_env_interpolation() {
        let awkward = "p$a\"s${HOME}s\\w\u{7}rd";
        let text = format!(
            "[providers.x]\nkind = \"level3\"\nkey_id = \"1\"\naccess_group = \"1\"\nscid = \"S\"\n\
             secret = {}\n",
            toml_string(awkward)
        );
        let config = Config::parse_with_env(&text, |_| Some("EXPANDED".into())).unwrap();
        let l3 = config.providers[0].provider::<Level3>().unwrap();
        assert_eq!(l3.config().secret.expose(), awkward);
    }
}
