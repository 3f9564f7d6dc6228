//! Faithful local stand-ins for the CDN purge APIs purgekit speaks, for tests, examples and the
//! CLI's sandbox. Each verifies signatures and enforces the documented limits and error codes, so
//! a test that passes against it means something.
//!
//! Every emulator is an axum [`Router`](axum::Router) plus shared state; [`serve`] binds one to a
//! loopback address. All of them record what they purged and can inject [`Fault`]s on demand.
//!
//! One module per provider, named like the provider's crate (`dynamicmedia`), each the same
//! way: `<kind>.rs` (the emulator, its config, its routes and its [`Emulated`] impl) and
//! `<kind>/auth.rs` (credential and signature checks, its own implementation of the vendor's
//! scheme, as an `Authenticator` applied by the shared layer in `auth.rs`), `<kind>/state.rs`
//! (what it records, its clocks and limits), `<kind>/wire.rs` (the request bodies it reads and
//! the answers it writes). [`sandbox`] lists them all.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod bucket;
mod emulated;
mod faults;
mod seen;
mod server;

pub mod akamai;
pub mod cloudflare;
pub mod cloudfront;
pub mod dynamicmedia;
pub mod fastly;
pub mod level3;
pub mod limelight;

pub use bucket::BucketSpec;
pub use emulated::{
    Adjust, Emulated, adjust_all, duration_value, host_and_path, limits_line, rate_limit, table,
};
pub use faults::{Fault, Faults};
pub use seen::{Seen, SeenRequest};

/// The deepest element nesting the emulators' XML readers accept in a request body (real
/// requests nest at most 5 levels); deeper bodies are refused as invalid XML, without
/// recursion. JSON bodies are bounded by `serde_json`'s own recursion limit (128).
pub const MAX_NESTING_DEPTH: usize = 64;
pub(crate) use server::observed;
pub use server::{Running, serve};

use std::sync::Arc;

/// Every emulator, with its demo account and sandbox timings (purges complete in about two
/// seconds), in kind order: what the sandbox, `purgekit emulate` and the conformance suite run.
/// One line per provider.
pub fn sandbox() -> Vec<Arc<dyn Emulated>> {
    vec![
        Arc::new(akamai::AkamaiEmulator::sandbox()),
        Arc::new(cloudflare::CloudflareEmulator::sandbox()),
        Arc::new(cloudfront::CloudFrontEmulator::sandbox()),
        Arc::new(dynamicmedia::DynamicMediaEmulator::sandbox()),
        Arc::new(fastly::FastlyEmulator::sandbox()),
        Arc::new(level3::Level3Emulator::sandbox()),
        Arc::new(limelight::LimelightEmulator::sandbox()),
    ]
}
