//! One suite, run against both backends: SQLite (a temporary file) and PostgreSQL (a schema of
//! its own with a random name, dropped afterwards, in the database at `PURGEKIT_TEST_POSTGRES`,
//! default `postgres://postgres@127.0.0.1:5432/test`; unreachable is a failure, never a skip).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use purgekit_core::{
    BatchPlan, BatchRecord, Disposition, ProviderPlan, PurgeRequest, RecordedPart, State,
};
use purgekit_journal::{Journal, parse_run_id};
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
    submissions_at_once_are_queued_and_keep_their_keys,
    a_run_given_back_then_given_up_on_ends_every_target_once,
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
    let planned = |batch, slot, merged_with| Disposition::Planned {
        batch,
        slot,
        merged_with,
    };
    ProviderPlan {
        provider: "cdn".into(),
        kind: "level3".into(),
        batches: vec![
            BatchPlan {
                scope: "svc".into(),
                targets: vec![0, 1],
                bytes: 100,
                wildcards: 0,
            },
            BatchPlan {
                scope: "svc".into(),
                targets: vec![2, 3],
                bytes: 100,
                wildcards: 0,
            },
        ],
        targets: vec![
            planned(0, 0, None),
            planned(0, 1, None),
            planned(1, 0, None),
            planned(1, 1, None),
            planned(0, 0, Some(0)),
            Disposition::Unsupported {
                reason: Arc::from("no tags here"),
            },
        ],
        warnings: vec![],
        requests: vec![],
        client_side_dry_run: false,
        billable: None,
    }
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
    let record = log.planned(&plan(), "acct", &request).await.unwrap();
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
    log.planned(&plan(), "acct", &request).await.unwrap();
    log.sending("cdn", 0, 1).await.unwrap();
    log.sending("cdn", 0, 2).await.unwrap();
    log.accepted("cdn", 0, &part("H0"), &[], 2).await.unwrap();
    log.completed("cdn", 0).await.unwrap();
    log.sending("cdn", 1, 1).await.unwrap();
    drop(journal);

    let journal = Journal::open(&url).await.unwrap();
    let record = journal
        .log(run)
        .planned(&plan(), "acct", &request)
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
        .planned(&plan(), "acct", &request)
        .await
        .unwrap();
    let mut other = plan();
    other.batches[1].targets = vec![3, 2];
    let error = journal
        .log(run)
        .planned(&other, "acct", &request)
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
    log.planned(&plan(), "acct", &request).await.unwrap();
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
            let providers = ["cdn".to_owned()];
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
    assert_eq!(depth["cdn"].runs, runs.len() as i64);
    let taken = journals[1].next_queued().await.unwrap().unwrap();
    assert_eq!(taken.request.targets(), request.targets());
}

async fn a_run_given_back_then_given_up_on_ends_every_target_once(url: String) {
    let journal = Journal::open(&url).await.unwrap();
    let request = request(4);
    let providers = ["cdn".to_owned(), "gone".to_owned()];
    let run = journal.start_run(&request, &providers).await.unwrap();
    // `cdn` planned, its first batch accepted, its second being sent; `gone` never planned.
    let log = journal.log(run);
    log.planned(&plan(), "acct", &request).await.unwrap();
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
