//! [`CloudFront`]: the invalidation codec behind [`purgekit_core::Provider`].

use std::time::SystemTime;

use purgekit_core::http::{Method, StatusCode};
use purgekit_core::{
    Accepted, AuthProbe, Batch, Billing, Capabilities, Handle, HttpRequest, HttpResponse,
    InFlightCapacity, Item, Limits, Mapped, Options, Progress, Provider, REDACTED, Result, Status,
    Target, TargetKind,
};

use crate::config::{Account, CloudFrontConfig};
use crate::decode;
use crate::sign::{self, TOKEN_HEADER};
use crate::wire::{self, Path};

/// Most paths in one CreateInvalidation (AWS's example uses the whole allowance in one).
pub const MAX_PATHS_PER_REQUEST: usize = 3000;
/// Individual (non-wildcard) paths in progress per distribution.
pub const MAX_PATHS_IN_PROGRESS: usize = 3000;
/// Wildcard paths in progress per distribution.
pub const MAX_WILDCARDS_IN_PROGRESS: usize = 15;

/// The CloudFront provider: one distribution, signed by one key.
///
/// ```
/// use std::sync::Arc;
/// use purgekit_core::{ProviderPurger, Purger};
/// use purgekit_cloudfront::{CloudFront, CloudFrontConfig};
/// let mut config = CloudFrontConfig::new("EDFDVBD6EXAMPLE", ["www.example.com"]);
/// config.access_key_id = Some("AKIDEXAMPLE".into());
/// config.secret_access_key = Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into());
/// let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("cf", CloudFront::new(config)?));
/// # Ok::<(), purgekit_core::Error>(())
/// ```
#[derive(Clone)]
pub struct CloudFront {
    account: Account,
}

impl std::fmt::Debug for CloudFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudFront")
            .field("endpoint", &self.account.endpoint)
            .field("distribution_id", &self.account.distribution_id)
            .field("hosts", &self.account.hosts)
            .field("credentials", &self.account.credentials)
            .finish()
    }
}

impl CloudFront {
    /// Checks `config`; keys it does not hold are read from `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
    pub fn new(config: CloudFrontConfig) -> Result<Self> {
        Self::with_env(config, |name| std::env::var(name).ok())
    }

    /// [`CloudFront::new`] reading the environment through `env` (tests, embedders).
    pub fn with_env(
        config: CloudFrontConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        Ok(CloudFront {
            account: Account::new(config, env)?,
        })
    }

    /// A signed request to `url`.
    fn signed(
        &self,
        method: Method,
        url: String,
        body: Vec<u8>,
        now: SystemTime,
    ) -> Result<HttpRequest> {
        let mut request = purgekit_core::http::Request::builder()
            .method(method)
            .uri(&url)
            .body(body)
            .map_err(|e| purgekit_core::Error::protocol(format!("cannot build {url}: {e}")))?;
        sign::sign(&mut request, &self.account.credentials, now)?;
        Ok(request)
    }
}

impl TryFrom<CloudFrontConfig> for CloudFront {
    type Error = purgekit_core::Error;

    fn try_from(config: CloudFrontConfig) -> Result<Self> {
        CloudFront::new(config)
    }
}

/// The batch's paths, for error messages (the first few).
fn path_list(batch: &Batch) -> String {
    let shown: Vec<&str> = batch
        .items
        .iter()
        .take(5)
        .map(|i| i.value.as_str())
        .collect();
    let more = batch.items.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl Provider for CloudFront {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    fn account(&self) -> String {
        self.account.distribution_id.clone()
    }

    fn endpoint(&self) -> String {
        self.account.endpoint.clone()
    }

    /// The body's `CallerReference` is the batch's id.
    fn sends_idempotency_key(&self) -> bool {
        true
    }

    fn limits(&self) -> Limits {
        Limits {
            max_items: MAX_PATHS_PER_REQUEST,
            max_in_flight: 4,
            in_flight_capacity: Some(InFlightCapacity {
                items: MAX_PATHS_IN_PROGRESS,
                wildcards: MAX_WILDCARDS_IN_PROGRESS,
            }),
            billing: Some(Billing {
                unit: "paths",
                terms: "a wildcard path counts as one; the first 1,000 paths a month per AWS \
                        account are free, then USD 0.005 per path",
            }),
            ..Limits::default()
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            targets: vec![
                TargetKind::Url,
                TargetKind::Pattern,
                TargetKind::Prefix,
                TargetKind::Host,
                TargetKind::Everything,
            ],
            options: vec![],
        }
    }

    fn map(&self, target: &Target, _options: &Options) -> Result<Mapped> {
        Ok(match wire::path(target, &self.account.hosts)? {
            Path::Path { value, wildcard } => Mapped::Item(Item {
                kind: if wildcard {
                    TargetKind::Pattern
                } else {
                    TargetKind::Url
                },
                bytes: wire::path_element_bytes(&value),
                value,
                scope: String::new(),
                wildcard,
            }),
            Path::Unsupported(reason) => Mapped::Unsupported(reason),
        })
    }

    fn body_overhead(&self, _options: &Options) -> usize {
        wire::overhead(MAX_PATHS_PER_REQUEST)
    }

    fn encode(&self, batch: &Batch, _options: &Options, now: SystemTime) -> Result<HttpRequest> {
        let paths = batch.items.iter().map(|i| i.value.as_str());
        let body = wire::encode(batch.id, paths, batch.items.len());
        self.signed(
            Method::POST,
            self.account.invalidations_url(),
            body.into_bytes(),
            now,
        )
    }

    fn decode(&self, batch: &Batch, response: HttpResponse) -> Result<Accepted> {
        let invalidation = decode::invalidation(
            &response,
            StatusCode::CREATED,
            "CreateInvalidation",
            &path_list(batch),
        )?;
        Ok(Accepted {
            handle: Handle(invalidation.id),
            poll_after: None,
            warnings: Vec::new(),
        })
    }

    fn encode_status(&self, handle: &Handle, now: SystemTime) -> Result<HttpRequest> {
        let id = handle.as_str();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(purgekit_core::Error::invalid(
                id,
                "a CloudFront invalidation id is letters and digits",
            ));
        }
        self.signed(
            Method::GET,
            format!("{}/{id}", self.account.invalidations_url()),
            Vec::new(),
            now,
        )
    }

    /// ListInvalidations of the distribution, one item (`GET …/invalidation?MaxItems=1`):
    /// read-only, SigV4-signed.
    fn auth_probe(&self, now: SystemTime) -> Result<AuthProbe> {
        let url = format!("{}?MaxItems=1", self.account.invalidations_url());
        Ok(AuthProbe::Request(Box::new(self.signed(
            Method::GET,
            url,
            Vec::new(),
            now,
        )?)))
    }

    /// An `<InvalidationList>` is accepted; any error is classified as a purge's would be.
    fn decode_auth_probe(&self, response: HttpResponse) -> Result<()> {
        decode::invalidation_list(&response)
    }

    fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
        let invalidation = decode::invalidation(
            &response,
            StatusCode::OK,
            "GetInvalidation",
            handle.as_str(),
        )?;
        if invalidation.id != handle.as_str() {
            return Err(purgekit_core::Error::protocol(format!(
                "asked about invalidation {handle}, the answer is about `{}`",
                invalidation.id
            )));
        }
        let progress = match invalidation.status.as_str() {
            "Completed" => Progress::Completed,
            _ => Progress::Pending { percent: None },
        };
        Ok(Status {
            handle: handle.clone(),
            progress,
            detail: invalidation.status,
            poll_after: None,
        })
    }

    fn redact(&self, request: &mut HttpRequest) {
        let headers = request.headers_mut();
        for name in ["authorization", TOKEN_HEADER] {
            if let Some(value) = headers.get_mut(name) {
                *value = purgekit_core::http::HeaderValue::from_static(REDACTED);
            }
        }
    }
}

#[cfg(test)]
mod tests;
