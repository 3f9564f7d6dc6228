//! What the emulator records, its token buckets ([`crate::bucket`]) and the global API window.

use crate::bucket::{Bucket, FixedWindow};

/// One accepted value of a purge (a URL, tag, host, prefix, or everything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    /// The body field: `files`, `tags`, `hosts`, `prefixes` or `purge_everything`.
    pub field: &'static str,
    /// The value as sent (a file's `url` for the object form; the zone id for everything).
    pub value: String,
    /// The request headers given with a file in the object form (`CF-Device-Type`…).
    pub headers: Vec<(String, String)>,
    /// Sent to `invalidate_cache` (mark stale) rather than `purge_cache` (remove).
    pub invalidate: bool,
    /// The environment of an `/environments/{id}/purge_cache` call.
    pub environment: Option<String>,
}

/// Everything it records.
pub(super) struct Ledger {
    pub purges: Vec<Purge>,
    /// Tag, host, prefix and everything purges: one token a request.
    pub purge_bucket: Bucket,
    /// Single-file purges: one token a URL.
    pub files_bucket: Bucket,
    pub global: FixedWindow,
    /// Requests refused with 429.
    pub rejections: usize,
}
