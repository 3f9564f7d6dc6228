//! Report assembly: one row per (target, provider) from the plan and each batch's outcome.

use std::sync::Arc;

use super::schedule::{BatchOutcome, SentPart};
use super::wait::Completion;
use crate::plan::{Disposition, PlannedRequest, ProviderPlan};
use crate::provider::HttpRequest;
use crate::report::{Row, State};
use crate::request::PurgeRequest;

/// One row per target, in input order, from the plan and each batch's outcome.
///
/// Rows share their text: each target's with the request ([`crate::Target::shared_text`]),
/// the provider name, and each batch's handle, error and warnings with the batch's other rows,
/// so a million rows hold no copy of any of it.
pub(super) fn rows(
    plan: &ProviderPlan,
    request: &PurgeRequest,
    outcomes: &[BatchOutcome],
    notes: &[Option<String>],
    dry_run: bool,
) -> Vec<Row> {
    let targets = request.targets();
    let provider: Arc<str> = Arc::from(plan.provider.as_str());
    let plan_warnings: Vec<Arc<str>> = plan.warnings.iter().map(|w| Arc::from(&**w)).collect();
    let no_warnings: Arc<[Arc<str>]> = Arc::default();
    // Per batch, one row template per part (a part per handle: one, or one per scope of a
    // request at a shared parent scope).
    let batches: Vec<Vec<Row>> = outcomes
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
                        target: Arc::from(""),
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
    plan.targets
        .iter()
        .zip(targets)
        .map(|(disposition, target)| match disposition {
            Disposition::Unsupported { reason } => Row {
                target: target.shared_text(),
                provider: provider.clone(),
                state: State::Unsupported,
                handle: None,
                attempts: 0,
                error: Some(reason.clone()),
                unfinished: None,
                warnings: no_warnings.clone(),
            },
            Disposition::Planned {
                batch,
                slot,
                merged_with,
            } => {
                let part = match &outcomes[*batch as usize] {
                    BatchOutcome::Sent { slots, .. } => {
                        slots.get(*slot as usize).map_or(0, |&p| p as usize)
                    }
                    _ => 0,
                };
                let mut row = Row {
                    target: target.shared_text(),
                    ..batches[*batch as usize][part].clone()
                };
                if let Some(first) = merged_with {
                    let first = &targets[*first as usize];
                    // After the plan's warnings, before the provider's: the order they arose in.
                    let mut warnings = row.warnings.to_vec();
                    warnings.insert(
                        plan_warnings.len(),
                        Arc::from(format!("duplicate of `{first}`: purged once, with it")),
                    );
                    row.warnings = warnings.into();
                }
                row
            }
        })
        .collect()
}

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
