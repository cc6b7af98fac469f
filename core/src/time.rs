//! Wall-clock instants: nanoseconds since the Unix epoch on CLOCK_REALTIME,
//! the time base of FIB activations. Time-variant routing (RFC 9657) plans
//! changes at absolute instants agreed across nodes, so every node, the
//! control process and the emulation read the same clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in ns since the Unix epoch (0 for a clock set before 1970).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
