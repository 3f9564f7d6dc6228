//! The Akamai provider through the `Purger` trait against the Fast Purge emulator, over real
//! HTTP on 127.0.0.1.
//!
//! Where a test is about pacing, both sides run Akamai's documented bucket sizes with the refill
//! compressed 100× (the emulator's `refill_faster`, the provider's `with_buckets`), so a schedule
//! that needs 75 s of refill at Akamai takes 0.75 s here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use purgekit_akamai::{Akamai, AkamaiConfig, MAX_BODY_BYTES, default_buckets};
use purgekit_core::{
    EngineConfig, Error, ProviderPurger, PurgeRequest, Purger, RateRegistry, RetryPolicy, State,
};
use purgekit_emulator::akamai::{
    AkamaiEmulator, AkamaiEmulatorConfig, DEMO_ACCESS_TOKEN, DEMO_CLIENT_SECRET, DEMO_CLIENT_TOKEN,
};
use purgekit_emulator::{Fault, Running};

const SPEEDUP: u32 = 100;

async fn start(config: AkamaiEmulatorConfig) -> (AkamaiEmulator, Running) {
    let emulator = AkamaiEmulator::new(config);
    let server = emulator.start().await.unwrap();
    (emulator, server)
}

fn config_for(server: &Running, secret: &str) -> AkamaiConfig {
    AkamaiConfig::new(
        "akab-demo.purge.akamaiapis.net",
        DEMO_CLIENT_TOKEN,
        secret,
        DEMO_ACCESS_TOKEN,
    )
    .with_endpoint(server.url())
}

/// Akamai's buckets with the refill `SPEEDUP` times faster.
fn fast_buckets() -> Vec<purgekit_core::TokenBucket> {
    default_buckets()
        .into_iter()
        .map(|mut b| {
            b.refill.per /= SPEEDUP;
            b
        })
        .collect()
}

/// A purger with its own rate limiter (tests in this binary run at once against separate
/// emulators).
fn purger(config: AkamaiConfig, engine: EngineConfig) -> Arc<dyn Purger> {
    let provider = Akamai::new(config).unwrap().with_buckets(fast_buckets());
    Arc::new(
        ProviderPurger::new("akamai", provider)
            .with_rate_registry(Arc::new(RateRegistry::new()))
            .with_config(engine),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purges_25000_urls_and_300_tags_in_legal_requests_each_once_with_no_429() {
    let (emulator, server) =
        start(AkamaiEmulatorConfig::demo().refill_faster(f64::from(SPEEDUP))).await;
    let purger = purger(
        config_for(&server, DEMO_CLIENT_SECRET),
        EngineConfig::default(),
    );
    let mut builder = PurgeRequest::builder();
    for i in 0..25_000 {
        builder = builder.url(format!("https://www.example.com/assets/{i}/app.js"));
    }
    for i in 0..300 {
        builder = builder.tag(format!("release-{i}"));
    }
    let started = Instant::now();
    let report = purger.purge(&builder.build().unwrap()).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.summary.accepted, 25_300, "{:?}", report.summary);
    let seen: Vec<(u16, Option<u64>)> = emulator
        .requests()
        .iter()
        .map(|r| (r.status, r.content_length))
        .collect();
    assert!(report.results.iter().all(|r| r.attempts == 1), "{seen:?}");
    assert_eq!(emulator.rejections(), 0, "no 429 under the buckets");
    let purges = emulator.purges();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for p in &purges {
        assert!(p.body_bytes <= MAX_BODY_BYTES, "{} bytes", p.body_bytes);
        for o in &p.objects {
            *seen.entry((p.object_type.clone(), o.clone())).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 25_300);
    assert!(seen.values().all(|&n| n == 1), "every item once");
    assert_eq!(purges.iter().filter(|p| p.object_type == "tag").count(), 1);
    // 15,000 URLs beyond the 10,000 burst refill at 200 a second (compressed): ≥ 0.75 s.
    assert!(elapsed >= Duration::from_millis(750), "{elapsed:?}");
    assert!(emulator.requests().iter().all(|r| r.status == 201));
}

#[tokio::test]
async fn a_429_with_retry_after_is_honoured() {
    let (emulator, server) = start(AkamaiEmulatorConfig::demo()).await;
    emulator.faults().push(Fault::Status {
        status: 429,
        headers: vec![("Retry-After".into(), "1".into())],
    });
    let purger = purger(
        config_for(&server, DEMO_CLIENT_SECRET),
        EngineConfig::default(),
    );
    let request = PurgeRequest::builder()
        .url("https://www.example.com/a.js")
        .build()
        .unwrap();
    let started = Instant::now();
    let report = purger.purge(&request).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    let row = &report.results[0];
    assert_eq!((row.state, row.attempts), (State::Accepted, 2));
    let statuses: Vec<u16> = emulator.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 201]);
}

#[tokio::test]
async fn a_pattern_is_an_unsupported_row_and_the_rest_is_purged() {
    let (emulator, server) = start(AkamaiEmulatorConfig::demo()).await;
    let purger = purger(
        config_for(&server, DEMO_CLIENT_SECRET),
        EngineConfig::default(),
    );
    let request = PurgeRequest::builder()
        .pattern("https://www.example.com/img/*")
        .prefix("https://www.example.com/img/")
        .host("www.example.com")
        .url("https://www.example.com/a.js")
        .build()
        .unwrap();
    let report = purger.purge(&request).await.unwrap();
    for row in &report.results[..3] {
        assert_eq!((row.state, row.attempts), (State::Unsupported, 0));
        let error = row.error.as_deref().unwrap();
        assert!(error.contains("has no wildcards"), "{error}");
    }
    assert_eq!(report.results[3].state, State::Accepted);
    assert_eq!(emulator.purges().len(), 1);
}

#[tokio::test]
async fn everything_purges_the_configured_cpcodes_charged_per_cpcode() {
    let codes: Vec<u32> = (1001..=1100).collect();
    let (emulator, server) = start(AkamaiEmulatorConfig {
        contract_cpcodes: Some(codes.iter().copied().map(u64::from).collect()),
        ..AkamaiEmulatorConfig::demo().refill_faster(f64::from(SPEEDUP))
    })
    .await;
    let mut config = config_for(&server, DEMO_CLIENT_SECRET);
    config.cpcodes = codes.clone();
    let purger = purger(config, EngineConfig::default());
    let request = PurgeRequest::builder().everything().build().unwrap();
    // 4 × 100 CP code tokens from a bucket of 300: the fourth purge must wait for 100 tokens
    // of refill. Charged one token per request, it would go at once and be refused (429).
    for _ in 0..4 {
        let report = purger.purge(&request).await.unwrap();
        let row = &report.results[0];
        assert_eq!((row.state, row.attempts), (State::Accepted, 1), "{row:?}");
    }
    assert_eq!(emulator.rejections(), 0);
    let purges = emulator.purges();
    assert_eq!(purges.len(), 4);
    let want: Vec<String> = codes.iter().map(u32::to_string).collect();
    for p in &purges {
        assert_eq!(p.object_type, "cpcode");
        assert_eq!(p.objects, want);
    }
}

#[tokio::test]
async fn everything_without_cpcodes_is_refused_before_sending_naming_the_key() {
    let (emulator, server) = start(AkamaiEmulatorConfig::demo()).await;
    let purger = purger(
        config_for(&server, DEMO_CLIENT_SECRET),
        EngineConfig::default(),
    );
    let request = PurgeRequest::builder()
        .url("https://www.example.com/a.js")
        .everything()
        .build()
        .unwrap();
    let err = purger.purge(&request).await.unwrap_err();
    assert!(
        matches!(&err, Error::Config { field, .. } if field == "cpcodes"),
        "{err:?}"
    );
    assert!(emulator.requests().is_empty());
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_and_is_not_retried() {
    let (emulator, server) = start(AkamaiEmulatorConfig::demo()).await;
    let purger = purger(
        config_for(&server, "d3Jvbmctc2VjcmV0"),
        EngineConfig::default(),
    );
    let request = PurgeRequest::builder().tag("t").build().unwrap();
    let report = purger.purge(&request).await.unwrap();
    let row = &report.results[0];
    assert_eq!((row.state, row.attempts), (State::Failed, 1));
    let error = row.error.as_deref().unwrap();
    assert!(
        error.contains("authentication failed") && error.contains("signature"),
        "{error}"
    );
    assert!(!error.contains("d3Jvbmctc2VjcmV0"));
    assert_eq!(emulator.requests().len(), 1);
}

#[tokio::test]
async fn a_51000_byte_url_is_refused_before_anything_is_sent() {
    let (emulator, _server) = start(AkamaiEmulatorConfig::demo()).await;
    let long = format!("https://www.example.com/{}", "a".repeat(51_000 - 24));
    assert_eq!(long.len(), 51_000);
    let err = PurgeRequest::builder().url(&long).build().unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert!(
        err.to_string().contains("https://www.example.com/aaaa"),
        "{err}"
    );
    assert!(emulator.requests().is_empty());
}

#[tokio::test]
async fn waiting_completes_after_akamais_estimate_and_says_it_is_one() {
    let (emulator, server) = start(AkamaiEmulatorConfig {
        estimated_seconds: 1,
        ..AkamaiEmulatorConfig::demo()
    })
    .await;
    let purger = purger(
        config_for(&server, DEMO_CLIENT_SECRET),
        EngineConfig::default(),
    );
    let request = PurgeRequest::builder()
        .url("https://www.example.com/a.js")
        .tag("t")
        .wait(Duration::from_secs(10))
        .build()
        .unwrap();
    let started = Instant::now();
    let report = purger.purge(&request).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    for row in &report.results {
        assert_eq!(row.state, State::Completed, "{row:?}");
        assert!(
            row.warnings.iter().any(|w| w.contains("Akamai's estimate")),
            "{row:?}"
        );
    }
    // No status call exists, so none was made.
    assert_eq!(emulator.requests().len(), 2);
    // A wait shorter than the estimate leaves the rows accepted, saying why.
    let short = PurgeRequest::builder()
        .tag("u")
        .wait(Duration::from_millis(200))
        .build()
        .unwrap();
    let report = purger.purge(&short).await.unwrap();
    let row = &report.results[0];
    assert_eq!(row.state, State::Accepted);
    assert!(
        row.error.as_deref().unwrap().contains("no status call"),
        "{row:?}"
    );
    // And `status HANDLE` says the same.
    let handle = purgekit_core::Handle(row.handle.clone().unwrap());
    let status = purger.status("akamai", &handle).await.unwrap_err();
    assert!(status.to_string().contains("no status call"), "{status}");
}

#[tokio::test]
async fn problems_are_fatal_with_akamais_detail() {
    let (_emulator, server) = start(AkamaiEmulatorConfig::demo()).await;
    // A host name Akamai refuses: `bad URL hostname` (400), not retried.
    let purger = purger(
        config_for(&server, DEMO_CLIENT_SECRET),
        EngineConfig {
            retry: RetryPolicy::default(),
            ..EngineConfig::default()
        },
    );
    let request = PurgeRequest::builder()
        .url("https://bad_host.example.com/a.js")
        .build()
        .unwrap();
    let report = purger.purge(&request).await.unwrap();
    let row = &report.results[0];
    assert_eq!((row.state, row.attempts), (State::Failed, 1), "{row:?}");
    assert!(
        row.error.as_deref().unwrap().contains("bad URL hostname"),
        "{row:?}"
    );
}
