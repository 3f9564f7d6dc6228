use std::time::UNIX_EPOCH;

use purgekit_core::{PurgeRequest, plan_provider};

use super::*;

const API_HOST: &str = "akab-xxxxxxxxxxxxxxxx-xxxxxxxxxxxxxxxx.purge.akamaiapis.net";

fn akamai(network: crate::Network) -> Akamai {
    let mut config = AkamaiConfig::new(
        API_HOST,
        "akab-client-token-xxx-xxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=",
        "akab-access-token-xxx-xxxxxxxxxxxxxxxx",
    );
    config.network = network;
    config.cpcodes = vec![12345];
    Akamai::new(config).unwrap()
}

/// The batches of `request` as (path, body) pairs, encoded at the vectors' time.
fn wire(provider: &Akamai, request: &PurgeRequest) -> Vec<(String, String)> {
    let plan = plan_provider("akamai", provider, request).unwrap();
    (0..plan.batches().len())
        .map(|i| {
            let batch = plan.batch(i, provider, request).unwrap();
            let http = provider
                .encode(
                    &batch,
                    request.options(),
                    UNIX_EPOCH + Duration::from_secs(1_395_430_461),
                )
                .unwrap();
            assert_eq!(
                http.body().len(),
                batch.bytes,
                "counted bytes are the bytes sent"
            );
            (
                http.uri().path().to_owned(),
                String::from_utf8(http.body().clone()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn url_and_tag_bodies_one_type_per_request() {
    let request = PurgeRequest::builder()
        .url("https://www.example.com/index.html")
        .tag("product-123")
        .url("https://www.example.com/css/site.css")
        .tag("category-7")
        .url("https://www.example.com/caf\u{e9}/men\u{fc}.html")
        .build()
        .unwrap();
    insta::assert_json_snapshot!(wire(&akamai(crate::Network::Production), &request));
}

#[test]
fn delete_on_staging() {
    let request = PurgeRequest::builder()
        .tag("product-123")
        .tag("category-7")
        .delete()
        .build()
        .unwrap();
    insta::assert_json_snapshot!(wire(&akamai(crate::Network::Staging), &request));
}

#[test]
fn the_url_vector_request_is_signed_as_published() {
    let provider = akamai(crate::Network::Production);
    let body = br#"{"objects":["https://www.example.com/index.html","https://www.example.com/css/site.css"]}"#;
    let http = provider
        .signed_post(
            "/ccu/v3/invalidate/url/production",
            body.to_vec(),
            UNIX_EPOCH + Duration::from_secs(1_395_430_461),
            "nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
        )
        .unwrap();
    let auth = http.headers()[AUTHORIZATION].to_str().unwrap();
    assert!(
        auth.ends_with(";signature=Ky4IKl8xUUTdTzzpovZXZaY8Rs//BISihdk11+7oxSs="),
        "{auth}"
    );
    assert_eq!(
        http.uri().to_string(),
        format!("https://{API_HOST}/ccu/v3/invalidate/url/production")
    );
    assert_eq!(http.headers()[HOST].to_str().unwrap(), API_HOST);
    assert_eq!(http.headers()[CONTENT_TYPE], "application/json");
    let mut redacted = http.clone();
    provider.redact(&mut redacted);
    assert_eq!(redacted.headers()[AUTHORIZATION], REDACTED);
}

#[test]
fn each_request_has_a_fresh_nonce() {
    let provider = akamai(crate::Network::Production);
    let request = PurgeRequest::builder().tag("t").build().unwrap();
    let plan = plan_provider("akamai", &provider, &request).unwrap();
    let batch = plan.batch(0, &provider, &request).unwrap();
    let now = SystemTime::now();
    let a = provider.encode(&batch, request.options(), now).unwrap();
    let b = provider.encode(&batch, request.options(), now).unwrap();
    assert_ne!(a.headers()[AUTHORIZATION], b.headers()[AUTHORIZATION]);
}

#[test]
fn patterns_prefixes_and_hosts_are_unsupported_with_the_reason() {
    let provider = akamai(crate::Network::Production);
    let request = PurgeRequest::builder()
        .pattern("https://www.example.com/img/*")
        .prefix("https://www.example.com/img/")
        .host("www.example.com")
        .url("https://www.example.com/a.js")
        .build()
        .unwrap();
    let plan = plan_provider("akamai", &provider, &request).unwrap();
    for disposition in plan.dispositions().take(3) {
        match disposition {
            purgekit_core::Disposition::Unsupported { reason } => {
                assert_eq!(&*reason, NO_WILDCARDS)
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(NO_WILDCARDS.contains("no wildcards"));
    assert_eq!(plan.batches().len(), 1);
    let pattern = Target::pattern("https://www.example.com/img/*").unwrap();
    assert_eq!(
        provider.map(&pattern, &Options::default()).unwrap(),
        Mapped::Unsupported(NO_WILDCARDS.to_owned())
    );
}

fn with_cpcodes(cpcodes: Vec<u32>) -> Result<Akamai> {
    let mut config = AkamaiConfig::new(API_HOST, "akab-c", "secret", "akab-a");
    config.cpcodes = cpcodes;
    Akamai::new(config)
}

#[test]
fn everything_is_every_configured_cpcode_in_one_request() {
    let provider = with_cpcodes(vec![98765, 12345, 12345]).unwrap();
    // Twice: the second merges into the first; one request carries both CP codes.
    let request = PurgeRequest::builder()
        .everything()
        .url("https://www.example.com/a.js")
        .everything()
        .build()
        .unwrap();
    let sent = wire(&provider, &request);
    assert_eq!(
        sent,
        [
            (
                "/ccu/v3/invalidate/cpcode/production".to_owned(),
                r#"{"objects":[12345,98765]}"#.to_owned()
            ),
            (
                "/ccu/v3/invalidate/url/production".to_owned(),
                r#"{"objects":["https://www.example.com/a.js"]}"#.to_owned()
            ),
        ]
    );
}

#[test]
fn everything_without_cpcodes_is_a_config_error_naming_the_key() {
    let provider = with_cpcodes(Vec::new()).unwrap();
    let request = PurgeRequest::builder()
        .url("https://www.example.com/a.js")
        .everything()
        .build()
        .unwrap();
    let err = plan_provider("akamai", &provider, &request).unwrap_err();
    match &err {
        Error::Config { field, .. } => assert_eq!(field, "cpcodes"),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("cpcodes"), "{err}");
}

#[test]
fn the_cpcode_bucket_is_charged_per_cpcode() {
    // 3 CP codes per `everything` item: the 300-token, 30-a-minute bucket is 100 items
    // refilled 30 per 3 minutes — one item costs exactly 3 tokens' refill.
    let provider = with_cpcodes(vec![1, 2, 3]).unwrap();
    let cpcode = provider
        .limits()
        .buckets
        .into_iter()
        .find(|b| b.scopes == ["cpcode"])
        .unwrap();
    assert_eq!(cpcode.burst, 100);
    assert_eq!(cpcode.refill, Budget::new(30, Duration::from_secs(180)));
    // One CP code: the documented bucket as is; more than the bucket holds: refused.
    let one = with_cpcodes(vec![7]).unwrap().limits().buckets;
    assert_eq!(one, default_buckets());
    let mut config = AkamaiConfig::new(API_HOST, "akab-c", "secret", "akab-a");
    config.cpcodes = (1..=60).collect();
    config.buckets.cpcode = Some(crate::BucketConfig {
        burst: 50,
        refill: 5,
        per: Duration::from_secs(1),
    });
    match Akamai::new(config).unwrap_err() {
        Error::Config { field, .. } => assert_eq!(field, "cpcodes"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn buckets_are_configurable_by_name() {
    let config: AkamaiConfig = toml::from_str(
        r#"
        host = "akab-h.purge.akamaiapis.net"
        client_token = "akab-c"
        client_secret = "c2VjcmV0"
        access_token = "akab-a"
        buckets = { url = { burst = 10000, refill = 10000, per = "500ms" } }
        "#,
    )
    .unwrap();
    let b = Akamai::new(config.clone()).unwrap().limits().buckets;
    assert_eq!(b[1].burst, 10_000);
    assert_eq!(b[1].refill, Budget::new(10_000, Duration::from_millis(500)));
    assert_eq!(b[0], default_buckets()[0]);
    assert_eq!(b[2..], default_buckets()[2..]);
    let mut zero = config;
    zero.buckets.url = Some(crate::BucketConfig {
        burst: 1,
        refill: 0,
        per: Duration::from_secs(1),
    });
    match Akamai::new(zero).unwrap_err() {
        Error::Config { field, .. } => assert_eq!(field, "buckets.url.refill"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn batches_fill_to_exactly_50000_bytes_and_never_beyond() {
    let provider = akamai(crate::Network::Production);
    let mut builder = PurgeRequest::builder();
    for i in 0..5_000 {
        builder = builder.url(format!("https://www.example.com/assets/{i:05}/app.js"));
    }
    let request = builder.build().unwrap();
    let plan = plan_provider("akamai", &provider, &request).unwrap();
    // Each URL is 43 characters: 46 bytes with quotes and comma; 1086 fit under 50,000.
    let per = (MAX_BODY_BYTES - wire::ENVELOPE_BYTES) / 46;
    assert_eq!(per, 1086);
    assert_eq!(plan.batches().at(0).targets.len(), per);
    for b in plan.batches() {
        assert!(b.bytes <= MAX_BODY_BYTES);
    }
    let total: usize = plan.batches().iter().map(|b| b.targets.len()).sum();
    assert_eq!(total, 5_000);
}

#[test]
fn accepted_carries_the_estimate_and_says_it_is_one() {
    let provider = akamai(crate::Network::Production);
    let batch = Batch {
        id: Default::default(),
        scope: "url".into(),
        items: Vec::new(),
        bytes: 0,
    };
    let response = purgekit_core::http::Response::builder()
        .status(201)
        .body(
            br#"{"httpStatus":201,"estimatedSeconds":5,"purgeId":"edcp-1","supportId":"edcp-1"}"#
                .to_vec(),
        )
        .unwrap();
    let accepted = provider.decode(&batch, response).unwrap();
    assert_eq!(accepted.handle, Handle("edcp-1".into()));
    assert_eq!(accepted.poll_after, Some(Duration::from_secs(5)));
    assert!(accepted.warnings[0].contains("estimate"));
    assert_eq!(provider.completion(), CompletionModel::Estimated);
    let status = provider.encode_status(&Handle("edcp-1".into()), SystemTime::now());
    assert!(status.unwrap_err().to_string().contains("no status call"));
}

#[test]
fn limits_and_buckets_are_the_documented_ones() {
    let limits = akamai(crate::Network::Production).limits();
    assert_eq!(limits.max_body_bytes, Some(50_000));
    assert!(limits.group_by_scope);
    let b = &limits.buckets;
    assert_eq!(
        (b[0].unit, b[0].scopes.is_empty(), b[0].burst),
        (BucketUnit::Requests, true, 100)
    );
    assert_eq!(b[0].refill, Budget::new(50, Duration::from_secs(1)));
    assert_eq!(
        (b[1].scopes.as_slice(), b[1].burst),
        (["url".to_owned()].as_slice(), 10_000)
    );
    assert_eq!(
        (b[2].scopes.as_slice(), b[2].burst),
        (["tag".to_owned()].as_slice(), 5_000)
    );
    assert_eq!(b[2].refill, Budget::per_minute(500));
    assert_eq!(
        (b[3].scopes.as_slice(), b[3].burst),
        (["cpcode".to_owned()].as_slice(), 300)
    );
    assert_eq!(b[3].refill, Budget::per_minute(30));
}

#[test]
fn debug_hides_the_secret() {
    let text = format!("{:?}", akamai(crate::Network::Production));
    assert!(
        !text.contains("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx="),
        "{text}"
    );
}

#[test]
fn cpcode_body_sends_integers() {
    let provider = with_cpcodes(vec![12345, 98765]).unwrap();
    let request = PurgeRequest::builder().everything().build().unwrap();
    let plan = plan_provider("akamai", &provider, &request).unwrap();
    let batch = plan.batch(0, &provider, &request).unwrap();
    let http = provider
        .encode(&batch, &Options::default(), SystemTime::now())
        .unwrap();
    assert_eq!(http.body().len(), batch.bytes);
    insta::assert_json_snapshot!((
        http.uri().path(),
        String::from_utf8(http.body().clone()).unwrap()
    ));
}
