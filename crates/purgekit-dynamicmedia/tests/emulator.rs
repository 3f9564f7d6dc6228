//! The provider against the emulator over loopback HTTP, through `Arc<dyn Purger>`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use purgekit_core::{
    EngineConfig, Error, Handle, Progress, ProviderPurger, PurgeRequest, Purger, RateRegistry,
    RetryPolicy, State,
};
use purgekit_dynamicmedia::{DynamicMedia, DynamicMediaConfig};
use purgekit_emulator::Fault;
use purgekit_emulator::dynamicmedia::{
    DynamicMediaEmulator, DynamicMediaEmulatorConfig, FaultKind, SoapFault,
};

struct Setup {
    emulator: DynamicMediaEmulator,
    purger: Arc<dyn Purger>,
    _running: purgekit_emulator::Running,
}

/// An emulator with fast completion, and a purger configured against it with `api_version`.
async fn setup(api_version: &str, password: &str) -> Setup {
    let emulator = DynamicMediaEmulator::new(DynamicMediaEmulatorConfig {
        completion_after: Duration::from_millis(300),
        estimated_seconds: 0,
        ping_after_seconds: 1,
        ..DynamicMediaEmulatorConfig::demo()
    });
    let running = emulator.start().await.unwrap();
    let demo = emulator.config();
    let mut config = DynamicMediaConfig::new(
        demo.user.clone(),
        password,
        demo.company_handle.clone(),
        demo.company_root.clone(),
    );
    config.endpoint = Some(running.url());
    config.api_version = api_version.to_owned();
    // Its own rate limiter (tests here run at once against separate emulators), and one
    // attempt per call so each test sees how the emulator's answer is classified; retries
    // are the engine's business, tested in core and in the workspace's tests.
    let purger: Arc<dyn Purger> = Arc::new(
        ProviderPurger::new("dm", DynamicMedia::new(config).unwrap())
            .with_rate_registry(Arc::new(RateRegistry::new()))
            .with_config(EngineConfig {
                retry: RetryPolicy::never(),
                ..EngineConfig::default()
            }),
    );
    Setup {
        emulator,
        purger,
        _running: running,
    }
}

fn urls(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("https://s7d1.scene7.com/is/image/PurgekitDemo/asset-{i}?$hero$&wid={i}"))
        .collect()
}

fn request(urls: &[String]) -> PurgeRequest {
    urls.iter()
        .fold(PurgeRequest::builder(), |b, u| b.url(u.as_str()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn purges_2500_urls_in_3_calls_and_the_status_completes() {
    let s = setup("2014-04-03", "demo-password").await;
    let urls = urls(2500);
    let report = s.purger.purge(&request(&urls)).await.unwrap();

    assert_eq!(report.results.len(), 2500);
    assert!(
        report.results.iter().all(|r| r.state == State::Accepted),
        "{:?}",
        report.results[0]
    );
    assert_eq!(s.emulator.invalidation_calls(), 3);
    assert_eq!(s.emulator.requests().len(), 3);
    let purged = s.emulator.purged_urls();
    assert_eq!(purged.len(), 2500);
    assert_eq!(
        purged.iter().collect::<HashSet<_>>(),
        urls.iter().collect::<HashSet<_>>()
    );

    let handles: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| r.handle.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(handles.len(), 3, "{handles:?}");
    for handle in &handles {
        let status = s
            .purger
            .status("dm", &Handle(handle.clone()))
            .await
            .unwrap();
        assert_eq!(status.progress, Progress::Pending { percent: None });
        assert_eq!(status.detail, "In-Progress");
        assert_eq!(status.poll_after, Some(Duration::from_secs(1)));
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    for handle in &handles {
        let status = s
            .purger
            .status("dm", &Handle(handle.clone()))
            .await
            .unwrap();
        assert_eq!(status.progress, Progress::Completed, "{status:?}");
        assert!(
            status.detail.starts_with("Done (completed "),
            "{}",
            status.detail
        );
    }
    assert_eq!(s.emulator.status_calls(), 6);
}

#[tokio::test]
async fn the_2012_schema_answers_counts_and_offers_no_status() {
    let s = setup("2012-02-14", "demo-password").await;
    let urls = urls(3);
    let report = s.purger.purge(&request(&urls)).await.unwrap();
    for row in &report.results {
        assert_eq!(row.state, State::Accepted);
        assert_eq!(
            row.handle.as_deref(),
            Some("counts:success=3,warning=0,error=0")
        );
        assert!(row.warnings.is_empty());
    }
    let err = s
        .purger
        .status("dm", &Handle("counts:success=3,warning=0,error=0".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "unsupported");
    assert_eq!(
        s.emulator.requests().len(),
        1,
        "no status request may be sent"
    );
}

#[tokio::test]
async fn one_url_outside_the_company_root_stops_everything_before_sending() {
    let s = setup("2014-04-03", "demo-password").await;
    let mut urls = urls(1500);
    let bad = "https://s7d1.scene7.com/is/image/SomeoneElse/asset-9".to_owned();
    urls.insert(1200, bad.clone());
    let err = s.purger.purge(&request(&urls)).await.unwrap_err();
    match &err {
        Error::InvalidInput { input, rule } => {
            assert_eq!(input, &bad);
            assert!(rule.contains("`PurgekitDemo`"), "{rule}");
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
    assert!(s.purger.plan(&request(&urls)).is_err());
    assert_eq!(s.emulator.requests().len(), 0);
    assert!(s.emulator.purged_urls().is_empty());
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error() {
    let s = setup("2014-04-03", "not-the-password").await;
    let report = s.purger.purge(&request(&urls(2))).await.unwrap();
    for row in &report.results {
        assert_eq!(row.state, State::Failed);
        let error = row.error.as_deref().unwrap();
        assert!(error.starts_with("authentication failed"), "{error}");
        assert!(error.contains("10001"), "{error}");
        assert!(!error.contains("not-the-password"), "{error}");
    }
    assert!(s.emulator.purged_urls().is_empty());
    let err = s
        .purger
        .status("dm", &Handle("c|1001|1".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth");
}

#[tokio::test]
async fn a_fault_sent_with_http_200_is_still_a_failure() {
    let s = setup("2014-04-03", "demo-password").await;
    s.emulator.push_soap_fault(
        SoapFault::new(FaultKind::IpsApi, 30000, "CDN partner unavailable").with_http_status(200),
    );
    let report = s.purger.purge(&request(&urls(2))).await.unwrap();
    for row in &report.results {
        assert_eq!(row.state, State::Failed);
        let error = row.error.as_deref().unwrap();
        assert!(error.contains("code 30000"), "{error}");
        assert!(error.contains("CDN partner unavailable"), "{error}");
    }
    // The next call goes through.
    let report = s.purger.purge(&request(&urls(2))).await.unwrap();
    assert!(report.results.iter().all(|r| r.state == State::Accepted));
}

#[tokio::test]
async fn an_unknown_handle_is_rejected_by_the_service() {
    let s = setup("2014-04-03", "demo-password").await;
    let err = s
        .purger
        .status("dm", &Handle("c|1001|999".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Rejected { ref code, .. } if code == "30001"),
        "{err:?}"
    );
}

#[tokio::test]
async fn transport_faults_are_classified() {
    let s = setup("2014-04-03", "demo-password").await;
    let faults = s.emulator.faults();
    let cases = [
        (Fault::status(503), "transient failure"),
        (Fault::Malformed, "protocol error"),
        (Fault::DropConnection, "transient failure"),
    ];
    for (fault, expected) in cases {
        faults.push(fault);
        let report = s.purger.purge(&request(&urls(1))).await.unwrap();
        let error = report.results[0].error.as_deref().unwrap_or("");
        assert!(error.starts_with(expected), "{error}");
    }
    assert!(s.emulator.purged_urls().is_empty());
}

#[tokio::test]
async fn advisory_options_warn_and_semantic_ones_are_unsupported() {
    let s = setup("2014-04-03", "demo-password").await;
    let urls = urls(1);
    let request = PurgeRequest::builder()
        .url(urls[0].as_str())
        .tag("homepage")
        .note("release 42")
        .build()
        .unwrap();
    let report = s.purger.purge(&request).await.unwrap();
    assert_eq!(report.results[0].state, State::Accepted);
    assert!(
        report.results[0]
            .warnings
            .iter()
            .any(|w| w.contains("`note`"))
    );
    assert_eq!(report.results[1].state, State::Unsupported);

    let dry = PurgeRequest::builder()
        .url(urls[0].as_str())
        .dry_run()
        .build()
        .unwrap();
    let report = s.purger.purge(&dry).await.unwrap();
    assert_eq!(report.results[0].state, State::DryRun);
    assert_eq!(
        s.emulator.invalidation_calls(),
        1,
        "a dry run sends nothing"
    );
}
