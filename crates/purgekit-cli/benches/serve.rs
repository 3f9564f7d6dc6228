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

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use purgekit::Registry;
use purgekit::emulator::{Fault, adjust_all};
use purgekit::sandbox::Sandbox;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_purgekit");
const PROVIDERS: [&str; 3] = ["cloudfront", "level3", "limelight"];

struct Server(Child, String);

impl Server {
    fn start(config: &Path, journal: &str, workers: &str) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .args(["--journal", journal, "--workers", workers])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("purgekit: serving on ")
            .expect("serve prints its address")
            .to_owned();
        Server(child, base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "purgekit-serve-bench-{}-{tag}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn emulators(rt: &tokio::runtime::Runtime, speed: f64, dir: &Path) -> (Sandbox, PathBuf) {
    let emulators = adjust_all(
        purgekit::emulator::sandbox()
            .into_iter()
            .filter(|e| PROVIDERS.contains(&e.kind()))
            .collect(),
        speed,
        &[],
    )
    .unwrap();
    let sandbox = rt
        .block_on(Sandbox::start_with(
            emulators,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            0,
            &Registry::builtin(),
        ))
        .unwrap();
    let config = dir.join("purgekit.toml");
    // The per-token POST limit out of the way: the bench measures the service, not the limit.
    let server = "[server]\nposts_per_minute = 100000000\n";
    std::fs::write(&config, format!("{}\n{server}", sandbox.config_toml())).unwrap();
    (sandbox, config)
}

fn urls(name: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("https://images.example.com/is/image/PurgekitDemo/{name}/{i}.jpg"))
        .collect()
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
    let (_sandbox, config) = emulators(rt, 1.0, dir);
    let server = Server::start(&config, journal, "0");
    const TOTAL: usize = 4000;
    const CLIENTS: usize = 16;
    let http = reqwest::Client::new();
    let body = Arc::new(json!({ "targets": urls("submit", 100), "providers": ["level3"] }));
    let started = Instant::now();
    let latencies: Vec<f64> = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let (http, base, body) = (http.clone(), server.1.clone(), body.clone());
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
    let (sandbox, config) = emulators(rt, 100.0, dir);
    let journal = dir.join("first.sqlite3");
    let server = Server::start(&config, journal.to_str().unwrap(), "2");
    let http = reqwest::Client::new();
    let level3 = sandbox.emulator("level3").unwrap();
    let mut times = Vec::new();
    for i in 0..40 {
        let before = level3.requests().len();
        let body = json!({ "targets": urls(&format!("first{i}"), 1), "providers": ["level3"] });
        let at = Instant::now();
        rt.block_on(post(&http, &server.1, &body));
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
    let (sandbox, config) = emulators(rt, 1000.0, dir);
    for kind in PROVIDERS {
        let emulator = sandbox.emulator(kind).unwrap();
        emulator
            .faults()
            .always(Fault::Latency(Duration::from_millis(100)));
    }
    let servers: Vec<Server> = (0..instances)
        .map(|_| Server::start(&config, journal, "2"))
        .collect();
    const RUNS: usize = 60;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let ids: Vec<(String, String)> = (0..RUNS)
        .map(|i| {
            let base = &servers[i % instances].1;
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

/// A fresh PostgreSQL schema's journal URL.
fn postgres_schema(rt: &tokio::runtime::Runtime, tag: &str) -> String {
    use sqlx::Connection;
    let base = std::env::var("PURGEKIT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("purgekit_serve_bench_{tag}_{:08x}", fastrand::u32(..));
    let mut admin = rt
        .block_on(sqlx::PgConnection::connect(&base))
        .unwrap_or_else(|e| panic!("PostgreSQL at PURGEKIT_TEST_POSTGRES ({base}): {e}"));
    rt.block_on(sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin))
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = temp_dir("bench");
    let sqlite = dir.join("submit.sqlite3");
    submit(&rt, "serve_submit_sqlite", sqlite.to_str().unwrap(), &dir);
    submit(
        &rt,
        "serve_submit_postgres",
        &postgres_schema(&rt, "submit"),
        &dir,
    );
    first_batch(&rt, &dir);
    let one = scale(&rt, 1, &postgres_schema(&rt, "one"), &dir);
    let two = scale(&rt, 2, &postgres_schema(&rt, "two"), &dir);
    println!(
        "{}",
        json!({ "case": "serve_scale_ratio", "ratio": two / one, "load": load() })
    );
    let _ = std::fs::remove_dir_all(&dir);
}
