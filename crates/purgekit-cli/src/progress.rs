//! The progress bar on stderr, fed by the engine's [`Event`]s.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use purgekit::{Event, ProgressFn, escape_controls};

use crate::render::duration_text;

/// A progress bar counting items done: accepted (or completed, with `--wait`) or failed.
pub struct ProgressDisplay {
    bar: ProgressBar,
}

impl ProgressDisplay {
    /// A bar drawn on stderr when `visible`; hidden (but still counting) otherwise.
    pub fn new(visible: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        if visible {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} items  {wide_msg}",
                )
                .expect("a valid progress template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        ProgressDisplay { bar }
    }

    /// Whether a bar belongs on this stderr: a terminal, and not `--quiet`.
    pub fn wanted(quiet: bool) -> bool {
        !quiet && std::io::stderr().is_terminal()
    }

    /// The callback to put in a [`purgekit::PurgeContext`]. With `waiting`, items count as done
    /// when completed rather than accepted. With `log_handles`, each accepted batch's handle is
    /// also written to stderr as it comes ([`accepted_line`]).
    pub fn callback(&self, waiting: bool, log_handles: bool) -> ProgressFn {
        let bar = self.bar.clone();
        Arc::new(move |event: &Event| {
            apply(&bar, event, waiting);
            if log_handles && let Some(line) = accepted_line(event) {
                bar.suspend(|| eprintln!("{line}"));
            }
        })
    }

    /// Removes the bar before the report is printed.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    #[cfg(test)]
    fn counts(&self) -> (u64, u64) {
        (self.bar.position(), self.bar.length().unwrap_or(0))
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
        other => tracing::trace!(?other, "progress event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(waiting: bool) -> (u64, u64) {
        let display = ProgressDisplay::new(false);
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
    fn counts_items_done() {
        // Accepted 3 + failed 2; completion does not count twice.
        assert_eq!(feed(false), (5, 5));
        // Waiting: completed 3 + failed 2; acceptance alone is not done.
        assert_eq!(feed(true), (5, 5));
    }

    #[test]
    fn partial_progress_when_waiting() {
        let display = ProgressDisplay::new(false);
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
