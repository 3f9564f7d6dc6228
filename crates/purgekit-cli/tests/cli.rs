//! The `purgekit` binary end to end: real processes, real HTTP to emulators on 127.0.0.1.
//!
//! Most tests run `purgekit emulate` as a child process and use the config it prints, so the
//! emulate command, the config loader and the purge path are all exercised as a user would.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_purgekit");
/// The sandbox's providers, by name, in the order the CLI lists them.
const SANDBOX: [&str; 5] = [
    "akamai",
    "cloudfront",
    "dynamic-media",
    "level3",
    "limelight",
];

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

/// `purgekit ARGS` with `env` set, `stdin` fed, `PURGEKIT_CONFIG` and `RUST_LOG` cleared and
/// the working directory a fresh temp dir (so no stray `./purgekit.toml` is found).
fn purgekit(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let dir = temp_dir("cwd");
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(&dir)
        .env_remove("PURGEKIT_CONFIG")
        .env_remove("RUST_LOG")
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
    assert_eq!(rows.len(), targets.len() * SANDBOX.len());
    for provider in SANDBOX {
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
        stderr(&o).contains(&format!("configured: {}", SANDBOX.join(", "))),
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
    for name in SANDBOX {
        assert!(out.contains(&format!("kind:      {name}")), "{out}");
    }
    let o = run(&["--config", path, "providers", "--json"]);
    let providers = json(&o)["providers"].as_array().unwrap().clone();
    assert_eq!(providers.len(), SANDBOX.len());
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
    assert!(
        stdout(&o).starts_with(&format!("limelight  {handle}  ")),
        "{}",
        stdout(&o)
    );
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
    let secrets = [
        emulate.value("akamai", "client_secret"),
        emulate.value("level3", "secret"),
        emulate.value("limelight", "shared_key"),
        emulate.value("dynamic-media", "password"),
    ];
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
    let secrets = [
        emulate.value("akamai", "client_secret"),
        emulate.value("level3", "secret"),
        emulate.value("limelight", "shared_key"),
        emulate.value("dynamic-media", "password"),
    ];
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
    for provider in [
        "provider level3 (level3)",
        "provider limelight (limelight)",
        "provider dynamic-media (dynamic-media)",
    ] {
        assert!(out.contains(provider), "{out}");
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
