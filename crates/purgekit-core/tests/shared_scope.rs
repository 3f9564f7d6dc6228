//! Scopes that share a request at a parent scope (`Limits::shared_scope`), through the whole
//! engine with a provider written against the SPI alone: one request carries several scopes,
//! every row gets its own scope's handle, each handle is polled, and an answer that leaves a
//! scope out fails its batch rather than lending it another scope's handle.
//!
//! "GroupCDN" purges `/purge/{host}` (one host) or `/purge` (several, lines `host path`), at
//! most 4 paths per request; its server answers one handle per host, `{host}:{n}`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use purgekit_core::{
    Accepted, Batch, Capabilities, Handle, HttpRequest, HttpResponse, Item, Limits, Mapped,
    Options, Progress, Provider, ProviderPurger, PurgeRequest, Purger, Result, SharedScope, State,
    Status, Target, TargetKind, Transport,
};

const PARENT: &str = "all-hosts";

struct GroupCdn;

impl Provider for GroupCdn {
    fn kind(&self) -> &'static str {
        "group"
    }
    fn account(&self) -> String {
        "group-account".into()
    }
    fn endpoint(&self) -> String {
        "https://api.group.example".into()
    }
    fn limits(&self) -> Limits {
        Limits {
            max_items: 4,
            wildcard_alone: true,
            group_by_scope: true,
            shared_scope: Some(SharedScope {
                parent: PARENT.into(),
                wildcard_alone_in_scope: true,
                request_overhead: 0,
                scope_overhead: 0,
            }),
            max_in_flight: 4,
            ..Limits::default()
        }
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            targets: vec![TargetKind::Url, TargetKind::Pattern],
            options: vec![],
        }
    }
    fn map(&self, target: &Target, _: &Options) -> Result<Mapped> {
        let path = target.path_and_query().unwrap_or("/").to_owned();
        Ok(Mapped::Item(Item {
            kind: target.kind(),
            bytes: path.len() + 1,
            wildcard: path.contains('*'),
            value: path,
            scope: target.host().unwrap_or_default().to_owned(),
        }))
    }
    fn encode(&self, batch: &Batch, _: &Options, _: SystemTime) -> Result<HttpRequest> {
        let (uri, body) = if batch.scope == PARENT {
            let lines: String = batch
                .items
                .iter()
                .map(|i| format!("{} {}\n", i.scope, i.value))
                .collect();
            (format!("{}/purge", self.endpoint()), lines)
        } else {
            let lines: String = batch
                .items
                .iter()
                .map(|i| format!("{}\n", i.value))
                .collect();
            (format!("{}/purge/{}", self.endpoint(), batch.scope), lines)
        };
        Ok(http::Request::post(uri).body(body.into_bytes()).unwrap())
    }
    fn decode(&self, _: &Batch, response: HttpResponse) -> Result<Accepted> {
        let text = String::from_utf8(response.into_body()).unwrap();
        Ok(accepted(text.trim()))
    }
    fn decode_shared(&self, _: &Batch, response: HttpResponse) -> Result<Vec<(String, Accepted)>> {
        let text = String::from_utf8(response.into_body()).unwrap();
        Ok(text
            .lines()
            .map(|handle| {
                let host = handle.split(':').next().unwrap().to_owned();
                (host, accepted(handle))
            })
            .collect())
    }
    fn encode_status(&self, handle: &Handle, _: SystemTime) -> Result<HttpRequest> {
        Ok(
            http::Request::get(format!("{}/status/{handle}", self.endpoint()))
                .body(Vec::new())
                .unwrap(),
        )
    }
    fn decode_status(&self, handle: &Handle, _: HttpResponse) -> Result<Status> {
        Ok(Status {
            handle: handle.clone(),
            progress: Progress::Completed,
            detail: "done".into(),
            poll_after: None,
        })
    }
    fn redact(&self, _: &mut HttpRequest) {}
}

fn accepted(handle: &str) -> Accepted {
    Accepted {
        handle: Handle(handle.to_owned()),
        poll_after: Some(Duration::ZERO),
        warnings: vec![],
    }
}

/// GroupCDN's server: one handle per host of each purge (`{host}:{n}`), leaving out the hosts
/// in `forget`; every request recorded.
#[derive(Default)]
struct Server {
    seen: Mutex<Vec<(String, String)>>,
    forget: Vec<String>,
}

#[async_trait]
impl Transport for Server {
    async fn send(&self, request: HttpRequest, _: usize) -> Result<HttpResponse> {
        let uri = request.uri().path().to_owned();
        let body = String::from_utf8(request.body().clone()).unwrap();
        let mut seen = self.seen.lock().unwrap();
        let n = seen.len();
        seen.push((uri.clone(), body.clone()));
        let answer = if let Some(host) = uri.strip_prefix("/purge/") {
            format!("{host}:{n}")
        } else if uri == "/purge" {
            let mut hosts: Vec<&str> = body.lines().map(|l| l.split(' ').next().unwrap()).collect();
            hosts.dedup();
            hosts
                .iter()
                .filter(|h| !self.forget.iter().any(|f| f == *h))
                .map(|h| format!("{h}:{n}\n"))
                .collect()
        } else {
            "done".to_owned()
        };
        Ok(http::Response::builder()
            .status(200)
            .body(answer.into_bytes())
            .unwrap())
    }
}

fn request(wait: bool) -> PurgeRequest {
    let mut b = PurgeRequest::builder()
        .url("https://a.example/1")
        .url("https://b.example/1")
        .url("https://c.example/1")
        .url("https://a.example/2")
        .pattern("https://b.example/img/*")
        .url("https://d.example/1");
    if wait {
        b = b.wait(Duration::from_secs(60));
    }
    b.build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn rows_get_their_own_scopes_handle_and_each_is_polled() {
    let server = Arc::new(Server::default());
    let purger = ProviderPurger::new("group", GroupCdn).with_transport(server.clone());
    let request = request(true);
    let plan = purger.plan(&request).unwrap();
    let scopes: Vec<&str> = plan.providers[0]
        .batches()
        .iter()
        .map(|b| b.scope)
        .collect();
    // 4 paths of a, b, c in one shared request; b's wildcard cannot join b's path there, so
    // it opens a second request, which d joins.
    assert_eq!(scopes, [PARENT, PARENT]);
    let report = purger.purge(&request).await.unwrap();
    let rows: Vec<(&str, State, &str)> = report
        .results
        .iter()
        .map(|r| (&*r.target, r.state, r.handle.as_deref().unwrap()))
        .collect();
    assert_eq!(
        rows,
        [
            ("https://a.example/1", State::Completed, "a.example:0"),
            ("https://b.example/1", State::Completed, "b.example:0"),
            ("https://c.example/1", State::Completed, "c.example:0"),
            ("https://a.example/2", State::Completed, "a.example:0"),
            ("https://b.example/img/*", State::Completed, "b.example:1"),
            ("https://d.example/1", State::Completed, "d.example:1"),
        ]
    );
    let seen = server.seen.lock().unwrap();
    let mut polled: Vec<&str> = seen
        .iter()
        .filter_map(|(uri, _)| uri.strip_prefix("/status/"))
        .collect();
    polled.sort();
    assert_eq!(
        polled,
        [
            "a.example:0",
            "b.example:0",
            "b.example:1",
            "c.example:0",
            "d.example:1"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_scope_the_answer_leaves_out_fails_its_batch() {
    let server = Arc::new(Server {
        forget: vec!["c.example".into()],
        ..Server::default()
    });
    let purger = ProviderPurger::new("group", GroupCdn).with_transport(server.clone());
    let report = purger.purge(&request(false)).await.unwrap();
    let first = &report.results[0];
    assert_eq!(first.state, State::Failed, "{first:?}");
    let error = first.error.as_deref().unwrap();
    assert!(error.contains("gave no handle for `c.example`"), "{error}");
    // Not retried: the request was accepted; resending would purge twice.
    assert_eq!(first.attempts, 1);
    assert_eq!(server.seen.lock().unwrap().len(), 2);
    // The other batch is unaffected.
    assert_eq!(report.results[5].state, State::Accepted);
    assert_eq!(report.results[5].handle.as_deref(), Some("d.example:1"));
}
