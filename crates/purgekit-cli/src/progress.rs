//! Progress on stderr, fed by the engine's [`Event`]s: a bar on a terminal, or lines for a CI
//! log (each accepted request, and a heartbeat with counts and an ETA).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use purgekit::{Event, ProgressFn, escape_controls, thousands};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::args::ProgressMode;
use crate::render::duration_text;

/// How often `--progress lines` prints a heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// Where progress goes, once `auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// A bar on stderr.
    Bar,
    /// Lines on stderr.
    Lines,
    /// Nothing.
    Hidden,
}

impl Shown {
    /// `mode` on this process's stderr: `auto` is a bar on a terminal and lines elsewhere;
    /// `--quiet` shows nothing.
    pub fn resolve(mode: ProgressMode, quiet: bool) -> Shown {
        match mode {
            _ if quiet => Shown::Hidden,
            ProgressMode::None => Shown::Hidden,
            ProgressMode::Bar => Shown::Bar,
            ProgressMode::Lines => Shown::Lines,
            ProgressMode::Auto if std::io::stderr().is_terminal() => Shown::Bar,
            ProgressMode::Auto => Shown::Lines,
        }
    }
}

/// Counts items done (accepted, or completed with `--wait`, or failed) on a bar that is drawn
/// or hidden, and prints lines where asked.
pub struct ProgressDisplay {
    bar: ProgressBar,
    shown: Shown,
    failed: Arc<AtomicU64>,
    heartbeat: Option<JoinHandle<()>>,
}

impl ProgressDisplay {
    /// A display of `shown` kind (the bar is hidden, but still counts, unless [`Shown::Bar`]).
    pub fn new(shown: Shown) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        if shown == Shown::Bar {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} items  {wide_msg}",
                )
                .expect("a valid progress template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        ProgressDisplay {
            bar,
            shown,
            failed: Arc::new(AtomicU64::new(0)),
            heartbeat: None,
        }
    }

    /// The callback to put in a [`purgekit::PurgeContext`]. With `waiting`, items count as done
    /// when completed rather than accepted. With `log_handles` (or in lines mode), each
    /// accepted request's handle is also written to stderr as it comes ([`accepted_line`]);
    /// in lines mode each planned provider and failed request too.
    pub fn callback(&self, waiting: bool, log_handles: bool) -> ProgressFn {
        let bar = self.bar.clone();
        let failed = self.failed.clone();
        let lines = self.shown == Shown::Lines;
        Arc::new(move |event: &Event| {
            apply(&bar, event, waiting);
            if let Event::Failed { items, .. } = event {
                failed.fetch_add(u64::try_from(*items).unwrap_or(u64::MAX), Ordering::Relaxed);
            }
            log_event(event);
            let line = if lines {
                event_line(event)
            } else if log_handles {
                accepted_line(event)
            } else {
                None
            };
            if let Some(line) = line {
                bar.suspend(|| eprintln!("{line}"));
            }
        })
    }

    /// In lines mode, prints a heartbeat ([`heartbeat_line`]) every `every` until
    /// [`ProgressDisplay::finish`].
    pub fn start_heartbeat(&mut self, every: Duration) {
        if self.shown == Shown::Lines {
            self.heartbeat = Some(heartbeat(
                self.bar.clone(),
                self.failed.clone(),
                every,
                Arc::new(|line: String| eprintln!("{line}")),
            ));
        }
    }

    /// Removes the bar (and stops the heartbeat) before the report is printed.
    pub fn finish(&self) {
        if let Some(task) = &self.heartbeat {
            task.abort();
        }
        self.bar.finish_and_clear();
    }

    #[cfg(test)]
    fn counts(&self) -> (u64, u64) {
        (self.bar.position(), self.bar.length().unwrap_or(0))
    }
}

/// Every `every`, `write`s a [`heartbeat_line`] with the bar's counts.
fn heartbeat(
    bar: ProgressBar,
    failed: Arc<AtomicU64>,
    every: Duration,
    write: Arc<dyn Fn(String) + Send + Sync>,
) -> JoinHandle<()> {
    let started = Instant::now();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(started + every, every);
        loop {
            tick.tick().await;
            write(heartbeat_line(
                bar.position(),
                bar.length().unwrap_or(0),
                failed.load(Ordering::Relaxed),
                started.elapsed(),
            ));
        }
    })
}

/// `purgekit: progress: 2,500 of 10,000 items done (25%), 0 failed, 5m elapsed, ETA 15m`:
/// the ETA assumes the rest goes at the pace so far.
pub fn heartbeat_line(done: u64, total: u64, failed: u64, elapsed: Duration) -> String {
    let percent = (done * 100).checked_div(total).unwrap_or(0);
    let seconds = |d: Duration| Duration::from_secs(d.as_secs());
    let eta = if done == 0 {
        "ETA unknown".to_owned()
    } else if done >= total {
        "finishing".to_owned()
    } else {
        let rest = elapsed.mul_f64((total - done) as f64 / done as f64);
        format!(
            "ETA {}",
            duration_text(seconds(rest).max(Duration::from_secs(1)))
        )
    };
    let count = |n: u64| thousands(usize::try_from(n).unwrap_or(usize::MAX));
    format!(
        "purgekit: progress: {} of {} items done ({percent}%), {} failed, {} elapsed, {eta}",
        count(done),
        count(total),
        count(failed),
        duration_text(seconds(elapsed)),
    )
}

/// A `-v` (info) log of what a provider planned and each request's end.
fn log_event(event: &Event) {
    match event {
        Event::Planned {
            provider,
            batches,
            items,
        } => tracing::info!("{provider}: {batches} requests planned, {items} items"),
        Event::Failed {
            provider,
            batch,
            error,
            ..
        } => tracing::info!("{provider}: request {} failed: {error}", batch + 1),
        other => tracing::debug!(?other, "progress event"),
    }
}

/// The lines-mode line for an event: planned providers, accepted and failed requests.
pub fn event_line(event: &Event) -> Option<String> {
    match event {
        Event::Planned {
            provider,
            batches,
            items,
        } => Some(format!(
            "purgekit: planned: {provider}: {} {}, {} {}",
            thousands(*batches),
            if *batches == 1 { "request" } else { "requests" },
            thousands(*items),
            if *items == 1 { "item" } else { "items" },
        )),
        Event::Failed {
            provider,
            batch,
            items,
            error,
        } => Some(format!(
            "purgekit: failed: {provider} request {} ({items} {}): {}",
            batch + 1,
            if *items == 1 { "item" } else { "items" },
            escape_controls(error)
        )),
        _ => accepted_line(event),
    }
}

/// The stderr line for an accepted batch: provider, request number, items and the handle
/// (control characters escaped), one line.
pub fn accepted_line(event: &Event) -> Option<String> {
    match event {
        Event::Accepted {
            provider,
            batch,
            items,
            handle,
        } => Some(format!(
            "purgekit: accepted: {provider} request {} ({items} {}): handle {}",
            batch + 1,
            if *items == 1 { "item" } else { "items" },
            escape_controls(handle.as_str())
        )),
        _ => None,
    }
}

fn apply(bar: &ProgressBar, event: &Event, waiting: bool) {
    let items = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    match event {
        Event::Planned {
            provider,
            batches,
            items: n,
        } => {
            bar.inc_length(items(*n));
            bar.set_message(format!("{provider}: {batches} requests planned"));
        }
        Event::Sent {
            provider,
            batch,
            attempt,
        } => {
            let again = if *attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            };
            bar.set_message(format!("{provider}: sending request {}{again}", batch + 1));
        }
        Event::Accepted {
            provider,
            batch,
            items: n,
            ..
        } => {
            if !waiting {
                bar.inc(items(*n));
            }
            bar.set_message(format!("{provider}: request {} accepted", batch + 1));
        }
        Event::Retrying {
            provider,
            batch,
            delay,
            ..
        } => {
            bar.set_message(format!(
                "{provider}: request {} retrying in {}",
                batch + 1,
                duration_text(*delay)
            ));
        }
        Event::Completed {
            provider,
            batch,
            items: n,
        } => {
            if waiting {
                bar.inc(items(*n));
            }
            bar.set_message(format!("{provider}: request {} complete", batch + 1));
        }
        Event::Failed {
            provider,
            batch,
            items: n,
            ..
        } => {
            bar.inc(items(*n));
            bar.set_message(format!("{provider}: request {} failed", batch + 1));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(waiting: bool) -> (u64, u64) {
        let display = ProgressDisplay::new(Shown::Hidden);
        let progress = display.callback(waiting, false);
        let p = || "eu".to_owned();
        for event in [
            Event::Planned {
                provider: p(),
                batches: 2,
                items: 5,
            },
            Event::Sent {
                provider: p(),
                batch: 0,
                attempt: 1,
            },
            Event::Accepted {
                provider: p(),
                batch: 0,
                items: 3,
                handle: purgekit::Handle("h1".into()),
            },
            Event::Retrying {
                provider: p(),
                batch: 1,
                delay: Duration::from_secs(1),
                error: "503".into(),
            },
            Event::Failed {
                provider: p(),
                batch: 1,
                items: 2,
                error: "503".into(),
            },
            Event::Completed {
                provider: p(),
                batch: 0,
                items: 3,
            },
        ] {
            progress(&event);
        }
        display.counts()
    }

    #[test]
    fn an_accepted_handle_is_one_escaped_line() {
        let event = Event::Accepted {
            provider: "l3".into(),
            batch: 2,
            items: 1,
            handle: purgekit::Handle("job\n\x1b[2J7".into()),
        };
        assert_eq!(
            accepted_line(&event).unwrap(),
            "purgekit: accepted: l3 request 3 (1 item): handle job\\n\\u{1b}[2J7"
        );
        assert_eq!(
            accepted_line(&Event::Planned {
                provider: "l3".into(),
                batches: 1,
                items: 1
            }),
            None
        );
    }

    #[test]
    fn heartbeat_lines_count_and_estimate() {
        assert_eq!(
            heartbeat_line(2500, 10_000, 3, Duration::from_secs(300)),
            "purgekit: progress: 2,500 of 10,000 items done (25%), 3 failed, 5m elapsed, ETA 15m"
        );
        assert!(heartbeat_line(0, 10, 0, Duration::from_secs(30)).ends_with("ETA unknown"));
        assert!(heartbeat_line(10, 10, 0, Duration::from_secs(30)).ends_with("finishing"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_every_interval_until_finished() {
        let mut display = ProgressDisplay::new(Shown::Lines);
        let progress = display.callback(false, false);
        progress(&Event::Planned {
            provider: "eu".into(),
            batches: 2,
            items: 10,
        });
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        display.heartbeat = Some(heartbeat(
            display.bar.clone(),
            display.failed.clone(),
            HEARTBEAT,
            Arc::new(move |line| sink.lock().unwrap().push(line)),
        ));
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(lines.lock().unwrap().is_empty());
        progress(&Event::Accepted {
            provider: "eu".into(),
            batch: 0,
            items: 5,
            handle: purgekit::Handle("h1".into()),
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        display.finish();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let lines = lines.lock().unwrap().clone();
        assert_eq!(
            lines,
            [
                "purgekit: progress: 5 of 10 items done (50%), 0 failed, 30s elapsed, ETA 30s",
                "purgekit: progress: 5 of 10 items done (50%), 0 failed, 1m elapsed, ETA 1m",
            ]
        );
    }

    #[test]
    fn counts_items_done() {
        // Accepted 3 + failed 2; completion does not count twice.
        assert_eq!(feed(false), (5, 5));
        // Waiting: completed 3 + failed 2; acceptance alone is not done.
        assert_eq!(feed(true), (5, 5));
    }

    #[test]
    fn partial_progress_when_waiting() {
        let display = ProgressDisplay::new(Shown::Hidden);
        let progress = display.callback(true, false);
        progress(&Event::Planned {
            provider: "a".into(),
            batches: 1,
            items: 4,
        });
        progress(&Event::Accepted {
            provider: "a".into(),
            batch: 0,
            items: 4,
            handle: purgekit::Handle("h1".into()),
        });
        assert_eq!(display.counts(), (0, 4));
    }
}
