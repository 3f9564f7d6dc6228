//! A faithful stand-in for Limelight (Edgio) SmartPurge, `/purge/v1/account/{shortname}/…`.
//!
//! It checks what the vendor documents, the way the vendor documents it:
//! - `X-LLNW-Security-Principal` names the configured user, `X-LLNW-Security-Timestamp` is within
//!   300 s of the server clock, and `X-LLNW-Security-Token` is the HMAC-SHA256 (hex-decoded key)
//!   of `METHOD + http://{Host}{path} + query + timestamp + body` — the URL it was called on
//!   (401 with 1024 or 1026; 400 with 1010 for a non-integer timestamp);
//! - the shortname in the path is the configured one (403, 1025);
//! - bodies over 32 KB (32 × 1024 bytes, configurable) are refused with a bare 413;
//! - the purge schema exactly: unknown keys 1003, missing 1001, types 1004, empty arrays 1005,
//!   lengths 1006 (pattern 4096, tag 256, subject 128, to/cc/bcc 256, callback 512, notes 512),
//!   1007 bad pattern, 1028 bad email, 1029 bad callback, 1040 bad tag, 1041 more than 100
//!   patterns and tags, 1042 none at all;
//! - one item per second per shortname as debt (429, 1022) and at most 1000 items queued (429,
//!   1021); every such refusal is counted ([`LimelightEmulator::rejections`]);
//! - 201 with a 32-hex `id`, then queued → in_progress → complete → stats_avail over the
//!   configured times, with per-pattern and per-tag `stats` once available; get-by-id (1011 on a
//!   malformed id, 404 on an unknown one, `?geostats`), list by shortname and translate (1019,
//!   1023, 1031).
//! - The list takes every documented term, each optional, in any combination, with its
//!   documented default: `start_ts` (submitted after; default and oldest 90 days back, 1014),
//!   `end_ts` (submitted before; default now, at most 5 minutes ahead, 1015; after `start_ts`,
//!   1016), `limit` (1–100, default 50, 1013), `offset` (0–5000, default 0, 1012), `order`
//!   (`desc` by submission time, default, or `asc`, 1017); a term with no name is 1020.
//!
//! Every window and timer runs on `tokio::time::Instant`; the wall clock is read only to check
//! signed timestamps and, once at start, to turn instants into the `ts` values it reports.
//! Statistics are a fixed model (an exact URL purges 1 object, a glob 4, a tag 2, each 2 KiB):
//! there is no cache behind the emulator.

mod auth;
mod state;
mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

pub use auth::sign;
pub use wire::{PatternEntry, TagEntry};

use crate::auth::authenticate;
use crate::{Faults, Running, Seen, SeenRequest};
use state::{Debt, Lifecycle};

/// The sandbox account's shortname.
pub const DEMO_SHORTNAME: &str = "demo";
/// The sandbox user.
pub const DEMO_USERNAME: &str = "demo-user";
/// The sandbox user's shared key (hex). Not a secret: it only opens the emulator.
pub const DEMO_SHARED_KEY: &str =
    "0123456789abcdeffedcba98765432100123456789abcdeffedcba9876543210";

/// How the emulator behaves; [`Default`] is the vendor's documented behaviour with the demo
/// credentials. Every timing knob can be shrunk so tests run fast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimelightEmulatorConfig {
    /// The one shortname the user may purge.
    pub shortname: String,
    /// The user (`X-LLNW-Security-Principal`).
    pub username: String,
    /// The user's shared key, hex. [`LimelightEmulator::new`] panics if it is not hex.
    pub shared_key: String,
    /// Oldest (or furthest in the future) a signed timestamp may be: 300 s.
    pub max_timestamp_age: Duration,
    /// The debt each accepted item adds: 1 s ("60 per minute, one per second").
    pub item_interval: Duration,
    /// Patterns + tags per request: 100.
    pub max_items: usize,
    /// Body bytes per request: 32 × 1024.
    pub max_body_bytes: usize,
    /// Items queued (not yet complete) per shortname: 1000.
    pub max_queued_items: usize,
    /// Time in `queued`.
    pub queued_for: Duration,
    /// Time in `in_progress`.
    pub in_progress_for: Duration,
    /// Time from `complete` to `stats_avail`.
    pub stats_after: Duration,
    /// Public host → origin host (or `scheme://host`), for translate.
    pub origins: BTreeMap<String, String>,
    /// Send `Retry-After` (seconds left of the debt) with 1022. The vendor does not document
    /// one, so off by default.
    pub retry_after_header: bool,
}

impl LimelightEmulatorConfig {
    /// The sandbox: demo credentials ([`DEMO_SHORTNAME`], [`DEMO_USERNAME`],
    /// [`DEMO_SHARED_KEY`]), documented limits, a purge complete in 3 s with stats 2 s later.
    pub fn demo() -> Self {
        LimelightEmulatorConfig {
            shortname: DEMO_SHORTNAME.to_owned(),
            username: DEMO_USERNAME.to_owned(),
            shared_key: DEMO_SHARED_KEY.to_owned(),
            max_timestamp_age: Duration::from_secs(300),
            item_interval: Duration::from_secs(1),
            max_items: 100,
            max_body_bytes: 32 * 1024,
            max_queued_items: 1000,
            queued_for: Duration::from_secs(1),
            in_progress_for: Duration::from_secs(2),
            stats_after: Duration::from_secs(2),
            origins: BTreeMap::new(),
            retry_after_header: false,
        }
    }

    /// No rate debt and near-instant state changes, for tests that are not about timing.
    pub fn fast(mut self) -> Self {
        self.item_interval = Duration::ZERO;
        self.queued_for = Duration::from_millis(5);
        self.in_progress_for = Duration::from_millis(5);
        self.stats_after = Duration::from_millis(5);
        self
    }
}

impl Default for LimelightEmulatorConfig {
    fn default() -> Self {
        Self::demo()
    }
}

/// An accepted purge request, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The 32-hex id answered.
    pub id: String,
    /// Its patterns and exact URLs.
    pub patterns: Vec<PatternEntry>,
    /// Its tags.
    pub tags: Vec<TagEntry>,
    /// Its callback URL.
    pub callback: Option<String>,
    /// Its notes.
    pub notes: Option<String>,
    /// Whether it was a dry run (nothing purged).
    pub dry_run: bool,
    /// The body's length in bytes.
    pub body_bytes: usize,
    /// When it was accepted (Unix ms, the emulator's clock).
    pub submitted_ms: u64,
    accepted_at: Instant,
    echo: Map<String, Value>,
}

/// One pattern or tag purged (dry runs excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgedItem {
    /// A `patterns[]` entry.
    Pattern(PatternEntry),
    /// A `tags[]` entry.
    Tag(TagEntry),
}

/// The Limelight SmartPurge emulator: cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct LimelightEmulator {
    shared: Arc<Shared>,
}

struct Shared {
    config: LimelightEmulatorConfig,
    key: Vec<u8>,
    faults: Faults,
    seen: Seen,
    /// The instant the emulator started and the wall clock then (Unix ms), to report `ts`.
    epoch: (Instant, u64),
    id_seed: u64,
    ledger: Mutex<Ledger>,
}

#[derive(Default)]
struct Ledger {
    debt: Debt,
    submissions: Vec<Submission>,
    rejections: usize,
    next_id: u64,
}

/// One entry of an `{"errors":[…]}` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ApiError {
    pub message: String,
    pub code: u32,
    pub description: String,
    pub source: String,
}

impl ApiError {
    pub(crate) fn new(
        code: u32,
        message: impl Into<String>,
        description: impl Into<String>,
        source: impl Into<String>,
    ) -> Self {
        ApiError {
            message: message.into(),
            code,
            description: description.into(),
            source: source.into(),
        }
    }
}

fn errors(status: StatusCode, errors: Vec<ApiError>) -> Response {
    (status, axum::Json(json!({ "errors": errors }))).into_response()
}

fn error(status: StatusCode, e: ApiError) -> Response {
    errors(status, vec![e])
}

impl LimelightEmulator {
    /// An emulator with `config`.
    ///
    /// # Panics
    /// If `config.shared_key` is not hex (a test's own mistake, not user input).
    pub fn new(config: LimelightEmulatorConfig) -> Self {
        let key = hex::decode(&config.shared_key)
            .expect("LimelightEmulatorConfig::shared_key must be hex");
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        LimelightEmulator {
            shared: Arc::new(Shared {
                config,
                key,
                faults: Faults::default(),
                seen: Seen::default(),
                epoch: (Instant::now(), wall.as_millis() as u64),
                id_seed: u64::from(wall.subsec_nanos()) ^ (wall.as_secs() << 20),
                ledger: Mutex::new(Ledger::default()),
            }),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &LimelightEmulatorConfig {
        &self.shared.config
    }

    /// The API as an axum router, with the fault middleware and request recording applied.
    pub fn router(&self) -> Router {
        let account = "/purge/v1/account/{shortname}";
        crate::observed(
            Router::new()
                .route(&format!("{account}/requests"), get(list).post(submit))
                .route(&format!("{account}/requests/{{id}}"), get(details))
                .route(&format!("{account}/translate"), get(translate))
                .with_state(self.clone())
                .route_layer(from_fn_with_state(
                    self.clone(),
                    authenticate::<LimelightEmulator>,
                )),
            self.faults(),
            self.shared.seen.clone(),
        )
    }

    /// The fault queue applied to incoming requests.
    pub fn faults(&self) -> Faults {
        self.shared.faults.clone()
    }

    /// Serves on `127.0.0.1` at a free port.
    pub async fn start(&self) -> std::io::Result<Running> {
        crate::serve(self.router(), SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Every request received, in order, faulted ones included.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.seen.requests()
    }

    /// Every accepted purge request, in order.
    pub fn submissions(&self) -> Vec<Submission> {
        self.ledger().submissions.clone()
    }

    /// Every pattern and tag purged, in order (dry runs excluded).
    pub fn purged(&self) -> Vec<PurgedItem> {
        self.ledger()
            .submissions
            .iter()
            .filter(|s| !s.dry_run)
            .flat_map(|s| {
                let patterns = s.patterns.iter().cloned().map(PurgedItem::Pattern);
                patterns.chain(s.tags.iter().cloned().map(PurgedItem::Tag))
            })
            .collect()
    }

    /// Requests refused for rate (429 with 1021 or 1022).
    pub fn rejections(&self) -> usize {
        self.ledger().rejections
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.shared.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lifecycle(&self) -> Lifecycle {
        let c = &self.shared.config;
        Lifecycle {
            queued_for: c.queued_for,
            in_progress_for: c.in_progress_for,
            stats_after: c.stats_after,
        }
    }

    /// Unix ms of `at` on the emulator's clock.
    fn wall_ms(&self, at: Instant) -> u64 {
        let (start, wall) = self.shared.epoch;
        wall + at.saturating_duration_since(start).as_millis() as u64
    }

    /// Authorizes a request for `shortname` (the authentication layer verified who signed it).
    fn guard(&self, shortname: &str) -> Result<(), auth::Refusal> {
        let c = &self.shared.config;
        if shortname != c.shortname {
            return Err((
                StatusCode::FORBIDDEN,
                ApiError::new(
                    1025,
                    "user authorization failed",
                    format!(
                        "The user specified in the X-LLNW-Security-Principal request header is \
                         not authorized to perform this operation on {shortname}."
                    ),
                    "user authorization",
                ),
            ));
        }
        Ok(())
    }

    /// A purge request as the API shows it at `now`.
    fn record_json(&self, s: &Submission, now: Instant, single: bool, geostats: bool) -> Value {
        let c = &self.shared.config;
        let life = self.lifecycle();
        let mut out = Map::new();
        out.insert("id".into(), json!(s.id));
        if life.state(s.accepted_at, now) == "stats_avail" {
            let stats = stats(s);
            if single && geostats {
                out.insert("geostats".into(), geo(&stats));
            } else {
                out.insert("stats".into(), Value::Array(stats));
            }
        }
        let states: Vec<Value> = life
            .states(s.accepted_at, now)
            .into_iter()
            .map(|(state, at)| json!({ "ts": self.wall_ms(at), "state": state }))
            .collect();
        out.insert("states".into(), Value::Array(states));
        if single && let Some(done) = life.completion(s.accepted_at, now) {
            out.insert("completion".into(), json!(done));
        }
        out.insert("username".into(), json!(c.username));
        out.insert("shortname".into(), json!(c.shortname));
        out.extend(s.echo.clone());
        Value::Object(out)
    }
}

/// The statistics model: exact URL 1 object, glob 4, tag 2; 2 KiB each.
fn stats(s: &Submission) -> Vec<Value> {
    let patterns = s.patterns.iter().enumerate().map(|(i, p)| {
        let count = if p.exact { 1 } else { 4 };
        json!({ "pattern": i, "count": count, "size": count * 2048 })
    });
    let tags = s
        .tags
        .iter()
        .enumerate()
        .map(|(i, _)| json!({ "tag": i, "count": 2, "size": 2 * 2048 }));
    patterns.chain(tags).collect()
}

/// The same statistics split over two datacenters.
fn geo(stats: &[Value]) -> Value {
    let split = |first: bool| -> Vec<Value> {
        stats
            .iter()
            .map(|s| {
                let mut s = s.clone();
                let count = s["count"].as_u64().unwrap_or(0);
                let here = if first { count.div_ceil(2) } else { count / 2 };
                s["count"] = json!(here);
                s["size"] = json!(here * 2048);
                s
            })
            .collect()
    };
    json!({ "dal": split(true), "lon": split(false) })
}

async fn submit(
    State(emu): State<LimelightEmulator>,
    Path(shortname): Path<String>,
    body: Bytes,
) -> Response {
    let c = &emu.shared.config;
    if body.len() > c.max_body_bytes {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    if let Err((status, refusal)) = emu.guard(&shortname) {
        return error(status, refusal);
    }
    let purge = match wire::check(
        &body,
        &wire::Bounds {
            max_items: c.max_items,
        },
    ) {
        Ok(purge) => purge,
        Err(found) => return errors(StatusCode::BAD_REQUEST, found),
    };
    let items = purge.patterns.len() + purge.tags.len();
    let now = Instant::now();
    let life = emu.lifecycle();
    let mut ledger = emu.ledger();
    let queued: usize = ledger
        .submissions
        .iter()
        .filter(|s| life.is_queued(s.accepted_at, now))
        .map(|s| s.patterns.len() + s.tags.len())
        .sum();
    if queued + items > c.max_queued_items {
        ledger.rejections += 1;
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            ApiError::new(
                1021,
                "queued patterns limit is reached",
                format!(
                    "You have reached the maximum number of queued patterns ({}). Please \
                     resubmit your request after some of your patterns have been processed.",
                    c.max_queued_items
                ),
                "system limits",
            ),
        );
    }
    if let Err(wait) = ledger.debt.admit(items, c.item_interval, now) {
        ledger.rejections += 1;
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            ApiError::new(
                1022,
                "patterns per minute limit is reached",
                "You have reached the maximum number of submitted patterns per minute (60). \
                 Please wait 60 seconds before resubmitting your request.",
                "system limits",
            ),
        );
        if c.retry_after_header {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return response;
    }
    ledger.next_id += 1;
    let id = format!("{:016x}{:016x}", emu.shared.id_seed, ledger.next_id);
    let submission = Submission {
        id,
        patterns: purge.patterns,
        tags: purge.tags,
        callback: purge.callback,
        notes: purge.notes,
        dry_run: purge.dry_run,
        body_bytes: body.len(),
        submitted_ms: emu.wall_ms(now),
        accepted_at: now,
        echo: purge.echo,
    };
    let answer = emu.record_json(&submission, now, true, false);
    ledger.submissions.push(submission);
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

async fn details(
    State(emu): State<LimelightEmulator>,
    Path((shortname, id)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    if let Err((status, refusal)) = emu.guard(&shortname) {
        return error(status, refusal);
    }
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return error(
            StatusCode::BAD_REQUEST,
            ApiError::new(
                1011,
                "invalid request id",
                format!("The SmartPurge request id {id} not a valid UUID."),
                "purge request id",
            ),
        );
    }
    let geostats = query_terms(uri.query())
        .iter()
        .any(|(k, _)| k == "geostats");
    let now = Instant::now();
    let ledger = emu.ledger();
    match ledger
        .submissions
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(&id))
    {
        Some(s) => axum::Json(emu.record_json(s, now, true, geostats)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

const DAY_MS: u64 = 86_400_000;

async fn list(
    State(emu): State<LimelightEmulator>,
    Path(shortname): Path<String>,
    uri: Uri,
) -> Response {
    if let Err((status, refusal)) = emu.guard(&shortname) {
        return error(status, refusal);
    }
    let now = Instant::now();
    let now_ms = emu.wall_ms(now);
    let oldest = now_ms.saturating_sub(90 * DAY_MS);
    let (mut start, mut end, mut limit, mut offset, mut asc) = (oldest, now_ms, 50u64, 0u64, false);
    let bad = |code: u32, message: &str, description: String, source: &str| {
        error(
            StatusCode::BAD_REQUEST,
            ApiError::new(code, message, description, source),
        )
    };
    for (key, value) in query_terms(uri.query()) {
        let number = value.parse::<u64>().ok();
        match key.as_str() {
            "" => {
                return bad(
                    1020,
                    "invalid query string",
                    format!("The query string {value} is malformed."),
                    "query string",
                );
            }
            "start_ts" => match number.filter(|n| *n >= oldest) {
                Some(n) => start = n,
                None => {
                    return bad(
                        1014,
                        "invalid start_ts",
                        format!(
                            "The query string term start_ts value {value} is invalid. It must be a number of milliseconds not more than 90 days before the time of submission."
                        ),
                        "start_ts query parameter",
                    );
                }
            },
            "end_ts" => match number.filter(|n| *n >= oldest && *n <= now_ms + 300_000) {
                Some(n) => end = n,
                None => {
                    return bad(
                        1015,
                        "invalid end_ts",
                        format!(
                            "The query string term end_ts value {value} is invalid. It must be a number of milliseconds not more than 90 days before the time of submission and greater than the start_ts value."
                        ),
                        "end_ts query parameter",
                    );
                }
            },
            "limit" => match number.filter(|n| (1..=100).contains(n)) {
                Some(n) => limit = n,
                None => {
                    return bad(
                        1013,
                        "invalid limit",
                        format!(
                            "The query string term limit value {value} is invalid. It must be an integer in range [1 - 100]."
                        ),
                        "limit query parameter",
                    );
                }
            },
            "offset" => match number.filter(|n| *n <= 5000) {
                Some(n) => offset = n,
                None => {
                    return bad(
                        1012,
                        "invalid offset",
                        format!(
                            "The query string term offset value {value} is invalid. It must be an integer in range [0 - 5000]."
                        ),
                        "offset query parameter",
                    );
                }
            },
            "order" => match value.as_str() {
                "asc" => asc = true,
                "desc" => asc = false,
                _ => {
                    return bad(
                        1017,
                        "invalid order",
                        format!(
                            "The query string term order value {value} is invalid. It must be either asc or desc."
                        ),
                        "order query parameter",
                    );
                }
            },
            _ => {}
        }
    }
    if start >= end {
        return bad(1016, "invalid timestamp range", "The value of the start_ts query string term must be less than the value of the end_ts term.".into(), "query string");
    }
    let ledger = emu.ledger();
    let mut matching: Vec<&Submission> = ledger
        .submissions
        .iter()
        .filter(|s| (start..=end).contains(&s.submitted_ms))
        .collect();
    if !asc {
        matching.reverse();
    }
    let total = matching.len().min(5000);
    let requests: Vec<Value> = matching
        .iter()
        .take(5000)
        .skip(offset as usize)
        .take(limit as usize)
        .map(|s| emu.record_json(s, now, false, false))
        .collect();
    let mut answer = json!({ "requests": requests, "total": total });
    if matching.len() > 5000 {
        answer["more"] = json!(true);
    }
    axum::Json(answer).into_response()
}

async fn translate(
    State(emu): State<LimelightEmulator>,
    Path(shortname): Path<String>,
    uri: Uri,
) -> Response {
    if let Err((status, refusal)) = emu.guard(&shortname) {
        return error(status, refusal);
    }
    let terms = query_terms(uri.query());
    let Some((_, url)) = terms.iter().find(|(k, _)| k == "url") else {
        return error(
            StatusCode::BAD_REQUEST,
            ApiError::new(
                1019,
                "missing url",
                "missing required query parameter: url",
                "query",
            ),
        );
    };
    let parsed = url
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
        .map(|(scheme, rest)| {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            (scheme, &rest[..end], &rest[end..])
        })
        .filter(|(_, authority, _)| !authority.is_empty() && !url.chars().any(char::is_whitespace));
    let Some((scheme, authority, rest)) = parsed else {
        return error(
            StatusCode::BAD_REQUEST,
            ApiError::new(
                1023,
                "invalid URL",
                format!("The URL '{url}' in your request is invalid."),
                "url query parameter",
            ),
        );
    };
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .to_ascii_lowercase();
    match emu.shared.config.origins.get(&host) {
        Some(origin) => {
            let translated = if origin.contains("://") {
                format!("{origin}{rest}")
            } else {
                format!("{scheme}://{origin}{rest}")
            };
            axum::Json(json!({ "translated": translated })).into_response()
        }
        None => error(
            StatusCode::BAD_REQUEST,
            ApiError::new(
                1031,
                "unconfigured URL",
                format!(
                    "The exact public URL {url} does not match any Published Host in the configuration. Please correct the values of the URL or exact flag."
                ),
                "url query parameter",
            ),
        ),
    }
}

/// `a=1&b&c=%2F` → `[("a","1"),("b",""),("c","/")]`, percent-decoded (`+` stays `+`).
fn query_terms(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|t| !t.is_empty())
        .map(|t| {
            let (k, v) = t.split_once('=').unwrap_or((t, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl LimelightEmulator {
    /// The demo account with purges that complete in two seconds (the sandbox's).
    pub fn sandbox() -> Self {
        LimelightEmulator::new(LimelightEmulatorConfig {
            queued_for: Duration::from_millis(500),
            in_progress_for: Duration::from_millis(1500),
            stats_after: Duration::from_secs(1),
            ..LimelightEmulatorConfig::demo()
        })
    }
}

impl crate::Emulated for LimelightEmulator {
    fn kind(&self) -> &'static str {
        "limelight"
    }

    fn title(&self) -> &'static str {
        "Limelight SmartPurge"
    }

    fn router(&self) -> Router {
        LimelightEmulator::router(self)
    }

    fn faults(&self) -> Faults {
        LimelightEmulator::faults(self)
    }

    /// The account, and its item debt declared as one item per `item_interval`.
    fn config(&self, endpoint: &str) -> toml::Table {
        let e = self.config();
        let mut table = crate::table(
            "limelight",
            [
                ("endpoint", endpoint),
                ("shortname", e.shortname.as_str()),
                ("username", e.username.as_str()),
                ("shared_key", e.shared_key.as_str()),
            ],
        );
        if let Some(rate) = crate::rate_limit("items", 1, e.item_interval) {
            table.insert("rate_limit".to_owned(), rate);
        }
        table
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.config().shared_key.clone()]
    }

    fn requests(&self) -> Vec<SeenRequest> {
        LimelightEmulator::requests(self)
    }

    fn purged(&self) -> Vec<String> {
        LimelightEmulator::purged(self)
            .into_iter()
            .map(|item| match item {
                PurgedItem::Pattern(p) => crate::host_and_path(&p.pattern),
                PurgedItem::Tag(t) => format!("tag {}", t.tag),
            })
            .collect()
    }

    fn limits(&self) -> toml::Table {
        let e = self.config();
        let mut t = toml::Table::new();
        t.insert(
            "item_interval".into(),
            crate::duration_value(e.item_interval),
        );
        t.insert("queued_for".into(), crate::duration_value(e.queued_for));
        t.insert(
            "in_progress_for".into(),
            crate::duration_value(e.in_progress_for),
        );
        t.insert("stats_after".into(), crate::duration_value(e.stats_after));
        t
    }

    fn adjusted(
        &self,
        speed: f64,
        overrides: &toml::Table,
    ) -> Result<Arc<dyn crate::Emulated>, String> {
        let mut adjust = crate::Adjust::new("limelight", speed, overrides)?;
        let e = self.config();
        let config = LimelightEmulatorConfig {
            item_interval: adjust.time("item_interval", e.item_interval)?,
            queued_for: adjust.time("queued_for", e.queued_for)?,
            in_progress_for: adjust.time("in_progress_for", e.in_progress_for)?,
            stats_after: adjust.time("stats_after", e.stats_after)?,
            ..e.clone()
        };
        adjust.finish(&crate::Emulated::limits(self))?;
        Ok(Arc::new(LimelightEmulator::new(config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_terms_are_split_and_decoded() {
        assert_eq!(
            query_terms(Some("url=http://a.example/x%3Fy%3D1%26z&geostats&k=a+b")),
            [
                ("url".to_owned(), "http://a.example/x?y=1&z".to_owned()),
                ("geostats".to_owned(), String::new()),
                ("k".to_owned(), "a+b".to_owned()),
            ]
        );
        assert_eq!(percent_decode("%C3%A9%zz"), "é%zz");
    }

    #[test]
    fn demo_key_is_hex_and_ids_are_32_hex() {
        let emu = LimelightEmulator::new(LimelightEmulatorConfig::demo());
        assert_eq!(emu.shared.key.len(), 32);
        let id = format!("{:016x}{:016x}", emu.shared.id_seed, 1u64);
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
