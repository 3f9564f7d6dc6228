//! [`ProxyPolicy`]: which HTTP proxy, if any, requests go through.
//!
//! The policy users expect from curl: `https_proxy`/`HTTPS_PROXY` for `https://` endpoints,
//! `http_proxy`/`HTTP_PROXY` for `http://` ones, `all_proxy`/`ALL_PROXY` for both when the
//! scheme's own is unset, and `no_proxy`/`NO_PROXY` (comma-separated host names, which also
//! cover their subdomains, IP addresses, CIDR ranges, or `*`) for hosts reached directly; the
//! lower-case name wins when both are set, as in curl. Loopback hosts (`localhost`, `127.0.0.0/8`,
//! `::1`) are never proxied, whatever the policy: a local emulator's credentials never leave
//! the machine. A proxy's credentials (`http://user:pw@proxy:3128`) never appear in logs or
//! errors ([`ProxyPolicy::describe`]).

use std::fmt;

use crate::error::{Error, Result};

/// Hosts never sent through a proxy, in `NO_PROXY` syntax.
pub(crate) const LOOPBACK: &str = "localhost,127.0.0.0/8,::1";

/// Which proxy the default transport ([`crate::ReqwestTransport`]) sends through.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum ProxyPolicy {
    /// The proxy environment variables, like curl (see the module docs).
    #[default]
    Environment,
    /// No proxy at all: every request goes straight to its endpoint.
    None,
    /// Every request (except to loopback) through this `http://` or `https://` proxy URL.
    Url(String),
}

impl fmt::Debug for ProxyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyPolicy::Environment => f.write_str("Environment"),
            ProxyPolicy::None => f.write_str("None"),
            ProxyPolicy::Url(url) => f.debug_tuple("Url").field(&redact(url)).finish(),
        }
    }
}

/// The proxies a policy resolves to, with where each came from.
#[derive(Clone, PartialEq, Eq, Default)]
pub(crate) struct Proxies {
    /// For `http://` endpoints: (URL, source).
    pub(crate) http: Option<(String, String)>,
    /// For `https://` endpoints: (URL, source).
    pub(crate) https: Option<(String, String)>,
    /// Hosts reached directly, `NO_PROXY` syntax (loopback not included).
    pub(crate) no_proxy: String,
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(self))
    }
}

impl Proxies {
    /// [`Proxies::no_proxy`] with loopback added (what the reqwest transport hands reqwest).
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn bypass(&self) -> String {
        if self.no_proxy.trim().is_empty() {
            LOOPBACK.to_owned()
        } else {
            format!("{},{LOOPBACK}", self.no_proxy)
        }
    }
}

impl ProxyPolicy {
    /// Reads a policy as written in a flag or config value: `none`, `env` (the environment
    /// variables), or an `http://` / `https://` proxy URL. `field` names the input in errors,
    /// which never quote credentials.
    ///
    /// ```
    /// use purgekit_core::ProxyPolicy;
    /// assert_eq!(ProxyPolicy::parse("--proxy", "none").unwrap(), ProxyPolicy::None);
    /// assert!(ProxyPolicy::parse("--proxy", "ftp://proxy.example").is_err());
    /// ```
    pub fn parse(field: &str, text: &str) -> Result<ProxyPolicy> {
        match text.trim() {
            "none" => Ok(ProxyPolicy::None),
            "env" => Ok(ProxyPolicy::Environment),
            url => {
                check_url(field, url)?;
                Ok(ProxyPolicy::Url(url.to_owned()))
            }
        }
    }

    /// The proxies this policy uses, reading the environment with `env` (for tests; the
    /// transport passes `std::env::var`). An environment variable that is not a proxy URL is
    /// an [`Error::Config`] naming it.
    pub(crate) fn resolve_with(&self, env: impl Fn(&str) -> Option<String>) -> Result<Proxies> {
        match self {
            ProxyPolicy::None => Ok(Proxies::default()),
            ProxyPolicy::Url(url) => {
                check_url("proxy", url)?;
                let via = Some((url.clone(), "configured".to_owned()));
                Ok(Proxies {
                    http: via.clone(),
                    https: via,
                    no_proxy: String::new(),
                })
            }
            ProxyPolicy::Environment => {
                let first = |names: &[&str]| -> Result<Option<(String, String)>> {
                    for name in names {
                        if let Some(value) = env(name).filter(|v| !v.trim().is_empty()) {
                            let value = value.trim().to_owned();
                            check_url(name, &value)?;
                            return Ok(Some((value, (*name).to_owned())));
                        }
                    }
                    Ok(None)
                };
                let all = ["all_proxy", "ALL_PROXY"];
                Ok(Proxies {
                    http: first(&["http_proxy", "HTTP_PROXY", all[0], all[1]])?,
                    https: first(&["https_proxy", "HTTPS_PROXY", all[0], all[1]])?,
                    no_proxy: ["no_proxy", "NO_PROXY"]
                        .iter()
                        .find_map(|n| env(n))
                        .unwrap_or_default(),
                })
            }
        }
    }

    /// What this policy means here, for logs: each scheme's proxy (credentials removed) and
    /// where it came from, and the hosts reached directly. Reads the environment.
    pub fn describe(&self) -> String {
        match self.resolve_with(|name| std::env::var(name).ok()) {
            Ok(proxies) => describe(&proxies),
            Err(e) => e.to_string(),
        }
    }
}

/// See [`ProxyPolicy::describe`].
pub(crate) fn describe(proxies: &Proxies) -> String {
    let via = |p: &Option<(String, String)>| match p {
        Some((url, source)) => format!("via {} ({source})", redact(url)),
        None => "direct".to_owned(),
    };
    let mut direct = LOOPBACK.replace(',', ", ");
    if !proxies.no_proxy.trim().is_empty() {
        direct = format!("{}, {direct}", proxies.no_proxy.trim());
    }
    format!(
        "https {}; http {}; always direct: {}",
        via(&proxies.https),
        via(&proxies.http),
        crate::error::escape_controls(&direct)
    )
}

/// A proxy URL without its credentials (`http://***@proxy:3128`), for logs and errors.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if !parsed.username().is_empty() || parsed.password().is_some() {
                let _ = parsed.set_password(None);
                let _ = parsed.set_username("***");
            }
            let mut text = parsed.to_string();
            if text.ends_with('/') && !url.ends_with('/') {
                text.pop();
            }
            text
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

fn check_url(field: &str, url: &str) -> Result<()> {
    let parsed = url::Url::parse(url).map_err(|e| {
        Error::config(
            field,
            format!("`{}` is not a proxy URL: {e}", redact_unparsed(url)),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::config(
            field,
            format!(
                "`{}`: a proxy must be an http:// or https:// URL with a host (or `none`)",
                redact(url)
            ),
        ));
    }
    Ok(())
}

/// Text that failed to parse as a URL, quoted without anything before an `@`.
fn redact_unparsed(text: &str) -> String {
    let shown = match text.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => text.to_owned(),
    };
    crate::error::escape_controls(&shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn via(p: &Option<(String, String)>) -> Option<(&str, &str)> {
        p.as_ref().map(|(u, s)| (u.as_str(), s.as_str()))
    }

    #[test]
    fn the_environment_is_read_like_curl() {
        let p = ProxyPolicy::Environment
            .resolve_with(env(&[
                ("HTTPS_PROXY", "http://secure.proxy:3128"),
                ("ALL_PROXY", "http://all.proxy:8080"),
                ("no_proxy", "internal.example,10.0.0.0/8"),
            ]))
            .unwrap();
        assert_eq!(
            via(&p.https),
            Some(("http://secure.proxy:3128", "HTTPS_PROXY"))
        );
        assert_eq!(via(&p.http), Some(("http://all.proxy:8080", "ALL_PROXY")));
        assert_eq!(
            p.bypass(),
            format!("internal.example,10.0.0.0/8,{LOOPBACK}")
        );
        // Lower case wins, as in curl; either case is read.
        let p = ProxyPolicy::Environment
            .resolve_with(env(&[
                ("https_proxy", "http://lower:1"),
                ("HTTPS_PROXY", "http://upper:2"),
                ("HTTP_PROXY", "http://upper:3"),
            ]))
            .unwrap();
        assert_eq!(via(&p.https), Some(("http://lower:1", "https_proxy")));
        assert_eq!(via(&p.http), Some(("http://upper:3", "HTTP_PROXY")));
        assert_eq!(p.bypass(), LOOPBACK);
        assert_eq!(
            ProxyPolicy::Environment.resolve_with(env(&[])).unwrap(),
            Proxies::default()
        );
    }

    #[test]
    fn explicit_and_none_ignore_the_environment() {
        let vars = [("HTTPS_PROXY", "http://env.proxy:1")];
        let p = ProxyPolicy::None.resolve_with(env(&vars)).unwrap();
        assert_eq!((p.http, p.https), (None, None));
        let p = ProxyPolicy::parse("proxy", "http://corp.proxy:3128")
            .unwrap()
            .resolve_with(env(&vars))
            .unwrap();
        assert_eq!(
            via(&p.https),
            Some(("http://corp.proxy:3128", "configured"))
        );
        assert_eq!(p.bypass(), LOOPBACK, "loopback is never proxied");
    }

    #[test]
    fn credentials_never_show() {
        let policy =
            ProxyPolicy::parse("--proxy", "http://deploy:hunter2@proxy.example:3128").unwrap();
        assert!(!format!("{policy:?}").contains("hunter2"));
        let p = policy.resolve_with(env(&[])).unwrap();
        let text = describe(&p);
        assert_eq!(
            text,
            format!(
                "https via http://***@proxy.example:3128 (configured); \
                 http via http://***@proxy.example:3128 (configured); always direct: {}",
                LOOPBACK.replace(',', ", ")
            )
        );
        for bad in ["ftp://u:hunter2@proxy.example", "hunter2@@ not a url"] {
            let e = ProxyPolicy::parse("--proxy", bad).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains("--proxy"), "{e}");
        }
        let e = ProxyPolicy::Environment
            .resolve_with(env(&[("HTTPS_PROXY", "socks5://u:hunter2@p:1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("HTTPS_PROXY") && !e.contains("hunter2"), "{e}");
    }
}
