//! An interface's XDP features from the kernel's `netdev` generic netlink
//! family (Documentation/netlink/specs/netdev.yaml, Linux >= 6.3): whether
//! it can transmit frames redirected to it in XDP (NETDEV_XDP_ACT_NDO_XMIT).
//! A veth can only while its peer runs NAPI (an XDP program or GRO on the
//! peer; drivers/net/veth.c updates the flag as that changes), and a
//! redirect to a device without it fails in the kernel, after the program
//! has returned: the frame is lost. The fast path asks before it sends to a
//! port ([`crate::fast_publish`]).
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
    seq: u32,
}

impl Netdev {
    /// Opens the socket and resolves the family (an error on kernels
    /// without it, before 6.3).
    pub fn open() -> io::Result<Netdev> {
        // SAFETY: plain socket(2) call; the result is checked and owned.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
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
        Ok(n)
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
    fn loopback_cannot_take_redirected_frames() {
        // The family exists on every kernel this project runs on (>= 6.3);
        // lo has no ndo_xdp_xmit.
        let mut n = Netdev::open().expect("netdev genetlink family");
        let f = n.xdp_features(1).expect("lo's xdp features");
        assert_eq!(f & XDP_ACT_NDO_XMIT, 0, "features {f:#x}");
    }
}
