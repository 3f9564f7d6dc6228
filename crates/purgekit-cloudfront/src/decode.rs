//! Responses: the `<Invalidation>` body, and CloudFront's `<ErrorResponse>` classified once
//! into [`purgekit_core::Error`] kinds.

use std::time::Duration;

use purgekit_core::http::StatusCode;
use purgekit_core::{Error, HttpResponse, Result, response_retry_after, snippet};
use serde::Deserialize;

/// Most response bytes decoded; CloudFront's bodies are small, a larger one is not CloudFront.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// An invalidation as CloudFront describes it (Create and Get answer the same shape).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Invalidation {
    /// The invalidation id (`I2J0I21PCUYOIK`).
    pub id: String,
    /// `InProgress` or `Completed`.
    pub status: String,
    /// When CloudFront created it (ISO 8601, UTC).
    pub create_time: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorResponse {
    error: ErrorDetail,
    #[serde(default)]
    request_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorDetail {
    code: String,
    #[serde(default)]
    message: Option<String>,
}

/// Decodes a success answer (`expected` status) into an [`Invalidation`], or classifies the
/// error. `what` names the call in messages; `paths` names the batch's paths for the errors
/// that are about them.
pub(crate) fn invalidation(
    response: &HttpResponse,
    expected: StatusCode,
    what: &str,
    paths: &str,
) -> Result<Invalidation> {
    let body = response.body();
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(Error::protocol(format!(
            "the {what} answer is {} bytes, more than CloudFront ever sends",
            body.len()
        )));
    }
    if response.status() != expected {
        return Err(classify(response, what, paths));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::protocol(format!("the {what} answer is not UTF-8")))?;
    let invalidation: Invalidation = quick_xml::de::from_str(text).map_err(|e| {
        Error::protocol(format!(
            "the {what} answer is not an <Invalidation> ({e}): {}",
            snippet(body)
        ))
    })?;
    if invalidation.id.is_empty() || !invalidation.id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Error::protocol(format!(
            "the invalidation id `{}` is not letters and digits",
            snippet(invalidation.id.as_bytes())
        )));
    }
    Ok(invalidation)
}

/// The part of a ListInvalidations answer the credentials check reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InvalidationList {
    quantity: u32,
}

/// Reads the answer to ListInvalidations with `MaxItems=1` (200 `<InvalidationList>`), or
/// classifies the error.
pub(crate) fn invalidation_list(response: &HttpResponse) -> Result<()> {
    const WHAT: &str = "ListInvalidations";
    if response.status() != StatusCode::OK {
        return Err(classify(response, WHAT, "none"));
    }
    let text = std::str::from_utf8(response.body())
        .map_err(|_| Error::protocol(format!("the {WHAT} answer is not UTF-8")))?;
    let list = quick_xml::de::from_str::<InvalidationList>(text).map_err(|e| {
        Error::protocol(format!(
            "the {WHAT} answer is not an <InvalidationList> ({e}): {}",
            snippet(response.body())
        ))
    })?;
    if list.quantity > 1 {
        return Err(Error::protocol(format!(
            "the {WHAT} answer lists {} invalidations; one at most was asked for",
            list.quantity
        )));
    }
    Ok(())
}

/// An error answer, classified: capacity and throttling are rate limits (retried), 5xx
/// transient, credentials auth, the rest rejections naming the code.
fn classify(response: &HttpResponse, what: &str, paths: &str) -> Error {
    let status = response.status();
    let parsed = std::str::from_utf8(response.body())
        .ok()
        .and_then(|t| quick_xml::de::from_str::<ErrorResponse>(t).ok());
    let Some(parsed) = parsed else {
        return match status.as_u16() {
            429 => Error::RateLimited {
                retry_after: response_retry_after(response.headers()),
                message: format!("HTTP 429 on {what}"),
            },
            500..=599 => Error::Transient {
                retry_after: response_retry_after(response.headers()),
                message: format!("HTTP {status} on {what}: {}", snippet(response.body())),
            },
            _ => Error::protocol(format!(
                "HTTP {status} on {what} without a CloudFront error: {}",
                snippet(response.body())
            )),
        };
    };
    let code = parsed.error.code;
    let request_id = parsed
        .request_id
        .map(|id| format!(" (request id {})", snippet(id.as_bytes())))
        .unwrap_or_default();
    let message = format!(
        "{}{request_id}",
        snippet(parsed.error.message.unwrap_or_default().as_bytes())
    );
    match code.as_str() {
        "TooManyInvalidationsInProgress" => Error::RateLimited {
            retry_after: response_retry_after(response.headers()).or(Some(CAPACITY_RETRY)),
            message: format!("{code}: {message}"),
        },
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => Error::RateLimited {
            retry_after: response_retry_after(response.headers()),
            message: format!("{code}: {message}"),
        },
        "AccessDenied"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "ExpiredToken"
        | "RequestExpired"
        | "MissingAuthenticationToken" => Error::Auth {
            message: format!("{code}: {message}"),
        },
        "InvalidArgument"
        | "BatchTooLarge"
        | "InconsistentQuantities"
        | "InvalidationBatchAlreadyExists"
        | "MissingBody" => Error::rejected(code, format!("{message}; paths: {paths}")),
        _ if status.is_server_error() => Error::Transient {
            retry_after: response_retry_after(response.headers()),
            message: format!("{code}: {message}"),
        },
        _ => Error::rejected(code, message),
    }
}

/// The wait before retrying after `TooManyInvalidationsInProgress` when CloudFront gives none:
/// invalidations take minutes, so a short backoff would only draw the same answer.
pub const CAPACITY_RETRY: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> HttpResponse {
        purgekit_core::http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    fn error(status: u16, code: &str) -> Error {
        let body = format!(
            "<ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>m</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
        );
        invalidation(
            &response(status, &body),
            StatusCode::CREATED,
            "create",
            "/a, /b*",
        )
        .unwrap_err()
    }

    #[test]
    fn errors_are_classified_once() {
        let capacity = error(400, "TooManyInvalidationsInProgress");
        assert!(capacity.is_retryable());
        assert_eq!(capacity.retry_after(), Some(CAPACITY_RETRY));
        assert!(matches!(
            error(400, "Throttling"),
            Error::RateLimited {
                retry_after: None,
                ..
            }
        ));
        for code in [
            "AccessDenied",
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
        ] {
            let e = error(403, code);
            assert!(
                matches!(e, Error::Auth { .. }) && !e.is_retryable(),
                "{code}"
            );
        }
        for code in ["InvalidArgument", "BatchTooLarge", "InconsistentQuantities"] {
            let e = error(400, code);
            assert!(!e.is_retryable(), "{code}");
            assert!(
                e.to_string().contains("/a, /b*") && e.to_string().contains(code),
                "{e}"
            );
        }
        let e = error(404, "NoSuchDistribution");
        assert!(!e.is_retryable() && e.to_string().contains("NoSuchDistribution"));
        assert!(error(503, "ServiceUnavailable").is_retryable());
        assert!(error(400, "ServiceUnavailable").to_string().contains("r-1"));
    }

    #[test]
    fn bodies_that_are_not_cloudfront_are_protocol_errors() {
        let e =
            invalidation(&response(201, "<<nope"), StatusCode::CREATED, "create", "").unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }));
        assert!(
            invalidation(&response(502, ""), StatusCode::CREATED, "create", "")
                .unwrap_err()
                .is_retryable()
        );
        let ok = invalidation(
            &response(200, "<Invalidation xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Id>I1</Id><Status>Completed</Status><CreateTime>2015-08-30T12:36:01.000Z</CreateTime><InvalidationBatch><Paths><Quantity>0</Quantity></Paths><CallerReference>x</CallerReference></InvalidationBatch></Invalidation>"),
            StatusCode::OK,
            "get",
            "",
        )
        .unwrap();
        assert_eq!((ok.id.as_str(), ok.status.as_str()), ("I1", "Completed"));
    }
}
