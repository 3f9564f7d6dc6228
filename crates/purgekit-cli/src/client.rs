//! `submit` and `status --server`: the CLI as a client of `purgekit serve` (docs/api.yaml).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Failure;
use crate::args::{DEFAULT_WAIT_TIMEOUT, ServerArgs, SubmitArgs};
use crate::run::{self, EXIT_FAILED, EXIT_OK};

/// The largest answer read from the service.
const MAX_ANSWER: usize = 64 * 1024 * 1024;
/// Each request's deadline.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `--wait` asks.
const POLL: Duration = Duration::from_millis(500);

/// A client of one service.
struct Service {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Service {
    fn new(args: &ServerArgs) -> Result<Service, Failure> {
        let Some(base) = &args.server else {
            return Err(Failure::Usage(
                "--server: give the service's URL (or set PURGEKIT_SERVER)".to_owned(),
            ));
        };
        let parsed = url::Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"));
        if parsed.is_none() {
            return Err(Failure::Usage(format!(
                "--server {base}: give an http:// or https:// URL"
            )));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Failure::Failed(e.to_string()))?;
        Ok(Service {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: args.token.clone(),
        })
    }

    /// Sends a request to `path`; the answer's status and JSON body. A problem answer is a
    /// failure carrying its `detail` (usage for 4xx: nothing was queued).
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let mut response = request
            .send()
            .await
            .map_err(|e| Failure::Failed(format!("{}: {e}", self.base)))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::Failed(format!("{}: {e}", self.base)))?
        {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(Failure::Failed(format!(
                    "{}: the answer is over {MAX_ANSWER} bytes",
                    self.base
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let value: Value = serde_json::from_slice(&body).map_err(|_| {
            Failure::Failed(format!(
                "{}: answered {status} with a body that is not JSON",
                self.base
            ))
        })?;
        if status.is_success() {
            return Ok(value);
        }
        let detail = value["detail"].as_str().unwrap_or("(no detail)");
        let message = format!("the service answered {status}: {detail}");
        Err(if status.is_client_error() && status.as_u16() != 429 {
            Failure::Usage(message)
        } else {
            Failure::Failed(message)
        })
    }

    /// Every row of run `id`: the first page's document with the rows of all pages.
    async fn run(&self, id: &str) -> Result<Value, Failure> {
        let url = format!("{}/v1/purges/{id}", self.base);
        let mut document = self.call(self.http.get(&url)).await?;
        // A cursor is a row number: anything else is not followed.
        while let Some(cursor) = document["next_cursor"]
            .as_str()
            .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
        {
            let page = self
                .call(self.http.get(format!("{url}?cursor={cursor}")))
                .await?;
            let more = page["rows"].as_array().cloned().unwrap_or_default();
            if let Some(rows) = document["rows"].as_array_mut() {
                rows.extend(more);
            }
            document["next_cursor"] = page["next_cursor"].clone();
        }
        Ok(document)
    }
}

/// The targets of `args` and its files, as given (the service checks them).
fn targets(args: &SubmitArgs, stdin: impl Read) -> Result<Vec<String>, Failure> {
    let mut targets = args.targets.clone();
    let mut stdin = Some(stdin);
    for path in &args.file {
        let reader: Box<dyn BufRead> = if path == Path::new("-") {
            let input = stdin.take().ok_or_else(|| {
                Failure::Usage("`--file -` (stdin) may be given only once".to_owned())
            })?;
            Box::new(BufReader::new(input))
        } else {
            let file = std::fs::File::open(path).map_err(|e| {
                Failure::Usage(format!("cannot read target file {}: {e}", path.display()))
            })?;
            Box::new(BufReader::new(file))
        };
        for line in reader.lines() {
            let line =
                line.map_err(|e| Failure::Usage(format!("reading {}: {e}", path.display())))?;
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                targets.push(line.to_owned());
            }
        }
    }
    Ok(targets)
}

/// `submit`: queues a purge on the service; prints its id (with `--wait`, its rows when done).
pub async fn submit(
    args: &SubmitArgs,
    stdin: impl Read,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let service = Service::new(&args.server)?;
    let body = json!({
        "targets": targets(args, stdin)?,
        "providers": args.provider,
        "options": {
            "delete": args.options.delete,
            "ignore_case": args.options.ignore_case,
            "include_query": args.options.include_query,
            "notify": args.options.notify,
            "note": args.options.note,
            "callback": args.options.callback,
        },
        "wait": args.wait,
        "confirm": args.yes,
    });
    let mut request = service
        .http
        .post(format!("{}/v1/purges", service.base))
        .json(&body);
    if let Some(key) = &args.key {
        request = request.header("Idempotency-Key", key);
    }
    let submitted = service.call(request).await?;
    let id = submitted["id"]
        .as_str()
        .ok_or_else(|| Failure::Failed("the service answered no run id".to_owned()))?
        .to_owned();
    if !args.wait {
        let text = if args.json {
            format!("{submitted}\n")
        } else {
            format!("{id}\n")
        };
        run::write_out(out, &text)?;
        return Ok(EXIT_OK);
    }
    eprintln!("purgekit: run {id} queued; waiting");
    let deadline = Instant::now() + args.timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT);
    loop {
        let run = service.run(&id).await?;
        if run["state"] == "done" {
            return print_run(&run, args.json, out);
        }
        if Instant::now() >= deadline {
            return Err(Failure::Failed(format!(
                "run {id} is still {} at the end of --timeout (`purgekit status --server … {id}` \
                 shows it later)",
                run["state"].as_str().unwrap_or("unknown")
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `status --server URL RUN_ID`.
pub async fn status(
    server: &ServerArgs,
    ids: &[String],
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let [id] = ids else {
        return Err(Failure::Usage(
            "with --server, give one run id (as `submit` printed it)".to_owned(),
        ));
    };
    let service = Service::new(server)?;
    let run = service.run(id).await?;
    print_run(&run, json, out)
}

/// Prints a run (JSON, or a table); exit 1 when a row failed or is unsupported.
fn print_run(run: &Value, json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    let rows = run["rows"].as_array().cloned().unwrap_or_default();
    let text = if json {
        format!(
            "{}\n",
            serde_json::to_string_pretty(run).map_err(|e| Failure::Failed(e.to_string()))?
        )
    } else {
        let text = |v: &Value| v.as_str().map(escape).unwrap_or_default();
        let mut table = format!(
            "run {} {}: {}\n{:<60}  {:<14}  {:<11}  {:<24}  {}\n",
            text(&run["id"]),
            text(&run["state"]),
            run["summary"],
            "TARGET",
            "PROVIDER",
            "STATE",
            "HANDLE",
            "ERROR"
        );
        for row in &rows {
            table.push_str(&format!(
                "{:<60}  {:<14}  {:<11}  {:<24}  {}\n",
                text(&row["target"]),
                text(&row["provider"]),
                text(&row["state"]),
                text(&row["handle"]),
                text(&row["error"]),
            ));
        }
        table
    };
    run::write_out(out, &text)?;
    let bad = rows
        .iter()
        .any(|r| matches!(r["state"].as_str(), Some("failed" | "unsupported")));
    Ok(if bad { EXIT_FAILED } else { EXIT_OK })
}

/// A service's text, control characters escaped before it reaches a terminal.
fn escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}
