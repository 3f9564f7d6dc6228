//! Plan + encode + sign 1,000,000 URLs for each registered provider (its emulator's demo
//! account) on one core (no network, no runtime). `cargo bench --bench throughput -- KIND` runs
//! one.
//!
//! Prints one JSON line per case:
//! `{"case":"level3","urls":1000000,"seconds":…,"urls_per_sec":…, …}` where `seconds` covers
//! planning (map, dedup, pack) and, per batch, mapping its targets again and encoding and
//! signing the request; `validate_seconds` is building the `PurgeRequest` from the input strings
//! (every URL parsed and checked; the strings move into the request, as a caller that read them
//! would do), reported apart. `peak_bytes` is the process's peak resident memory above what it used before the input
//! was generated (Linux `VmHWM`, reset through `/proc/self/clear_refs`), input included;
//! `peak_ratio` is that over the input's bytes.

#[path = "../tests/common/peak.rs"]
mod peak;

use std::fmt::Write as _;
use std::time::{Instant, SystemTime};

use peak::{reset_peak, status_kb};
use purgekit::emulator::Emulated;
use purgekit::sandbox::config_toml;
use purgekit::{Config, Provider, PurgeRequest, RunId, Target, plan_provider};

const URLS: usize = 1_000_000;

/// The providers measured: every registered one, with its emulator's demo account.
fn config() -> Config {
    let emulators = purgekit::emulator::sandbox();
    let endpoint = "http://127.0.0.1:1";
    let toml = config_toml(
        emulators
            .iter()
            .map(|e| (e.kind(), &**e as &dyn Emulated, endpoint)),
    )
    .expect("the demo accounts as TOML");
    Config::parse_with_env(&toml, |_| None).expect("the demo accounts' config")
}

fn main() {
    let config = config();
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let Some(only) = only else {
        // Each case in a fresh process, so one case's freed memory cannot hide the next one's peak.
        let exe = std::env::current_exe().expect("the bench's own path");
        for case in config.names() {
            let status = std::process::Command::new(&exe)
                .arg(case)
                .status()
                .expect("the bench runs itself");
            assert!(status.success(), "case {case} failed");
        }
        return;
    };
    let provider = config
        .provider(&only)
        .unwrap_or_else(|| panic!("no provider `{only}`: one of {:?}", config.names()));
    // A URL every demo account can purge (Adobe's demo company root as a path segment), 45
    // bytes: as long as the URLs of the earlier figures in docs/performance.md.
    case(&only, provider.codec(), |line, i| {
        write!(line, "https://www.example.com/PurgekitDemo/v{i:07}").expect("writes to a string")
    });
}

fn case<P: Provider + ?Sized>(name: &str, provider: &P, url: impl Fn(&mut String, usize)) {
    reset_peak();
    let baseline = status_kb("VmRSS:");

    // Each line in a string of its own length, as `BufRead::lines` gives them.
    let mut line = String::new();
    let input: Vec<String> = (0..URLS)
        .map(|i| {
            line.clear();
            url(&mut line, i);
            line.as_str().to_owned()
        })
        .collect();
    let input_bytes: usize = input.iter().map(|u| u.len() + 1).sum(); // one per line

    let started = Instant::now();
    let targets = input
        .into_iter()
        .map(Target::url)
        .collect::<Result<Vec<_>, _>>()
        .expect("valid URLs");
    let request = PurgeRequest::new(targets, Default::default()).expect("a valid request");
    let validate_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let plan = plan_provider(name, provider, &request).expect("plans");
    let now = SystemTime::now();
    let mut body_bytes = 0usize;
    // As the engine sends them: every batch mapped again by one remapper.
    let remapper = plan.remapper(provider, &request);
    for index in 0..plan.batches().len() {
        let batch = remapper.batch(RunId::default(), index).expect("maps again");
        let http = provider
            .encode(&batch, request.options(), now)
            .expect("encodes");
        body_bytes += http.body().len();
    }
    let seconds = started.elapsed().as_secs_f64();

    let peak_bytes = status_kb("VmHWM:").saturating_sub(baseline) * 1024;
    println!(
        "{{\"case\":\"{name}\",\"urls\":{URLS},\"seconds\":{},\"urls_per_sec\":{},\
         \"validate_seconds\":{},\"requests\":{},\"body_bytes\":{body_bytes},\
         \"input_bytes\":{input_bytes},\"peak_bytes\":{peak_bytes},\"peak_ratio\":{}}}",
        round(seconds),
        (URLS as f64 / seconds).round(),
        round(validate_seconds),
        plan.batches().len(),
        round(peak_bytes as f64 / input_bytes as f64),
    );
    drop((plan, request));
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
