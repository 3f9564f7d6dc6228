//! purgekit provider for Cloudflare's cache purge API:
//! `POST https://api.cloudflare.com/client/v4/zones/{zone}/purge_cache`.
//!
//! [`Cloudflare`] is a codec, not a client: it maps URLs to `files`, cache tags to `tags`,
//! `host:` to `hosts`, `prefix:` to `prefixes` (host and path, no scheme) and `everything` to
//! `purge_everything`, one kind per request; declares the zone plan's limits (items per
//! request, the request bucket of tag/host/prefix/everything purges, the URL rate of
//! single-file purges, the global API window); and decodes Cloudflare's
//! `{success, errors, result}` envelope. Cloudflare removes objects (there is no soft purge
//! here): where invalidation was asked, every row says so. It has no status call: a purge is
//! complete when accepted.
//!
//! ```no_run
//! # async fn demo() -> purgekit_core::Result<()> {
//! use std::sync::Arc;
//! use purgekit_core::{ProviderPurger, PurgeRequest, Purger};
//! use purgekit_cloudflare::{Cloudflare, CloudflareConfig, Plan};
//!
//! // The token from CLOUDFLARE_API_TOKEN.
//! let mut config = CloudflareConfig::new("023e105f4ecef8ad9ca31a8372d0c353");
//! config.plan = Plan::Pro;
//! let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("cf", Cloudflare::new(config)?));
//! let request = PurgeRequest::builder()
//!     .url("https://www.example.com/index.html")          // {"files":[…]}
//!     .prefix("https://www.example.com/assets/v41/")      // {"prefixes":["www.example.com/assets/v41/"]}
//!     .build()?;
//! let report = purger.purge(&request).await?;
//! # let _ = report; Ok(()) }
//! ```
//!
//! See `docs/providers/cloudflare.md` for the mapping, limits and errors.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod decode;
mod provider;
mod wire;

pub use config::{
    CloudflareConfig, DEFAULT_ENDPOINT, DEFAULT_MAX_IN_FLIGHT, ENV_API_TOKEN, GLOBAL_LIMIT, KIND,
    Plan, PlanLimits, TEMPLATE,
};
pub use decode::{AUTH_ERROR, THROTTLED};
pub use provider::Cloudflare;
pub use wire::{Field, MAX_PREFIX_SLASHES, MAX_TAG_CHARS, body, check_tag, prefix, value_bytes};
