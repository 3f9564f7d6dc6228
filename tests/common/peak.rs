//! Peak resident memory, for the benchmarks: Linux's `VmHWM`, reset through
//! `/proc/self/clear_refs` (0 and no-ops off Linux).

/// Resets the kernel's peak-RSS counter (`VmHWM`) to the current RSS; a no-op off Linux.
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A `kB` field of `/proc/self/status`, in kB (0 off Linux).
pub fn status_kb(field: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
