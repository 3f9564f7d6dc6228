//! The `purgekit` binary end to end: real processes, real HTTP to emulators on 127.0.0.1.
//!
//! Most tests run `purgekit emulate` as a child process and use the config it prints, so the
//! emulate command, the config loader and the purge path are all exercised as a user would.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_purgekit");
/// The sandbox's providers, by name (each named after its kind), in the order the CLI lists
/// them: every emulator of `purgekit_emulator::sandbox()`.
fn sandbox_kinds() -> Vec<&'static str> {
    purgekit::emulator::sandbox()
        .iter()
        .map(|e| e.kind())
        .collect()
}

/// The provider kinds this build knows, sorted: the registry's.
fn kinds() -> Vec<&'static str> {
    purgekit::Registry::builtin().kinds()
}

fn urls_txt() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/urls.txt")
}

/// The non-comment lines of `examples/urls.txt`.
fn urls_txt_targets() -> Vec<String> {
    std::fs::read_to_string(urls_txt())
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// `purgekit ARGS` with `env` set, `stdin` fed, `PURGEKIT_CONFIG`, `PURGEKIT_JOURNAL` and
/// `RUST_LOG` cleared and the working directory a fresh temp dir (so no stray
/// `./purgekit.toml` is found), which also holds the run's journal (`PURGEKIT_STATE_DIR`).
fn purgekit(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let dir = temp_dir("cwd");
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(&dir)
        .env_remove("PURGEKIT_CONFIG")
        .env_remove("PURGEKIT_JOURNAL")
        .env_remove("RUST_LOG")
        // Each run its own journal, in its own directory.
        .env("PURGEKIT_STATE_DIR", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn run(args: &[&str]) -> Output {
    purgekit(args, &[], "")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", stdout(o)))
}

fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "purgekit-cli-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_config(text: &str) -> PathBuf {
    let path = temp_dir("config").join("purgekit.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `purgekit emulate` running in the background, and the config it printed.
struct Emulate {
    child: Child,
    config: String,
}

impl Emulate {
    fn start() -> Emulate {
        let mut child = Command::new(BIN)
            .args(["emulate", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut config = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line == "# end of config" {
                break; // the line after the printed config
            }
            config.push_str(&line);
            config.push('\n');
        }
        assert!(config.contains("[providers.limelight]"), "{config}");
        Emulate { child, config }
    }

    /// Every secret of the demo accounts (`Emulated::secrets`), each found in the printed
    /// config.
    fn secrets(&self) -> Vec<String> {
        let secrets: Vec<String> = purgekit::emulator::sandbox()
            .iter()
            .flat_map(|e| e.secrets())
            .collect();
        assert!(
            secrets.len() >= sandbox_kinds().len(),
            "one secret per account at least"
        );
        for secret in &secrets {
            assert!(self.config.contains(secret.as_str()), "{secret}");
        }
        secrets
    }

    /// The value of `key` in the printed config's `[providers.<provider>]` table.
    fn value(&self, provider: &str, key: &str) -> String {
        let table = self
            .config
            .split(&format!("[providers.{provider}]"))
            .nth(1)
            .unwrap();
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in {provider}"));
        let quoted = line.split_once(" = ").unwrap().1;
        serde_json::from_str::<String>(quoted).unwrap()
    }

    /// Stops it with SIGINT, as Ctrl-C would, and returns its exit code.
    fn interrupt(mut self) -> i32 {
        sigint(self.child.id());
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Emulate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sigint(pid: u32) {
    kill("INT", pid);
}

fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn help_lists_every_command() {
    let o = run(&["--help"]);
    assert_eq!(code(&o), 0);
    for command in ["purge", "plan", "status", "providers", "emulate"] {
        assert!(stdout(&o).contains(command), "{command}");
    }
    let o = run(&["purge", "--help"]);
    for flag in [
        "--file",
        "--pattern",
        "--tag",
        "--provider",
        "--delete",
        "--ignore-case",
        "--include-query",
        "--notify",
        "--note",
        "--callback",
        "--wait",
        "--timeout",
        "--dry-run",
        "--json",
        "--sandbox",
    ] {
        assert!(stdout(&o).contains(flag), "{flag}");
    }
}

#[test]
fn sandbox_purges_the_example_list_cleanly_on_every_provider() {
    let urls = urls_txt();
    let o = run(&[
        "purge",
        "--sandbox",
        "--wait",
        "--timeout",
        "60s",
        "--json",
        "--file",
        urls.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let report = json(&o);
    let targets = urls_txt_targets();
    let rows = report["results"].as_array().unwrap();
    let sandbox = sandbox_kinds();
    assert_eq!(rows.len(), targets.len() * sandbox.len());
    for provider in sandbox {
        let mine: Vec<&Value> = rows.iter().filter(|r| r["provider"] == provider).collect();
        assert_eq!(mine.len(), targets.len(), "{provider}");
        for (row, target) in mine.iter().zip(&targets) {
            assert_eq!(row["target"], target.as_str());
            assert_eq!(row["state"], "completed", "{row}");
            assert!(row["handle"].is_string(), "{row}");
            assert!(row["attempts"].as_u64().unwrap() >= 1);
        }
    }
    assert_eq!(report["summary"]["completed"], rows.len());
}

#[test]
fn json_output_has_the_documented_shape() {
    let o = run(&[
        "purge",
        "--sandbox",
        "--json",
        "--provider",
        "limelight",
        "https://images.example.com/is/image/PurgekitDemo/hero.jpg",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report = json(&o);
    let keys: Vec<&String> = report.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["results", "summary"]);
    let row = report["results"][0].as_object().unwrap();
    let mut keys: Vec<&str> = row.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "attempts", "error", "handle", "provider", "state", "target", "warnings"
        ]
    );
    assert_eq!(row["provider"], "limelight");
    assert_eq!(row["state"], "accepted");
    assert!(row["warnings"].is_array());
    for key in [
        "total",
        "accepted",
        "completed",
        "failed",
        "unsupported",
        "dry_run",
        "timed_out",
    ] {
        assert!(report["summary"][key].is_u64(), "{key}");
    }
}

#[test]
fn human_table_goes_to_stdout() {
    let o = run(&[
        "purge",
        "--sandbox",
        "--provider",
        "level3",
        "--dry-run",
        "https://images.example.com/is/image/PurgekitDemo/hero.jpg",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("TARGET"), "{out}");
    assert!(out.contains("level3"), "{out}");
    assert!(out.contains("dry_run"), "{out}");
    assert!(out.trim_end().ends_with("1 row: 1 dry run"), "{out}");
}

#[test]
fn targets_from_stdin() {
    let input = "# from a pipe\n\nhttps://images.example.com/is/image/PurgekitDemo/a.jpg\n  https://images.example.com/is/image/PurgekitDemo/b.jpg  \n";
    let o = purgekit(
        &[
            "purge",
            "--sandbox",
            "--json",
            "--provider",
            "dynamic-media",
            "--file",
            "-",
        ],
        &[],
        input,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report = json(&o);
    let targets: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            "https://images.example.com/is/image/PurgekitDemo/a.jpg",
            "https://images.example.com/is/image/PurgekitDemo/b.jpg"
        ]
    );
}

#[test]
fn exit_1_when_a_row_is_not_purged() {
    // Adobe takes exact URLs only and Akamai has no wildcards: the pattern is unsupported
    // there, purged elsewhere.
    let o = run(&[
        "purge",
        "--sandbox",
        "--json",
        "https://images.example.com/is/image/PurgekitDemo/*",
    ]);
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    let report = json(&o);
    let rows = report["results"].as_array().unwrap();
    let state = |p: &str| rows.iter().find(|r| r["provider"] == p).unwrap()["state"].clone();
    assert_eq!(state("akamai"), "unsupported");
    assert_eq!(state("dynamic-media"), "unsupported");
    assert_eq!(state("limelight"), "accepted");
    assert_eq!(report["summary"]["unsupported"], 2);
}

#[test]
fn exit_2_on_bad_input_before_sending() {
    let o = run(&["purge", "--sandbox", "/relative.jpg"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("invalid input `/relative.jpg`"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
    let o = purgekit(
        &["purge", "--sandbox", "--file", "-"],
        &[],
        "https://a.example/ok\nftp://a.example/x\n",
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("<stdin>:2:"), "{}", stderr(&o));
    // Outside the Dynamic Media company root: Adobe would fault the whole call, so nothing
    // is sent anywhere.
    let o = run(&[
        "purge",
        "--sandbox",
        "https://images.example.com/elsewhere/x.jpg",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("PurgekitDemo"), "{}", stderr(&o));
    // clap usage errors
    assert_eq!(
        code(&run(&["purge", "--timeout", "5m", "https://a.example/"])),
        2
    );
    assert_eq!(code(&run(&["purge", "--no-such-flag"])), 2);
    assert_eq!(code(&run(&["purge", "--sandbox"])), 2);
    // an unknown --provider name
    let o = run(&[
        "plan",
        "--sandbox",
        "--provider",
        "fastly",
        "https://a.example/",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains(&format!("configured: {}", sandbox_kinds().join(", "))),
        "{}",
        stderr(&o)
    );
}

#[test]
fn wide_targets_plan_on_every_provider_and_everything_needs_yes() {
    let o = run(&[
        "plan",
        "--sandbox",
        "--json",
        "--prefix",
        "https://images.example.com/is/image/PurgekitDemo/",
        "--host",
        "images.example.com",
        "everything",
    ]);
    // Unsupported rows (Adobe: exact URLs only; Akamai: no wildcards; Akamai alone has a
    // purge-all, its CP codes) make it exit 1.
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let text = stdout(&o);
    // Level 3 and Limelight purge prefix and host as exact wildcards; `plan` shows them.
    assert!(text.contains("/is/image/PurgekitDemo/*"), "{text}");
    assert!(text.contains("http*://images.example.com/*"), "{text}");
    assert!(
        text.contains("level3 does not support everything targets"),
        "{text}"
    );
    assert!(text.contains("Fast Purge has no wildcards"), "{text}");
    assert!(
        text.contains("/ccu/v3/invalidate/cpcode/production"),
        "{text}"
    );

    let o = run(&["purge", "--sandbox", "--everything"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    // Confirmed: no provider of the sandbox has a purge-all, so every row is unsupported.
    let o = run(&["purge", "--sandbox", "--json", "--everything", "--yes"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(json(&o)["summary"]["unsupported"], 3);
}

#[test]
fn exit_2_on_config_errors() {
    let o = run(&["providers"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("purgekit.toml"), "{}", stderr(&o));

    let unknown = write_config(
        "[providers.eu]\nkind = \"limelight\"\nshortname = \"s\"\nusername = \"u\"\nshared_key = \"00\"\ncallback = \"x\"\n",
    );
    let o = run(&["--config", unknown.to_str().unwrap(), "providers"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("unknown key `callback` in table [providers.eu]"),
        "{}",
        stderr(&o)
    );

    let http = write_config(
        "[providers.eu]\nkind = \"limelight\"\nendpoint = \"http://apis.llnw.com\"\nshortname = \"s\"\nusername = \"u\"\nshared_key = \"00\"\n",
    );
    let o = run(&[
        "--config",
        http.to_str().unwrap(),
        "purge",
        "https://a.example/",
    ]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(err.contains("providers.eu.endpoint"), "{err}");
    assert!(err.contains("only allowed to a loopback host"), "{err}");
}

#[test]
fn config_from_env_var_path_and_interpolation() {
    let emulate = Emulate::start();
    let key = emulate.value("limelight", "shared_key");
    let config = emulate.config.replace(
        &format!("shared_key = \"{key}\""),
        "shared_key = \"${PK_TEST_LL_KEY}\"",
    );
    assert!(config.contains("${PK_TEST_LL_KEY}"));
    let path = write_config(&config);
    let path = path.to_str().unwrap();
    let target = "https://images.example.com/is/image/PurgekitDemo/hero.jpg";

    // The variable set: the purge goes through, with the config found via $PURGEKIT_CONFIG.
    let o = purgekit(
        &["purge", "--json", "--provider", "limelight", target],
        &[("PURGEKIT_CONFIG", path), ("PK_TEST_LL_KEY", &key)],
        "",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["results"][0]["state"], "accepted");

    // A wrong value: the signature is refused by the emulator, a failed row, exit 1.
    let o = purgekit(
        &[
            "--config",
            path,
            "purge",
            "--json",
            "--provider",
            "limelight",
            target,
        ],
        &[("PK_TEST_LL_KEY", &"ab".repeat(32))],
        "",
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(json(&o)["results"][0]["state"], "failed");

    // Unset: a config error naming the variable, nothing sent.
    let o = run(&["--config", path, "purge", target]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("environment variable `PK_TEST_LL_KEY` is not set"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("providers.limelight.shared_key"),
        "{}",
        stderr(&o)
    );
    assert_eq!(emulate.interrupt(), 0);
}

#[test]
fn providers_status_and_emulate() {
    let emulate = Emulate::start();
    let path = write_config(&emulate.config);
    let path = path.to_str().unwrap();

    let o = run(&["--config", path, "providers"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for name in sandbox_kinds() {
        assert!(out.contains(&format!("kind:      {name}")), "{out}");
    }
    let o = run(&["--config", path, "providers", "--json"]);
    let providers = json(&o)["providers"].as_array().unwrap().clone();
    assert_eq!(providers.len(), sandbox_kinds().len());
    for p in &providers {
        assert!(
            p["endpoint"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:"),
            "{p}"
        );
    }

    // purge, then ask about the printed handle
    let o = run(&[
        "--config",
        path,
        "purge",
        "--json",
        "--provider",
        "limelight",
        "https://images.example.com/is/image/PurgekitDemo/hero.jpg",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let handle = json(&o)["results"][0]["handle"]
        .as_str()
        .unwrap()
        .to_owned();
    let o = run(&[
        "--config",
        path,
        "status",
        "--provider",
        "limelight",
        &handle,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("PROVIDER   HANDLE "), "{out}");
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("limelight  {handle}  ")),
        "{out}"
    );
    assert!(
        out.ends_with("\n1 handle: 1 pending\n") || out.ends_with("\n1 handle: 1 completed\n"),
        "{out}"
    );
    // --wait: asked again until complete.
    let o = run(&[
        "--config",
        path,
        "status",
        "--provider",
        "limelight",
        "--wait",
        "--timeout",
        "60s",
        &handle,
    ]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).ends_with("\n1 handle: 1 completed\n"),
        "{}",
        stdout(&o)
    );
    // Several providers: --provider is needed; with one, it is optional.
    let o = run(&["--config", path, "status", &handle]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("with --provider"), "{}", stderr(&o));
    let single = write_config(&only_providers(&emulate.config, &["limelight"]));
    let o = run(&["--config", single.to_str().unwrap(), "status", &handle]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(&[
        "--config",
        path,
        "status",
        "--json",
        "--provider",
        "limelight",
        &handle,
    ]);
    assert_eq!(json(&o)["statuses"][0]["handle"], handle.as_str());
    // an unknown provider name is a usage error
    assert_eq!(
        code(&run(&[
            "--config",
            path,
            "status",
            "--provider",
            "nope",
            &handle
        ])),
        2
    );

    assert_eq!(emulate.interrupt(), 0);
}

#[test]
fn plan_shows_requests_and_no_secret() {
    let emulate = Emulate::start();
    let secrets = emulate.secrets();
    let path = write_config(&emulate.config);
    let urls = urls_txt();
    for extra in [&[][..], &["--json"][..]] {
        let mut args = vec![
            "--config",
            path.to_str().unwrap(),
            "plan",
            "--file",
            urls.to_str().unwrap(),
            "--notify",
            "ops@example.com",
        ];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("POST"), "{out}");
        assert!(out.contains("<redacted>"), "{out}");
        for secret in &secrets {
            assert!(
                !out.contains(secret.as_str()),
                "secret `{secret}` in plan output:\n{out}"
            );
            assert!(!stderr(&o).contains(secret.as_str()));
        }
    }
    assert_eq!(emulate.interrupt(), 0);
}

#[test]
fn a_verbose_purge_with_failures_shows_no_secret() {
    let emulate = Emulate::start();
    let secrets = emulate.secrets();
    let path = write_config(&emulate.config);
    // Debug logs from every crate, a target each provider refuses or cannot purge, and a
    // successful purge: none of it may carry a credential.
    let o = run(&[
        "--config",
        path.to_str().unwrap(),
        "-vvv",
        "purge",
        "--json",
        "--wait",
        "--timeout",
        "20s",
        "https://images.example.com/is/image/PurgekitDemo/a.jpg",
        "tag:homepage",
    ]);
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(err.contains("DEBUG"), "debug logging was on: {err}");
    for secret in &secrets {
        assert!(
            !out.contains(secret.as_str()),
            "secret `{secret}` on stdout:\n{out}"
        );
        assert!(
            !err.contains(secret.as_str()),
            "secret `{secret}` on stderr:\n{err}"
        );
    }
    assert_eq!(emulate.interrupt(), 0);
}

#[test]
fn sandbox_plan_sends_nothing_and_lists_requests() {
    let urls = urls_txt();
    let o = run(&["plan", "--sandbox", "--file", urls.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for kind in sandbox_kinds() {
        let provider = format!("provider {kind} ({kind})");
        assert!(out.contains(&provider), "{out}");
    }
}

/// A sandbox purge of the example list waiting for completion, stopped with `signal` once the
/// first batch is accepted: returns its output, with stderr as read.
fn purge_stopped_by(signal: &str) -> (Output, String) {
    let urls = urls_txt();
    let mut child = Command::new(BIN)
        .args(["purge", "--sandbox", "--wait", "--timeout", "60s", "--file"])
        .arg(&urls)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stdout is not a terminal: each accepted handle is logged on stderr as it comes. Dynamic
    // Media's demo purges take 5 s to complete, so the run is still waiting then.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut stderr = String::new();
    while !stderr.contains("purgekit: accepted: ") {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "no handle logged: {stderr}"
        );
        stderr.push_str(&line);
    }
    kill(signal, child.id());
    std::io::Read::read_to_string(&mut err, &mut stderr).unwrap();
    (child.wait_with_output().unwrap(), stderr)
}

#[test]
fn signals_stop_the_run_print_the_report_and_exit_128_plus_the_signal() {
    for (signal, name, exit) in [
        ("INT", "SIGINT", 130),
        ("TERM", "SIGTERM", 143),
        ("HUP", "SIGHUP", 129),
    ] {
        let (o, stderr) = purge_stopped_by(signal);
        let out = stdout(&o);
        assert_eq!(code(&o), exit, "{signal}\n{out}\n{stderr}");
        assert!(
            stderr.contains(&format!(
                "purgekit: {name}: stopping after the requests in flight"
            )),
            "{stderr}"
        );
        assert!(out.starts_with("TARGET"), "{out}");
        // A wait stopped by the signal is said to be cancelled, not timed out.
        assert!(out.contains("not confirmed (cancelled): "), "{out}");
        assert!(out.contains("cancelled while waiting"), "{out}");
        assert!(!out.contains("timed out"), "{out}");
        // Every handle logged on stderr is in the report.
        let logged: Vec<&str> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("purgekit: accepted: "))
            .map(|l| l.rsplit_once("handle ").unwrap().1)
            .collect();
        assert!(!logged.is_empty(), "{stderr}");
        for handle in logged {
            assert!(out.contains(handle), "{handle} not in the report:\n{out}");
        }
    }
}

#[test]
fn verbose_logs_go_to_stderr_and_quiet_silences_them() {
    let args = [
        "purge",
        "--sandbox",
        "--provider",
        "limelight",
        "--json",
        "https://images.example.com/is/image/PurgekitDemo/hero.jpg",
    ];
    let mut loud = vec!["-vv"];
    loud.extend_from_slice(&args);
    let o = run(&loud);
    assert_eq!(code(&o), 0);
    assert!(!stderr(&o).is_empty());
    json(&o); // stdout stays one JSON document
    let mut quiet = vec!["--quiet"];
    quiet.extend_from_slice(&args);
    let o = run(&quiet);
    assert_eq!(code(&o), 0);
    assert_eq!(stderr(&o), "");
}

#[test]
fn environment_proxies_are_logged_without_credentials_and_never_see_loopback() {
    // A "proxy" that never answers: a request sent to it would hang the run.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = proxy.local_addr().unwrap();
    let url = format!("http://deploy:hunter2@{addr}");
    let o = purgekit(
        &[
            "-v",
            "purge",
            "--sandbox",
            "--provider",
            "limelight",
            "--timeout",
            "20s",
            "https://images.example.com/is/image/PurgekitDemo/hero.jpg",
        ],
        &[
            ("https_proxy", &url),
            ("http_proxy", &url),
            ("ALL_PROXY", &url),
        ],
        "",
    );
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{}\n{err}", stdout(&o));
    assert!(
        err.contains(&format!(
            "proxy: https via http://***@{addr} (https_proxy); http via http://***@{addr} (http_proxy); always direct: "
        )),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    proxy.set_nonblocking(true).unwrap();
    assert_eq!(
        proxy.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the proxy was contacted"
    );
    // --proxy none, and a bad --proxy is a usage error that does not echo credentials.
    let o = run(&[
        "--proxy",
        "ftp://deploy:hunter2@proxy.example",
        "status",
        "--provider",
        "x",
        "h",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--proxy"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
}

#[test]
fn the_config_files_proxy_is_used_unless_the_flag_says_otherwise() {
    let config = write_config(
        "proxy = \"http://deploy:${PK_TEST_PROXY_PW}@proxy.example:3128\"\n\
         [providers.eu]\nkind = \"limelight\"\nshortname = \"s\"\nusername = \"u\"\nshared_key = \"00\"\n",
    );
    let config = config.to_str().unwrap();
    let env = [
        ("PK_TEST_PROXY_PW", "hunter2"),
        ("https_proxy", "http://env.example:1"),
    ];
    // `plan` sends nothing; `-v` logs the proxy the transport was built with.
    let o = purgekit(
        &["-v", "--config", config, "plan", "https://a.example/x.js"],
        &env,
        "",
    );
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains("proxy: https via http://***@proxy.example:3128 (configured)"),
        "{err}"
    );
    assert!(
        !err.contains("hunter2") && !err.contains("env.example"),
        "{err}"
    );
    // `--proxy` (and `$PURGEKIT_PROXY`) win over the file.
    for (args, extra) in [
        (vec!["-v", "--proxy", "env"], None),
        (vec!["-v"], Some(("PURGEKIT_PROXY", "env"))),
    ] {
        let mut all = args.clone();
        all.extend(["--config", config, "plan", "https://a.example/x.js"]);
        let mut env = env.to_vec();
        env.extend(extra);
        let o = purgekit(&all, &env, "");
        let err = stderr(&o);
        assert_eq!(code(&o), 0, "{err}");
        assert!(
            err.contains("proxy: https via http://env.example:1 (https_proxy)"),
            "{err}"
        );
    }
    // A value that is not a proxy is an error naming the key, without its text.
    let bad = write_config(
        "proxy = \"ftp://deploy:hunter2@proxy.example\"\n\
         [providers.eu]\nkind = \"limelight\"\nshortname = \"s\"\nusername = \"u\"\nshared_key = \"00\"\n",
    );
    let o = run(&["--config", bad.to_str().unwrap(), "providers"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("proxy"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
}

#[test]
fn status_against_a_server_that_never_answers_ends_at_its_timeout() {
    const H1: &str = "0123456789abcdef0123456789abcdef";
    const H2: &str = "fedcba9876543210fedcba9876543210";
    // Accepts connections and reads, never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let config = write_config(&format!(
        "[providers.ll]\nkind = \"limelight\"\nendpoint = \"http://{addr}\"\nshortname = \"s\"\n\
         username = \"u\"\nshared_key = \"00112233445566778899aabbccddeeff\"\n"
    ));
    let started = std::time::Instant::now();
    let o = run(&[
        "--config",
        config.to_str().unwrap(),
        "status",
        "--provider",
        "ll",
        "--timeout",
        "2s",
        H1,
        H2,
    ]);
    let took = started.elapsed();
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    assert!(took < std::time::Duration::from_secs(6), "{took:?}");
    let out = stdout(&o);
    assert!(out.contains(H1) && out.contains(H2), "{out}");
    assert!(out.contains("deadline") || out.contains("timeout"), "{out}");
}

/// The tables of `config` (as `emulate` prints it) for the given providers only.
fn only_providers(config: &str, keep: &[&str]) -> String {
    let mut out = String::new();
    let mut keeping = true;
    for line in config.lines() {
        if let Some(name) = line
            .strip_prefix("[providers.")
            .and_then(|l| l.strip_suffix(']'))
        {
            keeping = keep.contains(&name);
        }
        if keeping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Splits a shell command line as `sh` would for the README's examples: words, single quotes.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// The README's pipeline command, exactly as written there.
fn readme_pipeline_command() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("purgekit purge --wait"))
        .expect("the README shows a pipeline purge");
    let line = line.split(" #").next().unwrap();
    let words = shell_words(line);
    assert_eq!(words[0], "purgekit");
    words[1..].to_vec()
}

#[test]
fn the_readme_pipeline_example_passes_against_the_emulators_as_written() {
    // The README's config has a Level 3 and a Limelight account: the emulators' demo ones.
    let emulate = Emulate::start();
    let path = write_config(&only_providers(&emulate.config, &["level3", "limelight"]));
    let words = readme_pipeline_command();
    assert!(words.contains(&"tag:homepage".to_owned()), "{words:?}");
    let args: Vec<&str> = words.iter().map(String::as_str).collect();
    let o = purgekit(&args, &[("PURGEKIT_CONFIG", path.to_str().unwrap())], "");
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    // Level 3 has no tags: that row is unsupported, which the example's --fail-on accepts.
    assert!(
        out.trim_end()
            .ends_with("6 rows: 5 completed, 1 unsupported"),
        "{out}"
    );
    // Without --fail-on, the same purge fails the pipeline.
    let mut strict: Vec<&str> = Vec::new();
    let mut skip = false;
    for word in &args {
        if skip {
            skip = false;
        } else if *word == "--fail-on" {
            skip = true;
        } else {
            strict.push(word);
        }
    }
    assert_ne!(strict.len(), args.len(), "the example sets --fail-on");
    let o = purgekit(&strict, &[("PURGEKIT_CONFIG", path.to_str().unwrap())], "");
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    // --fail-on none: only usage errors and signals fail.
    let o = run(&[
        "purge",
        "--sandbox",
        "--fail-on",
        "none",
        "--provider",
        "dynamic-media",
        "tag:t",
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = run(&["purge", "--sandbox", "--fail-on", "none,failed", "tag:t"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

fn many_urls(n: usize) -> String {
    (0..n)
        .map(|i| format!("https://images.example.com/is/image/PurgekitDemo/p{i}.jpg\n"))
        .collect()
}

#[test]
fn output_scales_summary_above_50_rows_and_shared_warnings_once() {
    let dry = |extra: &[&str], n: usize| {
        let mut args = vec![
            "purge",
            "--sandbox",
            "--provider",
            "level3",
            "--dry-run",
            "--file",
            "-",
        ];
        args.extend_from_slice(extra);
        purgekit(&args, &[], &many_urls(n))
    };
    // 60 rows: a summary by default.
    let o = dry(&[], 60);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        out,
        "level3: 60 rows: 60 dry run\n\
         warning (60 rows): level3: dry run validated and planned here, nothing sent\n\
         60 rows: 60 dry run\n"
    );
    // 50 rows: the table, the shared warning once with its count.
    let out = stdout(&dry(&[], 50));
    assert!(out.starts_with("TARGET"), "{out}");
    assert_eq!(out.lines().count(), 1 + 50 + 2, "{out}");
    assert_eq!(out.matches("dry run validated").count(), 1, "{out}");
    assert!(out.contains("\nwarning (50 rows): "), "{out}");
    // Asked for: the table at any size.
    let out = stdout(&dry(&["--output", "table"], 60));
    assert_eq!(out.lines().count(), 1 + 60 + 2, "{out}");
    // JSON lines: one row per line, then the summary.
    let out = stdout(&dry(&["--output", "jsonl"], 60));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 61);
    assert_eq!(lines[0]["state"], "dry_run");
    assert_eq!(lines[60]["summary"]["dry_run"], 60);
    // --json is --output json.
    let a = json(&dry(&["--json"], 3));
    let b = json(&dry(&["--output", "json"], 3));
    assert_eq!(a, b);
    // A summary lists failures.
    let o = run(&[
        "purge",
        "--sandbox",
        "--output",
        "summary",
        "--provider",
        "level3",
        "tag:a",
        "https://images.example.com/is/image/PurgekitDemo/x.jpg",
    ]);
    assert_eq!(code(&o), 1);
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "level3: 2 rows: 1 accepted, 1 unsupported\n  unsupported: tag:a: level3 does not \
             support cache tag targets\n"
        ),
        "{out}"
    );
}

#[test]
fn progress_lines_off_a_terminal_and_verbose_info_logs() {
    let target = "https://images.example.com/is/image/PurgekitDemo/hero.jpg";
    // stderr is a pipe here: `auto` means lines.
    for progress in [&["--progress", "lines"][..], &[]] {
        let mut args = vec!["purge", "--sandbox", "--provider", "limelight", target];
        args.extend_from_slice(progress);
        let o = run(&args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("purgekit: planned: limelight: 1 request, 1 item\n"),
            "{err}"
        );
        assert!(
            err.contains("purgekit: accepted: limelight request 1 (1 item): handle "),
            "{err}"
        );
    }
    let o = run(&[
        "purge",
        "--sandbox",
        "--provider",
        "limelight",
        "--progress",
        "none",
        target,
    ]);
    assert!(!stderr(&o).contains("planned"), "{}", stderr(&o));
    // -v: info logs of what is being done.
    let o = run(&[
        "-v",
        "purge",
        "--sandbox",
        "--provider",
        "limelight",
        "--progress",
        "none",
        target,
    ]);
    let err = stderr(&o);
    assert!(err.contains("purging 1 targets on limelight"), "{err}");
    assert!(
        err.contains("limelight: 1 requests planned, 1 items"),
        "{err}"
    );
    assert!(err.contains("done: 1 row: 1 accepted"), "{err}");
}

#[test]
fn a_provider_without_a_status_call_is_not_called_timed_out() {
    let emulate = Emulate::start();
    // Adobe's 2012 schema answers with counts, no handle to poll.
    let config = only_providers(&emulate.config, &["dynamic-media"]).replace(
        "api_version = \"2014-04-03\"",
        "api_version = \"2012-02-14\"",
    );
    let path = write_config(&config);
    let target = "https://images.example.com/is/image/PurgekitDemo/hero.jpg";
    let args = [
        "--config",
        path.to_str().unwrap(),
        "purge",
        "--wait",
        "--timeout",
        "30s",
        "--json",
        target,
    ];
    let o = run(&args);
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    let report = json(&o);
    let row = &report["results"][0];
    assert_eq!(row["state"], "accepted", "{row}");
    assert_eq!(row["unfinished"], "no_status_api", "{row}");
    assert!(
        row["error"].as_str().unwrap().contains("no status"),
        "{row}"
    );
    assert_eq!(report["summary"]["no_status_api"], 1);
    assert_eq!(report["summary"]["timed_out"], 0);
    // The table says why it stays accepted.
    let o = run(&args[..args.len() - 2]
        .iter()
        .copied()
        .chain([target])
        .collect::<Vec<_>>());
    let out = stdout(&o);
    assert!(out.contains("  not confirmed (no_status_api): "), "{out}");
    assert!(
        out.trim_end()
            .ends_with("1 row: 1 accepted, 1 without a status call (no_status_api)"),
        "{out}"
    );
}

#[test]
fn dry_run_is_client_side_everywhere_unless_server_is_asked() {
    let target = "https://images.example.com/is/image/PurgekitDemo/hero.jpg";
    let dry = |flag: &str| {
        let o = run(&[
            "purge",
            "--sandbox",
            "--json",
            "--provider",
            "limelight",
            flag,
            target,
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        json(&o)["results"][0].clone()
    };
    // Limelight has a native dry run; `--dry-run` does not send it.
    let row = dry("--dry-run");
    assert_eq!(row["state"], "dry_run");
    assert_eq!(row["attempts"], 0, "{row}");
    assert_eq!(row["handle"], Value::Null, "{row}");
    assert_eq!(
        row["warnings"][0],
        "limelight: dry run validated and planned here, nothing sent"
    );
    let row = dry("--dry-run=server");
    assert_eq!(row["state"], "dry_run");
    assert_eq!(row["attempts"], 1, "{row}");
    assert!(row["handle"].is_string(), "{row}");
    assert_eq!(row["warnings"], serde_json::json!([]), "{row}");
    // A provider without one stays client-side, and says so.
    let o = run(&[
        "purge",
        "--sandbox",
        "--json",
        "--provider",
        "level3",
        "--dry-run=server",
        target,
    ]);
    let row = json(&o)["results"][0].clone();
    assert_eq!(row["attempts"], 0, "{row}");
    assert!(
        row["warnings"][0]
            .as_str()
            .unwrap()
            .contains("has no native dry run"),
        "{row}"
    );
}

#[test]
fn every_input_problem_at_once_and_empty_input_passes() {
    let dir = temp_dir("input");
    let file = dir.join("urls.txt");
    std::fs::write(
        &file,
        "https://a.example/1\n/bad-2\nhttps://a.example/3\n# fine\nftp://bad-5/\n",
    )
    .unwrap();
    let o = run(&[
        "purge",
        "--sandbox",
        "--file",
        file.to_str().unwrap(),
        "homepage",
        "--tag",
        "tag:foo",
    ]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    let file = file.display();
    assert!(err.contains("4 input problems; nothing was sent:"), "{err}");
    assert!(err.contains(&format!("\n  {file}:2: ")), "{err}");
    assert!(err.contains(&format!("\n  {file}:5: ")), "{err}");
    assert!(err.contains("did you mean tag:homepage?"), "{err}");
    assert!(err.contains("give `--tag foo`"), "{err}");
    // An empty diff passes; unless targets are required.
    let o = purgekit(&["purge", "--sandbox", "--file", "-"], &[], "# nothing\n");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "nothing to purge: the input holds no target\n");
    let o = purgekit(&["purge", "--sandbox", "--json", "--file", "-"], &[], "");
    assert_eq!(json(&o)["summary"]["total"], 0);
    let o = purgekit(
        &["purge", "--sandbox", "--require-targets", "--file", "-"],
        &[],
        "",
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("nothing to purge"), "{}", stderr(&o));
    // A config table missing four keys names all four.
    let path = write_config("[providers.x]\nkind = \"level3\"\n");
    let o = run(&["--config", path.to_str().unwrap(), "providers"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("missing keys `key_id`, `secret`, `access_group`, `scid`"),
        "{}",
        stderr(&o)
    );
}

/// The `--flags` in `text`, sorted and deduplicated.
fn flags_in(text: &str) -> std::collections::BTreeSet<String> {
    let mut flags = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("--") {
        let start = i + at;
        let mut end = start + 2;
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'-') {
            end += 1;
        }
        let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        if end > start + 2 && before_ok && bytes[start + 2].is_ascii_lowercase() {
            flags.insert(text[start..end].trim_end_matches('-').to_owned());
        }
        i = end;
    }
    flags
}

/// docs/cli.md, and the usage block it shows for `purgekit COMMAND`.
fn documented_usage(docs: &str, command: &str) -> String {
    let start = docs
        .find(&format!("\npurgekit {command} "))
        .unwrap_or_else(|| panic!("docs/cli.md shows no usage of `purgekit {command}`"));
    let rest = &docs[start + 1..];
    rest[..rest.find("```").unwrap()].to_owned()
}

#[test]
fn docs_cli_md_matches_the_binarys_help() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md"))
            .unwrap();
    let help = stdout(&run(&["--help"]));
    // Every command, and nothing else, has a section.
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    let sections: Vec<&str> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("### `")?.strip_suffix('`'))
        .filter(|s| !s.starts_with('-'))
        .collect();
    assert_eq!(
        commands, sections,
        "commands in --help vs sections of docs/cli.md"
    );
    // The global flags: in `purgekit --help` and the global flag table.
    let global: std::collections::BTreeSet<String> = flags_in(&help)
        .into_iter()
        .filter(|f| f != "--help" && f != "--version")
        .collect();
    let table = &docs[docs.find("| global flag |").unwrap()..];
    let table = &table[..table.find("\n\n").unwrap()];
    assert_eq!(flags_in(table), global, "global flags: docs vs --help");
    // Each command's flags: in its --help and its usage block.
    for command in commands {
        let own = stdout(&run(&[command, "--help"]));
        // A command with subcommands (`config`): their flags together.
        let mut text = own.clone();
        if let Some(subcommands) = own.split("Commands:").nth(1) {
            for sub in subcommands.split("Options:").next().unwrap().lines() {
                if let Some(sub) = sub.split_whitespace().next().filter(|s| *s != "help") {
                    text.push_str(&stdout(&run(&[command, sub, "--help"])));
                }
            }
        }
        let help: std::collections::BTreeSet<String> = flags_in(&text)
            .into_iter()
            .filter(|f| f != "--help" && !global.contains(f))
            .collect();
        let documented = flags_in(&documented_usage(&docs, command));
        assert_eq!(
            documented, help,
            "`purgekit {command}`: docs/cli.md vs --help"
        );
    }
}

#[test]
fn completions_version_durations_and_option_names() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell]);
        assert_eq!(code(&o), 0, "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains("purgekit"), "{shell}");
        assert!(
            script.contains("fail-on"),
            "{shell}: the purge flags are completed"
        );
    }
    assert_eq!(code(&run(&["completions", "tcsh"])), 2);
    let o = run(&["--version"]);
    assert_eq!(
        stdout(&o),
        format!(
            "purgekit {} (providers: {})\n",
            env!("CARGO_PKG_VERSION"),
            kinds().join(", ")
        )
    );
    // Durations: a bare number is seconds, as the error says.
    let o = run(&[
        "plan",
        "--sandbox",
        "--timeout",
        "5",
        "--provider",
        "level3",
        "tag:x",
    ]);
    assert_ne!(code(&o), 2, "{}", stderr(&o));
    let o = run(&["purge", "--sandbox", "--timeout", "soon", "tag:x"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("a number of seconds or a number with a unit"),
        "{}",
        stderr(&o)
    );
    // providers --json spells options as the flags do.
    let emulate = Emulate::start();
    let path = write_config(&emulate.config);
    let o = run(&["--config", path.to_str().unwrap(), "providers", "--json"]);
    let text = stdout(&o);
    assert!(text.contains("\"dry-run\""), "{text}");
    assert!(!text.contains("dry_run\""), "{text}");
}

#[test]
fn plan_says_how_long_each_providers_limits_make_it_take() {
    let o = purgekit(&["plan", "--sandbox", "--file", "-"], &[], &many_urls(250));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for line in [
        "provider dynamic-media (dynamic-media): 250 targets, 250 items in 1 request\n  time: no published rate limit\n",
        "provider level3 (level3): 250 targets, 250 items in 2 requests\n  time: 2 requests, 250 items at 10 requests per 1m: at least 0s\n",
        // Limelight's item debt: the first two requests (200 items) are paid off first.
        "provider limelight (limelight): 250 targets, 250 items in 3 requests\n  time: 3 requests, 250 items at 1 items per 1s: at least 3m 20s\n",
    ] {
        assert!(out.contains(line), "{line}\n---\n{out}");
    }
    let o = purgekit(
        &["plan", "--sandbox", "--json", "--file", "-"],
        &[],
        &many_urls(250),
    );
    let plan = json(&o);
    let limelight = plan["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "limelight")
        .unwrap()
        .clone();
    assert_eq!(limelight["least_seconds"], 200.0);
}

/// Every file under `dir` (not `target/` or hidden ones), by name.
fn file_names(dir: &Path, names: &mut std::collections::BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            file_names(&entry.path(), names);
        } else {
            names.insert(name);
        }
    }
}

#[test]
fn install_license_and_docs_cite_only_files_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains("cargo install --path crates/purgekit-cli"));
    // The license Cargo.toml declares, in full.
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let license = std::fs::read_to_string(root.join("LICENSE")).unwrap();
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
    assert!(license.contains("END OF TERMS AND CONDITIONS"));
    // Every .md or .txt file the docs name exists somewhere in the repository.
    let mut names = std::collections::BTreeSet::new();
    file_names(&root, &mut names);
    let mut docs = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                docs.push(path);
            }
        }
    }
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        for word in text.split(|c: char| c.is_whitespace() || "`()[],;:*'\"<>".contains(c)) {
            let word = word.trim_end_matches('.');
            if !(word.ends_with(".md") || word.ends_with(".txt")) || word.starts_with("http") {
                continue;
            }
            let name = word.rsplit('/').next().unwrap();
            if name.starts_with('.') {
                continue; // a placeholder: `docs/providers/<name>.md`
            }
            assert!(
                names.contains(name),
                "{} cites `{word}`, which is not in the repository",
                doc.display()
            );
        }
    }
}

#[test]
fn first_run_config_init_and_check() {
    // No config: the error says where it looked and what to do.
    let o = run(&["providers"]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    for hint in ["$PURGEKIT_CONFIG", "--sandbox", "purgekit config init"] {
        assert!(err.contains(hint), "{hint}: {err}");
    }
    // A template per kind, secrets from the environment, that checks once they are set.
    let o = run(&["config", "init"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let template = stdout(&o);
    for kind in kinds() {
        assert!(
            template.contains(&format!("[providers.{kind}]")),
            "{template}"
        );
        assert!(
            template.contains(&format!("docs/providers/{kind}.md")),
            "{template}"
        );
    }
    assert!(
        template.contains("secret = \"${PURGEKIT_LEVEL3_SECRET}\""),
        "{template}"
    );
    assert!(!template.contains("endpoint ="), "{template}");
    let path = write_config(&template);
    let path = path.to_str().unwrap();
    let o = run(&["--config", path, "config", "check"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("environment variable `PURGEKIT_"),
        "{}",
        stderr(&o)
    );
    // Every secret is a `${PURGEKIT_<KIND>_<KEY>}`; set each to the emulator's demo value.
    let parsed: toml::Table = template.parse().unwrap();
    let emulators = purgekit::emulator::sandbox();
    let mut env: Vec<(String, String)> = Vec::new();
    for (kind, table) in parsed["providers"].as_table().unwrap() {
        let emulator = emulators.iter().find(|e| e.kind() == kind).unwrap();
        let demo = emulator.config("http://127.0.0.1");
        for (key, value) in table.as_table().unwrap() {
            let Some(var) = value
                .as_str()
                .and_then(|v| v.strip_prefix("${"))
                .and_then(|v| v.strip_suffix('}'))
            else {
                continue;
            };
            let prefix = kind.to_uppercase().replace('-', "_");
            assert_eq!(var, format!("PURGEKIT_{prefix}_{}", key.to_uppercase()));
            env.push((var.to_owned(), demo[key].as_str().unwrap().to_owned()));
        }
    }
    // Each kind's secrets are among them: none is a literal in the template.
    for emulator in &emulators {
        for secret in emulator.secrets() {
            let key = emulator
                .config("http://127.0.0.1")
                .into_iter()
                .find(|(_, v)| v.as_str() == Some(secret.as_str()))
                .map(|(k, _)| k);
            if let Some(key) = key {
                let from_env = parsed["providers"][emulator.kind()][&key].as_str();
                assert!(
                    from_env.is_some_and(|v| v.starts_with("${")),
                    "{}.{key} is not read from the environment",
                    emulator.kind()
                );
            }
        }
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = purgekit(&["--config", path, "config", "check"], &env, "");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Each at the vendor's endpoint (Akamai's the placeholder host of its page).
    let mut want = String::new();
    for kind in kinds() {
        let endpoint = match kind {
            "akamai" => "https://akab-xxxxxxxxxxxxxxxx-xxxxxxxxxxxxxxxx.purge.akamaiapis.net",
            "cloudfront" => "https://cloudfront.amazonaws.com",
            "dynamic-media" => "https://s7sps1apissl.scene7.com",
            "level3" => "https://ws.lumen.com",
            "limelight" => "https://apis.llnw.com",
            _ => "https://",
        };
        let line = format!("ok: {kind} ({kind}) at {endpoint}");
        let got = stdout(&o)
            .lines()
            .find(|l| l.starts_with(&format!("ok: {kind} ")))
            .map(str::to_owned);
        assert!(
            got.as_deref().is_some_and(|g| g.starts_with(&line)),
            "{line}: {}",
            stdout(&o)
        );
        want.push_str(got.as_deref().unwrap_or_default());
        want.push('\n');
    }
    want.push_str(&format!(
        "{} providers checked offline; nothing was sent (credentials are not verified)\n",
        kinds().len()
    ));
    assert_eq!(stdout(&o), want);
    // One kind only; an unknown kind is refused.
    let o = run(&["config", "init", "--kind", "level3"]);
    assert!(!stdout(&o).contains("limelight"), "{}", stdout(&o));
    let o = run(&["config", "init", "--kind", "fastly"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains(&format!("kinds: {}", kinds().join(", "))),
        "{}",
        stderr(&o)
    );
}

#[test]
fn emulate_refuses_options_it_does_not_use() {
    let o = run(&["emulate", "--config", "/tmp/some.toml"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--config /tmp/some.toml: `emulate` reads no config"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--proxy", "none", "emulate"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("takes no proxy"), "{}", stderr(&o));
    let o = run(&["emulate", "--limit", "level3.nonsense=1"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("no such limit"), "{}", stderr(&o));
    let o = run(&["emulate", "--speed", "0"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn config_check_auth_sends_one_read_only_call_per_provider() {
    let emulate = Emulate::start();
    // Which kinds have a read-only call to check with: the providers' own answer.
    let config = purgekit::Config::parse_with_env(&emulate.config, |_| None).unwrap();
    let checkable: Vec<(&str, bool)> = config
        .names()
        .into_iter()
        .map(|name| {
            let probe = config
                .provider(name)
                .unwrap()
                .codec()
                .auth_probe(std::time::SystemTime::now())
                .unwrap();
            (name, matches!(probe, purgekit::AuthProbe::Request(_)))
        })
        .collect();
    assert_eq!(checkable.len(), sandbox_kinds().len());
    assert!(checkable.iter().any(|(_, c)| *c), "{checkable:?}");

    // `config check --auth` on a config.
    let check = |config: &str| {
        let path = write_config(config);
        run(&[
            "--config",
            path.to_str().unwrap(),
            "config",
            "check",
            "--auth",
        ])
    };
    // The demo credentials: accepted where checkable, the others say why not.
    let o = check(&emulate.config);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    // One line per provider: `checked` where it can be checked, else why not.
    let lines = |out: &str, checked: &str| {
        for (name, can) in &checkable {
            let line = if *can {
                format!("{checked}: {name} ({name}) ")
            } else {
                format!("cannot check: {name} ({name}) (")
            };
            assert!(out.lines().any(|l| l.starts_with(&line)), "{line}\n{out}");
        }
    };
    lines(&out, "ok");
    assert_eq!(
        out.matches(" credentials accepted at http://127.0.0.1:")
            .count(),
        checkable.iter().filter(|(_, c)| *c).count(),
        "{out}"
    );
    let count = |can: bool| checkable.iter().filter(|(_, c)| *c == can).count();
    assert!(
        out.ends_with(&format!(
            "{} checked: {} accepted, 0 refused, 0 failed, {} cannot be checked\n",
            checkable.len(),
            count(true),
            count(false)
        )),
        "{out}"
    );

    // Every secret wrong (its characters rotated): each checkable provider is refused, exit 1,
    // and neither the right nor the wrong secret is shown.
    let secrets = emulate.secrets();
    let mut wrong_config = emulate.config.clone();
    let mut wrong = Vec::new();
    for secret in &secrets {
        let mut chars: Vec<char> = secret.chars().collect();
        chars.rotate_left(1);
        let rotated: String = chars.into_iter().collect();
        wrong_config = wrong_config.replace(secret.as_str(), &rotated);
        wrong.push(rotated);
    }
    let o = check(&wrong_config);
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    let (out, err) = (stdout(&o), stderr(&o));
    lines(&out, "refused");
    for secret in secrets.iter().chain(&wrong) {
        assert!(!out.contains(secret.as_str()), "{secret} in\n{out}");
        assert!(!err.contains(secret.as_str()), "{secret} in\n{err}");
    }
    assert_eq!(emulate.interrupt(), 0);
}
