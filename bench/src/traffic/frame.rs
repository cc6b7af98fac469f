//! Test frames of the traffic harness and the stamp they carry.
//!
//! Every frame is an RFC 2544 (appendix C.2.6.4) style UDP test frame, either
//! carried over one MPLS label stack entry (RFC 3032, the transit profile),
//! as plain IPv4 (the IPv4 ingress profile) or as plain IPv6 (RFC 8200, the
//! IPv6 ingress profile); the mixed profile alternates the three by flow
//! (flow index mod 3: MPLS, IPv4, IPv6):
//!
//! ```text
//!  Ethernet (14) | [MPLS LSE (4), S=1, TTL 64] | IPv4 (20) | UDP (8) | stamp (14) | padding
//!  Ethernet (14) | IPv6 (40, next header UDP, hop limit 64) | UDP (8) | stamp (14) | padding
//!  stamp = trial (u16) | sequence in its flow (u32) | TX time, ns (u64), all big endian
//! ```
//!
//! A flow is named by its UDP source port (`FLOW_PORT_BASE + flow`), so the
//! 64-byte MPLS frame (60 bytes + FCS) holds headers and stamp exactly; an
//! IPv6 frame needs 80 bytes (so IPv6 and mixed trials start at 80). Frame
//! sizes follow RFC 2544 section 9: they count the FCS, which the NIC (here
//! the veth) adds, so a "64-byte" frame is 60 bytes in the UMEM. IMIX is the
//! common "simple IMIX": 64, 594 and 1518 bytes in the ratio 7:4:1.
//!
//! UDP over IPv4 goes without a checksum (zero, RFC 768); over IPv6 the
//! checksum is mandatory (RFC 8200 section 8.1), so [`build`] computes it
//! over the pseudo-header and [`write_stamp`] keeps it right as it writes
//! the stamp, incrementally (RFC 1624), whatever stamp the buffer held.
//!
//! [`FlowPlan`] fixes, for each flow, its kind, its label (spread over the
//! label table with an odd stride so lookups touch the whole table), its
//! IPv4/IPv6 destination and the egress port it must leave the device under
//! test on; the sink checks every arrival against it (misforwarding = wrong
//! port or wrong label). Parsing at the sink ([`parse`]) is allocation-free
//! and reads MPLS (over IPv4 or IPv6), IPv4 and IPv6 frames.

use orbitmesh_core::wire::checksum;
use orbitmesh_core::wire::ethernet::ethertype;
use orbitmesh_core::wire::mpls::Lse;

/// UDP source port of flow 0.
pub const FLOW_PORT_BASE: u16 = 0x4000;
/// UDP destination port (RFC 2544 C.2.6.4 uses the echo port).
pub const UDP_DST_PORT: u16 = 7;
/// Bytes of the stamp after the UDP header.
pub const STAMP_LEN: usize = 14;
/// Frame check sequence: counted in frame sizes, added by the device.
pub const FCS_LEN: usize = 4;
/// The first node SID (SRGB base; docs/design.md, "2. Label plan").
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
    /// IPv6 frames (RFC 8200) routed by the DUT (ingress at a label edge).
    Ipv6,
    /// Flows alternate MPLS / IPv4 / IPv6 (flow index mod 3), all into one
    /// label edge port.
    Mixed,
}

impl Profile {
    /// Parses "mpls", "ipv4", "ipv6" or "mixed".
    pub fn parse(s: &str) -> Result<Profile, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "mpls" => Profile::Mpls,
            "ipv4" => Profile::Ipv4,
            "ipv6" => Profile::Ipv6,
            "mixed" => Profile::Mixed,
            _ => return Err(format!("profile {s:?}: mpls, ipv4, ipv6 or mixed")),
        })
    }

    /// What flow `f`'s frames are.
    #[inline]
    pub fn kind_of(self, f: u16) -> FlowKind {
        match self {
            Profile::Mpls => FlowKind::Mpls,
            Profile::Ipv4 => FlowKind::Ipv4,
            Profile::Ipv6 => FlowKind::Ipv6,
            Profile::Mixed => match f % 3 {
                0 => FlowKind::Mpls,
                1 => FlowKind::Ipv4,
                _ => FlowKind::Ipv6,
            },
        }
    }

    /// Smallest frame (with FCS) that holds the headers and stamp of every
    /// flow of this profile (all flows of a trial have the same size).
    pub fn min_size(self) -> u16 {
        let hdr = match self {
            Profile::Mpls => FlowKind::Mpls.stamp_offset(),
            Profile::Ipv4 => FlowKind::Ipv4.stamp_offset(),
            Profile::Ipv6 | Profile::Mixed => FlowKind::Ipv6.stamp_offset(),
        };
        (hdr + STAMP_LEN + FCS_LEN).max(64) as u16
    }
}

/// What one flow's frames are (one kind per profile, except [`Profile::Mixed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// One label (S=1, TTL 64) over IPv4.
    Mpls,
    Ipv4,
    /// IPv6, next header UDP, hop limit 64 (RFC 8200).
    Ipv6,
}

impl FlowKind {
    /// Offset of the stamp in frames as the generator sends them.
    pub fn stamp_offset(self) -> usize {
        match self {
            FlowKind::Mpls => 14 + 4 + 20 + 8,
            FlowKind::Ipv4 => 14 + 20 + 8,
            FlowKind::Ipv6 => 14 + 40 + 8,
        }
    }

    /// Where the stamp goes and which UDP checksum it must keep right.
    pub fn stamp_at(self) -> StampAt {
        StampAt {
            at: self.stamp_offset(),
            // UDP checksum: 6 bytes into the UDP header, just before the stamp.
            udp_csum: (self == FlowKind::Ipv6).then(|| self.stamp_offset() - 2),
        }
    }
}

/// Where [`write_stamp`] writes: the stamp's offset, and the offset of the
/// UDP checksum to update with it (IPv6 only: over IPv4 it is zero, "none").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StampAt {
    pub at: usize,
    pub udp_csum: Option<usize>,
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
    /// During a FIB swap test, the second FIB swaps each label to itself +
    /// this (0: there is one FIB): a frame carrying either is forwarded
    /// correctly, and the sink counts which FIB forwarded it.
    pub alt_label_delta: u32,
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
            alt_label_delta: 0,
        }
    }

    /// The same plan, with frames forwarded by the second FIB of a swap
    /// test (labels + `delta`) counted as correct.
    pub fn with_alt_labels(self, delta: u32) -> FlowPlan {
        FlowPlan {
            alt_label_delta: delta,
            ..self
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

    /// IPv6 destination of flow `f`: 2001:db8:(100 + port)::hi:lo (hex
    /// 2001:db8:64::/48 and 2001:db8:65::/48), so a /48 per egress port
    /// routes it ([`ipv6_prefix`]).
    pub fn dst_ip6(&self, f: u16) -> [u8; 16] {
        let mut a = SRC_IP6;
        a[5] = 100 + self.expected_port(f);
        a[14..].copy_from_slice(&f.to_be_bytes());
        a
    }

    /// What flow `f`'s frames are.
    #[inline]
    pub fn kind(&self, f: u16) -> FlowKind {
        self.profile.kind_of(f)
    }

    /// Where flow `f`'s stamp goes.
    #[inline]
    pub fn stamp_at(&self, f: u16) -> StampAt {
        self.kind(f).stamp_at()
    }

    /// The label flow `f` must carry at the sink (None: plain IP; the edge
    /// DUTs' routes push nothing).
    pub fn expected_label(&self, f: u16) -> Option<u32> {
        match self.kind(f) {
            FlowKind::Mpls => Some(self.label(f)),
            FlowKind::Ipv4 | FlowKind::Ipv6 => None,
        }
    }

    /// The label flow `f` carries when the swap test's second FIB
    /// forwarded it (None: no second FIB, or an unlabelled flow).
    pub fn alt_label(&self, f: u16) -> Option<u32> {
        match self.expected_label(f) {
            Some(l) if self.alt_label_delta != 0 => Some(l + self.alt_label_delta),
            _ => None,
        }
    }
}

/// Generator's source IPv4 address.
pub const SRC_IP: [u8; 4] = [10, 99, 0, 1];
/// Generator's source IPv6 address (2001:db8:63::1, documentation space, RFC 3849).
pub const SRC_IP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// The IPv6 prefix routed to egress port `port` (text, for the FIB).
pub fn ipv6_prefix(port: u8) -> String {
    format!("2001:db8:{:x}::/48", 100 + port as u16)
}

/// The UDP checksum of `udp` (header and payload, its checksum field taken
/// as it is) over the IPv6 pseudo-header (RFC 8200 section 8.1): the value
/// to store when the field is zero, and 0 for a datagram whose stored
/// checksum is right. A computed 0 is sent as 0xffff (RFC 768).
pub fn udp6_checksum(src: &[u8; 16], dst: &[u8; 16], udp: &[u8]) -> u16 {
    let mut acc = checksum::sum(0, src);
    acc = checksum::sum(acc, dst);
    acc += udp.len() as u32; // upper-layer packet length (32 bits; < 64 KiB here)
    acc += 17; // next header UDP, after three zero bytes
    acc = checksum::sum(acc, udp);
    !checksum::fold(acc)
}

/// Builds flow `f`'s frame of `size` bytes on the wire (the buffer is `size - FCS_LEN`), stamp zeroed.
pub fn build(plan: &FlowPlan, macs: &Macs, f: u16, size: u16) -> Vec<u8> {
    let size = size.max(plan.profile.min_size());
    let len = size as usize - FCS_LEN;
    let kind = plan.kind(f);
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&macs.dut_in);
    b.extend_from_slice(&macs.gen);
    match kind {
        FlowKind::Mpls => {
            b.extend_from_slice(&ethertype::MPLS.to_be_bytes());
            b.extend_from_slice(&Lse::new(plan.label(f), 0, true, 64).to_bytes());
        }
        FlowKind::Ipv4 => b.extend_from_slice(&ethertype::IPV4.to_be_bytes()),
        FlowKind::Ipv6 => b.extend_from_slice(&ethertype::IPV6.to_be_bytes()),
    }
    let ip_at = b.len();
    let ip_len = len - ip_at;
    let ip_hdr = if kind == FlowKind::Ipv6 { 40 } else { 20 };
    let udp_len = ip_len - ip_hdr;
    if kind == FlowKind::Ipv6 {
        orbitmesh_core::wire::ipv6::Repr {
            src: SRC_IP6,
            dst: plan.dst_ip6(f),
            next_header: 17,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: udp_len,
        }
        .emit(&mut b);
    } else {
        orbitmesh_core::wire::ipv4::Repr {
            src: SRC_IP,
            dst: plan.dst_ip(f),
            protocol: 17,
            ttl: 64,
            tos: 0,
            payload_len: udp_len,
        }
        .emit(&mut b);
    }
    let udp_at = b.len();
    b.extend_from_slice(&(FLOW_PORT_BASE + f).to_be_bytes());
    b.extend_from_slice(&UDP_DST_PORT.to_be_bytes());
    b.extend_from_slice(&(udp_len as u16).to_be_bytes());
    b.extend_from_slice(&[0, 0]); // over IPv4: no UDP checksum (RFC 768: zero = none)
    debug_assert_eq!(b.len(), kind.stamp_offset());
    b.resize(len, 0);
    if kind == FlowKind::Ipv6 {
        // Mandatory over IPv6 (RFC 8200 section 8.1); stamp still zero.
        let mut c = udp6_checksum(&SRC_IP6, &plan.dst_ip6(f), &b[udp_at..]);
        if c == 0 {
            c = 0xffff;
        }
        b[udp_at + 6..udp_at + 8].copy_from_slice(&c.to_be_bytes());
    }
    b
}

/// Writes the stamp into a frame built by [`build`] (or one that already
/// carries another stamp: a recycled UMEM chunk) and, for IPv6, updates
/// the UDP checksum by RFC 1624 (eqn. 3: HC' = ~(~HC + ~m + m')), 14 bytes
/// of work instead of a sum over the whole datagram.
#[inline]
pub fn write_stamp(frame: &mut [u8], at: StampAt, trial: u16, seq: u32, tx_ns: u64) {
    let s = at.at;
    let old = at
        .udp_csum
        .map(|_| checksum::fold(checksum::sum(0, &frame[s..s + STAMP_LEN])));
    frame[s..s + 2].copy_from_slice(&trial.to_be_bytes());
    frame[s + 2..s + 6].copy_from_slice(&seq.to_be_bytes());
    frame[s + 6..s + 14].copy_from_slice(&tx_ns.to_be_bytes());
    if let (Some(c), Some(old)) = (at.udp_csum, old) {
        // The stamp starts at an even offset from the UDP header, so its
        // words are words of the checksum.
        let new = checksum::fold(checksum::sum(0, &frame[s..s + STAMP_LEN]));
        let hc = u16::from_be_bytes([frame[c], frame[c + 1]]);
        let mut v = checksum::adjust(hc, old, new);
        if v == 0 {
            v = 0xffff;
        }
        frame[c..c + 2].copy_from_slice(&v.to_be_bytes());
    }
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

/// Reads a test frame: MPLS (over IPv4 or IPv6, by the version nibble),
/// IPv4 or IPv6 (RFC 8200, no extension headers); `None` for anything else
/// (ARP, ND, foreign UDP).
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
    } else if et != ethertype::IPV4 && et != ethertype::IPV6 {
        return None;
    }
    if b.len() < at + 20 {
        return None;
    }
    match b[at] >> 4 {
        4 if et != ethertype::IPV6 => {
            if b[at + 9] != 17 {
                return None;
            }
            at += ((b[at] & 0x0f) as usize) * 4;
        }
        6 if et != ethertype::IPV4 => {
            if b.len() < at + 40 || b[at + 6] != 17 {
                return None;
            }
            at += 40;
        }
        _ => return None,
    }
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
        write_stamp(&mut f, plan.stamp_at(5), 3, 77, 123_456_789);
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
            let ip = orbitmesh_core::wire::ipv4::Packet::new_checked(&f[14..]).expect("valid IPv4");
            assert!(ip.verify_checksum());
            assert_eq!(ip.dst(), [10, 101, 1, 43]);
            write_stamp(&mut f, plan.stamp_at(299), 1, 2, 3);
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

    /// The UDP checksum over IPv6, computed from scratch: true when right.
    fn udp6_ok(f: &[u8], ip_at: usize) -> bool {
        let ip = orbitmesh_core::wire::ipv6::Packet::new_checked(&f[ip_at..]).expect("valid IPv6");
        let udp = &f[ip_at + 40..];
        assert_eq!(ip.payload_len() as usize, udp.len());
        u16::from_be_bytes([udp[6], udp[7]]) != 0 && udp6_checksum(&ip.src(), &ip.dst(), udp) == 0
    }

    #[test]
    fn ipv6_frames_round_trip_with_right_checksums() {
        let plan = FlowPlan::new(300, 0, 2, Profile::Ipv6);
        assert_eq!(Profile::Ipv6.min_size(), 80);
        for size in [64u16, 80, 128, 594, 1518] {
            let mut f = build(&plan, &MACS, 299, size);
            assert_eq!(f.len(), size.max(80) as usize - 4);
            assert_eq!(u16::from_be_bytes([f[12], f[13]]), 0x86dd);
            let ip = orbitmesh_core::wire::ipv6::Packet::new_checked(&f[14..]).expect("valid IPv6");
            assert_eq!(
                (ip.version(), ip.next_header(), ip.hop_limit()),
                (6, 17, 64)
            );
            // 2001:db8:65::1:2b: flow 299 leaves on port 1.
            let mut dst = [0u8; 16];
            dst[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0x65]);
            dst[14..].copy_from_slice(&299u16.to_be_bytes());
            assert_eq!(ip.dst(), dst);
            assert_eq!(ipv6_prefix(1), "2001:db8:65::/48");
            assert!(udp6_ok(&f, 14), "template checksum");
            // Stamp again and again into the same buffer (a recycled chunk).
            for (seq, ts) in [
                (2u32, 3u64),
                (0xffff_ffff, u64::MAX),
                (0, 0),
                (77, 0x1234_5678_9abc),
            ] {
                write_stamp(&mut f, plan.stamp_at(299), 1, seq, ts);
                assert!(udp6_ok(&f, 14), "checksum after stamping {seq} {ts}");
                let a = parse(&f).unwrap();
                assert_eq!(
                    (a.flow, a.trial, a.seq, a.tx_ns, a.label),
                    (299, 1, seq, ts, None)
                );
            }
            // A wrong checksum is caught.
            let c = Profile::Ipv6.kind_of(0).stamp_at().udp_csum.unwrap();
            f[c + 1] ^= 0x01;
            assert!(!udp6_ok(&f, 14), "a corrupted checksum must fail");
            // A wrong stamp without its checksum update is caught too.
            f[c + 1] ^= 0x01;
            f[c + 4] ^= 0x80;
            assert!(!udp6_ok(&f, 14));
        }
    }

    #[test]
    fn udp6_checksum_matches_a_known_value() {
        // Independent reference: the sum written out by hand over the pseudo-header.
        let src = SRC_IP6;
        let mut dst = SRC_IP6;
        dst[15] = 2;
        let udp = [0x40, 0x00, 0x00, 0x07, 0x00, 0x0a, 0x00, 0x00, 0x12, 0x34];
        let words: u32 = [
            0x2001u32, 0x0db8, 0x0063, 0, 0, 0, 0, 0x0001, // src
            0x2001, 0x0db8, 0x0063, 0, 0, 0, 0, 0x0002, // dst
            10, 17, // length, next header
            0x4000, 0x0007, 0x000a, 0x0000, 0x1234, // UDP header + payload
        ]
        .iter()
        .sum();
        let folded = (words & 0xffff) + (words >> 16);
        assert_eq!(udp6_checksum(&src, &dst, &udp), !(folded as u16));
    }

    #[test]
    fn labelled_ipv6_is_read_as_top() {
        let plan = FlowPlan::new(4, 0, 1, Profile::Ipv6);
        let mut f = build(&plan, &MACS, 3, 80);
        write_stamp(&mut f, plan.stamp_at(3), 5, 6, 7);
        let mut g = f[..12].to_vec();
        g.extend_from_slice(&0x8847u16.to_be_bytes());
        g.extend_from_slice(&Lse::new(16003, 0, true, 63).to_bytes());
        g.extend_from_slice(&f[14..]);
        let a = parse(&g).unwrap();
        assert_eq!(
            (a.flow, a.trial, a.seq, a.tx_ns, a.label),
            (3, 5, 6, 7, Some(16003))
        );
        assert_eq!(parse(&g[..70]), None);
        // An IPv6 EtherType over an IPv4 header is not a test frame.
        let mut h = build(&FlowPlan::new(4, 0, 1, Profile::Ipv4), &MACS, 1, 64);
        h[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(parse(&h), None);
    }

    #[test]
    fn mixed_flows_alternate_mpls_ipv4_ipv6() {
        let plan = FlowPlan::new(64, 4096, 2, Profile::Mixed);
        assert_eq!(Profile::Mixed.min_size(), 80);
        for fl in 0..9u16 {
            let mut f = build(&plan, &MACS, fl, 64);
            assert_eq!(f.len(), 76, "every flow of a mixed trial has the same size");
            let (et, label) = match fl % 3 {
                0 => (0x8847, Some(plan.label(fl))),
                1 => (0x0800, None),
                _ => (0x86dd, None),
            };
            assert_eq!(u16::from_be_bytes([f[12], f[13]]), et);
            assert_eq!(plan.expected_label(fl), label);
            write_stamp(&mut f, plan.stamp_at(fl), 4, fl as u32 * 10, 99);
            let a = parse(&f).unwrap();
            assert_eq!(
                (a.flow, a.trial, a.seq, a.tx_ns, a.label),
                (fl, 4, fl as u32 * 10, 99, label)
            );
            match fl % 3 {
                1 => assert_eq!(&f[30..34], &plan.dst_ip(fl)),
                2 => {
                    assert!(udp6_ok(&f, 14));
                    assert_eq!(&f[38..54], &plan.dst_ip6(fl));
                }
                _ => {}
            }
        }
    }

    #[test]
    fn profiles_parse() {
        for (s, p) in [
            ("mpls", Profile::Mpls),
            ("ipv4", Profile::Ipv4),
            ("IPv6", Profile::Ipv6),
            ("mixed", Profile::Mixed),
        ] {
            assert_eq!(Profile::parse(s), Ok(p));
        }
        assert!(Profile::parse("ipx").is_err());
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
