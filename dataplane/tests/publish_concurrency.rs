//! Readers forward while a writer publishes thousands of snapshots: every
//! packet must be forwarded exactly as one published snapshot says (no torn
//! read across the label, the next hop and the version), and each reader
//! sees versions in publication order.

// The FIB fixtures the core's pipeline tests use.
#[path = "../../core/tests/common/mod.rs"]
mod common;
use common::*;
use dataplane::publish::FibHandle;
use orbitmesh_core::fib::*;
use orbitmesh_core::pipeline::{process, Frame, Verdict};
use orbitmesh_core::stats::Counters;
use orbitmesh_core::wire::mpls::Lse;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const SNAPSHOTS: u64 = 3000;

/// Version v swaps 16000 to 20000 + v and sends to a MAC that also encodes
/// v, on port v % 2; a reader can tell which snapshot forwarded a frame
/// and whether the pieces came from one snapshot.
fn snapshot(v: u64) -> FibSnapshot {
    let mut b = FibBuilder::new().version(v);
    b.port(0, PortConfig::default())
        .port(1, PortConfig::default());
    let vb = (v as u32).to_be_bytes();
    let n = b.next_hop(NextHop {
        port: (v % 2) as u16,
        dst_mac: [2, vb[0], vb[1], vb[2], vb[3], 1],
        src_mac: [2, 0, 0, 0, 0, 9],
        vlan: None,
        push: vec![],
        backup: None,
    });
    let g = b.group(&[n]);
    b.label(
        16000,
        IlmAction::Swap {
            out_label: 20000 + v as u32,
            nhg: g,
        },
    );
    b.build().unwrap()
}

#[test]
fn readers_see_whole_snapshots_in_order_while_a_writer_publishes() {
    let handle = Arc::new(FibHandle::new(snapshot(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let input = cat(&[
        &eth([2; 6], [4; 6], None, ET_MPLS),
        &labels(&[(16000, 0, 64)]),
        &[0x45; 4],
    ]);

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (handle, stop, input) = (handle.clone(), stop.clone(), input.clone());
            std::thread::spawn(move || {
                let mut last = 0u64;
                let mut batches = 0u64;
                let mut bufs = vec![vec![0u8; 64 + input.len()]; 32];
                let mut verdicts = [Verdict::Forward(0); 32];
                let mut c = Counters::default();
                while !stop.load(Ordering::Relaxed) || batches < 100 {
                    let guard = crossbeam_epoch::pin();
                    let fib = handle.load(0, &guard);
                    let version = fib.version();
                    let mut frames: Vec<Frame> = bufs
                        .iter_mut()
                        .map(|b| {
                            b[64..].copy_from_slice(&input);
                            Frame::new(b, 64, input.len()).unwrap()
                        })
                        .collect();
                    process(fib, u64::MAX, &mut frames, &mut verdicts, &mut c);
                    for (f, v) in frames.iter().zip(verdicts) {
                        let d = f.data();
                        let label = Lse::from_bytes(d[14..18].try_into().unwrap()).label() as u64;
                        let mac = u32::from_be_bytes(d[1..5].try_into().unwrap()) as u64;
                        let seen = label - 20000;
                        assert_eq!(seen, mac, "label and next hop from different snapshots");
                        assert_eq!(seen, version, "frame and reported version disagree");
                        assert_eq!(v, Verdict::Forward((seen % 2) as u16));
                    }
                    assert!(
                        version >= last,
                        "version went back from {last} to {version}"
                    );
                    last = version;
                    batches += 1;
                }
                (batches, last, c.forwarded)
            })
        })
        .collect();

    for v in 1..=SNAPSHOTS {
        handle.publish(snapshot(v));
        if v % 100 == 0 {
            handle.reclaim();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let (batches, last, forwarded) = r.join().expect("reader panicked");
        assert!(batches >= 100);
        assert_eq!(forwarded, batches * 32);
        assert!(last <= SNAPSHOTS);
    }
    assert_eq!(handle.current().version(), SNAPSHOTS);
    // Everything retired is freed once readers are gone (the previous
    // snapshot stays for rollback).
    let mut left = usize::MAX;
    for _ in 0..1000 {
        left = handle.reclaim();
        if left <= 1 {
            break;
        }
    }
    assert!(left <= 1, "{left} snapshots still retired");
}

#[test]
fn staged_flip_happens_at_the_first_batch_at_or_after_its_time() {
    let handle = FibHandle::new(snapshot(1));
    handle.stage(snapshot(2), 5_000, 0);
    let versions: Vec<u64> = (0..10u64)
        .map(|i| handle.load(i * 1_000, &crossbeam_epoch::pin()).version())
        .collect();
    assert_eq!(versions, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
}
