//! The emulator's own reading of request envelopes: a namespace-aware element tree (written
//! independently of the provider crate, so the two check each other).

use quick_xml::NsReader;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// One element: namespace URI, local name, own text, children.
#[derive(Debug, Clone, Default)]
pub(super) struct Node {
    pub ns: String,
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// Whether this is `name` in namespace `ns`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The children's local names, in order.
    pub fn child_names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }

    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// Parses a whole document; `Err` says why it is not well-formed.
pub(super) fn parse(bytes: &[u8]) -> Result<Node, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut reader = NsReader::from_str(text);
    let mut open: Vec<Node> = Vec::new();
    let mut root = None;
    loop {
        let (ns, event) = match reader.read_resolved_event() {
            Ok((ResolveResult::Bound(ns), event)) => {
                (String::from_utf8_lossy(ns.as_ref()).into_owned(), event)
            }
            Ok((ResolveResult::Unbound, event)) => (String::new(), event),
            Ok((ResolveResult::Unknown(p), _)) => {
                return Err(format!(
                    "undeclared prefix `{}`",
                    String::from_utf8_lossy(&p)
                ));
            }
            Err(e) => return Err(format!("at byte {}: {e}", reader.error_position())),
        };
        let text = match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err("more than one root element".into());
            }
            Event::Start(_) if open.len() >= crate::MAX_NESTING_DEPTH => {
                return Err(format!(
                    "elements nested deeper than {} levels",
                    crate::MAX_NESTING_DEPTH
                ));
            }
            Event::Start(e) => {
                open.push(Node {
                    ns,
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Node::default()
                });
                continue;
            }
            Event::Empty(e) => {
                let node = Node {
                    ns,
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Node::default()
                };
                attach(&mut open, &mut root, node);
                continue;
            }
            Event::End(_) => {
                let node = open.pop().ok_or("unbalanced end tag")?;
                attach(&mut open, &mut root, node);
                continue;
            }
            Event::Text(t) => t.decode().map_err(|e| e.to_string())?.into_owned(),
            Event::CData(t) => t.decode().map_err(|e| e.to_string())?.into_owned(),
            Event::GeneralRef(r) => match r.resolve_char_ref().map_err(|e| e.to_string())? {
                Some(c) => c.to_string(),
                None => {
                    let name = r.decode().map_err(|e| e.to_string())?;
                    resolve_xml_entity(&name)
                        .ok_or_else(|| format!("undefined entity `&{name};`"))?
                        .to_owned()
                }
            },
            Event::Eof => break,
            _ => continue,
        };
        match open.last_mut() {
            Some(node) => node.text.push_str(&text),
            None if text.trim().is_empty() => {}
            None => return Err("text outside the root element".into()),
        }
    }
    if let Some(node) = open.last() {
        return Err(format!("`<{}>` is never closed", node.name));
    }
    root.ok_or_else(|| "no root element".into())
}

fn attach(open: &mut [Node], root: &mut Option<Node>, node: Node) {
    match open.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some(node),
    }
}

/// `text` escaped for element content.
pub(super) fn escape(text: &str) -> String {
    quick_xml::escape::partial_escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn refuses_deep_nesting_without_recursing() {
        let depth = crate::MAX_NESTING_DEPTH;
        let nested = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(super::parse(nested(depth).as_bytes()).is_ok());
        let e = super::parse(nested(100_000).as_bytes()).unwrap_err();
        assert!(e.contains("deeper than 64 levels"), "{e}");
    }
}
