//! What every provider's configuration shares, deserialized the same way for all: [`Secret`]s,
//! [`RateLimit`] overrides and durations (`90s`, `5m`, `1h 30m`, `250ms`; a bare number is
//! seconds). A provider crate's `Config` derives `serde::Deserialize` with
//! `#[serde(deny_unknown_fields)]` and uses these for its fields.
//!
//! ```
//! use std::time::Duration;
//! use purgekit_core::{Budget, RateLimit, Secret};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Account {
//!     token: Secret,
//!     rate_limit: Option<RateLimit>,
//!     #[serde(default, with = "purgekit_core::duration")]
//!     timeout: Option<Duration>,
//! }
//!
//! let a: Account = serde_json::from_str(
//!     r#"{"token": "t0k3n", "rate_limit": {"requests": 10, "per": "1m"}, "timeout": "90s"}"#,
//! )
//! .unwrap();
//! assert_eq!(a.token.expose(), "t0k3n");
//! assert_eq!(a.rate_limit.unwrap().requests, Some(Budget::per_minute(10)));
//! assert_eq!(a.timeout, Some(Duration::from_secs(90)));
//! // A secret of the wrong type is refused without its value.
//! let err = serde_json::from_str::<Account>(r#"{"token": 123456}"#).err().unwrap();
//! assert!(!err.to_string().contains("123456"), "{err}");
//! ```

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::error::{Error, Result as CoreResult};
use crate::limits::{Budget, RateLimit, TokenBucket};
use crate::provider::Secret;

/// The window of a `rate_limit` without `per`.
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

/// Parses a duration: `90s`, `5m`, `1h30m`, `1h 30m`, `250ms`; a bare number is seconds.
/// [`format_duration`] writes what this reads.
///
/// ```
/// use std::time::Duration;
/// use purgekit_core::{format_duration, parse_duration};
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
/// assert!(parse_duration("soon").is_err());
/// let d = Duration::from_millis(61_250);
/// assert_eq!(parse_duration(&format_duration(d)), Ok(d));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if let Ok(secs) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(trimmed).map_err(|e| {
        format!(
            "`{}` is not a duration ({e}): use a number of seconds or a number with a unit, e.g. 90s, 5m, 1h 30m, 500ms",
            text.escape_default()
        )
    })
}

/// Writes `d` the way [`parse_duration`] reads it (`1m 30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// `#[serde(with = "purgekit_core::duration")]` for `Duration` and `Option<Duration>` fields
/// (with `#[serde(default)]` for the option): reads [`parse_duration`]'s forms, writes
/// [`format_duration`]'s.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// A duration field, or an optional one.
    pub trait Field: Sized {
        /// Reads the field.
        fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
        /// Writes the field.
        fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
    }

    impl Field for Duration {
        fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let text = super::DurationText::deserialize(d)?;
            super::parse_duration(&text.0).map_err(serde::de::Error::custom)
        }
        fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&super::format_duration(*self))
        }
    }

    impl Field for Option<Duration> {
        fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Duration::read(d).map(Some)
        }
        fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                Some(d) => d.write(s),
                None => s.serialize_none(),
            }
        }
    }

    /// Deserializes a duration field.
    pub fn deserialize<'de, D: Deserializer<'de>, T: Field>(d: D) -> Result<T, D::Error> {
        T::read(d)
    }

    /// Serializes a duration field.
    pub fn serialize<S: Serializer, T: Field>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        value.write(s)
    }
}

/// A duration as written: a string, or a whole number of seconds.
struct DurationText(String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"90s\", \"5m\" or \"250ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationText, E> {
                Ok(DurationText(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A secret is a non-empty string. A value of any other type is refused without being shown
/// (serde's own message would quote an integer secret).
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl V {
            fn refuse<E: de::Error>(found: &str) -> Result<Secret, E> {
                Err(E::custom(format!(
                    "expected a string, found {found} (a secret's value is not shown)"
                )))
            }
        }
        impl<'a> Visitor<'a> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                if v.is_empty() {
                    return Err(E::custom("must not be empty"));
                }
                Ok(Secret::new(v))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
                Self::refuse("a boolean")
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
                Self::refuse("an integer")
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
                Self::refuse("an integer")
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
                Self::refuse("a float")
            }
            fn visit_seq<A: de::SeqAccess<'a>>(self, _: A) -> Result<Secret, A::Error> {
                Self::refuse("an array")
            }
            fn visit_map<A: de::MapAccess<'a>>(self, _: A) -> Result<Secret, A::Error> {
                Self::refuse("a table")
            }
        }
        d.deserialize_any(V)
    }
}

/// An API token from the provider table's `key`, else from the environment variable `var`
/// (read through `env`), as the vendor's own tools read it. Neither is a config error naming
/// both; an empty token, or one an HTTP header cannot carry (white space, control or non-ASCII
/// characters), is a config error. The token is never shown.
///
/// ```
/// use purgekit_core::{Secret, token_or_env};
/// let env = |v: &str| (v == "ACME_TOKEN").then(|| "from-env".to_owned());
/// assert_eq!(token_or_env("api_token", None, "ACME_TOKEN", "Acme", env).unwrap().expose(), "from-env");
/// let given = Some(Secret::new("from-table"));
/// assert_eq!(token_or_env("api_token", given, "ACME_TOKEN", "Acme", env).unwrap().expose(), "from-table");
/// let err = token_or_env("api_token", None, "ACME_TOKEN", "Acme", |_| None).unwrap_err().to_string();
/// assert!(err.contains("api_token") && err.contains("ACME_TOKEN"));
/// let bad = token_or_env("api_token", Some(Secret::new("two words")), "ACME_TOKEN", "Acme", env);
/// assert!(!bad.unwrap_err().to_string().contains("two words"));
/// ```
pub fn token_or_env(
    key: &str,
    given: Option<Secret>,
    var: &str,
    vendor: &str,
    env: impl Fn(&str) -> Option<String>,
) -> CoreResult<Secret> {
    let token = match given {
        Some(token) if !token.expose().trim().is_empty() => token,
        Some(_) => return Err(Error::config(key, "is empty")),
        None => env(var)
            .filter(|t| !t.trim().is_empty())
            .map(Secret::new)
            .ok_or_else(|| {
                Error::config(
                    key,
                    format!(
                        "no {vendor} API token: set `{key}` in the provider table, or the {var} \
                         environment variable"
                    ),
                )
            })?,
    };
    if token.expose().bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(Error::config(
            key,
            "holds characters an HTTP header cannot carry (white space, control or non-ASCII)",
        ));
    }
    Ok(token)
}

/// One token bucket as a config table overrides it: `{ burst = 10000, refill = 200, per =
/// "1s" }` holds `burst` tokens and regains `refill` every `per` (Akamai's `buckets`,
/// Cloudflare's `purge_bucket`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    /// The most tokens it holds.
    pub burst: u32,
    /// Tokens regained every `per`.
    pub refill: u32,
    /// The refill period (`"1s"`, `"1m"`, `"250ms"`).
    #[serde(with = "duration")]
    pub per: Duration,
}

impl BucketConfig {
    /// Sets `bucket`'s burst and refill to these; a zero figure is a config error naming
    /// `key` and the figure (`buckets.url.refill`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use purgekit_core::{BucketConfig, BucketUnit, Budget, TokenBucket};
    /// let mut bucket = TokenBucket {
    ///     unit: BucketUnit::Requests,
    ///     scopes: vec![],
    ///     burst: 1,
    ///     refill: Budget::per_minute(1),
    /// };
    /// let given = BucketConfig { burst: 25, refill: 5, per: Duration::from_secs(60) };
    /// given.apply("purge_bucket", &mut bucket).unwrap();
    /// assert_eq!((bucket.burst, bucket.refill), (25, Budget::per_minute(5)));
    /// let zero = BucketConfig { refill: 0, ..given };
    /// assert!(zero.apply("purge_bucket", &mut bucket).unwrap_err().to_string().contains("purge_bucket.refill"));
    /// ```
    pub fn apply(&self, key: &str, bucket: &mut TokenBucket) -> CoreResult<()> {
        for (figure, zero) in [
            ("burst", self.burst == 0),
            ("refill", self.refill == 0),
            ("per", self.per.is_zero()),
        ] {
            if zero {
                return Err(Error::config(
                    format!("{key}.{figure}"),
                    "must be more than zero",
                ));
            }
        }
        bucket.burst = self.burst;
        bucket.refill = Budget::new(self.refill, self.per);
        Ok(())
    }
}

/// `rate_limit = { requests = 10, items = 600, per = "1m" }`: at least one of `requests` and
/// `items`, each a positive whole number per `per` (default one minute).
impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            #[serde(default, deserialize_with = "positive")]
            requests: Option<u32>,
            #[serde(default, deserialize_with = "positive")]
            items: Option<u32>,
            #[serde(default, with = "duration")]
            per: Option<Duration>,
        }
        let t = Table::deserialize(d)?;
        let per = t.per.unwrap_or(DEFAULT_RATE_WINDOW);
        if per.is_zero() {
            return Err(de::Error::custom(
                "the window `per` must be longer than zero",
            ));
        }
        if t.requests.is_none() && t.items.is_none() {
            return Err(de::Error::custom(
                "a rate limit needs `requests`, `items` or both",
            ));
        }
        Ok(RateLimit {
            requests: t.requests.map(|n| Budget::new(n, per)),
            items: t.items.map(|n| Budget::new(n, per)),
        })
    }
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a positive whole number")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u32>, E> {
            match u32::try_from(v) {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(E::custom(format!(
                    "expected a positive whole number, found {v}"
                ))),
            }
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u32>, E> {
            self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
        }
    }
    d.deserialize_any(V)
}

impl fmt::Display for RateLimit {
    /// `10 requests per 1m, 600 items per 1m` (or `no published limit`), durations as the
    /// config reads them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(b) = self.requests {
            parts.push(format!(
                "{} requests per {}",
                b.amount,
                format_duration(b.per)
            ));
        }
        if let Some(b) = self.items {
            parts.push(format!("{} items per {}", b.amount, format_duration(b.per)));
        }
        if parts.is_empty() {
            f.write_str("no published limit")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(json: &str) -> Result<RateLimit, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn rate_limit_rules() {
        let r = rate(r#"{"requests": 10, "items": 600, "per": "1m"}"#).unwrap();
        assert_eq!(r.requests, Some(Budget::per_minute(10)));
        assert_eq!(r.items, Some(Budget::per_minute(600)));
        assert_eq!(
            rate(r#"{"items": 3}"#).unwrap().items,
            Some(Budget::per_minute(3))
        );
        for (bad, needle) in [
            (r#"{"per": "60s"}"#, "needs `requests`, `items` or both"),
            (r#"{"requests": 0}"#, "positive whole number, found 0"),
            (r#"{"requests": -3}"#, "positive whole number, found -3"),
            (r#"{"requests": "ten"}"#, "a positive whole number"),
            (r#"{"requests": 1, "per": "0s"}"#, "longer than zero"),
            (r#"{"requests": 1, "per": "a minute"}"#, "not a duration"),
            (
                r#"{"requests": 1, "window": "1s"}"#,
                "unknown field `window`",
            ),
            ("5", "invalid type"),
        ] {
            let err = rate(bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_round_trip() {
        let d = |s: &str| parse_duration(s);
        assert_eq!(d("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(d("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(d("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(d("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(d("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(d("45"), Ok(Duration::from_secs(45)));
        assert_eq!(d(" 10s "), Ok(Duration::from_secs(10)));
        for bad in ["", "s", "10x", "-1s", "m5", "99999999999999999999h"] {
            assert!(d(bad).is_err(), "{bad}");
        }
        for ms in [1, 250, 1000, 1500, 60_000, 90_000, 3_600_000, 86_400_123] {
            let x = Duration::from_millis(ms);
            assert_eq!(d(&format_duration(x)), Ok(x), "{}", format_duration(x));
        }
    }

    #[test]
    fn secrets_refuse_other_types_without_the_value() {
        let s: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(s.expose(), "hunter2");
        for (bad, value) in [
            ("123456789", "123456789"),
            ("-987", "987"),
            ("1.25", "1.25"),
            ("true", "true"),
            ("[\"pw-in-array\"]", "pw-in-array"),
            ("{\"a\":\"pw-in-table\"}", "pw-in-table"),
        ] {
            let err = serde_json::from_str::<Secret>(bad)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("value is not shown"), "{bad}: {err}");
            assert!(!err.contains(value), "{bad}: {err}");
        }
        let err = serde_json::from_str::<Secret>("\"\"").err().unwrap();
        assert!(err.to_string().contains("must not be empty"), "{err}");
    }

    #[test]
    fn rate_limit_displays_round_trip_durations() {
        let r = RateLimit {
            requests: Some(Budget::new(10, Duration::from_millis(600))),
            items: None,
        };
        assert_eq!(r.to_string(), "10 requests per 600ms");
        assert_eq!(RateLimit::default().to_string(), "no published limit");
    }
}
