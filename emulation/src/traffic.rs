//! Test traffic between the hosts behind the ground stations: UDP flows with
//! sequence numbers and send timestamps (the idea of RFC 2544's test frames
//! and of TRex/MoonGen latency streams), and a receiver that counts per flow
//! what arrived, what is missing, duplicated or out of order, and the
//! one-way latency (sender and receiver share the host's clock).
//!
//! One agent runs in each host namespace (`orbitmesh-emu agent`), sends to
//! every other host at a fixed rate and prints one JSON [`AgentReport`] per
//! second on stdout, the last one with `final: true` after a short linger
//! that lets packets in flight arrive.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Marks an emulation test packet ("OMEU").
pub const MAGIC: u32 = 0x4f4d_4555;
/// Payload: magic, source id, destination id, sequence, send time (ns).
pub const PAYLOAD: usize = 4 + 2 + 2 + 8 + 8;

/// What one agent sends and where.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub id: u16,
    pub bind: SocketAddrV4,
    pub peers: Vec<(u16, SocketAddrV4)>,
    /// Packets per second to each peer.
    pub rate: u32,
    pub duration: Duration,
    /// Receive this long after the last send.
    pub linger: Duration,
}

/// One flow as its receiver sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowRx {
    pub src: u16,
    /// Distinct packets received.
    pub rx: u64,
    /// Highest sequence number seen + 1 (0: nothing yet).
    pub seq_end: u64,
    pub duplicates: u64,
    /// Packets that arrived after a higher sequence number.
    pub reordered: u64,
    /// One-way latency percentiles in microseconds (final report only).
    #[serde(default)]
    pub latency_us: Option<[f64; 4]>,
    /// Median one-way latency (us) of the packets received since the
    /// report before (per-second reports only; `None`: none received).
    #[serde(default)]
    pub recent_p50_us: Option<f64>,
}

/// A report line of an agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    pub id: u16,
    pub t_ns: u64,
    #[serde(rename = "final")]
    pub is_final: bool,
    /// (peer, packets sent to it).
    pub sent: Vec<(u16, u64)>,
    pub flows: Vec<FlowRx>,
}

#[derive(Default)]
struct FlowState {
    rx: FlowRx,
    seen: Vec<u64>,
    lat_us: Vec<f32>,
    /// `lat_us[reported..]` arrived since the last report.
    reported: usize,
}

impl FlowState {
    fn record(&mut self, seq: u64, lat_ns: u64) {
        let (w, b) = ((seq / 64) as usize, seq % 64);
        if w >= self.seen.len() {
            self.seen.resize(w + 1, 0);
        }
        if self.seen[w] >> b & 1 == 1 {
            self.rx.duplicates += 1;
            return;
        }
        self.seen[w] |= 1 << b;
        self.rx.rx += 1;
        if seq + 1 < self.rx.seq_end {
            self.rx.reordered += 1;
        }
        self.rx.seq_end = self.rx.seq_end.max(seq + 1);
        self.lat_us.push(lat_ns as f32 / 1e3);
    }

    /// Median latency of what arrived since the last call (us).
    fn recent_p50(&mut self) -> Option<f64> {
        let mut recent = self.lat_us[self.reported.min(self.lat_us.len())..].to_vec();
        self.reported = self.lat_us.len();
        percentiles(&mut recent).map(|p| p[0])
    }
}

/// Percentiles 50/90/99/100 of `v` (sorted in place).
pub fn percentiles(v: &mut [f32]) -> Option<[f64; 4]> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64;
    Some([at(0.5), at(0.9), at(0.99), at(1.0)])
}

/// Encodes a test packet's payload.
pub fn encode(src: u16, dst: u16, seq: u64, t_ns: u64) -> [u8; PAYLOAD] {
    let mut b = [0u8; PAYLOAD];
    b[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    b[4..6].copy_from_slice(&src.to_be_bytes());
    b[6..8].copy_from_slice(&dst.to_be_bytes());
    b[8..16].copy_from_slice(&seq.to_be_bytes());
    b[16..24].copy_from_slice(&t_ns.to_be_bytes());
    b
}

/// Decodes a test packet's payload: (src, dst, seq, send time).
pub fn decode(b: &[u8]) -> Option<(u16, u16, u64, u64)> {
    if b.len() < PAYLOAD || b[0..4] != MAGIC.to_be_bytes() {
        return None;
    }
    let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    Some((u16_at(4), u16_at(6), u64_at(8), u64_at(16)))
}

/// Runs an agent to completion, writing report lines to `out`.
pub fn run_agent(spec: &AgentSpec, out: &mut dyn Write) -> std::io::Result<()> {
    let sock = UdpSocket::bind(spec.bind)?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    let sent: Arc<Vec<AtomicU64>> =
        Arc::new(spec.peers.iter().map(|_| AtomicU64::new(0)).collect());
    let sending = Arc::new(AtomicBool::new(true));
    let sender = {
        let sock = sock.try_clone()?;
        let (sent, sending, spec) = (sent.clone(), sending.clone(), spec.clone());
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut seq = vec![0u64; spec.peers.len()];
            while t0.elapsed() < spec.duration {
                // Paced in 1 ms ticks: every flow catches up to rate x elapsed.
                let due = (t0.elapsed().as_secs_f64() * spec.rate as f64) as u64;
                for (i, (peer, addr)) in spec.peers.iter().enumerate() {
                    while seq[i] < due {
                        let p = encode(spec.id, *peer, seq[i], crate::now_ns());
                        // A send error (no route yet, buffer full) is a lost
                        // packet like any other: the receiver sees the gap.
                        let _ = sock.send_to(&p, addr);
                        seq[i] += 1;
                        sent[i].store(seq[i], Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            sending.store(false, Ordering::Relaxed);
        })
    };
    let mut flows: BTreeMap<u16, FlowState> = BTreeMap::new();
    let mut buf = [0u8; 2048];
    let mut next_report = Instant::now() + Duration::from_secs(1);
    let mut stop_at: Option<Instant> = None;
    let report = |flows: &mut BTreeMap<u16, FlowState>, is_final: bool| AgentReport {
        id: spec.id,
        t_ns: crate::now_ns(),
        is_final,
        sent: spec
            .peers
            .iter()
            .zip(sent.iter())
            .map(|((p, _), n)| (*p, n.load(Ordering::Relaxed)))
            .collect(),
        flows: flows
            .values_mut()
            .map(|f| {
                let (latency_us, recent_p50_us) = if is_final {
                    (percentiles(&mut f.lat_us), None)
                } else {
                    (None, f.recent_p50())
                };
                FlowRx {
                    latency_us,
                    recent_p50_us,
                    ..f.rx.clone()
                }
            })
            .collect(),
    };
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Some((src, dst, seq, t)) = decode(&buf[..n]) {
                    if dst == spec.id {
                        let f = flows.entry(src).or_default();
                        f.rx.src = src;
                        f.record(seq, crate::now_ns().saturating_sub(t));
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        if stop_at.is_none() && !sending.load(Ordering::Relaxed) {
            stop_at = Some(now + spec.linger);
        }
        if stop_at.is_some_and(|s| now >= s) {
            break;
        }
        if now >= next_report {
            next_report += Duration::from_secs(1);
            let r = report(&mut flows, false);
            writeln!(out, "{}", serde_json::to_string(&r).expect("serialisable"))?;
            out.flush()?;
        }
    }
    let _ = sender.join();
    let r = report(&mut flows, true);
    writeln!(out, "{}", serde_json::to_string(&r).expect("serialisable"))?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_rejects_foreign_packets() {
        let p = encode(3, 7, 123_456, 99);
        assert_eq!(decode(&p), Some((3, 7, 123_456, 99)));
        assert_eq!(decode(&p[..PAYLOAD - 1]), None);
        let mut q = p;
        q[0] ^= 1;
        assert_eq!(decode(&q), None);
    }

    #[test]
    fn receiver_counts_loss_duplicates_and_reordering() {
        let mut f = FlowState::default();
        for s in [0, 1, 3, 2, 2, 5, 200] {
            f.record(s, 1000);
        }
        assert_eq!(f.rx.rx, 6);
        assert_eq!(f.rx.duplicates, 1);
        assert_eq!(f.rx.reordered, 1, "2 after 3");
        assert_eq!(f.rx.seq_end, 201);
        assert_eq!(f.recent_p50(), Some(1.0));
        assert_eq!(f.recent_p50(), None, "nothing new since");
        f.record(201, 3000);
        f.record(202, 5000);
        f.record(203, 4000);
        assert_eq!(f.recent_p50(), Some(4.0), "only the three new ones");
        assert_eq!(percentiles(&mut f.lat_us), Some([1.0, 4.0, 5.0, 5.0]));
    }

    #[test]
    fn agents_exchange_on_loopback() {
        let a: SocketAddrV4 = "127.0.0.1:0".parse().unwrap();
        // Two agents on loopback, each sending to the other at 200 pps.
        let s1 = UdpSocket::bind(a).unwrap();
        let s2 = UdpSocket::bind(a).unwrap();
        let (p1, p2) = match (s1.local_addr().unwrap(), s2.local_addr().unwrap()) {
            (std::net::SocketAddr::V4(x), std::net::SocketAddr::V4(y)) => (x, y),
            _ => unreachable!(),
        };
        drop((s1, s2));
        let spec = |id, bind, peer: (u16, SocketAddrV4)| AgentSpec {
            id,
            bind,
            peers: vec![peer],
            rate: 200,
            duration: Duration::from_millis(500),
            linger: Duration::from_millis(200),
        };
        let (x, y) = (spec(1, p1, (2, p2)), spec(2, p2, (1, p1)));
        let h = std::thread::spawn(move || {
            let mut out = Vec::new();
            run_agent(&y, &mut out).unwrap();
            out
        });
        let mut out = Vec::new();
        run_agent(&x, &mut out).unwrap();
        let out2 = h.join().unwrap();
        for (text, me, peer) in [(out, 1, 2), (out2, 2, 1)] {
            let last: AgentReport =
                serde_json::from_str(String::from_utf8(text).unwrap().lines().last().unwrap())
                    .unwrap();
            assert!(last.is_final);
            assert_eq!(last.id, me);
            let sent = last.sent[0].1;
            assert!((90..=101).contains(&sent), "sent {sent}");
            let f = &last.flows[0];
            assert_eq!(f.src, peer);
            assert!(f.rx > 80 && f.rx <= f.seq_end, "{f:?}");
            assert!(f.latency_us.is_some());
        }
    }
}
