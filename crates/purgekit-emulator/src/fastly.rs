//! A faithful stand-in for Fastly's purge API on `api.fastly.com`.
//!
//! It accepts every request form Fastly documents, and checks them the way Fastly does:
//! - `POST /purge/{host}/{path}[?query]` (one URL; everything after `/purge/` is the URL, its
//!   query included), `POST /service/{id}/purge/{key}` (one surrogate key),
//!   `POST /service/{id}/purge` (up to 256 keys, in a `Surrogate-Key` header, space-separated,
//!   or a `{"surrogate_keys":[…]}` JSON body), `POST /service/{id}/purge_all`;
//!   `Fastly-Soft-Purge` (recorded; purge-all is hard whatever is sent) and
//!   `Fastly-Purge-Environment` (recorded);
//! - `Fastly-Key`, checked by the shared authentication layer (`fastly/auth.rs`) before any
//!   handler: a wrong token is 401 on every call; a missing one is 401 except on URL purges of
//!   a service that does not require auth ([`FastlyEmulatorConfig::urls_require_auth`]); the
//!   token's scopes (`purge_select` for URLs and keys, `purge_all`, `global`) are 403;
//! - `GET /tokens/self` (the credentials check): the token's record, its scopes as `scope`;
//! - the service id (404 `Record not found`), keys of 1 to 1,024 bytes of printable ASCII, at
//!   most 256 a request (400);
//! - the hourly API write limit: purge-all counts (1,000 an hour in fixed windows), URL and
//!   key purges do not; more is 429; every answer carries `Fastly-RateLimit-Remaining` and
//!   `Fastly-RateLimit-Reset` (epoch seconds), and hyper's `Date`;
//! - answers `{"status":"ok","id":"108-…"}`, `{"key":"108-…",…}` for a batch, `{"status":"ok"}`
//!   for purge-all; errors `{"msg":…,"detail":…}`.
//!
//! The edge form (method `PURGE` sent to the site's own URL) is not an `api.fastly.com` call
//! and is not emulated. Windows run on `tokio::time::Instant`.

mod auth;
mod state;
mod wire;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value};
use tokio::time::Instant;

pub use state::Purge;

use crate::auth::authenticate;
use crate::bucket::FixedWindow;
use crate::{Faults, Seen, SeenRequest};
use auth::Refusal;
use state::Ledger;

/// The sandbox service.
pub const DEMO_SERVICE_ID: &str = "SU1Z0isxPaozGVKXdv0eY";
/// The sandbox token. Not a secret: it only opens the emulator.
pub const DEMO_API_TOKEN: &str = "sandbox-fastly-token-not-a-real-one";

/// The token's own record.
const TOKEN_PATH: &str = "/tokens/self";

/// How the emulator behaves; [`Default`] is Fastly's documented behaviour with the demo token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastlyEmulatorConfig {
    /// The one service it serves.
    pub service_id: String,
    /// The API token.
    pub api_token: String,
    /// The token's scopes: `global` by default; `purge_select`, `purge_all`.
    pub token_scopes: Vec<String>,
    /// Whether URL purges need a token (the service sets `Fastly-Purge-Requires-Auth`): on in
    /// the sandbox; Fastly's own default is off.
    pub urls_require_auth: bool,
    /// Writes (purge-all) per window: 1,000.
    pub writes_per_window: u32,
    /// The write window: one hour.
    pub write_window: Duration,
    /// Keys per batch purge: 256.
    pub max_keys_per_request: usize,
    /// Bytes per key: 1,024.
    pub max_key_bytes: usize,
}

impl FastlyEmulatorConfig {
    /// The sandbox: the demo service and token (scope `global`), URL purges requiring auth,
    /// the documented limits.
    pub fn demo() -> Self {
        FastlyEmulatorConfig {
            service_id: DEMO_SERVICE_ID.to_owned(),
            api_token: DEMO_API_TOKEN.to_owned(),
            token_scopes: vec!["global".to_owned()],
            urls_require_auth: true,
            writes_per_window: 1000,
            write_window: Duration::from_secs(3600),
            max_keys_per_request: 256,
            max_key_bytes: 1024,
        }
    }
}

impl Default for FastlyEmulatorConfig {
    fn default() -> Self {
        Self::demo()
    }
}

/// The Fastly emulator: cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct FastlyEmulator {
    shared: Arc<Shared>,
}

struct Shared {
    config: FastlyEmulatorConfig,
    faults: Faults,
    seen: Seen,
    ledger: Mutex<Ledger>,
}

impl FastlyEmulator {
    /// An emulator behaving as `config` says.
    pub fn new(config: FastlyEmulatorConfig) -> Self {
        let writes = FixedWindow::new(config.writes_per_window, config.write_window);
        FastlyEmulator {
            shared: Arc::new(Shared {
                config,
                faults: Faults::default(),
                seen: Seen::default(),
                ledger: Mutex::new(Ledger::new(writes)),
            }),
        }
    }

    /// The sandbox emulator ([`FastlyEmulatorConfig::demo`]).
    pub fn sandbox() -> Self {
        Self::new(FastlyEmulatorConfig::demo())
    }

    /// Its configuration.
    pub fn config(&self) -> &FastlyEmulatorConfig {
        &self.shared.config
    }

    /// The fault queue.
    pub fn faults(&self) -> Faults {
        self.shared.faults.clone()
    }

    /// The routes behind the shared authentication layer (`Fastly-Key`, verified in
    /// `fastly/auth.rs`), the fault layer and request recording.
    pub fn router(&self) -> Router {
        crate::observed(
            Router::new()
                .route("/purge/{*url}", post(purge_url))
                .route("/service/{service}/purge/{key}", post(purge_key))
                .route("/service/{service}/purge", post(purge_keys))
                .route("/service/{service}/purge_all", post(purge_all))
                .route(TOKEN_PATH, get(token_self))
                .with_state(self.clone())
                .route_layer(from_fn_with_state(
                    self.clone(),
                    authenticate::<FastlyEmulator>,
                )),
            self.faults(),
            self.shared.seen.clone(),
        )
    }

    /// Every request received, in order, faulted ones included.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.seen.requests()
    }

    /// Every accepted purge, one per URL, key or purge-all, in order.
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

    /// The service id (the credentials are the authentication layer's): a refusal, or the
    /// ledger to record in.
    fn admit(&self, service: Option<&str>) -> Result<MutexGuard<'_, Ledger>, Refusal> {
        if let Some(service) = service
            && service != self.shared.config.service_id
        {
            return Err((
                404,
                "Record not found",
                format!("Cannot find service '{}'", service.escape_default()),
            ));
        }
        Ok(self.ledger())
    }
}

/// The answer with `Fastly-RateLimit-*` headers.
fn answer(ledger: &mut Ledger, status: u16, body: Value) -> Response {
    let (remaining, _, end) = ledger.writes.state(Instant::now());
    // Epoch seconds, rounded up.
    let since = end
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let reset = since.as_secs() + u64::from(since.subsec_nanos() > 0);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("fastly-ratelimit-remaining", remaining.to_string()),
        ("fastly-ratelimit-reset", reset.to_string()),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).expect("digits"),
        );
    }
    response
}

fn refuse(emu: &FastlyEmulator, (status, msg, detail): Refusal) -> Response {
    answer(&mut emu.ledger(), status, wire::error(msg, &detail))
}

fn soft(headers: &HeaderMap) -> bool {
    headers.contains_key("fastly-soft-purge")
}

fn environment(headers: &HeaderMap) -> Option<String> {
    headers
        .get("fastly-purge-environment")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn record(ledger: &mut Ledger, call: &'static str, value: String, headers: &HeaderMap) -> String {
    let id = ledger.id();
    ledger.purges.push(Purge {
        id: id.clone(),
        call,
        value,
        soft: call != "all" && soft(headers),
        environment: environment(headers),
    });
    id
}

async fn purge_url(State(emu): State<FastlyEmulator>, uri: Uri, headers: HeaderMap) -> Response {
    let mut ledger = match emu.admit(None) {
        Ok(l) => l,
        Err(r) => return refuse(&emu, r),
    };
    // The URL as sent: the path after `/purge/`, not decoded, and the query.
    let url = uri
        .path_and_query()
        .map_or("", |p| p.as_str())
        .trim_start_matches("/purge/")
        .to_owned();
    if url.is_empty() || url.starts_with('/') {
        return answer(
            &mut ledger,
            400,
            wire::error("Bad request", "no URL after /purge/"),
        );
    }
    let id = record(&mut ledger, "url", url, &headers);
    answer(&mut ledger, 200, wire::ok(&id))
}

async fn purge_key(
    State(emu): State<FastlyEmulator>,
    Path((service, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut ledger = match emu.admit(Some(&service)) {
        Ok(l) => l,
        Err(r) => return refuse(&emu, r),
    };
    if let Err((status, msg, detail)) = wire::check_key(&key, emu.config().max_key_bytes) {
        return answer(&mut ledger, status, wire::error(msg, &detail));
    }
    let id = record(&mut ledger, "key", key, &headers);
    answer(&mut ledger, 200, wire::ok(&id))
}

async fn purge_keys(
    State(emu): State<FastlyEmulator>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut ledger = match emu.admit(Some(&service)) {
        Ok(l) => l,
        Err(r) => return refuse(&emu, r),
    };
    let c = emu.config();
    let keys = match wire::batch_keys(&headers, &body, c.max_keys_per_request, c.max_key_bytes) {
        Ok(keys) => keys,
        Err((status, msg, detail)) => {
            return answer(&mut ledger, status, wire::error(msg, &detail));
        }
    };
    let mut ids = Map::new();
    for key in keys {
        let id = record(&mut ledger, "key", key.clone(), &headers);
        ids.insert(key, Value::String(id));
    }
    answer(&mut ledger, 200, Value::Object(ids))
}

async fn purge_all(
    State(emu): State<FastlyEmulator>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut ledger = match emu.admit(Some(&service)) {
        Ok(l) => l,
        Err(r) => return refuse(&emu, r),
    };
    let now = Instant::now();
    if !ledger.writes.allows(now) {
        ledger.rejections += 1;
        let limit = ledger.writes.limit;
        return answer(
            &mut ledger,
            429,
            wire::error(
                "Too many requests",
                &format!("Rate limit exceeded: {limit} write requests per window"),
            ),
        );
    }
    ledger.writes.take(now);
    record(&mut ledger, "all", service, &headers);
    answer(&mut ledger, 200, serde_json::json!({"status": "ok"}))
}

/// `GET /tokens/self`: the token's record (its scopes space-separated in `scope`, no service
/// restriction). Reading is not a write: the hourly window is untouched.
async fn token_self(State(emu): State<FastlyEmulator>) -> Response {
    let c = emu.config();
    let body = wire::token(&c.token_scopes.join(" "));
    answer(&mut emu.ledger(), 200, body)
}

impl crate::Emulated for FastlyEmulator {
    fn kind(&self) -> &'static str {
        "fastly"
    }

    fn title(&self) -> &'static str {
        "Fastly"
    }

    fn router(&self) -> Router {
        FastlyEmulator::router(self)
    }

    fn faults(&self) -> Faults {
        FastlyEmulator::faults(self)
    }

    /// The demo service and token, and the write limit it enforces when it differs from
    /// Fastly's (1,000 an hour).
    fn config(&self, endpoint: &str) -> toml::Table {
        let c = self.config();
        let mut table = crate::table(
            "fastly",
            [
                ("endpoint", endpoint),
                ("service_id", c.service_id.as_str()),
                ("api_token", c.api_token.as_str()),
            ],
        );
        let documented = FastlyEmulatorConfig::demo();
        if (c.writes_per_window, c.write_window)
            != (documented.writes_per_window, documented.write_window)
            && let Some(limit) = crate::rate_limit("requests", c.writes_per_window, c.write_window)
        {
            table.insert("write_limit".to_owned(), limit);
        }
        table
    }

    /// The API token: it is the whole credential, so it is as secret as a signing key.
    fn secrets(&self) -> Vec<String> {
        vec![self.config().api_token.clone()]
    }

    fn requests(&self) -> Vec<SeenRequest> {
        FastlyEmulator::requests(self)
    }

    /// `writes_per_window = 1000` and `write_window = "1h"`.
    fn limits(&self) -> toml::Table {
        let c = self.config();
        let mut t = toml::Table::new();
        t.insert(
            "writes_per_window".into(),
            toml::Value::Integer(c.writes_per_window.into()),
        );
        t.insert("write_window".into(), crate::duration_value(c.write_window));
        t
    }

    fn adjusted(
        &self,
        speed: f64,
        overrides: &toml::Table,
    ) -> Result<Arc<dyn crate::Emulated>, String> {
        let mut adjust = crate::Adjust::new("fastly", speed, overrides)?;
        let c = self.config();
        let writes = adjust.count("writes_per_window", c.writes_per_window as usize, 1)?;
        let window = adjust.time("write_window", c.write_window)?;
        if window.is_zero() {
            return Err("fastly.write_window: must be longer than zero".into());
        }
        adjust.finish(&crate::Emulated::limits(self))?;
        Ok(Arc::new(FastlyEmulator::new(FastlyEmulatorConfig {
            writes_per_window: u32::try_from(writes).unwrap_or(u32::MAX),
            write_window: window,
            ..c.clone()
        })))
    }

    /// `host path` per URL, `tag KEY` per key, `everything SERVICE` per purge-all.
    fn purged(&self) -> Vec<String> {
        self.purges()
            .into_iter()
            .map(|p| match p.call {
                "url" => crate::host_and_path(&p.value),
                "key" => format!("tag {}", p.value),
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
    fn the_sandbox_table_declares_the_write_limit_it_runs() {
        let emu = FastlyEmulator::sandbox();
        let table = Emulated::config(&emu, "http://127.0.0.1:1");
        assert!(
            !table.contains_key("write_limit"),
            "Fastly's own limit: no override"
        );
        let mut overrides = toml::Table::new();
        overrides.insert("writes_per_window".into(), toml::Value::Integer(5));
        let fast = emu.adjusted(60.0, &overrides).unwrap();
        let table = fast.config("http://127.0.0.1:1");
        assert_eq!(table["write_limit"]["requests"].as_integer(), Some(5));
        assert_eq!(table["write_limit"]["per"].as_str(), Some("1m"));
        assert_eq!(fast.limits()["write_window"].as_str(), Some("1m"));
        assert_eq!(fast.limits()["writes_per_window"].as_integer(), Some(5));
        overrides.insert("urls_per_second".into(), toml::Value::Integer(5));
        let err = emu.adjusted(1.0, &overrides).err().unwrap();
        assert!(err.contains("fastly.urls_per_second"), "{err}");
    }
}
