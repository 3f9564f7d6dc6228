//! The SmartPurge emulator over real HTTP on 127.0.0.1, driven by hand-signed requests: every
//! documented refusal, the rate debt, the queue limit and the request lifecycle.

use std::time::{Duration, SystemTime};

use purgekit_emulator::Running;
use purgekit_emulator::limelight::{
    DEMO_SHARED_KEY, DEMO_SHORTNAME, DEMO_USERNAME, LimelightEmulator, LimelightEmulatorConfig,
    sign,
};
use serde_json::Value;

struct Client {
    server: Running,
    http: reqwest::Client,
    key: Vec<u8>,
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    json: Value,
}

impl Answer {
    fn code(&self) -> u64 {
        self.json["errors"][0]["code"].as_u64().unwrap_or(0)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

impl Client {
    async fn start(config: LimelightEmulatorConfig) -> (LimelightEmulator, Client) {
        let emulator = LimelightEmulator::new(config);
        let server = emulator.start().await.unwrap();
        let client = Client {
            server,
            http: reqwest::Client::new(),
            key: hex::decode(DEMO_SHARED_KEY).unwrap(),
        };
        (emulator, client)
    }

    /// `method path` under the demo account, signed at `ts`.
    async fn call_at(&self, method: &str, path: &str, body: &str, ts: u64) -> Answer {
        let url = format!(
            "{}/purge/v1/account/{DEMO_SHORTNAME}{path}",
            self.server.url()
        );
        let token = sign(&self.key, method, &url, ts, body.as_bytes());
        let response = self
            .http
            .request(method.parse().unwrap(), &url)
            .header("Content-Type", "application/json")
            .header("X-LLNW-Security-Principal", DEMO_USERNAME)
            .header("X-LLNW-Security-Timestamp", ts.to_string())
            .header("X-LLNW-Security-Token", token)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            retry_after,
            json,
        }
    }

    async fn call(&self, method: &str, path: &str, body: &str) -> Answer {
        self.call_at(method, path, body, now_ms()).await
    }

    async fn purge(&self, body: &str) -> Answer {
        self.call("POST", "/requests", body).await
    }
}

fn tags(n: usize) -> String {
    let tags: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"tag":"t{i}","evict":false}}"#))
        .collect();
    format!(r#"{{"tags":[{}]}}"#, tags.join(","))
}

#[tokio::test]
async fn signatures_and_timestamps_are_verified() {
    let (emulator, client) = Client::start(LimelightEmulatorConfig::demo().fast()).await;
    let old = client
        .call_at("POST", "/requests", &tags(1), now_ms() - 301_000)
        .await;
    assert_eq!((old.status, old.code()), (401, 1024));
    let fresh = client
        .call_at("POST", "/requests", &tags(1), now_ms() - 290_000)
        .await;
    assert_eq!(fresh.status, 201);

    // A token over another body is refused.
    let url = format!(
        "{}/purge/v1/account/{DEMO_SHORTNAME}/requests",
        client.server.url()
    );
    let ts = now_ms();
    let token = sign(&client.key, "POST", &url, ts, tags(2).as_bytes());
    let forged = client
        .http
        .post(&url)
        .header("X-LLNW-Security-Principal", DEMO_USERNAME)
        .header("X-LLNW-Security-Timestamp", ts.to_string())
        .header("X-LLNW-Security-Token", token)
        .body(tags(1))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let json: Value = serde_json::from_str(&forged.text().await.unwrap()).unwrap();
    assert_eq!(json["errors"][0]["code"], 1026);

    let other = client
        .http
        .get(format!(
            "{}/purge/v1/account/{DEMO_SHORTNAME}/requests",
            client.server.url()
        ))
        .header("X-LLNW-Security-Principal", DEMO_USERNAME)
        .header("X-LLNW-Security-Timestamp", "yesterday")
        .header("X-LLNW-Security-Token", "00")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 400);
    assert_eq!(emulator.submissions().len(), 1);
}

#[tokio::test]
async fn the_schema_and_size_limits_are_enforced() {
    let (emulator, client) = Client::start(LimelightEmulatorConfig::demo().fast()).await;
    assert_eq!(client.purge("{}").await.code(), 1042);
    let a = client.purge(&tags(101)).await;
    assert_eq!((a.status, a.code()), (400, 1041));
    let a = client
        .purge(r#"{"tags":[{"tag":"a","evict":false}],"extra":1}"#)
        .await;
    assert_eq!((a.status, a.code()), (400, 1003));
    assert_eq!(a.json["errors"][0]["source"], "extra");
    // Over 32 × 1024 bytes: a bare 413, before the schema.
    let huge = format!(
        r#"{{"tags":[{{"tag":"a","evict":false}}],"notes":"{}"}}"#,
        "n".repeat(32 * 1024)
    );
    let a = client.purge(&huge).await;
    assert_eq!((a.status, a.json.clone()), (413, Value::Null));
    assert_eq!(client.purge(&tags(100)).await.status, 201);
    assert_eq!(emulator.submissions().len(), 1);
}

#[tokio::test]
async fn one_item_per_interval_is_owed_and_refusals_are_counted() {
    let mut config = LimelightEmulatorConfig::demo().fast();
    config.item_interval = Duration::from_millis(100);
    config.retry_after_header = true;
    let (emulator, client) = Client::start(config).await;
    assert_eq!(client.purge(&tags(10)).await.status, 201); // owes 1 s
    let refused = client.purge(&tags(1)).await;
    assert_eq!((refused.status, refused.code()), (429, 1022));
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    assert_eq!(emulator.rejections(), 1);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(client.purge(&tags(1)).await.status, 201);
    assert_eq!(emulator.rejections(), 1);
}

#[tokio::test]
async fn at_most_1000_items_are_queued() {
    let mut config = LimelightEmulatorConfig::demo();
    config.item_interval = Duration::ZERO;
    config.queued_for = Duration::from_secs(600);
    let (emulator, client) = Client::start(config).await;
    for _ in 0..10 {
        assert_eq!(client.purge(&tags(100)).await.status, 201);
    }
    let refused = client.purge(&tags(1)).await;
    assert_eq!((refused.status, refused.code()), (429, 1021));
    assert_eq!(emulator.rejections(), 1);
}

#[tokio::test]
async fn a_request_walks_through_its_states_to_stats() {
    let mut config = LimelightEmulatorConfig::demo();
    config.item_interval = Duration::ZERO;
    config.queued_for = Duration::from_millis(50);
    config.in_progress_for = Duration::from_millis(1000);
    config.stats_after = Duration::from_millis(50);
    let (_emulator, client) = Client::start(config).await;
    let body = r#"{"patterns":[{"pattern":"http://o.example.com/*","evict":true,"exact":false,"incqs":false}],"tags":[{"tag":"a","evict":true}],"notes":"n"}"#;
    let created = client.purge(body).await;
    assert_eq!(created.status, 201);
    let id = created.json["id"].as_str().unwrap().to_owned();
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(created.json["states"][0]["state"], "queued");
    assert_eq!(created.json["notes"], "n");

    tokio::time::sleep(Duration::from_millis(100)).await;
    let running = client.call("GET", &format!("/requests/{id}"), "").await;
    assert_eq!(running.json["states"][1]["state"], "in_progress");
    assert!(running.json["completion"].as_f64().is_some());
    assert!(running.json.get("stats").is_none());

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let done = client.call("GET", &format!("/requests/{id}"), "").await;
    let states: Vec<&str> = done.json["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["queued", "in_progress", "complete", "stats_avail"]);
    assert_eq!(done.json["stats"][0]["pattern"], 0);
    assert_eq!(done.json["stats"][1]["tag"], 0);
    let geo = client
        .call("GET", &format!("/requests/{id}?geostats"), "")
        .await;
    assert!(geo.json["geostats"]["dal"].is_array() && geo.json.get("stats").is_none());

    let bad = client.call("GET", "/requests/not-a-uuid", "").await;
    assert_eq!((bad.status, bad.code()), (400, 1011));
    let unknown = client
        .call("GET", "/requests/0123456789abcdef0123456789abcdef", "")
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn list_checks_its_terms() {
    let (_emulator, client) = Client::start(LimelightEmulatorConfig::demo().fast()).await;
    for _ in 0..3 {
        client.purge(&tags(1)).await;
    }
    let page = client
        .call("GET", "/requests?limit=2&offset=1&order=asc", "")
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.json["total"], 3);
    assert_eq!(page.json["requests"].as_array().unwrap().len(), 2);
    for (query, code) in [
        ("limit=0", 1013),
        ("offset=5001", 1012),
        ("order=up", 1017),
        ("start_ts=1", 1014),
        ("end_ts=-1", 1015),
    ] {
        let a = client.call("GET", &format!("/requests?{query}"), "").await;
        assert_eq!((a.status, a.code()), (400, code), "{query}");
    }
    let missing = client.call("GET", "/translate", "").await;
    assert_eq!(missing.code(), 1019);
}

#[tokio::test]
async fn list_takes_each_documented_term_with_its_default() {
    let (_emulator, client) = Client::start(LimelightEmulatorConfig::demo().fast()).await;
    let mut ids = Vec::new();
    let submit = async |n: usize, ids: &mut Vec<String>| {
        for _ in 0..n {
            let a = client.purge(&tags(1)).await;
            assert_eq!(a.status, 201, "{}", a.json);
            ids.push(a.json["id"].as_str().unwrap().to_owned());
        }
    };
    submit(30, &mut ids).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mid = now_ms();
    tokio::time::sleep(Duration::from_millis(50)).await;
    submit(25, &mut ids).await;
    let listed = |a: &Answer| -> Vec<String> {
        assert_eq!(a.status, 200, "{}", a.json);
        a.json["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    // No term: limit 50, offset 0, order desc, the last 90 days up to now.
    let all = client.call("GET", "/requests", "").await;
    assert_eq!(all.json["total"], 55);
    assert_eq!(listed(&all), newest_first[..50]);
    // The document's example: `?limit=10&offset=0`.
    let example = client.call("GET", "/requests?limit=10&offset=0", "").await;
    assert_eq!(listed(&example), newest_first[..10]);
    // Each term alone, at its bounds.
    let a = client.call("GET", "/requests?limit=100", "").await;
    assert_eq!(listed(&a), newest_first);
    let a = client.call("GET", "/requests?limit=1", "").await;
    assert_eq!(listed(&a), newest_first[..1]);
    let a = client.call("GET", "/requests?offset=50", "").await;
    assert_eq!(listed(&a), newest_first[50..]);
    let a = client.call("GET", "/requests?offset=5000", "").await;
    assert!(listed(&a).is_empty());
    let a = client
        .call("GET", "/requests?order=asc&limit=100", "")
        .await;
    assert_eq!(listed(&a), ids);
    let a = client.call("GET", "/requests?order=desc", "").await;
    assert_eq!(listed(&a), newest_first[..50]);
    // The time filters: submitted after start_ts, before end_ts.
    let a = client
        .call("GET", &format!("/requests?start_ts={mid}&limit=100"), "")
        .await;
    assert_eq!(listed(&a), newest_first[..25]);
    let a = client
        .call("GET", &format!("/requests?end_ts={mid}&limit=100"), "")
        .await;
    assert_eq!(listed(&a), newest_first[25..]);
    // As the document's Python sample sends them: all four, start 30 days back.
    let now = now_ms();
    let sample = format!(
        "/requests?start_ts={}&end_ts={now}&limit=50&offset=0",
        now - 2_592_000_000
    );
    let a = client.call("GET", &sample, "").await;
    assert_eq!(listed(&a), newest_first[..50]);
    // Their documented refusals.
    for (query, code) in [
        (format!("start_ts={mid}&end_ts={mid}"), 1016),
        (format!("end_ts={}", now + 600_000), 1015),
        ("limit=101".to_owned(), 1013),
        ("offset=-1".to_owned(), 1012),
        ("order=ASC".to_owned(), 1017),
    ] {
        let a = client.call("GET", &format!("/requests?{query}"), "").await;
        assert_eq!((a.status, a.code()), (400, code), "{query}");
    }
}
