//! Fuzzes the Fastly emulator's batch-purge reader: a surrogate-key batch purge with the demo
//! token and an arbitrary JSON body.
#![no_main]

mod emulator;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use purgekit_emulator::fastly::{FastlyEmulator, FastlyEmulatorConfig};

static ROUTER: LazyLock<axum::Router> =
    LazyLock::new(|| FastlyEmulator::new(FastlyEmulatorConfig::demo()).router());

fuzz_target!(|data: &[u8]| {
    let c = FastlyEmulatorConfig::demo();
    let request =
        purgekit::http::Request::post(format!("http://127.0.0.1:1/service/{}/purge", c.service_id))
            .header("fastly-key", c.api_token)
            .header("content-type", "application/json")
            .body(data.to_vec())
            .expect("a request");
    emulator::send(&ROUTER, request);
});
