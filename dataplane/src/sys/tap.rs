//! A TAP interface (Linux tun/tap, Documentation/networking/tuntap.rst):
//! frames written to it are received by the host stack as if they had
//! arrived on that interface. The dataplane hands punted frames (router
//! alert, OAM) to the host this way, like VPP's punt-to-tap.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

/// An open TAP device; the interface lives as long as this value.
#[derive(Debug)]
pub struct Tap {
    file: File,
    pub name: String,
}

impl Tap {
    /// Creates (or attaches to) TAP interface `name` (at most 15 bytes).
    pub fn open(name: &str) -> std::io::Result<Tap> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("TAP name {name:?} must be 1-15 bytes"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/net/tun")?;
        // SAFETY: ifreq is plain old data for which all-zero is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
            *d = *s as libc::c_char;
        }
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which `req`
        // is, valid for the call; the fd is the tun device just opened.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Tap {
            file,
            name: name.to_string(),
        })
    }

    /// Hands one Ethernet frame to the host stack.
    pub fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        self.file.write_all(frame)
    }
}
