//! The Fastly codec driven by the engine against the emulator over real HTTP on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use purgekit_core::{
    AuthOutcome, EngineConfig, Error, ProviderPurger, PurgeRequest, Purger, RateRegistry,
    RetryPolicy, State,
};
use purgekit_emulator::fastly::{FastlyEmulator, FastlyEmulatorConfig};
use purgekit_emulator::{Running, serve};
use purgekit_fastly::{Fastly, FastlyConfig};

async fn start(config: FastlyEmulatorConfig) -> (FastlyEmulator, Running) {
    let emulator = FastlyEmulator::new(config);
    let running = serve(emulator.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (emulator, running)
}

fn purger(e: &FastlyEmulator, running: &Running, token: &str) -> ProviderPurger<Fastly> {
    let mut config = FastlyConfig::new(e.config().service_id.clone()).with_endpoint(running.url());
    config.api_token = Some(token.into());
    let provider = Fastly::with_env(config, |_| None).unwrap();
    ProviderPurger::new("fastly", provider)
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
async fn two_thousand_urls_and_six_hundred_keys_each_reach_fastly_once() {
    let (e, running) = start(FastlyEmulatorConfig::demo()).await;
    let token = e.config().api_token.clone();
    let p = purger(&e, &running, &token);
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
    let request = b.wait(Duration::from_secs(10)).build().unwrap();
    let report = p.purge(&request).await.unwrap();
    assert_eq!(report.results.len(), 2625);
    for row in &report.results[..2600] {
        assert_eq!(row.state, State::Completed, "{row:?}");
        assert!(
            row.handle.as_deref().is_some_and(|h| h.starts_with("108-")),
            "{row:?}"
        );
        assert!(
            row.warnings
                .iter()
                .any(|w| w.contains("complete when accepted"))
        );
    }
    for row in &report.results[2600..] {
        assert_eq!(row.state, State::Unsupported, "{row:?}");
        assert!(
            row.error.as_deref().unwrap().contains("surrogate key"),
            "{row:?}"
        );
    }
    let purges = e.purges();
    assert_eq!(purges.len(), 2600, "each URL and key exactly once");
    let mut urls: Vec<&str> = purges
        .iter()
        .filter(|p| p.call == "url")
        .map(|p| p.value.as_str())
        .collect();
    urls.sort_unstable();
    urls.dedup();
    assert_eq!(urls.len(), 2000);
    assert!(urls.contains(&"www.example.com/assets/7.js?v=1"));
    assert!(purges.iter().all(|p| p.soft), "invalidate is a soft purge");
    // 2,000 single-URL requests and 3 batch requests (256 + 256 + 88 keys).
    let requests = e.requests();
    assert_eq!(requests.len(), 2003);
    assert!(requests.iter().all(|r| r.status == 200));
    assert_eq!(e.rejections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_is_a_hard_purge_all_and_only_with_delete() {
    let (e, running) = start(FastlyEmulatorConfig::demo()).await;
    let token = e.config().api_token.clone();
    let p = purger(&e, &running, &token);
    let soft = PurgeRequest::builder().everything().build().unwrap();
    let report = p.purge(&soft).await.unwrap();
    assert_eq!(report.results[0].state, State::Unsupported);
    assert!(
        report.results[0]
            .error
            .as_deref()
            .unwrap()
            .contains("--delete")
    );
    assert!(e.requests().is_empty());
    let hard = PurgeRequest::builder()
        .everything()
        .delete()
        .build()
        .unwrap();
    let report = p.purge(&hard).await.unwrap();
    assert_eq!(
        report.results[0].state,
        State::Accepted,
        "{:?}",
        report.results[0]
    );
    assert_eq!(report.results[0].handle.as_deref(), Some("purge_all"));
    let purges = e.purges();
    assert_eq!(
        (purges.len(), purges[0].call, purges[0].soft),
        (1, "all", false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_write_window_is_waited_out_from_the_reset_header() {
    // One purge-all per 2 s window; the second waits for Fastly-RateLimit-Reset.
    let (e, running) = start(FastlyEmulatorConfig {
        writes_per_window: 1,
        write_window: Duration::from_secs(2),
        ..FastlyEmulatorConfig::demo()
    })
    .await;
    let token = e.config().api_token.clone();
    let hard = PurgeRequest::builder()
        .everything()
        .delete()
        .build()
        .unwrap();
    // Two purgers with their own rate registries: the second does not know the first's write.
    for _ in 0..2 {
        let report = purger(&e, &running, &token).purge(&hard).await.unwrap();
        assert_eq!(
            report.results[0].state,
            State::Accepted,
            "{:?}",
            report.results[0]
        );
    }
    assert_eq!(e.purges().len(), 2);
    assert_eq!(e.rejections(), 1, "one 429, then a wait until the reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_fatal_not_retried_and_never_echoed() {
    let (e, running) = start(FastlyEmulatorConfig::demo()).await;
    let p = purger(&e, &running, "wrong-token-hunter2");
    let request = PurgeRequest::builder()
        .url("https://www.example.com/a.js")
        .tag("k")
        .build()
        .unwrap();
    let report = p.purge(&request).await.unwrap();
    for row in &report.results {
        assert_eq!(row.state, State::Failed, "{row:?}");
        assert_eq!(row.attempts, 1, "{row:?}");
        let error = row.error.as_deref().unwrap();
        assert!(
            error.contains("401") && !error.contains("hunter2"),
            "{error}"
        );
    }
    assert_eq!(e.requests().len(), 2);
    assert!(e.purges().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_purge_all_scope_is_refused() {
    let (e, running) = start(FastlyEmulatorConfig {
        token_scopes: vec!["purge_select".into()],
        ..FastlyEmulatorConfig::demo()
    })
    .await;
    let token = e.config().api_token.clone();
    let request = PurgeRequest::builder()
        .url("https://www.example.com/a.js")
        .everything()
        .delete()
        .build()
        .unwrap();
    let report = purger(&e, &running, &token).purge(&request).await.unwrap();
    assert_eq!(report.results[0].state, State::Accepted);
    assert_eq!(report.results[1].state, State::Failed);
    assert!(
        report.results[1]
            .error
            .as_deref()
            .unwrap()
            .contains("purge_all")
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_sending() {
    let (e, running) = start(FastlyEmulatorConfig::demo()).await;
    let token = e.config().api_token.clone();
    let request = PurgeRequest::builder()
        .url("https://www.example.com/a.js")
        .tag("caf\u{e9}")
        .build()
        .unwrap();
    let err = purger(&e, &running, &token)
        .purge(&request)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput { .. }) && err.to_string().contains("tag:caf"),
        "{err}"
    );
    assert!(e.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credentials_check_reads_the_token_and_its_scopes() {
    for (scopes, token_ok, accepted) in [
        (vec!["global"], true, true),
        (vec!["purge_select"], true, true),
        (vec!["global:read"], true, false),
        (vec!["global"], false, false),
    ] {
        let (e, running) = start(FastlyEmulatorConfig {
            token_scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..FastlyEmulatorConfig::demo()
        })
        .await;
        let token = if token_ok {
            e.config().api_token.clone()
        } else {
            "wrong-token-hunter2".to_owned()
        };
        let check = purger(&e, &running, &token).check_auth().await.remove(0);
        match &check.outcome {
            AuthOutcome::Accepted => assert!(accepted, "{scopes:?}"),
            AuthOutcome::Refused(why) => {
                assert!(!accepted, "{scopes:?}: {why}");
                assert!(!why.contains("hunter2"), "{why}");
                if token_ok {
                    assert!(why.contains("global:read"), "{why}");
                }
            }
            other => panic!("{scopes:?}: {other:?}"),
        }
        let seen = e.requests();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            (seen[0].method.as_str(), seen[0].path_and_query.as_str()),
            ("GET", "/tokens/self")
        );
        assert!(e.purges().is_empty());
    }
}
