//! Differential test: the pipeline against a plain reference model, over
//! random FIBs and random (mostly well-formed) frames.
//!
//! The model below restates the forwarding rules on owned values (a `Vec`
//! of label entries, IP headers re-checksummed from scratch, LPM by scanning
//! every route, ECMP by the documented hash) with no attention to speed. Any
//! difference in verdict or output bytes fails with the seed and the frame.
//! Set ORBITMESH_SEED to replay a run, ORBITMESH_CASES to run longer.

mod common;
use common::*;
#[path = "common/random_fib.rs"]
mod random_fib;
use orbitmesh_core::fib::*;
use orbitmesh_core::pipeline::{ip_flow_hash, mpls_flow_hash, Verdict};
use orbitmesh_core::stats::{DropReason as D, PuntReason as P};
use orbitmesh_core::wire::ipv4;
use orbitmesh_core::wire::mpls::Lse;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use random_fib::*;

// ---------------------------------------------------------------- the model

type Out = (Verdict, Option<Vec<u8>>);

fn model(s: &Spec, live: u64, frame: &[u8], headroom: usize) -> Out {
    let drop = |r| (Verdict::Drop(r), None);
    if frame.len() < 14 {
        return drop(D::Malformed);
    }
    let (mut et, mut l2) = (u16::from_be_bytes([frame[12], frame[13]]), 14);
    if et == 0x8100 {
        if frame.len() < 18 {
            return drop(D::Malformed);
        }
        et = u16::from_be_bytes([frame[16], frame[17]]);
        l2 = 18;
    }
    let body = &frame[l2..];
    match et {
        0x8847 => {
            if body.len() < 4 {
                return drop(D::Malformed);
            }
            model_mpls(s, live, frame, l2, headroom)
        }
        0x0800 if body.len() >= 20 => model_ip(s, live, frame, l2, None, headroom),
        0x86dd if body.len() >= 40 => model_ip(s, live, frame, l2, None, headroom),
        0x0800 | 0x86dd => drop(D::Malformed),
        _ => drop(D::UnsupportedEthertype),
    }
}

fn lse_at(b: &[u8], i: usize) -> Option<Lse> {
    b.get(i * 4..i * 4 + 4)
        .map(|x| Lse::from_bytes(x.try_into().unwrap()))
}

fn model_mpls(s: &Spec, live: u64, frame: &[u8], l2: usize, headroom: usize) -> Out {
    let drop = |r| (Verdict::Drop(r), None);
    let stack = &frame[l2..];
    let top = lse_at(stack, 0).unwrap();
    if top.ttl() <= 1 {
        return drop(D::TtlExpired);
    }
    let mut ttl = top.ttl();
    let mut i = 0; // index of the entry being looked at
    loop {
        let e = lse_at(stack, i).unwrap();
        let mut last = e; // the entry whose S bit ends the pop
        let step;
        match e.label() {
            0 | 2 => step = 1,
            1 => return (Verdict::Punt(P::RouterAlert), None),
            3 => return drop(D::ImplicitNullOnWire),
            7 => {
                if e.bos() || lse_at(stack, i + 1).is_none() {
                    return drop(D::Malformed);
                }
                last = lse_at(stack, i + 1).unwrap();
                step = 2;
            }
            13 | 14 => return (Verdict::Punt(P::Oam), None),
            l if l < 16 => return drop(D::ReservedLabel),
            l => match s.ilm.iter().find(|x| x.0 == l).map(|x| x.1) {
                None => return drop(D::NoLabelRoute),
                Some(IlmAction::Pop) => step = 1,
                Some(IlmAction::Swap { out_label, nhg }) => {
                    return model_swap(
                        s,
                        live,
                        frame,
                        l2,
                        i,
                        e,
                        ttl,
                        out_label,
                        nhg.0 as usize,
                        headroom,
                    )
                }
            },
        }
        i += step;
        if last.bos() {
            return model_ip(s, live, frame, l2 + 4 * i, Some(ttl), headroom);
        }
        let Some(next) = lse_at(stack, i) else {
            return drop(D::Malformed);
        };
        if i >= 16 {
            return drop(D::StackTooDeep);
        }
        if s.egress == TtlModel::Pipe {
            ttl = next.ttl();
            if ttl <= 1 {
                return drop(D::TtlExpired);
            }
        }
    }
}

/// Picks a next hop: ECMP by hash, then backup, then any live member.
fn model_choose(s: &Spec, live: u64, g: usize, hash: impl Fn() -> u32) -> Option<&NextHop> {
    let m = &s.groups[g];
    let idx = if m.len() == 1 {
        0
    } else {
        ((hash() as u64 * m.len() as u64) >> 32) as usize
    };
    let up = |nh: &NextHop| live & (1 << nh.port) != 0;
    let nh = &s.nhs[m[idx]];
    if up(nh) {
        return Some(nh);
    }
    if let Some(b) = nh.backup {
        if up(&s.nhs[b.0 as usize]) {
            return Some(&s.nhs[b.0 as usize]);
        }
    }
    (1..m.len())
        .map(|k| &s.nhs[m[(idx + k) % m.len()]])
        .find(|n| up(n))
}

/// Builds the output frame: fresh L2 header, `labels` (top first), `rest`.
fn model_emit(
    s: &Spec,
    nh: &NextHop,
    labels: &[Lse],
    et: u16,
    rest: &[u8],
    in_len: usize,
    headroom: usize,
) -> Out {
    let mut out = eth(nh.dst_mac, nh.src_mac, nh.vlan, et);
    let l2 = out.len();
    for l in labels {
        out.extend_from_slice(&l.to_bytes());
    }
    out.extend_from_slice(rest);
    if out.len() > in_len + headroom {
        return (Verdict::Drop(D::NoHeadroom), None);
    }
    if out.len() - l2 > s.mtu[nh.port as usize] as usize {
        return (Verdict::Drop(D::Mtu), None);
    }
    (Verdict::Forward(nh.port), Some(out))
}

/// Checks an IP header the way RFC 1812 5.2.2 asks; returns its version.
fn ip_ok(b: &[u8]) -> Option<u8> {
    match b.first()? >> 4 {
        4 => {
            let ihl = (b.first()? & 15) as usize * 4;
            let total = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize;
            (b.len() >= 20 && ihl >= 20 && b.len() >= ihl && total >= ihl && total <= b.len())
                .then_some(4)
        }
        6 => {
            let pl = u16::from_be_bytes([*b.get(4)?, *b.get(5)?]) as usize;
            (b.len() >= 40 && 40 + pl <= b.len()).then_some(6)
        }
        _ => None,
    }
}

fn set_ip_ttl(b: &mut [u8], ttl: u8) {
    if b[0] >> 4 == 4 {
        b[8] = ttl;
        ipv4::Packet::new_unchecked(&mut b[..]).fill_checksum();
    } else {
        b[7] = ttl;
    }
}

#[allow(clippy::too_many_arguments)]
fn model_swap(
    s: &Spec,
    live: u64,
    frame: &[u8],
    l2: usize,
    i: usize,
    e: Lse,
    ttl: u8,
    out: u32,
    g: usize,
    headroom: usize,
) -> Out {
    let stack = &frame[l2..];
    let Some(nh) = model_choose(s, live, g, || mpls_flow_hash(stack, s.seed)) else {
        return (Verdict::Drop(D::PortDown), None);
    };
    let t = ttl - 1;
    let mut rest = stack[4 * (i + 1)..].to_vec();
    let mut labels: Vec<Lse> = nh
        .push
        .iter()
        .map(|&p| Lse::new(p, e.tc(), false, t))
        .collect();
    let mut et = 0x8847;
    if out != 3 {
        labels.push(Lse::new(out, e.tc(), e.bos(), t));
    } else if e.bos() {
        let Some(v) = ip_ok(&rest) else {
            return (Verdict::Drop(D::Malformed), None);
        };
        if s.egress == TtlModel::Uniform {
            set_ip_ttl(&mut rest, t);
        }
        et = if v == 4 { 0x0800 } else { 0x86dd };
        if let Some(last) = labels.last_mut() {
            *last = last.with_bos(true);
        }
    } else {
        let Some(next) = lse_at(&rest, 0) else {
            return (Verdict::Drop(D::Malformed), None);
        };
        if s.egress == TtlModel::Uniform {
            rest[..4].copy_from_slice(&next.with_ttl(t).to_bytes());
        }
    }
    model_emit(s, nh, &labels, et, &rest, frame.len(), headroom)
}

fn model_ip(
    s: &Spec,
    live: u64,
    frame: &[u8],
    at: usize,
    label_ttl: Option<u8>,
    headroom: usize,
) -> Out {
    let drop = |r| (Verdict::Drop(r), None);
    let mut p = frame[at..].to_vec();
    let Some(v) = ip_ok(&p) else {
        return drop(D::Malformed);
    };
    let own_ttl = if v == 4 { p[8] } else { p[7] };
    let ttl = match (label_ttl, s.egress) {
        (Some(t), TtlModel::Uniform) => t,
        _ => own_ttl,
    };
    if ttl <= 1 {
        return drop(D::TtlExpired);
    }
    let g = if v == 4 {
        let a = u32::from_be_bytes(p[16..20].try_into().unwrap());
        s.v4.iter()
            .filter(|&&(q, l, _)| l == 0 || (a ^ q) >> (32 - l as u32) == 0)
            .max_by_key(|r| r.1)
            .map(|r| r.2)
    } else {
        let a = u128::from_be_bytes(p[24..40].try_into().unwrap());
        s.v6.iter()
            .filter(|&&(q, l, _)| l == 0 || (a ^ q) >> (128 - l as u32) == 0)
            .max_by_key(|r| r.1)
            .map(|r| r.2)
    };
    let Some(g) = g else {
        return drop(D::NoIpRoute);
    };
    let Some(nh) = model_choose(s, live, g, || ip_flow_hash(&frame[at..], s.seed)) else {
        return drop(D::PortDown);
    };
    let tc = if v == 4 {
        p[1] >> 5
    } else {
        (u16::from_be_bytes([p[0], p[1]]) >> 4) as u8 >> 5
    };
    set_ip_ttl(&mut p, ttl - 1);
    let lt = if s.ingress == TtlModel::Uniform {
        ttl - 1
    } else {
        255
    };
    let n = nh.push.len();
    let labels: Vec<Lse> = nh
        .push
        .iter()
        .enumerate()
        .map(|(k, &l)| Lse::new(l, tc, k + 1 == n, lt))
        .collect();
    let et = if n > 0 {
        0x8847
    } else if v == 4 {
        0x0800
    } else {
        0x86dd
    };
    model_emit(s, nh, &labels, et, &p, frame.len(), headroom)
}

// ------------------------------------------------------------ random frames

#[test]
fn pipeline_matches_the_reference_model() {
    let seed: u64 = from_env("ORBITMESH_SEED", 0x0eb1_75ee);
    let cases: usize = from_env("ORBITMESH_CASES", 300);
    let mut r = StdRng::seed_from_u64(seed);
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for case in 0..cases {
        let spec = random_spec(&mut r);
        let fib = build(&spec);
        for _ in 0..200 {
            let live = if r.gen_bool(0.7) { u64::MAX } else { r.gen() };
            let headroom = if r.gen_bool(0.9) {
                64
            } else {
                r.gen_range(0..24)
            };
            let frame = random_frame(&mut r, &spec);
            let (v, out, _) = run_with_headroom(&fib, live, &frame, headroom);
            let (mv, mout) = model(&spec, live, &frame, headroom);
            assert_eq!(v, mv, "verdict differs (seed {seed}, case {case})\nframe {frame:02x?}\nspec {spec:#?}\nlive {live:#x}");
            if let Some(mout) = mout {
                assert_eq!(
                    out, mout,
                    "output differs (seed {seed}, case {case})\nframe {frame:02x?}\nspec {spec:#?}"
                );
            } else {
                assert_eq!(out, frame, "a frame not forwarded is left as it was");
            }
            *seen.entry(format!("{v:?}")).or_default() += 1;
        }
    }
    // The generator must reach every outcome, or the comparison proves little.
    let must = [
        "Forward",
        "TtlExpired",
        "NoLabelRoute",
        "NoIpRoute",
        "Malformed",
        "ReservedLabel",
        "PortDown",
        "Mtu",
        "NoHeadroom",
        "ImplicitNullOnWire",
        "RouterAlert",
        "Oam",
    ];
    for m in must {
        assert!(
            seen.keys().any(|k| k.contains(m)),
            "outcome {m} never reached: {seen:?}"
        );
    }
}
