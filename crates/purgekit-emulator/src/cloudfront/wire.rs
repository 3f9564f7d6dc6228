//! The XML CloudFront reads and writes: `InvalidationBatch` parsed strictly (namespace,
//! elements, `Quantity` against the items, path rules), `Invalidation` and `ErrorResponse`
//! written.

use quick_xml::Reader;
use quick_xml::escape::escape;
use quick_xml::events::Event;

use super::auth::Refusal;

/// The 2020-05-31 namespace.
pub const NAMESPACE: &str = "http://cloudfront.amazonaws.com/doc/2020-05-31/";

/// A parsed `InvalidationBatch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidationBatch {
    /// The paths, in order.
    pub paths: Vec<String>,
    /// The caller's reference.
    pub caller_reference: String,
}

fn invalid(message: impl Into<String>) -> Refusal {
    (400, "InvalidArgument", message.into())
}

/// Parses and checks a CreateInvalidation body. Elements may come in any order (AWS's own
/// reference prints `CallerReference` first, botocore last).
pub(super) fn parse_batch(
    body: &[u8],
    max_path_chars: usize,
    max_paths: usize,
) -> Result<InvalidationBatch, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err((400, "MissingBody", "This operation requires a body.".into()));
    }
    let text = std::str::from_utf8(body).map_err(|_| invalid("the body is not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let (mut quantity, mut reference, mut paths) = (None::<String>, None::<String>, Vec::new());
    let mut saw_items = false;
    loop {
        match reader.read_event() {
            Err(e) => return Err((400, "MalformedInput", format!("malformed XML: {e}"))),
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let path = format!("{}/{name}", stack.join("/"));
                let allowed = [
                    "/InvalidationBatch",
                    "InvalidationBatch/Paths",
                    "InvalidationBatch/Paths/Quantity",
                    "InvalidationBatch/Paths/Items",
                    "InvalidationBatch/Paths/Items/Path",
                    "InvalidationBatch/CallerReference",
                ];
                if !allowed.contains(&path.as_str()) {
                    return Err((
                        400,
                        "MalformedInput",
                        format!("unexpected element <{name}>"),
                    ));
                }
                if stack.is_empty() {
                    let ns = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == b"xmlns")
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned());
                    if ns.as_deref() != Some(NAMESPACE) {
                        return Err((
                            400,
                            "MalformedInput",
                            format!("InvalidationBatch must be in the namespace {NAMESPACE}"),
                        ));
                    }
                }
                if name == "Items" {
                    saw_items = true;
                }
                if name == "Path" {
                    paths.push(String::new());
                }
                stack.push(name);
            }
            Ok(Event::Empty(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                match (stack.join("/").as_str(), name.as_str()) {
                    ("InvalidationBatch/Paths", "Items") => saw_items = true,
                    ("InvalidationBatch/Paths/Items", "Path") => paths.push(String::new()),
                    _ => {
                        return Err((
                            400,
                            "MalformedInput",
                            format!("unexpected element <{name}/>"),
                        ));
                    }
                }
            }
            Ok(Event::End(_)) => {
                stack.pop();
            }
            Ok(Event::Text(t)) => {
                let value = t
                    .xml_content()
                    .map_err(|e| (400, "MalformedInput", format!("bad text: {e}")))?
                    .into_owned();
                match stack.last().map(String::as_str) {
                    Some("Quantity") => quantity = Some(value),
                    Some("CallerReference") => reference = Some(value),
                    Some("Path") => paths.last_mut().expect("opened").push_str(&value),
                    _ if value.trim().is_empty() => {}
                    _ => return Err((400, "MalformedInput", "unexpected text".into())),
                }
            }
            Ok(Event::GeneralRef(r)) => {
                let entity = String::from_utf8_lossy(&r).into_owned();
                let c = match entity.as_str() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => return Err((400, "MalformedInput", format!("unknown entity &{entity};"))),
                };
                match stack.last().map(String::as_str) {
                    Some("Path") => paths.last_mut().expect("opened").push_str(c),
                    Some("CallerReference") => {
                        reference.get_or_insert_with(String::new).push_str(c)
                    }
                    _ => return Err((400, "MalformedInput", "unexpected entity".into())),
                }
            }
            Ok(_) => {}
        }
    }
    let quantity: usize = quantity
        .ok_or_else(|| invalid("Paths.Quantity is required"))?
        .trim()
        .parse()
        .map_err(|_| invalid("Paths.Quantity must be an integer"))?;
    let caller_reference = reference
        .filter(|r| !r.is_empty())
        .ok_or_else(|| invalid("CallerReference is required"))?;
    if quantity != paths.len() || (quantity > 0 && !saw_items) {
        return Err((
            400,
            "InconsistentQuantities",
            format!("Quantity {quantity} but {} paths", paths.len()),
        ));
    }
    if paths.len() > max_paths {
        return Err((
            413,
            "BatchTooLarge",
            format!("{} paths in one batch", paths.len()),
        ));
    }
    for p in &paths {
        if !p.starts_with('/') {
            return Err(invalid(format!("path `{p}` must start with /")));
        }
        if p.chars().count() > max_path_chars {
            return Err(invalid(format!(
                "a path is longer than {max_path_chars} characters"
            )));
        }
        if p.find('*').is_some_and(|i| i != p.len() - 1) {
            return Err(invalid(format!(
                "path `{p}`: * may only be the last character"
            )));
        }
    }
    Ok(InvalidationBatch {
        paths,
        caller_reference,
    })
}

/// An `<Invalidation>` body.
pub(super) fn invalidation(
    id: &str,
    status: &str,
    create_time: &str,
    batch: &InvalidationBatch,
) -> String {
    let mut items = String::new();
    for p in &batch.paths {
        items.push_str(&format!("<Path>{}</Path>", escape(p.as_str())));
    }
    format!(
        "<?xml version=\"1.0\"?>\n<Invalidation xmlns=\"{NAMESPACE}\"><Id>{id}</Id><Status>{status}</Status><CreateTime>{create_time}</CreateTime><InvalidationBatch><Paths><Quantity>{}</Quantity><Items>{items}</Items></Paths><CallerReference>{}</CallerReference></InvalidationBatch></Invalidation>",
        batch.paths.len(),
        escape(batch.caller_reference.as_str())
    )
}

/// An `<InvalidationList>` body (ListInvalidations): `(id, status, create time)` newest first,
/// at most `max_items`, paged after `marker`.
pub(super) fn invalidation_list(
    summaries: &[(&str, &str, &str)],
    marker: &str,
    max_items: usize,
) -> String {
    let truncated = summaries.len() > max_items;
    let page = &summaries[..summaries.len().min(max_items)];
    let mut items = String::new();
    for (id, status, create_time) in page {
        items.push_str(&format!(
            "<InvalidationSummary><Id>{id}</Id><CreateTime>{create_time}</CreateTime><Status>{status}</Status></InvalidationSummary>"
        ));
    }
    let next = match page.last() {
        Some((id, _, _)) if truncated => format!("<NextMarker>{id}</NextMarker>"),
        _ => String::new(),
    };
    format!(
        "<?xml version=\"1.0\"?>\n<InvalidationList xmlns=\"{NAMESPACE}\"><Marker>{}</Marker>{next}<MaxItems>{max_items}</MaxItems><IsTruncated>{truncated}</IsTruncated><Quantity>{}</Quantity><Items>{items}</Items></InvalidationList>",
        escape(marker),
        page.len()
    )
}

/// An `<ErrorResponse>` body.
pub(super) fn error(code: &str, message: &str, request_id: &str) -> String {
    let kind = if code.starts_with("Internal") || code == "ServiceUnavailable" {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<InvalidationBatch, Refusal> {
        parse_batch(body.as_bytes(), 4000, 3000)
    }

    #[test]
    fn both_element_orders_and_the_rules() {
        let botocore = format!(
            "<InvalidationBatch xmlns=\"{NAMESPACE}\"><Paths><Quantity>2</Quantity><Items><Path>/a&amp;b</Path><Path>/i/*</Path></Items></Paths><CallerReference>r</CallerReference></InvalidationBatch>"
        );
        let reference = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InvalidationBatch xmlns=\"{NAMESPACE}\">\n  <CallerReference>r</CallerReference>\n  <Paths>\n    <Items><Path>/a&amp;b</Path><Path>/i/*</Path></Items>\n    <Quantity>2</Quantity>\n  </Paths>\n</InvalidationBatch>"
        );
        let a = parse(&botocore).unwrap();
        assert_eq!(a, parse(&reference).unwrap());
        assert_eq!(a.paths, ["/a&b", "/i/*"]);
        let code = |b: String| parse(&b).unwrap_err().1;
        let with = |q: &str, paths: &str| {
            format!(
                "<InvalidationBatch xmlns=\"{NAMESPACE}\"><Paths><Quantity>{q}</Quantity><Items>{paths}</Items></Paths><CallerReference>r</CallerReference></InvalidationBatch>"
            )
        };
        assert_eq!(code(with("3", "<Path>/a</Path>")), "InconsistentQuantities");
        assert_eq!(code(with("1", "<Path>a</Path>")), "InvalidArgument");
        assert_eq!(code(with("1", "<Path>/*/a</Path>")), "InvalidArgument");
        assert_eq!(
            code(with("1", &format!("<Path>/{}</Path>", "a".repeat(4000)))),
            "InvalidArgument"
        );
        assert_eq!(code("".into()), "MissingBody");
        assert_eq!(
            code("<InvalidationBatch><Paths/></InvalidationBatch>".into()),
            "MalformedInput"
        );
    }
}
