//! Workers: each takes the oldest queued run from the journal (held by a lease the journal
//! renews while it runs), runs it with the engine, and gives it back finished. On stop, a
//! worker takes nothing new; a run it is driving stops sending new batches, the requests in
//! flight end, and the run goes back to the journal for another instance to continue.

use std::sync::Arc;
use std::time::Duration;

use purgekit::journal::{Claimed, JournaledPurger};
use purgekit::{ProgressFn, PurgeContext};
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

/// Runs a claimed run to its end (or, on stop, until its requests in flight end).
async fn run(app: &Arc<App>, claimed: Claimed, stop: &CancellationToken) {
    let id = claimed.id;
    let purger = match app.purger(&claimed.providers) {
        Ok(purger) => purger,
        Err(e) => {
            tracing::warn!("run {id}: {e}");
            give_back(app, id, stop).await;
            return;
        }
    };
    let metrics = app.clone();
    let progress: ProgressFn = Arc::new(move |event| metrics.metrics.event(event));
    let context = PurgeContext {
        progress: Some(progress),
        // Stopping the instance stops sending new batches; those in flight end.
        cancel: stop.child_token(),
        journal: None,
    };
    let purger = JournaledPurger::new(purger, app.journal.clone());
    tracing::info!("run {id}: started");
    match purger.run(id, &claimed.request, &context).await {
        Ok(reports) => {
            let report = reports.into_report();
            if !stop.is_cancelled() {
                app.metrics.report(&report);
            }
            tracing::info!("run {id}: {} rows", report.results.len());
        }
        Err(e) => {
            tracing::warn!("run {id}: {e}");
            give_back(app, id, stop).await;
        }
    }
}

/// A run that failed to run here is left to the journal (its lease given back by the
/// journaled purger); a pause keeps a worker from taking it again at once.
async fn give_back(app: &App, id: purgekit::RunId, stop: &CancellationToken) {
    if let Err(e) = app.journal.renew(id).await {
        tracing::warn!("run {id}: {e}");
    }
    pause(stop, Duration::from_secs(1)).await;
}
