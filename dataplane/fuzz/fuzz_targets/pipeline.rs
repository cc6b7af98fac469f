//! cargo-fuzz target: arbitrary bytes through the pipeline must never panic,
//! never write past the frame, and always get one counted verdict.
//! Run: `cd dataplane/fuzz && cargo +nightly fuzz run pipeline`.
#![no_main]

use dataplane::fib::*;
use dataplane::pipeline::{process, Frame, Verdict};
use dataplane::stats::{Counters, DropReason};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn fib() -> &'static FibSnapshot {
    static F: OnceLock<FibSnapshot> = OnceLock::new();
    F.get_or_init(|| {
        let mut b = FibBuilder::new();
        b.port(0, PortConfig::default()).port(1, PortConfig { mtu: 80 });
        let nh = NextHop {
            port: 0,
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
            vlan: None,
            push: vec![],
            backup: None,
        };
        let n0 = b.next_hop(nh.clone());
        let n1 = b.next_hop(NextHop { port: 1, push: vec![16, 17, 18], backup: Some(n0), ..nh });
        let g = [b.group(&[n0]), b.group(&[n0, n1])];
        for l in 16..64u32 {
            let a = match l % 3 {
                0 => IlmAction::Pop,
                1 => IlmAction::Swap { out_label: 3, nhg: g[0] },
                _ => IlmAction::Swap { out_label: l, nhg: g[1] },
            };
            b.label(l, a);
        }
        b.route_v4("0.0.0.0".parse().unwrap(), 0, g[1]);
        b.route_v6("::".parse().unwrap(), 0, g[0]);
        b.build().unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let (live, headroom, frame) = match data {
        [a, b, rest @ ..] => (u64::from(*a) * 0x0101_0101_0101_0101, (*b % 64) as usize, rest),
        _ => return,
    };
    let mut buf = vec![0u8; headroom + frame.len()];
    buf[headroom..].copy_from_slice(frame);
    let mut c = Counters::default();
    let mut v = [Verdict::Drop(DropReason::Malformed)];
    let mut f = [Frame::new(&mut buf, headroom, frame.len()).unwrap()];
    process(fib(), live, &mut f, &mut v, &mut c);
    assert_eq!(c.forwarded + c.dropped() + c.punted(), 1);
});
