//! The [`Provider`] impl: mapping, limits, capabilities, and the requests and answers of
//! `cdnCacheInvalidation` and `getCdnCacheInvalidationStatus`.

use std::time::SystemTime;

use purgekit_core::http::{Method, Request, header};
use purgekit_core::{
    Accepted, AuthProbe, Batch, Capabilities, Error, Handle, HttpRequest, HttpResponse, Item,
    Limits, Mapped, Options, Provider, REDACTED, Result, Status, Target, TargetKind,
};

use crate::config::{DynamicMediaConfig, KIND};

/// The invalidation handle the credentials check asks about: no purge has it.
const AUTH_PROBE_HANDLE: &str = "purgekit-credentials-check";
use crate::decode::{self, COUNTS_HANDLE_PREFIX};
use crate::wire::{self as soap, CONTENT_TYPE, INVALIDATE_ACTION, SERVICE_PATH, STATUS_ACTION};

/// Most URLs in one `cdnCacheInvalidation` call (Adobe's documented limit).
pub const MAX_URLS_PER_CALL: usize = 1000;

/// The Adobe Dynamic Media provider for one company. See the crate docs.
#[derive(Debug, Clone)]
pub struct DynamicMedia {
    config: DynamicMediaConfig,
    base_url: String,
}

impl DynamicMedia {
    /// The provider for `config`, checked: an [`Error::Config`] names the first bad field.
    pub fn new(config: DynamicMediaConfig) -> Result<Self> {
        config.validate()?;
        let base_url = config.base_url();
        Ok(DynamicMedia { config, base_url })
    }

    /// The configuration.
    pub fn config(&self) -> &DynamicMediaConfig {
        &self.config
    }

    fn auth(&self) -> soap::Auth<'_> {
        soap::Auth {
            user: &self.config.user,
            password: self.config.password.expose(),
            app_name: &self.config.app_name,
            app_version: &self.config.app_version,
        }
    }

    fn request(&self, action: &str, body: String) -> Result<HttpRequest> {
        Request::builder()
            .method(Method::POST)
            .uri(format!("{}{SERVICE_PATH}", self.base_url))
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .header("SOAPAction", action)
            .body(body.into_bytes())
            .map_err(|e| Error::config("endpoint", format!("cannot build a request: {e}")))
    }

    /// Whether `url` has the company root id as one whole segment of its path (the query is
    /// not looked at; the comparison is exact and case-sensitive).
    fn under_root(&self, target: &Target) -> bool {
        let path = target.path_and_query().unwrap_or("/");
        let path = path.split('?').next().unwrap_or(path);
        path.split('/')
            .any(|segment| segment == self.config.company_root)
    }
}

/// The bytes one URL adds to a `cdnCacheInvalidation` body (its `<items>` line).
fn item_bytes(url: &str) -> usize {
    let mut line = String::with_capacity(url.len() + 32);
    soap::url_item(&mut line, url);
    line.len()
}

impl Provider for DynamicMedia {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn account(&self) -> String {
        self.config.company_handle.clone()
    }

    fn endpoint(&self) -> String {
        self.base_url.clone()
    }

    fn limits(&self) -> Limits {
        Limits {
            max_items: MAX_URLS_PER_CALL,
            max_in_flight: 1,
            rate: self.config.rate_limit.unwrap_or_default(),
            ..Limits::default()
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            targets: vec![TargetKind::Url],
            options: Vec::new(),
        }
    }

    fn map(&self, target: &Target, _options: &Options) -> Result<Mapped> {
        if target.kind() != TargetKind::Url {
            return Ok(Mapped::Unsupported(format!(
                "Adobe's cdnCacheInvalidation takes exact URLs only, not {} targets",
                target.kind()
            )));
        }
        let url = target.value();
        if !self.under_root(target) {
            let root = &self.config.company_root;
            return Err(Error::invalid(
                url,
                format!(
                    "not under the Dynamic Media company root id `{root}`: its path must have \
                     `{root}` as a whole segment (as in /is/image/{root}/asset); Adobe faults \
                     the whole call for one such URL, so nothing was sent"
                ),
            ));
        }
        Ok(Mapped::Item(Item {
            kind: TargetKind::Url,
            value: url.to_owned(),
            scope: String::new(),
            wildcard: false,
            bytes: item_bytes(url),
        }))
    }

    fn body_overhead(&self, _options: &Options) -> usize {
        soap::invalidation(
            &self.auth(),
            &self.config.api_version,
            &self.config.company_handle,
            [],
        )
        .len()
    }

    fn encode(&self, batch: &Batch, _options: &Options, _now: SystemTime) -> Result<HttpRequest> {
        if batch.items.is_empty() || batch.items.len() > MAX_URLS_PER_CALL {
            return Err(Error::invalid(
                format!("{} URLs", batch.items.len()),
                format!("a cdnCacheInvalidation call carries 1 to {MAX_URLS_PER_CALL} URLs"),
            ));
        }
        let body = soap::invalidation(
            &self.auth(),
            &self.config.api_version,
            &self.config.company_handle,
            batch.items.iter().map(|item| item.value.as_str()),
        );
        self.request(INVALIDATE_ACTION, body)
    }

    fn decode(&self, batch: &Batch, response: HttpResponse) -> Result<Accepted> {
        let ret = decode::soap_return(&response, INVALIDATE_ACTION)?;
        decode::accepted(&ret, batch.items.len())
    }

    fn encode_status(&self, handle: &Handle, _now: SystemTime) -> Result<HttpRequest> {
        if handle.as_str().starts_with(COUNTS_HANDLE_PREFIX) {
            return Err(Error::Unsupported {
                reason: format!(
                    "`{handle}` is the summary of a schema {} answer, which carries counts and \
                     no invalidation handle: Adobe offers no status for it (its purges finish \
                     in about 5 seconds); set api_version to 2014-04-03 or later to get \
                     handles that can be polled",
                    self.config.api_version
                ),
            });
        }
        if handle.as_str().trim().is_empty() || handle.as_str().chars().any(char::is_control) {
            return Err(Error::invalid(
                handle.as_str(),
                "an invalidation handle must be non-empty text without control characters",
            ));
        }
        let body = soap::status(
            &self.auth(),
            &self.config.api_version,
            &self.config.company_handle,
            handle.as_str(),
        );
        self.request(STATUS_ACTION, body)
    }

    fn decode_status(&self, handle: &Handle, response: HttpResponse) -> Result<Status> {
        let ret = decode::soap_return(&response, STATUS_ACTION)?;
        decode::status(handle, &ret)
    }

    /// `getCdnCacheInvalidationStatus` for a handle no purge has (`purgekit-credentials-check`):
    /// read-only, authenticated like every IPS call.
    fn auth_probe(&self, _now: SystemTime) -> Result<AuthProbe> {
        let body = soap::status(
            &self.auth(),
            &self.config.api_version,
            &self.config.company_handle,
            AUTH_PROBE_HANDLE,
        );
        Ok(AuthProbe::Request(Box::new(
            self.request(STATUS_ACTION, body)?,
        )))
    }

    /// IPS checks the `authHeader` before the call: an `authenticationFault` or
    /// `authorizationFault` (codes 20000–20009: the user may not act for the company) refuses
    /// the credentials; an answer, or an `ipsApiFault` (30000–30003: the probe's handle is
    /// unknown, or the schema has no status call), means IPS accepted them.
    fn decode_auth_probe(&self, response: HttpResponse) -> Result<()> {
        match decode::soap_return(&response, STATUS_ACTION) {
            Ok(_) => Ok(()),
            Err(Error::Rejected { code, .. }) if code.starts_with('3') && code.len() == 5 => Ok(()),
            Err(Error::Rejected { code, message }) if code.starts_with('2') && code.len() == 5 => {
                Err(Error::auth(format!(
                    "Adobe authorizationFault {code}: {message} (check company_handle)"
                )))
            }
            Err(error) => Err(error),
        }
    }

    fn redact(&self, request: &mut HttpRequest) {
        let body = String::from_utf8_lossy(request.body()).into_owned();
        *request.body_mut() = soap::redact_password(&body, REDACTED).into_bytes();
    }
}

#[cfg(test)]
mod tests;
