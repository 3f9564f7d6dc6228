//! A faithful stand-in for Akamai Fast Purge v3, `POST /ccu/v3/{invalidate|delete}/{url|tag|cpcode}[/{network}]`.
//!
//! It checks what the vendor documents, the way the vendor documents it:
//! - EdgeGrid `EG1-HMAC-SHA256`, verified with its own implementation of the spec: the tokens,
//!   the signature (recomputed over `METHOD\thttp\tHost\tpath?query\t\tcontent-hash\tprefix`
//!   with the stored secret), the timestamp within [`AkamaiEmulatorConfig::max_clock_skew`] of
//!   the server clock, and a nonce never seen before within that window (401 otherwise);
//! - `Content-Type: application/json` (415), at most 50,000 body bytes (413);
//! - the schema: one object type per request (strings for URLs/ARLs and tags, integers for CP
//!   codes), the `hostname` form for URLs, no other key, no empty `objects` (400 with the
//!   documented titles: `bad URL`, `bad URL hostname`…); CP codes outside the configured
//!   contract are refused whole (403), as one bad object fails the whole request;
//! - the account's token buckets — requests 100 (50/s), URLs 10,000 (200/s), tags 5,000
//!   (500/min), CP codes 300 (30/min): a request needs one request token and one object token
//!   per object; a refused request (429, with `rateLimit`, `rateLimitCurrentRequestSize` and
//!   `rateLimitRemaining`) takes none; every 201 and 429 carries the `X-RateLimit-*` headers;
//! - 201 with `purgeId`, `supportId` and `estimatedSeconds`; `rate-limit-status` answers 201
//!   with the headers.
//!
//! Buckets run on `tokio::time::Instant`; the wall clock is read only to check timestamps.
//! Akamai documents no figure for the allowed clock skew; the emulator uses 30 s (configurable).

mod auth;
mod state;
mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tokio::time::Instant;

pub use auth::sign;
pub use state::BucketSpec;

use crate::auth::authenticate;
use crate::{Faults, Running, Seen, SeenRequest};
use state::{Bucket, Nonces};
use wire::Problem;

/// The sandbox API client's `client_token`.
pub const DEMO_CLIENT_TOKEN: &str = "akab-demo-client-token-xxxxxxxxxxxx";
/// The sandbox API client's `client_secret`. Not a secret: it only opens the emulator.
pub const DEMO_CLIENT_SECRET: &str = "ZGVtby1jbGllbnQtc2VjcmV0LW9ubHktb3BlbnMtdGhlLWVtdWxhdG9y";
/// The sandbox API client's `access_token`.
pub const DEMO_ACCESS_TOKEN: &str = "akab-demo-access-token-xxxxxxxxxxxx";

/// How the emulator behaves; [`Default`] is the vendor's documented behaviour with the demo
/// credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct AkamaiEmulatorConfig {
    /// The API client's `client_token`.
    pub client_token: String,
    /// Its `client_secret`.
    pub client_secret: String,
    /// Its `access_token`.
    pub access_token: String,
    /// Body bytes hashed in signatures: 131,072 (EdgeGrid's default).
    pub max_body: usize,
    /// Furthest a signed timestamp may be from the server clock: 30 s.
    pub max_clock_skew: Duration,
    /// Body bytes per request: 50,000.
    pub max_body_bytes: usize,
    /// The request bucket: 100, refilled 50 a second.
    pub requests: BucketSpec,
    /// The URL/ARL bucket: 10,000, refilled 200 a second.
    pub urls: BucketSpec,
    /// The cache tag bucket: 5,000, refilled 500 a minute.
    pub tags: BucketSpec,
    /// The CP code bucket: 300, refilled 30 a minute.
    pub cpcodes: BucketSpec,
    /// `estimatedSeconds` answered: 5.
    pub estimated_seconds: u64,
    /// The CP codes the client may purge; `None`: any.
    pub contract_cpcodes: Option<Vec<u64>>,
    /// Send `Retry-After` with 429s. Akamai documents none, so off by default.
    pub retry_after_header: bool,
}

impl AkamaiEmulatorConfig {
    /// The sandbox: demo credentials and the documented limits.
    pub fn demo() -> Self {
        let bucket = |size: f64, refill_per_second: f64| BucketSpec {
            size,
            refill_per_second,
        };
        AkamaiEmulatorConfig {
            client_token: DEMO_CLIENT_TOKEN.to_owned(),
            client_secret: DEMO_CLIENT_SECRET.to_owned(),
            access_token: DEMO_ACCESS_TOKEN.to_owned(),
            max_body: 131_072,
            max_clock_skew: Duration::from_secs(30),
            max_body_bytes: 50_000,
            requests: bucket(100.0, 50.0),
            urls: bucket(10_000.0, 200.0),
            tags: bucket(5_000.0, 500.0 / 60.0),
            cpcodes: bucket(300.0, 30.0 / 60.0),
            estimated_seconds: 5,
            contract_cpcodes: None,
            retry_after_header: false,
        }
    }

    /// The same buckets refilled `factor` times faster (tests and benchmarks compress time).
    pub fn refill_faster(mut self, factor: f64) -> Self {
        for b in [
            &mut self.requests,
            &mut self.urls,
            &mut self.tags,
            &mut self.cpcodes,
        ] {
            b.refill_per_second *= factor;
        }
        self
    }
}

impl Default for AkamaiEmulatorConfig {
    fn default() -> Self {
        Self::demo()
    }
}

/// One accepted purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    /// The `purgeId` answered.
    pub purge_id: String,
    /// `invalidate` or `delete`.
    pub action: String,
    /// `url`, `tag` or `cpcode`.
    pub object_type: String,
    /// `production` or `staging`.
    pub network: String,
    /// The objects, as sent (CP codes in decimal; `hostname` + path for that form).
    pub objects: Vec<String>,
    /// The body's length in bytes.
    pub body_bytes: usize,
}

/// The Akamai Fast Purge emulator: cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct AkamaiEmulator {
    shared: Arc<Shared>,
}

struct Shared {
    config: AkamaiEmulatorConfig,
    faults: Faults,
    seen: Seen,
    ledger: Mutex<Ledger>,
}

struct Ledger {
    requests: Bucket,
    /// URL, tag and CP code buckets, in that order.
    objects: [Bucket; 3],
    nonces: Nonces,
    purges: Vec<Purge>,
    rejections: usize,
    next_id: u64,
}

const TYPES: [&str; 3] = ["url", "tag", "cpcode"];

impl AkamaiEmulator {
    /// An emulator with `config`.
    pub fn new(config: AkamaiEmulatorConfig) -> Self {
        let ledger = Ledger {
            requests: Bucket::new(config.requests),
            objects: [
                Bucket::new(config.urls),
                Bucket::new(config.tags),
                Bucket::new(config.cpcodes),
            ],
            nonces: Nonces::default(),
            purges: Vec::new(),
            rejections: 0,
            next_id: 0,
        };
        AkamaiEmulator {
            shared: Arc::new(Shared {
                config,
                faults: Faults::default(),
                seen: Seen::default(),
                ledger: Mutex::new(ledger),
            }),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &AkamaiEmulatorConfig {
        &self.shared.config
    }

    /// The API as an axum router, behind the shared authentication layer (EdgeGrid, verified
    /// in `akamai/auth.rs`), the fault middleware and request recording.
    pub fn router(&self) -> Router {
        crate::observed(
            Router::new()
                .route("/ccu/v3/{action}/{kind}", post(purge_default_network))
                .route("/ccu/v3/{action}/{kind}/{network}", post(purge))
                .with_state(self.clone())
                .route_layer(from_fn_with_state(
                    self.clone(),
                    authenticate::<AkamaiEmulator>,
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

    /// Every accepted purge, in order.
    pub fn purges(&self) -> Vec<Purge> {
        self.ledger().purges.clone()
    }

    /// Requests refused for rate (429).
    pub fn rejections(&self) -> usize {
        self.ledger().rejections
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.shared.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn support_id(ledger: &mut Ledger, prefix: &str) -> String {
        ledger.next_id += 1;
        format!("{prefix}-{:012x}", ledger.next_id)
    }
}

fn problem(ledger: &mut Ledger, p: &Problem) -> Response {
    let id = AkamaiEmulator::support_id(ledger, "edup");
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, axum::Json(p.body(&id))).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// The `X-RateLimit-*` headers for the request bucket and `objects` at `now`.
fn rate_headers(
    headers: &mut HeaderMap,
    requests: &mut Bucket,
    objects: &mut Bucket,
    now: Instant,
) {
    let mut set = |name: &'static str, value: String| {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).expect("digits"),
        );
    };
    let (rs, os) = (requests.spec, objects.spec);
    set("x-ratelimit-limit", format!("{}", rs.size));
    set(
        "x-ratelimit-remaining",
        format!("{}", requests.level(now).floor()),
    );
    set(
        "x-ratelimit-limit-per-second",
        format!("{:.2}", rs.refill_per_second),
    );
    set("x-ratelimit-limit-objects", format!("{}", os.size));
    set(
        "x-ratelimit-remaining-objects",
        format!("{}", objects.level(now).floor()),
    );
    set(
        "x-ratelimit-limit-per-second-objects",
        format!("{:.2}", os.refill_per_second),
    );
    set(
        "x-ratelimit-seconds-to-refresh-limit",
        format!("{:.2}", requests.seconds_to(rs.size, now)),
    );
    set(
        "x-ratelimit-seconds-to-refresh-limit-objects",
        format!("{:.2}", objects.seconds_to(os.size, now)),
    );
}

async fn purge_default_network(
    State(emu): State<AkamaiEmulator>,
    Path((action, kind)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&emu, &action, &kind, "production", &uri, &headers, &body)
}

async fn purge(
    State(emu): State<AkamaiEmulator>,
    Path((action, kind, network)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&emu, &action, &kind, &network, &uri, &headers, &body)
}

#[allow(clippy::too_many_arguments)]
fn handle(
    emu: &AkamaiEmulator,
    action: &str,
    kind: &str,
    network: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let c = &emu.shared.config;
    let now = Instant::now();
    let mut ledger = emu.ledger();
    if action == "rate-limit-status" {
        let Some(index) = TYPES.iter().position(|t| *t == kind) else {
            return problem(
                &mut ledger,
                &Problem::new(404, "Not Found", format!("No resource at {}", uri.path())),
            );
        };
        let Ledger {
            requests, objects, ..
        } = &mut *ledger;
        let mut rate = HeaderMap::new();
        rate_headers(&mut rate, requests, &mut objects[index], now);
        let id = AkamaiEmulator::support_id(&mut ledger, "edrs");
        let answer = json!({"httpStatus": 201, "supportId": id, "detail": "Request accepted"});
        return (StatusCode::CREATED, rate, axum::Json(answer)).into_response();
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        let p = Problem::new(
            415,
            "Unsupported Media Type",
            "Content-Type must be application/json",
        );
        return problem(&mut ledger, &p);
    }
    if body.len() > c.max_body_bytes {
        let p = Problem::new(
            413,
            "Request Entity Too Large",
            format!(
                "The request body is {} bytes; at most {} are allowed",
                body.len(),
                c.max_body_bytes
            ),
        );
        return problem(&mut ledger, &p);
    }
    let kind_index = TYPES.iter().position(|t| *t == kind);
    let (Some(kind_index), true, true) = (
        kind_index,
        matches!(action, "invalidate" | "delete"),
        matches!(network, "production" | "staging"),
    ) else {
        return problem(
            &mut ledger,
            &Problem::new(404, "Not Found", format!("No resource at {}", uri.path())),
        );
    };
    let objects = match wire::objects(kind, body) {
        Ok(objects) => objects,
        Err(p) => return problem(&mut ledger, &p),
    };
    if kind == "cpcode"
        && let Some(allowed) = &c.contract_cpcodes
        && let Some(bad) = objects
            .iter()
            .find(|o| !allowed.iter().any(|a| a.to_string() == **o))
    {
        let p = Problem::new(403, "unauthorized cpcode", bad.clone());
        return problem(&mut ledger, &p);
    }
    let count = objects.len() as f64;
    let Ledger {
        requests,
        objects: buckets,
        ..
    } = &mut *ledger;
    let bucket = &mut buckets[kind_index];
    let refused = if !requests.allows(1.0, now) {
        Some((
            "Rate Limit exceeded".to_owned(),
            requests.spec.size,
            1.0,
            requests.level(now),
            requests.seconds_to(1.0, now),
        ))
    } else if !bucket.allows(count, now) {
        Some((
            format!("{} Rate Limit exceeded", kind.to_ascii_uppercase()),
            bucket.spec.size,
            count,
            bucket.level(now),
            bucket.seconds_to(count, now),
        ))
    } else {
        None
    };
    if let Some((title, size, needed, remaining, wait)) = refused {
        let mut headers = HeaderMap::new();
        rate_headers(&mut headers, requests, bucket, now);
        ledger.rejections += 1;
        let id = AkamaiEmulator::support_id(&mut ledger, "edrl");
        let body = json!({
            "supportId": id,
            "httpStatus": 429,
            "title": title,
            "detail": "Retry when enough tokens have been refilled",
            "describedBy": "https://developer.akamai.com/api/core_features/fast_purge/v3.html#429",
            "rateLimit": size,
            "rateLimitCurrentRequestSize": needed,
            "rateLimitRemaining": remaining.floor(),
        });
        let mut response =
            (StatusCode::TOO_MANY_REQUESTS, headers, axum::Json(body)).into_response();
        if c.retry_after_header {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait.ceil() as u64));
        }
        return response;
    }
    requests.take(1.0, now);
    bucket.take(count, now);
    let mut rate = HeaderMap::new();
    rate_headers(&mut rate, requests, bucket, now);
    let prefix = match kind {
        "url" => "edup",
        "tag" => "edtp",
        _ => "edcp",
    };
    let purge_id = AkamaiEmulator::support_id(&mut ledger, prefix);
    ledger.purges.push(Purge {
        purge_id: purge_id.clone(),
        action: action.to_owned(),
        object_type: kind.to_owned(),
        network: network.to_owned(),
        objects,
        body_bytes: body.len(),
    });
    let answer = json!({
        "httpStatus": 201,
        "estimatedSeconds": c.estimated_seconds,
        "purgeId": purge_id,
        "supportId": purge_id,
        "detail": "Request accepted",
    });
    (StatusCode::CREATED, rate, axum::Json(answer)).into_response()
}

/// The sandbox account's one CP code (what `everything` purges there).
pub const DEMO_CPCODE: u64 = 12345;

/// How much faster the sandbox's buckets refill than Akamai's: a minute in 600 ms, as the
/// other emulators' tests and benches compress it.
pub const SANDBOX_REFILL_FACTOR: f64 = 100.0;

impl AkamaiEmulator {
    /// The demo account (its one CP code, [`DEMO_CPCODE`]) with the documented bucket sizes
    /// refilled [`SANDBOX_REFILL_FACTOR`] times faster and purges estimated at two seconds (the
    /// sandbox's).
    pub fn sandbox() -> Self {
        AkamaiEmulator::new(AkamaiEmulatorConfig {
            estimated_seconds: 2,
            contract_cpcodes: Some(vec![DEMO_CPCODE]),
            ..AkamaiEmulatorConfig::demo().refill_faster(SANDBOX_REFILL_FACTOR)
        })
    }
}

/// The four buckets by the names the provider's `buckets` table uses.
fn buckets_of(e: &AkamaiEmulatorConfig) -> [(&'static str, BucketSpec); 4] {
    [
        ("requests", e.requests),
        ("url", e.urls),
        ("tag", e.tags),
        ("cpcode", e.cpcodes),
    ]
}

impl crate::Emulated for AkamaiEmulator {
    fn kind(&self) -> &'static str {
        "akamai"
    }

    fn title(&self) -> &'static str {
        "Akamai Fast Purge"
    }

    fn router(&self) -> Router {
        AkamaiEmulator::router(self)
    }

    fn faults(&self) -> Faults {
        AkamaiEmulator::faults(self)
    }

    /// The API client, the contract's CP codes (when it has a list) and the four buckets as
    /// this emulator runs them.
    fn config(&self, endpoint: &str) -> toml::Table {
        let e = self.config();
        let mut table = crate::table(
            "akamai",
            [
                ("endpoint", endpoint),
                ("client_token", e.client_token.as_str()),
                ("client_secret", e.client_secret.as_str()),
                ("access_token", e.access_token.as_str()),
            ],
        );
        if let Some(codes) = &e.contract_cpcodes {
            let codes = codes
                .iter()
                .map(|c| toml::Value::Integer(i64::try_from(*c).unwrap_or(i64::MAX)))
                .collect();
            table.insert("cpcodes".to_owned(), toml::Value::Array(codes));
        }
        let mut buckets = toml::Table::new();
        for (key, spec) in buckets_of(e) {
            if spec.refill_per_second > 0.0 && spec.size >= 1.0 {
                buckets.insert(key.to_owned(), spec.table());
            }
        }
        table.insert("buckets".to_owned(), toml::Value::Table(buckets));
        table
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.config().client_secret.clone()]
    }

    fn requests(&self) -> Vec<SeenRequest> {
        AkamaiEmulator::requests(self)
    }

    /// Each bucket's size (`url_burst = 10000`) and the time it takes to refill whole
    /// (`url_refill = "50s"`), and `estimated_seconds`.
    fn limits(&self) -> toml::Table {
        let e = self.config();
        let mut t = toml::Table::new();
        for (name, spec) in buckets_of(e) {
            t.insert(
                format!("{name}_burst"),
                toml::Value::Integer(spec.size as i64),
            );
            t.insert(
                format!("{name}_refill"),
                crate::duration_value(spec.refill_time()),
            );
        }
        t.insert(
            "estimated_seconds".into(),
            toml::Value::Integer(i64::try_from(e.estimated_seconds).unwrap_or(i64::MAX)),
        );
        t
    }

    fn adjusted(
        &self,
        speed: f64,
        overrides: &toml::Table,
    ) -> Result<Arc<dyn crate::Emulated>, String> {
        let mut adjust = crate::Adjust::new("akamai", speed, overrides)?;
        let e = self.config();
        let mut specs = Vec::with_capacity(4);
        for (name, spec) in buckets_of(e) {
            let size = adjust.count(&format!("{name}_burst"), spec.size as usize, 1)? as f64;
            let refill = adjust.time(&format!("{name}_refill"), spec.refill_time())?;
            if refill.is_zero() {
                return Err(format!("akamai.{name}_refill: must be longer than zero"));
            }
            specs.push(BucketSpec {
                size,
                refill_per_second: size / refill.as_secs_f64(),
            });
        }
        let estimated = u32::try_from(e.estimated_seconds).unwrap_or(u32::MAX);
        let config = AkamaiEmulatorConfig {
            requests: specs[0],
            urls: specs[1],
            tags: specs[2],
            cpcodes: specs[3],
            estimated_seconds: adjust.seconds("estimated_seconds", estimated)?.into(),
            ..e.clone()
        };
        adjust.finish(&crate::Emulated::limits(self))?;
        Ok(Arc::new(AkamaiEmulator::new(config)))
    }

    /// `host path` per URL, `tag NAME` per tag, `cpcode N` per CP code.
    fn purged(&self) -> Vec<String> {
        self.purges()
            .into_iter()
            .flat_map(|p| {
                let kind = p.object_type;
                p.objects.into_iter().map(move |o| match kind.as_str() {
                    "url" => crate::host_and_path(&o),
                    other => format!("{other} {o}"),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Emulated;

    #[test]
    fn the_sandbox_table_declares_the_buckets_it_runs() {
        let emu = AkamaiEmulator::sandbox();
        let table = Emulated::config(&emu, "http://127.0.0.1:1");
        let url = &table["buckets"]["url"];
        // 10,000 tokens refilled 200 × 100 a second: whole again in 500 ms.
        assert_eq!(url["burst"].as_integer(), Some(10_000));
        assert_eq!(url["refill"].as_integer(), Some(10_000));
        assert_eq!(url["per"].as_str(), Some("500ms"));
        assert_eq!(table["cpcodes"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn adjusted_speeds_up_the_buckets_and_refuses_unknown_limits() {
        let emu = AkamaiEmulator::new(AkamaiEmulatorConfig::demo());
        let mut overrides = toml::Table::new();
        overrides.insert("tag_burst".into(), toml::Value::Integer(50));
        let fast = emu.adjusted(10.0, &overrides).unwrap();
        let limits = fast.limits();
        assert_eq!(limits["url_refill"].as_str(), Some("5s"));
        assert_eq!(limits["tag_burst"].as_integer(), Some(50));
        assert_eq!(limits["estimated_seconds"].as_integer(), Some(1));
        overrides.insert("wildcards".into(), toml::Value::Integer(1));
        let err = emu.adjusted(1.0, &overrides).err().unwrap();
        assert!(err.contains("akamai.wildcards"), "{err}");
    }
}
