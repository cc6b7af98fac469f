//! Loading and attaching the XDP program (built by build.rs) with aya,
//! filling its steering maps, and detaching it again. The program is either
//! the steering alone (bpf/xdp_steer.c: MPLS and edge IP to the AF_XDP
//! sockets, the rest to the kernel) or the transit fast path in front of
//! the same steering (bpf/xdp_fast.c, whose own maps
//! [`Steering::take_fast_path`] hands to `super::fast_maps`).
//!
//! Native (driver) mode is tried first, generic (SKB) mode is the fallback
//! with a warning. A port that already has an XDP program is refused unless
//! `force` is set. aya attaches through BPF links, so the program is also
//! removed when the process dies. [`test_run`] runs a loaded XDP program
//! on a frame in the kernel (BPF_PROG_TEST_RUN), for tests and for timing.

use anyhow::{bail, Context, Result};
use aya::maps::{HashMap as BpfHashMap, XskMap};
use aya::programs::xdp::XdpLinkId;
use aya::programs::{ProgramError, TestRun, TestRunOptions, TestRunResult, Xdp, XdpMode};
use aya::{include_bytes_aligned, Ebpf};
use std::net::IpAddr;

static XDP_OBJ: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdp_steer.o"));

/// Keep in step with MAX_QUEUES in xdp_steer.c.
pub const MAX_QUEUES: u32 = 64;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct PortCfg {
    slot: u32,
    edge: u32,
}

// SAFETY: PortCfg is #[repr(C)], two u32s with no padding, valid for any
// bit pattern: exactly what aya::Pod requires for map values.
unsafe impl aya::Pod for PortCfg {}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct In6 {
    a: [u8; 16],
}

// SAFETY: a #[repr(C)] byte array, no padding, any bit pattern is valid.
unsafe impl aya::Pod for In6 {}

/// Which program [`Steering::load`] attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// bpf/xdp_steer.c: every frame to steer().
    Steer,
    /// bpf/xdp_fast.c: MPLS transit switched in XDP, the rest to steer().
    Fast,
}

impl Program {
    fn object(self) -> &'static [u8] {
        match self {
            Program::Steer => XDP_OBJ,
            Program::Fast => super::fast_maps::object(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Program::Steer => "xdp_steer",
            Program::Fast => super::fast_maps::FAST_PROGRAM,
        }
    }
}

/// The loaded program and where it is attached.
pub struct Steering {
    bpf: Ebpf,
    program: Program,
    links: Vec<(String, XdpLinkId)>,
    /// Per port: true when attached in generic (SKB) mode.
    pub generic: Vec<bool>,
}

impl std::fmt::Debug for Steering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("ports", &self.links.len())
            .finish()
    }
}

/// True when `iface` already has an XDP program attached.
pub fn has_xdp(iface: &str) -> bool {
    let out = std::process::Command::new("ip")
        .args(["-d", "link", "show", "dev", iface])
        .output();
    matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("prog/xdp"))
}

impl Steering {
    /// Loads `program` and attaches it to every port. `ports[i] = (ifname,
    /// edge)`, slot = i.
    pub fn load(
        ports: &[(String, bool)],
        force: bool,
        skb_only: bool,
        program: Program,
    ) -> Result<Steering> {
        for (name, _) in ports {
            if has_xdp(name) {
                if !force {
                    bail!("{name} already has an XDP program attached; stop whatever owns it, or pass --force to replace it");
                }
                // Programs attached through netlink (ip, libxdp) can be
                // removed; one held by another process's BPF link cannot.
                tracing::warn!(port = %name, "--force: removing the XDP program attached to this port");
                for kind in ["xdp", "xdpgeneric", "xdpdrv"] {
                    let _ = std::process::Command::new("ip")
                        .args(["link", "set", "dev", name, kind, "off"])
                        .status();
                }
            }
        }
        let mut bpf = Ebpf::load(program.object()).context("loading the XDP object")?;
        {
            let prog: &mut Xdp = bpf
                .program_mut(program.name())
                .with_context(|| format!("{} missing from the object", program.name()))?
                .try_into()?;
            prog.load().context("the kernel refused the XDP program")?;
        }
        {
            let mut cfg: BpfHashMap<_, u32, PortCfg> =
                BpfHashMap::try_from(bpf.map_mut("port_cfg").context("port_cfg map")?)?;
            for (slot, (name, edge)) in ports.iter().enumerate() {
                let ifindex = ifindex(name)?;
                cfg.insert(
                    ifindex,
                    PortCfg {
                        slot: slot as u32,
                        edge: *edge as u32,
                    },
                    0,
                )?;
            }
        }
        let mut s = Steering {
            bpf,
            program,
            links: Vec::new(),
            generic: Vec::new(),
        };
        s.set_local_addresses(&local_addresses())?;
        for (name, _) in ports {
            let prog: &mut Xdp = s
                .bpf
                .program_mut(program.name())
                .expect("loaded above")
                .try_into()?;
            let modes: &[XdpMode] = if skb_only {
                &[XdpMode::Skb]
            } else {
                &[XdpMode::Driver, XdpMode::Skb]
            };
            let mut attached = None;
            let mut errors = Vec::new();
            for m in modes {
                match prog.attach(name, *m) {
                    Ok(id) => {
                        attached = Some((id, *m));
                        break;
                    }
                    Err(e) => errors.push(e),
                }
            }
            let Some((id, mode)) = attached else {
                s.detach();
                return Err(attach_error(name, errors));
            };
            if mode == XdpMode::Skb && !skb_only {
                tracing::warn!(port = %name, "native XDP refused; using generic (SKB) mode, which is slower");
            }
            s.generic.push(mode == XdpMode::Skb);
            s.links.push((name.clone(), id));
        }
        Ok(s)
    }

    /// Points (port slot, queue) at an AF_XDP socket.
    pub fn set_socket(&mut self, slot: usize, queue: u32, fd: i32) -> Result<()> {
        if queue >= MAX_QUEUES {
            bail!("queue {queue} is beyond the {MAX_QUEUES} the XDP program supports");
        }
        let mut xsks = XskMap::try_from(self.bpf.map_mut("xsks_map").context("xsks_map")?)?;
        xsks.set(slot as u32 * MAX_QUEUES + queue, fd, 0)?;
        Ok(())
    }

    /// The box's own addresses: IP packets to them go to the kernel.
    pub fn set_local_addresses(&mut self, addrs: &[IpAddr]) -> Result<()> {
        for a in addrs {
            match a {
                IpAddr::V4(v4) => {
                    let mut m: BpfHashMap<_, u32, u8> =
                        BpfHashMap::try_from(self.bpf.map_mut("local_v4").context("local_v4")?)?;
                    m.insert(u32::from_ne_bytes(v4.octets()), 1, 0)?;
                }
                IpAddr::V6(v6) => {
                    let mut m: BpfHashMap<_, In6, u8> =
                        BpfHashMap::try_from(self.bpf.map_mut("local_v6").context("local_v6")?)?;
                    m.insert(In6 { a: v6.octets() }, 1, 0)?;
                }
            }
        }
        Ok(())
    }

    /// The attached program.
    pub fn program(&self) -> Program {
        self.program
    }

    /// With [`Program::Fast`]: the fast path's maps (taken once; the
    /// steering maps stay here).
    pub fn take_fast_path(&mut self) -> Result<super::fast_maps::FastPath> {
        if self.program != Program::Fast {
            bail!("the steering program has no fast path");
        }
        super::fast_maps::FastPath::take(&mut self.bpf)
    }

    /// Detaches from every port (also done on drop).
    pub fn detach(&mut self) {
        let links = std::mem::take(&mut self.links);
        if let Some(p) = self.bpf.program_mut(self.program.name()) {
            if let Ok(prog) = <&mut Xdp>::try_from(p) {
                for (name, id) in links {
                    if let Err(e) = prog.detach(id) {
                        tracing::warn!(port = %name, error = %e, "detaching XDP failed");
                    }
                }
            }
        }
    }
}

impl Drop for Steering {
    fn drop(&mut self) {
        self.detach();
    }
}

/// Why the program could not be attached to `name` (`errors`: one per
/// mode tried), as a sentence.
fn attach_error(name: &str, errors: Vec<ProgramError>) -> anyhow::Error {
    // The kernel keeps one XDP program per interface: EBUSY (a BPF link
    // holds the driver-mode hook) or EEXIST (native and generic cannot be
    // active together) mean one is held by a running process, which
    // --force cannot remove: another orbitmesh-dp, or another port of this
    // one on the same interface.
    let held = errors.iter().any(|e| {
        matches!(e, ProgramError::SyscallError(s)
            if matches!(s.io_error.raw_os_error(), Some(libc::EBUSY | libc::EEXIST)))
    });
    if held {
        return anyhow::anyhow!(
            "{name} already has an XDP program attached that cannot be replaced (held by a running process, perhaps another orbitmesh-dp); stop that process first"
        );
    }
    match errors.into_iter().last() {
        Some(e) => anyhow::anyhow!("cannot attach XDP to {name}: {:#}", anyhow::Error::from(e)),
        None => anyhow::anyhow!("cannot attach XDP to {name}: no attach mode to try"),
    }
}

/// The interface index of `name`.
pub fn ifindex(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name).context("interface name with a NUL byte")?;
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        bail!("no interface named {name:?} here");
    }
    Ok(i)
}

/// Every IPv4/IPv6 address configured on this host (getifaddrs(3)).
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below with freeifaddrs;
    // on failure it returns -1 and we return nothing.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut p = head;
    while !p.is_null() {
        // SAFETY: `p` is a node of the list getifaddrs returned, valid until
        // freeifaddrs; ifa_addr is null or points at a sockaddr whose family
        // tells its real type.
        unsafe {
            let a = (*p).ifa_addr;
            if !a.is_null() {
                match (*a).sa_family as i32 {
                    libc::AF_INET => {
                        let s = &*(a as *const libc::sockaddr_in);
                        out.push(IpAddr::from(u32::from_be(s.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let s = &*(a as *const libc::sockaddr_in6);
                        out.push(IpAddr::from(s.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            p = (*p).ifa_next;
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// Raises RLIMIT_MEMLOCK (UMEM and BPF maps are locked memory): to
/// unlimited when allowed, else to the hard limit, with a warning.
pub fn raise_memlock() {
    let r = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `r` is a valid rlimit for the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &r) } == 0 {
        return;
    }
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `cur` is valid and writable for both calls.
    unsafe {
        libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut cur);
        cur.rlim_cur = cur.rlim_max;
        libc::setrlimit(libc::RLIMIT_MEMLOCK, &cur);
    }
    tracing::warn!(
        limit_kib = cur.rlim_max / 1024,
        "could not raise RLIMIT_MEMLOCK to unlimited; continuing"
    );
}

/// Runs the loaded XDP program `prog` `repeat` times on `frame` in one
/// BPF_PROG_TEST_RUN (256 bytes of XDP headroom; the frame is not reset
/// between runs); the frame as it leaves is written to `out`.
pub fn test_run(prog: &Xdp, frame: &[u8], out: &mut [u8], repeat: u32) -> Result<TestRunResult> {
    prog.test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(out),
        repeat,
        ..TestRunOptions::default()
    })
    .context("BPF_PROG_TEST_RUN")
}

/// [`test_run`] for the program's cost: its action and the kernel's mean
/// time per run (the syscall and copies not included).
pub fn time_run(prog: &Xdp, frame: &[u8], repeat: u32) -> Result<(u32, std::time::Duration)> {
    let mut out = vec![0u8; frame.len() + 256];
    let r = test_run(prog, frame, &mut out, repeat)?;
    Ok((r.return_value, r.duration))
}
