//! The report: one row per (target, provider), each in exactly one final state.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::text::Text;

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
///
/// Its text is shared ([`Text`], `Arc<str>`), not copied: a report may hold millions of rows,
/// and the rows of one target share its text ([`crate::Target::shared_text`]), those of one provider
/// its name, those of one request its handle, error and warnings. Serialized as plain strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The target as given (`tag:` prefixed for tags).
    pub target: Text,
    /// The purger's name.
    pub provider: Arc<str>,
    /// The final state.
    pub state: State,
    /// The provider's handle for the request that carried it, once accepted.
    pub handle: Option<Arc<str>>,
    /// HTTP attempts made for the request that carried it (0 when nothing was sent).
    pub attempts: u32,
    /// Why it failed or is unsupported, or why waiting did not confirm completion.
    pub error: Option<Arc<str>>,
    /// For a row left `accepted` by `--wait`: why completion was not confirmed (absent from
    /// the JSON otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfinished: Option<Unfinished>,
    /// Everything else worth knowing (ignored advisory options, merged duplicates); the rows
    /// of one request usually share one list.
    pub warnings: Arc<[Arc<str>]>,
}

/// Why a row stays [`State::Accepted`] although the purge waited for completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unfinished {
    /// The wait (or the run's deadline) ended first.
    TimedOut,
    /// The run was cancelled (a signal) while waiting.
    Cancelled,
    /// The provider has no status call for this purge (e.g. Adobe's 2012 schema).
    NoStatusApi,
    /// The status call failed for good (its error is in the row).
    StatusError,
}

impl Unfinished {
    /// Every reason, in display order.
    pub const ALL: [Unfinished; 4] = [
        Unfinished::TimedOut,
        Unfinished::Cancelled,
        Unfinished::NoStatusApi,
        Unfinished::StatusError,
    ];

    /// The reason's name as serialized (`timed_out`, …).
    pub fn name(self) -> &'static str {
        match self {
            Unfinished::TimedOut => "timed_out",
            Unfinished::Cancelled => "cancelled",
            Unfinished::NoStatusApi => "no_status_api",
            Unfinished::StatusError => "status_error",
        }
    }
}

/// Counts by state, and why waiting did not confirm completion.
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
    /// Rows left accepted because the run was cancelled while waiting.
    pub cancelled: usize,
    /// Rows left accepted because the provider has no status call for them.
    pub no_status_api: usize,
    /// Rows left accepted because their status call failed.
    pub status_error: usize,
}

impl Summary {
    /// The counts of `rows` (a report's, or some of them: one provider's).
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Summary {
        let mut s = Summary::default();
        rows.into_iter().for_each(|row| s.count(row));
        s
    }

    /// Counts one more row (a caller streaming rows counts each as it passes).
    pub fn count(&mut self, row: &Row) {
        self.total += 1;
        match row.state {
            State::Accepted => self.accepted += 1,
            State::Completed => self.completed += 1,
            State::Failed => self.failed += 1,
            State::Unsupported => self.unsupported += 1,
            State::DryRun => self.dry_run += 1,
        }
        match row.unfinished {
            Some(Unfinished::TimedOut) => self.timed_out += 1,
            Some(Unfinished::Cancelled) => self.cancelled += 1,
            Some(Unfinished::NoStatusApi) => self.no_status_api += 1,
            Some(Unfinished::StatusError) => self.status_error += 1,
            None => {}
        }
    }

    /// Rows left accepted although the purge waited: every [`Unfinished`] reason.
    pub fn unfinished(&self) -> usize {
        self.timed_out + self.cancelled + self.no_status_api + self.status_error
    }

    /// The count of rows left accepted for `why`.
    pub fn unfinished_for(&self, why: Unfinished) -> usize {
        match why {
            Unfinished::TimedOut => self.timed_out,
            Unfinished::Cancelled => self.cancelled,
            Unfinished::NoStatusApi => self.no_status_api,
            Unfinished::StatusError => self.status_error,
        }
    }
}

/// `1,000,000`: a count as reports print it.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `7 rows: 5 accepted, 1 failed, 1 unsupported` (zero counts left out; counts over 999 with
/// thousands separators): what the CLI prints.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut counts = vec![
            (self.accepted, "accepted"),
            (self.completed, "completed"),
            (self.failed, "failed"),
            (self.unsupported, "unsupported"),
            (self.dry_run, "dry run"),
        ];
        for why in Unfinished::ALL {
            let text = match why {
                Unfinished::TimedOut => "timed out waiting",
                Unfinished::Cancelled => "cancelled while waiting",
                Unfinished::NoStatusApi => "without a status call (no_status_api)",
                Unfinished::StatusError => "status unavailable",
            };
            counts.push((self.unfinished_for(why), text));
        }
        let rows = if self.total == 1 { "row" } else { "rows" };
        write!(f, "{} {rows}", thousands(self.total))?;
        let mut first = true;
        for (n, name) in counts.into_iter().filter(|(n, _)| *n > 0) {
            f.write_str(if first { ": " } else { ", " })?;
            write!(f, "{} {name}", thousands(n))?;
            first = false;
        }
        Ok(())
    }
}

impl std::ops::AddAssign for Summary {
    /// Adds the counts of another part of a report (another provider's rows).
    fn add_assign(&mut self, other: Summary) {
        self.total += other.total;
        self.accepted += other.accepted;
        self.completed += other.completed;
        self.failed += other.failed;
        self.unsupported += other.unsupported;
        self.dry_run += other.dry_run;
        self.timed_out += other.timed_out;
        self.cancelled += other.cancelled;
        self.no_status_api += other.no_status_api;
        self.status_error += other.status_error;
    }
}

/// A finished purge whose rows are formed on demand, one provider at a time, in provider
/// order ([`Purger::purge_reports`](crate::Purger::purge_reports)).
///
/// [`Reports::next_rows`] streams each provider's rows, formed one at a time as they are
/// iterated: a caller that writes each row and drops it holds no provider's rows at all (a
/// fan-out of a million targets to three providers forms three million rows). Iterating yields
/// each provider's [`Report`], its rows collected; [`Reports::into_report`] merges them all.
pub struct Reports {
    parts: std::collections::VecDeque<Part>,
}

/// One provider's rows, streamed: each formed when it is reached.
pub type RowStream = Box<dyn Iterator<Item = Row> + Send>;

/// One provider's rows, formed or to be formed.
enum Part {
    Ready(Report),
    Deferred {
        rows: usize,
        form: Box<dyn FnOnce() -> RowStream + Send>,
    },
}

impl Reports {
    /// Rows already formed.
    pub fn ready(report: Report) -> Self {
        Reports {
            parts: [Part::Ready(report)].into(),
        }
    }

    /// `rows` rows that the iterator `form` returns forms as it is iterated.
    pub fn deferred<I>(rows: usize, form: impl FnOnce() -> I + Send + 'static) -> Self
    where
        I: Iterator<Item = Row> + Send + 'static,
    {
        Reports {
            parts: [Part::Deferred {
                rows,
                form: Box::new(move || Box::new(form()) as RowStream),
            }]
            .into(),
        }
    }

    /// Appends `other`'s parts after these.
    pub fn append(&mut self, other: Reports) {
        self.parts.extend(other.parts);
    }

    /// How many rows there are in all, without forming them.
    pub fn rows(&self) -> usize {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Ready(report) => report.results.len(),
                Part::Deferred { rows, .. } => *rows,
            })
            .sum()
    }

    /// The next provider's rows, each formed when the stream reaches it.
    pub fn next_rows(&mut self) -> Option<RowStream> {
        Some(match self.parts.pop_front()? {
            Part::Ready(report) => Box::new(report.results.into_iter()),
            Part::Deferred { form, .. } => form(),
        })
    }

    /// Every row, merged into one report.
    pub fn into_report(self) -> Report {
        Report::merge(self)
    }
}

impl Iterator for Reports {
    type Item = Report;

    /// The next provider's report, its rows formed now.
    fn next(&mut self) -> Option<Report> {
        Some(match self.parts.pop_front()? {
            Part::Ready(report) => report,
            Part::Deferred { form, .. } => Report::new(form().collect()),
        })
    }
}

impl fmt::Debug for Reports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reports")
            .field("parts", &self.parts.len())
            .field("rows", &self.rows())
            .finish()
    }
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

    /// Merges reports (a fan-out's), keeping their order. The rows move into the first
    /// report's storage (grown once, in place where the allocator can), each other report's
    /// freed as it is moved: never two copies of the rows.
    pub fn merge(reports: impl IntoIterator<Item = Report>) -> Self {
        let reports: Vec<Report> = reports.into_iter().collect();
        let total = reports.iter().map(|r| r.results.len()).sum::<usize>();
        let mut reports = reports.into_iter();
        let Some(mut merged) = reports.next() else {
            return Report::default();
        };
        merged.results.reserve_exact(total - merged.results.len());
        for report in reports {
            merged.results.extend(report.results);
        }
        merged.summarize();
        merged
    }

    /// Recomputes [`Report::summary`] from the rows.
    pub fn summarize(&mut self) {
        self.summary = Summary::of(&self.results);
    }

    /// Success when every row is accepted, completed or dry-run with no wait timed out;
    /// failure when none is; partial otherwise.
    pub fn outcome(&self) -> Outcome {
        let s = &self.summary;
        let good = s.accepted - s.unfinished() + s.completed + s.dry_run;
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
            error: error.map(Arc::from),
            unfinished: None,
            warnings: Arc::default(),
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
        let mut timed_out = row(State::Accepted, Some("wait timed out"));
        timed_out.unfinished = Some(Unfinished::TimedOut);
        let mut no_api = row(State::Accepted, Some("no status call"));
        no_api.unfinished = Some(Unfinished::NoStatusApi);
        let r = Report::new(vec![no_api]);
        assert_eq!((r.summary.timed_out, r.summary.no_status_api), (0, 1));
        assert_eq!(r.outcome(), Outcome::Failure);
        let r = Report::new(vec![timed_out]);
        assert_eq!(r.summary.timed_out, 1);
        assert_eq!(r.outcome(), Outcome::Failure);
    }

    #[test]
    fn reports_form_each_part_when_reached_in_order() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static FORMED: AtomicUsize = AtomicUsize::new(0);
        let part = |provider: &'static str| {
            Reports::deferred(2, move || {
                FORMED.fetch_add(1, Ordering::SeqCst);
                let mut r = row(State::DryRun, None);
                r.provider = provider.into();
                vec![r.clone(), r].into_iter()
            })
        };
        let mut all = Reports::ready(Report::new(vec![row(State::Failed, Some("x"))]));
        all.append(part("b"));
        all.append(part("c"));
        assert_eq!(all.rows(), 5);
        assert_eq!(
            FORMED.load(Ordering::SeqCst),
            0,
            "nothing formed before asked"
        );
        let first = all.next().unwrap();
        assert_eq!(first.summary.failed, 1);
        let second = all.next().unwrap();
        assert_eq!(&*second.results[0].provider, "b");
        assert_eq!(FORMED.load(Ordering::SeqCst), 1);
        let merged = all.into_report();
        assert_eq!(merged.summary.total, 2);
        let mut total = first.summary;
        total += second.summary;
        total += merged.summary;
        assert_eq!((total.total, total.dry_run, total.failed), (5, 4, 1));
    }

    #[test]
    fn summaries_print_with_plurals_and_separators() {
        let r = Report::new(vec![row(State::DryRun, None)]);
        assert_eq!(r.summary.to_string(), "1 row: 1 dry run");
        assert_eq!(Summary::default().to_string(), "0 rows");
        let s = Summary {
            total: 1_234_567,
            accepted: 1_234_560,
            failed: 7,
            ..Summary::default()
        };
        assert_eq!(
            s.to_string(),
            "1,234,567 rows: 1,234,560 accepted, 7 failed"
        );
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
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
