//! The service's Prometheus metrics (`GET /metrics`), through `prometheus-client`. Labels are
//! provider names, provider accounts (`kind/account`, non-secret), row states, routes and
//! status codes: never a token or a target.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use purgekit::{Event, Report};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    pub provider: String,
}

/// A provider account, `kind/account` (a non-secret identity: a key id, a shortname).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountLabel {
    pub account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RowLabel {
    pub provider: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// Every metric, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    pub submitted: Counter,
    pub rows: Family<RowLabel, Counter>,
    pub requests_sent: Family<ProviderLabel, Counter>,
    pub rejections: Family<ProviderLabel, Counter>,
    pub retries: Family<ProviderLabel, Counter>,
    pub queued_runs: Family<AccountLabel, Gauge>,
    pub oldest_queued: Family<AccountLabel, Gauge<f64, AtomicU64>>,
    pub latency: Family<RouteLabel, Histogram>,
    pub coalesced: Family<ProviderLabel, Counter>,
    pub rate_waits: Family<ProviderLabel, Counter<f64, AtomicU64>>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("purgekit");
        let submitted = Counter::default();
        registry.register(
            "purges_submitted",
            "Purges accepted by POST /v1/purges (a repeated Idempotency-Key not counted)",
            submitted.clone(),
        );
        let rows = Family::<RowLabel, Counter>::default();
        registry.register(
            "rows",
            "Report rows of the runs this instance finished, by provider and final state",
            rows.clone(),
        );
        let requests_sent = Family::<ProviderLabel, Counter>::default();
        registry.register(
            "provider_requests",
            "Purge requests sent to a provider (every attempt)",
            requests_sent.clone(),
        );
        let rejections = Family::<ProviderLabel, Counter>::default();
        registry.register(
            "provider_rejections",
            "Answers by which a provider refused a request for its rate (429, or 503 asking to \
             slow down)",
            rejections.clone(),
        );
        let retries = Family::<ProviderLabel, Counter>::default();
        registry.register(
            "provider_retries",
            "Batches sent again after a failed attempt",
            retries.clone(),
        );
        let queued_runs = Family::<AccountLabel, Gauge>::default();
        registry.register(
            "queued_runs",
            "Runs with work waiting for a worker, by provider account (read from the journal at \
             each scrape)",
            queued_runs.clone(),
        );
        let oldest_queued = Family::<AccountLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "oldest_queued_age_seconds",
            "How long the oldest run with work waiting for a worker has waited, by provider \
             account",
            oldest_queued.clone(),
        );
        let latency = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an API request, by method, route and status",
            latency.clone(),
        );
        let coalesced = Family::<ProviderLabel, Counter>::default();
        registry.register(
            "targets_coalesced",
            "Rows purged with another run's batch: the same targets were still queued there \
             (the journal's dedup across runs), so they were sent once",
            coalesced.clone(),
        );
        let rate_waits = Family::<ProviderLabel, Counter<f64, AtomicU64>>::default();
        registry.register(
            "rate_limit_wait_seconds",
            "Time requests waited for their turn under their account's rate limits (with the \
             journal's shared schedules, also the claim of the turn in the journal)",
            rate_waits.clone(),
        );
        Metrics {
            registry,
            rate_waits,
            coalesced,
            submitted,
            rows,
            requests_sent,
            rejections,
            retries,
            queued_runs,
            oldest_queued,
            latency,
        }
    }

    /// Counts an engine event.
    pub fn event(&self, event: &Event) {
        let label = |provider: &str| ProviderLabel {
            provider: provider.to_owned(),
        };
        match event {
            Event::Sent { provider, .. } => {
                self.requests_sent.get_or_create(&label(provider)).inc();
            }
            Event::Retrying {
                provider, error, ..
            } => {
                self.retries.get_or_create(&label(provider)).inc();
                if is_rejection(error) {
                    self.rejections.get_or_create(&label(provider)).inc();
                }
            }
            Event::Failed {
                provider, error, ..
            } if is_rejection(error) => {
                self.rejections.get_or_create(&label(provider)).inc();
            }
            Event::RateWaited {
                provider, waited, ..
            } => {
                self.rate_waits
                    .get_or_create(&label(provider))
                    .inc_by(waited.as_secs_f64());
            }
            _ => {}
        }
    }

    /// Counts a finished run's rows.
    pub fn report(&self, report: &Report) {
        for row in &report.results {
            self.rows
                .get_or_create(&RowLabel {
                    provider: row.provider.to_string(),
                    state: row.state.name().to_owned(),
                })
                .inc();
            if row.warnings.iter().any(|w| w.contains(COALESCED)) {
                self.coalesced
                    .get_or_create(&ProviderLabel {
                        provider: row.provider.to_string(),
                    })
                    .inc();
            }
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// What the journal's note on a row purged with another run's batch says.
const COALESCED: &str = "purged once, with it";

/// Whether an attempt's error is the provider refusing it for its rate.
fn is_rejection(error: &str) -> bool {
    error.starts_with("rate limited by the provider")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rate_limit_waits_add_up_by_provider() {
        let metrics = Metrics::new();
        let waited = |provider: &str, ms: u64| Event::RateWaited {
            provider: provider.to_owned(),
            batch: Some(0),
            waited: Duration::from_millis(ms),
        };
        for event in [waited("eu", 1500), waited("us", 250), waited("eu", 500)] {
            metrics.event(&event);
        }
        let text = metrics.encode();
        for line in [
            "# TYPE purgekit_rate_limit_wait_seconds counter",
            "purgekit_rate_limit_wait_seconds_total{provider=\"eu\"} 2.0",
            "purgekit_rate_limit_wait_seconds_total{provider=\"us\"} 0.25",
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
    }
}
