//! A faithful stand-in for the Amazon CloudFront invalidation API (2020-05-31):
//! `POST /2020-05-31/distribution/{id}/invalidation` and `GET …/invalidation/{id}`.
//!
//! It checks what AWS documents, the way AWS documents it:
//! - SigV4 (`AWS4-HMAC-SHA256`, region `us-east-1`, service `cloudfront`), verified by its own
//!   implementation of the algorithm ([`auth`](self)): `MissingAuthenticationToken`,
//!   `IncompleteSignature`, `InvalidClientTokenId`, `SignatureDoesNotMatch` (403),
//!   `RequestExpired` (400) beyond 15 minutes of skew; a session token when configured;
//! - the distribution id (`NoSuchDistribution`, 404);
//! - the `InvalidationBatch` schema in either element order, in the 2020-05-31 namespace:
//!   `MissingBody`, `MalformedInput`, `InconsistentQuantities` (Quantity ≠ paths),
//!   `InvalidArgument` (no leading `/`, a `*` not last, a path over 4,000 characters),
//!   `BatchTooLarge` (413, over 3,000 paths);
//! - at most 3,000 paths and 15 wildcard paths in progress per distribution
//!   (`TooManyInvalidationsInProgress`, 400), counted in [`CloudFrontEmulator::refusals`];
//!   the highest counts reached are [`CloudFrontEmulator::max_in_progress`];
//! - `CallerReference` idempotency: the same reference and paths answer the earlier
//!   invalidation (201 again, nothing new), the same reference with other paths
//!   `InvalidationBatchAlreadyExists` (400);
//! - `InProgress` → `Completed` after [`CloudFrontEmulatorConfig::completes_after`];
//!   `NoSuchInvalidation` (404) for an unknown id;
//! - ListInvalidations (`GET …/invalidation?Marker&MaxItems`), newest first, paged.
//!
//! Timers run on `tokio::time::Instant`; the wall clock is read to check signing times.

mod auth;
mod state;
mod wire;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::time::Instant;

pub use wire::{InvalidationBatch, NAMESPACE};

use crate::auth::authenticate;
use crate::{Faults, Seen, SeenRequest};
use state::{Created, Ledger, Refused};

/// The sandbox distribution.
pub const DEMO_DISTRIBUTION_ID: &str = "EDEMO0SANDBOX";
/// The sandbox access key id.
pub const DEMO_ACCESS_KEY_ID: &str = "AKIDSANDBOX";
/// The sandbox secret. Not a secret: it only opens the emulator.
pub const DEMO_SECRET_ACCESS_KEY: &str = "sandbox/secret/key/not/a/real/one";

/// How the emulator behaves; [`Default`] is AWS's documented behaviour with the demo keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudFrontEmulatorConfig {
    /// The one distribution it serves.
    pub distribution_id: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// A session token every request must carry (temporary credentials), if set.
    pub session_token: Option<String>,
    /// Paths in progress per distribution: 3,000.
    pub max_paths_in_progress: usize,
    /// Wildcard paths in progress per distribution: 15.
    pub max_wildcards_in_progress: usize,
    /// Paths per request: 3,000.
    pub max_paths_per_request: usize,
    /// Characters per path: 4,000.
    pub max_path_chars: usize,
    /// Time from creation to `Completed`.
    pub completes_after: Duration,
    /// Largest signing-time skew: 15 minutes.
    pub max_skew: Duration,
}

impl CloudFrontEmulatorConfig {
    /// The sandbox: demo keys and distribution, documented limits, invalidations complete in
    /// 2 s.
    pub fn demo() -> Self {
        CloudFrontEmulatorConfig {
            distribution_id: DEMO_DISTRIBUTION_ID.to_owned(),
            access_key_id: DEMO_ACCESS_KEY_ID.to_owned(),
            secret_access_key: DEMO_SECRET_ACCESS_KEY.to_owned(),
            session_token: None,
            max_paths_in_progress: 3000,
            max_wildcards_in_progress: 15,
            max_paths_per_request: 3000,
            max_path_chars: 4000,
            completes_after: Duration::from_secs(2),
            max_skew: Duration::from_secs(15 * 60),
        }
    }
}

impl Default for CloudFrontEmulatorConfig {
    fn default() -> Self {
        Self::demo()
    }
}

/// The hosts the sandbox's demo distribution serves (its alternate domain names, as
/// CloudFront calls them): those of `examples/urls.txt` and of the conformance suite.
pub const SANDBOX_HOSTS: [&str; 5] = [
    "cdn.example.com",
    "images.example.com",
    "s7d9.scene7.com",
    "static.example.com",
    "www.example.com",
];

/// The CloudFront emulator: cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct CloudFrontEmulator {
    shared: Arc<Shared>,
}

struct Shared {
    config: CloudFrontEmulatorConfig,
    faults: Faults,
    ledger: Mutex<Ledger>,
    seen: Seen,
}

fn xml(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

fn refuse((status, code, message): auth::Refusal) -> Response {
    xml(status, wire::error(code, &message, "emulated-request"))
}

/// `YYYY-MM-DDTHH:MM:SS.000Z` of the wall clock now.
fn iso_now() -> String {
    let date = httpdate::fmt_http_date(SystemTime::now());
    // `Sun, 30 Aug 2015 12:36:01 GMT` → ISO 8601.
    let parts: Vec<&str> = date.split_whitespace().collect();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])
    .map_or(1, |i| i + 1);
    format!("{}-{month:02}-{}T{}.000Z", parts[3], parts[1], parts[4])
}

impl CloudFrontEmulator {
    /// An emulator behaving as `config` says.
    pub fn new(config: CloudFrontEmulatorConfig) -> Self {
        CloudFrontEmulator {
            shared: Arc::new(Shared {
                config,
                faults: Faults::default(),
                ledger: Mutex::new(Ledger::default()),
                seen: Seen::default(),
            }),
        }
    }

    /// The sandbox emulator ([`CloudFrontEmulatorConfig::demo`]).
    pub fn sandbox() -> Self {
        Self::new(CloudFrontEmulatorConfig::demo())
    }

    /// Its configuration.
    pub fn config(&self) -> &CloudFrontEmulatorConfig {
        &self.shared.config
    }

    /// The fault queue.
    pub fn faults(&self) -> Faults {
        self.shared.faults.clone()
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.shared.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many invalidations were created (idempotent repeats not counted).
    pub fn invalidations(&self) -> usize {
        self.ledger().records.len()
    }

    /// Every path invalidated, in creation order.
    pub fn paths(&self) -> Vec<String> {
        self.ledger()
            .records
            .iter()
            .flat_map(|r| r.batch.paths.clone())
            .collect()
    }

    /// The highest (paths, wildcard paths) ever in progress at once.
    pub fn max_in_progress(&self) -> (usize, usize) {
        self.ledger().max_in_progress
    }

    /// How many creates were refused with `TooManyInvalidationsInProgress`.
    pub fn refusals(&self) -> usize {
        self.ledger().capacity_refusals
    }

    /// The routes, with the fault layer.
    pub fn router(&self) -> Router {
        crate::observed(
            Router::new()
                .route(
                    "/2020-05-31/distribution/{distribution}/invalidation",
                    post(create).get(list),
                )
                .route(
                    "/2020-05-31/distribution/{distribution}/invalidation/{id}",
                    get(get_invalidation),
                )
                .with_state(self.clone())
                .route_layer(from_fn_with_state(
                    self.clone(),
                    authenticate::<CloudFrontEmulator>,
                )),
            self.faults(),
            self.shared.seen.clone(),
        )
    }

    /// Every request received, in order, faulted ones included, with the status answered.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.seen.requests()
    }

    /// Checks the distribution (the signature was verified by the authentication layer).
    fn admit(&self, distribution: &str) -> Result<(), auth::Refusal> {
        let c = &self.shared.config;
        if distribution != c.distribution_id {
            return Err((
                404,
                "NoSuchDistribution",
                format!("The specified distribution does not exist: {distribution}"),
            ));
        }
        Ok(())
    }
}

async fn create(
    State(e): State<CloudFrontEmulator>,
    Path(distribution): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(refusal) = e.admit(&distribution) {
        return refuse(refusal);
    }
    let c = &e.shared.config;
    let batch = match wire::parse_batch(&body, c.max_path_chars, c.max_paths_per_request) {
        Ok(b) => b,
        Err(refusal) => return refuse(refusal),
    };
    let mut ledger = e.ledger();
    let created = ledger.create(
        batch,
        Instant::now(),
        c.completes_after,
        (c.max_paths_in_progress, c.max_wildcards_in_progress),
        |n| (format!("I{:013}", n + 1), iso_now()),
    );
    let index = match created {
        Ok(Created::New(i) | Created::Again(i)) => i,
        Err(Refused::Capacity { paths, wildcards }) => {
            return refuse((
                400,
                "TooManyInvalidationsInProgress",
                format!(
                    "Your request contains too many invalidations: {paths} paths and \
                     {wildcards} wildcard paths are in progress"
                ),
            ));
        }
        Err(Refused::ReferenceReused) => {
            return refuse((
                400,
                "InvalidationBatchAlreadyExists",
                "The CallerReference was already used with other paths".into(),
            ));
        }
    };
    let r = &ledger.records[index];
    let status = status_of(r.created, c.completes_after);
    let mut response = xml(
        201,
        wire::invalidation(&r.id, status, &r.create_time, &r.batch),
    );
    let location = format!(
        "https://cloudfront.amazonaws.com/2020-05-31/distribution/{distribution}/invalidation/{}",
        r.id
    );
    if let Ok(v) = location.parse() {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// ListInvalidations: newest first, `MaxItems` (1 to 100, default 100) per page, after
/// `Marker` (an id of the list).
async fn list(
    State(e): State<CloudFrontEmulator>,
    Path(distribution): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    if let Err(refusal) = e.admit(&distribution) {
        return refuse(refusal);
    }
    let mut marker = "";
    let mut max_items = 100usize;
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("Marker", value) => marker = value,
            ("MaxItems", value) => match value.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => max_items = n,
                _ => {
                    return refuse((
                        400,
                        "InvalidArgument",
                        format!("MaxItems must be a number from 1 to 100, not `{value}`"),
                    ));
                }
            },
            _ => {}
        }
    }
    let ledger = e.ledger();
    let completes_after = e.shared.config.completes_after;
    let mut summaries: Vec<(&str, &str, &str)> = ledger
        .records
        .iter()
        .rev()
        .map(|r| {
            let status = status_of(r.created, completes_after);
            (r.id.as_str(), status, r.create_time.as_str())
        })
        .collect();
    if !marker.is_empty() {
        match summaries.iter().position(|(id, _, _)| *id == marker) {
            Some(at) => summaries.drain(..=at).for_each(drop),
            None => summaries.clear(),
        }
    }
    xml(200, wire::invalidation_list(&summaries, marker, max_items))
}

fn status_of(created: Instant, completes_after: Duration) -> &'static str {
    if Instant::now() >= created + completes_after {
        "Completed"
    } else {
        "InProgress"
    }
}

async fn get_invalidation(
    State(e): State<CloudFrontEmulator>,
    Path((distribution, id)): Path<(String, String)>,
) -> Response {
    if let Err(refusal) = e.admit(&distribution) {
        return refuse(refusal);
    }
    let ledger = e.ledger();
    match ledger.records.iter().find(|r| r.id == id) {
        Some(r) => {
            let status = status_of(r.created, e.shared.config.completes_after);
            xml(
                200,
                wire::invalidation(&r.id, status, &r.create_time, &r.batch),
            )
        }
        None => refuse((
            404,
            "NoSuchInvalidation",
            format!("The specified invalidation does not exist: {id}"),
        )),
    }
}

impl crate::Emulated for CloudFrontEmulator {
    fn kind(&self) -> &'static str {
        "cloudfront"
    }

    fn title(&self) -> &'static str {
        "Amazon CloudFront"
    }

    fn router(&self) -> Router {
        CloudFrontEmulator::router(self)
    }

    fn faults(&self) -> Faults {
        CloudFrontEmulator::faults(self)
    }

    /// The demo distribution. Its alternate domain names ([`SANDBOX_HOSTS`]) are every host the
    /// sandbox is purged on: `examples/urls.txt` and the conformance suite.
    fn config(&self, endpoint: &str) -> toml::Table {
        let c = self.config();
        let mut table = crate::table(
            "cloudfront",
            [
                ("endpoint", endpoint),
                ("distribution_id", c.distribution_id.as_str()),
                ("access_key_id", c.access_key_id.as_str()),
                ("secret_access_key", c.secret_access_key.as_str()),
            ],
        );
        table.insert(
            "hosts".to_owned(),
            toml::Value::Array(
                SANDBOX_HOSTS
                    .iter()
                    .map(|h| toml::Value::String((*h).to_owned()))
                    .collect(),
            ),
        );
        table
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.config().secret_access_key.clone()]
    }

    fn requests(&self) -> Vec<SeenRequest> {
        CloudFrontEmulator::requests(self)
    }

    /// Paths alone: a CloudFront path is invalidated on every host of the distribution.
    fn purged(&self) -> Vec<String> {
        self.paths()
    }

    /// The in-progress capacity and the completion time. The capacity is AWS's, fixed: the
    /// config table cannot declare another, so a lowered one is met by the client as AWS's
    /// `TooManyInvalidationsInProgress`, retried.
    fn limits(&self) -> toml::Table {
        let c = self.config();
        let count = |n: usize| toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        let mut t = toml::Table::new();
        t.insert(
            "max_paths_in_progress".into(),
            count(c.max_paths_in_progress),
        );
        t.insert(
            "max_wildcards_in_progress".into(),
            count(c.max_wildcards_in_progress),
        );
        t.insert(
            "completes_after".into(),
            crate::duration_value(c.completes_after),
        );
        t
    }

    fn adjusted(
        &self,
        speed: f64,
        overrides: &toml::Table,
    ) -> Result<Arc<dyn crate::Emulated>, String> {
        let mut adjust = crate::Adjust::new("cloudfront", speed, overrides)?;
        let c = self.config();
        let config = CloudFrontEmulatorConfig {
            max_paths_in_progress: adjust.count(
                "max_paths_in_progress",
                c.max_paths_in_progress,
                1,
            )?,
            max_wildcards_in_progress: adjust.count(
                "max_wildcards_in_progress",
                c.max_wildcards_in_progress,
                1,
            )?,
            completes_after: adjust.time("completes_after", c.completes_after)?,
            ..c.clone()
        };
        adjust.finish(&crate::Emulated::limits(self))?;
        Ok(Arc::new(CloudFrontEmulator::new(config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Emulated;

    #[test]
    fn adjusted_shortens_completion_and_changes_the_capacity() {
        let emu = CloudFrontEmulator::sandbox();
        let limits = emu.limits();
        assert_eq!(limits["max_paths_in_progress"].as_integer(), Some(3000));
        assert_eq!(limits["max_wildcards_in_progress"].as_integer(), Some(15));
        assert_eq!(limits["completes_after"].as_str(), Some("2s"));

        let mut overrides = toml::Table::new();
        overrides.insert("max_wildcards_in_progress".into(), toml::Value::Integer(2));
        overrides.insert("completes_after".into(), toml::Value::String("10s".into()));
        let fast = emu.adjusted(10.0, &overrides).unwrap();
        let limits = fast.limits();
        // Counts are not times: `--speed` leaves them.
        assert_eq!(limits["max_paths_in_progress"].as_integer(), Some(3000));
        assert_eq!(limits["max_wildcards_in_progress"].as_integer(), Some(2));
        assert_eq!(limits["completes_after"].as_str(), Some("1s"));
        assert_eq!(fast.kind(), "cloudfront");

        overrides.insert("max_paths_in_progress".into(), toml::Value::Integer(0));
        let err = emu.adjusted(1.0, &overrides).err().unwrap();
        assert!(
            err.contains(
                "cloudfront.max_paths_in_progress = 0: must be a whole number of at least 1"
            ),
            "{err}"
        );
        let mut unknown = toml::Table::new();
        unknown.insert("rate_window".into(), toml::Value::String("1m".into()));
        let err = emu.adjusted(1.0, &unknown).err().unwrap();
        assert!(
            err.contains(
                "cloudfront.rate_window: the cloudfront emulator has no such limit (it has: \
                 completes_after, max_paths_in_progress, max_wildcards_in_progress)"
            ),
            "{err}"
        );
    }
}
