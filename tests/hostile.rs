//! Hostile servers on 127.0.0.1 (see docs/bad-input.md, "Hostile servers"): each case feeds a
//! provider's purger the answer a broken or malicious CDN would send and checks the row that
//! results. Every case is deterministic and bounded to a few seconds.

mod common;

use std::time::Duration;

use common::hostile::serve;
use purgekit::dynamicmedia::{DynamicMedia, DynamicMediaConfig};
use purgekit::level3::{Level3, Level3Config};
use purgekit::{Provider, ProviderPurger, PurgeRequest, Purger, Report, State};

const URL: &str = "https://images.example.com/is/image/Co/a.jpg";

async fn purge(provider: impl Provider) -> Report {
    let purger = ProviderPurger::new("hostile", provider).with_config(common::engine(1));
    let request = PurgeRequest::builder().url(URL).build().unwrap();
    tokio::time::timeout(Duration::from_secs(10), purger.purge(&request))
        .await
        .expect("bounded in time")
        .expect("a report")
}

fn adobe(endpoint: &str) -> DynamicMedia {
    DynamicMedia::new(DynamicMediaConfig {
        endpoint: Some(endpoint.to_owned()),
        ..DynamicMediaConfig::new("ops@example.com", "pw", "c|6", "Co")
    })
    .unwrap()
}

fn level3(endpoint: &str) -> Level3 {
    Level3::new(Level3Config {
        endpoint: endpoint.to_owned(),
        ..Level3Config::new("10042", "s3cr3t", "12345", "BBBN56789")
    })
    .unwrap()
}

/// 100,000 nested elements in a SOAP answer: once a stack overflow that killed the process
/// (losing every other provider's handles), now a failed row naming the limit, not retried.
#[tokio::test]
async fn deeply_nested_soap_is_a_protocol_error() {
    let body = format!(
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <soapenv:Body>{}",
        "<x>".repeat(100_000)
    );
    for status in [200, 500] {
        let server = serve(status, "text/xml", body.clone()).await;
        let report = purge(adobe(&server.url)).await;
        let row = &report.results[0];
        assert_eq!(row.state, State::Failed, "{row:?}");
        assert_eq!(row.attempts, 1, "a protocol error is not retried: {row:?}");
        let error = row.error.as_deref().unwrap();
        assert!(error.contains("deeper than 64 levels"), "{error}");
    }
}

/// Deep nesting in Level 3's XML answer.
#[tokio::test]
async fn deeply_nested_level3_answer_is_a_protocol_error() {
    let body = format!("<accessGroup>{}", "<services>".repeat(100_000));
    let server = serve(200, "text/xml", body).await;
    let report = purge(level3(&server.url)).await;
    let error = report.results[0].error.as_deref().unwrap();
    assert!(error.contains("deeper than 64 levels"), "{error}");
}

/// ESC sequences and a line break in a Level 3 invalidation id: the handle is kept exact (it is
/// sent back to poll), and shown escaped (`purgekit_core::escape_controls`, as the CLI does).
#[tokio::test]
async fn control_characters_in_a_handle_are_kept_exact_and_shown_escaped() {
    let id = "DAG_1\u{1b}[2J\u{1b}]0;pwned\u{7}\nINFO forged";
    let body = format!(
        "<accessGroup><networkIdentifiers><ni id=\"images.example.com\"><invalidations>\
         <invalidation id=\"{}\"/></invalidations></ni></networkIdentifiers></accessGroup>",
        id.replace('\n', "&#10;")
            .replace('\u{1b}', "&#27;")
            .replace('\u{7}', "&#7;")
    );
    let server = serve(200, "text/xml", body).await;
    let report = purge(level3(&server.url)).await;
    let row = &report.results[0];
    assert_eq!(row.state, State::Accepted, "{row:?}");
    let handle = row.handle.as_deref().unwrap();
    assert_eq!(handle, format!("images.example.com/{id}"));
    let shown = purgekit::escape_controls(handle);
    assert!(!shown.chars().any(char::is_control), "{shown}");
    assert!(
        shown.contains("\\u{1b}[2J") && shown.contains("\\nINFO forged"),
        "{shown}"
    );
}

/// A raw ESC and newline in Level 3's root element name reach the row's error escaped.
#[tokio::test]
async fn control_characters_in_an_error_text_are_escaped() {
    let server = serve(
        200,
        "text/xml",
        "<evil\u{1b}[31m\nINFO>x</evil\u{1b}[31m\nINFO>",
    )
    .await;
    let report = purge(level3(&server.url)).await;
    let error = report.results[0].error.as_deref().unwrap();
    assert!(!error.chars().any(char::is_control), "{error:?}");
    assert!(error.contains("\\u{1b}[31m"), "{error}");
}
