//! The Level 3 emulator over real loopback HTTP, driven by a hand-written MPA signer (not the
//! provider crate's), so each documented rule and code is checked on the wire.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use purgekit_emulator::level3::{Level3Emulator, Level3EmulatorConfig};
use purgekit_emulator::{Fault, Running};
use sha1::Sha1;

const SCOPE: &str = "/invalidations/v1.0/12345/BBBN56789/cdn.example.com";

struct Client {
    running: Running,
    http: reqwest::Client,
    config: Level3EmulatorConfig,
}

struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn code(&self) -> &str {
        self.body
            .split_once("<errorCode>")
            .and_then(|(_, rest)| rest.split_once("</errorCode>"))
            .map_or("", |(code, _)| code)
    }
}

impl Client {
    async fn start(config: Level3EmulatorConfig) -> (Client, Level3Emulator) {
        let emulator = Level3Emulator::new(config.clone());
        let running = emulator.start().await.unwrap();
        let client = Client {
            running,
            http: reqwest::Client::new(),
            config,
        };
        (client, emulator)
    }

    /// Sends a request signed with `secret` at `date` (the exact `Date` header text).
    async fn send_as(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
        secret: &str,
        date: &str,
        extra: &[(&str, &str)],
    ) -> Answer {
        let path = path_and_query.split('?').next().unwrap();
        // `extra` may replace the content type and add a Content-MD5: both are signed.
        let extra_header = |name: &str| {
            extra
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        let content_type = extra_header("content-type").unwrap_or("text/xml");
        let md5 = extra_header("content-md5").unwrap_or("");
        let to_sign = format!("{date}\n{path}\n{content_type}\n{method}\n{md5}");
        let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(to_sign.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let authorization = format!("MPA {}:{signature}", self.config.key_id);
        let mut headers = reqwest::header::HeaderMap::new();
        let base = [
            ("content-type", "text/xml"),
            ("accept", "text/xml"),
            ("date", date),
            ("authorization", authorization.as_str()),
        ];
        for (name, value) in base.iter().chain(extra) {
            let name: reqwest::header::HeaderName = name.parse().unwrap();
            headers.insert(name, value.parse().unwrap());
        }
        let response = self
            .http
            .request(
                method.parse().unwrap(),
                format!("{}{path_and_query}", self.running.url()),
            )
            .headers(headers)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        Answer {
            status: response.status().as_u16(),
            body: response.text().await.unwrap(),
        }
    }

    /// Sends a request signed now with the account's secret and `extra` headers.
    async fn send_with(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> Answer {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let secret = self.config.secret.clone();
        self.send_as(method, path_and_query, body, &secret, &date, extra)
            .await
    }

    async fn send(&self, method: &str, path_and_query: &str, body: &str) -> Answer {
        let date = httpdate::fmt_http_date(SystemTime::now());
        self.send_as(
            method,
            path_and_query,
            body,
            &self.config.secret.clone(),
            &date,
            &[],
        )
        .await
    }

    async fn post(&self, query: &str, paths: &[&str]) -> Answer {
        let body: String = paths.iter().map(|p| format!("<path>{p}</path>")).collect();
        self.send(
            "POST",
            &format!("{SCOPE}{query}"),
            &format!("<paths>{body}</paths>"),
        )
        .await
    }
}

fn config() -> Level3EmulatorConfig {
    Level3EmulatorConfig {
        completion_time: Duration::from_millis(400),
        ..Level3EmulatorConfig::demo()
    }
}

fn invalidation_id(body: &str) -> String {
    let start = body.find("<invalidation id=\"").unwrap() + "<invalidation id=\"".len();
    body[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn accepts_a_signed_invalidation_and_records_it() {
    let (client, emulator) = Client::start(config()).await;
    let answer = client
        .post(
            "?force=true&ignoreCase=1&notification=a@x.com,b%2Bc@y.org",
            &["/a.jpg", "/q?x=1&amp;y=2"],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("<accessGroup id=\"12345\""),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("<ni id=\"cdn.example.com\">"));
    assert!(
        answer.body.contains("path=\"/q?x=1&amp;y=2\""),
        "{}",
        answer.body
    );
    let recorded = emulator.invalidations();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].id, invalidation_id(&answer.body));
    assert_eq!(recorded[0].paths, ["/a.jpg", "/q?x=1&y=2"]);
    assert!(recorded[0].force && recorded[0].ignore_case);
    assert_eq!(
        recorded[0].notification.as_deref(),
        Some("a@x.com,b+c@y.org")
    );
    assert_eq!(
        emulator.paths(),
        [
            ("cdn.example.com".to_owned(), "/a.jpg".to_owned()),
            ("cdn.example.com".to_owned(), "/q?x=1&y=2".to_owned())
        ]
    );
}

#[tokio::test]
async fn accepts_the_guides_plus_0000_date() {
    let (client, _emulator) = Client::start(config()).await;
    let gmt = httpdate::fmt_http_date(SystemTime::now());
    let date = gmt.replace(" GMT", " +0000");
    let secret = client.config.secret.clone();
    let answer = client
        .send_as(
            "POST",
            SCOPE,
            "<paths><path>/a</path></paths>",
            &secret,
            &date,
            &[],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn authentication_failures() {
    let (client, emulator) = Client::start(config()).await;
    let now = httpdate::fmt_http_date(SystemTime::now());
    let body = "<paths><path>/a</path></paths>";
    // Wrong secret: 403, no body.
    let answer = client
        .send_as("POST", SCOPE, body, "wrong", &now, &[])
        .await;
    assert_eq!((answer.status, answer.body.as_str()), (403, ""));
    // Twenty minutes old: 21719.
    let old = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(20 * 60));
    let secret = client.config.secret.clone();
    let answer = client
        .send_as("POST", SCOPE, body, &secret, &old, &[])
        .await;
    assert_eq!((answer.status, answer.code()), (403, "21719"));
    // Fourteen minutes old is fine.
    let recent = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(14 * 60));
    let answer = client
        .send_as("POST", SCOPE, body, &secret, &recent, &[])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // An Accept other than text/xml: 406.
    let answer = client
        .send_as(
            "POST",
            SCOPE,
            body,
            &secret,
            &now,
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(answer.status, 406);
    // No signature at all.
    let answer = client
        .http
        .post(format!("{}{SCOPE}", client.running.url()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 403);
    assert_eq!(emulator.invalidations().len(), 1);
}

#[tokio::test]
async fn enforces_the_documented_path_rules() {
    let (client, emulator) = Client::start(config()).await;
    let many: Vec<String> = (0..201).map(|i| format!("/p{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let answer = client.post("", &many).await;
    assert_eq!((answer.status, answer.code()), (403, "21732"));
    let answer = client.post("", &many[..200]).await;
    assert_eq!(answer.status, 200);
    let answer = client.post("", &["/a", "/images/*.jpg"]).await;
    assert_eq!((answer.status, answer.code()), (403, "21731"));
    let answer = client.post("", &["/images/*.jpg"]).await;
    assert_eq!(answer.status, 200);
    let answer = client.post("", &["a.jpg"]).await;
    assert_eq!((answer.status, answer.code()), (400, "21735"));
    let long = format!("{}@example.com", "x".repeat(240)); // 252 characters
    let answer = client.post(&format!("?notification={long}"), &["/a"]).await;
    assert_eq!((answer.status, answer.code()), (400, "21729"));
    let answer = client
        .post("?notification=a@x.com,%20b@y.com", &["/a"])
        .await;
    assert_eq!((answer.status, answer.code()), (400, "21729"));
    let answer = client.post("?force=maybe", &["/a"]).await;
    assert_eq!((answer.status, answer.code()), (400, "21729"));
    let answer = client.send("POST", SCOPE, "<paths><path>/a</path>").await;
    assert_eq!((answer.status, answer.code()), (400, "21734"));
    let answer = client
        .send(
            "POST",
            "/invalidations/v1.0/99999/BBBN56789/x.com",
            "<paths><path>/a</path></paths>",
        )
        .await;
    assert_eq!((answer.status, answer.code()), (404, "21701"));
    assert_eq!(emulator.invalidations().len(), 2);
    assert_eq!(emulator.paths().len(), 201);
}

#[tokio::test]
async fn unknown_network_identifiers_are_404_when_listed() {
    let (client, _emulator) = Client::start(Level3EmulatorConfig {
        network_identifiers: Some(["cdn.example.com".to_owned()].into()),
        ..config()
    })
    .await;
    assert_eq!(client.post("", &["/a"]).await.status, 200);
    let answer = client
        .send(
            "POST",
            "/invalidations/v1.0/12345/BBBN56789/other.com",
            "<paths><path>/a</path></paths>",
        )
        .await;
    assert_eq!((answer.status, answer.code()), (404, "21703"));
}

#[tokio::test]
async fn ten_requests_per_window_then_503() {
    let (client, emulator) = Client::start(Level3EmulatorConfig {
        rate_window: Duration::from_secs(2),
        ..config()
    })
    .await;
    for i in 0..10 {
        let answer = client.post("", &[&format!("/r{i}")]).await;
        assert_eq!(answer.status, 200, "request {i}: {}", answer.body);
    }
    let answer = client.post("", &["/r10"]).await;
    assert_eq!((answer.status, answer.code()), (503, "21723"));
    assert!(answer.body.contains("mpeRequestRateTooHigh"));
    assert_eq!(emulator.rejections(), 1);
    // The next window admits again.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(client.post("", &["/r11"]).await.status, 200);
    assert_eq!(emulator.paths().len(), 11);
}

#[tokio::test]
async fn percent_complete_advances_to_100() {
    let (client, _emulator) = Client::start(config()).await;
    let id = invalidation_id(&client.post("", &["/a", "/b"]).await.body);
    let status_uri = format!("{SCOPE}?id={id}");
    let first = client.send("GET", &status_uri, "").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        first.body.contains("<path>/a</path><path>/b</path>"),
        "{}",
        first.body
    );
    assert!(
        !first.body.contains("percentComplete=\"100\""),
        "{}",
        first.body
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    let done = client.send("GET", &status_uri, "").await;
    assert!(
        done.body
            .contains(&format!("id=\"{id}\" percentComplete=\"100\"")),
        "{}",
        done.body
    );
    // The whole access group lists it too; an unknown id is 21716.
    let all = client.send("GET", "/invalidations/v1.0/12345", "").await;
    assert!(all.body.contains(&id));
    let unknown = client.send("GET", &format!("{SCOPE}?id=nope"), "").await;
    assert_eq!((unknown.status, unknown.code()), (404, "21716"));
}

#[tokio::test]
async fn faults_are_injected_on_demand() {
    let (client, emulator) = Client::start(config()).await;
    emulator.faults().push(Fault::status(502));
    assert_eq!(client.post("", &["/a"]).await.status, 502);
    emulator.faults().push(Fault::Malformed);
    let answer = client.post("", &["/a"]).await;
    assert_eq!(answer.status, 200);
    assert!(!answer.body.contains("accessGroup"));
    assert_eq!(client.post("", &["/a"]).await.status, 200);
    assert_eq!(emulator.faults().injected(), 2);
    // Every request is recorded, with the status it got; faulted ones never reach the handler.
    let statuses: Vec<u16> = emulator.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [502, 200, 200]);
    assert_eq!(
        emulator.invalidations().len(),
        1,
        "faulted requests never reach the handler"
    );
}

/// The access-group scope of the demo account.
const AG: &str = "/invalidations/v1.0/12345";

/// The invalidation id of each `<ni>` of an answer, in order.
fn ids_per_ni(body: &str) -> Vec<(String, String)> {
    body.split("<ni id=\"")
        .skip(1)
        .map(|ni| {
            let name = ni.split('"').next().unwrap().to_owned();
            (name, invalidation_id(ni))
        })
        .collect()
}

#[tokio::test]
async fn accepts_access_group_scope_with_properties_as_in_example_3() {
    let (client, emulator) = Client::start(config()).await;
    // Example 3's request, verbatim (line breaks and all).
    let body = "<properties>
<property>
<name>exampleproperty1</name>
<paths>
<path>/example1.jpg</path>
<path>/example2.jpg</path>
</paths>
</property>
<property>
<name>exampleproperty2</name>
<paths>
<path>/example3.jpg</path>
</paths>
</property>
</properties>";
    let answer = client
        .send("POST", &format!("{AG}?ignoreCase=true&force=true"), body)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Example 3's answer shape: the NIs directly under the access group, each with its own id.
    assert!(!answer.body.contains("<services>"), "{}", answer.body);
    let ids = ids_per_ni(&answer.body);
    let names: Vec<&str> = ids.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["exampleproperty1", "exampleproperty2"]);
    assert_ne!(ids[0].1, ids[1].1);
    assert_eq!(
        emulator.paths(),
        [
            ("exampleproperty1".to_owned(), "/example1.jpg".to_owned()),
            ("exampleproperty1".to_owned(), "/example2.jpg".to_owned()),
            ("exampleproperty2".to_owned(), "/example3.jpg".to_owned()),
        ]
    );
    let recorded = emulator.invalidations();
    assert!(recorded.iter().all(|i| i.force && i.ignore_case));
    // Each id has its own status, at NI scope as at access-group scope.
    for (ni, id) in &ids {
        let answer = client
            .send(
                "GET",
                &format!("{AG}/BBBN56789/{ni}?id={}", id.replace('@', "%40")),
                "",
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.body.contains(id.as_str()), "{}", answer.body);
    }
}

#[tokio::test]
async fn access_group_scope_rules_count_every_property() {
    let (client, emulator) = Client::start(Level3EmulatorConfig {
        network_identifiers: Some(
            ["exampleproperty1".to_owned(), "exampleproperty2".to_owned()].into(),
        ),
        ..config()
    })
    .await;
    let property = |name: &str, paths: &[String]| {
        let paths: String = paths.iter().map(|p| format!("<path>{p}</path>")).collect();
        format!("<property><name>{name}</name><paths>{paths}</paths></property>")
    };
    let hundred = |tag: &str| -> Vec<String> { (0..100).map(|i| format!("/{tag}{i}")).collect() };
    // Example 4: one wildcard in each of two properties.
    let example_4 = format!(
        "<properties>{}{}</properties>",
        property("exampleproperty1", &["/example*.jpg".to_owned()]),
        property("exampleproperty2", &["/example*.jpg".to_owned()])
    );
    assert_eq!(client.send("POST", AG, &example_4).await.status, 200);
    // 200 paths over two properties pass, 201 do not.
    let full = format!(
        "<properties>{}{}</properties>",
        property("exampleproperty1", &hundred("a")),
        property("exampleproperty2", &hundred("b"))
    );
    assert_eq!(client.send("POST", AG, &full).await.status, 200);
    let mut over = hundred("b");
    over.push("/one-more".into());
    let over = format!(
        "<properties>{}{}</properties>",
        property("exampleproperty1", &hundred("a")),
        property("exampleproperty2", &over)
    );
    let answer = client.send("POST", AG, &over).await;
    assert_eq!((answer.status, answer.code()), (403, "21732"));
    // A wildcard with another path in its property.
    let mixed = format!(
        "<properties>{}</properties>",
        property("exampleproperty1", &["/a".to_owned(), "/b/*".to_owned()])
    );
    let answer = client.send("POST", AG, &mixed).await;
    assert_eq!((answer.status, answer.code()), (403, "21731"));
    // A property the access group does not have.
    let unknown = format!(
        "<properties>{}</properties>",
        property("nosuch.example.com", &["/a".to_owned()])
    );
    let answer = client.send("POST", AG, &unknown).await;
    assert_eq!((answer.status, answer.code()), (404, "21752"));
    assert!(
        answer.body.contains("[nosuch.example.com]"),
        "{}",
        answer.body
    );
    // `<paths>` at access-group scope, `<properties>` at NI scope, POST at SCID scope: refused.
    let answer = client
        .send("POST", AG, "<paths><path>/a</path></paths>")
        .await;
    assert_eq!((answer.status, answer.code()), (400, "21734"));
    let answer = client
        .send(
            "POST",
            "/invalidations/v1.0/12345/BBBN56789/exampleproperty1",
            &example_4,
        )
        .await;
    assert_eq!((answer.status, answer.code()), (400, "21734"));
    let answer = client
        .send("POST", "/invalidations/v1.0/12345/BBBN56789", &example_4)
        .await;
    assert_eq!((answer.status, answer.code()), (400, "21700"));
    assert_eq!(emulator.paths().len(), 2 + 200);
}

#[tokio::test]
async fn accepts_json_bodies_at_both_scopes() {
    let (client, emulator) = Client::start(config()).await;
    let json = [("content-type", "application/json")];
    // Example 4's JSON body as printed: its paths lack the leading slash the same document
    // requires ("The path must include a leading slash"), so it gets 21735 ...
    let printed = r#"[
{"name":"exampleproperty1",
"paths":["example*.jpg"]},
{"name":"exampleproperty2",
"paths":["example*.jpg"]}
]"#;
    let answer = client.send_with("POST", AG, printed, &json).await;
    assert_eq!(
        (answer.status, answer.code()),
        (400, "21735"),
        "{}",
        answer.body
    );
    // ... and is accepted with it.
    let fixed = printed.replace("\"example*", "\"/example*");
    let answer = client.send_with("POST", AG, &fixed, &json).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(ids_per_ni(&answer.body).len(), 2);
    // NI scope: Example 2's paths as {"paths":[…]}, with a charset parameter.
    let answer = client
        .send_with(
            "POST",
            SCOPE,
            r#"{"paths":["/directory/structure","/directory/structure02"]}"#,
            &[("content-type", "application/json; charset=UTF-8")],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(emulator.paths().len(), 4);
    // JSON that is not the documented shape, and a content type the guide does not list.
    let answer = client
        .send_with("POST", SCOPE, r#"{"path":["/a"]}"#, &json)
        .await;
    assert_eq!((answer.status, answer.code()), (400, "21734"));
    let answer = client
        .send_with("POST", SCOPE, "/a", &[("content-type", "text/plain")])
        .await;
    assert_eq!((answer.status, answer.code()), (400, "21734"));
}

#[tokio::test]
async fn a_signed_content_md5_verifies_as_base64_or_hex() {
    use md5::Digest as _;
    let (client, emulator) = Client::start(config()).await;
    // Example 2's body.
    let body =
        "<paths>\n<path>/directory/structure</path>\n<path>/directory/structure02</path>\n</paths>";
    let digest = md5::Md5::digest(body.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
    let hex = hex::encode(digest);
    for value in [b64.as_str(), hex.as_str(), &hex.to_uppercase()] {
        let answer = client
            .send_with(
                "POST",
                &format!("{SCOPE}?force=true"),
                body,
                &[("content-md5", value)],
            )
            .await;
        assert_eq!(answer.status, 200, "{value}: {}", answer.body);
    }
    // Signed, but not this body's digest.
    let other = hex::encode(md5::Md5::digest(b"<paths><path>/x</path></paths>"));
    let answer = client
        .send_with("POST", SCOPE, body, &[("content-md5", other.as_str())])
        .await;
    assert_eq!((answer.status, answer.code()), (400, "21729"));
    assert_eq!(emulator.invalidations().len(), 3);
}
