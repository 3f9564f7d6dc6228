//! The default [`Transport`]: reqwest over rustls (feature `reqwest`).

use std::time::Duration;

use async_trait::async_trait;

use super::Transport;
use super::proxy::{ProxyPolicy, describe};
use crate::engine::exchange::response_too_large;
use crate::error::{Error, Result};
use crate::provider::{HttpRequest, HttpResponse};

/// A [`Transport`] over a `reqwest::Client` (rustls), with connect and read timeouts.
///
/// It never follows a redirect (the engine turns a 3xx into an error), reads a response body
/// only up to the cap it is given, treats a refused TLS certificate as fatal, and goes through
/// the proxy its [`ProxyPolicy`] picks (never for loopback hosts).
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// Connect timeout and per-read timeout of the default client.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// See [`ReqwestTransport::DEFAULT_CONNECT_TIMEOUT`].
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

    /// A transport with the given timeouts and the proxies of the environment. A proxy
    /// variable that is not a proxy URL is ignored, with a warning.
    pub fn new(connect_timeout: Duration, read_timeout: Duration) -> Self {
        Self::build(connect_timeout, read_timeout, &ProxyPolicy::Environment).unwrap_or_else(|e| {
            tracing::warn!("{e}; sending without a proxy");
            Self::build(connect_timeout, read_timeout, &ProxyPolicy::None)
                .expect("a client without a proxy builds")
        })
    }

    /// A transport with the default timeouts, through the proxies `policy` picks; logs them
    /// (at info, credentials removed). A proxy URL that is not one (from the policy or the
    /// environment) is an [`Error::Config`] naming where it came from.
    pub fn with_proxy(policy: &ProxyPolicy) -> Result<Self> {
        let transport = Self::build(
            Self::DEFAULT_CONNECT_TIMEOUT,
            Self::DEFAULT_READ_TIMEOUT,
            policy,
        )?;
        tracing::info!("proxy: {}", policy.describe());
        Ok(transport)
    }

    fn build(
        connect_timeout: Duration,
        read_timeout: Duration,
        policy: &ProxyPolicy,
    ) -> Result<Self> {
        let proxies = policy.resolve_with(|name| std::env::var(name).ok())?;
        tracing::debug!("proxy: {}", describe(&proxies));
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("purgekit/", env!("CARGO_PKG_VERSION")))
            .no_proxy();
        let bypass = reqwest::NoProxy::from_string(&proxies.bypass());
        let proxy_error = |source: &str, e: reqwest::Error| {
            Error::config(source, format!("not a usable proxy: {e}"))
        };
        if let Some((url, source)) = &proxies.https {
            let proxy = reqwest::Proxy::https(url.as_str()).map_err(|e| proxy_error(source, e))?;
            builder = builder.proxy(proxy.no_proxy(bypass.clone()));
        }
        if let Some((url, source)) = &proxies.http {
            let proxy = reqwest::Proxy::http(url.as_str()).map_err(|e| proxy_error(source, e))?;
            builder = builder.proxy(proxy.no_proxy(bypass));
        }
        let client = builder
            .build()
            .map_err(|e| Error::config("proxy", format!("cannot build the HTTP client: {e}")))?;
        Ok(ReqwestTransport { client })
    }
}

impl Default for ReqwestTransport {
    fn default() -> Self {
        ReqwestTransport::new(Self::DEFAULT_CONNECT_TIMEOUT, Self::DEFAULT_READ_TIMEOUT)
    }
}

#[async_trait]
impl Transport for ReqwestTransport {
    async fn send(&self, request: HttpRequest, max_response_bytes: usize) -> Result<HttpResponse> {
        let request = reqwest::Request::try_from(request)
            .map_err(|e| Error::protocol(format!("cannot build the HTTP request: {e}")))?;
        let url = request.url().clone();
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| connect_error(&url, &e))?;
        if response
            .content_length()
            .is_some_and(|n| n > max_response_bytes as u64)
        {
            return Err(response_too_large(max_response_bytes));
        }
        let mut builder = http::Response::builder()
            .status(response.status())
            .version(response.version());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            Error::transient(format!("{url}: reading the response: {}", error_chain(&e)))
        })? {
            if body.len() + chunk.len() > max_response_bytes {
                return Err(response_too_large(max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        builder
            .body(body)
            .map_err(|e| Error::protocol(e.to_string()))
    }
}

/// A failed request: fatal when the server's TLS certificate was refused, transient otherwise.
fn connect_error(url: &reqwest::Url, e: &reqwest::Error) -> Error {
    if let Some(tls) = certificate_error(e) {
        return Error::protocol(format!(
            "{url}: the server's TLS certificate was refused ({tls}); not retried: the endpoint \
             needs a certificate valid for its host and trusted by this system"
        ));
    }
    Error::transient(format!("{url}: {}", error_chain(e)))
}

/// The rustls certificate error somewhere in `e`'s sources (rustls errors travel inside
/// `io::Error`s, nested, whose `source()` skips them, so those are opened too).
fn certificate_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    fn inside<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
        inside(inner)
    }
    let mut next = Some(e);
    while let Some(error) = next {
        if let Some(tls) = inside(error).filter(|t| is_certificate_error(t)) {
            return Some(tls);
        }
        next = error.source();
    }
    None
}

fn is_certificate_error(e: &rustls::Error) -> bool {
    use rustls::AlertDescription as Alert;
    matches!(
        e,
        rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::InvalidCertRevocationList(_)
            | rustls::Error::AlertReceived(
                Alert::BadCertificate
                    | Alert::UnsupportedCertificate
                    | Alert::CertificateRevoked
                    | Alert::CertificateExpired
                    | Alert::CertificateUnknown
                    | Alert::UnknownCA
            )
    )
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
