use std::time::{Duration, SystemTime};

use purgekit_core::{BatchId, Disposition, PurgeRequest, plan_provider};

use super::*;
use crate::Plan;

const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";

fn provider(plan: Plan) -> Cloudflare {
    let mut config = CloudflareConfig::new(ZONE);
    config.api_token = Some("cf-token-example".into());
    config.plan = plan;
    Cloudflare::with_env(config, |_| None).unwrap()
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn batch(p: &Cloudflare, targets: &[Target]) -> Batch {
    let items: Vec<Item> = targets
        .iter()
        .map(|t| match p.map(t, &Options::default()).unwrap() {
            Mapped::Item(i) => i,
            Mapped::Unsupported(why) => panic!("{why}"),
        })
        .collect();
    Batch {
        id: BatchId::default(),
        scope: items[0].scope.clone(),
        bytes: items.iter().map(|i| i.bytes).sum(),
        items,
    }
}

/// The request as text: method, URI, headers, body.
fn shown(request: &HttpRequest) -> String {
    let mut out = format!("{} {}\n", request.method(), request.uri());
    for (name, value) in request.headers() {
        out.push_str(&format!("{name}: {}\n", value.to_str().unwrap()));
    }
    out.push('\n');
    out.push_str(std::str::from_utf8(request.body()).unwrap());
    out
}

fn encoded(targets: &[Target]) -> String {
    let p = provider(Plan::Free);
    let b = batch(&p, targets);
    shown(&p.encode(&b, &Options::default(), now()).unwrap())
}

#[test]
fn files_body() {
    insta::assert_snapshot!(encoded(&[
        Target::url("https://www.example.com/index.html").unwrap(),
        Target::url("https://www.example.com/css/site.css?v=2").unwrap(),
    ]));
}

#[test]
fn tags_body() {
    insta::assert_snapshot!(encoded(&[
        Target::tag("product-62952").unwrap(),
        Target::tag("blog").unwrap(),
    ]));
}

#[test]
fn hosts_body() {
    insta::assert_snapshot!(encoded(&[
        Target::hostname("www.example.com").unwrap(),
        Target::hostname("images.example.com").unwrap(),
    ]));
}

#[test]
fn prefixes_body() {
    insta::assert_snapshot!(encoded(&[Target::prefix(
        "https://www.example.com/assets/v41/"
    )
    .unwrap()]));
}

#[test]
fn everything_body() {
    insta::assert_snapshot!(encoded(&[Target::everything()]));
}

#[test]
fn plan_keeps_one_kind_per_request_under_the_plans_caps() {
    let p = provider(Plan::Free);
    let mut b = PurgeRequest::builder();
    for i in 0..31 {
        b = b.url(format!("https://www.example.com/{i}.js"));
    }
    for i in 0..257 {
        b = b.tag(format!("t{i}"));
    }
    let request = b
        .prefix("https://www.example.com/a/")
        .host("www.example.com")
        .everything()
        .pattern("https://www.example.com/*.js")
        .build()
        .unwrap();
    let plan = plan_provider("cf", &p, &request).unwrap();
    let mut sizes: Vec<(&str, usize)> = plan.batches().iter().map(|b| (b.scope, b.len())).collect();
    sizes.sort_unstable();
    let mut want = vec![
        ("files", 30),
        ("files", 1),
        ("prefixes", 1),
        ("hosts", 1),
        ("purge_everything", 1),
    ];
    // 257 tags: eight requests of 30 and one of 17, not refused.
    want.extend(std::iter::repeat_n(("tags", 30), 8));
    want.push(("tags", 17));
    want.sort_unstable();
    assert_eq!(sizes, want);
    assert!(
        matches!(plan.dispositions().last(), Some(Disposition::Unsupported { reason }) if reason.contains("prefix:"))
    );
    // Every planned row carries what Cloudflare does instead of invalidating.
    assert_eq!(plan.warnings, [REMOVES]);
    let delete = PurgeRequest::builder()
        .url("https://www.example.com/")
        .delete()
        .build()
        .unwrap();
    assert!(
        plan_provider("cf", &p, &delete)
            .unwrap()
            .warnings
            .is_empty()
    );
    // Enterprise: 500 URLs a request.
    let p = provider(Plan::Enterprise);
    let mut b = PurgeRequest::builder();
    for i in 0..501 {
        b = b.url(format!("https://www.example.com/{i}.js"));
    }
    let plan = plan_provider("cf", &p, &b.build().unwrap()).unwrap();
    assert_eq!(
        plan.batches().iter().map(|b| b.len()).collect::<Vec<_>>(),
        [500, 1]
    );
}

#[test]
fn limits_are_the_plans() {
    let limits = provider(Plan::Pro).limits();
    assert_eq!(
        limits.buckets[0].scopes,
        ["tags", "hosts", "prefixes", "purge_everything"]
    );
    assert_eq!(
        (limits.buckets[0].burst, limits.buckets[0].refill.amount),
        (25, 5)
    );
    assert_eq!(
        (limits.buckets[1].unit, limits.buckets[1].burst),
        (BucketUnit::Items, 1500)
    );
    assert_eq!(limits.rate.requests, Some(crate::GLOBAL_LIMIT));
}

#[test]
fn bad_tags_are_refused_naming_them() {
    let p = provider(Plan::Free);
    let e = p
        .map(&Target::tag("caf\u{e9}").unwrap(), &Options::default())
        .unwrap_err();
    assert!(e.is_usage() && e.to_string().contains("tag:caf"), "{e}");
}

#[test]
fn redaction_removes_the_token() {
    let p = provider(Plan::Free);
    let b = batch(&p, &[Target::url("https://www.example.com/").unwrap()]);
    let mut request = p.encode(&b, &Options::default(), now()).unwrap();
    p.redact(&mut request);
    assert!(!shown(&request).contains("cf-token-example"));
    assert!(!format!("{p:?}").contains("cf-token-example"));
}

#[test]
fn decode_answers_with_the_result_id() {
    let p = provider(Plan::Free);
    let b = batch(&p, &[Target::url("https://www.example.com/").unwrap()]);
    let response = purgekit_core::http::Response::builder()
        .status(200)
        .body(
            format!(r#"{{"success":true,"errors":[],"messages":[],"result":{{"id":"{ZONE}"}}}}"#)
                .into_bytes(),
        )
        .unwrap();
    let accepted = p.decode(&b, response).unwrap();
    assert_eq!(accepted.handle.as_str(), ZONE);
    assert!(accepted.warnings[0].contains("complete when accepted"));
}
