//! The XML the invalidation API speaks: the `<paths>` body we send, and the `<accessGroup>` and
//! `<error>` documents it answers with (parsed with quick-xml).

use purgekit_core::{MAX_NESTING_DEPTH, Result};
use quick_xml::events::Event;
use serde::Deserialize;

/// `<paths>` plus `</paths>`: the body of a request with no paths.
pub const PATHS_OVERHEAD: usize = "<paths></paths>".len();

/// The bytes of one `<path>…</path>` element ([`push_path_element`]'s), without writing it.
pub fn path_element_len(path: &str) -> usize {
    "<path></path>".len() + quick_xml::escape::escape(path).len()
}

/// Appends one `<path>…</path>` element, the path XML-escaped (`& < > " '`).
fn push_path_element(body: &mut String, path: &str) {
    body.push_str("<path>");
    body.push_str(&quick_xml::escape::escape(path));
    body.push_str("</path>");
}

/// The body of an invalidation request: `<paths><path>/a.jpg</path>…</paths>`, no declaration,
/// no white space (the guide's examples, minus the PDF's line breaks).
pub fn paths_body<'a>(paths: impl IntoIterator<Item = &'a str>) -> String {
    let mut body = String::from("<paths>");
    for path in paths {
        push_path_element(&mut body, path);
    }
    body.push_str("</paths>");
    body
}

/// What `<properties></properties>` adds over `<paths></paths>`: an access-group request's
/// envelope beyond [`PATHS_OVERHEAD`].
pub const PROPERTIES_EXTRA: usize = "<properties></properties>".len() - PATHS_OVERHEAD;

/// One `<property>` of an access-group request besides its paths and its name's bytes.
pub const PROPERTY_OVERHEAD: usize = "<property><name></name><paths></paths></property>".len();

/// The body of an access-group-scope request (the Lumen document's Examples 3 and 4):
/// `<properties><property><name>NI</name><paths><path>/a.jpg</path>…</paths></property>…
/// </properties>`, one property per network identifier, in the order given, no white space.
pub fn properties_body<'a>(
    properties: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>,
) -> String {
    let mut body = String::from("<properties>");
    for (name, paths) in properties {
        body.push_str("<property><name>");
        body.push_str(&quick_xml::escape::escape(name));
        body.push_str("</name>");
        body.push_str(&paths_body(paths));
        body.push_str("</property>");
    }
    body.push_str("</properties>");
    body
}

/// The name of the document's root element, if the text is well-formed up to it.
pub fn root_name(body: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(body);
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) => {
                return Some(String::from_utf8_lossy(e.name().as_ref()).into_owned());
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// Checks, before any deserializer sees it, that the document nests elements at most
/// [`MAX_NESTING_DEPTH`] deep (scanning events, without recursion). Malformed XML passes here
/// and is refused by the parser.
pub fn check_depth(body: &str) -> Result<()> {
    let mut reader = quick_xml::Reader::from_str(body);
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                depth += 1;
                if depth > MAX_NESTING_DEPTH {
                    return Err(purgekit_core::too_deep("the XML answer"));
                }
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

/// The `<error>` document of every 4xx/5xx answer (Appendix: Error Responses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    /// `21700`–`21764`.
    #[serde(rename = "errorCode", default)]
    pub code: String,
    /// The human-readable description.
    #[serde(default)]
    pub message: String,
    /// The HTTP status the server meant.
    #[serde(rename = "httpStatus", default)]
    pub http_status: String,
    /// The server's request id, for support tickets.
    #[serde(rename = "apiCorrelationId", default)]
    pub correlation_id: String,
}

/// Parses an `<error>` document.
pub fn parse_error(body: &str) -> Option<ErrorBody> {
    if root_name(body)? != "error" {
        return None;
    }
    let mut parsed: ErrorBody = quick_xml::de::from_str(body).ok()?;
    parsed.code = parsed.code.trim().to_owned();
    parsed.message = parsed.message.trim().to_owned();
    (!parsed.code.is_empty()).then_some(parsed)
}

/// One `<invalidation>` of an `<accessGroup>` answer: from a POST (`path` attribute) or from a
/// status GET (`percentComplete` attribute, `<paths>` child).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    /// The `<ni id>` it sits under.
    pub ni: String,
    /// The invalidation (tracking) id.
    pub id: String,
    /// `percentComplete`, when given.
    pub percent_complete: Option<String>,
}

#[derive(Deserialize)]
struct AccessGroup {
    #[serde(default)]
    services: Option<Services>,
    #[serde(rename = "networkIdentifiers", default)]
    network_identifiers: Option<NetworkIdentifiers>,
}

#[derive(Deserialize)]
struct Services {
    #[serde(default)]
    service: Vec<Service>,
}

#[derive(Deserialize)]
struct Service {
    #[serde(rename = "networkIdentifiers", default)]
    network_identifiers: Option<NetworkIdentifiers>,
}

#[derive(Deserialize)]
struct NetworkIdentifiers {
    #[serde(default)]
    ni: Vec<Ni>,
}

#[derive(Deserialize)]
struct Ni {
    #[serde(rename = "@id", default)]
    id: String,
    #[serde(default)]
    invalidations: Option<Invalidations>,
}

#[derive(Deserialize)]
struct Invalidations {
    #[serde(default)]
    invalidation: Vec<RawInvalidation>,
}

#[derive(Deserialize)]
struct RawInvalidation {
    #[serde(rename = "@id")]
    id: String,
    #[serde(rename = "@percentComplete", default)]
    percent_complete: Option<String>,
}

/// Every invalidation of an `<accessGroup>` answer, in document order, whether the network
/// identifiers sit under `<services><service>` or directly under the access group.
pub fn parse_access_group(body: &str) -> std::result::Result<Vec<Invalidation>, String> {
    check_depth(body).map_err(|e| match e {
        purgekit_core::Error::Protocol { message } => message,
        other => other.to_string(),
    })?;
    match root_name(body) {
        Some(name) if name == "accessGroup" => {}
        Some(name) => return Err(format!("expected an <accessGroup> document, got <{name}>")),
        None => return Err("the body is not XML".to_owned()),
    }
    let group: AccessGroup =
        quick_xml::de::from_str(body).map_err(|e| format!("malformed <accessGroup>: {e}"))?;
    let nis = group
        .services
        .into_iter()
        .flat_map(|s| s.service)
        .filter_map(|s| s.network_identifiers)
        .chain(group.network_identifiers)
        .flat_map(|n| n.ni);
    let mut out = Vec::new();
    for ni in nis {
        let ni_id = ni.id.trim().to_owned();
        for inv in ni.invalidations.into_iter().flat_map(|i| i.invalidation) {
            out.push(Invalidation {
                ni: ni_id.clone(),
                id: inv.id.trim().to_owned(),
                percent_complete: inv.percent_complete.map(|p| p.trim().to_owned()),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_is_as_long_as_the_planner_counts_it() {
        for path in ["/a.jpg", "/a&b<c>\"d'.jpg", "/%C3%A9?x=1&y=2", ""] {
            assert_eq!(
                path_element_len(path),
                paths_body([path]).len() - PATHS_OVERHEAD,
                "{path}"
            );
        }
    }

    #[test]
    fn body_escapes_the_five_xml_characters() {
        assert_eq!(
            paths_body(["/a.jpg", "/q?a=1&b=<2>\"'"]),
            "<paths><path>/a.jpg</path><path>/q?a=1&amp;b=&lt;2&gt;&quot;&apos;</path></paths>"
        );
        assert_eq!(paths_body([]).len(), PATHS_OVERHEAD);
    }

    #[test]
    fn properties_body_is_the_documents_example_3() {
        // Example 3 of "Content invalidation", line breaks removed.
        assert_eq!(
            properties_body([
                ("exampleproperty1", vec!["/example1.jpg", "/example2.jpg"]),
                ("exampleproperty2", vec!["/example3.jpg"]),
            ]),
            "<properties><property><name>exampleproperty1</name><paths><path>/example1.jpg</path>\
             <path>/example2.jpg</path></paths></property><property><name>exampleproperty2</name>\
             <paths><path>/example3.jpg</path></paths></property></properties>"
        );
        assert_eq!(properties_body([]), "<properties></properties>");
    }

    #[test]
    fn parses_the_guides_post_answer() {
        // Example 1 of "Invalidations: Request Invalidation (POST)", line breaks removed.
        let body = r#"<accessGroup id="12345" name="Lumen - Internal Provisioning CDN" xsi:noNamespaceSchemaLocation="https://ws.lumen.com/schema/invalidations/v1.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<apiCorrelationId>CDNPortal-1295308737747-3910</apiCorrelationId>
<serviceResource>/12345</serviceResource>
<services><service id="BBBN56789"><serviceResource>/12345/BBBN56789</serviceResource><product>CACHING</product>
<networkIdentifiers><ni id="cdn.lumen.com"><serviceResource>/12345/BBBN56789/cdn.lumen.com
</serviceResource><product>CACHING</product>
<invalidations><invalidation id="DAG_12345/9774@12345-13776-1295308738596" path="/images.*jpg"/></invalidations>
</ni></networkIdentifiers></service></services></accessGroup>"#;
        assert_eq!(
            parse_access_group(body).unwrap(),
            [Invalidation {
                ni: "cdn.lumen.com".into(),
                id: "DAG_12345/9774@12345-13776-1295308738596".into(),
                percent_complete: None,
            }]
        );
    }

    #[test]
    fn parses_network_identifiers_directly_under_the_group_and_status() {
        // Example 3's shape (no <services>), with status attributes.
        let body = r#"<?xml version="1.0" encoding="UTF-8"?><accessGroup id="12345"><networkIdentifiers>
<ni id="p1"><invalidations><invalidation id="A" percentComplete="55"><paths><path>/x</path></paths></invalidation></invalidations></ni>
<ni id="p2"><invalidations><invalidation id="B" percentComplete="100"><paths><path>/y</path><path>/z</path></paths></invalidation></invalidations></ni>
<ni id="p3"/></networkIdentifiers></accessGroup>"#;
        let got = parse_access_group(body).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].percent_complete.as_deref(), Some("55"));
        assert_eq!((got[1].ni.as_str(), got[1].id.as_str()), ("p2", "B"));
    }

    #[test]
    fn rejects_other_documents() {
        assert!(
            parse_access_group("<error/>")
                .unwrap_err()
                .contains("<error>")
        );
        assert!(parse_access_group("not xml at all").is_err());
        assert!(parse_access_group("<accessGroup><services>").is_err());
    }

    #[test]
    fn refuses_nesting_past_the_limit() {
        let nested = |depth: usize, name: &str| {
            format!(
                "<accessGroup>{}{}</accessGroup>",
                format!("<{name}>").repeat(depth),
                format!("</{name}>").repeat(depth)
            )
        };
        assert!(check_depth(&nested(MAX_NESTING_DEPTH - 1, "x")).is_ok());
        for name in ["x", "services", "networkIdentifiers"] {
            let e = parse_access_group(&nested(100_000, name)).unwrap_err();
            assert!(e.contains("deeper than 64 levels"), "{e}");
        }
        let e = check_depth(&"<error>".repeat(100_000)).unwrap_err();
        assert_eq!(e.kind(), "protocol");
    }

    #[test]
    fn parses_the_error_document() {
        let body = r#"<?xml version="1.0" encoding="UTF-8" ?>
<error>
<errorCode>21708</errorCode>
<message>Unknown service type.</message>
<httpStatus>400</httpStatus>
<apiCorrelationId>CDNPortal-1270071184562-8650</apiCorrelationId>
</error>"#;
        let e = parse_error(body).unwrap();
        assert_eq!(e.code, "21708");
        assert_eq!(e.message, "Unknown service type.");
        assert_eq!(e.http_status, "400");
        assert_eq!(e.correlation_id, "CDNPortal-1270071184562-8650");
        assert_eq!(parse_error("<accessGroup/>"), None);
        assert_eq!(parse_error("mpeRequestTooOld"), None);
        assert_eq!(
            parse_error("<error><message>a &amp; b</message><errorCode>1</errorCode></error>")
                .unwrap()
                .message,
            "a & b"
        );
    }
}
