//! Every provider's `decode` and `decode_status` over arbitrary answers: never a panic, never
//! a stack overflow, always a value or a classified error whose text shows no raw control
//! character. (The same decoders are fuzzed for longer by `fuzz/`; see docs/fuzzing.md.)

mod common;

use common::decoders::{cases, decode_both, response};
use proptest::prelude::*;

/// Bodies that look like the answers the decoders read, so the properties reach past the
/// first parse error: XML and JSON fragments, entities, control characters, deep nesting.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just("<accessGroup>".to_owned()),
        Just("<networkIdentifiers><ni id=\"n\u{1b}\">".to_owned()),
        Just(
            "<invalidations><invalidation id=\"A\u{1b}[2J\n\" percentComplete=\"50\"/>".to_owned()
        ),
        Just("<error><errorCode>21708</errorCode><message>m\r\n".to_owned()),
        Just(
            "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
                .to_owned()
        ),
        Just("<soapenv:Body><cdnCacheInvalidationReturn xmlns=\"urn:x\">".to_owned()),
        Just("<invalidationHandle>h\u{1b}\n</invalidationHandle>".to_owned()),
        Just("<status>Done</status><pingAfterSeconds>9</pingAfterSeconds>".to_owned()),
        Just("<soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>\u{7}".to_owned()),
        Just("{\"id\":\"8c1a86546c3611e49c633a03000021e9\",\"states\":[".to_owned()),
        Just("{\"errors\":[{\"message\":\"\u{1b}x\",\"code\":1022}]}".to_owned()),
        Just("&amp;&#x1b;&bogus;<![CDATA[x]]>".to_owned()),
        Just("</a>".to_owned()),
        (1usize..200).prop_map(|n| "<a>".repeat(n)),
        (1usize..200).prop_map(|n| "[{\"a\":".repeat(n)),
        "\\PC{0,20}",
        "[\\x00-\\x1f]{0,4}",
    ];
    prop_oneof![
        prop::collection::vec(piece, 0..12).prop_map(|p| p.concat().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..512),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(200u16),
        Just(201),
        Just(400),
        Just(403),
        Just(429),
        Just(500),
        Just(503),
        100u16..1000,
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("retry-after".to_owned()),
        Just("date".to_owned()),
        Just("content-type".to_owned()),
        "[a-z-]{1,12}",
    ];
    let value = prop_oneof![
        Just("99999999999999999999".to_owned()),
        Just("Sun, 06 Nov 2099 08:49:37 GMT".to_owned()),
        Just("-1".to_owned()),
        "[ -~]{0,30}",
    ];
    prop::collection::vec((name, value), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoders_classify_any_answer(status in status(), headers in headers(), body in body()) {
        let answer = response(status, &headers, &body);
        for case in &cases() {
            decode_both(case, &answer);
        }
    }
}

/// 100,000 levels of nesting in each provider's own format: a protocol error naming the limit,
/// at every status (before the cap, Adobe's SOAP tree overflowed the stack here).
#[test]
fn deeply_nested_answers_are_protocol_errors() {
    let depth = 100_000;
    let bodies = [
        format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth)),
        format!(
            "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\
             <soapenv:Body>{}",
            "<x>".repeat(depth)
        ),
        format!("<accessGroup>{}", "<services>".repeat(depth)),
        format!("{{\"errors\":{}", "[".repeat(depth)),
    ];
    for case in &cases() {
        for body in &bodies {
            for status in [200, 201, 500] {
                let answer = response(status, &[], body.as_bytes());
                if let Err(e) = case.provider().decode(&case.batch, answer.clone()) {
                    assert!(common::decoders::is_decoder_kind(&e), "{e:?}");
                }
                decode_both(case, &answer);
            }
        }
    }
    // The format each provider reads gives the named limit.
    let soap = response(200, &[], bodies[1].as_bytes());
    let dm = &common::decoders::case("dynamic-media");
    let e = dm.provider().decode(&dm.batch, soap).unwrap_err();
    assert!(e.to_string().contains("deeper than 64 levels"), "{e}");
    let l3 = &common::decoders::case("level3");
    let e = l3
        .provider()
        .decode(&l3.batch, response(200, &[], bodies[2].as_bytes()))
        .unwrap_err();
    assert!(e.to_string().contains("deeper than 64 levels"), "{e}");
    let ll = &common::decoders::case("limelight");
    let e = ll
        .provider()
        .decode_status(&ll.handle, response(200, &[], bodies[3].as_bytes()))
        .unwrap_err();
    assert!(e.to_string().contains("deeper than 64 levels"), "{e}");
}
