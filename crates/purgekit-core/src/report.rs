//! The report: one row per (target, provider), each in exactly one final state.

use std::fmt;

use serde::Serialize;

/// The final state of one target at one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The provider accepted the purge (not yet known to be complete).
    Accepted,
    /// The provider reports the purge complete.
    Completed,
    /// The purge failed; `error` says why.
    Failed,
    /// The provider cannot purge this target; nothing was sent for it.
    Unsupported,
    /// Validated and planned; nothing purged (dry run).
    DryRun,
}

impl State {
    /// Every state, in display order.
    pub const ALL: [State; 5] = [
        State::Accepted,
        State::Completed,
        State::Failed,
        State::Unsupported,
        State::DryRun,
    ];

    /// The state's name as serialized (`dry_run`, …).
    pub fn name(self) -> &'static str {
        match self {
            State::Accepted => "accepted",
            State::Completed => "completed",
            State::Failed => "failed",
            State::Unsupported => "unsupported",
            State::DryRun => "dry_run",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One target at one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The target as given (`tag:` prefixed for tags).
    pub target: String,
    /// The purger's name.
    pub provider: String,
    /// The final state.
    pub state: State,
    /// The provider's handle for the request that carried it, once accepted.
    pub handle: Option<String>,
    /// HTTP attempts made for the request that carried it (0 when nothing was sent).
    pub attempts: u32,
    /// Why it failed or is unsupported, or that waiting timed out.
    pub error: Option<String>,
    /// Everything else worth knowing (ignored advisory options, merged duplicates).
    pub warnings: Vec<String>,
}

/// Counts by state, and whether waiting timed out anywhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// All rows.
    pub total: usize,
    /// Rows accepted (not known complete).
    pub accepted: usize,
    /// Rows completed.
    pub completed: usize,
    /// Rows failed.
    pub failed: usize,
    /// Rows unsupported.
    pub unsupported: usize,
    /// Rows in a dry run.
    pub dry_run: usize,
    /// Rows left accepted because waiting for completion timed out.
    pub timed_out: usize,
}

/// How a whole purge went, for exit codes and dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every row accepted, completed or dry-run (and no wait timed out).
    Success,
    /// Some rows succeeded and some did not.
    Partial,
    /// No row succeeded.
    Failure,
}

/// The result of a purge: rows and their summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// One row per (target, provider): providers in order, targets in input order within each.
    pub results: Vec<Row>,
    /// Counts by state.
    pub summary: Summary,
}

impl Report {
    /// A report of `rows`, with its summary computed.
    pub fn new(rows: Vec<Row>) -> Self {
        let mut report = Report {
            results: rows,
            summary: Summary::default(),
        };
        report.summarize();
        report
    }

    /// Merges reports (a fan-out's), keeping their order.
    pub fn merge(reports: impl IntoIterator<Item = Report>) -> Self {
        Report::new(reports.into_iter().flat_map(|r| r.results).collect())
    }

    /// Recomputes [`Report::summary`] from the rows.
    pub fn summarize(&mut self) {
        let mut s = Summary {
            total: self.results.len(),
            ..Summary::default()
        };
        for row in &self.results {
            match row.state {
                State::Accepted => s.accepted += 1,
                State::Completed => s.completed += 1,
                State::Failed => s.failed += 1,
                State::Unsupported => s.unsupported += 1,
                State::DryRun => s.dry_run += 1,
            }
            if row.state == State::Accepted && row.error.is_some() {
                s.timed_out += 1;
            }
        }
        self.summary = s;
    }

    /// Success when every row is accepted, completed or dry-run with no wait timed out;
    /// failure when none is; partial otherwise.
    pub fn outcome(&self) -> Outcome {
        let s = &self.summary;
        let good = s.accepted - s.timed_out + s.completed + s.dry_run;
        if good == s.total {
            Outcome::Success
        } else if good == 0 {
            Outcome::Failure
        } else {
            Outcome::Partial
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: State, error: Option<&str>) -> Row {
        Row {
            target: "https://a.example/x".into(),
            provider: "p".into(),
            state,
            handle: None,
            attempts: 1,
            error: error.map(str::to_owned),
            warnings: vec![],
        }
    }

    #[test]
    fn summary_and_outcome() {
        let r = Report::new(vec![row(State::Accepted, None), row(State::DryRun, None)]);
        assert_eq!(r.outcome(), Outcome::Success);
        let r = Report::new(vec![
            row(State::Completed, None),
            row(State::Failed, Some("x")),
        ]);
        assert_eq!((r.summary.completed, r.summary.failed), (1, 1));
        assert_eq!(r.outcome(), Outcome::Partial);
        let r = Report::new(vec![row(State::Unsupported, Some("no tags"))]);
        assert_eq!(r.outcome(), Outcome::Failure);
        let r = Report::new(vec![row(State::Accepted, Some("wait timed out"))]);
        assert_eq!(r.summary.timed_out, 1);
        assert_eq!(r.outcome(), Outcome::Failure);
    }

    #[test]
    fn serializes_to_the_documented_shape() {
        let r = Report::new(vec![row(State::DryRun, None)]);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["results"][0]["state"], "dry_run");
        assert_eq!(json["results"][0]["handle"], serde_json::Value::Null);
        assert_eq!(json["summary"]["dry_run"], 1);
    }
}
