//! One request to a provider, paced, timed out and retried under the run's deadline: the
//! engine's only sending path, used for purge batches and status polls alike. It also applies
//! the rules every provider shares: a response body over [`crate::Limits::max_response_bytes`]
//! and a redirect (3xx, never followed) fail the attempt, unretried.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use super::clock::{self, human};
use super::policy::EngineConfig;
use super::rate::{AccountLimiter, Cost, Paced};
use super::transport::Transport;
use crate::error::{Error, Result, snippet};
use crate::provider::{HttpRequest, HttpResponse};
use crate::purger::{Event, PurgeContext};

/// What an exchange needs besides its request: where to send, how to pace and retry, whom to
/// tell.
#[derive(Clone)]
pub(crate) struct Sender {
    pub(crate) name: String,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) limiter: Arc<AccountLimiter>,
    pub(crate) config: Arc<EngineConfig>,
    pub(crate) context: PurgeContext,
    /// The run's deadline: no wait ends past it.
    pub(crate) deadline: Instant,
    /// The provider's [`crate::Limits::max_response_bytes`].
    pub(crate) max_response_bytes: usize,
}

/// Whether an exchange may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retries {
    /// Up to [`crate::RetryPolicy::max_attempts`], within its deadline.
    Policy,
    /// One attempt (a status poll: the next poll is the retry).
    None,
}

/// Which batch an exchange is for (a status poll's has none: it sends no batch events).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchRef {
    pub(crate) index: usize,
    pub(crate) items: usize,
}

/// How an exchange ended, with the HTTP attempts it took.
pub(crate) struct Exchanged<T> {
    pub(crate) result: Result<T>,
    pub(crate) attempts: u32,
}

impl Sender {
    /// Sends the request `encode` builds (afresh for every attempt, with the current time, since
    /// signatures expire) and decodes the answer with `decode`. Retryable errors are retried
    /// under [`EngineConfig::retry`], with at most `max_attempts` attempts.
    ///
    /// Each attempt takes one of the account's in-flight places, then its turn under the rate
    /// limits (so the instant recorded is the instant sent), and gives the place back once
    /// answered: a batch backing off between attempts does not hold up the account's other
    /// requests.
    ///
    /// Nothing waits past [`Sender::deadline`]: an attempt is cut off at it, and a wait (for
    /// the account, or before a retry) that would end past it is not started; the exchange
    /// ends with [`Error::Deadline`] saying what it would have waited for.
    ///
    /// Cancellation gives [`Error::Cancelled`].
    pub(crate) async fn exchange<T>(
        &self,
        cost: Cost<'_>,
        batch: Option<BatchRef>,
        retries: Retries,
        encode: impl Fn(SystemTime) -> Result<HttpRequest>,
        decode: impl Fn(HttpResponse) -> Result<T>,
    ) -> Exchanged<T> {
        let policy = &self.config.retry;
        let max_attempts = match retries {
            Retries::Policy => policy.max_attempts,
            Retries::None => 1,
        };
        let cancel = &self.context.cancel;
        let mut attempts = 0u32;
        let mut first_attempt: Option<Instant> = None;
        let mut last: Option<Error> = None;
        loop {
            // Journaled as being sent before it is paced: a crash from here on leaves it
            // `sending`, and resume sends it again. (Before pacing, so no write stands between
            // the instant the rate limiter records and the instant the request leaves.)
            if let Some(b) = batch
                && let Some(log) = &self.context.journal
                && let Err(error) = log.sending(&self.name, b.index, attempts + 1).await
            {
                return Exchanged {
                    result: Err(error),
                    attempts,
                };
            }
            let paced = match self.limiter.in_flight(cancel, self.deadline).await {
                Ok(place) => {
                    let asked = Instant::now();
                    let paced = self.limiter.pace(cost, cancel, self.deadline).await;
                    let waited = asked.elapsed();
                    if !waited.is_zero() {
                        self.context.emit(Event::RateWaited {
                            provider: self.name.clone(),
                            batch: batch.map(|b| b.index),
                            waited,
                        });
                    }
                    paced.map(|started| (place, started))
                }
                Err(stop) => Err(stop),
            };
            let (place, recorded) = match paced {
                Ok(paced) => paced,
                Err(stop) => {
                    return Exchanged {
                        result: Err(stopped(stop, last)),
                        attempts,
                    };
                }
            };
            let started = *first_attempt.get_or_insert_with(Instant::now);
            let request = match encode(SystemTime::now()) {
                Ok(request) => request,
                Err(error) => {
                    return Exchanged {
                        result: Err(error),
                        attempts,
                    };
                }
            };
            attempts += 1;
            if let Some(b) = batch {
                self.context.emit(Event::Sent {
                    provider: self.name.clone(),
                    batch: b.index,
                    attempt: attempts,
                });
            }
            let answer = self.send_once(request).await;
            self.limiter.answered(cost, recorded).await;
            drop(place);
            let error = match answer.and_then(&decode) {
                Ok(value) => {
                    return Exchanged {
                        result: Ok(value),
                        attempts,
                    };
                }
                Err(error) => error,
            };
            if matches!(error, Error::RateLimited { .. })
                && let Some(wait) = error
                    .retry_after()
                    .or_else(|| self.limiter.rejection_wait())
            {
                self.limiter.penalize(wait);
            }
            let delay = error
                .retry_after()
                .unwrap_or_else(|| policy.jittered(attempts, fastrand::f64()));
            if !error.is_retryable() || attempts >= max_attempts || cancel.is_cancelled() {
                return Exchanged {
                    result: Err(error),
                    attempts,
                };
            }
            let resume = clock::after(Instant::now(), delay);
            let limit = if resume > self.deadline {
                Some("the run's deadline")
            } else if resume > clock::after(started, policy.deadline) {
                Some("the retry deadline")
            } else {
                None
            };
            if let Some(limit) = limit {
                let wait = match error.retry_after() {
                    Some(after) => format!("the provider asked to wait {}", human(after)),
                    None => format!("the next attempt would be in {}", human(delay)),
                };
                return Exchanged {
                    result: Err(Error::deadline(format!(
                        "{error}; not retried: {wait}, past {limit}"
                    ))),
                    attempts,
                };
            }
            if let Some(b) = batch {
                self.context.emit(Event::Retrying {
                    provider: self.name.clone(),
                    batch: b.index,
                    delay,
                    error: error.to_string(),
                });
            }
            tracing::debug!(provider = %self.name, attempts, ?delay, %error, "retrying");
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Exchanged { result: Err(error), attempts },
                _ = tokio::time::sleep(delay) => {}
            }
            last = Some(error);
        }
    }

    /// One attempt, cut off at [`EngineConfig::attempt_timeout`] or the run's deadline; the
    /// response checked against the rules every provider shares.
    async fn send_once(&self, request: HttpRequest) -> Result<HttpResponse> {
        let now = Instant::now();
        let left = self.deadline.saturating_duration_since(now);
        let timeout = self.config.attempt_timeout;
        let sent = self.transport.send(request, self.max_response_bytes);
        let response = match tokio::time::timeout(timeout.min(left), sent).await {
            Ok(result) => result?,
            Err(_) if left <= timeout => {
                return Err(Error::deadline(format!(
                    "no complete response before the run's deadline ({} into the attempt)",
                    human(now.elapsed())
                )));
            }
            Err(_) => {
                return Err(Error::transient(format!(
                    "no complete response within {:.3}s",
                    timeout.as_secs_f64()
                )));
            }
        };
        check_response(response, self.max_response_bytes)
    }
}

/// The error of an exchange that stopped waiting for the account (after `last`, if any).
fn stopped(stop: Paced, last: Option<Error>) -> Error {
    let why = match stop {
        Paced::Cancelled => return Error::Cancelled,
        Paced::Deadline { ready: Some(at) } => format!(
            "the account's rate limits allow the next request in {}, past the run's deadline",
            human(at.saturating_duration_since(Instant::now()))
        ),
        Paced::Deadline { ready: None } => {
            "the run's deadline came while waiting for the account".to_owned()
        }
        Paced::Store(error) => return error,
    };
    Error::deadline(match last {
        Some(error) => format!("{error}; not retried: {why}"),
        None => format!("not sent: {why}"),
    })
}

/// The rules for every provider's responses, before its decoder sees them: no redirect (the
/// endpoint is the only host credentials go to), no body over `max_body` bytes.
pub(crate) fn check_response(response: HttpResponse, max_body: usize) -> Result<HttpResponse> {
    let status = response.status();
    if status.is_redirection() {
        let location = response.headers().get(http::header::LOCATION).map_or_else(
            || "no Location".to_owned(),
            |l| format!("Location `{}`", snippet(l.as_bytes())),
        );
        return Err(Error::protocol(format!(
            "the provider answered HTTP {} ({location}); redirects are never followed: check the endpoint",
            status.as_u16()
        )));
    }
    if response.body().len() > max_body {
        return Err(response_too_large(max_body));
    }
    Ok(response)
}

/// The error for a response body over the cap.
pub(crate) fn response_too_large(max_body: usize) -> Error {
    Error::protocol(format!("response larger than {max_body} bytes"))
}
