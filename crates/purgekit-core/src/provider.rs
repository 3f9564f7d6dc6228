//! The provider SPI: a provider is a codec, not a client.
//!
//! It maps targets to items, declares its [`Limits`] and [`Capabilities`] as data, and encodes
//! and decodes HTTP messages as pure functions of their inputs (time is a parameter). It never
//! sleeps, retries or opens a socket: the planner and the engine in this crate do that, the same
//! way for every provider.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::limits::{Capabilities, Limits};
use crate::request::{Options, Target, TargetKind};

/// An HTTP request as a provider encodes it.
pub type HttpRequest = http::Request<Vec<u8>>;
/// An HTTP response as a provider decodes it.
pub type HttpResponse = http::Response<Vec<u8>>;

/// One unit a provider purges: a Level 3 path, a Limelight pattern or tag, an Adobe URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Item {
    /// The kind of target it came from, or [`TargetKind::Pattern`] where a wider target
    /// (`prefix:`, `host:`) is sent as the provider's wildcard pattern.
    pub kind: TargetKind,
    /// The value sent on the wire (already in the provider's form: a path, an origin pattern…).
    pub value: String,
    /// Items with different scopes never share a request when [`Limits::group_by_scope`] is set.
    pub scope: String,
    /// Whether the item is a wildcard (alone in its request when [`Limits::wildcard_alone`]).
    pub wildcard: bool,
    /// Bytes this item adds to the request body, separators included.
    pub bytes: usize,
}

/// What a provider makes of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    /// Purge this item.
    Item(Item),
    /// The provider cannot purge this target; the reason goes in the report and nothing is sent.
    Unsupported(String),
}

/// An opaque reference to an accepted purge, as the provider's status call needs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Handle(pub String);

impl Handle {
    /// The handle's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A provider's answer to an accepted purge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The handle to poll.
    pub handle: Handle,
    /// Wait at least this long before the first status poll (Adobe's `estimatedSeconds`).
    pub poll_after: Option<Duration>,
    /// Anything worth a warning on the rows (e.g. "2 warnings reported by the provider").
    pub warnings: Vec<String>,
}

/// Where a purge stands at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Progress {
    /// Accepted and waiting or running; `percent` when the provider says.
    Pending {
        /// 0–100, when known.
        percent: Option<u8>,
    },
    /// Finished everywhere.
    Completed,
    /// The provider gave up on it.
    Failed,
}

/// The answer to a status query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The handle asked about.
    pub handle: Handle,
    /// Where it stands.
    pub progress: Progress,
    /// The provider's own words for the state (e.g. `in_progress`, `75%`).
    pub detail: String,
    /// When to poll again, if the provider hints.
    #[serde(skip)]
    pub poll_after: Option<Duration>,
}

/// How a provider learns that an accepted purge is complete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletionModel {
    /// A status call ([`Provider::encode_status`]) tells; the engine polls it.
    #[default]
    Polled,
    /// The API has no status call: a purge counts as complete once [`Accepted::poll_after`]
    /// (the provider's own estimate) has passed. The provider's accepted warnings must say so.
    Estimated,
    /// The API has no status call and a purge is done when the provider accepts it (Fastly,
    /// Cloudflare: the 200 answers a purge that reaches the network within a fraction of a
    /// second). With `wait`, an accepted batch is `completed` at once: nothing is polled, no
    /// time is waited. The provider's accepted warnings must say so.
    OnAcceptance,
}

/// Why provider `kind`, whose completion is `model`, answers no status query.
fn no_status_call(kind: &str, model: CompletionModel) -> crate::Error {
    let known = match model {
        CompletionModel::Polled => {
            return crate::Error::protocol(format!(
                "{kind} polls for completion but implements no status call"
            ));
        }
        CompletionModel::Estimated => "completion is the provider's estimate, waited out",
        CompletionModel::OnAcceptance => "a purge is complete when accepted",
    };
    crate::Error::Unsupported {
        reason: format!("{kind} has no status call: {known}"),
    }
}

/// Items that go out in one request, as [`Provider::encode`] takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Batch {
    /// Which run and which batch of it this is: the idempotency key a provider may send
    /// (CloudFront's `CallerReference`). See [`BatchId`].
    pub id: BatchId,
    /// The scope shared by every item (empty when the provider has none).
    pub scope: String,
    /// The items, in input order.
    pub items: Vec<Item>,
    /// Body bytes, overhead included.
    pub bytes: usize,
}

/// One purge run: random, drawn once by the engine when a purge starts
/// ([`crate::ProviderPurger`]), so no two runs share one. `RunId::default()` (zero) is the run
/// of batches made outside a purge: `plan` previews and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct RunId(pub u128);

impl RunId {
    /// A fresh random run id.
    pub fn random() -> Self {
        RunId(fastrand::u128(..))
    }
}

impl std::fmt::Display for RunId {
    /// 32 lowercase hex digits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// A batch's identity: its run and its index in the run's plan.
///
/// This is the idempotency key any provider may send with a purge: it is the same for every
/// attempt of one batch (a retry after a lost answer carries it again, so the provider can
/// answer with what it already did) and differs between runs (purging the same paths again in
/// a later run is a new purge). Its text form is `RUN-INDEX`, 32 hex digits, `-`, the index in
/// decimal. (The run journal will persist it, so that a resumed run keeps it.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct BatchId {
    /// The run.
    pub run: RunId,
    /// The batch's index in the run's plan.
    pub index: usize,
}

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.run, self.index)
    }
}

/// A CDN's purge API, as pure functions. See the module docs.
///
/// A provider crate implements this; [`crate::ProviderPurger`] turns it into a [`crate::Purger`].
pub trait Provider: Send + Sync + 'static {
    /// The provider kind, e.g. `level3`.
    fn kind(&self) -> &'static str;

    /// A non-secret identity of the account (key id, shortname, company handle). Purgers with the
    /// same kind and account share one rate limiter.
    fn account(&self) -> String;

    /// The base URL requests go to (`scheme://host[:port]`).
    fn endpoint(&self) -> String;

    /// The provider's limits (documented defaults, or the configured override).
    fn limits(&self) -> Limits;

    /// Target kinds and options the provider supports natively.
    fn capabilities(&self) -> Capabilities;

    /// Why targets of `kind`, a kind outside [`Capabilities::targets`], are not purged: the
    /// reason on their `unsupported` rows. `None` (the default) gives the planner's own
    /// ("{kind} does not support {target kind} targets").
    fn unsupported_reason(&self, kind: TargetKind) -> Option<String> {
        let _ = kind;
        None
    }

    /// How completion is known: polled by default; [`CompletionModel::Estimated`] for an API
    /// with no status call (the engine then waits out the estimate instead of polling).
    fn completion(&self) -> CompletionModel {
        CompletionModel::Polled
    }

    /// What the provider does differently from what `options` ask, for a warning on every
    /// planned row (Cloudflare removes objects where invalidation was asked). `None` (the
    /// default): it does what is asked.
    fn action_warning(&self, options: &Options) -> Option<String> {
        let _ = options;
        None
    }

    /// Whether [`Provider::encode`] sends the batch's [`Batch::id`] as an idempotency key the
    /// provider honours (CloudFront's `CallerReference`): a batch sent again after an
    /// interruption is then purged once. `false` by default.
    fn sends_idempotency_key(&self) -> bool {
        false
    }

    /// Checks provider-specific rules on the options (e.g. Level 3's 250-character
    /// notification list). Called once per request before any target is mapped.
    fn check_options(&self, options: &Options) -> Result<()> {
        let _ = options;
        Ok(())
    }

    /// Maps a target of a supported kind to the item to send. Errors are input errors that
    /// stop the whole request before anything is sent (name the target in them).
    fn map(&self, target: &Target, options: &Options) -> Result<Mapped>;

    /// Body bytes of a request with no items (envelope, option fields), for the byte limit.
    fn body_overhead(&self, options: &Options) -> usize {
        let _ = options;
        0
    }

    /// Encodes and signs the request for one batch, at time `now`.
    fn encode(&self, batch: &Batch, options: &Options, now: SystemTime) -> Result<HttpRequest>;

    /// Decodes the response to [`Provider::encode`]'s request, classifying any error.
    fn decode(&self, batch: &Batch, response: HttpResponse) -> Result<Accepted>;

    /// Decodes the response to a batch at a shared parent scope (see
    /// [`crate::SharedScope`]): the [`Accepted`] of each scope, keyed by scope, so that every
    /// row gets its own scope's handle. The engine checks that every scope of the batch has
    /// one. The default refuses: a provider declaring [`Limits::shared_scope`] implements it.
    fn decode_shared(
        &self,
        batch: &Batch,
        response: HttpResponse,
    ) -> Result<Vec<(String, Accepted)>> {
        let _ = response;
        Err(crate::Error::protocol(format!(
            "{} cannot decode a request at the shared scope `{}`",
            self.kind(),
            batch.scope
        )))
    }

    /// Encodes and signs a status query for `handle`, at time `now`.
    ///
    /// Every provider whose [`Provider::completion`] is [`CompletionModel::Polled`] implements
    /// it. The default, for an API with no status call, is [`crate::Error::Unsupported`] saying
    /// how completion is known instead (and a protocol error for a polled provider that forgot
    /// it).
    fn encode_status(&self, handle: &Handle, now: SystemTime) -> Result<HttpRequest> {
        let _ = (handle, now);
        Err(no_status_call(self.kind(), self.completion()))
    }

    /// Decodes the response to [`Provider::encode_status`]'s request; the default as
    /// [`Provider::encode_status`]'s.
    fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
        let _ = (handle, response);
        Err(no_status_call(self.kind(), self.completion()))
    }

    /// Replaces every secret in an encoded request (signatures, tokens, passwords) with
    /// [`REDACTED`], for `plan` output and logs.
    fn redact(&self, request: &mut HttpRequest);

    /// One read-only authenticated call that checks the account's credentials, signed at time
    /// `now` (`purgekit config check --auth`): it must change nothing at the provider (a list or
    /// status query). The engine sends it like any other request (the run's deadline, the body
    /// cap, no redirect) and reads the answer with [`Provider::decode_auth_probe`]. Default:
    /// [`AuthProbe::Unavailable`], for a provider whose API has no such call.
    fn auth_probe(&self, now: SystemTime) -> Result<AuthProbe> {
        let _ = now;
        Ok(AuthProbe::Unavailable(format!(
            "purgekit knows no read-only call of the {} API",
            self.kind()
        )))
    }

    /// Reads the answer to [`Provider::auth_probe`]'s request: `Ok` when the credentials were
    /// accepted, [`crate::Error::Auth`] when they were refused, any other error (classified as
    /// [`Provider::decode`] would) when the answer cannot tell. Default: any 2xx is accepted,
    /// 401 and 403 are refused.
    fn decode_auth_probe(&self, response: HttpResponse) -> Result<()> {
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if matches!(status.as_u16(), 401 | 403) {
            Err(crate::Error::auth(format!("HTTP {status}")))
        } else {
            Err(crate::Error::protocol(format!(
                "HTTP {status} to the credentials check"
            )))
        }
    }
}

/// What [`Provider::auth_probe`] offers to check an account's credentials.
#[derive(Debug)]
pub enum AuthProbe {
    /// Send this request (read-only, signed like any other).
    Request(Box<HttpRequest>),
    /// The API has no read-only authenticated call: why, for the user (Akamai Fast Purge: every
    /// call purges).
    Unavailable(String),
}

/// What [`Provider::redact`] writes in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// A secret string: compared and used normally, never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for signing. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_debug() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn with_no_status_call_the_default_says_how_completion_is_known() {
        let unsupported = |model| match no_status_call("cdn", model) {
            crate::Error::Unsupported { reason } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            unsupported(CompletionModel::OnAcceptance),
            "cdn has no status call: a purge is complete when accepted"
        );
        assert!(unsupported(CompletionModel::Estimated).contains("estimate"));
        // A polled provider must implement it: its absence is a bug, not a limitation.
        assert!(matches!(
            no_status_call("cdn", CompletionModel::Polled),
            crate::Error::Protocol { .. }
        ));
    }
}
