//! A faithful stand-in for Cloudflare's cache purge API (client/v4):
//! `POST /client/v4/zones/{zone}/purge_cache`.
//!
//! It accepts every request form Cloudflare documents, and checks them the way Cloudflare does:
//! - `POST …/purge_cache` (remove), `POST …/invalidate_cache` (mark stale; recorded as such),
//!   `POST …/environments/{environment}/purge_cache`; `DELETE …/purge_cache`, which older
//!   clients sent, is refused with 1012 as Cloudflare now refuses it;
//! - credentials, checked by the shared authentication layer (`cloudflare/auth.rs`) before any
//!   handler: `Authorization: Bearer {token}`, or `X-Auth-Email` + `X-Auth-Key` when a legacy
//!   key is configured; anything else is code 10000 (401 without credentials, 403 with wrong
//!   ones), nothing echoed;
//! - `GET /client/v4/user/tokens/verify` (the credentials check): the token's id and `active`;
//! - the zone (404);
//! - the body: exactly one of `files` (URL strings or `{"url","headers"}` objects, no nulls),
//!   `tags`, `hosts`, `prefixes` (no scheme, query, fragment or wildcard; at most 31 `/`) or
//!   `purge_everything: true` (1012 / 1014 otherwise, see [`wire`](self));
//! - the plan's per-request caps (files; tags, hosts and prefixes), and its rate limits: a
//!   request bucket tag, host, prefix and everything purges share, a URL bucket of single-file
//!   purges, and the global 1,200 requests per 5 minutes (fixed windows); over any, 429 with
//!   code 971 and `retry-after`; every answer carries `Ratelimit` and `Ratelimit-Policy`.
//!
//! Buckets and windows run on `tokio::time::Instant`.

mod auth;
mod state;
mod wire;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::time::Instant;

pub use state::Purge;
pub use wire::{INVALID, TOO_MANY};

use crate::auth::authenticate;
use crate::bucket::FixedWindow;
use crate::bucket::{Bucket, BucketSpec};
use crate::{Faults, Seen, SeenRequest};
use auth::Refusal;
use state::Ledger;

/// The sandbox zone.
pub const DEMO_ZONE_ID: &str = "023e105f4ecef8ad9ca31a8372d0c353";
/// The sandbox token. Not a secret: it only opens the emulator.
pub const DEMO_API_TOKEN: &str = "sandbox-cloudflare-token-not-a-real-one";

/// How the emulator behaves; [`Default`] is the documented Pro plan with the demo token.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudflareEmulatorConfig {
    /// The one zone it serves.
    pub zone_id: String,
    /// The API token.
    pub api_token: String,
    /// A legacy global API key `(email, key)`, if accepted.
    pub legacy_key: Option<(String, String)>,
    /// The plan its limits come from, as the provider's `plan` names it.
    pub plan: &'static str,
    /// URLs per `files` request: 30.
    pub files_per_request: usize,
    /// Tags, hosts or prefixes per request: 30.
    pub items_per_request: usize,
    /// The request bucket tag, host, prefix and everything purges share (Pro: 25, 5 a second).
    pub purge_bucket: BucketSpec,
    /// The URL bucket of single-file purges (Pro: 1,500 a second).
    pub files_bucket: BucketSpec,
    /// Requests per global window: 1,200.
    pub global_limit: u32,
    /// The global window: 5 minutes.
    pub global_window: Duration,
}

impl CloudflareEmulatorConfig {
    /// The sandbox: the demo zone and token on the Pro plan's documented limits (the
    /// conservative per-request caps: 30).
    pub fn demo() -> Self {
        CloudflareEmulatorConfig {
            zone_id: DEMO_ZONE_ID.to_owned(),
            api_token: DEMO_API_TOKEN.to_owned(),
            legacy_key: None,
            plan: "pro",
            files_per_request: 30,
            items_per_request: 30,
            purge_bucket: BucketSpec {
                size: 25.0,
                refill_per_second: 5.0,
            },
            files_bucket: BucketSpec {
                size: 1500.0,
                refill_per_second: 1500.0,
            },
            global_limit: 1200,
            global_window: Duration::from_secs(300),
        }
    }
}

impl Default for CloudflareEmulatorConfig {
    fn default() -> Self {
        Self::demo()
    }
}

/// The Cloudflare emulator: cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct CloudflareEmulator {
    shared: Arc<Shared>,
}

struct Shared {
    config: CloudflareEmulatorConfig,
    faults: Faults,
    seen: Seen,
    ledger: Mutex<Ledger>,
}

impl CloudflareEmulator {
    /// An emulator behaving as `config` says.
    pub fn new(config: CloudflareEmulatorConfig) -> Self {
        let ledger = Ledger {
            purges: Vec::new(),
            purge_bucket: Bucket::new(config.purge_bucket),
            files_bucket: Bucket::new(config.files_bucket),
            global: FixedWindow::new(config.global_limit, config.global_window),
            rejections: 0,
        };
        CloudflareEmulator {
            shared: Arc::new(Shared {
                config,
                faults: Faults::default(),
                seen: Seen::default(),
                ledger: Mutex::new(ledger),
            }),
        }
    }

    /// The sandbox emulator ([`CloudflareEmulatorConfig::demo`]).
    pub fn sandbox() -> Self {
        Self::new(CloudflareEmulatorConfig::demo())
    }

    /// Its configuration.
    pub fn config(&self) -> &CloudflareEmulatorConfig {
        &self.shared.config
    }

    /// The fault queue.
    pub fn faults(&self) -> Faults {
        self.shared.faults.clone()
    }

    /// The routes behind the shared authentication layer (verified in `cloudflare/auth.rs`),
    /// the fault layer and request recording.
    pub fn router(&self) -> Router {
        crate::observed(
            Router::new()
                .route("/client/v4/user/tokens/verify", get(verify_token))
                .route(
                    "/client/v4/zones/{zone}/purge_cache",
                    post(purge).delete(purge_with_delete),
                )
                .route("/client/v4/zones/{zone}/invalidate_cache", post(invalidate))
                .route(
                    "/client/v4/zones/{zone}/environments/{environment}/purge_cache",
                    post(purge_environment),
                )
                .with_state(self.clone())
                .route_layer(from_fn_with_state(
                    self.clone(),
                    authenticate::<CloudflareEmulator>,
                )),
            self.faults(),
            self.shared.seen.clone(),
        )
    }

    /// Every request received, in order, faulted ones included.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.seen.requests()
    }

    /// Every accepted value, in order.
    pub fn purges(&self) -> Vec<Purge> {
        self.ledger().purges.clone()
    }

    /// Requests refused with 429.
    pub fn rejections(&self) -> usize {
        self.ledger().rejections
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.shared.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An envelope with the `Ratelimit` headers of the global window.
fn answer(ledger: &mut Ledger, status: u16, body: Value) -> Response {
    let (remaining, reset, _) = ledger.global.state(Instant::now());
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "ratelimit",
            format!(
                "\"default\";r={remaining};t={}",
                reset.as_secs_f64().ceil() as u64
            ),
        ),
        (
            "ratelimit-policy",
            format!(
                "\"default\";q={};w={}",
                ledger.global.limit,
                ledger.global.window.as_secs_f64().ceil() as u64
            ),
        ),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).expect("ASCII"),
        );
    }
    response
}

fn refuse(ledger: &mut Ledger, (status, code, message): Refusal) -> Response {
    answer(ledger, status, wire::failure(code, &message))
}

/// A 429 with code 971 and `retry-after` (seconds, rounded up).
fn throttled(ledger: &mut Ledger, wait: Duration) -> Response {
    ledger.rejections += 1;
    let mut response = refuse(
        ledger,
        (
            429,
            971,
            "Please wait and consider throttling your request speed".into(),
        ),
    );
    let seconds = (wait.as_secs_f64().ceil() as u64).max(1);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

fn handle(
    emu: &CloudflareEmulator,
    zone: &str,
    body: &[u8],
    invalidate: bool,
    environment: Option<String>,
) -> Response {
    let c = emu.config();
    let mut ledger = emu.ledger();
    if zone != c.zone_id {
        return refuse(
            &mut ledger,
            (
                404,
                7003,
                format!(
                    "Could not route to /zones/{}, perhaps your object identifier is invalid?",
                    zone.escape_default()
                ),
            ),
        );
    }
    let caps = wire::Caps {
        files: c.files_per_request,
        items: c.items_per_request,
        tag_chars: 1024,
        prefix_slashes: 31,
    };
    let (field, values) = match wire::read(body, &caps) {
        Ok(read) => read,
        Err(refusal) => return refuse(&mut ledger, refusal),
    };
    let now = Instant::now();
    if !ledger.global.allows(now) {
        let (_, reset, _) = ledger.global.state(now);
        return throttled(&mut ledger, reset);
    }
    let (bucket, cost) = if field == "files" {
        (&mut ledger.files_bucket, values.len() as f64)
    } else {
        (&mut ledger.purge_bucket, 1.0)
    };
    if !bucket.allows(cost, now) {
        let wait = Duration::from_secs_f64(bucket.seconds_to(cost, now));
        return throttled(&mut ledger, wait);
    }
    bucket.take(cost, now);
    ledger.global.take(now);
    for (value, file_headers) in values {
        ledger.purges.push(Purge {
            field,
            value: if field == "purge_everything" {
                zone.to_owned()
            } else {
                value
            },
            headers: file_headers,
            invalidate,
            environment: environment.clone(),
        });
    }
    answer(&mut ledger, 200, wire::success(zone))
}

/// `GET /user/tokens/verify`: the token is valid and active (the layer refused any other). It
/// counts against the global window like every API call.
async fn verify_token(State(emu): State<CloudflareEmulator>) -> Response {
    let mut ledger = emu.ledger();
    let now = Instant::now();
    if !ledger.global.allows(now) {
        let (_, reset, _) = ledger.global.state(now);
        return throttled(&mut ledger, reset);
    }
    ledger.global.take(now);
    answer(&mut ledger, 200, wire::token_active())
}

async fn purge(
    State(emu): State<CloudflareEmulator>,
    Path(zone): Path<String>,
    body: Bytes,
) -> Response {
    handle(&emu, &zone, &body, false, None)
}

async fn invalidate(
    State(emu): State<CloudflareEmulator>,
    Path(zone): Path<String>,
    body: Bytes,
) -> Response {
    handle(&emu, &zone, &body, true, None)
}

async fn purge_environment(
    State(emu): State<CloudflareEmulator>,
    Path((zone, environment)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    handle(&emu, &zone, &body, false, Some(environment))
}

async fn purge_with_delete(State(emu): State<CloudflareEmulator>) -> Response {
    refuse(
        &mut emu.ledger(),
        (
            400,
            1012,
            "Request must contain one of \"purge_everything\", \"files\", \"tags\", \"hosts\" or \"prefixes\"".into(),
        ),
    )
}

impl crate::Emulated for CloudflareEmulator {
    fn kind(&self) -> &'static str {
        "cloudflare"
    }

    fn title(&self) -> &'static str {
        "Cloudflare"
    }

    fn router(&self) -> Router {
        CloudflareEmulator::router(self)
    }

    fn faults(&self) -> Faults {
        CloudflareEmulator::faults(self)
    }

    /// The demo zone and token and its plan (`pro`), and each limit it enforces that differs
    /// from the plan's documented figure (adjusted by `emulate`, or set by a test), so the
    /// client paces to what it runs.
    fn config(&self, endpoint: &str) -> toml::Table {
        let c = self.config();
        let mut table = crate::table(
            "cloudflare",
            [
                ("endpoint", endpoint),
                ("zone_id", c.zone_id.as_str()),
                ("api_token", c.api_token.as_str()),
                ("plan", c.plan),
            ],
        );
        let plan = CloudflareEmulatorConfig::demo();
        let count = |n: usize| toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        if c.files_per_request != plan.files_per_request {
            table.insert("max_files_per_request".into(), count(c.files_per_request));
        }
        if c.items_per_request != plan.items_per_request {
            table.insert("max_items_per_request".into(), count(c.items_per_request));
        }
        if c.purge_bucket != plan.purge_bucket {
            table.insert("purge_bucket".into(), c.purge_bucket.table());
        }
        if c.files_bucket != plan.files_bucket {
            table.insert("files_bucket".into(), c.files_bucket.table());
        }
        if (c.global_limit, c.global_window) != (plan.global_limit, plan.global_window)
            && let Some(limit) = crate::rate_limit("requests", c.global_limit, c.global_window)
        {
            table.insert("rate_limit".to_owned(), limit);
        }
        table
    }

    /// The API token: it is the whole credential, so it is as secret as a signing key.
    fn secrets(&self) -> Vec<String> {
        vec![self.config().api_token.clone()]
    }

    fn requests(&self) -> Vec<SeenRequest> {
        CloudflareEmulator::requests(self)
    }

    /// The per-request caps, each bucket's size and refill time, the global window.
    fn limits(&self) -> toml::Table {
        let c = self.config();
        let mut t = toml::Table::new();
        let int = |n: i64| toml::Value::Integer(n);
        t.insert("files_per_request".into(), int(c.files_per_request as i64));
        t.insert("items_per_request".into(), int(c.items_per_request as i64));
        for (name, spec) in [("purge", c.purge_bucket), ("files", c.files_bucket)] {
            t.insert(format!("{name}_burst"), int(spec.size as i64));
            t.insert(
                format!("{name}_refill"),
                crate::duration_value(spec.refill_time()),
            );
        }
        t.insert("global_limit".into(), int(c.global_limit.into()));
        t.insert(
            "global_window".into(),
            crate::duration_value(c.global_window),
        );
        t
    }

    fn adjusted(
        &self,
        speed: f64,
        overrides: &toml::Table,
    ) -> Result<Arc<dyn crate::Emulated>, String> {
        let mut adjust = crate::Adjust::new("cloudflare", speed, overrides)?;
        let c = self.config();
        let files_per_request = adjust.count("files_per_request", c.files_per_request, 1)?;
        let items_per_request = adjust.count("items_per_request", c.items_per_request, 1)?;
        let mut specs = Vec::with_capacity(2);
        for (name, spec) in [("purge", c.purge_bucket), ("files", c.files_bucket)] {
            let size = adjust.count(&format!("{name}_burst"), spec.size as usize, 1)? as f64;
            let refill = adjust.time(&format!("{name}_refill"), spec.refill_time())?;
            if refill.is_zero() {
                return Err(format!(
                    "cloudflare.{name}_refill: must be longer than zero"
                ));
            }
            specs.push(BucketSpec {
                size,
                refill_per_second: size / refill.as_secs_f64(),
            });
        }
        if (specs[1].size as usize) < files_per_request {
            return Err(format!(
                "cloudflare.files_burst: {} URL tokens can never admit a request of {files_per_request} files",
                specs[1].size
            ));
        }
        let global_limit = adjust.count("global_limit", c.global_limit as usize, 1)?;
        let global_window = adjust.time("global_window", c.global_window)?;
        if global_window.is_zero() {
            return Err("cloudflare.global_window: must be longer than zero".into());
        }
        adjust.finish(&crate::Emulated::limits(self))?;
        Ok(Arc::new(CloudflareEmulator::new(
            CloudflareEmulatorConfig {
                files_per_request,
                items_per_request,
                purge_bucket: specs[0],
                files_bucket: specs[1],
                global_limit: u32::try_from(global_limit).unwrap_or(u32::MAX),
                global_window,
                ..c.clone()
            },
        )))
    }

    /// `host path` per file, `tag NAME`, `host NAME`, `prefix HOST/PATH`, `everything ZONE`.
    fn purged(&self) -> Vec<String> {
        self.purges()
            .into_iter()
            .map(|p| match p.field {
                "files" => crate::host_and_path(&p.value),
                "tags" => format!("tag {}", p.value),
                "hosts" => format!("host {}", p.value),
                "prefixes" => format!("prefix {}", p.value),
                _ => format!("everything {}", p.value),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Emulated;

    #[test]
    fn the_sandbox_table_declares_the_limits_it_runs() {
        let emu = CloudflareEmulator::sandbox();
        let table = Emulated::config(&emu, "http://127.0.0.1:1");
        assert_eq!(table["plan"].as_str(), Some("pro"));
        // The Pro plan's figures need no override.
        assert!(!table.contains_key("purge_bucket") && !table.contains_key("rate_limit"));
        let mut overrides = toml::Table::new();
        overrides.insert("purge_burst".into(), toml::Value::Integer(5));
        let fast = emu.adjusted(5.0, &overrides).unwrap();
        assert_eq!(fast.limits()["purge_refill"].as_str(), Some("1s"));
        assert_eq!(fast.limits()["global_window"].as_str(), Some("1m"));
        let table = fast.config("http://127.0.0.1:1");
        assert_eq!(table["purge_bucket"]["burst"].as_integer(), Some(5));
        assert_eq!(table["purge_bucket"]["per"].as_str(), Some("1s"));
        assert_eq!(table["files_bucket"]["per"].as_str(), Some("200ms"));
        assert_eq!(table["rate_limit"]["requests"].as_integer(), Some(1200));
        assert!(!table.contains_key("max_files_per_request"));
        overrides.insert("files_burst".into(), toml::Value::Integer(1));
        assert!(
            emu.adjusted(1.0, &overrides)
                .err()
                .unwrap()
                .contains("files_burst")
        );
    }
}
