//! The testbed check: how long the DUT's virtual CPU goes missing while the
//! generator's core is busy, and so the rate above which the line's
//! 256-frame veth ring (`VETH_RING_SIZE`) overflows during such a stall,
//! whatever the DUT (bench/results/2026-12-01-vcpu-stalls.md).
//!
//! A thread spins on the DUT's core reading CLOCK_MONOTONIC, at the NAPI
//! threads' SCHED_FIFO priority (so, like dut0's NAPI thread, no task of
//! the guest's can take the core from it), while another spins on the
//! generator's (the load of a trial); a jump between two
//! reads longer than [`GAP_NS`] is a gap in the thread's running, as
//! hwlatdetect and cyclictest count them. After each gap the thread reads
//! its own run-queue wait (`/proc/thread-self/schedstat`, field 2): if it
//! grew by about the gap, the guest's scheduler ran something else (here
//! only the kernel's real-time throttling, 50 ms a second); if not, the guest believes the thread ran all along: the
//! virtual CPU was not running (the host's doing) or was in interrupt work
//! (this kernel keeps no IRQ time to tell them apart; on this VM a perf
//! profile has no sample at all inside such gaps). Called "away" below.
//! Nothing else of the harness runs during the check.

use anyhow::{bail, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Jumps shorter than this are the spin loop's own jitter.
pub const GAP_NS: u64 = 100_000;

/// Frames dut0's ring holds (veth's VETH_RING_SIZE).
pub const RING_FRAMES: f64 = 256.0;

/// What the check measured on the DUT's core.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Stalls {
    pub secs: f64,
    /// Gaps in which no task of the guest ran on the core: the vCPU was
    /// not running (the host's doing), or the guest did interrupt work.
    pub away_gaps: u64,
    /// Gaps during which the guest ran another task on the core.
    pub guest_gaps: u64,
    /// Longest away gap and the sum of away gaps, µs.
    pub away_max_us: u64,
    pub away_total_us: u64,
    /// Away gaps longer than 1 ms.
    pub away_over_1ms: u64,
    pub guest_max_us: u64,
}

impl Stalls {
    /// The rate (frames/s) above which the longest away stall overflows
    /// dut0's ring, if nothing drained it meanwhile (None: no away gap).
    pub fn ring_limit_pps(&self) -> Option<f64> {
        (self.away_max_us > 0).then(|| RING_FRAMES / (self.away_max_us as f64 * 1e-6))
    }
}

/// Spins on `dut_core` for `secs` with a spinning load on `load_core`
/// (None: no load, for comparison).
pub fn check(dut_core: usize, load_core: Option<usize>, secs: f64) -> Result<Stalls> {
    if !(0.1..=600.0).contains(&secs) {
        bail!("the stall check runs 0.1 to 600 s, not {secs}");
    }
    if load_core == Some(dut_core) {
        bail!("the stall check's load must run on another core than CPU {dut_core}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let load = match load_core {
        Some(core) => {
            let stop = stop.clone();
            Some(
                std::thread::Builder::new()
                    .name("obh-stall-load".into())
                    .spawn(move || {
                        let pinned =
                            core_affinity::set_for_current(core_affinity::CoreId { id: core });
                        while !stop.load(Ordering::Relaxed) {
                            std::hint::spin_loop();
                        }
                        pinned
                    })?,
            )
        }
        None => None,
    };
    let probe = std::thread::Builder::new()
        .name("obh-stall-probe".into())
        .spawn(move || -> Result<Stalls> {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: dut_core }) {
                bail!("cannot pin the stall probe to CPU {dut_core}");
            }
            realtime()?;
            Ok(spin(Duration::from_secs_f64(secs)))
        })?;
    let r = probe
        .join()
        .map_err(|_| anyhow::anyhow!("the stall probe panicked"));
    stop.store(true, Ordering::Relaxed);
    if let Some(l) = load {
        if !l
            .join()
            .map_err(|_| anyhow::anyhow!("the load thread panicked"))?
        {
            bail!("cannot pin the stall check's load to CPU {load_core:?}");
        }
    }
    r?
}

/// The probe loop on the current thread.
fn spin(dur: Duration) -> Stalls {
    let mut s = Stalls {
        secs: dur.as_secs_f64(),
        ..Stalls::default()
    };
    let t0 = Instant::now();
    let mut wait0 = run_queue_wait_ns();
    let mut last = t0;
    loop {
        let now = Instant::now();
        let gap = now.duration_since(last).as_nanos() as u64;
        if gap > GAP_NS {
            let wait = run_queue_wait_ns();
            let waited = wait.saturating_sub(wait0);
            wait0 = wait;
            let us = gap / 1000;
            if waited * 2 > gap {
                s.guest_gaps += 1;
                s.guest_max_us = s.guest_max_us.max(us);
            } else {
                s.away_gaps += 1;
                s.away_max_us = s.away_max_us.max(us);
                s.away_total_us += us;
                s.away_over_1ms += u64::from(gap > 1_000_000);
            }
            // The file read above is not part of the next interval.
            last = Instant::now();
            continue;
        }
        if now.duration_since(t0) >= dur {
            return s;
        }
        last = now;
    }
}

/// Puts the calling thread at the NAPI threads' SCHED_FIFO priority.
fn realtime() -> Result<()> {
    crate::sys::sched::this_thread(Some(super::topology::NAPI_FIFO_PRIO))
}

/// ns this thread has waited on a run queue (schedstat's second field).
fn run_queue_wait_ns() -> u64 {
    super::cpu::thread_schedstat().1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_limit_follows_the_longest_stall() {
        let s = Stalls {
            away_max_us: 1_600,
            ..Stalls::default()
        };
        assert_eq!(s.ring_limit_pps(), Some(160_000.0));
        assert_eq!(Stalls::default().ring_limit_pps(), None);
    }

    #[test]
    fn a_short_check_runs_and_refuses_nonsense() {
        assert!(check(0, Some(1), 0.0).is_err());
        assert!(check(0, None, f64::NAN).is_err());
        assert!(check(0, Some(0), 1.0).is_err(), "one core for both");
        if dataplane::sys::cred::euid() != 0 {
            eprintln!(
                "skipping the run: the stall probe needs root (SCHED_FIFO); CI runs it as root"
            );
            return;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let s = check(0, (cores > 1).then_some(1), 0.2).expect("check");
        assert!(s.secs > 0.19);
        assert!(s.away_total_us >= s.away_max_us && s.away_gaps >= s.away_over_1ms);
    }
}
