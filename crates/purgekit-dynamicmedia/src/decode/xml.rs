//! Just enough XML for SOAP answers: a namespace-aware element tree, with entity references
//! resolved, every tag checked to close, and nesting bounded by
//! [`purgekit_core::MAX_NESTING_DEPTH`] (the tree is built without recursion, and no deeper
//! tree exists for `Drop` or `Clone` to recurse through).

use quick_xml::NsReader;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use purgekit_core::MAX_NESTING_DEPTH;

/// One element: its namespace, local name, direct text and child elements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Element {
    /// The namespace URI (empty when unqualified).
    pub ns: String,
    /// The local name.
    pub name: String,
    /// The element's own text (not its children's), entity references resolved.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child called `name` (local name, any namespace).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The trimmed text of the first child called `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// Whether the element is `name` in namespace `ns`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Elements nest deeper than [`MAX_NESTING_DEPTH`]: refused whatever the HTTP status.
    TooDeep,
    /// Not well-formed XML; says what is wrong.
    Malformed(String),
}

impl From<String> for ParseError {
    fn from(why: String) -> Self {
        ParseError::Malformed(why)
    }
}

impl From<&str> for ParseError {
    fn from(why: &str) -> Self {
        ParseError::Malformed(why.to_owned())
    }
}

/// Parses a whole document into its root element; the error says what is wrong.
pub(crate) fn parse(bytes: &[u8]) -> Result<Element, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let (resolved, event) = match reader.read_resolved_event() {
            Ok(next) => next,
            Err(e) => {
                return Err(ParseError::Malformed(format!(
                    "malformed XML at byte {}: {e}",
                    reader.error_position()
                )));
            }
        };
        let ns = match resolved {
            ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(prefix) => {
                return Err(ParseError::Malformed(format!(
                    "undeclared namespace prefix `{}`",
                    String::from_utf8_lossy(&prefix)
                )));
            }
        };
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err("content after the root element".into());
            }
            Event::Start(_) if stack.len() >= MAX_NESTING_DEPTH => {
                return Err(ParseError::TooDeep);
            }
            Event::Start(start) => stack.push(Element {
                ns,
                name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
                ..Element::default()
            }),
            Event::Empty(start) => {
                let element = Element {
                    ns,
                    name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                close(&mut stack, &mut root, element);
            }
            Event::End(_) => {
                let element = stack.pop().ok_or("an end tag without a start")?;
                close(&mut stack, &mut root, element);
            }
            Event::Text(t) => {
                let t = t.decode().map_err(|e| e.to_string())?;
                append_text(&mut stack, &t)?;
            }
            Event::CData(t) => {
                let t = t.decode().map_err(|e| e.to_string())?;
                append_text(&mut stack, &t)?;
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| e.to_string())?;
                        resolve_xml_entity(&name)
                            .ok_or_else(|| format!("unknown entity `&{name};`"))?
                            .to_owned()
                    }
                };
                append_text(&mut stack, &resolved)?;
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(ParseError::Malformed(format!(
            "truncated: `<{}>` is never closed",
            stack[stack.len() - 1].name
        )));
    }
    root.ok_or_else(|| "no root element".into())
}

fn close(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn append_text(stack: &mut [Element], text: &str) -> Result<(), String> {
    match stack.last_mut() {
        Some(element) => {
            element.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err("text outside the root element".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_namespaces_and_entities() {
        let doc = r#"<?xml version="1.0"?>
            <s:Envelope xmlns:s="urn:s"><s:Body><r xmlns="urn:r"><a>x &amp; &#x3C;y&gt;</a><b/></r></s:Body></s:Envelope>"#;
        let root = parse(doc.as_bytes()).unwrap();
        assert!(root.is("urn:s", "Envelope"));
        let r = &root.child("Body").unwrap().children[0];
        assert!(r.is("urn:r", "r"));
        assert_eq!(r.child_text("a"), Some("x & <y>"));
        assert_eq!(r.child_text("b"), Some(""));
    }

    #[test]
    fn refuses_broken_documents() {
        for doc in [
            "",
            "<a>",
            "<a></b>",
            "not xml",
            "<a/><b/>",
            "<p:a/>",
            "<a>&bogus;</a>",
        ] {
            assert!(parse(doc.as_bytes()).is_err(), "{doc:?} parsed");
        }
    }

    #[test]
    fn refuses_nesting_past_the_limit_without_recursing() {
        let nested = |depth: usize| format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        assert!(parse(nested(MAX_NESTING_DEPTH).as_bytes()).is_ok());
        assert_eq!(
            parse(nested(MAX_NESTING_DEPTH + 1).as_bytes()),
            Err(ParseError::TooDeep)
        );
        // 100,000 levels: a tree this deep would overflow the stack when dropped.
        assert_eq!(parse(nested(100_000).as_bytes()), Err(ParseError::TooDeep));
        assert_eq!(
            parse("<a>".repeat(100_000).as_bytes()),
            Err(ParseError::TooDeep)
        );
    }
}
