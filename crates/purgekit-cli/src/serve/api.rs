//! The HTTP API (docs/api.yaml): submit purges, read their state, rows and progress, the
//! providers, health, readiness and metrics. Errors are `application/problem+json`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use purgekit::journal::{ProviderAccount, RunInfo, parse_run_id};
use purgekit::{NOT_SENT, RunId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::App;
use super::auth::Refusal;
use crate::Failure;

/// The API's routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/purges", post(submit))
        .route("/v1/purges/{id}", get(purge))
        .route("/v1/purges/{id}/events", get(events))
        .route("/v1/providers", get(providers))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .layer(DefaultBodyLimit::max(app.max_body))
        .with_state(app)
}

/// An RFC 9457 problem.
fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": detail.into(),
    });
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// A problem not yet made a response (small, for `Result`s).
struct Problem(StatusCode, String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        problem(self.0, self.1)
    }
}

fn journal_problem(e: purgekit::Error) -> Response {
    tracing::warn!("{e}");
    problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

/// Auth on every route but `/healthz`, the `POST` rate, and the latency metric.
async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let response = if request.uri().path() == "/healthz" {
        next.run(request).await
    } else {
        let refusal = app.auth.check(
            request
                .headers()
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
            request.uri().query(),
            method == axum::http::Method::POST,
        );
        match refusal {
            Ok(()) => next.run(request).await,
            Err(Refusal::Unauthorized(why)) => {
                let mut response = problem(StatusCode::UNAUTHORIZED, why);
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"purgekit\""),
                );
                response
            }
            Err(Refusal::TokenInQuery) => problem(
                StatusCode::BAD_REQUEST,
                "credentials are refused in the URL's query (it ends up in logs): send \
                 `Authorization: Bearer TOKEN`",
            ),
            Err(Refusal::TooMany(wait)) => {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let mut response = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("this token's POST rate is used up; retry in {seconds} s"),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
                response
            }
        }
    };
    app.metrics
        .latency
        .get_or_create(&super::metrics::RouteLabel {
            method: method.to_string(),
            route,
            status: response.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "no such route (docs/api.yaml lists them)",
    )
}

/// `POST /v1/purges`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    targets: Vec<String>,
    #[serde(default)]
    providers: Vec<String>,
    #[serde(default)]
    options: SubmitOptions,
    #[serde(default)]
    wait: bool,
    #[serde(default)]
    confirm: bool,
}

/// How to purge, as `purge`'s flags say it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitOptions {
    #[serde(default)]
    delete: bool,
    #[serde(default)]
    ignore_case: bool,
    #[serde(default)]
    include_query: bool,
    #[serde(default)]
    notify: Vec<String>,
    callback: Option<String>,
    note: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Serialize)]
struct Submitted {
    id: String,
    status_url: String,
}

/// The longest Idempotency-Key accepted.
const MAX_KEY: usize = 255;

async fn submit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {} bytes", app.max_body),
            );
        }
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let key = match headers.get("idempotency-key").map(HeaderValue::to_str) {
        None => None,
        Some(Ok(key)) if !key.is_empty() && key.len() <= MAX_KEY => Some(key.to_owned()),
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("Idempotency-Key: 1 to {MAX_KEY} visible ASCII characters"),
            );
        }
    };
    let submission: Submission =
        match serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&body)) {
            Ok(s) => s,
            Err(e) => {
                let path = e.path().to_string();
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not a purge: `{path}`: {}", e.inner()),
                );
            }
        };
    let (request, providers) = match validate(&app, submission) {
        Ok(valid) => valid,
        Err(message) => return problem(StatusCode::UNPROCESSABLE_ENTITY, message),
    };
    match app
        .journal
        .submit(&request, &providers, key.as_deref())
        .await
    {
        Ok((run, new)) => {
            if new {
                app.metrics.submitted.inc();
            }
            let status_url = format!("/v1/purges/{run}");
            let mut response = (
                StatusCode::ACCEPTED,
                axum::Json(Submitted {
                    id: run.to_string(),
                    status_url: status_url.clone(),
                }),
            )
                .into_response();
            if let Ok(location) = HeaderValue::from_str(&status_url) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(e) if e.is_usage() => problem(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(e) => journal_problem(e),
    }
}

/// The submission as `purge` would build it from the same flags: the same checks, the same
/// messages. Returns the request and the providers it runs on.
fn validate(
    app: &App,
    submission: Submission,
) -> Result<(purgekit::PurgeRequest, Vec<ProviderAccount>), String> {
    let options = submission.options;
    let args = crate::args::PurgeArgs {
        targets: submission.targets,
        provider: submission.providers,
        options: crate::args::OptionArgs {
            delete: options.delete,
            ignore_case: options.ignore_case,
            include_query: options.include_query,
            notify: options.notify,
            callback: options.callback,
            note: options.note,
        },
        dry_run: options.dry_run.then_some(crate::args::DryRun::Client),
        wait: submission.wait,
        yes: submission.confirm,
        require_targets: true,
        ..crate::args::PurgeArgs::default()
    };
    let usage = |failure: Failure| match failure {
        Failure::Usage(m) | Failure::Failed(m) => m,
    };
    let request = crate::input::build_request(&args, std::io::empty())
        .map_err(usage)?
        .ok_or("nothing to purge")?;
    if request
        .targets()
        .iter()
        .any(|t| t.kind() == purgekit::TargetKind::Everything)
        && !args.yes
    {
        return Err(
            "`everything` purges the whole property, service or zone of every selected \
             provider: add \"confirm\": true to confirm"
                .to_owned(),
        );
    }
    let providers: Vec<String> = if args.provider.is_empty() {
        app.config.names().into_iter().map(str::to_owned).collect()
    } else {
        app.config
            .select(&args.provider)
            .map_err(|e| e.to_string())?
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    // Checked now as `purge` checks before sending, so a request some provider cannot plan
    // is refused before it is queued.
    let purger = app.purger(&providers).map_err(|e| e.to_string())?;
    purger.check(&request).map_err(|e| e.to_string())?;
    // Each provider's account goes with its unit of work.
    let providers = purger
        .providers()
        .iter()
        .map(ProviderAccount::from)
        .collect();
    Ok((request, providers))
}

/// `GET /v1/purges/{id}`'s query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowsQuery {
    state: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Rows a page holds by default, and at most.
const PAGE: usize = 1000;
const MAX_PAGE: usize = 10_000;

/// The API's state of a run: `queued` (no worker holds any of its work, none was sent),
/// `running` (a worker holds some of it, or some was sent: a run whose units are between
/// workers is still running), `done`.
fn state_of(info: &RunInfo) -> &'static str {
    let b = &info.batches;
    match info.state.as_str() {
        "finished" => "done",
        "running" => "running",
        _ if b.sending + b.accepted + b.completed + b.failed > 0 => "running",
        _ => "queued",
    }
}

fn run_of(id: &str) -> Result<RunId, Problem> {
    parse_run_id(id).map_err(|_| Problem(StatusCode::NOT_FOUND, format!("no run `{id}`")))
}

async fn info_of(app: &App, run: RunId) -> Result<RunInfo, Problem> {
    app.journal.run_info(run).await.map_err(|e| {
        if e.is_usage() {
            Problem(StatusCode::NOT_FOUND, format!("no run `{run}`"))
        } else {
            tracing::warn!("{e}");
            Problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    })
}

async fn purge(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    query: Result<Query<RowsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return problem(
            StatusCode::BAD_REQUEST,
            "the query takes state, limit and cursor",
        );
    };
    const STATES: [&str; 6] = [
        "queued",
        "accepted",
        "completed",
        "failed",
        "unsupported",
        "dry_run",
    ];
    if let Some(state) = &query.state
        && !STATES.contains(&state.as_str())
    {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("state `{state}`: one of {}", STATES.join(", ")),
        );
    }
    let limit = query.limit.unwrap_or(PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("limit {limit}: from 1 to {MAX_PAGE}"),
        );
    }
    let Ok(start) = query.cursor.as_deref().unwrap_or("0").parse::<usize>() else {
        return problem(StatusCode::BAD_REQUEST, "cursor: give a page's next_cursor");
    };
    let run = match run_of(&id) {
        Ok(run) => run,
        Err(problem) => return problem.into_response(),
    };
    let info = match info_of(&app, run).await {
        Ok(info) => info,
        Err(problem) => return problem.into_response(),
    };
    let report = match app.journal.report(run).await {
        Ok(report) => report,
        Err(e) => return journal_problem(e),
    };
    let state = state_of(&info);
    // A batch not sent yet is queued (the journal's report calls it failed, not sent).
    let row_state = |row: &purgekit::Row| {
        if state != "done" && row.error.as_deref() == Some(NOT_SENT) {
            "queued"
        } else {
            row.state.name()
        }
    };
    // Every row is counted; only the page's rows are written out.
    let mut counts = STATES.map(|s| (s, 0u64));
    let (mut matched, mut page) = (0, Vec::with_capacity(limit.min(report.results.len())));
    for row in &report.results {
        let row_state = row_state(row);
        if let Some((_, n)) = counts.iter_mut().find(|(s, _)| *s == row_state) {
            *n += 1;
        }
        if query.state.as_deref().is_some_and(|s| s != row_state) {
            continue;
        }
        if (start..start.saturating_add(limit)).contains(&matched) {
            let queued = row_state == "queued";
            page.push(json!({
                "target": row.target.to_string(),
                "provider": row.provider.as_ref(),
                "state": row_state,
                "handle": row.handle.as_deref(),
                "attempts": row.attempts,
                "error": if queued { None } else { row.error.as_deref() },
                "warnings": row.warnings.iter().map(|w| w.as_ref()).collect::<Vec<_>>(),
            }));
        }
        matched += 1;
    }
    let mut summary = serde_json::Map::new();
    summary.insert("total".to_owned(), json!(report.results.len()));
    for (name, n) in counts {
        summary.insert(name.to_owned(), json!(n));
    }
    let next = (start.saturating_add(limit) < matched).then(|| (start + limit).to_string());
    axum::Json(json!({
        "id": info.id,
        "state": state,
        "submitted_ms": info.started_ms,
        "targets": info.targets,
        "providers": info.providers,
        "batches": info.batches,
        "summary": summary,
        "rows": page,
        "next_cursor": next,
    }))
    .into_response()
}

/// How often the event stream looks at the journal.
const EVENTS_POLL: Duration = Duration::from_millis(250);

/// Server-sent events of a run's progress, read from the journal (so whichever instance runs
/// it): a `progress` event whenever its batch counts change, `done` at the end.
async fn events(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let run = match run_of(&id) {
        Ok(run) => run,
        Err(problem) => return problem.into_response(),
    };
    let first = match info_of(&app, run).await {
        Ok(info) => info,
        Err(problem) => return problem.into_response(),
    };
    let state = (app, run, Some(first), None::<String>);
    let stream = futures_util::stream::unfold(state, |(app, run, info, last)| async move {
        let mut info = info;
        loop {
            let current = match info.take() {
                Some(info) => info,
                None => {
                    tokio::time::sleep(EVENTS_POLL).await;
                    match app.journal.run_info(run).await {
                        Ok(info) => info,
                        Err(e) => {
                            let event = SseEvent::default().event("error").data(e.to_string());
                            let end = Some("done".to_owned());
                            return Some((Ok::<_, Infallible>(event), (app, run, None, end)));
                        }
                    }
                }
            };
            if last.as_deref() == Some("done") {
                return None;
            }
            let state = state_of(&current);
            let data = json!({ "state": state, "batches": current.batches }).to_string();
            if last.as_ref() != Some(&data) {
                let name = if state == "done" { "done" } else { "progress" };
                let event = SseEvent::default().event(name).data(data.clone());
                let next = if state == "done" {
                    "done".to_owned()
                } else {
                    data
                };
                return Some((Ok(event), (app, run, None, Some(next))));
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn providers(State(app): State<Arc<App>>) -> Response {
    let purger = match app.purger(&[]) {
        Ok(purger) => purger,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let providers: Vec<_> = purger
        .providers()
        .into_iter()
        .map(|p| json!({ "name": p.name, "kind": p.kind }))
        .collect();
    axum::Json(json!({ "providers": providers })).into_response()
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.journal.ping().await {
        Ok(()) => axum::Json(json!({ "status": "ok" })).into_response(),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    if let Ok(depth) = app.journal.queue_depth().await {
        app.metrics.queued_runs.clear();
        app.metrics.oldest_queued.clear();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        for (account, d) in depth {
            let label = super::metrics::AccountLabel { account };
            app.metrics.queued_runs.get_or_create(&label).set(d.runs);
            if let Some(oldest) = d.oldest_ms {
                app.metrics
                    .oldest_queued
                    .get_or_create(&label)
                    .set((now - oldest).max(0) as f64 / 1000.0);
            }
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        app.metrics.encode(),
    )
        .into_response()
}
