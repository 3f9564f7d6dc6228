//! The default [`Transport`]: reqwest over rustls (feature `reqwest`).

use std::time::Duration;

use async_trait::async_trait;

use super::Transport;
use crate::error::{Error, Result};
use crate::provider::{HttpRequest, HttpResponse};

/// A [`Transport`] over a `reqwest::Client` (rustls), with connect and read timeouts.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// Connect timeout and per-read timeout of the default client.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// See [`ReqwestTransport::DEFAULT_CONNECT_TIMEOUT`].
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

    /// A transport with the given timeouts.
    pub fn new(connect_timeout: Duration, read_timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .user_agent(concat!("purgekit/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with rustls builds");
        ReqwestTransport { client }
    }
}

impl Default for ReqwestTransport {
    fn default() -> Self {
        ReqwestTransport::new(Self::DEFAULT_CONNECT_TIMEOUT, Self::DEFAULT_READ_TIMEOUT)
    }
}

#[async_trait]
impl Transport for ReqwestTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse> {
        let request = reqwest::Request::try_from(request)
            .map_err(|e| Error::protocol(format!("cannot build the HTTP request: {e}")))?;
        let url = request.url().clone();
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| Error::transient(format!("{url}: {}", error_chain(&e))))?;
        let mut builder = http::Response::builder()
            .status(response.status())
            .version(response.version());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let body = response.bytes().await.map_err(|e| {
            Error::transient(format!("{url}: reading the response: {}", error_chain(&e)))
        })?;
        builder
            .body(body.to_vec())
            .map_err(|e| Error::protocol(e.to_string()))
    }
}

/// `e` and its sources, joined, since reqwest's top-level message hides the cause.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
