//! Test frames of the traffic harness and the stamp they carry.
//!
//! Every frame is an RFC 2544 (appendix C.2.6.4) style UDP test frame, either
//! carried over one MPLS label stack entry (RFC 3032, the transit profile) or
//! as plain IPv4 (the ingress profile):
//!
//! ```text
//!  Ethernet (14) | [MPLS LSE (4), S=1, TTL 64] | IPv4 (20) | UDP (8) | stamp (14) | padding
//!  stamp = trial (u16) | sequence in its flow (u32) | TX time, ns (u64), all big endian
//! ```
//!
//! A flow is named by its UDP source port (`FLOW_PORT_BASE + flow`), so the
//! 64-byte MPLS frame (60 bytes + FCS) holds headers and stamp exactly. Frame
//! sizes follow RFC 2544 section 9: they count the FCS, which the NIC (here
//! the veth) adds, so a "64-byte" frame is 60 bytes in the UMEM. IMIX is the
//! common "simple IMIX": 64, 594 and 1518 bytes in the ratio 7:4:1.
//!
//! [`FlowPlan`] fixes, for each flow, its label (spread over the label table
//! with an odd stride so lookups touch the whole table), its IPv4
//! destination and the egress port it must leave the device under test on;
//! the sink checks every arrival against it (misforwarding = wrong port or
//! wrong label). Parsing at the sink ([`parse`]) is allocation-free.

use dataplane::wire::ethernet::ethertype;
use dataplane::wire::mpls::Lse;

/// UDP source port of flow 0.
pub const FLOW_PORT_BASE: u16 = 0x4000;
/// UDP destination port (RFC 2544 C.2.6.4 uses the echo port).
pub const UDP_DST_PORT: u16 = 7;
/// Bytes of the stamp after the UDP header.
pub const STAMP_LEN: usize = 14;
/// Frame check sequence: counted in frame sizes, added by the device.
pub const FCS_LEN: usize = 4;
/// The first node SID (SRGB base, DESIGN.md's label plan).
pub const LABEL_BASE: u32 = 16000;
/// Sizes of simple IMIX in the order frames are sent (7 x 64, 4 x 594, 1 x 1518).
pub const IMIX: [u16; 12] = [64, 594, 64, 64, 594, 64, 1518, 64, 594, 64, 64, 594];
/// Largest frame on the wire (with FCS).
pub const MAX_FRAME: u16 = 1518;

/// What the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Labelled transit frames (one label, swapped by the DUT).
    Mpls,
    /// IPv4 frames routed by the DUT (ingress at a label edge, or a router).
    Ipv4,
}

impl Profile {
    /// Smallest frame (with FCS) that holds this profile's headers and stamp.
    pub fn min_size(self) -> u16 {
        let hdr = match self {
            Profile::Mpls => 14 + 4 + 20 + 8,
            Profile::Ipv4 => 14 + 20 + 8,
        };
        (hdr + STAMP_LEN + FCS_LEN).max(64) as u16
    }

    /// Offset of the stamp in frames as the generator sends them.
    pub fn stamp_offset(self) -> usize {
        match self {
            Profile::Mpls => 14 + 4 + 20 + 8,
            Profile::Ipv4 => 14 + 20 + 8,
        }
    }
}

/// Frame sizes of a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SizeMix {
    /// Every frame this size on the wire (with FCS).
    Fixed(u16),
    /// Simple IMIX.
    Imix,
}

impl SizeMix {
    /// Parses "64", "1518" or "imix".
    pub fn parse(s: &str) -> Result<SizeMix, String> {
        if s.eq_ignore_ascii_case("imix") {
            return Ok(SizeMix::Imix);
        }
        let n: u16 = s
            .parse()
            .map_err(|_| format!("frame size {s:?}: a number (64-1518) or imix"))?;
        if !(64..=MAX_FRAME).contains(&n) {
            return Err(format!(
                "frame size {n} is outside 64..=1518 (RFC 2544 section 9)"
            ));
        }
        Ok(SizeMix::Fixed(n))
    }

    /// Size classes this mix uses (templates are built for each).
    pub fn classes(self) -> Vec<u16> {
        match self {
            SizeMix::Fixed(n) => vec![n],
            SizeMix::Imix => vec![64, 594, 1518],
        }
    }

    /// Index into [`classes`](Self::classes) of the `i`-th frame sent.
    #[inline]
    pub fn class_of(self, i: u64) -> usize {
        match self {
            SizeMix::Fixed(_) => 0,
            SizeMix::Imix => match IMIX[(i % IMIX.len() as u64) as usize] {
                64 => 0,
                594 => 1,
                _ => 2,
            },
        }
    }

    /// Mean frame size on the wire (bytes, with FCS).
    pub fn mean(self) -> f64 {
        match self {
            SizeMix::Fixed(n) => n as f64,
            SizeMix::Imix => IMIX.iter().map(|&s| s as f64).sum::<f64>() / IMIX.len() as f64,
        }
    }

    pub fn label(self) -> String {
        match self {
            SizeMix::Fixed(n) => n.to_string(),
            SizeMix::Imix => "imix".into(),
        }
    }
}

/// Addresses of the generator side and the DUT's ingress port.
#[derive(Debug, Clone, Copy)]
pub struct Macs {
    pub gen: [u8; 6],
    pub dut_in: [u8; 6],
}

/// Which label, destination and egress port each flow has.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct FlowPlan {
    pub flows: u16,
    /// Labels in the DUT's table (LABEL_BASE .. LABEL_BASE + labels).
    pub labels: u32,
    /// Egress ports the flows are spread over (1 or 2).
    pub egress: u8,
    /// Whether the DUT rewrites labels (false: it must leave them alone).
    pub profile: Profile,
}

impl FlowPlan {
    pub fn new(flows: u16, labels: u32, egress: u8, profile: Profile) -> FlowPlan {
        // An even table keeps label index parity = flow parity (see label_index).
        let labels = (labels.max(flows as u32 * 2) + 1) & !1;
        FlowPlan {
            flows: flows.max(1),
            labels,
            egress: egress.clamp(1, 2),
            profile,
        }
    }

    fn stride(&self) -> u64 {
        ((self.labels as u64 / self.flows as u64) | 1).max(1)
    }

    /// Index of flow `f`'s label in the table: odd stride, even table, so
    /// `label_index(f) % 2 == f % 2`.
    pub fn label_index(&self, f: u16) -> u32 {
        ((f as u64 * self.stride()) % self.labels as u64) as u32
    }

    pub fn label(&self, f: u16) -> u32 {
        LABEL_BASE + self.label_index(f)
    }

    /// Egress port (0-based among the DUT's egress ports) of the label at `index`.
    pub fn port_of_index(&self, index: u32) -> u8 {
        (index % self.egress as u32) as u8
    }

    /// Egress port flow `f` must leave on.
    pub fn expected_port(&self, f: u16) -> u8 {
        self.port_of_index(self.label_index(f))
    }

    /// IPv4 destination of flow `f`: 10.(100 + port).hi.lo, so a /16 per egress port routes it.
    pub fn dst_ip(&self, f: u16) -> [u8; 4] {
        [10, 100 + self.expected_port(f), (f >> 8) as u8, f as u8]
    }

    /// The label flow `f` must carry at the sink (None: plain IPv4).
    pub fn expected_label(&self, f: u16) -> Option<u32> {
        match self.profile {
            Profile::Mpls => Some(self.label(f)),
            Profile::Ipv4 => None,
        }
    }
}

/// Generator's source IPv4 address.
pub const SRC_IP: [u8; 4] = [10, 99, 0, 1];

/// Builds flow `f`'s frame of `size` bytes on the wire (the buffer is `size - FCS_LEN`), stamp zeroed.
pub fn build(plan: &FlowPlan, macs: &Macs, f: u16, size: u16) -> Vec<u8> {
    let size = size.max(plan.profile.min_size());
    let len = size as usize - FCS_LEN;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&macs.dut_in);
    b.extend_from_slice(&macs.gen);
    match plan.profile {
        Profile::Mpls => {
            b.extend_from_slice(&ethertype::MPLS.to_be_bytes());
            b.extend_from_slice(&Lse::new(plan.label(f), 0, true, 64).to_bytes());
        }
        Profile::Ipv4 => b.extend_from_slice(&ethertype::IPV4.to_be_bytes()),
    }
    let ip_at = b.len();
    let ip_len = len - ip_at;
    dataplane::wire::ipv4::Repr {
        src: SRC_IP,
        dst: plan.dst_ip(f),
        protocol: 17,
        ttl: 64,
        tos: 0,
        payload_len: ip_len - 20,
    }
    .emit(&mut b);
    b.extend_from_slice(&(FLOW_PORT_BASE + f).to_be_bytes());
    b.extend_from_slice(&UDP_DST_PORT.to_be_bytes());
    b.extend_from_slice(&((ip_len - 20) as u16).to_be_bytes());
    b.extend_from_slice(&[0, 0]); // no UDP checksum (RFC 768: zero = none)
    debug_assert_eq!(b.len(), plan.profile.stamp_offset());
    b.resize(len, 0);
    b
}

/// Writes the stamp into a frame built by [`build`].
#[inline]
pub fn write_stamp(frame: &mut [u8], at: usize, trial: u16, seq: u32, tx_ns: u64) {
    frame[at..at + 2].copy_from_slice(&trial.to_be_bytes());
    frame[at + 2..at + 6].copy_from_slice(&seq.to_be_bytes());
    frame[at + 6..at + 14].copy_from_slice(&tx_ns.to_be_bytes());
}

/// What the sink reads from a test frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub flow: u16,
    pub trial: u16,
    pub seq: u32,
    pub tx_ns: u64,
    /// The top label, if the frame is labelled.
    pub label: Option<u32>,
}

/// Reads a test frame; `None` for anything else (ARP, IPv6, foreign UDP).
#[inline]
pub fn parse(b: &[u8]) -> Option<Arrival> {
    if b.len() < 14 {
        return None;
    }
    let mut at = 14;
    let mut et = u16::from_be_bytes([b[12], b[13]]);
    if et == ethertype::VLAN {
        if b.len() < 18 {
            return None;
        }
        et = u16::from_be_bytes([b[16], b[17]]);
        at = 18;
    }
    let mut label = None;
    if et == ethertype::MPLS {
        for depth in 0..8 {
            if b.len() < at + 4 {
                return None;
            }
            let e = Lse::from_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            if depth == 0 {
                label = Some(e.label());
            }
            at += 4;
            if e.bos() {
                break;
            }
            if depth == 7 {
                return None;
            }
        }
    } else if et != ethertype::IPV4 {
        return None;
    }
    if b.len() < at + 20 || b[at] >> 4 != 4 || b[at + 9] != 17 {
        return None;
    }
    at += ((b[at] & 0x0f) as usize) * 4;
    if b.len() < at + 8 + STAMP_LEN {
        return None;
    }
    let sport = u16::from_be_bytes([b[at], b[at + 1]]);
    let dport = u16::from_be_bytes([b[at + 2], b[at + 3]]);
    if sport < FLOW_PORT_BASE || dport != UDP_DST_PORT {
        return None;
    }
    let s = at + 8;
    Some(Arrival {
        flow: sport - FLOW_PORT_BASE,
        trial: u16::from_be_bytes([b[s], b[s + 1]]),
        seq: u32::from_be_bytes([b[s + 2], b[s + 3], b[s + 4], b[s + 5]]),
        tx_ns: u64::from_be_bytes(b[s + 6..s + 14].try_into().expect("8 bytes")),
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MACS: Macs = Macs {
        gen: [2, 0, 0, 0, 0, 1],
        dut_in: [2, 0, 0, 0, 1, 0],
    };

    #[test]
    fn sixty_four_byte_mpls_frame_holds_headers_and_stamp() {
        let plan = FlowPlan::new(64, 1_000_000, 2, Profile::Mpls);
        let mut f = build(&plan, &MACS, 5, 64);
        assert_eq!(f.len(), 60);
        write_stamp(&mut f, Profile::Mpls.stamp_offset(), 3, 77, 123_456_789);
        let a = parse(&f).expect("a test frame");
        assert_eq!(
            a,
            Arrival {
                flow: 5,
                trial: 3,
                seq: 77,
                tx_ns: 123_456_789,
                label: Some(plan.label(5))
            }
        );
        assert_eq!(&f[..6], &MACS.dut_in);
        assert_eq!(u16::from_be_bytes([f[12], f[13]]), 0x8847);
    }

    #[test]
    fn ipv4_frames_and_sizes() {
        let plan = FlowPlan::new(300, 0, 2, Profile::Ipv4);
        for size in [64u16, 128, 594, 1518] {
            let mut f = build(&plan, &MACS, 299, size);
            assert_eq!(f.len(), size as usize - 4);
            let ip = dataplane::wire::ipv4::Packet::new_checked(&f[14..]).expect("valid IPv4");
            assert!(ip.verify_checksum());
            assert_eq!(ip.dst(), [10, 101, 1, 43]);
            write_stamp(&mut f, Profile::Ipv4.stamp_offset(), 1, 2, 3);
            let a = parse(&f).unwrap();
            assert_eq!((a.flow, a.seq, a.label), (299, 2, None));
        }
    }

    #[test]
    fn plan_parity_and_spread() {
        let plan = FlowPlan::new(64, 1_000_000, 2, Profile::Mpls);
        let mut seen = std::collections::HashSet::new();
        for f in 0..64 {
            assert_eq!(plan.expected_port(f), (f % 2) as u8);
            assert!(plan.label_index(f) < plan.labels);
            assert!(seen.insert(plan.label_index(f)), "labels distinct");
        }
        assert!(plan.label_index(63) > 900_000, "spread over the table");
    }

    #[test]
    fn pushed_label_is_read_as_top() {
        let plan = FlowPlan::new(4, 0, 1, Profile::Ipv4);
        let f = build(&plan, &MACS, 1, 64);
        let mut g = f[..12].to_vec();
        g.extend_from_slice(&0x8847u16.to_be_bytes());
        g.extend_from_slice(&Lse::new(16001, 0, true, 63).to_bytes());
        g.extend_from_slice(&f[14..]);
        assert_eq!(parse(&g).unwrap().label, Some(16001));
        assert_eq!(parse(&g[..40]), None);
        assert_eq!(parse(&[0u8; 10]), None);
    }

    #[test]
    fn imix_mean_and_sizes() {
        assert!((SizeMix::Imix.mean() - 361.83).abs() < 0.01);
        assert_eq!(SizeMix::parse("imix"), Ok(SizeMix::Imix));
        assert!(SizeMix::parse("63").is_err());
        assert!(SizeMix::parse("1519").is_err());
        let counts = (0..12).fold([0; 3], |mut c, i| {
            c[SizeMix::Imix.class_of(i)] += 1;
            c
        });
        assert_eq!(counts, [7, 4, 1]);
    }
}
