//! [`FanOut`]: one purge, several providers, at once.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::provider::{Handle, Status};
use crate::purger::{AuthCheck, ProviderInfo, PurgeContext, Purger};
use crate::report::{Report, Reports, Row, State};
use crate::request::PurgeRequest;

/// A [`Purger`] over several purgers (each usually a [`crate::ProviderPurger`]).
///
/// A purge plans every provider first, so bad input for any of them is an `Err` before anything
/// is sent anywhere; then all providers run concurrently, and one slow or failing provider
/// neither blocks nor fails the others. The report holds every provider's rows, providers in
/// the order given: one row per (target, provider).
///
/// ```no_run
/// # async fn demo(eu: std::sync::Arc<dyn purgekit_core::Purger>,
/// #               us: std::sync::Arc<dyn purgekit_core::Purger>) -> purgekit_core::Result<()> {
/// use purgekit_core::{FanOut, PurgeRequest, Purger};
/// let all = FanOut::new("everywhere", vec![eu, us])?;
/// let request = PurgeRequest::builder().url("https://cdn.example.com/app.js").build()?;
/// let report = all.purge(&request).await?;
/// assert_eq!(report.results.len(), 2);
/// # Ok(()) }
/// ```
pub struct FanOut {
    name: String,
    purgers: Vec<Arc<dyn Purger>>,
}

impl FanOut {
    /// A fan-out named `name` over `purgers`; their provider names must be distinct (they key
    /// the report rows and [`Purger::status`]).
    pub fn new(name: impl Into<String>, purgers: Vec<Arc<dyn Purger>>) -> Result<Self> {
        let name = name.into();
        if purgers.is_empty() {
            return Err(Error::config(
                format!("fan-out `{name}`"),
                "needs at least one provider",
            ));
        }
        let mut seen = HashSet::new();
        for info in purgers.iter().flat_map(|p| p.providers()) {
            if !seen.insert(info.name.clone()) {
                return Err(Error::config(
                    format!("fan-out `{name}`"),
                    format!("provider name `{}` appears twice", info.name),
                ));
            }
        }
        Ok(FanOut { name, purgers })
    }

    /// The purgers, in order.
    pub fn purgers(&self) -> &[Arc<dyn Purger>] {
        &self.purgers
    }
}

#[async_trait]
impl Purger for FanOut {
    fn name(&self) -> &str {
        &self.name
    }

    fn providers(&self) -> Vec<ProviderInfo> {
        self.purgers.iter().flat_map(|p| p.providers()).collect()
    }

    /// Each member's checks, in member order, one member after another.
    async fn check_auth(&self) -> Vec<AuthCheck> {
        let mut checks = Vec::new();
        for purger in &self.purgers {
            checks.extend(purger.check_auth().await);
        }
        checks
    }

    fn plan(&self, request: &PurgeRequest) -> Result<Plan> {
        let mut providers = Vec::new();
        for purger in &self.purgers {
            providers.extend(purger.plan(request)?.providers);
        }
        Ok(Plan { providers })
    }

    fn check(&self, request: &PurgeRequest) -> Result<()> {
        self.purgers
            .iter()
            .try_for_each(|purger| purger.check(request))
    }

    async fn purge_with(&self, request: &PurgeRequest, context: &PurgeContext) -> Result<Report> {
        Ok(self.purge_reports(request, context).await?.into_report())
    }

    async fn purge_reports(
        &self,
        request: &PurgeRequest,
        context: &PurgeContext,
    ) -> Result<Reports> {
        // Every provider validates before any sends.
        self.check(request)?;
        let mut tasks = JoinSet::new();
        for (index, purger) in self.purgers.iter().enumerate() {
            let purger = purger.clone();
            let request = request.clone();
            let context = context.clone();
            tasks.spawn(async move { (index, purger.purge_reports(&request, &context).await) });
        }
        let mut reports: Vec<Option<Reports>> = (0..self.purgers.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, result)) => {
                    reports[index] = Some(result.unwrap_or_else(|error| {
                        Reports::ready(failed_report(
                            &*self.purgers[index],
                            request,
                            &error.to_string(),
                        ))
                    }));
                }
                Err(e) => {
                    tracing::error!(fanout = %self.name, "a provider task ended abnormally: {e}")
                }
            }
        }
        // Each provider's rows are formed when the caller reaches them, in provider order.
        let mut all: Option<Reports> = None;
        for (index, report) in reports.into_iter().enumerate() {
            let report = report.unwrap_or_else(|| {
                Reports::ready(failed_report(
                    &*self.purgers[index],
                    request,
                    "the engine task for this provider ended abnormally",
                ))
            });
            match &mut all {
                Some(all) => all.append(report),
                None => all = Some(report),
            }
        }
        Ok(all.unwrap_or_else(|| Reports::ready(Report::default())))
    }

    async fn status(&self, provider: &str, handle: &Handle) -> Result<Status> {
        for purger in &self.purgers {
            if purger.providers().iter().any(|p| p.name == provider) {
                return purger.status(provider, handle).await;
            }
        }
        let known: Vec<String> = self.providers().into_iter().map(|p| p.name).collect();
        Err(Error::invalid(
            provider,
            format!(
                "no provider of that name in fan-out `{}` (it has `{}`)",
                self.name,
                known.join("`, `")
            ),
        ))
    }
}

/// Rows for a purger that could not report (it planned, then failed as a whole): every target
/// failed at each of its providers, so no (target, provider) pair goes missing.
fn failed_report(purger: &dyn Purger, request: &PurgeRequest, error: &str) -> Report {
    let rows = purger
        .providers()
        .into_iter()
        .flat_map(|p| {
            let provider: Arc<str> = Arc::from(p.name);
            request.targets().iter().map(move |t| Row {
                target: t.shared_text(),
                provider: provider.clone(),
                state: State::Failed,
                handle: None,
                attempts: 0,
                error: Some(Arc::from(error)),
                unfinished: None,
                warnings: Arc::default(),
            })
        })
        .collect();
    Report::new(rows)
}
