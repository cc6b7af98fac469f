//! Random FIBs and frames shared by the differential tests: the pipeline
//! against its reference model (core/tests/differential.rs) and the XDP
//! fast path against the pipeline (dataplane/tests/xdp_differential.rs).
//! Include it beside `common` (`mod common;` at the test crate's root).

#![allow(dead_code)]

use super::common::*;
use orbitmesh_core::fib::*;
use orbitmesh_core::wire::ipv4;
use orbitmesh_core::wire::mpls::Lse;
use rand::rngs::StdRng;
use rand::Rng;

/// The model's own copy of a FIB: plain vectors.
#[derive(Debug, Clone)]
pub struct Spec {
    pub mtu: Vec<u16>,
    pub nhs: Vec<NextHop>,
    pub groups: Vec<Vec<usize>>,
    pub ilm: Vec<(u32, IlmAction)>,
    pub v4: Vec<(u32, u8, usize)>,
    pub v6: Vec<(u128, u8, usize)>,
    pub ingress: TtlModel,
    pub egress: TtlModel,
    pub seed: u32,
}

pub const LABELS: std::ops::Range<u32> = 16..48;

pub fn random_spec(r: &mut StdRng) -> Spec {
    let ports = r.gen_range(1..6usize);
    let mtu = (0..ports)
        .map(|_| {
            if r.gen_bool(0.2) {
                r.gen_range(68..200)
            } else {
                1500
            }
        })
        .collect::<Vec<_>>();
    let n_nh = r.gen_range(1..8);
    let mut nhs = Vec::new();
    for i in 0..n_nh {
        let push = (0..r.gen_range(0..=3))
            .map(|_| {
                if r.gen_bool(0.1) {
                    [0, 2][r.gen_range(0..2)]
                } else {
                    r.gen_range(16..1 << 20)
                }
            })
            .collect();
        let backup = (n_nh > 1 && r.gen_bool(0.3)).then(|| {
            let mut b = r.gen_range(0..n_nh);
            if b == i {
                b = (b + 1) % n_nh;
            }
            NhId(b as u32)
        });
        nhs.push(NextHop {
            port: r.gen_range(0..ports) as u16,
            dst_mac: [2, 0, 0, 0, i as u8, 1],
            src_mac: [2, 0, 0, 0, i as u8, 2],
            vlan: r.gen_bool(0.2).then(|| r.gen_range(1..4095)),
            push,
            backup,
        });
    }
    let groups: Vec<Vec<usize>> = (0..r.gen_range(1..6))
        .map(|_| {
            (0..r.gen_range(1..5))
                .map(|_| r.gen_range(0..n_nh))
                .collect()
        })
        .collect();
    let mut ilm = Vec::new();
    for l in LABELS {
        if r.gen_bool(0.7) {
            let a = if r.gen_bool(0.25) {
                IlmAction::Pop
            } else {
                let out_label = match r.gen_range(0..10) {
                    0 => 3,
                    1 => 0,
                    2 => 2,
                    _ => r.gen_range(LABELS),
                };
                IlmAction::Swap {
                    out_label,
                    nhg: NhgId(r.gen_range(0..groups.len()) as u32),
                }
            };
            ilm.push((l, a));
        }
    }
    let mut v4 = Vec::new();
    for _ in 0..r.gen_range(0..10) {
        let len = r.gen_range(0..=32u8);
        let p: u32 = (10 << 24) | r.gen_range(0..1 << 12) << 12 | r.gen_range(0..4096);
        let p = if len == 0 {
            0
        } else {
            p & (u32::MAX << (32 - len as u32))
        };
        if !v4.iter().any(|&(q, l, _)| q == p && l == len) {
            v4.push((p, len, r.gen_range(0..groups.len())));
        }
    }
    let mut v6 = Vec::new();
    for _ in 0..r.gen_range(0..10) {
        let len = r.gen_range(0..=128u8);
        let p: u128 =
            (0x2001_0db8u128 << 96) | (r.gen::<u32>() as u128) << 64 | r.gen::<u16>() as u128;
        let p = if len == 0 {
            0
        } else {
            p & (u128::MAX << (128 - len as u32))
        };
        if !v6.iter().any(|&(q, l, _)| q == p && l == len) {
            v6.push((p, len, r.gen_range(0..groups.len())));
        }
    }
    let m = |r: &mut StdRng| {
        if r.gen_bool(0.5) {
            TtlModel::Uniform
        } else {
            TtlModel::Pipe
        }
    };
    Spec {
        mtu,
        nhs,
        groups,
        ilm,
        v4,
        v6,
        ingress: m(r),
        egress: m(r),
        seed: r.gen(),
    }
}

pub fn build(s: &Spec) -> FibSnapshot {
    let mut b = FibBuilder::new()
        .ttl_models(s.ingress, s.egress)
        .hash_seed(s.seed);
    for (p, &mtu) in s.mtu.iter().enumerate() {
        b.port(p as u16, PortConfig { mtu });
    }
    for nh in &s.nhs {
        b.next_hop(nh.clone());
    }
    for g in &s.groups {
        b.group(&g.iter().map(|&i| NhId(i as u32)).collect::<Vec<_>>());
    }
    for &(l, a) in &s.ilm {
        b.label(l, a);
    }
    for &(p, l, g) in &s.v4 {
        b.route_v4(std::net::Ipv4Addr::from_bits(p), l, NhgId(g as u32));
    }
    for &(p, l, g) in &s.v6 {
        b.route_v6(std::net::Ipv6Addr::from_bits(p), l, NhgId(g as u32));
    }
    b.build().expect("random specs are valid by construction")
}

pub fn random_ip(r: &mut StdRng, s: &Spec) -> Vec<u8> {
    let ttl = [0, 1, 2, 3, 64, 255][r.gen_range(0..6)];
    let mut p = if r.gen_bool(0.6) {
        let dst = match s.v4.get(r.gen_range(0..s.v4.len().max(1))) {
            Some(&(q, _, _)) if r.gen_bool(0.8) => q | r.gen_range(0..256),
            _ => r.gen(),
        };
        ipv4_udp(
            r.gen(),
            dst.to_be_bytes(),
            ttl,
            r.gen(),
            r.gen(),
            r.gen(),
            r.gen_range(0..40),
        )
    } else {
        let dst = match s.v6.get(r.gen_range(0..s.v6.len().max(1))) {
            Some(&(q, _, _)) if r.gen_bool(0.8) => q | r.gen_range(0..256),
            _ => r.gen(),
        };
        ipv6_udp(
            r.gen(),
            dst.to_be_bytes(),
            ttl,
            r.gen(),
            r.gen(),
            r.gen_range(0..40),
        )
    };
    match r.gen_range(0..20) {
        0 => p.truncate(r.gen_range(0..p.len())),
        1 => p[0] = r.gen(),
        2 => p[3] = r.gen(),
        3 => p.extend_from_slice(&[0; 6]), // Ethernet padding
        _ => {}
    }
    // Keep IPv4 checksums valid after a mutation: the model recomputes them
    // from scratch, the pipeline updates them incrementally (RFC 1624), and
    // the two agree exactly when the checksum was right to begin with (the
    // unit tests of wire::ipv4 check the update itself).
    if p.len() >= 20 && p[0] >> 4 == 4 && p.len() >= (p[0] & 15) as usize * 4 && p[0] & 15 >= 5 {
        ipv4::Packet::new_unchecked(&mut p[..]).fill_checksum();
    }
    p
}

pub fn random_frame(r: &mut StdRng, s: &Spec) -> Vec<u8> {
    let vlan = r.gen_bool(0.1).then(|| r.gen_range(1..4095));
    if r.gen_bool(0.3) {
        let ip = random_ip(r, s);
        let et = if ip.first().is_some_and(|b| b >> 4 == 6) {
            ET_V6
        } else {
            ET_V4
        };
        return cat(&[&eth([2; 6], [4; 6], vlan, et), &ip]);
    }
    let depth = r.gen_range(1..5);
    let mut st = Vec::new();
    for k in 0..depth {
        let l = match r.gen_range(0..12) {
            0 => r.gen_range(0..16),
            1 => 7,
            2 => r.gen_range(16..1 << 20),
            _ => r.gen_range(LABELS),
        };
        let ttl = [0, 1, 2, 64, 255][r.gen_range(0..5)];
        let bos = if r.gen_bool(0.05) {
            r.gen()
        } else {
            k + 1 == depth
        };
        st.extend_from_slice(&Lse::new(l, r.gen_range(0..8), bos, ttl).to_bytes());
    }
    let payload = if r.gen_bool(0.9) {
        random_ip(r, s)
    } else {
        (0..r.gen_range(0..30)).map(|_| r.gen()).collect()
    };
    let mut f = cat(&[&eth([2; 6], [4; 6], vlan, ET_MPLS), &st, &payload]);
    if r.gen_bool(0.03) {
        f.truncate(r.gen_range(0..f.len()));
    }
    f
}

/// `name` from the environment when it parses (ORBITMESH_SEED replays a
/// run, ORBITMESH_CASES sets its length), else `default`.
pub fn from_env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
