//! [`Level3`]: the Level 3 / Lumen invalidation API as a [`Provider`] codec.

use std::collections::BTreeMap;
use std::time::SystemTime;

use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
use purgekit_core::http::{self, HeaderValue, Method, header};
use purgekit_core::{
    Accepted, Action, Batch, Budget, Capabilities, Error, Handle, HttpRequest, HttpResponse, Item,
    Limits, Mapped, OptionKind, Options, Progress, Provider, REDACTED, RateLimit, Result, Status,
    Target, TargetKind,
};

use crate::config::{Level3Config, is_segment};
use crate::decode::{classify, snippet};
use crate::sign;
use crate::xml;

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

impl TryFrom<Level3Config> for Level3 {
    type Error = Error;

    /// [`Level3::new`]: how the registry builds the provider from its config table.
    fn try_from(config: Level3Config) -> Result<Self> {
        Level3::new(config)
    }
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
        let host = host.to_ascii_lowercase();
        match self.hosts.get(&host) {
            Some(ni) => Some(ni.clone()),
            None => is_segment(&host).then_some(host),
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
    utf8_percent_encode(path_and_query, CONTROLS).to_string()
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
            bytes: xml::path_element(&value).len(),
            wildcard: kind == TargetKind::Pattern,
            value,
            scope: ni,
        }))
    }

    fn body_overhead(&self, _options: &Options) -> usize {
        xml::PATHS_OVERHEAD
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
        let path = self.scope_path(&batch.scope)?;
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
        let body = xml::paths_body(batch.items.iter().map(|i| i.value.as_str()));
        self.signed(Method::POST, &path, &query, body.into_bytes(), now)
    }

    fn decode(&self, batch: &Batch, response: HttpResponse) -> Result<Accepted> {
        if !response.status().is_success() {
            return Err(classify(&response));
        }
        let text = String::from_utf8_lossy(response.body());
        let invalidations = xml::parse_access_group(&text).map_err(|e| {
            Error::protocol(format!("HTTP {}: {e}{}", response.status(), snippet(&text)))
        })?;
        let mut ids: Vec<&str> = Vec::new();
        for inv in &invalidations {
            if !inv.id.is_empty() && !ids.contains(&inv.id.as_str()) {
                ids.push(&inv.id);
            }
        }
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
            handle: Handle(format!("{}/{first}", batch.scope)),
            poll_after: None,
            warnings,
        })
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

    fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
        if !response.status().is_success() {
            return Err(classify(&response));
        }
        let (_, id) = split_handle(handle)?;
        let text = String::from_utf8_lossy(response.body());
        let invalidations = xml::parse_access_group(&text).map_err(|e| {
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
mod tests {
    use super::*;
    use purgekit_core::{PurgeRequest, plan_provider};
    use std::time::{Duration, UNIX_EPOCH};

    /// 2010-07-20T08:49:37Z, the MPA vectors' date.
    fn vector_now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_279_615_777)
    }

    fn level3() -> Level3 {
        let mut config = Level3Config::new("10042", "secret", "12345", "BBBN56789");
        config
            .network_identifiers
            .insert("WWW.Example.com".into(), "cdn.exampleni.com".into());
        Level3::new(config).unwrap()
    }

    fn item(target: &str) -> Item {
        match level3()
            .map(&Target::parse(target).unwrap(), &Options::default())
            .unwrap()
        {
            Mapped::Item(item) => item,
            Mapped::Unsupported(reason) => panic!("{target}: {reason}"),
        }
    }

    fn unsupported(target: &str) -> String {
        match level3()
            .map(&Target::parse(target).unwrap(), &Options::default())
            .unwrap()
        {
            Mapped::Unsupported(reason) => reason,
            Mapped::Item(item) => panic!("{target} mapped to {item:?}"),
        }
    }

    fn batch(items: Vec<Item>) -> Batch {
        Batch {
            scope: items[0].scope.clone(),
            bytes: xml::PATHS_OVERHEAD + items.iter().map(|i| i.bytes).sum::<usize>(),
            items,
        }
    }

    /// The request as text: request line, headers in order, blank line, body.
    fn render(request: &HttpRequest) -> String {
        let mut out = format!("{} {}\n", request.method(), request.uri());
        for (name, value) in request.headers() {
            out.push_str(&format!("{name}: {}\n", value.to_str().unwrap()));
        }
        out.push('\n');
        out.push_str(std::str::from_utf8(request.body()).unwrap());
        out
    }

    fn response(status: u16, body: &str) -> HttpResponse {
        http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn prefix_and_host_map_to_exact_wildcards_and_everything_is_unsupported() {
        let p = item("prefix:https://www.example.com/img/a%20b/");
        assert_eq!(
            (p.scope.as_str(), p.value.as_str(), p.kind, p.wildcard),
            (
                "cdn.exampleni.com",
                "/img/a%20b/*",
                TargetKind::Pattern,
                true
            )
        );
        let root = item("prefix:https://other.example.org/");
        assert_eq!(
            (root.scope.as_str(), root.value.as_str()),
            ("other.example.org", "/*")
        );
        let h = item("host:www.example.com");
        assert_eq!(
            (h.scope.as_str(), h.value.as_str(), h.wildcard),
            ("cdn.exampleni.com", "/*", true)
        );
        // The same purge written two ways is one path on the wire.
        assert_eq!(item("prefix:https://www.example.com/"), h);
        let reason = unsupported("everything");
        assert!(
            reason.contains("no purge-all") && reason.contains("host:NAME"),
            "{reason}"
        );
        let caps = level3().capabilities();
        assert!(caps.supports_target(TargetKind::Prefix) && caps.supports_target(TargetKind::Host));
    }

    #[test]
    fn maps_urls_to_network_identifier_and_path() {
        let i = item("https://Cdn.Example.org:8443/a/b.jpg?v=1&w=2");
        assert_eq!(i.scope, "cdn.example.org");
        assert_eq!(i.value, "/a/b.jpg?v=1&w=2");
        assert!(!i.wildcard);
        assert_eq!(i.bytes, "<path>/a/b.jpg?v=1&amp;w=2</path>".len());
        // The configured map wins, matched case-insensitively.
        assert_eq!(item("https://www.example.com/x").scope, "cdn.exampleni.com");
        // No path: `/`.
        assert_eq!(item("https://a.example").value, "/");
    }

    #[test]
    fn non_ascii_is_percent_encoded() {
        let i = item("https://a.example/caf\u{e9}/\u{1f600}.png?q=\u{fc}");
        assert_eq!(i.value, "/caf%C3%A9/%F0%9F%98%80.png?q=%C3%BC");
    }

    #[test]
    fn patterns_are_wildcards_on_their_host() {
        let i = item("https://a.example/images/*.jpg");
        assert!(i.wildcard);
        assert_eq!(
            (i.scope.as_str(), i.value.as_str()),
            ("a.example", "/images/*.jpg")
        );
    }

    #[test]
    fn hosts_that_cannot_name_an_ni_are_unsupported() {
        assert!(
            unsupported("https://*.example.com/a.jpg").contains("wildcard host `*.example.com`")
        );
        assert!(unsupported("https://[::1]/a.jpg").contains("network_identifiers"));
        assert!(unsupported("https://b\u{fc}cher.example/a.jpg").contains("network_identifiers"));
    }

    #[test]
    fn limits_and_capabilities_are_the_documented_ones() {
        let l = level3().limits();
        assert_eq!(
            (
                l.max_items,
                l.wildcard_alone,
                l.group_by_scope,
                l.max_in_flight
            ),
            (200, true, true, 2)
        );
        assert_eq!(l.rate.requests, Some(Budget::per_minute(10)));
        let mut config = level3().config().clone();
        let rate = RateLimit {
            requests: Some(Budget::new(3, Duration::from_secs(1))),
            items: None,
        };
        config.rate_limit = Some(rate);
        assert_eq!(Level3::new(config).unwrap().limits().rate, rate);
        let caps = level3().capabilities();
        assert!(!caps.supports_target(TargetKind::Tag));
        assert!(!caps.supports_option(OptionKind::Callback));
        assert!(caps.supports_option(OptionKind::Notify));
    }

    #[test]
    fn notification_list_is_at_most_250_characters() {
        let email = |i: usize| format!("{}{i:03}@example.com", "x".repeat(20)); // 35 chars
        let ok: Vec<String> = (0..7).map(email).collect(); // 7*35 + 6 = 251
        let mut options = Options {
            notify: ok[..6].to_vec(),
            ..Options::default()
        };
        level3().check_options(&options).unwrap();
        options.notify = ok.clone();
        match level3().check_options(&options).unwrap_err() {
            Error::InvalidInput { input, rule } => {
                assert_eq!(input, ok.join(","));
                assert!(
                    rule.contains("at most 250") && rule.contains("251"),
                    "{rule}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn encodes_the_first_vector_exactly() {
        let l3 = level3();
        let b = batch(vec![item("https://www.example.com/images/a.jpg")]);
        let request = l3.encode(&b, &Options::default(), vector_now()).unwrap();
        // The same string to sign as the published vector, so the same signature.
        assert_eq!(
            sign::string_to_sign(
                "Tue, 20 Jul 2010 08:49:37 GMT",
                request.uri().path(),
                "text/xml",
                "POST",
                ""
            ),
            "Tue, 20 Jul 2010 08:49:37 GMT\n/invalidations/v1.0/12345/BBBN56789/cdn.exampleni.com\ntext/xml\nPOST\n"
        );
        assert_eq!(
            request.headers()[header::AUTHORIZATION],
            "MPA 10042:BL0TrvhAYloZuvmVZdhnimDHrBA="
        );
        insta::assert_snapshot!("post_plain", render(&request));
    }

    #[test]
    fn encodes_options_and_escapes_paths() {
        let request = PurgeRequest::builder()
            .url("https://www.example.com/q?a=1&b='x'")
            .url("https://www.example.com/caf\u{e9}.css")
            .url("https://www.example.com/<odd>\"name\"")
            .delete()
            .ignore_case()
            .notify("ops+cdn@example.com")
            .notify("web@example.org")
            .build()
            .unwrap();
        let l3 = level3();
        let plan = plan_provider("l3", &l3, &request).unwrap();
        assert_eq!(plan.batches.len(), 1);
        let batch = plan.batch(0, &l3, &request).unwrap();
        let http = l3.encode(&batch, request.options(), vector_now()).unwrap();
        assert_eq!(plan.batches[0].bytes, http.body().len());
        insta::assert_snapshot!("post_options", render(&http));
    }

    #[test]
    fn status_request_is_built_from_the_handle() {
        let handle = Handle("cdn.exampleni.com/DAG_12345/9774@12345-13776-1295374897118".into());
        let request = level3().encode_status(&handle, vector_now()).unwrap();
        insta::assert_snapshot!("status_get", render(&request));
        for bad in ["no-slash", "/id", "bad ni/id", "ni/ "] {
            let err = level3()
                .encode_status(&Handle(bad.into()), vector_now())
                .unwrap_err();
            assert_eq!(err.kind(), "invalid_input", "{bad}");
        }
    }

    #[test]
    fn redact_removes_the_signature() {
        let l3 = level3();
        let b = batch(vec![item("https://www.example.com/a.jpg")]);
        let mut request = l3.encode(&b, &Options::default(), vector_now()).unwrap();
        let signature = "BL0TrvhAYloZuvmVZdhnimDHrBA=";
        assert!(render(&request).contains(signature));
        l3.redact(&mut request);
        let shown = render(&request);
        assert!(!shown.contains(signature), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(
            shown.contains("authorization: MPA 10042:<redacted>"),
            "{shown}"
        );
        assert!(!format!("{l3:?}").contains("\"secret\""));
    }

    #[test]
    fn decodes_the_access_group_answer_into_a_handle() {
        let b = batch(vec![
            item("https://a.example/x"),
            item("https://a.example/y"),
        ]);
        let body = r#"<?xml version="1.0" encoding="UTF-8"?><accessGroup id="12345" name="g"><services><service id="BBBN56789"><networkIdentifiers><ni id="a.example"><invalidations><invalidation id="DAG_12345/1@12345-1-2" path="/x"/><invalidation id="DAG_12345/1@12345-1-2" path="/y"/></invalidations></ni></networkIdentifiers></service></services></accessGroup>"#;
        let accepted = level3().decode(&b, response(200, body)).unwrap();
        assert_eq!(accepted.handle.as_str(), "a.example/DAG_12345/1@12345-1-2");
        assert!(accepted.warnings.is_empty());
        let err = level3()
            .decode(&b, response(200, "<accessGroup id=\"1\"/>"))
            .unwrap_err();
        assert_eq!(err.kind(), "protocol");
        let err = level3().decode(&b, response(200, "<<nope")).unwrap_err();
        assert_eq!(err.kind(), "protocol");
        let err = level3().decode(&b, response(403, "")).unwrap_err();
        assert_eq!(err.kind(), "auth");
    }

    #[test]
    fn decodes_status() {
        let handle = Handle("a.example/ID-1".into());
        let body = |p: &str| {
            format!(
                "<accessGroup><services><service><networkIdentifiers><ni id=\"a.example\">\
                 <invalidations><invalidation id=\"ID-0\" percentComplete=\"100\"/>\
                 <invalidation id=\"ID-1\" percentComplete=\"{p}\"><paths><path>/x</path>\
                 </paths></invalidation></invalidations></ni></networkIdentifiers></service>\
                 </services></accessGroup>"
            )
        };
        let s = level3()
            .decode_status(&handle, response(200, &body("55")))
            .unwrap();
        assert_eq!(s.progress, Progress::Pending { percent: Some(55) });
        assert_eq!(s.detail, "55%");
        let s = level3()
            .decode_status(&handle, response(200, &body("100")))
            .unwrap();
        assert_eq!(s.progress, Progress::Completed);
        for bad in ["", "101", "half"] {
            let e = level3()
                .decode_status(&handle, response(200, &body(bad)))
                .unwrap_err();
            assert_eq!(e.kind(), "protocol", "{bad}");
        }
        let other = Handle("a.example/ID-9".into());
        let e = level3()
            .decode_status(&other, response(200, &body("5")))
            .unwrap_err();
        assert!(e.to_string().contains("ID-9"), "{e}");
    }
}
