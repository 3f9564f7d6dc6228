//! The engine: turns a provider's planned batches into HTTP exchanges and report rows.
//!
//! - [`ProviderPurger`] drives one provider account: batches go out in order, at most
//!   [`crate::Limits::max_in_flight`] at once, paced by the account's shared limiter
//!   ([`rate`]), retried under [`RetryPolicy`] ([`exchange`]), and optionally waited on until
//!   complete ([`wait`]).
//! - [`FanOut`] drives several purgers at once ([`fanout`]).
//!
//! Every wait is `tokio::time`, so tests run on tokio's paused clock.

mod clock;
mod config;
mod exchange;
mod fanout;
mod rate;
mod retry_after;
mod transport;
mod wait;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

pub use config::{EngineConfig, PollPolicy, RetryPolicy, SafetyMargin};
pub use fanout::FanOut;
pub use rate::RateRegistry;
pub use retry_after::{parse_retry_after, response_retry_after};
pub use transport::{ReqwestTransport, Transport};

use crate::error::{Error, Result};
use crate::plan::{Batch, Disposition, Plan, PlannedRequest, ProviderPlan, plan_provider};
use crate::provider::{Accepted, Handle, HttpRequest, Provider, Status};
use crate::purger::{Event, ProviderInfo, PurgeContext, Purger};
use crate::report::{Report, Row, State};
use crate::request::{Options, PurgeRequest};
use exchange::{BatchRef, Retries, Sender};
use wait::Completion;

/// A [`Purger`] for one provider account: the provider's codec driven by the engine.
///
/// ```no_run
/// # fn demo<P: purgekit_core::Provider>(provider: P) {
/// use std::sync::Arc;
/// use purgekit_core::{EngineConfig, ProviderPurger, Purger, RetryPolicy};
/// let config = EngineConfig {
///     retry: RetryPolicy { max_attempts: 3, ..RetryPolicy::default() },
///     ..EngineConfig::default()
/// };
/// let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("cdn", provider).with_config(config));
/// # }
/// ```
pub struct ProviderPurger<P: Provider> {
    name: String,
    provider: Arc<P>,
    transport: Arc<dyn Transport>,
    config: Arc<EngineConfig>,
    registry: Arc<RateRegistry>,
}

impl<P: Provider> ProviderPurger<P> {
    /// Drives `provider` under the name `name`, over HTTPS with the default transport, the
    /// default [`EngineConfig`] and the process-wide [`RateRegistry`].
    pub fn new(name: impl Into<String>, provider: P) -> Self {
        ProviderPurger {
            name: name.into(),
            provider: Arc::new(provider),
            transport: Arc::new(ReqwestTransport::default()),
            config: Arc::new(EngineConfig::default()),
            registry: RateRegistry::global(),
        }
    }

    /// Uses `transport` to send requests (a test double, or a tuned client).
    pub fn with_transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = transport;
        self
    }

    /// Uses `config` for retries, polling, rate margins and timeouts.
    pub fn with_config(mut self, config: EngineConfig) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// Shares rate limiters through `registry` instead of the process-wide one.
    pub fn with_rate_registry(mut self, registry: Arc<RateRegistry>) -> Self {
        self.registry = registry;
        self
    }

    /// The provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The engine settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn sender(&self, context: &PurgeContext) -> Sender {
        let limits = self.provider.limits();
        let limiter = self.registry.limiter(
            self.provider.kind(),
            &self.provider.account(),
            self.config.rate.unwrap_or(limits.rate),
            limits.max_in_flight,
            self.config.margin,
        );
        Sender {
            name: self.name.clone(),
            transport: self.transport.clone(),
            limiter,
            config: self.config.clone(),
            context: context.clone(),
        }
    }
}

/// How one batch ended.
#[derive(Debug, Clone)]
enum BatchOutcome {
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

#[async_trait]
impl<P: Provider> Purger for ProviderPurger<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn providers(&self) -> Vec<ProviderInfo> {
        vec![ProviderInfo {
            name: self.name.clone(),
            kind: self.provider.kind().to_owned(),
            endpoint: self.provider.endpoint(),
            limits: self.provider.limits(),
            capabilities: self.provider.capabilities(),
        }]
    }

    fn plan(&self, request: &PurgeRequest) -> Result<Plan> {
        let mut plan = plan_provider(&self.name, &*self.provider, request)?;
        if !plan.client_side_dry_run {
            let now = SystemTime::now();
            plan.requests = (0..plan.batches.len())
                .map(|index| {
                    let batch = plan.batch(index, &*self.provider, request)?;
                    let mut http = self.provider.encode(&batch, request.options(), now)?;
                    self.provider.redact(&mut http);
                    Ok(planned_request(&http))
                })
                .collect::<Result<_>>()?;
        }
        Ok(Plan {
            providers: vec![plan],
        })
    }

    async fn purge_with(&self, request: &PurgeRequest, context: &PurgeContext) -> Result<Report> {
        let plan = plan_provider(&self.name, &*self.provider, request)?;
        context.emit(Event::Planned {
            provider: self.name.clone(),
            batches: plan.batches.len(),
            items: plan.items(),
        });
        let dry_run = request.options().dry_run;
        let outcomes = if plan.client_side_dry_run {
            vec![BatchOutcome::DryRun; plan.batches.len()]
        } else {
            // A provider-side dry run is not waited for.
            let wait = request.wait().filter(|_| !dry_run);
            self.send_all(&plan, request, wait, context).await
        };
        Ok(Report::new(rows(&plan, request, &outcomes, dry_run)))
    }

    async fn status(&self, provider: &str, handle: &Handle) -> Result<Status> {
        if provider != self.name {
            return Err(Error::invalid(
                provider,
                format!(
                    "no provider of that name here (this one is `{}`)",
                    self.name
                ),
            ));
        }
        let sender = self.sender(&PurgeContext::default());
        sender
            .exchange(
                0,
                None,
                Retries::Policy,
                |now| self.provider.encode_status(handle, now),
                |response| self.provider.decode_status(handle, response),
            )
            .await
            .result
    }
}

impl<P: Provider> ProviderPurger<P> {
    /// Sends every batch, in order, each as its own task; at most `max_in_flight` of this
    /// purge's batches are being sent (or backing off between attempts) at once, so batches
    /// start in plan order. A batch's items are mapped again only once it has its place, and
    /// dropped when it is done, so at most `max_in_flight` batches' items exist at once.
    /// Returns one outcome per batch; after cancellation, unsent batches fail with
    /// [`Error::Cancelled`].
    async fn send_all(
        &self,
        plan: &ProviderPlan,
        request: &PurgeRequest,
        wait: Option<Duration>,
        context: &PurgeContext,
    ) -> Vec<BatchOutcome> {
        let sender = self.sender(context);
        let sending = Arc::new(Semaphore::new(self.provider.limits().max_in_flight.max(1)));
        let count = plan.batches.len();
        let mut outcomes: Vec<Option<BatchOutcome>> = vec![None; count];
        let mut tasks = JoinSet::new();
        let options = Arc::new(request.options().clone());
        for (index, planned) in plan.batches.iter().enumerate() {
            let place = if context.cancel.is_cancelled() {
                None
            } else {
                tokio::select! {
                    biased;
                    _ = context.cancel.cancelled() => None,
                    place = sending.clone().acquire_owned() => place.ok(),
                }
            };
            let Some(place) = place else {
                outcomes[index] = Some(cancelled(&sender, index, planned.len()));
                continue;
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
                self.batch.items.len(),
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

/// The outcome of a batch never sent because the purge was cancelled.
fn cancelled(sender: &Sender, index: usize, items: usize) -> BatchOutcome {
    unsendable(sender, index, items, Error::Cancelled)
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

/// One row per target, in input order, from the plan and each batch's outcome.
fn rows(
    plan: &ProviderPlan,
    request: &PurgeRequest,
    outcomes: &[BatchOutcome],
    dry_run: bool,
) -> Vec<Row> {
    let targets = request.targets();
    plan.targets
        .iter()
        .zip(targets)
        .map(|(disposition, target)| {
            let mut row = Row {
                target: target.to_string(),
                provider: plan.provider.clone(),
                state: State::Unsupported,
                handle: None,
                attempts: 0,
                error: None,
                warnings: Vec::new(),
            };
            match disposition {
                Disposition::Unsupported { reason } => row.error = Some(reason.to_string()),
                Disposition::Planned {
                    batch, merged_with, ..
                } => {
                    row.warnings.extend(plan.warnings.iter().cloned());
                    if let Some(first) = merged_with {
                        let first = &targets[*first as usize];
                        row.warnings
                            .push(format!("duplicate of `{first}`: purged once, with it"));
                    }
                    fill(&mut row, &outcomes[*batch as usize], dry_run);
                }
            }
            row
        })
        .collect()
}

/// Writes a batch's outcome into the row of one of its targets.
fn fill(row: &mut Row, outcome: &BatchOutcome, dry_run: bool) {
    match outcome {
        BatchOutcome::Sent {
            accepted,
            attempts,
            completion,
        } => {
            row.handle = Some(accepted.handle.to_string());
            row.attempts = *attempts;
            row.warnings.extend(accepted.warnings.iter().cloned());
            row.state = match completion {
                _ if dry_run => State::DryRun,
                None => State::Accepted,
                Some(Completion::Completed) => State::Completed,
                Some(Completion::Failed(error)) => {
                    row.error = Some(error.clone());
                    State::Failed
                }
                Some(Completion::Unfinished(why)) => {
                    row.error = Some(why.clone());
                    State::Accepted
                }
            };
        }
        BatchOutcome::Failed { error, attempts } => {
            row.state = State::Failed;
            row.attempts = *attempts;
            row.error = Some(if *attempts > 1 {
                format!("{error} (after {attempts} attempts)")
            } else {
                error.to_string()
            });
        }
        BatchOutcome::DryRun => row.state = State::DryRun,
    }
}

/// The printable form of an encoded request.
fn planned_request(http: &HttpRequest) -> PlannedRequest {
    PlannedRequest {
        method: http.method().to_string(),
        url: http.uri().to_string(),
        headers: http
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(http.body()).into_owned(),
    }
}
