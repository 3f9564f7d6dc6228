//! Every registered provider's decoders with a real batch and handle to decode against: shared by the
//! property test over arbitrary answers (`tests/decoders.rs`) and the fuzz targets
//! (`fuzz/fuzz_targets/decode_*.rs`), so both exercise the same inputs.
#![allow(dead_code)]

use purgekit::emulator::Emulated;
use purgekit::sandbox::config_toml;
use purgekit::{
    Batch, CompletionModel, Config, Error, Handle, HttpResponse, Provider, PurgeRequest,
    plan_provider,
};

/// One provider, a batch it planned, and a handle of its form.
pub struct DecoderCase {
    pub name: &'static str,
    config: purgekit::config::ProviderConfig,
    pub batch: Batch,
    pub handle: Handle,
}

impl DecoderCase {
    /// The provider's codec.
    pub fn provider(&self) -> &dyn Provider {
        self.config.codec()
    }
}

/// A handle of each kind's form, where the kind polls one (any other text serves the rest).
fn handle_of(kind: &str) -> &'static str {
    match kind {
        "level3" => "images.example.com/DAG_1/2@3-4",
        "limelight" => "8c1a86546c3611e49c633a03000021e9",
        "cloudfront" => "I2J0I21PCUYOIK",
        _ => "handle-1",
    }
}

/// Every registered provider with its sandbox demo account, each with a batch of the two-URL
/// request (a provider purging a URL a request: one URL), in kind order.
pub fn cases() -> Vec<DecoderCase> {
    let urls = [
        "https://images.example.com/is/image/PurgekitDemo/a.jpg",
        "https://images.example.com/is/image/PurgekitDemo/b.jpg",
    ];
    let request = urls
        .iter()
        .fold(PurgeRequest::builder(), |b, u| b.url(*u))
        .build()
        .expect("valid URLs");
    let emulators = purgekit::emulator::sandbox();
    let toml = config_toml(
        emulators
            .iter()
            .map(|e| (e.kind(), &**e as &dyn Emulated, "http://127.0.0.1:1")),
    )
    .expect("the demo accounts as TOML");
    let config = Config::parse_with_env(&toml, |_| None).expect("the demo accounts' config");
    config
        .providers
        .into_iter()
        .map(|config| {
            let name = config.kind();
            let provider = config.codec();
            let plan = plan_provider(name, provider, &request).expect("plans");
            let batch = plan.batch(0, provider, &request).expect("one batch");
            DecoderCase {
                name,
                batch,
                handle: Handle(handle_of(name).to_owned()),
                config,
            }
        })
        .collect()
}

/// The case of provider kind `kind`.
pub fn case(kind: &str) -> DecoderCase {
    cases()
        .into_iter()
        .find(|c| c.name == kind)
        .unwrap_or_else(|| panic!("no provider `{kind}` registered"))
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
    if let Err(e) = case.provider().decode(&case.batch, response.clone()) {
        check(&e);
    }
    // A provider without a status call (Fastly) answers every status decode `unsupported`.
    if case.provider().completion() == CompletionModel::Polled
        && let Err(e) = case
            .provider()
            .decode_status(&case.handle, response.clone())
    {
        check(&e);
    }
}
