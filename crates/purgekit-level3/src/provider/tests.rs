//! The codec against the vectors, exact bodies (snapshots), mapping and the decoders.
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
        id: Default::default(),
        scope: items[0].scope.clone(),
        bytes: wire::PATHS_OVERHEAD + items.iter().map(|i| i.bytes).sum::<usize>(),
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
    assert!(unsupported("https://*.example.com/a.jpg").contains("wildcard host `*.example.com`"));
    assert!(unsupported("https://[::1]/a.jpg").contains("network_identifiers"));
    // A Unicode host reaches the provider in punycode (core's normalisation), which can
    // stand as a network identifier.
    assert_eq!(
        item("https://b\u{fc}cher.example/a.jpg").scope,
        "xn--bcher-kva.example"
    );
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
    assert_eq!(plan.batches().len(), 1);
    let batch = plan.batch(0, &l3, &request).unwrap();
    let http = l3.encode(&batch, request.options(), vector_now()).unwrap();
    assert_eq!(plan.batches().at(0).bytes, http.body().len());
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

#[test]
fn several_hosts_share_one_access_group_request() {
    // The Lumen document's Example 3: two properties, one with two paths; Example 4's wildcard
    // in each of two properties rides along.
    let request = PurgeRequest::builder()
        .url("https://exampleproperty1/example1.jpg")
        .url("https://exampleproperty1/example2.jpg")
        .url("https://exampleproperty2/example3.jpg")
        .target(Target::parse("host:exampleproperty3").unwrap())
        .ignore_case()
        .delete()
        .build()
        .unwrap();
    let l3 = level3();
    let plan = plan_provider("l3", &l3, &request).unwrap();
    assert_eq!(plan.batches().len(), 1);
    assert_eq!(plan.batches().at(0).scope, "access-group:12345");
    let batch = plan.batch(0, &l3, &request).unwrap();
    let http = l3.encode(&batch, request.options(), vector_now()).unwrap();
    // The planned size is the body's, envelope and properties included.
    assert_eq!(plan.batches().at(0).bytes, http.body().len());
    // The signed path is the access-group path.
    assert_eq!(http.uri().path(), "/invalidations/v1.0/12345");
    let to_sign = sign::string_to_sign(
        "Tue, 20 Jul 2010 08:49:37 GMT",
        "/invalidations/v1.0/12345",
        "text/xml",
        "POST",
        "",
    );
    assert_eq!(
        http.headers()[header::AUTHORIZATION],
        sign::authorization("10042", &sign::signature(&"secret".into(), &to_sign)).as_str()
    );
    insta::assert_snapshot!("post_access_group", render(&http));
}

#[test]
fn the_access_group_answer_gives_each_network_identifier_its_handle() {
    let l3 = level3();
    let b = Batch {
        id: Default::default(),
        scope: "access-group:12345".into(),
        items: vec![
            item("https://exampleproperty1/example1.jpg"),
            item("https://exampleproperty2/example2.jpg"),
        ],
        bytes: 0,
    };
    // Example 4's answer, line breaks removed.
    let body = r#"<accessGroup id="12345" name="Lumen - Internal Provisioning CDN" xsi:noNamespaceSchemaLocation= "https://ws.lumen.com/schema/invalidations/v1.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<apiCorrelationId>CDNPortal-1295374895751-0173</apiCorrelationId><serviceResource>/12345</serviceResource>
<networkIdentifiers><ni id="exampleproperty1"><serviceResource>/12345/BBBN56789/www.lumentest.com
</serviceResource><product>CACHING</product><invalidations><invalidation id="DAG_12345/9774@12345-21470-1295374897118"
path="/example*.jpg"/></invalidations></ni><ni id="exampleproperty2"><serviceResource>/12345/BBBN56789/cdn.lumen.com
</serviceResource><product>CACHING</product><invalidations><invalidation id="DAG_12345/9774@12345-13776-1295374897118"
path="/example*.jpg"/></invalidations></ni></networkIdentifiers></accessGroup>"#;
    let got = l3.decode_shared(&b, response(200, body)).unwrap();
    let handles: Vec<(&str, &str)> = got
        .iter()
        .map(|(ni, a)| (ni.as_str(), a.handle.as_str()))
        .collect();
    assert_eq!(
        handles,
        [
            (
                "exampleproperty1",
                "exampleproperty1/DAG_12345/9774@12345-21470-1295374897118"
            ),
            (
                "exampleproperty2",
                "exampleproperty2/DAG_12345/9774@12345-13776-1295374897118"
            ),
        ]
    );
    // A property the answer leaves out is a protocol error, not a borrowed handle.
    let missing = body.replace("exampleproperty2", "someoneelse");
    let err = l3.decode_shared(&b, response(200, &missing)).unwrap_err();
    assert!(err.to_string().contains("exampleproperty2"), "{err}");
}
