//! Every provider's decoders with a real batch and handle to decode against: shared by the
//! property test over arbitrary answers (`tests/decoders.rs`) and the fuzz targets
//! (`fuzz/fuzz_targets/decode_*.rs`), so both exercise the same inputs.
#![allow(dead_code)]

use purgekit::cloudflare::{Cloudflare, CloudflareConfig};
use purgekit::dynamicmedia::{DynamicMedia, DynamicMediaConfig};
use purgekit::fastly::{Fastly, FastlyConfig};
use purgekit::level3::{Level3, Level3Config};
use purgekit::limelight::{Limelight, LimelightConfig};
use purgekit::{
    Batch, CompletionModel, Error, Handle, HttpResponse, Provider, PurgeRequest, plan_provider,
};

/// One provider, a batch it planned, and a handle of its form.
pub struct DecoderCase {
    pub name: &'static str,
    pub provider: Box<dyn Provider>,
    pub batch: Batch,
    pub handle: Handle,
}

/// The providers, each with a batch of the two-URL request (Fastly's: one URL).
pub fn cases() -> Vec<DecoderCase> {
    let urls = [
        "https://images.example.com/is/image/Co/a.jpg",
        "https://images.example.com/is/image/Co/b.jpg",
    ];
    let request = urls
        .iter()
        .fold(PurgeRequest::builder(), |b, u| b.url(*u))
        .build()
        .expect("valid URLs");
    let providers: Vec<(&'static str, Box<dyn Provider>, &str)> = vec![
        (
            "level3",
            Box::new(
                Level3::new(Level3Config::new("10042", "s3cr3t", "12345", "BBBN56789"))
                    .expect("valid config"),
            ),
            "images.example.com/DAG_1/2@3-4",
        ),
        (
            "limelight",
            Box::new(
                Limelight::new(LimelightConfig::new(
                    "example",
                    "exampleuser",
                    "00112233445566778899aabbccddeeff",
                ))
                .expect("valid config"),
            ),
            "8c1a86546c3611e49c633a03000021e9",
        ),
        (
            "dynamic-media",
            Box::new(
                DynamicMedia::new(DynamicMediaConfig::new(
                    "ops@example.com",
                    "pw",
                    "c|6",
                    "Co",
                ))
                .expect("valid config"),
            ),
            "handle-1",
        ),
        (
            "fastly",
            Box::new({
                let mut config = FastlyConfig::new("SU1Z0isxPaozGVKXdv0eY");
                config.api_token = Some("fastly-token".into());
                Fastly::new(config).expect("valid config")
            }),
            "108-1391560174-974124",
        ),
        (
            "cloudflare",
            Box::new({
                let mut config = CloudflareConfig::new("023e105f4ecef8ad9ca31a8372d0c353");
                config.api_token = Some("cloudflare-token".into());
                Cloudflare::new(config).expect("valid config")
            }),
            "023e105f4ecef8ad9ca31a8372d0c353",
        ),
    ];
    providers
        .into_iter()
        .map(|(name, provider, handle)| {
            let plan = plan_provider(name, &*provider, &request).expect("plans");
            let batch = plan.batch(0, &*provider, &request).expect("one batch");
            DecoderCase {
                name,
                provider,
                batch,
                handle: Handle(handle.to_owned()),
            }
        })
        .collect()
}

/// An answer with `status` (clamped into 100–999), the given headers (those that are not valid
/// HTTP dropped) and `body`.
pub fn response(status: u16, headers: &[(String, String)], body: &[u8]) -> HttpResponse {
    let mut builder = purgekit::http::Response::builder().status(status.clamp(100, 999));
    for (name, value) in headers {
        if purgekit::http::HeaderName::try_from(name.as_str()).is_ok()
            && purgekit::http::HeaderValue::try_from(value.as_str()).is_ok()
        {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    builder.body(body.to_vec()).expect("a valid response")
}

/// Whether an error is one a decoder may return for a response: a classified kind, never a
/// usage error (which would claim nothing was sent).
pub fn is_decoder_kind(e: &Error) -> bool {
    matches!(
        e.kind(),
        "auth" | "rate_limited" | "transient" | "rejected" | "protocol"
    )
}

/// Feeds one answer to both decoders of `case`; panics (the fuzzers' finding) when a decoder
/// returns a usage error or shows a control character in an error message.
pub fn decode_both(case: &DecoderCase, response: &HttpResponse) {
    let check = |e: &Error| {
        assert!(is_decoder_kind(e), "{}: {e:?}", case.name);
        let shown = e.to_string();
        assert!(
            !shown.chars().any(char::is_control),
            "{}: control character in `{shown:?}`",
            case.name
        );
    };
    if let Err(e) = case.provider.decode(&case.batch, response.clone()) {
        check(&e);
    }
    // A provider without a status call (Fastly) answers every status decode `unsupported`.
    if case.provider.completion() == CompletionModel::Polled
        && let Err(e) = case.provider.decode_status(&case.handle, response.clone())
    {
        check(&e);
    }
}
