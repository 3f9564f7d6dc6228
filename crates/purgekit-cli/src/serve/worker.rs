//! Workers: each takes the oldest queued run from the journal (held by a lease the journal
//! renews while it runs), runs it with the engine, and gives it back finished — or, when the
//! attempt fails, to be tried again later, or ended with its targets failed. On stop, a
//! worker takes nothing new; a run it is driving stops sending new batches, the requests in
//! flight end, and the run goes back to the journal for another instance to continue.

use std::sync::Arc;
use std::time::Duration;

use purgekit::journal::{Claimed, JournaledPurger};
use purgekit::{Error, ProgressFn, PurgeContext, RunId};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::App;

/// How often an idle worker looks for queued runs.
pub const POLL: Duration = Duration::from_millis(50);

/// Starts `n` workers; they end after `stop` is cancelled.
pub fn start(app: Arc<App>, n: usize, stop: CancellationToken) -> Vec<JoinHandle<()>> {
    (0..n)
        .map(|_| tokio::spawn(work(app.clone(), stop.clone())))
        .collect()
}

async fn work(app: Arc<App>, stop: CancellationToken) {
    while !stop.is_cancelled() {
        match app.journal.next_queued().await {
            Ok(Some(claimed)) => run(&app, claimed, &stop).await,
            Ok(None) => pause(&stop, POLL).await,
            Err(e) => {
                tracing::warn!("taking a queued run: {e}");
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

/// Failed attempts at a run before the service gives up on it (docs/service.md).
pub const MAX_FAILURES: u32 = 8;

/// Runs a claimed run to its end (or, on stop, until its requests in flight end). An attempt
/// that fails is given back to be tried again later, or ends the run (see [`failed`]).
async fn run(app: &Arc<App>, claimed: Claimed, stop: &CancellationToken) {
    let id = claimed.id;
    match attempt(app, &claimed, stop).await {
        Ok(report) => {
            if !stop.is_cancelled() {
                app.metrics.report(&report);
            }
            tracing::info!("run {id}: {} rows", report.results.len());
        }
        // Stopping: the run goes back as it is (the journaled purger gave its lease up).
        Err(e) if stop.is_cancelled() => tracing::info!("run {id}: stopped: {e}"),
        Err(e) => failed(app, id, e).await,
    }
}

async fn attempt(
    app: &Arc<App>,
    claimed: &Claimed,
    stop: &CancellationToken,
) -> purgekit::Result<purgekit::Report> {
    let purger = app.purger(&claimed.providers)?;
    let metrics = app.clone();
    let progress: ProgressFn = Arc::new(move |event| metrics.metrics.event(event));
    let context = PurgeContext {
        progress: Some(progress),
        // Stopping the instance stops sending new batches; those in flight end.
        cancel: stop.child_token(),
        journal: None,
    };
    let purger = JournaledPurger::new(purger, app.journal.clone());
    tracing::info!("run {}: started", claimed.id);
    let reports = purger.run(claimed.id, &claimed.request, &context).await?;
    Ok(reports.into_report())
}

/// An attempt at run `id` failed with `error`. A fatal error (the config lost a provider, a
/// plan that cannot be made) ends the run at once; a transient one (the journal or a provider
/// unreachable) gives it back, taken again after [`backoff`], until [`MAX_FAILURES`]. Ending
/// it fails every target not settled, with the error ([`purgekit::journal::Journal::give_up`]).
async fn failed(app: &App, id: RunId, error: Error) {
    let failures = match app.journal.failures(id).await {
        Ok(earlier) => earlier + 1,
        Err(e) => {
            // Nothing can be recorded: the lease runs out and the run is tried again.
            tracing::warn!("run {id}: {error}; and {e}");
            return;
        }
    };
    let result = if is_transient(&error) && failures < MAX_FAILURES {
        let after = backoff(failures);
        tracing::warn!(
            "run {id}: attempt {failures} failed, tried again in {} s: {error}",
            after.as_secs()
        );
        app.journal.give_back(id, failures, after).await
    } else {
        let why = if is_transient(&error) {
            format!("not run: the service gave up after {failures} attempts: {error}")
        } else {
            format!("not run: {error}")
        };
        tracing::warn!("run {id}: given up: {why}");
        let given_up = app.journal.give_up(id, &why).await;
        if let Ok(true) = given_up
            && let Ok(report) = app.journal.report(id).await
        {
            app.metrics.report(&report);
        }
        given_up
    };
    match result {
        Ok(true) => {}
        Ok(false) => tracing::info!("run {id}: taken by another worker meanwhile"),
        Err(e) => tracing::warn!("run {id}: {e}"),
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

/// The wait before a run's next attempt after `failures` failed ones: 1 s, doubling, at most
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
