//! The engine: turns a provider's planned batches into HTTP exchanges and report rows.
//!
//! - [`ProviderPurger`] drives one provider account: batches go out in order, at most
//!   [`crate::Limits::max_in_flight`] at once, paced by the account's shared limiter
//!   ([`rate`]), retried under [`RetryPolicy`] ([`exchange`]), and optionally waited on until
//!   complete ([`wait`]), all under one deadline per run ([`EngineConfig::deadline`]): no wait
//!   is started that would end past it. A provider's in-flight capacity is held from admission
//!   until the batch is seen complete ([`in_flight`]).
//! - [`FanOut`] drives several purgers at once ([`fanout`]).
//!
//! Files: `provider_purger` is the front ([`ProviderPurger`], the [`crate::Purger`] impl);
//! `schedule` sends a plan's batches; `rows` turns batch outcomes into report rows; `policy`
//! holds the knobs ([`EngineConfig`]).
//!
//! Every wait is `tokio::time`, so tests run on tokio's paused clock.

mod clock;
mod exchange;
mod fanout;
mod in_flight;
mod journal;
mod policy;
mod provider_purger;
mod rate;
mod retry_after;
mod rows;
mod schedule;
mod transport;
mod wait;

pub use fanout::FanOut;
pub use journal::{
    BatchRecord, NOT_SENT, RecordedPart, Replan, RunLog, RunRecord, SharedRunLog, report_of,
};
pub use policy::{EngineConfig, PollPolicy, RetryPolicy, SafetyMargin};
pub use provider_purger::ProviderPurger;
pub use rate::{CapacityHold, RateRegistry, RateState, RateStore};
pub use retry_after::{parse_retry_after, response_retry_after};
#[cfg(feature = "reqwest")]
pub use transport::ReqwestTransport;
pub use transport::{ProxyPolicy, Transport};
