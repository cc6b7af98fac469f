//! The XDP transit fast path (bpf/xdp_fast.c) from Rust: the `#[repr(C)]`
//! mirror of its map values, whose layout is defined in ONE place,
//! `dataplane/bpf/fast_maps.h` (sizes and offsets asserted below against
//! that header); [`FastFib`], the contents of one bank (made by
//! `crate::fast_path::compile`); and [`FastPath`], which loads the program
//! with aya, writes a [`FastFib`] into the idle bank of maps, publishes it
//! by one update of `active_bank`, and runs the program on a frame with
//! `BPF_PROG_TEST_RUN` (aya's `TestRun`).
//!
//! Not yet used by orbitmesh-dp: attaching it in place of xdp_steer,
//! `--fast-path`, the scheduled flip and liveness updates from housekeeping
//! are the next steps of issue 16. The program is loaded but never attached
//! here; every map and the program are file descriptors owned by the aya
//! `Ebpf`, so dropping a [`FastPath`] (also while a test panics) removes
//! them from the kernel.

use anyhow::{bail, Context, Result};
use aya::maps::{Array, DevMap, MapData, PerCpuArray};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use aya::{include_bytes_aligned, Ebpf};

static FAST_OBJ: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdp_fast.o"));

/// FAST_LABELS in fast_maps.h: the label table covers every 20-bit label.
pub const FAST_LABELS: u32 = 1 << 20;
/// FAST_MAX_GROUPS, FAST_MAX_MEMBERS, FAST_MAX_NHS, FAST_MAX_PORTS,
/// FAST_MAX_PUSH, FAST_DROP_SLOTS in fast_maps.h.
pub const FAST_MAX_GROUPS: u32 = 65536;
pub const FAST_MAX_MEMBERS: u32 = 262_144;
pub const FAST_MAX_NHS: u32 = 65536;
pub const FAST_MAX_PORTS: usize = 64;
pub const FAST_MAX_PUSH: usize = 6;
pub const FAST_DROP_SLOTS: usize = 16;
/// FAST_ILM_SWAP / FAST_ILM_POP (bits 31..30 of `FastIlm::word`).
pub const FAST_ILM_SWAP: u32 = 1;
pub const FAST_ILM_POP: u32 = 2;
pub const FAST_UNTAGGED: u16 = 0xffff;
pub const FAST_NO_BACKUP: u32 = u32::MAX;

/// `struct fast_ilm`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastIlm {
    pub word: u32,
    pub out_label: u32,
}

/// `struct fast_group`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastGroup {
    pub start: u32,
    pub len: u32,
}

/// `struct fast_nh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastNh {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub port: u16,
    pub vlan: u16,
    pub n_push: u8,
    pub pad: [u8; 3],
    pub push: [u32; FAST_MAX_PUSH],
    pub backup: u32,
}

/// `struct fast_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastParams {
    pub hash_seed: u32,
    pub egress_uniform: u32,
    pub mtu: [u16; FAST_MAX_PORTS],
}

/// `struct fast_counters` (one per CPU in the kernel; summed by
/// [`FastPath::counters`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastCounters {
    pub forwarded: u64,
    pub backup_used: u64,
    pub punted: u64,
    pub drops: [u64; FAST_DROP_SLOTS],
    pub tx: [u64; FAST_MAX_PORTS],
}

impl Default for FastCounters {
    fn default() -> Self {
        FastCounters {
            forwarded: 0,
            backup_used: 0,
            punted: 0,
            drops: [0; FAST_DROP_SLOTS],
            tx: [0; FAST_MAX_PORTS],
        }
    }
}

// The layout of fast_maps.h, checked at compile time.
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<FastIlm>() == 8);
    assert!(size_of::<FastGroup>() == 8);
    assert!(size_of::<FastNh>() == 48);
    assert!(offset_of!(FastNh, port) == 12);
    assert!(offset_of!(FastNh, vlan) == 14);
    assert!(offset_of!(FastNh, n_push) == 16);
    assert!(offset_of!(FastNh, push) == 20);
    assert!(offset_of!(FastNh, backup) == 44);
    assert!(size_of::<FastParams>() == 136);
    assert!(offset_of!(FastParams, mtu) == 8);
    assert!(size_of::<FastCounters>() == 8 * (3 + FAST_DROP_SLOTS + FAST_MAX_PORTS));
    assert!(offset_of!(FastCounters, drops) == 24);
    assert!(offset_of!(FastCounters, tx) == 24 + 8 * FAST_DROP_SLOTS);
    // DropReason values the program writes itself (FAST_DROP_*).
    use orbitmesh_core::stats::DropReason as D;
    assert!(D::Malformed as usize == 0);
    assert!(D::TtlExpired as usize == 2);
    assert!(D::NoLabelRoute as usize == 3);
    assert!(D::Mtu as usize == 8);
    assert!(D::COUNT <= FAST_DROP_SLOTS);
};

// The five map value types below: each is #[repr(C)], made only of
// integers and integer arrays laid out without implicit padding (the
// explicit `pad` in FastNh; the sizes are asserted above), so every bit
// pattern is a valid value and no uninitialised byte is read.
// SAFETY: see above; that is what aya::Pod requires of map values.
unsafe impl aya::Pod for FastIlm {}
// SAFETY: see above.
unsafe impl aya::Pod for FastGroup {}
// SAFETY: see above.
unsafe impl aya::Pod for FastNh {}
// SAFETY: see above.
unsafe impl aya::Pod for FastParams {}
// SAFETY: see above.
unsafe impl aya::Pod for FastCounters {}

/// The map contents for one FIB, as `crate::fast_path::compile` makes them
/// from a snapshot: `(key, value)` per map, keys ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastFib {
    /// Bound labels only; every other label is zero (unbound) in the map.
    pub ilm: Vec<(u32, FastIlm)>,
    pub groups: Vec<(u32, FastGroup)>,
    pub members: Vec<(u32, u32)>,
    pub nhs: Vec<(u32, FastNh)>,
    pub params: FastParams,
}

/// XDP verdicts (enum xdp_action) as the test run returns them.
pub mod action {
    pub const ABORTED: u32 = 0;
    pub const DROP: u32 = 1;
    pub const PASS: u32 = 2;
    pub const TX: u32 = 3;
    pub const REDIRECT: u32 = 4;
}

/// The loaded (not attached) fast-path program and its maps.
pub struct FastPath {
    bpf: Ebpf,
    /// Per bank: the labels bound by the FIB last written there (cleared
    /// before the next FIB is written into that bank); after a write that
    /// failed part way, every label either FIB bound.
    bound: [Vec<u32>; 2],
    /// Bit p: port p has a tx device ([`FastPath::set_port`]).
    ports: u64,
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath").finish_non_exhaustive()
    }
}

fn bank_map<'a>(bpf: &'a mut Ebpf, name: &str, bank: u32) -> Result<&'a mut aya::maps::Map> {
    let full = format!("{name}_{bank}");
    bpf.map_mut(&full)
        .with_context(|| format!("map {full} missing from xdp_fast.o"))
}

impl FastPath {
    /// Loads xdp_fast.o and its maps into the kernel (needs CAP_BPF /
    /// root); bank 0 is active and empty, no port is live.
    pub fn load() -> Result<FastPath> {
        super::xdp::raise_memlock();
        let mut bpf = Ebpf::load(FAST_OBJ).context("loading xdp_fast.o")?;
        let prog: &mut Xdp = bpf
            .program_mut("xdp_fast")
            .context("xdp_fast missing from the object")?
            .try_into()?;
        prog.load()
            .context("the kernel refused the XDP fast-path program")?;
        Ok(FastPath {
            bpf,
            bound: [Vec::new(), Vec::new()],
            ports: 0,
        })
    }

    fn array<V: aya::Pod>(&mut self, name: &str, bank: u32) -> Result<Array<&mut MapData, V>> {
        Ok(Array::try_from(bank_map(&mut self.bpf, name, bank)?)?)
    }

    /// The bank frames are forwarded by now.
    pub fn active_bank(&self) -> Result<u32> {
        let m: Array<&MapData, u32> =
            Array::try_from(self.bpf.map("active_bank").context("active_bank")?)?;
        Ok(m.get(&0, 0)? & 1)
    }

    /// Writes `fib` into the idle bank and publishes it with one update of
    /// the active-bank index; returns the new active bank. A frame reads the
    /// index once, so it sees the old FIB or the new one, never a mix.
    ///
    /// The idle bank is the one retired by the previous install: a program
    /// run that read the index before that flip may still be reading it.
    /// Nothing here waits for such runs (each is one frame in a NAPI poll,
    /// microseconds); a caller that installs FIBs back to back under
    /// traffic must leave a grace period between installs (fast_maps.h).
    /// orbitmesh-dp does not install FIBs here yet (issue 16).
    pub fn install(&mut self, fib: &FastFib) -> Result<u32> {
        let idle = 1 - self.active_bank()?;
        self.write_bank(idle, fib)?;
        let mut m: Array<&mut MapData, u32> =
            Array::try_from(self.bpf.map_mut("active_bank").context("active_bank")?)?;
        m.set(0, idle, 0)?;
        Ok(idle)
    }

    /// Writes `fib` into `bank` (which must not be the active one).
    pub fn write_bank(&mut self, bank: u32, fib: &FastFib) -> Result<()> {
        if bank > 1 {
            bail!("bank {bank} does not exist (0 or 1)");
        }
        if bank == self.active_bank()? {
            bail!("bank {bank} is active: write the idle bank, then publish");
        }
        let mut nhs = self.array::<FastNh>("nhs", bank)?;
        for (k, v) in &fib.nhs {
            nhs.set(*k, v, 0)?;
        }
        let mut members = self.array::<u32>("members", bank)?;
        for (k, v) in &fib.members {
            members.set(*k, v, 0)?;
        }
        let mut groups = self.array::<FastGroup>("groups", bank)?;
        for (k, v) in &fib.groups {
            groups.set(*k, v, 0)?;
        }
        let mut params = self.array::<FastParams>("params", bank)?;
        params.set(0, fib.params, 0)?;
        // Until every write succeeds, the bank may hold labels of either
        // FIB: remember both, so that the next write clears them all.
        let stale = self.bound[bank as usize].clone();
        let new: Vec<u32> = fib.ilm.iter().map(|(k, _)| *k).collect();
        self.bound[bank as usize].extend_from_slice(&new);
        let mut ilm = self.array::<FastIlm>("ilm", bank)?;
        for l in stale {
            ilm.set(l, FastIlm::default(), 0)?;
        }
        for (k, v) in &fib.ilm {
            ilm.set(*k, v, 0)?;
        }
        self.bound[bank as usize] = new;
        Ok(())
    }

    /// The liveness mask: bit p set when port p is up. A port with no tx
    /// device ([`FastPath::set_port`]) is never live: a redirect to it
    /// would fail, so its frames take the backup or the slow path.
    pub fn set_live(&mut self, mask: u64) -> Result<()> {
        let mut m: Array<&mut MapData, u64> =
            Array::try_from(self.bpf.map_mut("live_ports").context("live_ports")?)?;
        m.set(0, mask & self.ports, 0)?;
        Ok(())
    }

    /// Port `port` transmits on interface `ifindex`.
    pub fn set_port(&mut self, port: u16, ifindex: u32) -> Result<()> {
        if port as usize >= FAST_MAX_PORTS {
            bail!("port {port} is beyond the fast path's {FAST_MAX_PORTS}");
        }
        let mut m = DevMap::try_from(self.bpf.map_mut("tx_ports").context("tx_ports")?)?;
        m.set(port as u32, ifindex, None, 0)?;
        self.ports |= 1 << port;
        Ok(())
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> Result<FastCounters> {
        let m: PerCpuArray<&MapData, FastCounters> =
            PerCpuArray::try_from(self.bpf.map("fast_stats").context("fast_stats")?)?;
        let mut sum = FastCounters::default();
        for c in m.get(&0, 0)?.iter() {
            sum.forwarded += c.forwarded;
            sum.backup_used += c.backup_used;
            sum.punted += c.punted;
            for (s, v) in sum.drops.iter_mut().zip(c.drops) {
                *s += v;
            }
            for (s, v) in sum.tx.iter_mut().zip(c.tx) {
                *s += v;
            }
        }
        Ok(sum)
    }

    /// Runs the program once on `frame` (BPF_PROG_TEST_RUN, 256 bytes of
    /// XDP headroom); the frame as it leaves is written to `out`. Returns the
    /// XDP action and the output length. Frames shorter than an Ethernet
    /// header are refused by the kernel (EINVAL).
    pub fn test_run(&self, frame: &[u8], out: &mut [u8]) -> Result<(u32, usize)> {
        let prog: &Xdp = self
            .bpf
            .program("xdp_fast")
            .context("xdp_fast")?
            .try_into()?;
        let r = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(out),
                ..TestRunOptions::default()
            })
            .context("BPF_PROG_TEST_RUN")?;
        Ok((r.return_value, r.data_size_out as usize))
    }
}
