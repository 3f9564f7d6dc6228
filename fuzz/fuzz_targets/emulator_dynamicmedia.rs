//! Fuzzes the Adobe Dynamic Media emulator's SOAP envelope reader with arbitrary bodies (the
//! credentials travel in the body, so the reader runs before any check).
#![no_main]

mod emulator;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use purgekit::Config;
use purgekit_emulator::dynamicmedia::{DynamicMediaEmulator, DynamicMediaEmulatorConfig};

static SETUP: LazyLock<(axum::Router, Config)> = LazyLock::new(|| {
    let emulator = DynamicMediaEmulator::new(DynamicMediaEmulatorConfig::demo());
    (emulator.router(), emulator::demo_config(&emulator))
});

fuzz_target!(|data: &[u8]| {
    let (router, config) = &*SETUP;
    let provider = config.providers[0].codec();
    emulator::send(router, emulator::with_body(provider, data));
});
