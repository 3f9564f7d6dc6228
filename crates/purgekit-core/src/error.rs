//! One error type for every provider, classified into kinds the engine acts on.
//!
//! Providers only *classify* (in their decoders); the engine alone decides what to retry,
//! from [`Error::is_retryable`] and [`Error::retry_after`].

use std::time::Duration;

/// Everything that can go wrong while validating, planning, sending or decoding a purge.
///
/// No variant ever carries a secret: providers build messages from response bodies and
/// non-secret inputs only. Messages keep the provider's text as it came; `Display` shows its
/// control characters escaped (`\u{1b}`, `\n`), so a hostile server's ESC or newline can
/// neither drive a terminal nor forge a log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller's input breaks a rule; nothing was sent.
    #[error("invalid input `{input}`: {}", Escaped(.rule))]
    InvalidInput {
        /// The offending input, as given (control characters escaped).
        input: String,
        /// The rule it broke.
        rule: String,
    },
    /// A configuration value is missing or wrong.
    #[error("invalid configuration `{}`: {}", Escaped(.field), Escaped(.message))]
    Config {
        /// The field, e.g. `providers.eu.shared_key`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The provider cannot do what was asked (a target kind or a semantic option it lacks).
    #[error("unsupported: {}", Escaped(.reason))]
    Unsupported {
        /// Why, in the provider's terms.
        reason: String,
    },
    /// Credentials were refused (bad key, bad signature, bad password, clock skew).
    #[error("authentication failed: {}", Escaped(.message))]
    Auth {
        /// The provider's explanation.
        message: String,
    },
    /// The provider refuses for rate; try again after `retry_after` if known.
    #[error("rate limited by the provider{}: {}", fmt_after(*.retry_after), Escaped(.message))]
    RateLimited {
        /// How long the provider asks us to wait, when it says.
        retry_after: Option<Duration>,
        /// The provider's explanation.
        message: String,
    },
    /// A failure that may pass: 5xx, connection reset, timeout.
    #[error("transient failure{}: {}", fmt_after(*.retry_after), Escaped(.message))]
    Transient {
        /// How long the provider asks us to wait, when it says (`Retry-After` on a 503).
        retry_after: Option<Duration>,
        /// What happened.
        message: String,
    },
    /// The provider understood the request and refused it.
    #[error("rejected by the provider (code {}): {}", Escaped(.code), Escaped(.message))]
    Rejected {
        /// The provider's error code (e.g. `21732`, `1041`, `30001`), or the HTTP status.
        code: String,
        /// The provider's message.
        message: String,
    },
    /// The response could not be understood.
    #[error("protocol error: {}", Escaped(.message))]
    Protocol {
        /// What was wrong with the response.
        message: String,
    },
    /// The run's deadline ([`crate::EngineConfig::deadline`]) came, or a wait it needed would
    /// have ended past it: nothing more was attempted. The message says what was waited for.
    #[error("{}", Escaped(.message))]
    Deadline {
        /// What would have passed the deadline, with the last error if there was one.
        message: String,
    },
    /// The purge was cancelled before this batch was sent.
    #[error("cancelled before sending")]
    Cancelled,
    /// The journal ([`crate::RunLog`]) could not be read or written: a purge stops before
    /// sending what it could not record.
    #[error("journal: {}", Escaped(.message))]
    Journal {
        /// What failed, naming the journal (never its password).
        message: String,
    },
}

fn fmt_after(after: Option<Duration>) -> String {
    match after {
        Some(d) => format!(" (retry after {:.3}s)", d.as_secs_f64()),
        None => String::new(),
    }
}

impl Error {
    /// An [`Error::InvalidInput`] naming `input` (with control characters escaped) and `rule`.
    pub fn invalid(input: impl AsRef<str>, rule: impl Into<String>) -> Self {
        Error::InvalidInput {
            input: escape_controls(input.as_ref()),
            rule: rule.into(),
        }
    }

    /// An [`Error::Config`] naming `field`.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An [`Error::Protocol`].
    pub fn protocol(message: impl Into<String>) -> Self {
        Error::Protocol {
            message: message.into(),
        }
    }

    /// An [`Error::Transient`] with no retry hint.
    pub fn transient(message: impl Into<String>) -> Self {
        Error::Transient {
            retry_after: None,
            message: message.into(),
        }
    }

    /// An [`Error::Rejected`].
    pub fn rejected(code: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Rejected {
            code: code.into(),
            message: message.into(),
        }
    }

    /// An [`Error::Deadline`].
    pub fn deadline(message: impl Into<String>) -> Self {
        Error::Deadline {
            message: message.into(),
        }
    }

    /// An [`Error::Auth`].
    pub fn auth(message: impl Into<String>) -> Self {
        Error::Auth {
            message: message.into(),
        }
    }

    /// Whether sending the same request again may succeed (rate limits, 5xx, timeouts).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::RateLimited { .. } | Error::Transient { .. })
    }

    /// The wait the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } | Error::Transient { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A short stable name for the kind, for reports and JSON (`auth`, `rate_limited`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_input",
            Error::Config { .. } => "config",
            Error::Unsupported { .. } => "unsupported",
            Error::Auth { .. } => "auth",
            Error::RateLimited { .. } => "rate_limited",
            Error::Transient { .. } => "transient",
            Error::Rejected { .. } => "rejected",
            Error::Protocol { .. } => "protocol",
            Error::Deadline { .. } => "deadline",
            Error::Cancelled => "cancelled",
            Error::Journal { .. } => "journal",
        }
    }

    /// Whether the error is the caller's (input or configuration): nothing was sent.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::InvalidInput { .. } | Error::Config { .. })
    }
}

/// Shows a string with its control characters escaped, without allocating when it has none.
struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                std::fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// Escapes control characters (as `\\n`, `\\u{1b}`, …) so provider-supplied text shows exactly
/// where they are and cannot forge lines or drive a terminal.
///
/// ```
/// assert_eq!(purgekit_core::escape_controls("a\x1b[2Jb\n"), "a\\u{1b}[2Jb\\n");
/// ```
pub fn escape_controls(s: &str) -> String {
    Escaped(s).to_string()
}

/// The start of a response body for an error message, as providers' decoders quote it: trimmed,
/// at most [`SNIPPET_CHARS`] characters (then `…`), control characters escaped so a body's
/// CR/LF cannot forge lines in logs. Empty for an empty body.
///
/// ```
/// assert_eq!(purgekit_core::snippet(b"  <html>\r\nBad Gateway\n"), "<html>\\r\\nBad Gateway");
/// assert!(purgekit_core::snippet(&[b'x'; 500]).ends_with('…'));
/// ```
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let head: String = text.chars().take(SNIPPET_CHARS).collect();
    let mut out = escape_controls(&head);
    if text.chars().nth(SNIPPET_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// How much of a body [`snippet`] quotes.
pub const SNIPPET_CHARS: usize = 120;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rate_limits_and_transients_are_retryable() {
        let after = Some(Duration::from_secs(3));
        assert!(
            Error::RateLimited {
                retry_after: after,
                message: "x".into()
            }
            .is_retryable()
        );
        assert!(Error::transient("reset").is_retryable());
        assert!(!Error::auth("bad key").is_retryable());
        assert!(!Error::rejected("21732", "too many paths").is_retryable());
        assert!(!Error::protocol("not xml").is_retryable());
        assert!(!Error::invalid("x", "y").is_retryable());
    }

    #[test]
    fn invalid_input_escapes_control_characters() {
        let e = Error::invalid("/a\r\nb", "no CR or LF");
        assert_eq!(e.to_string(), "invalid input `/a\\r\\nb`: no CR or LF");
    }

    #[test]
    fn provider_text_is_shown_escaped_and_kept_raw() {
        let e = Error::protocol("got <\u{1b}[31mevil\nINFO forged>");
        assert_eq!(
            e.to_string(),
            "protocol error: got <\\u{1b}[31mevil\\nINFO forged>"
        );
        assert!(matches!(&e, Error::Protocol { message } if message.contains('\u{1b}')));
        for e in [
            Error::auth("\r"),
            Error::rejected("c\n", "m\u{7}"),
            Error::transient("\u{1b}"),
            Error::RateLimited {
                retry_after: None,
                message: "\n".into(),
            },
            Error::Unsupported {
                reason: "\t".into(),
            },
            Error::config("f\n", "m\n"),
        ] {
            assert!(!e.to_string().chars().any(char::is_control), "{e:?}");
        }
    }

    #[test]
    fn retry_after_is_shown() {
        let e = Error::RateLimited {
            retry_after: Some(Duration::from_millis(1500)),
            message: "mpeRequestRateTooHigh".into(),
        };
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
        assert!(e.to_string().contains("retry after 1.500s"));
    }
}
