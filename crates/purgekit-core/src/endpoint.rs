//! Provider endpoints: one rule for every provider and the config file.

use crate::error::{Error, Result};

/// Checks a provider endpoint and returns it normalized.
///
/// The endpoint must be `scheme://host[:port]` (a trailing `/` is allowed) with no user,
/// path, query or fragment. `https` is required, except that plain `http` is allowed to a
/// loopback host (`127.0.0.0/8`, `::1`, `localhost`) such as a local emulator: credentials and
/// signatures never cross a network in clear text. The result has the host lower-cased, the
/// default port dropped and no trailing `/`, exactly as requests and signatures use it.
/// Errors are [`Error::Config`] naming `field`.
///
/// ```
/// use purgekit_core::normalize_endpoint;
/// assert_eq!(normalize_endpoint("endpoint", "https://WS.Lumen.com:443/").unwrap(), "https://ws.lumen.com");
/// assert_eq!(normalize_endpoint("endpoint", "http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
/// assert!(normalize_endpoint("endpoint", "http://ws.lumen.com").is_err());
/// ```
pub fn normalize_endpoint(field: &str, endpoint: &str) -> Result<String> {
    let shown = without_userinfo(endpoint);
    let bad = |why: &str| {
        Error::config(
            field,
            format!("`{shown}` {why}; expected scheme://host[:port]"),
        )
    };
    if endpoint
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("must not contain white space"));
    }
    let url = url::Url::parse(endpoint).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user or password"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a path, query or fragment"));
    }
    let Some(host) = url.host() else {
        return Err(bad("names no host"));
    };
    let loopback = match host {
        url::Host::Domain(domain) => domain.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad(
                "uses plain http://, which is only allowed to a loopback host (127.0.0.1, ::1, \
                 localhost); use https://",
            ));
        }
        other => return Err(bad(&format!("must use https, not `{other}`"))),
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The endpoint with any `user:password@` replaced, so errors never echo a credential.
fn without_userinfo(endpoint: &str) -> String {
    if let Some((scheme, rest)) = endpoint.split_once("://") {
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{scheme}://{}@{}", crate::REDACTED, &rest[at + 1..]);
        }
    }
    endpoint.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(endpoint: &str) -> String {
        match normalize_endpoint("providers.eu.endpoint", endpoint).unwrap_err() {
            Error::Config { field, message } => {
                assert_eq!(field, "providers.eu.endpoint");
                message
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn accepts_and_normalizes() {
        let n = |e| normalize_endpoint("endpoint", e).unwrap();
        assert_eq!(n("https://apis.llnw.com"), "https://apis.llnw.com");
        assert_eq!(n("https://APIS.llnw.com:443/"), "https://apis.llnw.com");
        assert_eq!(
            n("https://apis.llnw.com:8443"),
            "https://apis.llnw.com:8443"
        );
        assert_eq!(n("http://localhost:9000/"), "http://localhost:9000");
        assert_eq!(n("http://127.0.0.2:80"), "http://127.0.0.2");
        assert_eq!(n("http://[::1]:8080"), "http://[::1]:8080");
    }

    #[test]
    fn refuses_plain_http_off_loopback() {
        assert!(message("http://ws.lumen.com").contains("only allowed to a loopback host"));
        assert!(message("http://10.0.0.1:80").contains("only allowed to a loopback host"));
        assert!(message("http://127.0.0.1.example.com").contains("loopback"));
    }

    #[test]
    fn refuses_other_shapes() {
        assert!(message("ftp://ws.lumen.com").contains("must use https"));
        assert!(message("ws.lumen.com").contains("is not a URL"));
        assert!(message("https://ws.lumen.com/api").contains("path"));
        assert!(message("https://ws.lumen.com?x=1").contains("query"));
        assert!(message("https://user:pw@ws.lumen.com").contains("user or password"));
        assert!(message("https://ws.lumen.com /").contains("white space"));
    }

    #[test]
    fn never_echoes_a_credential() {
        let m = message("https://u:s3cret@x.example/");
        assert!(m.contains("user or password"), "{m}");
        assert!(!m.contains("s3cret") && !m.contains("u:"), "{m}");
        assert!(m.starts_with("`https://<redacted>@x.example/`"), "{m}");
    }
}
