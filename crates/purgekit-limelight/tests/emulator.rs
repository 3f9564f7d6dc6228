//! The Limelight provider through the `Purger` trait against the SmartPurge emulator, over real
//! HTTP on 127.0.0.1.
//!
//! The engine in core does not pace requests yet, so most tests run the emulator with no
//! per-item debt (`LimelightEmulatorConfig::fast`): back-to-back batches would otherwise meet
//! the documented one-item-per-second limit (429, code 1022), which `rate_limit_is_reported`
//! checks on purpose.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use purgekit_core::{
    Budget, EngineConfig, Error, Handle, Progress, ProviderPurger, PurgeRequest, Purger, RateLimit,
    RateRegistry, ReqwestTransport, RetryPolicy, State, Transport,
};
use purgekit_emulator::limelight::{
    DEMO_SHARED_KEY, DEMO_SHORTNAME, DEMO_USERNAME, LimelightEmulator, LimelightEmulatorConfig,
    PurgedItem,
};
use purgekit_emulator::{Fault, Running};
use purgekit_limelight::{Limelight, LimelightConfig, ListQuery, MAX_BODY_BYTES, Order};

/// The demo account on `server`, paced at the item debt `emulator` enforces (none when fast).
fn config_for(emulator: &LimelightEmulator, server: &Running) -> LimelightConfig {
    let interval = emulator.config().item_interval;
    let mut config = LimelightConfig::new(DEMO_SHORTNAME, DEMO_USERNAME, DEMO_SHARED_KEY)
        .with_endpoint(server.url());
    config.rate_limit = Some(RateLimit {
        requests: None,
        items: (!interval.is_zero()).then(|| Budget::new(1, interval)),
    });
    config
}

async fn start(config: LimelightEmulatorConfig) -> (LimelightEmulator, Running) {
    let emulator = LimelightEmulator::new(config);
    let server = emulator.start().await.unwrap();
    (emulator, server)
}

/// A purger with its own rate limiter: tests in this binary run at once against separate
/// emulators and must not share (and wait on) one limiter for the demo shortname.
fn purger(config: LimelightConfig) -> Arc<dyn Purger> {
    purger_with(config, EngineConfig::default())
}

fn purger_with(config: LimelightConfig, engine: EngineConfig) -> Arc<dyn Purger> {
    Arc::new(
        ProviderPurger::new("ll", Limelight::new(config).unwrap())
            .with_rate_registry(Arc::new(RateRegistry::new()))
            .with_config(engine),
    )
}

/// One attempt, no retries: to see how a single response is classified.
fn single_attempt() -> EngineConfig {
    EngineConfig {
        retry: RetryPolicy::never(),
        ..EngineConfig::default()
    }
}

/// Polls until every handle reports `stats_avail`, or panics after 5 s.
async fn wait_for_stats(purger: &dyn Purger, handles: &[String]) {
    for handle in handles {
        let handle = Handle(handle.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let status = purger.status("ll", &handle).await.unwrap();
            if status.detail.starts_with("stats_avail") {
                assert_eq!(status.progress, Progress::Completed);
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "stuck at {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn distinct_handles(report: &purgekit_core::Report) -> Vec<String> {
    let mut handles: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| r.handle.as_deref().map(str::to_owned))
        .collect();
    handles.sort();
    handles.dedup();
    handles
}

#[tokio::test]
async fn purges_350_urls_3_patterns_and_5_tags_each_exactly_once() {
    let mut emu_config = LimelightEmulatorConfig::demo().fast();
    emu_config
        .origins
        .insert("cdn.example.com".into(), "origin.example.com".into());
    let (emulator, server) = start(emu_config).await;
    let mut config = config_for(&emulator, &server);
    config
        .origins
        .insert("cdn.example.com".into(), "origin.example.com".into());
    let purger = purger(config);

    let mut builder = PurgeRequest::builder();
    let urls: Vec<String> = (0..350)
        .map(|i| format!("https://cdn.example.com/assets/{i}.js"))
        .collect();
    for url in &urls {
        builder = builder.url(url);
    }
    let patterns = ["img/*", "css/*.css", "fonts/*"];
    for p in patterns {
        builder = builder.pattern(format!("https://cdn.example.com/{p}"));
    }
    let tags: Vec<String> = (0..5).map(|i| format!("release-{i}")).collect();
    for t in &tags {
        builder = builder.tag(t);
    }
    let report = purger.purge(&builder.build().unwrap()).await.unwrap();

    assert_eq!(report.results.len(), 358);
    assert!(
        report
            .results
            .iter()
            .all(|r| r.state == State::Accepted && r.attempts == 1),
        "{:?}",
        report.results.iter().find(|r| r.state != State::Accepted)
    );
    // Every request was signed correctly and accepted; none over the limits.
    let seen = emulator.requests();
    assert_eq!(seen.len(), 4, "358 items in 100-item requests");
    assert!(
        seen.iter().all(|r| r.status == 201 && r.method == "POST"),
        "{seen:?}"
    );
    for s in emulator.submissions() {
        assert!(s.patterns.len() + s.tags.len() <= 100);
        assert!(s.body_bytes <= MAX_BODY_BYTES);
    }
    // Each target was received exactly once, in its wire form.
    let purged = emulator.purged();
    assert_eq!(purged.len(), 358);
    let mut exact = Vec::new();
    let mut globs = Vec::new();
    let mut got_tags = Vec::new();
    for item in purged {
        match item {
            PurgedItem::Pattern(p) if p.exact => exact.push(p.pattern),
            PurgedItem::Pattern(p) => globs.push(p.pattern),
            PurgedItem::Tag(t) => got_tags.push(t.tag),
        }
    }
    assert_eq!(exact, urls);
    let want_globs: Vec<String> = patterns
        .iter()
        .map(|p| format!("https://origin.example.com/{p}"))
        .collect();
    assert_eq!(globs, want_globs);
    assert_eq!(got_tags, tags);

    let handles = distinct_handles(&report);
    assert_eq!(handles.len(), 4);
    wait_for_stats(&*purger, &handles).await;
}

#[tokio::test]
async fn long_patterns_that_fit_100_items_but_not_32_kb_are_split_on_bytes() {
    let (emulator, server) = start(LimelightEmulatorConfig::demo().fast()).await;
    let purger = purger(config_for(&emulator, &server));
    let mut builder = PurgeRequest::builder();
    let mut want = Vec::new();
    for i in 0..95 {
        let p = format!("https://origin.example.com/{i:03}/{}/*", "d".repeat(600));
        want.push(p.clone());
        builder = builder.pattern(p);
    }
    let report = purger.purge(&builder.build().unwrap()).await.unwrap();
    assert!(report.results.iter().all(|r| r.state == State::Accepted));
    let submissions = emulator.submissions();
    assert!(
        submissions.len() >= 2,
        "95 × ~680 bytes cannot go in one 32 000-byte body"
    );
    for s in &submissions {
        assert!(s.body_bytes <= MAX_BODY_BYTES, "{} bytes", s.body_bytes);
    }
    // Greedy: every request but the last is full to within one pattern.
    for s in &submissions[..submissions.len() - 1] {
        assert!(
            s.body_bytes + 700 > MAX_BODY_BYTES,
            "{} bytes",
            s.body_bytes
        );
    }
    let got: Vec<String> = submissions
        .iter()
        .flat_map(|s| s.patterns.iter().map(|p| p.pattern.clone()))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    let (emulator, server) = start(LimelightEmulatorConfig::demo().fast()).await;

    let mut bad_key = config_for(&emulator, &server);
    bad_key.shared_key = "zz-not-hex".into();
    match Limelight::new(bad_key) {
        Err(Error::Config { field, message }) => {
            assert_eq!(field, "shared_key");
            assert!(!message.contains("zz-not-hex"), "{message}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }

    let purger = purger(config_for(&emulator, &server));
    let long = format!("https://origin.example.com/{}*", "p".repeat(5000));
    let err = purger
        .purge(&PurgeRequest::builder().pattern(long).build().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { rule, .. } if rule.contains("4096")),
        "{err}"
    );

    let with_query = PurgeRequest::builder()
        .url("https://cdn.example.com/a.js")
        .callback("https://hooks.example.com/done?token=1")
        .build()
        .unwrap();
    let err = purger.purge(&with_query).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { input, rule } if input.contains("?token=1") && rule.contains("query")),
        "{err}"
    );
    assert!(purger.plan(&with_query).is_err());

    assert!(emulator.requests().is_empty(), "{:?}", emulator.requests());
}

#[tokio::test]
async fn options_reach_the_wire_and_dry_run_purges_nothing() {
    let (emulator, server) = start(LimelightEmulatorConfig::demo().fast()).await;
    let purger = purger(config_for(&emulator, &server));
    let request = PurgeRequest::builder()
        .url("https://cdn.example.com/a.js")
        .tag("home")
        .delete()
        .include_query()
        .notify("ops@example.com")
        .callback("https://hooks.example.com/done")
        .note("deploy 7")
        .dry_run()
        .build()
        .unwrap();
    let report = purger.purge(&request).await.unwrap();
    assert!(
        report.results.iter().all(|r| r.state == State::DryRun),
        "{report:?}"
    );
    let [s] = emulator.submissions().try_into().unwrap();
    assert!(s.dry_run);
    assert!(s.patterns[0].evict && s.patterns[0].incqs && s.patterns[0].exact);
    assert!(s.tags[0].evict);
    assert_eq!(
        s.callback.as_deref(),
        Some("https://hooks.example.com/done")
    );
    assert_eq!(s.notes.as_deref(), Some("deploy 7"));
    assert!(emulator.purged().is_empty());
}

#[tokio::test]
async fn the_item_debt_is_paid_and_an_eager_client_is_refused_with_1022() {
    // The documented debt compressed a hundredfold: 10 ms an item, so 100 items cost 1 s.
    let (emulator, server) = start(LimelightEmulatorConfig {
        item_interval: Duration::from_millis(10),
        ..LimelightEmulatorConfig::demo().fast()
    })
    .await;
    let mut builder = PurgeRequest::builder();
    for i in 0..101 {
        builder = builder.url(format!("https://cdn.example.com/{i}.css"));
    }
    let request = builder.build().unwrap();

    // A client that knows the limit waits out the first batch's debt: nothing is refused.
    let started = std::time::Instant::now();
    let report = purger(config_for(&emulator, &server))
        .purge(&request)
        .await
        .unwrap();
    assert_eq!(report.summary.accepted, 101, "{:#?}", report.summary);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(emulator.rejections(), 0);

    // A client told there is no limit, and not retrying, sends its second batch while the
    // account is still in debt: SmartPurge's 1022, classified as rate limited. Against an
    // account whose debt is a second an item, so its first batch's 100 s of debt outlasts any
    // delay a loaded machine puts between the two requests.
    let (emulator, server) = start(LimelightEmulatorConfig {
        item_interval: Duration::from_secs(1),
        ..LimelightEmulatorConfig::demo().fast()
    })
    .await;
    let mut eager = config_for(&emulator, &server);
    eager.rate_limit = Some(RateLimit::default());
    let report = purger_with(eager, single_attempt())
        .purge(&request)
        .await
        .unwrap();
    assert_eq!(report.summary.accepted, 100);
    let failed: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.state == State::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    let error = failed[0].error.as_deref().unwrap();
    assert!(
        error.contains("rate limited") && error.contains("1022"),
        "{error}"
    );
    assert_eq!(emulator.rejections(), 1);
}

#[tokio::test]
async fn credentials_shortname_and_faults_are_classified() {
    let (emulator, server) = start(LimelightEmulatorConfig::demo().fast()).await;
    let request = PurgeRequest::builder()
        .url("https://cdn.example.com/a.js")
        .build()
        .unwrap();
    let error_of = |report: purgekit_core::Report| report.results[0].error.clone().unwrap();

    let mut wrong_key = config_for(&emulator, &server);
    wrong_key.shared_key = "00".repeat(32).into();
    let e = error_of(
        purger_with(wrong_key, single_attempt())
            .purge(&request)
            .await
            .unwrap(),
    );
    assert!(
        e.starts_with("authentication failed") && e.contains("1026"),
        "{e}"
    );

    let mut wrong_user = config_for(&emulator, &server);
    wrong_user.username = "mallory".into();
    let e = error_of(
        purger_with(wrong_user, single_attempt())
            .purge(&request)
            .await
            .unwrap(),
    );
    assert!(
        e.starts_with("authentication failed") && e.contains("1024"),
        "{e}"
    );

    let mut other_account = config_for(&emulator, &server);
    other_account.shortname = "someone-else".into();
    let e = error_of(
        purger_with(other_account, single_attempt())
            .purge(&request)
            .await
            .unwrap(),
    );
    assert!(e.contains("forbidden") && e.contains("1025"), "{e}");

    let good = purger_with(config_for(&emulator, &server), single_attempt());
    emulator.faults().push(Fault::status(503));
    let e = error_of(good.purge(&request).await.unwrap());
    assert!(e.starts_with("transient failure"), "{e}");
    emulator.faults().push(Fault::Malformed);
    let e = error_of(good.purge(&request).await.unwrap());
    assert!(e.starts_with("protocol error"), "{e}");
    emulator.faults().push(Fault::DropConnection);
    let e = error_of(good.purge(&request).await.unwrap());
    assert!(e.starts_with("transient failure"), "{e}");
    assert!(emulator.purged().is_empty());

    let bad_id = Handle("ffffffffffffffffffffffffffffffff".into());
    let e = good.status("ll", &bad_id).await.unwrap_err();
    assert_eq!(e, Error::rejected("404", "HTTP 404 Not Found"));
}

#[tokio::test]
async fn list_and_translate_round_trip() {
    let mut emu_config = LimelightEmulatorConfig::demo().fast();
    emu_config
        .origins
        .insert("demo.vo.llnwd.net".into(), "origin.example.com".into());
    let (emulator, server) = start(emu_config).await;
    let provider = Limelight::new(config_for(&emulator, &server)).unwrap();
    let purger = purger(config_for(&emulator, &server));
    for i in 0..3 {
        let r = PurgeRequest::builder()
            .tag(format!("t{i}"))
            .build()
            .unwrap();
        purger.purge(&r).await.unwrap();
    }
    let transport = ReqwestTransport::default();
    let query = ListQuery {
        limit: Some(2),
        order: Some(Order::Asc),
        ..ListQuery::default()
    };
    let response = transport
        .send(
            provider.encode_list(&query, SystemTime::now()).unwrap(),
            purgekit_core::DEFAULT_MAX_RESPONSE_BYTES,
        )
        .await
        .unwrap();
    let list = provider.decode_list(response).unwrap();
    assert_eq!(list.total, 3);
    let tags: Vec<&str> = list
        .requests
        .iter()
        .map(|r| r.tags[0].tag.as_str())
        .collect();
    assert_eq!(tags, ["t0", "t1"]);

    let response = transport
        .send(
            provider
                .encode_translate(
                    "http://demo.vo.llnwd.net/to/translate?x=1&y=2",
                    SystemTime::now(),
                )
                .unwrap(),
            purgekit_core::DEFAULT_MAX_RESPONSE_BYTES,
        )
        .await
        .unwrap();
    assert_eq!(
        provider.decode_translate(response).unwrap(),
        "http://origin.example.com/to/translate?x=1&y=2"
    );
    let response = transport
        .send(
            provider
                .encode_translate("http://elsewhere.example/x", SystemTime::now())
                .unwrap(),
            purgekit_core::DEFAULT_MAX_RESPONSE_BYTES,
        )
        .await
        .unwrap();
    let e = provider.decode_translate(response).unwrap_err();
    assert!(
        matches!(e, Error::Rejected { ref code, .. } if code == "1031"),
        "{e}"
    );
}
