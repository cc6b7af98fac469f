//! Keeps the XDP transit fast path (bpf/xdp_fast.c, maps in
//! bpf/fast_maps.h) forwarding by the same FIB as the AF_XDP workers: the
//! [`crate::publish::FibHandle`] tells a [`FastPublisher`] of every change
//! (publish, stage, promotion, rollback), under its writer lock, and the
//! publisher brings the kernel's two banks to the same state.
//!
//! - **Current FIB**: compiled (`crate::fast_path::compile`), written into
//!   the idle bank, then published by one store of the active-bank word. A
//!   frame reads the control block once, so it sees one FIB or the other.
//!   Rollback is a flip back when the idle bank still holds the FIB rolled
//!   back to (banks are matched to snapshots by identity).
//! - **Staged FIB** (RFC 9657 time-variant routing): written into the idle
//!   bank and staged with its instant in the kernel, so the program flips
//!   per frame at the instant, without waiting for user space. The
//!   schedule's instants are CLOCK_REALTIME; the program reads
//!   CLOCK_MONOTONIC (bpf_ktime_get_ns), so the instant is converted with
//!   the offset between the two clocks read now, and converted again every
//!   housekeeping tick ([`FastPublisher::tick`]): an NTP step of the real
//!   time clock moves the kernel's instant with it within 20 ms.
//! - **Grace**: a bank retired since it was last written is rewritten only
//!   after an RCU grace period (every XDP run is an RCU read-side section;
//!   `rcu_grace_period`), or [`FAST_GRACE`] where the kernel refuses that.
//!   The grace period starts when the bank is retired, on a thread of its
//!   own ([`GraceTimer`]), so a write waits only for what is left of it:
//!   nothing when the FIB changes less often than a grace period lasts
//!   (6-16 ms here, mostly 6-8), instead of a whole one under the FIB's
//!   writer lock.
//! - **A FIB the fast path cannot hold** (more next hops or groups than its
//!   maps, a port beyond 64): the fast path is disabled (every frame goes to
//!   the AF_XDP workers, which forward it by that FIB) with a warning, until
//!   a FIB that fits is installed. Forwarding never stops or diverges.
//! - **Liveness**: the port mask the workers read is copied into the
//!   kernel every housekeeping tick (carrier and admin state, within 20
//!   ms), without the publisher's lock, so a long FIB write never holds it
//!   back.
//! - **Ports that cannot take redirected frames**: a device transmits
//!   frames redirected to it in XDP only if it has NETDEV_XDP_ACT_NDO_XMIT
//!   (a veth only while its peer runs NAPI: an XDP program or GRO on); a
//!   redirect to any other fails after the program returned, and the frame
//!   is lost. The publisher asks the kernel ([`Netdev`]) on its first tick,
//!   on the tick after the kernel notifies a device change
//!   ([`NetdevEvents`]; every tick where it cannot subscribe), and every
//!   [`ASK_EVERY`] ticks regardless, and marks such ports in the fast
//!   path's `tx_ok` word, with a warning: a
//!   frame whose next hop (chosen by liveness, as the workers choose it) is
//!   on one goes to the AF_XDP workers, which transmit through the normal
//!   path.

use crate::fast_path::compile;
use crate::publish::Staged;
use crate::sys::clock::monotonic_ns;
use crate::sys::fast_maps::{rcu_grace_period, FastPath, FAST_GRACE};
use crate::sys::netdev::{Netdev, NetdevEvents, XDP_ACT_NDO_XMIT};
use orbitmesh_core::fib::FibSnapshot;
use orbitmesh_core::time::now_ns;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;

/// A staged instant that moved by more than this (the clocks' offset
/// changed) is written again.
const RESYNC_NS: u64 = 100_000;

/// Housekeeping ticks (5 s) after which the ports' XDP features are asked
/// again without a notification: a net under the notifications, not
/// their replacement (asking every tick cost two netlink round trips per
/// port, 50 times a second, in every dataplane of the emulation).
pub const ASK_EVERY: u32 = 250;

/// The fast path's FIB state, kept equal to the [`crate::publish::FibHandle`]'s.
pub struct FastPublisher {
    maps: FastPath,
    /// The snapshot each bank holds (identity only: a `Weak` keeps no
    /// table alive, and pins the allocation so an address is never reused).
    holds: [Weak<FibSnapshot>; 2],
    /// For each bank retired since it was last written: the grace period
    /// that began after it stopped being readable.
    retired: [Option<u64>; 2],
    grace: GraceTimer,
    /// The staged FIB's CLOCK_REALTIME instant, when one is staged.
    staged_at: Option<u64>,
    /// Why the fast path is disabled, when it is (logged once).
    unfit: Option<String>,
    /// Port names, interface indexes, and whether XDP runs in generic mode
    /// on them.
    ports: Vec<(String, u32, bool)>,
    /// Asks the kernel which ports take redirected frames (None: a
    /// kernel without the netdev family; every port is assumed to).
    netdev: Option<Netdev>,
    /// The kernel's notifications of device changes (None: ask every
    /// tick).
    events: Option<NetdevEvents>,
    /// Ticks since the ports were last asked.
    unasked: u32,
    /// Bit p: port p cannot take redirected frames now.
    no_redirect: u64,
}

impl std::fmt::Debug for FastPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPublisher")
            .field("active", &self.maps.active_bank())
            .field("staged", &self.maps.staged())
            .field("unfit", &self.unfit)
            .finish()
    }
}

impl FastPublisher {
    /// Takes the fast path's maps; `ports[i]` is port i's interface (name,
    /// index: its tx device, and whether XDP is attached in generic mode).
    /// The fast path stays disabled until the first [`FastPublisher::sync`].
    pub fn new(mut maps: FastPath, ports: &[(String, u32, bool)]) -> anyhow::Result<FastPublisher> {
        for (i, (name, ifindex, _)) in ports.iter().enumerate() {
            if !maps.set_port(i as u16, *ifindex)? {
                tracing::warn!(
                    port = %name,
                    ifindex,
                    "the fast path counts this port's received frames as from an unknown port (its ifindex shares an rx_ports slot with an earlier port's, FAST_RX_SLOTS in bpf/fast_maps.h); forwarding is unaffected"
                );
            }
        }
        let netdev = Netdev::open()
            .map_err(|e| tracing::warn!(error = %e, "cannot ask the kernel which ports take XDP-redirected frames (netdev netlink family, Linux >= 6.3); assuming every port does"))
            .ok();
        // Subscribed before the first ask, so no change falls between.
        let events = netdev.as_ref().and_then(|n| {
            n.events()
                .map_err(|e| tracing::info!(error = %e, "no notifications of XDP feature changes; asking the kernel every housekeeping tick"))
                .ok()
        });
        maps.set_enabled(false);
        Ok(FastPublisher {
            maps,
            holds: [Weak::new(), Weak::new()],
            retired: [None, None],
            grace: GraceTimer::start(bank_grace)?,
            staged_at: None,
            unfit: None,
            ports: ports.to_vec(),
            netdev,
            events,
            unasked: ASK_EVERY,
            no_redirect: 0,
        })
    }

    /// The maps (tests run frames through them).
    pub fn maps(&self) -> &FastPath {
        &self.maps
    }

    /// Whether frames are switched in XDP now (false: a FIB the fast path
    /// cannot hold, or before the first sync).
    pub fn enabled(&self) -> bool {
        self.maps.enabled()
    }

    /// Brings the banks to `current` in force and `staged` staged. Errors
    /// are not returned: a FIB that does not fit disables the fast path.
    pub fn sync(&mut self, current: &Arc<FibSnapshot>, staged: Option<&Staged>) {
        match self.try_sync(current, staged) {
            Ok(()) => {
                if let Some(why) = self.unfit.take() {
                    tracing::info!(was = %why, version = current.version(), "XDP fast path on again");
                }
            }
            Err(why) => {
                self.unstage();
                self.maps.set_enabled(false);
                if self.unfit.as_deref() != Some(&why) {
                    tracing::warn!(reason = %why, "XDP fast path off: every frame goes to the AF_XDP workers until a FIB that fits is installed");
                }
                self.unfit = Some(why);
            }
        }
    }

    fn try_sync(&mut self, cur: &Arc<FibSnapshot>, staged: Option<&Staged>) -> Result<(), String> {
        self.commit_due();
        let a = self.maps.active_bank();
        if self.holds(a, cur) {
            // Back on after a FIB that did not fit: no write needed.
            if !self.maps.enabled() {
                self.maps.set_enabled(true);
            }
        } else {
            let o = 1 - a;
            if !self.holds(o, cur) {
                self.unstage();
                self.write(o, cur)?;
            }
            // One store of active, then sched cleared (publish): a frame
            // sees the staged bank, or the new active one.
            self.maps.publish(o);
            self.staged_at = None;
            self.retired[a as usize] = Some(self.grace.ask());
            tracing::debug!(version = cur.version(), bank = o, "fast path: FIB in force");
        }
        let o = 1 - self.maps.active_bank();
        let Some(s) = staged else {
            self.unstage();
            return Ok(());
        };
        let staged_here = self.maps.staged().is_some_and(|(b, _)| b == o);
        if !(staged_here && self.holds(o, &s.fib)) {
            self.unstage();
            if !self.holds(o, &s.fib) {
                self.write(o, &s.fib)?;
            }
        }
        if !staged_here || self.staged_at != Some(s.at) {
            self.maps.stage(o, to_monotonic(s.at));
            self.staged_at = Some(s.at);
            tracing::debug!(
                version = s.fib.version(),
                bank = o,
                at_ns = s.at,
                "fast path: FIB staged"
            );
        }
        Ok(())
    }

    /// A staged bank whose instant has passed is in force in the kernel
    /// already: make it the active one (frames see no change).
    fn commit_due(&mut self) {
        if let (Some((b, _)), Some(at)) = (self.maps.staged(), self.staged_at) {
            if now_ns() >= at {
                let a = self.maps.active_bank();
                self.maps.publish(b);
                self.staged_at = None;
                if a != b {
                    self.retired[a as usize] = Some(self.grace.ask());
                }
            }
        }
    }

    fn unstage(&mut self) {
        if let Some((b, _)) = self.maps.staged() {
            self.maps.unstage();
            self.retired[b as usize] = Some(self.grace.ask());
        }
        self.staged_at = None;
    }

    fn holds(&self, bank: u32, fib: &Arc<FibSnapshot>) -> bool {
        std::ptr::eq(self.holds[bank as usize].as_ptr(), Arc::as_ptr(fib))
    }

    /// Compiles `fib` and writes it into `bank` once the bank's grace
    /// period is over.
    fn write(&mut self, bank: u32, fib: &Arc<FibSnapshot>) -> Result<(), String> {
        let compiled = compile(fib).map_err(|e| format!("FIB version {}: {e}", fib.version()))?;
        if let Some(ticket) = self.retired[bank as usize].take() {
            // A run that read the bank before it was retired may still be
            // going: wait until none can be (fast_maps.h).
            self.grace.wait(ticket);
        }
        self.holds[bank as usize] = Weak::new();
        self.maps
            .write_bank(bank, &compiled)
            .map_err(|e| format!("FIB version {}: {e:#}", fib.version()))?;
        self.holds[bank as usize] = Arc::downgrade(fib);
        Ok(())
    }

    /// Housekeeping, every tick it can take the publisher's lock (the
    /// liveness mask and the counters go through [`FastPublisher::control`],
    /// which needs none): which ports take redirected frames, and the
    /// staged instant against the clocks' present offset.
    pub fn tick(&mut self) {
        self.check_redirect();
        if let (Some((b, mono)), Some(at)) = (self.maps.staged(), self.staged_at) {
            let now_mono = to_monotonic(at);
            if now_mono.abs_diff(mono) > RESYNC_NS {
                self.maps.stage(b, now_mono);
            }
        }
    }

    /// Liveness and counters, lock-free (`FastControl`).
    pub fn control(&self) -> crate::sys::fast_maps::FastControl {
        self.maps.control()
    }

    /// Why the fast path switches nothing now, when it does not.
    pub fn off_reason(&self) -> Option<&str> {
        self.unfit.as_deref()
    }

    /// Which ports can transmit frames redirected in XDP now, when the
    /// kernel may have changed that (see the module's doc); changes are
    /// logged.
    fn check_redirect(&mut self) {
        let Some(n) = self.netdev.as_mut() else {
            return;
        };
        let notified = match self.events.as_mut() {
            Some(e) => e.pending(),
            None => true,
        };
        self.unasked = self.unasked.saturating_add(1);
        if !notified && self.unasked < ASK_EVERY {
            return;
        }
        self.unasked = 0;
        for (p, (name, ifindex, generic)) in self.ports.iter().enumerate() {
            // Generic (SKB) XDP redirects through the stack: any device.
            if *generic {
                continue;
            }
            // An error (the interface went away): the port watcher reports
            // that; its carrier is down, so it is not live anyway.
            let Ok(f) = n.xdp_features(*ifindex) else {
                continue;
            };
            let bit = 1u64 << p;
            let can = f & XDP_ACT_NDO_XMIT != 0;
            if !can && self.no_redirect & bit == 0 {
                tracing::warn!(port = %name, "this port cannot transmit frames redirected in XDP (a veth whose peer has neither an XDP program nor GRO on): the fast path leaves its frames to the AF_XDP workers until it can; on a veth, turn GRO on at the peer (ethtool -K PEER gro on)");
                self.no_redirect |= bit;
            } else if can && self.no_redirect & bit != 0 {
                tracing::info!(port = %name, "this port takes frames redirected in XDP again: back in the fast path");
                self.no_redirect &= !bit;
            }
        }
        self.maps.set_blocked(self.no_redirect);
    }
}

/// CLOCK_REALTIME instant `at` (ns) on CLOCK_MONOTONIC, by the two
/// clocks' offset now (an instant already past maps to one past).
fn to_monotonic(at: u64) -> u64 {
    let (rt, mono) = (now_ns(), monotonic_ns());
    (i128::from(at) - i128::from(rt) + i128::from(mono)).max(1) as u64
}

/// One grace period for a retired bank: an RCU grace period, or
/// [`FAST_GRACE`] where the kernel refuses to wait for one.
fn bank_grace() {
    if !rcu_grace_period() {
        std::thread::sleep(FAST_GRACE);
    }
}

/// Grace periods run ahead of need: [`GraceTimer::ask`] (when a bank
/// is retired) returns a ticket for one that begins after the call,
/// [`GraceTimer::wait`] (before the bank is written again) waits until it
/// is over. One thread runs them back to back while tickets are
/// outstanding; a grace period serves every ticket asked before it began.
struct GraceTimer {
    shared: Arc<(Mutex<GraceState>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct GraceState {
    /// Tickets handed out (the last one).
    asked: u64,
    /// Every ticket up to this one has had its grace period.
    done: u64,
    stop: bool,
}

fn lock(m: &Mutex<GraceState>) -> MutexGuard<'_, GraceState> {
    // The state is three integers, consistent after every store.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GraceTimer {
    /// `grace` waits for one grace period ([`bank_grace`]).
    fn start(grace: fn()) -> anyhow::Result<GraceTimer> {
        use anyhow::Context;
        let shared = Arc::new((Mutex::new(GraceState::default()), Condvar::new()));
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fast-grace".into())
            .spawn(move || Self::run(&s, grace))
            .context("starting the fast path's grace period thread")?;
        Ok(GraceTimer {
            shared,
            thread: Some(thread),
        })
    }

    fn run(shared: &(Mutex<GraceState>, Condvar), grace: fn()) {
        let (m, cv) = shared;
        loop {
            let mut g = lock(m);
            while g.done == g.asked && !g.stop {
                g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            if g.stop {
                return;
            }
            // Read before the grace period begins: it serves these tickets.
            let serves = g.asked;
            drop(g);
            grace();
            lock(m).done = serves;
            cv.notify_all();
        }
    }

    /// A ticket for a grace period that begins after this call.
    fn ask(&self) -> u64 {
        let (m, cv) = &*self.shared;
        let mut g = lock(m);
        g.asked += 1;
        cv.notify_all();
        g.asked
    }

    /// Waits until `ticket`'s grace period is over.
    fn wait(&self, ticket: u64) {
        let (m, cv) = &*self.shared;
        let mut g = lock(m);
        while g.done < ticket {
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for GraceTimer {
    fn drop(&mut self) {
        lock(&self.shared.0).stop = true;
        self.shared.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    /// Grace periods begun and ended by [`slow_grace`].
    static BEGUN: AtomicU64 = AtomicU64::new(0);
    static ENDED: AtomicU64 = AtomicU64::new(0);

    /// A grace period long enough to ask for a ticket while it runs.
    fn slow_grace() {
        BEGUN.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        ENDED.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn a_ticket_asked_during_a_grace_period_waits_for_the_next_one() {
        let g = GraceTimer::start(slow_grace).unwrap();
        let a = g.ask();
        // Until a's grace period has begun.
        let deadline = Instant::now() + Duration::from_secs(10);
        while BEGUN.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "no grace period began");
            std::thread::sleep(Duration::from_millis(1));
        }
        // A run may have read the bank b retires after a's grace period
        // began: that one cannot serve b.
        let b = g.ask();
        g.wait(a);
        assert!(ENDED.load(Ordering::SeqCst) >= 1);
        g.wait(b);
        assert_eq!(
            ENDED.load(Ordering::SeqCst),
            2,
            "b waited for a grace period that began after it was asked"
        );
    }

    /// A grace period of 200 ms, counted nowhere (the test above counts
    /// its own).
    fn long_grace() {
        std::thread::sleep(Duration::from_millis(200));
    }

    #[test]
    fn a_grace_period_started_early_is_not_waited_for_again() {
        let g = GraceTimer::start(long_grace).unwrap();
        let t = g.ask();
        // Long enough for the helper to finish the grace period it began.
        std::thread::sleep(Duration::from_millis(600));
        let start = Instant::now();
        g.wait(t);
        // A wait that ran a grace period of its own would take 200 ms.
        assert!(
            start.elapsed() < Duration::from_millis(150),
            "waited {:?} for a grace period over since 400 ms",
            start.elapsed()
        );
    }

    #[test]
    fn dropping_the_timer_stops_its_thread() {
        let g = GraceTimer::start(bank_grace).unwrap();
        let _ = g.ask();
        drop(g); // joins: a thread that never stopped would hang the test
    }
}
