//! The conformance suite: written once, run unchanged for every registered provider — its
//! purger, built from the config its emulator writes and driven through `Arc<dyn Purger>` over
//! real HTTP on 127.0.0.1 against that emulator (the sandbox). No test names a provider but
//! the few that check one provider's own rule.

use std::time::Duration;

use purgekit::sandbox::Sandbox;
use purgekit::{AuthOutcome, PurgeRequest, State};

const HOSTS: [&str; 2] = ["images.example.com", "static.example.com"];

fn urls() -> Vec<String> {
    (0..40)
        .map(|i| {
            let host = HOSTS[i % 2];
            format!("https://{host}/is/image/PurgekitDemo/item-{i}.jpg")
        })
        .collect()
}

/// What the provider's emulator recorded as purged, one `host path` (or `tag NAME`) per item.
fn received(sandbox: &Sandbox, provider: &str) -> Vec<String> {
    sandbox.emulator(provider).unwrap().purged()
}

fn requests_seen(sandbox: &Sandbox, provider: &str) -> usize {
    sandbox.emulator(provider).unwrap().requests().len()
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
        // A provider purging paths on every host of the account (CloudFront) records paths
        // alone.
        let paths_alone = got.iter().all(|entry| entry.starts_with('/'));
        let mut want: Vec<String> = urls()
            .iter()
            .map(|u| {
                let host_path = u.replacen("https://", "", 1).replacen('/', " /", 1);
                match host_path.split_once(' ') {
                    Some((_, path)) if paths_alone => path.to_owned(),
                    _ => host_path,
                }
            })
            .collect();
        want.sort();
        assert_eq!(got, want, "{name}: every URL received exactly once");
    }
}

#[tokio::test]
async fn plan_sends_nothing_and_shows_no_secret() {
    let sandbox = Sandbox::start().await.unwrap();
    // Every secret of the demo accounts.
    let secrets: Vec<String> = sandbox
        .emulators()
        .iter()
        .flat_map(|e| e.secrets())
        .collect();
    assert!(
        secrets.len() >= sandbox.emulators().len(),
        "at least one secret per account"
    );
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
        .prefix("https://static.example.com/is/image/PurgekitDemo/")
        .host("cdn.example.com")
        .everything()
        .note("release 42")
        .build()
        .unwrap();
    for purger in sandbox.purgers() {
        let name = purger.name();
        let capabilities = purger.providers()[0].capabilities.clone();
        let plan = purger.plan(&request).unwrap();
        purger.check(&request).unwrap();
        let report = purger.purge(&request).await.unwrap();
        assert_eq!(report.results.len(), request.targets().len(), "{name}");
        for ((row, target), planned) in report
            .results
            .iter()
            .zip(request.targets())
            .zip(plan.providers[0].dispositions())
        {
            // What the provider declares it supports is accepted, unless its mapping refuses
            // it for these options with a reason (Fastly's purge-all cannot be soft); the rest
            // is a row with the reason, never sent.
            let mapped = matches!(planned, purgekit::Disposition::Planned { .. });
            assert!(
                mapped <= capabilities.supports_target(target.kind()),
                "{name}: {target} planned though not declared"
            );
            let want = if mapped {
                State::Accepted
            } else {
                State::Unsupported
            };
            assert_eq!(row.state, want, "{name}: {row:?}");
            match row.state {
                State::Unsupported => assert!(row.error.is_some(), "{name}: {row:?}"),
                _ => assert!(row.error.is_none(), "{name}: {row:?}"),
            }
        }
        // Only what was accepted reached the emulator, each once (targets that map to the same
        // item, e.g. CloudFront's `/*` for a host and for everything, are merged).
        let accepted = report
            .results
            .iter()
            .filter(|r| {
                r.state == State::Accepted && !r.warnings.iter().any(|w| w.contains("duplicate of"))
            })
            .count();
        assert_eq!(received(&sandbox, name).len(), accepted, "{name}");
    }
}

/// Fastly's and Cloudflare's sandbox tables name no limit (the emulators run the documented
/// figures: Fastly's write limit, Cloudflare's Pro plan), so the providers' own figures must be
/// the emulators'.
#[tokio::test]
async fn the_sandbox_fastly_and_cloudflare_declare_what_their_emulators_run() {
    use purgekit::emulator::cloudflare::CloudflareEmulatorConfig;
    use purgekit::emulator::fastly::FastlyEmulatorConfig;
    let sandbox = Sandbox::start().await.unwrap();
    let limits = |name: &str| sandbox.purger(name).unwrap().providers()[0].limits.clone();
    let e = CloudflareEmulatorConfig::demo();
    let cf = limits("cloudflare");
    assert_eq!(cf.max_items, e.items_per_request);
    assert_eq!(cf.max_items_for("files"), e.files_per_request);
    for (bucket, spec) in cf.buckets.iter().zip([e.purge_bucket, e.files_bucket]) {
        assert_eq!(f64::from(bucket.burst), spec.size);
        let per_second = f64::from(bucket.refill.amount) / bucket.refill.per.as_secs_f64();
        assert!(
            (per_second - spec.refill_per_second).abs() < 1e-9,
            "{bucket:?}"
        );
    }
    let global = cf.rate.requests.unwrap();
    assert_eq!(
        (global.amount, global.per),
        (e.global_limit, e.global_window)
    );
    let f = FastlyEmulatorConfig::demo();
    let fastly = limits("fastly");
    assert_eq!(fastly.buckets[0].burst, f.writes_per_window);
    assert_eq!(fastly.buckets[0].refill.per, f.write_window);
}

/// `plan` and `check` (what a service runs on a submission) refuse `request` as `purge` did.
fn same_refusal(purger: &dyn purgekit::Purger, request: &PurgeRequest, err: &purgekit::Error) {
    let name = purger.name();
    let planned = purger.plan(request).unwrap_err();
    assert_eq!(planned.to_string(), err.to_string(), "{name}: plan");
    let checked = purger.check(request).unwrap_err();
    assert_eq!(checked.to_string(), err.to_string(), "{name}: check");
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
    let dm = sandbox.purger("dynamic-media").unwrap();
    let err = dm.purge(&request).await.unwrap_err();
    assert!(err.is_usage(), "{err}");
    same_refusal(&**dm, &request, &err);
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
    let level3 = sandbox.purger("level3").unwrap();
    let err = level3.purge(&request).await.unwrap_err();
    assert!(err.is_usage(), "{err}");
    same_refusal(&**level3, &request, &err);
    for emulator in sandbox.emulators() {
        assert_eq!(emulator.requests().len(), 0, "{}", emulator.kind());
    }
}

#[tokio::test]
async fn every_emulator_refuses_a_wrong_secret_through_its_auth_layer() {
    let sandbox = Sandbox::start().await.unwrap();
    let request = PurgeRequest::builder()
        .url(urls()[0].clone())
        .build()
        .unwrap();
    for emulator in sandbox.emulators() {
        let kind = emulator.kind();
        // The demo account with each secret replaced by one of the same shape (its characters
        // rotated by one).
        let mut table = sandbox.account(kind).unwrap();
        let secrets = emulator.secrets();
        for (_, value) in table.iter_mut() {
            if let Some(secret) = value.as_str().filter(|v| secrets.iter().any(|s| s == v)) {
                let mut chars: Vec<char> = secret.chars().collect();
                chars.rotate_left(1);
                let wrong: String = chars.into_iter().collect();
                assert_ne!(wrong, secret, "{kind}: a secret of one repeated character");
                *value = toml::Value::String(wrong);
            }
        }
        let mut providers = toml::Table::new();
        providers.insert("wrong".to_owned(), toml::Value::Table(table));
        let mut root = toml::Table::new();
        root.insert("providers".to_owned(), toml::Value::Table(providers));
        let config =
            purgekit::Config::parse_with_env(&toml::to_string(&root).unwrap(), |_| None).unwrap();
        let purger = config.build().unwrap();
        let report = purger.purge(&request).await.unwrap();
        let row = &report.results[0];
        assert_eq!(
            (row.state, row.attempts),
            (State::Failed, 1),
            "{kind}: {row:?}"
        );
        let error = row.error.as_deref().unwrap_or_default();
        assert!(
            error.starts_with("authentication failed"),
            "{kind}: {error}"
        );
        // Refused before any handler: nothing purged, one request seen, answered as an error.
        assert!(emulator.purged().is_empty(), "{kind}");
        let seen = emulator.requests();
        assert_eq!(seen.len(), 1, "{kind}: {seen:?}");
        assert!(seen[0].status >= 400, "{kind}: {seen:?}");
        // The credentials check says so too, where the API has one.
        let check = purger.check_auth().await.remove(0);
        assert!(
            matches!(
                check.outcome,
                AuthOutcome::Refused(_) | AuthOutcome::Unavailable(_)
            ),
            "{kind}: {check:?}"
        );
    }
}

#[tokio::test]
async fn the_credentials_check_is_one_read_only_call_where_the_api_has_one() {
    let sandbox = Sandbox::start().await.unwrap();
    for purger in sandbox.purgers() {
        let name = purger.name();
        let checks = purger.check_auth().await;
        assert_eq!(checks.len(), 1, "{name}");
        let check = &checks[0];
        assert_eq!((check.name.as_str(), check.kind.as_str()), (name, name));
        let emulator = sandbox.emulator(name).unwrap();
        let sent = match &check.outcome {
            AuthOutcome::Accepted => 1,
            AuthOutcome::Unavailable(why) => {
                assert!(!why.is_empty(), "{name}");
                0
            }
            other => panic!("{name}: {other:?}"),
        };
        // Read-only: one call (Dynamic Media's answered with a fault about the probe's unknown
        // handle, which IPS gives only past authentication), nothing purged.
        let seen = emulator.requests();
        assert_eq!(seen.len(), sent, "{name}: {seen:?}");
        assert!(emulator.purged().is_empty(), "{name}");
    }
}
