//! The canonical purge request: targets plus options, validated once, before anything is sent.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::text::Text;

/// Longest URL or pattern accepted by core (providers may declare a tighter bound).
pub const MAX_TARGET_LEN: usize = 8192;
/// Longest cache tag accepted by core.
pub const MAX_TAG_LEN: usize = 1024;
/// Longest note accepted by core.
pub const MAX_NOTE_LEN: usize = 4096;
/// Longest callback URL accepted by core.
pub const MAX_CALLBACK_LEN: usize = 2048;
/// Longest email address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// What one target names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// One absolute http(s) URL, matched exactly.
    Url,
    /// An absolute http(s) URL containing `*` wildcards.
    Pattern,
    /// A cache tag (surrogate key).
    Tag,
    /// Everything under a URL prefix: an absolute http(s) URL whose path ends with `/`
    /// (`prefix:https://cdn.example.com/img/`).
    Prefix,
    /// Everything on one host name (`host:cdn.example.com`).
    Host,
    /// Everything the account's property, service or zone serves (`everything`). Destructive:
    /// the CLI asks for `--yes`.
    Everything,
}

impl TargetKind {
    /// What precedes the value in a target's shown text (`tag:`); all of it for everything.
    fn shown_prefix(self) -> &'static str {
        match self {
            TargetKind::Url | TargetKind::Pattern => "",
            TargetKind::Tag => "tag:",
            TargetKind::Prefix => "prefix:",
            TargetKind::Host => "host:",
            TargetKind::Everything => "everything",
        }
    }
}

/// `value` checked as an absolute http(s) URL without credentials or `*` (`what` names the
/// target in the error), under core's one normalisation rule.
fn normalized_url_without_wildcard(value: String, what: &str) -> Result<String> {
    crate::normalize::refuse_credentials(&value)?;
    check_http_url(&value, MAX_TARGET_LEN)?;
    let value = crate::normalize::normalize(&value)?.unwrap_or(value);
    if value.contains('*') {
        return Err(Error::invalid(
            &value,
            format!("{what} must not contain `*`; use a pattern target for wildcards"),
        ));
    }
    Ok(value)
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetKind::Url => "URL",
            TargetKind::Pattern => "wildcard pattern",
            TargetKind::Tag => "cache tag",
            TargetKind::Prefix => "URL prefix",
            TargetKind::Host => "host",
            TargetKind::Everything => "everything",
        })
    }
}

/// One thing to purge. Construct with [`Target::url`], [`Target::pattern`], [`Target::tag`],
/// [`Target::prefix`], [`Target::hostname`], [`Target::everything`] or [`Target::parse`]; each
/// validates its input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    kind: TargetKind,
    /// The target as shown (`tag:`, `prefix:` or `host:` prefixed; [`Target::value`] is the
    /// rest). Shared, not a `String`: a request may hold a million targets, and every report
    /// row of a target shares this one text instead of copying it.
    text: Text,
}

impl Target {
    /// An exact, absolute http(s) URL. It must not contain `*` (use [`Target::pattern`]) nor
    /// credentials; it is kept normalised (see [`Target::value`]).
    pub fn url(value: impl Into<String>) -> Result<Self> {
        let value = normalized_url_without_wildcard(value.into(), "an exact URL")?;
        Ok(Target::shown(TargetKind::Url, &value))
    }

    /// An absolute http(s) URL with at least one `*` wildcard, kept normalised like a URL.
    pub fn pattern(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        crate::normalize::refuse_credentials(&value)?;
        if !value.contains('*') {
            return Err(Error::invalid(&value, "a pattern must contain `*`"));
        }
        // `*` may stand in the host (`http://*.example.com/…`), which a URL parser refuses:
        // check the URL with the wildcards replaced by a neutral character.
        check_controls(&value)?;
        check_http_url_with(&value, &value.replace('*', "x"), MAX_TARGET_LEN)?;
        let value = crate::normalize::normalize(&value)?.unwrap_or(value);
        Ok(Target::shown(TargetKind::Pattern, &value))
    }

    /// A cache tag: 1 to [`MAX_TAG_LEN`] characters, no control characters, no spaces.
    pub fn tag(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        check_controls(&value)?;
        if value.is_empty() {
            return Err(Error::invalid(&value, "a tag must not be empty"));
        }
        if value.chars().any(char::is_whitespace) {
            return Err(Error::invalid(&value, "a tag must not contain white space"));
        }
        check_len(&value, MAX_TAG_LEN, "a tag")?;
        Ok(Target::shown(TargetKind::Tag, &value))
    }

    /// Everything under a URL prefix: an absolute http(s) URL without `*`, query or fragment,
    /// whose path ends with `/` (so `…/img/` never matches `…/images/…`).
    ///
    /// ```
    /// use purgekit_core::Target;
    /// let t = Target::prefix("https://cdn.example.com/img/").unwrap();
    /// assert_eq!(t.to_string(), "prefix:https://cdn.example.com/img/");
    /// assert!(Target::prefix("https://cdn.example.com/img").is_err());
    /// // Normalised like a URL.
    /// let t = Target::prefix("https://CDN.example.com/caf%c3%a9/").unwrap();
    /// assert_eq!(t.value(), "https://cdn.example.com/caf%C3%A9/");
    /// ```
    pub fn prefix(value: impl Into<String>) -> Result<Self> {
        let value = normalized_url_without_wildcard(value.into(), "a prefix")?;
        if value.contains('?') {
            return Err(Error::invalid(
                &value,
                "a prefix must not have a query string: it names a directory",
            ));
        }
        let path = value
            .split_once("://")
            .map_or("", |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
        if !path.ends_with('/') {
            return Err(Error::invalid(
                &value,
                "a prefix must end with `/` (everything under that directory; add the `/`)",
            ));
        }
        Ok(Target::shown(TargetKind::Prefix, &value))
    }

    /// Everything on the host name `name` (a DNS name or IP address, no scheme, port or path),
    /// kept as a URL's host is (lower-case, Unicode in punycode).
    ///
    /// ```
    /// use purgekit_core::{Target, TargetKind};
    /// let t = Target::hostname("cdn.example.com").unwrap();
    /// assert_eq!((t.kind(), t.host()), (TargetKind::Host, Some("cdn.example.com")));
    /// assert!(Target::hostname("https://cdn.example.com/").is_err());
    /// // Spelled as a URL's host is: lower-case, Unicode in punycode.
    /// let t = Target::hostname("B\u{fc}cher.Example").unwrap();
    /// assert_eq!(t.host(), Some("xn--bcher-kva.example"));
    /// ```
    pub fn hostname(name: impl Into<String>) -> Result<Self> {
        let value = name.into();
        check_controls(&value)?;
        check_len(&value, 253, "a host name")?;
        let parsed = (!value.is_empty()
            && !value.contains(['/', ':', '@', '*', '?', '#', '[', ']'])
            && !value.chars().any(char::is_whitespace))
        .then(|| url::Host::parse(&value).ok())
        .flatten();
        let Some(host) = parsed else {
            return Err(Error::invalid(
                &value,
                "a host target is a bare host name (cdn.example.com): no scheme, port, path or \
                 wildcard",
            ));
        };
        Ok(Target::shown(TargetKind::Host, &host.to_string()))
    }

    /// Everything the account's property, service or zone serves.
    pub fn everything() -> Self {
        Target::shown(TargetKind::Everything, "")
    }

    /// Parses the command-line form: `tag:NAME` is a tag, `prefix:URL` a prefix, `host:NAME` a
    /// host, `everything` everything, text containing `*` a pattern; anything else must be an
    /// absolute URL.
    ///
    /// ```
    /// use purgekit_core::{Target, TargetKind};
    /// assert_eq!(Target::parse("tag:homepage").unwrap().kind(), TargetKind::Tag);
    /// assert_eq!(Target::parse("https://cdn.example.com/*.css").unwrap().kind(), TargetKind::Pattern);
    /// assert_eq!(Target::parse("prefix:https://cdn.example.com/css/").unwrap().kind(), TargetKind::Prefix);
    /// assert_eq!(Target::parse("host:cdn.example.com").unwrap().kind(), TargetKind::Host);
    /// assert_eq!(Target::parse("everything").unwrap().kind(), TargetKind::Everything);
    /// assert!(Target::parse("/relative.jpg").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        if let Some(tag) = text.strip_prefix("tag:") {
            Target::tag(tag)
        } else if let Some(prefix) = text.strip_prefix("prefix:") {
            Target::prefix(prefix)
        } else if let Some(host) = text.strip_prefix("host:") {
            Target::hostname(host)
        } else if text == "everything" {
            Ok(Target::everything())
        } else if text.contains('*') {
            Target::pattern(text)
        } else {
            Target::url(text)
        }
    }

    /// A target of `kind` and `value` (already checked), with its shown text.
    fn shown(kind: TargetKind, value: &str) -> Self {
        let text = match kind {
            TargetKind::Url | TargetKind::Pattern => Text::from(value),
            _ => Text::from(format!("{}{value}", kind.shown_prefix())),
        };
        Target { kind, text }
    }

    /// The target as shown (what [`fmt::Display`] writes), shared: cloning it copies no text.
    /// Report rows carry it.
    pub fn shared_text(&self) -> Text {
        self.text.clone()
    }

    /// The kind of target.
    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    /// The tag name exactly as given, the URL, pattern or prefix under core's one
    /// normalisation rule (scheme and host lower-case, Unicode hosts in punycode,
    /// percent-encodings upper-case, non-ASCII characters percent-encoded, nothing decoded),
    /// which every provider maps from, the host name (lower-case, punycode), or empty for
    /// everything.
    pub fn value(&self) -> &str {
        &self.text[self.kind.shown_prefix().len()..]
    }

    /// Whether this target names more than one object by construction (a pattern, prefix, host
    /// or everything): what a provider purges with a wildcard.
    pub fn is_wide(&self) -> bool {
        !matches!(self.kind, TargetKind::Url | TargetKind::Tag)
    }

    /// The host of a URL, pattern or prefix (normalised, so a pattern's may hold `*`), the name
    /// of a host target; `None` for a tag or everything.
    pub fn host(&self) -> Option<&str> {
        match self.kind {
            TargetKind::Tag | TargetKind::Everything => return None,
            TargetKind::Host => return Some(self.value()),
            _ => {}
        }
        let rest = after_scheme(self.value())?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        Some(match host_port.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host_port,
        })
    }

    /// The path and query of a URL, pattern or prefix (`/` when the URL has no path); `None`
    /// for a tag, a host or everything.
    pub fn path_and_query(&self) -> Option<&str> {
        if matches!(
            self.kind,
            TargetKind::Tag | TargetKind::Host | TargetKind::Everything
        ) {
            return None;
        }
        let rest = after_scheme(self.value())?;
        Some(match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            Some(_) | None => "/",
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Invalidate (revalidate on next request) or delete outright.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Mark stale; the edge revalidates with the origin. Every provider's default.
    #[default]
    Invalidate,
    /// Remove from cache unconditionally (Level 3 "forced", Limelight `evict`).
    Delete,
}

/// The options a request can carry, by name, for capability declarations and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionKind {
    /// `Action::Delete` (semantic).
    Delete,
    /// Case-insensitive matching (semantic).
    IgnoreCase,
    /// Include the query string in matching (semantic).
    IncludeQuery,
    /// Notification emails (advisory).
    Notify,
    /// Completion callback URL (advisory).
    Callback,
    /// A free-text note (advisory).
    Note,
    /// Validate without purging: native on some providers, client-side on the others.
    DryRun,
}

impl OptionKind {
    /// Every option, in display order.
    pub const ALL: [OptionKind; 7] = [
        OptionKind::Delete,
        OptionKind::IgnoreCase,
        OptionKind::IncludeQuery,
        OptionKind::Notify,
        OptionKind::Callback,
        OptionKind::Note,
        OptionKind::DryRun,
    ];

    /// Semantic options change what is purged: a provider lacking one must not purge the target.
    /// Advisory ones do not: a provider lacking one purges anyway and warns.
    pub fn is_semantic(self) -> bool {
        matches!(
            self,
            OptionKind::Delete | OptionKind::IgnoreCase | OptionKind::IncludeQuery
        )
    }

    /// The option's user-facing name (the CLI flag without dashes).
    pub fn name(self) -> &'static str {
        match self {
            OptionKind::Delete => "delete",
            OptionKind::IgnoreCase => "ignore-case",
            OptionKind::IncludeQuery => "include-query",
            OptionKind::Notify => "notify",
            OptionKind::Callback => "callback",
            OptionKind::Note => "note",
            OptionKind::DryRun => "dry-run",
        }
    }
}

impl fmt::Display for OptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to purge. Every field defaults to the providers' common default behaviour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// Invalidate or delete.
    pub action: Action,
    /// Match case-insensitively.
    pub ignore_case: bool,
    /// Match the query string too.
    pub include_query: bool,
    /// Email addresses to notify on completion.
    pub notify: Vec<String>,
    /// A URL the provider calls on completion.
    pub callback: Option<String>,
    /// A free-text note stored with the purge.
    pub note: Option<String>,
    /// Validate and plan, but purge nothing.
    pub dry_run: bool,
}

impl Options {
    /// The options this request actually sets, in [`OptionKind::ALL`] order.
    pub fn requested(&self) -> Vec<OptionKind> {
        OptionKind::ALL
            .into_iter()
            .filter(|o| match o {
                OptionKind::Delete => self.action == Action::Delete,
                OptionKind::IgnoreCase => self.ignore_case,
                OptionKind::IncludeQuery => self.include_query,
                OptionKind::Notify => !self.notify.is_empty(),
                OptionKind::Callback => self.callback.is_some(),
                OptionKind::Note => self.note.is_some(),
                OptionKind::DryRun => self.dry_run,
            })
            .collect()
    }

    /// Checks every option (email addresses, callback URL, note), naming the first that
    /// breaks a rule; [`PurgeRequest::new`] does this too.
    pub fn validate(&self) -> Result<()> {
        for email in &self.notify {
            check_email(email)?;
        }
        if let Some(callback) = &self.callback {
            check_http_url(callback, MAX_CALLBACK_LEN)?;
        }
        if let Some(note) = &self.note {
            // A note may span lines, but no other control characters.
            if note.chars().any(|c| c.is_control() && c != '\n') {
                return Err(Error::invalid(
                    note,
                    "a note must not contain control characters other than line feeds",
                ));
            }
            check_len(note, MAX_NOTE_LEN, "a note")?;
        }
        Ok(())
    }
}

/// A validated purge request: one or more targets and the options that apply to all of them.
///
/// ```
/// use purgekit_core::PurgeRequest;
/// let request = PurgeRequest::builder()
///     .url("https://cdn.example.com/app.js")
///     .pattern("https://cdn.example.com/img/*")
///     .notify("ops@example.com")
///     .build()
///     .unwrap();
/// assert_eq!(request.targets().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeRequest {
    /// Shared: a fan-out hands the request to each provider's task without copying a million
    /// targets.
    targets: Arc<[Target]>,
    options: Options,
    wait: Option<Duration>,
    local_dry_run: bool,
}

impl PurgeRequest {
    /// Starts a request.
    pub fn builder() -> PurgeRequestBuilder {
        PurgeRequestBuilder::default()
    }

    /// A request for already-validated targets with the given options.
    pub fn new(targets: Vec<Target>, options: Options) -> Result<Self> {
        if targets.is_empty() {
            return Err(Error::invalid(
                "",
                "a purge request needs at least one target",
            ));
        }
        options.validate()?;
        Ok(PurgeRequest {
            targets: targets.into(),
            options,
            wait: None,
            local_dry_run: false,
        })
    }

    /// The targets, in input order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// How long to wait for completion after acceptance; `None` returns once accepted.
    pub fn wait(&self) -> Option<Duration> {
        self.wait
    }

    /// The same request, waiting up to `timeout` for completion.
    pub fn with_wait(mut self, timeout: Option<Duration>) -> Self {
        self.wait = timeout;
        self
    }

    /// With `local`, a dry run ([`Options::dry_run`]) is validated and planned here for every
    /// provider, sending nothing, even where the provider has a native (server-side) dry run;
    /// without it (the default) a provider's native dry run is used where it has one.
    pub fn with_local_dry_run(mut self, local: bool) -> Self {
        self.local_dry_run = local;
        self
    }

    /// Whether a dry run stays local for every provider ([`PurgeRequest::with_local_dry_run`]).
    pub fn local_dry_run(&self) -> bool {
        self.local_dry_run
    }
}

/// Builds a [`PurgeRequest`]; every input is checked in [`PurgeRequestBuilder::build`] and the
/// first broken rule is returned, naming the input.
#[derive(Debug, Default)]
pub struct PurgeRequestBuilder {
    targets: Vec<Result<Target>>,
    options: Options,
    wait: Option<Duration>,
}

impl PurgeRequestBuilder {
    /// Adds an exact URL.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.targets.push(Target::url(url));
        self
    }

    /// Adds a wildcard pattern.
    pub fn pattern(mut self, pattern: impl Into<String>) -> Self {
        self.targets.push(Target::pattern(pattern));
        self
    }

    /// Adds a cache tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.targets.push(Target::tag(tag));
        self
    }

    /// Adds a URL prefix (see [`Target::prefix`]).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.targets.push(Target::prefix(prefix));
        self
    }

    /// Adds a host (see [`Target::hostname`]).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.targets.push(Target::hostname(host));
        self
    }

    /// Adds everything the account serves (see [`Target::everything`]).
    pub fn everything(mut self) -> Self {
        self.targets.push(Ok(Target::everything()));
        self
    }

    /// Adds a target in the command-line form (see [`Target::parse`]).
    pub fn parse(mut self, text: &str) -> Self {
        self.targets.push(Target::parse(text));
        self
    }

    /// Adds a target.
    pub fn target(mut self, target: Target) -> Self {
        self.targets.push(Ok(target));
        self
    }

    /// Sets the action.
    pub fn action(mut self, action: Action) -> Self {
        self.options.action = action;
        self
    }

    /// Deletes instead of invalidating.
    pub fn delete(self) -> Self {
        self.action(Action::Delete)
    }

    /// Matches case-insensitively.
    pub fn ignore_case(mut self) -> Self {
        self.options.ignore_case = true;
        self
    }

    /// Includes the query string in matching.
    pub fn include_query(mut self) -> Self {
        self.options.include_query = true;
        self
    }

    /// Adds an email address to notify.
    pub fn notify(mut self, email: impl Into<String>) -> Self {
        self.options.notify.push(email.into());
        self
    }

    /// Sets the completion callback URL.
    pub fn callback(mut self, url: impl Into<String>) -> Self {
        self.options.callback = Some(url.into());
        self
    }

    /// Sets a note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.options.note = Some(note.into());
        self
    }

    /// Plans and validates without purging.
    pub fn dry_run(mut self) -> Self {
        self.options.dry_run = true;
        self
    }

    /// Waits up to `timeout` for completion.
    pub fn wait(mut self, timeout: Duration) -> Self {
        self.wait = Some(timeout);
        self
    }

    /// Validates everything and returns the request, or the first broken rule.
    pub fn build(self) -> Result<PurgeRequest> {
        let targets = self.targets.into_iter().collect::<Result<Vec<_>>>()?;
        Ok(PurgeRequest::new(targets, self.options)?.with_wait(self.wait))
    }
}

/// What follows the scheme of a URL, pattern or prefix target's value (checked and normalised:
/// it starts `http://` or `https://`).
fn after_scheme(value: &str) -> Option<&str> {
    value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
}

fn check_controls(value: &str) -> Result<()> {
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            value,
            "control characters (including CR and LF) are not allowed",
        ));
    }
    Ok(())
}

fn check_len(value: &str, max: usize, what: &str) -> Result<()> {
    if value.len() > max {
        let head: String = value.chars().take(60).collect();
        return Err(Error::invalid(
            format!("{head}…"),
            format!(
                "{what} must be at most {max} bytes (this one has {})",
                value.len()
            ),
        ));
    }
    Ok(())
}

fn check_http_url(value: &str, max: usize) -> Result<()> {
    check_controls(value)?;
    check_http_url_with(value, value, max)
}

/// Checks `shown` as an absolute http(s) URL, parsing `parsed` (a wildcard-free stand-in).
fn check_http_url_with(shown: &str, parsed: &str, max: usize) -> Result<()> {
    check_len(shown, max, "a URL")?;
    if shown.chars().any(char::is_whitespace) {
        return Err(Error::invalid(
            shown,
            "a URL must not contain white space (percent-encode it as %20)",
        ));
    }
    let url = url::Url::parse(parsed).map_err(|e| {
        Error::invalid(
            shown,
            format!("must be an absolute http:// or https:// URL ({e})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid(
            shown,
            format!("the scheme must be http or https, not `{}`", url.scheme()),
        ));
    }
    // Check the host as written: the parser would turn `http:///a.jpg` into host `a.jpg`
    // and accept `https:a.example` without its `//`.
    let written_host = parsed
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
    if url.host_str().is_none_or(str::is_empty) || written_host.is_none_or(str::is_empty) {
        return Err(Error::invalid(
            shown,
            "a URL must be absolute (scheme://host/path) and name a host",
        ));
    }
    if url.fragment().is_some() {
        return Err(Error::invalid(
            shown,
            "a URL must not have a #fragment (it is never sent to a CDN)",
        ));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<()> {
    check_controls(email)?;
    check_len(email, MAX_EMAIL_LEN, "an email address")?;
    let malformed = || Error::invalid(email, "not a valid email address (name@domain.tld)");
    let bad_char = |c: char| c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>');
    let (local, domain) = email.split_once('@').ok_or_else(malformed)?;
    if local.is_empty()
        || domain.contains('@')
        || email.chars().any(bad_char)
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(malformed());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_of(result: Result<impl fmt::Debug>) -> String {
        match result.unwrap_err() {
            Error::InvalidInput { input, rule } => format!("{input} | {rule}"),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_three_target_kinds() {
        let r = PurgeRequest::builder()
            .url("https://cdn.example.com/a.jpg?v=1")
            .pattern("http://*.example.com/images/*")
            .tag("product-42")
            .build()
            .unwrap();
        let kinds: Vec<_> = r.targets().iter().map(Target::kind).collect();
        assert_eq!(
            kinds,
            [TargetKind::Url, TargetKind::Pattern, TargetKind::Tag]
        );
        assert_eq!(r.targets()[2].to_string(), "tag:product-42");
    }

    #[test]
    fn relative_url_is_rejected_naming_it() {
        let msg = rule_of(Target::url("/images/a.jpg"));
        assert!(
            msg.starts_with("/images/a.jpg | must be an absolute"),
            "{msg}"
        );
    }

    #[test]
    fn non_http_scheme_is_rejected() {
        let msg = rule_of(Target::url("ftp://example.com/a.jpg"));
        assert!(msg.contains("scheme must be http or https"), "{msg}");
    }

    #[test]
    fn url_without_host_is_rejected() {
        assert!(rule_of(Target::url("http:///a.jpg")).contains("name a host"));
        assert!(rule_of(Target::url("https:a.example/x")).contains("name a host"));
        assert!(rule_of(Target::url("https://")).contains("https://"));
    }

    #[test]
    fn fragment_is_rejected() {
        assert!(rule_of(Target::url("https://a.example/x#top")).contains("#fragment"));
    }

    #[test]
    fn exact_url_with_star_is_rejected() {
        assert!(rule_of(Target::url("https://a.example/*.jpg")).contains("pattern"));
    }

    #[test]
    fn pattern_without_star_is_rejected() {
        assert!(rule_of(Target::pattern("https://a.example/x.jpg")).contains("must contain `*`"));
    }

    #[test]
    fn relative_pattern_is_rejected() {
        assert!(rule_of(Target::pattern("/images/*")).contains("absolute"));
    }

    #[test]
    fn empty_target_list_is_rejected() {
        let msg = rule_of(PurgeRequest::builder().build());
        assert!(msg.contains("at least one target"), "{msg}");
    }

    #[test]
    fn cr_lf_and_other_controls_are_rejected_everywhere() {
        assert!(rule_of(Target::url("https://a.example/x\r\nHost: evil")).contains("\\r\\n"));
        assert!(rule_of(Target::pattern("https://a.example/\t*")).contains("control"));
        assert!(rule_of(Target::tag("a\u{7}b")).contains("control"));
        assert!(
            rule_of(
                PurgeRequest::builder()
                    .url("https://a.example/")
                    .notify("a@b.com\n")
                    .build()
            )
            .contains("control")
        );
        assert!(
            rule_of(
                PurgeRequest::builder()
                    .url("https://a.example/")
                    .note("line\r")
                    .build()
            )
            .contains("control")
        );
        assert!(
            PurgeRequest::builder()
                .url("https://a.example/")
                .note("two\nlines")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn over_long_values_are_rejected() {
        let long_url = format!("https://a.example/{}", "x".repeat(MAX_TARGET_LEN));
        assert!(rule_of(Target::url(long_url)).contains("at most 8192 bytes"));
        assert!(rule_of(Target::tag("t".repeat(MAX_TAG_LEN + 1))).contains("at most 1024"));
        let note = "n".repeat(MAX_NOTE_LEN + 1);
        assert!(
            rule_of(
                PurgeRequest::builder()
                    .url("https://a.example/")
                    .note(note)
                    .build()
            )
            .contains("a note must be at most")
        );
        let callback = format!("https://cb.example/{}", "c".repeat(MAX_CALLBACK_LEN));
        assert!(
            rule_of(
                PurgeRequest::builder()
                    .url("https://a.example/")
                    .callback(callback)
                    .build()
            )
            .contains("at most 2048")
        );
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "ops",
            "@example.com",
            "ops@",
            "ops@localhost",
            "a b@x.com",
            "a@x..com",
            "a@@x.com",
            "a@x.com,b@y.com",
        ] {
            let r = PurgeRequest::builder()
                .url("https://a.example/")
                .notify(bad)
                .build();
            let msg = rule_of(r);
            assert!(msg.contains("not a valid email"), "{bad}: {msg}");
        }
        assert!(
            PurgeRequest::builder()
                .url("https://a.example/")
                .notify("ops+cdn@example.co.uk")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn callback_must_be_http() {
        let r = PurgeRequest::builder()
            .url("https://a.example/")
            .callback("mailto:x@y.z")
            .build();
        assert!(rule_of(r).contains("scheme"));
    }

    #[test]
    fn whitespace_and_empty_tags_are_rejected() {
        assert!(rule_of(Target::tag("")).contains("empty"));
        assert!(rule_of(Target::tag("a b")).contains("white space"));
        assert!(rule_of(Target::url("https://a.example/a b.jpg")).contains("%20"));
    }

    #[test]
    fn parse_follows_the_cli_rules() {
        assert_eq!(Target::parse("tag:x").unwrap(), Target::tag("x").unwrap());
        assert_eq!(
            Target::parse("https://a.example/*").unwrap().kind(),
            TargetKind::Pattern
        );
        assert_eq!(
            Target::parse("https://a.example/").unwrap().kind(),
            TargetKind::Url
        );
    }

    #[test]
    fn equivalent_spellings_are_one_target() {
        let a = Target::url("https://Bücher.example/caf%c3%a9.jpg?v=%7e").unwrap();
        let b = Target::url("https://xn--bcher-kva.example/café.jpg?v=%7E").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.value(),
            "https://xn--bcher-kva.example/caf%C3%A9.jpg?v=%7E"
        );
        assert_eq!(a.host(), Some("xn--bcher-kva.example"));
        let p = Target::pattern("https://Bücher.example/é/*").unwrap();
        assert_eq!(p.value(), "https://xn--bcher-kva.example/%C3%A9/*");
    }

    #[test]
    fn credentials_are_refused_and_never_shown() {
        for text in [
            "https://deploy:hunter2@cdn.example.com/app.js",
            "https://deploy:hunter2@cdn.example.com/*.js",
            "https://deploy:hunter2@cdn.example.com/a b.js\n",
        ] {
            let msg = rule_of(Target::parse(text));
            assert!(!msg.contains("hunter2"), "{msg}");
            assert!(msg.contains("credentials"), "{msg}");
        }
        let long = format!("https://u:hunter2@a.example/{}", "x".repeat(MAX_TARGET_LEN));
        assert!(!rule_of(Target::url(long)).contains("hunter2"));
    }

    #[test]
    fn host_and_path_are_taken_normalised() {
        let t = Target::url("https://Cdn.Example.com:8443/a/b.jpg?x=1").unwrap();
        assert_eq!(t.host(), Some("cdn.example.com"));
        assert_eq!(t.path_and_query(), Some("/a/b.jpg?x=1"));
        let t = Target::url("https://a.example?x=1").unwrap();
        assert_eq!(t.path_and_query(), Some("/"));
        let p = Target::pattern("http://*.example.com/images/*").unwrap();
        assert_eq!(p.host(), Some("*.example.com"));
        assert_eq!(p.path_and_query(), Some("/images/*"));
        assert_eq!(Target::tag("x").unwrap().host(), None);
    }

    #[test]
    fn prefix_host_and_everything_rules() {
        let p = Target::parse("prefix:https://cdn.example.com/img/").unwrap();
        assert_eq!(p.kind(), TargetKind::Prefix);
        assert_eq!(p.host(), Some("cdn.example.com"));
        assert_eq!(p.path_and_query(), Some("/img/"));
        assert_eq!(
            Target::prefix("https://cdn.example.com/")
                .unwrap()
                .path_and_query(),
            Some("/")
        );
        assert!(rule_of(Target::prefix("https://cdn.example.com/img")).contains("end with `/`"));
        assert!(rule_of(Target::prefix("https://cdn.example.com")).contains("end with `/`"));
        assert!(rule_of(Target::prefix("https://a.example/i/*/")).contains("`*`"));
        assert!(rule_of(Target::prefix("https://a.example/i/?x=1")).contains("query"));
        assert!(rule_of(Target::prefix("/img/")).contains("absolute"));
        assert!(rule_of(Target::prefix("https://a.example/i/#x")).contains("fragment"));

        let h = Target::parse("host:cdn.example.com").unwrap();
        assert_eq!(h.kind(), TargetKind::Host);
        assert_eq!(h.host(), Some("cdn.example.com"));
        assert_eq!(h.path_and_query(), None);
        assert_eq!(h.to_string(), "host:cdn.example.com");
        for bad in [
            "",
            "https://cdn.example.com",
            "cdn.example.com/x",
            "cdn.example.com:8080",
            "*.example.com",
            "a b",
            "user@cdn.example.com",
        ] {
            assert!(
                rule_of(Target::hostname(bad)).contains("bare host name"),
                "{bad}"
            );
        }
        assert!(rule_of(Target::hostname("a\nb")).contains("control"));

        let e = Target::parse("everything").unwrap();
        assert_eq!(
            (e.kind(), e.host(), e.path_and_query()),
            (TargetKind::Everything, None, None)
        );
        assert_eq!(e.to_string(), "everything");
        assert!(e.is_wide() && h.is_wide() && p.is_wide());
        assert!(!Target::parse("tag:x").unwrap().is_wide());
        // `everything` is a word, not a prefix of one: anything else is read as a URL.
        assert!(Target::parse("everything-else").is_err());
        let r = PurgeRequest::builder()
            .prefix("https://a.example/d/")
            .host("a.example")
            .everything()
            .build()
            .unwrap();
        let kinds: Vec<_> = r.targets().iter().map(Target::kind).collect();
        assert_eq!(
            kinds,
            [TargetKind::Prefix, TargetKind::Host, TargetKind::Everything]
        );
    }

    proptest::proptest! {
        /// Every target's command-line form parses back to the same target.
        #[test]
        fn display_parses_back(
            host in "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){1,2}",
            dir in "(/[a-zA-Z0-9._-]{1,8}){0,3}",
            which in 0..6u8,
        ) {
            let target = match which {
                0 => Target::url(format!("https://{host}{dir}/x.js")),
                1 => Target::pattern(format!("https://{host}{dir}/*")),
                2 => Target::tag(format!("{host}{dir}")),
                3 => Target::prefix(format!("https://{host}{dir}/")),
                4 => Target::hostname(host.clone()),
                _ => Ok(Target::everything()),
            }.unwrap();
            proptest::prop_assert_eq!(Target::parse(&target.to_string()).unwrap(), target);
        }
    }

    #[test]
    fn requested_lists_the_set_options() {
        let r = PurgeRequest::builder()
            .url("https://a.example/")
            .delete()
            .note("deploy 42")
            .build()
            .unwrap();
        assert_eq!(
            r.options().requested(),
            [OptionKind::Delete, OptionKind::Note]
        );
    }
}
