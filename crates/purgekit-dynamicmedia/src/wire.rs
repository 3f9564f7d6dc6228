//! The SOAP 1.1 envelopes, byte for byte (see `PROVIDER-NOTES.md`, Adobe Dynamic Media).
//!
//! Layout: an XML declaration, then one element per line, indented by two spaces per level,
//! each line ending in `\n`. Every text value is XML-escaped (`&`, `<`, `>`), the password too.

/// `soapenv`: the SOAP 1.1 envelope namespace.
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The unversioned IPS namespace of `authHeader` (always this one, whatever the schema version).
pub const IPS_NS: &str = "http://www.scene7.com/IpsApi/xsd";
/// The path of the IPS API SOAP service on every IPS host.
pub const SERVICE_PATH: &str = "/scene7/services/IpsApiService";
/// The `SOAPAction` and operation of a purge.
pub const INVALIDATE_ACTION: &str = "cdnCacheInvalidation";
/// The `SOAPAction` and operation of a status query.
pub const STATUS_ACTION: &str = "getCdnCacheInvalidationStatus";
/// The `Content-Type` of every request.
pub const CONTENT_TYPE: &str = "text/xml; charset=UTF-8";

/// The versioned namespace of operation bodies: `http://www.scene7.com/IpsApi/xsd/{version}`.
pub fn body_ns(api_version: &str) -> String {
    format!("{IPS_NS}/{api_version}")
}

/// The `authHeader` values.
pub(crate) struct Auth<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub app_name: &'a str,
    pub app_version: &'a str,
}

/// Appends `text` XML-escaped for element content.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// Appends `<name>text</name>` on its own line at `indent` levels.
pub(crate) fn field(out: &mut String, indent: usize, name: &str, text: &str) {
    pad(out, indent);
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape_into(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

fn pad(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push_str("  ");
    }
}

/// The indentation level of an operation parameter's fields.
pub(crate) const PARAM_FIELD_INDENT: usize = 3;

/// A whole envelope whose body is `<{operation}Param xmlns="{body ns}">`, the parameter's
/// fields written by `fields` (at [`PARAM_FIELD_INDENT`]).
pub(crate) fn envelope(
    auth: &Auth<'_>,
    operation: &str,
    api_version: &str,
    fields: impl FnOnce(&mut String),
) -> String {
    let mut out = String::with_capacity(1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<soapenv:Envelope xmlns:soapenv=\"");
    out.push_str(SOAP_ENV_NS);
    out.push_str("\">\n");
    out.push_str("  <soapenv:Header>\n");
    out.push_str("    <authHeader xmlns=\"");
    out.push_str(IPS_NS);
    out.push_str("\">\n");
    field(&mut out, 3, "user", auth.user);
    field(&mut out, 3, "password", auth.password);
    field(&mut out, 3, "appName", auth.app_name);
    field(&mut out, 3, "appVersion", auth.app_version);
    out.push_str("    </authHeader>\n");
    out.push_str("  </soapenv:Header>\n");
    out.push_str("  <soapenv:Body>\n");
    out.push_str("    <");
    out.push_str(operation);
    out.push_str("Param xmlns=\"");
    escape_into(&mut out, &body_ns(api_version));
    out.push_str("\">\n");
    fields(&mut out);
    out.push_str("    </");
    out.push_str(operation);
    out.push_str("Param>\n");
    out.push_str("  </soapenv:Body>\n");
    out.push_str("</soapenv:Envelope>\n");
    out
}

/// Appends one URL of a `urlArray` (`<items>URL</items>` line).
pub(crate) fn url_item(out: &mut String, url: &str) {
    field(out, PARAM_FIELD_INDENT + 1, "items", url);
}

/// The `cdnCacheInvalidation` envelope for `urls`.
pub(crate) fn invalidation<'u>(
    auth: &Auth<'_>,
    api_version: &str,
    company_handle: &str,
    urls: impl IntoIterator<Item = &'u str>,
) -> String {
    envelope(auth, INVALIDATE_ACTION, api_version, |out| {
        field(out, PARAM_FIELD_INDENT, "companyHandle", company_handle);
        pad(out, PARAM_FIELD_INDENT);
        out.push_str("<urlArray>\n");
        for url in urls {
            url_item(out, url);
        }
        pad(out, PARAM_FIELD_INDENT);
        out.push_str("</urlArray>\n");
    })
}

/// The `getCdnCacheInvalidationStatus` envelope for `handle`.
pub(crate) fn status(
    auth: &Auth<'_>,
    api_version: &str,
    company_handle: &str,
    handle: &str,
) -> String {
    envelope(auth, STATUS_ACTION, api_version, |out| {
        field(out, PARAM_FIELD_INDENT, "companyHandle", company_handle);
        field(out, PARAM_FIELD_INDENT, "invalidationHandle", handle);
    })
}

/// Replaces the text of every `<password>` element of an encoded envelope with `with`
/// (escaped). Envelopes escape `<` in every text, so the only literal `<password>` tags are
/// the auth header's.
pub(crate) fn redact_password(body: &str, with: &str) -> String {
    const OPEN: &str = "<password>";
    const CLOSE: &str = "</password>";
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find(OPEN) {
        let text_start = start + OPEN.len();
        let Some(len) = rest[text_start..].find(CLOSE) else {
            break;
        };
        out.push_str(&rest[..text_start]);
        escape_into(&mut out, with);
        rest = &rest[text_start + len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_nothing_else() {
        let mut out = String::new();
        escape_into(&mut out, "a&b<c>d\"e'f|é");
        assert_eq!(out, "a&amp;b&lt;c&gt;d\"e'f|é");
    }

    #[test]
    fn redacts_every_password_element() {
        let body = "<a><password>p&amp;&lt;w</password><password>x</password></a>";
        assert_eq!(
            redact_password(body, "<redacted>"),
            "<a><password>&lt;redacted&gt;</password><password>&lt;redacted&gt;</password></a>"
        );
        assert_eq!(
            redact_password("<password>unclosed", "R"),
            "<password>unclosed"
        );
    }
}
