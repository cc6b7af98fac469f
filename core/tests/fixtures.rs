//! Byte fixtures: one hand-written frame in, the exact frame out, for every
//! forwarding rule of the pipeline (RFC 3031/3032/3443/4182/6790/7274, RFC
//! 1812 at the IP edge).

mod common;
use common::*;
use orbitmesh_core::fib::*;
use orbitmesh_core::pipeline::Verdict::{self, Drop, Forward, Punt};
use orbitmesh_core::stats::{DropReason as D, PuntReason as P};

const IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];
const A1: [u8; 6] = [0x02, 0, 0, 0, 1, 0xa1];
const B1: [u8; 6] = [0x02, 0, 0, 0, 1, 0xb1];
const A2: [u8; 6] = [0x02, 0, 0, 0, 2, 0xa2];
const B2: [u8; 6] = [0x02, 0, 0, 0, 2, 0xb2];

fn nh(port: u16, dst: [u8; 6], src: [u8; 6], push: &[u32]) -> NextHop {
    NextHop {
        port,
        dst_mac: dst,
        src_mac: src,
        vlan: None,
        push: push.to_vec(),
        backup: None,
    }
}

/// The fixture router. Ports 0-2 MTU 1500, port 3 MTU 100.
fn fib_with(ingress: TtlModel, egress: TtlModel) -> FibSnapshot {
    let mut b = FibBuilder::new()
        .version(1)
        .ttl_models(ingress, egress)
        .hash_seed(7);
    for p in 0..3 {
        b.port(p, PortConfig::default());
    }
    b.port(3, PortConfig { mtu: 100 });
    let n0 = b.next_hop(nh(1, A1, B1, &[]));
    let n1 = b.next_hop(nh(2, A2, B2, &[]));
    let n2 = b.next_hop(nh(1, A1, B1, &[16100]));
    let n3 = b.next_hop(nh(1, A1, B1, &[24001, 16200]));
    let n4 = b.next_hop(nh(3, A1, B1, &[16300]));
    let n5 = b.next_hop(nh(2, A2, B2, &[]));
    let n6 = b.next_hop(NextHop {
        backup: Some(n5),
        ..nh(1, A1, B1, &[])
    });
    let n7 = b.next_hop(NextHop {
        vlan: Some(42),
        ..nh(2, A2, B2, &[])
    });
    let g0 = b.group(&[n0]);
    let g1 = b.group(&[n0, n1]);
    let g2 = b.group(&[n2]);
    let g3 = b.group(&[n3]);
    let g4 = b.group(&[n4]);
    let g5 = b.group(&[n6]);
    let g6 = b.group(&[n7]);
    let swap = |out_label, nhg| IlmAction::Swap { out_label, nhg };
    b.label(16001, swap(16001, g0))
        .label(16002, swap(3, g0))
        .label(16003, IlmAction::Pop)
        .label(16004, swap(16004, g1))
        .label(16005, swap(16555, g3))
        .label(16006, swap(16006, g5))
        .label(16007, swap(0, g0))
        .label(16008, swap(16008, g4))
        .label(16009, swap(16009, g6));
    b.route_v4("10.1.0.0".parse().unwrap(), 16, g2)
        .route_v4("10.2.0.0".parse().unwrap(), 16, g0)
        .route_v4("10.3.0.0".parse().unwrap(), 16, g3)
        .route_v4("10.9.0.0".parse().unwrap(), 16, g1);
    b.route_v6("2001:db8:1::".parse().unwrap(), 48, g2)
        .route_v6("2001:db8:2::".parse().unwrap(), 48, g0);
    b.build().unwrap()
}

fn fib() -> FibSnapshot {
    fib_with(TtlModel::Uniform, TtlModel::Uniform)
}

fn ip() -> Vec<u8> {
    ipv4_udp([192, 0, 2, 1], [10, 2, 0, 5], 50, 0, 1000, 2000, 10)
}

fn mpls_in(stack: &[u8], payload: &[u8]) -> Vec<u8> {
    cat(&[&eth(IN_MAC, PEER, None, ET_MPLS), stack, payload])
}

fn expect(fib: &FibSnapshot, input: &[u8], verdict: Verdict, output: &[u8]) {
    let (v, out, c) = run(fib, ALL_UP, input);
    assert_eq!(v, verdict);
    assert_eq!(out, output, "\n got {out:02x?}\nwant {output:02x?}");
    assert_eq!(c.rx, 1);
    assert_eq!(c.forwarded, 1);
}

fn expect_verdict(fib: &FibSnapshot, live: u64, input: &[u8], verdict: Verdict) {
    let (v, out, c) = run(fib, live, input);
    assert_eq!(v, verdict);
    match verdict {
        Drop(r) => {
            assert_eq!(c.drop_count(r), 1);
            assert_eq!(out, input, "a dropped frame is left as it was");
        }
        Punt(r) => assert_eq!(c.punt_count(r), 1),
        Forward(_) => assert_eq!(c.forwarded, 1),
    }
}

#[test]
fn transit_swap_decrements_ttl_keeps_tc_and_rewrites_macs() {
    let input = mpls_in(&labels(&[(16001, 5, 64)]), &ip());
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(16001, 5, 63)]),
        &ip(),
    ]);
    expect(&fib(), &input, Forward(1), &want);
}

#[test]
fn swap_keeps_the_labels_beneath_untouched() {
    let input = mpls_in(&labels(&[(16001, 0, 64), (16100, 3, 9), (99, 1, 8)]), &ip());
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(16001, 0, 63), (16100, 3, 9), (99, 1, 8)]),
        &ip(),
    ]);
    expect(&fib(), &input, Forward(1), &want);
}

#[test]
fn vlan_tag_is_read_on_input_and_written_by_the_next_hop() {
    let input = cat(&[
        &eth(IN_MAC, PEER, Some(7), ET_MPLS),
        &labels(&[(16001, 0, 64)]),
        &ip(),
    ]);
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(16001, 0, 63)]),
        &ip(),
    ]);
    expect(&fib(), &input, Forward(1), &want);

    let input = mpls_in(&labels(&[(16009, 0, 64)]), &ip());
    let want = cat(&[
        &eth(A2, B2, Some(42), ET_MPLS),
        &labels(&[(16009, 0, 63)]),
        &ip(),
    ]);
    expect(&fib(), &input, Forward(2), &want);
}

#[test]
fn swap_and_push_more() {
    let input = mpls_in(&labels(&[(16005, 2, 64)]), &ip());
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(24001, 2, 63), (16200, 2, 63), (16555, 2, 63)]),
        &ip(),
    ]);
    expect(&fib(), &input, Forward(1), &want);
}

#[test]
fn swap_to_explicit_null() {
    let input = mpls_in(&labels(&[(16007, 0, 64)]), &ip());
    let want = cat(&[&eth(A1, B1, None, ET_MPLS), &labels(&[(0, 0, 63)]), &ip()]);
    expect(&fib(), &input, Forward(1), &want);
}

#[test]
fn penultimate_hop_pop_uniform_copies_ttl_into_ip() {
    let input = mpls_in(&labels(&[(16002, 0, 64)]), &ip());
    let want = cat(&[&eth(A1, B1, None, ET_V4), &with_ttl4(&ip(), 63)]);
    expect(&fib(), &input, Forward(1), &want);
}

#[test]
fn penultimate_hop_pop_pipe_leaves_ip_ttl() {
    let f = fib_with(TtlModel::Pipe, TtlModel::Pipe);
    let input = mpls_in(&labels(&[(16002, 0, 64)]), &ip());
    let want = cat(&[&eth(A1, B1, None, ET_V4), &ip()]);
    expect(&f, &input, Forward(1), &want);
}

#[test]
fn penultimate_hop_pop_of_an_outer_label_exposes_the_next() {
    let input = mpls_in(&labels(&[(16002, 0, 64), (16100, 0, 200)]), &ip());
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(16100, 0, 63)]),
        &ip(),
    ]);
    expect(&fib(), &input, Forward(1), &want);
    let f = fib_with(TtlModel::Pipe, TtlModel::Pipe);
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(16100, 0, 200)]),
        &ip(),
    ]);
    expect(&f, &input, Forward(1), &want);
}

#[test]
fn egress_pop_forwards_by_the_inner_ipv4_header() {
    let input = mpls_in(&labels(&[(16003, 0, 64)]), &ip());
    let want = cat(&[&eth(A1, B1, None, ET_V4), &with_ttl4(&ip(), 63)]);
    expect(&fib(), &input, Forward(1), &want);
    // Pipe: the IP hop decrements the IP TTL (short pipe).
    let f = fib_with(TtlModel::Uniform, TtlModel::Pipe);
    let want = cat(&[&eth(A1, B1, None, ET_V4), &with_ttl4(&ip(), 49)]);
    expect(&f, &input, Forward(1), &want);
}

#[test]
fn pop_and_continue_with_the_next_label() {
    let input = mpls_in(&labels(&[(16003, 0, 64), (16001, 4, 30)]), &ip());
    // Uniform: the popped label's TTL carries on.
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(16001, 4, 63)]),
        &ip(),
    ]);
    expect(&fib(), &input, Forward(1), &want);
    // Pipe: the inner label's own TTL.
    let f = fib_with(TtlModel::Pipe, TtlModel::Pipe);
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(16001, 4, 29)]),
        &ip(),
    ]);
    expect(&f, &input, Forward(1), &want);
}

#[test]
fn explicit_null_labels_pop_and_forward_by_the_inner_header() {
    let input = mpls_in(&labels(&[(0, 0, 64)]), &ip());
    let want = cat(&[&eth(A1, B1, None, ET_V4), &with_ttl4(&ip(), 63)]);
    expect(&fib(), &input, Forward(1), &want);

    let ip6 = ipv6_udp(v6("2001:db8:9::1"), v6("2001:db8:2::7"), 50, 1, 2, 4);
    let input = mpls_in(&labels(&[(2, 0, 64)]), &ip6);
    let want = cat(&[&eth(A1, B1, None, ET_V6), &with_hop6(&ip6, 63)]);
    expect(&fib(), &input, Forward(1), &want);

    // RFC 4182: explicit null need not be at the bottom.
    let input = mpls_in(&labels(&[(0, 0, 64), (16001, 0, 64)]), &ip());
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(16001, 0, 63)]),
        &ip(),
    ]);
    expect(&fib(), &input, Forward(1), &want);
}

#[test]
fn ingress_ipv4_push_uniform_and_pipe() {
    let ip = ipv4_udp([192, 0, 2, 1], [10, 1, 2, 3], 64, 0xb8, 1, 2, 0);
    let input = cat(&[&eth(IN_MAC, PEER, None, ET_V4), &ip]);
    // TC from the IP precedence (0xb8 >> 5 = 5); label TTL = IP TTL - 1.
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(16100, 5, 63)]),
        &with_ttl4(&ip, 63),
    ]);
    expect(&fib(), &input, Forward(1), &want);
    let f = fib_with(TtlModel::Pipe, TtlModel::Pipe);
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(16100, 5, 255)]),
        &with_ttl4(&ip, 63),
    ]);
    expect(&f, &input, Forward(1), &want);
}

#[test]
fn ingress_push_of_a_two_label_stack() {
    let ip = ipv4_udp([192, 0, 2, 1], [10, 3, 0, 1], 64, 0, 1, 2, 0);
    let input = cat(&[&eth(IN_MAC, PEER, None, ET_V4), &ip]);
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(24001, 0, 63), (16200, 0, 63)]),
        &with_ttl4(&ip, 63),
    ]);
    expect(&fib(), &input, Forward(1), &want);
}

#[test]
fn ingress_ipv6_push() {
    let ip6 = ipv6_udp(v6("2001:db8:9::1"), v6("2001:db8:1::1"), 64, 1, 2, 0);
    let input = cat(&[&eth(IN_MAC, PEER, None, ET_V6), &ip6]);
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(16100, 0, 63)]),
        &with_hop6(&ip6, 63),
    ]);
    expect(&fib(), &input, Forward(1), &want);
}

#[test]
fn plain_ip_forwarding_when_the_next_hop_pushes_nothing() {
    let input = cat(&[&eth(IN_MAC, PEER, None, ET_V4), &ip()]);
    let want = cat(&[&eth(A1, B1, None, ET_V4), &with_ttl4(&ip(), 49)]);
    expect(&fib(), &input, Forward(1), &want);
    let ip6 = ipv6_udp(v6("2001:db8:9::1"), v6("2001:db8:2::1"), 9, 1, 2, 0);
    let input = cat(&[&eth(IN_MAC, PEER, None, ET_V6), &ip6]);
    let want = cat(&[&eth(A1, B1, None, ET_V6), &with_hop6(&ip6, 8)]);
    expect(&fib(), &input, Forward(1), &want);
}

#[test]
fn ttl_expiry_is_dropped_and_counted() {
    let f = fib();
    for ttl in [0, 1] {
        expect_verdict(
            &f,
            ALL_UP,
            &mpls_in(&labels(&[(16001, 0, ttl)]), &ip()),
            Drop(D::TtlExpired),
        );
        let ip = ipv4_udp([1, 1, 1, 1], [10, 1, 0, 1], ttl, 0, 1, 2, 0);
        expect_verdict(
            &f,
            ALL_UP,
            &cat(&[&eth(IN_MAC, PEER, None, ET_V4), &ip]),
            Drop(D::TtlExpired),
        );
        let ip6 = ipv6_udp(v6("::1"), v6("2001:db8:1::1"), ttl, 1, 2, 0);
        expect_verdict(
            &f,
            ALL_UP,
            &cat(&[&eth(IN_MAC, PEER, None, ET_V6), &ip6]),
            Drop(D::TtlExpired),
        );
    }
    // Pipe egress: the inner IP TTL is checked at the IP hop.
    let f = fib_with(TtlModel::Pipe, TtlModel::Pipe);
    let ip1 = ipv4_udp([1, 1, 1, 1], [10, 2, 0, 1], 1, 0, 1, 2, 0);
    expect_verdict(
        &f,
        ALL_UP,
        &mpls_in(&labels(&[(16003, 0, 64)]), &ip1),
        Drop(D::TtlExpired),
    );
}

#[test]
fn reserved_labels_follow_rfc_3032_and_7274() {
    let f = fib();
    let one = |l| mpls_in(&labels(&[(l, 0, 64)]), &ip());
    expect_verdict(&f, ALL_UP, &one(1), Punt(P::RouterAlert));
    expect_verdict(&f, ALL_UP, &one(3), Drop(D::ImplicitNullOnWire));
    expect_verdict(&f, ALL_UP, &one(13), Punt(P::Oam));
    expect_verdict(&f, ALL_UP, &one(14), Punt(P::Oam));
    for l in [4, 5, 6, 8, 9, 10, 11, 12, 15] {
        expect_verdict(&f, ALL_UP, &one(l), Drop(D::ReservedLabel));
    }
}

#[test]
fn entropy_label_indicator_is_skipped_and_its_label_popped() {
    // [ELI, EL, 16001] at the top: ELI and EL go, 16001 is swapped.
    let stack = raw_labels(&[
        (7, 0, false, 0),
        (0xabcde, 0, false, 0),
        (16001, 0, true, 64),
    ]);
    let input = mpls_in(&stack, &ip());
    let want = cat(&[
        &eth(A1, B1, None, ET_MPLS),
        &labels(&[(16001, 0, 63)]),
        &ip(),
    ]);
    // Uniform: the TTL checked and carried is the top entry's (ELI's is 0).
    let (v, _, _) = run(&fib(), ALL_UP, &input);
    assert_eq!(v, Drop(D::TtlExpired));
    let stack = raw_labels(&[
        (7, 0, false, 64),
        (0xabcde, 0, false, 0),
        (16001, 0, true, 9),
    ]);
    let input = mpls_in(&stack, &ip());
    expect(&fib(), &input, Forward(1), &want);
    // ELI at the bottom of the stack has no entropy label after it.
    let input = mpls_in(&raw_labels(&[(7, 0, true, 64)]), &ip());
    expect_verdict(&fib(), ALL_UP, &input, Drop(D::Malformed));
}

#[test]
fn ecmp_spreads_flows_and_keeps_each_flow_on_one_path() {
    let f = fib();
    let mut ports = [0u32; 4];
    for sport in 0..200u16 {
        let ip = ipv4_udp([192, 0, 2, 1], [10, 2, 0, 5], 50, 0, sport, 2000, 0);
        let input = mpls_in(&labels(&[(16004, 0, 64)]), &ip);
        let (v1, _, _) = run(&f, ALL_UP, &input);
        let (v2, _, _) = run(&f, ALL_UP, &input);
        assert_eq!(v1, v2, "a flow keeps its path");
        let Forward(p) = v1 else { panic!("{v1:?}") };
        ports[p as usize] += 1;
    }
    assert!(ports[1] > 60 && ports[2] > 60, "both paths used: {ports:?}");

    // The entropy label alone spreads flows whose inner headers are equal.
    let mut ports = [0u32; 4];
    for el in 0..200u32 {
        let stack = raw_labels(&[
            (16004, 0, false, 64),
            (7, 0, false, 0),
            (1000 + el, 0, true, 0),
        ]);
        let (v, out, _) = run(&f, ALL_UP, &mpls_in(&stack, &ip()));
        let Forward(p) = v else { panic!("{v:?}") };
        ports[p as usize] += 1;
        // The ELI and EL beneath are carried unchanged.
        assert_eq!(&out[18..26], &stack[4..12]);
    }
    assert!(ports[1] > 60 && ports[2] > 60, "both paths used: {ports:?}");

    // IP ingress ECMP over the 5-tuple.
    let mut ports = [0u32; 4];
    for dport in 0..200u16 {
        let ip = ipv4_udp([192, 0, 2, 1], [10, 9, 0, 5], 50, 0, 1, dport, 0);
        let (v, _, _) = run(&f, ALL_UP, &cat(&[&eth(IN_MAC, PEER, None, ET_V4), &ip]));
        let Forward(p) = v else { panic!("{v:?}") };
        ports[p as usize] += 1;
    }
    assert!(ports[1] > 60 && ports[2] > 60, "both paths used: {ports:?}");
}

#[test]
fn mtu_is_checked_after_the_push() {
    let f = fib();
    // Port 3 has MTU 100: label (4) + IP (20 + 8 + n).
    let fits = ipv4_udp([1, 1, 1, 1], [10, 2, 0, 1], 64, 0, 1, 2, 64);
    let (v, _, _) = run(&f, ALL_UP, &mpls_in(&labels(&[(16008, 0, 64)]), &fits));
    assert_eq!(v, Forward(3));
    let too_big = ipv4_udp([1, 1, 1, 1], [10, 2, 0, 1], 64, 0, 1, 2, 65);
    expect_verdict(
        &f,
        ALL_UP,
        &mpls_in(&labels(&[(16008, 0, 64)]), &too_big),
        Drop(D::Mtu),
    );
}

#[test]
fn fast_reroute_uses_the_backup_when_the_port_is_down() {
    let f = fib();
    let input = mpls_in(&labels(&[(16006, 0, 64)]), &ip());
    let port1_down = ALL_UP & !(1 << 1);
    let (v, out, c) = run(&f, port1_down, &input);
    assert_eq!(v, Forward(2));
    assert_eq!(
        out,
        cat(&[
            &eth(A2, B2, None, ET_MPLS),
            &labels(&[(16006, 0, 63)]),
            &ip()
        ])
    );
    assert_eq!(c.backup_used, 1);
    let (v, _, c) = run(&f, ALL_UP, &input);
    assert_eq!((v, c.backup_used), (Forward(1), 0));
    expect_verdict(&f, ALL_UP & !0b110, &input, Drop(D::PortDown));
    // ECMP: a dead path's flows move to the live one.
    for sport in 0..50u16 {
        let ip = ipv4_udp([192, 0, 2, 1], [10, 2, 0, 5], 50, 0, sport, 2000, 0);
        let (v, _, _) = run(&f, port1_down, &mpls_in(&labels(&[(16004, 0, 64)]), &ip));
        assert_eq!(v, Forward(2));
    }
}

#[test]
fn unknown_destinations_are_dropped_and_counted() {
    let f = fib();
    expect_verdict(
        &f,
        ALL_UP,
        &mpls_in(&labels(&[(17000, 0, 64)]), &ip()),
        Drop(D::NoLabelRoute),
    );
    expect_verdict(
        &f,
        ALL_UP,
        &mpls_in(&labels(&[(0xfffff, 0, 64)]), &ip()),
        Drop(D::NoLabelRoute),
    );
    expect_verdict(
        &f,
        ALL_UP,
        &mpls_in(&labels(&[(16010, 0, 64)]), &ip()),
        Drop(D::NoLabelRoute),
    );
    let ip = ipv4_udp([1, 1, 1, 1], [192, 0, 2, 1], 64, 0, 1, 2, 0);
    expect_verdict(
        &f,
        ALL_UP,
        &cat(&[&eth(IN_MAC, PEER, None, ET_V4), &ip]),
        Drop(D::NoIpRoute),
    );
    // Egress pop to an address with no route.
    expect_verdict(
        &f,
        ALL_UP,
        &mpls_in(&labels(&[(16003, 0, 64)]), &ip),
        Drop(D::NoIpRoute),
    );
}

#[test]
fn malformed_frames_are_dropped_and_counted() {
    let f = fib();
    let e4 = eth(IN_MAC, PEER, None, ET_V4);
    let mut bad = ip();
    bad[0] = 0x44; // IHL 4
    expect_verdict(&f, ALL_UP, &cat(&[&e4, &bad]), Drop(D::Malformed));
    let mut bad = ip();
    bad[3] = 200; // total length beyond the frame
    expect_verdict(&f, ALL_UP, &cat(&[&e4, &bad]), Drop(D::Malformed));
    expect_verdict(&f, ALL_UP, &cat(&[&e4, &ip()[..19]]), Drop(D::Malformed));
    expect_verdict(&f, ALL_UP, &e4[..13], Drop(D::Malformed));
    expect_verdict(
        &f,
        ALL_UP,
        &eth(IN_MAC, PEER, None, ET_MPLS),
        Drop(D::Malformed),
    );
    expect_verdict(
        &f,
        ALL_UP,
        &eth(IN_MAC, PEER, None, 0x0806),
        Drop(D::UnsupportedEthertype),
    );
    expect_verdict(
        &f,
        ALL_UP,
        &mpls_in(&labels(&[(16001, 0, 64)]), &[])[..17],
        Drop(D::Malformed),
    );
    let mc = cat(&[&eth(IN_MAC, PEER, None, 0x8848), &labels(&[(16001, 0, 64)])]);
    expect_verdict(&f, ALL_UP, &mc, Drop(D::UnsupportedEthertype));
    // A pop with nothing beneath, and an egress pop onto garbage.
    expect_verdict(
        &f,
        ALL_UP,
        &mpls_in(&raw_labels(&[(16003, 0, false, 64)]), &[]),
        Drop(D::Malformed),
    );
    expect_verdict(
        &f,
        ALL_UP,
        &mpls_in(&labels(&[(16003, 0, 64)]), &[0x12; 30]),
        Drop(D::Malformed),
    );
    // PHP onto an IPv4 header that is too short.
    expect_verdict(
        &f,
        ALL_UP,
        &mpls_in(&labels(&[(16002, 0, 64)]), &ip()[..10]),
        Drop(D::Malformed),
    );
}

#[test]
fn deep_stacks_of_pops_are_bounded() {
    let f = fib();
    let mut e: Vec<(u32, u8, bool, u8)> = vec![(16003, 0, false, 64); 20];
    e.push((16001, 0, true, 64));
    expect_verdict(
        &f,
        ALL_UP,
        &mpls_in(&raw_labels(&e), &ip()),
        Drop(D::StackTooDeep),
    );
}

#[test]
fn pushing_without_headroom_is_a_counted_drop() {
    let f = fib();
    let input = mpls_in(&labels(&[(16005, 0, 64)]), &ip());
    let (v, out, c) = run_with_headroom(&f, ALL_UP, &input, 0);
    assert_eq!(v, Drop(D::NoHeadroom));
    assert_eq!(c.drop_count(D::NoHeadroom), 1);
    assert_eq!(out, input);
    // A swap needs no headroom at all.
    let (v, _, _) = run_with_headroom(&f, ALL_UP, &mpls_in(&labels(&[(16001, 0, 64)]), &ip()), 0);
    assert_eq!(v, Forward(1));
}

#[test]
fn a_batch_counts_every_frame_once() {
    use orbitmesh_core::pipeline::{process, Frame};
    let f = fib();
    let inputs = [
        mpls_in(&labels(&[(16001, 0, 64)]), &ip()),
        mpls_in(&labels(&[(16001, 0, 1)]), &ip()),
        mpls_in(&labels(&[(1, 0, 64)]), &ip()),
        mpls_in(&labels(&[(17000, 0, 64)]), &ip()),
    ];
    let mut bufs: Vec<Vec<u8>> = (0..100)
        .map(|i| {
            let x = &inputs[i % inputs.len()];
            cat(&[&[0u8; HEADROOM], x])
        })
        .collect();
    let mut frames: Vec<Frame> = bufs
        .iter_mut()
        .map(|b| {
            let n = b.len() - HEADROOM;
            Frame::new(b, HEADROOM, n).unwrap()
        })
        .collect();
    let mut verdicts = vec![Verdict::Drop(D::Malformed); 100];
    let mut c = orbitmesh_core::stats::Counters::default();
    process(&f, ALL_UP, &mut frames, &mut verdicts, &mut c);
    assert_eq!(c.rx, 100);
    assert_eq!(c.forwarded, 25);
    assert_eq!(c.drop_count(D::TtlExpired), 25);
    assert_eq!(c.punt_count(P::RouterAlert), 25);
    assert_eq!(c.drop_count(D::NoLabelRoute), 25);
    assert_eq!(verdicts[4], Forward(1));
    assert_eq!(verdicts[99], Drop(D::NoLabelRoute));
}
