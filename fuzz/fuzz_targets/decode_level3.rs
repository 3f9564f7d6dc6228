//! Fuzzes the level3 provider's `decode` and `decode_status` with arbitrary answers: any panic
//! (a usage error, a raw control character in an error message, a stack overflow) is a finding.
#![no_main]

#[path = "answer.rs"]
mod answer;
#[path = "../../tests/common/decoders.rs"]
mod decoders;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

static CASE: LazyLock<decoders::DecoderCase> = LazyLock::new(|| decoders::case("level3"));

fuzz_target!(|data: &[u8]| {
    decoders::decode_both(&CASE, &answer::answer(data));
});
