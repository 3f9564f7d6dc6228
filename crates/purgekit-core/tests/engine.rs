//! The engine against a toy CDN whose server enforces rate limits and fails on demand, on
//! tokio's paused clock: every schedule asserted here is exact.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use purgekit_core::{
    Budget, EngineConfig, Event, FanOut, Handle, Limits, Outcome, PollPolicy, Progress,
    ProviderPurger, PurgeContext, PurgeRequest, Purger, RateLimit, RateRegistry, ReqwestTransport,
    RetryPolicy, SafetyMargin, State,
};
use support::{Events, Scripted, Toy, ToyConfig, ToyServer, limits, purger};
use tokio::time::Instant;

fn urls(n: usize) -> PurgeRequest {
    let mut b = PurgeRequest::builder();
    for i in 0..n {
        b = b.url(format!("https://cdn.example/{i}.jpg"));
    }
    b.build().unwrap()
}

fn times(accepted: &[(f64, usize)]) -> Vec<f64> {
    accepted.iter().map(|(t, _)| *t).collect()
}

fn no_jitter(max_attempts: u32) -> EngineConfig {
    EngineConfig {
        retry: RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_secs(1),
            jitter: 0.0,
            ..RetryPolicy::default()
        },
        ..EngineConfig::default()
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[tokio::test(start_paused = true)]
async fn twenty_five_requests_under_ten_per_minute_take_the_minimum_schedule() {
    let budget = Budget::per_minute(10);
    let server = ToyServer::new(ToyConfig {
        requests: Some(budget),
        ..ToyConfig::default()
    });
    let toy = Toy::new(
        "window",
        Limits {
            max_in_flight: 4,
            ..limits(4, Some(budget), None)
        },
    );
    let p = purger("toy", toy, &server, EngineConfig::default(), None);
    let start = Instant::now();
    let report = p.purge(&urls(100)).await.unwrap();

    assert_eq!(report.summary.accepted, 100);
    assert_eq!(server.rejections(), 0);
    // The minimum is 0 s, 60 s, 120 s; each later window starts 250 ms late (the safety margin).
    let expected = [vec![0.0; 10], vec![60.25; 10], vec![120.5; 5]].concat();
    assert_eq!(times(&server.accepted()), expected);
    assert_eq!(start.elapsed(), secs(120.5));
}

#[tokio::test(start_paused = true)]
async fn without_a_margin_the_schedule_is_exactly_the_minimum_and_still_never_rejected() {
    let budget = Budget::per_minute(10);
    let server = ToyServer::new(ToyConfig {
        requests: Some(budget),
        ..ToyConfig::default()
    });
    let toy = Toy::new("window-exact", limits(4, Some(budget), None));
    let config = EngineConfig {
        margin: SafetyMargin::NONE,
        ..EngineConfig::default()
    };
    let start = Instant::now();
    let report = purger("toy", toy, &server, config, None)
        .purge(&urls(100))
        .await
        .unwrap();
    assert_eq!(report.outcome(), Outcome::Success);
    assert_eq!(server.rejections(), 0);
    let expected = [vec![0.0; 10], vec![60.0; 10], vec![120.0; 5]].concat();
    assert_eq!(times(&server.accepted()), expected);
    assert_eq!(start.elapsed(), secs(120.0));
}

#[tokio::test(start_paused = true)]
async fn four_hundred_fifty_items_under_item_debt_take_the_minimum_schedule() {
    let budget = Budget::per_minute(60);
    let server = ToyServer::new(ToyConfig {
        items: Some(budget),
        ..ToyConfig::default()
    });
    let toy = Toy::new("debt", limits(100, None, Some(budget)));
    let start = Instant::now();
    let report = purger("toy", toy, &server, EngineConfig::default(), None)
        .purge(&urls(450))
        .await
        .unwrap();
    assert_eq!(report.summary.accepted, 450);
    assert_eq!(server.rejections(), 0);
    // 100 items cost 100 s of debt; the minimum is 0, 100, 200, 300, 400 s, plus 250 ms each.
    assert_eq!(
        server.accepted(),
        [
            (0.0, 100),
            (100.25, 100),
            (200.5, 100),
            (300.75, 100),
            (401.0, 50)
        ]
    );
    assert_eq!(start.elapsed(), secs(401.0));
}

#[tokio::test(start_paused = true)]
async fn time_waited_for_the_rate_limits_is_reported() {
    let budget = Budget::per_minute(1);
    let server = ToyServer::new(ToyConfig {
        requests: Some(budget),
        ..ToyConfig::default()
    });
    let toy = Toy::new(
        "rate-waits",
        Limits {
            max_in_flight: 1,
            ..limits(1, Some(budget), None)
        },
    );
    let events = Events::default();
    let p = purger("toy", toy, &server, EngineConfig::default(), None);
    let report = p.purge_with(&urls(3), &events.context()).await.unwrap();
    assert_eq!(report.summary.accepted, 3);
    // The first request goes at once (no event); the second waits for the next window
    // (60 s and the 250 ms margin), the third, asking once the second is answered, as long.
    let waits: Vec<(f64, Option<usize>, f64)> = events
        .all()
        .into_iter()
        .filter_map(|(at, e)| match e {
            Event::RateWaited {
                provider,
                batch,
                waited,
            } => {
                assert_eq!(provider, "toy");
                Some((at, batch, waited.as_secs_f64()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(waits, [(60.25, Some(1), 60.25), (120.5, Some(2), 60.25)]);
    assert_eq!(times(&server.accepted()), [0.0, 60.25, 120.5]);
}

#[tokio::test(start_paused = true)]
async fn purgers_of_one_account_share_its_budget() {
    let budget = Budget::per_minute(10);
    let server = ToyServer::new(ToyConfig {
        requests: Some(budget),
        ..ToyConfig::default()
    });
    let other_server = ToyServer::new(ToyConfig::default());
    let registry = Arc::new(RateRegistry::new());
    let make = |name: &str, account: &str, server: &ToyServer| {
        let toy = Toy::new(account, limits(1, Some(budget), None));
        purger(
            name,
            toy,
            server,
            EngineConfig::default(),
            Some(registry.clone()),
        )
    };
    let (one, two) = (
        make("one", "shared", &server),
        make("two", "shared", &server),
    );
    let other = make("other", "another", &other_server);
    let request = urls(10);
    let (r1, r2, r3) = tokio::join!(
        one.purge(&request),
        two.purge(&request),
        other.purge(&request)
    );
    for r in [r1, r2, r3] {
        assert_eq!(r.unwrap().outcome(), Outcome::Success);
    }
    assert_eq!(server.rejections(), 0);
    let expected = [vec![0.0; 10], vec![60.25; 10]].concat();
    assert_eq!(times(&server.accepted()), expected);
    // Another account is not held back by this one.
    assert_eq!(times(&other_server.accepted()), vec![0.0; 10]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_then_the_batch_is_accepted() {
    let server = ToyServer::new(ToyConfig::default());
    server.script([Scripted(503, Some("2")), Scripted(429, Some("3"))]);
    let toy = Toy::new("retry-after", limits(10, None, None));
    let encoded = toy.encoded.clone();
    let events = Events::default();
    let p = purger("toy", toy, &server, EngineConfig::default(), None);
    let report = p.purge_with(&urls(2), &events.context()).await.unwrap();

    for row in &report.results {
        assert_eq!((row.state, row.attempts), (State::Accepted, 3));
        assert_eq!(row.handle.as_deref(), Some("job-1"));
    }
    assert_eq!(server.arrivals(), [0.0, 2.0, 5.0]);
    assert_eq!(
        encoded.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "each attempt is encoded (and signed) afresh"
    );
    let kinds: Vec<String> = events
        .all()
        .iter()
        .map(|(at, e)| match e {
            Event::Planned { batches, items, .. } => format!("{at} planned {batches}/{items}"),
            Event::Sent { attempt, .. } => format!("{at} sent #{attempt}"),
            Event::Retrying { delay, error, .. } => {
                format!("{at} retry in {}s: {error}", delay.as_secs_f64())
            }
            Event::Accepted { items, .. } => format!("{at} accepted {items}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "0 planned 1/2",
            "0 sent #1",
            "0 retry in 2s: transient failure (retry after 2.000s): HTTP 503",
            "2 sent #2",
            "2 retry in 3s: rate limited by the provider (retry after 3.000s): scripted failure",
            "5 sent #3",
            "5 accepted 2",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_rejection_closes_the_account_for_its_window() {
    let server = ToyServer::new(ToyConfig::default());
    server.script([Scripted(429, None)]);
    let toy = Toy::new("penalty", limits(1, Some(Budget::per_minute(10)), None));
    let report = purger("toy", toy, &server, no_jitter(5), None)
        .purge(&urls(2))
        .await
        .unwrap();
    assert_eq!(report.summary.accepted, 2);
    // No Retry-After: the backoff says 1 s, but the account waits out the 60 s window first,
    // and so does the next batch.
    assert_eq!(server.arrivals(), [0.0, 60.0, 60.0]);
    assert_eq!(report.results[0].attempts, 2);
    assert_eq!(report.results[1].attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn an_auth_failure_is_not_retried() {
    let server = ToyServer::new(ToyConfig::default());
    let mut toy = Toy::new("auth", limits(10, None, None));
    toy.key = "wrong".into();
    let encoded = toy.encoded.clone();
    let start = Instant::now();
    let report = purger("toy", toy, &server, EngineConfig::default(), None)
        .purge(&urls(3))
        .await
        .unwrap();
    assert_eq!(report.summary.failed, 3);
    for row in &report.results {
        assert_eq!(row.attempts, 1);
        assert_eq!(row.error.as_deref(), Some("authentication failed: bad key"));
    }
    assert_eq!(encoded.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(report.outcome(), Outcome::Failure);
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_fail_every_row_with_the_last_error_and_the_attempts() {
    let server = ToyServer::new(ToyConfig::default());
    server.always(Scripted(503, None));
    let toy = Toy::new("exhaust", limits(2, None, None));
    let events = Events::default();
    let start = Instant::now();
    let report = purger("toy", toy, &server, no_jitter(3), None)
        .purge_with(&urls(5), &events.context())
        .await
        .unwrap();
    assert_eq!(report.results.len(), 5);
    for row in &report.results {
        assert_eq!((row.state, row.attempts), (State::Failed, 3));
        assert_eq!(
            row.error.as_deref(),
            Some("transient failure: HTTP 503 (after 3 attempts)")
        );
    }
    // Three batches, one at a time, each waiting 1 s then 2 s between its attempts.
    assert_eq!(
        server.arrivals(),
        [0.0, 1.0, 3.0, 3.0, 4.0, 6.0, 6.0, 7.0, 9.0]
    );
    assert_eq!(start.elapsed(), secs(9.0));
    let failed = events
        .all()
        .iter()
        .filter(|(_, e)| matches!(e, Event::Failed { .. }))
        .count();
    assert_eq!(failed, 3);
}

#[tokio::test(start_paused = true)]
async fn absurd_waits_neither_panic_nor_hang() {
    let server = ToyServer::new(ToyConfig::default());
    server.script([Scripted(503, Some("99999999999999999"))]);
    let toy = Toy::new("absurd", limits(1, None, None));
    let request = urls(1).with_wait(Some(Duration::MAX));
    let report = purger("toy", toy, &server, EngineConfig::default(), None)
        .purge(&request)
        .await
        .unwrap();
    // A Retry-After past the deadline fails the batch at once, with the provider's words.
    assert_eq!(report.results[0].state, State::Failed);
    assert_eq!(report.results[0].attempts, 1);
    assert!(
        report.results[0]
            .error
            .as_deref()
            .unwrap()
            .contains("HTTP 503")
    );

    let report = purger(
        "toy",
        Toy::new("absurd-2", limits(1, None, None)),
        &server,
        EngineConfig::default(),
        None,
    )
    .purge(&request)
    .await
    .unwrap();
    assert_eq!(report.results[0].state, State::Completed);
}

#[tokio::test(start_paused = true)]
async fn no_attempt_starts_after_the_retry_deadline() {
    let server = ToyServer::new(ToyConfig::default());
    server.always(Scripted(503, None));
    let config = EngineConfig {
        retry: RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_secs(10),
            jitter: 0.0,
            deadline: Duration::from_secs(25),
            ..RetryPolicy::default()
        },
        ..EngineConfig::default()
    };
    let toy = Toy::new("deadline", limits(1, None, None));
    let report = purger("toy", toy, &server, config, None)
        .purge(&urls(1))
        .await
        .unwrap();
    // 0 s, 10 s; the next would start at 30 s, past the 25 s deadline.
    assert_eq!(server.arrivals(), [0.0, 10.0]);
    assert_eq!(report.results[0].attempts, 2);
    assert_eq!(report.results[0].state, State::Failed);
}

/// The server charges a request when it gets it: one held up on its way is charged late, and
/// the engine, once answered, counts it so.
#[tokio::test(start_paused = true)]
async fn a_request_held_up_on_its_way_does_not_get_the_next_refused() {
    // Item debt, 1 s an item: 10 items held up 2 s are charged at 2 s, so the next 10 may
    // arrive at 12 s, not at the 10.2 s planned from the start (the margin, 0.2 s, covers an
    // answer that soon: the third, answered at once, keeps its schedule).
    let budget = Budget::per_minute(60);
    let server = ToyServer::new(ToyConfig {
        items: Some(budget),
        ..ToyConfig::default()
    });
    server.hold_up([secs(2.0)]);
    let toy = Toy::new("held-up-debt", limits(10, None, Some(budget)));
    let report = purger("toy", toy, &server, EngineConfig::default(), None)
        .purge(&urls(30))
        .await
        .unwrap();
    assert_eq!(report.summary.accepted, 30);
    assert_eq!(server.rejections(), 0);
    assert_eq!(times(&server.accepted()), [2.0, 12.0, 22.2]);

    // A request window, 2 per 10 s (fixed windows at the server), two in flight: of the two
    // sent at 0 one is held up 10.1 s, into the server's second window. It counts there: the
    // fourth request waits until 10 s after that one's answer (20.1 s), not after its start.
    let budget = Budget::new(2, Duration::from_secs(10));
    let server = ToyServer::new(ToyConfig {
        requests: Some(budget),
        ..ToyConfig::default()
    });
    server.hold_up([secs(10.1)]);
    let toy = Toy::new(
        "held-up-window",
        Limits {
            max_in_flight: 2,
            ..limits(1, Some(budget), None)
        },
    );
    let report = purger("toy", toy, &server, EngineConfig::default(), None)
        .purge(&urls(4))
        .await
        .unwrap();
    assert_eq!(report.summary.accepted, 4);
    assert_eq!(server.rejections(), 0);
    assert_eq!(times(&server.accepted()), [0.0, 10.1, 10.2, 20.1]);
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_capped_by_max_in_flight() {
    let server = ToyServer::new(ToyConfig {
        latency: Duration::from_secs(1),
        ..ToyConfig::default()
    });
    let toy = Toy::new(
        "in-flight",
        Limits {
            max_in_flight: 2,
            ..limits(1, None, None)
        },
    );
    let start = Instant::now();
    let report = purger("toy", toy, &server, EngineConfig::default(), None)
        .purge(&urls(6))
        .await
        .unwrap();
    assert_eq!(report.summary.accepted, 6);
    assert_eq!(server.max_in_flight(), 2);
    assert_eq!(start.elapsed(), secs(3.0));
}

#[tokio::test(start_paused = true)]
async fn a_batch_backing_off_does_not_hold_up_the_account() {
    let server = ToyServer::new(ToyConfig::default());
    server.script([Scripted(503, None)]);
    let registry = Arc::new(RateRegistry::new());
    let make = |name: &str| {
        let toy = Toy::new("one-place", limits(1, None, None));
        purger(name, toy, &server, no_jitter(3), Some(registry.clone()))
    };
    let (first, second) = (make("first"), make("second"));
    let request = urls(1);
    let (a, b) = tokio::join!(first.purge(&request), second.purge(&request));
    assert_eq!(a.unwrap().results[0].attempts, 2);
    assert_eq!(b.unwrap().results[0].attempts, 1);
    // The second purger's request went while the first backed off for 1 s.
    assert_eq!(server.arrivals(), [0.0, 0.0, 1.0]);
}

#[tokio::test(start_paused = true)]
async fn waiting_polls_until_completed() {
    let server = ToyServer::new(ToyConfig {
        pending_polls: 2,
        ..ToyConfig::default()
    });
    let toy = Toy::new("wait", limits(10, None, None));
    let events = Events::default();
    let request = urls(3).with_wait(Some(Duration::from_secs(60)));
    let report = purger("toy", toy, &server, EngineConfig::default(), None)
        .purge_with(&request, &events.context())
        .await
        .unwrap();
    assert_eq!(report.summary.completed, 3);
    assert_eq!(report.outcome(), Outcome::Success);
    // Capped exponential from 2 s: 2, 2 + 4, 6 + 8.
    assert_eq!(server.status_requests(), [2.0, 6.0, 14.0]);
    assert!(
        events
            .all()
            .iter()
            .any(|(at, e)| *at == 14.0 && matches!(e, Event::Completed { items: 3, .. }))
    );
}

#[tokio::test(start_paused = true)]
async fn a_purge_complete_on_acceptance_is_completed_without_polling_or_waiting() {
    let server = ToyServer::new(ToyConfig {
        pending_polls: 2,
        ..ToyConfig::default()
    });
    let toy = Toy {
        completion: purgekit_core::CompletionModel::OnAcceptance,
        ..Toy::new("on-acceptance", limits(2, None, None))
    };
    let events = Events::default();
    let request = urls(3).with_wait(Some(Duration::from_secs(60)));
    let started = Instant::now();
    let report = purger("toy", toy, &server, EngineConfig::default(), None)
        .purge_with(&request, &events.context())
        .await
        .unwrap();
    assert_eq!(report.summary.completed, 3);
    assert!(server.status_requests().is_empty());
    assert_eq!(started.elapsed(), Duration::ZERO);
    let completed: Vec<f64> = events
        .all()
        .iter()
        .filter(|(_, e)| matches!(e, Event::Completed { .. }))
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(completed, [0.0, 0.0]);
}

#[tokio::test(start_paused = true)]
async fn waiting_follows_the_providers_hints() {
    let server = ToyServer::new(ToyConfig {
        pending_polls: 2,
        poll_after: Some(5),
        ..ToyConfig::default()
    });
    let toy = Toy::new("wait-hints", limits(10, None, None));
    let request = urls(1).with_wait(Some(Duration::from_secs(60)));
    let report = purger("toy", toy, &server, EngineConfig::default(), None)
        .purge(&request)
        .await
        .unwrap();
    assert_eq!(report.results[0].state, State::Completed);
    assert_eq!(server.status_requests(), [5.0, 10.0, 15.0]);
}

#[tokio::test(start_paused = true)]
async fn a_purge_the_provider_fails_is_a_failed_row() {
    let server = ToyServer::new(ToyConfig {
        outcome: "failed",
        ..ToyConfig::default()
    });
    let toy = Toy::new("wait-failed", limits(10, None, None));
    let request = urls(1).with_wait(Some(Duration::from_secs(60)));
    let report = purger("toy", toy, &server, EngineConfig::default(), None)
        .purge(&request)
        .await
        .unwrap();
    let row = &report.results[0];
    assert_eq!(row.state, State::Failed);
    assert_eq!(row.handle.as_deref(), Some("job-1"));
    assert_eq!(
        row.error.as_deref(),
        Some("the provider reports purge job-1 failed: failed")
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_times_out_leaves_rows_accepted_and_says_so() {
    let server = ToyServer::new(ToyConfig {
        pending_polls: u32::MAX,
        ..ToyConfig::default()
    });
    let toy = Toy::new("wait-timeout", limits(10, None, None));
    let request = urls(2).with_wait(Some(Duration::from_secs(20)));
    let start = Instant::now();
    let report = purger("toy", toy, &server, EngineConfig::default(), None)
        .purge(&request)
        .await
        .unwrap();
    // 2, 6, 14, then a last poll at the deadline.
    assert_eq!(server.status_requests(), [2.0, 6.0, 14.0, 20.0]);
    assert_eq!(start.elapsed(), secs(20.0));
    for row in &report.results {
        assert_eq!(row.state, State::Accepted);
        assert_eq!(
            row.error.as_deref(),
            Some("waiting for completion timed out after 20.000s (last status `pending`)")
        );
    }
    assert_eq!(report.summary.timed_out, 2);
    assert_eq!(report.outcome(), Outcome::Failure);
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_sending_and_still_reports_every_target() {
    let budget = Budget::per_minute(1);
    let server = ToyServer::new(ToyConfig {
        requests: Some(budget),
        ..ToyConfig::default()
    });
    let toy = Toy::new("cancel", limits(1, Some(budget), None));
    let events = Events::default();
    let context = events.context();
    let cancel = context.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(90)).await;
        cancel.cancel();
    });
    let start = Instant::now();
    let report = purger("toy", toy, &server, EngineConfig::default(), None)
        .purge_with(&urls(5), &context)
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(90.0));
    assert_eq!(times(&server.accepted()), [0.0, 60.25]);
    let states: Vec<(State, u32)> = report
        .results
        .iter()
        .map(|r| (r.state, r.attempts))
        .collect();
    use State::*;
    assert_eq!(
        states,
        [
            (Accepted, 1),
            (Accepted, 1),
            (Failed, 0),
            (Failed, 0),
            (Failed, 0)
        ]
    );
    assert_eq!(
        report.results[4].error.as_deref(),
        Some("cancelled before sending")
    );
    let failed = events
        .all()
        .iter()
        .filter(|(at, e)| *at == 90.0 && matches!(e, Event::Failed { .. }))
        .count();
    assert_eq!(failed, 3);
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_waiting_too() {
    let server = ToyServer::new(ToyConfig {
        pending_polls: u32::MAX,
        ..ToyConfig::default()
    });
    let toy = Toy::new("cancel-wait", limits(10, None, None));
    let context = PurgeContext::default();
    let cancel = context.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(7)).await;
        cancel.cancel();
    });
    let request = urls(1).with_wait(Some(Duration::from_secs(600)));
    let report = purger("toy", toy, &server, EngineConfig::default(), None)
        .purge_with(&request, &context)
        .await
        .unwrap();
    assert_eq!(report.results[0].state, State::Accepted);
    assert_eq!(
        report.results[0].error.as_deref(),
        Some("waiting for completion cancelled (last status `pending`)")
    );
}

fn fan_out_members(registry: &Arc<RateRegistry>) -> (Vec<Arc<dyn Purger>>, [ToyServer; 3]) {
    let ok = ToyServer::new(ToyConfig::default());
    let broken = ToyServer::new(ToyConfig::default());
    broken.always(Scripted(503, None));
    let slow_budget = Budget::per_minute(1);
    let slow = ToyServer::new(ToyConfig {
        requests: Some(slow_budget),
        ..ToyConfig::default()
    });
    let mut strict = Toy::new("fan-slow", limits(1, Some(slow_budget), None));
    strict.strict = true;
    let members: Vec<Arc<dyn Purger>> = vec![
        Arc::new(purger(
            "ok",
            Toy::new("fan-ok", limits(1, None, None)),
            &ok,
            no_jitter(2),
            Some(registry.clone()),
        )),
        Arc::new(purger(
            "broken",
            Toy::new("fan-broken", limits(1, None, None)),
            &broken,
            no_jitter(2),
            Some(registry.clone()),
        )),
        Arc::new(purger(
            "slow",
            strict,
            &slow,
            no_jitter(2),
            Some(registry.clone()),
        )),
    ];
    (members, [ok, broken, slow])
}

#[tokio::test(start_paused = true)]
async fn a_fan_out_survives_a_failing_and_a_slow_provider() {
    let registry = Arc::new(RateRegistry::new());
    let (members, [ok, broken, slow]) = fan_out_members(&registry);
    let all = FanOut::new("all", members).unwrap();
    let start = Instant::now();
    let report = all.purge(&urls(3)).await.unwrap();

    assert_eq!(report.outcome(), Outcome::Partial);
    assert_eq!(report.results.len(), 9);
    let pairs: HashSet<(purgekit_core::Text, std::sync::Arc<str>)> = report
        .results
        .iter()
        .map(|r| (r.target.clone(), r.provider.clone()))
        .collect();
    assert_eq!(pairs.len(), 9, "every (target, provider) exactly once");
    for row in &report.results {
        let expected = if &*row.provider == "broken" {
            State::Failed
        } else {
            State::Accepted
        };
        assert_eq!(row.state, expected, "{row:?}");
    }
    // The healthy provider finished at once; the slow one took its two windows; the broken
    // one tried twice per batch.
    assert_eq!(times(&ok.accepted()), [0.0, 0.0, 0.0]);
    assert_eq!(times(&slow.accepted()), [0.0, 60.25, 120.5]);
    assert_eq!(broken.arrivals().len(), 6);
    assert_eq!(start.elapsed(), secs(120.5));

    // Status goes to the provider named.
    let status = all.status("ok", &Handle("job-1".into())).await.unwrap();
    assert_eq!(status.progress, Progress::Completed);
    assert!(all.status("nobody", &Handle("job-1".into())).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn a_fan_out_sends_nothing_anywhere_when_one_provider_refuses_the_input() {
    let registry = Arc::new(RateRegistry::new());
    let (members, servers) = fan_out_members(&registry);
    let all = FanOut::new("all", members).unwrap();
    let request = PurgeRequest::builder()
        .url("https://cdn.example/ok.jpg")
        .url("https://cdn.example/bad/x.jpg")
        .build()
        .unwrap();
    let error = all.purge(&request).await.unwrap_err();
    assert!(error.is_usage(), "{error}");
    for server in &servers {
        assert!(server.arrivals().is_empty());
    }
}

#[test]
fn a_fan_out_needs_distinct_names() {
    let server = ToyServer::new(ToyConfig::default());
    let make = || -> Arc<dyn Purger> {
        Arc::new(
            ProviderPurger::new("same", Toy::new("x", limits(1, None, None)))
                .with_transport(Arc::new(server.clone())),
        )
    };
    let error = FanOut::new("all", vec![make(), make()]).err().unwrap();
    assert!(
        error.to_string().contains("`same` appears twice"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_configured_rate_replaces_the_declared_one() {
    let server = ToyServer::new(ToyConfig::default());
    let toy = Toy::new("override", limits(1, Some(Budget::per_minute(1)), None));
    let config = EngineConfig {
        rate: Some(RateLimit {
            requests: Some(Budget::new(2, Duration::from_secs(10))),
            items: None,
        }),
        margin: SafetyMargin::NONE,
        ..EngineConfig::default()
    };
    purger("toy", toy, &server, config, None)
        .purge(&urls(3))
        .await
        .unwrap();
    assert_eq!(times(&server.accepted()), [0.0, 0.0, 10.0]);
}

/// The same engine over real HTTP on 127.0.0.1 with the default reqwest transport.
#[tokio::test]
async fn over_http_with_the_reqwest_transport() {
    let server = ToyServer::new(ToyConfig {
        pending_polls: 1,
        ..ToyConfig::default()
    });
    let (url, task) = support::serve(server.clone()).await;
    let mut toy = Toy::new("http", limits(2, None, None));
    toy.endpoint = url;
    let config = EngineConfig {
        poll: PollPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
        },
        ..EngineConfig::default()
    };
    let purger: Arc<dyn Purger> = Arc::new(
        ProviderPurger::new("toy", toy)
            .with_transport(Arc::new(ReqwestTransport::default()))
            .with_config(config)
            .with_rate_registry(Arc::new(RateRegistry::new())),
    );
    let request = urls(3).with_wait(Some(Duration::from_secs(5)));
    let report = purger.purge(&request).await.unwrap();
    assert_eq!(report.summary.completed, 3, "{report:?}");
    assert_eq!(server.accepted().len(), 2);
    let status = purger.status("toy", &Handle("job-1".into())).await.unwrap();
    assert_eq!(status.progress, Progress::Completed);
    task.abort();
}
