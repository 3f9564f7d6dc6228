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
use purgekit_emulator::cloudfront::{CloudFrontEmulator, CloudFrontEmulatorConfig};
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

/// Level 3: 10 requests per [`WINDOW`], fixed windows, both at the emulator and declared.
pub async fn level3(
    name: &str,
    registry: &Arc<RateRegistry>,
    config: EngineConfig,
) -> Emulated<Level3Emulator> {
    let emulator = Level3Emulator::new(Level3EmulatorConfig {
        rate_window: WINDOW,
        completion_time: Duration::from_millis(300),
        ..Level3EmulatorConfig::demo()
    });
    emulated(emulator, name, registry, config).await
}

/// Limelight: one item per `WINDOW / 60` of debt (60 per compressed minute).
pub async fn limelight(
    name: &str,
    registry: &Arc<RateRegistry>,
    config: EngineConfig,
) -> Emulated<LimelightEmulator> {
    let emulator = LimelightEmulator::new(LimelightEmulatorConfig {
        item_interval: WINDOW / 60,
        queued_for: Duration::from_millis(100),
        in_progress_for: Duration::from_millis(100),
        stats_after: Duration::from_millis(100),
        ..LimelightEmulatorConfig::demo()
    });
    emulated(emulator, name, registry, config).await
}

/// Adobe Dynamic Media: no published rate limit (none declared, none enforced); schema
/// 2014-04-03, whose answers carry a pollable handle.
pub async fn dynamicmedia(
    name: &str,
    registry: &Arc<RateRegistry>,
    config: EngineConfig,
) -> Emulated<DynamicMediaEmulator> {
    let emulator = DynamicMediaEmulator::new(DynamicMediaEmulatorConfig {
        estimated_seconds: 0,
        completion_after: Duration::from_millis(300),
        ping_after_seconds: 0,
        ..DynamicMediaEmulatorConfig::demo()
    });
    emulated(emulator, name, registry, config).await
}

/// CloudFront: the documented in-progress capacity (3,000 paths, 15 wildcards), invalidations
/// completing after `completes_after`.
pub async fn cloudfront(
    name: &str,
    registry: &Arc<RateRegistry>,
    config: EngineConfig,
    completes_after: Duration,
) -> Emulated<CloudFrontEmulator> {
    let emulator = CloudFrontEmulator::new(CloudFrontEmulatorConfig {
        completes_after,
        ..CloudFrontEmulatorConfig::demo()
    });
    emulated(emulator, name, registry, config).await
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
