//! The body of the cargo-fuzz target (core/fuzz) as a plain function,
//! so the stable property tests (tests/no_panic.rs) run exactly what the
//! fuzzer runs: one frame through the pipeline must never panic, never write
//! past the frame, and always get one counted verdict.
//!
//! Included with `#[path]` by both; it only uses the core crate's public API.

use orbitmesh_core::fib::*;
use orbitmesh_core::pipeline::{process, Frame, Verdict};
use orbitmesh_core::stats::{Counters, DropReason};
use std::sync::OnceLock;

/// One fuzzer input: byte 0 sets the port liveness mask (repeated in every
/// byte of it), byte 1 the headroom in front of the frame (0..64), the rest
/// is the frame. Shorter inputs are ignored.
pub fn run(data: &[u8]) {
    if let [live, headroom, frame @ ..] = data {
        let live = u64::from(*live) * 0x0101_0101_0101_0101;
        check(frame, usize::from(*headroom % 64), live);
    }
}

/// A FIB that binds a few labels with every action, and routes.
fn fib() -> &'static FibSnapshot {
    static F: OnceLock<FibSnapshot> = OnceLock::new();
    F.get_or_init(|| {
        let mut b = FibBuilder::new().hash_seed(1);
        b.port(0, PortConfig::default())
            .port(1, PortConfig { mtu: 80 });
        let plain = NextHop {
            port: 0,
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
            vlan: None,
            push: vec![],
            backup: None,
        };
        let n0 = b.next_hop(plain.clone());
        let n1 = b.next_hop(NextHop {
            port: 1,
            push: vec![16, 17, 18, 19, 20, 21],
            backup: Some(n0),
            vlan: Some(5),
            ..plain.clone()
        });
        let n2 = b.next_hop(NextHop {
            push: vec![100],
            ..plain
        });
        let g = [b.group(&[n0]), b.group(&[n0, n1, n2]), b.group(&[n1])];
        for l in 16..64u32 {
            let a = match l % 4 {
                0 => IlmAction::Pop,
                1 => IlmAction::Swap {
                    out_label: 3,
                    nhg: g[(l as usize / 4) % 3],
                },
                2 => IlmAction::Swap {
                    out_label: l,
                    nhg: g[1],
                },
                _ => IlmAction::Swap {
                    out_label: 0,
                    nhg: g[2],
                },
            };
            b.label(l, a);
        }
        b.route_v4("0.0.0.0".parse().unwrap(), 0, g[1]);
        b.route_v4("10.0.0.0".parse().unwrap(), 8, g[2]);
        b.route_v6("::".parse().unwrap(), 0, g[1]);
        b.build().unwrap()
    })
}

pub fn check(bytes: &[u8], headroom: usize, live: u64) {
    let mut buf = vec![0xeeu8; headroom + bytes.len() + 8];
    buf[headroom..headroom + bytes.len()].copy_from_slice(bytes);
    let mut c = Counters::default();
    let mut v = [Verdict::Drop(DropReason::Malformed)];
    {
        let mut frames =
            [Frame::new(&mut buf[..headroom + bytes.len()], headroom, bytes.len()).unwrap()];
        process(fib(), live, &mut frames, &mut v, &mut c);
        let f = &frames[0];
        assert!(
            f.start() + f.len() == headroom + bytes.len(),
            "the frame's end never moves"
        );
    }
    assert_eq!(
        &buf[headroom + bytes.len()..],
        &[0xee; 8],
        "nothing written past the frame"
    );
    assert_eq!(c.rx, 1);
    assert_eq!(c.forwarded + c.dropped() + c.punted(), 1);
}
