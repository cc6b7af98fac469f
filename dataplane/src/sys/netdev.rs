//! An interface's XDP features from the kernel's `netdev` generic netlink
//! family (Documentation/netlink/specs/netdev.yaml, Linux >= 6.3): whether
//! it can transmit frames redirected to it in XDP (NETDEV_XDP_ACT_NDO_XMIT).
//! A veth can only while its peer runs NAPI (an XDP program or GRO on the
//! peer; drivers/net/veth.c updates the flag as that changes), and a
//! redirect to a device without it fails in the kernel, after the program
//! has returned: the frame is lost. The fast path asks before it sends to a
//! port ([`crate::fast_publish`]), and again when the kernel says a
//! device changed ([`NetdevEvents`]: the family's "mgmt" multicast group,
//! which gets NETDEV_CMD_DEV_CHANGE_NTF when a device's XDP features change).
//!
//! Hand-written netlink (RFC 3549 framing, genetlink header, attributes):
//! two requests, a few dozen bytes each; no crate needed.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// NETDEV_XDP_ACT_NDO_XMIT (uapi linux/netdev.h): the device transmits
/// frames redirected to it by XDP.
pub const XDP_ACT_NDO_XMIT: u64 = 4;

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const CTRL_ATTR_MCAST_GROUPS: u16 = 7;
const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;
/// uapi linux/netlink.h (not in every libc build).
const SOL_NETLINK: i32 = 270;
const NETLINK_ADD_MEMBERSHIP: i32 = 1;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// A generic netlink socket bound to the `netdev` family.
#[derive(Debug)]
pub struct Netdev {
    fd: OwnedFd,
    family: u16,
    /// The family's "mgmt" multicast group, if the kernel named one.
    mgmt: Option<u32>,
    seq: u32,
}

/// A generic netlink socket (SOCK_NONBLOCK when `nonblocking`), owned.
fn genl_socket(nonblocking: bool) -> io::Result<OwnedFd> {
    let flags = if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: plain socket(2) call; the result is checked and owned.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | flags,
            libc::NETLINK_GENERIC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Netdev {
    /// Opens the socket and resolves the family (an error on kernels
    /// without it, before 6.3).
    pub fn open() -> io::Result<Netdev> {
        let fd = genl_socket(false)?;
        let tv = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: SO_RCVTIMEO takes a timeval of exactly this size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        let mut n = Netdev {
            fd,
            family: GENL_ID_CTRL,
            mgmt: None,
            seq: 0,
        };
        let mut name = b"netdev\0".to_vec();
        name.resize(8, 0);
        let reply = n.request(
            GENL_ID_CTRL,
            CTRL_CMD_GETFAMILY,
            CTRL_ATTR_FAMILY_NAME,
            &name,
        )?;
        let id = attr(&reply, CTRL_ATTR_FAMILY_ID)
            .and_then(|v| Some(u16::from_ne_bytes(v.get(..2)?.try_into().ok()?)))
            .ok_or_else(|| io::Error::other("no netdev family id in the reply"))?;
        n.family = id;
        n.mgmt = attr(&reply, CTRL_ATTR_MCAST_GROUPS).and_then(|g| group(g, b"mgmt"));
        Ok(n)
    }

    /// A socket the kernel tells when a device changes (see
    /// [`NetdevEvents`]); an error where the family has no "mgmt" group.
    pub fn events(&self) -> io::Result<NetdevEvents> {
        let grp = self
            .mgmt
            .ok_or_else(|| io::Error::other("the netdev family has no mgmt multicast group"))?;
        let fd = genl_socket(true)?;
        // Bound, so the kernel gives the socket a port id: a multicast
        // skips sockets whose port id is the sender's, and the kernel
        // sends as 0, the port id of an unbound socket (do_one_broadcast).
        // SAFETY: `sa` is a zeroed sockaddr_nl (nl_pid 0: the kernel picks
        // one) of exactly the size passed.
        let r = unsafe {
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as u16;
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: NETLINK_ADD_MEMBERSHIP takes the group id as a u32 of
        // exactly this size; `grp` lives across the call.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                SOL_NETLINK,
                NETLINK_ADD_MEMBERSHIP,
                (&grp as *const u32).cast(),
                std::mem::size_of::<u32>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(NetdevEvents {
            fd,
            buf: vec![0; 8192],
        })
    }

    /// The XDP features (NETDEV_XDP_ACT_* bits) of interface `ifindex`.
    pub fn xdp_features(&mut self, ifindex: u32) -> io::Result<u64> {
        let reply = self.request(
            self.family,
            NETDEV_CMD_DEV_GET,
            NETDEV_A_DEV_IFINDEX,
            &ifindex.to_ne_bytes(),
        )?;
        attr(&reply, NETDEV_A_DEV_XDP_FEATURES)
            .and_then(|v| Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?)))
            .ok_or_else(|| io::Error::other("no xdp-features in the reply"))
    }

    /// Sends one request with one attribute; returns the reply's attributes.
    fn request(&mut self, family: u16, cmd: u8, a: u16, value: &[u8]) -> io::Result<Vec<u8>> {
        self.seq = self.seq.wrapping_add(1);
        let alen = 4 + value.len();
        let len = 16 + 4 + alen.div_ceil(4) * 4;
        let mut m = Vec::with_capacity(len);
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&family.to_ne_bytes());
        m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&[cmd, 1, 0, 0]);
        m.extend_from_slice(&(alen as u16).to_ne_bytes());
        m.extend_from_slice(&a.to_ne_bytes());
        m.extend_from_slice(value);
        m.resize(len, 0);
        // SAFETY: `m` is a valid buffer of m.len() bytes; a netlink socket
        // with no address sends to the kernel.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), m.as_ptr().cast(), m.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: `buf` is writable for buf.len() bytes.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let r = &buf[..n as usize];
            if r.len() < 20 {
                return Err(io::Error::other("short netlink reply"));
            }
            let ty = u16::from_ne_bytes([r[4], r[5]]);
            let seq = u32::from_ne_bytes([r[8], r[9], r[10], r[11]]);
            if seq != self.seq {
                continue; // a late reply to an earlier, timed-out request
            }
            let mlen = (u32::from_ne_bytes([r[0], r[1], r[2], r[3]]) as usize).min(r.len());
            if mlen < 20 {
                return Err(io::Error::other("truncated netlink message"));
            }
            if ty == NLMSG_ERROR {
                let code = i32::from_ne_bytes([r[16], r[17], r[18], r[19]]);
                return Err(io::Error::from_raw_os_error(-code));
            }
            return Ok(r[20..mlen].to_vec());
        }
    }
}

/// The netdev family's notifications: NETDEV_CMD_DEV_ADD_NTF,
/// DEV_DEL_NTF and DEV_CHANGE_NTF (a device's XDP features changed:
/// net/core/netdev-genl.c, on NETDEV_XDP_FEAT_CHANGE), for the devices of
/// this network namespace. A veth's NDO_XMIT flag changes when its peer
/// gains or loses NAPI, so the peer's XDP program or GRO switched in
/// another namespace arrives here as a change of this side.
#[derive(Debug)]
pub struct NetdevEvents {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl NetdevEvents {
    /// Reads every notification queued, without waiting. True if there
    /// was any, or if the kernel dropped some (the socket's queue
    /// overran: ENOBUFS), so the caller asks about its devices again.
    pub fn pending(&mut self) -> bool {
        let mut any = false;
        loop {
            // SAFETY: `buf` is writable for buf.len() bytes; the socket is
            // non-blocking.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n > 0 {
                any = true;
                continue;
            }
            if n == 0 {
                return any;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN) => return any,
                Some(libc::EINTR) => continue,
                Some(libc::ENOBUFS) => any = true,
                _ => return true,
            }
        }
    }
}

/// The id of multicast group `name` in a CTRL_ATTR_MCAST_GROUPS value: a
/// run of nested attributes, one per group, each with a name and an id.
fn group(mut groups: &[u8], name: &[u8]) -> Option<u32> {
    while groups.len() >= 4 {
        let len = u16::from_ne_bytes([groups[0], groups[1]]) as usize;
        if len < 4 || len > groups.len() {
            return None;
        }
        let g = &groups[4..len];
        let n = attr(g, CTRL_ATTR_MCAST_GRP_NAME)?;
        if n.strip_suffix(b"\0").unwrap_or(n) == name {
            let id = attr(g, CTRL_ATTR_MCAST_GRP_ID)?;
            return Some(u32::from_ne_bytes(id.get(..4)?.try_into().ok()?));
        }
        groups = &groups[(len.div_ceil(4) * 4).min(groups.len())..];
    }
    None
}

/// The value of attribute `ty` in a run of netlink attributes.
fn attr(mut attrs: &[u8], ty: u16) -> Option<&[u8]> {
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let t = u16::from_ne_bytes([attrs[2], attrs[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if t == ty {
            return Some(&attrs[4..len]);
        }
        attrs = &attrs[(len.div_ceil(4) * 4).min(attrs.len())..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_walked_with_padding() {
        let mut a = Vec::new();
        a.extend_from_slice(&6u16.to_ne_bytes());
        a.extend_from_slice(&2u16.to_ne_bytes());
        a.extend_from_slice(&[7, 7, 0, 0]);
        a.extend_from_slice(&12u16.to_ne_bytes());
        a.extend_from_slice(&(3u16 | 0x8000).to_ne_bytes());
        a.extend_from_slice(&5u64.to_ne_bytes());
        assert_eq!(attr(&a, 2), Some(&[7u8, 7][..]));
        assert_eq!(attr(&a, 3), Some(&5u64.to_ne_bytes()[..]));
        assert_eq!(attr(&a, 9), None);
        assert_eq!(attr(&a[..7], 3), None, "a truncated attribute is not read");
    }

    #[test]
    fn multicast_groups_are_found_by_name() {
        // CTRL_ATTR_MCAST_GROUPS as the kernel sends it: nested entries
        // (type = index), each with a NUL-terminated name and an id.
        fn a(ty: u16, v: &[u8]) -> Vec<u8> {
            let mut x = Vec::new();
            x.extend_from_slice(&(4 + v.len() as u16).to_ne_bytes());
            x.extend_from_slice(&ty.to_ne_bytes());
            x.extend_from_slice(v);
            x.resize(x.len().div_ceil(4) * 4, 0);
            x
        }
        let entry = |name: &[u8], id: u32| {
            let mut e = a(CTRL_ATTR_MCAST_GRP_ID, &id.to_ne_bytes());
            e.extend(a(CTRL_ATTR_MCAST_GRP_NAME, name));
            e
        };
        let mut groups = a(1, &entry(b"page-pool\0", 7));
        groups.extend(a(2, &entry(b"mgmt\0", 9)));
        assert_eq!(group(&groups, b"mgmt"), Some(9));
        assert_eq!(group(&groups, b"page-pool"), Some(7));
        assert_eq!(group(&groups, b"nosuch"), None);
        assert_eq!(
            group(&groups[..6], b"mgmt"),
            None,
            "a truncated entry is not read"
        );
    }

    #[test]
    fn the_mgmt_group_is_joined_and_read_without_waiting() {
        let n = Netdev::open().expect("netdev genetlink family");
        assert!(n.mgmt.is_some(), "the netdev family names a mgmt group");
        let mut e = n.events().expect("joining the mgmt group");
        // Whatever the host's devices did meanwhile, this returns at once.
        let t = std::time::Instant::now();
        e.pending();
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn loopback_cannot_take_redirected_frames() {
        // The family exists on every kernel this project runs on (>= 6.3);
        // lo has no ndo_xdp_xmit.
        let mut n = Netdev::open().expect("netdev genetlink family");
        let f = n.xdp_features(1).expect("lo's xdp features");
        assert_eq!(f & XDP_ACT_NDO_XMIT, 0, "features {f:#x}");
    }
}
