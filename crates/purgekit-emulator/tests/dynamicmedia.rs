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
        // Each child at most once, and only the schema's.
        (
            format!(
                "<authHeader xmlns=\"{IPS}\"><user>demo@purgekit.example</user><user>x</user><password>demo-password</password></authHeader>"
            ),
            "30003",
        ),
        (
            auth("demo@purgekit.example", "demo-password", "<token>x</token>"),
            "30003",
        ),
        // The versioned form is a sequence with appName and appVersion.
        (
            format!(
                "<authHeader xmlns=\"{IPS}/2014-04-03\"><user>demo@purgekit.example</user><password>demo-password</password></authHeader>"
            ),
            "30003",
        ),
        (
            format!(
                "<authHeader xmlns=\"{IPS}/2014-04-03\"><password>demo-password</password><user>demo@purgekit.example</user><appName>a</appName><appVersion>1</appVersion></authHeader>"
            ),
            "30003",
        ),
        (auth("someone@else", "demo-password", ""), "10001"),
        (
            format!("<authHeader xmlns=\"{IPS}\"><accessToken>wrong</accessToken></authHeader>"),
            "10001",
        ),
        (
            format!("<authHeader xmlns=\"{IPS}\"><appName>a</appName></authHeader>"),
            "10000",
        ),
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

/// Extra HTTP headers of a call.
type Headers = Vec<(&'static str, String)>;

/// The document's own request (`cdnCacheInvalidation`, "Request"), its URLs under the demo
/// company's root, with the given `authHeader`, schema `version` and extra HTTP headers.
async fn documents_example(
    e: &DynamicMediaEmulator,
    auth: &str,
    version: &str,
    extra: &[(&str, String)],
) -> (u16, String) {
    let param = format!(
        "<cdnCacheInvalidationParam xmlns=\"{IPS}/{version}\">
   <companyHandle>c|1001</companyHandle>
   <urlArray>
       <items>http://s7d7.scene7.com/is/image/PurgekitDemo/11008047?$thumbnail$</items>
       <items>http://s7d7.scene7.com/is/image/PurgekitDemo/11008047?$product$</items>
       <items>http://s7d7.scene7.com/is/image/PurgekitDemo/11008047?$large$</items>
       <items>http://s7d7.scene7.com/is/image/PurgekitDemo/ImageSetConfigDefaults?req=userdata</items>
    </urlArray>
</cdnCacheInvalidationParam>"
    );
    let body = format!(
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <soapenv:Header>{auth}</soapenv:Header><soapenv:Body>{param}</soapenv:Body></soapenv:Envelope>"
    );
    let running = e.start().await.unwrap();
    let mut request = reqwest::Client::new()
        .post(format!("{}/scene7/services/IpsApiService", running.url()))
        .header("content-type", "text/xml; charset=UTF-8")
        .header("SOAPAction", "cdnCacheInvalidation")
        .body(body);
    for (name, value) in extra {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let out = (response.status().as_u16(), response.text().await.unwrap());
    running.stop().await;
    out
}

#[tokio::test]
async fn accepts_every_documented_credential_form() {
    let e = emulator();
    let basic = |user: &str, password: &str| {
        use base64::Engine as _;
        let raw = format!("{user}:{password}");
        vec![(
            "authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ),
        )]
    };
    let accepted: Vec<(&str, String, Headers)> = vec![
        // Unversioned, children in any order (xsd:all), app fields optional.
        (
            "unversioned, any order",
            format!(
                "<authHeader xmlns=\"{IPS}\"><appVersion>1</appVersion><password>demo-password</password>\
                 <locale>en</locale><user>demo@purgekit.example</user></authHeader>"
            ),
            vec![],
        ),
        (
            "unversioned, user and password only",
            format!(
                "<authHeader xmlns=\"{IPS}\"><user>demo@purgekit.example</user><password>demo-password</password></authHeader>"
            ),
            vec![],
        ),
        // Versioned (the body's namespace), as a sequence with appName and appVersion.
        (
            "versioned",
            format!(
                "<authHeader xmlns=\"{IPS}/2012-02-14\"><user>demo@purgekit.example</user>\
                 <password>demo-password</password><appName>purgekit</appName><appVersion>1</appVersion></authHeader>"
            ),
            vec![],
        ),
        // accessToken instead of user and password.
        (
            "accessToken",
            format!(
                "<authHeader xmlns=\"{IPS}\"><accessToken>purgekit-demo-access-token</accessToken>\
                 <appName>purgekit</appName></authHeader>"
            ),
            vec![],
        ),
        // HTTP Basic instead of an authHeader, with none or with one carrying no credentials.
        (
            "HTTP Basic",
            String::new(),
            basic("demo@purgekit.example", "demo-password"),
        ),
        (
            "HTTP Basic beside an authHeader without credentials",
            format!("<authHeader xmlns=\"{IPS}\"><appName>purgekit</appName></authHeader>"),
            basic("demo@purgekit.example", "demo-password"),
        ),
    ];
    for (what, auth, extra) in &accepted {
        let (status, body) = documents_example(&e, auth, "2012-02-14", extra).await;
        assert_eq!(status, 200, "{what}: {body}");
        assert!(
            body.contains("<successCount>4</successCount>"),
            "{what}: {body}"
        );
    }
    assert_eq!(e.purged_urls().len(), 4 * accepted.len());
    // Wrong or missing credentials: a SOAP fault with HTTP 500, never a 401.
    for (what, auth, extra, code) in [
        ("no credentials at all", String::new(), vec![], "10000"),
        (
            "a wrong Basic password",
            String::new(),
            basic("demo@purgekit.example", "nope"),
            "10001",
        ),
    ] {
        let (status, body) = documents_example(&e, &auth, "2012-02-14", &extra).await;
        assert_eq!(status, 500, "{what}: {body}");
        assert!(
            body.contains("<soapenv:Fault>") || body.contains("Fault"),
            "{what}: {body}"
        );
        assert_eq!(fault_code(&body), code, "{what}: {body}");
    }
}

#[tokio::test]
async fn accepts_the_beta_schema_namespaces() {
    let e = emulator();
    for version in [
        "2013-08-29-beta",
        "2016-01-14-beta",
        "2017-10-29-beta",
        "2019-09-10-beta",
        "2021-01-11-beta",
    ] {
        // The versioned authHeader in the beta namespace too.
        let auth = format!(
            "<authHeader xmlns=\"{IPS}/{version}\"><user>demo@purgekit.example</user>\
             <password>demo-password</password><appName>purgekit</appName><appVersion>1</appVersion></authHeader>"
        );
        let (status, body) = documents_example(&e, &auth, version, &[]).await;
        assert_eq!(status, 200, "{version}: {body}");
        // A beta is ordered by its date: 2013-08-29 predates handles (2014-04-03).
        let counts = body.contains("<successCount>4</successCount>");
        let handle = body.contains("<invalidationHandle>");
        assert_eq!(
            (counts, handle),
            (version < "2014", version > "2014"),
            "{version}: {body}"
        );
    }
    let (status, body) = documents_example(&e, &good_auth(), "2013-08-29-alpha", &[]).await;
    assert_eq!((status, fault_code(&body)), (500, "30003"), "{body}");
}
