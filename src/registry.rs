//! The provider registry: `kind = "…"` in a config table → the provider that reads the table.
//!
//! Each provider crate owns its configuration (a `serde::Deserialize` struct that refuses
//! unknown keys), its checks (`Provider::new(config) -> Result<Provider>`, one shape for all) and its
//! `KIND`. The registry only maps the kind to them; [`Registry::builtin`] holds the providers
//! compiled in (one cargo feature each), and a library user registers their own:
//!
//! ```
//! # use purgekit::{Accepted, Batch, Capabilities, Handle, HttpRequest, HttpResponse, Limits,
//! #     Mapped, Options, Provider, Result, Status, Target, TargetKind};
//! use purgekit::{Config, Secret, registry::Registry};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct AcmeConfig {
//!     token: Secret,
//! }
//!
//! #[derive(Debug, Clone)]
//! struct Acme;
//!
//! impl Acme {
//!     fn new(config: AcmeConfig) -> Result<Acme> {
//!         let _ = config.token;
//!         Ok(Acme)
//!     }
//! }
//! # impl Provider for Acme {
//! #     fn kind(&self) -> &'static str { "acme" }
//! #     fn account(&self) -> String { "a".into() }
//! #     fn endpoint(&self) -> String { "https://acme.example".into() }
//! #     fn limits(&self) -> Limits { Limits::default() }
//! #     fn capabilities(&self) -> Capabilities {
//! #         Capabilities { targets: vec![TargetKind::Url], options: vec![] }
//! #     }
//! #     fn map(&self, _: &Target, _: &Options) -> Result<Mapped> { unimplemented!() }
//! #     fn encode(&self, _: &Batch, _: &Options, _: std::time::SystemTime) -> Result<HttpRequest> { unimplemented!() }
//! #     fn decode(&self, _: &Batch, _: HttpResponse) -> Result<Accepted> { unimplemented!() }
//! #     fn encode_status(&self, _: &Handle, _: std::time::SystemTime) -> Result<HttpRequest> { unimplemented!() }
//! #     fn decode_status(&self, _: &Handle, _: HttpResponse) -> Result<Status> { unimplemented!() }
//! #     fn redact(&self, _: &mut HttpRequest) {}
//! # }
//!
//! let mut registry = Registry::builtin();
//! registry.register("acme", Acme::new);
//! let config = Config::parse_with(&registry, "[providers.a]\nkind = \"acme\"\ntoken = \"t\"\n", |_| None)?;
//! assert_eq!(config.build()?.providers()[0].kind, "acme");
//! # Ok::<(), purgekit::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::{
    EngineConfig, Error, Provider, ProviderPurger, Purger, RateRegistry, Result, Transport,
};

/// One provider account, read from its table and checked by its provider: ready to drive.
pub trait Account: fmt::Debug + Send + Sync {
    /// The provider kind (`level3`).
    fn kind(&self) -> &'static str;

    /// The account's purger, named `name`, driven as `drive` says.
    fn purger(&self, name: &str, drive: &Drive) -> Arc<dyn Purger>;

    /// The provider as the planner and the codec see it (benches, tools).
    fn codec(&self) -> &dyn Provider;

    /// The provider itself, for [`crate::config::ProviderConfig::provider`].
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<P: Provider + Clone + fmt::Debug> Account for P {
    fn kind(&self) -> &'static str {
        Provider::kind(self)
    }

    fn purger(&self, name: &str, drive: &Drive) -> Arc<dyn Purger> {
        let mut purger = match &drive.transport {
            Some(transport) => {
                ProviderPurger::with_transport_of(name, self.clone(), transport.clone())
            }
            None => ProviderPurger::new(name, self.clone()),
        };
        if let Some(rates) = &drive.rates {
            purger = purger.with_rate_registry(rates.clone());
        }
        if let Some(engine) = &drive.engine {
            purger = purger.with_config(engine.clone());
        }
        Arc::new(purger)
    }

    fn codec(&self) -> &dyn Provider {
        self
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// How the engine drives the purgers a config builds; the defaults suit a process with one
/// config.
#[derive(Clone, Default)]
pub struct Drive {
    /// The rate limiters to share (the process-wide registry when `None`): a sandbox's accounts
    /// live on its own emulators, so it keeps its own.
    pub rates: Option<Arc<RateRegistry>>,
    /// Retries, polling and the run's deadline ([`EngineConfig::default`] when `None`).
    pub engine: Option<EngineConfig>,
    /// One transport shared by every provider, e.g. a [`crate::ReqwestTransport`] with a
    /// [`crate::ProxyPolicy`] (each purger's own default when `None`).
    pub transport: Option<Arc<dyn Transport>>,
}

/// Reads a provider's table (without `kind`, `${VAR}`s already interpolated) into its account.
/// An error's field is relative to the table (`key_id`, `rate_limit.per`).
type Factory = dyn Fn(toml::Value) -> Result<Arc<dyn Account>> + Send + Sync;

/// One registered kind: how it reads its table, and the table `purgekit config init` writes.
#[derive(Clone)]
struct Entry {
    factory: Arc<Factory>,
    template: Option<&'static str>,
}

/// The provider kinds a config may name, and how each reads its table. See the module docs.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Entry>,
}

/// The providers compiled in, one line each: `"feature" => crate::Provider as module;`. Each
/// provider crate exports `KIND`, `TEMPLATE` and its provider, whose `new` reads its `Config`.
/// The line registers the kind in [`Registry::builtin`] and re-exports the crate at the root of
/// `purgekit` under the module name (through [`providers`]).
macro_rules! builtin {
    ($($(#[$doc:meta])* $feature:literal => $krate:ident :: $provider:ident as $module:ident;)*) => {
        /// The provider crates compiled in (one cargo feature each), re-exported at the root
        /// of `purgekit` (`purgekit::level3`).
        pub mod providers {
            $(
                #[cfg(feature = $feature)]
                $(#[$doc])*
                pub use $krate as $module;
            )*
        }

        impl Registry {
            /// The providers compiled in: one line (and one cargo feature) per provider, each
            /// with its `config init` template.
            pub fn builtin() -> Registry {
                #[allow(unused_mut)]
                let mut registry = Registry::empty();
                $(
                    #[cfg(feature = $feature)]
                    registry.register_with_template(
                        $krate::KIND,
                        $krate::$provider::new,
                        $krate::TEMPLATE,
                    );
                )*
                registry
            }
        }
    };
}

builtin! {
    /// Akamai Fast Purge v3 (EdgeGrid-signed JSON).
    "akamai" => purgekit_akamai::Akamai as akamai;
    /// Level 3 / Lumen Media Web Services (MPA-signed XML).
    "level3" => purgekit_level3::Level3 as level3;
    /// Limelight SmartPurge (HMAC-SHA256-signed JSON).
    "limelight" => purgekit_limelight::Limelight as limelight;
    /// Adobe Dynamic Media (Scene7 IPS SOAP `cdnCacheInvalidation`).
    "dynamicmedia" => purgekit_dynamicmedia::DynamicMedia as dynamicmedia;
    /// Amazon CloudFront invalidations (SigV4-signed XML, in-flight capacity, billable paths).
    "cloudfront" => purgekit_cloudfront::CloudFront as cloudfront;
}

impl Registry {
    /// A registry with no provider.
    pub fn empty() -> Registry {
        Registry::default()
    }

    /// Registers `kind`: its table deserializes into `C` (name its keys' errors with their
    /// path; refuse unknown keys with `#[serde(deny_unknown_fields)]`), and `build` checks it
    /// into the provider. A kind registered again replaces the earlier one.
    pub fn register<C, P>(&mut self, kind: &'static str, build: fn(C) -> Result<P>) -> &mut Self
    where
        C: DeserializeOwned + 'static,
        P: Provider + Clone + fmt::Debug,
    {
        let factory = move |table: toml::Value| -> Result<Arc<dyn Account>> {
            let config: C = deserialize_all_missing(table)?;
            Ok(Arc::new(build(config)?))
        };
        let entry = Entry {
            factory: Arc::new(factory),
            template: None,
        };
        self.kinds.insert(kind, entry);
        self
    }

    /// [`Registry::register`], with the table `purgekit config init` writes for the kind:
    /// TOML keys (`kind` first) with placeholder values and every secret read from the
    /// environment as `${PURGEKIT_<KIND>_<KEY>}`, the endpoint and rate limits left to their
    /// defaults; comments allowed. [`Registry::template`] gives it back.
    pub fn register_with_template<C, P>(
        &mut self,
        kind: &'static str,
        build: fn(C) -> Result<P>,
        template: &'static str,
    ) -> &mut Self
    where
        C: DeserializeOwned + 'static,
        P: Provider + Clone + fmt::Debug,
    {
        self.register(kind, build);
        if let Some(entry) = self.kinds.get_mut(kind) {
            entry.template = Some(template);
        }
        self
    }

    /// The `config init` template of `kind` (see [`Registry::register_with_template`]); `None`
    /// for a kind registered without one, or not registered.
    pub fn template(&self, kind: &str) -> Option<&'static str> {
        self.kinds.get(kind)?.template
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }

    /// Reads one provider's table of kind `kind`.
    pub(crate) fn read(&self, kind: &str, table: toml::Value) -> Result<Arc<dyn Account>> {
        match self.kinds.get(kind) {
            Some(entry) => (entry.factory)(table),
            None => Err(Error::config(
                "kind",
                format!(
                    "unknown kind `{}`; this purgekit knows: {}",
                    kind.escape_default(),
                    self.kinds().join(", ")
                ),
            )),
        }
    }
}

impl fmt::Debug for Drive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drive")
            .field("rates", &self.rates.is_some())
            .field("engine", &self.engine)
            .field("transport", &self.transport.is_some())
            .finish()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds())
            .finish()
    }
}

/// At most this many missing keys of one table are named.
const MAX_MISSING_KEYS: usize = 20;

/// Deserializes a provider's table, naming every missing top-level key at once (`missing
/// fields `a`, `b``), not only the first: each missing key is filled in with a stand-in value
/// and the table read again to find the next.
fn deserialize_all_missing<C: DeserializeOwned>(table: toml::Value) -> Result<C> {
    let config_error = |e: serde_path_to_error::Error<toml::de::Error>| {
        let field = e.path().to_string();
        Error::config(
            if field == "." { String::new() } else { field },
            e.into_inner().message(),
        )
    };
    let first = match serde_path_to_error::deserialize(table.clone()) {
        Ok(config) => return Ok(config),
        Err(e) => e,
    };
    let Some(key) = missing_key(&first) else {
        return Err(config_error(first));
    };
    let mut missing = vec![key];
    let mut probe = table;
    // Stand-ins of each type, tried in turn until the key's type is met.
    let stand_ins = [
        toml::Value::String("0".to_owned()),
        toml::Value::Integer(0),
        toml::Value::Boolean(false),
        toml::Value::Array(Vec::new()),
        toml::Value::Table(toml::Table::new()),
    ];
    let mut tried = 0usize;
    while missing.len() <= MAX_MISSING_KEYS && tried < stand_ins.len() {
        let Some(table) = probe.as_table_mut() else {
            break;
        };
        let key = missing.last().cloned().unwrap_or_default();
        table.insert(key.clone(), stand_ins[tried].clone());
        match serde_path_to_error::deserialize::<_, C>(probe.clone()) {
            Err(e) if e.path().to_string() == key && missing_key(&e).is_none() => tried += 1,
            Err(e) => match missing_key(&e) {
                Some(next) if !missing.contains(&next) => {
                    missing.push(next);
                    tried = 0;
                }
                _ => break,
            },
            Ok(_) => break,
        }
    }
    if missing.len() == 1 {
        return Err(config_error(first));
    }
    let names: Vec<String> = missing.iter().map(|k| format!("`{k}`")).collect();
    Err(Error::config(
        "",
        format!("missing fields {}", names.join(", ")),
    ))
}

/// The key a "missing field" error names, at the table's top level.
fn missing_key(error: &serde_path_to_error::Error<toml::de::Error>) -> Option<String> {
    if error.path().to_string() != "." {
        return None;
    }
    let message = error.inner().message();
    let key = message.strip_prefix("missing field `")?.strip_suffix('`')?;
    Some(key.to_owned())
}
