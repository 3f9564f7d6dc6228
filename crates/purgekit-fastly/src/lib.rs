//! purgekit provider for Fastly's purge API (`https://api.fastly.com`): single-URL purges,
//! surrogate-key batch purges and purge-all, soft (mark stale) or hard (remove).
//!
//! [`Fastly`] is a codec, not a client: it maps URLs to single-URL purges (Fastly has no batch
//! URL call: one request each, sent concurrently), cache tags to surrogate-key batch purges
//! (up to 256 keys a request) and `everything` to purge-all (only with `delete`: it cannot be
//! soft), declares Fastly's limits (purge-all counts against the hourly API write limit, URL
//! and key purges are exempt), and encodes and decodes HTTP messages as pure functions. Fastly
//! has no status call: a purge is complete when accepted. Drive it with
//! [`purgekit_core::ProviderPurger`]:
//!
//! ```no_run
//! # async fn demo() -> purgekit_core::Result<()> {
//! use std::sync::Arc;
//! use purgekit_core::{ProviderPurger, PurgeRequest, Purger};
//! use purgekit_fastly::{Fastly, FastlyConfig};
//!
//! // The token from FASTLY_API_TOKEN.
//! let config = FastlyConfig::new("SU1Z0isxPaozGVKXdv0eY");
//! let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("fastly", Fastly::new(config)?));
//! let request = PurgeRequest::builder()
//!     .url("https://www.example.com/index.html")     // POST /purge/www.example.com/index.html
//!     .tag("product-62952")                          // POST /service/…/purge
//!     .build()?;
//! let report = purger.purge(&request).await?;
//! # let _ = report; Ok(()) }
//! ```
//!
//! See `docs/providers/fastly.md` for the mapping, limits and errors.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod decode;
mod provider;
mod wire;

pub use config::{
    DEFAULT_ENDPOINT, DEFAULT_MAX_IN_FLIGHT, ENV_API_TOKEN, FastlyConfig, KIND, TEMPLATE,
    WRITE_LIMIT,
};
pub use decode::{PURGE_ALL_HANDLE, REMAINING_HEADER, RESET_HEADER, rate_limit_state, until_reset};
pub use provider::Fastly;
pub use wire::{
    Call, KEY_HEADER, KEYS_ENVELOPE_BYTES, MAX_KEY_BYTES, MAX_KEYS_PER_REQUEST, SOFT_PURGE_HEADER,
    check_key, key_bytes, keys_body, url_path,
};
