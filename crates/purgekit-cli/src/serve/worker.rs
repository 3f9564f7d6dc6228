//! Workers: each takes a unit of work from the journal — one run's work on one provider
//! account (`purgekit::journal::Unit`), held by a lease the journal renews while it runs —
//! runs the run restricted to that provider with the engine, and gives the unit back finished
//! (the run is done when its last unit is) — or, when the attempt fails, to be tried again
//! later, or ended with its targets failed. An instance's workers share the accounts fairly
//! (`purgekit::journal::fair_share`): one slow account never holds them all while other
//! accounts have work. A run without units (an interrupted `purgekit purge`) is taken whole.
//! On stop, a worker takes nothing new; what it drives stops sending new batches, the requests
//! in flight end, and its unit (or run) goes back to the journal for another instance.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use purgekit::journal::{Claimed, JournaledPurger, Unit};
use purgekit::{Error, ProgressFn, PurgeContext, Report, RunId};
use tokio::sync::Mutex as AsyncMutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::App;

/// How often an idle worker looks for queued work.
pub const POLL: Duration = Duration::from_millis(50);

/// The units an instance's workers hold, by account. Taking a unit holds the lock from the
/// choice to the count, so two workers of the instance never choose on the same counts.
type Busy = Arc<AsyncMutex<HashMap<String, usize>>>;

/// Starts `n` workers; they end after `stop` is cancelled.
pub fn start(app: Arc<App>, n: usize, stop: CancellationToken) -> Vec<JoinHandle<()>> {
    let busy = Busy::default();
    (0..n)
        .map(|_| tokio::spawn(work(app.clone(), busy.clone(), n, stop.clone())))
        .collect()
}

async fn work(app: Arc<App>, busy: Busy, workers: usize, stop: CancellationToken) {
    while !stop.is_cancelled() {
        let taken = {
            let mut counts = busy.lock().await;
            let taken = app.journal.next_unit(&counts, workers).await;
            if let Ok(Some(unit)) = &taken {
                *counts.entry(unit.account.clone()).or_default() += 1;
            }
            taken
        };
        match taken {
            Ok(Some(unit)) => {
                let account = unit.account.clone();
                run(&app, Work::Unit(unit), &stop).await;
                let mut counts = busy.lock().await;
                if let Some(n) = counts.get_mut(&account) {
                    *n -= 1;
                    if *n == 0 {
                        counts.remove(&account);
                    }
                }
            }
            Ok(None) => match app.journal.next_queued().await {
                Ok(Some(claimed)) => run(&app, Work::Run(claimed), &stop).await,
                Ok(None) => pause(&stop, POLL).await,
                Err(e) => {
                    tracing::warn!("taking a queued run: {e}");
                    pause(&stop, Duration::from_secs(1)).await;
                }
            },
            Err(e) => {
                tracing::warn!("taking queued work: {e}");
                pause(&stop, Duration::from_secs(1)).await;
            }
        }
    }
}

async fn pause(stop: &CancellationToken, for_: Duration) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(for_) => {}
    }
}

/// What a worker holds: a run's unit on one provider, or a whole run without units.
enum Work {
    Unit(Unit),
    Run(Claimed),
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Work::Unit(unit) => write!(f, "run {} on {}", unit.run, unit.provider),
            Work::Run(claimed) => write!(f, "run {}", claimed.id),
        }
    }
}

impl Work {
    fn run(&self) -> RunId {
        match self {
            Work::Unit(unit) => unit.run,
            Work::Run(claimed) => claimed.id,
        }
    }

    async fn failures(&self, app: &App) -> purgekit::Result<u32> {
        match self {
            Work::Unit(unit) => app.journal.unit_failures(unit.run, &unit.provider).await,
            Work::Run(claimed) => app.journal.failures(claimed.id).await,
        }
    }

    async fn give_back(&self, app: &App, failures: u32, after: Duration) -> purgekit::Result<bool> {
        match self {
            Work::Unit(unit) => {
                (app.journal)
                    .give_back_unit(unit.run, &unit.provider, failures, after)
                    .await
            }
            Work::Run(claimed) => app.journal.give_back(claimed.id, failures, after).await,
        }
    }

    async fn give_up(&self, app: &App, why: &str) -> purgekit::Result<bool> {
        match self {
            Work::Unit(unit) => {
                (app.journal)
                    .give_up_unit(unit.run, &unit.provider, why)
                    .await
            }
            Work::Run(claimed) => app.journal.give_up(claimed.id, why).await,
        }
    }

    /// The rows of `report` (the run's) that are this work's.
    fn rows_of(&self, report: Report) -> Report {
        match self {
            Work::Unit(unit) => Report::new(
                report
                    .results
                    .into_iter()
                    .filter(|row| *row.provider == *unit.provider)
                    .collect(),
            ),
            Work::Run(_) => report,
        }
    }
}

/// Failed attempts at a unit (or run) before the service gives up on it (docs/service.md).
pub const MAX_FAILURES: u32 = 8;

/// Runs `work` to its end (or, on stop, until its requests in flight end). An attempt that
/// fails is given back to be tried again later, or ends the work (see [`failed`]).
async fn run(app: &Arc<App>, work: Work, stop: &CancellationToken) {
    match attempt(app, &work, stop).await {
        Ok(report) => {
            if !stop.is_cancelled() {
                app.metrics.report(&report);
            }
            tracing::info!("{work}: {} rows", report.results.len());
        }
        // Stopping: the work goes back as it is (the journaled purger gave its lease up).
        Err(e) if stop.is_cancelled() => tracing::info!("{work}: stopped: {e}"),
        Err(e) => failed(app, &work, e).await,
    }
}

async fn attempt(
    app: &Arc<App>,
    work: &Work,
    stop: &CancellationToken,
) -> purgekit::Result<purgekit::Report> {
    let metrics = app.clone();
    let progress: ProgressFn = Arc::new(move |event| metrics.metrics.event(event));
    let context = PurgeContext {
        progress: Some(progress),
        // Stopping the instance stops sending new batches; those in flight end.
        cancel: stop.child_token(),
        journal: None,
    };
    tracing::info!("{work}: started");
    let reports = match work {
        Work::Unit(unit) => {
            let purger = app.purger(std::slice::from_ref(&unit.provider))?;
            let purger = JournaledPurger::new(purger, app.journal.clone());
            (purger.run_unit(unit.run, &unit.provider, &unit.request, &context)).await?
        }
        Work::Run(claimed) => {
            let purger = app.purger(&claimed.providers)?;
            let purger = JournaledPurger::new(purger, app.journal.clone());
            purger.run(claimed.id, &claimed.request, &context).await?
        }
    };
    Ok(reports.into_report())
}

/// An attempt at `work` failed with `error`. A fatal error (the config lost the provider, a
/// plan that cannot be made) ends it at once; a transient one (the journal or a provider
/// unreachable) gives it back, taken again after [`backoff`], until [`MAX_FAILURES`]. Ending
/// it fails every target of it not settled, with the error
/// ([`purgekit::journal::Journal::give_up_unit`]); the run is done once its last unit is.
async fn failed(app: &App, work: &Work, error: Error) {
    let failures = match work.failures(app).await {
        Ok(earlier) => earlier + 1,
        Err(e) => {
            // Nothing can be recorded: the lease runs out and the work is tried again.
            tracing::warn!("{work}: {error}; and {e}");
            return;
        }
    };
    let result = if is_transient(&error) && failures < MAX_FAILURES {
        let after = backoff(failures);
        tracing::warn!(
            "{work}: attempt {failures} failed, tried again in {} s: {error}",
            after.as_secs()
        );
        work.give_back(app, failures, after).await
    } else {
        let why = if is_transient(&error) {
            format!("not run: the service gave up after {failures} attempts: {error}")
        } else {
            format!("not run: {error}")
        };
        tracing::warn!("{work}: given up: {why}");
        let given_up = work.give_up(app, &why).await;
        if let Ok(true) = given_up
            && let Ok(report) = app.journal.report(work.run()).await
        {
            app.metrics.report(&work.rows_of(report));
        }
        given_up
    };
    match result {
        Ok(true) => {}
        Ok(false) => tracing::info!("{work}: taken by another worker meanwhile"),
        Err(e) => tracing::warn!("{work}: {e}"),
    }
}

/// Whether an attempt that failed with `error` may succeed later: the journal, a provider or
/// the network may come back; a bad config or request will not.
fn is_transient(error: &Error) -> bool {
    // What a resend may cure (core's own classification), and what a later attempt may.
    error.is_retryable()
        || matches!(
            error,
            Error::Journal { .. } | Error::Deadline { .. } | Error::Cancelled
        )
}

/// The wait before the next attempt after `failures` failed ones: 1 s, doubling, at most
/// 60 s (so the last of [`MAX_FAILURES`] attempts comes about 2 minutes after the first).
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_is_tried_again_later_and_later_then_given_up() {
        let waits: Vec<u64> = (1..MAX_FAILURES).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60]);
        assert_eq!(backoff(100), Duration::from_secs(60));
        assert!(is_transient(&Error::Journal {
            message: "unreachable".into()
        }));
        assert!(is_transient(&Error::transient("reset")));
        assert!(!is_transient(&Error::config("providers.eu", "gone")));
        assert!(!is_transient(&Error::invalid("x", "no")));
    }
}
