//! The XML of the invalidation API as the emulator reads and writes it: the `<paths>` body,
//! the `<accessGroup>` answer and the appendix `<error>` document.

use super::*;

#[derive(Deserialize)]
pub(super) struct PathsBody {
    #[serde(default)]
    path: Vec<String>,
}

#[derive(Deserialize)]
struct PropertiesBody {
    #[serde(default)]
    property: Vec<PropertyBody>,
}

#[derive(Deserialize)]
struct PropertyBody {
    name: String,
    paths: PathsBody,
}

/// The JSON body at NI scope: `{"paths":[…]}`.
#[derive(Deserialize)]
struct JsonPaths {
    paths: Vec<String>,
}

/// One property of the JSON body at access-group scope: `[{"name":NI,"paths":[…]},…]`.
#[derive(Deserialize)]
struct JsonProperty {
    name: String,
    paths: Vec<String>,
}

/// The media type of a body the invalidation API reads (the guide's signable content types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// `text/xml`
    Xml,
    /// `application/json`
    Json,
}

impl Format {
    /// The format a `Content-Type` names (parameters such as `charset` aside), if any.
    pub(super) fn of(content_type: &str) -> Option<Format> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("text/xml") {
            Some(Format::Xml)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(Format::Json)
        } else {
            None
        }
    }
}

/// The paths of a `<paths>` body (or, as JSON, `{"paths":[…]}`), or `None` if it is not one
/// (or is empty).
pub(super) fn parse_paths(format: Format, body: &[u8]) -> Option<Vec<String>> {
    let paths = match format {
        Format::Xml => {
            let text = checked_xml(body, b"paths")?;
            quick_xml::de::from_str::<PathsBody>(text).ok()?.path
        }
        Format::Json => serde_json::from_slice::<JsonPaths>(body).ok()?.paths,
    };
    (!paths.is_empty()).then_some(paths)
}

/// The `(name, paths)` of each property of a `<properties>` body (Lumen Examples 3 and 4; as
/// JSON, `[{"name":…,"paths":[…]},…]`), or `None` if it is not one, or a property has no path.
pub(super) fn parse_properties(format: Format, body: &[u8]) -> Option<Vec<(String, Vec<String>)>> {
    let properties: Vec<(String, Vec<String>)> = match format {
        Format::Xml => {
            let text = checked_xml(body, b"properties")?;
            quick_xml::de::from_str::<PropertiesBody>(text)
                .ok()?
                .property
                .into_iter()
                .map(|p| (p.name.trim().to_owned(), p.paths.path))
                .collect()
        }
        Format::Json => serde_json::from_slice::<Vec<JsonProperty>>(body)
            .ok()?
            .into_iter()
            .map(|p| (p.name, p.paths))
            .collect(),
    };
    let complete = !properties.is_empty()
        && properties
            .iter()
            .all(|(name, paths)| !name.is_empty() && !paths.is_empty());
    complete.then_some(properties)
}

/// The body as text when it is XML with root element `root`, nested at most
/// [`crate::MAX_NESTING_DEPTH`] deep (checked before any deserializer sees it).
fn checked_xml<'a>(body: &'a [u8], root: &[u8]) -> Option<&'a str> {
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = quick_xml::Reader::from_str(text);
    let first = loop {
        match reader.read_event().ok()? {
            quick_xml::events::Event::Start(e) => break e.name().as_ref().to_vec(),
            quick_xml::events::Event::Eof | quick_xml::events::Event::Empty(_) => return None,
            _ => {}
        }
    };
    if first != root {
        return None;
    }
    let mut depth: usize = 1;
    loop {
        match reader.read_event().ok()? {
            quick_xml::events::Event::Start(_) => depth += 1,
            quick_xml::events::Event::End(_) => depth = depth.saturating_sub(1),
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
        if depth > crate::MAX_NESTING_DEPTH {
            return None;
        }
    }
    Some(text)
}

/// Whether a `Content-MD5` value is the MD5 digest of `body`, as base64 (RFC 1864) or as hex
/// (either case): clients send both.
pub(super) fn content_md5_matches(value: &str, body: &[u8]) -> bool {
    use base64::Engine as _;
    use md5::Digest as _;
    let digest = md5::Md5::digest(body);
    let value = value.trim();
    value.eq_ignore_ascii_case(&hex::encode(digest))
        || base64::engine::general_purpose::STANDARD
            .decode(value)
            .is_ok_and(|raw| raw.as_slice() == digest.as_slice())
}

/// The documented `<accessGroup>` answer with the given `(ni, invalidations)`: under one
/// `<services><service>` (NI scope, status), or with `<networkIdentifiers>` directly under the
/// access group when `services` is false (the access-group-scope answer of Examples 3 and 4).
pub(super) fn access_group(
    config: &Level3EmulatorConfig,
    schema: &str,
    sequence: u64,
    nis: &[(String, String)],
    services: bool,
) -> String {
    let ag = escape(config.access_group.as_str());
    let scid = escape(config.scid.as_str());
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<accessGroup id=\"{ag}\" \
         name=\"purgekit emulator\" xsi:noNamespaceSchemaLocation=\
         \"https://ws.lumen.com/schema/{schema}/v1.0\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <apiCorrelationId>{}</apiCorrelationId><serviceResource>/{ag}</serviceResource>",
        correlation_id(sequence)
    );
    if services {
        xml.push_str(&format!(
            "<services><service id=\"{scid}\"><serviceResource>/{ag}/{scid}</serviceResource>\
             <product>CACHING</product>"
        ));
    }
    xml.push_str("<networkIdentifiers>");
    for (ni, invalidations) in nis {
        let ni = escape(ni.as_str());
        xml.push_str(&format!(
            "<ni id=\"{ni}\"><serviceResource>/{ag}/{scid}/{ni}</serviceResource>\
             <product>CACHING</product><invalidations>{invalidations}</invalidations></ni>"
        ));
    }
    xml.push_str("</networkIdentifiers>");
    if services {
        xml.push_str("</service></services>");
    }
    xml.push_str("</accessGroup>");
    xml
}

/// An appendix `<error>` answer.
pub(super) fn error(status: u16, code: u32, message: &str) -> Answer {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error><errorCode>{code}</errorCode>\
         <message>{}</message><httpStatus>{status}</httpStatus>\
         <apiCorrelationId>{}</apiCorrelationId></error>",
        escape(message),
        correlation_id(u64::from(code))
    );
    let status = StatusCode::from_u16(status).expect("appendix statuses are valid");
    (status, Some(body))
}

pub(super) fn correlation_id(n: u64) -> String {
    format!("CDNPortal-{}-{n:04}", unix_ms())
}

pub(super) fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
