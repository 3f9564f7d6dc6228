//! Waiting for completion: polling one accepted batch's status until it is completed, failed,
//! or the wait times out.

use std::time::Duration;

use tokio::time::Instant;

use super::clock::{self, human};
use super::exchange::{BatchRef, Retries, Sender};
use super::rate::Cost;
use crate::error::Error;
use crate::provider::{Accepted, CompletionModel, Handle, Progress, Provider};
use crate::purger::Event;
use crate::report::Unfinished;

/// How waiting for one batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Completion {
    /// The provider reports it complete.
    Completed,
    /// The provider reports it failed (its words).
    Failed(String),
    /// Still accepted, not known complete: why, and the words for the row.
    Unfinished(Unfinished, String),
}

/// Polls `accepted.handle` until it completes or fails, for at most `timeout` from now, and
/// never past the run's deadline ([`Sender::deadline`]).
///
/// The first poll comes after the provider's hint ([`Accepted::poll_after`], e.g. Adobe's
/// `estimatedSeconds`) or [`super::PollPolicy::delay`]`(1)`; later ones after
/// [`crate::Status::poll_after`] or the capped exponential delay. A last poll is made when
/// `timeout` ends, if the run's deadline allows; a poll that would come after the run's
/// deadline is not waited for. A `Retry-After` on a poll is honoured, unless it ends past the
/// deadline: then waiting stops at once, saying so. Status polls share the account's rate limits
/// and concurrency with purges; a status poll is one attempt: retryable errors are tried again
/// at the next poll.
pub(crate) async fn wait_for_completion<P: Provider>(
    sender: &Sender,
    provider: &P,
    batch: BatchRef,
    accepted: &Accepted,
    timeout: Duration,
) -> Completion {
    match provider.completion() {
        CompletionModel::Estimated => {
            return wait_out_estimate(sender, batch, accepted, timeout).await;
        }
        CompletionModel::OnAcceptance => {
            return completed(sender, batch);
        }
        CompletionModel::Polled => {}
    }
    let handle = &accepted.handle;
    let cancel = &sender.context.cancel;
    let poll = &sender.config.poll;
    let started = Instant::now();
    let wait_deadline = clock::after(started, timeout);
    let deadline = wait_deadline.min(sender.deadline);
    let mut delay = accepted.poll_after.unwrap_or_else(|| poll.delay(1));
    let mut asked: Option<Duration> = None;
    let mut polls = 0u32;
    let mut last = String::from("no status received");
    loop {
        let wanted = clock::after(Instant::now(), delay);
        if let Some(after) = asked.filter(|_| wanted > deadline) {
            return Completion::Unfinished(
                Unfinished::TimedOut,
                format!(
                    "not waited for: the provider asked to wait {} before the next status check, \
                 past the deadline ({last})",
                    human(after)
                ),
            );
        }
        let at = wanted.min(wait_deadline);
        if at >= sender.deadline {
            return timed_out(started, &last);
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return cancelled(&last),
            _ = tokio::time::sleep_until(at) => {}
        }
        polls += 1;
        let answer = sender
            .exchange(
                Cost::NONE,
                None,
                Retries::None,
                |now| provider.encode_status(handle, now),
                |response| provider.decode_status(handle, response),
            )
            .await
            .result;
        delay = poll.delay(polls + 1);
        asked = None;
        match answer {
            Ok(status) => match status.progress {
                Progress::Completed => return completed(sender, batch),
                Progress::Failed => {
                    let error = format!(
                        "the provider reports purge {handle} failed: {}",
                        status.detail
                    );
                    sender.context.emit(Event::Failed {
                        provider: sender.name.clone(),
                        batch: batch.index,
                        items: batch.items,
                        error: error.clone(),
                    });
                    return Completion::Failed(error);
                }
                Progress::Pending { .. } => {
                    last = format!("last status `{}`", status.detail);
                    delay = status.poll_after.unwrap_or(delay);
                }
            },
            Err(Error::Cancelled) => return cancelled(&last),
            Err(Error::Deadline { message }) => {
                return Completion::Unfinished(
                    Unfinished::TimedOut,
                    format!("waiting for completion stopped at the deadline: {message} ({last})"),
                );
            }
            Err(e) if e.is_retryable() => {
                last = format!("last status check failed: {e}");
                asked = e.retry_after();
                delay = asked.unwrap_or(delay);
            }
            Err(e) => return unavailable(handle, &e),
        }
        if Instant::now() >= deadline {
            return timed_out(started, &last);
        }
    }
}

fn timed_out(started: Instant, last: &str) -> Completion {
    Completion::Unfinished(
        Unfinished::TimedOut,
        format!(
            "waiting for completion timed out after {:.3}s ({last})",
            started.elapsed().as_secs_f64()
        ),
    )
}

/// For a provider with no status call: the purge counts as complete once the provider's
/// estimate ([`Accepted::poll_after`]) has passed, if that is within `timeout` and the run's
/// deadline. Nothing is sent;
/// the provider's accepted warning says the completion is its estimate.
async fn wait_out_estimate(
    sender: &Sender,
    batch: BatchRef,
    accepted: &Accepted,
    timeout: Duration,
) -> Completion {
    let estimate = accepted.poll_after.unwrap_or(Duration::ZERO);
    let now = Instant::now();
    if clock::after(now, estimate) > clock::after(now, timeout).min(sender.deadline) {
        // The wait ends before the provider's estimate: it timed out, though nothing was asked.
        return Completion::Unfinished(
            Unfinished::TimedOut,
            format!(
                "the provider estimates completion in {}, past the wait's end ({} or the run's \
             deadline); it has no status call",
                human(estimate),
                human(timeout)
            ),
        );
    }
    tokio::select! {
        biased;
        _ = sender.context.cancel.cancelled() => return cancelled("the provider's estimate had not passed"),
        _ = tokio::time::sleep(estimate) => {}
    }
    completed(sender, batch)
}

/// Reports `batch` completed (the progress event) and says so.
fn completed(sender: &Sender, batch: BatchRef) -> Completion {
    sender.context.emit(Event::Completed {
        provider: sender.name.clone(),
        batch: batch.index,
        items: batch.items,
    });
    Completion::Completed
}

fn cancelled(last: &str) -> Completion {
    Completion::Unfinished(
        Unfinished::Cancelled,
        format!("waiting for completion cancelled ({last})"),
    )
}

fn unavailable(handle: &Handle, e: &Error) -> Completion {
    // The provider has no status call for this purge (a codec's `Unsupported`), or the status
    // call failed for good.
    let why = if matches!(e, Error::Unsupported { .. }) {
        Unfinished::NoStatusApi
    } else {
        Unfinished::StatusError
    };
    Completion::Unfinished(
        why,
        format!("waiting for completion stopped: status of {handle} unavailable: {e}"),
    )
}
