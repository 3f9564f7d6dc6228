//! [`Limelight`]: the SmartPurge codec behind [`purgekit_core::Provider`], plus the API calls
//! outside the SPI (list by shortname, translate a public URL) as pure request builders and
//! response decoders.

use std::borrow::Cow;
use std::time::SystemTime;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use purgekit_core::http::{Method, StatusCode, header::CONTENT_TYPE};
use purgekit_core::{
    Accepted, AuthProbe, Batch, Budget, Capabilities, Error, Handle, HttpRequest, HttpResponse,
    Item, Limits, Mapped, OptionKind, Options, Progress, Provider, REDACTED, RateLimit, Result,
    Status, Target, TargetKind,
};
use serde::Deserialize;

use crate::config::{Account, LimelightConfig};
use crate::decode::{self, PurgeList, PurgeRecord};
use crate::sign::{PRINCIPAL_HEADER, TIMESTAMP_HEADER, TOKEN_HEADER, request_token};
use crate::wire;

/// Most patterns + tags in one request (code 1041 beyond).
pub const MAX_ITEMS_PER_REQUEST: usize = 100;
/// Most body bytes per request. The vendor says "32 kilobytes"; we read it as 32 000, the
/// smaller of the two readings, so no body can draw a 413 whichever the server means.
pub const MAX_BODY_BYTES: usize = 32_000;
/// Items (patterns and tags) per minute per shortname: one a second.
pub const ITEMS_PER_MINUTE: u32 = 60;
/// Most items queued per shortname (code 1021 beyond).
pub const MAX_QUEUED_ITEMS: usize = 1000;

/// A query string value: everything but letters, digits, `-._~:/` is percent-encoded, so the
/// bytes signed are the bytes every HTTP client sends unchanged.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'/');

/// The Limelight SmartPurge provider: one shortname, signed by one user.
///
/// ```
/// use std::sync::Arc;
/// use purgekit_core::{ProviderPurger, Purger};
/// use purgekit_limelight::{Limelight, LimelightConfig};
/// let config = LimelightConfig::new("example", "exampleuser", "00112233445566778899aabbccddeeff");
/// let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("ll", Limelight::new(config)?));
/// # Ok::<(), purgekit_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Limelight {
    account: Account,
}

impl std::fmt::Debug for Limelight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limelight")
            .field("endpoint", &self.account.endpoint)
            .field("shortname", &self.account.shortname)
            .field("username", &self.account.username)
            .field("shared_key", &REDACTED)
            .finish()
    }
}

/// Ordering of a list by submission time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first (the API's default).
    Desc,
}

/// The optional terms of "Get Purge Requests by Shortname"; unset terms take the API's defaults
/// (the last 90 days, 50 requests, offset 0, newest first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Requests submitted after this Unix-ms time.
    pub start_ts: Option<u64>,
    /// Requests submitted before this Unix-ms time.
    pub end_ts: Option<u64>,
    /// Page size, 1 to 100.
    pub limit: Option<u32>,
    /// Requests to skip, 0 to 5000.
    pub offset: Option<u32>,
    /// Ordering.
    pub order: Option<Order>,
}

impl ListQuery {
    /// The query string (without `?`), in the vendor samples' term order, after checking the
    /// documented ranges.
    pub fn to_query(&self) -> Result<String> {
        if let Some(limit) = self.limit.filter(|l| !(1..=100).contains(l)) {
            return Err(Error::invalid(
                format!("limit={limit}"),
                "limit must be in 1..=100",
            ));
        }
        if let Some(offset) = self.offset.filter(|o| *o > 5000) {
            return Err(Error::invalid(
                format!("offset={offset}"),
                "offset must be in 0..=5000",
            ));
        }
        if let (Some(start), Some(end)) = (self.start_ts, self.end_ts)
            && start >= end
        {
            return Err(Error::invalid(
                format!("start_ts={start}&end_ts={end}"),
                "start_ts must be less than end_ts",
            ));
        }
        let mut terms = Vec::new();
        if let Some(v) = self.start_ts {
            terms.push(format!("start_ts={v}"));
        }
        if let Some(v) = self.end_ts {
            terms.push(format!("end_ts={v}"));
        }
        if let Some(v) = self.limit {
            terms.push(format!("limit={v}"));
        }
        if let Some(v) = self.offset {
            terms.push(format!("offset={v}"));
        }
        if let Some(order) = self.order {
            terms.push(format!(
                "order={}",
                if order == Order::Asc { "asc" } else { "desc" }
            ));
        }
        Ok(terms.join("&"))
    }
}

#[derive(Deserialize)]
struct Submitted {
    id: String,
    #[serde(default)]
    patterns: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    tags: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
struct Translated {
    translated: String,
}

impl Limelight {
    /// Checks `config` (endpoint, shortname, user, hex key, origin map) and builds the provider.
    /// Every problem is an [`Error::Config`] naming the field; the key is never echoed.
    pub fn new(config: LimelightConfig) -> Result<Self> {
        Ok(Limelight {
            account: Account::new(config)?,
        })
    }

    /// Signs a request at `now`: `Content-Type`, principal, timestamp and token headers.
    fn signed(
        &self,
        method: Method,
        url: String,
        body: Vec<u8>,
        now: SystemTime,
    ) -> Result<HttpRequest> {
        let ts = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| Error::config("clock", "the system clock is before 1970"))?
            .as_millis();
        let ts = u64::try_from(ts)
            .map_err(|_| Error::config("clock", "the system clock is out of range"))?;
        let ts = ts.to_string();
        let signature = request_token(&self.account.key, method.as_str(), &url, &ts, &body);
        purgekit_core::http::Request::builder()
            .method(method)
            .uri(&url)
            .header(CONTENT_TYPE, "application/json")
            .header(PRINCIPAL_HEADER, &self.account.username)
            .header(TIMESTAMP_HEADER, ts)
            .header(TOKEN_HEADER, signature)
            .body(body)
            .map_err(|e| Error::invalid(&url, format!("not a valid request URL ({e})")))
    }

    /// `GET …/requests/{id}`, with `?geostats` for per-datacenter statistics.
    pub fn encode_details(
        &self,
        handle: &Handle,
        geostats: bool,
        now: SystemTime,
    ) -> Result<HttpRequest> {
        let id = handle.as_str();
        if !is_request_id(id) {
            return Err(Error::invalid(
                id,
                "a SmartPurge request id is 32 hex digits",
            ));
        }
        let mut url = format!("{}/requests/{id}", self.account.account_url());
        if geostats {
            url.push_str("?geostats");
        }
        self.signed(Method::GET, url, Vec::new(), now)
    }

    /// Decodes the answer to [`Limelight::encode_details`] (or to a status query).
    pub fn decode_details(&self, response: HttpResponse) -> Result<PurgeRecord> {
        decode::success(&response, &[StatusCode::OK], "purge request details")
    }

    /// `GET …/requests?start_ts&end_ts&limit&offset&order`: the account's purge requests.
    pub fn encode_list(&self, query: &ListQuery, now: SystemTime) -> Result<HttpRequest> {
        let query = query.to_query()?;
        let mut url = format!("{}/requests", self.account.account_url());
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query);
        }
        self.signed(Method::GET, url, Vec::new(), now)
    }

    /// Decodes the answer to [`Limelight::encode_list`].
    pub fn decode_list(&self, response: HttpResponse) -> Result<PurgeList> {
        decode::success(&response, &[StatusCode::OK], "purge request list")
    }

    /// `GET …/translate?url=`: the origin URL a public exact URL is fetched from.
    pub fn encode_translate(&self, public_url: &str, now: SystemTime) -> Result<HttpRequest> {
        let target = Target::url(public_url)?;
        let url = format!(
            "{}/translate?url={}",
            self.account.account_url(),
            utf8_percent_encode(target.value(), QUERY_VALUE)
        );
        self.signed(Method::GET, url, Vec::new(), now)
    }

    /// Decodes the answer to [`Limelight::encode_translate`]: the origin URL.
    pub fn decode_translate(&self, response: HttpResponse) -> Result<String> {
        decode::success::<Translated>(&response, &[StatusCode::OK], "translate")
            .map(|t| t.translated)
    }

    /// The pattern as sent: its public host rewritten to the configured origin, if any (an
    /// `exact: false` pattern is matched against the ORIGIN URL), spaces percent-encoded.
    pub fn wire_pattern(&self, pattern: &str) -> String {
        wire::wire_pattern(&self.origin_pattern(pattern))
    }

    /// The pattern with its public host rewritten to the configured origin; borrowed when no
    /// origin is configured for its host.
    fn origin_pattern<'a>(&self, pattern: &'a str) -> Cow<'a, str> {
        if self.account.origins.is_empty() {
            return Cow::Borrowed(pattern);
        }
        let Some((scheme, rest)) = pattern.split_once("://") else {
            return Cow::Borrowed(pattern);
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host_port.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host_port,
        };
        match self.account.origins.get(&host.to_ascii_lowercase()) {
            // The public port and user info belong to the public side: the origin entry says
            // the whole authority.
            Some((origin_scheme, origin)) => Cow::Owned(format!(
                "{}://{origin}{tail}",
                origin_scheme.as_deref().unwrap_or(scheme)
            )),
            None => Cow::Borrowed(pattern),
        }
    }
}

/// Whether `id` is a SmartPurge request id: 32 hex digits.
fn is_request_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Provider for Limelight {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    fn account(&self) -> String {
        self.account.shortname.clone()
    }

    fn endpoint(&self) -> String {
        self.account.endpoint.clone()
    }

    fn limits(&self) -> Limits {
        Limits {
            max_items: MAX_ITEMS_PER_REQUEST,
            max_body_bytes: Some(MAX_BODY_BYTES),
            rate: self.account.rate_limit.unwrap_or(RateLimit {
                requests: None,
                items: Some(Budget::per_minute(ITEMS_PER_MINUTE)),
            }),
            max_queued_items: Some(MAX_QUEUED_ITEMS),
            ..Limits::default()
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            targets: vec![
                TargetKind::Url,
                TargetKind::Pattern,
                TargetKind::Tag,
                TargetKind::Prefix,
                TargetKind::Host,
            ],
            options: vec![
                OptionKind::Delete,
                OptionKind::IncludeQuery,
                OptionKind::Notify,
                OptionKind::Callback,
                OptionKind::Note,
                OptionKind::DryRun,
            ],
        }
    }

    fn check_options(&self, options: &Options) -> Result<()> {
        wire::check_options(options)
    }

    fn map(&self, target: &Target, options: &Options) -> Result<Mapped> {
        // A prefix is its directory's pattern; a host is the pattern of its every URL, either
        // scheme (`*` matches any characters, so `http*://` is exactly http and https).
        let (kind, value) = match target.kind() {
            TargetKind::Url => (TargetKind::Url, wire::wire_pattern(target.value())),
            TargetKind::Pattern => (TargetKind::Pattern, self.wire_pattern(target.value())),
            TargetKind::Tag => (TargetKind::Tag, target.value().to_owned()),
            TargetKind::Prefix => (
                TargetKind::Pattern,
                self.wire_pattern(&format!("{}*", target.value())),
            ),
            TargetKind::Host => (
                TargetKind::Pattern,
                self.wire_pattern(&format!("http*://{}/*", target.value())),
            ),
            TargetKind::Everything => {
                return Ok(Mapped::Unsupported(
                    "SmartPurge has no account-wide purge: name each host with host:NAME".into(),
                ));
            }
        };
        wire::check_value(kind, target.value(), &value)?;
        let bytes = wire::item_bytes(kind, &value, options);
        Ok(Mapped::Item(Item {
            kind,
            value,
            scope: String::new(),
            wildcard: kind == TargetKind::Pattern,
            bytes,
        }))
    }

    fn body_overhead(&self, options: &Options) -> usize {
        wire::overhead(options)
    }

    fn encode(&self, batch: &Batch, options: &Options, now: SystemTime) -> Result<HttpRequest> {
        let body = wire::encode(&batch.items, options);
        let url = format!("{}/requests", self.account.account_url());
        self.signed(Method::POST, url, body.into_bytes(), now)
    }

    fn decode(&self, batch: &Batch, response: HttpResponse) -> Result<Accepted> {
        let submitted: Submitted = decode::success(
            &response,
            &[StatusCode::CREATED, StatusCode::OK],
            "purge request",
        )?;
        if !is_request_id(&submitted.id) {
            return Err(Error::protocol(format!(
                "the purge request id `{}` is not 32 hex digits",
                purgekit_core::snippet(submitted.id.as_bytes())
            )));
        }
        let mut warnings = Vec::new();
        if submitted.patterns.is_some() || submitted.tags.is_some() {
            let echoed =
                submitted.patterns.map_or(0, |p| p.len()) + submitted.tags.map_or(0, |t| t.len());
            if echoed != batch.items.len() {
                warnings.push(format!(
                    "Limelight echoed {echoed} patterns and tags for the {} sent",
                    batch.items.len()
                ));
            }
        }
        Ok(Accepted {
            handle: Handle(submitted.id),
            poll_after: None,
            warnings,
        })
    }

    fn encode_status(&self, handle: &Handle, now: SystemTime) -> Result<HttpRequest> {
        self.encode_details(handle, false, now)
    }

    /// The account's latest purge request, `GET …/requests?limit=1`: read-only, signed.
    fn auth_probe(&self, now: SystemTime) -> Result<AuthProbe> {
        let query = ListQuery {
            limit: Some(1),
            ..ListQuery::default()
        };
        Ok(AuthProbe::Request(Box::new(self.encode_list(&query, now)?)))
    }

    /// A purge request list is accepted; any error is classified as a purge's would be.
    fn decode_auth_probe(&self, response: HttpResponse) -> Result<()> {
        self.decode_list(response).map(|_| ())
    }

    fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
        let record = self.decode_details(response)?;
        if record.id != handle.as_str() {
            return Err(Error::protocol(format!(
                "asked about request {handle}, the answer is about `{}`",
                purgekit_core::snippet(record.id.as_bytes())
            )));
        }
        let state = record.state().to_owned();
        let (progress, detail) = if record.aborted {
            (Progress::Failed, format!("aborted ({state})"))
        } else {
            match state.as_str() {
                "complete" => (Progress::Completed, state),
                "stats_avail" => {
                    let objects = record.objects_purged();
                    (
                        Progress::Completed,
                        format!("stats_avail: {objects} objects purged"),
                    )
                }
                _ => {
                    let percent = record.completion.map(|c| c.clamp(0.0, 100.0).round() as u8);
                    let detail = match percent {
                        Some(p) => format!("{state} {p}%"),
                        None => state,
                    };
                    (Progress::Pending { percent }, detail)
                }
            }
        };
        Ok(Status {
            handle: handle.clone(),
            progress,
            detail,
            poll_after: None,
        })
    }

    fn redact(&self, request: &mut HttpRequest) {
        if let Some(value) = request.headers_mut().get_mut(TOKEN_HEADER) {
            *value = purgekit_core::http::HeaderValue::from_static(REDACTED);
        }
    }
}

#[cfg(test)]
mod tests;
