//! A Level 3 / Lumen Media Portal invalidation API, as the vendor's guide documents it.
//!
//! - Every request is authenticated first: `Authorization: MPA {keyId}:{signature}` over
//!   `Date \n path \n Content-Type \n VERB \n Content-MD5`, the `Date` in RFC 1123 (`GMT`) or the
//!   guide's `+0000` spelling and at most [`Level3EmulatorConfig::max_request_age`] away from
//!   now. A wrong key or signature gets 403 with no body; a stale date 403 `21719`; an unreadable
//!   date 500 `21724`; a header that is not `MPA id:sig` 403 `21726`.
//! - An `Accept` other than `text/xml` gets 406.
//! - Then at most [`Level3EmulatorConfig::requests_per_window`] requests per key in each fixed
//!   window of [`Level3EmulatorConfig::rate_window`] (aligned to the emulator's start), else 503
//!   `21723` (`mpeRequestRateTooHigh`) until the next window begins.
//! - Accepted request forms (every one the vendor documents):
//!   - NI scope: `POST /invalidations/v1.0/{ag}/{scid}/{ni}[?force&ignoreCase&notification]`
//!     with `<paths><path>/a</path>…</paths>` (`text/xml`) or `{"paths":["/a",…]}`
//!     (`application/json`); answered with the `<accessGroup>` of Examples 1 and 2 (under
//!     `<services>`), one invalidation id.
//!   - Access-group scope: `POST /invalidations/v1.0/{ag}[?…]` with
//!     `<properties><property><name>NI</name><paths>…</paths></property>…</properties>` or
//!     `[{"name":"NI","paths":[…]},…]` (Examples 3 and 4); each property must name a network
//!     identifier of the group (`21752` names the others); answered with the
//!     `<networkIdentifiers>` of Examples 3 and 4, each NI with its own invalidation id.
//!   - `Content-MD5` optional; when sent it is signed (as the guide says) and must be the
//!     body's MD5 as base64 (RFC 1864) or hex, either case (`21729` otherwise: the guide lists
//!     no code of its own for it).
//! - The body rules, at either scope: 1–200 paths counting every property's (`21732`
//!   beyond), each starting with `/` (`21735`), a `*` path the only path of its request, or at
//!   access-group scope of its property (`21731`; Example 4 sends one wildcard in each of two
//!   properties), `notification` ≤ 250 characters without spaces (`21729`), a body that parses
//!   as its `Content-Type` says (`21734`; any other content type too). Answers are XML (the
//!   only `Accept` the API takes).
//! - `GET /invalidations/v1.0/{ag}[/{scid}[/{ni}]][?id=]` answers each invalidation's
//!   `percentComplete`, which rises linearly to 100 over
//!   [`Level3EmulatorConfig::completion_time`]. An unknown id is 404 `21716`.
//!
//! Errors carry the appendix's `<error><errorCode/><message/><httpStatus/><apiCorrelationId/>`.

mod auth;
mod state;
mod wire;

use self::wire::{
    Format, access_group, content_md5_matches, error, parse_paths, parse_properties, unix_ms,
};

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use quick_xml::escape::escape;
use serde::Deserialize;
use tokio::time::Instant;

use crate::auth::{Principal, authenticate};
use crate::{Faults, Running, Seen, SeenRequest};
use state::FixedWindow;

/// Most paths in one request.
pub const MAX_PATHS: usize = 200;
/// Most characters in `notification`.
pub const MAX_NOTIFICATION_LEN: usize = 250;
/// Largest request body read.
const MAX_BODY: usize = 1 << 20;

/// What the emulated account holds and how it times things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level3EmulatorConfig {
    /// The API key ID.
    pub key_id: String,
    /// The key's secret.
    pub secret: String,
    /// The access group ID.
    pub access_group: String,
    /// The one SCID of the access group.
    pub scid: String,
    /// Network identifiers that exist under the SCID; `None` accepts any name.
    pub network_identifiers: Option<BTreeSet<String>>,
    /// Requests admitted per key per window (documented: 10).
    pub requests_per_window: u32,
    /// The fixed window (documented: one minute). Zero disables the limit.
    pub rate_window: Duration,
    /// How long an invalidation takes to reach 100%.
    pub completion_time: Duration,
    /// The oldest (or most future) `Date` accepted (documented: 15 minutes).
    pub max_request_age: Duration,
}

impl Level3EmulatorConfig {
    /// The sandbox account: key `54321`, secret `purgekit-level3-demo-secret`, access group
    /// `12345`, SCID `BBBN56789`, any network identifier, the documented 10 requests per minute,
    /// invalidations complete in 5 seconds.
    pub fn demo() -> Self {
        Level3EmulatorConfig {
            key_id: "54321".into(),
            secret: "purgekit-level3-demo-secret".into(),
            access_group: "12345".into(),
            scid: "BBBN56789".into(),
            network_identifiers: None,
            requests_per_window: 10,
            rate_window: Duration::from_secs(60),
            completion_time: Duration::from_secs(5),
            max_request_age: Duration::from_secs(15 * 60),
        }
    }
}

impl Default for Level3EmulatorConfig {
    /// [`Level3EmulatorConfig::demo`].
    fn default() -> Self {
        Level3EmulatorConfig::demo()
    }
}

/// One accepted invalidation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedInvalidation {
    /// The invalidation (tracking) id answered.
    pub id: String,
    /// The network identifier of the request's scope.
    pub network_identifier: String,
    /// The paths, as the XML body carried them (unescaped).
    pub paths: Vec<String>,
    /// `force=true|1`.
    pub force: bool,
    /// `ignoreCase=true|1`.
    pub ignore_case: bool,
    /// The `notification` list, if any.
    pub notification: Option<String>,
}

/// The Level 3 emulator: cheap to clone, every clone shares one state. See the module docs.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use purgekit_emulator::level3::{Level3Emulator, Level3EmulatorConfig};
/// let emulator = Level3Emulator::new(Level3EmulatorConfig::demo());
/// let running = emulator.start().await?;
/// println!("Level 3 emulator on {}", running.url()); // the provider's `endpoint`
/// assert!(emulator.requests().is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Level3Emulator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Level3EmulatorConfig,
    faults: Faults,
    seen: Seen,
    state: Mutex<EmulatorState>,
}

#[derive(Debug)]
struct EmulatorState {
    window: FixedWindow,
    rejections: usize,
    invalidations: Vec<(AcceptedInvalidation, Instant)>,
    sequence: u64,
}

/// An answer: status plus optional XML body.
type Answer = (StatusCode, Option<String>);

impl Level3Emulator {
    /// An emulator for `config`; its rate windows start now.
    pub fn new(config: Level3EmulatorConfig) -> Self {
        let window = FixedWindow::new(
            Instant::now(),
            config.rate_window,
            config.requests_per_window,
        );
        Level3Emulator {
            inner: Arc::new(Inner {
                config,
                faults: Faults::default(),
                seen: Seen::default(),
                state: Mutex::new(EmulatorState {
                    window,
                    rejections: 0,
                    invalidations: Vec::new(),
                    sequence: 0,
                }),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Level3EmulatorConfig {
        &self.inner.config
    }

    /// The routes, behind the shared authentication layer (its verifier is in
    /// `level3/auth.rs`) and [`Faults`] middleware.
    pub fn router(&self) -> Router {
        // Every path is authenticated first, unknown ones too, as Media Web Services does.
        crate::observed(
            Router::new()
                .fallback(handle)
                .with_state(self.clone())
                .layer(axum::middleware::from_fn_with_state(
                    self.clone(),
                    authenticate::<Level3Emulator>,
                )),
            self.inner.faults.clone(),
            self.inner.seen.clone(),
        )
    }

    /// The fault queue applied to the next requests.
    pub fn faults(&self) -> Faults {
        self.inner.faults.clone()
    }

    /// Serves on `127.0.0.1` at a free port.
    pub async fn start(&self) -> std::io::Result<Running> {
        crate::serve(self.router(), SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Every request received, in order, faulted ones included, with the status answered.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.inner.seen.requests()
    }

    /// Every accepted invalidation request, in order.
    pub fn invalidations(&self) -> Vec<AcceptedInvalidation> {
        self.lock()
            .invalidations
            .iter()
            .map(|(inv, _)| inv.clone())
            .collect()
    }

    /// Every accepted path as `(network identifier, path)`, in order.
    pub fn paths(&self) -> Vec<(String, String)> {
        self.lock()
            .invalidations
            .iter()
            .flat_map(|(inv, _)| {
                inv.paths
                    .iter()
                    .map(|p| (inv.network_identifier.clone(), p.clone()))
            })
            .collect()
    }

    /// Requests refused with 503 `21723` for rate.
    pub fn rejections(&self) -> usize {
        self.lock().rejections
    }

    fn lock(&self) -> MutexGuard<'_, EmulatorState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The request pipeline after authentication (the key that signed it): rate-limit,
    /// route.
    fn answer(&self, parts: &Parts, body: &[u8]) -> Answer {
        let Some(Principal(key)) = parts.extensions.get::<Principal>().cloned() else {
            return (StatusCode::FORBIDDEN, None);
        };
        if parts
            .headers
            .get_all(header::ACCEPT)
            .iter()
            .any(|accept| accept.as_bytes() != b"text/xml")
        {
            return error(406, 21741, "Accept header value not supported.");
        }
        {
            let mut state = self.lock();
            if !state.window.admit(&key, Instant::now()) {
                state.rejections += 1;
                return error(
                    503,
                    21723,
                    "mpeRequestRateTooHigh: API Key request rate too high.",
                );
            }
        }
        let scope = match self.scope(parts.uri.path()) {
            Ok(scope) => scope,
            Err(answer) => return answer,
        };
        let query = match Query::<Vec<(String, String)>>::try_from_uri(&parts.uri) {
            Ok(Query(query)) => query,
            Err(_) => return error(400, 21700, "URI cannot be parsed."),
        };
        match (&parts.method, scope) {
            (&Method::POST, Scope { ni: Some(ni), .. }) => {
                self.invalidate(parts, Some(&ni), &query, body)
            }
            (&Method::POST, Scope { scid: false, .. }) => {
                self.invalidate(parts, None, &query, body)
            }
            (&Method::GET, scope) => self.status(&scope, &query),
            _ => error(400, 21700, "URI cannot be parsed."),
        }
    }

    /// Reads `/invalidations/v1.0/{ag}[/{scid}[/{ni}]]`, checking each level exists.
    fn scope(&self, path: &str) -> Result<Scope, Answer> {
        let config = &self.inner.config;
        let rest = path
            .strip_prefix("/invalidations/")
            .ok_or_else(|| error(404, 21700, "URI cannot be parsed."))?;
        let mut segments: Vec<&str> = rest.split('/').collect();
        if segments.last() == Some(&"") {
            segments.pop();
        }
        let (version, scope) = segments
            .split_first()
            .ok_or_else(|| error(404, 21700, "URI cannot be parsed."))?;
        if *version != "v1.0" {
            return Err(error(404, 21717, "Unsupported/Unknown API version."));
        }
        let (ag, scid, ni) = match scope {
            [ag] => (*ag, None, None),
            [ag, scid] => (*ag, Some(*scid), None),
            [ag, scid, ni] => (*ag, Some(*scid), Some(*ni)),
            _ => return Err(error(400, 21700, "URI cannot be parsed.")),
        };
        if ag.is_empty() || !ag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error(400, 21736, "Access Group ID must be numeric."));
        }
        if ag != config.access_group {
            return Err(error(404, 21701, "Unknown Access Group."));
        }
        if scid.is_some_and(|s| s != config.scid) {
            return Err(error(404, 21702, "Unknown SCID."));
        }
        if let (Some(ni), Some(known)) = (ni, &config.network_identifiers)
            && !known.contains(ni)
        {
            return Err(error(404, 21703, "Unknown network identifier."));
        }
        Ok(Scope {
            scid: scid.is_some(),
            ni: ni.map(str::to_owned),
        })
    }

    /// An invalidation POST: at NI scope (`ni`) a `<paths>` body, at access-group scope a
    /// `<properties>` body; either as XML or as JSON.
    fn invalidate(
        &self,
        parts: &Parts,
        ni: Option<&str>,
        query: &[(String, String)],
        body: &[u8],
    ) -> Answer {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(format) = Format::of(content_type) else {
            return error(400, 21734, "Invalidation Path XML is not valid.");
        };
        // Signed with the request; it must also be the body's digest (base64 or hex).
        if let Some(md5) = parts.headers.get("content-md5")
            && !md5
                .to_str()
                .is_ok_and(|value| content_md5_matches(value, body))
        {
            return error(400, 21729, "Parameter value is invalid.");
        }
        let mut force = false;
        let mut ignore_case = false;
        let mut notification = None;
        for (name, value) in query {
            match name.as_str() {
                "force" | "ignoreCase" => {
                    let on = match value.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return error(400, 21729, "Parameter value is invalid."),
                    };
                    if name == "force" {
                        force = on;
                    } else {
                        ignore_case = on;
                    }
                }
                "notification" => {
                    if value.chars().count() > MAX_NOTIFICATION_LEN || value.contains(' ') {
                        return error(400, 21729, "Parameter value is invalid.");
                    }
                    notification = Some(value.clone());
                }
                _ => {}
            }
        }
        let properties = match ni {
            Some(ni) => parse_paths(format, body).map(|paths| vec![(ni.to_owned(), paths)]),
            None => parse_properties(format, body),
        };
        let Some(properties) = properties else {
            return error(400, 21734, "Invalidation Path XML is not valid.");
        };
        let config = &self.inner.config;
        if ni.is_none() {
            let unknown: Vec<&str> = properties
                .iter()
                .map(|(name, _)| name.as_str())
                .filter(|name| {
                    !config
                        .network_identifiers
                        .as_ref()
                        .map_or(is_network_identifier(name), |known| known.contains(*name))
                })
                .collect();
            if !unknown.is_empty() {
                return error(
                    404,
                    21752,
                    &format!(
                        "Network Identifier(s) are not valid for requested Access Group: [{}]",
                        unknown.join(", ")
                    ),
                );
            }
        }
        // The path limit counts every property's paths.
        if properties.iter().map(|(_, p)| p.len()).sum::<usize>() > MAX_PATHS {
            return error(403, 21732, "Maximum number of paths exceeded.");
        }
        let paths = || properties.iter().flat_map(|(_, p)| p);
        if paths().any(|p| !p.starts_with('/')) {
            return error(400, 21735, "Invalidation Path must start with a slash.");
        }
        // A wildcard path is the only path of its request, or at access-group scope of its
        // property (Example 4).
        if properties
            .iter()
            .any(|(_, p)| p.len() > 1 && p.iter().any(|p| p.contains('*')))
        {
            return error(403, 21731, "Multiple wildcard paths not allowed.");
        }

        let mut state = self.lock();
        state.sequence += 1;
        let sequence = state.sequence;
        let mut answered = Vec::with_capacity(properties.len());
        let mut merged: Vec<(String, Vec<String>)> = Vec::new();
        for (name, paths) in properties {
            match merged.iter_mut().find(|(n, _)| *n == name) {
                Some((_, all)) => all.extend(paths),
                None => merged.push((name, paths)),
            }
        }
        for (k, (name, paths)) in merged.into_iter().enumerate() {
            // Each property gets its own invalidation id, as in Examples 3 and 4.
            let id = format!(
                "DAG_{ag}/{seq}@{ag}-{serial}-{ms}",
                ag = config.access_group,
                seq = 9000 + sequence,
                serial = 13000 + sequence * 1000 + k as u64,
                ms = unix_ms()
            );
            let mut invalidations = String::new();
            for path in &paths {
                invalidations.push_str(&format!(
                    "<invalidation id=\"{}\" path=\"{}\"/>",
                    escape(id.as_str()),
                    escape(path.as_str())
                ));
            }
            answered.push((name.clone(), invalidations));
            state.invalidations.push((
                AcceptedInvalidation {
                    id,
                    network_identifier: name,
                    paths,
                    force,
                    ignore_case,
                    notification: notification.clone(),
                },
                Instant::now(),
            ));
        }
        let body = access_group(config, "invalidations", sequence, &answered, ni.is_some());
        (StatusCode::OK, Some(body))
    }

    fn status(&self, scope: &Scope, query: &[(String, String)]) -> Answer {
        let id = query
            .iter()
            .find(|(k, _)| k == "id")
            .map(|(_, v)| v.as_str());
        let config = &self.inner.config;
        let mut state = self.lock();
        state.sequence += 1;
        let now = Instant::now();
        let mut nis: Vec<(String, String)> = Vec::new();
        for (inv, accepted_at) in &state.invalidations {
            if scope
                .ni
                .as_deref()
                .is_some_and(|ni| ni != inv.network_identifier)
                || id.is_some_and(|id| id != inv.id)
            {
                continue;
            }
            let percent = percent_complete(now - *accepted_at, config.completion_time);
            let mut xml = format!(
                "<invalidation id=\"{}\" percentComplete=\"{percent}\"><paths>",
                escape(inv.id.as_str())
            );
            for path in &inv.paths {
                xml.push_str(&format!("<path>{}</path>", escape(path.as_str())));
            }
            xml.push_str("</paths></invalidation>");
            match nis.iter_mut().find(|(ni, _)| *ni == inv.network_identifier) {
                Some((_, all)) => all.push_str(&xml),
                None => nis.push((inv.network_identifier.clone(), xml)),
            }
        }
        if id.is_some() && nis.is_empty() {
            return error(404, 21716, "Invalidation ID does not exist.");
        }
        let body = access_group(config, "invalidationStatus", state.sequence, &nis, true);
        (StatusCode::OK, Some(body))
    }
}

/// The part of the URI path naming what a request acts on.
struct Scope {
    /// Whether the path names a SCID.
    scid: bool,
    ni: Option<String>,
}

async fn handle(State(emulator): State<Level3Emulator>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let answer = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => emulator.answer(&parts, &body),
        Err(_) => invalid_body(),
    };
    respond(answer)
}

/// The answer to a body that cannot be read (over [`MAX_BODY`]).
fn invalid_body() -> Answer {
    error(400, 21734, "Invalidation Path XML is not valid.")
}

/// An answer as HTTP: its XML body, or the bare status.
fn respond((status, body): Answer) -> Response {
    match body {
        Some(xml) => (status, [(header::CONTENT_TYPE, "text/xml")], xml).into_response(),
        None => Response::builder()
            .status(status)
            .body(Body::empty())
            .expect("a bare status response builds"),
    }
}

/// Whether `name` can be a network identifier (letters, digits, `.`, `-`, `_`): with no list
/// configured, any such name exists.
fn is_network_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// `floor(100 · elapsed / total)`, capped at 100; 100 at once when `total` is zero.
fn percent_complete(elapsed: Duration, total: Duration) -> u32 {
    if total.is_zero() || elapsed >= total {
        return 100;
    }
    (elapsed.as_nanos() * 100 / total.as_nanos()) as u32
}

impl Level3Emulator {
    /// The demo account with invalidations that complete in two seconds (the sandbox's).
    pub fn sandbox() -> Self {
        Level3Emulator::new(Level3EmulatorConfig {
            completion_time: Duration::from_secs(2),
            ..Level3EmulatorConfig::demo()
        })
    }
}

impl crate::Emulated for Level3Emulator {
    fn kind(&self) -> &'static str {
        "level3"
    }

    fn title(&self) -> &'static str {
        "Level 3 / Lumen"
    }

    fn router(&self) -> Router {
        Level3Emulator::router(self)
    }

    fn faults(&self) -> Faults {
        Level3Emulator::faults(self)
    }

    fn config(&self, endpoint: &str) -> toml::Table {
        let e = self.config();
        let mut table = crate::table(
            "level3",
            [
                ("endpoint", endpoint),
                ("key_id", e.key_id.as_str()),
                ("secret", e.secret.as_str()),
                ("access_group", e.access_group.as_str()),
                ("scid", e.scid.as_str()),
            ],
        );
        if let Some(rate) = crate::rate_limit("requests", e.requests_per_window, e.rate_window) {
            table.insert("rate_limit".to_owned(), rate);
        }
        table
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.config().secret.clone()]
    }

    fn requests(&self) -> Vec<SeenRequest> {
        Level3Emulator::requests(self)
    }

    fn purged(&self) -> Vec<String> {
        self.paths()
            .into_iter()
            .map(|(ni, path)| format!("{ni} {path}"))
            .collect()
    }

    fn limits(&self) -> toml::Table {
        let e = self.config();
        let mut t = toml::Table::new();
        t.insert(
            "requests_per_window".into(),
            toml::Value::Integer(e.requests_per_window.into()),
        );
        t.insert("rate_window".into(), crate::duration_value(e.rate_window));
        t.insert(
            "completion_time".into(),
            crate::duration_value(e.completion_time),
        );
        t
    }

    fn adjusted(
        &self,
        speed: f64,
        overrides: &toml::Table,
    ) -> Result<Arc<dyn crate::Emulated>, String> {
        let mut adjust = crate::Adjust::new("level3", speed, overrides)?;
        let e = self.config();
        let requests = adjust.count("requests_per_window", e.requests_per_window as usize, 1)?;
        let config = Level3EmulatorConfig {
            requests_per_window: u32::try_from(requests)
                .map_err(|_| format!("level3.requests_per_window = {requests}: too large"))?,
            rate_window: adjust.time("rate_window", e.rate_window)?,
            completion_time: adjust.time("completion_time", e.completion_time)?,
            ..e.clone()
        };
        adjust.finish(&crate::Emulated::limits(self))?;
        Ok(Arc::new(Level3Emulator::new(config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rises_linearly_to_100() {
        let total = Duration::from_secs(10);
        assert_eq!(percent_complete(Duration::ZERO, total), 0);
        assert_eq!(percent_complete(Duration::from_millis(5_500), total), 55);
        assert_eq!(percent_complete(total, total), 100);
        assert_eq!(percent_complete(Duration::from_secs(99), total), 100);
        assert_eq!(percent_complete(Duration::ZERO, Duration::ZERO), 100);
    }

    #[test]
    fn reads_paths_bodies() {
        let parse_paths = |body: &[u8]| wire::parse_paths(Format::Xml, body);
        assert_eq!(
            parse_paths(b"<paths>\n<path>/a&amp;b</path><path>/c</path></paths>"),
            Some(vec!["/a&b".to_owned(), "/c".to_owned()])
        );
        assert_eq!(parse_paths(b"<paths></paths>"), None);
        assert_eq!(
            parse_paths(b"<properties><path>/a</path></properties>"),
            None
        );
        assert_eq!(parse_paths(b"<paths><path>/a</path>"), None);
        assert_eq!(parse_paths(b"not xml"), None);
        let deep = format!("<paths>{}", "<path>".repeat(100_000));
        assert_eq!(parse_paths(deep.as_bytes()), None);
        let deep = format!("<paths>{}", "<path>".repeat(100_000));
        assert_eq!(parse_paths(deep.as_bytes()), None);
    }
}
