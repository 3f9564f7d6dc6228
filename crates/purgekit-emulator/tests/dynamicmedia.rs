//! The Dynamic Media emulator spoken to with hand-written envelopes over loopback HTTP.

use std::time::Duration;

use purgekit_emulator::dynamicmedia::{
    DynamicMediaEmulator, DynamicMediaEmulatorConfig, FaultKind, SoapFault,
};

const IPS: &str = "http://www.scene7.com/IpsApi/xsd";

struct Call<'a> {
    auth: String,
    version: &'a str,
    action: &'a str,
    param: String,
}

fn auth(user: &str, password: &str, extra: &str) -> String {
    format!(
        "<authHeader xmlns=\"{IPS}\"><user>{user}</user><password>{password}</password>\
         <appName>test</appName><appVersion>1</appVersion>{extra}</authHeader>"
    )
}

fn good_auth() -> String {
    auth("demo@purgekit.example", "demo-password", "")
}

fn invalidate(urls: &[String]) -> String {
    let items: String = urls.iter().map(|u| format!("<items>{u}</items>")).collect();
    format!("<companyHandle>c|1001</companyHandle><urlArray>{items}</urlArray>")
}

fn url(i: usize) -> String {
    format!("http://s7d1.scene7.com/is/image/PurgekitDemo/a{i}?$x$&amp;w=1")
}

fn envelope(call: &Call<'_>) -> String {
    let op = if call.action.is_empty() {
        "cdnCacheInvalidation"
    } else {
        call.action
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <soapenv:Header>{}</soapenv:Header><soapenv:Body>\
         <p:{op}Param xmlns:p=\"{IPS}/{}\">{}</p:{op}Param></soapenv:Body></soapenv:Envelope>",
        call.auth, call.version, call.param
    )
}

async fn send(base: &str, soap_action: &str, body: String) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{base}/scene7/services/IpsApiService"))
        .header("content-type", "text/xml; charset=UTF-8")
        .header("SOAPAction", soap_action)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn call<'a>(param: String) -> Call<'a> {
    Call {
        auth: good_auth(),
        version: "2014-04-03",
        action: "cdnCacheInvalidation",
        param,
    }
}

async fn run(emulator: &DynamicMediaEmulator, call: Call<'_>) -> (u16, String) {
    let running = emulator.start().await.unwrap();
    let out = send(&running.url(), call.action, envelope(&call)).await;
    running.stop().await;
    out
}

fn emulator() -> DynamicMediaEmulator {
    DynamicMediaEmulator::new(DynamicMediaEmulatorConfig {
        completion_after: Duration::from_millis(200),
        ..DynamicMediaEmulatorConfig::default()
    })
}

fn fault_code(body: &str) -> &str {
    let start = body
        .find("<ns1:code>")
        .map(|i| i + "<ns1:code>".len())
        .unwrap_or(0);
    let end = body[start..].find('<').map_or(start, |e| start + e);
    &body[start..end]
}

#[tokio::test]
async fn answers_the_shape_of_the_namespace_version() {
    let e = emulator();
    let urls: Vec<String> = (0..4).map(url).collect();
    let mut old = call(invalidate(&urls));
    old.version = "2012-02-14";
    let (status, body) = run(&e, old).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!(
            "<cdnCacheInvalidationReturn xmlns=\"{IPS}/2012-02-14\"><successCount>4</successCount>\
         <warningCount>0</warningCount><errorCount>0</errorCount></cdnCacheInvalidationReturn>"
        )),
        "{body}"
    );

    let (status, body) = run(&e, call(invalidate(&urls))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<invalidationHandle>c|1001|1</invalidationHandle><estimatedSeconds>5</estimatedSeconds>"), "{body}");
    assert_eq!(e.invalidation_calls(), 2);
    assert_eq!(e.purged_urls().len(), 8);
    assert_eq!(
        e.purged_urls()[0],
        "http://s7d1.scene7.com/is/image/PurgekitDemo/a0?$x$&w=1"
    );
}

#[tokio::test]
async fn status_completes_after_the_configured_time() {
    let e = emulator();
    let running = e.start().await.unwrap();
    let c = call(invalidate(&[url(1)]));
    let (_, body) = send(&running.url(), c.action, envelope(&c)).await;
    assert!(body.contains("c|1001|1"));
    let status_call = || Call {
        action: "getCdnCacheInvalidationStatus",
        param:
            "<companyHandle>c|1001</companyHandle><invalidationHandle>c|1001|1</invalidationHandle>"
                .into(),
        ..call(String::new())
    };
    let c = status_call();
    let (status, body) = send(&running.url(), c.action, envelope(&c)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<status>In-Progress</status><pingAfterSeconds>5</pingAfterSeconds>"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (_, body) = send(&running.url(), c.action, envelope(&c)).await;
    assert!(
        body.contains("<status>Done</status><completionTime>"),
        "{body}"
    );
}

#[tokio::test]
async fn faults_respect_fault_http_status_code() {
    let e = emulator();
    let mut c = call(invalidate(&[url(1)]));
    c.auth = auth(
        "demo@purgekit.example",
        "wrong",
        "<faultHttpStatusCode>200</faultHttpStatusCode>",
    );
    let (status, body) = run(&e, c).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<soapenv:Fault>") && body.contains("authenticationFault"),
        "{body}"
    );
    assert_eq!(fault_code(&body), "10001");

    let mut c = call(invalidate(&[url(1)]));
    c.auth = auth("demo@purgekit.example", "wrong", "");
    let (status, body) = run(&e, c).await;
    assert_eq!(status, 500);
    assert_eq!(fault_code(&body), "10001");
    assert!(e.purged_urls().is_empty());
}

#[tokio::test]
async fn checks_the_auth_header() {
    let e = emulator();
    let cases = [
        (String::new(), "10000"),
        (
            good_auth().replace(IPS, "http://example.com/other"),
            "10000",
        ),
        (
            format!(
                "<authHeader xmlns=\"{IPS}\"><password>demo-password</password><user>demo@purgekit.example</user></authHeader>"
            ),
            "30003",
        ),
        (auth("someone@else", "demo-password", ""), "10001"),
    ];
    for (auth, code) in cases {
        let mut c = call(invalidate(&[url(1)]));
        c.auth = auth.clone();
        let (status, body) = run(&e, c).await;
        assert_eq!(status, 500, "{auth}");
        assert_eq!(fault_code(&body), code, "{auth}: {body}");
    }
    assert!(e.purged_urls().is_empty());
}

#[tokio::test]
async fn checks_the_call() {
    let e = emulator();
    let too_many: Vec<String> = (0..1001).map(url).collect();
    let outside = vec![url(1), "http://s7d1.scene7.com/is/image/Other/a".to_owned()];
    let cases: Vec<(Call<'_>, &str)> = vec![
        (call(invalidate(&[])), "30002"),
        (call(invalidate(&too_many)), "30001"),
        (call(invalidate(&outside)), "30001"),
        (
            call(invalidate(&[url(1)]).replace("c|1001", "c|9")),
            "20000",
        ),
        (
            Call {
                version: "2010-01-31",
                ..call(invalidate(&[url(1)]))
            },
            "30003",
        ),
        (
            Call {
                version: "latest",
                ..call(invalidate(&[url(1)]))
            },
            "30003",
        ),
        (
            call(format!(
                "<urlArray><items>{}</items></urlArray><companyHandle>c|1001</companyHandle>",
                url(1)
            )),
            "30003",
        ),
    ];
    for (c, code) in cases {
        let shown = envelope(&c);
        let (status, body) = run(&e, c).await;
        assert_eq!(status, 500, "{shown}");
        assert_eq!(fault_code(&body), code, "{shown}: {body}");
    }
    assert!(e.purged_urls().is_empty(), "a faulted call purges nothing");

    let (status, body) = run(
        &e,
        call(invalidate(&(0..1000).map(url).collect::<Vec<_>>())),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(e.purged_urls().len(), 1000);
}

#[tokio::test]
async fn checks_the_soap_action_and_the_xml() {
    let e = emulator();
    let running = e.start().await.unwrap();
    let c = call(invalidate(&[url(1)]));
    let (status, body) = send(&running.url(), "getCompanyInfo", envelope(&c)).await;
    assert_eq!(status, 500);
    assert!(
        body.contains("<faultcode>soapenv:Client</faultcode>"),
        "{body}"
    );
    let (status, body) = send(&running.url(), "\"cdnCacheInvalidation\"", envelope(&c)).await;
    assert_eq!(status, 200, "a quoted SOAPAction is fine: {body}");
    let (status, body) = send(
        &running.url(),
        "cdnCacheInvalidation",
        "<soapenv:Envelope".into(),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(fault_code(&body), "30003");
    assert_eq!(e.requests().len(), 3);
}

#[tokio::test]
async fn injected_faults() {
    let e = emulator();
    e.push_soap_fault(SoapFault::new(
        FaultKind::Authorization,
        20003,
        "no permission",
    ));
    let (status, body) = run(&e, call(invalidate(&[url(1)]))).await;
    assert_eq!(status, 500);
    assert!(body.contains("authorizationFault"));
    assert_eq!(fault_code(&body), "20003");
    e.faults().push(purgekit_emulator::Fault::status(503));
    let (status, _) = run(&e, call(invalidate(&[url(1)]))).await;
    assert_eq!(status, 503);
    assert_eq!(e.requests().len(), 2);
    assert!(e.purged_urls().is_empty());
}
