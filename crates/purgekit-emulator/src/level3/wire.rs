//! The XML of the invalidation API as the emulator reads and writes it: the `<paths>` body,
//! the `<accessGroup>` answer and the appendix `<error>` document.

use super::*;

#[derive(Deserialize)]
pub(super) struct PathsBody {
    #[serde(default)]
    path: Vec<String>,
}

/// The paths of a `<paths>` body, or `None` if it is not one (or is empty).
pub(super) fn parse_paths(body: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = quick_xml::Reader::from_str(text);
    let root = loop {
        match reader.read_event().ok()? {
            quick_xml::events::Event::Start(e) => break e.name().as_ref().to_vec(),
            quick_xml::events::Event::Eof | quick_xml::events::Event::Empty(_) => return None,
            _ => {}
        }
    };
    if root != b"paths" {
        return None;
    }
    // Depth first, so the deserializer never sees a document nested past the limit.
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
    let parsed: PathsBody = quick_xml::de::from_str(text).ok()?;
    (!parsed.path.is_empty()).then_some(parsed.path)
}

/// The documented `<accessGroup>` answer with one service and the given `(ni, invalidations)`.
pub(super) fn access_group(
    config: &Level3EmulatorConfig,
    schema: &str,
    sequence: u64,
    nis: &[(String, String)],
) -> String {
    let ag = escape(config.access_group.as_str());
    let scid = escape(config.scid.as_str());
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<accessGroup id=\"{ag}\" \
         name=\"purgekit emulator\" xsi:noNamespaceSchemaLocation=\
         \"https://ws.lumen.com/schema/{schema}/v1.0\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <apiCorrelationId>{}</apiCorrelationId><serviceResource>/{ag}</serviceResource>\
         <services><service id=\"{scid}\"><serviceResource>/{ag}/{scid}</serviceResource>\
         <product>CACHING</product><networkIdentifiers>",
        correlation_id(sequence)
    );
    for (ni, invalidations) in nis {
        let ni = escape(ni.as_str());
        xml.push_str(&format!(
            "<ni id=\"{ni}\"><serviceResource>/{ag}/{scid}/{ni}</serviceResource>\
             <product>CACHING</product><invalidations>{invalidations}</invalidations></ni>"
        ));
    }
    xml.push_str("</networkIdentifiers></service></services></accessGroup>");
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
