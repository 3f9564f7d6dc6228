//! Faithful local stand-ins for the CDN purge APIs purgekit speaks, for tests, examples and the
//! CLI's sandbox. Each verifies signatures and enforces the documented limits and error codes, so
//! a test that passes against it means something.
//!
//! Every emulator is an axum [`Router`](axum::Router) plus shared state; [`serve`] binds one to a
//! loopback address. All of them record what they purged and can inject [`Fault`]s on demand.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod faults;
mod server;

pub mod akamai;
pub mod dynamicmedia;
pub mod level3;
pub mod limelight;

pub use faults::{Fault, Faults};
pub use server::{Running, serve};
