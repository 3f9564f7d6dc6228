//! [`JournaledPurger`]: any [`Purger`] with every run written to a [`Journal`] first.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use purgekit_core::{
    Capabilities, Error, Handle, Plan, ProviderInfo, PurgeContext, PurgeRequest, Purger, Report,
    Reports, Result, RunId, Status,
};

use crate::Journal;
use crate::journal::LEASE;

/// A [`Purger`] whose runs are journaled: the run and each provider's plan are written before
/// anything is sent, each batch's transitions as they happen, so an interrupted run can be
/// resumed ([`JournaledPurger::resume`]) and reported ([`Journal::report`]) from the journal.
///
/// ```no_run
/// # async fn demo(inner: std::sync::Arc<dyn purgekit_core::Purger>) -> purgekit_core::Result<()> {
/// use purgekit_journal::{Journal, JournaledPurger};
/// let journal = Journal::open("sqlite:///var/lib/purgekit/journal.sqlite3").await?;
/// let purger = JournaledPurger::new(inner, journal);
/// let request = purgekit_core::PurgeRequest::builder().url("https://cdn.example.com/a.js").build()?;
/// let run = purger.start(&request).await?;
/// eprintln!("run {run}");
/// let report = purger.run(run, &request, &Default::default()).await?.into_report();
/// # Ok(()) }
/// ```
pub struct JournaledPurger {
    inner: Arc<dyn Purger>,
    journal: Journal,
}

impl JournaledPurger {
    /// Journals `inner`'s runs in `journal`.
    pub fn new(inner: Arc<dyn Purger>, journal: Journal) -> Self {
        JournaledPurger { inner, journal }
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Writes a new run of `request` and returns its id; nothing is sent yet.
    pub async fn start(&self, request: &PurgeRequest) -> Result<RunId> {
        let providers: Vec<String> = self.inner.providers().into_iter().map(|p| p.name).collect();
        self.journal.start_run(request, &providers).await
    }

    /// Runs run `run` (from [`JournaledPurger::start`], or a claimed one) to its end: each
    /// provider's plan written (or, resumed, checked against the one written) before any of its
    /// batches is sent; batches already sent are not sent again.
    pub async fn run(
        &self,
        run: RunId,
        request: &PurgeRequest,
        context: &PurgeContext,
    ) -> Result<Reports> {
        let context = PurgeContext {
            journal: Some(self.journal.log(run)),
            ..context.clone()
        };
        // The lease is renewed while the run goes, so no resumer takes it over.
        let renewing = self.renewing(move |journal| async move { journal.renew(run).await });
        let result = self.inner.purge_reports(request, &context).await;
        renewing.abort();
        let finished = self.journal.finish(run).await;
        let reports = result?;
        finished?;
        Ok(reports)
    }

    /// Runs run `run`'s unit on `provider` (taken with [`Journal::next_unit`]): the run
    /// restricted to that provider, whose purger this must be (built over it alone), its
    /// unit's lease renewed while it goes; then the unit is finished when every batch of it is
    /// settled ([`Journal::finish_unit`]: the run too, when it was its last), else given back.
    pub async fn run_unit(
        &self,
        run: RunId,
        provider: &str,
        request: &PurgeRequest,
        context: &PurgeContext,
    ) -> Result<Reports> {
        let names: Vec<String> = self.inner.providers().into_iter().map(|p| p.name).collect();
        if names != [provider] {
            return Err(Error::config(
                format!("providers.{provider}"),
                format!(
                    "run {run}'s work on `{provider}` needs a purger over that provider alone, \
                     not over {names:?}"
                ),
            ));
        }
        let context = PurgeContext {
            journal: Some(self.journal.log(run)),
            ..context.clone()
        };
        let unit = provider.to_owned();
        let renewing = self.renewing(move |journal| {
            let unit = unit.clone();
            async move { journal.renew_unit(run, &unit).await }
        });
        let result = self.inner.purge_reports(request, &context).await;
        renewing.abort();
        let finished = self.journal.finish_unit(run, provider).await;
        let reports = result?;
        finished?;
        Ok(reports)
    }

    /// A task renewing a lease with `renew` every third of [`LEASE`], until aborted.
    fn renewing<F, Fut>(&self, renew: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn(Journal) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<()>> + Send,
    {
        let journal = self.journal.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                if let Err(e) = renew(journal.clone()).await {
                    tracing::warn!("{e}");
                }
            }
        })
    }

    /// Resumes run `run` (default: the latest unfinished run no live process holds): batches
    /// not sent are sent; one that was being sent when the run stopped is sent again (its rows
    /// say so); accepted ones are not sent again, and with `wait` they are waited for.
    /// Returns the run and its report.
    pub async fn resume(
        &self,
        run: Option<RunId>,
        wait: Option<Duration>,
        context: &PurgeContext,
    ) -> Result<(RunId, Reports)> {
        let claimed = self.journal.claim(run).await?;
        let request = claimed.request.with_wait(wait);
        let reports = self.run(claimed.id, &request, context).await?;
        Ok((claimed.id, reports))
    }
}

#[async_trait]
impl Purger for JournaledPurger {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn providers(&self) -> Vec<ProviderInfo> {
        self.inner.providers()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn plan(&self, request: &PurgeRequest) -> Result<Plan> {
        self.inner.plan(request)
    }

    fn check(&self, request: &PurgeRequest) -> Result<()> {
        self.inner.check(request)
    }

    async fn purge_with(&self, request: &PurgeRequest, context: &PurgeContext) -> Result<Report> {
        Ok(self.purge_reports(request, context).await?.into_report())
    }

    async fn purge_reports(
        &self,
        request: &PurgeRequest,
        context: &PurgeContext,
    ) -> Result<Reports> {
        let run = self.start(request).await?;
        tracing::info!("run {run} journaled in {}", self.journal.location());
        let result = self.run(run, request, context).await;
        if result.is_err() {
            // Bad input: nothing was sent, so the run is no run.
            self.journal.discard_unsent(run).await?;
        }
        result
    }

    async fn status(&self, provider: &str, handle: &Handle) -> Result<Status> {
        self.inner.status(provider, handle).await
    }
}

/// One run of a [`JournaledPurger`] as a [`Purger`]: purging runs (or resumes) that run, with
/// the request given (the run's own, for a resumed one). For a caller that prints the run's id
/// before the purge starts.
pub struct RunPurger {
    purger: Arc<JournaledPurger>,
    run: RunId,
    fresh: bool,
}

impl RunPurger {
    /// A new run of `request` in `purger`'s journal (written now: nothing is sent yet).
    pub async fn start(purger: Arc<JournaledPurger>, request: &PurgeRequest) -> Result<Self> {
        let run = purger.start(request).await?;
        Ok(RunPurger {
            purger,
            run,
            fresh: true,
        })
    }

    /// Run `run` of `purger`, claimed to be resumed ([`Journal::claim`]).
    pub fn resumed(purger: Arc<JournaledPurger>, run: RunId) -> Self {
        RunPurger {
            purger,
            run,
            fresh: false,
        }
    }

    /// The run.
    pub fn run(&self) -> RunId {
        self.run
    }
}

#[async_trait]
impl Purger for RunPurger {
    fn name(&self) -> &str {
        self.purger.name()
    }

    fn providers(&self) -> Vec<ProviderInfo> {
        self.purger.providers()
    }

    fn plan(&self, request: &PurgeRequest) -> Result<Plan> {
        self.purger.plan(request)
    }

    fn check(&self, request: &PurgeRequest) -> Result<()> {
        self.purger.check(request)
    }

    async fn purge_with(&self, request: &PurgeRequest, context: &PurgeContext) -> Result<Report> {
        Ok(self.purge_reports(request, context).await?.into_report())
    }

    async fn purge_reports(
        &self,
        request: &PurgeRequest,
        context: &PurgeContext,
    ) -> Result<Reports> {
        let result = self.purger.run(self.run, request, context).await;
        if result.is_err() && self.fresh {
            // Bad input: nothing was sent, so the run is no run.
            self.purger.journal.discard_unsent(self.run).await?;
        }
        result
    }

    async fn status(&self, provider: &str, handle: &Handle) -> Result<Status> {
        self.purger.status(provider, handle).await
    }
}
