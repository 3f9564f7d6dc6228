//! [`Akamai`]: the Fast Purge v3 codec behind [`purgekit_core::Provider`].

use std::time::{Duration, SystemTime};

use percent_encoding::{CONTROLS, utf8_percent_encode};
use purgekit_core::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use purgekit_core::http::{HeaderValue, Method};
use purgekit_core::{
    Accepted, AuthProbe, Batch, BucketUnit, Budget, Capabilities, CompletionModel, Error, Handle,
    HttpRequest, HttpResponse, Item, Limits, Mapped, OptionKind, Options, Provider, REDACTED,
    Result, Target, TargetKind, TokenBucket,
};

use crate::config::{Account, AkamaiConfig};
use crate::decode;
use crate::sign::{self, Credentials, Signable};
use crate::wire::{self, MAX_BODY_BYTES, ObjectType};

/// Akamai's token buckets, shared by every API client of the account: requests (100, refilled
/// 50 a second), URL/ARL objects (10,000, 200 a second), cache tags (5,000, 500 a minute) and
/// CP codes (300, 30 a minute). A request costs one request token plus one object token per
/// object of its type.
pub fn default_buckets() -> Vec<TokenBucket> {
    let bucket = |unit, scope: Option<ObjectType>, burst, refill| TokenBucket {
        unit,
        scopes: scope.map(|t| t.as_str().to_owned()).into_iter().collect(),
        burst,
        refill,
    };
    vec![
        bucket(
            BucketUnit::Requests,
            None,
            100,
            Budget::new(50, Duration::from_secs(1)),
        ),
        bucket(
            BucketUnit::Items,
            Some(ObjectType::Url),
            10_000,
            Budget::new(200, Duration::from_secs(1)),
        ),
        bucket(
            BucketUnit::Items,
            Some(ObjectType::Tag),
            5_000,
            Budget::per_minute(500),
        ),
        bucket(
            BucketUnit::Items,
            Some(ObjectType::Cpcode),
            300,
            Budget::per_minute(30),
        ),
    ]
}

/// Most objects in one request: the smallest object bucket a request can fill by bytes (a
/// request with more tags than the 5,000-token tag bucket could never be accepted). URLs hit
/// the 50,000-byte limit long before; CP codes are capped at 300 by the configuration.
pub const MAX_OBJECTS_PER_REQUEST: usize = 5_000;

/// Why wildcard patterns are not sent.
const NO_WILDCARDS: &str = "Akamai Fast Purge has no wildcards: purge the exact URLs, a cache \
                            tag, or everything (the configured CP codes)";

/// The Akamai Fast Purge v3 provider: one API client (EdgeGrid credentials) on one network.
///
/// ```
/// use std::sync::Arc;
/// use purgekit_core::{ProviderPurger, Purger};
/// use purgekit_akamai::{Akamai, AkamaiConfig};
/// let config = AkamaiConfig::new("akab-h.purge.akamaiapis.net", "akab-c", "secret", "akab-a");
/// let purger: Arc<dyn Purger> = Arc::new(ProviderPurger::new("akamai", Akamai::new(config)?));
/// # Ok::<(), purgekit_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Akamai {
    account: Account,
    buckets: Vec<TokenBucket>,
}

impl std::fmt::Debug for Akamai {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Akamai")
            .field("endpoint", &self.account.endpoint)
            .field("client_token", &self.account.client_token)
            .field("client_secret", &REDACTED)
            .field("access_token", &self.account.access_token)
            .field("network", &self.account.network)
            .field("cpcodes", &self.account.cpcodes)
            .finish()
    }
}

impl Akamai {
    /// Checks `config` (reading its `.edgerc` if it names one) and builds the provider. Every
    /// problem is an [`Error::Config`] naming the key; the secret is never echoed.
    pub fn new(config: AkamaiConfig) -> Result<Self> {
        let buckets = config.buckets.apply(default_buckets())?;
        let account = Account::new(config)?;
        let cpcode_burst = buckets
            .iter()
            .find(|b| b.scopes == [ObjectType::Cpcode.as_str()])
            .map_or(u32::MAX, |b| b.burst);
        if account.cpcodes.len() > cpcode_burst as usize {
            return Err(Error::config(
                "cpcodes",
                format!(
                    "{} CP codes: `everything` sends them in one request, which the CP code \
                     bucket (burst {cpcode_burst}) could never admit",
                    account.cpcodes.len()
                ),
            ));
        }
        Ok(Akamai { account, buckets })
    }

    /// The same provider paced under `buckets` instead of [`default_buckets`] (a contract with
    /// other limits, or an emulator running them faster).
    pub fn with_buckets(mut self, buckets: Vec<TokenBucket>) -> Self {
        self.buckets = buckets;
        self
    }

    /// Signs a POST of `body` to `path` at `now` with `nonce`: the pure core of
    /// [`Provider::encode`], for tests and vectors.
    pub fn signed_post(
        &self,
        path: &str,
        body: Vec<u8>,
        now: SystemTime,
        nonce: &str,
    ) -> Result<HttpRequest> {
        let a = &self.account;
        let credentials = Credentials {
            client_token: &a.client_token,
            client_secret: a.client_secret.expose(),
            access_token: &a.access_token,
            max_body: a.max_body,
        };
        let request = Signable {
            method: "POST",
            scheme: &a.scheme,
            host: &a.host,
            path_and_query: path,
            headers: &[],
            body: &body,
        };
        let authorization =
            sign::authorization_for(&credentials, &request, &[], &sign::timestamp(now), nonce);
        purgekit_core::http::Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", a.endpoint))
            .header(HOST, &a.host)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, authorization)
            .body(body)
            .map_err(|e| Error::invalid(path, format!("not a valid request ({e})")))
    }

    /// `bucket` as the planner's items cost it. `everything` is one item carrying every
    /// configured CP code (one request; duplicates merge into it), so the CP code bucket is
    /// declared in units of that item: `n` CP codes per token, burst `burst / n`, refill
    /// `amount` per `n × per`. One item then costs exactly its `n` CP code tokens.
    fn per_item(&self, bucket: &TokenBucket) -> TokenBucket {
        let n = u32::try_from(self.account.cpcodes.len())
            .unwrap_or(u32::MAX)
            .max(1);
        if n == 1 || bucket.scopes != [ObjectType::Cpcode.as_str()] {
            return bucket.clone();
        }
        TokenBucket {
            burst: (bucket.burst / n).max(1),
            refill: Budget::new(bucket.refill.amount, bucket.refill.per.saturating_mul(n)),
            ..bucket.clone()
        }
    }

    fn item(&self, object_type: ObjectType, kind: TargetKind, value: String) -> Mapped {
        Mapped::Item(Item {
            kind,
            bytes: wire::object_bytes(object_type, &value),
            value,
            scope: object_type.as_str().to_owned(),
            wildcard: false,
        })
    }
}

/// What Fast Purge says about completion.
const ESTIMATE_ONLY: &str = "Fast Purge v3 has no status call: completion is Akamai's estimate \
                             (estimatedSeconds after acceptance), not a report";

impl Provider for Akamai {
    fn kind(&self) -> &'static str {
        "akamai"
    }

    fn account(&self) -> String {
        self.account.host.clone()
    }

    fn endpoint(&self) -> String {
        self.account.endpoint.clone()
    }

    fn limits(&self) -> Limits {
        Limits {
            max_items: MAX_OBJECTS_PER_REQUEST,
            max_body_bytes: Some(MAX_BODY_BYTES),
            group_by_scope: true,
            buckets: self.buckets.iter().map(|b| self.per_item(b)).collect(),
            // One at a time: the server then sees requests in the order they were paced. Token
            // buckets are order-sensitive (a request paced later but arriving first can leave a
            // full bucket short for the earlier one); and at 50,000 bytes a request, one
            // request in flight outpaces the 200-URL-a-second refill many times over.
            max_in_flight: 1,
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
        CompletionModel::Estimated
    }

    fn map(&self, target: &Target, _options: &Options) -> Result<Mapped> {
        Ok(match target.kind() {
            // Fast Purge refuses non-ASCII URLs (400 "bad URL"): send the same URL
            // percent-encoded, as its URI form.
            TargetKind::Url => self.item(
                ObjectType::Url,
                TargetKind::Url,
                utf8_percent_encode(target.value(), CONTROLS).to_string(),
            ),
            TargetKind::Tag => {
                self.item(ObjectType::Tag, TargetKind::Tag, target.value().to_owned())
            }
            TargetKind::Pattern | TargetKind::Prefix | TargetKind::Host => {
                Mapped::Unsupported(NO_WILDCARDS.to_owned())
            }
            // Every configured CP code in one `/cpcode/` request (see `per_item`).
            TargetKind::Everything => {
                if self.account.cpcodes.is_empty() {
                    return Err(Error::config(
                        "cpcodes",
                        "`everything` purges the CP codes listed in `cpcodes`, and none is \
                         set: list them (`cpcodes = [12345]`), or purge URLs or cache tags",
                    ));
                }
                let codes: Vec<String> = self.account.cpcodes.iter().map(u32::to_string).collect();
                self.item(ObjectType::Cpcode, TargetKind::Everything, codes.join(","))
            }
        })
    }

    fn body_overhead(&self, _options: &Options) -> usize {
        wire::ENVELOPE_BYTES
    }

    fn encode(&self, batch: &Batch, options: &Options, now: SystemTime) -> Result<HttpRequest> {
        let object_type = ObjectType::from_scope(&batch.scope).ok_or_else(|| {
            Error::protocol(format!("`{}` is not a Fast Purge object type", batch.scope))
        })?;
        let path = wire::path(options.action, object_type, self.account.network);
        self.signed_post(
            &path,
            wire::encode(object_type, &batch.items),
            now,
            &sign::nonce(),
        )
    }

    fn decode(&self, _batch: &Batch, response: HttpResponse) -> Result<Accepted> {
        let body = decode::accepted(&response)?;
        Ok(Accepted {
            handle: Handle(body.purge_id),
            poll_after: body.estimated_seconds.map(Duration::from_secs),
            warnings: vec![ESTIMATE_ONLY.to_owned()],
        })
    }

    /// None: every call of the Fast Purge v3 API purgekit implements purges
    /// (`rate-limit-status` appears only in Akamai's newest OpenAPI, with an example body copied
    /// from a purge's, and is not relied on).
    fn auth_probe(&self, _now: SystemTime) -> Result<AuthProbe> {
        Ok(AuthProbe::Unavailable(
            "Fast Purge v3 has no read-only call: every endpoint purges; the first purge \
             verifies the credentials"
                .into(),
        ))
    }

    fn redact(&self, request: &mut HttpRequest) {
        if let Some(value) = request.headers_mut().get_mut(AUTHORIZATION) {
            *value = HeaderValue::from_static(REDACTED);
        }
    }
}

#[cfg(test)]
mod tests;
