//! Report assembly: one row per (target, provider) from the plan and each batch's outcome.

use super::schedule::{BatchOutcome, SentPart};
use super::wait::Completion;
use crate::plan::{Disposition, PlannedRequest, ProviderPlan};
use crate::provider::HttpRequest;
use crate::report::{Row, State};
use crate::request::PurgeRequest;

/// One row per target, in input order, from the plan and each batch's outcome.
pub(super) fn rows(
    plan: &ProviderPlan,
    request: &PurgeRequest,
    outcomes: &[BatchOutcome],
    dry_run: bool,
) -> Vec<Row> {
    let targets = request.targets();
    plan.targets
        .iter()
        .zip(targets)
        .map(|(disposition, target)| {
            let mut row = Row {
                target: target.to_string(),
                provider: plan.provider.clone(),
                state: State::Unsupported,
                handle: None,
                attempts: 0,
                error: None,
                warnings: Vec::new(),
            };
            match disposition {
                Disposition::Unsupported { reason } => row.error = Some(reason.to_string()),
                Disposition::Planned {
                    batch,
                    slot,
                    merged_with,
                } => {
                    row.warnings.extend(plan.warnings.iter().cloned());
                    if let Some(first) = merged_with {
                        let first = &targets[*first as usize];
                        row.warnings
                            .push(format!("duplicate of `{first}`: purged once, with it"));
                    }
                    fill(&mut row, &outcomes[*batch as usize], *slot, dry_run);
                }
            }
            row
        })
        .collect()
}

/// Writes a batch's outcome into the row of its target at `slot`.
fn fill(row: &mut Row, outcome: &BatchOutcome, slot: u32, dry_run: bool) {
    match outcome {
        BatchOutcome::Sent {
            parts,
            slots,
            attempts,
        } => {
            let part = slots.get(slot as usize).map_or(0, |&p| p as usize);
            let SentPart {
                accepted,
                completion,
            } = &parts[part];
            row.handle = Some(accepted.handle.to_string());
            row.attempts = *attempts;
            row.warnings.extend(accepted.warnings.iter().cloned());
            row.state = match completion {
                _ if dry_run => State::DryRun,
                None => State::Accepted,
                Some(Completion::Completed) => State::Completed,
                Some(Completion::Failed(error)) => {
                    row.error = Some(error.clone());
                    State::Failed
                }
                Some(Completion::Unfinished(why)) => {
                    row.error = Some(why.clone());
                    State::Accepted
                }
            };
        }
        BatchOutcome::Failed { error, attempts } => {
            row.state = State::Failed;
            row.attempts = *attempts;
            row.error = Some(if *attempts > 1 {
                format!("{error} (after {attempts} attempts)")
            } else {
                error.to_string()
            });
        }
        BatchOutcome::DryRun => row.state = State::DryRun,
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
