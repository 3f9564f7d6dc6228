//! One bound on how deeply a decoder follows nested answers: a hostile server must not be able
//! to exhaust the stack (or the heap) with `<a><a><a>…` or `[[[…`.

use crate::error::{Error, Result};

/// The deepest nesting any decoder reads (elements in XML, arrays and objects in JSON). Real
/// answers nest at most 8 levels; past this, the answer is a protocol error naming the limit.
pub const MAX_NESTING_DEPTH: usize = 64;

/// The protocol error for an answer nested deeper than [`MAX_NESTING_DEPTH`]; `what` names the
/// answer (`the SOAP answer`, `the JSON body`…).
pub fn too_deep(what: &str) -> Error {
    Error::protocol(format!(
        "{what} is nested deeper than {MAX_NESTING_DEPTH} levels (the decoders' limit)"
    ))
}

/// Checks that a JSON text nests arrays and objects at most [`MAX_NESTING_DEPTH`] deep,
/// scanning bytes without parsing (strings and their escapes are skipped), so it runs before a
/// parser that would recurse. Malformed JSON passes here and is refused by the parser.
///
/// ```
/// assert!(purgekit_core::check_json_depth(br#"{"a":[1,{"b":"[[["}]}"#).is_ok());
/// assert!(purgekit_core::check_json_depth(&[b'['; 65]).is_err());
/// ```
pub fn check_json_depth(body: &[u8]) -> Result<()> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING_DEPTH {
                    return Err(too_deep("the JSON body"));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nesting_outside_strings_only() {
        let at_limit = format!(
            "{}{}",
            "[".repeat(MAX_NESTING_DEPTH),
            "]".repeat(MAX_NESTING_DEPTH)
        );
        assert!(check_json_depth(at_limit.as_bytes()).is_ok());
        let e = check_json_depth(format!("[{at_limit}]").as_bytes()).unwrap_err();
        assert_eq!(e.kind(), "protocol");
        assert!(e.to_string().contains("deeper than 64 levels"), "{e}");
        let in_strings = format!(
            r#"{{"a":"{}","b":"\"{}"}}"#,
            "[".repeat(500),
            "{".repeat(500)
        );
        assert!(check_json_depth(in_strings.as_bytes()).is_ok());
        // Siblings do not add up.
        let wide = "[[],".repeat(40) + "[]" + &"]".repeat(40);
        assert!(check_json_depth(wide.as_bytes()).is_ok());
    }
}
