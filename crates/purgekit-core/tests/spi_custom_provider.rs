//! A new CDN written against the provider SPI alone, without touching core: the planner, the
//! engine and the report handle it like any built-in provider.
//!
//! "ToyCDN" purges by POSTing newline-separated paths to `/purge/{host}`, at most 3 per request,
//! one host per request, wildcards alone; it supports URLs and patterns, the delete option, and
//! nothing else. The transport is an in-memory stand-in for its server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use purgekit_core::{
    Accepted, Batch, Budget, Capabilities, Disposition, Error, Handle, HttpRequest, HttpResponse,
    Item, Limits, Mapped, OptionKind, Options, Progress, Provider, ProviderPurger, PurgeRequest,
    Purger, RateLimit, Result, State, Status, Target, TargetKind, Transport,
};

struct ToyCdn;

impl Provider for ToyCdn {
    fn kind(&self) -> &'static str {
        "toy"
    }
    fn account(&self) -> String {
        "toy-account".into()
    }
    fn endpoint(&self) -> String {
        "https://api.toy.example".into()
    }
    fn limits(&self) -> Limits {
        Limits {
            max_items: 3,
            wildcard_alone: true,
            group_by_scope: true,
            rate: RateLimit {
                requests: Some(Budget::per_minute(100)),
                items: None,
            },
            ..Limits::default()
        }
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            targets: vec![TargetKind::Url, TargetKind::Pattern],
            options: vec![OptionKind::Delete],
        }
    }
    fn action_warning(&self, options: &Options) -> Option<String> {
        (options.action == purgekit_core::Action::Invalidate)
            .then(|| "toy removes objects where invalidation was asked".to_owned())
    }
    fn map(&self, target: &Target, _: &Options) -> Result<Mapped> {
        let host = target.host().expect("URLs and patterns have hosts");
        if host.contains('*') {
            return Ok(Mapped::Unsupported("toy needs a concrete host".into()));
        }
        let path = target
            .path_and_query()
            .expect("URLs and patterns have paths");
        Ok(Mapped::Item(Item {
            kind: target.kind(),
            value: path.to_owned(),
            scope: host.to_owned(),
            wildcard: target.kind() == TargetKind::Pattern,
            bytes: path.len() + 1,
        }))
    }
    fn encode(&self, batch: &Batch, options: &Options, _now: SystemTime) -> Result<HttpRequest> {
        let body: String = batch
            .items
            .iter()
            .map(|i| format!("{}\n", i.value))
            .collect();
        let delete = options.action == purgekit_core::Action::Delete;
        Ok(http::Request::post(format!(
            "{}/purge/{}?delete={delete}",
            self.endpoint(),
            batch.scope
        ))
        .header("x-toy-key", "s3cret")
        .body(body.into_bytes())
        .expect("valid request"))
    }
    fn decode(&self, _: &Batch, response: HttpResponse) -> Result<Accepted> {
        match response.status().as_u16() {
            200 => Ok(Accepted {
                handle: Handle(String::from_utf8_lossy(response.body()).into_owned()),
                poll_after: None,
                warnings: vec![],
            }),
            401 => Err(Error::auth("bad key")),
            code => Err(Error::rejected(code.to_string(), "toy said no")),
        }
    }
    fn encode_status(&self, handle: &Handle, _: SystemTime) -> Result<HttpRequest> {
        Ok(
            http::Request::get(format!("{}/status/{handle}", self.endpoint()))
                .body(Vec::new())
                .expect("valid request"),
        )
    }
    fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
        Ok(Status {
            handle: handle.clone(),
            progress: Progress::Completed,
            detail: String::from_utf8_lossy(response.body()).into_owned(),
            poll_after: None,
        })
    }
    fn redact(&self, request: &mut HttpRequest) {
        request
            .headers_mut()
            .insert("x-toy-key", purgekit_core::REDACTED.parse().unwrap());
    }
}

/// Stands in for ToyCDN's server: records requests, answers `job-N`, or refuses one host.
#[derive(Default)]
struct ToyServer {
    seen: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl Transport for ToyServer {
    async fn send(&self, request: HttpRequest, _max_response_bytes: usize) -> Result<HttpResponse> {
        let uri = request.uri().to_string();
        let body = String::from_utf8(request.body().clone()).unwrap();
        let mut seen = self.seen.lock().unwrap();
        seen.push((uri.clone(), body));
        let (status, body) = if uri.contains("/purge/refused.example") {
            (400, String::new())
        } else if uri.contains("/status/") {
            (200, "done".to_owned())
        } else {
            (200, format!("job-{}", seen.len()))
        };
        Ok(http::Response::builder()
            .status(status)
            .body(body.into_bytes())
            .unwrap())
    }
}

fn request() -> PurgeRequest {
    PurgeRequest::builder()
        .url("https://a.example/1.jpg")
        .url("https://b.example/1.jpg")
        .url("https://a.example/2.jpg")
        .pattern("https://a.example/img/*")
        .url("https://a.example/3.jpg")
        .url("https://a.example/4.jpg")
        .url("http://a.example/2.jpg") // same host and path as #3: merged, not lost
        .tag("homepage") // toy has no tags
        .pattern("https://*.example/x") // toy needs a concrete host
        .url("https://refused.example/x.jpg")
        .build()
        .unwrap()
}

#[test]
fn the_planner_batches_a_new_provider_by_its_limits() {
    let purger = ProviderPurger::new("toy-1", ToyCdn);
    let request = request();
    let plan = purger.plan(&request).unwrap();
    let plan = &plan.providers[0];
    // The plan names targets by index; the items are mapped again from them when sending.
    assert_eq!(plan.batches().at(0).targets, [0, 2, 4]);
    let batches: Vec<(String, Vec<String>)> = (0..plan.batches().len())
        .map(|i| {
            let batch = plan.batch(i, &ToyCdn, &request).unwrap();
            assert_eq!(batch.bytes, plan.batches().at(i).bytes);
            let values = batch.items.into_iter().map(|item| item.value).collect();
            (batch.scope, values)
        })
        .collect();
    let batches: Vec<(String, Vec<&str>)> = batches
        .iter()
        .map(|(scope, values)| (scope.clone(), values.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        batches,
        [
            ("a.example".into(), vec!["/1.jpg", "/2.jpg", "/3.jpg"]),
            ("b.example".into(), vec!["/1.jpg"]),
            ("a.example".into(), vec!["/img/*"]),
            ("a.example".into(), vec!["/4.jpg"]),
            ("refused.example".into(), vec!["/x.jpg"]),
        ]
    );
    // The plan shows the exact requests, with the provider's secret redacted.
    assert_eq!(
        plan.disposition(6).unwrap(),
        Disposition::Planned {
            batch: 0,
            slot: 1,
            merged_with: Some(2)
        }
    );
    assert_eq!(plan.requests.len(), 5);
    assert_eq!(
        plan.requests[0].url,
        "https://api.toy.example/purge/a.example?delete=false"
    );
    assert_eq!(plan.requests[0].body, "/1.jpg\n/2.jpg\n/3.jpg\n");
    let rendered = serde_json::to_string(&plan.requests).unwrap();
    assert!(!rendered.contains("s3cret"), "{rendered}");
}

#[tokio::test]
async fn the_report_has_one_row_per_target_in_one_state() {
    let server = Arc::new(ToyServer::default());
    let purger: Arc<dyn Purger> =
        Arc::new(ProviderPurger::new("toy-1", ToyCdn).with_transport(server.clone()));
    let request = request();
    let report = purger.purge(&request).await.unwrap();

    assert_eq!(report.results.len(), request.targets().len());
    let states: Vec<State> = report.results.iter().map(|r| r.state).collect();
    use State::*;
    assert_eq!(
        states,
        [
            Accepted,
            Accepted,
            Accepted,
            Accepted,
            Accepted,
            Accepted,
            Accepted,
            Unsupported,
            Unsupported,
            Failed
        ]
    );
    assert_eq!(report.results[0].handle.as_deref(), Some("job-1"));
    assert_eq!(report.results[6].handle, report.results[2].handle);
    assert!(
        report.results[6]
            .warnings
            .iter()
            .any(|w| w.contains("duplicate of `https://a.example/2.jpg`"))
    );
    assert_eq!(
        report.results[7].error.as_deref(),
        Some("toy does not support cache tag targets")
    );
    assert_eq!(
        report.results[8].error.as_deref(),
        Some("toy needs a concrete host")
    );
    assert!(
        report.results[9]
            .error
            .as_deref()
            .unwrap()
            .contains("code 400")
    );
    assert_eq!(report.summary.accepted, 7);
    assert_eq!(report.summary.unsupported, 2);
    assert_eq!(report.summary.failed, 1);
    assert_eq!(report.outcome(), purgekit_core::Outcome::Partial);

    // Every planned path reached the server exactly once; nothing for the unsupported targets.
    let seen = server.seen.lock().unwrap();
    let bodies: Vec<&str> = seen.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "/1.jpg\n/2.jpg\n/3.jpg\n",
            "/1.jpg\n",
            "/img/*\n",
            "/4.jpg\n",
            "/x.jpg\n"
        ]
    );
}

#[tokio::test]
async fn an_unsupported_semantic_option_sends_nothing_and_says_why() {
    let server = Arc::new(ToyServer::default());
    let purger = ProviderPurger::new("toy-1", ToyCdn).with_transport(server.clone());
    let request = PurgeRequest::builder()
        .url("https://a.example/1.jpg")
        .ignore_case()
        .note("release 42")
        .build()
        .unwrap();
    let report = purger.purge(&request).await.unwrap();
    assert_eq!(report.results[0].state, State::Unsupported);
    assert_eq!(
        report.results[0].error.as_deref(),
        Some("toy does not support option `ignore-case`")
    );
    assert!(server.seen.lock().unwrap().is_empty());

    // An advisory option it lacks: purged anyway, with a warning naming the option.
    let request = PurgeRequest::builder()
        .url("https://a.example/1.jpg")
        .note("release 42")
        .build()
        .unwrap();
    let report = purger.purge(&request).await.unwrap();
    assert_eq!(report.results[0].state, State::Accepted);
    assert_eq!(
        report.results[0]
            .warnings
            .iter()
            .map(|w| &**w)
            .collect::<Vec<_>>(),
        [
            "toy does not support option `note`: purged without it",
            // What the provider does instead of the action asked, on every planned row.
            "toy removes objects where invalidation was asked"
        ]
    );
}

#[tokio::test]
async fn a_dry_run_it_cannot_do_natively_is_done_client_side() {
    let server = Arc::new(ToyServer::default());
    let purger = ProviderPurger::new("toy-1", ToyCdn).with_transport(server.clone());
    let request = PurgeRequest::builder()
        .url("https://a.example/1.jpg")
        .tag("t")
        .dry_run()
        .build()
        .unwrap();
    let report = purger.purge(&request).await.unwrap();
    assert_eq!(report.results[0].state, State::DryRun);
    assert_eq!(report.results[1].state, State::Unsupported);
    assert!(server.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn status_goes_through_the_provider() {
    let server = Arc::new(ToyServer::default());
    let purger = ProviderPurger::new("toy-1", ToyCdn).with_transport(server);
    let status = purger
        .status("toy-1", &Handle("job-1".into()))
        .await
        .unwrap();
    assert_eq!(status.progress, Progress::Completed);
    assert_eq!(status.detail, "done");
    assert!(
        purger
            .status("other", &Handle("job-1".into()))
            .await
            .is_err()
    );
}

/// ToyCDN whose mapping stops working after `planned` calls: not a pure function.
struct Fickle {
    calls: AtomicUsize,
    planned: usize,
}

impl Provider for Fickle {
    fn kind(&self) -> &'static str {
        ToyCdn.kind()
    }
    fn account(&self) -> String {
        ToyCdn.account()
    }
    fn endpoint(&self) -> String {
        ToyCdn.endpoint()
    }
    fn limits(&self) -> Limits {
        ToyCdn.limits()
    }
    fn capabilities(&self) -> Capabilities {
        ToyCdn.capabilities()
    }
    fn map(&self, target: &Target, options: &Options) -> Result<Mapped> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.planned {
            ToyCdn.map(target, options)
        } else {
            Ok(Mapped::Unsupported("changed its mind".into()))
        }
    }
    fn encode(&self, batch: &Batch, options: &Options, now: SystemTime) -> Result<HttpRequest> {
        ToyCdn.encode(batch, options, now)
    }
    fn decode(&self, batch: &Batch, response: HttpResponse) -> Result<Accepted> {
        ToyCdn.decode(batch, response)
    }
    fn encode_status(&self, handle: &Handle, now: SystemTime) -> Result<HttpRequest> {
        ToyCdn.encode_status(handle, now)
    }
    fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
        ToyCdn.decode_status(handle, response)
    }
    fn redact(&self, request: &mut HttpRequest) {
        ToyCdn.redact(request)
    }
}

#[tokio::test]
async fn a_mapping_that_changes_after_planning_fails_its_batch_and_sends_nothing() {
    let server = Arc::new(ToyServer::default());
    let request = PurgeRequest::builder()
        .url("https://a.example/1.jpg")
        .url("https://a.example/2.jpg")
        .build()
        .unwrap();
    // Two calls while planning, then the first batch maps differently.
    let fickle = Fickle {
        calls: AtomicUsize::new(0),
        planned: 2,
    };
    let purger = ProviderPurger::new("toy-1", fickle).with_transport(server.clone());
    let report = purger.purge(&request).await.unwrap();
    for row in &report.results {
        assert_eq!(row.state, State::Failed);
        let error = row.error.as_deref().unwrap();
        assert!(
            error.contains("toy's mapping is not deterministic")
                && error.contains("https://a.example/1.jpg"),
            "{error}"
        );
    }
    assert!(server.seen.lock().unwrap().is_empty());
}
