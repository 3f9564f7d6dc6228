//! purgekit provider for Adobe Dynamic Media (Scene7): the IPS API's `cdnCacheInvalidation`
//! SOAP operation and its status query `getCdnCacheInvalidationStatus`.
//!
//! A codec, not a client: [`DynamicMedia`] implements [`purgekit_core::Provider`]; drive it
//! with [`purgekit_core::ProviderPurger`].
//!
//! ```
//! use std::sync::Arc;
//! use purgekit_core::{ProviderPurger, PurgeRequest, Purger};
//! use purgekit_dynamicmedia::{DynamicMedia, DynamicMediaConfig};
//!
//! let config = DynamicMediaConfig::new("ops@example.com", "s3cret", "c|6", "JJEsquire");
//! let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("dm", DynamicMedia::new(config)?));
//! let request = PurgeRequest::builder()
//!     .url("http://s7d7.scene7.com/is/image/JJEsquire/11008047?$thumbnail$")
//!     .build()?;
//! let plan = purger.plan(&request)?;
//! let body = &plan.providers[0].requests[0].body;
//! assert!(body.contains("<items>http://s7d7.scene7.com/is/image/JJEsquire/11008047?$thumbnail$</items>"));
//! assert!(!body.contains("s3cret"));
//! # Ok::<(), purgekit_core::Error>(())
//! ```
//!
//! What it supports and why, its limits and its decisions: `docs/providers/dynamic-media.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod decode;
mod provider;
mod wire;

pub use config::{
    DEFAULT_API_VERSION, DynamicMediaConfig, KIND, OLDEST_API_VERSION, Region, TEMPLATE,
};
pub use decode::COUNTS_HANDLE_PREFIX;
pub use provider::{DynamicMedia, MAX_URLS_PER_CALL};
pub use wire::{
    CONTENT_TYPE, INVALIDATE_ACTION, IPS_NS, SERVICE_PATH, SOAP_ENV_NS, STATUS_ACTION, body_ns,
};
