//! The HTTP seam: the engine sends through a [`Transport`]; the default (feature `reqwest`) is
//! reqwest over rustls.

use async_trait::async_trait;

use crate::error::Result;
use crate::provider::{HttpRequest, HttpResponse};

/// Sends one HTTP request and returns the whole response. Connection-level failures are
/// [`crate::Error::Transient`]; HTTP statuses are left to the provider's decoder.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `request`.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse>;
}

#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(feature = "reqwest")]
pub use self::reqwest::ReqwestTransport;
