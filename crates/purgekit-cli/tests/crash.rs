//! Crash and resume, end to end: a child `purgekit purge` against the Level 3 emulator (served
//! by this test process, so what it purged can be read) is SIGKILLed at seeded random points,
//! then `purgekit resume`d. Every target must end in exactly one final state, none lost, and the
//! batches sent twice must be no more than were in flight at the kill.
//!
//! The default run kills at two seeded points; `PURGEKIT_CRASH_LOOPS=N` runs N (CI's opt-in
//! soak: `PURGEKIT_CRASH_LOOPS=20 cargo test -p purgekit-cli --test crash`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use purgekit::Registry;
use purgekit::emulator::adjust_all;
use purgekit::sandbox::Sandbox;
use serde_json::Value;

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
fn emulator(runtime: &tokio::runtime::Runtime) -> (Sandbox, PathBuf) {
    let overrides: Vec<String> = vec![
        "level3.rate_window=1s".to_owned(),
        "level3.requests_per_window=2".to_owned(),
    ];
    let emulators = adjust_all(
        purgekit::emulator::sandbox()
            .into_iter()
            .filter(|e| e.kind() == "level3")
            .collect(),
        1.0,
        &overrides,
    )
    .unwrap();
    let sandbox = runtime
        .block_on(Sandbox::start_with(
            emulators,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            0,
            &Registry::builtin(),
        ))
        .unwrap();
    let config = temp_dir("config").join("purgekit.toml");
    std::fs::write(&config, sandbox.config_toml()).unwrap();
    (sandbox, config)
}

fn urls(dir: &Path) -> PathBuf {
    let path = dir.join("urls.txt");
    let text: String = (0..TARGETS)
        .map(|i| format!("https://cdn.example.com/crash/{i}.js\n"))
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

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// One kill at `at`, then resume; checks the outcome. Returns the batches sent twice.
fn kill_and_resume(runtime: &tokio::runtime::Runtime, at: Duration) -> usize {
    let (sandbox, config) = emulator(runtime);
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
    let _ = std::fs::remove_dir_all(&dir);
    resent
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
        let resent = kill_and_resume(&runtime, at);
        eprintln!("kill {i} at {at:?}: {resent} batches sent twice");
    }
}
