//! [`Cloudflare`]: the cache purge codec behind [`purgekit_core::Provider`].

use std::time::SystemTime;

use purgekit_core::http::header::{AUTHORIZATION, CONTENT_TYPE};
use purgekit_core::http::{HeaderValue, Method};
use purgekit_core::{
    Accepted, Action, AuthProbe, Batch, BucketUnit, Capabilities, CompletionModel, Error, Handle,
    HttpRequest, HttpResponse, Item, Limits, Mapped, OptionKind, Options, Provider, REDACTED,
    Result, Target, TargetKind, TokenBucket,
};

use crate::config::{Account, CloudflareConfig};
use crate::decode::{self, Sent};
use crate::wire::{self, Field};

/// Why patterns are not sent.
const NO_WILDCARDS: &str = "Cloudflare purges URLs, cache tags, hosts and prefixes, with no \
                            wildcards: purge `prefix:https://host/dir/` instead";

/// What Cloudflare does where invalidation was asked.
const REMOVES: &str = "Cloudflare removes the objects (purge_cache) where invalidation was \
                       asked: they are not marked stale, the next request is a cache MISS \
                       fetched from the origin";

/// What Cloudflare says about completion.
const DONE_WHEN_ACCEPTED: &str = "Cloudflare has no status call: a purge is complete when \
                                  accepted (it reaches every data center in about 150 ms)";

/// The Cloudflare provider: one zone, one API token, its plan's limits.
///
/// ```
/// use std::sync::Arc;
/// use purgekit_core::{ProviderPurger, Purger};
/// use purgekit_cloudflare::{Cloudflare, CloudflareConfig};
/// let mut config = CloudflareConfig::new("023e105f4ecef8ad9ca31a8372d0c353");
/// config.api_token = Some("my-token".into());
/// let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("cf", Cloudflare::new(config)?));
/// # Ok::<(), purgekit_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Cloudflare {
    account: Account,
    /// `{endpoint}/client/v4/zones/{zone}/purge_cache`.
    url: String,
    /// `Bearer {token}`, built once.
    bearer: HeaderValue,
}

impl std::fmt::Debug for Cloudflare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloudflare")
            .field("endpoint", &self.account.endpoint)
            .field("zone_id", &self.account.zone_id)
            .field("api_token", &self.account.token)
            .finish()
    }
}

impl Cloudflare {
    /// Checks `config`; a token it does not hold is read from `CLOUDFLARE_API_TOKEN`.
    pub fn new(config: CloudflareConfig) -> Result<Self> {
        Self::with_env(config, |name| std::env::var(name).ok())
    }

    /// [`Cloudflare::new`] reading the environment through `env` (tests, embedders).
    pub fn with_env(
        config: CloudflareConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let account = Account::new(config, env)?;
        let url = format!(
            "{}/client/v4/zones/{}/purge_cache",
            account.endpoint, account.zone_id
        );
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", account.token.expose()))
            .map_err(|_| Error::config("api_token", "cannot be sent in a header"))?;
        bearer.set_sensitive(true);
        Ok(Cloudflare {
            account,
            url,
            bearer,
        })
    }

    fn item(field: Field, kind: TargetKind, value: String) -> Mapped {
        Mapped::Item(Item {
            kind,
            bytes: wire::value_bytes(&value),
            value,
            scope: field.name().to_owned(),
            wildcard: false,
        })
    }

    fn limit_of(&self, field: Field) -> (usize, &'static str) {
        match field {
            Field::Files => (self.account.files_per_request, "max_files_per_request"),
            Field::Everything => (1, "purge_everything"),
            _ => (self.account.items_per_request, "max_items_per_request"),
        }
    }
}

impl TryFrom<CloudflareConfig> for Cloudflare {
    type Error = Error;

    fn try_from(config: CloudflareConfig) -> Result<Self> {
        Cloudflare::new(config)
    }
}

fn field_of(batch: &Batch) -> Result<Field> {
    Field::from_scope(&batch.scope).ok_or_else(|| {
        Error::protocol(format!("`{}` is not a Cloudflare purge field", batch.scope))
    })
}

impl Provider for Cloudflare {
    fn kind(&self) -> &'static str {
        crate::KIND
    }

    fn account(&self) -> String {
        self.account.zone_id.clone()
    }

    fn endpoint(&self) -> String {
        self.account.endpoint.clone()
    }

    /// One field per request; the plan's per-request caps per field; the global API window;
    /// the request bucket tag, host, prefix and everything purges share and the URL bucket of
    /// single-file purges.
    fn limits(&self) -> Limits {
        let a = &self.account;
        let shared: Vec<String> = [
            Field::Tags,
            Field::Hosts,
            Field::Prefixes,
            Field::Everything,
        ]
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
        Limits {
            max_items: a.items_per_request,
            max_items_per_scope: vec![
                (Field::Files.name().to_owned(), a.files_per_request),
                (Field::Everything.name().to_owned(), 1),
            ],
            group_by_scope: true,
            rate: a.rate,
            buckets: vec![
                TokenBucket {
                    unit: BucketUnit::Requests,
                    scopes: shared,
                    burst: a.purge_bucket.0,
                    refill: a.purge_bucket.1,
                },
                TokenBucket {
                    unit: BucketUnit::Items,
                    scopes: vec![Field::Files.name().to_owned()],
                    burst: a.files_bucket.0,
                    refill: a.files_bucket.1,
                },
            ],
            max_in_flight: a.max_in_flight,
            ..Limits::default()
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            targets: vec![
                TargetKind::Url,
                TargetKind::Tag,
                TargetKind::Prefix,
                TargetKind::Host,
                TargetKind::Everything,
            ],
            options: vec![OptionKind::Delete],
        }
    }

    fn unsupported_reason(&self, kind: TargetKind) -> Option<String> {
        (kind == TargetKind::Pattern).then(|| NO_WILDCARDS.to_owned())
    }

    fn completion(&self) -> CompletionModel {
        CompletionModel::OnAcceptance
    }

    fn action_warning(&self, options: &Options) -> Option<String> {
        (options.action == Action::Invalidate).then(|| REMOVES.to_owned())
    }

    fn map(&self, target: &Target, _options: &Options) -> Result<Mapped> {
        Ok(match target.kind() {
            TargetKind::Url => Self::item(Field::Files, TargetKind::Url, target.value().to_owned()),
            TargetKind::Tag => {
                wire::check_tag(target.value())?;
                Self::item(Field::Tags, TargetKind::Tag, target.value().to_owned())
            }
            TargetKind::Host => {
                Self::item(Field::Hosts, TargetKind::Host, target.value().to_owned())
            }
            TargetKind::Prefix => {
                Self::item(Field::Prefixes, TargetKind::Prefix, wire::prefix(target)?)
            }
            TargetKind::Everything => {
                Self::item(Field::Everything, TargetKind::Everything, String::new())
            }
            TargetKind::Pattern => Mapped::Unsupported(NO_WILDCARDS.to_owned()),
        })
    }

    fn encode(&self, batch: &Batch, _options: &Options, _now: SystemTime) -> Result<HttpRequest> {
        let field = field_of(batch)?;
        let body = wire::body(
            field,
            batch.items.iter().map(|i| i.value.as_str()),
            batch.bytes,
        );
        purgekit_core::http::Request::builder()
            .method(Method::POST)
            .uri(&self.url)
            .header(AUTHORIZATION, self.bearer.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .map_err(|e| Error::protocol(format!("cannot build the Cloudflare request: {e}")))
    }

    /// `GET /client/v4/user/tokens/verify`: read-only, answered for a token of any permission.
    fn auth_probe(&self, _now: SystemTime) -> Result<AuthProbe> {
        let request = purgekit_core::http::Request::builder()
            .method(Method::GET)
            .uri(format!("{}{}", self.account.endpoint, wire::VERIFY_PATH))
            .header(AUTHORIZATION, self.bearer.clone())
            .body(Vec::new())
            .map_err(|e| Error::protocol(format!("cannot build the Cloudflare request: {e}")))?;
        Ok(AuthProbe::Request(Box::new(request)))
    }

    /// Accepted when Cloudflare says the token is `active`.
    fn decode_auth_probe(&self, response: HttpResponse) -> Result<()> {
        decode::verified(&response)
    }

    fn decode(&self, batch: &Batch, response: HttpResponse) -> Result<Accepted> {
        let field = field_of(batch)?;
        let sent = Sent {
            field: field.name(),
            count: batch.items.len(),
            limit: self.limit_of(field),
        };
        let id = decode::accepted(&response, &sent)?;
        Ok(Accepted {
            handle: Handle(id),
            poll_after: None,
            warnings: vec![DONE_WHEN_ACCEPTED.to_owned()],
        })
    }

    fn redact(&self, request: &mut HttpRequest) {
        if let Some(value) = request.headers_mut().get_mut(AUTHORIZATION) {
            *value = HeaderValue::from_static(REDACTED);
        }
    }
}

#[cfg(test)]
mod tests;
