//! [`Fastly`]: the purge codec behind [`purgekit_core::Provider`].

use std::time::SystemTime;

use bytes::Bytes;
use purgekit_core::http::header::{ACCEPT, CONTENT_TYPE};
use purgekit_core::http::uri::{Authority, Parts, PathAndQuery, Scheme};
use purgekit_core::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use purgekit_core::{
    Accepted, Action, AuthProbe, Batch, BucketUnit, Capabilities, CompletionModel, Error, Handle,
    HttpRequest, HttpResponse, Item, Limits, Mapped, OptionKind, Options, Provider, REDACTED,
    Result, Target, TargetKind, TokenBucket,
};

use crate::config::{Account, FastlyConfig};
use crate::decode;
use crate::wire::{self, Call, KEY_HEADER, MAX_KEYS_PER_REQUEST, SOFT_PURGE_HEADER};

/// Why patterns, prefixes and hosts are not sent.
const NO_WILDCARDS: &str = "Fastly purges exact URLs, surrogate keys or the whole service, \
                            with no wildcards: tag the objects with a surrogate key at the \
                            origin (Surrogate-Key header) and purge `tag:KEY`";

/// Why `everything` is not sent when invalidation was asked.
const ALL_IS_HARD: &str = "Fastly's purge-all cannot be soft: it removes every object of the \
                           service at once. Pass --delete to send it, or soft-purge a \
                           surrogate key every object carries";

/// What Fastly says about completion.
const DONE_WHEN_ACCEPTED: &str = "Fastly has no status call: a purge is complete when \
                                  accepted (URL and key purges reach the network in about \
                                  150 ms, purge-all in 10-20 s)";

/// The token header, and the soft-purge header, named once.
const KEY: HeaderName = HeaderName::from_static(KEY_HEADER);
const SOFT_PURGE: HeaderName = HeaderName::from_static(SOFT_PURGE_HEADER);

/// The Fastly provider: one service, one API token.
///
/// ```
/// use std::sync::Arc;
/// use purgekit_core::{ProviderPurger, Purger};
/// use purgekit_fastly::{Fastly, FastlyConfig};
/// let mut config = FastlyConfig::new("SU1Z0isxPaozGVKXdv0eY");
/// config.api_token = Some("my-token".into());
/// let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("fastly", Fastly::new(config)?));
/// # Ok::<(), purgekit_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Fastly {
    account: Account,
    /// `{endpoint}/service/{id}/`, built once.
    service_url: String,
    /// The `Fastly-Key` header value, built once (a million URLs are a million requests).
    key: HeaderValue,
    /// The endpoint's scheme, authority and path (without its trailing `/`), parsed once: a
    /// single-URL purge's URI is built from them and its own path.
    scheme: Scheme,
    authority: Authority,
    base_path: String,
}

impl std::fmt::Debug for Fastly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fastly")
            .field("endpoint", &self.account.endpoint)
            .field("service_id", &self.account.service_id)
            .field("api_token", &self.account.token)
            .finish()
    }
}

impl Fastly {
    /// Checks `config`; a token it does not hold is read from `FASTLY_API_TOKEN`.
    pub fn new(config: FastlyConfig) -> Result<Self> {
        Self::with_env(config, |name| std::env::var(name).ok())
    }

    /// [`Fastly::new`] reading the environment through `env` (tests, embedders).
    pub fn with_env(config: FastlyConfig, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let account = Account::new(config, env)?;
        let service_url = format!("{}/service/{}/", account.endpoint, account.service_id);
        let mut key = HeaderValue::from_str(account.token.expose())
            .map_err(|_| Error::config("api_token", "cannot be sent in a header"))?;
        key.set_sensitive(true);
        let endpoint = Uri::try_from(account.endpoint.as_str())
            .ok()
            .and_then(|uri| {
                let path = uri.path().trim_end_matches('/').to_owned();
                let parts = uri.into_parts();
                Some((parts.scheme?, parts.authority?, path))
            })
            .ok_or_else(|| Error::config("endpoint", "is not an http(s) URL"))?;
        let (scheme, authority, base_path) = endpoint;
        Ok(Fastly {
            account,
            service_url,
            key,
            scheme,
            authority,
            base_path,
        })
    }

    fn item(call: Call, kind: TargetKind, value: String, bytes: usize) -> Mapped {
        Mapped::Item(Item {
            kind,
            value,
            scope: call.scope().to_owned(),
            wildcard: false,
            bytes,
        })
    }
}

impl TryFrom<FastlyConfig> for Fastly {
    type Error = Error;

    fn try_from(config: FastlyConfig) -> Result<Self> {
        Fastly::new(config)
    }
}

impl Provider for Fastly {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    fn account(&self) -> String {
        self.account.service_id.clone()
    }

    fn endpoint(&self) -> String {
        self.account.endpoint.clone()
    }

    /// One URL per single-URL purge, 256 keys per batch purge, purge-all alone; purge-all
    /// counts against the hourly write limit (a request bucket of that scope), URL and key
    /// purges are exempt (only the configured `rate_limit`, none by default, paces them).
    fn limits(&self) -> Limits {
        let writes = self.account.writes;
        Limits {
            max_items: MAX_KEYS_PER_REQUEST,
            max_items_per_scope: vec![
                (Call::Url.scope().to_owned(), 1),
                (Call::All.scope().to_owned(), 1),
            ],
            max_body_bytes: None,
            group_by_scope: true,
            rate: self.account.rate,
            buckets: vec![TokenBucket {
                unit: BucketUnit::Requests,
                scopes: vec![Call::All.scope().to_owned()],
                burst: writes.amount,
                refill: writes,
            }],
            max_in_flight: self.account.max_in_flight,
            ..Limits::default()
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            targets: vec![TargetKind::Url, TargetKind::Tag, TargetKind::Everything],
            options: vec![OptionKind::Delete],
        }
    }

    fn unsupported_reason(&self, kind: TargetKind) -> Option<String> {
        matches!(
            kind,
            TargetKind::Pattern | TargetKind::Prefix | TargetKind::Host
        )
        .then(|| NO_WILDCARDS.to_owned())
    }

    fn completion(&self) -> CompletionModel {
        CompletionModel::OnAcceptance
    }

    fn map(&self, target: &Target, options: &Options) -> Result<Mapped> {
        Ok(match target.kind() {
            TargetKind::Url => {
                let path = wire::url_path(target)?;
                let bytes = path.len();
                Self::item(Call::Url, TargetKind::Url, path, bytes)
            }
            TargetKind::Tag => {
                let key = target.value();
                wire::check_key(key)?;
                Self::item(
                    Call::Keys,
                    TargetKind::Tag,
                    key.to_owned(),
                    wire::key_bytes(key),
                )
            }
            TargetKind::Everything if options.action == Action::Delete => {
                Self::item(Call::All, TargetKind::Everything, String::new(), 0)
            }
            TargetKind::Everything => Mapped::Unsupported(ALL_IS_HARD.to_owned()),
            TargetKind::Pattern | TargetKind::Prefix | TargetKind::Host => {
                Mapped::Unsupported(NO_WILDCARDS.to_owned())
            }
        })
    }

    /// Built part by part rather than through `http`'s request builder: a million URLs are a
    /// million requests, so the endpoint is parsed once (only the purge's path is checked per
    /// request) and the header names are constants.
    fn encode(&self, batch: &Batch, options: &Options, _now: SystemTime) -> Result<HttpRequest> {
        let call = Call::from_scope(&batch.scope)
            .ok_or_else(|| Error::protocol(format!("`{}` is not a Fastly call", batch.scope)))?;
        let invalid = |e: &dyn std::fmt::Display| {
            Error::protocol(format!("cannot build the Fastly request: {e}"))
        };
        let (uri, body) = match call {
            Call::Url => {
                let [item] = batch.items.as_slice() else {
                    return Err(Error::protocol("a single-URL purge carries one URL"));
                };
                let mut path = String::with_capacity(self.base_path.len() + item.value.len());
                path.push_str(&self.base_path);
                path.push_str(&item.value);
                let mut parts = Parts::default();
                parts.scheme = Some(self.scheme.clone());
                parts.authority = Some(self.authority.clone());
                parts.path_and_query = Some(
                    PathAndQuery::from_maybe_shared(Bytes::from(path)).map_err(|e| invalid(&e))?,
                );
                (Uri::from_parts(parts).map_err(|e| invalid(&e))?, Vec::new())
            }
            Call::Keys => (
                Uri::try_from(format!("{}purge", self.service_url)).map_err(|e| invalid(&e))?,
                wire::keys_body(
                    batch.items.iter().map(|i| i.value.as_str()),
                    batch.bytes + wire::KEYS_ENVELOPE_BYTES,
                ),
            ),
            Call::All => (
                Uri::try_from(format!("{}purge_all", self.service_url)).map_err(|e| invalid(&e))?,
                Vec::new(),
            ),
        };
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(KEY, self.key.clone());
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if call == Call::Keys {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if call != Call::All && options.action == Action::Invalidate {
            headers.insert(SOFT_PURGE, HeaderValue::from_static("1"));
        }
        let mut request = HttpRequest::new(body);
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// The token's own record, `GET /tokens/self`: read-only, and answered for a token of any
    /// scope (a purge-only token may not read the service's configuration).
    fn auth_probe(&self, _now: SystemTime) -> Result<AuthProbe> {
        let request = purgekit_core::http::Request::builder()
            .method(Method::GET)
            .uri(format!("{}{}", self.account.endpoint, wire::TOKEN_PATH))
            .header(KEY_HEADER, self.key.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(Vec::new())
            .map_err(|e| Error::protocol(format!("cannot build the Fastly request: {e}")))?;
        Ok(AuthProbe::Request(Box::new(request)))
    }

    /// Accepted when the token holds a purge scope and is not limited to other services.
    fn decode_auth_probe(&self, response: HttpResponse) -> Result<()> {
        decode::token(&response, &self.account.service_id)
    }

    fn decode(&self, batch: &Batch, response: HttpResponse) -> Result<Accepted> {
        let call = Call::from_scope(&batch.scope)
            .ok_or_else(|| Error::protocol(format!("`{}` is not a Fastly call", batch.scope)))?;
        let keys: Vec<&str> = match call {
            Call::Keys => batch.items.iter().map(|i| i.value.as_str()).collect(),
            _ => Vec::new(),
        };
        let what = match call {
            Call::Url => batch.items.first().map_or_else(String::new, |i| {
                i.value.trim_start_matches("/purge/").to_owned()
            }),
            Call::Keys => format!(
                "{} surrogate key{} (first `{}`)",
                keys.len(),
                if keys.len() == 1 { "" } else { "s" },
                keys.first().unwrap_or(&"")
            ),
            Call::All => format!("everything in service {}", self.account.service_id),
        };
        let id = decode::accepted(call, &response, &keys, &what)?;
        Ok(Accepted {
            handle: Handle(id),
            poll_after: None,
            warnings: vec![DONE_WHEN_ACCEPTED.to_owned()],
        })
    }

    fn redact(&self, request: &mut HttpRequest) {
        if let Some(value) = request.headers_mut().get_mut(KEY_HEADER) {
            *value = HeaderValue::from_static(REDACTED);
        }
    }
}

#[cfg(test)]
mod tests;
