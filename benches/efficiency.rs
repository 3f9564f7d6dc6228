//! How close the engine gets to the fastest schedule each provider's rate limit allows, against
//! the emulators over loopback HTTP with the minute compressed to 600 ms.
//!
//! Prints one JSON line per case:
//! `{"case":…,"items":…,"seconds":…,"min_seconds":…,"efficiency":…,"rejections":…}` where
//! `min_seconds` is the least time the limit allows (the last request may start no earlier),
//! `efficiency` = `min_seconds / seconds` (`null` when the limit allows every request at once),
//! and `rejections` counts the emulators' rate-limit
//! refusals. The fan-out case also gives `slowest_alone_seconds` (the slowest single-provider
//! case) and `vs_slowest` (its wall time over that).
//!
//! - level3: 5,000 URLs = 25 requests under 10 per window (fixed windows at the emulator).
//! - limelight: 450 items = 5 requests under 60 items per window as debt (10 ms per item).
//! - dynamicmedia: Adobe publishes no limit; 25,000 URLs = 25 requests under a client-side
//!   10 per window (`EngineConfig::rate`), which the emulator does not enforce.
//! - akamai: 50,000 URLs under Akamai's token buckets with the refill compressed to the same
//!   scale (a minute in 600 ms: the URL bucket holds 10,000 and refills 20,000 a second), both
//!   at the emulator and declared in the config table it writes; ≤ 50,000-byte requests one at a
//!   time. The last request can start once `50,000 − 10,000` URL tokens have refilled.
//! - level3-multi-host: a release of 50 hosts × 4 paths, once at access-group scope (the
//!   planner packs every host into one request) and once with `access_group_scope = false`
//!   (one request per network identifier: 50 requests, 5 windows), also printing `requests`.
//! - fanout: the limelight case's 450 URLs through one `FanOut` over all three; Limelight's debt
//!   is the slowest member, so `vs_slowest` compares with the limelight case.
//! - cloudfront: not a rate but an in-flight capacity. 10,000 paths + 40 wildcards = path
//!   batches of 3,000, 3,000, 3,000, 1,000 and wildcard batches of 15, 15, 10 under 3,000 paths
//!   and 15 wildcards in progress, each invalidation completing 1 s after it is created: the
//!   last path batch may start 3 s after the first (each round waits for the previous one to
//!   complete), which is `min_seconds`; no `--wait`, so the purge ends once it is accepted.
//!   `rejections` counts `TooManyInvalidationsInProgress`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{WINDOW, engine, min_debt_schedule, min_requests_schedule, urls};
use purgekit::{
    Budget, EngineConfig, FanOut, Outcome, PollPolicy, PurgeContext, PurgeRequest, Purger,
    RateLimit, RateRegistry,
};
use purgekit_emulator::akamai::{AkamaiEmulator, AkamaiEmulatorConfig};
use purgekit_emulator::cloudfront::CloudFrontEmulator;
use purgekit_emulator::dynamicmedia::DynamicMediaEmulator;
use purgekit_emulator::level3::Level3Emulator;
use purgekit_emulator::limelight::LimelightEmulator;

struct Measured {
    items: usize,
    seconds: f64,
    min_seconds: f64,
    rejections: usize,
}

fn dm_config() -> EngineConfig {
    EngineConfig {
        rate: Some(RateLimit {
            requests: Some(Budget::new(10, WINDOW)),
            items: None,
        }),
        ..engine(3)
    }
}

async fn timed(purger: &dyn Purger, request: &PurgeRequest) -> f64 {
    let started = Instant::now();
    let report = purger
        .purge_with(request, &PurgeContext::default())
        .await
        .expect("valid input");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.outcome(), Outcome::Success, "{:?}", report.summary);
    seconds
}

/// Level 3 alone, with rate limiters of its own.
async fn level3_alone() -> common::Emulated<Level3Emulator> {
    common::start(
        "level3",
        "l3",
        &Arc::new(RateRegistry::new()),
        engine(3),
        &[],
    )
    .await
}

async fn level3() -> Measured {
    let l3 = level3_alone().await;
    let seconds = timed(&*l3.purger, &urls(5_000)).await;
    Measured {
        items: 5_000,
        seconds,
        min_seconds: min_requests_schedule(25, 10, WINDOW).as_secs_f64(),
        rejections: l3.emulator.rejections(),
    }
}

/// 50 hosts × 4 paths, path by path as a deploy tool lists them.
fn release() -> PurgeRequest {
    let mut builder = PurgeRequest::builder();
    for path in ["/index.html", "/app.js", "/app.css", "/logo.svg"] {
        for h in 0..50 {
            builder = builder.url(format!("https://www{h}.example.com{path}"));
        }
    }
    builder.build().unwrap()
}

/// The release through Level 3, at access-group scope or (`shared == false`) one request per
/// network identifier; returns the measure and the requests sent.
async fn level3_multi_host(shared: bool) -> (Measured, usize) {
    let l3 = level3_alone().await;
    let mut config = purgekit::level3::Level3Config::new(
        l3.emulator.config().key_id.clone(),
        l3.emulator.config().secret.clone(),
        l3.emulator.config().access_group.clone(),
        l3.emulator.config().scid.clone(),
    );
    config.endpoint = l3.running.url();
    config.rate_limit = Some(RateLimit {
        requests: Some(Budget::new(10, WINDOW)),
        items: None,
    });
    config.access_group_scope = shared;
    let purger =
        purgekit::ProviderPurger::new("l3", purgekit::level3::Level3::new(config).unwrap())
            .with_rate_registry(Arc::new(RateRegistry::new()))
            .with_config(engine(3));
    let seconds = timed(&purger, &release()).await;
    let requests = l3.emulator.requests().len();
    let measured = Measured {
        items: 200,
        seconds,
        min_seconds: min_requests_schedule(requests, 10, WINDOW).as_secs_f64(),
        rejections: l3.emulator.rejections(),
    };
    (measured, requests)
}

async fn limelight() -> Measured {
    let ll = common::start::<LimelightEmulator>(
        "limelight",
        "ll",
        &Arc::new(RateRegistry::new()),
        engine(3),
        &[],
    )
    .await;
    let seconds = timed(&*ll.purger, &urls(450)).await;
    Measured {
        items: 450,
        seconds,
        min_seconds: min_debt_schedule(&[100, 100, 100, 100, 50], WINDOW / 60).as_secs_f64(),
        rejections: ll.emulator.rejections(),
    }
}

async fn dynamicmedia() -> Measured {
    let dm = common::start::<DynamicMediaEmulator>(
        "dynamic-media",
        "dm",
        &Arc::new(RateRegistry::new()),
        dm_config(),
        &[],
    )
    .await;
    let seconds = timed(&*dm.purger, &urls(25_000)).await;
    Measured {
        items: 25_000,
        seconds,
        min_seconds: min_requests_schedule(25, 10, WINDOW).as_secs_f64(),
        rejections: 0,
    }
}

/// The measure and the number of requests accepted.
async fn akamai() -> (Measured, usize) {
    let minute = Duration::from_secs(60);
    let config = AkamaiEmulatorConfig {
        estimated_seconds: 0,
        ..AkamaiEmulatorConfig::demo().refill_faster(minute.as_secs_f64() / WINDOW.as_secs_f64())
    };
    let url_bucket = config.urls;
    let ak = common::emulated(
        AkamaiEmulator::new(config),
        "akamai",
        &Arc::new(RateRegistry::new()),
        engine(3),
    )
    .await;
    let items = 50_000;
    let seconds = timed(&*ak.purger, &urls(items)).await;
    let measured = Measured {
        items,
        seconds,
        min_seconds: (items as f64 - url_bucket.size) / url_bucket.refill_per_second,
        rejections: ak.emulator.rejections(),
    };
    (measured, ak.emulator.purges().len())
}

/// One `FanOut` purge of the limelight case's 450 URLs across all three providers: Limelight's
/// item debt is the slowest schedule (Level 3 and Adobe need 3 and 1 requests).
async fn fanout() -> Measured {
    let registry = Arc::new(RateRegistry::new());
    let l3 = common::start::<Level3Emulator>("level3", "l3", &registry, engine(3), &[]).await;
    let ll = common::start::<LimelightEmulator>("limelight", "ll", &registry, engine(3), &[]).await;
    let dm =
        common::start::<DynamicMediaEmulator>("dynamic-media", "dm", &registry, dm_config(), &[])
            .await;
    let (l3e, lle) = (l3.emulator.clone(), ll.emulator.clone());
    let all = FanOut::new(
        "all",
        vec![l3.purger.clone(), ll.purger.clone(), dm.purger.clone()],
    )
    .unwrap();
    let seconds = timed(&all, &urls(450)).await;
    let min = [
        min_requests_schedule(3, 10, WINDOW),
        min_debt_schedule(&[100, 100, 100, 100, 50], WINDOW / 60),
        min_requests_schedule(1, 10, WINDOW),
    ]
    .into_iter()
    .max()
    .unwrap();
    Measured {
        items: 3 * 450,
        seconds,
        min_seconds: min.as_secs_f64(),
        rejections: l3e.rejections() + lle.rejections(),
    }
}

/// CloudFront's in-flight capacity: see the module docs.
async fn cloudfront() -> Measured {
    const COMPLETES_AFTER: Duration = Duration::from_secs(1);
    let config = EngineConfig {
        // Completion is seen within 10 ms of happening.
        poll: PollPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(10),
        },
        ..engine(3)
    };
    let registry = Arc::new(RateRegistry::new());
    // The vendor's time, as `purgekit emulate --limit` takes it: `SPEED` times longer.
    let completes_after = format!("{}ms", COMPLETES_AFTER.mul_f64(common::SPEED).as_millis());
    let cf: common::Emulated<CloudFrontEmulator> = common::start(
        "cloudfront",
        "cf",
        &registry,
        config,
        &[("completes_after", &completes_after)],
    )
    .await;
    let mut b = PurgeRequest::builder();
    for i in 0..10_000 {
        b = b.url(format!("https://www.example.com/assets/{i}.js"));
    }
    for i in 0..40 {
        b = b.pattern(format!("https://www.example.com/dir{i}/*"));
    }
    let seconds = timed(&*cf.purger, &b.build().unwrap()).await;
    let (paths, wildcards) = cf.emulator.max_in_progress();
    assert!(paths <= 3000 && wildcards <= 15, "{paths} / {wildcards}");
    Measured {
        items: 10_040,
        seconds,
        min_seconds: (COMPLETES_AFTER * 3).as_secs_f64(),
        rejections: cf.emulator.refusals(),
    }
}

fn print(case: &str, m: &Measured, extra: &str) {
    // One request needs no wait: the limit allows it at once, and the ratio says nothing.
    let efficiency = if m.min_seconds == 0.0 {
        "null".to_owned()
    } else {
        round(m.min_seconds / m.seconds).to_string()
    };
    println!(
        "{{\"case\":\"{case}\",\"items\":{},\"seconds\":{},\"min_seconds\":{},\
         \"efficiency\":{efficiency},\"rejections\":{}{extra}}}",
        m.items,
        round(m.seconds),
        round(m.min_seconds),
        m.rejections,
    );
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let l3 = level3().await;
        print("level3", &l3, "");
        for (case, shared) in [
            ("level3-multi-host-ni-scope", false),
            ("level3-multi-host", true),
        ] {
            let (m, requests) = level3_multi_host(shared).await;
            print(case, &m, &format!(",\"requests\":{requests}"));
        }
        let ll = limelight().await;
        print("limelight", &ll, "");
        let dm = dynamicmedia().await;
        print("dynamicmedia", &dm, "");
        let (ak, requests) = akamai().await;
        print("akamai", &ak, &format!(",\"requests\":{requests}"));
        // The same 450 URLs through Limelight alone: the slowest member of the fan-out.
        let slowest = ll.seconds;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let all = fanout().await;
        let extra = format!(
            ",\"slowest_alone_seconds\":{},\"vs_slowest\":{}",
            round(slowest),
            round(all.seconds / slowest)
        );
        print("fanout", &all, &extra);
        let cf = cloudfront().await;
        print("cloudfront", &cf, "");
    });
}
