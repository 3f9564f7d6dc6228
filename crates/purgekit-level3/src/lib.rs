//! Level 3 / Lumen CDN invalidations (Media Portal API, MPA-signed XML) for purgekit.
//!
//! [`Level3`] is a [`purgekit_core::Provider`]: a pure codec that maps URLs and wildcard
//! patterns to `(network identifier, path)` items, declares the documented limits (200 paths
//! per request, a wildcard alone, one network identifier per request, 10 requests per minute per
//! key), and encodes and decodes the HTTP messages of
//! `POST /invalidations/v1.0/{accessGroup}/{scid}/{ni}` and its status `GET`.
//! Drive it with [`purgekit_core::ProviderPurger`]:
//!
//! ```no_run
//! # async fn demo() -> purgekit_core::Result<()> {
//! use std::sync::Arc;
//! use purgekit_core::{ProviderPurger, PurgeRequest, Purger};
//! use purgekit_level3::{Level3, Level3Config};
//!
//! let config = Level3Config::new("10042", "s3cr3t", "12345", "BBBN56789");
//! let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("l3", Level3::new(config)?));
//! let request = PurgeRequest::builder().url("https://cdn.example.com/app.js").build()?;
//! let report = purger.purge(&request).await?;
//! # Ok(()) }
//! ```
//!
//! Handles have the form `{network identifier}/{invalidation id}`, e.g.
//! `cdn.example.com/DAG_12345/9774@12345-13776-1295308738596`: the status request is built from
//! the handle alone. See `docs/providers/level3.md` for the limits table, option mapping and
//! error codes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod decode;
mod provider;
pub mod sign;
mod wire;

pub use config::{DEFAULT_ENDPOINT, KIND, Level3Config, TEMPLATE};
pub use provider::{
    CONTENT_TYPE, Level3, MAX_IN_FLIGHT, MAX_NOTIFICATION_LEN, MAX_PATHS, REQUESTS_PER_MINUTE,
};
