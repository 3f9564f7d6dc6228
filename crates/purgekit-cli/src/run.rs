//! The commands, over any [`Purger`]: what they print and the exit code they end with.

use std::io::Write;
use std::time::Duration;

use purgekit::{Disposition, Handle, Progress, PurgeContext, PurgeRequest, Purger, Report, State};

use crate::Failure;
use crate::render;

/// Exit code: every row accepted (completed, with `--wait`) or dry-run.
pub const EXIT_OK: u8 = 0;
/// Exit code: some row failed, is unsupported or timed out waiting. (A run stopped by a signal
/// exits with 128 + its number instead: 130, 143, 129; see `signals`.)
pub const EXIT_FAILED: u8 = 1;
/// Exit code: usage, config or input error; nothing was sent.
pub const EXIT_USAGE: u8 = 2;

/// The exit code of a finished purge.
pub fn purge_exit_code(report: &Report, waited: bool, cancelled: bool) -> u8 {
    let good = |state: State, error: bool| match state {
        State::Completed | State::DryRun => true,
        State::Accepted => !waited && !error,
        State::Failed | State::Unsupported => false,
    };
    if !cancelled
        && report
            .results
            .iter()
            .all(|row| good(row.state, row.error.is_some()))
    {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// `purge`: purges, calls `finished` (to clear a progress bar), prints the report (a table or
/// JSON) on `out`, returns the exit code.
pub async fn purge(
    purger: &dyn Purger,
    request: &PurgeRequest,
    context: &PurgeContext,
    json: bool,
    finished: impl FnOnce(),
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let result = purger.purge_with(request, context).await;
    finished();
    // An error here means nothing was sent: a usage, config or input error.
    let report = result.map_err(|e| Failure::Usage(e.to_string()))?;
    let cancelled = context.cancel.is_cancelled();
    if cancelled {
        let done = report
            .results
            .iter()
            .filter(|r| matches!(r.state, State::Accepted | State::Completed))
            .count();
        tracing::warn!(
            "interrupted: {done} of {} rows were accepted before stopping; the rest were not sent",
            report.results.len()
        );
    }
    let mut buffered = std::io::BufWriter::new(out);
    let written = if json {
        render::write_report_json(&report, &mut buffered)
    } else {
        render::write_report_table(&report, &mut buffered)
    };
    finish_out(written.and_then(|()| buffered.flush()))?;
    Ok(purge_exit_code(
        &report,
        request.wait().is_some() && !request.options().dry_run,
        cancelled,
    ))
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
        render::plan_json(&plan, request)
    } else {
        render::plan_text(&plan, request)
    };
    write_out(out, &text)?;
    let unsupported = plan.providers.iter().any(|p| {
        p.targets
            .iter()
            .any(|d| matches!(d, Disposition::Unsupported { .. }))
    });
    Ok(if unsupported { EXIT_FAILED } else { EXIT_OK })
}

/// `status`: asks `provider` about each handle, all within `timeout`; exit 1 when a query fails
/// (or was not answered in time) or a purge failed.
pub async fn status(
    purger: &dyn Purger,
    provider: &str,
    handles: &[String],
    timeout: Duration,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let names: Vec<String> = purger.providers().into_iter().map(|p| p.name).collect();
    if !names.iter().any(|n| n == provider) {
        return Err(Failure::Usage(format!(
            "no provider named `{provider}` is configured (configured: {})",
            names.join(", ")
        )));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut answers = Vec::with_capacity(handles.len());
    for handle in handles {
        let asked_for = Handle(handle.clone());
        let asked = tokio::time::timeout_at(deadline, purger.status(provider, &asked_for));
        let answer = match asked.await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(e)) if e.is_usage() => return Err(Failure::Usage(e.to_string())),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within the {} timeout",
                render::duration_text(timeout)
            )),
        };
        answers.push((handle.clone(), answer));
    }
    let text = if json {
        render::status_json(provider, &answers)
    } else {
        render::status_text(provider, &answers)
    };
    write_out(out, &text)?;
    let bad = answers
        .iter()
        .any(|(_, a)| !matches!(a, Ok(s) if s.progress != Progress::Failed));
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
fn write_out(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
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
        Capabilities, Error, Event, Limits, Plan, ProviderInfo, ProviderPlan, Result, Row, Status,
    };
    use std::sync::{Arc, Mutex};

    /// A purger whose outcome per target is written in the target: `…/fail…` fails,
    /// `tag:…` is unsupported, `…/slow…` stays accepted when waiting (timed out), the rest
    /// are accepted (completed when waiting).
    struct Scripted {
        events: Mutex<Vec<Event>>,
    }

    impl Scripted {
        fn new() -> Self {
            Scripted {
                events: Mutex::new(Vec::new()),
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
            Ok(Plan {
                providers: vec![ProviderPlan {
                    provider: "scripted".into(),
                    kind: "test".into(),
                    batches: vec![],
                    targets: request
                        .targets()
                        .iter()
                        .map(|t| {
                            if t.to_string().starts_with("tag:") {
                                Disposition::Unsupported {
                                    reason: "no tags".into(),
                                }
                            } else {
                                Disposition::Planned {
                                    batch: 0,
                                    slot: 0,
                                    merged_with: None,
                                }
                            }
                        })
                        .collect(),
                    warnings: vec![],
                    requests: vec![],
                    client_side_dry_run: false,
                    billable: None,
                }],
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
                        target: text.clone(),
                        provider: "scripted".into(),
                        state: State::Accepted,
                        handle: Some("h1".into()),
                        attempts: 1,
                        error: None,
                        warnings: vec![],
                    };
                    if context.cancel.is_cancelled() {
                        row.state = State::Failed;
                        row.handle = None;
                        row.attempts = 0;
                        row.error = Some(Error::Cancelled.to_string());
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
                _ => Err(Error::rejected("404", "unknown handle")),
            }
        }
    }

    fn request(targets: &[&str]) -> purgekit::PurgeRequestBuilder {
        targets
            .iter()
            .fold(PurgeRequest::builder(), |b, t| b.parse(t))
    }

    async fn run_purge(request: PurgeRequest, json: bool) -> (Result<u8, Failure>, String) {
        let mut out = Vec::new();
        let result = purge(
            &Scripted::new(),
            &request,
            &PurgeContext::default(),
            json,
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
            warnings: vec![],
        };
        let report = Report::new(vec![row]);
        assert_eq!(purge_exit_code(&report, false, false), EXIT_OK);
        assert_eq!(purge_exit_code(&report, true, false), EXIT_FAILED);
        assert_eq!(purge_exit_code(&report, false, true), EXIT_FAILED);
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
        let code = purge(&Scripted::new(), &r, &context, false, || {}, &mut out)
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
            status(&p, "scripted", &handles(&["done"]), T, false, &mut out)
                .await
                .unwrap(),
            EXIT_OK
        );
        assert_eq!(
            status(
                &p,
                "scripted",
                &handles(&["done", "broken"]),
                T,
                false,
                &mut out
            )
            .await
            .unwrap(),
            EXIT_FAILED
        );
        assert_eq!(
            status(&p, "scripted", &handles(&["unknown"]), T, true, &mut out)
                .await
                .unwrap(),
            EXIT_FAILED
        );
        assert!(matches!(
            status(&p, "scripted", &handles(&["bad"]), T, false, &mut out).await,
            Err(Failure::Usage(_))
        ));
        assert!(matches!(
            status(&p, "nope", &handles(&["done"]), T, false, &mut out).await,
            Err(Failure::Usage(m)) if m.contains("configured: scripted")
        ));
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
