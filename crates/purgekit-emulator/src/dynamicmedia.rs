//! Adobe Dynamic Media (Scene7) IPS API emulator: `cdnCacheInvalidation` and
//! `getCdnCacheInvalidationStatus` over SOAP 1.1 at `POST /scene7/services/IpsApiService`.
//!
//! What it checks, in order, and the fault each failure gets (HTTP 500, or the status the
//! client asked for with `faultHttpStatusCode` in its auth header, e.g. 200):
//!
//! | check | fault |
//! |---|---|
//! | the body is well-formed XML, a `soapenv:Envelope` with a `soapenv:Body` | `ipsApiFault` 30003 |
//! | credentials: an `authHeader` in `http://www.scene7.com/IpsApi/xsd` or `…/xsd/{version}`, else HTTP Basic | `authenticationFault` 10000 (HTTP 500, never 401) |
//! | unversioned `authHeader`: children from `user, password, accessToken, locale, appName, appVersion, gzipResponse, faultHttpStatusCode`, any order (`xsd:all`), each at most once; versioned: the same in that order, `appName` and `appVersion` required | `ipsApiFault` 30003 |
//! | `user` and `password` (or HTTP Basic `email:password`), or `accessToken`, match the configured ones | `authenticationFault` 10001 |
//! | the operation element is in `http://www.scene7.com/IpsApi/xsd/{YYYY-MM-DD}` or a beta `…/{YYYY-MM-DD}-beta`, a version not older than 2012-02-14 | `ipsApiFault` 30003 |
//! | the `SOAPAction` header (quoted or not) names the body's operation | `soapenv:Client` fault, no IPS detail |
//! | `companyHandle` is the configured company | `authorizationFault` 20000 |
//! | `urlArray` holds 1 to 1000 `items` | `ipsApiFault` 30002 (none) / 30001 (too many) |
//! | every URL is http(s) and has the company root id as a whole path segment | `ipsApiFault` 30001, naming the first bad URL; nothing is purged |
//!
//! Accepted credential forms (PROVIDER-NOTES.md, "Request forms the APIs accept"): the
//! unversioned `authHeader` with children in any order; the versioned `authHeader` (the body's
//! namespace) as a sequence; `accessToken` instead of `user`/`password`
//! ([`DynamicMediaEmulatorConfig::access_token`]); `Authorization: Basic base64(email:password)`
//! instead of an `authHeader`. Schema namespaces: every dated release from 2012-02-14 on and the
//! betas `2013-08-29-beta`, `2016-01-14-beta`, `2017-10-29-beta`, `2019-09-10-beta`,
//! `2021-01-11-beta` (a beta is ordered by its date). The versioned `authHeader`'s sequence order
//! is taken to be the common XSD's listing order (the notes give no other).
//!
//! The answer's shape follows the namespace version the client sent: versions before
//! [`DynamicMediaEmulatorConfig::handle_since`] (default `2014-04-03`, IPS 6.8/2014R1) get the
//! 2012-02-14 example's `successCount`/`warningCount`/`errorCount`; that version and later get
//! `invalidationHandle` + `estimatedSeconds`. A status query answers `In-Progress` (with
//! `pingAfterSeconds`) until [`DynamicMediaEmulatorConfig::completion_after`] has passed on
//! tokio's clock since the purge, then `Done` with `completionTime`.

mod auth;
mod state;
mod wire;

use self::state::{Invalidation, Recorded};

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::time::Instant;

use self::wire::{Node, escape};
use crate::auth::authenticate;
use crate::{Faults, Running, Seen, SeenRequest, serve};

/// The SOAP 1.1 envelope namespace.
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The unversioned IPS namespace of `authHeader` and of fault details.
pub const IPS_NS: &str = "http://www.scene7.com/IpsApi/xsd";
/// The service path.
pub const SERVICE_PATH: &str = "/scene7/services/IpsApiService";
/// The oldest schema version with `cdnCacheInvalidation`.
pub const OLDEST_VERSION: &str = "2012-02-14";

/// What the emulated company and service look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicMediaEmulatorConfig {
    /// The IPS user.
    pub user: String,
    /// Its password.
    pub password: String,
    /// The company handle (`c|1001`).
    pub company_handle: String,
    /// The company root id every URL must have as a path segment.
    pub company_root: String,
    /// Most URLs per call (Adobe: 1000).
    pub max_urls: usize,
    /// Namespace versions from this one on get `invalidationHandle` + `estimatedSeconds`;
    /// older ones get the 2012-02-14 counts.
    pub handle_since: String,
    /// The `estimatedSeconds` answered.
    pub estimated_seconds: u32,
    /// How long (tokio time) after acceptance a purge reports `Done`.
    pub completion_after: Duration,
    /// The `pingAfterSeconds` answered while a purge is in progress.
    pub ping_after_seconds: u32,
    /// The `accessToken` accepted in an `authHeader` instead of user and password; `None`
    /// accepts none.
    pub access_token: Option<String>,
}

impl DynamicMediaEmulatorConfig {
    /// The demo company the CLI sandbox uses: user `demo@purgekit.example`, password
    /// `demo-password`, company handle `c|1001`, root id `PurgekitDemo`; purges complete
    /// after 5 s, as Adobe says real ones do.
    pub fn demo() -> Self {
        DynamicMediaEmulatorConfig {
            user: "demo@purgekit.example".to_owned(),
            password: "demo-password".to_owned(),
            company_handle: "c|1001".to_owned(),
            company_root: "PurgekitDemo".to_owned(),
            max_urls: 1000,
            handle_since: "2014-04-03".to_owned(),
            estimated_seconds: 5,
            completion_after: Duration::from_secs(5),
            ping_after_seconds: 5,
            access_token: Some("purgekit-demo-access-token".to_owned()),
        }
    }
}

impl Default for DynamicMediaEmulatorConfig {
    fn default() -> Self {
        Self::demo()
    }
}

/// Which IPS fault detail element a [`SoapFault`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `authenticationFault` (10000–10002).
    Authentication,
    /// `authorizationFault` (20000–20009).
    Authorization,
    /// `ipsApiFault` (30000–30003).
    IpsApi,
}

impl FaultKind {
    fn element(self) -> &'static str {
        match self {
            FaultKind::Authentication => "authenticationFault",
            FaultKind::Authorization => "authorizationFault",
            FaultKind::IpsApi => "ipsApiFault",
        }
    }
}

/// An IPS SOAP fault, injected with [`DynamicMediaEmulator::push_soap_fault`] or raised by a
/// failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapFault {
    /// The detail element.
    pub kind: FaultKind,
    /// The IPS code (e.g. 30001).
    pub code: u32,
    /// The reason.
    pub reason: String,
    /// The HTTP status to send it with; `None`: the client's `faultHttpStatusCode`, else 500.
    pub http_status: Option<u16>,
}

impl SoapFault {
    /// A fault of `kind` with `code` and `reason`, sent with the default status.
    pub fn new(kind: FaultKind, code: u32, reason: impl Into<String>) -> Self {
        SoapFault {
            kind,
            code,
            reason: reason.into(),
            http_status: None,
        }
    }

    /// The same fault, sent with HTTP `status` whatever the client asked.
    pub fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }
}

/// The emulator: cheap to clone, all clones share state.
#[derive(Debug, Clone)]
pub struct DynamicMediaEmulator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: DynamicMediaEmulatorConfig,
    faults: Faults,
    seen: Seen,
    state: Mutex<Recorded>,
}

impl DynamicMediaEmulator {
    /// An emulator for `config`.
    pub fn new(config: DynamicMediaEmulatorConfig) -> Self {
        DynamicMediaEmulator {
            inner: Arc::new(Inner {
                config,
                faults: Faults::default(),
                seen: Seen::default(),
                state: Mutex::new(Recorded::default()),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DynamicMediaEmulatorConfig {
        &self.inner.config
    }

    /// The router, with the shared [`Faults`] middleware and request counting applied.
    pub fn router(&self) -> Router {
        crate::observed(
            Router::new()
                .route(SERVICE_PATH, post(handle))
                .with_state(self.clone())
                .route_layer(middleware::from_fn_with_state(
                    self.clone(),
                    authenticate::<DynamicMediaEmulator>,
                ))
                .route_layer(middleware::from_fn_with_state(
                    self.clone(),
                    queued_soap_fault,
                )),
            self.inner.faults.clone(),
            self.inner.seen.clone(),
        )
    }

    /// The generic fault queue (latency, bare statuses, dropped connections, garbage).
    pub fn faults(&self) -> Faults {
        self.inner.faults.clone()
    }

    /// Answers the next SOAP request with `fault`, before any check.
    pub fn push_soap_fault(&self, fault: SoapFault) {
        self.lock().soap_faults.push_back(fault);
    }

    /// Serves on a free loopback port.
    pub async fn start(&self) -> std::io::Result<Running> {
        serve(self.router(), SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Every HTTP request received, on any path, faulted or not, with the status answered.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.inner.seen.requests()
    }

    /// Accepted `cdnCacheInvalidation` calls.
    pub fn invalidation_calls(&self) -> usize {
        self.lock().invalidation_calls
    }

    /// Answered `getCdnCacheInvalidationStatus` calls.
    pub fn status_calls(&self) -> usize {
        self.lock().status_calls
    }

    /// Every URL of every accepted call, in order received.
    pub fn purged_urls(&self) -> Vec<String> {
        self.lock().purged.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A failed check: an IPS fault, or a bare SOAP fault with no IPS detail.
pub(crate) enum Failure {
    Ips(SoapFault),
    Soap {
        faultcode: &'static str,
        faultstring: String,
    },
}

fn ips(kind: FaultKind, code: u32, reason: impl Into<String>) -> Failure {
    Failure::Ips(SoapFault::new(kind, code, reason))
}

/// Middleware answering a SOAP fault queued by [`DynamicMediaEmulator::push_soap_fault`]
/// before any check, authentication included.
async fn queued_soap_fault(
    State(emulator): State<DynamicMediaEmulator>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let queued = emulator.lock().soap_faults.pop_front();
    match queued {
        Some(fault) => {
            let status = fault.http_status.unwrap_or(500);
            fault_response(status, Failure::Ips(fault))
        }
        None => next.run(request).await,
    }
}

async fn handle(
    State(emulator): State<DynamicMediaEmulator>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Read faultHttpStatusCode first, so every later fault honours it.
    let envelope = wire::parse(&body);
    let fault_status = envelope
        .as_ref()
        .ok()
        .and_then(fault_http_status)
        .unwrap_or(500);
    let result = match envelope {
        Ok(envelope) => emulator.answer(&headers, &envelope),
        Err(why) => Err(invalid_xml(&why)),
    };
    match result {
        Ok(xml) => xml_response(StatusCode::OK, xml),
        Err(failure) => fault_response(fault_status, failure),
    }
}

/// The fault for a body that is not XML.
fn invalid_xml(why: &impl std::fmt::Display) -> Failure {
    ips(
        FaultKind::IpsApi,
        30003,
        format!("invalid request XML: {why}"),
    )
}

/// The `soapenv:Body` of a `soapenv:Envelope`.
fn soap_body(envelope: &Node) -> Result<&Node, Failure> {
    if !envelope.is(SOAP_ENV_NS, "Envelope") {
        return Err(ips(
            FaultKind::IpsApi,
            30003,
            format!("the root element must be soapenv:Envelope ({SOAP_ENV_NS})"),
        ));
    }
    envelope
        .children
        .iter()
        .find(|c| c.is(SOAP_ENV_NS, "Body"))
        .ok_or_else(|| ips(FaultKind::IpsApi, 30003, "no soapenv:Body"))
}

/// `faultHttpStatusCode` from the auth header, if present and a valid status.
fn fault_http_status(envelope: &Node) -> Option<u16> {
    let auth = envelope.child("Header")?.child("authHeader")?;
    let code: u16 = auth
        .child("faultHttpStatusCode")?
        .text
        .trim()
        .parse()
        .ok()?;
    (100..=599).contains(&code).then_some(code)
}

impl DynamicMediaEmulator {
    /// Answers a call whose credentials the authentication layer accepted.
    fn answer(&self, headers: &HeaderMap, envelope: &Node) -> Result<String, Failure> {
        let body = soap_body(envelope)?;
        let [param] = body.children.as_slice() else {
            return Err(ips(
                FaultKind::IpsApi,
                30003,
                "the SOAP body must hold exactly one operation element",
            ));
        };
        let version = param
            .ns
            .strip_prefix(IPS_NS)
            .and_then(|v| v.strip_prefix('/'))
            .filter(|v| is_version(v))
            .ok_or_else(|| {
                ips(
                    FaultKind::IpsApi,
                    30003,
                    format!(
                        "`{}` is in namespace `{}`, not {IPS_NS}/YYYY-MM-DD",
                        param.name, param.ns
                    ),
                )
            })?;
        if version < OLDEST_VERSION {
            return Err(ips(
                FaultKind::IpsApi,
                30003,
                format!("schema {version} has no cdnCacheInvalidation (since {OLDEST_VERSION})"),
            ));
        }
        let operation = param.name.strip_suffix("Param").unwrap_or("");
        let action = headers
            .get("soapaction")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().trim_matches('"'))
            .unwrap_or("");
        if action != operation {
            return Err(Failure::Soap {
                faultcode: "soapenv:Client",
                faultstring: format!(
                    "SOAPAction `{action}` does not match the body's operation `{}`",
                    param.name
                ),
            });
        }
        match operation {
            "cdnCacheInvalidation" => self.invalidate(version, param),
            "getCdnCacheInvalidationStatus" => self.status(version, param),
            _ => Err(Failure::Soap {
                faultcode: "soapenv:Client",
                faultstring: format!("no such operation `{operation}`"),
            }),
        }
    }

    fn invalidate(&self, version: &str, param: &Node) -> Result<String, Failure> {
        let config = &self.inner.config;
        expect_children(param, &["companyHandle", "urlArray"])?;
        check_company(config, param)?;
        let urls: Vec<String> = match param.child("urlArray") {
            Some(array) => array
                .children
                .iter()
                .map(|item| {
                    if item.name == "items" {
                        Ok(item.text.trim().to_owned())
                    } else {
                        Err(ips(
                            FaultKind::IpsApi,
                            30003,
                            format!("unexpected `{}` in urlArray", item.name),
                        ))
                    }
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        if urls.is_empty() {
            return Err(ips(
                FaultKind::IpsApi,
                30002,
                "urlArray must hold at least one URL",
            ));
        }
        if urls.len() > config.max_urls {
            return Err(ips(
                FaultKind::IpsApi,
                30001,
                format!("{} URLs: at most {} per call", urls.len(), config.max_urls),
            ));
        }
        if let Some(bad) = urls.iter().find(|u| !under_root(u, &config.company_root)) {
            return Err(ips(
                FaultKind::IpsApi,
                30001,
                format!(
                    "URL `{bad}` does not match company root id `{}`",
                    config.company_root
                ),
            ));
        }
        let mut state = self.lock();
        state.invalidation_calls += 1;
        let n = urls.len();
        state.purged.extend(urls);
        let ns = format!("{IPS_NS}/{version}");
        let inner = if version >= config.handle_since.as_str() {
            state.next_id += 1;
            let handle = format!("{}|{}", config.company_handle, state.next_id);
            state.invalidations.insert(
                handle.clone(),
                Invalidation {
                    accepted_at: Instant::now(),
                    accepted_wall: SystemTime::now(),
                },
            );
            format!(
                "<invalidationHandle>{}</invalidationHandle>\
                 <estimatedSeconds>{}</estimatedSeconds>",
                escape(&handle),
                config.estimated_seconds
            )
        } else {
            format!(
                "<successCount>{n}</successCount><warningCount>0</warningCount>\
                 <errorCount>0</errorCount>"
            )
        };
        Ok(envelope_xml(&format!(
            "<cdnCacheInvalidationReturn xmlns=\"{ns}\">{inner}</cdnCacheInvalidationReturn>"
        )))
    }

    fn status(&self, version: &str, param: &Node) -> Result<String, Failure> {
        let config = &self.inner.config;
        expect_children(param, &["companyHandle", "invalidationHandle"])?;
        check_company(config, param)?;
        let handle = param
            .child("invalidationHandle")
            .map(|h| h.text.trim())
            .unwrap_or("");
        let mut state = self.lock();
        let invalidation = *state.invalidations.get(handle).ok_or_else(|| {
            ips(
                FaultKind::IpsApi,
                30001,
                format!("unknown invalidationHandle `{handle}`"),
            )
        })?;
        state.status_calls += 1;
        let inner = if invalidation.accepted_at.elapsed() >= config.completion_after {
            let done = invalidation.accepted_wall + config.completion_after;
            format!(
                "<status>Done</status><completionTime>{}</completionTime>",
                xsd_date_time(done)
            )
        } else {
            format!(
                "<status>In-Progress</status><pingAfterSeconds>{}</pingAfterSeconds>",
                config.ping_after_seconds
            )
        };
        Ok(envelope_xml(&format!(
            "<getCdnCacheInvalidationStatusReturn xmlns=\"{IPS_NS}/{version}\">{inner}\
             </getCdnCacheInvalidationStatusReturn>"
        )))
    }
}

/// The parameter's children must be exactly `names`, in order.
fn expect_children(param: &Node, names: &[&str]) -> Result<(), Failure> {
    if param.child_names() != names {
        return Err(ips(
            FaultKind::IpsApi,
            if param.children.len() < names.len() {
                30002
            } else {
                30003
            },
            format!(
                "`{}` must hold {} in that order; got [{}]",
                param.name,
                names.join(", "),
                param.child_names().join(", ")
            ),
        ));
    }
    Ok(())
}

fn check_company(config: &DynamicMediaEmulatorConfig, param: &Node) -> Result<(), Failure> {
    let handle = param
        .child("companyHandle")
        .map(|c| c.text.trim())
        .unwrap_or("");
    if handle != config.company_handle {
        return Err(ips(
            FaultKind::Authorization,
            20000,
            format!("invalid company handle `{handle}`"),
        ));
    }
    Ok(())
}

/// An http(s) URL whose path (before `?`) has `root` as a whole segment.
fn under_root(url: &str, root: &str) -> bool {
    let rest = match url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    {
        Some(rest) => rest,
        None => return false,
    };
    let Some(slash) = rest.find('/') else {
        return false;
    };
    if rest[..slash].is_empty() || rest[..slash].contains('?') {
        return false;
    }
    let path = rest[slash..].split(['?', '#']).next().unwrap_or("");
    path.split('/').any(|segment| segment == root)
}

/// `YYYY-MM-DD`, or a beta schema's `YYYY-MM-DD-beta` (`2013-08-29-beta` … `2021-01-11-beta`).
fn is_version(v: &str) -> bool {
    let date = v.strip_suffix("-beta").unwrap_or(v);
    date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
}

fn envelope_xml(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <soapenv:Envelope xmlns:soapenv=\"{SOAP_ENV_NS}\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )
}

fn xml_response(status: StatusCode, xml: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        xml,
    )
        .into_response()
}

fn fault_response(status: u16, failure: Failure) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let fault = match failure {
        Failure::Ips(fault) => {
            let element = fault.kind.element();
            format!(
                "<soapenv:Fault><faultcode>soapenv:Server.userException</faultcode>\
                 <faultstring>{reason}</faultstring><detail>\
                 <ns1:{element} xmlns:ns1=\"{IPS_NS}\"><ns1:code>{code}</ns1:code>\
                 <ns1:reason>{reason}</ns1:reason></ns1:{element}></detail></soapenv:Fault>",
                reason = escape(&fault.reason),
                code = fault.code,
            )
        }
        Failure::Soap {
            faultcode,
            faultstring,
        } => format!(
            "<soapenv:Fault><faultcode>{faultcode}</faultcode>\
             <faultstring>{}</faultstring></soapenv:Fault>",
            escape(&faultstring)
        ),
    };
    xml_response(status, envelope_xml(&fault))
}

/// `YYYY-MM-DDThh:mm:ssZ` (xsd:dateTime, UTC).
fn xsd_date_time(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm), for dates after 1970.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The schema version the sandbox's Dynamic Media account speaks: the first that answers with
/// an `invalidationHandle`, so `--wait` can poll it (the 2012-02-14 default answers counts).
pub const SANDBOX_API_VERSION: &str = "2014-04-03";

impl DynamicMediaEmulator {
    /// The demo company with invalidations that complete in two seconds (the sandbox's).
    pub fn sandbox() -> Self {
        DynamicMediaEmulator::new(DynamicMediaEmulatorConfig {
            estimated_seconds: 2,
            completion_after: Duration::from_secs(2),
            ping_after_seconds: 1,
            ..DynamicMediaEmulatorConfig::demo()
        })
    }
}

impl crate::Emulated for DynamicMediaEmulator {
    fn kind(&self) -> &'static str {
        "dynamic-media"
    }

    fn title(&self) -> &'static str {
        "Adobe Dynamic Media"
    }

    fn router(&self) -> Router {
        DynamicMediaEmulator::router(self)
    }

    fn faults(&self) -> Faults {
        DynamicMediaEmulator::faults(self)
    }

    /// The company on schema [`SANDBOX_API_VERSION`]. Adobe publishes no rate limit and the
    /// emulator enforces none, so none is declared.
    fn config(&self, endpoint: &str) -> toml::Table {
        let e = self.config();
        crate::table(
            "dynamic-media",
            [
                ("endpoint", endpoint),
                ("user", e.user.as_str()),
                ("password", e.password.as_str()),
                ("company_handle", e.company_handle.as_str()),
                ("company_root", e.company_root.as_str()),
                ("api_version", SANDBOX_API_VERSION),
            ],
        )
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.config().password.clone()]
    }

    fn requests(&self) -> Vec<SeenRequest> {
        DynamicMediaEmulator::requests(self)
    }

    fn purged(&self) -> Vec<String> {
        self.purged_urls()
            .iter()
            .map(|u| crate::host_and_path(u))
            .collect()
    }

    fn limits(&self) -> toml::Table {
        let e = self.config();
        let mut t = toml::Table::new();
        t.insert(
            "completion_after".into(),
            crate::duration_value(e.completion_after),
        );
        t.insert(
            "estimated_seconds".into(),
            toml::Value::Integer(e.estimated_seconds.into()),
        );
        t.insert(
            "ping_after_seconds".into(),
            toml::Value::Integer(e.ping_after_seconds.into()),
        );
        t
    }

    fn adjusted(
        &self,
        speed: f64,
        overrides: &toml::Table,
    ) -> Result<Arc<dyn crate::Emulated>, String> {
        let mut adjust = crate::Adjust::new("dynamic-media", speed, overrides)?;
        let e = self.config();
        let config = DynamicMediaEmulatorConfig {
            completion_after: adjust.time("completion_after", e.completion_after)?,
            estimated_seconds: adjust.seconds("estimated_seconds", e.estimated_seconds)?,
            ping_after_seconds: adjust.seconds("ping_after_seconds", e.ping_after_seconds)?,
            ..e.clone()
        };
        adjust.finish(&crate::Emulated::limits(self))?;
        Ok(Arc::new(DynamicMediaEmulator::new(config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_xsd() {
        assert_eq!(xsd_date_time(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // 2024-02-29T23:59:59Z
        assert_eq!(xsd_date_time(t), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn root_must_be_a_path_segment() {
        let root = "JJEsquire";
        assert!(under_root(
            "http://s7d7.scene7.com/is/image/JJEsquire/1?$a$",
            root
        ));
        assert!(under_root("https://x.example/is/content/JJEsquire", root));
        assert!(!under_root(
            "http://s7d7.scene7.com/is/image/JJEsquireX/1",
            root
        ));
        assert!(!under_root("http://JJEsquire/x", root));
        assert!(!under_root("http://x/a?JJEsquire", root));
        assert!(!under_root("ftp://x/JJEsquire/a", root));
        assert!(!under_root("JJEsquire", root));
    }
}
