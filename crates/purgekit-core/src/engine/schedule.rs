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
        accepted: Accepted,
        attempts: u32,
        completion: Option<Completion>,
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
                |response| self.provider.decode(&self.batch, response),
            )
            .await;
        drop(place);
        let accepted = match sent.result {
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
        self.sender.context.emit(Event::Accepted {
            provider: self.sender.name.clone(),
            batch: self.index,
            items: reference.items,
            handle: accepted.handle.clone(),
        });
        let completion = match self.wait {
            Some(timeout) => Some(
                wait::wait_for_completion(
                    &self.sender,
                    &*self.provider,
                    reference,
                    &accepted,
                    timeout,
                )
                .await,
            ),
            None => None,
        };
        BatchOutcome::Sent {
            accepted,
            attempts: sent.attempts,
            completion,
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
