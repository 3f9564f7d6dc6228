//! Fuzzes the Limelight emulator's request schema check: a purge POST whose arbitrary body is
//! signed again (the token covers the body), so the schema reader sees it.
#![no_main]

mod emulator;

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use purgekit::Config;
use purgekit::http::HeaderValue;
use purgekit::limelight::{TIMESTAMP_HEADER, TOKEN_HEADER, string_to_sign, token};
use purgekit_emulator::limelight::{LimelightEmulator, LimelightEmulatorConfig};

static SETUP: LazyLock<(axum::Router, Config, Vec<u8>)> = LazyLock::new(|| {
    let emulator = LimelightEmulator::new(LimelightEmulatorConfig::demo().fast());
    let key = hex::decode(&emulator.config().shared_key).expect("a hex key");
    (emulator.router(), emulator::demo_config(&emulator), key)
});

fuzz_target!(|data: &[u8]| {
    let (router, config, key) = &*SETUP;
    let provider = config.providers[0].codec();
    let mut request = emulator::with_body(provider, data);
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let url = request.uri().to_string();
    let signed = token(key, &string_to_sign("POST", &url, ms, data));
    let headers = request.headers_mut();
    headers.insert(TIMESTAMP_HEADER, HeaderValue::from(ms));
    headers.insert(
        TOKEN_HEADER,
        HeaderValue::from_str(&signed).expect("hex is a header value"),
    );
    emulator::send(router, request);
});
