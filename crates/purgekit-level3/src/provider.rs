//! [`Level3`]: the Level 3 / Lumen invalidation API as a [`Provider`] codec.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::SystemTime;

use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
use purgekit_core::http::{self, HeaderValue, Method, header};
use purgekit_core::{
    Accepted, Action, AuthProbe, Batch, Budget, Capabilities, Error, Handle, HttpRequest,
    HttpResponse, Item, Limits, Mapped, OptionKind, Options, Progress, Provider, REDACTED,
    RateLimit, Result, SharedScope, Status, Target, TargetKind,
};

use crate::config::{Level3Config, is_segment};
use crate::decode::{classify, snippet};
use crate::sign;
use crate::wire;

/// Most `<path>` elements in one request (21732 beyond).
pub const MAX_PATHS: usize = 200;
/// Most characters of the `notification` list, commas included.
pub const MAX_NOTIFICATION_LEN: usize = 250;
/// Requests per minute per API key, as documented.
pub const REQUESTS_PER_MINUTE: u32 = 10;
/// Requests in flight at once per key: the 10-per-minute budget, not concurrency, bounds
/// throughput, so two is enough to overlap one slow answer without bursting.
pub const MAX_IN_FLIGHT: usize = 2;
/// The `Content-Type` of every request, and the only `Accept` the API honours.
pub const CONTENT_TYPE: &str = "text/xml";

const API_PREFIX: &str = "/invalidations/v1.0";

/// The planner's name for the access-group scope, before the access group's id: a batch with
/// this scope carries several network identifiers (which never contain `:`).
pub const ACCESS_GROUP_SCOPE: &str = "access-group:";

/// Query values: everything but letters, digits and `@ , . - _ ~ /` is percent-encoded, so
/// `notification=a@x.com,b@y.com` and `id=DAG_1/2@3-4` read as the guide writes them and a `+`
/// in an address is not taken for a space.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'@')
    .remove(b',')
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// The Level 3 / Lumen provider. See the crate docs.
///
/// ```
/// use purgekit_core::Provider;
/// use purgekit_level3::{Level3, Level3Config};
/// let level3 = Level3::new(Level3Config::new("10042", "s3cr3t", "12345", "BBBN56789")).unwrap();
/// assert_eq!(level3.kind(), "level3");
/// assert_eq!(level3.limits().max_items, 200);
/// ```
#[derive(Debug, Clone)]
pub struct Level3 {
    config: Level3Config,
    /// The NI map with lower-cased hosts.
    hosts: BTreeMap<String, String>,
}

impl Level3 {
    /// Checks `config` and builds the provider; an [`Error::Config`] names the wrong field.
    pub fn new(mut config: Level3Config) -> Result<Self> {
        config.endpoint = purgekit_core::normalize_endpoint("endpoint", &config.endpoint)?;
        config.validate()?;
        let hosts = config
            .network_identifiers
            .iter()
            .map(|(host, ni)| (host.to_ascii_lowercase(), ni.clone()))
            .collect();
        Ok(Level3 { config, hosts })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Level3Config {
        &self.config
    }

    /// The network identifier purging `host`'s content: the configured one, else the host
    /// itself (lower-cased) when it can stand as one.
    fn network_identifier(&self, host: &str) -> Option<String> {
        // A target's host is already lower-case (core's normalization): usually nothing to do.
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        };
        match self.hosts.get(&*host) {
            Some(ni) => Some(ni.clone()),
            None => is_segment(&host).then(|| host.into_owned()),
        }
    }

    /// `/invalidations/v1.0/{ag}/{scid}/{ni}`: the scope path, also the signed RelativePath.
    fn scope_path(&self, ni: &str) -> Result<String> {
        if !is_segment(ni) {
            return Err(Error::invalid(ni, "not a Level 3 network identifier"));
        }
        Ok(format!(
            "{API_PREFIX}/{}/{}/{ni}",
            self.config.access_group, self.config.scid
        ))
    }

    /// The planner's scope of an access-group request: `access-group:{ag}`.
    fn access_group_scope(&self) -> String {
        format!("{ACCESS_GROUP_SCOPE}{}", self.config.access_group)
    }

    /// A signed request: `Content-Type` and `Accept` `text/xml`, `Date`, `Authorization`.
    fn signed(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Vec<u8>,
        now: SystemTime,
    ) -> Result<HttpRequest> {
        let mut uri = format!("{}{path}", self.config.endpoint);
        for (i, (name, value)) in query.iter().enumerate() {
            uri.push(if i == 0 { '?' } else { '&' });
            uri.push_str(name);
            uri.push('=');
            uri.extend(utf8_percent_encode(value, QUERY_VALUE));
        }
        let date = sign::mpa_date(now);
        let to_sign = sign::string_to_sign(&date, path, CONTENT_TYPE, method.as_str(), "");
        let signature = sign::signature(&self.config.secret, &to_sign);
        let authorization = sign::authorization(&self.config.key_id, &signature);
        http::Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .header(header::ACCEPT, CONTENT_TYPE)
            .header(header::DATE, date)
            .header(header::AUTHORIZATION, authorization)
            .body(body)
            .map_err(|e| Error::invalid(&uri, format!("cannot form an HTTP request: {e}")))
    }
}

/// The invalidations of a successful POST answer; an error answer classified.
fn accepted_invalidations(response: HttpResponse) -> Result<Vec<wire::Invalidation>> {
    if !response.status().is_success() {
        return Err(classify(&response));
    }
    let text = String::from_utf8_lossy(response.body());
    wire::parse_access_group(&text)
        .map_err(|e| Error::protocol(format!("HTTP {}: {e}{}", response.status(), snippet(&text))))
}

/// The distinct invalidation ids listed under the network identifiers `ni` selects, in order.
fn ids_of(invalidations: &[wire::Invalidation], ni: impl Fn(&str) -> bool) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::new();
    for inv in invalidations.iter().filter(|inv| ni(&inv.ni)) {
        if !inv.id.is_empty() && !ids.contains(&inv.id.as_str()) {
            ids.push(&inv.id);
        }
    }
    ids
}

/// The accepted purge of network identifier `ni`: handle `{ni}/{first id}`, a warning when the
/// answer gave it several ids.
fn accepted(ni: &str, ids: &[&str]) -> Result<Accepted> {
    let Some(first) = ids.first() else {
        return Err(Error::protocol(
            "the <accessGroup> answer lists no invalidation id",
        ));
    };
    let mut warnings = Vec::new();
    if ids.len() > 1 {
        warnings.push(format!(
            "Level 3 returned {} invalidation ids for this request; the handle follows `{first}`",
            ids.len()
        ));
    }
    Ok(Accepted {
        handle: Handle(format!("{ni}/{first}")),
        poll_after: None,
        warnings,
    })
}

/// The `{ni}/{invalidation id}` handle, split. NIs never contain `/`; ids may.
fn split_handle(handle: &Handle) -> Result<(&str, &str)> {
    match handle.as_str().split_once('/') {
        Some((ni, id)) if is_segment(ni) && !id.trim().is_empty() => Ok((ni, id)),
        _ => Err(Error::invalid(
            handle.as_str(),
            "not a Level 3 handle (expected NETWORK_IDENTIFIER/INVALIDATION_ID)",
        )),
    }
}

/// Path and query as sent: non-ASCII (and control) bytes percent-encoded, the rest as written.
fn wire_path(path_and_query: &str) -> String {
    Cow::from(utf8_percent_encode(path_and_query, CONTROLS)).into_owned()
}

impl Provider for Level3 {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    fn account(&self) -> String {
        self.config.key_id.clone()
    }

    fn endpoint(&self) -> String {
        self.config.endpoint.clone()
    }

    fn limits(&self) -> Limits {
        Limits {
            max_items: MAX_PATHS,
            max_body_bytes: None,
            wildcard_alone: true,
            group_by_scope: true,
            shared_scope: self.config.access_group_scope.then(|| SharedScope {
                parent: self.access_group_scope(),
                // "If a wildcard is used, only one <path> element can be specified", and
                // Example 4 sends one wildcard path in each of two properties: the rule holds
                // per property.
                wildcard_alone_in_scope: true,
                // Network identifiers need no XML escaping: a property is this plus the NI.
                request_overhead: wire::PROPERTIES_EXTRA,
                scope_overhead: wire::PROPERTY_OVERHEAD,
            }),
            rate: self.config.rate_limit.unwrap_or(RateLimit {
                requests: Some(Budget::per_minute(REQUESTS_PER_MINUTE)),
                items: None,
            }),
            max_in_flight: MAX_IN_FLIGHT,
            ..Limits::default()
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            targets: vec![
                TargetKind::Url,
                TargetKind::Pattern,
                TargetKind::Prefix,
                TargetKind::Host,
            ],
            options: vec![
                OptionKind::Delete,
                OptionKind::IgnoreCase,
                OptionKind::Notify,
            ],
        }
    }

    fn check_options(&self, options: &Options) -> Result<()> {
        let list = options.notify.join(",");
        if list.chars().count() > MAX_NOTIFICATION_LEN {
            return Err(Error::invalid(
                &list,
                format!(
                    "Level 3 takes at most {MAX_NOTIFICATION_LEN} characters of notification \
                     addresses, commas included (these are {})",
                    list.chars().count()
                ),
            ));
        }
        if list.contains(' ') {
            return Err(Error::invalid(
                &list,
                "Level 3 notification addresses must not contain spaces",
            ));
        }
        Ok(())
    }

    fn map(&self, target: &Target, _options: &Options) -> Result<Mapped> {
        let Some(host) = target.host() else {
            return Ok(Mapped::Unsupported(match target.kind() {
                TargetKind::Everything => "level3 invalidates per network identifier and has no \
                                           purge-all: name each host with host:NAME"
                    .to_owned(),
                kind => format!("level3 does not support {kind} targets"),
            }));
        };
        if host.contains('*') {
            return Ok(Mapped::Unsupported(format!(
                "level3 purges one network identifier per request, and the wildcard host \
                 `{host}` names none: list each host instead"
            )));
        }
        let Some(ni) = self.network_identifier(host) else {
            return Ok(Mapped::Unsupported(format!(
                "the host `{host}` cannot be used as a Level 3 network identifier: map it to \
                 one in network_identifiers"
            )));
        };
        // A prefix is every path under its directory, a host every path at its NI: both are
        // exactly Level 3's trailing-`*` wildcard.
        let (kind, value) = match target.kind() {
            TargetKind::Prefix => (
                TargetKind::Pattern,
                wire_path(&format!("{}*", target.path_and_query().unwrap_or("/"))),
            ),
            TargetKind::Host => (TargetKind::Pattern, "/*".to_owned()),
            kind => (kind, wire_path(target.path_and_query().unwrap_or("/"))),
        };
        Ok(Mapped::Item(Item {
            kind,
            bytes: wire::path_element_len(&value),
            wildcard: kind == TargetKind::Pattern,
            value,
            scope: ni,
        }))
    }

    fn body_overhead(&self, _options: &Options) -> usize {
        wire::PATHS_OVERHEAD
    }

    fn encode(&self, batch: &Batch, options: &Options, now: SystemTime) -> Result<HttpRequest> {
        if batch.items.is_empty() || batch.items.len() > MAX_PATHS {
            return Err(Error::invalid(
                &batch.scope,
                format!(
                    "a Level 3 request carries 1 to {MAX_PATHS} paths (this batch has {})",
                    batch.items.len()
                ),
            ));
        }
        let (path, body) = if batch.scope == self.access_group_scope() {
            // Access-group scope: one property per network identifier, in batch order.
            let mut properties: Vec<(&str, Vec<&str>)> = Vec::new();
            for item in &batch.items {
                if !is_segment(&item.scope) {
                    return Err(Error::invalid(
                        &item.scope,
                        "not a Level 3 network identifier",
                    ));
                }
                match properties.iter_mut().find(|(ni, _)| *ni == item.scope) {
                    Some((_, paths)) => paths.push(&item.value),
                    None => properties.push((&item.scope, vec![&item.value])),
                }
            }
            (
                format!("{API_PREFIX}/{}", self.config.access_group),
                wire::properties_body(properties),
            )
        } else {
            (
                self.scope_path(&batch.scope)?,
                wire::paths_body(batch.items.iter().map(|i| i.value.as_str())),
            )
        };
        let mut query = Vec::new();
        if options.action == Action::Delete {
            query.push(("force", "true".to_owned()));
        }
        if options.ignore_case {
            query.push(("ignoreCase", "true".to_owned()));
        }
        if !options.notify.is_empty() {
            query.push(("notification", options.notify.join(",")));
        }
        self.signed(Method::POST, &path, &query, body.into_bytes(), now)
    }

    fn decode(&self, batch: &Batch, response: HttpResponse) -> Result<Accepted> {
        let invalidations = accepted_invalidations(response)?;
        let ids = ids_of(&invalidations, |_| true);
        accepted(&batch.scope, &ids)
    }

    fn decode_shared(
        &self,
        batch: &Batch,
        response: HttpResponse,
    ) -> Result<Vec<(String, Accepted)>> {
        let invalidations = accepted_invalidations(response)?;
        let mut out: Vec<(String, Accepted)> = Vec::new();
        for item in &batch.items {
            if out.iter().any(|(ni, _)| *ni == item.scope) {
                continue;
            }
            // Each property's network identifier, with its own invalidation id.
            let ids = ids_of(&invalidations, |ni| ni.eq_ignore_ascii_case(&item.scope));
            if ids.is_empty() {
                return Err(Error::protocol(format!(
                    "the access-group answer lists no invalidation for the network identifier \
                     `{}`",
                    item.scope
                )));
            }
            out.push((item.scope.clone(), accepted(&item.scope, &ids)?));
        }
        Ok(out)
    }

    fn encode_status(&self, handle: &Handle, now: SystemTime) -> Result<HttpRequest> {
        let (ni, id) = split_handle(handle)?;
        let path = self.scope_path(ni)?;
        self.signed(
            Method::GET,
            &path,
            &[("id", id.to_owned())],
            Vec::new(),
            now,
        )
    }

    /// The guide's status query for every invalidation of the service, `GET
    /// /invalidations/v1.0/{accessGroup}/{scid}` (no `id`): read-only, MPA-signed.
    fn auth_probe(&self, now: SystemTime) -> Result<AuthProbe> {
        let path = format!(
            "{API_PREFIX}/{}/{}",
            self.config.access_group, self.config.scid
        );
        let request = self.signed(Method::GET, &path, &[], Vec::new(), now)?;
        Ok(AuthProbe::Request(Box::new(request)))
    }

    /// A status list is accepted; any error is classified as a purge's would be.
    fn decode_auth_probe(&self, response: HttpResponse) -> Result<()> {
        if !response.status().is_success() {
            return Err(classify(&response));
        }
        let text = String::from_utf8_lossy(response.body());
        wire::parse_access_group(&text).map_err(|e| {
            Error::protocol(format!("HTTP {}: {e}{}", response.status(), snippet(&text)))
        })?;
        Ok(())
    }

    fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
        if !response.status().is_success() {
            return Err(classify(&response));
        }
        let (_, id) = split_handle(handle)?;
        let text = String::from_utf8_lossy(response.body());
        let invalidations = wire::parse_access_group(&text).map_err(|e| {
            Error::protocol(format!("HTTP {}: {e}{}", response.status(), snippet(&text)))
        })?;
        let inv = invalidations
            .iter()
            .find(|inv| inv.id == id.trim())
            .ok_or_else(|| {
                Error::protocol(format!(
                    "the status answer does not list invalidation `{id}`"
                ))
            })?;
        let raw = inv.percent_complete.as_deref().unwrap_or("");
        let percent = raw
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 100)
            .ok_or_else(|| {
                Error::protocol(format!(
                    "invalidation `{id}` has percentComplete `{raw}`, not 0 to 100"
                ))
            })?;
        Ok(Status {
            handle: handle.clone(),
            progress: if percent == 100 {
                Progress::Completed
            } else {
                Progress::Pending {
                    percent: Some(percent),
                }
            },
            detail: format!("{percent}%"),
            poll_after: None,
        })
    }

    fn redact(&self, request: &mut HttpRequest) {
        let redacted = format!("MPA {}:{REDACTED}", self.config.key_id);
        if let Some(value) = request.headers_mut().get_mut(header::AUTHORIZATION) {
            *value = HeaderValue::from_str(&redacted)
                .unwrap_or_else(|_| HeaderValue::from_static(REDACTED));
        }
    }
}

#[cfg(test)]
mod tests;
