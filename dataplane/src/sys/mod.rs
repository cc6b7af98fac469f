//! The only place in the dataplane where `unsafe` code is allowed (the aya
//! pattern: `aya/src/sys`). `unsafe_code` is denied for every target of the
//! workspace (the root `Cargo.toml` lint table: libraries, binaries, tests,
//! benches, examples); this module alone allows it, and everything else uses
//! the safe wrappers exported here.
//!
//! - [`epoch`]: an epoch-protected pointer cell (crossbeam-epoch) for the
//!   lock-free publication of FIB snapshots.
//! - [`clock`]: whether the host clock is synchronized (adjtimex); timer slack.
//! - [`mem`]: transparent huge pages for the big FIB tables.
//! - [`cred`]: peer credentials of the control socket (SO_PEERCRED), and
//!   whether a control connection has input waiting (recv MSG_PEEK).
//! - [`ring`]: the AF_XDP ring logic (frame pool, receive, transmit retry,
//!   fill share) over any ring set, and an in-memory fake of the rings.
//! - [`xsk`]: the kernel's AF_XDP UMEM and rings (xsk-rs), one set per worker.
//! - [`xdp`]: loading/attaching the XDP steering program (aya), host addresses.
//! - [`fast_maps`]: the XDP transit fast path's map layout (mirror of
//!   bpf/fast_maps.h), its loader and BPF_PROG_TEST_RUN.
//! - [`netdev`]: an interface's XDP features (generic netlink), i.e.
//!   whether frames redirected to it in XDP can leave.
//! - [`tap`]: the TAP interface punted frames are handed to the host through.
//! - [`alloc`]: a counting global allocator for tests that bound allocation.
#![allow(unsafe_code)]

pub mod alloc;
pub mod clock;
pub mod cred;
pub mod epoch;
pub mod fast_maps;
pub mod mem;
pub mod netdev;
pub mod ring;
pub mod signal;
pub mod tap;
pub mod xdp;
pub mod xsk;
