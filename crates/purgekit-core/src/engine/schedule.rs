//! Batch scheduling: a plan's batches sent in order, at most `max_in_flight` at once, each
//! optionally waited on until complete.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::ProviderPurger;
use super::exchange::{BatchRef, Retries, Sender};
use super::rate::Cost;
use super::wait::{self, Completion};
use crate::error::Error;
use crate::plan::ProviderPlan;
use crate::provider::{Accepted, Batch, Provider};
use crate::purger::{Event, PurgeContext};
use crate::request::{Options, PurgeRequest};

/// How one batch ended.
#[derive(Debug, Clone)]
pub(super) enum BatchOutcome {
    Sent {
        /// One part per handle: one for a batch of one scope, one per scope for a batch at a
        /// shared parent scope.
        parts: Vec<SentPart>,
        /// Per slot, its part's index; empty when there is one part.
        slots: Vec<u32>,
        attempts: u32,
    },
    Failed {
        error: Error,
        attempts: u32,
    },
    DryRun,
}

impl<P: Provider> ProviderPurger<P> {
    /// Sends every batch, in order, each as its own task; at most `max_in_flight` of this
    /// purge's batches are being sent (or backing off between attempts) at once, so batches
    /// start in plan order. A batch's items are mapped again only once it has its place, and
    /// dropped when it is done, so at most `max_in_flight` batches' items exist at once.
    /// Returns one outcome per batch; after cancellation, unsent batches fail with
    /// [`Error::Cancelled`]. Nothing waits past `deadline`: a batch that cannot get its place
    /// before it fails with [`Error::Deadline`].
    pub(super) async fn send_all(
        &self,
        plan: &ProviderPlan,
        request: &PurgeRequest,
        wait: Option<Duration>,
        context: &PurgeContext,
        deadline: Instant,
    ) -> Vec<BatchOutcome> {
        let sender = self.sender(context, deadline);
        let sending = Arc::new(Semaphore::new(self.provider.limits().max_in_flight.max(1)));
        let count = plan.batches.len();
        let mut outcomes: Vec<Option<BatchOutcome>> = vec![None; count];
        let mut tasks = JoinSet::new();
        let options = Arc::new(request.options().clone());
        for (index, planned) in plan.batches.iter().enumerate() {
            let place = if context.cancel.is_cancelled() {
                Err(Error::Cancelled)
            } else {
                tokio::select! {
                    biased;
                    _ = context.cancel.cancelled() => Err(Error::Cancelled),
                    place = sending.clone().acquire_owned() => place.map_err(|_| Error::Cancelled),
                    _ = tokio::time::sleep_until(deadline) => Err(Error::deadline(
                        "not sent: the run's deadline came before this batch's turn",
                    )),
                }
            };
            let place = match place {
                Ok(place) => place,
                Err(error) => {
                    outcomes[index] = Some(unsendable(&sender, index, planned.len(), error));
                    continue;
                }
            };
            let batch = match plan.batch(index, &*self.provider, request) {
                Ok(batch) => batch,
                Err(error) => {
                    outcomes[index] = Some(unsendable(&sender, index, planned.len(), error));
                    continue;
                }
            };
            let job = BatchJob {
                sender: sender.clone(),
                provider: self.provider.clone(),
                options: options.clone(),
                index,
                batch,
                wait,
            };
            tasks.spawn(async move { (index, job.run(place).await) });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, outcome)) => outcomes[index] = Some(outcome),
                Err(e) => {
                    tracing::error!(provider = %self.name, "a batch task ended abnormally: {e}")
                }
            }
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| BatchOutcome::Failed {
                    error: Error::protocol("the engine task sending this batch ended abnormally"),
                    attempts: 0,
                })
            })
            .collect()
    }
}

/// One handle of a sent batch, and how waiting for it ended.
#[derive(Debug, Clone)]
pub(super) struct SentPart {
    pub(super) accepted: Accepted,
    pub(super) completion: Option<Completion>,
}

/// The accepted parts of a batch and, per slot, its part (empty when there is one part).
type Parts = (Vec<Accepted>, Vec<u32>);

/// Spreads a shared-scope answer over the batch: one part per scope, in the batch's order, each
/// slot naming its scope's part. A scope the answer gives no handle is a protocol error.
fn spread(kind: &str, batch: &Batch, answer: Vec<(String, Accepted)>) -> Result<Parts, Error> {
    let mut scopes: Vec<&str> = Vec::new();
    let mut slots = Vec::with_capacity(batch.items.len());
    for item in &batch.items {
        let part = match scopes.iter().position(|s| *s == item.scope) {
            Some(p) => p,
            None => {
                scopes.push(&item.scope);
                scopes.len() - 1
            }
        };
        slots.push(part as u32);
    }
    let mut answer = answer;
    let mut parts = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let at = answer.iter().position(|(s, _)| s == scope).ok_or_else(|| {
            Error::protocol(format!(
                "{kind} accepted the request at `{}` but gave no handle for `{scope}`",
                batch.scope
            ))
        })?;
        parts.push(answer.swap_remove(at).1);
    }
    Ok((parts, slots))
}

/// Everything one batch's task owns.
struct BatchJob<P: Provider> {
    sender: Sender,
    provider: Arc<P>,
    options: Arc<Options>,
    index: usize,
    batch: Batch,
    wait: Option<Duration>,
}

impl<P: Provider> BatchJob<P> {
    /// Sends the batch (holding this purge's sending `place` until it is accepted or failed),
    /// then waits for completion if asked.
    async fn run(self, place: OwnedSemaphorePermit) -> BatchOutcome {
        let reference = BatchRef {
            index: self.index,
            items: self.batch.items.len(),
        };
        let shared = self
            .provider
            .limits()
            .shared_scope
            .is_some_and(|s| s.parent == self.batch.scope);
        let sent = self
            .sender
            .exchange(
                Cost {
                    items: self.batch.items.len(),
                    scope: Some(&self.batch.scope),
                },
                Some(reference),
                Retries::Policy,
                |now| self.provider.encode(&self.batch, &self.options, now),
                |response| -> crate::Result<Parts> {
                    if shared {
                        let answer = self.provider.decode_shared(&self.batch, response)?;
                        spread(self.provider.kind(), &self.batch, answer)
                    } else {
                        Ok((
                            vec![self.provider.decode(&self.batch, response)?],
                            Vec::new(),
                        ))
                    }
                },
            )
            .await;
        drop(place);
        let (accepted, slots) = match sent.result {
            Ok(accepted) => accepted,
            Err(error) => {
                self.sender.context.emit(Event::Failed {
                    provider: self.sender.name.clone(),
                    batch: self.index,
                    items: reference.items,
                    error: error.to_string(),
                });
                return BatchOutcome::Failed {
                    error,
                    attempts: sent.attempts,
                };
            }
        };
        // Items per part, for progress events.
        let mut items = vec![0usize; accepted.len()];
        for &part in &slots {
            items[part as usize] += 1;
        }
        if slots.is_empty() {
            items[0] = reference.items;
        }
        for (accepted, &items) in accepted.iter().zip(&items) {
            self.sender.context.emit(Event::Accepted {
                provider: self.sender.name.clone(),
                batch: self.index,
                items,
                handle: accepted.handle.clone(),
            });
        }
        // Each part (handle) is waited for at once, in its own task: their polls share the
        // account's rate limits and in-flight places like any request.
        let mut parts: Vec<SentPart> = accepted
            .into_iter()
            .map(|accepted| SentPart {
                accepted,
                completion: None,
            })
            .collect();
        if let Some(timeout) = self.wait {
            let mut waits = JoinSet::new();
            for (part, (sent, items)) in parts.iter().zip(items).enumerate() {
                let sender = self.sender.clone();
                let provider = self.provider.clone();
                let accepted = sent.accepted.clone();
                let batch = BatchRef {
                    index: self.index,
                    items,
                };
                waits.spawn(async move {
                    let completion =
                        wait::wait_for_completion(&sender, &*provider, batch, &accepted, timeout)
                            .await;
                    (part, completion)
                });
            }
            while let Some(joined) = waits.join_next().await {
                let (part, completion) = joined.unwrap_or_else(|e| {
                    tracing::error!("a status-polling task ended abnormally: {e}");
                    (usize::MAX, Completion::Unfinished(String::new()))
                });
                if let Some(sent) = parts.get_mut(part) {
                    sent.completion = Some(completion);
                }
            }
            for sent in &mut parts {
                sent.completion.get_or_insert_with(|| {
                    Completion::Unfinished(
                        "waiting for completion stopped: the polling task ended abnormally"
                            .to_owned(),
                    )
                });
            }
        }
        BatchOutcome::Sent {
            parts,
            slots,
            attempts: sent.attempts,
        }
    }
}

/// The outcome of a batch never sent, for `error`.
fn unsendable(sender: &Sender, index: usize, items: usize, error: Error) -> BatchOutcome {
    sender.context.emit(Event::Failed {
        provider: sender.name.clone(),
        batch: index,
        items,
        error: error.to_string(),
    });
    BatchOutcome::Failed { error, attempts: 0 }
}
