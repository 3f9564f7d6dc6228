//! Reading IPS answers: the two return shapes, the status return, and every fault classified
//! into a core [`Error`] kind.

mod xml;

use std::time::Duration;

use purgekit_core::http::{HeaderMap, StatusCode};
use purgekit_core::{Accepted, Error, Handle, HttpResponse, Progress, Result, Status};

use crate::wire::SOAP_ENV_NS;
use xml::Element;

/// The prefix of the handles made for the 2012-02-14 answer, which carries counts, not a handle.
pub const COUNTS_HANDLE_PREFIX: &str = "counts:";

/// The return element of a response whose body must hold `<{operation}Return>`, or the error
/// the response stands for. SOAP faults are detected from the body whatever the HTTP status
/// (Adobe sends them with 500, or with 200 when asked to via `faultHttpStatusCode`).
pub(crate) fn soap_return(response: &HttpResponse, operation: &str) -> Result<Element> {
    let status = response.status();
    let root = match xml::parse(response.body()) {
        Ok(root) if root.is(SOAP_ENV_NS, "Envelope") => root,
        Ok(root) => {
            return Err(not_soap(
                status,
                response.headers(),
                &format!("the root element is `{}`, not soapenv:Envelope", root.name),
                response.body(),
            ));
        }
        Err(xml::ParseError::TooDeep) => {
            return Err(purgekit_core::too_deep(&format!(
                "the HTTP {status} answer"
            )));
        }
        Err(xml::ParseError::Malformed(why)) => {
            return Err(not_soap(status, response.headers(), &why, response.body()));
        }
    };
    let body = root
        .children
        .iter()
        .find(|c| c.is(SOAP_ENV_NS, "Body"))
        .ok_or_else(|| Error::protocol("the SOAP envelope has no soapenv:Body"))?;
    let first = body
        .children
        .first()
        .ok_or_else(|| Error::protocol("the SOAP body is empty"))?;
    if first.is(SOAP_ENV_NS, "Fault") {
        return Err(fault(first, status, response.headers()));
    }
    let expected = format!("{operation}Return");
    if first.name != expected {
        return Err(Error::protocol(format!(
            "HTTP {status}: expected `{expected}` in the SOAP body, found `{}`",
            first.name
        )));
    }
    if !status.is_success() {
        return Err(Error::protocol(format!(
            "HTTP {status} with a `{expected}` answer: a return is only valid with 200"
        )));
    }
    Ok(first.clone())
}

/// Classifies a SOAP fault from its IPS detail element (see `PROVIDER-NOTES.md`):
/// `authenticationFault` (10000–10002) → [`Error::Auth`]; `authorizationFault` (20000–20009)
/// and `ipsApiFault` (30000–30003) → [`Error::Rejected`] with the IPS code and reason. A fault
/// without IPS detail is [`Error::Transient`] when `faultcode` blames the server, else
/// [`Error::Rejected`] with the `faultcode`.
fn fault(fault: &Element, status: StatusCode, headers: &HeaderMap) -> Error {
    let faultcode = fault.child_text("faultcode").unwrap_or("");
    let faultstring = fault.child_text("faultstring").unwrap_or("");
    let detail = fault.child("detail").and_then(|detail| {
        detail.children.iter().find(|d| {
            matches!(
                d.name.as_str(),
                "authenticationFault" | "authorizationFault" | "ipsApiFault"
            )
        })
    });
    if let Some(detail) = detail {
        let code = detail.child_text("code").unwrap_or("").to_owned();
        let reason = match detail.child_text("reason") {
            Some(reason) if !reason.is_empty() => reason,
            _ => faultstring,
        };
        let code_shown = if code.is_empty() { "?" } else { code.as_str() };
        return match detail.name.as_str() {
            "authenticationFault" => Error::auth(format!(
                "Adobe authenticationFault {code_shown}: {reason} (check user and password)"
            )),
            "authorizationFault" => Error::rejected(
                code_or(&code, "authorizationFault"),
                format!(
                    "authorizationFault: {reason} (the user must be an IpsAdmin or an \
                     IpsCompanyAdmin of this company)"
                ),
            ),
            _ => Error::rejected(
                code_or(&code, "ipsApiFault"),
                format!("ipsApiFault: {reason}"),
            ),
        };
    }
    let local_code = faultcode.rsplit(':').next().unwrap_or(faultcode);
    let message = format!("SOAP fault `{faultcode}` (HTTP {status}): {faultstring}");
    if local_code.starts_with("Server") {
        Error::Transient {
            retry_after: purgekit_core::response_retry_after(headers),
            message,
        }
    } else {
        Error::rejected(code_or(faultcode, "soap-fault"), message)
    }
}

fn code_or(code: &str, fallback: &str) -> String {
    if code.is_empty() {
        fallback.to_owned()
    } else {
        code.to_owned()
    }
}

/// The error for a response that is not a SOAP envelope, from its HTTP status.
fn not_soap(status: StatusCode, headers: &HeaderMap, why: &str, body: &[u8]) -> Error {
    let message = format!(
        "HTTP {status}, not a SOAP answer ({why}); body starts `{}`",
        purgekit_core::snippet(body)
    );
    match status.as_u16() {
        429 => Error::RateLimited {
            retry_after: purgekit_core::response_retry_after(headers),
            message,
        },
        500..=599 => Error::Transient {
            retry_after: purgekit_core::response_retry_after(headers),
            message,
        },
        401 => Error::auth(message),
        200..=299 => Error::protocol(message),
        code => Error::rejected(code.to_string(), message),
    }
}

fn number<T: std::str::FromStr>(ret: &Element, name: &str) -> Result<Option<T>> {
    match ret.child_text(name) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            Error::protocol(format!(
                "`{name}` in `{}` is not a non-negative integer: `{text}`",
                ret.name
            ))
        }),
    }
}

/// The purge's acceptance, from either return shape of `cdnCacheInvalidationReturn`:
///
/// * `invalidationHandle` + `estimatedSeconds` (newer schemas): the handle, polled no sooner
///   than `estimatedSeconds`.
/// * `successCount`/`warningCount`/`errorCount` (the 2012-02-14 example): no handle exists, so
///   the handle is a summary, `counts:success=S,warning=W,error=E`, that cannot be polled.
///   Warnings or errors become row warnings; when every URL errored the batch is
///   [`Error::Rejected`] (code `errorCount`).
pub(crate) fn accepted(ret: &Element, urls: usize) -> Result<Accepted> {
    if let Some(handle) = ret.child_text("invalidationHandle") {
        if handle.is_empty() {
            return Err(Error::protocol("`invalidationHandle` is empty"));
        }
        let estimated: Option<u64> = number(ret, "estimatedSeconds")?;
        return Ok(Accepted {
            handle: Handle(handle.to_owned()),
            poll_after: estimated.map(Duration::from_secs),
            warnings: Vec::new(),
        });
    }
    let Some(success) = number::<u64>(ret, "successCount")? else {
        return Err(Error::protocol(
            "`cdnCacheInvalidationReturn` has neither `invalidationHandle` nor `successCount`",
        ));
    };
    let warning = number::<u64>(ret, "warningCount")?.unwrap_or(0);
    let error = number::<u64>(ret, "errorCount")?.unwrap_or(0);
    if success == 0 && warning == 0 && error > 0 {
        return Err(Error::rejected(
            "errorCount",
            format!("Adobe purged none of the {urls} URLs: successCount 0, errorCount {error}"),
        ));
    }
    let mut warnings = Vec::new();
    if warning > 0 || error > 0 {
        warnings.push(format!(
            "Adobe reported {warning} warning(s) and {error} error(s) among this request's \
             {urls} URLs without naming them (successCount {success})"
        ));
    }
    Ok(Accepted {
        handle: Handle(format!(
            "{COUNTS_HANDLE_PREFIX}success={success},warning={warning},error={error}"
        )),
        poll_after: None,
        warnings,
    })
}

/// The status from `getCdnCacheInvalidationStatusReturn` (`status`, `pingAfterSeconds?`,
/// `completionTime?`). Adobe does not enumerate `status` values; the CDN's words are kept in
/// the detail and read as: `Done`, `Complete(d)`, `Success` → completed; `Failed`, `Error` →
/// failed; anything else (`In-Progress`, `Pending`…) → pending.
pub(crate) fn status(handle: &Handle, ret: &Element) -> Result<Status> {
    let word = ret
        .child_text("status")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::protocol("`getCdnCacheInvalidationStatusReturn` has no `status`"))?;
    let key: String = word
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let progress = match key.as_str() {
        "done" | "complete" | "completed" | "success" | "succeeded" => Progress::Completed,
        "failed" | "failure" | "error" => Progress::Failed,
        _ => Progress::Pending { percent: None },
    };
    let ping: Option<u64> = number(ret, "pingAfterSeconds")?;
    let detail = match ret.child_text("completionTime").filter(|t| !t.is_empty()) {
        Some(time) => format!("{word} (completed {time})"),
        None => word.to_owned(),
    };
    Ok(Status {
        handle: handle.clone(),
        progress,
        detail,
        poll_after: ping.map(Duration::from_secs),
    })
}
