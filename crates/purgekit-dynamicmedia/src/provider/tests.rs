//! Unit tests of the codec: exact envelopes (snapshots), sizes, mapping, redaction, decoding.

use std::time::{Duration, SystemTime};

use purgekit_core::http::{Response, StatusCode};
use purgekit_core::{
    Error, Handle, Progress, ProviderPurger, PurgeRequest, Purger, Secret, plan_provider,
};

use super::*;

fn config() -> DynamicMediaConfig {
    let mut config = DynamicMediaConfig::new("ops@example.com", "s3cret", "c|6", "JJEsquire");
    config.app_version = "1.2.3".into();
    config
}

fn provider() -> DynamicMedia {
    DynamicMedia::new(config()).unwrap()
}

/// The four URLs of Adobe's example request.
const EXAMPLE_URLS: [&str; 4] = [
    "http://s7d7.scene7.com/is/image/JJEsquire/11008047?$thumbnail$",
    "http://s7d7.scene7.com/is/image/JJEsquire/11008047?$product$",
    "http://s7d7.scene7.com/is/image/JJEsquire/11008047?$large$",
    "http://s7d7.scene7.com/is/image/JJEsquire/ImageSetConfigDefaults?req=userdata",
];

fn request(urls: &[&str]) -> PurgeRequest {
    urls.iter()
        .fold(PurgeRequest::builder(), |b, u| b.url(*u))
        .build()
        .unwrap()
}

/// Plans `urls` with `provider` and encodes the first batch.
fn encode_first(provider: &DynamicMedia, urls: &[&str]) -> (Batch, HttpRequest) {
    let request = request(urls);
    let plan = plan_provider("dm", provider, &request).unwrap();
    let batch = plan.batch(0, provider, &request).unwrap();
    let http = provider
        .encode(&batch, request.options(), SystemTime::UNIX_EPOCH)
        .unwrap();
    (batch, http)
}

fn body(http: &HttpRequest) -> &str {
    std::str::from_utf8(http.body()).unwrap()
}

fn response(status: u16, body: &str) -> HttpResponse {
    Response::builder()
        .status(status)
        .body(body.as_bytes().to_vec())
        .unwrap()
}

fn envelope(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>"
    )
}

fn fault(detail: &str) -> String {
    envelope(&format!(
        "<soapenv:Fault><faultcode>soapenv:Server.userException</faultcode>\
         <faultstring>fault</faultstring><detail>{detail}</detail></soapenv:Fault>"
    ))
}

#[test]
fn the_example_request_envelope() {
    let (batch, http) = encode_first(&provider(), &EXAMPLE_URLS);
    assert_eq!(http.method(), "POST");
    assert_eq!(
        http.uri().to_string(),
        "https://s7sps1apissl.scene7.com/scene7/services/IpsApiService"
    );
    assert_eq!(http.headers()["content-type"], "text/xml; charset=UTF-8");
    assert_eq!(http.headers()["soapaction"], "cdnCacheInvalidation");
    assert_eq!(http.body().len(), batch.bytes);
    insta::assert_snapshot!("cdn_cache_invalidation_2012", body(&http));
}

#[test]
fn everything_is_escaped_the_password_too() {
    let mut config = config();
    config.user = "a&b<c>@example.com".into();
    config.password = Secret::new("p&ss<word>");
    config.company_handle = "c|6&x".into();
    config.app_name = "app <name>".into();
    config.api_version = "2014-04-03".into();
    let provider = DynamicMedia::new(config).unwrap();
    let (batch, http) = encode_first(
        &provider,
        &["https://cdn.example.com/is/image/JJEsquire/a.jpg?wid=10&hei=20&fmt=<png>"],
    );
    assert_eq!(http.body().len(), batch.bytes);
    insta::assert_snapshot!("cdn_cache_invalidation_escaped", body(&http));
}

#[test]
fn the_status_envelope() {
    let http = provider()
        .encode_status(&Handle("c|6|1234&5".into()), SystemTime::UNIX_EPOCH)
        .unwrap();
    assert_eq!(
        http.headers()["soapaction"],
        "getCdnCacheInvalidationStatus"
    );
    insta::assert_snapshot!("get_cdn_cache_invalidation_status", body(&http));
}

#[test]
fn body_length_is_the_planned_bytes_for_every_batch() {
    let urls: Vec<String> = (0..2345)
        .map(|i| format!("https://s7d1.scene7.com/is/image/JJEsquire/img-{i}?a=1&b=<{i}>"))
        .collect();
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let provider = provider();
    let request = request(&refs);
    let plan = plan_provider("dm", &provider, &request).unwrap();
    let sizes: Vec<usize> = plan.batches().iter().map(|b| b.len()).collect();
    assert_eq!(sizes, [1000, 1000, 345]);
    for index in 0..plan.batches().len() {
        let batch = plan.batch(index, &provider, &request).unwrap();
        let http = provider
            .encode(&batch, request.options(), SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(http.body().len(), batch.bytes);
        assert_eq!(batch.bytes, plan.batches().at(index).bytes);
    }
}

#[test]
fn redact_removes_the_password_from_both_envelopes() {
    let mut config = config();
    config.password = Secret::new("p&ss<word>");
    let provider = DynamicMedia::new(config).unwrap();
    let (_, mut http) = encode_first(&provider, &EXAMPLE_URLS[..1]);
    let mut status = provider
        .encode_status(&Handle("h".into()), SystemTime::UNIX_EPOCH)
        .unwrap();
    for http in [&mut http, &mut status] {
        let before = body(http).to_owned();
        assert!(before.contains("<password>p&amp;ss&lt;word&gt;</password>"));
        provider.redact(http);
        let after = body(http);
        assert!(!after.contains("ss&lt;word"), "{after}");
        assert!(!after.contains("p&ss"), "{after}");
        assert!(
            after.contains("<password>&lt;redacted&gt;</password>"),
            "{after}"
        );
        assert_eq!(
            after.replace("<password>&lt;redacted&gt;</password>", ""),
            before.replace("<password>p&amp;ss&lt;word&gt;</password>", "")
        );
    }
}

#[test]
fn plan_output_has_no_password() {
    let purger = ProviderPurger::new("dm", provider());
    let plan = purger.plan(&request(&EXAMPLE_URLS)).unwrap();
    let text = format!("{plan:?}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("&lt;redacted&gt;"));
}

#[test]
fn a_url_outside_the_root_is_refused_naming_it() {
    let provider = provider();
    for url in [
        "http://s7d7.scene7.com/is/image/Other/11008047",
        "http://s7d7.scene7.com/is/image/JJEsquireX/a",
        "http://s7d7.scene7.com/is/image/jjesquire/a",
        "http://s7d7.scene7.com/is/image/a?company=JJEsquire",
        "http://JJEsquire.scene7.com/is/image/a",
    ] {
        let target = Target::url(url).unwrap();
        match provider.map(&target, &Options::default()) {
            Err(Error::InvalidInput { input, rule }) => {
                // Named as core normalised it (the host lower-cased).
                assert_eq!(input, url.replace("JJEsquire.", "jjesquire."));
                assert!(rule.contains("`JJEsquire`"), "{rule}");
            }
            other => panic!("{url}: expected an input error, got {other:?}"),
        }
    }
    for url in [
        "http://s7d7.scene7.com/is/image/JJEsquire",
        "https://images.example.com/is/content/JJEsquire/doc.pdf",
        "http://s7d7.scene7.com/e2/JJEsquire/x?$y$",
    ] {
        let target = Target::url(url).unwrap();
        assert!(matches!(
            provider.map(&target, &Options::default()),
            Ok(Mapped::Item(_))
        ));
    }
}

#[test]
fn unsupported_kinds_and_options_read_well() {
    let request = PurgeRequest::builder()
        .url(EXAMPLE_URLS[0])
        .pattern("http://s7d7.scene7.com/is/image/JJEsquire/*")
        .tag("home")
        .prefix("http://s7d7.scene7.com/is/image/JJEsquire/")
        .host("s7d7.scene7.com")
        .everything()
        .notify("ops@example.com")
        .build()
        .unwrap();
    let plan = plan_provider("dm", &provider(), &request).unwrap();
    let reasons: Vec<String> = plan.dispositions().map(|d| format!("{d:?}")).collect();
    assert!(reasons[1].contains("does not support wildcard pattern targets"));
    assert!(reasons[2].contains("does not support cache tag targets"));
    assert!(reasons[3].contains("does not support URL prefix targets"));
    assert!(reasons[4].contains("does not support host targets"));
    assert!(reasons[5].contains("does not support everything targets"));
    let Mapped::Unsupported(reason) = provider()
        .map(&Target::everything(), &Options::default())
        .unwrap()
    else {
        panic!("Adobe has no purge-all");
    };
    assert!(
        reason.contains("exact URLs only, not everything targets"),
        "{reason}"
    );
    assert_eq!(plan.warnings.len(), 1);
    assert!(plan.warnings[0].contains("`notify`"), "{:?}", plan.warnings);

    let delete = PurgeRequest::builder()
        .url(EXAMPLE_URLS[0])
        .delete()
        .build()
        .unwrap();
    let plan = plan_provider("dm", &provider(), &delete).unwrap();
    assert!(plan.batches().is_empty());
}

#[test]
fn limits_and_capabilities() {
    let limits = provider().limits();
    assert_eq!(limits.max_items, 1000);
    assert_eq!(limits.max_in_flight, 1);
    assert_eq!(limits.rate, purgekit_core::RateLimit::default());
    assert_eq!(provider().kind(), "dynamic-media");
    assert_eq!(provider().account(), "c|6");
}

#[test]
fn decodes_the_handle_shape() {
    let body = envelope(
        "<ns1:cdnCacheInvalidationReturn xmlns:ns1=\"http://www.scene7.com/IpsApi/xsd/2014-04-03\">\
         <ns1:invalidationHandle>c|6|987</ns1:invalidationHandle>\
         <ns1:estimatedSeconds>5</ns1:estimatedSeconds></ns1:cdnCacheInvalidationReturn>",
    );
    let (batch, _) = encode_first(&provider(), &EXAMPLE_URLS);
    let accepted = provider().decode(&batch, response(200, &body)).unwrap();
    assert_eq!(accepted.handle, Handle("c|6|987".into()));
    assert_eq!(accepted.poll_after, Some(Duration::from_secs(5)));
    assert!(accepted.warnings.is_empty());
}

#[test]
fn decodes_the_counts_shape() {
    let counts = |s: u32, w: u32, e: u32| {
        envelope(&format!(
            "<cdnCacheInvalidationReturn xmlns=\"http://www.scene7.com/IpsApi/xsd/2012-02-14\">\
             <successCount>{s}</successCount><warningCount>{w}</warningCount>\
             <errorCount>{e}</errorCount></cdnCacheInvalidationReturn>"
        ))
    };
    let provider = provider();
    let (batch, _) = encode_first(&provider, &EXAMPLE_URLS);
    let ok = provider
        .decode(&batch, response(200, &counts(4, 0, 0)))
        .unwrap();
    assert_eq!(ok.handle.as_str(), "counts:success=4,warning=0,error=0");
    assert_eq!(ok.poll_after, None);
    assert!(ok.warnings.is_empty());

    let partial = provider
        .decode(&batch, response(200, &counts(2, 1, 1)))
        .unwrap();
    assert_eq!(partial.warnings.len(), 1);
    assert!(partial.warnings[0].contains("1 warning(s) and 1 error(s)"));

    let none = provider
        .decode(&batch, response(200, &counts(0, 0, 4)))
        .unwrap_err();
    assert!(
        matches!(none, Error::Rejected { ref code, .. } if code == "errorCount"),
        "{none:?}"
    );

    let err = provider
        .encode_status(&ok.handle, SystemTime::UNIX_EPOCH)
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }));
    assert!(err.to_string().contains("no invalidation handle"), "{err}");
}

#[test]
fn faults_are_classified_with_500_and_with_200() {
    let provider = provider();
    let (batch, _) = encode_first(&provider, &EXAMPLE_URLS);
    let cases = [
        (
            "<authenticationFault xmlns=\"http://www.scene7.com/IpsApi/xsd\"><code>10001</code>\
             <reason>Invalid username/password</reason></authenticationFault>",
            "auth",
            "10001",
        ),
        (
            "<ns2:authorizationFault xmlns:ns2=\"http://www.scene7.com/IpsApi/xsd\">\
             <ns2:code>20003</ns2:code><ns2:reason>no permission</ns2:reason>\
             </ns2:authorizationFault>",
            "rejected",
            "20003",
        ),
        (
            "<ipsApiFault><code>30001</code><reason>URL not under root</reason></ipsApiFault>",
            "rejected",
            "30001",
        ),
    ];
    for status in [500, 200] {
        for (detail, kind, code) in cases {
            let err = provider
                .decode(&batch, response(status, &fault(detail)))
                .unwrap_err();
            assert_eq!(err.kind(), kind, "{status} {err}");
            assert!(err.to_string().contains(code), "{err}");
            assert!(!err.is_retryable());
        }
    }
    let rejected = provider
        .decode(&batch, response(500, &fault(cases[2].0)))
        .unwrap_err();
    assert_eq!(
        rejected,
        Error::rejected("30001", "ipsApiFault: URL not under root")
    );
}

#[test]
fn faults_without_ips_detail() {
    let provider = provider();
    let (batch, _) = encode_first(&provider, &EXAMPLE_URLS);
    let server = envelope(
        "<soapenv:Fault><faultcode>soapenv:Server</faultcode>\
         <faultstring>java.lang.NullPointerException</faultstring></soapenv:Fault>",
    );
    let err = provider.decode(&batch, response(500, &server)).unwrap_err();
    assert_eq!(err.kind(), "transient");
    let client = server.replace("soapenv:Server", "soapenv:Client");
    let err = provider.decode(&batch, response(500, &client)).unwrap_err();
    assert_eq!(err.kind(), "rejected");
}

#[test]
fn non_soap_answers() {
    let provider = provider();
    let (batch, _) = encode_first(&provider, &EXAMPLE_URLS);
    let kind =
        |status: u16, body: &str| provider.decode(&batch, response(status, body)).unwrap_err();
    assert_eq!(kind(200, "<<not a valid {response").kind(), "protocol");
    assert_eq!(kind(200, "<html><body>hi</body></html>").kind(), "protocol");
    assert_eq!(kind(200, "").kind(), "protocol");
    assert_eq!(kind(200, &envelope("<somethingElse/>")).kind(), "protocol");
    assert_eq!(kind(200, &envelope("")).kind(), "protocol");
    let truncated = envelope("<cdnCacheInvalidationReturn><successCount>4</successCount>");
    assert_eq!(
        kind(200, &truncated[..truncated.len() - 20]).kind(),
        "protocol"
    );
    let bad_count = envelope(
        "<cdnCacheInvalidationReturn><successCount>four</successCount></cdnCacheInvalidationReturn>",
    );
    assert_eq!(kind(200, &bad_count).kind(), "protocol");
    assert_eq!(kind(503, "").kind(), "transient");
    assert_eq!(kind(502, "<html>bad gateway</html>").kind(), "transient");
    assert_eq!(kind(429, "").kind(), "rate_limited");
    assert_eq!(kind(404, "not found").kind(), "rejected");

    let with_retry = Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header("retry-after", "7")
        .body(Vec::new())
        .unwrap();
    let err = provider.decode(&batch, with_retry).unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[test]
fn decodes_status() {
    let provider = provider();
    let handle = Handle("c|6|987".into());
    let status = |inner: &str| {
        provider.decode_status(
            &handle,
            response(
                200,
                &envelope(&format!(
                    "<getCdnCacheInvalidationStatusReturn xmlns=\"http://www.scene7.com/IpsApi/xsd/2014-04-03\">\
                     {inner}</getCdnCacheInvalidationStatusReturn>"
                )),
            ),
        )
    };
    let pending =
        status("<status>In-Progress</status><pingAfterSeconds>3</pingAfterSeconds>").unwrap();
    assert_eq!(pending.progress, Progress::Pending { percent: None });
    assert_eq!(pending.poll_after, Some(Duration::from_secs(3)));
    assert_eq!(pending.detail, "In-Progress");
    let done = status("<status>Done</status><completionTime>2024-05-01T10:00:05Z</completionTime>")
        .unwrap();
    assert_eq!(done.progress, Progress::Completed);
    assert_eq!(done.detail, "Done (completed 2024-05-01T10:00:05Z)");
    assert_eq!(
        status("<status>Failed</status>").unwrap().progress,
        Progress::Failed
    );
    assert_eq!(status("").unwrap_err().kind(), "protocol");
    let auth = provider
        .decode_status(
            &handle,
            response(
                500,
                &fault("<authenticationFault><code>10001</code><reason>bad</reason></authenticationFault>"),
            ),
        )
        .unwrap_err();
    assert_eq!(auth.kind(), "auth");
}

#[test]
fn config_errors_surface_from_new() {
    let mut config = config();
    config.company_root = String::new();
    assert!(matches!(
        DynamicMedia::new(config),
        Err(Error::Config { ref field, .. }) if field == "company_root"
    ));
}

#[test]
fn the_credentials_check_asks_a_status_and_reads_faults_by_kind() {
    let provider = provider();
    let AuthProbe::Request(http) = provider.auth_probe(SystemTime::UNIX_EPOCH).unwrap() else {
        panic!("Dynamic Media has a probe");
    };
    assert_eq!(
        http.headers()["SOAPAction"],
        "getCdnCacheInvalidationStatus"
    );
    assert!(
        body(&http).contains("<invalidationHandle>purgekit-credentials-check</invalidationHandle>")
    );
    let read = |detail: &str| provider.decode_auth_probe(response(500, &fault(detail)));
    // Past authentication: IPS faults the unknown handle.
    assert_eq!(
        read("<ipsApiFault><code>30001</code><reason>no such handle</reason></ipsApiFault>"),
        Ok(())
    );
    let refused = read(
        "<authenticationFault xmlns=\"http://www.scene7.com/IpsApi/xsd\"><code>10001</code>\
         <reason>Invalid username/password</reason></authenticationFault>",
    )
    .unwrap_err();
    assert_eq!(refused.kind(), "auth", "{refused}");
    let not_allowed = read(
        "<authorizationFault xmlns=\"http://www.scene7.com/IpsApi/xsd\"><code>20003</code>\
         <reason>no permission</reason></authorizationFault>",
    )
    .unwrap_err();
    assert_eq!(not_allowed.kind(), "auth", "{not_allowed}");
    assert!(not_allowed.to_string().contains("20003"), "{not_allowed}");
    assert!(!not_allowed.to_string().contains("s3cr3t"));
    let garbage = provider
        .decode_auth_probe(response(200, "not soap"))
        .unwrap_err();
    assert_eq!(garbage.kind(), "protocol", "{garbage}");
}
