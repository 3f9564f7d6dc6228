//! The Cloudflare codec driven by the engine against the emulator over real HTTP on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use purgekit_cloudflare::{Cloudflare, CloudflareConfig, Plan};
use purgekit_core::{
    AuthOutcome, BucketConfig, EngineConfig, Error, ProviderPurger, PurgeRequest, Purger,
    RateRegistry, RetryPolicy, State,
};
use purgekit_emulator::cloudflare::{CloudflareEmulator, CloudflareEmulatorConfig};
use purgekit_emulator::{Running, serve};

async fn start(config: CloudflareEmulatorConfig) -> (CloudflareEmulator, Running) {
    let emulator = CloudflareEmulator::new(config);
    let running = serve(emulator.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (emulator, running)
}

/// A purger for the emulator's zone with `token`, its limits as the emulator runs them.
fn purger(
    e: &CloudflareEmulator,
    running: &Running,
    token: &str,
    edit: impl FnOnce(&mut CloudflareConfig),
) -> ProviderPurger<Cloudflare> {
    let c = e.config();
    let mut config = CloudflareConfig::new(c.zone_id.clone()).with_endpoint(running.url());
    config.api_token = Some(token.into());
    config.plan = Plan::Pro;
    let bucket = |spec: purgekit_emulator::BucketSpec| {
        // Whole seconds or milliseconds: the refill of the whole burst.
        let per = Duration::from_secs_f64(spec.size / spec.refill_per_second);
        BucketConfig {
            burst: spec.size as u32,
            refill: spec.size as u32,
            per,
        }
    };
    config.purge_bucket = Some(bucket(c.purge_bucket));
    config.files_bucket = Some(bucket(c.files_bucket));
    config.max_files_per_request = Some(c.files_per_request);
    config.max_items_per_request = Some(c.items_per_request);
    edit(&mut config);
    ProviderPurger::new(
        "cloudflare",
        Cloudflare::with_env(config, |_| None).unwrap(),
    )
    .with_rate_registry(Arc::new(RateRegistry::new()))
    .with_config(EngineConfig {
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        ..EngineConfig::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_tags_prefixes_and_hosts_each_reach_cloudflare_once_without_a_429() {
    // Buckets small enough that the engine has to pace both: 22 tag/prefix/host requests
    // against a burst of 5 refilled 10 a second; 2,000 URLs against 300 refilled 1,000 a
    // second.
    let (e, running) = start(CloudflareEmulatorConfig {
        purge_bucket: purgekit_emulator::BucketSpec {
            size: 5.0,
            refill_per_second: 10.0,
        },
        files_bucket: purgekit_emulator::BucketSpec {
            size: 300.0,
            refill_per_second: 1000.0,
        },
        ..CloudflareEmulatorConfig::demo()
    })
    .await;
    let token = e.config().api_token.clone();
    let p = purger(&e, &running, &token, |_| {});
    let mut b = PurgeRequest::builder();
    for i in 0..2000 {
        b = b.url(format!("https://www.example.com/assets/{i}.js?v=1"));
    }
    for i in 0..600 {
        b = b.tag(format!("product-{i}"));
    }
    for i in 0..20 {
        b = b.prefix(format!("https://www.example.com/dir{i}/"));
    }
    for i in 0..5 {
        b = b.host(format!("h{i}.example.com"));
    }
    let request = b
        .pattern("https://www.example.com/*.css")
        .wait(Duration::from_secs(10))
        .build()
        .unwrap();
    let report = p.purge(&request).await.unwrap();
    assert_eq!(report.results.len(), 2626);
    for row in &report.results[..2625] {
        assert_eq!(row.state, State::Completed, "{row:?}");
        assert_eq!(row.handle.as_deref(), Some(e.config().zone_id.as_str()));
        assert!(
            row.warnings
                .iter()
                .any(|w| w.contains("Cloudflare removes")),
            "{row:?}"
        );
    }
    let pattern = &report.results[2625];
    assert_eq!(pattern.state, State::Unsupported);
    assert!(pattern.error.as_deref().unwrap().contains("prefix:"));
    let mut got = purgekit_emulator::Emulated::purged(&e);
    got.sort();
    let before = got.len();
    got.dedup();
    assert_eq!((before, got.len()), (2625, 2625), "each exactly once");
    assert!(got.contains(&"prefix www.example.com/dir7/".to_owned()));
    assert!(got.contains(&"host h3.example.com".to_owned()));
    assert!(got.contains(&"www.example.com /assets/7.js?v=1".to_owned()));
    // 67 file requests, 20 tag requests, one of prefixes, one of hosts.
    assert_eq!(e.requests().len(), 89);
    assert_eq!(e.rejections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_for_its_retry_after() {
    let (e, running) = start(CloudflareEmulatorConfig {
        global_limit: 1,
        global_window: Duration::from_secs(2),
        ..CloudflareEmulatorConfig::demo()
    })
    .await;
    let token = e.config().api_token.clone();
    let request = PurgeRequest::builder().tag("a").build().unwrap();
    // Two purgers with their own rate registries: the second does not know the first's request.
    for _ in 0..2 {
        let report = purger(&e, &running, &token, |_| {})
            .purge(&request)
            .await
            .unwrap();
        assert_eq!(
            report.results[0].state,
            State::Accepted,
            "{:?}",
            report.results[0]
        );
    }
    assert_eq!(e.rejections(), 1);
    assert_eq!(e.purges().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_fatal_not_retried_and_never_echoed() {
    let (e, running) = start(CloudflareEmulatorConfig::demo()).await;
    let p = purger(&e, &running, "wrong-token-hunter2", |_| {});
    let request = PurgeRequest::builder()
        .url("https://www.example.com/a.js")
        .tag("t")
        .build()
        .unwrap();
    let report = p.purge(&request).await.unwrap();
    for row in &report.results {
        assert_eq!((row.state, row.attempts), (State::Failed, 1), "{row:?}");
        let error = row.error.as_deref().unwrap();
        assert!(
            error.contains("10000") && !error.contains("hunter2"),
            "{error}"
        );
    }
    assert_eq!(e.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_request_limit_refusal_is_fatal_and_names_the_limit() {
    let (e, running) = start(CloudflareEmulatorConfig::demo()).await;
    let token = e.config().api_token.clone();
    let p = purger(&e, &running, &token, |c| c.max_files_per_request = Some(40));
    let mut b = PurgeRequest::builder();
    for i in 0..40 {
        b = b.url(format!("https://www.example.com/{i}.js"));
    }
    let report = p.purge(&b.build().unwrap()).await.unwrap();
    let row = &report.results[0];
    assert_eq!((row.state, row.attempts), (State::Failed, 1), "{row:?}");
    let error = row.error.as_deref().unwrap();
    for part in [
        "40 files",
        "40 per request",
        "max_files_per_request",
        "at most 30",
    ] {
        assert!(error.contains(part), "{part}: {error}");
    }
}

#[tokio::test]
async fn bad_input_is_refused_before_sending() {
    let (e, running) = start(CloudflareEmulatorConfig::demo()).await;
    let token = e.config().api_token.clone();
    // A prefix with a query string: refused when the request is built, naming it.
    let err = PurgeRequest::builder()
        .prefix("https://www.example.com/dir/?v=1")
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput { .. })
            && err.to_string().contains("https://www.example.com/dir/?v=1"),
        "{err}"
    );
    let request = PurgeRequest::builder()
        .url("https://www.example.com/a.js")
        .tag("caf\u{e9}")
        .build()
        .unwrap();
    let err = purger(&e, &running, &token, |_| {})
        .purge(&request)
        .await
        .unwrap_err();
    assert!(
        err.is_usage() && err.to_string().contains("tag:caf"),
        "{err}"
    );
    assert!(e.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credentials_check_verifies_the_token_read_only() {
    for (token_ok, accepted) in [(true, true), (false, false)] {
        let (e, running) = start(CloudflareEmulatorConfig::demo()).await;
        let token = if token_ok {
            e.config().api_token.clone()
        } else {
            "wrong-token-hunter2".to_owned()
        };
        let check = purger(&e, &running, &token, |_| {})
            .check_auth()
            .await
            .remove(0);
        match &check.outcome {
            AuthOutcome::Accepted => assert!(accepted),
            AuthOutcome::Refused(why) => {
                assert!(!accepted, "{why}");
                assert!(why.contains("10000") && !why.contains("hunter2"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        let seen = e.requests();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            (seen[0].method.as_str(), seen[0].path_and_query.as_str()),
            ("GET", "/client/v4/user/tokens/verify")
        );
        assert!(e.purges().is_empty());
    }
}
