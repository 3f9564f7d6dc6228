//! The commands, over any [`Purger`]: what they print and the exit code they end with.

use std::io::Write;
use std::time::Duration;

use purgekit::{
    Disposition, Handle, Progress, PurgeContext, PurgeRequest, Purger, Report, Reports, Row, State,
    Summary,
};

use crate::Failure;
use crate::args::{FailOn, Output};
use crate::render;

/// Exit code: no row of a kind `--fail-on` names (by default: every row accepted, completed
/// with `--wait`, or dry-run), or nothing to purge.
pub const EXIT_OK: u8 = 0;
/// Exit code: some row failed, is unsupported or was not confirmed complete (as `--fail-on`
/// selects). (A run stopped by a signal exits with 128 + its number instead: 130, 143, 129;
/// see `signals`.)
pub const EXIT_FAILED: u8 = 1;
/// Exit code: usage, config or input error; nothing was sent.
pub const EXIT_USAGE: u8 = 2;

/// Whether `row` fails the run under `fail_on`: failed, unsupported, or — having `waited` —
/// not confirmed complete.
pub fn row_fails(row: &Row, waited: bool, fail_on: &[FailOn]) -> bool {
    match row.state {
        State::Completed | State::DryRun => false,
        State::Accepted => waited && fail_on.contains(&FailOn::Timeout),
        State::Failed => fail_on.contains(&FailOn::Failed),
        State::Unsupported => fail_on.contains(&FailOn::Unsupported),
    }
}

/// The exit code of a finished purge: 1 when cancelled or when a row fails ([`row_fails`]).
#[cfg(test)]
pub fn purge_exit_code(report: &Report, waited: bool, cancelled: bool, fail_on: &[FailOn]) -> u8 {
    exit_code(
        report.results.iter().any(|r| row_fails(r, waited, fail_on)),
        cancelled,
    )
}

fn exit_code(any_row_fails: bool, cancelled: bool) -> u8 {
    if cancelled || any_row_fails {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// How `purge` reports.
pub struct Reporting<'a> {
    /// `--output`; `None` chooses by the number of rows.
    pub output: Option<Output>,
    /// `--fail-on`.
    pub fail_on: &'a [FailOn],
    /// The journaled run's id, for the JSON forms.
    pub run: Option<String>,
}

/// Writes `reports` on `out` as `output` (by default a table up to
/// [`render::TABLE_MAX_ROWS`] rows, a summary above), calling `each` with every row as it is
/// written. Every format but the table streams the rows: each is formed, written and dropped
/// in turn, so none holds the report's rows.
pub fn write_report(
    mut reports: Reports,
    output: Option<Output>,
    run: Option<&str>,
    mut each: impl FnMut(&Row),
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let output = output.unwrap_or(if reports.rows() > render::TABLE_MAX_ROWS {
        Output::Summary
    } else {
        Output::Table
    });
    let mut buffered = std::io::BufWriter::new(out);
    let mut rows = std::iter::from_fn(|| reports.next_rows())
        .flatten()
        .inspect(|row| each(row));
    let written = match output {
        Output::Table => {
            let report = Report::new((&mut rows).collect());
            render::write_report_table(&report, &mut buffered)
        }
        Output::Summary => render::write_report_summary(&mut rows, &mut buffered).map(drop),
        Output::Json => render::write_report_json(&mut rows, run, &mut buffered).map(drop),
        Output::Jsonl => render::write_report_jsonl(&mut rows, run, &mut buffered).map(drop),
    };
    // Rows a failed write (a closed pipe) did not reach still count, for the exit code.
    rows.for_each(drop);
    finish_out(written.and_then(|()| buffered.flush()))
}

/// `purge` of an input without targets: says so (an empty report in JSON) and exits 0.
pub fn nothing_to_purge(output: Option<Output>, out: &mut dyn Write) -> Result<u8, Failure> {
    match output {
        Some(Output::Json | Output::Jsonl) => {
            write_report(Reports::ready(Report::default()), output, None, |_| {}, out)?;
        }
        _ => write_out(out, "nothing to purge: the input holds no target\n")?,
    }
    Ok(EXIT_OK)
}

/// `purge`: purges, calls `finished` (to clear a progress bar), prints the report on `out`
/// as `reporting` says, returns the exit code.
pub async fn purge(
    purger: &dyn Purger,
    request: &PurgeRequest,
    context: &PurgeContext,
    reporting: &Reporting<'_>,
    finished: impl FnOnce(),
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let result = purger.purge_reports(request, context).await;
    finished();
    // An error here means nothing was sent: a usage, config or input error.
    let reports = result.map_err(|e| Failure::Usage(e.to_string()))?;
    let waited = request.wait().is_some() && !request.options().dry_run;
    let mut fails = false;
    let mut summary = Summary::default();
    write_report(
        reports,
        reporting.output,
        reporting.run.as_deref(),
        |row| {
            fails |= row_fails(row, waited, reporting.fail_on);
            summary.count(row);
        },
        out,
    )?;
    let done = summary.accepted + summary.completed;
    let cancelled = context.cancel.is_cancelled();
    if cancelled {
        tracing::warn!(
            "interrupted: {done} of {} rows were accepted before stopping; the rest were not sent",
            summary.total
        );
    }
    tracing::info!("done: {}", render::counts_text(&summary));
    Ok(exit_code(fails, cancelled))
}

/// `plan`: prints the plan; exit 1 when some target is unsupported somewhere, else 0.
pub fn plan(
    purger: &dyn Purger,
    request: &PurgeRequest,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let plan = purger
        .plan(request)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let text = if json {
        render::plan_json(&plan, request, &purger.providers())
    } else {
        render::plan_text(&plan, request, &purger.providers())
    };
    write_out(out, &text)?;
    let unsupported = plan.providers.iter().any(|p| {
        p.dispositions()
            .any(|d| matches!(d, Disposition::Unsupported { .. }))
    });
    Ok(if unsupported { EXIT_FAILED } else { EXIT_OK })
}

/// How long `status --wait` waits between rounds when the provider gives no hint.
pub const STATUS_POLL: Duration = Duration::from_secs(5);

/// `status`: asks `provider` (by default the only one configured) about each handle, all
/// within `timeout`; with `wait`, asks again (after the provider's hint, else
/// [`STATUS_POLL`]) until every purge is completed or failed or `timeout` ends. Exit 1 when a
/// query fails (or was not answered in time), a purge failed, or — waiting — one is still
/// pending.
pub async fn status(
    purger: &dyn Purger,
    provider: Option<&str>,
    handles: &[String],
    timeout: Duration,
    wait: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let names: Vec<String> = purger.providers().into_iter().map(|p| p.name).collect();
    let provider = match provider {
        Some(name) if names.iter().any(|n| n == name) => name.to_owned(),
        Some(name) => {
            return Err(Failure::Usage(format!(
                "no provider named `{name}` is configured (configured: {})",
                names.join(", ")
            )));
        }
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(Failure::Usage(format!(
                "several providers are configured ({}): name the one that accepted the purges \
                 with --provider",
                names.join(", ")
            )));
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let pending = |a: &render::StatusLine| matches!(&a.1, Ok(s) if matches!(s.progress, Progress::Pending { .. }));
    let mut answers: Vec<render::StatusLine> = Vec::with_capacity(handles.len());
    loop {
        let mut next_poll = STATUS_POLL;
        let first = answers.is_empty();
        if first {
            answers = handles
                .iter()
                .map(|h| (h.clone(), Err(String::new())))
                .collect();
        }
        for line in answers.iter_mut() {
            // Asked once; after that, only the pending ones.
            if !first && !pending(line) {
                continue;
            }
            let (handle, answer) = line;
            let asked_for = Handle(handle.clone());
            let asked = tokio::time::timeout_at(deadline, purger.status(&provider, &asked_for));
            *answer = match asked.await {
                Ok(Ok(status)) => {
                    if let Some(after) = status.poll_after {
                        next_poll = next_poll.min(after.max(Duration::from_millis(100)));
                    }
                    Ok(status)
                }
                Ok(Err(e)) if e.is_usage() => return Err(Failure::Usage(e.to_string())),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "no answer within the {} timeout",
                    render::duration_text(timeout)
                )),
            };
        }
        let now = tokio::time::Instant::now();
        if !wait || !answers.iter().any(pending) || now + next_poll >= deadline {
            break;
        }
        tracing::info!(
            "status: some purges pending; asking again in {}",
            render::duration_text(next_poll)
        );
        tokio::time::sleep(next_poll).await;
    }
    let text = if json {
        render::status_json(&provider, &answers)
    } else {
        render::status_text(&provider, &answers)
    };
    write_out(out, &text)?;
    let bad = answers.iter().any(|line| match &line.1 {
        Ok(s) => s.progress == Progress::Failed || (wait && pending(line)),
        Err(_) => true,
    });
    Ok(if bad { EXIT_FAILED } else { EXIT_OK })
}

/// `providers`: lists what is configured.
pub fn providers(purger: &dyn Purger, json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    let providers = purger.providers();
    let text = if json {
        render::providers_json(&providers)
    } else {
        render::providers_text(&providers)
    };
    write_out(out, &text)?;
    Ok(EXIT_OK)
}

/// Writes to stdout; a closed pipe (`purgekit … | head`) is not an error worth a panic.
pub fn write_out(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
    finish_out(out.write_all(text.as_bytes()).and_then(|()| out.flush()))
}

/// The outcome of writing to stdout: a closed pipe is not a failure.
fn finish_out(written: std::io::Result<()>) -> Result<(), Failure> {
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Failed(format!("cannot write the output: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use purgekit::{
        Capabilities, Error, Event, Limits, Plan, PlanBuilder, ProviderInfo, Result, Row, Status,
    };
    use std::sync::{Arc, Mutex};

    /// A purger whose outcome per target is written in the target: `…/fail…` fails,
    /// `tag:…` is unsupported, `…/slow…` stays accepted when waiting (timed out), the rest
    /// are accepted (completed when waiting).
    struct Scripted {
        events: Mutex<Vec<Event>>,
        asked: std::sync::atomic::AtomicUsize,
    }

    impl Scripted {
        fn new() -> Self {
            Scripted {
                events: Mutex::new(Vec::new()),
                asked: std::sync::atomic::AtomicUsize::new(0),
            }
        }
    }

    #[async_trait]
    impl Purger for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn providers(&self) -> Vec<ProviderInfo> {
            vec![ProviderInfo {
                name: "scripted".into(),
                kind: "test".into(),
                account: "test/scripted".into(),
                endpoint: "https://api.test.example".into(),
                limits: Limits::default(),
                capabilities: Capabilities {
                    targets: vec![],
                    options: vec![],
                },
            }]
        }
        fn plan(&self, request: &PurgeRequest) -> Result<Plan> {
            if request.options().note.as_deref() == Some("reject") {
                return Err(Error::invalid("reject", "notes may not say reject"));
            }
            // Every target in one batch but tags, which are unsupported.
            let mut plan = PlanBuilder::new("scripted", "test", request.targets().len());
            let (tags, others): (Vec<u32>, Vec<u32>) = (0..request.targets().len() as u32)
                .partition(|&t| {
                    request.targets()[t as usize]
                        .to_string()
                        .starts_with("tag:")
                });
            if !others.is_empty() {
                plan.batch("", &others, 0, 0)?;
            }
            for t in tags {
                plan.unsupported(t, "no tags".into())?;
            }
            Ok(Plan {
                providers: vec![plan.build()?],
            })
        }
        async fn purge_with(
            &self,
            request: &PurgeRequest,
            context: &PurgeContext,
        ) -> Result<Report> {
            self.plan(request)?;
            let waiting = request.wait().is_some();
            let rows = request
                .targets()
                .iter()
                .map(|t| {
                    let text = t.to_string();
                    let mut row = Row {
                        target: text.as_str().into(),
                        provider: "scripted".into(),
                        state: State::Accepted,
                        handle: Some("h1".into()),
                        attempts: 1,
                        error: None,
                        unfinished: None,
                        warnings: Default::default(),
                    };
                    if context.cancel.is_cancelled() {
                        row.state = State::Failed;
                        row.handle = None;
                        row.attempts = 0;
                        row.error = Some(Error::Cancelled.to_string().into());
                    } else if request.options().dry_run {
                        row.state = State::DryRun;
                    } else if text.starts_with("tag:") {
                        row.state = State::Unsupported;
                        row.error = Some("no tags".into());
                    } else if text.contains("/fail") {
                        row.state = State::Failed;
                        row.error = Some("rejected".into());
                    } else if waiting && text.contains("/slow") {
                        row.error = Some("wait timed out".into());
                        row.unfinished = Some(purgekit::Unfinished::TimedOut);
                    } else if waiting {
                        row.state = State::Completed;
                    }
                    row
                })
                .collect();
            let event = Event::Planned {
                provider: "scripted".into(),
                batches: 1,
                items: request.targets().len(),
            };
            context.emit(event.clone());
            self.events.lock().unwrap().push(event);
            Ok(Report::new(rows))
        }
        async fn status(&self, provider: &str, handle: &Handle) -> Result<Status> {
            assert_eq!(provider, "scripted");
            match handle.as_str() {
                "done" => Ok(Status {
                    handle: handle.clone(),
                    progress: Progress::Completed,
                    detail: "complete".into(),
                    poll_after: None,
                }),
                "broken" => Ok(Status {
                    handle: handle.clone(),
                    progress: Progress::Failed,
                    detail: "failed".into(),
                    poll_after: None,
                }),
                "bad" => Err(Error::invalid("bad", "not a handle of this provider")),
                "never" => Ok(Status {
                    handle: handle.clone(),
                    progress: Progress::Pending { percent: None },
                    detail: "in progress".into(),
                    poll_after: None,
                }),
                "soon" => {
                    let asked = self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(Status {
                        handle: handle.clone(),
                        progress: if asked < 2 {
                            Progress::Pending { percent: Some(50) }
                        } else {
                            Progress::Completed
                        },
                        detail: "soon".into(),
                        poll_after: None,
                    })
                }
                _ => Err(Error::rejected("404", "unknown handle")),
            }
        }
    }

    fn request(targets: &[&str]) -> purgekit::PurgeRequestBuilder {
        targets
            .iter()
            .fold(PurgeRequest::builder(), |b, t| b.parse(t))
    }

    const ALL: [FailOn; 3] = [FailOn::Failed, FailOn::Unsupported, FailOn::Timeout];

    async fn run_purge(request: PurgeRequest, json: bool) -> (Result<u8, Failure>, String) {
        let mut out = Vec::new();
        let reporting = Reporting {
            run: None,
            output: json.then_some(Output::Json),
            fail_on: &ALL,
        };
        let result = purge(
            &Scripted::new(),
            &request,
            &PurgeContext::default(),
            &reporting,
            || {},
            &mut out,
        )
        .await;
        (result, String::from_utf8(out).unwrap())
    }

    #[tokio::test]
    async fn exit_codes_follow_the_rows() {
        let ok = request(&["https://a.example/x"]).build().unwrap();
        assert_eq!(run_purge(ok.clone(), false).await.0.unwrap(), EXIT_OK);
        let waited = ok.clone().with_wait(Some(Duration::from_secs(1)));
        assert_eq!(run_purge(waited, false).await.0.unwrap(), EXIT_OK);

        let failed = request(&["https://a.example/x", "https://a.example/fail"])
            .build()
            .unwrap();
        assert_eq!(run_purge(failed, false).await.0.unwrap(), EXIT_FAILED);
        let unsupported = request(&["tag:x"]).build().unwrap();
        assert_eq!(run_purge(unsupported, false).await.0.unwrap(), EXIT_FAILED);
        let timed_out = request(&["https://a.example/slow"])
            .build()
            .unwrap()
            .with_wait(Some(Duration::from_secs(1)));
        assert_eq!(run_purge(timed_out, false).await.0.unwrap(), EXIT_FAILED);
        let dry = request(&["https://a.example/x"]).dry_run().build().unwrap();
        assert_eq!(run_purge(dry, false).await.0.unwrap(), EXIT_OK);
    }

    #[test]
    fn accepted_is_not_enough_when_waiting() {
        let row = Row {
            target: "https://a.example/".into(),
            provider: "p".into(),
            state: State::Accepted,
            handle: Some("h".into()),
            attempts: 1,
            error: None,
            unfinished: None,
            warnings: Default::default(),
        };
        let report = Report::new(vec![row]);
        assert_eq!(purge_exit_code(&report, false, false, &ALL), EXIT_OK);
        assert_eq!(purge_exit_code(&report, true, false, &ALL), EXIT_FAILED);
        assert_eq!(purge_exit_code(&report, false, true, &ALL), EXIT_FAILED);
        // --fail-on failed,unsupported accepts what waiting could not confirm.
        let lenient = [FailOn::Failed, FailOn::Unsupported];
        assert_eq!(purge_exit_code(&report, true, false, &lenient), EXIT_OK);
        let unsupported = Report::new(vec![Row {
            state: State::Unsupported,
            ..report.results[0].clone()
        }]);
        assert_eq!(
            purge_exit_code(&unsupported, false, false, &ALL),
            EXIT_FAILED
        );
        assert_eq!(
            purge_exit_code(&unsupported, false, false, &[FailOn::Failed]),
            EXIT_OK
        );
        // Cancelled fails whatever --fail-on says.
        assert_eq!(
            purge_exit_code(&report, false, true, &[FailOn::None]),
            EXIT_FAILED
        );
    }

    #[tokio::test]
    async fn pre_send_errors_are_usage_failures() {
        let r = request(&["https://a.example/x"])
            .note("reject")
            .build()
            .unwrap();
        let (result, out) = run_purge(r, false).await;
        assert!(matches!(result, Err(Failure::Usage(m)) if m.contains("notes may not say reject")));
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn json_output_is_one_document() {
        let r = request(&["https://a.example/x", "tag:t"]).build().unwrap();
        let (result, out) = run_purge(r, true).await;
        assert_eq!(result.unwrap(), EXIT_FAILED);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["results"].as_array().unwrap().len(), 2);
        assert_eq!(value["results"][1]["state"], "unsupported");
        assert_eq!(value["summary"]["unsupported"], 1);
    }

    #[tokio::test]
    async fn cancelled_purge_prints_what_was_done_and_fails() {
        let context = PurgeContext::default();
        context.cancel.cancel();
        let seen = Arc::new(Mutex::new(0usize));
        let counter = seen.clone();
        let context = PurgeContext {
            progress: Some(Arc::new(move |_: &Event| *counter.lock().unwrap() += 1)),
            ..context
        };
        let r = request(&["https://a.example/x"]).build().unwrap();
        let mut out = Vec::new();
        let reporting = Reporting {
            run: None,
            output: None,
            fail_on: &ALL,
        };
        let code = purge(&Scripted::new(), &r, &context, &reporting, || {}, &mut out)
            .await
            .unwrap();
        assert_eq!(code, EXIT_FAILED);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("cancelled before sending"), "{text}");
        assert_eq!(*seen.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn plan_exit_codes() {
        let mut out = Vec::new();
        let r = request(&["https://a.example/x"]).build().unwrap();
        assert_eq!(
            plan(&Scripted::new(), &r, false, &mut out).unwrap(),
            EXIT_OK
        );
        let r = request(&["https://a.example/x", "tag:t"]).build().unwrap();
        assert_eq!(
            plan(&Scripted::new(), &r, true, &mut out).unwrap(),
            EXIT_FAILED
        );
        let r = request(&["https://a.example/x"])
            .note("reject")
            .build()
            .unwrap();
        assert!(matches!(
            plan(&Scripted::new(), &r, false, &mut out),
            Err(Failure::Usage(_))
        ));
    }

    const T: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn status_exit_codes() {
        let p = Scripted::new();
        let mut out = Vec::new();
        let handles = |h: &[&str]| h.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            status(&p, None, &handles(&["done"]), T, false, false, &mut out)
                .await
                .unwrap(),
            EXIT_OK
        );
        assert_eq!(
            status(
                &p,
                Some("scripted"),
                &handles(&["done", "broken"]),
                T,
                false,
                false,
                &mut out
            )
            .await
            .unwrap(),
            EXIT_FAILED
        );
        assert_eq!(
            status(
                &p,
                Some("scripted"),
                &handles(&["unknown"]),
                T,
                false,
                true,
                &mut out
            )
            .await
            .unwrap(),
            EXIT_FAILED
        );
        assert!(matches!(
            status(
                &p,
                Some("scripted"),
                &handles(&["bad"]),
                T,
                false,
                false,
                &mut out
            )
            .await,
            Err(Failure::Usage(_))
        ));
        assert!(matches!(
            status(&p, Some("nope"), &handles(&["done"]), T, false, false, &mut out).await,
            Err(Failure::Usage(m)) if m.contains("configured: scripted")
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn status_wait_asks_again_until_settled_or_timed_out() {
        let p = Scripted::new();
        let handles = |h: &[&str]| h.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // "soon" is pending twice, then complete.
        let mut out = Vec::new();
        let started = tokio::time::Instant::now();
        let code = status(
            &p,
            None,
            &handles(&["soon", "done"]),
            T,
            true,
            false,
            &mut out,
        )
        .await
        .unwrap();
        assert_eq!(code, EXIT_OK);
        assert_eq!(started.elapsed(), STATUS_POLL * 2);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("completed"), "{text}");
        // Never settles: asked until the timeout, then exit 1 with it still pending.
        let mut out = Vec::new();
        let code = status(&p, None, &handles(&["never"]), T, true, false, &mut out)
            .await
            .unwrap();
        assert_eq!(code, EXIT_FAILED);
        assert!(String::from_utf8(out).unwrap().contains("pending"));
        // Without --wait, pending is an answer.
        let mut out = Vec::new();
        let code = status(&p, None, &handles(&["never"]), T, false, false, &mut out)
            .await
            .unwrap();
        assert_eq!(code, EXIT_OK);
    }

    #[test]
    fn broken_pipe_is_quiet() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert!(providers(&Scripted::new(), false, &mut Closed).is_ok());
    }
}
