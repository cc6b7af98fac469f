//! The XDP fast path's two banks (root only; skipped with a message
//! otherwise): a FIB written to the idle bank is seen only after it is
//! published, reusing a bank clears the labels its previous FIB bound, and
//! the active bank cannot be written.

#[path = "../../core/tests/common/mod.rs"]
mod common;
use common::*;
use dataplane::fast_path::compile;
use dataplane::sys::fast_maps::{action, FastPath};
use orbitmesh_core::fib::*;
use orbitmesh_core::stats::DropReason;

fn is_root() -> bool {
    dataplane::sys::cred::euid() == 0
}

/// Labels `labels` swap to `out` towards `ports.len()` paths (ECMP when
/// more than one), each pushing `push` and tagging with `vlan`.
fn fib(labels: &[u32], out: u32, ports: &[u16], push: &[u32], vlan: Option<u16>) -> FibSnapshot {
    let mut b = FibBuilder::new().hash_seed(7);
    for p in 0..4 {
        b.port(p, PortConfig { mtu: 1500 });
    }
    for &p in ports {
        b.next_hop(NextHop {
            port: p,
            dst_mac: [2, 0, 0, 0, 9, p as u8],
            src_mac: [2, 0, 0, 0, 8, p as u8],
            vlan,
            push: push.to_vec(),
            backup: None,
        });
    }
    let members: Vec<NhId> = (0..ports.len() as u32).map(NhId).collect();
    b.group(&members);
    for &l in labels {
        b.label(
            l,
            IlmAction::Swap {
                out_label: out,
                nhg: NhgId(0),
            },
        );
    }
    b.build().unwrap()
}

fn frame(label: u32) -> Vec<u8> {
    let ip = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 64, 0, 1000, 2000, 18);
    cat(&[
        &eth([2; 6], [4; 6], None, ET_MPLS),
        &labels(&[(label, 0, 64)]),
        &ip,
    ])
}

fn loaded() -> Option<FastPath> {
    if !is_root() {
        eprintln!("SKIPPED: needs root (BPF)");
        return None;
    }
    let mut fp = FastPath::load().expect("loading xdp_fast.o");
    for p in 0..4 {
        fp.set_port(p, 1).unwrap();
    }
    fp.set_live(u64::MAX);
    Some(fp)
}

/// The out label of a forwarded frame, or None with the XDP action.
fn swapped(fp: &FastPath, f: &[u8]) -> Result<u32, u32> {
    let mut out = [0u8; 512];
    let (act, n) = fp.test_run(f, &mut out).unwrap();
    if act != action::REDIRECT {
        return Err(act);
    }
    assert_eq!(n, f.len());
    Ok(u32::from_be_bytes(out[14..18].try_into().unwrap()) >> 12)
}

#[test]
fn a_fib_is_seen_only_once_published_and_banks_are_reused_clean() {
    let Some(mut fp) = loaded() else { return };
    assert_eq!(fp.active_bank(), 0);
    // Nothing installed: the fast path is disabled, every frame goes to
    // the slow path (steer(): no port configured here, so XDP_PASS).
    assert_eq!(swapped(&fp, &frame(100)), Err(action::PASS));
    // Enabled on bank 0, empty: every label unbound.
    fp.publish(0);
    assert_eq!(swapped(&fp, &frame(100)), Err(action::DROP));
    let a = compile(&fib(&[100, 101], 200, &[0], &[], None)).unwrap();
    let b = compile(&fib(&[100], 300, &[1], &[], None)).unwrap();
    // Written, not published: still the empty bank.
    fp.write_bank(1, &a).unwrap();
    assert_eq!(swapped(&fp, &frame(100)), Err(action::DROP));
    assert!(fp.write_bank(0, &a).is_err(), "the active bank is refused");
    // Published into the idle bank 1 (over the unpublished A).
    assert_eq!(fp.install(&b).unwrap(), 1);
    assert_eq!(swapped(&fp, &frame(100)), Ok(300));
    assert_eq!(fp.install(&a).unwrap(), 0);
    assert_eq!(swapped(&fp, &frame(100)), Ok(200));
    assert_eq!(swapped(&fp, &frame(101)), Ok(200));
    assert_eq!(fp.install(&b).unwrap(), 1);
    assert_eq!(swapped(&fp, &frame(101)), Err(action::DROP));
    // Bank 0 held A, which bound 101: B written over it must unbind it.
    assert_eq!(fp.install(&b).unwrap(), 0);
    assert_eq!(swapped(&fp, &frame(100)), Ok(300));
    assert_eq!(swapped(&fp, &frame(101)), Err(action::DROP));
    let c = fp.counters().unwrap();
    assert_eq!(c.drops[DropReason::NoLabelRoute as usize], 4);
    assert_eq!((c.tx[0], c.tx[1], c.forwarded), (2, 2, 4));
}

#[test]
fn a_staged_bank_is_in_force_from_its_instant_and_disabled_means_slow() {
    let Some(mut fp) = loaded() else { return };
    let a = compile(&fib(&[100], 200, &[0], &[], None)).unwrap();
    let b = compile(&fib(&[100], 300, &[1], &[], None)).unwrap();
    assert_eq!(fp.install(&a).unwrap(), 1);
    fp.write_bank(0, &b).unwrap();
    // Staged an hour from now: A stays in force.
    let now = dataplane::sys::clock::monotonic_ns();
    fp.stage(0, now + 3_600_000_000_000);
    assert_eq!(fp.staged(), Some((0, now + 3_600_000_000_000)));
    assert_eq!(swapped(&fp, &frame(100)), Ok(200));
    assert!(fp.write_bank(0, &a).is_err(), "the staged bank is refused");
    // Staged for an instant already past: B is in force per frame, with no
    // change of the active bank.
    fp.stage(0, now);
    assert_eq!(swapped(&fp, &frame(100)), Ok(300));
    assert_eq!(fp.active_bank(), 1);
    // Unstaged: back to A.
    fp.unstage();
    assert_eq!(swapped(&fp, &frame(100)), Ok(200));
    // Disabled: the slow path, whatever the banks hold.
    fp.set_enabled(false);
    assert_eq!(swapped(&fp, &frame(100)), Err(action::PASS));
    fp.set_enabled(true);
    assert_eq!(swapped(&fp, &frame(100)), Ok(200));
    // A port down with no backup: the slow path.
    fp.set_live(!1);
    assert_eq!(swapped(&fp, &frame(100)), Err(action::PASS));
    // A live port that cannot take redirected frames: the slow path too.
    fp.set_live(u64::MAX);
    fp.set_blocked(1);
    assert_eq!(swapped(&fp, &frame(100)), Err(action::PASS));
    fp.set_blocked(0);
    assert_eq!(swapped(&fp, &frame(100)), Ok(200));
}
