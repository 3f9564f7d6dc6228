//! The credentials of a SOAP call: the `authHeader` the IPS API checks.

use super::*;

/// Checks the auth header: namespace, schema order, credentials.
pub(super) fn check_auth(
    config: &DynamicMediaEmulatorConfig,
    envelope: &Node,
) -> Result<(), Failure> {
    let no_credentials = |why: &str| ips(FaultKind::Authentication, 10000, why.to_owned());
    let auth = envelope
        .children
        .iter()
        .find(|c| c.is(SOAP_ENV_NS, "Header"))
        .and_then(|h| h.child("authHeader"))
        .ok_or_else(|| no_credentials("no authHeader in the SOAP header"))?;
    if auth.ns != IPS_NS {
        return Err(no_credentials(&format!(
            "authHeader must be in namespace {IPS_NS}, not `{}`",
            auth.ns
        )));
    }
    const ORDER: [&str; 6] = [
        "user",
        "password",
        "locale",
        "appName",
        "appVersion",
        "faultHttpStatusCode",
    ];
    let mut last = 0;
    for child in &auth.children {
        let position = ORDER.iter().position(|n| *n == child.name).ok_or_else(|| {
            ips(
                FaultKind::IpsApi,
                30003,
                format!("unexpected `{}` in authHeader", child.name),
            )
        })?;
        if position < last || child.ns != IPS_NS {
            return Err(ips(
                FaultKind::IpsApi,
                30003,
                format!(
                    "authHeader children must be {} in that order, in {IPS_NS}; got {}",
                    ORDER.join(", "),
                    auth.child_names().join(", ")
                ),
            ));
        }
        last = position + 1;
    }
    let (Some(user), Some(password)) = (auth.child("user"), auth.child("password")) else {
        return Err(no_credentials("authHeader needs user and password"));
    };
    if user.text != config.user || password.text != config.password {
        return Err(ips(
            FaultKind::Authentication,
            10001,
            "Invalid username/password",
        ));
    }
    Ok(())
}
