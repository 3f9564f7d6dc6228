//! Fuzzes the Level 3 emulator's `<paths>` reader: a signed invalidation POST (the signature
//! does not cover the body) with an arbitrary body.
#![no_main]

mod emulator;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use purgekit::level3::Level3;
use purgekit::sandbox::level3_config_for;
use purgekit_emulator::level3::{Level3Emulator, Level3EmulatorConfig};

static SETUP: LazyLock<(axum::Router, Level3)> = LazyLock::new(|| {
    let emulator = Level3Emulator::new(Level3EmulatorConfig::demo());
    let provider = Level3::new(level3_config_for(&emulator, "http://127.0.0.1:1"))
        .expect("valid config");
    (emulator.router(), provider)
});

fuzz_target!(|data: &[u8]| {
    let (router, provider) = &*SETUP;
    emulator::send(router, emulator::with_body(provider, data));
});
