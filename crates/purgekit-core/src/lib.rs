//! purgekit core: the canonical purge model, the [`Purger`] trait, the provider SPI
//! ([`Provider`]), the planner ([`plan_provider`], [`pack`]) and the engine ([`ProviderPurger`]
//! for one account, [`FanOut`] for several).
//!
//! The flow of one purge: a [`PurgeRequest`] is validated when built; each provider maps its
//! targets to [`Item`]s (or says why not); the planner packs them into [`Batch`]es under the
//! provider's [`Limits`]; the engine paces each batch under the account's rate limits (shared
//! by every purger of the account, see [`RateRegistry`]), encodes and sends it, decodes the
//! answer, retries what may pass ([`RetryPolicy`]), optionally waits for completion, and writes
//! one [`Row`] per (target, provider) into a [`Report`]. [`EngineConfig`] holds the knobs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod depth;
mod endpoint;
mod engine;
mod error;
mod limits;
mod normalize;
mod plan;
mod provider;
mod purger;
mod report;
mod request;
mod text;
mod utc;

pub use config::{
    BucketConfig, DEFAULT_RATE_WINDOW, duration, format_duration, parse_duration, token_or_env,
};
pub use depth::{MAX_NESTING_DEPTH, check_json_depth, too_deep};
pub use endpoint::normalize_endpoint;
#[cfg(feature = "reqwest")]
pub use engine::ReqwestTransport;
pub use engine::{
    BatchRecord, NOT_SENT, RecordedPart, Replan, RunLog, RunRecord, SharedRunLog, report_of,
};
pub use engine::{
    CapacityHold, EngineConfig, FanOut, PollPolicy, ProviderPurger, ProxyPolicy, RateRegistry,
    RateState, RateStore, RetryPolicy, SafetyMargin, Transport, parse_retry_after,
    response_retry_after,
};
pub use error::{Error, Result, SNIPPET_CHARS, escape_controls, snippet};
pub use limits::{
    Billing, BucketUnit, Budget, Capabilities, DEFAULT_MAX_RESPONSE_BYTES, InFlightCapacity,
    Limits, RateLimit, SharedScope, TokenBucket,
};
pub use plan::{
    BatchPlan, Batches, Billable, Disposition, FollowGroup, Placement, Plan, PlanBuilder,
    PlannedRequest, ProviderPlan, Remapper, pack, plan_following, plan_provider,
};
pub use provider::{
    Accepted, AuthProbe, Batch, BatchId, CompletionModel, Handle, HttpRequest, HttpResponse, Item,
    Mapped, Progress, Provider, REDACTED, RunId, Secret, Status,
};
pub use purger::{AuthCheck, AuthOutcome, Event, ProgressFn, ProviderInfo, PurgeContext, Purger};
pub use report::{Outcome, Report, Reports, Row, RowStream, State, Summary, Unfinished, thousands};
pub use request::{
    Action, MAX_CALLBACK_LEN, MAX_EMAIL_LEN, MAX_NOTE_LEN, MAX_TAG_LEN, MAX_TARGET_LEN, OptionKind,
    Options, PurgeRequest, PurgeRequestBuilder, Target, TargetKind,
};
pub use text::Text;
pub use utc::UtcTime;

/// Re-exported so provider crates build requests and responses with the same `http` version.
pub use http;
