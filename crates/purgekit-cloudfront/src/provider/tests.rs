use std::time::{Duration, SystemTime};

use purgekit_core::{BatchId, Options, Plan, ProviderPurger, PurgeRequest, Purger};

use super::*;

fn provider() -> CloudFront {
    let mut config = CloudFrontConfig::new(
        "EDFDVBD6EXAMPLE",
        ["www.example.com", "d111abc.cloudfront.net"],
    );
    config.access_key_id = Some("AKIDEXAMPLE".into());
    config.secret_access_key = Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into());
    CloudFront::with_env(config, |_| None).unwrap()
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

fn batch(p: &CloudFront, targets: &[Target]) -> Batch {
    let items: Vec<Item> = targets
        .iter()
        .map(|t| match p.map(t, &Options::default()).unwrap() {
            Mapped::Item(i) => i,
            Mapped::Unsupported(why) => panic!("{why}"),
        })
        .collect();
    let bytes = p.body_overhead(&Options::default()) + items.iter().map(|i| i.bytes).sum::<usize>();
    Batch {
        id: BatchId::default(),
        scope: String::new(),
        items,
        bytes,
    }
}

#[test]
fn create_invalidation_body() {
    let p = provider();
    let b = batch(
        &p,
        &[
            Target::url("https://www.example.com/index.html").unwrap(),
            Target::pattern("https://www.example.com/images/*").unwrap(),
            Target::url("https://d111abc.cloudfront.net/a.jpg?size=1&x=<y>").unwrap(),
            Target::prefix("https://www.example.com/docs/").unwrap(),
        ],
    );
    let request = p.encode(&b, &Options::default(), now()).unwrap();
    assert_eq!(request.method(), Method::POST);
    assert_eq!(
        request.uri(),
        "https://cloudfront.amazonaws.com/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation"
    );
    assert!(request.headers().get("content-type").is_none());
    insta::assert_snapshot!(String::from_utf8(request.body().clone()).unwrap());
    assert!(request.body().len() <= b.bytes);
}

#[test]
fn the_reference_is_the_same_on_every_attempt() {
    let p = provider();
    let b = batch(&p, &[Target::url("https://www.example.com/a").unwrap()]);
    let first = p.encode(&b, &Options::default(), now()).unwrap();
    let later = p
        .encode(&b, &Options::default(), now() + Duration::from_secs(120))
        .unwrap();
    assert_eq!(first.body(), later.body());
    assert_ne!(
        first.headers()["authorization"],
        later.headers()["authorization"]
    );
    // The same paths in another run: another reference, so a new invalidation.
    let mut again = b.clone();
    again.id.run = purgekit_core::RunId(1);
    let next_run = p.encode(&again, &Options::default(), now()).unwrap();
    assert_ne!(first.body(), next_run.body());
}

#[test]
fn get_invalidation_is_signed_and_redacted() {
    let p = provider();
    let mut r = p
        .encode_status(&Handle("I2J0I21PCUYOIK".into()), now())
        .unwrap();
    // The spec's vector 2, through the provider.
    assert!(
        r.headers()["authorization"].to_str().unwrap().ends_with(
            "Signature=908ac2783de27c3b4e116184d0065e63efc6e3e5949e94c97c744ff36ce966f1"
        )
    );
    p.redact(&mut r);
    assert_eq!(r.headers()["authorization"], REDACTED);
    assert!(p.encode_status(&Handle("../x".into()), now()).is_err());
}

#[test]
fn plan_counts_billable_paths_and_keeps_wildcards_apart() {
    let purger = ProviderPurger::new("cf", provider());
    let mut b = PurgeRequest::builder();
    for i in 0..3500 {
        b = b.url(format!("https://www.example.com/p{i}"));
    }
    for i in 0..20 {
        b = b.pattern(format!("https://www.example.com/w{i}/*"));
    }
    let request = b
        .url("https://www.example.com/p0")
        .url("https://other.example/x")
        .build()
        .unwrap();
    let Plan { providers } = purger.plan(&request).unwrap();
    let plan = &providers[0];
    let billable = plan.billable.as_ref().unwrap();
    assert_eq!((billable.units, billable.unit.as_str()), (3520, "paths"));
    let shape: Vec<(usize, usize)> = plan
        .batches()
        .iter()
        .map(|b| (b.len(), b.wildcards))
        .collect();
    assert_eq!(shape, [(3000, 0), (500, 0), (15, 15), (5, 5)]);
    let text = format!("{:?}", plan.requests);
    assert!(!text.contains("Signature=") && text.contains(REDACTED));
}

#[test]
fn debug_shows_no_secret() {
    let debug = format!("{:?}", provider());
    assert!(!debug.contains("wJalrXUtnFEMI"), "{debug}");
}
