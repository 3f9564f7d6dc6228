//! purgekit provider for Amazon CloudFront invalidations: SigV4-signed XML over
//! `https://cloudfront.amazonaws.com/2020-05-31/distribution/{id}/invalidation`.
//!
//! [`CloudFront`] is a codec, not a client: it maps targets on the distribution's hosts to
//! invalidation paths, declares CloudFront's limits (3,000 paths per request; 3,000 paths and
//! 15 wildcard paths in progress per distribution, freed as invalidations complete; paths as
//! billable units), and encodes and decodes HTTP messages as pure functions of their inputs,
//! time included. Drive it with [`purgekit_core::ProviderPurger`]:
//!
//! ```no_run
//! # async fn demo() -> purgekit_core::Result<()> {
//! use std::sync::Arc;
//! use purgekit_core::{ProviderPurger, PurgeRequest, Purger};
//! use purgekit_cloudfront::{CloudFront, CloudFrontConfig};
//!
//! // Keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN).
//! let config = CloudFrontConfig::new("EDFDVBD6EXAMPLE", ["www.example.com"]);
//! let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("cf", CloudFront::new(config)?));
//! let request = PurgeRequest::builder()
//!     .url("https://www.example.com/index.html")     // /index.html
//!     .pattern("https://www.example.com/images/*")   // /images/* (a wildcard path)
//!     .build()?;
//! let report = purger.purge(&request).await?;
//! # let _ = report; Ok(()) }
//! ```
//!
//! See `docs/providers/cloudfront.md` for the mapping, limits, errors and cost.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod decode;
mod provider;
mod sign;
mod wire;

pub use config::{
    CloudFrontConfig, DEFAULT_ENDPOINT, ENV_ACCESS_KEY_ID, ENV_SECRET_ACCESS_KEY,
    ENV_SESSION_TOKEN, KIND, TEMPLATE,
};
pub use decode::{CAPACITY_RETRY, Invalidation, MAX_RESPONSE_BYTES};
pub use provider::{
    CloudFront, MAX_PATHS_IN_PROGRESS, MAX_PATHS_PER_REQUEST, MAX_WILDCARDS_IN_PROGRESS,
};
pub use sign::{
    Credentials, DATE_HEADER, REGION, SERVICE, TOKEN_HEADER, amz_date, canonical_request, sign,
    string_to_sign,
};
pub use wire::{MAX_PATH_CHARS, NAMESPACE};
