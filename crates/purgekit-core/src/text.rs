//! [`Text`]: a target's shown text, shared by the request and every report row of the target.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable string shared by reference count: cloning it copies no text.
///
/// A request may hold a million targets, each with one `Text`, and each report row of a target
/// shares it. It is [`triomphe::Arc<str>`] rather than `std::sync::Arc<str>` because that has
/// no weak count: its allocation is the text plus 8 bytes instead of 16, which is what keeps a
/// planned million-URL request within 3 × its input (a 45-byte URL fits a 64-byte allocator
/// chunk with 8 bytes of header, not with 16). It derefs to `str` and serializes as a string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text(triomphe::Arc<str>);

impl Text {
    /// The text as a `&str`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Text(triomphe::Arc::from(text))
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Text::from(text.as_str())
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::from("")
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Text::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_its_text_and_serializes_as_a_string() {
        let text = Text::from("https://a.example/x");
        let row_copy = text.clone();
        assert!(std::ptr::eq(text.as_ptr(), row_copy.as_ptr()), "no copy");
        assert_eq!(text, "https://a.example/x");
        assert_eq!(
            format!("{text} {text:?}"),
            "https://a.example/x \"https://a.example/x\""
        );
        let json = serde_json::to_string(&text).unwrap();
        assert_eq!(json, "\"https://a.example/x\"");
        assert_eq!(serde_json::from_str::<Text>(&json).unwrap(), text);
    }
}
