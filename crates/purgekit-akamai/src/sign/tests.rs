//! Akamai's official EdgeGrid vectors (akamai/AkamaiOPEN-edgegrid-python `testdata.json` and
//! `testcases.json`, as listed in `specs/akamai-fast-purge.md`), each stage asserted on its own,
//! and the purge-shaped vectors of the same file.

use super::*;
use std::time::UNIX_EPOCH;

const HOST: &str = "akaa-baseurl-xxxxxxxxxxx-xxxxxxxxxxxxx.luna.akamaiapis.net";
const CLIENT_TOKEN: &str = "akab-client-token-xxx-xxxxxxxxxxxxxxxx";
const ACCESS_TOKEN: &str = "akab-access-token-xxx-xxxxxxxxxxxxxxxx";
const CLIENT_SECRET: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=";
const TIMESTAMP: &str = "20140321T19:34:21+0000";
const NONCE: &str = "nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
const HEADERS_TO_SIGN: [&str; 3] = ["X-Test1", "X-Test2", "X-Test3"];
const PREFIX: &str = "EG1-HMAC-SHA256 client_token=akab-client-token-xxx-xxxxxxxxxxxxxxxx;access_token=akab-access-token-xxx-xxxxxxxxxxxxxxxx;timestamp=20140321T19:34:21+0000;nonce=nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx;";
const SIGNING_KEY: &str = "znsRMDBRqTXGJ7Ojip3/h2FGPu3LuoMYWgv9PKEnE/o=";

fn credentials(max_body: usize) -> Credentials<'static> {
    Credentials {
        client_token: CLIENT_TOKEN,
        client_secret: CLIENT_SECRET,
        access_token: ACCESS_TOKEN,
        max_body,
    }
}

/// One official case: the request, then the expected signature.
struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    signature: &'static str,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: &[(&'static str, &str)],
    body: &[u8],
    signature: &'static str,
) -> Case {
    Case {
        name,
        method,
        path,
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body: body.to_vec(),
        signature,
    }
}

/// Cases 1–15 of the spec's table (max_body 2048, headers_to_sign X-Test1..3).
fn official_cases() -> Vec<Case> {
    let spaces = format!("\"{0}test-header-with-spaces{0}\"", " ".repeat(5));
    let leading = format!("{}first-thing{}second-thing", " ".repeat(5), " ".repeat(6));
    let ordered = [("X-Test2", "t2"), ("X-Test1", "t1"), ("X-Test3", "t3")];
    let extra = [
        ("X-Test2", "t2"),
        ("X-Test1", "t1"),
        ("X-Test3", "t3"),
        ("X-Extra", "this won't be included"),
    ];
    vec![
        case(
            "1 simple GET",
            "GET",
            "/",
            &[],
            b"",
            "tL+y4hxyHxgWVD30X3pWnGKHcPzmrIF+LThiAOhMxYU=",
        ),
        case(
            "2 GET with querystring",
            "GET",
            "/testapi/v1/t1?p1=1&p2=2",
            &[],
            b"",
            "hKDH1UlnQySSHjvIcZpDMbQHihTQ0XyVAKZaApabdeA=",
        ),
        case(
            "3 POST inside limit",
            "POST",
            "/testapi/v1/t3",
            &[],
            b"datadatadatadatadatadatadatadata",
            "hXm4iCxtpN22m4cbZb4lVLW5rhX8Ca82vCFqXzSTPe4=",
        ),
        case(
            "4 POST too large",
            "POST",
            "/testapi/v1/t3",
            &[],
            &[b'd'; 2049],
            "6Q6PiTipLae6n4GsSIDTCJ54bEbHUBp+4MUXrbQCBoY=",
        ),
        case(
            "5 POST length = max_body",
            "POST",
            "/testapi/v1/t3",
            &[],
            &[b'd'; 2048],
            "6Q6PiTipLae6n4GsSIDTCJ54bEbHUBp+4MUXrbQCBoY=",
        ),
        case(
            "6 POST empty body",
            "POST",
            "/testapi/v1/t6",
            &[],
            b"",
            "1gEDxeQGD5GovIkJJGcBaKnZ+VaPtrc4qBUHixjsPCQ=",
        ),
        case(
            "7 header signing",
            "GET",
            "/testapi/v1/t4",
            &[("X-Test1", "test-simple-header")],
            b"",
            "8F9AybcRw+PLxnvT+H0JRkjROrrUgsxJTnRXMzqvcwY=",
        ),
        case(
            "8 header with spaces",
            "GET",
            "/testapi/v1/t4",
            &[("X-Test1", &spaces)],
            b"",
            "ucq2AbjCNtobHfCTuS38fdkl5UDdWHZhQX46fYR8CqI=",
        ),
        case(
            "9 leading + interior spaces",
            "GET",
            "/testapi/v1/t4",
            &[("X-Test1", &leading)],
            b"",
            "WtnneL539UadAAOJwnsXvPqT4Kt6z7HMgBEwAFpt3+c=",
        ),
        case(
            "10 headers out of order",
            "GET",
            "/testapi/v1/t4",
            &ordered,
            b"",
            "Wus73Nx8jOYM+kkBFF2q8D1EATRIMr0WLWwpLBgkBqY=",
        ),
        case(
            "11 extra unsigned header",
            "GET",
            "/testapi/v1/t5",
            &extra,
            b"",
            "Knd/jc0A5Ghhizjayr0AUUvl2MZjBpS3FDSzvtq4Ixc=",
        ),
        case(
            "12 PUT",
            "PUT",
            "/testapi/v1/t6",
            &[],
            &[b'P'; 31],
            "GNBWEYSEWOLtu+7dD52da2C39aX/Jchpon3K/AmBqBU=",
        ),
        case(
            "13 PATCH",
            "PATCH",
            "/testapi/v1/t6",
            &[],
            &[b'P'; 31],
            "JIl05ImY1AOnMtmw+9LKgaFA8mnzsEKabbnHmI8LsQ4=",
        ),
        case(
            "14 GET query params",
            "GET",
            "/testapi/v1/configs/111?from=12345&limit=200000",
            &[],
            b"",
            "XM+hsuSs6nuy/5eDRty1IjtVCAdr8xPFRAZ/b8RXDm8=",
        ),
        case(
            "15 `;` in path",
            "GET",
            "/testapi/v1/configs/111;222;333?from=12345&limit=200000",
            &[],
            b"",
            "pmQF7Is2+O4r/mMojPR4yeF58BrempNNoBX5/DT0Fxs=",
        ),
    ]
}

#[test]
fn stage_timestamp_format() {
    let at = UNIX_EPOCH + std::time::Duration::from_secs(1_395_430_461);
    assert_eq!(timestamp(at), TIMESTAMP);
    assert_eq!(timestamp(UNIX_EPOCH), "19700101T00:00:00+0000");
    // A leap day and the last second of a year.
    let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
    assert_eq!(timestamp(leap), "20000229T00:00:00+0000");
    let eoy = UNIX_EPOCH + std::time::Duration::from_secs(1_735_689_599);
    assert_eq!(timestamp(eoy), "20241231T23:59:59+0000");
}

#[test]
fn stage_auth_prefix() {
    assert_eq!(
        auth_prefix(CLIENT_TOKEN, ACCESS_TOKEN, TIMESTAMP, NONCE),
        PREFIX
    );
}

#[test]
fn stage_signing_key() {
    assert_eq!(signing_key(CLIENT_SECRET, TIMESTAMP), SIGNING_KEY);
}

#[test]
fn stage_content_hash() {
    assert_eq!(
        content_hash("POST", b"test_body", 2048),
        "REPGqEEubBHzJMhwqDZtbt515/ntEvAMNriNR53zcdY="
    );
    assert_eq!(
        content_hash("POST", b"datadatadatadatadatadatadatadata", 2048),
        "fDimoYqXOLntG3If/Z0K2aS9I19Pkv9P5OMCoL8lY0w="
    );
    // Empty for an empty body and for every method but POST.
    assert_eq!(content_hash("POST", b"", 2048), "");
    for method in ["GET", "PUT", "PATCH", "DELETE"] {
        assert_eq!(content_hash(method, b"PPPP", 2048), "", "{method}");
    }
}

#[test]
fn stage_body_truncation_at_max_body() {
    let at_limit = content_hash("POST", &[b'd'; 2048], 2048);
    assert_eq!(content_hash("POST", &[b'd'; 2049], 2048), at_limit);
    assert_eq!(content_hash("POST", &[b'd'; 10_000], 2048), at_limit);
    assert_ne!(
        content_hash("POST", &[b'd'; 2049], DEFAULT_MAX_BODY),
        at_limit
    );
    assert_ne!(content_hash("POST", &[b'd'; 2047], 2048), at_limit);
}

#[test]
fn stage_canonical_headers() {
    let spaces = format!("\"{0}test-header-with-spaces{0}\"", " ".repeat(5));
    assert_eq!(
        canonical_headers(&HEADERS_TO_SIGN, &[("X-Test1", &spaces)]),
        "x-test1:\" test-header-with-spaces \""
    );
    let leading = format!("{}first-thing{}second-thing", " ".repeat(5), " ".repeat(6));
    assert_eq!(
        canonical_headers(&HEADERS_TO_SIGN, &[("X-Test1", &leading)]),
        "x-test1:first-thing second-thing"
    );
    let out_of_order = [("X-Test2", "t2"), ("X-Test1", "t1"), ("X-Test3", "t3")];
    assert_eq!(
        canonical_headers(&HEADERS_TO_SIGN, &out_of_order),
        "x-test1:t1\tx-test2:t2\tx-test3:t3"
    );
    let extra = [
        ("X-Test2", "t2"),
        ("x-test1", "t1"),
        ("X-Test3", "t3"),
        ("X-Extra", "this won't be included"),
    ];
    assert_eq!(
        canonical_headers(&HEADERS_TO_SIGN, &extra),
        "x-test1:t1\tx-test2:t2\tx-test3:t3"
    );
    assert_eq!(canonical_headers(&[], &extra), "");
    // Tabs and line breaks inside a value are white space too.
    assert_eq!(
        canonical_headers(&["A"], &[("a", "x\t\ty\r\nz")]),
        "a:x y z"
    );
}

#[test]
fn stage_data_to_sign_for_the_post_vector() {
    let body = b"datadatadatadatadatadatadatadata";
    let data = data_to_sign(
        "post",
        "https",
        HOST,
        "/testapi/v1/t3",
        "",
        &content_hash("POST", body, 2048),
        PREFIX,
    );
    assert_eq!(
        data,
        format!(
            "POST\thttps\t{HOST}\t/testapi/v1/t3\t\tfDimoYqXOLntG3If/Z0K2aS9I19Pkv9P5OMCoL8lY0w=\t{PREFIX}"
        )
    );
    // Empty fields keep their tab: seven fields, six tabs, whatever is empty.
    assert_eq!(
        data_to_sign("GET", "https", HOST, "/", "", "", PREFIX)
            .matches('\t')
            .count(),
        6
    );
}

#[test]
fn stage_signature_and_header_for_every_official_case() {
    for c in official_cases() {
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let data = data_to_sign(
            c.method,
            "https",
            HOST,
            c.path,
            &canonical_headers(&HEADERS_TO_SIGN, &headers),
            &content_hash(c.method, &c.body, 2048),
            PREFIX,
        );
        let sig = signature(SIGNING_KEY, &data);
        assert_eq!(sig, c.signature, "signature of case {}", c.name);
        let header = authorization(PREFIX, &sig);
        assert_eq!(
            header,
            format!("{PREFIX}signature={}", c.signature),
            "header of case {}",
            c.name
        );
        // The one-call form agrees with the stages.
        let request = Signable {
            method: c.method,
            scheme: "https",
            host: HOST,
            path_and_query: c.path,
            headers: &headers,
            body: &c.body,
        };
        assert_eq!(
            authorization_for(
                &credentials(2048),
                &request,
                &HEADERS_TO_SIGN,
                TIMESTAMP,
                NONCE
            ),
            header,
            "authorization_for, case {}",
            c.name
        );
    }
}

#[test]
fn case_16_json_post_with_default_max_body_and_no_signed_headers() {
    let body = br#"{"key": "value"}"#;
    let request = Signable {
        method: "POST",
        scheme: "https",
        host: HOST,
        path_and_query: "/testapi/v1/t3?extended=true",
        headers: &[("Content-Type", "application/json")],
        body,
    };
    let header = authorization_for(
        &credentials(DEFAULT_MAX_BODY),
        &request,
        &[],
        TIMESTAMP,
        NONCE,
    );
    assert_eq!(
        header,
        format!("{PREFIX}signature=nONuDe50qGrPius4Rg4D2jfi/2zDZWAYRUG6RudJLNM=")
    );
}

#[test]
fn purge_shaped_vectors() {
    let host = "akab-xxxxxxxxxxxxxxxx-xxxxxxxxxxxxxxxx.purge.akamaiapis.net";
    for (path, body, hash, sig) in [
        (
            "/ccu/v3/invalidate/url/production",
            r#"{"objects":["https://www.example.com/index.html","https://www.example.com/css/site.css"]}"#,
            "TaWPguEJuLG1Uw0OgPWVJwGxtM0uRnkYlhs2A9773PA=",
            "Ky4IKl8xUUTdTzzpovZXZaY8Rs//BISihdk11+7oxSs=",
        ),
        (
            "/ccu/v3/delete/tag/staging",
            r#"{"objects":["product-123","category-7"]}"#,
            "7hGTPQB9iRSIGwK6gMsfbv/0rtPQJpH/jnVQkUFi/ZM=",
            "M0qZkFXx/7f3FUM1EL7QQ8kDLEApuwfDibroeozp8jY=",
        ),
        (
            "/ccu/v3/invalidate/cpcode/production",
            r#"{"objects":[12345]}"#,
            "5NE17IdY0BftOCffyBu1cIuUjmrJlA/HkmgH+6LJsZk=",
            "vxaXMaIqV/XJf/E/c3EL5eavGenjzGTIjCM/VTqRRX8=",
        ),
    ] {
        assert_eq!(
            content_hash("POST", body.as_bytes(), DEFAULT_MAX_BODY),
            hash,
            "{path}"
        );
        let data = data_to_sign("POST", "https", host, path, "", hash, PREFIX);
        assert_eq!(signature(SIGNING_KEY, &data), sig, "{path}");
    }
}

#[test]
fn nonces_are_uuid_v4_text_and_differ() {
    let a = nonce();
    let b = nonce();
    assert_ne!(a, b);
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "4");
    assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
}

#[test]
fn credentials_debug_hides_the_secret() {
    assert!(!format!("{:?}", credentials(1)).contains(CLIENT_SECRET));
}
