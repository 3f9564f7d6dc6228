//! Batch scheduling: a plan's batches sent in order, at most `max_in_flight` at once and within
//! the provider's in-flight capacity, each optionally waited on until complete.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ProviderPurger;
use super::exchange::{BatchRef, Retries, Sender};
use super::in_flight::{Held, InFlight, hold_id};
use super::journal::{self, BatchRecord};
use super::rate::Cost;
use super::rows;
use super::wait::{self, Completion};
use crate::error::Error;
use crate::plan::ProviderPlan;
use crate::provider::{Accepted, Batch, Provider, RunId};
use crate::purger::{Event, PurgeContext};
use crate::report::Unfinished;
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
    /// Failed for good in an earlier attempt at the run, as the journal recorded it (the row's
    /// error text).
    Recorded {
        error: Arc<str>,
        attempts: u32,
    },
    DryRun,
}

impl<P: Provider> ProviderPurger<P> {
    /// Sends every batch, in order, each as its own task; at most `max_in_flight` of this
    /// purge's batches are being sent (or backing off between attempts) at once, so batches
    /// start in plan order. A batch's items are mapped again only once it has its place, and
    /// dropped when it is done, so at most `max_in_flight` batches' items exist at once.
    ///
    /// With an in-flight capacity ([`crate::Limits::in_flight_capacity`]) a batch is first
    /// admitted against it, and its task watches the purge complete to free its share, even
    /// without `wait`: then only until every batch of the purge has been admitted. Wildcard
    /// batches and the others are admitted in two lanes, each in plan order, so neither kind
    /// waits for the other's allowance.
    ///
    /// A batch following another run's ([`BatchRecord::Follows`]) waits for it; when that run
    /// stopped before sending it, the batch is admitted and sent here after the others.
    ///
    /// Returns one outcome per batch, and the batches sent here after the run they followed
    /// stopped; after cancellation, unsent batches fail with [`Error::Cancelled`]. Nothing waits
    /// past `run.deadline`: a batch that cannot get its place before it fails with
    /// [`Error::Deadline`].
    pub(super) async fn send_all(
        &self,
        plan: &ProviderPlan,
        request: &PurgeRequest,
        wait: Option<Duration>,
        context: &PurgeContext,
        run: Run,
        records: &[BatchRecord],
    ) -> (Vec<BatchOutcome>, Vec<usize>) {
        let admission = Admission {
            run: run.id,
            sender: self.sender(context, run.deadline),
            sending: Arc::new(Semaphore::new(self.provider.limits().max_in_flight.max(1))),
            options: Arc::new(request.options().clone()),
            wait,
            watching: context.cancel.child_token(),
        };
        // Batches an earlier attempt at the run sent: not sent again; an accepted one is
        // waited for when the request waits.
        let mut earlier = Vec::new();
        let mut resumed = JoinSet::new();
        let mut following = JoinSet::new();
        // A job for a batch this run does not send itself.
        let unsent_job = |index: usize| BatchJob {
            sender: admission.sender.clone(),
            provider: self.provider.clone(),
            options: admission.options.clone(),
            index,
            items: plan.batches().at(index).len(),
            batch: None,
            earlier: None,
            wait,
            held: None,
            watching: admission.watching.clone(),
        };
        for (index, record) in records.iter().enumerate() {
            match (journal::outcome(record), record) {
                (
                    Some(_),
                    BatchRecord::Accepted {
                        parts,
                        slots,
                        attempts,
                    },
                ) if wait.is_some() => {
                    let mut job = BatchJob {
                        earlier: Some((
                            parts.iter().map(|p| p.accepted()).collect(),
                            slots.clone(),
                            *attempts,
                        )),
                        ..unsent_job(index)
                    };
                    // Its purge is still in progress: the hold the process that sent it left
                    // in the store (if any) is this run's again, freed when seen complete.
                    let shared = admission
                        .sender
                        .limiter
                        .shared()
                        .filter(|_| self.in_flight.is_some())
                        .map(|shared| (shared.clone(), hold_id(run.id, &self.name, index)));
                    resumed.spawn(async move {
                        if let Some((shared, id)) = shared {
                            job.held = InFlight::adopt(&shared, id).await;
                        }
                        (index, job.run(None).await)
                    });
                }
                (Some(outcome), _) => earlier.push((index, outcome)),
                (None, BatchRecord::Follows) => {
                    let Some(log) = context.journal.clone() else {
                        continue;
                    };
                    let job = unsent_job(index);
                    following.spawn(async move { (index, job.follow(log).await) });
                }
                (None, _) => {}
            }
        }
        let (plain, wildcard): (Vec<usize>, Vec<usize>) = (0..plan.batches().len())
            .filter(|&i| !records.get(i).is_some_and(BatchRecord::is_sent))
            .partition(|&i| self.in_flight.is_none() || plan.batches().at(i).wildcards == 0);
        let ((mut outcomes, tasks), (more, other_tasks)) = tokio::join!(
            self.admit_lane(&plain, plan, request, &admission),
            self.admit_lane(&wildcard, plan, request, &admission),
        );
        outcomes.extend(more);
        let mut sets = vec![tasks, other_tasks];
        // The batches whose followed run stopped before sending them: sent here, after the
        // others (their in-flight shares held meanwhile by the tasks still running).
        let mut taken_over = Vec::new();
        let mut followed = Vec::new();
        while let Some(joined) = following.join_next().await {
            match joined {
                Ok((index, Some((outcome, _)))) => followed.push((index, outcome)),
                Ok((index, None)) => taken_over.push(index),
                Err(e) => {
                    tracing::error!(provider = %self.name, "a batch task ended abnormally: {e}")
                }
            }
        }
        if !taken_over.is_empty() {
            taken_over.sort_unstable();
            let (plain, wildcard): (Vec<usize>, Vec<usize>) = taken_over
                .iter()
                .partition(|&&i| self.in_flight.is_none() || plan.batches().at(i).wildcards == 0);
            let ((more, plain_tasks), (rest, wildcard_tasks)) = tokio::join!(
                self.admit_lane(&plain, plan, request, &admission),
                self.admit_lane(&wildcard, plan, request, &admission),
            );
            outcomes.extend(more);
            outcomes.extend(rest);
            sets.extend([plain_tasks, wildcard_tasks]);
        }
        if let Some(log) = &context.journal {
            // Batches never sent, for good (a cancelled one stays queued for resume).
            for (index, outcome) in &outcomes {
                if let BatchOutcome::Failed { error, attempts } = outcome
                    && !matches!(error, Error::Cancelled)
                {
                    let text = rows::failed_text(error, *attempts);
                    if let Err(e) = log.failed(&self.name, *index, &text, *attempts).await {
                        tracing::error!(provider = %self.name, "journal: {e}");
                    }
                }
            }
        }
        outcomes.extend(earlier);
        outcomes.extend(followed);
        if wait.is_none() {
            // Every batch is admitted: no later batch needs the capacity still held.
            admission.watching.cancel();
        }
        let mut slots: Vec<Option<BatchOutcome>> = vec![None; plan.batches().len()];
        for (index, outcome) in outcomes {
            slots[index] = Some(outcome);
        }
        sets.push(resumed);
        for set in &mut sets {
            while let Some(joined) = set.join_next().await {
                match joined {
                    // A share still held (purge not seen complete) is freed only here, once
                    // no batch of this run can be admitted any more.
                    Ok((index, (outcome, still_held))) => {
                        slots[index] = Some(outcome);
                        if let Some(held) = still_held {
                            held.release().await;
                        }
                    }
                    Err(e) => {
                        tracing::error!(provider = %self.name, "a batch task ended abnormally: {e}")
                    }
                }
            }
        }
        let outcomes = slots
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| BatchOutcome::Failed {
                    error: Error::protocol("the engine task sending this batch ended abnormally"),
                    attempts: 0,
                })
            })
            .collect();
        (outcomes, taken_over)
    }

    /// Admits the batches of one lane in order (capacity, then a sending place) and spawns
    /// each batch's task. Returns the tasks and the outcomes of batches never spawned.
    async fn admit_lane(
        &self,
        lane: &[usize],
        plan: &ProviderPlan,
        request: &PurgeRequest,
        admission: &Admission,
    ) -> (Vec<(usize, BatchOutcome)>, JoinSet<(usize, Finished)>) {
        let sender = &admission.sender;
        let cancel = &sender.context.cancel;
        let mut outcomes = Vec::new();
        let mut tasks = JoinSet::new();
        let remapper = plan.remapper(&*self.provider, request);
        for &index in lane {
            let planned = plan.batches().at(index);
            let held = match &self.in_flight {
                Some(in_flight) => {
                    let wildcards = planned.wildcards;
                    // Claimed in the account's store when it has one, shared with every process.
                    let shared = sender
                        .limiter
                        .shared()
                        .map(|shared| (shared, hold_id(admission.run, &self.name, index)));
                    let admitted = in_flight
                        .admit(
                            planned.len() - wildcards,
                            wildcards,
                            shared,
                            cancel,
                            sender.deadline,
                        )
                        .await;
                    match admitted {
                        Ok(held) => Some(held),
                        Err(error) => {
                            outcomes.push((index, unsendable(sender, index, planned.len(), error)));
                            continue;
                        }
                    }
                }
                None => None,
            };
            let place = if cancel.is_cancelled() {
                Err(Error::Cancelled)
            } else {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => Err(Error::Cancelled),
                    place = admission.sending.clone().acquire_owned() => place.map_err(|_| Error::Cancelled),
                    _ = tokio::time::sleep_until(sender.deadline) => Err(Error::deadline(
                        "not sent: the run's deadline came before this batch's turn",
                    )),
                }
            };
            let sendable =
                place.and_then(|place| Ok((place, remapper.batch(admission.run, index)?)));
            let (place, batch) = match sendable {
                Ok(sendable) => sendable,
                Err(error) => {
                    if let Some(held) = held {
                        held.release().await;
                    }
                    outcomes.push((index, unsendable(sender, index, planned.len(), error)));
                    continue;
                }
            };
            let job = BatchJob {
                sender: sender.clone(),
                provider: self.provider.clone(),
                options: admission.options.clone(),
                index,
                items: planned.len(),
                batch: Some(batch),
                earlier: None,
                wait: admission.wait,
                held,
                watching: admission.watching.clone(),
            };
            tasks.spawn(async move { (index, job.run(Some(place)).await) });
        }
        (outcomes, tasks)
    }
}

/// A batch task's end: its outcome, and its in-flight share if still held.
type Finished = (BatchOutcome, Option<Held>);

/// One purge run as the scheduler sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Run {
    /// Its id, part of every batch's [`crate::BatchId`].
    pub(super) id: RunId,
    /// Nothing waits past it ([`Sender::deadline`]).
    pub(super) deadline: Instant,
}

/// What every batch of one purge shares while being admitted.
struct Admission {
    run: RunId,
    sender: Sender,
    /// This purge's sending places (`max_in_flight`).
    sending: Arc<Semaphore>,
    options: Arc<Options>,
    wait: Option<Duration>,
    /// Cancelled once watching completion only to free capacity is no longer needed.
    watching: CancellationToken,
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
    /// Its items.
    items: usize,
    /// The batch to send; `None` for one accepted in an earlier attempt at the run.
    batch: Option<Batch>,
    /// What an earlier attempt at the run was answered (accepted parts, slots, attempts).
    earlier: Option<(Vec<Accepted>, Vec<u32>, u32)>,
    wait: Option<Duration>,
    /// The batch's share of the in-flight capacity, freed once it is seen complete.
    held: Option<Held>,
    /// See [`Admission::watching`].
    watching: CancellationToken,
}

impl<P: Provider> BatchJob<P> {
    /// Sends the batch (holding this purge's sending `place` until it is accepted or failed),
    /// then waits for completion if asked. Returns the batch's in-flight share if its purge was
    /// not seen to end (the provider still counts it): the caller keeps it until no batch of
    /// the run can be admitted.
    /// Sends the batch, holding this purge's sending `place` until it is accepted or failed,
    /// and tells the journal. Returns the accepted parts, their slots and the attempts, or the
    /// failed outcome.
    async fn send(
        &self,
        batch: &Batch,
        place: Option<OwnedSemaphorePermit>,
    ) -> Result<(Vec<Accepted>, Vec<u32>, u32), BatchOutcome> {
        let reference = BatchRef {
            index: self.index,
            items: batch.items.len(),
        };
        let shared = self
            .provider
            .limits()
            .shared_scope
            .is_some_and(|s| s.parent == batch.scope);
        let sent = self
            .sender
            .exchange(
                Cost {
                    items: batch.items.len(),
                    scope: Some(&batch.scope),
                },
                Some(reference),
                Retries::Policy,
                |now| self.provider.encode(batch, &self.options, now),
                |response| -> crate::Result<Parts> {
                    if shared {
                        let answer = self.provider.decode_shared(batch, response)?;
                        spread(self.provider.kind(), batch, answer)
                    } else {
                        Ok((vec![self.provider.decode(batch, response)?], Vec::new()))
                    }
                },
            )
            .await;
        drop(place);
        let journal = self.sender.context.journal.as_ref();
        match sent.result {
            Ok((accepted, slots)) => {
                if let Some(log) = journal {
                    let parts = journal::recorded(&accepted);
                    let logged = log
                        .accepted(&self.sender.name, self.index, &parts, &slots, sent.attempts)
                        .await;
                    if let Err(e) = logged {
                        tracing::error!(provider = %self.sender.name, "journal: {e}");
                    }
                }
                Ok((accepted, slots, sent.attempts))
            }
            Err(error) => {
                self.sender.context.emit(Event::Failed {
                    provider: self.sender.name.clone(),
                    batch: self.index,
                    items: reference.items,
                    error: error.to_string(),
                });
                if let Some(log) = journal
                    && !matches!(error, Error::Cancelled)
                {
                    let text = rows::failed_text(&error, sent.attempts);
                    let logged = log
                        .failed(&self.sender.name, self.index, &text, sent.attempts)
                        .await;
                    if let Err(e) = logged {
                        tracing::error!(provider = %self.sender.name, "journal: {e}");
                    }
                }
                // Refused: the provider holds nothing for it.
                Err(BatchOutcome::Failed {
                    error,
                    attempts: sent.attempts,
                })
            }
        }
    }

    /// Waits for the other run's batch this one follows, then takes its outcome: accepted (and
    /// waited for, when asked), completed or failed. `None`: that run stopped before sending
    /// it, so this run sends it.
    async fn follow(mut self, log: crate::SharedRunLog) -> Option<Finished> {
        let cancel = self.sender.context.cancel.clone();
        let followed = tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(Error::Cancelled),
            followed = log.follow(&self.sender.name, self.index) => followed,
            _ = tokio::time::sleep_until(self.sender.deadline) => Err(Error::deadline(
                "not sent: the other run's batch it follows was not sent before the run's deadline",
            )),
        };
        let failed = |error| Some((BatchOutcome::Failed { error, attempts: 0 }, None));
        match followed {
            Ok(BatchRecord::Accepted {
                parts,
                slots,
                attempts,
            }) => {
                self.earlier = Some((
                    parts.iter().map(|p| p.accepted()).collect(),
                    slots,
                    attempts,
                ));
                Some(self.run(None).await)
            }
            Ok(record @ (BatchRecord::Completed { .. } | BatchRecord::Failed { .. })) => {
                let outcome = journal::outcome(&record).unwrap_or(BatchOutcome::DryRun);
                Some((outcome, None))
            }
            Ok(_) => None,
            Err(error) => failed(error),
        }
    }

    async fn run(mut self, place: Option<OwnedSemaphorePermit>) -> Finished {
        let (accepted, slots, attempts) = match (self.earlier.take(), self.batch.take()) {
            (Some(earlier), _) => earlier,
            (None, Some(batch)) => match self.send(&batch, place).await {
                Ok(sent) => sent,
                Err(failed) => {
                    // Refused: the provider holds nothing for it.
                    if let Some(held) = self.held.take() {
                        held.release().await;
                    }
                    return (failed, None);
                }
            },
            (None, None) => {
                let error = Error::protocol("a batch with neither items nor an earlier answer");
                let failed = BatchOutcome::Failed { error, attempts: 0 };
                return (failed, None);
            }
        };
        let reference = BatchRef {
            index: self.index,
            items: self.items,
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
        // Without `wait`, a batch holding in-flight capacity is still watched, only to free the
        // capacity, while later batches need it, within the retry deadline and the run's.
        let watch = match (self.wait, &self.held) {
            (Some(timeout), _) => Some((self.sender.clone(), timeout)),
            (None, Some(_)) => {
                let mut watcher = self.sender.clone();
                watcher.context.cancel = self.watching.clone();
                Some((watcher, self.sender.config.retry.deadline))
            }
            (None, None) => None,
        };
        if let Some((watcher, timeout)) = watch {
            let mut waits = JoinSet::new();
            for (part, (sent, items)) in parts.iter().zip(items).enumerate() {
                let sender = watcher.clone();
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
                    (
                        usize::MAX,
                        Completion::Unfinished(Unfinished::StatusError, String::new()),
                    )
                });
                if let Some(sent) = parts.get_mut(part) {
                    sent.completion = Some(completion);
                }
            }
            for sent in &mut parts {
                sent.completion.get_or_insert_with(|| {
                    Completion::Unfinished(
                        Unfinished::StatusError,
                        "waiting for completion stopped: the polling task ended abnormally"
                            .to_owned(),
                    )
                });
            }
        }
        let seen_to_end = parts.iter().all(|p| {
            matches!(
                p.completion,
                Some(Completion::Completed | Completion::Failed(_))
            )
        });
        let still_held = match self.held.take() {
            Some(held) if seen_to_end => {
                held.release().await;
                None
            }
            held => held,
        };
        if self.wait.is_none() {
            // Watched only for the capacity: an unfinished watch is no report of completion.
            for part in &mut parts {
                if matches!(part.completion, Some(Completion::Unfinished(..))) {
                    part.completion = None;
                }
            }
        }
        if let Some(log) = &self.sender.context.journal {
            let failed = parts.iter().find_map(|p| match &p.completion {
                Some(Completion::Failed(error)) => Some(error.clone()),
                _ => None,
            });
            let logged = match failed {
                Some(error) => {
                    log.failed(&self.sender.name, self.index, &error, attempts)
                        .await
                }
                None if seen_to_end => log.completed(&self.sender.name, self.index).await,
                None => Ok(()),
            };
            if let Err(e) = logged {
                tracing::error!(provider = %self.sender.name, "journal: {e}");
            }
        }
        let sent = BatchOutcome::Sent {
            parts,
            slots,
            attempts,
        };
        (sent, still_held)
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
