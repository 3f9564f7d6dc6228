//! The codec against the published vectors, exact bodies (snapshots) and the decoders.

use std::time::{Duration, SystemTime};

use purgekit_core::{
    Disposition, Error, Handle, Progress, Provider, PurgeRequest, REDACTED, http, plan_provider,
};

use super::*;

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn vector_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_415_994_226_253)
}

fn provider() -> Limelight {
    let mut config = LimelightConfig::new("example", "exampleuser", KEY);
    config
        .origins
        .insert("cdn.example.com".into(), "origin.example.com".into());
    config.origins.insert(
        "static.example.com".into(),
        "http://files.example.net:8080".into(),
    );
    Limelight::new(config).unwrap()
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> &'a str {
    request.headers()[name].to_str().unwrap()
}

/// Plans `request` and encodes every batch at the vector time.
fn encode_all(p: &Limelight, request: &PurgeRequest) -> Vec<HttpRequest> {
    let plan = plan_provider("ll", p, request).unwrap();
    (0..plan.batches().len())
        .map(|i| {
            let batch = plan.batch(i, p, request).unwrap();
            p.encode(&batch, request.options(), vector_time()).unwrap()
        })
        .collect()
}

fn body_of(request: &HttpRequest) -> &str {
    std::str::from_utf8(request.body()).unwrap()
}

#[test]
fn vector_1_submit_is_reproduced_by_encode() {
    let request = PurgeRequest::builder()
        .pattern("http://*.example.com/images/*")
        .build()
        .unwrap();
    let [http] = encode_all(&provider(), &request).try_into().unwrap();
    assert_eq!(http.method(), "POST");
    assert_eq!(
        http.uri(),
        "https://apis.llnw.com/purge/v1/account/example/requests"
    );
    assert_eq!(
        body_of(&http),
        r#"{"patterns":[{"pattern":"http://*.example.com/images/*","evict":false,"exact":false,"incqs":false}]}"#
    );
    let headers: Vec<(&str, &str)> = http
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    assert_eq!(
        headers,
        [
            ("content-type", "application/json"),
            ("x-llnw-security-principal", "exampleuser"),
            ("x-llnw-security-timestamp", "1415994226253"),
            (
                "x-llnw-security-token",
                "e75123b6b59fb5bea1e9923403c67eba28a1c2997862291ad1a4edb07c2a0f95"
            ),
        ]
    );
}

#[test]
fn vector_2_list_is_reproduced_by_encode_list() {
    let query = ListQuery {
        limit: Some(10),
        offset: Some(0),
        ..ListQuery::default()
    };
    let http = provider().encode_list(&query, vector_time()).unwrap();
    assert_eq!(http.method(), "GET");
    assert_eq!(
        http.uri(),
        "https://apis.llnw.com/purge/v1/account/example/requests?limit=10&offset=0"
    );
    assert!(http.body().is_empty());
    assert_eq!(
        header(&http, TOKEN_HEADER),
        "0a8e3835a79c3a74bcb58c46dc8b9d8316a953472fcc9d551b837444daae5869"
    );
}

#[test]
fn vector_3_status_is_reproduced_by_encode_status() {
    let handle = Handle("8c1a86546c3611e49c633a03000021e9".into());
    let http = provider().encode_status(&handle, vector_time()).unwrap();
    assert_eq!(
        http.uri(),
        "https://apis.llnw.com/purge/v1/account/example/requests/8c1a86546c3611e49c633a03000021e9"
    );
    assert_eq!(
        header(&http, TOKEN_HEADER),
        "1b751d42fdc0cba78edd0322ae621ebcaddc5b0b7c0892e45fbd07dd5c5e70cc"
    );
}

#[test]
fn body_with_every_kind_and_option() {
    let request = PurgeRequest::builder()
        .url("https://cdn.example.com/app.js?v=3")
        .pattern("https://cdn.example.com/img/*")
        .pattern("https://static.example.com:8443/css/*.css")
        .pattern("https://other.example.com/*")
        .tag("product-42")
        .tag("home\"page")
        .delete()
        .include_query()
        .notify("ops@example.com")
        .notify("cdn@example.com")
        .callback("https://hooks.example.com/purged")
        .note("release 42\nrolled by CI")
        .dry_run()
        .build()
        .unwrap();
    let [http] = encode_all(&provider(), &request).try_into().unwrap();
    insta::assert_snapshot!("every_kind_and_option", body_of(&http));
}

#[test]
fn body_of_tags_only() {
    let request = PurgeRequest::builder().tag("a").tag("b").build().unwrap();
    let [http] = encode_all(&provider(), &request).try_into().unwrap();
    insta::assert_snapshot!("tags_only", body_of(&http));
}

#[test]
fn exact_urls_keep_the_public_host_and_patterns_move_to_the_origin() {
    let p = provider();
    assert_eq!(
        p.wire_pattern("https://CDN.example.com:8443/img/*"),
        "https://origin.example.com/img/*"
    );
    assert_eq!(
        p.wire_pattern("https://static.example.com/a/*?x=1"),
        "http://files.example.net:8080/a/*?x=1"
    );
    assert_eq!(
        p.wire_pattern("https://unmapped.example.com/*"),
        "https://unmapped.example.com/*"
    );
    let target = purgekit_core::Target::url("https://cdn.example.com/a.js").unwrap();
    let Mapped::Item(item) = p.map(&target, &Options::default()).unwrap() else {
        panic!("an exact URL maps to an item");
    };
    assert_eq!(item.value, "https://cdn.example.com/a.js");
}

#[test]
fn prefix_and_host_become_origin_patterns_and_everything_is_unsupported() {
    let p = provider();
    let map = |text: &str| {
        p.map(
            &purgekit_core::Target::parse(text).unwrap(),
            &Options::default(),
        )
        .unwrap()
    };
    let item = |text: &str| match map(text) {
        Mapped::Item(item) => item,
        Mapped::Unsupported(reason) => panic!("{text}: {reason}"),
    };
    let prefix = item("prefix:https://cdn.example.com/img/");
    assert_eq!(
        (prefix.value.as_str(), prefix.kind, prefix.wildcard),
        (
            "https://origin.example.com/img/*",
            TargetKind::Pattern,
            true
        )
    );
    // Both schemes: `*` matches any characters, so `http*://` is exactly http and https.
    assert_eq!(
        item("host:unmapped.example.com").value,
        "http*://unmapped.example.com/*"
    );
    assert_eq!(
        item("host:cdn.example.com").value,
        "http*://origin.example.com/*"
    );
    assert_eq!(
        item("host:static.example.com").value,
        "http://files.example.net:8080/*"
    );
    // A prefix and the pattern it stands for are one entry on the wire.
    assert_eq!(
        item("prefix:https://cdn.example.com/img/"),
        item("https://cdn.example.com/img/*")
    );
    let Mapped::Unsupported(reason) = map("everything") else {
        panic!("everything has no SmartPurge form");
    };
    assert!(reason.contains("no account-wide purge"), "{reason}");
}

#[test]
fn over_long_pattern_and_tag_are_input_errors_naming_them() {
    let p = provider();
    let long = format!("https://cdn.example.com/{}*", "p".repeat(5000));
    let err = p
        .map(
            &purgekit_core::Target::pattern(&long).unwrap(),
            &Options::default(),
        )
        .unwrap_err();
    let Error::InvalidInput { input, rule } = err else {
        panic!("expected invalid input");
    };
    assert!(input.starts_with("https://cdn.example.com/ppp"), "{input}");
    assert!(rule.contains("at most 4096 characters"), "{rule}");
    let tag = "t".repeat(257);
    let err = p
        .map(
            &purgekit_core::Target::tag(&tag).unwrap(),
            &Options::default(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("at most 256 characters (this one has 257)"),
        "{err}"
    );
    let ok = "t".repeat(256);
    assert!(
        p.map(
            &purgekit_core::Target::tag(&ok).unwrap(),
            &Options::default()
        )
        .is_ok()
    );
}

#[test]
fn ignore_case_makes_every_target_unsupported_before_sending() {
    let request = PurgeRequest::builder()
        .url("https://cdn.example.com/a.js")
        .tag("x")
        .ignore_case()
        .build()
        .unwrap();
    let plan = plan_provider("ll", &provider(), &request).unwrap();
    assert!(plan.batches().is_empty());
    for d in plan.dispositions() {
        assert!(
            matches!(&d, Disposition::Unsupported { reason } if reason.contains("ignore-case")),
            "{d:?}"
        );
    }
}

#[test]
fn counted_bytes_bound_every_body_and_long_patterns_split_on_bytes() {
    // 90 patterns of ~400 bytes: under 100 items, over 32 000 bytes.
    let mut builder = PurgeRequest::builder();
    for i in 0..90 {
        builder = builder.pattern(format!(
            "https://cdn.example.com/{i:03}/{}/*",
            "x".repeat(380)
        ));
    }
    let request = builder.tag("t1").notify("ops@example.com").build().unwrap();
    let p = provider();
    let plan = plan_provider("ll", &p, &request).unwrap();
    assert_eq!(plan.batches().len(), 2, "split on bytes, not items");
    for index in 0..plan.batches().len() {
        let batch = plan.batch(index, &p, &request).unwrap();
        assert!(batch.bytes <= MAX_BODY_BYTES);
        let http = p.encode(&batch, request.options(), vector_time()).unwrap();
        let has_tags = batch.items.iter().any(|i| i.kind == TargetKind::Tag);
        let has_patterns = batch.items.iter().any(|i| i.kind != TargetKind::Tag);
        let unused = match (has_patterns, has_tags) {
            (true, true) => 0,
            (true, false) => 9,
            (false, true) => 13,
            (false, false) => unreachable!(),
        };
        assert_eq!(http.body().len() + unused, batch.bytes);
    }
    // The first batch is full to within one pattern of the limit.
    let first = plan.batch(0, &p, &request).unwrap();
    assert!(first.bytes + first.items[0].bytes > MAX_BODY_BYTES);
}

#[test]
fn redact_removes_the_token_and_nothing_carries_the_key() {
    let request = PurgeRequest::builder()
        .url("https://cdn.example.com/a.js")
        .build()
        .unwrap();
    let [mut http] = encode_all(&provider(), &request).try_into().unwrap();
    let token = header(&http, TOKEN_HEADER).to_owned();
    provider().redact(&mut http);
    assert_eq!(header(&http, TOKEN_HEADER), REDACTED);
    let everything = format!("{:?} {}", http.headers(), body_of(&http));
    assert!(!everything.contains(&token));
    assert!(!everything.contains(KEY) && !everything.contains(&KEY[..16]));
    assert!(!format!("{:?}", provider()).contains(&KEY[..16]));
}

#[test]
fn translate_and_list_queries_are_encoded_and_checked() {
    let p = provider();
    // The URL as core normalises it (`é` → `%C3%A9`), then encoded as a query value.
    let http = p
        .encode_translate(
            "http://shortname.vo.llnwd.net/to/translate?a=1&b=é",
            vector_time(),
        )
        .unwrap();
    assert_eq!(
        http.uri(),
        "https://apis.llnw.com/purge/v1/account/example/translate?url=http://shortname.vo.llnwd.net/to/translate%3Fa%3D1%26b%3D%25C3%25A9"
    );
    assert!(p.encode_translate("not a url", vector_time()).is_err());
    let all = ListQuery {
        start_ts: Some(1),
        end_ts: Some(2),
        limit: Some(100),
        offset: Some(5000),
        order: Some(Order::Asc),
    };
    assert_eq!(
        all.to_query().unwrap(),
        "start_ts=1&end_ts=2&limit=100&offset=5000&order=asc"
    );
    for bad in [
        ListQuery {
            limit: Some(0),
            ..ListQuery::default()
        },
        ListQuery {
            limit: Some(101),
            ..ListQuery::default()
        },
        ListQuery {
            offset: Some(5001),
            ..ListQuery::default()
        },
        ListQuery {
            start_ts: Some(2),
            end_ts: Some(2),
            ..ListQuery::default()
        },
    ] {
        assert_eq!(
            p.encode_list(&bad, vector_time()).unwrap_err().kind(),
            "invalid_input"
        );
    }
    let bad_handle = p.encode_status(&Handle("../../x".into()), vector_time());
    assert_eq!(bad_handle.unwrap_err().kind(), "invalid_input");
}

fn response(status: u16, body: &str) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .body(body.as_bytes().to_vec())
        .unwrap()
}

fn one_batch() -> Batch {
    let request = PurgeRequest::builder()
        .pattern("http://*.example.com/images/*")
        .build()
        .unwrap();
    let p = provider();
    plan_provider("ll", &p, &request)
        .unwrap()
        .batch(0, &p, &request)
        .unwrap()
}

#[test]
fn decode_takes_the_id_as_handle() {
    let body = r#"{"id":"8c1a86546c3611e49c633a03000021e9","states":[{"ts":1415994226253,"state":"queued"}],
        "username":"exampleuser","shortname":"example",
        "patterns":[{"pattern":"http://*.example.com/images/*","evict":false,"exact":false,"incqs":false}]}"#;
    let accepted = provider()
        .decode(&one_batch(), response(201, body))
        .unwrap();
    assert_eq!(accepted.handle.as_str(), "8c1a86546c3611e49c633a03000021e9");
    assert!(accepted.warnings.is_empty());
    let short = provider()
        .decode(&one_batch(), response(201, r#"{"id":"8c1a","states":[]}"#))
        .unwrap_err();
    assert_eq!(short.kind(), "protocol");
    let garbage = provider()
        .decode(&one_batch(), response(201, "<<nope"))
        .unwrap_err();
    assert_eq!(garbage.kind(), "protocol");
    let rejected = provider()
        .decode(
            &one_batch(),
            response(
                400,
                r#"{"errors":[{"message":"no extra properties allowed","code":1003,"description":"The unknown property size is not allowed.","source":"patterns[2].size"}]}"#,
            ),
        )
        .unwrap_err();
    assert_eq!(
        rejected,
        Error::rejected(
            "1003",
            "1003 no extra properties allowed (The unknown property size is not allowed.) at patterns[2].size"
        )
    );
}

#[test]
fn status_follows_the_documented_states() {
    let handle = Handle("8c1a86546c3611e49c633a03000021e9".into());
    let record = |states: &str, extra: &str| {
        format!(
            r#"{{"id":"{handle}","states":[{states}]{extra},"username":"u","shortname":"example","patterns":[]}}"#
        )
    };
    let q = r#"{"ts":1,"state":"queued"}"#;
    let ip = r#"{"ts":2,"state":"in_progress"}"#;
    let c = r#"{"ts":3,"state":"complete"}"#;
    let s = r#"{"ts":4,"state":"stats_avail"}"#;
    let p = provider();
    let status = |body: String| p.decode_status(&handle, response(200, &body)).unwrap();
    assert_eq!(
        status(record(q, "")).progress,
        Progress::Pending { percent: None }
    );
    let running = status(record(&format!("{q},{ip}"), r#","completion":41.6"#));
    assert_eq!(running.progress, Progress::Pending { percent: Some(42) });
    assert_eq!(running.detail, "in_progress 42%");
    assert_eq!(
        status(record(&format!("{q},{ip},{c}"), "")).progress,
        Progress::Completed
    );
    let done = status(record(
        &format!("{q},{ip},{c},{s}"),
        r#","stats":[{"pattern":0,"count":4,"size":41944984},{"tag":0,"count":2,"size":10}]"#,
    ));
    assert_eq!(done.progress, Progress::Completed);
    assert_eq!(done.detail, "stats_avail: 6 objects purged");
    let aborted = status(record(q, r#","aborted":true"#));
    assert_eq!(aborted.progress, Progress::Failed);
    let other = Handle("00000000000000000000000000000000".into());
    let err = p
        .decode_status(&other, response(200, &record(q, "")))
        .unwrap_err();
    assert_eq!(err.kind(), "protocol");
    let bad_id = r#"{"errors":[{"message":"invalid request id","code":1011,"description":"The SmartPurge request id foo not a valid UUID.","source":"purge request id"}]}"#;
    let err = p.decode_status(&handle, response(400, bad_id)).unwrap_err();
    assert!(
        matches!(err, Error::Rejected { ref code, .. } if code == "1011"),
        "{err}"
    );
}

#[test]
fn list_and_translate_decode_the_documented_examples() {
    let p = provider();
    let list = r#"{"requests":[{"id":"8c1a86546c3611e49c633a03000021e9","stats":[{"pattern":0,"count":4,"size":41944984}],
        "states":[{"ts":1415994226253,"state":"queued"},{"ts":1415994226263,"state":"in_progress"}],
        "username":"exampleuser","shortname":"example",
        "patterns":[{"pattern":"http://*.example.com/images/*","exact":false,"evict":false,"incqs":false}],
        "email":{"subject":"purge results","to":"user@example.com"},
        "callback":{"url":"http://test.example.com/my_callback.php"},"notes":"my first purge request"}],"total":2}"#;
    let list = p.decode_list(response(200, list)).unwrap();
    assert_eq!(list.total, 2);
    assert_eq!(list.requests[0].state(), "in_progress");
    assert_eq!(list.requests[0].objects_purged(), 4);
    let translated = p
        .decode_translate(response(
            200,
            r#"{"translated":"http://origin.example.com/to/translate"}"#,
        ))
        .unwrap();
    assert_eq!(translated, "http://origin.example.com/to/translate");
}
