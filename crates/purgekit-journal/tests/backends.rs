//! One suite, run against both backends: SQLite (a temporary file) and PostgreSQL (a schema of
//! its own with a random name, dropped afterwards, in the database at `PURGEKIT_TEST_POSTGRES`,
//! default `postgres://postgres@127.0.0.1:5432/test`; unreachable is a failure, never a skip).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use purgekit_core::{BatchRecord, PlanBuilder, ProviderPlan, PurgeRequest, RecordedPart, State};
use purgekit_journal::{Journal, ProviderAccount, parse_run_id};
use sqlx::Connection;

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

fn postgres_url() -> String {
    std::env::var("PURGEKIT_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned())
}

/// Runs `case` on a fresh SQLite journal.
async fn on_sqlite<F, Fut>(case: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = std::env::temp_dir().join(format!("purgekit-journal-{:016x}", fastrand::u64(..)));
    let url = format!("sqlite://{}", dir.join("journal.sqlite3").display());
    case(url).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `case` on a fresh PostgreSQL schema, dropped afterwards (also when the case panics).
async fn on_postgres<F, Fut>(case: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let base = postgres_url();
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at PURGEKIT_TEST_POSTGRES ({base}) is unreachable: {e}; start it or set \
             PURGEKIT_TEST_POSTGRES to a database these tests may create schemas in"
        )
    });
    let schema = format!("purgekit_test_{:016x}", fastrand::u64(..));
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .expect("create the test schema");
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
    let outcome = tokio::spawn(case(url)).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .expect("drop the test schema");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Declares `$name` as a case run once per backend.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::on_sqlite(super::$name).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::on_postgres(super::$name).await;
            })*
        }
    };
}

both_backends!(
    a_run_is_written_before_anything_is_sent_and_read_back,
    transitions_are_durable_and_a_report_comes_from_the_journal_alone,
    a_resumed_plan_must_match_the_written_one,
    a_run_is_claimed_once_and_not_while_held,
    a_journal_from_a_newer_version_is_refused,
    runs_list_their_counts,
    overlapping_runs_send_each_shared_target_once,
    runs_planning_at_once_send_each_target_once,
    a_follower_sends_what_a_stopped_run_did_not,
    a_follower_takes_the_failure_of_the_batch_it_follows,
    a_resumed_follower_follows_again,
    submissions_at_once_are_queued_and_keep_their_keys,
    a_run_given_back_then_given_up_on_ends_every_target_once,
    a_run_s_units_are_leased_one_by_one,
    an_instance_s_workers_share_the_accounts,
    a_follower_follows_a_unit_while_it_is_live,
    processes_sharing_a_journal_share_the_in_flight_capacity,
);

fn request(n: usize) -> PurgeRequest {
    let mut builder = PurgeRequest::builder();
    for i in 0..n {
        builder = builder.url(format!("https://cdn.example.com/{i}.js"));
    }
    builder
        .url("https://cdn.example.com/0.js")
        .tag("homepage")
        .build()
        .unwrap()
}

/// A plan of `request(4)`: batches {0,1} and {2,3}, the duplicate merged, the tag unsupported.
fn plan() -> ProviderPlan {
    plan_with(&[2, 3])
}

/// [`plan`] with `second` as its second batch's targets.
fn plan_with(second: &[u32]) -> ProviderPlan {
    let mut plan = PlanBuilder::new("cdn", "level3", 6);
    plan.batch("svc", &[0, 1], 100, 0).unwrap();
    plan.batch("svc", second, 100, 0).unwrap();
    plan.merged(4, 0).unwrap();
    plan.unsupported(5, Arc::from("no tags here")).unwrap();
    plan.build().unwrap()
}

/// For a plan no other run shares targets with: never asked to plan again.
fn no_replan(_: &[purgekit_core::FollowGroup]) -> purgekit_core::Result<ProviderPlan> {
    panic!("no other run queues these targets")
}

/// A new run of `request` on the provider `cdn`.
async fn start(journal: &Journal, request: &PurgeRequest) -> purgekit_core::RunId {
    journal
        .start_run(request, &["cdn".to_owned()])
        .await
        .unwrap()
}

fn part(handle: &str) -> Vec<RecordedPart> {
    vec![RecordedPart {
        handle: handle.into(),
        warnings: vec![],
    }]
}

async fn a_run_is_written_before_anything_is_sent_and_read_back(url: String) {
    let journal = Journal::open(&url).await.unwrap();
    let request = request(4);
    let run = start(&journal, &request).await;
    let (back, providers) = journal.request(run).await.unwrap();
    assert_eq!(back.targets(), request.targets());
    assert_eq!(back.options(), request.options());
    assert_eq!(providers, ["cdn"]);
    let log = journal.log(run);
    let record = log
        .planned(&plan(), "acct", &request, &no_replan)
        .await
        .unwrap();
    assert_eq!(record.id, run);
    assert_eq!(record.batches, vec![BatchRecord::Queued; 2]);
    // Another process opening the same journal sees it all.
    let other = Journal::open(&url).await.unwrap();
    assert_eq!(other.request(run).await.unwrap().0, back);
}

async fn transitions_are_durable_and_a_report_comes_from_the_journal_alone(url: String) {
    let journal = Journal::open(&url).await.unwrap();
    let request = request(4);
    let run = start(&journal, &request).await;
    let log = journal.log(run);
    log.planned(&plan(), "acct", &request, &no_replan)
        .await
        .unwrap();
    log.sending("cdn", 0, 1).await.unwrap();
    log.sending("cdn", 0, 2).await.unwrap();
    log.accepted("cdn", 0, &part("H0"), &[], 2).await.unwrap();
    log.completed("cdn", 0).await.unwrap();
    log.sending("cdn", 1, 1).await.unwrap();
    drop(journal);

    let journal = Journal::open(&url).await.unwrap();
    let record = journal
        .log(run)
        .planned(&plan(), "acct", &request, &no_replan)
        .await
        .unwrap();
    assert_eq!(
        record.batches,
        vec![
            BatchRecord::Completed {
                parts: part("H0"),
                slots: vec![],
                attempts: 2
            },
            BatchRecord::Sending,
        ]
    );
    let report = journal.report(run).await.unwrap();
    let states: Vec<(&str, State)> = report
        .results
        .iter()
        .map(|r| (&*r.target, r.state))
        .collect();
    assert_eq!(
        states,
        [
            ("https://cdn.example.com/0.js", State::Completed),
            ("https://cdn.example.com/1.js", State::Completed),
            ("https://cdn.example.com/2.js", State::Failed),
            ("https://cdn.example.com/3.js", State::Failed),
            ("https://cdn.example.com/0.js", State::Completed),
            ("tag:homepage", State::Unsupported),
        ]
    );
    assert_eq!(report.results[0].handle.as_deref(), Some("H0"));
    assert!(
        report.results[2]
            .error
            .as_deref()
            .unwrap()
            .contains("purgekit resume")
    );
    assert!(report.results[4].warnings[0].contains("duplicate of"));

    journal
        .log(run)
        .failed("cdn", 1, "rejected by the provider (code 1): no", 1)
        .await
        .unwrap();
    let report = journal.report(run).await.unwrap();
    assert_eq!(
        report.results[2].error.as_deref(),
        Some("rejected by the provider (code 1): no")
    );
}

async fn a_resumed_plan_must_match_the_written_one(url: String) {
    let journal = Journal::open(&url).await.unwrap();
    let request = request(4);
    let run = start(&journal, &request).await;
    journal
        .log(run)
        .planned(&plan(), "acct", &request, &no_replan)
        .await
        .unwrap();
    let other = plan_with(&[3, 2]);
    let error = journal
        .log(run)
        .planned(&other, "acct", &request, &no_replan)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("other batches"), "{error}");
}

async fn a_run_is_claimed_once_and_not_while_held(url: String) {
    let journal = Journal::open(&url).await.unwrap();
    let request = request(2);
    let run = start(&journal, &request).await;
    // Held by this live process.
    let held = journal.claim(None).await.unwrap_err();
    assert!(held.to_string().contains("live process"), "{held}");
    // Released (as a process ending unfinished does): claimed once.
    journal.finish(run).await.unwrap();
    let claimed = journal.claim(None).await.unwrap();
    assert_eq!(claimed.id, run);
    assert_eq!(claimed.request.targets(), request.targets());
    let again = Journal::open(&url).await.unwrap().claim(Some(run)).await;
    assert!(again.is_err(), "a held run was claimed twice");
    let unknown = journal
        .claim(Some(parse_run_id(&"0".repeat(32)).unwrap()))
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("no such run"), "{unknown}");
}

async fn a_journal_from_a_newer_version_is_refused(url: String) {
    let journal = Journal::open(&url).await.unwrap();
    drop(journal);
    sqlx::any::install_default_drivers();
    let sqlx_url = if let Some(path) = url.strip_prefix("sqlite://") {
        format!("sqlite://{path}")
    } else {
        url.clone()
    };
    let mut conn = sqlx::AnyConnection::connect(&sqlx_url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99991231000000, 'from the future', TRUE, $1, 0)",
    )
    .bind(vec![0u8; 48])
    .execute(&mut conn)
    .await
    .unwrap();
    let error = Journal::open(&url).await.unwrap_err().to_string();
    assert!(error.contains("newer purgekit"), "{error}");
    assert!(error.contains("99991231000000"), "{error}");
}

async fn runs_list_their_counts(url: String) {
    let journal = Journal::open(&url).await.unwrap();
    let request = request(4);
    let first = start(&journal, &request).await;
    let log = journal.log(first);
    log.planned(&plan(), "acct", &request, &no_replan)
        .await
        .unwrap();
    log.sending("cdn", 0, 1).await.unwrap();
    log.accepted("cdn", 0, &part("A"), &[], 1).await.unwrap();
    assert!(!journal.finish(first).await.unwrap());
    log.sending("cdn", 1, 1).await.unwrap();
    log.failed("cdn", 1, "no", 1).await.unwrap();
    let runs = journal.runs().await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, first.to_string());
    assert_eq!(runs[0].state, "interrupted");
    assert_eq!(
        (
            runs[0].batches.accepted,
            runs[0].batches.failed,
            runs[0].batches.queued
        ),
        (1, 1, 0)
    );
    let claimed = journal.claim(Some(first)).await.unwrap();
    assert!(journal.finish(claimed.id).await.unwrap());
    assert_eq!(journal.runs().await.unwrap()[0].state, "finished");
}

/// The wire of the test CDNs below: a URL target's path is an item (one scope for all), a batch
/// is its paths a line each POSTed to `http://HOST/purge`, the answer's body is the handle, and
/// its status is polled at `http://HOST/status/HANDLE`.
mod lines {
    use purgekit_core::{Accepted, Batch, Handle, HttpRequest, HttpResponse, Item, Mapped};
    use purgekit_core::{Result, Target};

    pub fn map(target: &Target) -> Result<Mapped> {
        let path = target.path_and_query().unwrap_or("/").to_owned();
        Ok(Mapped::Item(Item {
            kind: target.kind(),
            bytes: path.len() + 1,
            value: path,
            scope: String::new(),
            wildcard: false,
        }))
    }

    pub fn encode(host: &str, batch: &Batch) -> Result<HttpRequest> {
        let body: String = batch
            .items
            .iter()
            .map(|i| format!("{}\n", i.value))
            .collect();
        Ok(http::Request::post(format!("http://{host}/purge"))
            .body(body.into_bytes())
            .unwrap())
    }

    pub fn decode(response: HttpResponse) -> Result<Accepted> {
        Ok(Accepted {
            handle: Handle(String::from_utf8_lossy(response.body()).into_owned()),
            poll_after: None,
            warnings: vec![],
        })
    }

    pub fn encode_status(host: &str, handle: &Handle) -> Result<HttpRequest> {
        Ok(
            http::Request::get(format!("http://{host}/status/{}", handle.0))
                .body(Vec::new())
                .unwrap(),
        )
    }
}

/// A test CDN: URL paths, at most 4 per request, 1 request per 300 ms; its server (in process)
/// answers each purge after `delay` with a new handle and records every path it was sent.
mod toy {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime};

    use async_trait::async_trait;
    use purgekit_core::{
        Accepted, Batch, Budget, Capabilities, Handle, HttpRequest, HttpResponse, Limits, Mapped,
        Options, Progress, Provider, ProviderPurger, RateLimit, RateRegistry, Result, Status,
        Target, TargetKind, Transport,
    };

    const HOST: &str = "toy.invalid";

    pub struct Toy;

    impl Provider for Toy {
        fn kind(&self) -> &'static str {
            "toy-journal"
        }
        fn account(&self) -> String {
            "acct".into()
        }
        fn endpoint(&self) -> String {
            format!("http://{HOST}")
        }
        fn limits(&self) -> Limits {
            Limits {
                max_items: 4,
                rate: RateLimit {
                    requests: Some(Budget::new(1, Duration::from_millis(300))),
                    items: None,
                },
                ..Limits::default()
            }
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                targets: vec![TargetKind::Url],
                options: vec![],
            }
        }
        fn map(&self, target: &Target, _: &Options) -> Result<Mapped> {
            super::lines::map(target)
        }
        fn encode(&self, batch: &Batch, _: &Options, _: SystemTime) -> Result<HttpRequest> {
            super::lines::encode(HOST, batch)
        }
        fn decode(&self, _: &Batch, response: HttpResponse) -> Result<Accepted> {
            super::lines::decode(response)
        }
        fn encode_status(&self, handle: &Handle, _: SystemTime) -> Result<HttpRequest> {
            super::lines::encode_status(HOST, handle)
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

    /// The server: every path purged, in order.
    #[derive(Clone, Default)]
    pub struct Server {
        pub purged: Arc<Mutex<Vec<String>>>,
        pub delay: Duration,
    }

    #[async_trait]
    impl Transport for Server {
        async fn send(&self, request: HttpRequest, _: usize) -> Result<HttpResponse> {
            tokio::time::sleep(self.delay).await;
            let handle = {
                let mut purged = self.purged.lock().unwrap();
                let body = String::from_utf8_lossy(request.body()).into_owned();
                purged.extend(body.lines().map(str::to_owned));
                format!("h{}", purged.len())
            };
            Ok(http::Response::builder()
                .status(201)
                .body(handle.into_bytes())
                .unwrap())
        }
    }

    impl Server {
        pub fn purged(&self) -> Vec<String> {
            self.purged.lock().unwrap().clone()
        }
    }

    /// A purger on `server` sharing its rate limits through `journal`, as a process would.
    pub fn purger(server: &Server, journal: &purgekit_journal::Journal) -> ProviderPurger<Toy> {
        ProviderPurger::with_transport_of("cdn", Toy, Arc::new(server.clone())).with_rate_registry(
            Arc::new(RateRegistry::with_store(Arc::new(journal.clone()))),
        )
    }
}

/// `https://cdn.example.com/d/{i}.js` for `i` in `range`.
fn paths(range: std::ops::Range<usize>) -> PurgeRequest {
    let mut builder = PurgeRequest::builder();
    for i in range {
        builder = builder.url(format!("https://cdn.example.com/d/{i}.js"));
    }
    builder.build().unwrap()
}

/// A journaled purger of `server`, in its own connection to the journal at `url` (as another
/// process has).
async fn journaled(url: &str, server: &toy::Server) -> Arc<purgekit_journal::JournaledPurger> {
    let journal = Journal::open(url).await.unwrap();
    Arc::new(purgekit_journal::JournaledPurger::new(
        Arc::new(toy::purger(server, &journal)),
        journal,
    ))
}

/// A run of `paths(range)` on the toy CDN, planned (live, nothing sent) by hand.
async fn planned_by_hand(
    journal: &Journal,
    range: std::ops::Range<usize>,
) -> (purgekit_core::RunId, purgekit_core::SharedRunLog) {
    let request = paths(range);
    let run = journal
        .start_run(&request, &["cdn".to_owned()])
        .await
        .unwrap();
    let plan = purgekit_core::plan_provider("cdn", &toy::Toy, &request).unwrap();
    let log = journal.log(run);
    log.planned(&plan, "acct", &request, &no_replan)
        .await
        .unwrap();
    (run, log)
}

/// Each path purged exactly once.
fn once_each(server: &toy::Server, expected: usize) {
    let purged = server.purged();
    let distinct: std::collections::HashSet<&String> = purged.iter().collect();
    assert_eq!(distinct.len(), expected, "every target purged: {purged:?}");
    assert_eq!(
        purged.len(),
        expected,
        "a shared target purged twice: {purged:?}"
    );
}

/// Run A: 16 targets (4 batches of 4) queued behind a 1-request-per-300-ms limit; run B, started
/// once A's first batch is accepted: targets 10..22, so 2 of them in A's third batch, 4 in its
/// fourth, 6 of its own. B sends only its own (repacked: 2 requests, not 3), its shared rows
/// carry A's handles and say so.
async fn overlapping_runs_send_each_shared_target_once(url: String) {
    use purgekit_core::Purger;
    let server = toy::Server::default();
    let (a, b) = (
        journaled(&url, &server).await,
        journaled(&url, &server).await,
    );
    let first = paths(0..16);
    let run_a = purgekit_journal::RunPurger::start(a.clone(), &first)
        .await
        .unwrap();
    let id_a = run_a.run();
    let first_task = tokio::spawn(async move { run_a.purge(&first).await.unwrap() });
    while server.purged().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let second = paths(10..22);
    let report_b = b.purge(&second).await.unwrap();
    let report_a = first_task.await.unwrap();
    once_each(&server, 22);
    let row = |report: &purgekit_core::Report, i: usize| {
        report
            .results
            .iter()
            .find(|r| *r.target == format!("https://cdn.example.com/d/{i}.js"))
            .unwrap()
            .clone()
    };
    for shared in 10..16 {
        let (in_a, in_b) = (row(&report_a, shared), row(&report_b, shared));
        assert_eq!(in_b.state, State::Accepted, "{in_b:?}");
        assert_eq!(in_a.handle, in_b.handle);
        assert!(
            in_b.warnings[0].contains(&format!("queued first in run {id_a}")),
            "{:?}",
            in_b.warnings
        );
    }
    for own in 16..22 {
        let row = row(&report_b, own);
        assert_eq!(row.state, State::Accepted);
        assert!(row.warnings.is_empty(), "{row:?}");
    }
    // B's own 6 targets repacked into 2 requests: 4 of A, 2 of B.
    let handles: std::collections::HashSet<_> = report_a
        .results
        .iter()
        .chain(&report_b.results)
        .filter_map(|r| r.handle.clone())
        .collect();
    assert_eq!(handles.len(), 6, "{handles:?}");
}

/// Two runs of the same targets planned at the same moment on one account: the plans are
/// serialized, so the later follows every batch of the earlier (in flight for 200 ms each).
async fn runs_planning_at_once_send_each_target_once(url: String) {
    use purgekit_core::Purger;
    let server = toy::Server {
        delay: std::time::Duration::from_millis(200),
        ..toy::Server::default()
    };
    let (a, b) = (
        journaled(&url, &server).await,
        journaled(&url, &server).await,
    );
    let request = paths(0..8);
    let (ra, rb) = tokio::join!(a.purge(&request), b.purge(&request));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    once_each(&server, 8);
    for (x, y) in ra.results.iter().zip(&rb.results) {
        assert_eq!(x.state, State::Accepted);
        assert_eq!(y.state, State::Accepted);
        assert_eq!(x.handle, y.handle);
    }
}

/// A run whose targets follow a run that stops before sending them sends them itself, once.
async fn a_follower_sends_what_a_stopped_run_did_not(url: String) {
    use purgekit_core::Purger;
    let server = toy::Server::default();
    let journal = Journal::open(&url).await.unwrap();
    // Run A: planned (live, nothing sent) by hand.
    let (run_a, _) = planned_by_hand(&journal, 0..8).await;
    let b = journaled(&url, &server).await;
    let task = tokio::spawn(async move { b.purge(&paths(4..12)).await.unwrap() });
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    // B sent its own batch only, and waits for A's second.
    assert_eq!(server.purged().len(), 4, "{:?}", server.purged());
    // A stops: unfinished, held by nobody.
    assert!(!journal.finish(run_a).await.unwrap());
    let report = task.await.unwrap();
    once_each(&server, 8);
    assert!(report.results.iter().all(|r| r.state == State::Accepted));
    let taken = &report.results[0];
    assert!(
        taken.warnings[0].contains("stopped before sending it: this run sent it itself"),
        "{taken:?}"
    );
}

/// A batch followed by another run fails for good: the follower's rows take its error.
async fn a_follower_takes_the_failure_of_the_batch_it_follows(url: String) {
    use purgekit_core::Purger;
    let server = toy::Server::default();
    let journal = Journal::open(&url).await.unwrap();
    let (_, log_a) = planned_by_hand(&journal, 0..4).await;
    let b = journaled(&url, &server).await;
    let task = tokio::spawn(async move { b.purge(&paths(0..4)).await.unwrap() });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    log_a
        .failed("cdn", 0, "rejected by the provider (code 7): no", 1)
        .await
        .unwrap();
    let report = task.await.unwrap();
    assert!(server.purged().is_empty(), "{:?}", server.purged());
    for row in &report.results {
        assert_eq!(row.state, State::Failed);
        assert_eq!(
            row.error.as_deref(),
            Some("rejected by the provider (code 7): no")
        );
    }
}

/// A run planned with targets following another run's batch, resumed (planned again from the
/// journal): the plan written is checked with the same targets following the same batch, the
/// following batch follows again, and takes the other batch's handle and slots once accepted.
async fn a_resumed_follower_follows_again(url: String) {
    let journal = Journal::open(&url).await.unwrap();
    let (run_a, log_a) = planned_by_hand(&journal, 0..8).await;
    // B: 6..10, so 6 and 7 (A's second batch, slots 2 and 3) follow; 8 and 9 are its own.
    let second = paths(6..10);
    let run_b = journal
        .start_run(&second, &["cdn".to_owned()])
        .await
        .unwrap();
    let base = purgekit_core::plan_provider("cdn", &toy::Toy, &second).unwrap();
    let replan = |groups: &[purgekit_core::FollowGroup]| {
        purgekit_core::plan_following(&toy::Toy, &second, &base, groups)
    };
    let record = journal
        .log(run_b)
        .planned(&base, "acct", &second, &replan)
        .await
        .unwrap();
    let plan_b = record.plan.clone().expect("planned again");
    assert_eq!(plan_b.batches().len(), 2);
    assert_eq!(plan_b.batches().at(0).targets, [2, 3]);
    assert_eq!(plan_b.batches().at(1).targets, [0, 1]);
    assert_eq!(record.batches[1], BatchRecord::Follows);
    // Resumed in another process.
    let other = Journal::open(&url).await.unwrap();
    let log_b = other.log(run_b);
    let again = log_b
        .planned(&base, "acct", &second, &replan)
        .await
        .unwrap();
    assert_eq!(again.plan.unwrap().batches(), plan_b.batches());
    assert_eq!(again.batches, [BatchRecord::Queued, BatchRecord::Follows]);
    assert!(
        again.notes[1]
            .as_deref()
            .unwrap()
            .contains(&run_a.to_string())
    );
    // A's second batch accepted as two parts, one per pair of slots.
    let parts = vec![
        RecordedPart {
            handle: "P0".into(),
            warnings: vec![],
        },
        RecordedPart {
            handle: "P1".into(),
            warnings: vec![],
        },
    ];
    log_a
        .accepted("cdn", 1, &parts, &[0, 0, 1, 1], 1)
        .await
        .unwrap();
    let followed = log_b.follow("cdn", 1).await.unwrap();
    assert_eq!(
        followed,
        BatchRecord::Accepted {
            parts,
            slots: vec![1, 1],
            attempts: 1
        }
    );
}

async fn submissions_at_once_are_queued_and_keep_their_keys(url: String) {
    // Two instances on one journal, 60 submissions at once: most carry one of 5 keys.
    let journals = [
        Journal::open(&url).await.unwrap(),
        Journal::open(&url).await.unwrap(),
    ];
    let request = request(3);
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (journal, request) = (journals[i % 2].clone(), request.clone());
        let key = (i % 3 != 0).then(|| format!("key-{}", i % 5));
        tasks.push(tokio::spawn(async move {
            let providers = on(&["cdn"]);
            let (run, new) = journal
                .submit(&request, &providers, key.as_deref())
                .await
                .unwrap();
            (key, run, new)
        }));
    }
    let mut by_key = std::collections::HashMap::new();
    let mut unkeyed = std::collections::HashSet::new();
    for task in tasks {
        let (key, run, new) = task.await.unwrap();
        match key {
            Some(key) => by_key.entry(key).or_insert_with(Vec::new).push((run, new)),
            None => {
                assert!(new, "a submission without a key is a new run");
                assert!(unkeyed.insert(run), "two submissions were given one run");
            }
        }
    }
    assert_eq!(by_key.len(), 5);
    for (key, runs) in &by_key {
        assert!(
            runs.iter().all(|(run, _)| *run == runs[0].0),
            "{key}: {runs:?}"
        );
        let new = runs.iter().filter(|(_, new)| *new).count();
        assert_eq!(
            new, 1,
            "{key}: one submission makes the run, the others get it"
        );
        assert!(!unkeyed.contains(&runs[0].0));
    }
    // Every run is written, queued (held by nobody), and the losers of a race left nothing.
    let runs = journals[0].runs().await.unwrap();
    assert_eq!(runs.len(), unkeyed.len() + by_key.len());
    for info in &runs {
        assert_eq!(info.state, "interrupted", "{info:?}");
        let run = parse_run_id(&info.id).unwrap();
        let (back, providers) = journals[1].request(run).await.unwrap();
        assert_eq!(back.targets(), request.targets());
        assert_eq!(providers, ["cdn"]);
    }
    let depth = journals[0].queue_depth().await.unwrap();
    assert_eq!(depth["toy/acct"].runs, runs.len() as i64);
    let taken = journals[1].next_unit(&HashMap::new(), 1).await.unwrap();
    assert_eq!(taken.unwrap().request.targets(), request.targets());
    assert!(
        journals[1].next_queued().await.unwrap().is_none(),
        "a run with units was taken whole"
    );
}

/// Every lease in the journal at `url` run out (as when their holders died 15 s ago).
async fn expire_leases(url: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query("UPDATE run_units SET lease_until_ms = 1 WHERE lease_until_ms > 0")
        .execute(&mut conn)
        .await
        .unwrap();
}

/// A journal as an instance of the service opens it.
async fn instance(url: &str) -> Journal {
    Journal::open(url).await.unwrap()
}

/// The service's providers `names` with their accounts: `cdn` on `toy/acct`, `eu` on
/// `other/eu`.
fn on(names: &[&str]) -> Vec<ProviderAccount> {
    names
        .iter()
        .map(|&name| ProviderAccount {
            provider: name.to_owned(),
            account: match name {
                "cdn" => "toy/acct",
                "eu" => "other/eu",
                other => panic!("no provider {other}"),
            }
            .to_owned(),
        })
        .collect()
}

/// A run submitted on two providers is two units: taken by two workers (in two instances), one
/// each; the run is `running` while one is held, finished only when both are; a unit whose
/// holder dies is taken over once its lease runs out, and the dead holder can no longer end it.
async fn a_run_s_units_are_leased_one_by_one(url: String) {
    let (a, b) = (instance(&url).await, instance(&url).await);
    let request = request(4);
    let (run, _) = a.submit(&request, &on(&["cdn", "eu"]), None).await.unwrap();
    let depth = a.queue_depth().await.unwrap();
    assert_eq!(depth.keys().collect::<Vec<_>>(), ["other/eu", "toy/acct"]);
    let none = HashMap::new();
    // `purgekit resume` drives it whole: every unit taken with the run, none left to workers;
    // given back unfinished.
    let claimed = b.claim(Some(run)).await.unwrap();
    assert_eq!(claimed.id, run);
    assert!(a.next_unit(&none, 2).await.unwrap().is_none());
    assert!(!b.finish(run).await.unwrap());
    let first = a.next_unit(&none, 2).await.unwrap().unwrap();
    let second = b.next_unit(&none, 2).await.unwrap().unwrap();
    assert_eq!(first.run, run);
    assert_eq!(second.run, run);
    let mut taken = [first.provider.clone(), second.provider.clone()];
    taken.sort();
    assert_eq!(taken, ["cdn", "eu"], "both units taken, each once");
    assert!(a.next_unit(&none, 2).await.unwrap().is_none());
    assert!(a.queue_depth().await.unwrap().is_empty());
    assert_eq!(a.run_info(run).await.unwrap().state, "running");
    let refused = b.claim(Some(run)).await.unwrap_err().to_string();
    assert!(refused.contains("driven by a live process"), "{refused}");

    // `cdn`'s holder plans and settles it: its unit is finished, the run is not.
    let cdn = if first.provider == "cdn" { &a } else { &b };
    let eu = if first.provider == "cdn" { &b } else { &a };
    let log = cdn.log(run);
    log.planned(&plan(), "acct", &request, &no_replan)
        .await
        .unwrap();
    for batch in 0..2 {
        log.sending("cdn", batch, 1).await.unwrap();
        log.accepted("cdn", batch, &part("A"), &[], 1)
            .await
            .unwrap();
    }
    assert!(cdn.finish_unit(run, "cdn").await.unwrap());
    assert_eq!(a.run_info(run).await.unwrap().state, "running");

    // `eu`'s holder dies: once its lease runs out, `cdn`'s instance takes the unit over.
    expire_leases(&url).await;
    assert_eq!(a.run_info(run).await.unwrap().state, "interrupted");
    let over = cdn.next_unit(&none, 2).await.unwrap().unwrap();
    assert_eq!((over.run, over.provider.as_str()), (run, "eu"));
    assert!(!eu.give_up_unit(run, "eu", "late").await.unwrap());
    assert!(
        !eu.give_back_unit(run, "eu", 1, Duration::ZERO)
            .await
            .unwrap()
    );
    let mut plan_eu = PlanBuilder::new("eu", "other", 6);
    plan_eu.batch("svc", &[0, 1, 2, 3], 100, 0).unwrap();
    plan_eu.merged(4, 0).unwrap();
    plan_eu.unsupported(5, Arc::from("no tags here")).unwrap();
    let log = cdn.log(run);
    log.planned(&plan_eu.build().unwrap(), "eu", &request, &no_replan)
        .await
        .unwrap();
    // Its attempt stops before the batch is settled: given back, not finished.
    assert!(!cdn.finish_unit(run, "eu").await.unwrap());
    assert_eq!(a.run_info(run).await.unwrap().batches.queued, 1);
    let again = eu.next_unit(&none, 2).await.unwrap().unwrap();
    assert_eq!(again.provider, "eu");
    eu.log(run).failed("eu", 0, "no", 1).await.unwrap();
    assert!(eu.finish_unit(run, "eu").await.unwrap());
    let info = a.run_info(run).await.unwrap();
    assert_eq!(info.state, "finished");
    assert_eq!((info.batches.accepted, info.batches.failed), (2, 1));
    assert!(a.next_unit(&none, 2).await.unwrap().is_none());
}

/// The fairness rule: with 2 workers and work on two accounts, an instance holds at most one
/// unit of each, so a run on a second account is taken before older runs on the first.
async fn an_instance_s_workers_share_the_accounts(url: String) {
    let journal = instance(&url).await;
    let request = request(2);
    let mut slow = Vec::new();
    for _ in 0..3 {
        let (run, _) = journal.submit(&request, &on(&["eu"]), None).await.unwrap();
        slow.push(run);
    }
    let (fast, _) = journal.submit(&request, &on(&["cdn"]), None).await.unwrap();
    let mut busy = HashMap::new();
    let first = journal.next_unit(&busy, 2).await.unwrap().unwrap();
    assert_eq!(
        (first.run, first.account.as_str()),
        (slow[0], "other/eu"),
        "the oldest first"
    );
    busy.insert(first.account.clone(), 1);
    let second = journal.next_unit(&busy, 2).await.unwrap().unwrap();
    assert_eq!(
        (second.run, second.account.as_str()),
        (fast, "toy/acct"),
        "the other account before the older runs of a busy one"
    );
    busy.insert(second.account.clone(), 1);
    // Each account at its share (ceil(2 workers / 2 accounts) = 1): nothing more.
    assert!(journal.next_unit(&busy, 2).await.unwrap().is_none());
    // Another instance takes the next slow one.
    let other = instance(&url).await;
    let third = other.next_unit(&HashMap::new(), 2).await.unwrap().unwrap();
    assert_eq!(third.run, slow[1]);
}

/// A run following a batch of a submitted run follows it while that run's unit on the
/// provider is live, and sends the targets itself once the unit's lease runs out.
async fn a_follower_follows_a_unit_while_it_is_live(url: String) {
    use purgekit_core::Purger;
    let server = toy::Server::default();
    let journal = instance(&url).await;
    let (run_a, _) = journal
        .submit(&paths(0..8), &on(&["cdn"]), None)
        .await
        .unwrap();
    let unit = journal
        .next_unit(&HashMap::new(), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unit.run, run_a);
    let plan = purgekit_core::plan_provider("cdn", &toy::Toy, &unit.request).unwrap();
    journal
        .log(run_a)
        .planned(&plan, "acct", &unit.request, &no_replan)
        .await
        .unwrap();
    let b = journaled(&url, &server).await;
    let task = tokio::spawn(async move { b.purge(&paths(4..12)).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(600)).await;
    // B sent its own batch only, and follows A's second while A's unit is live.
    assert_eq!(server.purged().len(), 4, "{:?}", server.purged());
    expire_leases(&url).await;
    let report = task.await.unwrap();
    once_each(&server, 8);
    assert!(report.results.iter().all(|r| r.state == State::Accepted));
}

async fn a_run_given_back_then_given_up_on_ends_every_target_once(url: String) {
    let journal = Journal::open(&url).await.unwrap();
    let request = request(4);
    let providers = ["cdn".to_owned(), "gone".to_owned()];
    let run = journal.start_run(&request, &providers).await.unwrap();
    // `cdn` planned, its first batch accepted, its second being sent; `gone` never planned.
    let log = journal.log(run);
    log.planned(&plan(), "acct", &request, &no_replan)
        .await
        .unwrap();
    log.sending("cdn", 0, 1).await.unwrap();
    log.accepted("cdn", 0, &part("A"), &[], 1).await.unwrap();
    log.sending("cdn", 1, 2).await.unwrap();
    // The attempt failed: given back, counted, and (no wait here) taken by another instance.
    assert_eq!(journal.failures(run).await.unwrap(), 0);
    assert!(journal.give_back(run, 1, Duration::ZERO).await.unwrap());
    assert_eq!(journal.failures(run).await.unwrap(), 1);
    let other = Journal::open(&url).await.unwrap();
    assert_eq!(other.next_queued().await.unwrap().unwrap().id, run);
    // Only the holder gives up on it.
    assert!(!journal.give_up(run, "boom").await.unwrap());
    assert!(!journal.give_back(run, 2, Duration::ZERO).await.unwrap());
    assert!(other.give_up(run, "boom").await.unwrap());

    let info = journal.run_info(run).await.unwrap();
    assert_eq!(info.state, "finished");
    assert_eq!((info.batches.queued, info.batches.sending), (0, 0));
    assert_eq!((info.batches.accepted, info.batches.failed), (1, 1));
    let report = journal.report(run).await.unwrap();
    // One row per (target, provider): 6 targets on two providers.
    assert_eq!(report.results.len(), 12);
    let cdn: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.provider.as_ref() == "cdn")
        .map(|r| (r.state, r.error.as_deref()))
        .collect();
    assert_eq!(
        cdn,
        [
            (State::Accepted, None),
            (State::Accepted, None),
            (State::Failed, Some("boom")),
            (State::Failed, Some("boom")),
            (State::Accepted, None),
            (State::Unsupported, Some("no tags here")),
        ]
    );
    for row in report
        .results
        .iter()
        .filter(|r| r.provider.as_ref() == "gone")
    {
        assert_eq!(
            (row.state, row.error.as_deref()),
            (State::Failed, Some("boom"))
        );
    }
    assert!(
        other.next_queued().await.unwrap().is_none(),
        "a finished run was taken"
    );
}

/// A test CDN with CloudFront-like in-flight capacity: 4 paths a request (at most one request
/// per 10 ms), at most 6 paths in progress per account. Its server (in process) keeps each purge
/// in progress for 100 ms, answers a status poll after that with completed, and counts the
/// paths in progress (and the most ever).
mod capped {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime};

    use async_trait::async_trait;
    use purgekit_core::{
        Accepted, Batch, Budget, Capabilities, EngineConfig, Handle, HttpRequest, HttpResponse,
        InFlightCapacity, Limits, Mapped, Options, PollPolicy, Progress, Provider, ProviderPurger,
        RateLimit, RateRegistry, Result, Status, Target, TargetKind, Transport,
    };
    use tokio::time::Instant;

    pub const CAPACITY: usize = 6;
    const IN_PROGRESS_FOR: Duration = Duration::from_millis(100);

    const HOST: &str = "capped.invalid";

    pub struct Capped;

    impl Provider for Capped {
        fn kind(&self) -> &'static str {
            "capped-journal"
        }
        fn account(&self) -> String {
            "acct".into()
        }
        fn endpoint(&self) -> String {
            format!("http://{HOST}")
        }
        fn limits(&self) -> Limits {
            Limits {
                max_items: 4,
                rate: RateLimit {
                    requests: Some(Budget::new(1, Duration::from_millis(10))),
                    items: None,
                },
                max_in_flight: 4,
                in_flight_capacity: Some(InFlightCapacity {
                    items: CAPACITY,
                    wildcards: 1,
                }),
                ..Limits::default()
            }
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                targets: vec![TargetKind::Url],
                options: vec![],
            }
        }
        fn map(&self, target: &Target, _: &Options) -> Result<Mapped> {
            super::lines::map(target)
        }
        fn encode(&self, batch: &Batch, _: &Options, _: SystemTime) -> Result<HttpRequest> {
            super::lines::encode(HOST, batch)
        }
        fn decode(&self, _: &Batch, response: HttpResponse) -> Result<Accepted> {
            super::lines::decode(response)
        }
        fn encode_status(&self, handle: &Handle, _: SystemTime) -> Result<HttpRequest> {
            super::lines::encode_status(HOST, handle)
        }
        fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
            let done = response.body().as_slice() == b"done";
            Ok(Status {
                handle: handle.clone(),
                progress: if done {
                    Progress::Completed
                } else {
                    Progress::Pending { percent: None }
                },
                detail: String::new(),
                poll_after: None,
            })
        }
        fn redact(&self, _: &mut HttpRequest) {}
    }

    #[derive(Default)]
    struct Ledger {
        /// Per handle: when accepted, its paths, whether seen completed.
        purges: HashMap<String, (Instant, usize, bool)>,
        in_progress: usize,
        most: usize,
        purged: usize,
    }

    /// The server, shared by every process of the test.
    #[derive(Clone, Default)]
    pub struct Server(Arc<Mutex<Ledger>>);

    #[async_trait]
    impl Transport for Server {
        async fn send(&self, request: HttpRequest, _: usize) -> Result<HttpResponse> {
            let mut ledger = self.0.lock().unwrap();
            let body = match request.uri().path().strip_prefix("/status/") {
                Some(handle) => {
                    let purge = ledger.purges.get_mut(handle).expect("a handle it gave");
                    let (accepted, paths, done) = *purge;
                    if !done && accepted.elapsed() >= IN_PROGRESS_FOR {
                        purge.2 = true;
                        ledger.in_progress -= paths;
                    }
                    if ledger.purges[handle].2 {
                        "done"
                    } else {
                        "pending"
                    }
                    .to_owned()
                }
                None => {
                    let paths = String::from_utf8_lossy(request.body()).lines().count();
                    ledger.in_progress += paths;
                    ledger.most = ledger.most.max(ledger.in_progress);
                    ledger.purged += paths;
                    let handle = format!("h{}", ledger.purges.len());
                    ledger
                        .purges
                        .insert(handle.clone(), (Instant::now(), paths, false));
                    handle
                }
            };
            Ok(http::Response::builder()
                .status(200)
                .body(body.into_bytes())
                .unwrap())
        }
    }

    impl Server {
        /// Paths in progress now, the most ever, and paths purged.
        pub fn counts(&self) -> (usize, usize, usize) {
            let ledger = self.0.lock().unwrap();
            (ledger.in_progress, ledger.most, ledger.purged)
        }
    }

    /// A purger on `server` sharing its rate state through `journal` (a registry of its own, as
    /// a process has), polling completion every 20 ms.
    pub fn purger(server: &Server, journal: &purgekit_journal::Journal) -> ProviderPurger<Capped> {
        ProviderPurger::with_transport_of("cdn", Capped, Arc::new(server.clone()))
            .with_rate_registry(Arc::new(RateRegistry::with_store(Arc::new(
                journal.clone(),
            ))))
            .with_config(EngineConfig {
                poll: PollPolicy {
                    initial: Duration::from_millis(20),
                    max: Duration::from_millis(20),
                },
                ..EngineConfig::default()
            })
    }
}

/// Two processes (each its own connection and rate registry) purge 12 paths each, waiting for
/// completion, on one account whose provider keeps at most 6 paths in progress: each batch of 4
/// is admitted only when it fits beside every batch of both in progress, so at most 4 paths are
/// ever in progress (8 if each process counted alone), every target completes, and no hold is
/// left in the journal.
async fn processes_sharing_a_journal_share_the_in_flight_capacity(url: String) {
    use purgekit_core::{Purger, RateStore};
    let server = capped::Server::default();
    let first = Journal::open(&url).await.unwrap();
    let second = Journal::open(&url).await.unwrap();
    let (a, b) = (
        capped::purger(&server, &first),
        capped::purger(&server, &second),
    );
    let request = |name: &str| {
        let mut builder = PurgeRequest::builder().wait(Duration::from_secs(60));
        for i in 0..12 {
            builder = builder.url(format!("https://cdn.example.com/{name}/{i}.js"));
        }
        builder.build().unwrap()
    };
    let (ra, rb) = (request("a"), request("b"));
    let (x, y) = tokio::join!(a.purge(&ra), b.purge(&rb));
    for report in [x.unwrap(), y.unwrap()] {
        assert_eq!(report.results.len(), 12);
        assert!(
            report.results.iter().all(|r| r.state == State::Completed),
            "{:?}",
            report.results.iter().find(|r| r.state != State::Completed)
        );
    }
    let (now, most, purged) = server.counts();
    assert_eq!((now, purged), (0, 24));
    assert!(
        most <= capped::CAPACITY,
        "{most} paths in progress at once, of {}",
        capped::CAPACITY
    );
    assert_eq!(most, 4, "one batch of 4 at a time: two do not fit in 6");
    let mut holds = None;
    first
        .update("capped-journal/acct", &mut |state| {
            holds = Some(state.holds.clone())
        })
        .await
        .unwrap();
    assert_eq!(holds, Some(vec![]), "every hold released");
}

/// PostgreSQL: an Idempotency-Key another process commits after a group of submissions read
/// the keys (the group's insert of it waits for that commit) wins: the group's run goes, and
/// the submission is answered with the other process's run. (SQLite cannot interleave so: a
/// group holds the write lock from its first read.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_key_committed_meanwhile_wins() {
    on_postgres(|url| async move {
        let journal = Journal::open(&url).await.unwrap();
        let request = request(3);
        let (theirs, _) = journal.submit(&request, &on(&["cdn"]), None).await.unwrap();
        // The other process: key `k` written for its run, not committed yet.
        let mut other = sqlx::AnyConnection::connect(&url).await.unwrap();
        let mut tx = other.begin().await.unwrap();
        sqlx::query("INSERT INTO run_keys (key, run_id) VALUES ('k', $1)")
            .bind(theirs.to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        let submitting = {
            let (journal, request) = (journal.clone(), request.clone());
            tokio::spawn(async move { journal.submit(&request, &on(&["cdn"]), Some("k")).await })
        };
        // Wait until the submission's insert of `k` waits for the other transaction: past its
        // read of the keys, which did not see `k`.
        let mut watcher = sqlx::AnyConnection::connect(&url).await.unwrap();
        let waiting = "SELECT count(*) FROM pg_stat_activity \
                       WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO run_keys%'";
        let mut polls = 0;
        while sqlx::query_scalar::<_, i64>(waiting)
            .fetch_one(&mut watcher)
            .await
            .unwrap()
            == 0
        {
            polls += 1;
            assert!(
                polls < 500,
                "the submission never reached its insert of the key"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tx.commit().await.unwrap();
        let (run, new) = submitting.await.unwrap().unwrap();
        assert_eq!((run, new), (theirs, false), "the committed key's run wins");
        let runs = journal.runs().await.unwrap();
        assert_eq!(runs.len(), 1, "the losing run is gone: {runs:?}");
    })
    .await;
}
