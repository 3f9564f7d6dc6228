//! The CloudFront codec driven by the engine against the emulator over real HTTP on
//! 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use purgekit_cloudfront::{CloudFront, CloudFrontConfig};
use purgekit_core::{
    EngineConfig, PollPolicy, ProviderPurger, PurgeRequest, Purger, RateRegistry, RetryPolicy,
    State,
};
use purgekit_emulator::cloudfront::{CloudFrontEmulator, CloudFrontEmulatorConfig};
use purgekit_emulator::{Fault, Running, serve};

async fn start(config: CloudFrontEmulatorConfig) -> (CloudFrontEmulator, Running) {
    let emulator = CloudFrontEmulator::new(config);
    let running = serve(emulator.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (emulator, running)
}

fn purger(e: &CloudFrontEmulator, running: &Running, poll: Duration) -> ProviderPurger<CloudFront> {
    let c = e.config();
    let mut config = CloudFrontConfig::new(
        c.distribution_id.clone(),
        ["www.example.com", "d111abc.cloudfront.net"],
    )
    .with_endpoint(running.url());
    config.access_key_id = Some(c.access_key_id.clone());
    config.secret_access_key = Some(c.secret_access_key.clone().into());
    let provider = CloudFront::with_env(config, |_| None).unwrap();
    ProviderPurger::new("cf", provider)
        .with_rate_registry(Arc::new(RateRegistry::new()))
        .with_config(EngineConfig {
            poll: PollPolicy {
                initial: poll,
                max: poll,
            },
            retry: RetryPolicy {
                initial_backoff: Duration::from_millis(20),
                ..RetryPolicy::default()
            },
            ..EngineConfig::default()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_paths_and_forty_wildcards_stay_within_capacity() {
    let (e, running) = start(CloudFrontEmulatorConfig {
        completes_after: Duration::from_millis(300),
        ..CloudFrontEmulatorConfig::demo()
    })
    .await;
    let p = purger(&e, &running, Duration::from_millis(20));
    let mut b = PurgeRequest::builder();
    for i in 0..10_000 {
        b = b.url(format!("https://www.example.com/assets/{i}.js"));
    }
    for i in 0..40 {
        b = b.pattern(format!("https://www.example.com/dir{i}/*"));
    }
    let report = p.purge(&b.build().unwrap()).await.unwrap();
    assert_eq!(report.results.len(), 10_040);
    assert!(
        report
            .results
            .iter()
            .all(|r| matches!(r.state, State::Accepted | State::Completed)),
        "{:?}",
        report.results.iter().find(|r| r.error.is_some())
    );
    assert_eq!(e.refusals(), 0, "no TooManyInvalidationsInProgress");
    let (paths, wildcards) = e.max_in_progress();
    assert!(paths <= 3000 && wildcards <= 15, "{paths} / {wildcards}");
    assert_eq!(
        (paths, wildcards),
        (3000, 15),
        "the capacity is used in full"
    );
    assert_eq!(e.paths().len(), 10_040);
    // 4 path batches (3000, 3000, 3000, 1000) and 3 wildcard batches (15, 15, 10).
    assert_eq!(e.invalidations(), 7);
}

#[tokio::test]
async fn a_retry_after_a_dropped_response_makes_one_invalidation() {
    let (e, running) = start(CloudFrontEmulatorConfig::demo()).await;
    e.faults().push(Fault::DropResponse);
    let p = purger(&e, &running, Duration::from_millis(20));
    let request = PurgeRequest::builder()
        .url("https://www.example.com/index.html")
        .pattern("https://www.example.com/images/*")
        .build()
        .unwrap();
    let report = p.purge(&request).await.unwrap();
    assert_eq!(e.faults().injected(), 1);
    let row = &report.results[0];
    assert_eq!(row.state, State::Accepted, "{row:?}");
    // The path batch was retried under the same CallerReference: CloudFront answered with
    // the invalidation the lost response carried.
    assert!(report.results.iter().any(|r| r.attempts == 2));
    assert_eq!(
        e.invalidations(),
        2,
        "one path batch and one wildcard batch"
    );
}

#[tokio::test]
async fn purging_the_same_paths_again_is_a_new_invalidation() {
    let (e, running) = start(CloudFrontEmulatorConfig::demo()).await;
    let p = purger(&e, &running, Duration::from_millis(20));
    let request = PurgeRequest::builder()
        .url("https://www.example.com/index.html")
        .url("https://www.example.com/app.js")
        .build()
        .unwrap();
    // A second deploy purges the same paths: each run has its own CallerReference, so
    // CloudFront invalidates again instead of answering with the first invalidation.
    let first = p.purge(&request).await.unwrap();
    let second = p.purge(&request).await.unwrap();
    assert_eq!(e.invalidations(), 2);
    let handle = |r: &purgekit_core::Report| r.results[0].handle.clone().unwrap();
    assert_ne!(handle(&first), handle(&second));
    assert!(
        [&first, &second]
            .iter()
            .all(|r| r.results.iter().all(|row| row.attempts == 1))
    );
}

#[tokio::test]
async fn bad_input_is_reported_before_sending() {
    let (e, running) = start(CloudFrontEmulatorConfig::demo()).await;
    let p = purger(&e, &running, Duration::from_millis(20));
    let request = PurgeRequest::builder()
        .url("https://other.example/a.js")
        .pattern("https://www.example.com/*/a.jpg")
        .url("https://www.example.com/ok.js")
        .build()
        .unwrap();
    let report = p.purge(&request).await.unwrap();
    let other = &report.results[0];
    assert_eq!(other.state, State::Unsupported);
    let why = other.error.as_deref().unwrap();
    assert!(
        why.contains("www.example.com, d111abc.cloudfront.net"),
        "{why}"
    );
    let mid = report.results[1].error.as_deref().unwrap();
    assert!(mid.contains("only as the last character"), "{mid}");
    assert_eq!(report.results[2].state, State::Accepted);
    assert_eq!(e.paths(), ["/ok.js"]);

    let long = PurgeRequest::builder()
        .url(format!("https://www.example.com/{}", "a".repeat(4999)))
        .build()
        .unwrap();
    let error = p.purge(&long).await.unwrap_err().to_string();
    assert!(error.contains("at most 4000 characters"), "{error}");
    assert_eq!(e.invalidations(), 1, "nothing more sent");
}

#[tokio::test]
async fn a_wrong_secret_is_fatal_after_one_attempt() {
    let (e, running) = start(CloudFrontEmulatorConfig::demo()).await;
    let c = e.config();
    let mut config = CloudFrontConfig::new(c.distribution_id.clone(), ["www.example.com"])
        .with_endpoint(running.url());
    config.access_key_id = Some(c.access_key_id.clone());
    config.secret_access_key = Some("not-the-secret".into());
    let p = ProviderPurger::new("cf", CloudFront::with_env(config, |_| None).unwrap())
        .with_rate_registry(Arc::new(RateRegistry::new()));
    let request = PurgeRequest::builder()
        .url("https://www.example.com/a")
        .build()
        .unwrap();
    let row = p.purge(&request).await.unwrap().results.remove(0);
    assert_eq!((row.state, row.attempts), (State::Failed, 1));
    let error = row.error.unwrap();
    assert!(error.contains("SignatureDoesNotMatch") && !error.contains("not-the-secret"));
}

#[tokio::test]
async fn status_polls_until_completed() {
    let (e, running) = start(CloudFrontEmulatorConfig {
        completes_after: Duration::from_millis(200),
        ..CloudFrontEmulatorConfig::demo()
    })
    .await;
    let p = purger(&e, &running, Duration::from_millis(50));
    let request = PurgeRequest::builder()
        .url("https://d111abc.cloudfront.net/a")
        .wait(Duration::from_secs(10))
        .build()
        .unwrap();
    let row = p.purge(&request).await.unwrap().results.remove(0);
    assert_eq!(row.state, State::Completed, "{row:?}");
}

#[test]
fn missing_credentials_name_the_keys_and_the_variables() {
    let config = CloudFrontConfig::new("EDFDVBD6EXAMPLE", ["www.example.com"]);
    let error = CloudFront::with_env(config, |_| None)
        .unwrap_err()
        .to_string();
    for name in [
        "access_key_id",
        "secret_access_key",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(error.contains(name), "{error}");
    }
}
