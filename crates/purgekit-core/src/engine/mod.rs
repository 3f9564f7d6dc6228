//! The engine: turns a provider's planned batches into HTTP exchanges and report rows.
//!
//! This first version sends batches one after another, once each, with no rate limiting,
//! retries or waiting for completion (the engine issue adds those here, for every provider).

mod transport;

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

pub use transport::{ReqwestTransport, Transport};

use crate::error::{Error, Result};
use crate::plan::{Disposition, Plan, PlannedRequest, ProviderPlan, plan_provider};
use crate::provider::{Accepted, Handle, HttpRequest, Provider, Status};
use crate::purger::{Event, ProviderInfo, PurgeContext, Purger};
use crate::report::{Report, Row, State};
use crate::request::PurgeRequest;

/// A [`Purger`] for one provider account: the provider's codec driven by the engine.
///
/// ```no_run
/// # fn demo<P: purgekit_core::Provider>(provider: P) {
/// use std::sync::Arc;
/// use purgekit_core::{ProviderPurger, Purger};
/// let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("cdn", provider));
/// # }
/// ```
pub struct ProviderPurger<P: Provider> {
    name: String,
    provider: Arc<P>,
    transport: Arc<dyn Transport>,
}

impl<P: Provider> ProviderPurger<P> {
    /// Drives `provider` under the name `name`, over HTTPS with the default transport.
    pub fn new(name: impl Into<String>, provider: P) -> Self {
        ProviderPurger {
            name: name.into(),
            provider: Arc::new(provider),
            transport: Arc::new(ReqwestTransport::default()),
        }
    }

    /// Uses `transport` to send requests (a test double, or a tuned client).
    pub fn with_transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = transport;
        self
    }

    /// The provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    async fn exchange<T>(
        &self,
        request: HttpRequest,
        decode: impl FnOnce(crate::provider::HttpResponse) -> Result<T>,
    ) -> Result<T> {
        let response = self.transport.send(request).await?;
        decode(response)
    }
}

/// How one batch ended.
#[derive(Debug, Clone)]
enum BatchOutcome {
    Accepted { accepted: Accepted, attempts: u32 },
    Failed { error: Error, attempts: u32 },
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
            plan.requests = plan
                .batches
                .iter()
                .map(|batch| {
                    let mut http = self.provider.encode(batch, request.options(), now)?;
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
            items: plan.batches.iter().map(|b| b.items.len()).sum(),
        });
        let mut outcomes = Vec::with_capacity(plan.batches.len());
        for (index, batch) in plan.batches.iter().enumerate() {
            if plan.client_side_dry_run {
                outcomes.push(BatchOutcome::DryRun);
                continue;
            }
            if context.cancel.is_cancelled() {
                outcomes.push(BatchOutcome::Failed {
                    error: Error::Cancelled,
                    attempts: 0,
                });
                continue;
            }
            let encoded = self
                .provider
                .encode(batch, request.options(), SystemTime::now());
            context.emit(Event::Sent {
                provider: self.name.clone(),
                batch: index,
                attempt: 1,
            });
            let result = match encoded {
                Ok(http) => {
                    self.exchange(http, |response| self.provider.decode(batch, response))
                        .await
                }
                Err(e) => Err(e),
            };
            outcomes.push(match result {
                Ok(accepted) => {
                    context.emit(Event::Accepted {
                        provider: self.name.clone(),
                        batch: index,
                        items: batch.items.len(),
                    });
                    BatchOutcome::Accepted {
                        accepted,
                        attempts: 1,
                    }
                }
                Err(error) => {
                    context.emit(Event::Failed {
                        provider: self.name.clone(),
                        batch: index,
                        items: batch.items.len(),
                        error: error.to_string(),
                    });
                    BatchOutcome::Failed { error, attempts: 1 }
                }
            });
        }
        Ok(Report::new(rows(
            &plan,
            &outcomes,
            request.options().dry_run,
        )))
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
        let http = self.provider.encode_status(handle, SystemTime::now())?;
        self.exchange(http, |response| {
            self.provider.decode_status(handle, response)
        })
        .await
    }
}

/// One row per target, in input order, from the plan and each batch's outcome.
fn rows(plan: &ProviderPlan, outcomes: &[BatchOutcome], dry_run: bool) -> Vec<Row> {
    plan.targets
        .iter()
        .map(|target| {
            let mut row = Row {
                target: target.target.clone(),
                provider: plan.provider.clone(),
                state: State::Unsupported,
                handle: None,
                attempts: 0,
                error: None,
                warnings: Vec::new(),
            };
            match &target.disposition {
                Disposition::Unsupported { reason } => row.error = Some(reason.clone()),
                Disposition::Planned {
                    batch, merged_with, ..
                } => {
                    row.warnings.extend(plan.warnings.iter().cloned());
                    if let Some(first) = merged_with {
                        row.warnings
                            .push(format!("duplicate of `{first}`: purged once, with it"));
                    }
                    match &outcomes[*batch] {
                        BatchOutcome::Accepted { accepted, attempts } => {
                            row.state = if dry_run {
                                State::DryRun
                            } else {
                                State::Accepted
                            };
                            row.handle = Some(accepted.handle.to_string());
                            row.attempts = *attempts;
                            row.warnings.extend(accepted.warnings.iter().cloned());
                        }
                        BatchOutcome::Failed { error, attempts } => {
                            row.state = State::Failed;
                            row.attempts = *attempts;
                            row.error = Some(error.to_string());
                        }
                        BatchOutcome::DryRun => row.state = State::DryRun,
                    }
                }
            }
            row
        })
        .collect()
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
