//! `purgekit serve` end to end: child `serve` processes over loopback, the provider emulators
//! served by this test process (so what they received can be read), the journal on SQLite and
//! on PostgreSQL (`PURGEKIT_TEST_POSTGRES`, a schema of its own per test).
//!
//! - the API: every route, status and schema of docs/api.yaml exercised, and every response
//!   checked against it (an undocumented status or field fails);
//! - auth and bad input: no token, wrong token, token in the query, oversized body, malformed
//!   JSON, invalid targets, `everything` without confirm, unknown provider, the POST rate:
//!   each the documented status, and nothing queued;
//! - failover: two instances on one PostgreSQL journal, one SIGKILLed mid-way; every run ends
//!   done, every target in exactly one final state, no rate-limit rejection, few batches
//!   re-sent. `PURGEKIT_FAILOVER_RUNS=N` submits N runs (default 24: the issue's 1,000 take
//!   about 850 s, bound by Limelight's emulated item rate, beyond the whole suite's 10-minute
//!   budget; `.ci/run` runs them after the suite).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod service;
use service::{BIN, PROVIDERS, Server, emulators, emulators_of, postgres, temp_dir, urls};

const TOKEN: &str = "test-token-0123456789abcdef";

/// docs/api.yaml, and what the tests exercised of it.
struct Spec {
    doc: Value,
    exercised: Mutex<BTreeSet<(String, String, String)>>,
}

impl Spec {
    fn load() -> Spec {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.yaml"),
        )
        .unwrap();
        Spec {
            doc: serde_yaml_ng::from_str(&text).unwrap(),
            exercised: Mutex::new(BTreeSet::new()),
        }
    }

    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        while let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            node = self
                .doc
                .pointer(reference.strip_prefix('#').unwrap())
                .unwrap_or_else(|| panic!("docs/api.yaml: dangling {reference}"));
        }
        node
    }

    /// Checks a response against the spec: its route, method and status documented, its
    /// content type, its body against the schema. Returns the body as JSON (if it is).
    fn check(&self, route: &str, method: &str, status: u16, ctype: &str, body: &str) -> Value {
        let operation = self
            .doc
            .pointer(&format!("/paths/{}/{method}", route.replace('/', "~1")))
            .unwrap_or_else(|| panic!("{method} {route} is not in docs/api.yaml"));
        let response = operation["responses"]
            .get(status.to_string())
            .unwrap_or_else(|| {
                panic!("{method} {route} → {status} is not in docs/api.yaml: {body}")
            });
        let response = self.resolve(response);
        let media = ctype.split(';').next().unwrap().trim();
        let content = response["content"]
            .get(media)
            .unwrap_or_else(|| panic!("{method} {route} → {status}: {media} undocumented"));
        self.exercised.lock().unwrap().insert((
            route.to_owned(),
            method.to_owned(),
            status.to_string(),
        ));
        if media.ends_with("json") {
            let value: Value = serde_json::from_str(body).unwrap();
            self.validate(
                &content["schema"],
                &value,
                &format!("{method} {route} {status}"),
            );
            value
        } else {
            Value::String(body.to_owned())
        }
    }

    /// A small JSON Schema check: types (nullable as `[T, "null"]`), enums, required, and every
    /// object closed (a field the spec does not name fails).
    fn validate(&self, schema: &Value, value: &Value, at: &str) {
        let schema = self.resolve(schema);
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let type_ok = types.is_empty()
            || types.iter().any(|t| match *t {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "boolean" => value.is_boolean(),
                "null" => value.is_null(),
                _ => false,
            });
        assert!(type_ok, "{at}: {value} is not {types:?}");
        if let Some(choices) = schema["enum"].as_array() {
            assert!(choices.contains(value), "{at}: {value} not in {choices:?}");
        }
        if let Value::Object(fields) = value {
            let properties = schema["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap();
                assert!(
                    fields.contains_key(name),
                    "{at}: `{name}` missing in {value}"
                );
            }
            for (name, field) in fields {
                let property = properties
                    .get(name)
                    .unwrap_or_else(|| panic!("{at}: field `{name}` is not in docs/api.yaml"));
                self.validate(property, field, &format!("{at}.{name}"));
            }
        }
        if let Value::Array(items) = value {
            for (i, item) in items.iter().enumerate() {
                self.validate(&schema["items"], item, &format!("{at}[{i}]"));
            }
        }
    }

    /// Every (route, method, status) documented.
    fn documented(&self) -> BTreeSet<(String, String, String)> {
        let mut all = BTreeSet::new();
        for (route, operations) in self.doc["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                for status in operation["responses"].as_object().unwrap().keys() {
                    all.insert((route.clone(), method.clone(), status.clone()));
                }
            }
        }
        all
    }
}

/// An API client that checks every answer against the spec.
struct Client<'a> {
    http: reqwest::Client,
    base: String,
    spec: &'a Spec,
    runtime: &'a tokio::runtime::Runtime,
}

/// An answer: status, headers, body (JSON when it is).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Client<'_> {
    /// `method path` (the route it matches: `route`), with `token`, body `body`, headers.
    fn call(
        &self,
        method: &str,
        route: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.runtime.block_on(async {
            let mut request = self.http.request(
                method.to_uppercase().parse().unwrap(),
                format!("{}{path}", self.base),
            );
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let ctype = headers
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let text = response.text().await.unwrap();
            let body = self.spec.check(route, method, status, &ctype, &text);
            Answer {
                status,
                headers,
                body,
            }
        })
    }

    fn get(&self, route: &str, path: &str) -> Answer {
        self.call("get", route, path, Some(TOKEN), None, &[])
    }

    fn post(&self, body: &Value, headers: &[(&str, &str)]) -> Answer {
        let body = serde_json::to_vec(body).unwrap();
        self.call(
            "post",
            "/v1/purges",
            "/v1/purges",
            Some(TOKEN),
            Some(body),
            headers,
        )
    }

    /// Polls a run until `done`; its last state.
    fn until_done(&self, id: &str, within: Duration) -> Value {
        let started = Instant::now();
        loop {
            let run = self.get("/v1/purges/{id}", &format!("/v1/purges/{id}?limit=10000"));
            assert_eq!(run.status, 200);
            if run.body["state"] == "done" {
                return run.body;
            }
            assert!(
                started.elapsed() < within,
                "run {id} not done: {}",
                run.body
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The purges submitted so far, from the metrics.
    fn submitted(&self) -> u64 {
        let metrics = self.get("/metrics", "/metrics");
        metrics
            .body
            .as_str()
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("purgekit_purges_submitted_total "))
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// The whole API on the journal at `journal`.
fn api_end_to_end(journal: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = temp_dir("api");
    let server_table = format!(
        "[server]\ntokens = [\"{TOKEN}\", \"${{SECOND_TOKEN}}\"]\nposts_per_minute = 30\n\
         max_body_bytes = 65536"
    );
    let (sandbox, config) = emulators(&runtime, 10.0, &server_table, &dir);
    let env = [("SECOND_TOKEN", "second-token-0123456789")];
    let server = Server::start(&config, journal, &dir, "2", &env);
    let spec = Spec::load();
    let client = Client {
        http: reqwest::Client::builder().build().unwrap(),
        base: server.base.clone(),
        spec: &spec,
        runtime: &runtime,
    };

    // Health without a token; the rest needs one.
    let health = client.call("get", "/healthz", "/healthz", None, None, &[]);
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (200, Some("ok"))
    );
    for (route, path) in [
        ("/readyz", "/readyz"),
        ("/metrics", "/metrics"),
        ("/v1/providers", "/v1/providers"),
        (
            "/v1/purges/{id}",
            "/v1/purges/00000000000000000000000000000000",
        ),
        (
            "/v1/purges/{id}/events",
            "/v1/purges/00000000000000000000000000000000/events",
        ),
    ] {
        for token in [None, Some("wrong-token-0123456789")] {
            let answer = client.call("get", route, path, token, None, &[]);
            assert_eq!(answer.status, 401, "{path} {token:?}");
            assert!(answer.headers.contains_key("www-authenticate"));
        }
    }
    assert_eq!(client.get("/readyz", "/readyz").status, 200);
    let providers = client.get("/v1/providers", "/v1/providers");
    let names: Vec<&str> = providers.body["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, PROVIDERS);

    // Bad input: each its status and message, nothing queued.
    let bad: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{\"targets\": [\"https://x.example/a\",".to_vec(), 400, "EOF"),
        (br#"{"targets": [1]}"#.to_vec(), 400, "`targets[0]`"),
        (br#"{"targets": [], "options": {"delet": true}}"#.to_vec(), 400, "`options.delet`"),
        (br#"{"targets": ["homepage"]}"#.to_vec(), 422, "did you mean tag:homepage?"),
        (br#"{"targets": ["everything"]}"#.to_vec(), 422, "\"confirm\": true"),
        (br#"{"targets": []}"#.to_vec(), 422, "nothing to purge"),
        (
            br#"{"targets": ["https://images.example.com/a"], "providers": ["nope"]}"#.to_vec(),
            422,
            "nope",
        ),
        (
            br#"{"targets": ["https://images.example.com/a"], "options": {"notify": ["not-an-email"]}}"#
                .to_vec(),
            422,
            "not-an-email",
        ),
        (vec![b' '; 70_000], 413, "65536"),
    ];
    for (body, status, says) in bad {
        let answer = client.call(
            "post",
            "/v1/purges",
            "/v1/purges",
            Some(TOKEN),
            Some(body),
            &[],
        );
        assert_eq!(answer.status, status, "{}", answer.body);
        let detail = answer.body["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{detail:?} does not say {says:?}");
    }
    let good = json!({ "targets": urls("a", 3), "providers": ["level3"] });
    let refused = [
        client.call(
            "post",
            "/v1/purges",
            "/v1/purges",
            None,
            Some(good.to_string().into()),
            &[],
        ),
        client.call(
            "post",
            "/v1/purges",
            "/v1/purges?access_token=x",
            Some(TOKEN),
            Some(good.to_string().into()),
            &[],
        ),
    ];
    assert_eq!(
        refused.iter().map(|a| a.status).collect::<Vec<_>>(),
        [401, 400]
    );
    assert_eq!(client.submitted(), 0, "bad input queued a run");

    // A purge on every provider, by both tokens; the same Idempotency-Key, the same run.
    let targets = urls("spring", 120);
    let body = json!({ "targets": targets, "options": { "note": "spring" } });
    let first = client.post(&body, &[("Idempotency-Key", "deploy-42")]);
    assert_eq!(first.status, 202, "{}", first.body);
    let id = first.body["id"].as_str().unwrap().to_owned();
    assert_eq!(first.body["status_url"], format!("/v1/purges/{id}"));
    let again = client.call(
        "post",
        "/v1/purges",
        "/v1/purges",
        Some("second-token-0123456789"),
        Some(body.to_string().into()),
        &[("Idempotency-Key", "deploy-42")],
    );
    assert_eq!(
        (again.status, again.body["id"].as_str()),
        (202, Some(id.as_str()))
    );
    assert_eq!(client.submitted(), 1);

    // Its progress as server-sent events, to the end.
    let events = client.get("/v1/purges/{id}/events", &format!("/v1/purges/{id}/events"));
    let text = events.body.as_str().unwrap();
    let mut names = Vec::new();
    for block in text
        .split("\n\n")
        .filter(|b| !b.trim().is_empty() && !b.starts_with(':'))
    {
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .unwrap();
        let data = block
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap();
        let schema = &spec.doc["paths"]["/v1/purges/{id}/events"]["get"]["responses"]["200"]["content"]
            ["text/event-stream"]["schema"];
        spec.validate(schema, &serde_json::from_str(data).unwrap(), "event");
        names.push(name.to_owned());
    }
    assert_eq!(names.last().map(String::as_str), Some("done"), "{text}");

    // Done: one row per target and provider, each in one final state.
    let run = client.until_done(&id, Duration::from_secs(60));
    let rows = run["rows"].as_array().unwrap();
    assert_eq!(rows.len(), targets.len() * PROVIDERS.len(), "{run}");
    let mut seen = HashMap::new();
    for row in rows {
        assert!(
            ["accepted", "completed"].contains(&row["state"].as_str().unwrap()),
            "{row}"
        );
        *seen
            .entry((row["target"].to_string(), row["provider"].to_string()))
            .or_insert(0) += 1;
    }
    assert!(seen.values().all(|&n| n == 1), "a target has two rows");
    assert_eq!(run["summary"]["total"], rows.len());
    for emulator in PROVIDERS {
        let purged = sandbox.emulator(emulator).unwrap().purged();
        assert!(!purged.is_empty(), "{emulator} purged nothing");
    }

    // Pages: limit and cursor walk the rows; a state filter.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/purges/{id}?limit=100&cursor={c}"),
            None => format!("/v1/purges/{id}?limit=100"),
        };
        let page = client.get("/v1/purges/{id}", &path);
        assert_eq!(page.body["summary"], run["summary"]);
        walked.extend(page.body["rows"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(&walked, rows);
    // A state filter pages through the rows in that state; the summary still counts all.
    let state = rows[0]["state"].as_str().unwrap();
    let in_state: Vec<&Value> = rows.iter().filter(|r| r["state"] == state).collect();
    let page = client.get(
        "/v1/purges/{id}",
        &format!("/v1/purges/{id}?state={state}&limit=7&cursor=3"),
    );
    let expected: Vec<&Value> = in_state.iter().skip(3).take(7).copied().collect();
    assert_eq!(page.body["rows"], json!(expected));
    assert_eq!(page.body["next_cursor"].is_string(), in_state.len() > 10);
    assert_eq!(page.body["summary"], run["summary"]);
    let failed = client.get("/v1/purges/{id}", &format!("/v1/purges/{id}?state=failed"));
    assert_eq!(failed.body["rows"], json!([]));
    for query in ["state=lost", "limit=0", "cursor=x", "colour=red"] {
        let bad = client.get("/v1/purges/{id}", &format!("/v1/purges/{id}?{query}"));
        assert_eq!(bad.status, 400, "{query}");
    }
    for path in [
        "/v1/purges/nope",
        "/v1/purges/0123456789abcdef0123456789abcdef",
    ] {
        assert_eq!(client.get("/v1/purges/{id}", path).status, 404);
    }
    let missing = "/v1/purges/0123456789abcdef0123456789abcdef/events";
    assert_eq!(client.get("/v1/purges/{id}/events", missing).status, 404);

    // The metrics.
    let metrics = client.get("/metrics", "/metrics");
    let text = metrics.body.as_str().unwrap();
    for line in [
        "purgekit_rows_total{provider=\"level3\",state=\"accepted\"} 120",
        "purgekit_provider_requests_total{provider=\"level3\"}",
        "purgekit_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/purges\",status=\"202\"} 2",
    ] {
        assert!(text.contains(line), "no {line} in\n{text}");
    }
    // Each request's turn is claimed in the journal's shared schedule: some wait is counted.
    let waited = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("purgekit_rate_limit_wait_seconds_total{provider=\"level3\"} ")
        })
        .and_then(|v| v.parse::<f64>().ok());
    assert!(waited.is_some_and(|w| w > 0.0), "{text}");
    assert!(
        !text.contains(TOKEN) && !text.contains("second-token"),
        "a token in the metrics"
    );
    assert!(
        !text.contains("purgekit_provider_rejections_total{"),
        "{text}"
    );

    // The POST rate: 30 a minute a token, then 429 with Retry-After; nothing queued.
    let mut limited = None;
    for _ in 0..40 {
        let answer = client.call(
            "post",
            "/v1/purges",
            "/v1/purges",
            Some(TOKEN),
            Some(b"{}".to_vec()),
            &[],
        );
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
        assert_eq!(answer.status, 400);
    }
    let limited = limited.expect("no 429 after 40 POSTs at 30 a minute");
    let after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&after), "Retry-After {after}");
    assert_eq!(client.submitted(), 1);

    // An undocumented route is a 404 problem (and that 404 is documented for purges only).
    let answer = runtime.block_on(async {
        client
            .http
            .get(format!("{}/v1/nothing", server.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    });
    assert_eq!(answer.status(), 404);

    // Every documented route and status was exercised but those this test cannot cause
    // (a journal that stops answering).
    let mut missed: Vec<_> = spec
        .documented()
        .difference(&spec.exercised.lock().unwrap())
        .cloned()
        .collect();
    missed.retain(|(route, _, status)| !(route == "/readyz" && status == "503"));
    assert!(
        missed.is_empty(),
        "documented but not exercised: {missed:?}"
    );

    // SIGTERM: exit 0.
    assert_eq!(server.terminate(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_api_end_to_end_on_sqlite() {
    let dir = temp_dir("sqlite");
    api_end_to_end(dir.join("journal.sqlite3").to_str().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_api_end_to_end_on_postgres() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, drop_schema) = postgres(&runtime);
    let outcome = std::panic::catch_unwind(|| api_end_to_end(&url));
    drop_schema();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Two instances on one PostgreSQL journal, `runs` submissions of 50 URLs spread over three
/// providers; one instance SIGKILLed after a few runs are done.
fn failover(runs: usize) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, drop_schema) = postgres(&runtime);
    let outcome = std::panic::catch_unwind(|| {
        let dir = temp_dir("failover");
        let (sandbox, config) = emulators(&runtime, 20.0, "", &dir);
        // Each answer 300 ms late: the kill lands while batches are being sent.
        for kind in PROVIDERS {
            let emulator = sandbox.emulator(kind).unwrap();
            emulator
                .faults()
                .always(purgekit::emulator::Fault::Latency(Duration::from_millis(
                    300,
                )));
        }
        let victim = Server::start(&config, &url, &dir, "2", &[]);
        let survivor = Server::start(&config, &url, &dir, "2", &[]);
        let spec = Spec::load();
        let client = |base: &str| Client {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            spec: &spec,
            runtime: &runtime,
        };
        let (a, b) = (client(&victim.base), client(&survivor.base));
        let mut ids = Vec::new();
        for i in 0..runs {
            let provider = PROVIDERS[i % PROVIDERS.len()];
            let body = json!({ "targets": urls(&format!("r{i}"), 50), "providers": [provider] });
            let answer = if i % 2 == 0 { &a } else { &b }.post(&body, &[]);
            assert_eq!(answer.status, 202, "{}", answer.body);
            ids.push(answer.body["id"].as_str().unwrap().to_owned());
        }
        // Mid-way: some runs done, others not.
        let started = Instant::now();
        loop {
            let done = ids
                .iter()
                .filter(|id| {
                    b.get("/v1/purges/{id}", &format!("/v1/purges/{id}?limit=1"))
                        .body["state"]
                        == "done"
                })
                .count();
            // A minute, and a quarter second a run beyond (PURGEKIT_FAILOVER_RUNS).
            let within = Duration::from_secs(60) + Duration::from_millis(250) * runs as u32;
            assert!(started.elapsed() < within, "no progress");
            if done >= runs / 4 {
                assert!(done < runs, "every run was done before the kill");
                break;
            }
            // Each look reads every run: not so often that the looking loads the machine.
            std::thread::sleep(Duration::from_millis(250));
        }
        drop(victim); // SIGKILL
        for id in &ids {
            let run = b.until_done(id, Duration::from_secs(120));
            let rows = run["rows"].as_array().unwrap();
            let targets: BTreeSet<&str> =
                rows.iter().map(|r| r["target"].as_str().unwrap()).collect();
            assert_eq!((rows.len(), targets.len()), (50, 50), "{run}");
            for row in rows {
                assert!(
                    ["accepted", "completed"].contains(&row["state"].as_str().unwrap()),
                    "{row}"
                );
            }
        }
        // Nothing lost, no rejection, re-sent batches within the victim's 2 in flight.
        let mut resent = 0;
        for kind in PROVIDERS {
            let emulator = sandbox.emulator(kind).unwrap();
            let rejected: Vec<u16> = emulator
                .requests()
                .iter()
                .map(|r| r.status)
                .filter(|s| [429, 503].contains(s))
                .collect();
            assert!(rejected.is_empty(), "{kind} rejected: {rejected:?}");
            let purged = emulator.purged();
            let unique: BTreeSet<&String> = purged.iter().collect();
            let expected = (0..runs)
                .filter(|i| PROVIDERS[i % PROVIDERS.len()] == kind)
                .count();
            assert_eq!(unique.len(), expected * 50, "{kind}: a target was lost");
            resent += (purged.len() - unique.len()).div_ceil(50);
        }
        assert!(
            resent <= 2,
            "{resent} batches re-sent, more than the 2 in flight"
        );
        assert_eq!(survivor.terminate(), Some(0));
        let _ = std::fs::remove_dir_all(&dir);
    });
    drop_schema();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn a_sigkilled_instance_s_runs_are_finished_by_the_other() {
    let runs = std::env::var("PURGEKIT_FAILOVER_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24);
    failover(runs);
}

/// A target submitted again while an earlier run still has it queued (same account and
/// options) is purged once, with the earlier run's batch; both runs report it; the metrics
/// count it. Then the same per target, for two submissions overlapping in part and sent back
/// to back (neither taken by a worker yet).
#[test]
fn a_target_submitted_again_while_queued_is_purged_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = temp_dir("coalesce");
    let window = [
        "level3.rate_window=3s".to_owned(),
        "level3.requests_per_window=1".to_owned(),
    ];
    let (sandbox, config) = emulators_of(&runtime, &["level3"], 1.0, &window, "", &dir);
    let journal = dir.join("journal.sqlite3");
    let server = Server::start(&config, journal.to_str().unwrap(), &dir, "3", &[]);
    let spec = Spec::load();
    let client = Client {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        spec: &spec,
        runtime: &runtime,
    };
    let submit = |targets: Vec<String>| {
        let answer = client.post(&json!({ "targets": targets }), &[]);
        assert_eq!(answer.status, 202, "{}", answer.body);
        answer.body["id"].as_str().unwrap().to_owned()
    };
    let state = |id: &str| {
        client
            .get("/v1/purges/{id}", &format!("/v1/purges/{id}"))
            .body
    };
    // The first run takes the only request of the window; the second waits behind it.
    let filler = submit(urls("filler", 50));
    client.until_done(&filler, Duration::from_secs(30));
    let first = submit(urls("shared", 50));
    let started = Instant::now();
    while state(&first)["state"] != "running" {
        assert!(started.elapsed() < Duration::from_secs(30), "not taken");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    // Still waiting for its turn (journaled `sending` before it is paced), not accepted.
    let batches = state(&first)["batches"].clone();
    assert_eq!(batches["accepted"], 0, "sent before the window: {batches}");
    let second = submit(urls("shared", 50));
    let (a, b) = (
        client.until_done(&first, Duration::from_secs(30)),
        client.until_done(&second, Duration::from_secs(30)),
    );
    for run in [&a, &b] {
        let rows = run["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 50);
        assert!(rows.iter().all(|r| r["state"] == "accepted"), "{run}");
    }
    let level3 = sandbox.emulator("level3").unwrap();
    assert_eq!(
        level3.requests().iter().filter(|r| r.status == 200).count(),
        2
    );
    assert_eq!(
        level3.purged().len(),
        100,
        "the shared targets were sent twice"
    );

    // Two submissions sharing 40 of their 70 targets, sent back to back while the window is
    // spent (neither taken yet when the second arrives): the workers take both at once, plans
    // on one account are written one at a time, so the later one's shared targets follow the
    // earlier one's batch (which also holds targets of its own) and its own 30 are sent alone.
    client.until_done(&submit(urls("filler-2", 50)), Duration::from_secs(30));
    let shared = urls("partly", 40);
    let with = |own: &str| [shared.clone(), urls(own, 30)].concat();
    let (first, second) = (submit(with("first")), submit(with("second")));
    let (a, b) = (
        client.until_done(&first, Duration::from_secs(30)),
        client.until_done(&second, Duration::from_secs(30)),
    );
    for run in [&a, &b] {
        let rows = run["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 70);
        assert!(rows.iter().all(|r| r["state"] == "accepted"), "{run}");
    }
    let purged = level3.purged();
    let distinct: BTreeSet<&String> = purged.iter().collect();
    assert_eq!(distinct.len(), 100 + 50 + 100, "every target purged");
    assert_eq!(
        purged.len(),
        100 + 50 + 100,
        "a shared target was sent twice"
    );
    // The filler's, the earlier run's, and the later run's own 30.
    assert_eq!(
        level3.requests().iter().filter(|r| r.status == 200).count(),
        2 + 3
    );
    let metrics = client.get("/metrics", "/metrics");
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains("purgekit_targets_coalesced_total{provider=\"level3\"} 90"),
        "{text}"
    );
    assert_eq!(server.terminate(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run the service can run only in part (one of its providers left the config after it was
/// queued) ends `done`: the provider still configured runs its targets, each target of the one
/// gone fails once with the reason; nothing is sent for it.
#[test]
fn a_run_that_cannot_run_ends_done_with_every_target_failed_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = temp_dir("unrunnable");
    let journal = dir.join("journal.sqlite3");
    let journal = journal.to_str().unwrap();
    let spec = Spec::load();
    let client = |server: &Server| Client {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        spec: &spec,
        runtime: &runtime,
    };
    // Queued by an instance that only accepts (no worker) and knows both providers.
    let (_all, config) = emulators(&runtime, 10.0, "", &dir);
    let accepting = Server::start(&config, journal, &dir, "0", &[]);
    let body = json!({ "targets": urls("unrunnable", 5), "providers": ["level3", "limelight"] });
    let answer = client(&accepting).post(&body, &[]);
    assert_eq!(answer.status, 202, "{}", answer.body);
    let id = answer.body["id"].as_str().unwrap().to_owned();
    drop(accepting);
    // Run by an instance whose config has no `limelight` any more.
    let smaller = temp_dir("unrunnable-smaller");
    let (sandbox, config) = emulators_of(&runtime, &["level3"], 10.0, &[], "", &smaller);
    let server = Server::start(&config, journal, &smaller, "1", &[]);
    let run = client(&server).until_done(&id, Duration::from_secs(30));
    let rows = run["rows"].as_array().unwrap();
    let mut seen = BTreeSet::new();
    for row in rows {
        if row["provider"] == "level3" {
            assert_eq!(row["state"], "accepted", "{row}");
        } else {
            assert_eq!(row["state"], "failed", "{row}");
            let error = row["error"].as_str().unwrap();
            assert!(
                error.starts_with("not run: ") && error.contains("limelight"),
                "{error}"
            );
        }
        let pair = (row["target"].to_string(), row["provider"].to_string());
        assert!(
            seen.insert(pair),
            "two rows for one target and provider: {run}"
        );
    }
    assert_eq!(rows.len(), 10, "{run}");
    assert_eq!(run["summary"]["failed"], 5);
    assert_eq!(sandbox.emulator("level3").unwrap().purged().len(), 5);
    let metrics = client(&server).get("/metrics", "/metrics");
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains("purgekit_rows_total{provider=\"limelight\",state=\"failed\"} 5"),
        "{text}"
    );
    assert_eq!(server.terminate(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&smaller);
}

/// No head-of-line blocking: 5 runs queued on an account allowing 1 request a second, then one
/// on another account; with 2 workers the later run is taken at once (the workers share the
/// accounts: one unit of each) and ends `done` while the slow runs still go, paced, none
/// rejected. (Leased per run, it waited for 3 of the slow runs to end first.)
#[test]
fn a_run_on_a_free_account_is_not_queued_behind_a_slow_one() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = temp_dir("head-of-line");
    let window = [
        "level3.rate_window=10s".to_owned(),
        "level3.requests_per_window=1".to_owned(),
    ];
    let (sandbox, config) =
        emulators_of(&runtime, &["level3", "limelight"], 10.0, &window, "", &dir);
    let journal = dir.join("journal.sqlite3");
    let journal = journal.to_str().unwrap();
    let spec = Spec::load();
    let client = |server: &Server| Client {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        spec: &spec,
        runtime: &runtime,
    };
    // Everything queued first, by an instance that only accepts.
    let accepting = Server::start(&config, journal, &dir, "0", &[]);
    let submit = |provider: &str, name: &str| {
        let body = json!({ "targets": urls(name, 3), "providers": [provider] });
        let answer = client(&accepting).post(&body, &[]);
        assert_eq!(answer.status, 202, "{}", answer.body);
        answer.body["id"].as_str().unwrap().to_owned()
    };
    let slow: Vec<String> = (0..5)
        .map(|i| submit("level3", &format!("slow{i}")))
        .collect();
    let fast = submit("limelight", "fast");
    let queued = client(&accepting).get("/metrics", "/metrics");
    let text = queued.body.as_str().unwrap().to_owned();
    assert!(
        text.lines()
            .any(|l| l.starts_with("purgekit_queued_runs{account=\"level3/") && l.ends_with(" 5")),
        "{text}"
    );
    drop(accepting);
    let server = Server::start(&config, journal, &dir, "2", &[]);
    let c = client(&server);
    c.until_done(&fast, Duration::from_secs(30));
    let state = |id: &str| {
        c.get("/v1/purges/{id}", &format!("/v1/purges/{id}?limit=1"))
            .body
    };
    let slow_done = slow
        .iter()
        .filter(|id| state(id)["state"] == "done")
        .count();
    assert!(
        slow_done <= 2,
        "the run on the free account waited for {slow_done} slow runs"
    );
    for id in &slow {
        let run = c.until_done(id, Duration::from_secs(30));
        assert_eq!(run["summary"]["accepted"], 3, "{run}");
    }
    let level3 = sandbox.emulator("level3").unwrap();
    let statuses: Vec<u16> = level3.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200; 5], "one request a run, none rejected");
    assert_eq!(server.terminate(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `purgekit submit` and `purgekit status --server` against a service, the server and the
/// token from the environment.
#[test]
fn the_cli_submits_and_reads_runs() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = temp_dir("client");
    let server_table = format!("[server]\ntokens = [\"{TOKEN}\"]");
    let (_sandbox, config) = emulators(&runtime, 10.0, &server_table, &dir);
    let journal = dir.join("journal.sqlite3");
    let server = Server::start(&config, journal.to_str().unwrap(), &dir, "2", &[]);
    let cli = |args: &[&str], token: &str| {
        Command::new(BIN)
            .args(args)
            .env_remove("PURGEKIT_CONFIG")
            .env("PURGEKIT_SERVER", &server.base)
            .env("PURGEKIT_API_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let targets = urls("cli", 3);
    let mut args = vec!["submit", "--wait", "--json", "--provider", "level3"];
    args.extend(targets.iter().map(String::as_str));
    let waited = cli(&args, TOKEN);
    let stderr = String::from_utf8_lossy(&waited.stderr);
    assert_eq!(waited.status.code(), Some(0), "{stderr}");
    let run: Value = serde_json::from_slice(&waited.stdout).unwrap();
    assert_eq!(run["state"], "done");
    assert_eq!(run["rows"].as_array().unwrap().len(), 3);
    let id = run["id"].as_str().unwrap();

    let shown = cli(&["status", id], TOKEN);
    assert_eq!(shown.status.code(), Some(0));
    let table = String::from_utf8_lossy(&shown.stdout);
    assert!(table.starts_with(&format!("run {id} done")), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.contains("level3")).count(),
        3,
        "{table}"
    );

    let queued = cli(&["submit", &targets[0]], TOKEN);
    assert_eq!(queued.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&queued.stdout).trim().len(), 32);

    // Refusals: the service's message, exit 2.
    let bad = cli(&["submit", "homepage"], TOKEN);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("did you mean tag:homepage?"));
    let unauthorized = cli(&["submit", &targets[0]], "not-the-token-0123456789");
    assert_eq!(unauthorized.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&unauthorized.stderr);
    assert!(
        stderr.contains("401") && !stderr.contains("not-the-token"),
        "{stderr}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
