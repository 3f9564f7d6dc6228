//! The engine against a hostile or broken toy CDN, on tokio's paused clock: one deadline per run
//! bounds every wait, a huge `Retry-After` binds only the batch that got it, redirects and
//! oversized bodies fail the attempt. Every instant asserted here is exact.

mod support;

use std::time::Duration;

use purgekit_core::{
    AuthOutcome, Budget, EngineConfig, Error, Handle, Limits, PurgeRequest, Purger, RetryPolicy,
    SafetyMargin, State,
};
use support::{Scripted, Toy, ToyConfig, ToyServer, limits, purger};
use tokio::time::Instant;

fn urls(n: usize) -> PurgeRequest {
    let mut b = PurgeRequest::builder();
    for i in 0..n {
        b = b.url(format!("https://cdn.example/{i}.jpg"));
    }
    b.build().unwrap()
}

/// No jitter, no margin, five attempts, and the run's deadline `deadline`.
fn config(deadline: Duration) -> EngineConfig {
    EngineConfig {
        deadline,
        retry: RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        },
        margin: SafetyMargin::NONE,
        ..EngineConfig::default()
    }
}

/// One item per request, ten requests a minute, one in flight.
fn ten_a_minute(account: &str) -> Toy {
    Toy::new(account, limits(1, Some(Budget::per_minute(10)), None))
}

const HUGE: &str = "99999999";

fn error(report: &purgekit_core::Report, row: usize) -> String {
    report.results[row]
        .error
        .as_deref()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_fails_its_batch_and_closes_the_account_for_one_window_at_most() {
    let server = ToyServer::new(ToyConfig::default());
    server.script([Scripted(429, Some(HUGE))]);
    let p = purger(
        "toy",
        ten_a_minute("huge"),
        &server,
        config(EngineConfig::DEFAULT_DEADLINE),
        None,
    );
    let report = p.purge(&urls(3)).await.unwrap();
    assert_eq!(report.results[0].state, State::Failed);
    assert_eq!(report.results[0].attempts, 1);
    assert_eq!(
        error(&report, 0),
        "rate limited by the provider (retry after 99999999.000s): scripted failure; \
         not retried: the provider asked to wait 1157 d 9 h, past the run's deadline"
    );
    // The others wait out the declared window (the rejection said it was full), not 3 years.
    assert_eq!(server.arrivals(), [0.0, 60.0, 60.0]);
    assert_eq!(report.results[1].state, State::Accepted);
    assert_eq!(report.results[2].state, State::Accepted);
}

#[tokio::test(start_paused = true)]
async fn a_wait_past_a_short_deadline_is_not_started() {
    let server = ToyServer::new(ToyConfig::default());
    server.script([Scripted(429, Some(HUGE))]);
    let p = purger(
        "toy",
        ten_a_minute("short"),
        &server,
        config(Duration::from_secs(5)),
        None,
    );
    let start = Instant::now();
    let report = p.purge(&urls(3)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "nothing was waited for");
    assert_eq!(server.arrivals(), [0.0]);
    for row in 1..3 {
        assert_eq!(report.results[row].state, State::Failed);
        assert_eq!(report.results[row].attempts, 0);
        assert_eq!(
            error(&report, row),
            "not sent: the account's rate limits allow the next request in 1 m 0 s, \
             past the run's deadline"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_on_a_status_poll_past_the_deadline_is_not_waited_for() {
    let server = ToyServer::new(ToyConfig {
        pending_polls: 5,
        ..ToyConfig::default()
    });
    server.script_status([Scripted(429, Some("120"))]);
    let toy = Toy::new("poll", limits(10, None, None));
    let p = purger("toy", toy, &server, config(Duration::from_secs(10)), None);
    let start = Instant::now();
    let request = urls(1).with_wait(Some(Duration::from_secs(10)));
    let report = p.purge(&request).await.unwrap();
    // Polled once, at 2 s; told to wait 2 min; the deadline is at 10 s: stops at once.
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(server.status_requests(), [2.0]);
    let row = &report.results[0];
    assert_eq!(row.state, State::Accepted);
    assert_eq!(row.handle.as_deref(), Some("job-1"));
    assert_eq!(
        error(&report, 0),
        "not waited for: the provider asked to wait 2 m 0 s before the next status check, \
         past the deadline (last status check failed: rate limited by the provider \
         (retry after 120.000s): scripted status failure)"
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_sending_and_waiting_together() {
    let server = ToyServer::new(ToyConfig {
        pending_polls: 1000,
        ..ToyConfig::default()
    });
    let toy = Toy::new("long-wait", limits(10, None, None));
    let p = purger("toy", toy, &server, config(Duration::from_secs(30)), None);
    let start = Instant::now();
    let request = urls(1).with_wait(Some(Duration::from_secs(600)));
    let report = p.purge(&request).await.unwrap();
    // Polls at 2, 6 and 14 s; the next would be at 30 s, the deadline: not waited for.
    assert_eq!(server.status_requests(), [2.0, 6.0, 14.0]);
    assert_eq!(start.elapsed(), Duration::from_secs(14));
    assert_eq!(report.results[0].state, State::Accepted);
    assert_eq!(
        error(&report, 0),
        "waiting for completion timed out after 14.000s (last status `pending`)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_answer_is_cut_off_at_the_deadline_and_not_retried() {
    let server = ToyServer::new(ToyConfig {
        latency: Duration::from_secs(100),
        ..ToyConfig::default()
    });
    let toy = Toy::new("slow", limits(10, None, None));
    let p = purger("toy", toy, &server, config(Duration::from_secs(5)), None);
    let start = Instant::now();
    let report = p.purge(&urls(1)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(report.results[0].state, State::Failed);
    assert_eq!(report.results[0].attempts, 1);
    assert_eq!(
        error(&report, 0),
        "no complete response before the run's deadline (5.0 s into the attempt)"
    );
}

#[tokio::test(start_paused = true)]
async fn status_is_bounded_by_the_deadline() {
    let server = ToyServer::new(ToyConfig::default());
    server.script_status([Scripted(429, Some(HUGE))]);
    let p = purger(
        "toy",
        ten_a_minute("status"),
        &server,
        config(Duration::from_secs(5)),
        None,
    );
    let start = Instant::now();
    let first = p.status("toy", &Handle("job-1".into())).await.unwrap_err();
    assert!(matches!(first, Error::Deadline { .. }), "{first:?}");
    assert!(
        first.to_string().ends_with(
            "not retried: the provider asked to wait 1157 d 9 h, past the run's deadline"
        ),
        "{first}"
    );
    // The next query does not wait behind that Retry-After; the window it would wait for
    // ends past the deadline, so it is not sent.
    let second = p.status("toy", &Handle("job-2".into())).await.unwrap_err();
    assert_eq!(
        second.to_string(),
        "not sent: the account's rate limits allow the next request in 1 m 0 s, past the run's deadline"
    );
    assert_eq!(start.elapsed(), Duration::ZERO);

    let slow = ToyServer::new(ToyConfig {
        latency: Duration::from_secs(100),
        ..ToyConfig::default()
    });
    let p = purger(
        "toy",
        ten_a_minute("slow-status"),
        &slow,
        config(Duration::from_secs(5)),
        None,
    );
    let error = p.status("toy", &Handle("job-1".into())).await.unwrap_err();
    assert!(matches!(error, Error::Deadline { .. }), "{error:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

fn response(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> purgekit_core::HttpResponse {
    let mut r = http::Response::builder().status(status);
    for (name, value) in headers {
        r = r.header(*name, *value);
    }
    r.body(body).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_redirect_is_a_protocol_error_naming_it_and_is_not_retried() {
    let server = ToyServer::new(ToyConfig::default());
    server.script_responses([
        response(
            307,
            &[("location", "http://elsewhere.example/steal")],
            Vec::new(),
        ),
        response(302, &[], Vec::new()),
    ]);
    let toy = Toy::new("redirect", limits(1, None, None));
    let report = purger("toy", toy, &server, config(Duration::from_secs(60)), None)
        .purge(&urls(2))
        .await
        .unwrap();
    assert_eq!(server.arrivals(), [0.0, 0.0], "neither was retried");
    assert_eq!(report.results[0].state, State::Failed);
    assert_eq!(report.results[0].attempts, 1);
    assert_eq!(
        error(&report, 0),
        "protocol error: the provider answered HTTP 307 (Location `http://elsewhere.example/steal`); \
         redirects are never followed: check the endpoint"
    );
    assert_eq!(
        error(&report, 1),
        "protocol error: the provider answered HTTP 302 (no Location); \
         redirects are never followed: check the endpoint"
    );
}

#[tokio::test(start_paused = true)]
async fn the_credentials_check_takes_the_same_path_one_attempt_no_redirect() {
    let server = ToyServer::new(ToyConfig::default());
    server.script_responses([
        response(200, &[], Vec::new()),
        response(401, &[], Vec::new()),
        response(
            307,
            &[("location", "http://elsewhere.example/steal")],
            Vec::new(),
        ),
        response(503, &[], Vec::new()),
    ]);
    let toy = Toy::new("probe", limits(1, None, None));
    let purger = purger("toy", toy, &server, config(Duration::from_secs(60)), None);
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let checks = purger.check_auth().await;
        assert_eq!(checks.len(), 1);
        outcomes.push(checks[0].outcome.clone());
    }
    assert_eq!(server.arrivals().len(), 4, "one attempt each, none retried");
    assert_eq!(outcomes[0], AuthOutcome::Accepted);
    assert_eq!(
        outcomes[1],
        AuthOutcome::Refused("HTTP 401 Unauthorized".into())
    );
    assert_eq!(
        outcomes[2],
        AuthOutcome::Failed(
            "protocol error: the provider answered HTTP 307 (Location \
             `http://elsewhere.example/steal`); redirects are never followed: check the endpoint"
                .into()
        )
    );
    assert!(
        matches!(&outcomes[3], AuthOutcome::Failed(m) if m.contains("503")),
        "{:?}",
        outcomes[3]
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_over_the_cap_fails_the_attempt_unless_the_provider_declares_more() {
    let big = vec![b'x'; purgekit_core::DEFAULT_MAX_RESPONSE_BYTES + 1];
    let server = ToyServer::new(ToyConfig::default());
    server.script_responses([response(201, &[], big.clone())]);
    let toy = Toy::new("big", limits(1, None, None));
    let report = purger("toy", toy, &server, config(Duration::from_secs(60)), None)
        .purge(&urls(1))
        .await
        .unwrap();
    assert_eq!(report.results[0].state, State::Failed);
    assert_eq!(report.results[0].attempts, 1);
    assert_eq!(
        error(&report, 0),
        "protocol error: response larger than 1048576 bytes"
    );

    server.script_responses([response(201, &[], big)]);
    let roomy = Toy::new(
        "roomy",
        Limits {
            max_response_bytes: 2 << 20,
            ..limits(1, None, None)
        },
    );
    let report = purger("toy", roomy, &server, config(Duration::from_secs(60)), None)
        .purge(&urls(1))
        .await
        .unwrap();
    assert_eq!(report.results[0].state, State::Accepted);
}
