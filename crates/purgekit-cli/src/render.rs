//! What the commands print on stdout: human tables, or one JSON document.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use purgekit::{
    Billable, Disposition, OptionKind, Plan, PlannedRequest, Progress, ProviderInfo, ProviderPlan,
    PurgeRequest, Report, Row, State, Status, Summary, Target, TargetKind, Unfinished,
    escape_controls, thousands,
};
use serde::Serialize;
use serde_json::json;

/// Reports with more rows than this print a summary by default instead of the table.
pub const TABLE_MAX_ROWS: usize = 50;

/// At most this many failed or unsupported rows are listed per provider in the summary.
pub const SUMMARY_MAX_LISTED: usize = 20;

/// Each warning text and how many rows carry it, in order of first appearance.
#[derive(Default)]
struct WarningCounts {
    index: HashMap<Arc<str>, usize>,
    counts: Vec<(Arc<str>, usize)>,
}

impl WarningCounts {
    fn add(&mut self, row: &Row) {
        for warning in row.warnings.iter() {
            let slot = match self.index.get(warning) {
                Some(&slot) => slot,
                None => {
                    self.counts.push((warning.clone(), 0));
                    self.index.insert(warning.clone(), self.counts.len() - 1);
                    self.counts.len() - 1
                }
            };
            self.counts[slot].1 += 1;
        }
    }

    fn count(&self, warning: &str) -> usize {
        self.index
            .get(warning)
            .map_or(0, |&slot| self.counts[slot].1)
    }

    /// Writes the warnings carried by more than one row, once each with their count.
    fn write_shared(&self, out: &mut impl Write) -> io::Result<()> {
        for (text, n) in self.counts.iter().filter(|(_, n)| *n > 1) {
            writeln!(
                out,
                "warning ({} rows): {}",
                thousands(*n),
                escape_controls(text)
            )?;
        }
        Ok(())
    }
}

/// The label of a row's `error` under the table: why it failed, is unsupported, or was not
/// confirmed complete.
fn error_label(row: &Row) -> String {
    match (row.state, row.unfinished) {
        (State::Unsupported, _) => "unsupported".to_owned(),
        (State::Accepted, Some(why)) => format!("not confirmed ({})", why.name()),
        _ => "error".to_owned(),
    }
}

/// Writes the report as a table, with errors and warnings under their rows, then the warnings
/// that many rows share (once each, with a count) and the summary.
///
/// Streams: the column widths come from one pass over the rows, then each line is written as
/// it is formed, so a million-row report costs no copy of its rows. Provider-supplied text
/// (handles, errors, warnings) is shown with control characters escaped.
pub fn write_report_table(report: &Report, out: &mut impl Write) -> io::Result<()> {
    const HEADERS: [&str; 5] = ["TARGET", "PROVIDER", "STATE", "HANDLE", "ATTEMPTS"];
    let mut warnings = WarningCounts::default();
    report.results.iter().for_each(|r| warnings.add(r));
    let mut widths = HEADERS.map(str::len);
    for r in &report.results {
        let cells = [
            shown_len(&r.target),
            shown_len(&r.provider),
            r.state.name().len(),
            r.handle.as_deref().map_or(1, shown_len),
        ];
        for (w, len) in widths.iter_mut().zip(cells) {
            *w = (*w).max(len);
        }
    }
    let line = |out: &mut dyn Write, cells: [&str; 4], last: &dyn fmt::Display| {
        for (cell, w) in cells.into_iter().zip(widths) {
            write!(out, "{cell:<w$}  ")?;
        }
        writeln!(out, "{last}")
    };
    line(
        out,
        [HEADERS[0], HEADERS[1], HEADERS[2], HEADERS[3]],
        &HEADERS[4],
    )?;
    for r in &report.results {
        let handle = r
            .handle
            .as_deref()
            .map_or_else(|| "-".to_owned(), escape_controls);
        line(
            out,
            [
                &escape_controls(&r.target),
                &escape_controls(&r.provider),
                r.state.name(),
                &handle,
            ],
            &r.attempts,
        )?;
        if let Some(error) = &r.error {
            writeln!(out, "  {}: {}", error_label(r), escape_controls(error))?;
        }
        for warning in r.warnings.iter() {
            if warnings.count(warning) <= 1 {
                writeln!(out, "  warning: {}", escape_controls(warning))?;
            }
        }
    }
    warnings.write_shared(out)?;
    writeln!(out, "{}", summary_line(report))
}

/// Writes the report, given as its rows in provider order (streamed from
/// [`purgekit::Reports`]), as a summary: per provider, its rows counted by state and its failed,
/// unsupported and unconfirmed rows listed (at most [`SUMMARY_MAX_LISTED`] each), then the
/// warnings (once each, with a count) and the summary line. It holds no row once counted, so
/// its memory does not grow with the rows that went well. Returns the whole report's summary.
pub fn write_report_summary(
    rows: impl IntoIterator<Item = Row>,
    out: &mut impl Write,
) -> io::Result<Summary> {
    /// One provider's counts and the rows listed under them.
    struct Part {
        provider: Arc<str>,
        summary: Summary,
        listed: Vec<Row>,
        more: usize,
    }
    let mut total = Summary::default();
    let mut warnings = WarningCounts::default();
    // Providers in the order their rows come.
    let mut parts: Vec<Part> = Vec::new();
    for row in rows {
        warnings.add(&row);
        total.count(&row);
        let index = match parts.iter().position(|p| p.provider == row.provider) {
            Some(index) => index,
            None => {
                parts.push(Part {
                    provider: row.provider.clone(),
                    summary: Summary::default(),
                    listed: Vec::new(),
                    more: 0,
                });
                parts.len() - 1
            }
        };
        let part = &mut parts[index];
        part.summary.count(&row);
        if matches!(row.state, State::Failed | State::Unsupported) || row.unfinished.is_some() {
            if part.listed.len() == SUMMARY_MAX_LISTED {
                part.more += 1;
            } else {
                part.listed.push(row);
            }
        }
    }
    for part in &parts {
        write_summary_part(
            part.provider.as_ref(),
            &part.summary,
            &part.listed,
            part.more,
            out,
        )?;
    }
    warnings.write_shared(out)?;
    writeln!(out, "{}", counts_text(&total))?;
    Ok(total)
}

/// The summary's lines for one provider: its counts, then its listed rows.
fn write_summary_part(
    provider: &str,
    summary: &Summary,
    listed: &[Row],
    more: usize,
    out: &mut impl Write,
) -> io::Result<()> {
    writeln!(
        out,
        "{}: {}",
        escape_controls(provider),
        counts_text(summary)
    )?;
    for row in listed {
        let label = match row.state {
            State::Unsupported => "unsupported".to_owned(),
            State::Accepted => format!(
                "not confirmed ({})",
                row.unfinished.map_or("", Unfinished::name)
            ),
            _ => "failed".to_owned(),
        };
        writeln!(
            out,
            "  {label}: {}: {}",
            escape_controls(&row.target),
            escape_controls(row.error.as_deref().unwrap_or("")),
        )?;
    }
    if more > 0 {
        writeln!(
            out,
            "  … and {} more (--output table or json lists every row)",
            thousands(more)
        )?;
    }
    Ok(())
}

/// Writes the report, given as its rows in provider order, as JSON lines: one row object per
/// line, then `{"summary": …}` (with `run`, naming the journaled run). Returns the summary.
pub fn write_report_jsonl(
    rows: impl IntoIterator<Item = Row>,
    run: Option<&str>,
    out: &mut impl Write,
) -> io::Result<Summary> {
    let mut total = Summary::default();
    for row in rows {
        total.count(&row);
        serde_json::to_writer(&mut *out, &row)?;
        writeln!(out)?;
    }
    match run {
        Some(run) => serde_json::to_writer(&mut *out, &json!({ "summary": total, "run": run }))?,
        None => serde_json::to_writer(&mut *out, &json!({ "summary": total }))?,
    }
    writeln!(out)?;
    Ok(total)
}

/// How many characters `text` takes once its control characters are escaped.
fn shown_len(text: &str) -> usize {
    escape_controls(text).chars().count()
}

/// `7 rows: 5 accepted, 1 failed, 1 unsupported` (zero counts left out).
pub fn summary_line(report: &Report) -> String {
    counts_text(&report.summary)
}

/// The counts of a summary, as [`summary_line`] prints them (its [`fmt::Display`]).
pub fn counts_text(s: &Summary) -> String {
    s.to_string()
}

/// Writes the report, given as its rows in provider order, as the documented JSON document
/// (provider text kept exactly, in JSON's own escapes) — the same bytes as serializing the
/// merged [`Report`] — streamed: each row is written and dropped in turn. With `run`, a `run`
/// field comes first: the journaled run's id. Returns the summary.
pub fn write_report_json(
    rows: impl IntoIterator<Item = Row>,
    run: Option<&str>,
    out: &mut impl Write,
) -> io::Result<Summary> {
    let streamed = Streamed {
        rows: RefCell::new(Some(rows.into_iter())),
        summary: Cell::new(Summary::default()),
        run,
    };
    serde_json::to_writer_pretty(&mut *out, &streamed)?;
    writeln!(out)?;
    Ok(streamed.summary.get())
}

/// A [`Report`] whose rows are written as they come.
struct Streamed<'r, I> {
    rows: RefCell<Option<I>>,
    summary: Cell<Summary>,
    /// The journaled run, if any.
    run: Option<&'r str>,
}

/// The `results` array of a [`Streamed`] report.
struct StreamedRows<'a, 'r, I>(&'a Streamed<'r, I>);

impl<I: Iterator<Item = Row>> Serialize for Streamed<'_, I> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut report = serializer.serialize_struct("Report", 3)?;
        if let Some(run) = self.run {
            report.serialize_field("run", run)?;
        }
        report.serialize_field("results", &StreamedRows(self))?;
        // The rows are written: their summary is complete.
        report.serialize_field("summary", &self.summary.get())?;
        report.end()
    }
}

impl<I: Iterator<Item = Row>> Serialize for StreamedRows<'_, '_, I> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(None)?;
        let rows = self.0.rows.borrow_mut().take();
        for row in rows.into_iter().flatten() {
            let mut summary = self.0.summary.get();
            summary.count(&row);
            self.0.summary.set(summary);
            seq.serialize_element(&row)?;
        }
        seq.end()
    }
}

/// The least time a provider's planned requests take under its rate limit (`limits` of the
/// provider of that name), as `plan` shows it: `5,000 items at 60 items per 1m: at least
/// 1h 23m`.
fn least_time(provider: &ProviderPlan, limits: &[ProviderInfo]) -> Option<(String, Duration)> {
    let info = limits.iter().find(|p| p.name == provider.provider)?;
    let batches: Vec<(&str, usize)> = provider
        .batches()
        .iter()
        .map(|b| (b.scope, b.len()))
        .collect();
    let limits = &info.limits;
    let rate = limits.rate;
    let least = limits.least_time(&batches);
    let items = provider.items();
    let sizes = &batches;
    let shown_rate = match (
        rate.requests.is_some() || rate.items.is_some(),
        limits.buckets.len(),
    ) {
        (true, 0) => rate.to_string(),
        (true, n) => format!("{rate} and {n} token {}", plural(n, "bucket", "buckets")),
        (false, n) => format!("{n} token {}", plural(n, "bucket", "buckets")),
    };
    let text = if rate.requests.is_none() && rate.items.is_none() && limits.buckets.is_empty() {
        "no published rate limit".to_owned()
    } else {
        format!(
            "{} {}, {} {} at {shown_rate}: at least {}",
            thousands(sizes.len()),
            plural(sizes.len(), "request", "requests"),
            thousands(items),
            plural(items, "item", "items"),
            duration_text(Duration::from_secs(least.as_secs()))
        )
    };
    Some((text, least))
}

/// The plan of `request`: per provider, each target's fate, the least time its rate limit
/// allows (with `limits`, the providers' [`ProviderInfo`]), then each batch and the exact
/// request.
pub fn plan_text(plan: &Plan, request: &PurgeRequest, limits: &[ProviderInfo]) -> String {
    let targets = request.targets();
    let mut out = String::new();
    for (p, provider) in plan.providers.iter().enumerate() {
        if p > 0 {
            out.push('\n');
        }
        let items = provider.items();
        let _ = writeln!(
            out,
            "provider {} ({}): {} {}, {} {} in {} {}",
            provider.provider,
            provider.kind,
            provider.target_count(),
            plural(provider.target_count(), "target", "targets"),
            items,
            plural(items, "item", "items"),
            provider.batches().len(),
            plural(provider.batches().len(), "request", "requests"),
        );
        if let Some((text, _)) = least_time(provider, limits) {
            let _ = writeln!(out, "  time: {text}");
        }
        if let Some(billable) = &provider.billable {
            let _ = writeln!(
                out,
                "  billable: {} {} ({})",
                billable.units, billable.unit, billable.terms
            );
        }
        for warning in &provider.warnings {
            let _ = writeln!(out, "  warning: {}", escape_controls(warning));
        }
        for (target, disposition) in targets.iter().zip(provider.dispositions()) {
            let fate = match disposition {
                Disposition::Planned {
                    batch,
                    merged_with: Some(first),
                    ..
                } => format!(
                    "request {}, merged with {}",
                    batch + 1,
                    target_text(targets, first)
                ),
                Disposition::Planned { batch, slot, .. } => {
                    format!("request {}, item {}", batch + 1, slot + 1)
                }
                Disposition::Unsupported { reason } => {
                    format!("unsupported: {}", escape_controls(&reason))
                }
            };
            let _ = writeln!(out, "  {target}  ->  {fate}");
        }
        if provider.client_side_dry_run {
            let _ = writeln!(
                out,
                "  dry run: validated and planned here; nothing would be sent"
            );
        }
        for (i, batch) in provider.batches().iter().enumerate() {
            let scope = if batch.scope.is_empty() {
                String::new()
            } else {
                format!(", scope {}", batch.scope)
            };
            let _ = writeln!(
                out,
                "\n  request {} of {}: {} {}, {} body bytes{scope}",
                i + 1,
                provider.batches().len(),
                batch.len(),
                plural(batch.len(), "item", "items"),
                batch.bytes,
            );
            if let Some(request) = provider.requests.get(i) {
                let _ = writeln!(out, "    {} {}", request.method, request.url);
                for (name, value) in &request.headers {
                    let _ = writeln!(out, "    {name}: {value}");
                }
                if !request.body.is_empty() {
                    out.push('\n');
                    for body_line in request.body.lines() {
                        let _ = writeln!(out, "    {body_line}");
                    }
                }
            }
        }
    }
    out
}

/// The plan of `request` as JSON: the plan's target indices written as the targets' text, and
/// per provider the least time its rate limit allows (`least_seconds`).
pub fn plan_json(plan: &Plan, request: &PurgeRequest, limits: &[ProviderInfo]) -> String {
    let targets = request.targets();
    let providers = plan
        .providers
        .iter()
        .map(|p| ProviderJson {
            provider: &p.provider,
            kind: &p.kind,
            least_seconds: least_time(p, limits).map(|(_, d)| d.as_secs_f64()),
            batches: p
                .batches()
                .iter()
                .map(|b| BatchJson {
                    scope: b.scope,
                    bytes: b.bytes,
                    targets: b.targets.iter().map(|&t| target_text(targets, t)).collect(),
                })
                .collect(),
            targets: targets
                .iter()
                .zip(p.dispositions())
                .map(|(target, disposition)| TargetJson {
                    target: target.to_string(),
                    disposition: match disposition {
                        Disposition::Planned {
                            batch,
                            slot,
                            merged_with,
                        } => DispositionJson::Planned {
                            batch,
                            slot,
                            merged_with: merged_with.map(|first| target_text(targets, first)),
                        },
                        Disposition::Unsupported { reason } => {
                            DispositionJson::Unsupported { reason }
                        }
                    },
                })
                .collect(),
            warnings: &p.warnings,
            requests: &p.requests,
            client_side_dry_run: p.client_side_dry_run,
            billable: p.billable.as_ref(),
        })
        .collect();
    to_json(&PlanJson { providers })
}

/// Target `index` of the request as the user wrote it.
fn target_text(targets: &[Target], index: u32) -> String {
    targets
        .get(index as usize)
        .map_or_else(|| format!("target #{index}"), ToString::to_string)
}

/// [`Plan`] with the targets' text in place of their indices.
#[derive(Serialize)]
struct PlanJson<'a> {
    providers: Vec<ProviderJson<'a>>,
}

#[derive(Serialize)]
struct ProviderJson<'a> {
    provider: &'a str,
    kind: &'a str,
    least_seconds: Option<f64>,
    batches: Vec<BatchJson<'a>>,
    targets: Vec<TargetJson>,
    warnings: &'a [String],
    requests: &'a [PlannedRequest],
    client_side_dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    billable: Option<&'a Billable>,
}

#[derive(Serialize)]
struct BatchJson<'a> {
    scope: &'a str,
    bytes: usize,
    targets: Vec<String>,
}

#[derive(Serialize)]
struct TargetJson {
    target: String,
    #[serde(flatten)]
    disposition: DispositionJson,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case", tag = "disposition")]
enum DispositionJson {
    Planned {
        batch: u32,
        slot: u32,
        merged_with: Option<String>,
    },
    Unsupported {
        reason: Arc<str>,
    },
}

/// Each provider with its kind, endpoint, limits and capabilities.
pub fn providers_text(providers: &[ProviderInfo]) -> String {
    let mut out = String::new();
    for (i, p) in providers.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{}", p.name);
        let _ = writeln!(out, "  kind:      {}", p.kind);
        let _ = writeln!(out, "  endpoint:  {}", p.endpoint);
        let l = &p.limits;
        let mut limits = vec![format!(
            "{} {} per request",
            l.max_items,
            plural(l.max_items, "item", "items")
        )];
        if let Some(bytes) = l.max_body_bytes {
            limits.push(format!("body at most {bytes} bytes"));
        }
        if l.wildcard_alone {
            limits.push("a wildcard alone in its request".to_owned());
        }
        if l.group_by_scope {
            limits.push("one scope per request".to_owned());
        }
        let _ = writeln!(out, "  limits:    {}", limits.join(", "));
        let _ = writeln!(out, "  rate:      {}", l.rate);
        let mut queue = vec![format!("{} in flight", l.max_in_flight)];
        if let Some(queued) = l.max_queued_items {
            queue.push(format!("at most {queued} items queued"));
        }
        let _ = writeln!(out, "  queue:     {}", queue.join(", "));
        let targets: Vec<&str> = p
            .capabilities
            .targets
            .iter()
            .map(target_kind_name)
            .collect();
        let _ = writeln!(out, "  targets:   {}", or_none(&targets));
        let options: Vec<&str> = p
            .capabilities
            .options
            .iter()
            .map(|o: &OptionKind| o.name())
            .collect();
        let _ = writeln!(out, "  options:   {}", or_none(&options));
    }
    out
}

/// The providers as JSON; options named as the CLI spells them (`ignore-case`).
pub fn providers_json(providers: &[ProviderInfo]) -> String {
    let providers: Vec<serde_json::Value> = providers
        .iter()
        .map(|p| {
            let mut value = serde_json::to_value(p).expect("provider info serializes");
            let options: Vec<&str> = p.capabilities.options.iter().map(|o| o.name()).collect();
            value["capabilities"]["options"] = json!(options);
            value
        })
        .collect();
    to_json(&json!({ "providers": providers }))
}

/// One status answer or error per handle.
pub type StatusLine = (String, Result<Status, String>);

/// Status answers as a table (aligned, with a header), then a count line: `2 handles:
/// 1 completed, 1 pending`.
pub fn status_text(provider: &str, answers: &[StatusLine]) -> String {
    let rows: Vec<[String; 4]> = answers
        .iter()
        .map(|(handle, answer)| match answer {
            Ok(status) => {
                let percent = match status.progress {
                    Progress::Pending {
                        percent: Some(percent),
                    } => format!(" ({percent}%)"),
                    _ => String::new(),
                };
                [
                    escape_controls(provider),
                    escape_controls(handle),
                    progress_name(status.progress).to_owned(),
                    format!("{}{percent}", escape_controls(&status.detail)),
                ]
            }
            Err(error) => [
                escape_controls(provider),
                escape_controls(handle),
                "error".to_owned(),
                escape_controls(error),
            ],
        })
        .collect();
    let headers = ["PROVIDER", "HANDLE", "STATE", "DETAIL"].map(str::to_owned);
    let mut widths = [0usize; 3];
    for row in std::iter::once(&headers).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&headers).chain(&rows) {
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(out, "{cell:<w$}  ");
        }
        let _ = writeln!(out, "{}", row[3]);
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for row in &rows {
        match counts.iter_mut().find(|(state, _)| *state == row[2]) {
            Some((_, n)) => *n += 1,
            None => counts.push((&row[2], 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let _ = writeln!(
        out,
        "{} {}: {}",
        rows.len(),
        plural(rows.len(), "handle", "handles"),
        parts.join(", ")
    );
    out
}

/// Status answers as JSON: `{"statuses":[{"provider","handle","state","percent","detail","error"}]}`.
pub fn status_json(provider: &str, answers: &[StatusLine]) -> String {
    let rows: Vec<serde_json::Value> = answers
        .iter()
        .map(|(handle, answer)| match answer {
            Ok(status) => json!({
                "provider": provider,
                "handle": handle,
                "state": progress_name(status.progress),
                "percent": match status.progress {
                    Progress::Pending { percent } => percent,
                    Progress::Completed => Some(100),
                    Progress::Failed => None,
                },
                "detail": status.detail,
                "error": null,
            }),
            Err(error) => json!({
                "provider": provider,
                "handle": handle,
                "state": "error",
                "percent": null,
                "detail": null,
                "error": error,
            }),
        })
        .collect();
    to_json(&json!({ "statuses": rows }))
}

fn progress_name(progress: Progress) -> &'static str {
    match progress {
        Progress::Pending { .. } => "pending",
        Progress::Completed => "completed",
        Progress::Failed => "failed",
    }
}

/// `1m`, `1s 500ms`, `250ms`: what the config file and `--timeout` read back.
pub fn duration_text(d: std::time::Duration) -> String {
    purgekit::format_duration(d)
}

fn target_kind_name(kind: &TargetKind) -> &'static str {
    match kind {
        TargetKind::Url => "url",
        TargetKind::Pattern => "pattern",
        TargetKind::Tag => "tag",
        TargetKind::Prefix => "prefix",
        TargetKind::Host => "host",
        TargetKind::Everything => "everything",
    }
}

fn or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn to_json(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("reports serialize to JSON");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use purgekit::{Budget, Capabilities, Handle, Limits, PlanBuilder, Row};
    use std::time::Duration;

    fn row(target: &str, provider: &str, state: State) -> Row {
        Row {
            target: target.into(),
            provider: provider.into(),
            state,
            handle: (state == State::Accepted).then(|| "h-1".into()),
            attempts: u32::from(state == State::Accepted),
            error: None,
            unfinished: None,
            warnings: Default::default(),
        }
    }

    fn sample_report() -> Report {
        let mut failed = row("https://a.example/b.css", "ll", State::Failed);
        failed.attempts = 3;
        failed.error = Some("rejected by the provider (code 1041): too many".into());
        let mut unsupported = row("tag:home", "l3", State::Unsupported);
        unsupported.error = Some("level3 does not support cache tag targets".into());
        let mut accepted = row("https://a.example/a.js", "l3", State::Accepted);
        accepted.warnings =
            vec!["level3 does not support option `note`: purged without it".into()].into();
        Report::new(vec![accepted, unsupported, failed])
    }

    #[test]
    fn table_has_a_row_per_result_and_the_summary() {
        let text = table(&sample_report());
        let expected = "\
TARGET                   PROVIDER  STATE        HANDLE  ATTEMPTS
https://a.example/a.js   l3        accepted     h-1     1
  warning: level3 does not support option `note`: purged without it
tag:home                 l3        unsupported  -       0
  unsupported: level3 does not support cache tag targets
https://a.example/b.css  ll        failed       -       3
  error: rejected by the provider (code 1041): too many
3 rows: 1 accepted, 1 failed, 1 unsupported
";
        assert_eq!(text, expected);
    }

    fn table(report: &Report) -> String {
        let mut out = Vec::new();
        write_report_table(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn json_text(report: &Report) -> String {
        let mut out = Vec::new();
        write_report_json(report.results.clone(), None, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A hostile server's handle, error text and warning, with ESC sequences and line breaks.
    fn hostile_report() -> Report {
        let mut row = row("https://a.example/a.js", "l3", State::Accepted);
        row.handle = Some("ni/\u{1b}[2J\u{1b}]0;pwned\u{7}\nFAKE  row".into());
        row.warnings = vec!["Level 3 said \r\u{1b}[31mok".into()].into();
        let mut failed = row.clone();
        failed.state = State::Failed;
        failed.handle = None;
        failed.error = Some("HTTP 200: got <\u{1b}x\n>".into());
        Report::new(vec![row, failed])
    }

    #[test]
    fn streamed_json_is_the_merged_report_byte_for_byte() {
        let a = sample_report();
        let b = hostile_report();
        let merged = Report::merge([a.clone(), b.clone()]);
        let mut expected = serde_json::to_vec_pretty(&merged).unwrap();
        expected.push(b'\n');
        let mut out = Vec::new();
        let summary =
            write_report_json(a.results.iter().chain(&b.results).cloned(), None, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(expected).unwrap()
        );
        assert_eq!(summary, merged.summary);
        let mut out = Vec::new();
        write_report_json(Vec::new(), None, &mut out).unwrap();
        let mut empty = serde_json::to_vec_pretty(&Report::default()).unwrap();
        empty.push(b'\n');
        assert_eq!(out, empty);
        // JSON lines: the same rows, then the summary.
        let mut out = Vec::new();
        write_report_jsonl(a.results.into_iter().chain(b.results), None, &mut out).unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), merged.results.len() + 1);
        assert_eq!(lines[0], serde_json::to_value(&merged.results[0]).unwrap());
        assert_eq!(
            lines.last().unwrap()["summary"],
            serde_json::to_value(merged.summary).unwrap()
        );
    }

    #[test]
    fn provider_text_is_escaped_in_tables_and_exact_in_json() {
        let text = table(&hostile_report());
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
        assert_eq!(text.lines().count(), 6, "{text}");
        assert!(
            text.contains("ni/\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\nFAKE  row  1"),
            "{text}"
        );
        assert!(
            text.contains("\nwarning (2 rows): Level 3 said \\r\\u{1b}[31mok\n"),
            "{text}"
        );
        assert!(
            text.contains("  error: HTTP 200: got <\\u{1b}x\\n>\n"),
            "{text}"
        );
        // JSON stays JSON: the exact text, in JSON's escapes.
        let json = json_text(&hostile_report());
        assert!(
            json.contains(r"\u001b[2J") && !json.contains('\u{1b}'),
            "{json}"
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value["results"][0]["handle"],
            "ni/\u{1b}[2J\u{1b}]0;pwned\u{7}\nFAKE  row"
        );
        let answers: Vec<StatusLine> = vec![(
            "h\u{1b}".into(),
            Ok(Status {
                handle: Handle("h\u{1b}".into()),
                progress: Progress::Completed,
                detail: "Done\n\u{1b}[2J".into(),
                poll_after: None,
            }),
        )];
        let text = status_text("eu", &answers);
        assert!(
            text.contains(
                "\neu        h\\u{1b}  completed  Done\\n\\u{1b}[2J\n1 handle: 1 completed\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn summary_line_counts() {
        let r = Report::new(vec![row("https://a.example/", "p", State::DryRun)]);
        assert_eq!(summary_line(&r), "1 row: 1 dry run");
        assert_eq!(summary_line(&Report::new(vec![])), "0 rows");
    }

    #[test]
    fn json_has_the_documented_shape() {
        let value: serde_json::Value = serde_json::from_str(&json_text(&sample_report())).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["results", "summary"]);
        let first = value["results"][0].as_object().unwrap();
        let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "attempts", "error", "handle", "provider", "state", "target", "warnings"
            ]
        );
        assert_eq!(value["results"][0]["state"], "accepted");
        assert_eq!(value["results"][1]["handle"], serde_json::Value::Null);
        assert_eq!(value["results"][2]["attempts"], 3);
        assert_eq!(value["summary"]["total"], 3);
        assert_eq!(value["summary"]["failed"], 1);
    }

    fn sample_request() -> PurgeRequest {
        PurgeRequest::builder()
            .url("https://a.example/a.js")
            .url("https://a.example/a.js")
            .tag("x")
            .build()
            .unwrap()
    }

    fn sample_plan() -> Plan {
        Plan {
            providers: vec![{
                let mut plan = PlanBuilder::new("l3", "level3", 3);
                plan.batch("ni.example", &[0], 37, 0).unwrap();
                plan.merged(1, 0).unwrap();
                plan.unsupported(2, "level3 does not support cache tag targets".into())
                    .unwrap();
                let mut plan = plan.build().unwrap();
                plan.requests = vec![PlannedRequest {
                    method: "POST".into(),
                    url: "https://ws.lumen.com/invalidations/v1.0/1/S/ni.example".into(),
                    headers: vec![
                        ("content-type".into(), "text/xml".into()),
                        ("authorization".into(), "MPA KEY:<redacted>".into()),
                    ],
                    body: "<paths><path>/a.js</path></paths>".into(),
                }];
                plan
            }],
        }
    }

    #[test]
    fn plan_shows_fates_batches_and_requests() {
        let text = plan_text(&sample_plan(), &sample_request(), &[]);
        let expected = "\
provider l3 (level3): 3 targets, 1 item in 1 request
  https://a.example/a.js  ->  request 1, item 1
  https://a.example/a.js  ->  request 1, merged with https://a.example/a.js
  tag:x  ->  unsupported: level3 does not support cache tag targets

  request 1 of 1: 1 item, 37 body bytes, scope ni.example
    POST https://ws.lumen.com/invalidations/v1.0/1/S/ni.example
    content-type: text/xml
    authorization: MPA KEY:<redacted>

    <paths><path>/a.js</path></paths>
";
        assert_eq!(text, expected);
        let json: serde_json::Value =
            serde_json::from_str(&plan_json(&sample_plan(), &sample_request(), &[])).unwrap();
        let provider = &json["providers"][0];
        assert_eq!(provider["requests"][0]["method"], "POST");
        // Targets by their text, not the plan's indices.
        assert_eq!(
            provider["batches"][0],
            json!({"scope": "ni.example", "bytes": 37, "targets": ["https://a.example/a.js"]})
        );
        assert_eq!(
            provider["targets"][1],
            json!({"target": "https://a.example/a.js", "disposition": "planned", "batch": 0,
                   "slot": 0, "merged_with": "https://a.example/a.js"})
        );
        assert_eq!(
            provider["targets"][2],
            json!({"target": "tag:x", "disposition": "unsupported",
                   "reason": "level3 does not support cache tag targets"})
        );
    }

    #[test]
    fn client_side_dry_run_is_said() {
        let mut plan = sample_plan();
        plan.providers[0].client_side_dry_run = true;
        plan.providers[0].requests.clear();
        plan.providers[0].warnings = vec!["no native dry run".into()];
        let text = plan_text(&plan, &sample_request(), &[]);
        assert!(text.contains("  warning: no native dry run\n"), "{text}");
        assert!(text.contains("nothing would be sent"), "{text}");
        assert!(!text.contains("POST"), "{text}");
    }

    fn info() -> ProviderInfo {
        ProviderInfo {
            name: "eu".into(),
            kind: "limelight".into(),
            account: "limelight/eu".into(),
            endpoint: "https://apis.llnw.com".into(),
            limits: Limits {
                max_items: 100,
                max_body_bytes: Some(32768),
                wildcard_alone: false,
                group_by_scope: false,
                shared_scope: None,
                rate: purgekit::RateLimit {
                    requests: None,
                    items: Some(Budget::per_minute(60)),
                },
                max_queued_items: Some(1000),
                max_in_flight: 1,
                max_response_bytes: purgekit::DEFAULT_MAX_RESPONSE_BYTES,
                ..Limits::default()
            },
            capabilities: Capabilities {
                targets: vec![TargetKind::Url, TargetKind::Pattern, TargetKind::Tag],
                options: vec![OptionKind::Delete, OptionKind::DryRun],
            },
        }
    }

    #[test]
    fn providers_listing() {
        let text = providers_text(&[info()]);
        let expected = "\
eu
  kind:      limelight
  endpoint:  https://apis.llnw.com
  limits:    100 items per request, body at most 32768 bytes
  rate:      60 items per 1m
  queue:     1 in flight, at most 1000 items queued
  targets:   url, pattern, tag
  options:   delete, dry-run
";
        assert_eq!(text, expected);
        let json: serde_json::Value = serde_json::from_str(&providers_json(&[info()])).unwrap();
        assert_eq!(json["providers"][0]["kind"], "limelight");
        assert_eq!(json["providers"][0]["limits"]["max_items"], 100);
    }

    #[test]
    fn status_rendering() {
        let answers: Vec<StatusLine> = vec![
            (
                "abc".into(),
                Ok(Status {
                    handle: Handle("abc".into()),
                    progress: Progress::Pending { percent: Some(40) },
                    detail: "in_progress".into(),
                    poll_after: None,
                }),
            ),
            (
                "zzz".into(),
                Err("rejected by the provider (code 404): unknown id".into()),
            ),
        ];
        assert_eq!(
            status_text("eu", &answers),
            "\
PROVIDER  HANDLE  STATE    DETAIL
eu        abc     pending  in_progress (40%)
eu        zzz     error    rejected by the provider (code 404): unknown id
2 handles: 1 pending, 1 error
"
        );
        let json: serde_json::Value = serde_json::from_str(&status_json("eu", &answers)).unwrap();
        assert_eq!(json["statuses"][0]["percent"], 40);
        assert_eq!(json["statuses"][1]["state"], "error");
    }

    #[test]
    fn durations_print_short() {
        for (d, text) in [
            (Duration::from_secs(60), "1m"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1s 500ms"),
        ] {
            assert_eq!(duration_text(d), text);
            // What the CLI prints, the config and --timeout accept.
            assert_eq!(purgekit::parse_duration(text), Ok(d));
        }
    }
}
