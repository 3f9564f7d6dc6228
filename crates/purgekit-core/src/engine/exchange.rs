//! One request to a provider, paced, timed out and retried: the engine's only sending path,
//! used for purge batches and status polls alike.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use super::clock;
use super::policy::EngineConfig;
use super::rate::{AccountLimiter, Cost};
use super::transport::Transport;
use crate::error::{Error, Result};
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
}

/// Whether an exchange may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retries {
    /// Up to [`crate::RetryPolicy::max_attempts`], within its deadline.
    Policy,
    /// One attempt (a status poll: the next poll is the retry).
    None,
}

/// Which batch an exchange is for (progress events are sent for batches only).
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
    /// Cancellation before the first attempt gives [`Error::Cancelled`]; between attempts it
    /// gives the last error.
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
        loop {
            let Some(place) = self.limiter.in_flight(cancel).await else {
                return Exchanged {
                    result: Err(Error::Cancelled),
                    attempts,
                };
            };
            if !self.limiter.pace(cost, cancel).await {
                return Exchanged {
                    result: Err(Error::Cancelled),
                    attempts,
                };
            }
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
            self.limiter.answered(cost).await;
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
            let give_up = !error.is_retryable()
                || attempts >= max_attempts
                || clock::after(Instant::now(), delay) > clock::after(started, policy.deadline)
                || cancel.is_cancelled();
            if give_up {
                return Exchanged {
                    result: Err(error),
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
        }
    }

    async fn send_once(&self, request: HttpRequest) -> Result<HttpResponse> {
        let timeout = self.config.attempt_timeout;
        match tokio::time::timeout(timeout, self.transport.send(request)).await {
            Ok(result) => result,
            Err(_) => Err(Error::transient(format!(
                "no complete response within {:.3}s",
                timeout.as_secs_f64()
            ))),
        }
    }
}
