//! Fuzzes the Adobe Dynamic Media emulator's SOAP envelope reader with arbitrary bodies (the
//! credentials travel in the body, so the reader runs before any check).
#![no_main]

mod emulator;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use purgekit::dynamicmedia::DynamicMedia;
use purgekit::sandbox::dynamic_media_config_for;
use purgekit_emulator::dynamicmedia::{DynamicMediaEmulator, DynamicMediaEmulatorConfig};

static SETUP: LazyLock<(axum::Router, DynamicMedia)> = LazyLock::new(|| {
    let emulator = DynamicMediaEmulator::new(DynamicMediaEmulatorConfig::demo());
    let provider = DynamicMedia::new(dynamic_media_config_for(&emulator, "http://127.0.0.1:1"))
        .expect("valid config");
    (emulator.router(), provider)
});

fuzz_target!(|data: &[u8]| {
    let (router, provider) = &*SETUP;
    emulator::send(router, emulator::with_body(provider, data));
});
