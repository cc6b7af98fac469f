//! The fast path's publisher against the workers' FIB handle (root only;
//! skipped with a message otherwise): random sequences of publish, stage
//! (due and not due), promotion, unstage, activation, rollback and
//! exchange on a `FibHandle` whose observer is a `FastPublisher`; after
//! each, a frame run through the XDP program (BPF_PROG_TEST_RUN) must leave
//! with the out label of the FIB the workers would use now
//! (`FibHandle::load`). Also: a rollback to the FIB the idle bank still
//! holds is a flip, without a write or a grace period.

#[path = "../../core/tests/common/mod.rs"]
mod common;
use common::*;
use dataplane::fast_publish::FastPublisher;
use dataplane::publish::FibHandle;
use dataplane::sys::fast_maps::{action, FastPath};
use orbitmesh_core::fib::*;
use orbitmesh_core::time::now_ns;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::sync::{Arc, Mutex};

fn is_root() -> bool {
    dataplane::sys::cred::euid() == 0
}

/// Label 100 swaps to `out` on port 0.
fn fib(version: u64, out: u32) -> FibSnapshot {
    let mut b = FibBuilder::new().version(version);
    b.port(0, PortConfig { mtu: 1500 });
    b.next_hop(NextHop {
        port: 0,
        dst_mac: [2, 0, 0, 0, 9, 0],
        src_mac: [2, 0, 0, 0, 8, 0],
        vlan: None,
        push: vec![],
        backup: None,
    });
    b.group(&[NhId(0)]);
    b.label(
        100,
        IlmAction::Swap {
            out_label: out,
            nhg: NhgId(0),
        },
    );
    b.build().unwrap()
}

fn frame() -> Vec<u8> {
    let ip = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 64, 0, 1000, 2000, 18);
    cat(&[
        &eth([2; 6], [4; 6], None, ET_MPLS),
        &labels(&[(100, 0, 64)]),
        &ip,
    ])
}

/// The out label XDP gives label 100 now.
fn xdp_out(p: &Mutex<FastPublisher>) -> u32 {
    let mut out = [0u8; 512];
    let (act, _) = p
        .lock()
        .unwrap()
        .maps()
        .test_run(&frame(), &mut out)
        .unwrap();
    assert_eq!(act, action::REDIRECT, "XDP did not switch the frame");
    u32::from_be_bytes(out[14..18].try_into().unwrap()) >> 12
}

/// The out label the workers' FIB gives label 100 now.
fn workers_out(h: &FibHandle) -> u32 {
    let g = crossbeam_epoch::pin();
    match h.load(now_ns(), &g).ilm(100) {
        Some(IlmAction::Swap { out_label, .. }) => out_label,
        other => panic!("label 100 is {other:?}"),
    }
}

fn setup() -> Option<(FibHandle, Arc<Mutex<FastPublisher>>)> {
    if !is_root() {
        eprintln!("SKIPPED: needs root (BPF)");
        return None;
    }
    let fp = FastPath::load().expect("loading xdp_fast.o");
    fp.set_live(u64::MAX);
    let p = Arc::new(Mutex::new(
        FastPublisher::new(fp, &[("lo".into(), 1, false)]).unwrap(),
    ));
    let h = FibHandle::new(fib(1, 1000));
    let q = p.clone();
    h.set_observer(Box::new(move |cur, staged| {
        q.lock().unwrap().sync(cur, staged)
    }));
    Some((h, p))
}

#[test]
fn xdp_forwards_by_the_workers_fib_through_every_fib_operation() {
    let Some((h, p)) = setup() else { return };
    assert!(p.lock().unwrap().enabled());
    let mut r = StdRng::seed_from_u64(16);
    let mut v = 1;
    let mut ops = std::collections::BTreeMap::<&str, usize>::new();
    for step in 0..400 {
        v += 1;
        let out = 1000 + v as u32;
        let hour = 3_600_000_000_000;
        let op = match r.gen_range(0..8) {
            0 => {
                h.publish(fib(v, out));
                "publish"
            }
            1 => {
                h.stage(fib(v, out), now_ns() + hour, now_ns());
                "stage (an hour ahead)"
            }
            2 => {
                h.stage(fib(v, out), now_ns() - 1_000_000_000, now_ns());
                "stage (already due)"
            }
            3 => {
                h.promote_due(now_ns());
                "promote due"
            }
            4 => {
                h.unstage(now_ns());
                "unstage"
            }
            5 => {
                h.rollback();
                "rollback"
            }
            6 => {
                h.exchange();
                "exchange"
            }
            _ => {
                h.activate_staged();
                "activate staged"
            }
        };
        *ops.entry(op).or_default() += 1;
        assert_eq!(
            xdp_out(&p),
            workers_out(&h),
            "step {step}, after {op}: XDP and the workers disagree"
        );
    }
    eprintln!("operations: {ops:?}");
    assert!(ops.len() == 8, "every operation ran: {ops:?}");
}

#[test]
fn a_rollback_to_the_idle_bank_is_a_flip() {
    let Some((h, p)) = setup() else { return };
    h.publish(fib(2, 2000));
    assert_eq!(xdp_out(&p), 2000);
    // Bank A holds v1 and was retired just now: writing it would wait out
    // its grace period (10 ms); a flip back to it does not.
    let t = std::time::Instant::now();
    h.rollback();
    let took = t.elapsed();
    assert_eq!(xdp_out(&p), 1000);
    assert!(
        took < std::time::Duration::from_millis(5),
        "a rollback took {took:?}: it wrote a bank instead of flipping"
    );
}
