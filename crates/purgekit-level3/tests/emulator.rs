//! The Level 3 provider through the `Purger` trait against the Level 3 emulator over loopback
//! HTTP: what the emulator received, in which batches, and what the report says.
//!
//! The engine in core is still the minimal one: it sends batches one after another with no rate
//! limiting or retries. A purge of 1,002 targets is 6 requests and each status poll is one
//! more, so these tests raise the emulator's per-window request limit (the documented 10 per
//! minute is tested in the emulator's own tests and below, where it is expected to trip).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use purgekit_core::{
    Budget, EngineConfig, Error, Handle, Outcome, Progress, ProviderPurger, PurgeRequest, Purger,
    RateLimit, RateRegistry, RetryPolicy, State,
};
use purgekit_emulator::level3::{Level3Emulator, Level3EmulatorConfig};
use purgekit_emulator::{Fault, Running};
use purgekit_level3::{Level3, Level3Config};

const HOSTS: [&str; 3] = ["a.example.com", "b.example.com", "static.example.net"];

async fn start(config: Level3EmulatorConfig) -> (Level3Emulator, Running) {
    let emulator = Level3Emulator::new(config);
    let running = emulator.start().await.unwrap();
    (emulator, running)
}

/// Above the 8 requests of the big purge plus its status polls.
fn roomy() -> Level3EmulatorConfig {
    Level3EmulatorConfig {
        requests_per_window: 1_000,
        completion_time: Duration::from_secs(2),
        ..Level3EmulatorConfig::demo()
    }
}

fn provider_config(emulator: &Level3Emulator, running: &Running) -> Level3Config {
    let e = emulator.config();
    let mut config = Level3Config::new(
        e.key_id.clone(),
        e.secret.clone(),
        e.access_group.clone(),
        e.scid.clone(),
    );
    config.endpoint = running.url();
    // The client paces at the limit this emulator enforces (a roomy one in most tests).
    config.rate_limit = Some(RateLimit {
        requests: Some(Budget::new(e.requests_per_window, e.rate_window)),
        items: None,
    });
    config
        .network_identifiers
        .insert("Static.Example.net".into(), "static-ni".into());
    config
}

/// A purger with its own rate limiter: tests in this binary run at once against separate
/// emulators and must not share (and wait on) one limiter for the demo key.
fn purger(config: Level3Config) -> Arc<dyn Purger> {
    purger_with(config, EngineConfig::default())
}

fn purger_with(config: Level3Config, engine: EngineConfig) -> Arc<dyn Purger> {
    Arc::new(
        ProviderPurger::new("l3", Level3::new(config).unwrap())
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

#[tokio::test]
async fn purges_1000_urls_on_3_hosts_and_2_wildcards_exactly_once() {
    let (emulator, running) = start(roomy()).await;
    let purger = purger(provider_config(&emulator, &running));

    let mut builder = PurgeRequest::builder();
    let mut expected: Vec<(String, String)> = Vec::new();
    for i in 0..1000 {
        let host = HOSTS[i % 3];
        let ni = if i % 3 == 2 { "static-ni" } else { host };
        // Some paths need XML escaping or percent-encoding on the way.
        let (path, wire) = match i % 50 {
            0 => (format!("/q/{i}?a=1&b=<2>"), format!("/q/{i}?a=1&b=<2>")),
            1 => (format!("/caf\u{e9}/{i}.css"), format!("/caf%C3%A9/{i}.css")),
            _ => (
                format!("/assets/{i}/app.js?v={i}"),
                format!("/assets/{i}/app.js?v={i}"),
            ),
        };
        builder = builder.url(format!("https://{host}{path}"));
        expected.push((ni.to_owned(), wire));
    }
    builder = builder
        .pattern("https://a.example.com/images/*.jpg")
        .pattern("https://static.example.net/css/*");
    expected.push(("a.example.com".into(), "/images/*.jpg".into()));
    expected.push(("static-ni".into(), "/css/*".into()));
    let request = builder.delete().notify("ops@example.com").build().unwrap();

    // The plan: the 1,000 URLs of the 3 hosts share 5 access-group requests of 200 paths; the
    // 2 wildcards, each alone in its property, share a sixth; no secret shown.
    let plan = purger.plan(&request).unwrap();
    let batches = plan.providers[0].batches();
    assert_eq!(batches.len(), 6);
    assert!(batches.iter().all(|b| b.scope == "access-group:12345"));
    assert!(batches.iter().all(|b| b.len() <= 200));
    let shown = format!("{:?}", plan.providers[0].requests);
    assert!(shown.contains("MPA 54321:<redacted>"));
    assert!(!shown.contains(&emulator.config().secret));
    assert_eq!(emulator.requests().len(), 0, "planning sends nothing");

    let report = purger.purge(&request).await.unwrap();
    assert_eq!(report.outcome(), Outcome::Success, "{report:#?}");
    assert_eq!(report.summary.accepted, 1002);

    // Every request was authenticated and accepted: 6 of them, all legal.
    let seen = emulator.requests();
    assert_eq!(seen.len(), 6);
    assert!(seen.iter().all(|r| r.status == 200), "{seen:#?}");
    assert!(seen.iter().all(|r| {
        r.path_and_query
            .contains("?force=true&notification=ops@example.com")
    }));
    // One invalidation per network identifier of each request: 5 × 3 + 2.
    let invalidations = emulator.invalidations();
    assert_eq!(invalidations.len(), 17);
    for inv in &invalidations {
        assert!(!inv.paths.is_empty() && inv.paths.len() <= 200);
        if inv.paths.iter().any(|p| p.contains('*')) {
            assert_eq!(
                inv.paths.len(),
                1,
                "a wildcard shares its property: {inv:?}"
            );
        }
        assert!(inv.force);
    }
    // Every path exactly once, on its network identifier.
    let mut received = emulator.paths();
    assert_eq!(received.len(), expected.len());
    received.sort();
    expected.sort();
    assert_eq!(received, expected);

    // Status: each handle reaches 100%.
    let handles: Vec<Handle> = {
        let mut seen = HashSet::new();
        report
            .results
            .iter()
            .filter_map(|r| r.handle.as_deref().map(str::to_owned))
            .filter(|h| seen.insert(h.clone()))
            .map(Handle)
            .collect()
    };
    // Each row has its own network identifier's handle: one per invalidation.
    assert_eq!(handles.len(), 17);
    for row in &report.results {
        let handle = row.handle.as_deref().unwrap();
        let host = row.target.split('/').nth(2).unwrap();
        let ni = if host == "static.example.net" {
            "static-ni"
        } else {
            host
        };
        assert!(handle.starts_with(&format!("{ni}/")), "{row:?}");
    }
    let last = handles.last().unwrap();
    let first_look = purger.status("l3", last).await.unwrap();
    assert!(
        matches!(first_look.progress, Progress::Pending { percent: Some(p) } if p < 100),
        "{first_look:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    for handle in &handles {
        loop {
            let status = purger.status("l3", handle).await.unwrap();
            if status.progress == Progress::Completed {
                assert_eq!(status.detail, "100%");
                break;
            }
            assert!(Instant::now() < deadline, "{handle} stuck at {status:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(emulator.requests().iter().all(|r| r.status == 200));
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    let (emulator, running) = start(roomy()).await;
    let purger = purger(provider_config(&emulator, &running));

    let invalid = |result: purgekit_core::Result<PurgeRequest>| match result.unwrap_err() {
        Error::InvalidInput { input, rule } => format!("{input} | {rule}"),
        other => panic!("expected invalid input, got {other:?}"),
    };
    // A relative URL.
    let msg = invalid(PurgeRequest::builder().url("/images/a.jpg").build());
    assert!(
        msg.starts_with("/images/a.jpg | must be an absolute"),
        "{msg}"
    );
    // A path with CR/LF.
    let msg = invalid(
        PurgeRequest::builder()
            .url("https://a.example.com/a.jpg\r\nX-Injected: 1")
            .build(),
    );
    assert!(
        msg.contains("a.jpg\\r\\nX-Injected") && msg.contains("CR and LF"),
        "{msg}"
    );

    // 300 characters of notification addresses.
    let mut builder = PurgeRequest::builder().url("https://a.example.com/a.jpg");
    let mut list = Vec::new();
    for i in 0..10 {
        let email = format!("{}{i}@example.com", "n".repeat(16)); // 29 characters
        list.push(email.clone());
        builder = builder.notify(email);
    }
    let joined = list.join(",");
    assert_eq!(joined.len(), 299);
    let request = builder.build().unwrap();
    for err in [
        purger.purge(&request).await.unwrap_err(),
        purger.plan(&request).unwrap_err(),
    ] {
        match err {
            Error::InvalidInput { input, rule } => {
                assert_eq!(input, joined);
                assert!(rule.contains("at most 250"), "{rule}");
            }
            other => panic!("{other:?}"),
        }
    }

    // A tag and a wildcard host: unsupported rows, nothing sent for them.
    let request = PurgeRequest::builder()
        .tag("product-42")
        .pattern("https://*.example.com/x.jpg")
        .build()
        .unwrap();
    let report = purger.purge(&request).await.unwrap();
    assert_eq!(report.outcome(), Outcome::Failure);
    let rows = &report.results;
    assert!(
        rows.iter()
            .all(|r| r.state == State::Unsupported && r.attempts == 0)
    );
    assert!(
        rows[0].error.as_deref().unwrap().contains("cache tag"),
        "{rows:?}"
    );
    assert!(
        rows[1].error.as_deref().unwrap().contains("wildcard host"),
        "{rows:?}"
    );

    assert_eq!(emulator.requests().len(), 0);
}

#[tokio::test]
async fn a_tag_beside_urls_is_reported_and_only_the_urls_are_sent() {
    let (emulator, running) = start(roomy()).await;
    let purger = purger(provider_config(&emulator, &running));
    let request = PurgeRequest::builder()
        .url("https://a.example.com/a.jpg")
        .tag("homepage")
        .callback("https://hooks.example.com/done")
        .build()
        .unwrap();
    let report = purger.purge(&request).await.unwrap();
    assert_eq!(report.results[0].state, State::Accepted);
    assert!(
        report.results[0]
            .warnings
            .iter()
            .any(|w| w.contains("callback")),
        "{report:?}"
    );
    assert_eq!(report.results[1].state, State::Unsupported);
    assert_eq!(
        emulator.paths(),
        [("a.example.com".to_owned(), "/a.jpg".to_owned())]
    );
}

/// Sends one single-URL purge and returns its row's error.
async fn failure(purger: &Arc<dyn Purger>) -> String {
    let request = PurgeRequest::builder()
        .url("https://a.example.com/a.jpg")
        .build()
        .unwrap();
    let report = purger.purge(&request).await.unwrap();
    assert_eq!(report.results[0].state, State::Failed, "{report:?}");
    report.results[0].error.as_deref().unwrap().to_owned()
}

#[tokio::test]
async fn errors_are_classified_on_the_wire() {
    let (emulator, running) = start(Level3EmulatorConfig {
        requests_per_window: 2,
        ..roomy()
    })
    .await;
    // The client paces at the documented 10 a minute; this emulator admits 2, so the third
    // request below reaches it and is refused, as a client sharing the key would see.
    let documented = |mut config: Level3Config| {
        config.rate_limit = None;
        config
    };
    let good = purger_with(
        documented(provider_config(&emulator, &running)),
        single_attempt(),
    );

    // A wrong secret: 403 with no body, said as an authentication failure.
    let mut wrong = documented(provider_config(&emulator, &running));
    wrong.secret = "not-the-secret".into();
    let msg = failure(&purger_with(wrong, single_attempt())).await;
    assert!(
        msg.starts_with("authentication failed") && msg.contains("signature"),
        "{msg}"
    );

    // Injected faults: 502 and a dropped connection are transient, a malformed body protocol.
    emulator.faults().push(Fault::status(502));
    assert!(failure(&good).await.starts_with("transient failure"));
    emulator.faults().push(Fault::DropConnection);
    assert!(failure(&good).await.starts_with("transient failure"));
    emulator.faults().push(Fault::Malformed);
    assert!(failure(&good).await.starts_with("protocol error"));

    // An unknown invalidation id: rejected with the documented code.
    let err = good
        .status("l3", &Handle("a.example.com/DAG_1/none".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rejected { code, .. } if code == "21716"),
        "{err:?}"
    );

    // The window holds 2 requests per key. Refused signatures and faulted requests do not
    // count; the status query above is the first, this purge the second, the next one is refused.
    let request = PurgeRequest::builder()
        .url("https://a.example.com/a.jpg")
        .build()
        .unwrap();
    let report = good.purge(&request).await.unwrap();
    assert_eq!(report.results[0].state, State::Accepted);
    let msg = failure(&good).await;
    assert!(
        msg.starts_with("rate limited") && msg.contains("21723"),
        "{msg}"
    );
    assert_eq!(emulator.rejections(), 1);
}

/// A release touching 50 hosts × 4 paths, listed path by path as a deploy tool does.
fn release(hosts: usize) -> (PurgeRequest, Vec<(String, String)>) {
    let mut builder = PurgeRequest::builder();
    let mut expected = Vec::new();
    for p in ["/index.html", "/app.js", "/app.css", "/logo.svg"] {
        for h in 0..hosts {
            let host = format!("www{h}.example.com");
            builder = builder.url(format!("https://{host}{p}"));
            expected.push((host, p.to_owned()));
        }
    }
    (
        builder.wait(Duration::from_secs(60)).build().unwrap(),
        expected,
    )
}

#[tokio::test]
async fn fifty_hosts_by_four_paths_take_one_request_and_every_handle_completes() {
    let (emulator, running) = start(Level3EmulatorConfig {
        requests_per_window: 1_000,
        completion_time: Duration::from_millis(300),
        ..Level3EmulatorConfig::demo()
    })
    .await;
    let purger = purger(provider_config(&emulator, &running));
    let (request, mut expected) = release(50);
    let report = purger.purge(&request).await.unwrap();
    assert_eq!(report.outcome(), Outcome::Success, "{report:#?}");
    assert_eq!(report.summary.completed, 200, "{report:#?}");

    // One access-group request (≤ 2 asked), then status polls.
    let posts: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert!(posts.len() <= 2, "{posts:#?}");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].path_and_query, "/invalidations/v1.0/12345");
    // Every path once, on its own network identifier.
    let mut received = emulator.paths();
    received.sort();
    expected.sort();
    assert_eq!(received, expected);
    // Each row carries its own NI's handle, and all 50 handles were polled to 100 %.
    let mut handles = HashSet::new();
    for row in &report.results {
        assert_eq!(row.state, State::Completed, "{row:?}");
        let handle = row.handle.clone().unwrap();
        let host = row.target.split('/').nth(2).unwrap();
        assert!(handle.starts_with(&format!("{host}/")), "{row:?}");
        handles.insert(handle);
    }
    assert_eq!(handles.len(), 50);
    let polled: HashSet<String> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.status == 200)
        .map(|r| r.path_and_query.split('?').next().unwrap().to_owned())
        .collect();
    assert_eq!(polled.len(), 50, "one NI-scope status path per handle");
}

#[tokio::test]
async fn a_mix_with_wildcards_obeys_the_rules_on_the_wire() {
    let (emulator, running) = start(roomy()).await;
    let purger = purger(provider_config(&emulator, &running));
    // Per host: two paths, a prefix (a wildcard) and, for some, the whole host; 12 hosts.
    let mut builder = PurgeRequest::builder();
    let mut count = 0;
    for h in 0..12 {
        let host = format!("h{h}.example.com");
        builder = builder
            .url(format!("https://{host}/a.js"))
            .prefix(format!("https://{host}/img/"))
            .url(format!("https://{host}/b.js"));
        count += 3;
        if h % 3 == 0 {
            builder = builder.host(&host);
            count += 1;
        }
    }
    let request = builder.build().unwrap();
    let report = purger.purge(&request).await.unwrap();
    assert_eq!(report.outcome(), Outcome::Success, "{report:#?}");
    assert_eq!(report.summary.accepted, count);
    // Every request legal (the emulator refuses a wildcard sharing its property), every path
    // once, and far fewer requests than one per host and wildcard (12 + 16).
    let seen = emulator.requests();
    assert!(seen.iter().all(|r| r.status == 200), "{seen:#?}");
    assert!(seen.len() <= 4, "{} requests", seen.len());
    let invalidations = emulator.invalidations();
    for inv in &invalidations {
        if inv.paths.iter().any(|p| p.contains('*')) {
            assert_eq!(inv.paths.len(), 1, "{inv:?}");
        }
    }
    assert_eq!(emulator.paths().len(), count);
    let distinct: HashSet<_> = emulator.paths().into_iter().collect();
    assert_eq!(distinct.len(), count);
}
