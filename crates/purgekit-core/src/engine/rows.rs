//! Report assembly: one row per (target, provider) from the plan and each batch's outcome.

use std::sync::Arc;

use super::schedule::{BatchOutcome, SentPart};
use super::wait::Completion;
use crate::plan::{Disposition, PlannedRequest, ProviderPlan};
use crate::provider::HttpRequest;
use crate::report::{Row, State};
use crate::request::PurgeRequest;
use crate::text::Text;

/// One row per target, in input order, from the plan and each batch's outcome, formed one at a
/// time as they are iterated: a caller that writes each row and drops it never holds them all.
///
/// Rows share their text: each target's with the request ([`crate::Target::shared_text`]),
/// the provider name, and each batch's handle, error and warnings with the batch's other rows,
/// so a million rows hold no copy of any of it.
pub(super) struct Rows {
    plan: ProviderPlan,
    request: PurgeRequest,
    outcomes: Vec<BatchOutcome>,
    provider: Arc<str>,
    plan_warnings: usize,
    no_warnings: Arc<[Arc<str>]>,
    /// Per batch, one row template per part (a part per handle: one, or one per scope of a
    /// request at a shared parent scope).
    templates: Vec<Vec<Row>>,
    /// The index of the next target.
    next: usize,
}

impl Rows {
    pub(super) fn new(
        plan: ProviderPlan,
        request: PurgeRequest,
        outcomes: Vec<BatchOutcome>,
        notes: &[Option<String>],
        dry_run: bool,
    ) -> Self {
        let provider: Arc<str> = Arc::from(plan.provider.as_str());
        let plan_warnings: Vec<Arc<str>> = plan.warnings.iter().map(|w| Arc::from(&**w)).collect();
        let no_warnings: Arc<[Arc<str>]> = Arc::default();
        let templates = outcomes
            .iter()
            .enumerate()
            .map(|(index, outcome)| {
                let parts = match outcome {
                    BatchOutcome::Sent { parts, .. } => parts.len().max(1),
                    _ => 1,
                };
                (0..parts)
                    .map(|part| {
                        let mut row = Row {
                            target: Text::default(),
                            provider: provider.clone(),
                            state: State::Unsupported,
                            handle: None,
                            attempts: 0,
                            error: None,
                            unfinished: None,
                            warnings: no_warnings.clone(),
                        };
                        let mut warnings = plan_warnings.clone();
                        fill(&mut row, &mut warnings, outcome, part, dry_run);
                        if let Some(Some(note)) = notes.get(index) {
                            warnings.push(Arc::from(note.as_str()));
                        }
                        if !warnings.is_empty() {
                            row.warnings = warnings.into();
                        }
                        row
                    })
                    .collect()
            })
            .collect();
        Rows {
            plan,
            request,
            outcomes,
            provider,
            plan_warnings: plan_warnings.len(),
            no_warnings,
            templates,
            next: 0,
        }
    }

    /// The row of target `index`.
    fn row(&self, index: usize) -> Row {
        let targets = self.request.targets();
        let target = &targets[index];
        match self.plan.disposition(index).expect("a target of the plan") {
            Disposition::Unsupported { reason } => Row {
                target: target.shared_text(),
                provider: self.provider.clone(),
                state: State::Unsupported,
                handle: None,
                attempts: 0,
                error: Some(reason.clone()),
                unfinished: None,
                warnings: self.no_warnings.clone(),
            },
            Disposition::Planned {
                batch,
                slot,
                merged_with,
            } => {
                let part = match &self.outcomes[batch as usize] {
                    BatchOutcome::Sent { slots, .. } => {
                        slots.get(slot as usize).map_or(0, |&p| p as usize)
                    }
                    _ => 0,
                };
                let mut row = Row {
                    target: target.shared_text(),
                    ..self.templates[batch as usize][part].clone()
                };
                if let Some(first) = merged_with {
                    let first = &targets[first as usize];
                    // After the plan's warnings, before the provider's: the order they arose in.
                    let mut warnings = row.warnings.to_vec();
                    warnings.insert(
                        self.plan_warnings,
                        Arc::from(format!("duplicate of `{first}`: purged once, with it")),
                    );
                    row.warnings = warnings.into();
                }
                row
            }
        }
    }
}

impl Iterator for Rows {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        let index = self.next;
        if index == self.plan.target_count() {
            return None;
        }
        self.next += 1;
        Some(self.row(index))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.plan.target_count() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Rows {}

/// Writes part `part` of a batch's outcome into the row template of its targets (and its
/// warnings into `warnings`).
fn fill(
    row: &mut Row,
    warnings: &mut Vec<Arc<str>>,
    outcome: &BatchOutcome,
    part: usize,
    dry_run: bool,
) {
    match outcome {
        BatchOutcome::Sent {
            parts, attempts, ..
        } => {
            let Some(SentPart {
                accepted,
                completion,
            }) = parts.get(part)
            else {
                return;
            };
            row.handle = Some(Arc::from(accepted.handle.as_str()));
            row.attempts = *attempts;
            warnings.extend(accepted.warnings.iter().map(|w| Arc::from(w.as_str())));
            row.state = match completion {
                _ if dry_run => State::DryRun,
                None => State::Accepted,
                Some(Completion::Completed) => State::Completed,
                Some(Completion::Failed(error)) => {
                    row.error = Some(Arc::from(error.as_str()));
                    State::Failed
                }
                Some(Completion::Unfinished(why, text)) => {
                    row.unfinished = Some(*why);
                    row.error = Some(Arc::from(text.as_str()));
                    State::Accepted
                }
            };
        }
        BatchOutcome::Failed { error, attempts } => {
            row.state = State::Failed;
            row.attempts = *attempts;
            row.error = Some(Arc::from(failed_text(error, *attempts)));
        }
        BatchOutcome::Recorded { error, attempts } => {
            row.state = State::Failed;
            row.attempts = *attempts;
            row.error = Some(error.clone());
        }
        BatchOutcome::DryRun => row.state = State::DryRun,
    }
}

/// A failed batch's row error: the error, and the attempts when there were several.
pub(super) fn failed_text(error: &crate::Error, attempts: u32) -> String {
    if attempts > 1 {
        format!("{error} (after {attempts} attempts)")
    } else {
        error.to_string()
    }
}

/// The printable form of an encoded request.
pub(super) fn planned_request(http: &HttpRequest) -> PlannedRequest {
    PlannedRequest {
        method: http.method().to_string(),
        url: http.uri().to_string(),
        headers: http
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(http.body()).into_owned(),
    }
}
