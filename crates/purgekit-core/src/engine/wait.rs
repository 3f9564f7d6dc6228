//! Waiting for completion: polling one accepted batch's status until it is completed, failed,
//! or the wait times out.

use std::time::Duration;

use tokio::time::Instant;

use super::clock;
use super::exchange::{BatchRef, Retries, Sender};
use super::rate::Cost;
use crate::error::Error;
use crate::provider::{Accepted, CompletionModel, Handle, Progress, Provider};
use crate::purger::Event;

/// How waiting for one batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Completion {
    /// The provider reports it complete.
    Completed,
    /// The provider reports it failed (its words).
    Failed(String),
    /// Still accepted, not known complete: timed out, cancelled, or status unavailable (why).
    Unfinished(String),
}

/// Polls `accepted.handle` until it completes or fails, for at most `timeout` from now.
///
/// The first poll comes after the provider's hint ([`Accepted::poll_after`], e.g. Adobe's
/// `estimatedSeconds`) or [`super::PollPolicy::delay`]`(1)`; later ones after
/// [`crate::Status::poll_after`] or the capped exponential delay. A last poll is made at the
/// deadline. Status polls share the account's rate limits and concurrency with purges;
/// a status poll is one attempt: retryable errors are tried again at the next poll.
pub(crate) async fn wait_for_completion<P: Provider>(
    sender: &Sender,
    provider: &P,
    batch: BatchRef,
    accepted: &Accepted,
    timeout: Duration,
) -> Completion {
    if provider.completion() == CompletionModel::Estimated {
        return wait_out_estimate(sender, batch, accepted, timeout).await;
    }
    let handle = &accepted.handle;
    let cancel = &sender.context.cancel;
    let poll = &sender.config.poll;
    let deadline = clock::after(Instant::now(), timeout);
    let mut delay = accepted.poll_after.unwrap_or_else(|| poll.delay(1));
    let mut polls = 0u32;
    let mut last = String::from("no status received");
    loop {
        let at = clock::after(Instant::now(), delay).min(deadline);
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
        match answer {
            Ok(status) => match status.progress {
                Progress::Completed => {
                    sender.context.emit(Event::Completed {
                        provider: sender.name.clone(),
                        batch: batch.index,
                        items: batch.items,
                    });
                    return Completion::Completed;
                }
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
            Err(e) if e.is_retryable() => {
                last = format!("last status check failed: {e}");
                delay = e.retry_after().unwrap_or(delay);
            }
            Err(e) => return unavailable(handle, &e),
        }
        if Instant::now() >= deadline {
            return Completion::Unfinished(format!(
                "waiting for completion timed out after {:.3}s ({last})",
                timeout.as_secs_f64()
            ));
        }
    }
}

/// For a provider with no status call: the purge counts as complete once the provider's
/// estimate ([`Accepted::poll_after`]) has passed, if that is within `timeout`. Nothing is sent;
/// the provider's accepted warning says the completion is its estimate.
async fn wait_out_estimate(
    sender: &Sender,
    batch: BatchRef,
    accepted: &Accepted,
    timeout: Duration,
) -> Completion {
    let estimate = accepted.poll_after.unwrap_or(Duration::ZERO);
    if estimate > timeout {
        return Completion::Unfinished(format!(
            "the provider estimates completion in {:.3}s, after the {:.3}s wait; it has no status call",
            estimate.as_secs_f64(),
            timeout.as_secs_f64()
        ));
    }
    tokio::select! {
        biased;
        _ = sender.context.cancel.cancelled() => return cancelled("the provider's estimate had not passed"),
        _ = tokio::time::sleep(estimate) => {}
    }
    sender.context.emit(Event::Completed {
        provider: sender.name.clone(),
        batch: batch.index,
        items: batch.items,
    });
    Completion::Completed
}

fn cancelled(last: &str) -> Completion {
    Completion::Unfinished(format!("waiting for completion cancelled ({last})"))
}

fn unavailable(handle: &Handle, e: &Error) -> Completion {
    Completion::Unfinished(format!(
        "waiting for completion stopped: status of {handle} unavailable: {e}"
    ))
}
