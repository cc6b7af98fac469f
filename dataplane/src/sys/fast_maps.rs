//! The XDP transit fast path (bpf/xdp_fast.c) from Rust: the `#[repr(C)]`
//! mirror of its map values, whose layout is defined in ONE place,
//! `dataplane/bpf/fast_maps.h` (sizes and offsets asserted below against
//! that header); [`FastFib`], the contents of one bank (made by
//! `crate::fast_path::compile`); and [`FastPath`], the program's maps
//! mapped into this process (BPF_F_MMAPABLE): it writes a [`FastFib`] into
//! a bank with plain stores, publishes or stages a bank with one 64-bit
//! store to the control block, sets port liveness, reads the per-CPU
//! counters, and (loaded alone, for tests) runs the program on a frame with
//! `BPF_PROG_TEST_RUN` ([`super::xdp::test_run`]).
//!
//! orbitmesh-dp attaches the program through [`super::xdp::Steering`]
//! (which then owns the program and the steering maps) and takes the fast
//! path's maps from it with [`FastPath::take`]; `crate::fast_publish`
//! decides what goes into which bank when. Every map is a file descriptor
//! or a mapping owned here, so dropping a [`FastPath`] (also while a test
//! panics) releases them.

use anyhow::{bail, Context, Result};
use aya::maps::{DevMap, MapData, PerCpuArray};
use aya::programs::{Xdp, XdpMode};
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
/// FAST_RX_SLOTS in fast_maps.h: slots of the direct-mapped ifindex -> port
/// table `rx_ports`.
pub const FAST_RX_SLOTS: u32 = 4096;
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
    pub tx_bytes: [u64; FAST_MAX_PORTS],
    /// Frames finished in XDP (forwarded or dropped) by ingress port;
    /// `[FAST_MAX_PORTS]`: an interface not in `rx_ports`.
    pub rx: [u64; FAST_MAX_PORTS + 1],
    pub rx_bytes: [u64; FAST_MAX_PORTS + 1],
}

impl Default for FastCounters {
    fn default() -> Self {
        FastCounters {
            forwarded: 0,
            backup_used: 0,
            punted: 0,
            drops: [0; FAST_DROP_SLOTS],
            tx: [0; FAST_MAX_PORTS],
            tx_bytes: [0; FAST_MAX_PORTS],
            rx: [0; FAST_MAX_PORTS + 1],
            rx_bytes: [0; FAST_MAX_PORTS + 1],
        }
    }
}

impl FastCounters {
    /// Adds `other` field by field (the per-CPU sum).
    pub fn add(&mut self, other: &FastCounters) {
        fn add_all(sum: &mut [u64], v: &[u64]) {
            for (s, v) in sum.iter_mut().zip(v) {
                *s += v;
            }
        }
        self.forwarded += other.forwarded;
        self.backup_used += other.backup_used;
        self.punted += other.punted;
        add_all(&mut self.drops, &other.drops);
        add_all(&mut self.tx, &other.tx);
        add_all(&mut self.tx_bytes, &other.tx_bytes);
        add_all(&mut self.rx, &other.rx);
        add_all(&mut self.rx_bytes, &other.rx_bytes);
    }
}

/// `struct fast_rx_port`: an `rx_ports` slot (ifindex 0 = empty).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastRxPort {
    pub ifindex: u32,
    pub port: u32,
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
    assert!(
        size_of::<FastCounters>()
            == 8 * (3 + FAST_DROP_SLOTS + 2 * FAST_MAX_PORTS + 2 * (FAST_MAX_PORTS + 1))
    );
    assert!(offset_of!(FastCounters, drops) == 24);
    assert!(offset_of!(FastCounters, tx) == 24 + 8 * FAST_DROP_SLOTS);
    assert!(offset_of!(FastCounters, tx_bytes) == 24 + 8 * (FAST_DROP_SLOTS + FAST_MAX_PORTS));
    assert!(offset_of!(FastCounters, rx) == 24 + 8 * (FAST_DROP_SLOTS + 2 * FAST_MAX_PORTS));
    assert!(
        offset_of!(FastCounters, rx_bytes)
            == 24 + 8 * (FAST_DROP_SLOTS + 2 * FAST_MAX_PORTS + FAST_MAX_PORTS + 1)
    );
    assert!(size_of::<FastRxPort>() == 8);
    assert!(FAST_RX_SLOTS.is_power_of_two());
    // DropReason values the program writes itself (FAST_DROP_*).
    use orbitmesh_core::stats::DropReason as D;
    assert!(D::Malformed as usize == 0);
    assert!(D::TtlExpired as usize == 2);
    assert!(D::NoLabelRoute as usize == 3);
    assert!(D::Mtu as usize == 8);
    assert!(D::COUNT <= FAST_DROP_SLOTS);
};

// The six map value types below: each is #[repr(C)], made only of
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
// SAFETY: see above.
unsafe impl aya::Pod for FastRxPort {}

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

/// BPF_F_MMAPABLE (linux/bpf.h): the array map can be mmap()ed.
const BPF_F_MMAPABLE: u32 = 1 << 10;

/// `struct fast_ctl`: the control words, each written whole by one
/// aligned 64-bit atomic store.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct FastCtl {
    enabled: u64,
    active: u64,
    sched: u64,
    live: u64,
    tx_ok: u64,
}

/// FAST_SCHED_BANK: bit 63 of `fast_ctl.sched` is the staged bank.
pub const FAST_SCHED_BANK: u64 = 1 << 63;

/// FAST_GRACE_MS: how long a retired bank is left alone before it is
/// rewritten when [`rcu_grace_period`] is not available (fast_maps.h).
pub const FAST_GRACE: std::time::Duration = std::time::Duration::from_millis(10);

/// Waits for an RCU grace period: membarrier(MEMBARRIER_CMD_GLOBAL) is
/// synchronize_rcu() in the kernel, and every XDP program run is one RCU
/// read-side section, so once it returns no run that could read a bank
/// retired before the call is still going. False where the kernel refuses
/// it (nohz_full CPUs): the caller then waits [`FAST_GRACE`].
pub fn rcu_grace_period() -> bool {
    const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;
    // SAFETY: membarrier takes two integers and touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0 }
}

#[derive(Clone, Copy)]
enum CtlWord {
    Enabled = 0,
    Active = 1,
    Sched = 2,
    Live = 3,
    TxOk = 4,
}

const _: () = assert!(std::mem::size_of::<FastCtl>() == 40);

// SAFETY: five u64s, no padding, any bit pattern valid.
unsafe impl aya::Pod for FastCtl {}

/// One BPF array map mapped into this process: values at a stride of their
/// size rounded up to 8 bytes (the kernel's elem_size), read and written
/// with plain volatile loads and stores, no syscall.
struct Mapped<V> {
    base: std::ptr::NonNull<u8>,
    bytes: usize,
    stride: usize,
    len: u32,
    _map: MapData,
    _v: std::marker::PhantomData<V>,
}

// SAFETY: the mapping belongs to this value alone (the kernel is the only
// other party), so moving it to another thread is sound; `&self` methods
// only read (or store atomically, `ctl_word`).
unsafe impl<V> Send for Mapped<V> {}
// SAFETY: as above: shared references only load, or store through atomics.
unsafe impl<V> Sync for Mapped<V> {}

impl<V: aya::Pod> Mapped<V> {
    /// Takes map `name` out of `bpf` and maps it; it must be an array of
    /// `len` values of `V`'s size created with BPF_F_MMAPABLE.
    fn take(bpf: &mut Ebpf, name: &str, len: u32) -> Result<Mapped<V>> {
        use std::os::fd::{AsFd, AsRawFd};
        let map = bpf
            .take_map(name)
            .with_context(|| format!("map {name} missing from the XDP object"))?;
        let aya::maps::Map::Array(data) = map else {
            bail!("map {name} is not a BPF array");
        };
        let info = data.info()?;
        let size = std::mem::size_of::<V>();
        if info.value_size() as usize != size
            || info.max_entries() != len
            || info.map_flags() & BPF_F_MMAPABLE == 0
        {
            bail!(
                "map {name}: {} x {} bytes, flags {:#x}; expected {len} x {size} bytes, mmapable (fast_maps.h and sys/fast_maps.rs disagree)",
                info.max_entries(),
                info.value_size(),
                info.map_flags()
            );
        }
        let stride = size.div_ceil(8) * 8;
        let page = 4096;
        let bytes = (stride * len as usize).div_ceil(page) * page;
        let fd = data.fd().as_fd().as_raw_fd();
        // SAFETY: `fd` is a live BPF array map created with BPF_F_MMAPABLE
        // (checked above); the kernel lets it be mapped MAP_SHARED from
        // offset 0 for round_up(elem_size * max_entries, PAGE_SIZE) bytes,
        // which is `bytes`. No Rust object is aliased: the region is new.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            bail!("mmap of map {name}: {}", std::io::Error::last_os_error());
        }
        Ok(Mapped {
            base: std::ptr::NonNull::new(p.cast()).context("mmap returned null")?,
            bytes,
            stride,
            len,
            _map: data,
            _v: std::marker::PhantomData,
        })
    }

    /// The address of value `i` (panics beyond the map: callers check keys
    /// against the map's size first).
    fn slot(&self, i: u32) -> *mut V {
        assert!(i < self.len, "key {i} beyond the map's {}", self.len);
        // SAFETY: i < len and stride * len <= bytes, so the offset stays
        // inside the mapping.
        unsafe { self.base.as_ptr().add(i as usize * self.stride).cast() }
    }

    fn set(&mut self, i: u32, v: V) {
        // SAFETY: `slot` is in bounds and aligned (page-aligned base, a
        // stride that is a multiple of 8 >= V's alignment); V is Pod, so any
        // bytes the program reads back are a valid value. The bank written
        // is one no program run reads (the writer's grace period), and the
        // store is volatile: memory shared with the kernel is never elided.
        unsafe { self.slot(i).write_volatile(v) }
    }
}

impl Mapped<FastCtl> {
    /// One control word, as an atomic: user space stores it whole, the
    /// program loads it once per frame (READ_ONCE).
    fn word(&self, w: CtlWord) -> &std::sync::atomic::AtomicU64 {
        // SAFETY: the block is one struct fast_ctl (five u64s, asserted) at
        // the page-aligned start of a mapping that lives as long as `self`;
        // AtomicU64 has u64's size and 8-byte alignment; every Rust access
        // to these words goes through this atomic view.
        unsafe { &*(self.base.as_ptr().add(8 * w as usize) as *const std::sync::atomic::AtomicU64) }
    }
}

impl<V> Drop for Mapped<V> {
    fn drop(&mut self) {
        // SAFETY: `base`/`bytes` are exactly what mmap returned, unmapped
        // once; nothing borrows the region past `self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.bytes) };
    }
}

/// One bank of FIB maps, mapped.
struct Bank {
    ilm: Mapped<FastIlm>,
    groups: Mapped<FastGroup>,
    members: Mapped<u32>,
    nhs: Mapped<FastNh>,
    params: Mapped<FastParams>,
    /// The labels bound by the FIB last written here (cleared before the
    /// next FIB is written).
    bound: Vec<u32>,
}

impl Bank {
    fn take(bpf: &mut Ebpf, b: u32) -> Result<Bank> {
        Ok(Bank {
            ilm: Mapped::take(bpf, &format!("ilm_{b}"), FAST_LABELS)?,
            groups: Mapped::take(bpf, &format!("groups_{b}"), FAST_MAX_GROUPS)?,
            members: Mapped::take(bpf, &format!("members_{b}"), FAST_MAX_MEMBERS)?,
            nhs: Mapped::take(bpf, &format!("nhs_{b}"), FAST_MAX_NHS)?,
            params: Mapped::take(bpf, &format!("params_{b}"), 1)?,
            bound: Vec::new(),
        })
    }

    /// Writes `fib`, after checking every key fits (nothing is written
    /// otherwise), and unbinds the labels the previous FIB bound.
    fn write(&mut self, fib: &FastFib) -> Result<()> {
        fn fits<V>(what: &str, entries: &[(u32, V)], max: u32) -> Result<()> {
            match entries.iter().map(|e| e.0).max() {
                Some(k) if k >= max => bail!("{what} key {k} beyond the map's {max}"),
                _ => Ok(()),
            }
        }
        fits("ilm", &fib.ilm, FAST_LABELS)?;
        fits("groups", &fib.groups, FAST_MAX_GROUPS)?;
        fits("members", &fib.members, FAST_MAX_MEMBERS)?;
        fits("nhs", &fib.nhs, FAST_MAX_NHS)?;
        for (k, v) in &fib.nhs {
            self.nhs.set(*k, *v);
        }
        for (k, v) in &fib.members {
            self.members.set(*k, *v);
        }
        for (k, v) in &fib.groups {
            self.groups.set(*k, *v);
        }
        self.params.set(0, fib.params);
        for l in std::mem::take(&mut self.bound) {
            self.ilm.set(l, FastIlm::default());
        }
        for (k, v) in &fib.ilm {
            self.ilm.set(*k, *v);
        }
        self.bound = fib.ilm.iter().map(|e| e.0).collect();
        Ok(())
    }
}

/// What housekeeping needs without the publisher's lock (which a FIB
/// write may hold for tens of ms): the liveness word and the counters.
#[derive(Clone)]
pub struct FastControl {
    ctl: std::sync::Arc<Mapped<FastCtl>>,
    stats: std::sync::Arc<PerCpuArray<MapData, FastCounters>>,
}

impl std::fmt::Debug for FastControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastControl").finish_non_exhaustive()
    }
}

impl FastControl {
    /// The liveness mask: bit p set when port p is up (the next hop is
    /// chosen by it, primary or backup, as the workers choose).
    pub fn set_live(&self, mask: u64) {
        self.ctl
            .word(CtlWord::Live)
            .store(mask, std::sync::atomic::Ordering::Release);
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> Result<FastCounters> {
        let mut sum = FastCounters::default();
        for c in self.stats.get(&0, 0)?.iter() {
            sum.add(c);
        }
        Ok(sum)
    }
}

/// The fast path's maps (and, loaded alone, its program).
pub struct FastPath {
    /// The program's own `Ebpf` when loaded alone ([`FastPath::load`], for
    /// test runs); None when [`super::xdp::Steering`] owns it.
    prog: Option<Ebpf>,
    banks: [Bank; 2],
    ctl: std::sync::Arc<Mapped<FastCtl>>,
    tx_ports: DevMap<MapData>,
    rx_ports: aya::maps::Array<MapData, FastRxPort>,
    stats: std::sync::Arc<PerCpuArray<MapData, FastCounters>>,
    /// Bit p: port p has a tx device ([`FastPath::set_port`]).
    ports: u64,
    /// Bit p: port p cannot take redirected frames ([`FastPath::set_blocked`]).
    blocked: u64,
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath").finish_non_exhaustive()
    }
}

/// xdp_fast.o's name for its program.
pub const FAST_PROGRAM: &str = "xdp_fast";

/// The object: the fast path, with the steering (steer.h) for the rest.
pub(crate) fn object() -> &'static [u8] {
    FAST_OBJ
}

impl FastPath {
    /// Loads xdp_fast.o and its maps into the kernel, not attached (needs
    /// CAP_BPF / root): disabled (every frame to the slow path), bank 0
    /// active and empty, no port live.
    pub fn load() -> Result<FastPath> {
        super::xdp::raise_memlock();
        let mut bpf = Ebpf::load(FAST_OBJ).context("loading xdp_fast.o")?;
        let prog: &mut Xdp = bpf
            .program_mut(FAST_PROGRAM)
            .context("xdp_fast missing from the object")?
            .try_into()?;
        prog.load()
            .context("the kernel refused the XDP fast-path program")?;
        let mut fp = FastPath::take(&mut bpf)?;
        fp.prog = Some(bpf);
        Ok(fp)
    }

    /// Takes the fast path's maps out of a loaded xdp_fast.o (the steering
    /// keeps the program and the steering maps it shares).
    pub fn take(bpf: &mut Ebpf) -> Result<FastPath> {
        let tx = bpf.take_map("tx_ports").context("tx_ports")?;
        let rx = bpf.take_map("rx_ports").context("rx_ports")?;
        let st = bpf.take_map("fast_stats").context("fast_stats")?;
        Ok(FastPath {
            prog: None,
            banks: [Bank::take(bpf, 0)?, Bank::take(bpf, 1)?],
            ctl: std::sync::Arc::new(Mapped::take(bpf, "fast_ctl", 1)?),
            tx_ports: DevMap::try_from(tx)?,
            rx_ports: aya::maps::Array::try_from(rx)?,
            stats: std::sync::Arc::new(PerCpuArray::try_from(st)?),
            ports: 0,
            blocked: 0,
        })
    }

    fn load_word(&self, w: CtlWord) -> u64 {
        self.ctl.word(w).load(std::sync::atomic::Ordering::Acquire)
    }

    fn store_word(&self, w: CtlWord, v: u64) {
        // Release: every value written into a bank before is visible to a
        // program run that reads this word.
        self.ctl
            .word(w)
            .store(v, std::sync::atomic::Ordering::Release)
    }

    /// The active bank (the one in force unless a staged bank is due).
    pub fn active_bank(&self) -> u32 {
        (self.load_word(CtlWord::Active) & 1) as u32
    }

    /// The staged bank and its CLOCK_MONOTONIC instant, if any.
    pub fn staged(&self) -> Option<(u32, u64)> {
        let s = self.load_word(CtlWord::Sched);
        (s != 0).then_some(((s >> 63) as u32, s & !FAST_SCHED_BANK))
    }

    /// Whether the program forwards at all (else every frame takes the
    /// slow path).
    pub fn enabled(&self) -> bool {
        self.load_word(CtlWord::Enabled) != 0
    }

    pub fn set_enabled(&self, on: bool) {
        self.store_word(CtlWord::Enabled, on as u64);
    }

    /// Writes `fib` into `bank`, which must be neither active nor staged.
    pub fn write_bank(&mut self, bank: u32, fib: &FastFib) -> Result<()> {
        if bank > 1 {
            bail!("bank {bank} does not exist (0 or 1)");
        }
        if bank == self.active_bank() {
            bail!("bank {bank} is active: write the idle bank, then publish");
        }
        if self.staged().is_some_and(|(b, _)| b == bank) {
            bail!("bank {bank} is staged: unstage it first");
        }
        self.banks[bank as usize].write(fib)
    }

    /// Makes `bank` the active one, enabled, with nothing staged: one
    /// store each; a frame reads them once.
    pub fn publish(&self, bank: u32) {
        self.store_word(CtlWord::Active, u64::from(bank & 1));
        self.store_word(CtlWord::Sched, 0);
        self.set_enabled(true);
    }

    /// Puts `bank` in force from CLOCK_MONOTONIC instant `at_mono` (ns,
    /// bpf_ktime_get_ns), per frame, without user space at the instant.
    pub fn stage(&self, bank: u32, at_mono: u64) {
        let at = (at_mono & !FAST_SCHED_BANK).max(1);
        self.store_word(CtlWord::Sched, u64::from(bank & 1) << 63 | at);
    }

    /// Drops the staged bank (frames stay on the active one).
    pub fn unstage(&self) {
        self.store_word(CtlWord::Sched, 0);
    }

    /// Writes `fib` into the idle bank and publishes it; returns the new
    /// active bank. No grace period here: a caller that installs FIBs back
    /// to back under traffic leaves [`FAST_GRACE`] between installs
    /// (`crate::fast_publish` does); tests run frames one at a time.
    pub fn install(&mut self, fib: &FastFib) -> Result<u32> {
        self.unstage();
        let idle = 1 - self.active_bank();
        self.write_bank(idle, fib)?;
        self.publish(idle);
        Ok(idle)
    }

    /// The handle housekeeping keeps: liveness and counters, lock-free.
    pub fn control(&self) -> FastControl {
        FastControl {
            ctl: self.ctl.clone(),
            stats: self.stats.clone(),
        }
    }

    /// The liveness mask ([`FastControl::set_live`]).
    pub fn set_live(&self, mask: u64) {
        self.control().set_live(mask)
    }

    /// Ports that cannot take frames redirected in XDP now: frames whose
    /// chosen next hop is on one go to the slow path. So is a port with no
    /// tx device ([`FastPath::set_port`]).
    pub fn set_blocked(&mut self, mask: u64) {
        self.blocked = mask;
        self.store_word(CtlWord::TxOk, self.ports & !mask);
    }

    /// Port `port` is interface `ifindex`: frames redirected to the port
    /// go out of it, and frames the program finishes that came in on it
    /// count in the port's `rx`. Returns false when the interface could not
    /// take an `rx_ports` slot (an earlier port's ifindex holds it, the
    /// same modulo FAST_RX_SLOTS): its frames then count in
    /// `rx[FAST_MAX_PORTS]`, and forwarding is unaffected.
    pub fn set_port(&mut self, port: u16, ifindex: u32) -> Result<bool> {
        if port as usize >= FAST_MAX_PORTS {
            bail!("port {port} is beyond the fast path's {FAST_MAX_PORTS}");
        }
        if ifindex == 0 {
            bail!("port {port}: ifindex 0 names no interface");
        }
        self.tx_ports.set(port as u32, ifindex, None, 0)?;
        self.ports |= 1 << port;
        self.set_blocked(self.blocked);
        let slot = ifindex & (FAST_RX_SLOTS - 1);
        let held = self.rx_ports.get(&slot, 0)?;
        if held.ifindex != 0 && held.ifindex != ifindex {
            return Ok(false);
        }
        if held.ifindex == 0 {
            let v = FastRxPort {
                ifindex,
                port: port.into(),
            };
            self.rx_ports.set(slot, v, 0)?;
        }
        Ok(true)
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> Result<FastCounters> {
        self.control().counters()
    }

    /// Runs the program `repeat` times on `frame` in one BPF_PROG_TEST_RUN
    /// and returns its action and the kernel's mean time per run (the
    /// syscall and copies not included). The frame is NOT reset between
    /// runs: the program sees its own output again, so a swap must map its
    /// label to itself and have TTL to spare (`repeat` < the TTL) to stay
    /// a swap. For the program's cost per frame (bench/examples).
    pub fn time_run(&self, frame: &[u8], repeat: u32) -> Result<(u32, std::time::Duration)> {
        super::xdp::time_run(self.program()?, frame, repeat)
    }

    /// Runs the program once on `frame` (BPF_PROG_TEST_RUN, 256 bytes of
    /// XDP headroom); the frame as it leaves is written to `out`. Returns the
    /// XDP action and the output length. Frames shorter than an Ethernet
    /// header are refused by the kernel (EINVAL). Only for a fast path
    /// loaded alone ([`FastPath::load`]).
    pub fn test_run(&self, frame: &[u8], out: &mut [u8]) -> Result<(u32, usize)> {
        let r = super::xdp::test_run(self.program()?, frame, out, 1)?;
        Ok((r.return_value, r.data_size_out as usize))
    }

    /// Attaches the program, loaded alone, in generic (SKB) mode to
    /// `iface` until this value is dropped. For timing only: while a
    /// program is attached somewhere it stays in the kernel's XDP
    /// dispatcher, so BPF_PROG_TEST_RUN does not patch it in and out around
    /// every call (text poking and RCU waits, ~24 ms a call on the test VM,
    /// which also leaves caches cold for the runs that follow). Use an
    /// interface of a private network namespace (bench/examples).
    pub fn hold(&mut self, iface: &str) -> Result<()> {
        let prog: &mut Xdp = self
            .prog
            .as_mut()
            .context("hold needs FastPath::load (the program is the steering's)")?
            .program_mut(FAST_PROGRAM)
            .context("xdp_fast")?
            .try_into()?;
        prog.attach(iface, XdpMode::Skb)
            .with_context(|| format!("attaching xdp_fast to {iface} (generic mode)"))?;
        Ok(())
    }

    /// The program, when loaded alone.
    fn program(&self) -> Result<&Xdp> {
        Ok(self
            .prog
            .as_ref()
            .context("test runs need FastPath::load (the program is the steering's)")?
            .program(FAST_PROGRAM)
            .context("xdp_fast")?
            .try_into()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of ELF64 (little-endian) section `name` in `obj`.
    fn section<'a>(obj: &'a [u8], name: &str) -> Option<&'a [u8]> {
        let u16_at = |o: usize| Some(u16::from_le_bytes(obj.get(o..o + 2)?.try_into().ok()?));
        let u32_at = |o: usize| Some(u32::from_le_bytes(obj.get(o..o + 4)?.try_into().ok()?));
        let u64_at = |o: usize| Some(u64::from_le_bytes(obj.get(o..o + 8)?.try_into().ok()?));
        let shoff = u64_at(0x28)? as usize;
        let (shentsize, shnum) = (u16_at(0x3a)? as usize, u16_at(0x3c)? as usize);
        let hdr = |i: usize| shoff + i * shentsize;
        let strtab = u64_at(hdr(u16_at(0x3e)? as usize) + 24)? as usize;
        (0..shnum).find_map(|i| {
            let n = strtab + u32_at(hdr(i))? as usize;
            let end = n + obj.get(n..)?.iter().position(|&b| b == 0)?;
            if &obj[n..end] != name.as_bytes() {
                return None;
            }
            let (off, size) = (u64_at(hdr(i) + 24)? as usize, u64_at(hdr(i) + 32)? as usize);
            obj.get(off..off + size)
        })
    }

    /// For each bpf_redirect_map call (BPF_JMP | BPF_CALL, imm 51) in the
    /// BPF code `code`: whether its map argument is fixed at the site, i.e.
    /// r1 is loaded with a map (ld_imm64, opcode 0x18, dst r1) earlier in
    /// the call's own basic block (no jump lands between the load and the
    /// call). A site that several paths jump to with r1 set on each (a
    /// merged call) has no such load.
    fn redirect_sites(code: &[u8]) -> Vec<bool> {
        let insn: Vec<[u8; 8]> = code
            .chunks_exact(8)
            .map(|c| c.try_into().unwrap())
            .collect();
        let mut target = vec![false; insn.len() + 1];
        let mut starts = Vec::new();
        let mut i = 0;
        while i < insn.len() {
            starts.push(i);
            let (op, class) = (insn[i][0], insn[i][0] & 7);
            if (class == 5 || class == 6) && op != 0x85 && op != 0x95 {
                let off = i16::from_le_bytes([insn[i][2], insn[i][3]]) as isize;
                if let Some(t) = (i as isize + off + 1)
                    .try_into()
                    .ok()
                    .filter(|&t: &usize| t <= insn.len())
                {
                    target[t] = true;
                }
            }
            i += if op == 0x18 { 2 } else { 1 };
        }
        starts
            .iter()
            .enumerate()
            .filter(|(_, &pc)| insn[pc] == [0x85, 0, 0, 0, 51, 0, 0, 0])
            .map(|(k, _)| {
                let mut fixed = false;
                for &j in starts[..k].iter().rev() {
                    if target[j + if insn[j][0] == 0x18 { 2 } else { 1 }] {
                        break; // a jump lands right after j: the block starts there
                    }
                    if insn[j][0] == 0x18 && insn[j][1] & 0xf == 1 {
                        fixed = true;
                        break;
                    }
                }
                fixed
            })
            .collect()
    }

    #[test]
    fn each_redirect_names_its_map_at_its_call_site() {
        // bpf_redirect_map is called twice in the source (xdp_fast.c to
        // tx_ports, steer.h to xsks_map), from several inlined copies.
        // The verifier calls the map's own redirect directly only where a
        // call site sees one map; merged into one site (what bpf-build's
        // -enable-tail-merge=false prevents), every frame pays an indirect
        // call through the generic helper.
        let code = section(FAST_OBJ, "xdp").expect("section xdp in xdp_fast.o");
        let sites = redirect_sites(code);
        assert!(
            sites.len() >= 3,
            "{} bpf_redirect_map call sites",
            sites.len()
        );
        assert!(
            sites.iter().all(|&fixed| fixed),
            "a bpf_redirect_map call site whose map is chosen at run time: {sites:?}"
        );
    }
}
