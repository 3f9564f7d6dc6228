//! The front of the engine: [`ProviderPurger`], one provider account as a [`Purger`].

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::time::Instant;

#[cfg(feature = "reqwest")]
use super::ReqwestTransport;
use super::clock;
use super::exchange::{Retries, Sender};
use super::in_flight::InFlight;
use super::journal::{BatchRecord, RunRecord};
use super::rate::Cost;
use super::rows::{Rows, planned_request};
use super::schedule::{BatchOutcome, Run};
use super::{EngineConfig, RateRegistry, Transport};
use crate::error::{Error, Result};
use crate::plan::{FollowGroup, Plan, plan_following, plan_provider};
use crate::provider::{AuthProbe, CompletionModel, Handle, Provider, RunId, Status};
use crate::purger::{AuthCheck, AuthOutcome, Event, ProviderInfo, PurgeContext, Purger};
use crate::report::{Report, Reports};
use crate::request::PurgeRequest;

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
    pub(super) name: String,
    pub(super) provider: Arc<P>,
    transport: Arc<dyn Transport>,
    config: Arc<EngineConfig>,
    registry: Arc<RateRegistry>,
    /// The provider's in-flight capacity, shared by every purge through this purger.
    pub(super) in_flight: Option<Arc<InFlight>>,
}

impl<P: Provider> ProviderPurger<P> {
    /// Drives `provider` under the name `name`, over HTTPS with the default transport
    /// ([`ReqwestTransport`]), the default [`EngineConfig`] and the process-wide [`RateRegistry`].
    #[cfg(feature = "reqwest")]
    pub fn new(name: impl Into<String>, provider: P) -> Self {
        Self::with_transport_of(name, provider, Arc::new(ReqwestTransport::default()))
    }

    /// Drives `provider` under the name `name`, sending through `transport`, with the default
    /// [`EngineConfig`] and the process-wide [`RateRegistry`] (the constructor that needs no
    /// `reqwest` feature).
    ///
    /// # Panics
    ///
    /// If the provider declares an in-flight capacity ([`crate::Limits::in_flight_capacity`])
    /// but no status call ([`CompletionModel::Estimated`]): capacity is freed only when a status
    /// poll shows a purge complete, so that provider is a programming error.
    pub fn with_transport_of(
        name: impl Into<String>,
        provider: P,
        transport: Arc<dyn Transport>,
    ) -> Self {
        let in_flight = provider.limits().in_flight_capacity.map(|capacity| {
            assert!(
                provider.completion() == CompletionModel::Polled,
                "provider `{}` declares an in-flight capacity but no status call: capacity is \
                 freed only when a status poll shows a purge complete",
                provider.kind()
            );
            Arc::new(InFlight::new(capacity))
        });
        ProviderPurger {
            name: name.into(),
            in_flight,
            provider: Arc::new(provider),
            transport,
            config: Arc::new(EngineConfig::default()),
            registry: RateRegistry::global(),
        }
    }

    /// Uses `transport` to send requests (a test double, or a tuned client).
    pub fn with_transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = transport;
        self
    }

    /// Uses `config` for the deadline, retries, polling, rate margins and timeouts.
    pub fn with_config(mut self, config: EngineConfig) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// Shares rate limiters through `registry` instead of the process-wide one.
    pub fn with_rate_registry(mut self, registry: Arc<RateRegistry>) -> Self {
        self.registry = registry;
        self
    }

    /// The deadline of a run starting now.
    fn deadline(&self) -> Instant {
        clock::after(Instant::now(), self.config.deadline)
    }

    /// The provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The engine settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The sending path for one run, which ends at `deadline`.
    pub(super) fn sender(&self, context: &PurgeContext, deadline: Instant) -> Sender {
        let limits = self.provider.limits();
        let limiter = self.registry.limiter(
            self.provider.kind(),
            &self.provider.account(),
            self.config.rate.unwrap_or(limits.rate),
            &limits.buckets,
            limits.max_in_flight,
            self.config.margin,
        );
        Sender {
            name: self.name.clone(),
            transport: self.transport.clone(),
            limiter,
            config: self.config.clone(),
            context: context.clone(),
            deadline,
            max_response_bytes: limits.max_response_bytes,
        }
    }
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
            account: format!("{}/{}", self.provider.kind(), self.provider.account()),
            endpoint: self.provider.endpoint(),
            limits: self.provider.limits(),
            capabilities: self.provider.capabilities(),
        }]
    }

    fn plan(&self, request: &PurgeRequest) -> Result<Plan> {
        let mut plan = plan_provider(&self.name, &*self.provider, request)?;
        if !plan.client_side_dry_run {
            let now = SystemTime::now();
            let remapper = plan.remapper(&*self.provider, request);
            let requests = (0..plan.batches().len())
                .map(|index| {
                    let batch = remapper.batch(RunId::default(), index)?;
                    let mut http = self.provider.encode(&batch, request.options(), now)?;
                    self.provider.redact(&mut http);
                    Ok(planned_request(&http))
                })
                .collect::<Result<_>>()?;
            plan.requests = requests;
        }
        Ok(Plan {
            providers: vec![plan],
        })
    }

    fn check(&self, request: &PurgeRequest) -> Result<()> {
        plan_provider(&self.name, &*self.provider, request).map(drop)
    }

    async fn purge_with(&self, request: &PurgeRequest, context: &PurgeContext) -> Result<Report> {
        Ok(self.purge_reports(request, context).await?.into_report())
    }

    async fn purge_reports(
        &self,
        request: &PurgeRequest,
        context: &PurgeContext,
    ) -> Result<Reports> {
        let deadline = self.deadline();
        let mut plan = plan_provider(&self.name, &*self.provider, request)?;
        context.emit(Event::Planned {
            provider: self.name.clone(),
            batches: plan.batches().len(),
            items: plan.items(),
        });
        let dry_run = request.options().dry_run;
        let mut notes = Vec::new();
        let outcomes = if plan.client_side_dry_run {
            vec![BatchOutcome::DryRun; plan.batches().len()]
        } else {
            // A provider-side dry run is not waited for.
            let wait = request.wait().filter(|_| !dry_run);
            // One random run id per purge: each batch's idempotency key ([`crate::BatchId`]);
            // a journaled run keeps its id, so a resumed batch sends the same key.
            let record = match &context.journal {
                Some(log) => {
                    let base = &plan;
                    let replan = |groups: &[FollowGroup]| {
                        plan_following(&*self.provider, request, base, groups)
                    };
                    let mut record = log
                        .planned(&plan, &self.provider.account(), request, &replan)
                        .await?;
                    if let Some(replanned) = record.plan.take() {
                        plan = replanned;
                    }
                    Some(record)
                }
                None => None,
            };
            let (run, records) = match record {
                Some(record) => {
                    notes = resume_notes(&record, self.provider.sends_idempotency_key());
                    (record.id, record.batches)
                }
                None => (RunId::random(), Vec::new()),
            };
            let (outcomes, taken_over) = self
                .send_all(
                    &plan,
                    request,
                    wait,
                    context,
                    Run { id: run, deadline },
                    &records,
                )
                .await;
            // Their note said they were purged with the other run's batch: no longer true.
            for index in taken_over {
                if let Some(note) = notes.get_mut(index) {
                    *note = Some(TAKEN_OVER.to_owned());
                }
            }
            outcomes
        };
        // The rows are formed from the plan and the outcomes when they are asked for (the
        // request's targets are shared, not copied).
        let request = request.clone();
        Ok(Reports::deferred(plan.target_count(), move || {
            Rows::new(plan, request, outcomes, &notes, dry_run)
        }))
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
        let sender = self.sender(&PurgeContext::default(), self.deadline());
        sender
            .exchange(
                Cost::NONE,
                None,
                Retries::Policy,
                |now| self.provider.encode_status(handle, now),
                |response| self.provider.decode_status(handle, response),
            )
            .await
            .result
    }

    /// The provider's [`Provider::auth_probe`], sent once through the same path as a status
    /// query (the deadline, the body cap, no redirect, the account's rate limits).
    async fn check_auth(&self) -> Vec<AuthCheck> {
        let outcome = match self.provider.auth_probe(SystemTime::now()) {
            Err(error) => AuthOutcome::Failed(error.to_string()),
            Ok(AuthProbe::Unavailable(why)) => AuthOutcome::Unavailable(why),
            Ok(AuthProbe::Request(_)) => {
                let sender = self.sender(&PurgeContext::default(), self.deadline());
                let encode = |now| match self.provider.auth_probe(now)? {
                    AuthProbe::Request(request) => Ok(*request),
                    AuthProbe::Unavailable(reason) => Err(Error::Unsupported { reason }),
                };
                let checked = sender
                    .exchange(Cost::NONE, None, Retries::None, encode, |response| {
                        self.provider.decode_auth_probe(response)
                    })
                    .await
                    .result;
                match checked {
                    Ok(()) => AuthOutcome::Accepted,
                    Err(Error::Auth { message }) => AuthOutcome::Refused(message),
                    Err(error) => AuthOutcome::Failed(error.to_string()),
                }
            }
        };
        vec![AuthCheck {
            name: self.name.clone(),
            kind: self.provider.kind().to_owned(),
            endpoint: self.provider.endpoint(),
            outcome,
        }]
    }
}

/// The note on a batch's rows when the other run it followed stopped before sending it.
const TAKEN_OVER: &str =
    "queued first in another run, which stopped before sending it: this run sent it itself";

/// The rows' notes for a resumed run: the journal's, and for each batch that was being sent when
/// the run stopped, that it was sent again.
fn resume_notes(record: &RunRecord, idempotent: bool) -> Vec<Option<String>> {
    record
        .batches
        .iter()
        .enumerate()
        .map(|(index, batch)| {
            let note = record.notes.get(index).cloned().flatten();
            match batch {
                BatchRecord::Sending => {
                    let resent = if idempotent {
                        "sent again after an interruption with the same idempotency key: the \
                         provider purges it once"
                    } else {
                        "may have been sent twice: the run stopped while this batch was being \
                         sent, and it was sent again"
                    };
                    Some(match note {
                        Some(note) => format!("{note}; {resent}"),
                        None => resent.to_owned(),
                    })
                }
                _ => note,
            }
        })
        .collect()
}
