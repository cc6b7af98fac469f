//! Loads and runs the harness's in-kernel generator (bench/bpf/gen_live.c,
//! built by build.rs; `--gen live`): BPF_PROG_TEST_RUN with
//! `BPF_F_TEST_XDP_LIVE_FRAMES`, one call per trial, on the kernel's own
//! page pool of frames, redirecting the frames it sends to the generator's
//! port, so the DUT receives XDP frames as from a NIC's driver and neither
//! core copies a socket buffer into a page.
//!
//! One call per trial because each call swaps the program into the XDP
//! dispatcher and out again, an RCU grace period each way (~24 ms a call
//! measured here, 2026-12-01). The program paces itself by the clock
//! (frames not yet due are dropped back into the pool) and the call runs
//! until [`Interrupt::fire`] sends the running thread a signal: the
//! kernel's loop checks for one between batches and returns EINTR.
//!
//! Unsafe here: installing the no-op SIGUSR2 handler and `pthread_kill`
//! (both in [`Interrupt`]).

use anyhow::{bail, Context, Result};
use aya::maps::{Array, MapData};
use aya::programs::{ProgramError, TestRun, TestRunAttrs, TestRunOptions, Xdp};
use aya::{include_bytes_aligned, Ebpf, Pod};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Once;

static OBJ: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/gen_live.o"));

/// Flows the program holds templates for (`LIVE_FLOWS`).
pub const LIVE_FLOWS: usize = 4096;
/// Longest frame it sends, bytes (`LIVE_WORDS` x 4).
pub const LIVE_MAX_LEN: usize = 128;
/// Frames per batch of the kernel's loop (its redirects are flushed, and
/// a signal or a reschedule seen, once per batch).
pub const LIVE_BATCH: u32 = 64;

/// `struct live_cfg`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveCfg {
    pub t0: u64,
    pub end: u64,
    pub base: u64,
    pub rate: u64,
    pub budget: u64,
    pub catch_up: u64,
    pub flows: u32,
    pub words: u32,
    pub stamp_at: u32,
    pub trial: u32,
}

/// `struct live_state`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveState {
    pub sent: u64,
    pub skipped: u64,
    pub runs: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Tmpl([u32; LIVE_MAX_LEN / 4]);

// SAFETY: plain-old-data C layouts (u64/u32 fields, no padding: LiveCfg is
// 6 x 8 + 4 x 4 bytes, LiveState 3 x 8, Tmpl 32 x 4), valid for any bytes.
unsafe impl Pod for LiveCfg {}
// SAFETY: as above.
unsafe impl Pod for LiveState {}
// SAFETY: as above.
unsafe impl Pod for Tmpl {}

/// The loaded generator.
pub struct GenLive {
    bpf: Ebpf,
    /// The frame the kernel's page pool starts every frame from.
    first: Vec<u8>,
}

impl std::fmt::Debug for GenLive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GenLive")
    }
}

impl GenLive {
    /// Loads the program, its frames redirected out of `to`.
    pub fn load(to: &str) -> Result<GenLive> {
        let bpf = super::gen_relay::load_to(OBJ, "gen_live", "live_port", to)?;
        Ok(GenLive {
            bpf,
            first: Vec::new(),
        })
    }

    /// Writes the flows' templates (flow f's at f; all the same length, a
    /// multiple of 4 bytes up to [`LIVE_MAX_LEN`]).
    pub fn set_templates(&mut self, templates: &[Vec<u8>]) -> Result<()> {
        let len = templates.first().map_or(0, Vec::len);
        if templates.is_empty() || templates.len() > LIVE_FLOWS {
            bail!(
                "the live generator takes 1 to {LIVE_FLOWS} flows, not {}",
                templates.len()
            );
        }
        if len == 0
            || len > LIVE_MAX_LEN
            || !len.is_multiple_of(4)
            || templates.iter().any(|t| t.len() != len)
        {
            bail!("the live generator sends frames of one length, a multiple of 4 up to {LIVE_MAX_LEN} bytes");
        }
        let mut m: Array<&mut MapData, Tmpl> =
            Array::try_from(self.bpf.map_mut("live_tmpl").context("live_tmpl map")?)?;
        for (f, t) in templates.iter().enumerate() {
            let mut w = Tmpl([0; LIVE_MAX_LEN / 4]);
            for (i, c) in t.chunks_exact(4).enumerate() {
                w.0[i] = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
            }
            m.set(f as u32, w, 0).context("live_tmpl")?;
        }
        self.first.clone_from(&templates[0]);
        Ok(())
    }

    /// Writes a trial's schedule and zeroes the state.
    pub fn start(&mut self, cfg: &LiveCfg) -> Result<()> {
        if self.first.is_empty() || cfg.words as usize * 4 != self.first.len() {
            bail!("the live generator's schedule does not match its templates");
        }
        let mut c: Array<&mut MapData, LiveCfg> =
            Array::try_from(self.bpf.map_mut("live_cfg").context("live_cfg map")?)?;
        c.set(0, *cfg, 0).context("live_cfg")?;
        let mut s: Array<&mut MapData, LiveState> =
            Array::try_from(self.bpf.map_mut("live_state").context("live_state map")?)?;
        s.set(0, LiveState::default(), 0).context("live_state")?;
        Ok(())
    }

    /// Runs the armed schedule until `stop` fires (the call returns EINTR)
    /// or the kernel's loop ends (u32::MAX runs).
    pub fn run(&self, stop: &Interrupt) -> Result<()> {
        let p: &Xdp = self
            .bpf
            .program("gen_live")
            .context("gen_live")?
            .try_into()?;
        stop.enter();
        let r = p.test_run(TestRunOptions {
            data_in: Some(&self.first),
            repeat: u32::MAX,
            attrs: TestRunAttrs::new().xdp_live_frames(LIVE_BATCH),
            ..TestRunOptions::default()
        });
        stop.leave();
        match r {
            Ok(_) => Ok(()),
            Err(ProgramError::SyscallError(e))
                if e.io_error.kind() == std::io::ErrorKind::Interrupted =>
            {
                Ok(())
            }
            Err(e) => Err(e).context("BPF_PROG_TEST_RUN (live frames)"),
        }
    }

    /// What the runs did.
    pub fn state(&self) -> Result<LiveState> {
        let s: Array<&MapData, LiveState> =
            Array::try_from(self.bpf.map("live_state").context("live_state map")?)?;
        s.get(&0, 0).context("live_state")
    }
}

/// Ends a [`GenLive::run`] from another thread: a SIGUSR2 (no-op handler,
/// without SA_RESTART) to the running thread, again every call of
/// [`Interrupt::fire`] until that thread is out of the call (a signal that
/// came just before the system call began is not seen by it).
#[derive(Debug, Default)]
pub struct Interrupt {
    thread: AtomicU64,
    inside: AtomicBool,
}

extern "C" fn no_op(_: libc::c_int) {}

impl Interrupt {
    fn enter(&self) {
        static HANDLER: Once = Once::new();
        HANDLER.call_once(|| {
            // SAFETY: a zeroed sigaction with a handler that does nothing
            // (async-signal-safe by having no body), no SA_RESTART so a
            // blocking call returns EINTR; the old action is not needed.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = no_op as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut());
            }
        });
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        self.thread.store(me as u64, Ordering::SeqCst);
        self.inside.store(true, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.inside.store(false, Ordering::SeqCst);
    }

    /// True while the thread may still be in the call.
    pub fn running(&self) -> bool {
        self.inside.load(Ordering::SeqCst)
    }

    /// Signals the running thread, if it is inside [`GenLive::run`].
    pub fn fire(&self) {
        if self.running() {
            let t = self.thread.load(Ordering::SeqCst) as libc::pthread_t;
            // SAFETY: `t` is the pthread_t of the thread that set `inside`
            // in `enter`. A pthread_t stays valid until the thread is
            // joined, even after it ends, and the one caller
            // (traffic::engine's send_live) joins that scoped thread only
            // after it stopped calling `fire`. SIGUSR2 has the no-op
            // handler installed in `enter`, so delivery only interrupts a
            // system call.
            unsafe { libc::pthread_kill(t, libc::SIGUSR2) };
        }
    }
}
