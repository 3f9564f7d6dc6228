//! Emulators on 127.0.0.1 with compressed rate windows, and a purger for each built the way a
//! user's would be: from the config table the emulator writes for its account (declaring the
//! limits it enforces), read by the registry. Shared by `tests/engine_emulators.rs` and
//! `benches/efficiency.rs`.
#![allow(dead_code)]

pub mod decoders;
pub mod hostile;
pub mod peak;

use std::sync::Arc;
use std::time::Duration;

use purgekit::registry::Drive;
use purgekit::sandbox::config_toml;
use purgekit::{Config, EngineConfig, PurgeRequest, Purger, RateRegistry, RetryPolicy};
use purgekit_emulator::{Faults, Running};

/// The compressed minute: every "per minute" limit is per this window.
pub const WINDOW: Duration = Duration::from_millis(600);

/// Retries that fit a test: 1 ms doubling to 50 ms, no jitter, at most `max_attempts`.
pub fn engine(max_attempts: u32) -> EngineConfig {
    EngineConfig {
        retry: RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(50),
            jitter: 0.0,
            deadline: Duration::from_secs(30),
        },
        ..EngineConfig::default()
    }
}

/// A provider's emulator, running, and a purger for it.
pub struct Emulated<E> {
    pub emulator: E,
    pub running: Running,
    pub purger: Arc<dyn Purger>,
    pub faults: Faults,
}

/// Serves `emulator` and builds the purger `name` for its account, sharing `registry`'s rate
/// limiters, driven with `engine`.
pub async fn emulated<E: purgekit_emulator::Emulated>(
    emulator: E,
    name: &str,
    registry: &Arc<RateRegistry>,
    engine: EngineConfig,
) -> Emulated<E> {
    let running = purgekit_emulator::serve(emulator.router(), ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let url = running.url();
    let toml = config_toml([(
        name,
        &emulator as &dyn purgekit_emulator::Emulated,
        url.as_str(),
    )])
    .unwrap();
    let config = Config::parse_with_env(&toml, |_| None).unwrap();
    let drive = Drive {
        rates: Some(registry.clone()),
        engine: Some(engine),
        transport: None,
    };
    let purger = config.build_with(&drive).unwrap();
    let faults = emulator.faults();
    Emulated {
        emulator,
        running,
        purger,
        faults,
    }
}

/// How much faster than the vendor's the emulators started by [`start`] run: a minute in
/// [`WINDOW`].
pub const SPEED: f64 = 100.0;

/// The sandbox's emulator of `kind`, as its own type `E`, with `overrides` (its
/// `purgekit emulate --limit` names and values, in the vendor's time: `("completes_after",
/// "100s")`) and then every rate window and completion time [`SPEED`] times shorter (a minute in
/// [`WINDOW`]), served; and the purger `name` for its account, sharing `registry`'s rate
/// limiters, driven with `engine`.
pub async fn start<E: purgekit_emulator::Emulated + Clone>(
    kind: &str,
    name: &str,
    registry: &Arc<RateRegistry>,
    engine: EngineConfig,
    overrides: &[(&str, &str)],
) -> Emulated<E> {
    let sandbox: Vec<_> = purgekit_emulator::sandbox()
        .into_iter()
        .filter(|e| e.kind() == kind)
        .collect();
    assert_eq!(sandbox.len(), 1, "no emulator of kind {kind}");
    let overrides: Vec<String> = overrides
        .iter()
        .map(|(key, value)| format!("{kind}.{key}={value}"))
        .collect();
    let adjusted = purgekit_emulator::adjust_all(sandbox, SPEED, &overrides)
        .unwrap()
        .remove(0);
    let emulator = adjusted
        .downcast_ref::<E>()
        .unwrap_or_else(|| {
            panic!(
                "the {kind} emulator is not a {}",
                std::any::type_name::<E>()
            )
        })
        .clone();
    emulated(emulator, name, registry, engine).await
}

/// `n` URLs every provider can purge (Adobe's demo company root in the path).
pub fn urls(n: usize) -> PurgeRequest {
    (0..n)
        .fold(PurgeRequest::builder(), |b, i| {
            b.url(format!(
                "https://s7d1.scene7.com/is/image/PurgekitDemo/asset-{i}.jpg"
            ))
        })
        .build()
        .unwrap()
}

/// The least time `batches` requests can take under `amount` requests per `per`: the last
/// one starts `(batches − 1) / amount` windows after the first.
pub fn min_requests_schedule(batches: usize, amount: usize, per: Duration) -> Duration {
    per * u32::try_from(batches.saturating_sub(1) / amount).unwrap()
}

/// The least time batches of these sizes take under item debt of `interval` per item: every
/// batch but the last must be paid off first.
pub fn min_debt_schedule(batch_items: &[usize], interval: Duration) -> Duration {
    let paid: usize = batch_items[..batch_items.len().saturating_sub(1)]
        .iter()
        .sum();
    interval * u32::try_from(paid).unwrap()
}
