//! `purgekit serve` child processes and the emulators they purge on, for `tests/serve.rs` and
//! `benches/serve.rs`; a PostgreSQL schema of a test's own (also `tests/journal.rs`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use purgekit::Registry;
use purgekit::emulator::adjust_all;
use purgekit::sandbox::Sandbox;

pub const BIN: &str = env!("CARGO_BIN_EXE_purgekit");
pub const PROVIDERS: [&str; 3] = ["cloudfront", "level3", "limelight"];

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "purgekit-serve-{}-{tag}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The emulators of three providers, at `speed`× their documented rates, and a config for
/// them with the `[server]` table `server`.
pub fn emulators(
    runtime: &tokio::runtime::Runtime,
    speed: f64,
    server: &str,
    dir: &Path,
) -> (Sandbox, PathBuf) {
    emulators_of(runtime, &PROVIDERS, speed, &[], server, dir)
}

/// The emulators of `kinds` with `overrides` (`KIND.NAME=VALUE`), and their config.
pub fn emulators_of(
    runtime: &tokio::runtime::Runtime,
    kinds: &[&str],
    speed: f64,
    overrides: &[String],
    server: &str,
    dir: &Path,
) -> (Sandbox, PathBuf) {
    let emulators = adjust_all(
        purgekit::emulator::sandbox()
            .into_iter()
            .filter(|e| kinds.contains(&e.kind()))
            .collect(),
        speed,
        overrides,
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
    let config = dir.join("purgekit.toml");
    std::fs::write(&config, format!("{}\n{server}\n", sandbox.config_toml())).unwrap();
    (sandbox, config)
}

/// A `serve` child process and its address.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(
        config: &Path,
        journal: &str,
        dir: &Path,
        workers: &str,
        env: &[(&str, &str)],
    ) -> Server {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--config",
                config.to_str().unwrap(),
                "--journal",
                journal,
                "--workers",
                workers,
            ])
            .env_remove("PURGEKIT_CONFIG")
            .env_remove("PURGEKIT_JOURNAL")
            .env_remove("RUST_LOG")
            .env("PURGEKIT_STATE_DIR", dir)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("purgekit: serving on ")
            .unwrap_or_else(|| panic!("serve did not start: {line:?}"))
            .to_owned();
        Server { child, base }
    }

    /// SIGTERM, and the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status.code()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn urls(name: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("https://images.example.com/is/image/PurgekitDemo/{name}-{i}"))
        .collect()
}

/// A PostgreSQL journal URL in a fresh schema, and a guard dropping it.
pub fn postgres(runtime: &tokio::runtime::Runtime) -> (String, impl FnOnce()) {
    use sqlx::Connection;
    let base = std::env::var("PURGEKIT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("purgekit_cli_test_{:016x}", fastrand::u64(..));
    let mut admin = runtime
        .block_on(sqlx::PgConnection::connect(&base))
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at PURGEKIT_TEST_POSTGRES ({base}) is unreachable: {e}; start it or \
                 set PURGEKIT_TEST_POSTGRES"
            )
        });
    runtime
        .block_on(sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin))
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
    let drop_schema = move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _ = runtime
            .block_on(sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin));
    };
    (url, drop_schema)
}
