//! The three provider emulators on 127.0.0.1 with compressed rate windows, and a purger for
//! each whose declared limits match (`purgekit::sandbox::*_config_for`): shared by `tests/engine_emulators.rs` and
//! `benches/efficiency.rs`.
#![allow(dead_code)]

pub mod decoders;
pub mod hostile;

use std::sync::Arc;
use std::time::Duration;

use purgekit::dynamicmedia::DynamicMedia;
use purgekit::level3::Level3;
use purgekit::limelight::Limelight;
use purgekit::sandbox::{dynamic_media_config_for, level3_config_for, limelight_config_for};
use purgekit::{EngineConfig, Provider, ProviderPurger, PurgeRequest, RateRegistry, RetryPolicy};
use purgekit_emulator::dynamicmedia::{DynamicMediaEmulator, DynamicMediaEmulatorConfig};
use purgekit_emulator::level3::{Level3Emulator, Level3EmulatorConfig};
use purgekit_emulator::limelight::{LimelightEmulator, LimelightEmulatorConfig};
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
pub struct Emulated<P: Provider, E> {
    pub emulator: E,
    pub running: Running,
    pub purger: ProviderPurger<P>,
    pub faults: Faults,
}

/// `provider` driven under `name`, with `config`, sharing `registry`'s rate limiters.
fn purger<P: Provider>(
    name: &str,
    provider: P,
    registry: &Arc<RateRegistry>,
    config: EngineConfig,
) -> ProviderPurger<P> {
    ProviderPurger::new(name, provider)
        .with_config(config)
        .with_rate_registry(registry.clone())
}

/// Level 3: 10 requests per [`WINDOW`], fixed windows, both at the emulator and declared.
pub async fn level3(
    name: &str,
    registry: &Arc<RateRegistry>,
    config: EngineConfig,
) -> Emulated<Level3, Level3Emulator> {
    let emulator = Level3Emulator::new(Level3EmulatorConfig {
        rate_window: WINDOW,
        completion_time: Duration::from_millis(300),
        ..Level3EmulatorConfig::demo()
    });
    let running = emulator.start().await.unwrap();
    let provider = Level3::new(level3_config_for(&emulator, &running.url())).unwrap();
    let faults = emulator.faults();
    Emulated {
        purger: purger(name, provider, registry, config),
        emulator,
        running,
        faults,
    }
}

/// Limelight: one item per `WINDOW / 60` of debt (60 per compressed minute).
pub async fn limelight(
    name: &str,
    registry: &Arc<RateRegistry>,
    config: EngineConfig,
) -> Emulated<Limelight, LimelightEmulator> {
    let emulator = LimelightEmulator::new(LimelightEmulatorConfig {
        item_interval: WINDOW / 60,
        queued_for: Duration::from_millis(100),
        in_progress_for: Duration::from_millis(100),
        stats_after: Duration::from_millis(100),
        ..LimelightEmulatorConfig::demo()
    });
    let running = emulator.start().await.unwrap();
    let provider = Limelight::new(limelight_config_for(&emulator, &running.url())).unwrap();
    let faults = emulator.faults();
    Emulated {
        purger: purger(name, provider, registry, config),
        emulator,
        running,
        faults,
    }
}

/// Adobe Dynamic Media: no published rate limit (none declared, none enforced); schema
/// 2014-04-03, whose answers carry a pollable handle.
pub async fn dynamicmedia(
    name: &str,
    registry: &Arc<RateRegistry>,
    config: EngineConfig,
) -> Emulated<DynamicMedia, DynamicMediaEmulator> {
    let emulator = DynamicMediaEmulator::new(DynamicMediaEmulatorConfig {
        estimated_seconds: 0,
        completion_after: Duration::from_millis(300),
        ping_after_seconds: 0,
        ..DynamicMediaEmulatorConfig::demo()
    });
    let running = emulator.start().await.unwrap();
    let provider = DynamicMedia::new(dynamic_media_config_for(&emulator, &running.url())).unwrap();
    let faults = emulator.faults();
    Emulated {
        purger: purger(name, provider, registry, config),
        emulator,
        running,
        faults,
    }
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
