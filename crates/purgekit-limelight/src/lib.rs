//! purgekit provider for Limelight (Edgio) SmartPurge: HMAC-SHA256-signed JSON over
//! `https://apis.llnw.com/purge/v1/account/{shortname}/…`.
//!
//! [`Limelight`] is a codec, not a client: it maps targets to `patterns[]`/`tags[]` entries,
//! declares SmartPurge's limits (100 patterns + tags and 32 000 body bytes per request, 60 items
//! per minute, 1000 queued), and encodes and decodes HTTP messages as pure functions of their
//! inputs, time included. Drive it with [`purgekit_core::ProviderPurger`]:
//!
//! ```no_run
//! # async fn demo() -> purgekit_core::Result<()> {
//! use std::sync::Arc;
//! use purgekit_core::{ProviderPurger, PurgeRequest, Purger};
//! use purgekit_limelight::{Limelight, LimelightConfig};
//!
//! let mut config = LimelightConfig::new("example", "exampleuser", "00112233445566778899aabbccddeeff");
//! config.origins.insert("cdn.example.com".into(), "origin.example.com".into());
//! let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("ll", Limelight::new(config)?));
//! let request = PurgeRequest::builder()
//!     .url("https://cdn.example.com/app.js")          // {"exact": true}
//!     .pattern("https://cdn.example.com/img/*")      // {"exact": false}, on origin.example.com
//!     .tag("product-42")                             // tags[]
//!     .build()?;
//! let report = purger.purge(&request).await?;
//! # let _ = report; Ok(()) }
//! ```
//!
//! See `docs/providers/limelight.md` for the option mapping, limits and error codes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod decode;
mod provider;
mod sign;
mod wire;

pub use config::{DEFAULT_ENDPOINT, KIND, LimelightConfig, TEMPLATE};
pub use decode::{PatternEntry, PurgeList, PurgeRecord, Stat, StateChange, TagEntry};
pub use provider::{
    ITEMS_PER_MINUTE, Limelight, ListQuery, MAX_BODY_BYTES, MAX_ITEMS_PER_REQUEST,
    MAX_QUEUED_ITEMS, Order,
};
pub use sign::{PRINCIPAL_HEADER, TIMESTAMP_HEADER, TOKEN_HEADER, string_to_sign, token};
pub use wire::{
    MAX_CALLBACK_CHARS, MAX_EMAIL_TO_CHARS, MAX_NOTES_CHARS, MAX_PATTERN_CHARS, MAX_TAG_CHARS,
};
