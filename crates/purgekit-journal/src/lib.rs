//! purgekit journal: every purge run written durably before anything is sent, so a run survives
//! a crash (`purgekit resume`), and any run's report can be read back (`purgekit report`).
//!
//! Two backends behind one API, both through `sqlx` with versioned migrations:
//! - **SQLite**, the embedded default: one file (see [`default_url`]), WAL mode, safe for several
//!   processes on one machine;
//! - **PostgreSQL** (`postgres://…`), for teams and several machines; a run is taken over for
//!   resume with a row lock (`FOR UPDATE SKIP LOCKED`) and held by a renewed lease.
//!
//! What is stored (docs/journal.md): a run (its id, request options, lease), its target texts
//! in a few large chunks, one row per provider with the whole plan as one blob, and one row per
//! batch once it leaves `queued` (`sending` → `accepted` with its handles, or `failed`;
//! `completed`). The engine writes through [`purgekit_core::RunLog`]; [`JournaledPurger`] is
//! any [`purgekit_core::Purger`] with its runs journaled.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bulk;
mod codec;
mod journal;
mod log;
mod purger;
mod queue;
mod rate;
mod units;

pub use journal::{
    Backend, BatchCounts, Claimed, Journal, LEASE, RunInfo, default_url, parse_run_id, state_dir,
};
pub use purger::{JournaledPurger, RunPurger};
pub use units::{ProviderAccount, QueueDepth, Unit, fair_share};
