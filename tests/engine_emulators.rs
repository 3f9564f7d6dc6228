//! The engine against the three provider emulators over loopback HTTP, with rate windows
//! compressed to 600 ms: minimum schedules with zero rejections, Retry-After honoured, no retry
//! of auth failures, exhausted retries as failed rows, and a three-way fan-out with one
//! provider failing every request.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{WINDOW, engine, min_debt_schedule, min_requests_schedule, urls};
use purgekit::{FanOut, Outcome, Purger, RateRegistry, State};
use purgekit_emulator::Fault;
use purgekit_emulator::dynamicmedia::DynamicMediaEmulator;
use purgekit_emulator::level3::Level3Emulator;
use purgekit_emulator::limelight::LimelightEmulator;

/// `measured` is at least `min`: the limit held. How close to `min` a run gets is measured by
/// `benches/efficiency.rs` (the same cases), not asserted here, where a loaded machine would
/// make a wall-clock upper bound flaky.
fn at_least_minimum(measured: Duration, min: Duration) {
    assert!(measured >= min, "{measured:?} < minimum {min:?}");
}

#[tokio::test]
async fn level3_twenty_five_requests_never_faster_than_the_limit_with_no_503() {
    let registry = Arc::new(RateRegistry::new());
    let l3 = common::start::<Level3Emulator>("level3", "l3", &registry, engine(3), &[]).await;
    // 5,000 paths on one host: 25 requests of 200.
    let request = urls(5_000);
    let started = Instant::now();
    let report = l3.purger.purge(&request).await.unwrap();
    let elapsed = started.elapsed();

    assert_eq!(report.summary.accepted, 5_000);
    assert_eq!(l3.emulator.rejections(), 0);
    assert_eq!(l3.emulator.requests().len(), 25);
    assert!(report.results.iter().all(|r| r.attempts == 1));
    at_least_minimum(elapsed, min_requests_schedule(25, 10, WINDOW));
}

#[tokio::test]
async fn limelight_450_items_never_faster_than_the_limit_with_no_429() {
    let registry = Arc::new(RateRegistry::new());
    let ll = common::start::<LimelightEmulator>("limelight", "ll", &registry, engine(3), &[]).await;
    let started = Instant::now();
    let report = ll.purger.purge(&urls(450)).await.unwrap();
    let elapsed = started.elapsed();

    assert_eq!(report.summary.accepted, 450);
    assert_eq!(ll.emulator.rejections(), 0);
    let sizes: Vec<usize> = ll
        .emulator
        .submissions()
        .iter()
        .map(|s| s.patterns.len())
        .collect();
    assert_eq!(sizes, [100, 100, 100, 100, 50]);
    at_least_minimum(elapsed, min_debt_schedule(&sizes, WINDOW / 60));
}

#[tokio::test]
async fn retry_after_twice_then_accepted_after_three_attempts() {
    let registry = Arc::new(RateRegistry::new());
    let l3 = common::start::<Level3Emulator>("level3", "l3", &registry, engine(5), &[]).await;
    let retry_after = |status| Fault::Status {
        status,
        headers: vec![("Retry-After".into(), "1".into())],
    };
    l3.faults.push(retry_after(503));
    l3.faults.push(retry_after(429));
    let started = Instant::now();
    let report = l3.purger.purge(&urls(3)).await.unwrap();
    let elapsed = started.elapsed();

    for row in &report.results {
        assert_eq!((row.state, row.attempts), (State::Accepted, 3), "{row:?}");
    }
    assert!(
        elapsed >= Duration::from_secs(2),
        "Retry-After not honoured: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(l3.emulator.invalidations().len(), 1);
}

#[tokio::test]
async fn an_auth_failure_is_not_retried() {
    let registry = Arc::new(RateRegistry::new());
    let ll = common::start::<LimelightEmulator>("limelight", "ll", &registry, engine(5), &[]).await;
    ll.faults.push(Fault::status(401));
    let report = ll.purger.purge(&urls(2)).await.unwrap();
    for row in &report.results {
        assert_eq!((row.state, row.attempts), (State::Failed, 1), "{row:?}");
        assert!(
            row.error
                .as_deref()
                .unwrap()
                .starts_with("authentication failed")
        );
    }
    assert_eq!(ll.emulator.requests().len(), 1, "one request, not retried");
    assert_eq!(ll.faults.injected(), 1);
}

#[tokio::test]
async fn exhausted_retries_are_failed_rows_with_the_attempts() {
    let registry = Arc::new(RateRegistry::new());
    let dm =
        common::start::<DynamicMediaEmulator>("dynamic-media", "dm", &registry, engine(3), &[])
            .await;
    dm.faults.always(Fault::status(502));
    let report = dm.purger.purge(&urls(1_500)).await.unwrap();
    assert_eq!(report.results.len(), 1_500);
    for row in &report.results {
        assert_eq!((row.state, row.attempts), (State::Failed, 3), "{row:?}");
        assert!(
            row.error.as_deref().unwrap().contains("(after 3 attempts)"),
            "{row:?}"
        );
    }
    // Two batches (1,000 + 500), three attempts each.
    assert_eq!(dm.faults.injected(), 6);
    assert!(dm.emulator.purged_urls().is_empty());
}

#[tokio::test]
async fn a_three_way_fan_out_with_one_provider_failing_every_request() {
    let registry = Arc::new(RateRegistry::new());
    let l3 = common::start::<Level3Emulator>("level3", "l3", &registry, engine(2), &[]).await;
    let ll = common::start::<LimelightEmulator>("limelight", "ll", &registry, engine(2), &[]).await;
    let dm =
        common::start::<DynamicMediaEmulator>("dynamic-media", "dm", &registry, engine(2), &[])
            .await;
    ll.faults.always(Fault::status(500));
    let (l3e, dme, llf) = (l3.emulator.clone(), dm.emulator.clone(), ll.faults.clone());
    let all = FanOut::new(
        "all",
        vec![l3.purger.clone(), ll.purger.clone(), dm.purger.clone()],
    )
    .unwrap();
    let request = urls(250);
    let report = all.purge(&request).await.unwrap();

    assert_eq!(report.outcome(), Outcome::Partial);
    assert_eq!(report.results.len(), 3 * 250);
    let pairs: HashSet<(&str, &str)> = report
        .results
        .iter()
        .map(|r| (&*r.target, &*r.provider))
        .collect();
    assert_eq!(
        pairs.len(),
        3 * 250,
        "every (target, provider) exactly once"
    );
    for row in &report.results {
        let expected = if &*row.provider == "ll" {
            State::Failed
        } else {
            State::Accepted
        };
        assert_eq!(row.state, expected, "{row:?}");
    }
    assert_eq!(l3e.paths().len(), 250);
    assert_eq!(dme.purged_urls().len(), 250);
    assert_eq!(
        llf.injected(),
        3 * 2,
        "three batches of 100, two attempts each"
    );
    assert_eq!(l3e.rejections(), 0);

    // Waiting for completion across the fan-out: the two healthy providers complete.
    let report = all
        .purge(&urls(5).with_wait(Some(Duration::from_secs(10))))
        .await
        .unwrap();
    for row in report.results.iter().filter(|r| &*r.provider != "ll") {
        assert_eq!(row.state, State::Completed, "{row:?}");
    }
}
