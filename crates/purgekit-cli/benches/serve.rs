//! `purgekit serve` under load: child `serve` processes (this build's binary) over loopback,
//! the emulators served by this process. One JSON line per case:
//!
//! - `serve_submit_sqlite` / `serve_submit_postgres`: submissions of 100 URLs accepted per
//!   second by one instance with no worker (`--workers 0`: the API alone), 16 clients at once,
//!   with the p50/p99 latency of `POST /v1/purges` (target ≥ 2,000/s on SQLite);
//! - `serve_first_batch`: from a submission to its first batch accepted by the Level 3
//!   emulator, no rate limit binding, one instance on SQLite with 2 idle workers (p50 ≤ 50 ms);
//! - `serve_scale_postgres_1` / `_2`: runs of 100 URLs over three providers finished per second
//!   by one and by two instances (2 workers each) on one PostgreSQL journal, each emulator
//!   answering 100 ms late and its limits (at 1,000× the documented rates, so that they do not
//!   bind: the instances do) enforced: the
//!   `rejections` must be 0 and the ratio ≥ 1.6.
//!
//! Each line has the machine's load average (`/proc/loadavg`) when the case ended.
//! Run with `cargo bench -p purgekit-cli --bench serve`; PostgreSQL at `PURGEKIT_TEST_POSTGRES`
//! (default `postgres://postgres@127.0.0.1:5432/test`), a schema of its own.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use purgekit::emulator::Fault;
use serde_json::{Value, json};

#[path = "../tests/service/mod.rs"]
mod service;
use service::{PROVIDERS, Server, emulators, postgres, temp_dir, urls};

/// The per-token POST limit out of the way: the bench measures the service, not the limit.
const SERVER: &str = "[server]\nposts_per_minute = 100000000";

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn post(http: &reqwest::Client, base: &str, body: &Value) -> String {
    let answer = http
        .post(format!("{base}/v1/purges"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    let value: Value = answer.json().await.unwrap();
    value["id"].as_str().unwrap().to_owned()
}

/// Submissions/s with 16 clients, and the POST latencies.
fn submit(rt: &tokio::runtime::Runtime, case: &str, journal: &str, dir: &Path) {
    let (_sandbox, config) = emulators(rt, 1.0, SERVER, dir);
    let server = Server::start(&config, journal, dir, "0", &[]);
    const TOTAL: usize = 4000;
    const CLIENTS: usize = 16;
    let http = reqwest::Client::new();
    let body = Arc::new(json!({ "targets": urls("submit", 100), "providers": ["level3"] }));
    let started = Instant::now();
    let latencies: Vec<f64> = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let (http, base, body) = (http.clone(), server.base.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for _ in 0..TOTAL / CLIENTS {
                    let at = Instant::now();
                    post(&http, &base, &body).await;
                    mine.push(at.elapsed().as_secs_f64() * 1000.0);
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut sorted = latencies;
    sorted.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "case": case, "submissions": TOTAL, "urls_each": 100, "clients": CLIENTS,
            "seconds": seconds, "per_second": TOTAL as f64 / seconds,
            "p50_ms": percentile(&sorted, 0.5), "p99_ms": percentile(&sorted, 0.99),
            "load": load(),
        })
    );
}

/// From a submission to the emulator's first accepted request.
fn first_batch(rt: &tokio::runtime::Runtime, dir: &Path) {
    let (sandbox, config) = emulators(rt, 100.0, SERVER, dir);
    let journal = dir.join("first.sqlite3");
    let server = Server::start(&config, journal.to_str().unwrap(), dir, "2", &[]);
    let http = reqwest::Client::new();
    let level3 = sandbox.emulator("level3").unwrap();
    let mut times = Vec::new();
    for i in 0..40 {
        let before = level3.requests().len();
        let body = json!({ "targets": urls(&format!("first{i}"), 1), "providers": ["level3"] });
        let at = Instant::now();
        rt.block_on(post(&http, &server.base, &body));
        while !level3.requests()[before..].iter().any(|r| r.status == 200) {
            std::thread::sleep(Duration::from_micros(500));
        }
        times.push(at.elapsed().as_secs_f64() * 1000.0);
        // No rate window binds: the next one after this one's window.
        std::thread::sleep(Duration::from_millis(100));
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "case": "serve_first_batch", "submissions": times.len(),
            "p50_ms": percentile(&times, 0.5), "p99_ms": percentile(&times, 0.99),
            "load": load(),
        })
    );
}

/// Runs finished per second by `instances` instances on one PostgreSQL journal.
fn scale(rt: &tokio::runtime::Runtime, instances: usize, journal: &str, dir: &Path) -> f64 {
    let (sandbox, config) = emulators(rt, 1000.0, SERVER, dir);
    for kind in PROVIDERS {
        let emulator = sandbox.emulator(kind).unwrap();
        emulator
            .faults()
            .always(Fault::Latency(Duration::from_millis(100)));
    }
    let servers: Vec<Server> = (0..instances)
        .map(|_| Server::start(&config, journal, dir, "2", &[]))
        .collect();
    const RUNS: usize = 60;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let ids: Vec<(String, String)> = (0..RUNS)
        .map(|i| {
            let base = &servers[i % instances].base;
            let provider = PROVIDERS[i % PROVIDERS.len()];
            let body = json!({
                "targets": urls(&format!("scale{instances}-{i}"), 100), "providers": [provider],
            });
            (base.clone(), rt.block_on(post(&http, base, &body)))
        })
        .collect();
    for (base, id) in &ids {
        loop {
            let run: Value = rt.block_on(async {
                http.get(format!("{base}/v1/purges/{id}?limit=1"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap()
            });
            if run["state"] == "done" {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let rejections: usize = PROVIDERS
        .iter()
        .map(|k| {
            let e = sandbox.emulator(k).unwrap();
            e.requests()
                .iter()
                .filter(|r| [429, 503].contains(&r.status))
                .count()
        })
        .sum();
    let per_second = RUNS as f64 / seconds;
    println!(
        "{}",
        json!({
            "case": format!("serve_scale_postgres_{instances}"), "runs": RUNS, "urls_each": 100,
            "instances": instances, "workers_each": 2, "seconds": seconds,
            "runs_per_second": per_second, "rejections": rejections, "load": load(),
        })
    );
    per_second
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = temp_dir("bench");
    let sqlite = dir.join("submit.sqlite3");
    submit(&rt, "serve_submit_sqlite", sqlite.to_str().unwrap(), &dir);
    let schemas: Vec<_> = (0..3).map(|_| postgres(&rt)).collect();
    submit(&rt, "serve_submit_postgres", &schemas[0].0, &dir);
    first_batch(&rt, &dir);
    let one = scale(&rt, 1, &schemas[1].0, &dir);
    let two = scale(&rt, 2, &schemas[2].0, &dir);
    println!(
        "{}",
        json!({ "case": "serve_scale_ratio", "ratio": two / one, "load": load() })
    );
    for (_, drop_schema) in schemas {
        drop_schema();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
