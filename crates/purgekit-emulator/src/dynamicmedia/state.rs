//! What the emulator records: calls, purged URLs and each invalidation's clock.

use super::*;

/// Everything the emulated service remembers.
#[derive(Debug, Default)]
pub(super) struct Recorded {
    pub(super) invalidation_calls: usize,
    pub(super) status_calls: usize,
    pub(super) purged: Vec<String>,
    pub(super) invalidations: HashMap<String, Invalidation>,
    pub(super) next_id: u64,
    pub(super) soap_faults: VecDeque<SoapFault>,
}

/// When an invalidation was accepted, on tokio's clock and the wall clock.
#[derive(Debug, Clone, Copy)]
pub(super) struct Invalidation {
    pub(super) accepted_at: Instant,
    pub(super) accepted_wall: SystemTime,
}
