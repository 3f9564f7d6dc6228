use std::time::{Duration, SystemTime};

use purgekit_core::{BatchId, PurgeRequest, State, plan_provider};

use super::*;

fn provider() -> Fastly {
    let mut config = FastlyConfig::new("SU1Z0isxPaozGVKXdv0eY");
    config.api_token = Some("fastly-token-example".into());
    Fastly::with_env(config, |_| None).unwrap()
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_452_032_384)
}

fn delete() -> Options {
    Options {
        action: Action::Delete,
        ..Options::default()
    }
}

fn batch(p: &Fastly, targets: &[Target], options: &Options) -> Batch {
    let items: Vec<Item> = targets
        .iter()
        .map(|t| match p.map(t, options).unwrap() {
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

/// The request as text: method, URI, headers in order, body.
fn shown(request: &HttpRequest) -> String {
    let mut out = format!("{} {}\n", request.method(), request.uri());
    for (name, value) in request.headers() {
        out.push_str(&format!("{name}: {}\n", value.to_str().unwrap()));
    }
    out.push('\n');
    out.push_str(std::str::from_utf8(request.body()).unwrap());
    out
}

#[test]
fn single_url_purge_soft() {
    let p = provider();
    let b = batch(
        &p,
        &[Target::url("https://www.example.com/css/site.css?v=2").unwrap()],
        &Options::default(),
    );
    insta::assert_snapshot!(shown(&p.encode(&b, &Options::default(), now()).unwrap()));
}

#[test]
fn single_url_purge_hard() {
    let p = provider();
    let b = batch(
        &p,
        &[Target::url("https://www.example.com/a%20b.jpg").unwrap()],
        &delete(),
    );
    let request = p.encode(&b, &delete(), now()).unwrap();
    assert!(request.headers().get(SOFT_PURGE_HEADER).is_none());
    insta::assert_snapshot!(shown(&request));
}

#[test]
fn surrogate_key_batch_purge_body() {
    let p = provider();
    let targets: Vec<Target> = ["product-62952", "product-1043", "a\"quote"]
        .into_iter()
        .map(|k| Target::tag(k).unwrap())
        .collect();
    let b = batch(&p, &targets, &Options::default());
    let request = p.encode(&b, &Options::default(), now()).unwrap();
    assert!(request.body().len() <= b.bytes + wire::KEYS_ENVELOPE_BYTES);
    insta::assert_snapshot!(shown(&request));
}

#[test]
fn purge_all_is_hard_only() {
    let p = provider();
    let everything = Target::everything();
    assert_eq!(
        p.map(&everything, &Options::default()).unwrap(),
        Mapped::Unsupported(ALL_IS_HARD.to_owned())
    );
    let b = batch(&p, &[everything], &delete());
    let request = p.encode(&b, &delete(), now()).unwrap();
    insta::assert_snapshot!(shown(&request));
}

#[test]
fn plan_packs_one_url_a_request_and_256_keys_a_request() {
    let p = provider();
    let mut b = PurgeRequest::builder();
    for i in 0..3 {
        b = b.url(format!("https://www.example.com/{i}.js"));
    }
    for i in 0..257 {
        b = b.tag(format!("key-{i}"));
    }
    let request = b
        .pattern("https://www.example.com/*")
        .everything()
        .build()
        .unwrap();
    let plan = plan_provider("fastly", &p, &request).unwrap();
    let sizes: Vec<(&str, usize)> = plan.batches().iter().map(|b| (b.scope, b.len())).collect();
    assert_eq!(
        sizes,
        [("", 1), ("", 1), ("", 1), ("keys", 256), ("keys", 1)]
    );
    // The pattern and (without --delete) everything are unsupported rows with the reasons.
    let unsupported: Vec<String> = plan
        .dispositions()
        .filter_map(|d| match d {
            purgekit_core::Disposition::Unsupported { reason } => Some(reason.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(unsupported, [NO_WILDCARDS, ALL_IS_HARD]);
}

#[test]
fn bad_keys_and_urls_are_refused_naming_them() {
    let p = provider();
    // 1,024 bytes (core's own tag limit too) pass; a key beyond printable ASCII is refused
    // before anything is sent, naming it.
    assert!(
        p.map(&Target::tag("k".repeat(1024)).unwrap(), &Options::default())
            .is_ok()
    );
    let e = p
        .map(&Target::tag("caf\u{e9}").unwrap(), &Options::default())
        .unwrap_err();
    assert!(
        e.is_usage() && e.to_string().contains("printable ASCII"),
        "{e}"
    );
    assert!(e.to_string().contains("tag:caf"), "{e}");
}

#[test]
fn redaction_removes_the_token() {
    let p = provider();
    let b = batch(
        &p,
        &[Target::url("https://www.example.com/").unwrap()],
        &Options::default(),
    );
    let mut request = p.encode(&b, &Options::default(), now()).unwrap();
    p.redact(&mut request);
    assert!(!shown(&request).contains("fastly-token-example"));
    assert!(
        format!("{p:?}").contains("<redacted>")
            && !format!("{p:?}").contains("fastly-token-example")
    );
}

#[test]
fn decode_answers_with_the_purge_id_and_says_completion_is_acceptance() {
    let p = provider();
    let b = batch(
        &p,
        &[Target::url("https://www.example.com/").unwrap()],
        &Options::default(),
    );
    let response = purgekit_core::http::Response::builder()
        .status(200)
        .body(br#"{"status":"ok","id":"108-1391560174-974126"}"#.to_vec())
        .unwrap();
    let accepted = p.decode(&b, response).unwrap();
    assert_eq!(accepted.handle.as_str(), "108-1391560174-974126");
    assert!(accepted.warnings[0].contains("complete when accepted"));
    assert_eq!(p.completion(), CompletionModel::OnAcceptance);
    let _ = State::Completed;
}
