//! purgekit provider for Akamai Fast Purge v3 (CCU v3): EdgeGrid `EG1-HMAC-SHA256`-signed JSON
//! to `POST https://{host}/ccu/v3/{invalidate|delete}/{url|tag|cpcode}/{production|staging}`.
//!
//! [`Akamai`] is a codec, not a client: it maps URLs and cache tags to `objects`, declares Fast
//! Purge's limits as data (one object type per request, 50,000 body bytes, the account's token
//! buckets), and encodes and decodes HTTP messages as pure functions of their inputs. EdgeGrid
//! signing lives in [`sign`], one pure function per stage, pinned by Akamai's test vectors.
//! Drive it with [`purgekit_core::ProviderPurger`]:
//!
//! ```no_run
//! # async fn demo() -> purgekit_core::Result<()> {
//! use std::sync::Arc;
//! use purgekit_core::{ProviderPurger, PurgeRequest, Purger};
//! use purgekit_akamai::{Akamai, AkamaiConfig};
//!
//! let config = AkamaiConfig {
//!     edgerc: Some("~/.edgerc".into()),      // host, tokens and secret from the file…
//!     section: Some("ccu".into()),           // …section [ccu]
//!     ..AkamaiConfig::default()
//! };
//! let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("akamai", Akamai::new(config)?));
//! let request = PurgeRequest::builder()
//!     .url("https://www.example.com/app.js")  // /ccu/v3/invalidate/url/production
//!     .tag("product-42")                      // /ccu/v3/invalidate/tag/production
//!     .build()?;
//! let report = purger.purge(&request).await?;
//! # let _ = report; Ok(()) }
//! ```
//!
//! Fast Purge v3 has no status call: a purge is accepted with an `estimatedSeconds`, and with
//! `--wait` its rows become `completed` once that estimate has passed, with a warning saying
//! so. See `docs/providers/akamai.md` for the mapping, limits and errors.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod decode;
mod provider;
pub mod sign;
mod wire;

pub use config::{
    AkamaiConfig, BucketConfig, BucketsConfig, DEFAULT_SECTION, KIND, MAX_CPCODES, TEMPLATE,
};
pub use decode::{Problem, PurgeAccepted, rate_limit_wait};
pub use provider::{Akamai, MAX_OBJECTS_PER_REQUEST, default_buckets};
pub use wire::{MAX_BODY_BYTES, Network, ObjectType, path};
