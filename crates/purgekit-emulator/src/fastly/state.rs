//! What the emulator records (purges, refusals) and its hourly write window.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::bucket::FixedWindow;

/// One accepted purge, one entry per URL, key or purge-all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    /// The purge id answered (`108-…`; empty for purge-all, which has none).
    pub id: String,
    /// `url`, `key` or `all`.
    pub call: &'static str,
    /// The URL as sent (`host/path?query`), the key, or the service id.
    pub value: String,
    /// Whether `Fastly-Soft-Purge` was sent (never for purge-all, which cannot be soft).
    pub soft: bool,
    /// `Fastly-Purge-Environment` (`staging`), if sent.
    pub environment: Option<String>,
}

/// Everything it records.
#[derive(Debug)]
pub(super) struct Ledger {
    pub purges: Vec<Purge>,
    pub writes: FixedWindow,
    /// Requests refused with 429.
    pub rejections: usize,
    next_id: u64,
}

impl Ledger {
    pub fn new(writes: FixedWindow) -> Self {
        Ledger {
            purges: Vec::new(),
            writes,
            rejections: 0,
            next_id: 0,
        }
    }

    /// A purge id shaped like Fastly's: `108-{epoch seconds}-{counter}`.
    pub fn id(&mut self) -> String {
        self.next_id += 1;
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        format!("108-{epoch}-{}", self.next_id)
    }
}
