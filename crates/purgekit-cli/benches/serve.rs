//! `purgekit serve` under load: child `serve` processes (this build's binary) over loopback,
//! the emulators served by this process. One JSON line per case:
//!
//! - `serve_submit_sqlite` / `serve_submit_postgres`: submissions of 100 URLs accepted per
//!   second by one instance with no worker (`--workers 0`: the API alone), 16 clients at once,
//!   64 (`…_64`: a group commit takes more submissions when more wait) and one (`…_1`: each
//!   submission its own commit, the latency of one alone), with the p50/p99
//!   latency of `POST /v1/purges` (target ≥ 2,000/s on SQLite), and the CPU
//!   time the server and this process (the clients: one keep-alive connection each, the body
//!   serialized once) spent per submission;
//! - `serve_first_batch`: from a submission to its first batch accepted by the Level 3
//!   emulator, no rate limit binding, one instance on SQLite with 2 idle workers (p50 ≤ 50 ms);
//! - `serve_scale_postgres_1` / `_2`: runs of 100 URLs over three providers finished per second
//!   by one and by two instances (2 workers each) on one PostgreSQL journal, each emulator
//!   answering 100 ms late and its limits (at 10,000× the documented rates, so that they do
//!   not bind: the instances do) enforced: the
//!   `rejections` must be 0 and the ratio ≥ 1.6.
//!
//! Each line has the machine's load average (`/proc/loadavg`) when the case ended.
//! Run with `cargo bench -p purgekit-cli --bench serve` (`-- NAME`: only the cases whose
//! name holds NAME); PostgreSQL at `PURGEKIT_TEST_POSTGRES`
//! (default `postgres://postgres@127.0.0.1:5432/test`), a schema of its own.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
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

/// A keep-alive HTTP/1.1 connection to `base` (`http://HOST:PORT`) and the `Host` to name:
/// the submit cases' client, kept light (no pool, no redirect handling, bodies serialized once)
/// because it runs on the cores the server is measured on.
async fn connect(base: &str) -> (SendRequest<Full<Bytes>>, String) {
    let host = base.strip_prefix("http://").unwrap().to_owned();
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    (sender, host)
}

/// `POST /v1/purges` with `body` (a submission's JSON) on `sender`: answered 202 with an id.
async fn post_bytes(sender: &mut SendRequest<Full<Bytes>>, host: &str, body: &Bytes) {
    sender.ready().await.unwrap();
    let request = hyper::Request::post("/v1/purges")
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    let answer = sender.send_request(request).await.unwrap();
    assert_eq!(answer.status(), 202);
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    let value: Value = serde_json::from_slice(&body).unwrap();
    assert!(value["id"].is_string(), "{value}");
}

/// CPU time (user and system) used so far by process `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command's `)`: state is field 3, utime and stime fields 14 and 15.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

/// Submissions/s with `clients` clients at once, the POST latencies, and the CPU the server
/// and the bench (its clients) spent per submission.
fn submit(rt: &tokio::runtime::Runtime, case: &str, clients: usize, journal: &str, dir: &Path) {
    let (_sandbox, config) = emulators(rt, 1.0, SERVER, dir);
    let server = Server::start(&config, journal, dir, "0", &[]);
    const TOTAL: usize = 4096;
    let body = json!({ "targets": urls("submit", 100), "providers": ["level3"] });
    let body = Bytes::from(serde_json::to_vec(&body).unwrap());
    let senders: Vec<_> = rt.block_on(async {
        let mut senders = Vec::new();
        for _ in 0..clients {
            senders.push(connect(&server.base).await);
        }
        senders
    });
    let cpu_before = (
        cpu_seconds(server.child.id()),
        cpu_seconds(std::process::id()),
    );
    let started = Instant::now();
    let latencies: Vec<f64> = rt.block_on(async {
        let mut tasks = Vec::new();
        for (mut sender, host) in senders {
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for _ in 0..TOTAL / clients {
                    let at = Instant::now();
                    post_bytes(&mut sender, &host, &body).await;
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
    let per_submission = |before: f64, after: f64| (after - before) * 1000.0 / TOTAL as f64;
    let server_cpu = per_submission(cpu_before.0, cpu_seconds(server.child.id()));
    let bench_cpu = per_submission(cpu_before.1, cpu_seconds(std::process::id()));
    let mut sorted = latencies;
    sorted.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "case": case, "submissions": TOTAL, "urls_each": 100, "clients": clients,
            "seconds": seconds, "per_second": TOTAL as f64 / seconds,
            "p50_ms": percentile(&sorted, 0.5), "p99_ms": percentile(&sorted, 0.99),
            "server_cpu_ms_each": server_cpu, "bench_cpu_ms_each": bench_cpu,
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
    let (sandbox, config) = emulators(rt, 10_000.0, SERVER, dir);
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
    // `cargo bench --bench serve -- NAME`: only the cases whose name holds NAME.
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |case: &str| only.as_deref().is_none_or(|only| case.contains(only));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = temp_dir("bench");
    for clients in [1, 16, 64] {
        let suffix = if clients == 16 {
            String::new()
        } else {
            format!("_{clients}")
        };
        let case = format!("serve_submit_sqlite{suffix}");
        if wanted(&case) {
            let sqlite = dir.join(format!("submit{clients}.sqlite3"));
            submit(&rt, &case, clients, sqlite.to_str().unwrap(), &dir);
        }
        let case = format!("serve_submit_postgres{suffix}");
        if wanted(&case) {
            let (schema, drop_schema) = postgres(&rt);
            submit(&rt, &case, clients, &schema, &dir);
            drop_schema();
        }
    }
    if wanted("serve_first_batch") {
        first_batch(&rt, &dir);
    }
    if wanted("serve_scale") {
        let schemas: Vec<_> = (0..2).map(|_| postgres(&rt)).collect();
        let one = scale(&rt, 1, &schemas[0].0, &dir);
        let two = scale(&rt, 2, &schemas[1].0, &dir);
        println!(
            "{}",
            json!({ "case": "serve_scale_ratio", "ratio": two / one, "load": load() })
        );
        for (_, drop_schema) in schemas {
            drop_schema();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
