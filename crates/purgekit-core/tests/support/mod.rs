//! A test-only CDN for the engine's tests: a codec ([`Toy`]) and its server ([`ToyServer`]),
//! which enforces a fixed-window request limit and an item-debt limit, injects scripted
//! failures and answers status polls. The server runs in-process ([`ToyServer`] is a
//! [`Transport`], so tests run on the paused clock) or over HTTP on 127.0.0.1 ([`serve`]).
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use purgekit_core::{
    Accepted, Batch, Budget, Capabilities, CompletionModel, Error, Event, Handle, HttpRequest,
    HttpResponse, Item, Limits, Mapped, Options, Progress, Provider, ProviderPurger, RateLimit,
    RateRegistry, Result, Secret, Status, Target, TargetKind, Transport, parse_retry_after,
};
use tokio::time::Instant;

pub const SECRET: &str = "toy-secret";

/// The toy codec: `POST /purge` with one item per line and `x-toy-key`; `GET /status/{id}`.
pub struct Toy {
    pub account: String,
    pub endpoint: String,
    /// Refuses targets with `/bad/` in them as invalid input.
    pub strict: bool,
    pub limits: Limits,
    pub key: Secret,
    /// How many requests it has encoded (each attempt is encoded afresh).
    pub encoded: Arc<AtomicUsize>,
    /// How completion is known (polled by default).
    pub completion: CompletionModel,
}

impl Toy {
    pub fn new(account: &str, limits: Limits) -> Self {
        Toy {
            account: account.to_owned(),
            endpoint: "http://toy.invalid".to_owned(),
            strict: false,
            limits,
            key: Secret::new(SECRET),
            encoded: Arc::default(),
            completion: CompletionModel::Polled,
        }
    }
}

/// Limits with `max_items` per request, a request budget and an item budget.
pub fn limits(max_items: usize, requests: Option<Budget>, items: Option<Budget>) -> Limits {
    Limits {
        max_items,
        rate: RateLimit { requests, items },
        ..Limits::default()
    }
}

fn text(response: &HttpResponse) -> String {
    String::from_utf8_lossy(response.body()).into_owned()
}

fn poll_after(response: &HttpResponse) -> Option<Duration> {
    response
        .headers()
        .get("x-poll-after")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .map(Duration::from_secs)
}

impl Provider for Toy {
    fn kind(&self) -> &'static str {
        "toy-engine"
    }
    fn account(&self) -> String {
        self.account.clone()
    }
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
    fn limits(&self) -> Limits {
        self.limits.clone()
    }
    fn completion(&self) -> CompletionModel {
        self.completion
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            targets: vec![TargetKind::Url],
            options: vec![],
        }
    }
    fn map(&self, target: &Target, _: &Options) -> Result<Mapped> {
        if self.strict && target.value().contains("/bad/") {
            return Err(Error::invalid(target.value(), "toy refuses /bad/ paths"));
        }
        let path = target.path_and_query().unwrap_or("/").to_owned();
        Ok(Mapped::Item(Item {
            kind: target.kind(),
            bytes: path.len() + 1,
            value: path,
            scope: String::new(),
            wildcard: false,
        }))
    }
    fn encode(&self, batch: &Batch, _: &Options, now: SystemTime) -> Result<HttpRequest> {
        self.encoded.fetch_add(1, Ordering::SeqCst);
        let body: String = batch
            .items
            .iter()
            .map(|i| format!("{}\n", i.value))
            .collect();
        let stamp = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        Ok(http::Request::post(format!("{}/purge", self.endpoint()))
            .header("x-toy-key", self.key.expose())
            .header("x-toy-time", stamp.to_string())
            .body(body.into_bytes())
            .unwrap())
    }
    fn decode(&self, _: &Batch, response: HttpResponse) -> Result<Accepted> {
        let retry_after = parse_retry_after(response.headers(), SystemTime::now());
        match response.status().as_u16() {
            201 => Ok(Accepted {
                handle: Handle(text(&response)),
                poll_after: poll_after(&response),
                warnings: vec![],
            }),
            401 => Err(Error::auth(text(&response))),
            429 => Err(Error::RateLimited {
                retry_after,
                message: text(&response),
            }),
            500..=599 => Err(Error::Transient {
                retry_after,
                message: format!("HTTP {}", response.status().as_u16()),
            }),
            code => Err(Error::rejected(code.to_string(), text(&response))),
        }
    }
    /// `GET /probe`, read by the default `decode_auth_probe`.
    fn auth_probe(&self, _: SystemTime) -> Result<purgekit_core::AuthProbe> {
        Ok(purgekit_core::AuthProbe::Request(Box::new(
            http::Request::get(format!("{}/probe", self.endpoint()))
                .header("x-toy-key", self.key.expose())
                .body(Vec::new())
                .unwrap(),
        )))
    }
    fn encode_status(&self, handle: &Handle, _: SystemTime) -> Result<HttpRequest> {
        Ok(
            http::Request::get(format!("{}/status/{handle}", self.endpoint()))
                .header("x-toy-key", self.key.expose())
                .body(Vec::new())
                .unwrap(),
        )
    }
    fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
        if response.status() != 200 {
            return Err(self.decode_error(response));
        }
        let detail = text(&response);
        let progress = match detail.as_str() {
            "completed" => Progress::Completed,
            "failed" => Progress::Failed,
            _ => Progress::Pending { percent: None },
        };
        Ok(Status {
            handle: handle.clone(),
            progress,
            poll_after: poll_after(&response),
            detail,
        })
    }
    fn redact(&self, request: &mut HttpRequest) {
        request
            .headers_mut()
            .insert("x-toy-key", purgekit_core::REDACTED.parse().unwrap());
    }
}

impl Toy {
    fn decode_error(&self, response: HttpResponse) -> Error {
        match response.status().as_u16() {
            401 => Error::auth(text(&response)),
            429 => Error::RateLimited {
                retry_after: parse_retry_after(response.headers(), SystemTime::now()),
                message: text(&response),
            },
            code @ 500..=599 => Error::transient(format!("HTTP {code}")),
            code => Error::rejected(code.to_string(), text(&response)),
        }
    }
}

/// How the toy server behaves.
#[derive(Debug, Clone)]
pub struct ToyConfig {
    /// Fixed windows of `per`, starting when the server starts; more than `amount` purge
    /// requests in one window are refused with 429.
    pub requests: Option<Budget>,
    /// Item debt: a purge request arriving while the debt of earlier items is unpaid is refused
    /// with 429; `k` items cost `k × per / amount`.
    pub items: Option<Budget>,
    /// Status polls answered `pending` before the final answer.
    pub pending_polls: u32,
    /// The final answer to status polls: `completed` or `failed`.
    pub outcome: &'static str,
    /// `x-poll-after` (seconds) on acceptances and pending statuses.
    pub poll_after: Option<u64>,
    /// Time each request spends "on the wire" before the server handles it.
    pub latency: Duration,
}

impl Default for ToyConfig {
    fn default() -> Self {
        ToyConfig {
            requests: None,
            items: None,
            pending_polls: 0,
            outcome: "completed",
            poll_after: None,
            latency: Duration::ZERO,
        }
    }
}

/// A scripted answer to the next purge request: status and optional `Retry-After`.
#[derive(Debug, Clone)]
pub struct Scripted(pub u16, pub Option<&'static str>);

#[derive(Debug)]
struct ServerState {
    started: Instant,
    window: u64,
    in_window: u32,
    debt_paid_at: Instant,
    /// (seconds since start, items) of every accepted purge.
    accepted: Vec<(f64, usize)>,
    /// Seconds since start of every purge request that arrived.
    arrivals: Vec<f64>,
    rejections: usize,
    script: VecDeque<Scripted>,
    always: Option<Scripted>,
    raw: VecDeque<HttpResponse>,
    status_script: VecDeque<Scripted>,
    /// Extra time on the wire for the next requests, in the order they arrive.
    held_up: VecDeque<Duration>,
    polls: HashMap<String, u32>,
    status_requests: Vec<f64>,
    in_flight: usize,
    max_in_flight: usize,
}

/// The toy CDN's server. Cheap to clone.
#[derive(Clone)]
pub struct ToyServer {
    config: Arc<ToyConfig>,
    state: Arc<Mutex<ServerState>>,
}

impl ToyServer {
    pub fn new(config: ToyConfig) -> Self {
        let now = Instant::now();
        ToyServer {
            config: Arc::new(config),
            state: Arc::new(Mutex::new(ServerState {
                started: now,
                window: 0,
                in_window: 0,
                debt_paid_at: now,
                accepted: vec![],
                arrivals: vec![],
                rejections: 0,
                script: VecDeque::new(),
                always: None,
                raw: VecDeque::new(),
                status_script: VecDeque::new(),
                held_up: VecDeque::new(),
                polls: HashMap::new(),
                status_requests: vec![],
                in_flight: 0,
                max_in_flight: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ServerState> {
        self.state.lock().unwrap()
    }

    /// Answers the next purge requests with these, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.lock().script.extend(answers);
    }

    /// Answers the next purge requests with these responses, as they are.
    pub fn script_responses(&self, answers: impl IntoIterator<Item = HttpResponse>) {
        self.lock().raw.extend(answers);
    }

    /// Answers the next status requests with these.
    pub fn script_status(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.lock().status_script.extend(answers);
    }

    /// Holds the next requests up on their way, each by one of these on top of the latency
    /// (a busy machine or network between the engine's start and the server's charge).
    pub fn hold_up(&self, delays: impl IntoIterator<Item = Duration>) {
        self.lock().held_up.extend(delays);
    }

    /// Answers every purge request with this.
    pub fn always(&self, answer: Scripted) {
        self.lock().always = Some(answer);
    }

    /// (seconds since start, items) of every accepted purge.
    pub fn accepted(&self) -> Vec<(f64, usize)> {
        self.lock().accepted.clone()
    }

    /// Seconds since start of every purge request received.
    pub fn arrivals(&self) -> Vec<f64> {
        self.lock().arrivals.clone()
    }

    /// Purge requests refused for rate.
    pub fn rejections(&self) -> usize {
        self.lock().rejections
    }

    /// Seconds since start of every status request.
    pub fn status_requests(&self) -> Vec<f64> {
        self.lock().status_requests.clone()
    }

    /// Most requests it handled at once.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    /// Handles one request.
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
        let held_up = {
            let mut s = self.lock();
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
            s.held_up.pop_front().unwrap_or_default()
        };
        tokio::time::sleep(self.config.latency + held_up).await;
        let response = self.answer(&request);
        self.lock().in_flight -= 1;
        response
    }

    fn answer(&self, request: &HttpRequest) -> HttpResponse {
        let mut s = self.lock();
        let now = Instant::now();
        let at = (now - s.started).as_secs_f64();
        let key = request
            .headers()
            .get("x-toy-key")
            .and_then(|v| v.to_str().ok());
        if key != Some(SECRET) {
            return respond(401, &[], "bad key");
        }
        let path = request.uri().path().to_owned();
        if let Some(id) = path.strip_prefix("/status/") {
            s.status_requests.push(at);
            if let Some(Scripted(status, retry_after)) = s.status_script.pop_front() {
                let headers: Vec<(&str, String)> = retry_after
                    .map(|r| vec![("retry-after", r.to_owned())])
                    .unwrap_or_default();
                return respond(status, &headers, "scripted status failure");
            }
            let polls = s.polls.entry(id.to_owned()).or_insert(0);
            *polls += 1;
            let body = if *polls > self.config.pending_polls {
                self.config.outcome
            } else {
                "pending"
            };
            return respond(200, &self.poll_after_header(), body);
        }
        s.arrivals.push(at);
        if let Some(raw) = s.raw.pop_front() {
            return raw;
        }
        if let Some(Scripted(status, retry_after)) = s.script.pop_front().or(s.always.clone()) {
            let headers: Vec<(&str, String)> = retry_after
                .map(|r| vec![("retry-after", r.to_owned())])
                .unwrap_or_default();
            return respond(status, &headers, "scripted failure");
        }
        let items = String::from_utf8_lossy(request.body()).lines().count();
        if let Some(b) = self.config.requests {
            let window = (now - s.started).as_nanos() / b.per.as_nanos();
            let window = window as u64;
            if window != s.window {
                s.window = window;
                s.in_window = 0;
            }
            if s.in_window >= b.amount {
                s.rejections += 1;
                return respond(429, &[], "too many requests in this window");
            }
            s.in_window += 1;
        }
        if let Some(b) = self.config.items {
            if now < s.debt_paid_at {
                s.rejections += 1;
                return respond(429, &[], "item debt unpaid");
            }
            s.debt_paid_at = now + b.per.mul_f64(items as f64 / f64::from(b.amount));
        }
        s.accepted.push((at, items));
        let id = format!("job-{}", s.accepted.len());
        respond(201, &self.poll_after_header(), &id)
    }

    fn poll_after_header(&self) -> Vec<(&'static str, String)> {
        self.config
            .poll_after
            .map(|s| vec![("x-poll-after", s.to_string())])
            .unwrap_or_default()
    }
}

fn respond(status: u16, headers: &[(&str, String)], body: &str) -> HttpResponse {
    let mut response = http::Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response.body(body.as_bytes().to_vec()).unwrap()
}

#[async_trait]
impl Transport for ToyServer {
    async fn send(&self, request: HttpRequest, _max_response_bytes: usize) -> Result<HttpResponse> {
        Ok(self.handle(request).await)
    }
}

/// A purger named `name` for `toy`, talking to `server` in-process, with its own rate registry
/// unless one is given.
pub fn purger(
    name: &str,
    toy: Toy,
    server: &ToyServer,
    config: purgekit_core::EngineConfig,
    registry: Option<Arc<RateRegistry>>,
) -> ProviderPurger<Toy> {
    ProviderPurger::new(name, toy)
        .with_transport(Arc::new(server.clone()))
        .with_config(config)
        .with_rate_registry(registry.unwrap_or_default())
}

/// Collects progress events.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<(f64, Event)>>>);

impl Events {
    pub fn context(&self) -> purgekit_core::PurgeContext {
        let events = self.0.clone();
        let started = Instant::now();
        purgekit_core::PurgeContext {
            progress: Some(Arc::new(move |e: &Event| {
                let at = (Instant::now() - started).as_secs_f64();
                events.lock().unwrap().push((at, e.clone()));
            })),
            ..Default::default()
        }
    }

    pub fn all(&self) -> Vec<(f64, Event)> {
        self.0.lock().unwrap().clone()
    }
}

/// Serves `server` over HTTP on 127.0.0.1; returns the base URL and the task.
pub async fn serve(server: ToyServer) -> (String, tokio::task::JoinHandle<()>) {
    use axum::body::{Body, to_bytes};
    let app = axum::Router::new().fallback(move |request: http::Request<Body>| {
        let server = server.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default()
                .to_vec();
            let response = server.handle(http::Request::from_parts(parts, body)).await;
            let (parts, body) = response.into_parts();
            http::Response::from_parts(parts, Body::from(body))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}
