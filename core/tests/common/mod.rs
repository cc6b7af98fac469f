//! Frame builders and a harness shared by the dataplane's integration tests.
#![allow(dead_code)]

use orbitmesh_core::fib::FibSnapshot;
use orbitmesh_core::pipeline::{process, Frame, Verdict};
use orbitmesh_core::stats::Counters;
use orbitmesh_core::wire::ethernet::{self, ethertype, MacBytes};
use orbitmesh_core::wire::mpls::Lse;
use orbitmesh_core::wire::{ipv4, ipv6};

pub const HEADROOM: usize = 64;
pub const ALL_UP: u64 = u64::MAX;

/// Runs one frame through the pipeline; returns the verdict, the frame as it
/// leaves, and the counters.
pub fn run(fib: &FibSnapshot, live: u64, frame: &[u8]) -> (Verdict, Vec<u8>, Counters) {
    run_with_headroom(fib, live, frame, HEADROOM)
}

pub fn run_with_headroom(
    fib: &FibSnapshot,
    live: u64,
    frame: &[u8],
    headroom: usize,
) -> (Verdict, Vec<u8>, Counters) {
    let mut buf = vec![0u8; headroom + frame.len()];
    buf[headroom..].copy_from_slice(frame);
    let mut c = Counters::default();
    let mut v = [Verdict::Drop(orbitmesh_core::stats::DropReason::Malformed)];
    let out;
    {
        let mut frames = [Frame::new(&mut buf, headroom, frame.len()).unwrap()];
        process(fib, live, &mut frames, &mut v, &mut c);
        out = frames[0].data().to_vec();
    }
    (v[0], out, c)
}

pub fn eth(dst: MacBytes, src: MacBytes, vlan: Option<u16>, et: u16) -> Vec<u8> {
    let mut v = Vec::new();
    ethernet::Repr {
        dst,
        src,
        vlan,
        ethertype: et,
    }
    .emit(&mut v);
    v
}

/// Label stack entries `(label, tc, ttl)`, top first; S set on the last.
pub fn labels(entries: &[(u32, u8, u8)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, &(l, tc, ttl)) in entries.iter().enumerate() {
        v.extend_from_slice(&Lse::new(l, tc, i + 1 == entries.len(), ttl).to_bytes());
    }
    v
}

/// Label stack entries with explicit S bits.
pub fn raw_labels(entries: &[(u32, u8, bool, u8)]) -> Vec<u8> {
    entries
        .iter()
        .flat_map(|&(l, tc, s, ttl)| Lse::new(l, tc, s, ttl).to_bytes())
        .collect()
}

/// Appends a UDP header (checksum 0) and `payload` bytes 0, 1, 2, ...
fn udp(v: &mut Vec<u8>, sport: u16, dport: u16, payload: usize) {
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend((0..payload).map(|i| i as u8));
}

pub fn ipv4_udp(
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    tos: u8,
    sport: u16,
    dport: u16,
    payload: usize,
) -> Vec<u8> {
    let mut v = Vec::new();
    ipv4::Repr {
        src,
        dst,
        protocol: 17,
        ttl,
        tos,
        payload_len: 8 + payload,
    }
    .emit(&mut v);
    udp(&mut v, sport, dport, payload);
    v
}

pub fn ipv6_udp(
    src: [u8; 16],
    dst: [u8; 16],
    hop: u8,
    sport: u16,
    dport: u16,
    payload: usize,
) -> Vec<u8> {
    let mut v = Vec::new();
    ipv6::Repr {
        src,
        dst,
        next_header: 17,
        hop_limit: hop,
        traffic_class: 0,
        flow_label: 0x12345,
        payload_len: 8 + payload,
    }
    .emit(&mut v);
    udp(&mut v, sport, dport, payload);
    v
}

pub fn v6(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// An IPv4 header with its TTL changed and its checksum recomputed from
/// scratch (the fixture side of the RFC 1624 check).
pub fn with_ttl4(ip: &[u8], ttl: u8) -> Vec<u8> {
    let mut v = ip.to_vec();
    v[8] = ttl;
    ipv4::Packet::new_unchecked(&mut v[..]).fill_checksum();
    v
}

pub fn with_hop6(ip: &[u8], hop: u8) -> Vec<u8> {
    let mut v = ip.to_vec();
    v[7] = hop;
    v
}

pub const ET_MPLS: u16 = ethertype::MPLS;
pub const ET_V4: u16 = ethertype::IPV4;
pub const ET_V6: u16 = ethertype::IPV6;
