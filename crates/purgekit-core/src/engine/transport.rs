//! The HTTP seam: the engine sends through a [`Transport`]; the default (feature `reqwest`) is
//! reqwest over rustls, following no redirects, reading at most the body cap, routed through a
//! proxy by [`ProxyPolicy`].

use async_trait::async_trait;

use crate::error::Result;
use crate::provider::{HttpRequest, HttpResponse};

/// Sends one HTTP request and returns the whole response. Connection-level failures are
/// [`crate::Error::Transient`], a refused TLS certificate is fatal ([`crate::Error::Protocol`]);
/// HTTP statuses are left to the engine and the provider's decoder. A transport never follows
/// redirects.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `request`. A body longer than `max_response_bytes` should not be read past the
    /// cap (the attempt fails with "response larger than N bytes"); the engine checks the
    /// length again whatever the transport does.
    async fn send(&self, request: HttpRequest, max_response_bytes: usize) -> Result<HttpResponse>;
}

mod proxy;
pub use proxy::ProxyPolicy;

#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(feature = "reqwest")]
pub use self::reqwest::ReqwestTransport;
