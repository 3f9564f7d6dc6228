//! Drives an emulator's router in-process (no socket) with one request, as the fuzz targets
//! for the emulators' request parsers do: a request the provider codec signed, its body
//! replaced by the fuzz bytes (re-signed where the signature covers the body).
// Each target uses a part of it (Fastly's and Cloudflare's build their own request).
#![allow(dead_code)]

use std::sync::LazyLock;
use std::time::SystemTime;

use purgekit::emulator::Emulated;
use purgekit::sandbox::config_toml;
use purgekit::{Batch, Config, HttpRequest, Provider, PurgeRequest, plan_provider};
use tower::ServiceExt;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
});

/// `emulator`'s demo account as a config (read the way every config file is), pointing at a
/// closed port: its one provider's codec is `providers[0].codec()`.
pub fn demo_config(emulator: &dyn Emulated) -> Config {
    let toml = config_toml([(emulator.kind(), emulator, "http://127.0.0.1:1")])
        .expect("the demo account as TOML");
    Config::parse_with_env(&toml, |_| None).expect("the demo account's config")
}

/// Sends `request` to `router` and reads the answer's status; any panic is a finding. The
/// `Host` header an HTTP client would add is added (Limelight's emulator signs with it).
pub fn send(router: &axum::Router, mut request: HttpRequest) -> u16 {
    if let Some(authority) = request.uri().authority().cloned() {
        let host = purgekit::http::HeaderValue::from_str(authority.as_str()).expect("a host");
        request
            .headers_mut()
            .insert(purgekit::http::header::HOST, host);
    }
    let request = request.map(axum::body::Body::from);
    RUNTIME.block_on(async {
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        if std::env::var_os("PURGEKIT_FUZZ_SHOW").is_some() {
            eprintln!("emulator answered {status}");
        }
        status
    })
}

/// A batch of two URLs under the sandbox's Adobe company root, planned by `provider`.
pub fn batch(provider: &dyn Provider) -> Batch {
    let request = PurgeRequest::builder()
        .url("https://images.example.com/is/image/PurgekitDemo/a.jpg")
        .url("https://images.example.com/is/image/PurgekitDemo/b.jpg")
        .build()
        .expect("valid URLs");
    let plan = plan_provider("fuzz", provider, &request).expect("plans");
    plan.batch(0, provider, &request).expect("one batch")
}

/// `provider`'s signed purge request for [`batch`], its body replaced by `body`.
pub fn with_body(provider: &dyn Provider, body: &[u8]) -> HttpRequest {
    let batch = batch(provider);
    let mut request = provider
        .encode(&batch, &Default::default(), SystemTime::now())
        .expect("encodes");
    *request.body_mut() = body.to_vec();
    request
}
