//! purgekit: purge CDN caches through one API, on one CDN or several at once.
//!
//! The model, the [`Purger`] trait, the provider SPI, the planner and the engine come from
//! `purgekit-core` and are re-exported here; each provider is a cargo feature, all on by default,
//! whose crate is re-exported under the feature's name (`purgekit::level3`; the list is
//! [`registry::providers`]), and `sandbox` runs every emulator on loopback with its demo account
//! (see [`sandbox`]). A config table's `kind` picks its provider from the [`Registry`] (the
//! providers compiled in, plus any a library registers); the provider's crate reads the rest of
//! the table.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use purgekit_core::*;

pub mod config;
pub mod registry;
pub use config::{Config, ServerConfig};
pub use registry::Registry;

pub use registry::providers::*;

#[cfg(feature = "sandbox")]
pub mod sandbox;

/// The journal (`purgekit-journal`): purge runs written durably before anything is sent, in
/// SQLite or PostgreSQL, so a run survives a crash and resumes.
pub use purgekit_journal as journal;
pub use purgekit_journal::{Journal, JournaledPurger};

/// The provider emulators (`purgekit-emulator`), for tests and demos.
#[cfg(feature = "sandbox")]
pub use purgekit_emulator as emulator;

/// The README's Rust examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
