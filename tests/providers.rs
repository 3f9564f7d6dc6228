//! One suite, run unchanged against every provider: each provider's purger, driven through
//! `Arc<dyn Purger>` over real HTTP on 127.0.0.1 against its emulator (the sandbox).

use std::time::Duration;

use purgekit::emulator::limelight::PurgedItem;
use purgekit::sandbox::Sandbox;
use purgekit::{PurgeRequest, State};

const HOSTS: [&str; 2] = ["images.example.com", "static.example.com"];

fn urls() -> Vec<String> {
    (0..40)
        .map(|i| {
            let host = HOSTS[i % 2];
            format!("https://{host}/is/image/PurgekitDemo/item-{i}.jpg")
        })
        .collect()
}

/// What the provider's emulator recorded as purged, one string per item received, in the
/// form `host path` (Level 3: NI and path; the others: the URL split the same way).
fn received(sandbox: &Sandbox, provider: &str) -> Vec<String> {
    let split = |url: &str| {
        let rest = url.split_once("://").unwrap().1;
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        format!("{host} {path}")
    };
    match provider {
        "level3" => sandbox
            .level3
            .paths()
            .into_iter()
            .map(|(ni, path)| format!("{ni} {path}"))
            .collect(),
        "limelight" => sandbox
            .limelight
            .purged()
            .into_iter()
            .map(|item| match item {
                PurgedItem::Pattern(p) => split(&p.pattern),
                PurgedItem::Tag(t) => format!("tag {}", t.tag),
            })
            .collect(),
        "dynamic-media" => sandbox
            .dynamic_media
            .purged_urls()
            .iter()
            .map(|u| split(u))
            .collect(),
        other => panic!("unknown provider {other}"),
    }
}

fn requests_seen(sandbox: &Sandbox, provider: &str) -> usize {
    match provider {
        "level3" => sandbox.level3.requests_seen(),
        "limelight" => sandbox.limelight.requests().len(),
        "dynamic-media" => sandbox.dynamic_media.requests(),
        other => panic!("unknown provider {other}"),
    }
}

#[tokio::test]
async fn every_provider_purges_each_url_exactly_once_and_completes() {
    let sandbox = Sandbox::start().await.unwrap();
    let mut builder = PurgeRequest::builder();
    for url in urls() {
        builder = builder.url(url);
    }
    // The same URL again: merged into the first, reported, not purged twice. The engine waits
    // for completion, polling each provider's status API at its pace.
    let request = builder
        .url(urls()[0].clone())
        .wait(Duration::from_secs(30))
        .build()
        .unwrap();

    for purger in sandbox.purgers() {
        let name = purger.name();
        let report = purger.purge(&request).await.unwrap();
        assert_eq!(report.results.len(), 41, "{name}: one row per target");
        assert!(
            report.results.iter().all(|r| r.state == State::Completed),
            "{name}: {:#?}",
            report.results.iter().find(|r| r.state != State::Completed)
        );
        assert!(report.results.iter().all(|r| r.handle.is_some()), "{name}");
        assert!(
            report.results[40]
                .warnings
                .iter()
                .any(|w| w.contains("duplicate of")),
            "{name}: {:?}",
            report.results[40].warnings
        );

        let mut got = received(&sandbox, name);
        got.sort();
        let mut want: Vec<String> = urls()
            .iter()
            .map(|u| u.replacen("https://", "", 1).replacen('/', " /", 1))
            .collect();
        want.sort();
        assert_eq!(got, want, "{name}: every URL received exactly once");
    }
}

#[tokio::test]
async fn plan_sends_nothing_and_shows_no_secret() {
    let sandbox = Sandbox::start().await.unwrap();
    let secrets = [
        sandbox.level3_config().secret.expose().to_owned(),
        sandbox.limelight_config().shared_key.expose().to_owned(),
        sandbox.dynamic_media_config().password.expose().to_owned(),
    ];
    let request = PurgeRequest::builder()
        .url(urls()[0].clone())
        .url(urls()[1].clone())
        .build()
        .unwrap();
    for purger in sandbox.purgers() {
        let plan = purger.plan(&request).unwrap();
        assert_eq!(plan.providers.len(), 1);
        assert!(!plan.providers[0].requests.is_empty(), "{}", purger.name());
        let shown = format!("{}\n{plan:?}", serde_json::to_string(&plan).unwrap());
        for secret in &secrets {
            assert!(
                !shown.contains(secret.as_str()),
                "{}: {shown}",
                purger.name()
            );
        }
        // Dynamic Media's sits in XML, escaped: `&lt;redacted&gt;`.
        assert!(shown.contains("redacted"), "{}", purger.name());
        assert_eq!(
            requests_seen(&sandbox, purger.name()),
            0,
            "{}",
            purger.name()
        );
    }
}

#[tokio::test]
async fn every_target_gets_exactly_one_row_per_provider_whatever_it_supports() {
    let sandbox = Sandbox::start().await.unwrap();
    let request = PurgeRequest::builder()
        .url(urls()[0].clone())
        .pattern("https://images.example.com/is/image/PurgekitDemo/*")
        .tag("homepage")
        .note("release 42")
        .build()
        .unwrap();
    let expected = [
        (
            "level3",
            [State::Accepted, State::Accepted, State::Unsupported],
        ),
        (
            "limelight",
            [State::Accepted, State::Accepted, State::Accepted],
        ),
        (
            "dynamic-media",
            [State::Accepted, State::Unsupported, State::Unsupported],
        ),
    ];
    for (purger, (name, states)) in sandbox.purgers().iter().zip(expected) {
        assert_eq!(purger.name(), name);
        let report = purger.purge(&request).await.unwrap();
        let got: Vec<State> = report.results.iter().map(|r| r.state).collect();
        assert_eq!(got, states, "{name}: {:#?}", report.results);
        for row in &report.results {
            match row.state {
                State::Unsupported => assert!(row.error.is_some(), "{name}: {row:?}"),
                _ => assert!(row.error.is_none(), "{name}: {row:?}"),
            }
        }
        // Only what was accepted reached the emulator.
        let accepted = states.iter().filter(|s| **s == State::Accepted).count();
        assert_eq!(received(&sandbox, name).len(), accepted, "{name}");
    }
}

#[tokio::test]
async fn bad_input_is_refused_before_any_provider_sees_a_request() {
    let sandbox = Sandbox::start().await.unwrap();
    // Outside the Dynamic Media company root: Adobe would fault the whole call.
    let request = PurgeRequest::builder()
        .url(urls()[0].clone())
        .url("https://images.example.com/elsewhere/a.jpg")
        .build()
        .unwrap();
    let dm = &sandbox.purgers()[2];
    let err = dm.purge(&request).await.unwrap_err();
    assert!(err.is_usage(), "{err}");
    assert!(
        err.to_string()
            .contains("https://images.example.com/elsewhere/a.jpg"),
        "{err}"
    );
    // A 335-character notification list: Level 3 allows 250.
    let mut builder = PurgeRequest::builder().url(urls()[0].clone());
    for i in 0..12 {
        builder = builder.notify(format!("release-team-{i:02}@example.com"));
    }
    let request = builder.build().unwrap();
    let err = sandbox.purgers()[0].purge(&request).await.unwrap_err();
    assert!(err.is_usage(), "{err}");
    for name in purgekit::sandbox::SANDBOX_PROVIDERS {
        if name != "limelight" {
            assert_eq!(requests_seen(&sandbox, name), 0, "{name}");
        }
    }
}
