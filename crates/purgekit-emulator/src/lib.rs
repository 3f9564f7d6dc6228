//! Faithful local stand-ins for the CDN purge APIs purgekit speaks, for tests, examples and the
//! CLI's sandbox. Each verifies signatures and enforces the documented limits and error codes, so
//! a test that passes against it means something.
//!
//! Every emulator is an axum [`Router`](axum::Router) plus shared state; [`serve`] binds one to a
//! loopback address. All of them record what they purged and can inject [`Fault`]s on demand.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod emulated;
mod faults;
mod server;

pub mod cloudfront;
pub mod dynamicmedia;
pub mod level3;
pub mod limelight;

pub use emulated::{Emulated, host_and_path, rate_limit, table};
pub use faults::{Fault, Faults};
pub use server::{Running, serve};

use std::sync::Arc;

/// Every emulator, with its demo account and sandbox timings (purges complete in about two
/// seconds), in kind order: what the sandbox, `purgekit emulate` and the conformance suite run.
/// One line per provider.
pub fn sandbox() -> Vec<Arc<dyn Emulated>> {
    vec![
        Arc::new(dynamicmedia::DynamicMediaEmulator::sandbox()),
        Arc::new(level3::Level3Emulator::sandbox()),
        Arc::new(limelight::LimelightEmulator::sandbox()),
    ]
}
