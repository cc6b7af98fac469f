//! The compact binary FIB file (`.omfib`): the same content as the
//! human-readable [`FibSpec`], for million-entry FIBs made by programs
//! (the control process, `fib-gen`). Versioned, self-checking, and about a
//! fifth of the JSON's size; names are interned once, labels are 17 bytes.
//!
//! Layout (big endian; "idx" is a u32 index into the name table; "nh" and
//! "group" are a next hop's and a group's id ([`super::spec::NextHopId`],
//! [`super::spec::GroupId`]), `u32::MAX` for none):
//!
//! ```text
//! "OMFB"  u16 format (2)  u16 flags (0)
//! u64 version  u8 ttl_ingress  u8 ttl_egress  u32 hash_seed
//! names:     u32 n, n x (u16 len, UTF-8 bytes)
//! ports:     u32 n, n x (idx name, u16 mtu)
//! next_hops: u32 n, n x (u32 id, idx name, idx port, [6] dst, [6] src,
//!                        u16 vlan (0xffff none), u8 n, n x u32 push, nh backup)
//! groups:    u32 n, n x (u32 id, idx name, u16 n, n x nh member)
//! labels:    u32 n, n x (u32 label, u8 action (0 swap, 1 pop),
//!                        u32 out_label (u32::MAX none), group, nh)
//! routes:    u32 n, n x (u8 family (4|6), [4|16] address, u8 length,
//!                        group, nh)
//! u64 FNV-1a of every byte before it
//! ```
//!
//! Format 2 carries ids where format 1 (before next hops had ids) carried
//! names; a format-1 file is refused, saying so. References are decoded
//! straight into ids, and a file whose ids are 0, out of range, given
//! twice or referenced but not defined is refused, as is one truncated,
//! corrupted, of another format version or with a name index out of range,
//! with the byte offset or the entry.

use super::spec::{
    check_version, ActionSpec, FibSpec, GroupId, GroupSpec, LabelSpec, Mac, NextHopId, NextHopSpec,
    PortSpec, Prefix, RouteSpec, SpecError, TtlSpec, MAX_NAME,
};
use std::collections::HashMap;
use std::net::IpAddr;

pub const MAGIC: &[u8; 4] = b"OMFB";
pub const FORMAT: u16 = 2;
const NONE: u32 = u32::MAX;

/// True when `bytes` start like a binary FIB.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn bad(msg: impl Into<String>) -> SpecError {
    SpecError::Syntax(format!("binary FIB: {}", msg.into()))
}

struct Names<'a> {
    index: HashMap<&'a str, u32>,
    list: Vec<&'a str>,
}

impl<'a> Names<'a> {
    fn idx(&mut self, s: &'a str) -> u32 {
        let n = self.list.len() as u32;
        *self.index.entry(s).or_insert_with(|| {
            self.list.push(s);
            n
        })
    }
}

/// An optional id as written: `u32::MAX` for none.
fn opt_id(id: Option<u32>) -> u32 {
    id.unwrap_or(NONE)
}

fn ttl(t: TtlSpec) -> u8 {
    match t {
        TtlSpec::Uniform => 0,
        TtlSpec::Pipe => 1,
    }
}

/// Encodes a FIB; MACs and prefixes must parse (the error names the entry).
pub fn encode(spec: &FibSpec) -> Result<Vec<u8>, SpecError> {
    let mut names = Names {
        index: HashMap::new(),
        list: Vec::new(),
    };
    // Intern every name first, in file order.
    for p in &spec.ports {
        names.idx(&p.name);
    }
    for n in &spec.next_hops {
        names.idx(&n.name);
        names.idx(&n.port);
    }
    for g in &spec.groups {
        names.idx(&g.name);
    }
    let mut b = Vec::with_capacity(64 + spec.labels.len() * 17 + spec.next_hops.len() * 40);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&FORMAT.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&spec.version.to_be_bytes());
    b.push(ttl(spec.ttl_ingress));
    b.push(ttl(spec.ttl_egress));
    b.extend_from_slice(&spec.hash_seed.to_be_bytes());
    let u32s = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&v.to_be_bytes());
    let count = |b: &mut Vec<u8>, n: usize, what: &str| -> Result<(), SpecError> {
        let n = u32::try_from(n).map_err(|_| bad(format!("too many {what}")))?;
        b.extend_from_slice(&n.to_be_bytes());
        Ok(())
    };
    count(&mut b, names.list.len(), "names")?;
    for s in &names.list {
        let len = u16::try_from(s.len()).map_err(|_| bad(format!("name {s:?} is too long")))?;
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(s.as_bytes());
    }
    count(&mut b, spec.ports.len(), "ports")?;
    for p in &spec.ports {
        u32s(&mut b, names.idx(&p.name));
        b.extend_from_slice(&p.mtu.to_be_bytes());
    }
    count(&mut b, spec.next_hops.len(), "next hops")?;
    for n in &spec.next_hops {
        let (dst, src) = (n.dst_mac.0, n.src_mac.0);
        u32s(&mut b, n.id.0);
        u32s(&mut b, names.idx(&n.name));
        u32s(&mut b, names.idx(&n.port));
        b.extend_from_slice(&dst);
        b.extend_from_slice(&src);
        b.extend_from_slice(&n.vlan.unwrap_or(0xffff).to_be_bytes());
        let np = u8::try_from(n.push.len())
            .map_err(|_| bad(format!("next hop {:?}: too many labels to push", n.name)))?;
        b.push(np);
        n.push.iter().for_each(|&l| u32s(&mut b, l));
        u32s(&mut b, opt_id(n.backup.map(|b| b.0)));
    }
    count(&mut b, spec.groups.len(), "groups")?;
    for g in &spec.groups {
        u32s(&mut b, g.id.0);
        u32s(&mut b, names.idx(&g.name));
        let n = u16::try_from(g.next_hops.len())
            .map_err(|_| bad(format!("group {:?}: too many next hops", g.name)))?;
        b.extend_from_slice(&n.to_be_bytes());
        for h in &g.next_hops {
            u32s(&mut b, h.0);
        }
    }
    count(&mut b, spec.labels.len(), "labels")?;
    for l in &spec.labels {
        u32s(&mut b, l.label);
        b.push(match l.action {
            ActionSpec::Swap => 0,
            ActionSpec::Pop => 1,
        });
        // u32::MAX stands for "none": an out_label of that value would be
        // read back as none and vanish, so it is refused here (the JSON a
        // client then falls back to lets the dataplane name the error).
        if l.out_label == Some(NONE) {
            return Err(bad(format!(
                "label {}: out_label: {NONE} is larger than 20 bits",
                l.label
            )));
        }
        u32s(&mut b, l.out_label.unwrap_or(NONE));
        u32s(&mut b, opt_id(l.group.map(|g| g.0)));
        u32s(&mut b, opt_id(l.next_hop.map(|n| n.0)));
    }
    count(&mut b, spec.routes.len(), "routes")?;
    for r in &spec.routes {
        match r.prefix.addr() {
            IpAddr::V4(a) => {
                b.push(4);
                b.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                b.push(6);
                b.extend_from_slice(&a.octets());
            }
        }
        b.push(r.prefix.length());
        u32s(&mut b, opt_id(r.group.map(|g| g.0)));
        u32s(&mut b, opt_id(r.next_hop.map(|n| n.0)));
    }
    let h = fnv1a(&b);
    b.extend_from_slice(&h.to_be_bytes());
    Ok(b)
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    names: Vec<String>,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], SpecError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err(bad(format!("truncated at byte {} ({what})", self.at)));
        };
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, SpecError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, SpecError> {
        Ok(u16::from_be_bytes(
            self.take(2, what)?.try_into().expect("2"),
        ))
    }
    fn u32(&mut self, what: &str) -> Result<u32, SpecError> {
        Ok(u32::from_be_bytes(
            self.take(4, what)?.try_into().expect("4"),
        ))
    }
    fn u64(&mut self, what: &str) -> Result<u64, SpecError> {
        Ok(u64::from_be_bytes(
            self.take(8, what)?.try_into().expect("8"),
        ))
    }
    /// A count whose entries take at least `min` bytes each (so a corrupt
    /// count cannot make us reserve gigabytes).
    fn count(&mut self, min: usize, what: &str) -> Result<usize, SpecError> {
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min) > self.b.len() - self.at {
            return Err(bad(format!(
                "{what}: {n} entries cannot fit in the {} bytes left (byte {})",
                self.b.len() - self.at,
                self.at
            )));
        }
        Ok(n)
    }
    fn name(&mut self, what: &str) -> Result<String, SpecError> {
        let i = self.u32(what)?;
        self.names.get(i as usize).cloned().ok_or_else(|| {
            bad(format!(
                "{what}: name index {i} out of range (byte {})",
                self.at - 4
            ))
        })
    }
    fn opt_u32(&mut self, what: &str) -> Result<Option<u32>, SpecError> {
        Ok(Some(self.u32(what)?).filter(|&v| v != NONE))
    }
    fn opt_nh(&mut self, what: &str) -> Result<Option<NextHopId>, SpecError> {
        Ok(self.opt_u32(what)?.map(NextHopId))
    }
    fn opt_group(&mut self, what: &str) -> Result<Option<GroupId>, SpecError> {
        Ok(self.opt_u32(what)?.map(GroupId))
    }
    fn mac(&mut self, what: &str) -> Result<Mac, SpecError> {
        Ok(Mac(self.take(6, what)?.try_into().expect("6")))
    }
}

fn ttl_of(v: u8, what: &str) -> Result<TtlSpec, SpecError> {
    match v {
        0 => Ok(TtlSpec::Uniform),
        1 => Ok(TtlSpec::Pipe),
        x => Err(bad(format!("{what}: unknown TTL model {x}"))),
    }
}

/// Decodes a binary FIB, refusing anything malformed.
pub fn decode(bytes: &[u8]) -> Result<FibSpec, SpecError> {
    if bytes.is_empty() {
        return Err(bad("the file is empty"));
    }
    if !is_binary(bytes) {
        return Err(bad("not a binary FIB (no OMFB magic at its start)"));
    }
    if bytes.len() < 8 + 8 {
        return Err(bad("truncated header"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if fnv1a(body) != u64::from_be_bytes(sum.try_into().expect("8")) {
        return Err(bad("checksum mismatch: the file is truncated or corrupted"));
    }
    let mut r = Reader {
        b: body,
        at: 4,
        names: Vec::new(),
    };
    let format = r.u16("format")?;
    if format == 1 {
        return Err(bad(
            "format version 1 (references by name) is not supported: this build reads \
             format 2 (next hops and groups by id); write the FIB again with this build",
        ));
    }
    if format != FORMAT {
        return Err(bad(format!(
            "format version {format} is not supported (this build reads {FORMAT})"
        )));
    }
    let _flags = r.u16("flags")?;
    let mut spec = FibSpec {
        version: r.u64("version")?,
        ..FibSpec::default()
    };
    check_version(spec.version).map_err(bad)?;
    spec.ttl_ingress = ttl_of(r.u8("ttl_ingress")?, "ttl_ingress")?;
    spec.ttl_egress = ttl_of(r.u8("ttl_egress")?, "ttl_egress")?;
    spec.hash_seed = r.u32("hash_seed")?;
    read_names(&mut r)?;
    for i in 0..r.count(6, "ports")? {
        let what = format!("ports[{i}]");
        spec.ports.push(PortSpec {
            name: r.name(&what)?,
            mtu: r.u16(&what)?,
        });
    }
    read_next_hops(&mut r, &mut spec)?;
    for i in 0..r.count(10, "groups")? {
        let w = format!("groups[{i}]");
        let id = GroupId(r.u32(&w)?);
        let name = r.name(&w)?;
        let n = r.u16(&w)?;
        let next_hops = (0..n)
            .map(|_| r.u32(&w).map(NextHopId))
            .collect::<Result<_, _>>()?;
        spec.groups.push(GroupSpec {
            id,
            name,
            next_hops,
        });
    }
    read_labels(&mut r, &mut spec)?;
    read_routes(&mut r, &mut spec)?;
    if r.at != body.len() {
        return Err(bad(format!(
            "{} unexpected bytes after the routes (byte {})",
            body.len() - r.at,
            r.at
        )));
    }
    spec.check_ids().map_err(|e| bad(e.to_string()))?;
    spec.check_references().map_err(|e| bad(e.to_string()))?;
    Ok(spec)
}

/// The name table, each name at most [`MAX_NAME`] bytes of UTF-8.
fn read_names(r: &mut Reader) -> Result<(), SpecError> {
    for i in 0..r.count(2, "names")? {
        let len = r.u16("name length")? as usize;
        if len > MAX_NAME {
            return Err(bad(format!(
                "name {i}: {len} bytes; a name has at most {MAX_NAME} (byte {})",
                r.at - 2
            )));
        }
        let s = std::str::from_utf8(r.take(len, "name")?)
            .map_err(|_| bad(format!("name {i} is not UTF-8")))?
            .to_string();
        r.names.push(s);
    }
    Ok(())
}

fn read_next_hops(r: &mut Reader, spec: &mut FibSpec) -> Result<(), SpecError> {
    for i in 0..r.count(31, "next_hops")? {
        let w = format!("next_hops[{i}]");
        let id = NextHopId(r.u32(&w)?);
        let name = r.name(&w)?;
        let port = r.name(&w)?;
        let dst_mac = r.mac(&w)?;
        let src_mac = r.mac(&w)?;
        let vlan = match r.u16(&w)? {
            0xffff => None,
            v => Some(v),
        };
        let np = r.u8(&w)?;
        let push = (0..np).map(|_| r.u32(&w)).collect::<Result<_, _>>()?;
        let backup = r.opt_nh(&w)?;
        spec.next_hops.push(NextHopSpec {
            id,
            name,
            port,
            dst_mac,
            src_mac,
            vlan,
            push,
            backup,
        });
    }
    Ok(())
}

fn read_labels(r: &mut Reader, spec: &mut FibSpec) -> Result<(), SpecError> {
    let n = r.count(17, "labels")?;
    spec.labels.reserve(n);
    for i in 0..n {
        let w = || format!("labels[{i}]");
        let label = r.u32("label")?;
        let action = match r.u8("action")? {
            0 => ActionSpec::Swap,
            1 => ActionSpec::Pop,
            x => return Err(bad(format!("{}: unknown action {x}", w()))),
        };
        let out_label = match r.u32("out_label")? {
            NONE => None,
            l => Some(l),
        };
        spec.labels.push(LabelSpec {
            label,
            action,
            out_label,
            group: r.opt_group("group")?,
            next_hop: r.opt_nh("next_hop")?,
        });
    }
    Ok(())
}

/// Routes, each a [`Prefix`] (host bits or an over-long length refused).
fn read_routes(r: &mut Reader, spec: &mut FibSpec) -> Result<(), SpecError> {
    let n = r.count(14, "routes")?;
    spec.routes.reserve(n);
    for i in 0..n {
        let w = format!("routes[{i}]");
        let addr: IpAddr = match r.u8(&w)? {
            4 => <[u8; 4]>::try_from(r.take(4, &w)?).expect("4").into(),
            6 => <[u8; 16]>::try_from(r.take(16, &w)?).expect("16").into(),
            x => return Err(bad(format!("{w}: unknown address family {x}"))),
        };
        let len = r.u8(&w)?;
        let prefix = Prefix::new(addr, len).map_err(|e| bad(format!("{w}: {addr}/{len}: {e}")))?;
        spec.routes.push(RouteSpec {
            prefix,
            group: r.opt_group(&w)?,
            next_hop: r.opt_nh(&w)?,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> FibSpec {
        let example = crate::file::doc_toml_example(include_str!("spec.rs"));
        let mut s = FibSpec::parse(&example).unwrap();
        s.routes.push(RouteSpec {
            prefix: "2001:db8::/32".parse().unwrap(),
            group: None,
            next_hop: s.next_hop_named("sat2"),
        });
        s.labels.push(LabelSpec {
            label: 17,
            action: ActionSpec::Swap,
            out_label: Some(18),
            group: s.group_named("east"),
            next_hop: None,
        });
        s.next_hops[0].vlan = Some(100);
        s.next_hops[0].push = vec![16005, 16006];
        s.ttl_egress = TtlSpec::Pipe;
        s
    }

    #[test]
    fn round_trips_and_is_smaller_than_json() {
        let s = example();
        let b = encode(&s).unwrap();
        assert!(is_binary(&b));
        assert_eq!(decode(&b).unwrap(), s);
        assert!(
            b.len() * 2 < s.to_json().len(),
            "{} vs {}",
            b.len(),
            s.to_json().len()
        );
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let b = encode(&example()).unwrap();
        for n in 0..b.len() {
            assert!(decode(&b[..n]).is_err(), "truncated to {n}");
        }
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(decode(&c).is_err(), "byte {i} flipped");
        }
    }

    #[test]
    fn an_out_label_that_means_none_is_refused_not_dropped() {
        // It used to be written as u32::MAX, read back as "no out_label",
        // and the FIB loaded as a plain swap.
        let mut s = example();
        let swap = s.labels.iter_mut().find(|l| l.action == ActionSpec::Swap);
        swap.unwrap().out_label = Some(u32::MAX);
        let e = encode(&s).unwrap_err().to_string();
        assert!(
            e.contains("out_label: 4294967295 is larger than 20 bits"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_what_is_wrong() {
        // A bad MAC cannot reach the encoder: the typed spec refuses it
        // where the FIB is read, naming the entry and the field.
        let text = crate::file::doc_toml_example(include_str!("spec.rs"));
        let text = text.replacen("dst_mac = \"02:00:00:00:02:01\"", "dst_mac = \"nope\"", 1);
        let e = FibSpec::parse(&text).unwrap_err().to_string();
        assert!(e.contains("dst_mac") && e.contains("sat2"), "{e}");
        let mut b = encode(&example()).unwrap();
        b[5] = 9; // format version 9
        let n = b.len() - 8;
        let h = fnv1a(&b[..n]);
        b[n..].copy_from_slice(&h.to_be_bytes());
        let e = decode(&b).unwrap_err().to_string();
        assert!(e.contains("format version 9"), "{e}");
        // Format 1 carried references by name: refused, saying so.
        b[5] = 1;
        let h = fnv1a(&b[..n]);
        b[n..].copy_from_slice(&h.to_be_bytes());
        let e = decode(&b).unwrap_err().to_string();
        assert!(e.contains("format version 1 (references by name)"), "{e}");
    }
}
