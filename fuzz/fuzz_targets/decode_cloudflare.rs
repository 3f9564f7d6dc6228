//! Fuzzes the Cloudflare provider's `decode` with arbitrary answers (it has no status call): any
//! panic (a usage error, a raw control character in an error message, a stack overflow) is a
//! finding.
#![no_main]

#[path = "answer.rs"]
mod answer;
#[path = "../../tests/common/decoders.rs"]
mod decoders;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

static CASE: LazyLock<decoders::DecoderCase> = LazyLock::new(|| decoders::case("cloudflare"));

fuzz_target!(|data: &[u8]| {
    decoders::decode_both(&CASE, &answer::answer(data));
});
