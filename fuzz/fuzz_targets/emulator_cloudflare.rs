//! Fuzzes the Cloudflare emulator's body reader: a purge with the demo token and an arbitrary
//! JSON body.
#![no_main]

mod emulator;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use purgekit_emulator::cloudflare::{CloudflareEmulator, CloudflareEmulatorConfig};

static ROUTER: LazyLock<axum::Router> =
    LazyLock::new(|| CloudflareEmulator::new(CloudflareEmulatorConfig::demo()).router());

fuzz_target!(|data: &[u8]| {
    let c = CloudflareEmulatorConfig::demo();
    let request = purgekit::http::Request::post(format!(
        "http://127.0.0.1:1/client/v4/zones/{}/purge_cache",
        c.zone_id
    ))
    .header("authorization", format!("Bearer {}", c.api_token))
    .header("content-type", "application/json")
    .body(data.to_vec())
    .expect("a request");
    emulator::send(&ROUTER, request);
});
