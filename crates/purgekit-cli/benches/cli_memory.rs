//! The `purgekit` binary end to end on 1,000,000 URLs through stdin with `--dry-run` against
//! the sandbox's providers whose dry run is client-side (Level 3, Adobe; Limelight's is native,
//! so it would send 10,000 requests under its rate limit), every row printed, measuring the
//! process's peak resident memory with `/usr/bin/time -v` (the kernel's `ru_maxrss`).
//!
//! Prints one JSON line per case:
//! `{"case":"cli_dry_run_sandbox","urls":1000000,"input_bytes":…,"seconds":…,"peak_bytes":…,
//! "peak_ratio":…}`; `peak_ratio` is the peak over the input's bytes (target ≤ 4).
//! Cases: Level 3 alone (1,000,000 rows), Level 3 and Adobe (2,000,000 rows).

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

const URLS: usize = 1_000_000;

fn main() {
    let input = std::env::temp_dir().join(format!("purgekit-cli-bench-{}.txt", std::process::id()));
    let mut text = String::with_capacity(URLS * 80);
    for i in 0..URLS {
        // 74 bytes a line, as in the measurement that found the problem.
        text.push_str(&format!(
            "https://images.example.com/is/image/PurgekitDemo/assets/v2/{i:07}.jpg\n"
        ));
    }
    std::fs::File::create(&input)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("the input file is written");
    let input_bytes = text.len();
    drop(text);
    for (case, providers) in [
        ("cli_dry_run_level3", &["level3"][..]),
        ("cli_dry_run_level3_adobe", &["level3", "dynamic-media"][..]),
    ] {
        let mut command = Command::new("/usr/bin/time");
        command.arg("-v").arg(env!("CARGO_BIN_EXE_purgekit")).args([
            "--quiet",
            "purge",
            "--sandbox",
            "--dry-run",
            "--file",
            "-",
        ]);
        for provider in providers {
            command.args(["--provider", provider]);
        }
        let started = Instant::now();
        let output = command
            .stdin(std::fs::File::open(&input).expect("the input file"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("/usr/bin/time runs purgekit");
        let seconds = started.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{case}: {stderr}");
        let peak_kib: u64 = stderr
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .and_then(|v| v.trim().parse().ok())
            .expect("time -v reports the peak");
        let peak_bytes = peak_kib * 1024;
        println!(
            "{{\"case\":\"{case}\",\"urls\":{URLS},\"input_bytes\":{input_bytes},\
             \"seconds\":{seconds:.3},\"peak_bytes\":{peak_bytes},\"peak_ratio\":{:.2}}}",
            peak_bytes as f64 / input_bytes as f64
        );
    }
    let _ = std::fs::remove_file(&input);
}
