//! The object-safe trait users hold as `Arc<dyn Purger>`, and what a purge can be given.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::limits::{Capabilities, Limits};
use crate::plan::Plan;
use crate::provider::{Handle, Status};
use crate::report::{Report, Reports};
use crate::request::PurgeRequest;

/// Something that purges: one provider account, or a fan-out over several.
///
/// ```no_run
/// # async fn demo(purger: std::sync::Arc<dyn purgekit_core::Purger>) -> purgekit_core::Result<()> {
/// use purgekit_core::PurgeRequest;
/// let request = PurgeRequest::builder().url("https://cdn.example.com/app.js").build()?;
/// let report = purger.purge(&request).await?;
/// for row in &report.results {
///     println!("{} {} {}", row.provider, row.target, row.state);
/// }
/// # Ok(()) }
/// ```
#[async_trait]
pub trait Purger: Send + Sync {
    /// The configured name (`cdn-eu`), or the fan-out's.
    fn name(&self) -> &str;

    /// What each provider behind this purger supports and its limits.
    fn providers(&self) -> Vec<ProviderInfo>;

    /// What the purger supports (a fan-out: what any of its providers supports).
    fn capabilities(&self) -> Capabilities {
        Capabilities::union(self.providers().iter().map(|p| &p.capabilities))
    }

    /// Validates and plans `request`, including the exact requests that would be sent (secrets
    /// redacted). Sends nothing. An error means the input breaks a rule; nothing may be sent.
    fn plan(&self, request: &PurgeRequest) -> Result<Plan>;

    /// What a purge refuses before it sends anything: `Err` when some provider cannot plan
    /// `request` (the same errors as [`Purger::plan`]'s), without building the preview of the
    /// requests (mapping every target a second time and encoding every batch, only to show
    /// them). Sends nothing. A service checks each submission so before queueing it.
    fn check(&self, request: &PurgeRequest) -> Result<()> {
        self.plan(request).map(drop)
    }

    /// Purges, returning one row per (target, provider). An `Err` means nothing was sent
    /// (bad input); failures after sending are rows in the report.
    async fn purge(&self, request: &PurgeRequest) -> Result<Report> {
        self.purge_with(request, &PurgeContext::default()).await
    }

    /// [`Purger::purge`] with progress events and cancellation.
    async fn purge_with(&self, request: &PurgeRequest, context: &PurgeContext) -> Result<Report>;

    /// [`Purger::purge_with`], with the rows formed only as each provider's report is taken
    /// from the [`Reports`]: for a caller that writes the rows out and can drop each provider's
    /// before the next is formed. By default, the report of [`Purger::purge_with`].
    async fn purge_reports(
        &self,
        request: &PurgeRequest,
        context: &PurgeContext,
    ) -> Result<Reports> {
        Ok(Reports::ready(self.purge_with(request, context).await?))
    }

    /// Asks the provider `provider` (a name from [`Purger::providers`]) where a purge stands.
    async fn status(&self, provider: &str, handle: &Handle) -> Result<Status>;

    /// Checks each provider account's credentials with its [`crate::Provider::auth_probe`]
    /// (one read-only authenticated call, where the API has one): one [`AuthCheck`] per
    /// provider, in [`Purger::providers`] order. Default: none can be checked.
    async fn check_auth(&self) -> Vec<AuthCheck> {
        self.providers()
            .into_iter()
            .map(|p| AuthCheck {
                name: p.name,
                kind: p.kind,
                endpoint: p.endpoint,
                outcome: AuthOutcome::Unavailable("this purger does not check credentials".into()),
            })
            .collect()
    }
}

/// The credentials check of one provider account ([`Purger::check_auth`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCheck {
    /// The configured name.
    pub name: String,
    /// The provider kind.
    pub kind: String,
    /// The endpoint checked.
    pub endpoint: String,
    /// What the check found.
    pub outcome: AuthOutcome,
}

/// What a credentials check found. No variant carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The provider answered the authenticated call: the credentials work.
    Accepted,
    /// The provider refused the credentials; its explanation.
    Refused(String),
    /// The check could not tell (unreachable, timeout, an answer that was not understood).
    Failed(String),
    /// The provider's API has no read-only call to check with; why.
    Unavailable(String),
}

/// A provider behind a purger, described for `purgekit providers` and dashboards.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProviderInfo {
    /// The configured name.
    pub name: String,
    /// The provider kind.
    pub kind: String,
    /// Its account as rate limits key it, `kind/account` (a non-secret identity, see
    /// [`crate::Provider::account`]); not serialized.
    #[serde(skip)]
    pub account: String,
    /// The endpoint requests go to.
    pub endpoint: String,
    /// Its limits.
    pub limits: Limits,
    /// What it supports.
    pub capabilities: Capabilities,
}

/// Something that happened during a purge, for a UI to render.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A provider's batches are planned.
    Planned {
        /// The provider's name.
        provider: String,
        /// Batches to send.
        batches: usize,
        /// Items in them.
        items: usize,
    },
    /// A batch was sent (attempt `attempt`, from 1).
    Sent {
        /// The provider's name.
        provider: String,
        /// Batch index.
        batch: usize,
        /// Attempt number.
        attempt: u32,
    },
    /// A batch was accepted.
    Accepted {
        /// The provider's name.
        provider: String,
        /// Batch index.
        batch: usize,
        /// Items in it.
        items: usize,
        /// The provider's handle for it (what `status` takes), as given: escape it before
        /// printing it.
        handle: Handle,
    },
    /// A batch failed an attempt and will be sent again after `delay`.
    Retrying {
        /// The provider's name.
        provider: String,
        /// Batch index.
        batch: usize,
        /// The wait before the next attempt.
        delay: Duration,
        /// Why.
        error: String,
    },
    /// A batch's purge is complete at the provider.
    Completed {
        /// The provider's name.
        provider: String,
        /// Batch index.
        batch: usize,
        /// Items in it.
        items: usize,
    },
    /// A request waited `waited` for its turn under its account's rate limits (budgets,
    /// token buckets, a rejection's closing; with a shared schedule, the claim in the store).
    /// Not sent when it did not wait.
    RateWaited {
        /// The provider's name.
        provider: String,
        /// The batch it carries; `None` for a status poll.
        batch: Option<usize>,
        /// How long it waited.
        waited: Duration,
    },
    /// A batch failed for good.
    Failed {
        /// The provider's name.
        provider: String,
        /// Batch index.
        batch: usize,
        /// Items in it.
        items: usize,
        /// Why.
        error: String,
    },
}

/// Receives [`Event`]s; called from the engine's tasks, so keep it quick.
pub type ProgressFn = Arc<dyn Fn(&Event) + Send + Sync>;

/// What a caller gives a purge besides the request: a progress callback and cancellation.
#[derive(Clone, Default)]
pub struct PurgeContext {
    /// Called for every event.
    pub progress: Option<ProgressFn>,
    /// Cancelling stops sending new batches and waiting; the report still covers every target.
    pub cancel: CancellationToken,
    /// Where the run is journaled, if it is: each provider's plan before anything is sent, each
    /// batch's transitions as they happen ([`crate::RunLog`]). `None`: the run lives in memory.
    pub journal: Option<crate::SharedRunLog>,
}

impl PurgeContext {
    /// Sends `event` to the progress callback, if any.
    pub fn emit(&self, event: Event) {
        if let Some(progress) = &self.progress {
            progress(&event);
        }
    }
}

impl fmt::Debug for PurgeContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PurgeContext")
            .field("progress", &self.progress.is_some())
            .field("cancelled", &self.cancel.is_cancelled())
            .field("journaled", &self.journal.is_some())
            .finish()
    }
}
