//! Adding a CDN purgekit does not know: implement the provider SPI, and the planner, the engine
//! (rate limits, retries, waiting), the report and every tool built on `Purger` work with it.
//!
//! "Acme CDN" purges by POSTing JSON `{"urls":[…],"tags":[…],"delete":bool}` to `/v2/purge` with a
//! bearer token, at most 50 items per request, and answers `202 {"id":"…"}`; `GET /v2/purge/{id}`
//! says `{"state":"pending"|"done"}`. A tiny Acme server runs in-process on 127.0.0.1, so this
//! runs offline. Like a built-in provider, Acme owns its config (`AcmeConfig`, serde) and is
//! registered by kind; `examples/custom_provider.toml` configures it:
//!
//! ```sh
//! cargo run --example custom_provider
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use purgekit::{
    Accepted, Batch, Budget, Capabilities, Config, Error, Handle, HttpRequest, HttpResponse, Item,
    Limits, Mapped, OptionKind, Options, Progress, Provider, PurgeRequest, Purger, REDACTED,
    RateLimit, Registry, Result, Secret, Status, Target, TargetKind,
};
use serde_json::{Value, json};

/// Acme's `[providers.<name>]` table: its keys, its defaults; unknown keys are refused.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AcmeConfig {
    #[serde(default = "default_endpoint")]
    endpoint: String,
    token: Secret,
    rate_limit: Option<RateLimit>,
}

fn default_endpoint() -> String {
    "https://api.acme-cdn.example".to_owned()
}

/// The provider: a codec from batches to Acme's HTTP messages, and back. No I/O here.
#[derive(Debug, Clone)]
struct AcmeCdn {
    endpoint: String,
    token: Secret,
    rate: RateLimit,
}

impl AcmeCdn {
    /// Checks the config: what the registry calls for `kind = "acme"`.
    fn new(config: AcmeConfig) -> Result<AcmeCdn> {
        Ok(AcmeCdn {
            endpoint: purgekit::normalize_endpoint("endpoint", &config.endpoint)?,
            token: config.token,
            rate: config.rate_limit.unwrap_or(RateLimit {
                requests: Some(Budget::new(5, Duration::from_secs(1))),
                items: None,
            }),
        })
    }
}

impl Provider for AcmeCdn {
    fn kind(&self) -> &'static str {
        "acme"
    }

    fn account(&self) -> String {
        "acme-demo".to_owned()
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn limits(&self) -> Limits {
        Limits {
            max_items: 50,
            max_body_bytes: Some(64 * 1024),
            rate: self.rate,
            ..Limits::default()
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            targets: vec![TargetKind::Url, TargetKind::Tag],
            options: vec![OptionKind::Delete],
        }
    }

    fn map(&self, target: &Target, _options: &Options) -> Result<Mapped> {
        // Only kinds from `capabilities` get here; the planner reports the rest as unsupported.
        let value = target.value().to_owned();
        Ok(Mapped::Item(Item {
            kind: target.kind(),
            bytes: serde_json::to_string(&value).map_or(0, |s| s.len()) + 1,
            value,
            scope: String::new(),
            wildcard: false,
        }))
    }

    fn body_overhead(&self, _options: &Options) -> usize {
        r#"{"urls":[],"tags":[],"delete":false}"#.len()
    }

    fn encode(&self, batch: &Batch, options: &Options, _now: SystemTime) -> Result<HttpRequest> {
        let of_kind = |kind: TargetKind| -> Vec<&str> {
            batch
                .items
                .iter()
                .filter(|i| i.kind == kind)
                .map(|i| i.value.as_str())
                .collect()
        };
        let body = json!({
            "urls": of_kind(TargetKind::Url),
            "tags": of_kind(TargetKind::Tag),
            "delete": options.action == purgekit::Action::Delete,
        });
        purgekit::http::Request::post(format!("{}/v2/purge", self.endpoint))
            .header("authorization", format!("Bearer {}", self.token.expose()))
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .map_err(|e| Error::protocol(e.to_string()))
    }

    fn decode(&self, _batch: &Batch, response: HttpResponse) -> Result<Accepted> {
        let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        match response.status().as_u16() {
            202 => {
                let id = body["id"]
                    .as_str()
                    .ok_or_else(|| Error::protocol("202 without an id"))?;
                Ok(Accepted {
                    handle: Handle(id.to_owned()),
                    poll_after: Some(Duration::from_millis(200)),
                    warnings: Vec::new(),
                })
            }
            401 => Err(Error::auth("Acme refused the token")),
            429 => Err(Error::RateLimited {
                retry_after: Some(Duration::from_secs(1)),
                message: "Acme says slow down".to_owned(),
            }),
            code @ 500.. => Err(Error::transient(format!("Acme answered {code}"))),
            code => Err(Error::rejected(code.to_string(), body.to_string())),
        }
    }

    fn encode_status(&self, handle: &Handle, _now: SystemTime) -> Result<HttpRequest> {
        purgekit::http::Request::get(format!("{}/v2/purge/{handle}", self.endpoint))
            .header("authorization", format!("Bearer {}", self.token.expose()))
            .body(Vec::new())
            .map_err(|e| Error::protocol(e.to_string()))
    }

    fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
        if response.status() != 200 {
            return Err(Error::rejected(
                response.status().as_str(),
                "unknown purge id",
            ));
        }
        let body: Value = serde_json::from_slice(response.body())
            .map_err(|e| Error::protocol(format!("status is not JSON: {e}")))?;
        let state = body["state"].as_str().unwrap_or_default().to_owned();
        let progress = match state.as_str() {
            "done" => Progress::Completed,
            "pending" => Progress::Pending { percent: None },
            _ => Progress::Failed,
        };
        Ok(Status {
            handle: handle.clone(),
            progress,
            detail: state,
            poll_after: None,
        })
    }

    fn redact(&self, request: &mut HttpRequest) {
        let redacted = format!("Bearer {REDACTED}");
        if let Ok(value) = redacted.parse() {
            request.headers_mut().insert("authorization", value);
        }
    }
}

/// A stand-in Acme server: checks the token, hands out ids, reports each purge done once asked
/// a second time.
async fn acme_server(token: &'static str) -> std::io::Result<String> {
    use axum::Router;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};

    #[derive(Clone, Default)]
    struct Acme {
        next: Arc<AtomicUsize>,
        polls: Arc<AtomicUsize>,
    }
    let authorized = move |headers: &HeaderMap| {
        headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some(&*format!("Bearer {token}"))
    };
    let app = Router::new()
        .route(
            "/v2/purge",
            post(
                move |State(acme): State<Acme>, headers: HeaderMap, body: String| async move {
                    if !authorized(&headers) {
                        return (StatusCode::UNAUTHORIZED, "{}".to_owned());
                    }
                    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    println!("  acme server: purge {body}");
                    let id = acme.next.fetch_add(1, Ordering::Relaxed) + 1;
                    (
                        StatusCode::ACCEPTED,
                        json!({ "id": format!("acme-{id}") }).to_string(),
                    )
                },
            ),
        )
        .route(
            "/v2/purge/{id}",
            get(
                |State(acme): State<Acme>, Path(id): Path<String>| async move {
                    let polls = acme.polls.fetch_add(1, Ordering::Relaxed);
                    let state = if polls == 0 { "pending" } else { "done" };
                    json!({ "id": id, "state": state }).to_string()
                },
            ),
        )
        .with_state(Acme::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let endpoint = acme_server("acme-demo-token").await?;
    // The built-in providers and Acme; the config file names it by kind.
    let mut registry = Registry::builtin();
    registry.register("acme", AcmeCdn::new);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/custom_provider.toml");
    // In production `Config::load_with(&registry, path)` reads `${…}` from the environment.
    let env = |name: &str| match name {
        "ACME_ENDPOINT" => Some(endpoint.clone()),
        "ACME_TOKEN" => Some("acme-demo-token".to_owned()),
        _ => None,
    };
    let config = Config::parse_with(&registry, &std::fs::read_to_string(path)?, env)?;
    // From here on, Acme is a purger like any other: plan, purge, wait, status.
    let purger: Arc<dyn Purger> = config.build()?;

    let request = PurgeRequest::builder()
        .url("https://www.example.com/app.js")
        .url("https://www.example.com/app.css")
        .tag("homepage")
        .pattern("https://www.example.com/img/*") // Acme has no wildcards: reported, not sent
        .build()?
        .with_wait(Some(Duration::from_secs(10)));

    let plan = purger.plan(&request)?;
    let sent = &plan.providers[0].requests[0];
    println!("plan: {} {}", sent.method, sent.url);
    for (name, value) in &sent.headers {
        println!("  {name}: {value}"); // the token shows as <redacted>
    }
    println!("  {}", sent.body);

    println!("purge:");
    let report = purger.purge(&request).await?;
    for row in &report.results {
        println!(
            "  {:<34} {:<12} {}",
            row.target,
            row.state.to_string(),
            row.error
                .as_deref()
                .unwrap_or(row.handle.as_deref().unwrap_or("-"))
        );
    }
    let handle = report.results[0].handle.clone().expect("accepted");
    let status = purger.status("acme", &Handle(handle.to_string())).await?;
    println!("status of {}: {}", status.handle, status.detail);
    Ok(())
}
