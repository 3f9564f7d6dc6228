//! The engine under an in-flight capacity, on tokio's paused clock: batches are admitted only
//! when their items fit in what the provider still has in progress, completion is polled to
//! free capacity (with or without `wait`), and the schedule is exact.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use purgekit_core::http::{Method, StatusCode};
use purgekit_core::{
    Accepted, Batch, Capabilities, CompletionModel, EngineConfig, Error, Handle, HttpRequest,
    HttpResponse, InFlightCapacity, Item, Limits, Mapped, Options, PollPolicy, Progress, Provider,
    ProviderPurger, PurgeContext, PurgeRequest, Purger, RateRegistry, Result, State, Status,
    Target, TargetKind, Transport,
};
use tokio::time::Instant;

const CAPACITY: InFlightCapacity = InFlightCapacity {
    items: 10,
    wildcards: 2,
};
/// How long the server takes to complete a purge.
const COMPLETES_IN: Duration = Duration::from_secs(10);

/// A codec whose items are URL paths, `*`-ended ones wildcards.
struct Slots;

impl Provider for Slots {
    fn kind(&self) -> &'static str {
        "slots"
    }
    fn account(&self) -> String {
        "acct".into()
    }
    fn endpoint(&self) -> String {
        "http://slots.invalid".into()
    }
    fn limits(&self) -> Limits {
        Limits {
            max_items: 100,
            in_flight_capacity: Some(CAPACITY),
            ..Limits::default()
        }
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            targets: vec![TargetKind::Url, TargetKind::Pattern],
            options: vec![],
        }
    }
    fn map(&self, target: &Target, _: &Options) -> Result<Mapped> {
        let value = target.value().to_owned();
        Ok(Mapped::Item(Item {
            kind: target.kind(),
            wildcard: value.ends_with('*'),
            bytes: value.len() + 1,
            value,
            scope: String::new(),
        }))
    }
    fn encode(&self, batch: &Batch, _: &Options, _: SystemTime) -> Result<HttpRequest> {
        let body: Vec<&str> = batch.items.iter().map(|i| i.value.as_str()).collect();
        Ok(http_request(Method::POST, "/purge", body.join("\n")))
    }
    fn decode(&self, _: &Batch, response: HttpResponse) -> Result<Accepted> {
        match response.status() {
            StatusCode::CREATED => Ok(Accepted {
                handle: Handle(String::from_utf8_lossy(response.body()).into_owned()),
                poll_after: None,
                warnings: vec![],
            }),
            _ => Err(Error::RateLimited {
                retry_after: None,
                message: "too many in progress".into(),
            }),
        }
    }
    fn encode_status(&self, handle: &Handle, _: SystemTime) -> Result<HttpRequest> {
        Ok(http_request(
            Method::GET,
            &format!("/status/{handle}"),
            String::new(),
        ))
    }
    fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
        let done = response.body() == b"done";
        Ok(Status {
            handle: handle.clone(),
            progress: if done {
                Progress::Completed
            } else {
                Progress::Pending { percent: None }
            },
            detail: String::from_utf8_lossy(response.body()).into_owned(),
            poll_after: None,
        })
    }
    fn redact(&self, _: &mut HttpRequest) {}
}

fn http_request(method: Method, path: &str, body: String) -> HttpRequest {
    purgekit_core::http::Request::builder()
        .method(method)
        .uri(format!("http://slots.invalid{path}"))
        .body(body.into_bytes())
        .unwrap()
}

/// An in-process server enforcing the capacity: it refuses (429) a purge that does not fit
/// and records every acceptance.
#[derive(Default)]
struct Server {
    state: Mutex<ServerState>,
}

#[derive(Default)]
struct ServerState {
    t0: Option<Instant>,
    /// (accepted at, items, wildcards)
    accepted: Vec<(Instant, usize, usize)>,
    refused: usize,
}

impl Server {
    /// `(seconds since the first request, items, wildcards)` of every acceptance.
    fn schedule(&self) -> Vec<(u64, usize, usize)> {
        let s = self.state.lock().unwrap();
        let t0 = s.t0.unwrap();
        s.accepted
            .iter()
            .map(|&(at, i, w)| ((at - t0).as_secs(), i, w))
            .collect()
    }
}

#[async_trait]
impl Transport for Server {
    async fn send(&self, request: HttpRequest, _max_response_bytes: usize) -> Result<HttpResponse> {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap();
        s.t0.get_or_insert(now);
        let (status, body) = if request.method() == Method::POST {
            let lines: Vec<&[u8]> = request.body().split(|&b| b == b'\n').collect();
            let wildcards = lines.iter().filter(|l| l.ends_with(b"*")).count();
            let items = lines.len() - wildcards;
            let busy = |w: bool| {
                s.accepted
                    .iter()
                    .filter(|(at, ..)| now < *at + COMPLETES_IN)
                    .map(|&(_, i, wi)| if w { wi } else { i })
                    .sum::<usize>()
            };
            if busy(false) + items > CAPACITY.items || busy(true) + wildcards > CAPACITY.wildcards {
                s.refused += 1;
                (StatusCode::TOO_MANY_REQUESTS, String::new())
            } else {
                s.accepted.push((now, items, wildcards));
                (StatusCode::CREATED, (s.accepted.len() - 1).to_string())
            }
        } else {
            let id: usize = request
                .uri()
                .path()
                .rsplit('/')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let done = now >= s.accepted[id].0 + COMPLETES_IN;
            (StatusCode::OK, if done { "done" } else { "pending" }.into())
        };
        Ok(purgekit_core::http::Response::builder()
            .status(status)
            .body(body.into_bytes())
            .unwrap())
    }
}

fn purger(server: Arc<Server>) -> ProviderPurger<Slots> {
    purger_until(server, EngineConfig::default().deadline)
}

/// A purger whose runs end at `deadline`.
fn purger_until(server: Arc<Server>, deadline: Duration) -> ProviderPurger<Slots> {
    ProviderPurger::with_transport_of("slots", Slots, server)
        .with_rate_registry(Arc::new(RateRegistry::new()))
        .with_config(EngineConfig {
            poll: PollPolicy {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(1),
            },
            deadline,
            ..EngineConfig::default()
        })
}

/// 25 paths, then 3 wildcards.
fn request(wait: Option<Duration>) -> PurgeRequest {
    let mut b = PurgeRequest::builder();
    for i in 0..25 {
        b = b.url(format!("https://a.example/p{i}"));
    }
    for i in 0..3 {
        b = b.pattern(format!("https://a.example/w{i}/*"));
    }
    if let Some(wait) = wait {
        b = b.wait(wait);
    }
    b.build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn batches_are_admitted_as_capacity_frees_without_wait() {
    let server = Arc::new(Server::default());
    let p = purger(server.clone());
    let t0 = Instant::now();
    let report = p.purge(&request(None)).await.unwrap();
    // Paths 10 + 10 + 5 and wildcards 2 + 1, each next batch sent the moment the poll sees
    // the previous one complete (10 s, polled every second); the wildcards never wait for
    // paths, nor the paths for wildcards.
    assert_eq!(
        server.schedule(),
        [(0, 10, 0), (0, 0, 2), (10, 10, 0), (10, 0, 1), (20, 5, 0)]
    );
    assert_eq!(server.state.lock().unwrap().refused, 0);
    // Without `wait`, the purge ends once the last batch is accepted.
    assert_eq!(Instant::now() - t0, Duration::from_secs(20));
    // Batches seen complete say so; the last path batch was not watched past its sending.
    // (The second wildcard batch completes at 20 s, the very instant watching stops: either.)
    let states: Vec<State> = report.results.iter().map(|r| r.state).collect();
    assert!(states[..20].iter().all(|s| *s == State::Completed));
    assert!(states[20..25].iter().all(|s| *s == State::Accepted));
    assert!(states[25..27].iter().all(|s| *s == State::Completed));
    assert!(matches!(states[27], State::Completed | State::Accepted));
}

#[tokio::test(start_paused = true)]
async fn with_wait_every_batch_is_seen_complete() {
    let server = Arc::new(Server::default());
    let p = purger(server.clone());
    let t0 = Instant::now();
    let report = p
        .purge(&request(Some(Duration::from_secs(300))))
        .await
        .unwrap();
    assert_eq!(
        server.schedule(),
        [(0, 10, 0), (0, 0, 2), (10, 10, 0), (10, 0, 1), (20, 5, 0)]
    );
    assert_eq!(Instant::now() - t0, Duration::from_secs(30));
    assert!(report.results.iter().all(|r| r.state == State::Completed));
}

#[tokio::test(start_paused = true)]
async fn plan_packs_wildcards_apart_within_the_capacity() {
    let p = purger(Arc::new(Server::default()));
    let plan = p.plan(&request(None)).unwrap();
    let batches: Vec<(usize, usize)> = plan.providers[0]
        .batches()
        .iter()
        .map(|b| (b.len(), b.wildcards))
        .collect();
    assert_eq!(batches, [(10, 0), (10, 0), (5, 0), (2, 2), (1, 1)]);
}

#[tokio::test(start_paused = true)]
async fn no_wait_for_capacity_goes_past_the_run_deadline() {
    let server = Arc::new(Server::default());
    let p = purger_until(server.clone(), Duration::from_secs(15));
    let t0 = Instant::now();
    let report = p.purge(&request(None)).await.unwrap();
    // The third path batch's capacity frees at 20 s, past the 15 s deadline: it is not sent.
    assert_eq!(
        server.schedule(),
        [(0, 10, 0), (0, 0, 2), (10, 10, 0), (10, 0, 1)]
    );
    assert_eq!(Instant::now() - t0, Duration::from_secs(15));
    for row in &report.results[20..25] {
        assert_eq!(row.state, State::Failed);
        let error = row.error.as_deref().unwrap();
        assert!(
            error.starts_with("not sent: waiting for in-flight capacity")
                && error.contains("past the run's deadline"),
            "{error}"
        );
    }
    assert!(
        report.results[..20]
            .iter()
            .all(|r| r.state != State::Failed)
    );
    assert!(
        report.results[25..]
            .iter()
            .all(|r| r.state != State::Failed)
    );
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_a_wait_for_capacity() {
    let server = Arc::new(Server::default());
    let p = purger(server.clone());
    let context = PurgeContext::default();
    let cancel = context.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        cancel.cancel();
    });
    let t0 = Instant::now();
    let report = p
        .purge_with(&request(Some(Duration::from_secs(300))), &context)
        .await
        .unwrap();
    assert_eq!(server.schedule(), [(0, 10, 0), (0, 0, 2)]);
    assert_eq!(Instant::now() - t0, Duration::from_secs(5));
    let states: Vec<State> = report.results.iter().map(|r| r.state).collect();
    assert!(states[..10].iter().all(|s| *s == State::Accepted));
    assert!(states[10..25].iter().all(|s| *s == State::Failed));
    assert!(states[25..27].iter().all(|s| *s == State::Accepted));
    assert_eq!(states[27], State::Failed);
    assert_eq!(
        report.results[10].error.as_deref(),
        Some("cancelled before sending")
    );
}

/// A provider with no status call cannot free capacity: declaring both is refused.
struct Estimated;

impl Provider for Estimated {
    fn kind(&self) -> &'static str {
        "estimated"
    }
    fn account(&self) -> String {
        Slots.account()
    }
    fn endpoint(&self) -> String {
        Slots.endpoint()
    }
    fn limits(&self) -> Limits {
        Slots.limits()
    }
    fn capabilities(&self) -> Capabilities {
        Slots.capabilities()
    }
    fn completion(&self) -> CompletionModel {
        CompletionModel::Estimated
    }
    fn map(&self, target: &Target, options: &Options) -> Result<Mapped> {
        Slots.map(target, options)
    }
    fn encode(&self, batch: &Batch, options: &Options, now: SystemTime) -> Result<HttpRequest> {
        Slots.encode(batch, options, now)
    }
    fn decode(&self, batch: &Batch, response: HttpResponse) -> Result<Accepted> {
        Slots.decode(batch, response)
    }
    fn encode_status(&self, handle: &Handle, now: SystemTime) -> Result<HttpRequest> {
        Slots.encode_status(handle, now)
    }
    fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
        Slots.decode_status(handle, response)
    }
    fn redact(&self, _: &mut HttpRequest) {}
}

#[test]
#[should_panic(expected = "declares an in-flight capacity but no status call")]
fn in_flight_capacity_needs_a_status_call() {
    let _ = ProviderPurger::with_transport_of("e", Estimated, Arc::new(Server::default()));
}
