//! What the journal costs. `cargo bench --bench journal` runs every case, each in a fresh
//! process (`cargo bench --bench journal -- CASE` runs one); one JSON line per case:
//!
//! - `memory` and `sqlite`: 1,000,000 URLs of 45 bytes validated into a `PurgeRequest` and
//!   planned for Level 3's demo account, in memory (`memory`), and the same with the run and
//!   its plan written to a fresh SQLite journal as a purge does before sending anything
//!   (`sqlite`, which also prints `vs_memory`: its time over the in-memory case's, measured
//!   again in the same process). `peak_bytes` is the peak resident memory above what the process
//!   used before the input was generated (Linux `VmHWM`, reset through `/proc/self/clear_refs`),
//!   `peak_ratio` that over the input's bytes.
//! - `transitions-sqlite` and `transitions-postgres`: batch state transitions written one after
//!   another, each its own durable commit (`sending`, `accepted` with a handle, `completed`
//!   for 300 batches); PostgreSQL at `PURGEKIT_TEST_POSTGRES` (default
//!   `postgres://postgres@127.0.0.1:5432/test`), in a schema of its own, dropped afterwards.
//! - `efficiency-sqlite`: 5,000 URLs = 25 requests through Level 3's emulator under 10 requests
//!   per 600 ms window, journaled: `efficiency` = the least time the limit allows over the time
//!   taken; `rejections` counts the emulator's rate-limit refusals.
//! - `shared-sqlite` and `shared-postgres`: 48,000 URLs (240 requests) on one Level 3 account under
//!   10 requests per 600 ms window, by 1, 2 and 4 purgers at once, each with its own journal
//!   connection and rate limiter sharing the account's schedule through the journal (as separate
//!   processes do): `seconds` per count of purgers, `vs_one` their time over one purger's, and
//!   `rejections`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::peak::{reset_peak, status_kb};
use common::{WINDOW, engine, min_requests_schedule, urls};
use purgekit::emulator::Emulated;
use purgekit::journal::{Journal, JournaledPurger};
use purgekit::sandbox::config_toml;
use purgekit::{
    Config, Outcome, PurgeContext, PurgeRequest, Purger, RateRegistry, RecordedPart, Target,
    plan_following, plan_provider,
};

const URLS: usize = 1_000_000;
const BATCHES: usize = 300;

fn main() {
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let Some(only) = only else {
        let exe = std::env::current_exe().expect("the bench's own path");
        for case in [
            "memory",
            "sqlite",
            "transitions-sqlite",
            "transitions-postgres",
            "efficiency-sqlite",
            "shared-sqlite",
            "shared-postgres",
        ] {
            let status = std::process::Command::new(&exe)
                .arg(case)
                .status()
                .expect("the bench runs itself");
            assert!(status.success(), "case {case} failed");
        }
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        match only.as_str() {
            "memory" => {
                let (seconds, peak, input) = planned(None).await;
                println!(
                    "{{\"case\":\"memory\",\"urls\":{URLS},\"seconds\":{},\"input_bytes\":{input},\
                     \"peak_bytes\":{peak},\"peak_ratio\":{}}}",
                    round(seconds),
                    round(peak as f64 / input as f64)
                );
            }
            "sqlite" => {
                let dir = temp_dir();
                let url = format!("sqlite://{}", dir.join("journal.sqlite3").display());
                let journal = Journal::open(&url).await.expect("opens");
                let (seconds, peak, input) = planned(Some(&journal)).await;
                let (memory, _, _) = planned(None).await;
                println!(
                    "{{\"case\":\"sqlite\",\"urls\":{URLS},\"seconds\":{},\"memory_seconds\":{},\
                     \"vs_memory\":{},\"input_bytes\":{input},\"peak_bytes\":{peak},\
                     \"peak_ratio\":{}}}",
                    round(seconds),
                    round(memory),
                    round(seconds / memory),
                    round(peak as f64 / input as f64)
                );
                let _ = std::fs::remove_dir_all(dir);
            }
            "transitions-sqlite" => {
                let dir = temp_dir();
                let url = format!("sqlite://{}", dir.join("journal.sqlite3").display());
                transitions("transitions-sqlite", &url).await;
                let _ = std::fs::remove_dir_all(dir);
            }
            "transitions-postgres" => {
                let (url, drop) = postgres_schema().await;
                transitions("transitions-postgres", &url).await;
                drop.await;
            }
            "efficiency-sqlite" => efficiency().await,
            "shared-sqlite" => {
                let dir = temp_dir();
                let url = format!("sqlite://{}", dir.join("journal.sqlite3").display());
                shared("shared-sqlite", &url).await;
                let _ = std::fs::remove_dir_all(dir);
            }
            "shared-postgres" => {
                let (url, drop) = postgres_schema().await;
                shared("shared-postgres", &url).await;
                drop.await;
            }
            other => panic!("no case `{other}`"),
        }
    });
}

/// Validates and plans 1,000,000 URLs for Level 3 (and, with a journal, writes the run and
/// its plan). Returns seconds, peak bytes above the baseline, input bytes.
async fn planned(journal: Option<&Journal>) -> (f64, usize, usize) {
    let config = level3_config();
    let provider = config.provider("level3").expect("level3").codec();
    reset_peak();
    let baseline = status_kb("VmRSS:");
    let mut line = String::new();
    let input: Vec<String> = (0..URLS)
        .map(|i| {
            line.clear();
            write!(line, "https://www.example.com/PurgekitDemo/v{i:07}").unwrap();
            line.as_str().to_owned()
        })
        .collect();
    let input_bytes: usize = input.iter().map(|u| u.len() + 1).sum();
    let started = Instant::now();
    let targets = input
        .into_iter()
        .map(Target::url)
        .collect::<Result<Vec<_>, _>>()
        .expect("valid URLs");
    let request = PurgeRequest::new(targets, Default::default()).expect("a valid request");
    let plan = plan_provider("level3", provider, &request).expect("plans");
    if let Some(journal) = journal {
        let run = journal
            .start_run(&request, &["level3".to_owned()])
            .await
            .expect("writes the run");
        journal
            .log(run)
            .planned(&plan, &provider.account(), &request, &|groups| {
                plan_following(provider, &request, &plan, groups)
            })
            .await
            .expect("writes the plan");
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak = status_kb("VmHWM:").saturating_sub(baseline) * 1024;
    drop((plan, request));
    (seconds, peak, input_bytes)
}

fn level3_config() -> Config {
    let emulators = purgekit::emulator::sandbox();
    let toml = config_toml(
        emulators
            .iter()
            .filter(|e| e.kind() == "level3")
            .map(|e| (e.kind(), &**e as &dyn Emulated, "http://127.0.0.1:1")),
    )
    .expect("the demo account as TOML");
    Config::parse_with_env(&toml, |_| None).expect("the demo account's config")
}

/// `sending`, `accepted`, `completed` for [`BATCHES`] batches, one commit each.
async fn transitions(case: &str, url: &str) {
    let journal = Journal::open(url).await.expect("opens");
    let request = urls(BATCHES * 200);
    let config = level3_config();
    let provider = config.provider("level3").expect("level3").codec();
    let plan = plan_provider("level3", provider, &request).expect("plans");
    assert_eq!(plan.batches().len(), BATCHES);
    let run = journal
        .start_run(&request, &["level3".to_owned()])
        .await
        .unwrap();
    let log = journal.log(run);
    let replan = |groups: &[_]| plan_following(provider, &request, &plan, groups);
    log.planned(&plan, "acct", &request, &replan).await.unwrap();
    let started = Instant::now();
    for batch in 0..BATCHES {
        log.sending("level3", batch, 1).await.unwrap();
        let part = [RecordedPart {
            handle: format!("handle-{batch}"),
            warnings: vec![],
        }];
        log.accepted("level3", batch, &part, &[], 1).await.unwrap();
        log.completed("level3", batch).await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let transitions = BATCHES * 3;
    println!(
        "{{\"case\":\"{case}\",\"transitions\":{transitions},\"seconds\":{},\
         \"transitions_per_sec\":{}}}",
        round(seconds),
        (transitions as f64 / seconds).round()
    );
}

/// Level 3's efficiency case of `benches/efficiency.rs`, journaled in SQLite.
async fn efficiency() {
    let l3: common::Emulated<purgekit::emulator::level3::Level3Emulator> = common::start(
        "level3",
        "l3",
        &Arc::new(RateRegistry::new()),
        engine(3),
        &[],
    )
    .await;
    let dir = temp_dir();
    let url = format!("sqlite://{}", dir.join("journal.sqlite3").display());
    let journal = Journal::open(&url).await.expect("opens");
    let purger = JournaledPurger::new(l3.purger.clone(), journal);
    let request = urls(5_000);
    let started = Instant::now();
    let report = purger
        .purge_with(&request, &PurgeContext::default())
        .await
        .expect("valid input");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.outcome(), Outcome::Success, "{:?}", report.summary);
    let min_seconds = min_requests_schedule(25, 10, WINDOW).as_secs_f64();
    println!(
        "{{\"case\":\"efficiency-sqlite\",\"items\":5000,\"seconds\":{},\"min_seconds\":{},\
         \"efficiency\":{},\"rejections\":{}}}",
        round(seconds),
        round(min_seconds),
        round(min_seconds / seconds),
        l3.emulator.rejections()
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// 48,000 URLs on one Level 3 account by 1, 2 and 4 purgers sharing the account's schedule
/// through the journal at `url`, each purger with its own connection and rate limiter.
async fn shared(case: &str, url: &str) {
    use purgekit::emulator::level3::{Level3Emulator, Level3EmulatorConfig};
    use purgekit::registry::Drive;
    const TOTAL: usize = 48_000;
    let mut seconds = Vec::new();
    let mut rejections = 0;
    for purgers in [1usize, 2, 4] {
        let emulator = Level3Emulator::new(Level3EmulatorConfig {
            rate_window: WINDOW,
            completion_time: Duration::from_millis(300),
            ..Level3EmulatorConfig::demo()
        });
        let running = purgekit::emulator::serve(emulator.router(), ([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        let toml =
            config_toml([("l3", &emulator as &dyn Emulated, running.url().as_str())]).unwrap();
        let config = Config::parse_with_env(&toml, |_| None).unwrap();
        let mut jobs = Vec::new();
        for p in 0..purgers {
            let journal = Journal::open(url).await.expect("opens");
            let drive = Drive {
                rates: Some(Arc::new(RateRegistry::with_store(Arc::new(
                    journal.clone(),
                )))),
                engine: Some(engine(3)),
                transport: None,
            };
            let purger = JournaledPurger::new(config.build_with(&drive).unwrap(), journal);
            let n = TOTAL / purgers;
            let request = (p * n..(p + 1) * n)
                .fold(PurgeRequest::builder(), |b, i| {
                    b.url(format!(
                        "https://s7d1.scene7.com/is/image/PurgekitDemo/{case}-{i}.jpg"
                    ))
                })
                .build()
                .unwrap();
            jobs.push((purger, request));
        }
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (purger, request) in jobs {
            tasks.spawn(async move {
                let report = purger
                    .purge_with(&request, &PurgeContext::default())
                    .await
                    .expect("valid input");
                assert_eq!(report.outcome(), Outcome::Success, "{:?}", report.summary);
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("a purger task");
        }
        seconds.push(started.elapsed().as_secs_f64());
        rejections += emulator.rejections();
    }
    let min_seconds = min_requests_schedule(TOTAL / 200, 10, WINDOW).as_secs_f64();
    println!(
        "{{\"case\":\"{case}\",\"items\":{TOTAL},\"min_seconds\":{},\"seconds_1\":{},\
         \"seconds_2\":{},\"seconds_4\":{},\"vs_one_2\":{},\"vs_one_4\":{},\"rejections\":{rejections}}}",
        round(min_seconds),
        round(seconds[0]),
        round(seconds[1]),
        round(seconds[2]),
        round(seconds[1] / seconds[0]),
        round(seconds[2] / seconds[0]),
    );
}

/// A schema of its own in the PostgreSQL test database: its URL, and a future dropping it.
async fn postgres_schema() -> (String, impl std::future::Future<Output = ()>) {
    use sqlx::Connection;
    let base = std::env::var("PURGEKIT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at PURGEKIT_TEST_POSTGRES ({base}): {e}"));
    let schema = format!("purgekit_bench_{:016x}", fastrand::u64(..));
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
    (url, async move {
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&mut admin)
            .await
            .unwrap();
    })
}

fn temp_dir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("purgekit-bench-journal-{:016x}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
