//! The Akamai Fast Purge emulator against the spec's examples, over real HTTP on 127.0.0.1,
//! signed by hand with [`purgekit_emulator::akamai::sign`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use purgekit_emulator::akamai::{
    AkamaiEmulator, AkamaiEmulatorConfig, DEMO_ACCESS_TOKEN, DEMO_CLIENT_SECRET, DEMO_CLIENT_TOKEN,
    sign,
};
use serde_json::Value;

fn timestamp(at: SystemTime) -> String {
    // Via the emulator's own parser's inverse: format with the shell-independent arithmetic.
    let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}:{:02}:{:02}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

struct Call {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn post(
    base: &str,
    path: &str,
    body: &str,
    secret: &str,
    at: SystemTime,
    nonce: &str,
    content_type: &str,
) -> Call {
    let host = base.trim_start_matches("http://");
    let auth = sign(
        DEMO_CLIENT_TOKEN,
        secret,
        DEMO_ACCESS_TOKEN,
        host,
        path,
        body.as_bytes(),
        &timestamp(at),
        nonce,
    );
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("Authorization", auth)
        .header("Content-Type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Call {
        status,
        headers,
        body,
    }
}

async fn ok(base: &str, path: &str, body: &str) -> Call {
    let nonce = format!("n-{}", fastrand_nonce());
    post(
        base,
        path,
        body,
        DEMO_CLIENT_SECRET,
        SystemTime::now(),
        &nonce,
        "application/json",
    )
    .await
}

fn fastrand_nonce() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    u128::from(N.fetch_add(1, Ordering::Relaxed))
        ^ SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
}

#[tokio::test]
async fn the_documented_requests_are_accepted_with_201_and_rate_headers() {
    let emu = AkamaiEmulator::new(AkamaiEmulatorConfig::demo());
    let server = emu.start().await.unwrap();
    let base = server.url();
    for (path, body) in [
        (
            "/ccu/v3/invalidate/url/production",
            r#"{"objects":["https://foo1.bar.com/some/path","http://foo2.bar.com/some/other/path"]}"#,
        ),
        (
            "/ccu/v3/delete/url/staging",
            r#"{"hostname":"origin.qux.com","objects":["/some/path/object1","/some/other/path/object2"]}"#,
        ),
        (
            "/ccu/v3/invalidate/url",
            r#"{"objects":["/L/512/6848/1h/www.example1.com/"]}"#,
        ),
        (
            "/ccu/v3/invalidate/tag/production",
            r#"{"objects":["black-friday","electronics","laptops"]}"#,
        ),
        (
            "/ccu/v3/delete/cpcode/production",
            r#"{"objects":[12345,98765]}"#,
        ),
    ] {
        let call = ok(&base, path, body).await;
        assert_eq!(call.status, 201, "{path}: {}", call.body);
        assert_eq!(call.body["httpStatus"], 201);
        assert_eq!(call.body["estimatedSeconds"], 5);
        assert!(call.body["purgeId"].as_str().unwrap().starts_with("ed"));
        assert!(
            call.headers.contains_key("x-ratelimit-remaining-objects"),
            "{path}"
        );
        if path.contains("/tag/") {
            // 500 a minute.
            assert_eq!(call.headers["x-ratelimit-limit-per-second-objects"], "8.33");
        }
    }
    let purges = emu.purges();
    assert_eq!(purges.len(), 5);
    assert_eq!(purges[1].objects[0], "origin.qux.com/some/path/object1");
    assert_eq!(purges[2].network, "production");
    assert_eq!(purges[4].objects, ["12345", "98765"]);
    let status = ok(&base, "/ccu/v3/rate-limit-status/url", "").await;
    assert_eq!(status.status, 201);
    assert_eq!(status.headers["x-ratelimit-limit-objects"], "10000");
}

#[tokio::test]
async fn signatures_timestamps_and_nonces_are_checked() {
    let emu = AkamaiEmulator::new(AkamaiEmulatorConfig::demo());
    let server = emu.start().await.unwrap();
    let base = server.url();
    let path = "/ccu/v3/invalidate/tag/production";
    let body = r#"{"objects":["a"]}"#;
    let wrong = post(
        &base,
        path,
        body,
        "not-the-secret",
        SystemTime::now(),
        "n1",
        "application/json",
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.body["httpStatus"].clone()),
        (401, Value::from(401))
    );
    assert!(wrong.body["detail"].as_str().unwrap().contains("signature"));
    let old = SystemTime::now() - Duration::from_secs(31);
    let stale = post(
        &base,
        path,
        body,
        DEMO_CLIENT_SECRET,
        old,
        "n2",
        "application/json",
    )
    .await;
    assert_eq!(stale.status, 401);
    assert!(
        stale.body["detail"].as_str().unwrap().contains("timestamp"),
        "{}",
        stale.body
    );
    let skewed = SystemTime::now() + Duration::from_secs(20);
    assert_eq!(
        post(
            &base,
            path,
            body,
            DEMO_CLIENT_SECRET,
            skewed,
            "n3",
            "application/json"
        )
        .await
        .status,
        201
    );
    let replay = post(
        &base,
        path,
        body,
        DEMO_CLIENT_SECRET,
        SystemTime::now(),
        "n3",
        "application/json",
    )
    .await;
    assert_eq!(replay.status, 401);
    let text = post(
        &base,
        path,
        body,
        DEMO_CLIENT_SECRET,
        SystemTime::now(),
        "n4",
        "text/plain",
    )
    .await;
    assert_eq!(text.status, 415);
    assert_eq!(emu.purges().len(), 1);
}

#[tokio::test]
async fn limits_and_schema_are_enforced_with_problem_bodies() {
    let emu = AkamaiEmulator::new(AkamaiEmulatorConfig {
        contract_cpcodes: Some(vec![12345]),
        ..AkamaiEmulatorConfig::demo()
    });
    let server = emu.start().await.unwrap();
    let base = server.url();
    // Exactly 50,000 bytes pass; 50,001 do not.
    let body_of = |n: usize| format!(r#"{{"objects":["{}"]}}"#, "t".repeat(n - 16));
    assert_eq!(body_of(50_000).len(), 50_000);
    assert_eq!(
        ok(&base, "/ccu/v3/invalidate/tag/production", &body_of(50_000))
            .await
            .status,
        201
    );
    let big = ok(&base, "/ccu/v3/invalidate/tag/production", &body_of(50_001)).await;
    assert_eq!(big.status, 413);
    for (path, body, status, title) in [
        (
            "/ccu/v3/invalidate/url/production",
            r#"{"objects":["https://é.example.com/"]}"#,
            400,
            "bad URL",
        ),
        (
            "/ccu/v3/invalidate/cpcode/production",
            r#"{"objects":["12345"]}"#,
            400,
            "Bad request",
        ),
        (
            "/ccu/v3/invalidate/tag/production",
            r#"{"objects":[]}"#,
            400,
            "Bad request",
        ),
        (
            "/ccu/v3/invalidate/cpcode/production",
            r#"{"objects":[12345,777]}"#,
            403,
            "unauthorized cpcode",
        ),
        (
            "/ccu/v3/purge/url/production",
            r#"{"objects":["https://a.com/"]}"#,
            404,
            "Not Found",
        ),
    ] {
        let call = ok(&base, path, body).await;
        assert_eq!(call.status, status, "{path} {body}: {}", call.body);
        assert_eq!(call.body["title"], title);
        assert_eq!(call.body["httpStatus"], status);
        assert!(call.body["supportId"].is_string());
    }
    assert_eq!(emu.purges().len(), 1, "a refused request purges nothing");
}

#[tokio::test]
async fn buckets_refuse_without_charging_and_say_so_in_headers() {
    // Tags refill so slowly here that the test's own pace adds no token.
    let emu = AkamaiEmulator::new(AkamaiEmulatorConfig {
        tags: purgekit_emulator::akamai::BucketSpec {
            size: 5_000.0,
            refill_per_second: 1e-6,
        },
        ..AkamaiEmulatorConfig::demo()
    });
    let server = emu.start().await.unwrap();
    let base = server.url();
    let tags = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("\"t{i}\"")).collect();
        format!(r#"{{"objects":[{}]}}"#, list.join(","))
    };
    let path = "/ccu/v3/invalidate/tag/production";
    let first = ok(&base, path, &tags(4_990)).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.headers["x-ratelimit-remaining-objects"], "10");
    let refused = ok(&base, path, &tags(20)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body["title"], "TAG Rate Limit exceeded");
    assert_eq!(refused.body["rateLimit"], 5000.0);
    assert_eq!(refused.body["rateLimitCurrentRequestSize"], 20.0);
    assert_eq!(refused.body["rateLimitRemaining"], 10.0);
    assert_eq!(refused.headers["x-ratelimit-limit-objects"], "5000");
    assert_eq!(refused.headers["x-ratelimit-remaining-objects"], "10");
    // Nothing was charged: the 10 tokens left still take 10 tags.
    assert_eq!(ok(&base, path, &tags(10)).await.status, 201);
    assert_eq!(emu.rejections(), 1);
    // The request bucket: 100 at once, then refused.
    let emu = AkamaiEmulator::new(AkamaiEmulatorConfig {
        requests: purgekit_emulator::akamai::BucketSpec {
            size: 3.0,
            refill_per_second: 0.01,
        },
        ..AkamaiEmulatorConfig::demo()
    });
    let server = emu.start().await.unwrap();
    for _ in 0..3 {
        assert_eq!(ok(&server.url(), path, &tags(1)).await.status, 201);
    }
    let refused = ok(&server.url(), path, &tags(1)).await;
    assert_eq!(
        (refused.status, refused.body["title"].clone()),
        (429, Value::from("Rate Limit exceeded"))
    );
    assert_eq!(refused.headers["x-ratelimit-remaining"], "0");
}
