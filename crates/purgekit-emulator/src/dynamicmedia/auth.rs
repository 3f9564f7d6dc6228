//! The credentials of a SOAP call, in every form the IPS API accepts: an `authHeader` in the
//! unversioned namespace (`IpsApiCommon.xsd`: `xsd:all`, children in any order, all optional)
//! or in a versioned one (a sequence, `appName` and `appVersion` required), with `user` and
//! `password` or an `accessToken`; or HTTP Basic (`Authorization: Basic base64(email:password)`)
//! instead of an `authHeader`. Missing or wrong credentials are SOAP faults, never a 401.

use crate::auth::{Authenticator, Principal};
use axum::http::request::Parts;
use axum::response::Response;
use base64::Engine as _;

use super::*;

/// Every child an `authHeader` may have; in a versioned namespace, in this order.
const CHILDREN: [&str; 8] = [
    "user",
    "password",
    "accessToken",
    "locale",
    "appName",
    "appVersion",
    "gzipResponse",
    "faultHttpStatusCode",
];

impl Authenticator for DynamicMediaEmulator {
    /// The fault and its HTTP status (500, or the call's `faultHttpStatusCode`).
    type Refusal = (u16, Failure);

    /// The envelope read as far as its credentials: XML, `soapenv:Envelope`, `soapenv:Body`,
    /// then the `authHeader` or HTTP Basic.
    fn verify(&self, parts: &Parts, body: &[u8]) -> Result<Principal, (u16, Failure)> {
        let envelope = wire::parse(body).map_err(|why| (500, invalid_xml(&why)))?;
        let status = fault_http_status(&envelope).unwrap_or(500);
        soap_body(&envelope).map_err(|f| (status, f))?;
        check_auth(self.config(), &parts.headers, &envelope).map_err(|f| (status, f))?;
        Ok(Principal(self.config().user.clone()))
    }

    /// A SOAP fault (IPS's `authenticationFault` for credentials), never a 401.
    fn refuse(&self, (status, failure): (u16, Failure)) -> Response {
        fault_response(status, failure)
    }
}

/// Checks the call's credentials: the `authHeader` (namespace, children, credentials), or HTTP
/// Basic when the SOAP header has none.
fn check_auth(
    config: &DynamicMediaEmulatorConfig,
    headers: &HeaderMap,
    envelope: &Node,
) -> Result<(), Failure> {
    let auth = envelope
        .children
        .iter()
        .find(|c| c.is(SOAP_ENV_NS, "Header"))
        .and_then(|h| h.child("authHeader"));
    let basic = basic_credentials(headers);
    let Some(auth) = auth else {
        return match basic {
            Some((user, password)) => check_password(config, &user, &password),
            None => Err(no_credentials(
                "no authHeader in the SOAP header and no HTTP Basic credentials",
            )),
        };
    };
    let versioned = if auth.ns == IPS_NS {
        false
    } else if auth
        .ns
        .strip_prefix(IPS_NS)
        .and_then(|v| v.strip_prefix('/'))
        .is_some_and(is_version)
    {
        true
    } else {
        return Err(no_credentials(&format!(
            "authHeader must be in namespace {IPS_NS} or {IPS_NS}/<version>, not `{}`",
            auth.ns
        )));
    };
    let mut seen = [false; CHILDREN.len()];
    let mut last = 0;
    for child in &auth.children {
        let position = CHILDREN
            .iter()
            .position(|n| *n == child.name)
            .filter(|_| child.ns == auth.ns)
            .ok_or_else(|| {
                ips(
                    FaultKind::IpsApi,
                    30003,
                    format!(
                        "unexpected `{}` in authHeader (its children: {}, in {})",
                        child.name,
                        CHILDREN.join(", "),
                        auth.ns
                    ),
                )
            })?;
        if seen[position] || (versioned && position < last) {
            return Err(ips(
                FaultKind::IpsApi,
                30003,
                format!(
                    "authHeader children must each appear once{}; got {}",
                    if versioned {
                        format!(", in the order {}", CHILDREN.join(", "))
                    } else {
                        String::new()
                    },
                    auth.child_names().join(", ")
                ),
            ));
        }
        seen[position] = true;
        last = position;
    }
    if versioned {
        for required in ["appName", "appVersion"] {
            if auth.child(required).is_none() {
                return Err(ips(
                    FaultKind::IpsApi,
                    30003,
                    format!("a versioned authHeader requires `{required}`"),
                ));
            }
        }
    }
    if let Some(token) = auth.child("accessToken") {
        return match &config.access_token {
            Some(expected) if token.text.trim() == expected => Ok(()),
            _ => Err(ips(
                FaultKind::Authentication,
                10001,
                "Invalid access token",
            )),
        };
    }
    match (auth.child("user"), auth.child("password"), basic) {
        (Some(user), Some(password), _) => check_password(config, &user.text, &password.text),
        (None, None, Some((user, password))) => check_password(config, &user, &password),
        _ => Err(no_credentials(
            "authHeader needs user and password, or accessToken",
        )),
    }
}

fn no_credentials(why: &str) -> Failure {
    ips(FaultKind::Authentication, 10000, why.to_owned())
}

fn check_password(
    config: &DynamicMediaEmulatorConfig,
    user: &str,
    password: &str,
) -> Result<(), Failure> {
    if user != config.user || password != config.password {
        return Err(ips(
            FaultKind::Authentication,
            10001,
            "Invalid username/password",
        ));
    }
    Ok(())
}

/// `Authorization: Basic base64(email:password)`, decoded, if sent.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}
