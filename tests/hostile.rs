//! Hostile and broken servers on 127.0.0.1 against the engine and its default transport
//! (reqwest): endless and slow bodies, redirects, an absurd `Retry-After`, a self-signed TLS
//! certificate, a proxy that must not see loopback traffic. Each server is a few lines of raw
//! HTTP over a `TcpListener`, deterministic; each test is bounded to a few seconds.
//!
//! What each case yields is listed in docs/bad-input.md ("Hostile servers").

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use purgekit::http;
use purgekit::{
    Accepted, Batch, Budget, Capabilities, EngineConfig, Error, Handle, HttpRequest, HttpResponse,
    Item, Limits, Mapped, Options, Progress, Provider, ProviderPurger, ProxyPolicy, PurgeRequest,
    Purger, RateLimit, RateRegistry, Report, ReqwestTransport, Result, RetryPolicy, State, Status,
    Target, TargetKind, response_retry_after,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

mod common;

/// Every test ends within this, or fails.
const BOUND: Duration = Duration::from_secs(10);

/// The secret the codec sends with every request: it must reach no other host.
const SECRET: &str = "hostile-test-secret";

// ---------------------------------------------------------------------------------------------
// A minimal codec: `POST /purge` (one path per line, `x-secret`), 201 + handle = accepted.

struct Plain {
    endpoint: String,
    limits: Limits,
}

impl Plain {
    fn new(endpoint: &str) -> Self {
        Plain {
            endpoint: endpoint.to_owned(),
            limits: Limits {
                max_items: 1,
                ..Limits::default()
            },
        }
    }
}

impl Provider for Plain {
    fn kind(&self) -> &'static str {
        "hostile-test"
    }
    fn account(&self) -> String {
        self.endpoint.clone()
    }
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
    fn limits(&self) -> Limits {
        self.limits.clone()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            targets: vec![TargetKind::Url],
            options: vec![],
        }
    }
    fn map(&self, target: &Target, _: &Options) -> Result<Mapped> {
        let path = target.path_and_query().unwrap_or("/").to_owned();
        Ok(Mapped::Item(Item {
            kind: target.kind(),
            bytes: path.len() + 1,
            value: path,
            scope: String::new(),
            wildcard: false,
        }))
    }
    fn encode(&self, batch: &Batch, _: &Options, _: SystemTime) -> Result<HttpRequest> {
        let body: String = batch
            .items
            .iter()
            .map(|i| format!("{}\n", i.value))
            .collect();
        Ok(http::Request::post(format!("{}/purge", self.endpoint))
            .header("x-secret", SECRET)
            .body(body.into_bytes())
            .unwrap())
    }
    fn decode(&self, _: &Batch, response: HttpResponse) -> Result<Accepted> {
        let text = String::from_utf8_lossy(response.body()).into_owned();
        match response.status().as_u16() {
            201 => Ok(Accepted {
                handle: Handle(text),
                poll_after: None,
                warnings: vec![],
            }),
            429 => Err(Error::RateLimited {
                retry_after: response_retry_after(response.headers()),
                message: text,
            }),
            code @ 500..=599 => Err(Error::transient(format!("HTTP {code}"))),
            code => Err(Error::rejected(code.to_string(), text)),
        }
    }
    fn encode_status(&self, handle: &Handle, _: SystemTime) -> Result<HttpRequest> {
        Ok(
            http::Request::get(format!("{}/status/{handle}", self.endpoint))
                .header("x-secret", SECRET)
                .body(Vec::new())
                .unwrap(),
        )
    }
    fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
        Ok(Status {
            handle: handle.clone(),
            progress: Progress::Pending { percent: None },
            detail: String::from_utf8_lossy(response.body()).into_owned(),
            poll_after: None,
        })
    }
    fn redact(&self, request: &mut HttpRequest) {
        request
            .headers_mut()
            .insert("x-secret", purgekit::REDACTED.parse().unwrap());
    }
}

/// Fast retries, the run's deadline `deadline`, an account of its own.
fn purger(provider: Plain, deadline: Duration) -> ProviderPurger<Plain> {
    ProviderPurger::new("hostile", provider)
        .with_config(EngineConfig {
            deadline,
            retry: RetryPolicy {
                initial_backoff: Duration::from_millis(10),
                jitter: 0.0,
                ..RetryPolicy::default()
            },
            ..EngineConfig::default()
        })
        .with_rate_registry(Arc::new(RateRegistry::new()))
}

fn urls(n: usize) -> PurgeRequest {
    let mut b = PurgeRequest::builder();
    for i in 0..n {
        b = b.url(format!("https://cdn.example/{i}.js"));
    }
    b.build().unwrap()
}

async fn purge(purger: &dyn Purger, request: &PurgeRequest) -> Report {
    tokio::time::timeout(BOUND, purger.purge(request))
        .await
        .expect("the purge ended within the bound")
        .unwrap()
}

fn error(report: &Report, row: usize) -> &str {
    report.results[row].error.as_deref().unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// The hostile server: reads each request, answers as told, closes the connection.

/// What the server saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    /// Each request's head (request line and headers) and body.
    requests: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Seen {
    fn requests(&self) -> Vec<(String, Vec<u8>)> {
        self.requests.lock().unwrap().clone()
    }
}

/// How to answer one request.
enum Answer {
    /// These bytes, then close.
    Raw(String),
    /// A 201 with a chunked body that never ends.
    Endless,
    /// A 201 declaring 100 body bytes, then one byte every `every`.
    Slow { every: Duration },
}

fn raw(status: &str, headers: &[&str], body: &str) -> Answer {
    let mut text = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    Answer::Raw(text)
}

type Answers = dyn Fn(usize) -> Answer + Send + Sync;

/// A plain-HTTP hostile server answering request `n` (from 0) with `answer(n)`.
async fn hostile(answer: impl Fn(usize) -> Answer + Send + Sync + 'static) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let answer: Arc<Answers> = Arc::new(answer);
    let state = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            state.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, state.clone(), answer.clone()));
        }
    });
    (url, seen)
}

async fn serve(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    seen: Arc<Seen>,
    answer: Arc<Answers>,
) {
    let Some((head, body)) = read_request(&mut stream).await else {
        return;
    };
    let n = {
        let mut requests = seen.requests.lock().unwrap();
        requests.push((head, body));
        requests.len() - 1
    };
    match answer(n) {
        Answer::Raw(text) => {
            let _ = stream.write_all(text.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Answer::Endless => {
            let head = "HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
            while stream.write_all(chunk.as_bytes()).await.is_ok() {}
        }
        Answer::Slow { every } => {
            let head = "HTTP/1.1 201 Created\r\ncontent-length: 100\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for _ in 0..100 {
                if stream.write_all(b"x").await.is_err() || stream.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(every).await;
            }
        }
    }
}

/// One request: its head and its `content-length` body.
async fn read_request(stream: &mut (impl AsyncRead + Unpin)) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while data.len() < end + length {
        let n = stream.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
    }
    Some((head, data[end..end + length].to_vec()))
}

// ---------------------------------------------------------------------------------------------
// Bodies

#[tokio::test]
async fn an_endless_chunked_body_is_cut_at_the_cap() {
    let (url, seen) = hostile(|_| Answer::Endless).await;
    let started = Instant::now();
    let report = purge(&purger(Plain::new(&url), Duration::from_secs(30)), &urls(1)).await;
    assert_eq!(report.results[0].state, State::Failed);
    assert_eq!(report.results[0].attempts, 1, "not retried");
    assert_eq!(
        error(&report, 0),
        "protocol error: response larger than 1048576 bytes"
    );
    assert_eq!(seen.requests().len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_declared_200_mb_body_is_refused_unread() {
    let (url, _) = hostile(|_| {
        Answer::Raw("HTTP/1.1 201 Created\r\ncontent-length: 200000000\r\n\r\nxxxx".to_owned())
    })
    .await;
    let report = purge(&purger(Plain::new(&url), Duration::from_secs(30)), &urls(1)).await;
    assert_eq!(
        error(&report, 0),
        "protocol error: response larger than 1048576 bytes"
    );
}

#[tokio::test]
async fn a_slow_body_is_cut_off_at_the_deadline() {
    let (url, seen) = hostile(|_| Answer::Slow {
        every: Duration::from_secs(5),
    })
    .await;
    let started = Instant::now();
    let report = purge(&purger(Plain::new(&url), Duration::from_secs(2)), &urls(1)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(report.results[0].state, State::Failed);
    assert_eq!(report.results[0].attempts, 1);
    assert!(
        error(&report, 0).starts_with("no complete response before the run's deadline"),
        "{}",
        error(&report, 0)
    );
    assert_eq!(seen.requests().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Redirects

#[tokio::test]
async fn redirects_are_never_followed_and_nothing_reaches_the_other_host() {
    let (elsewhere, stolen) = hostile(|_| raw("200 OK", &[], "thanks")).await;
    let target = format!("{elsewhere}/steal");
    let (url, seen) = hostile(move |n| {
        let status = [
            "307 Temporary Redirect",
            "308 Permanent Redirect",
            "301 Moved",
            "302 Found",
        ][n % 4];
        let location = format!("location: {target}");
        raw(status, &[&location], "")
    })
    .await;
    let report = purge(&purger(Plain::new(&url), Duration::from_secs(30)), &urls(4)).await;
    for (row, code) in ["307", "308", "301", "302"].iter().enumerate() {
        assert_eq!(report.results[row].state, State::Failed);
        assert_eq!(report.results[row].attempts, 1);
        assert_eq!(
            error(&report, row),
            format!(
                "protocol error: the provider answered HTTP {code} (Location `{elsewhere}/steal`); \
                 redirects are never followed: check the endpoint"
            )
        );
    }
    assert_eq!(seen.requests().len(), 4);
    assert_eq!(
        stolen.connections.load(Ordering::SeqCst),
        0,
        "nothing re-sent elsewhere"
    );
}

// ---------------------------------------------------------------------------------------------
// Retry-After

#[tokio::test]
async fn an_absurd_retry_after_binds_only_its_batch() {
    let (url, seen) = hostile(|n| match n {
        0 => raw(
            "429 Too Many Requests",
            &["retry-after: 99999999"],
            "slow down",
        ),
        n => raw("201 Created", &[], &format!("job-{n}")),
    })
    .await;
    let mut plain = Plain::new(&url);
    plain.limits.rate = RateLimit {
        requests: Some(Budget::new(10, Duration::from_millis(500))),
        items: None,
    };
    let started = Instant::now();
    let report = purge(&purger(plain, Duration::from_secs(5)), &urls(3)).await;
    assert_eq!(report.results[0].state, State::Failed);
    assert!(
        error(&report, 0).ends_with(
            "not retried: the provider asked to wait 1157 d 9 h, past the run's deadline"
        ),
        "{}",
        error(&report, 0)
    );
    // The other batches waited one declared window (500 ms), not 3 years.
    assert_eq!(report.results[1].state, State::Accepted);
    assert_eq!(report.results[2].state, State::Accepted);
    assert_eq!(seen.requests().len(), 3);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// TLS

#[tokio::test]
async fn a_self_signed_certificate_is_fatal_and_not_retried() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let state = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            state.connections.fetch_add(1, Ordering::SeqCst);
            let (acceptor, state) = (acceptor.clone(), state.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve(tls, state, Arc::new(|_| raw("201 Created", &[], "job-1"))).await;
                }
            });
        }
    });
    let report = purge(&purger(Plain::new(&url), Duration::from_secs(30)), &urls(1)).await;
    assert_eq!(report.results[0].state, State::Failed);
    assert_eq!(
        report.results[0].attempts,
        1,
        "not retried: {}",
        error(&report, 0)
    );
    let message = error(&report, 0);
    assert!(message.starts_with("protocol error: "), "{message}");
    assert!(
        message.contains("the server's TLS certificate was refused"),
        "{message}"
    );
    assert!(message.contains("not retried"), "{message}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    assert!(seen.requests().is_empty(), "nothing was sent over it");
}

// ---------------------------------------------------------------------------------------------
// Proxies

#[tokio::test]
async fn loopback_is_never_sent_through_a_proxy() {
    let (proxy, proxied) = hostile(|_| raw("502 Bad Gateway", &[], "")).await;
    let (url, seen) = hostile(|_| raw("201 Created", &[], "job-1")).await;
    let transport = ReqwestTransport::with_proxy(&ProxyPolicy::Url(proxy)).unwrap();
    let p = purger(Plain::new(&url), Duration::from_secs(30)).with_transport(Arc::new(transport));
    let report = purge(&p, &urls(1)).await;
    assert_eq!(
        report.results[0].state,
        State::Accepted,
        "{:?}",
        report.results[0]
    );
    assert_eq!(seen.requests().len(), 1);
    assert_eq!(proxied.connections.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------------------------
// The real providers' decoders against hostile answers (canned by `tests/common/hostile.rs`):
// deep nesting, control characters in handles and error texts.

mod decoders {
    use std::time::Duration;

    use crate::common::hostile::serve;
    use purgekit::dynamicmedia::{DynamicMedia, DynamicMediaConfig};
    use purgekit::level3::{Level3, Level3Config};
    use purgekit::{Provider, ProviderPurger, PurgeRequest, Purger, Report, State};

    const URL: &str = "https://images.example.com/is/image/Co/a.jpg";

    async fn purge(provider: impl Provider) -> Report {
        let purger = ProviderPurger::new("hostile", provider).with_config(crate::common::engine(1));
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
}
