//! Fuzzes the Level 3 emulator's `<paths>` reader: a signed invalidation POST (the signature
//! does not cover the body) with an arbitrary body.
#![no_main]

mod emulator;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use purgekit::Config;
use purgekit_emulator::level3::{Level3Emulator, Level3EmulatorConfig};

static SETUP: LazyLock<(axum::Router, Config)> = LazyLock::new(|| {
    let emulator = Level3Emulator::new(Level3EmulatorConfig::demo());
    (emulator.router(), emulator::demo_config(&emulator))
});

fuzz_target!(|data: &[u8]| {
    let (router, config) = &*SETUP;
    let provider = config.providers[0].codec();
    emulator::send(router, emulator::with_body(provider, data));
});
