//! SIGINT, SIGTERM and SIGHUP during a purge: the first stops sending (requests in flight
//! finish, waiting stops, the report of what was done is printed with every accepted handle);
//! the exit code then says which signal it was (128 + its number: 130, 143, 129), so a pipeline
//! can tell an interruption from a failure. A second signal quits at once, without a report.

use std::sync::{Arc, OnceLock};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A signal that stopped the run: its name and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// `SIGINT`, `SIGTERM` or `SIGHUP`.
    pub name: &'static str,
    /// Its number (2, 15, 1).
    pub number: i32,
}

impl Stop {
    /// The exit code after it: 128 + its number, as a shell reports a process it killed.
    pub fn exit_code(self) -> u8 {
        u8::try_from(128 + self.number).unwrap_or(crate::run::EXIT_FAILED)
    }
}

/// Listens for the signals while it lives; cancels `cancel` on the first.
pub struct Interrupts {
    task: JoinHandle<()>,
    stopped: Arc<OnceLock<Stop>>,
}

impl Interrupts {
    /// Starts listening (the handlers are installed before this returns).
    pub fn listen(cancel: CancellationToken) -> Interrupts {
        let stopped = Arc::new(OnceLock::new());
        let task = match Listener::install() {
            Ok(listener) => tokio::spawn(listener.run(cancel, stopped.clone())),
            Err(e) => {
                tracing::warn!("cannot listen for signals: {e}");
                tokio::spawn(async {})
            }
        };
        Interrupts { task, stopped }
    }

    /// The exit code of a run that ended with `code`: the signal's when one stopped it.
    pub fn exit_code(&self, code: u8) -> u8 {
        self.stopped.get().map_or(code, |stop| stop.exit_code())
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(unix)]
struct Listener {
    streams: Vec<(Stop, tokio::signal::unix::Signal)>,
}

#[cfg(unix)]
impl Listener {
    fn install() -> std::io::Result<Listener> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut streams = Vec::new();
        for (name, kind) in [
            ("SIGINT", SignalKind::interrupt()),
            ("SIGTERM", SignalKind::terminate()),
            ("SIGHUP", SignalKind::hangup()),
        ] {
            let stop = Stop {
                name,
                number: kind.as_raw_value(),
            };
            streams.push((stop, signal(kind)?));
        }
        Ok(Listener { streams })
    }

    async fn next(&mut self) -> Stop {
        let waits = self.streams.iter_mut().map(|(stop, stream)| {
            let stop = *stop;
            Box::pin(async move {
                stream.recv().await;
                stop
            })
        });
        futures_select_all(waits).await
    }

    async fn run(mut self, cancel: CancellationToken, stopped: Arc<OnceLock<Stop>>) {
        let first = self.next().await;
        let _ = stopped.set(first);
        eprintln!(
            "purgekit: {}: stopping after the requests in flight; the report follows \
             (a second signal quits at once)",
            first.name
        );
        cancel.cancel();
        let second = self.next().await;
        eprintln!("purgekit: {} again: quitting without a report", second.name);
        std::process::exit(i32::from(second.exit_code()));
    }
}

/// The first of `futures` to finish (three signal streams; no extra dependency for it).
#[cfg(unix)]
async fn futures_select_all<F: std::future::Future<Output = Stop> + Unpin>(
    futures: impl Iterator<Item = F>,
) -> Stop {
    let mut futures: Vec<F> = futures.collect();
    std::future::poll_fn(move |cx| {
        for f in &mut futures {
            if let std::task::Poll::Ready(stop) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(stop);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(not(unix))]
struct Listener;

#[cfg(not(unix))]
impl Listener {
    fn install() -> std::io::Result<Listener> {
        Ok(Listener)
    }

    async fn run(self, cancel: CancellationToken, stopped: Arc<OnceLock<Stop>>) {
        const INT: Stop = Stop {
            name: "Ctrl-C",
            number: 2,
        };
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        let _ = stopped.set(INT);
        eprintln!("purgekit: Ctrl-C: stopping after the requests in flight; the report follows");
        cancel.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(i32::from(INT.exit_code()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal() {
        let code = |number| Stop { name: "x", number }.exit_code();
        assert_eq!((code(2), code(15), code(1)), (130, 143, 129));
    }
}
