//! The journal end to end, with child `purgekit` processes against the Level 3 emulator
//! (served by this test process, so what it received and purged can be read):
//!
//! - crash and resume: a `purgekit purge` is SIGKILLed at seeded random points, then
//!   `purgekit resume`d. Every target must end in exactly one final state, none lost, and the
//!   batches sent twice must be no more than were in flight at the kill. The default run kills
//!   at two seeded points; `PURGEKIT_CRASH_LOOPS=N` runs N (the opt-in soak:
//!   `PURGEKIT_CRASH_LOOPS=20 cargo test -p purgekit-cli --test journal`).
//! - shared rate limits: two and four processes purging on one account through one journal
//!   (SQLite, and PostgreSQL at `PURGEKIT_TEST_POSTGRES` in a schema of its own) get no
//!   rate-limit rejection from the emulator.
//! - dedup: two purges whose targets overlap in part, the second started while the first's
//!   batches wait behind the rate limit, purge each shared target once.
//! - shared in-flight capacity: two `--wait` purges on one CloudFront distribution (the
//!   emulator, here) through one journal, together over its paths in progress, are refused
//!   nothing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use purgekit::emulator::Fault;
use purgekit::sandbox::Sandbox;
use serde_json::Value;

/// The emulators and a PostgreSQL schema of a test (shared with tests/serve.rs).
mod service;

const BIN: &str = env!("CARGO_BIN_EXE_purgekit");
/// Level 3 takes 200 paths a request: 10 batches.
const TARGETS: usize = 2000;
const BATCH: usize = 200;
/// Level 3's `max_in_flight`: the most batches being sent at a kill.
const IN_FLIGHT: usize = 2;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "purgekit-crash-{}-{tag}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Level 3 emulator at 2 requests a second (10 batches take about 5 s), served on a runtime
/// of its own while the test drives child processes.
fn emulator(runtime: &tokio::runtime::Runtime, latency: Duration) -> (Sandbox, PathBuf) {
    emulator_at(runtime, 2, latency)
}

/// The Level 3 emulator at `per_second` requests a second, each answer `latency` late.
fn emulator_at(
    runtime: &tokio::runtime::Runtime,
    per_second: u32,
    latency: Duration,
) -> (Sandbox, PathBuf) {
    let overrides: Vec<String> = vec![
        "level3.rate_window=1s".to_owned(),
        format!("level3.requests_per_window={per_second}"),
    ];
    let (sandbox, config) = service::emulators_of(
        runtime,
        &["level3"],
        1.0,
        &overrides,
        "",
        &temp_dir("config"),
    );
    if !latency.is_zero() {
        let level3 = sandbox.emulator("level3").unwrap();
        level3.faults().always(Fault::Latency(latency));
    }
    (sandbox, config)
}

fn urls(dir: &Path) -> PathBuf {
    urls_named(dir, "crash", TARGETS)
}

/// A file of `n` URLs under `/{name}/`.
fn urls_named(dir: &Path, name: &str, n: usize) -> PathBuf {
    let path = dir.join(format!("{name}.txt"));
    let text: String = (0..n)
        .map(|i| format!("https://cdn.example.com/{name}/{i}.js\n"))
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn purgekit(args: &[&str], state: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("PURGEKIT_CONFIG")
        .env_remove("PURGEKIT_JOURNAL")
        .env_remove("RUST_LOG")
        .env("PURGEKIT_STATE_DIR", state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `purgekit purge --config CONFIG --progress none` with each list of further arguments, all at
/// once; each must succeed.
fn purge_at_once(dir: &Path, config: &Path, each: Vec<Vec<String>>) -> Vec<Output> {
    let children: Vec<_> = each
        .into_iter()
        .map(|extra| {
            let mut args = vec!["purge", "--config", config.to_str().unwrap()];
            args.extend(["--progress", "none"]);
            args.extend(extra.iter().map(String::as_str));
            purgekit(&args, dir).spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out
        })
        .collect()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// One kill at `at`, then resume; checks the outcome. Returns the batches sent twice and the
/// batches whose rows say they may have been.
fn kill_and_resume(runtime: &tokio::runtime::Runtime, at: Duration) -> (usize, usize) {
    // Each answer 300 ms late: a kill often lands while a batch is being sent.
    let (sandbox, config) = emulator(runtime, Duration::from_millis(300));
    let dir = temp_dir("run");
    let file = urls(&dir);
    let config = config.to_str().unwrap();
    let mut child = purgekit(
        &[
            "purge",
            "--config",
            config,
            "--file",
            file.to_str().unwrap(),
            "--progress",
            "none",
        ],
        &dir,
    )
    .spawn()
    .unwrap();
    std::thread::sleep(at);
    // SIGKILL: no handler runs, nothing is flushed.
    let _ = child.kill();
    let killed = child.wait_with_output().unwrap();

    let resumed = purgekit(&["resume", "--config", config, "--json"], &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    let level3 = sandbox.emulator("level3").unwrap();
    let mut warned = 0;
    if killed.status.success() {
        // The purge ended before the kill: nothing to resume.
        assert!(stderr.contains("no unfinished run"), "{stderr}");
    } else {
        assert_eq!(resumed.status.code(), Some(0), "resume failed:\n{stderr}");
        let report = json(&resumed);
        let rows = report["results"].as_array().unwrap();
        assert_eq!(rows.len(), TARGETS, "one row per target");
        let mut seen = HashMap::new();
        for row in rows {
            assert_eq!(row["state"], "accepted", "{row}");
            if row["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w.as_str().unwrap().contains("may have been sent twice"))
            {
                warned += 1;
            }
            *seen
                .entry(row["target"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
        assert_eq!(seen.len(), TARGETS, "every target exactly once");
        assert!(report["run"].is_string());
    }
    // The journal agrees: one finished run.
    let runs = json(&purgekit(&["runs", "--json"], &dir).output().unwrap());
    assert_eq!(runs["runs"][0]["state"], "finished", "{runs}");

    // 0 lost: every path purged; re-sent batches within what was in flight.
    let purged = level3.purged();
    let mut times: HashMap<&str, usize> = HashMap::new();
    for path in &purged {
        *times.entry(path.as_str()).or_insert(0) += 1;
    }
    assert_eq!(times.len(), TARGETS, "a target was lost");
    let twice = purged.len() - times.len();
    let resent = twice.div_ceil(BATCH);
    assert!(
        resent <= IN_FLIGHT,
        "{resent} batches sent twice, more than the {IN_FLIGHT} in flight"
    );
    // A batch sent twice says so on its rows; no more were being sent than are in flight.
    let warned = warned / BATCH;
    assert!(
        resent <= warned,
        "{resent} batches sent twice, {warned} say so"
    );
    assert!(
        warned <= IN_FLIGHT,
        "{warned} batches were being sent at once"
    );
    let _ = std::fs::remove_dir_all(&dir);
    (resent, warned)
}

#[test]
fn a_killed_purge_resumes_with_nothing_lost_and_few_resent() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let loops: u64 = std::env::var("PURGEKIT_CRASH_LOOPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let mut rng = fastrand::Rng::with_seed(0x5eed_c0de);
    for i in 0..loops {
        // Somewhere in the ~5 s the purge takes (its first batch leaves at once).
        let at = Duration::from_millis(rng.u64(300..4500));
        let (resent, warned) = kill_and_resume(&runtime, at);
        eprintln!(
            "kill {i} at {at:?}: {resent} batches sent twice, {warned} being sent at the kill"
        );
    }
}

/// `processes` purges of 600 distinct URLs each (3 batches) on one Level 3 account at once,
/// journaled in `journal` (`None`: the default SQLite file in a shared state directory).
/// Asserts each succeeded and the emulator refused nothing.
fn concurrent(runtime: &tokio::runtime::Runtime, processes: usize, journal: Option<&str>) {
    let (sandbox, config) = emulator(runtime, Duration::ZERO);
    let dir = temp_dir("concurrent");
    let each = (0..processes)
        .map(|p| {
            let file = urls_named(&dir, &format!("p{p}"), 3 * BATCH);
            let mut args = vec!["--file".to_owned(), file.to_str().unwrap().to_owned()];
            if let Some(url) = journal {
                args.extend(["--journal".to_owned(), url.to_owned()]);
            }
            args
        })
        .collect();
    purge_at_once(&dir, &config, each);
    let level3 = sandbox.emulator("level3").unwrap();
    let seen = level3.requests();
    let refused: Vec<u16> = seen
        .iter()
        .map(|r| r.status)
        .filter(|&s| s != 200)
        .collect();
    assert_eq!(seen.len(), 3 * processes, "one request per batch");
    assert!(refused.is_empty(), "the emulator refused: {refused:?}");
    assert_eq!(level3.purged().len(), processes * 3 * BATCH);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn processes_sharing_a_sqlite_journal_share_the_rate_limit() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    concurrent(&runtime, 2, None);
    concurrent(&runtime, 4, None);
}

#[test]
fn processes_sharing_a_postgres_journal_share_the_rate_limit() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, drop_schema) = service::postgres(&runtime);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        concurrent(&runtime, 2, Some(&url));
        concurrent(&runtime, 4, Some(&url));
    }));
    drop_schema();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Two `purgekit purge --wait` processes on one CloudFront distribution through one journal,
/// 2,000 paths and 10 wildcard paths each: together more than its 3,000 paths and 15 wildcard
/// paths in progress. Each batch is admitted only when it fits beside the other process's in
/// progress, so the emulator refuses nothing (`TooManyInvalidationsInProgress`) and every target
/// completes.
#[test]
fn processes_sharing_a_journal_share_cloudfronts_in_flight_capacity() {
    use purgekit::emulator::cloudfront::CloudFrontEmulator;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = temp_dir("capacity");
    let (sandbox, config) = service::emulators_of(
        &runtime,
        &["cloudfront"],
        1.0,
        &["cloudfront.completes_after=300ms".to_owned()],
        "",
        &dir,
    );
    let each = (0..2)
        .map(|p| {
            let file = urls_named(&dir, &format!("cf{p}"), 2000);
            let mut args = vec![
                "--file".to_owned(),
                file.to_str().unwrap().to_owned(),
                "--wait".to_owned(),
                "--json".to_owned(),
            ];
            for i in 0..10 {
                args.push("--pattern".to_owned());
                args.push(format!("https://cdn.example.com/cf{p}/dir{i}/*"));
            }
            args
        })
        .collect();
    for out in purge_at_once(&dir, &config, each) {
        let report = json(&out);
        let rows = report["results"].as_array().unwrap();
        assert_eq!(rows.len(), 2010, "one row per target");
        for row in rows {
            assert_eq!(row["state"], "completed", "{row}");
        }
    }
    let cloudfront = sandbox
        .emulator("cloudfront")
        .unwrap()
        .downcast_ref::<CloudFrontEmulator>()
        .unwrap();
    assert_eq!(cloudfront.refusals(), 0, "TooManyInvalidationsInProgress");
    let (paths, wildcards) = cloudfront.max_in_progress();
    assert!(paths <= 3000 && wildcards <= 15, "{paths} / {wildcards}");
    assert_eq!(
        cloudfront.paths().len(),
        4020,
        "every path invalidated once"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `n` URLs from `first` under `/dedup/`, in a file.
fn dedup_urls(dir: &Path, name: &str, first: usize, n: usize) -> PathBuf {
    let path = dir.join(format!("{name}.txt"));
    let text: String = (first..first + n)
        .map(|i| format!("https://cdn.example.com/dedup/{i}.js\n"))
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn two_runs_queued_behind_a_rate_limit_send_each_shared_target_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // One request a second: the first run's later batches wait in its queue.
    let (sandbox, config) = emulator_at(&runtime, 1, Duration::ZERO);
    let dir = temp_dir("dedup");
    let config = config.to_str().unwrap();
    // Run A: targets 0..1000 (5 batches); run B: 500..1500, overlapping A's batches in part:
    // the second half of A's third batch (500..600), A's last two whole; 500 targets its own.
    let a = dedup_urls(&dir, "a", 0, 5 * BATCH);
    let b = dedup_urls(&dir, "b", 5 * BATCH / 2, 5 * BATCH);
    let purge = |file: &Path| {
        purgekit(
            &[
                "purge",
                "--config",
                config,
                "--file",
                file.to_str().unwrap(),
                "--progress",
                "lines",
                "--json",
            ],
            &dir,
        )
        .spawn()
        .unwrap()
    };
    let mut first = purge(&a);
    // B starts once A's plan is written and its first request accepted (its later ones then
    // wait for the rate limit): A's stderr says so.
    let mut lines = BufReader::new(first.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("accepted") {
            break;
        }
    }
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let second = purge(&b);
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    let first_stderr = drain.join().unwrap().join("\n");
    assert!(first.status.success(), "{first_stderr}");
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let level3 = sandbox.emulator("level3").unwrap();
    let purged = level3.purged();
    let mut times: HashMap<&str, usize> = HashMap::new();
    for path in &purged {
        *times.entry(path.as_str()).or_insert(0) += 1;
    }
    assert_eq!(times.len(), 15 * BATCH / 2, "every target purged");
    assert_eq!(
        purged.len(),
        15 * BATCH / 2,
        "each shared target purged once"
    );
    // A's 5, and B's own 500 targets packed again on their own: 3, not B's 5 batches.
    assert_eq!(level3.requests().len(), 8, "one request per batch sent");
    // B's shared rows carry A's handles and say whom they followed.
    let (a, b) = (json(&first), json(&second));
    let handle = |report: &Value, target: &str| {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"] == target)
            .unwrap()
            .clone()
    };
    let shared = "https://cdn.example.com/dedup/500.js";
    let (in_a, in_b) = (handle(&a, shared), handle(&b, shared));
    assert_eq!(in_a["handle"], in_b["handle"]);
    assert_eq!(in_b["state"], "accepted");
    let note = in_b["warnings"][0].as_str().unwrap();
    assert!(
        note.contains(&format!(
            "queued first in run {}",
            a["run"].as_str().unwrap()
        )),
        "{note}"
    );
    // A shared target in a batch of B's plan that also held targets of its own.
    let (in_a, in_b) = (
        handle(&a, "https://cdn.example.com/dedup/599.js"),
        handle(&b, "https://cdn.example.com/dedup/599.js"),
    );
    assert_eq!(in_a["handle"], in_b["handle"]);
    let own = handle(&b, "https://cdn.example.com/dedup/1300.js");
    assert!(own["warnings"].as_array().unwrap().is_empty(), "{own}");
    assert_ne!(own["handle"], in_b["handle"]);
    let _ = std::fs::remove_dir_all(&dir);
}
