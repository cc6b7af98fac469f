//! The dataplane's configuration: a TOML file, with command-line flags that
//! override it. With only `--port IFACE --port IFACE --fib FILE` it runs.
//!
//! ```toml
//! name = "sat-17"                       # node name (logs, stats)
//! fib = "sat-17.fib.toml"               # initial FIB (optional: empty FIB)
//! control_socket = "/run/orbitmesh/sat-17.sock"
//! state_dir = "/var/lib/orbitmesh/sat-17"  # kept schedule (optional)
//! # revoked_keys = ["<64 hex digits>"]  # refused even if trusted
//! # remote_listen = "10.99.0.17:7470"  # remote control channel (TCP; off
//!                                       # by default; needs trusted_keys)
//! # remote_reads = true                 # serve version/stats/show_* on it
//! # metrics_listen = "127.0.0.1:9469"   # Prometheus endpoint, GET /metrics
//!                                       # (off by default; see `metrics`)
//! batch = 64                            # frames per batch (1..64)
//! poll = "sleep-when-idle"              # or "busy"
//! # busy_poll_budget = 64               # with poll = "busy": kernel busy
//!                                       # polling (SO_PREFER_BUSY_POLL), NAPI budget
//! coalesce_us = 0                       # with sleep-when-idle: after a wake-up, let
//!                                       # frames gather this many µs (0: off)
//! cores = [1]                           # worker cores; worker q serves queue q
//! punt = "drop"                         # punted frames (router alert, OAM): "drop",
//!                                       # or "host": to TAP interface punt_iface
//! punt_iface = "om-punt"                # (default om-<name>, cut to 15 bytes)
//! # fast_path = "xdp"                   # MPLS transit switched in XDP, the rest
//!                                       # by the AF_XDP workers; "off": all by
//!                                       # the workers (default: xdp where native
//!                                       # XDP attaches)
//!
//! [[ports]]
//! iface = "veth-isl0"                   # the interface
//! name = "isl0"                         # the FIB's name for it (default: iface)
//! queues = 1                            # queues served (one worker each)
//! mode = "auto"                         # auto | zero-copy | copy
//! edge = false                          # true: IPv4/IPv6 steered too (label edge)
//!
//! # Optional: only orders signed by these keys change forwarding.
//! [[trusted_keys]]
//! name = "ground-1"
//! key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
//! not_after = "2027-06-30T00:00:00Z"    # and/or not_before: key rotation
//! ```
//!
//! Relative paths in a file (`fib`, `control_socket`, `state_dir`) are taken relative
//! to the directory of the configuration file, wherever the program is
//! started from ([`Config::read`]); paths given as flags, relative to the
//! current directory, as usual.

use crate::sys::xsk::XdpMode;
use crate::worker::PollMode;
use orbitmesh_core::file::read_limited;
use orbitmesh_core::protocol::endpoint;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A key the node takes signed orders from (`[[trusted_keys]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConf {
    /// A name for logs.
    pub name: String,
    /// The Ed25519 public key, 64 hex digits (`orbitmesh-ctl keygen`).
    pub key: String,
    /// Valid from / until (RFC 3339 UTC); open-ended when absent. Keys are
    /// rotated by overlapping periods.
    #[serde(default)]
    pub not_before: Option<String>,
    #[serde(default)]
    pub not_after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConf {
    pub iface: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "one")]
    pub queues: u32,
    #[serde(default = "auto")]
    pub mode: XdpMode,
    #[serde(default)]
    pub edge: bool,
}

fn one() -> u32 {
    1
}
fn auto() -> XdpMode {
    XdpMode::Auto
}

impl PortConf {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.iface)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PuntPolicy {
    Drop,
    Host,
}

/// Whether MPLS transit is switched in XDP (`bpf/xdp_fast.c`) or every
/// frame goes to the AF_XDP workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FastPathMode {
    Xdp,
    Off,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default)]
    pub fib: Option<PathBuf>,
    #[serde(default)]
    pub control_socket: Option<PathBuf>,
    /// Where the node keeps what must outlive a restart (its schedule);
    /// without one a schedule is held in memory only.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// With keys listed, only orders (schedules) signed by one of them
    /// change forwarding; see `orbitmesh_core::sign`.
    #[serde(default)]
    pub trusted_keys: Vec<KeyConf>,
    /// Public keys refused even if listed (revocation).
    #[serde(default)]
    pub revoked_keys: Vec<String>,
    /// The remote control channel's address (`ctl::remote`): signed
    /// orders over TCP. Off when absent; refused without trusted keys.
    #[serde(default)]
    pub remote_listen: Option<String>,
    /// Whether the remote channel serves read-only requests (version,
    /// stats, show_fib, show_schedule) unsigned; false: orders only.
    #[serde(default = "yes")]
    pub remote_reads: bool,
    /// The metrics endpoint's address (`crate::metrics`): Prometheus text
    /// at `GET /metrics`. Off when absent.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    #[serde(default = "default_batch")]
    pub batch: usize,
    #[serde(default = "default_poll")]
    pub poll: PollMode,
    #[serde(default)]
    pub busy_poll_budget: Option<u32>,
    /// Receive coalescing of a sleeping worker, µs (default
    /// [`crate::worker::DEFAULT_COALESCE_US`]).
    #[serde(default)]
    pub coalesce_us: Option<u32>,
    #[serde(default)]
    pub cores: Vec<usize>,
    #[serde(default = "default_punt")]
    pub punt: PuntPolicy,
    #[serde(default)]
    pub punt_iface: Option<String>,
    /// The XDP transit fast path; None: on where native XDP attaches.
    #[serde(default)]
    pub fast_path: Option<FastPathMode>,
    #[serde(default)]
    pub ports: Vec<PortConf>,
}

fn default_name() -> String {
    endpoint::DEFAULT_NAME.into()
}
fn yes() -> bool {
    true
}
fn default_batch() -> usize {
    64
}
fn default_poll() -> PollMode {
    PollMode::SleepWhenIdle
}
fn default_punt() -> PuntPolicy {
    PuntPolicy::Drop
}

impl Default for Config {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

/// Longest receive coalescing accepted (1 ms).
pub const MAX_COALESCE_US: u32 = 1_000;

/// Largest busy-poll budget the kernel takes (SO_BUSY_POLL_BUDGET).
pub const MAX_BUSY_POLL_BUDGET: u32 = u16::MAX as u32;

/// Largest configuration file read (1 MiB; real ones are a few hundred
/// bytes): `/dev/zero` or a wrong, huge file is refused, not read forever.
pub const MAX_CONFIG_BYTES: usize = endpoint::MAX_CONFIG_BYTES;

/// Why a configuration cannot be used. Each kind carries what the
/// operator wrote, and its message (Display) says what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read (missing, too large, not a file).
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot read {}: not UTF-8 text ({error})", path.display())]
    NotText {
        path: PathBuf,
        error: std::string::FromUtf8Error,
    },
    /// Not TOML, or not the configuration's fields.
    #[error("{}{error}", in_file(file))]
    Syntax {
        /// The file it was read from (none: text given directly).
        file: Option<PathBuf>,
        error: toml::de::Error,
    },
    #[error("node name {name:?} is not a plain name: it must be non-empty, not . or .., and without / (it names the socket /run/orbitmesh/NAME.sock)")]
    NodeName { name: String },
    #[error("trusted key {name:?}: {reason}")]
    TrustedKey { name: String, reason: String },
    #[error("revoked key: {reason}")]
    RevokedKey { reason: String },
    #[error("remote_listen {addr:?}: expected ADDR:PORT, e.g. 10.99.0.17:7470 or [fd00::11]:7470")]
    RemoteAddress { addr: String },
    #[error("metrics_listen {addr:?}: expected ADDR:PORT, e.g. 127.0.0.1:9469 or [::1]:9469")]
    MetricsAddress { addr: String },
    #[error("remote_listen {addr:?}: the remote control channel takes only signed orders; list the ground controller's keys in [[trusted_keys]] first (orbitmesh-ctl keygen)")]
    RemoteWithoutKeys { addr: String },
    #[error("the control socket path {} is {bytes} bytes; a unix socket path holds at most {MAX_SOCKET_PATH} (choose a shorter --socket or --name)", path.display())]
    SocketPath { path: PathBuf, bytes: usize },
    #[error("no ports: give at least one --port IFACE (or [[ports]] in the config)")]
    NoPorts,
    #[error("{count} ports; at most {}", orbitmesh_core::fib::MAX_PORTS)]
    TooManyPorts { count: usize },
    #[error(
        "interface {iface:?} has an empty port name; give NAME=IFACE with a NAME, or no \"=\""
    )]
    EmptyPortName { iface: String },
    #[error("port name {name:?} is used twice")]
    PortNameTwice { name: String },
    #[error("interface {iface:?} is given twice (as ports {first:?} and {second:?}); an interface can serve only one port")]
    InterfaceTwice {
        iface: String,
        first: String,
        second: String,
    },
    #[error("port {port:?}: queues must be 1..={}", crate::sys::xdp::MAX_QUEUES)]
    Queues { port: String },
    #[error("every port must serve the same number of queues (one worker per queue index)")]
    UnequalQueues,
    #[error("batch {batch} is outside 1..={}", orbitmesh_core::pipeline::MAX_BATCH)]
    Batch { batch: usize },
    #[error("busy_poll_budget needs poll = \"busy\"")]
    BudgetWithoutBusyPoll,
    #[error(
        "busy_poll_budget {budget} is outside 1..={MAX_BUSY_POLL_BUDGET} (the kernel's limit)"
    )]
    BusyPollBudget { budget: u32 },
    #[error("coalesce_us needs poll = \"sleep-when-idle\"")]
    CoalesceWithoutSleep,
    #[error(
        "coalesce_us {us} is above {MAX_COALESCE_US} (it delays every frame that wakes a worker)"
    )]
    Coalesce { us: u32 },
    #[error("punt_iface: {name:?} is not an interface name (1-15 bytes, not . or .., without / : or spaces)")]
    PuntIface { name: String },
    #[error(
        "core {core} is not available to this process (usable cores: {})",
        list(usable)
    )]
    Core { core: usize, usable: Vec<usize> },
}

/// "FILE: " before a syntax error read from a file.
fn in_file(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map_or(String::new(), |f| format!("{}: ", f.display()))
}

/// An interface name the kernel takes (dev_valid_name): 1-15 bytes, not
/// . or .., without / : or white space.
fn is_iface_name(name: &str) -> bool {
    !(name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace()))
}

/// Longest unix socket path, in bytes (sun_path holds 108 with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// The control socket's path must fit a unix socket address; checked
/// with the configuration, before any interface is touched.
fn check_socket_path(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes().len();
    if bytes > MAX_SOCKET_PATH {
        return Err(ConfigError::SocketPath {
            path: path.to_path_buf(),
            bytes,
        });
    }
    Ok(())
}

/// A node name becomes part of the default socket path
/// (/run/orbitmesh/NAME.sock) and of the punt interface's: it must be
/// one plain path component.
fn check_node_name(name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(ConfigError::NodeName { name: name.into() });
    }
    Ok(())
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|error| ConfigError::Syntax { file: None, error })
    }

    /// Reads and parses a configuration file; its relative paths are
    /// resolved against the file's directory. Errors name the file.
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let bytes = read_limited(path, MAX_CONFIG_BYTES).map_err(|error| ConfigError::Read {
            path: path.into(),
            error,
        })?;
        let text = String::from_utf8(bytes).map_err(|error| ConfigError::NotText {
            path: path.into(),
            error,
        })?;
        let mut c = toml::from_str::<Config>(&text).map_err(|error| ConfigError::Syntax {
            file: Some(path.into()),
            error,
        })?;
        c.resolve_paths(path.parent().unwrap_or(Path::new("")));
        Ok(c)
    }

    /// Makes the relative paths of a configuration file found in `dir`
    /// relative to the current directory: `fib`, `control_socket`, `state_dir`.
    pub fn resolve_paths(&mut self, dir: &Path) {
        for p in [&mut self.fib, &mut self.control_socket, &mut self.state_dir]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }

    /// The workers' receive coalescing (used only by sleeping workers):
    /// the configured value, else the default.
    pub fn coalesce(&self) -> std::time::Duration {
        let us = self
            .coalesce_us
            .unwrap_or(crate::worker::DEFAULT_COALESCE_US);
        std::time::Duration::from_micros(us.into())
    }

    /// The socket path: configured, or /run/orbitmesh/NAME.sock.
    pub fn socket_path(&self) -> PathBuf {
        self.control_socket
            .clone()
            .unwrap_or_else(|| endpoint::default_socket(&self.name))
    }

    /// The TAP interface punted frames go to: `om-NAME` cut to the 15
    /// bytes an interface name holds, at a character boundary.
    pub fn punt_iface(&self) -> String {
        self.punt_iface.clone().unwrap_or_else(|| {
            let mut n = format!("om-{}", self.name);
            let mut end = n.len().min(15);
            while !n.is_char_boundary(end) {
                end -= 1;
            }
            n.truncate(end);
            n
        })
    }

    /// Checks what serde cannot: names unique, sizes in range.
    /// The keys orders must be signed with, read from the configuration;
    /// a key that does not read is named.
    pub fn trust(&self) -> Result<orbitmesh_core::sign::Trust, ConfigError> {
        use orbitmesh_core::sign::{PublicKey, TrustedKey};
        use orbitmesh_core::time::parse_utc;
        let mut keys = Vec::new();
        for k in &self.trusted_keys {
            let bad = |reason: String| ConfigError::TrustedKey {
                name: k.name.clone(),
                reason,
            };
            let at = |t: &Option<String>| t.as_deref().map(parse_utc).transpose().map_err(bad);
            keys.push(TrustedKey {
                name: k.name.clone(),
                key: k.key.parse::<PublicKey>().map_err(bad)?,
                not_before_ns: at(&k.not_before)?,
                not_after_ns: at(&k.not_after)?,
            });
        }
        let revoked = self
            .revoked_keys
            .iter()
            .map(|k| {
                k.parse::<PublicKey>()
                    .map_err(|reason| ConfigError::RevokedKey { reason })
            })
            .collect::<Result<_, _>>()?;
        Ok(orbitmesh_core::sign::Trust { keys, revoked })
    }

    /// The remote channel's address, if enabled; refused unless it is
    /// an IP address and port, and keys are trusted (it takes only signed
    /// orders).
    pub fn remote_addr(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        let Some(a) = &self.remote_listen else {
            return Ok(None);
        };
        let addr = a
            .parse()
            .map_err(|_| ConfigError::RemoteAddress { addr: a.clone() })?;
        if !self.trust()?.required() {
            return Err(ConfigError::RemoteWithoutKeys { addr: a.clone() });
        }
        Ok(Some(addr))
    }

    /// The metrics endpoint's address, if enabled: an IP address and port.
    pub fn metrics_addr(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        let Some(a) = &self.metrics_listen else {
            return Ok(None);
        };
        a.parse()
            .map(Some)
            .map_err(|_| ConfigError::MetricsAddress { addr: a.clone() })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_node_name(&self.name)?;
        self.trust()?;
        self.remote_addr()?;
        self.metrics_addr()?;
        check_socket_path(&self.socket_path())?;
        self.check_ports()?;
        self.check_polling()?;
        if self.punt == PuntPolicy::Host && !is_iface_name(&self.punt_iface()) {
            return Err(ConfigError::PuntIface {
                name: self.punt_iface(),
            });
        }
        Ok(())
    }

    /// At least one port, at most `MAX_PORTS`; names and interfaces
    /// unique; the same number of queues on each.
    fn check_ports(&self) -> Result<(), ConfigError> {
        if self.ports.is_empty() {
            return Err(ConfigError::NoPorts);
        }
        if self.ports.len() > orbitmesh_core::fib::MAX_PORTS {
            return Err(ConfigError::TooManyPorts {
                count: self.ports.len(),
            });
        }
        let mut names = std::collections::HashSet::new();
        let mut ifaces = std::collections::HashMap::new();
        for p in &self.ports {
            if p.name().is_empty() {
                return Err(ConfigError::EmptyPortName {
                    iface: p.iface.clone(),
                });
            }
            if !names.insert(p.name()) {
                return Err(ConfigError::PortNameTwice {
                    name: p.name().into(),
                });
            }
            if let Some(first) = ifaces.insert(p.iface.as_str(), p.name()) {
                return Err(ConfigError::InterfaceTwice {
                    iface: p.iface.clone(),
                    first: first.into(),
                    second: p.name().into(),
                });
            }
            if p.queues == 0 || p.queues > crate::sys::xdp::MAX_QUEUES {
                return Err(ConfigError::Queues {
                    port: p.name().into(),
                });
            }
        }
        let q = self.ports[0].queues;
        if self.ports.iter().any(|p| p.queues != q) {
            return Err(ConfigError::UnequalQueues);
        }
        Ok(())
    }

    /// The batch size, and the busy-poll budget and receive coalescing
    /// each with the poll mode it belongs to, in range.
    fn check_polling(&self) -> Result<(), ConfigError> {
        if !(1..=orbitmesh_core::pipeline::MAX_BATCH).contains(&self.batch) {
            return Err(ConfigError::Batch { batch: self.batch });
        }
        if self.busy_poll_budget.is_some() && self.poll != PollMode::Busy {
            return Err(ConfigError::BudgetWithoutBusyPoll);
        }
        if let Some(budget) = self
            .busy_poll_budget
            .filter(|b| !(1..=MAX_BUSY_POLL_BUDGET).contains(b))
        {
            return Err(ConfigError::BusyPollBudget { budget });
        }
        if let Some(us) = self.coalesce_us {
            if self.poll != PollMode::SleepWhenIdle && us > 0 {
                return Err(ConfigError::CoalesceWithoutSleep);
            }
            if us > MAX_COALESCE_US {
                return Err(ConfigError::Coalesce { us });
            }
        }
        Ok(())
    }

    /// Checks the worker cores against `usable`, the cores this process may
    /// run on (see [`usable_cores`]): a worker that cannot be pinned to its
    /// core would run unpinned, which is not what was asked for.
    pub fn check_cores(&self, usable: &[usize]) -> Result<(), ConfigError> {
        match self.cores.iter().find(|c| !usable.contains(c)) {
            Some(&core) => Err(ConfigError::Core {
                core,
                usable: usable.to_vec(),
            }),
            None => Ok(()),
        }
    }

    pub fn port_names(&self) -> Vec<String> {
        self.ports.iter().map(|p| p.name().to_string()).collect()
    }
}

/// The cores this process may run on (its CPU affinity mask), ascending.
pub fn usable_cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// `[0, 1, 2, 5]` as "0-2, 5".
fn list(cores: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cores.len() {
        let mut j = i;
        while j + 1 < cores.len() && cores[j + 1] == cores[j] + 1 {
            j += 1;
        }
        out.push(if j > i {
            format!("{}-{}", cores[i], cores[j])
        } else {
            cores[i].to_string()
        });
        i = j + 1;
    }
    if out.is_empty() {
        "none".into()
    } else {
        out.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example_parses_and_defaults_are_sane() {
        let c = Config::parse(&orbitmesh_core::file::doc_toml_example(include_str!(
            "config.rs"
        )))
        .unwrap();
        assert_eq!(c.name, "sat-17");
        assert_eq!(c.ports[0].name(), "isl0");
        c.validate().unwrap();
        let d = Config::default();
        assert_eq!((d.batch, d.poll), (64, PollMode::SleepWhenIdle));
        let e = d.validate().unwrap_err();
        assert!(matches!(e, ConfigError::NoPorts), "{e}");
        assert!(e.to_string().contains("--port"));
        assert!(Config::parse("batch = 65\n[[ports]]\niface = \"a\"")
            .unwrap()
            .validate()
            .is_err());
        let e = Config::parse("bogus = 1").unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { file: None, .. }));
        assert!(e.to_string().contains("unknown field"));
    }

    #[test]
    fn relative_paths_in_a_file_are_relative_to_the_file() {
        let dir = std::env::temp_dir().join(format!("om-conf-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        let file = dir.join("etc/sat.toml");
        std::fs::write(
            &file,
            "fib = \"sat.fib.toml\"\ncontrol_socket = \"run/sat.sock\"\n",
        )
        .unwrap();
        let c = Config::read(&file).unwrap();
        assert_eq!(c.fib, Some(dir.join("etc/sat.fib.toml")));
        assert_eq!(c.control_socket, Some(dir.join("etc/run/sat.sock")));
        assert_eq!(c.socket_path(), dir.join("etc/run/sat.sock"));
        // Absolute paths stay; a file in the current directory keeps its
        // paths as written.
        std::fs::write(&file, "fib = \"/srv/a.fib.toml\"\n").unwrap();
        assert_eq!(
            Config::read(&file).unwrap().fib,
            Some(PathBuf::from("/srv/a.fib.toml"))
        );
        let mut here = Config::parse("fib = \"a.toml\"").unwrap();
        here.resolve_paths(Path::new("sat.toml").parent().unwrap());
        assert_eq!(here.fib, Some(PathBuf::from("a.toml")));
        let e = Config::read(&dir.join("missing.toml")).unwrap_err();
        assert!(matches!(&e, ConfigError::Read { path, .. } if path.ends_with("missing.toml")));
        let e = e.to_string();
        assert!(
            e.starts_with("cannot read ") && e.contains("missing.toml"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_interface_cannot_serve_two_ports() {
        let two = |a: &str, b: &str| {
            Config::parse(&format!("[[ports]]\n{a}\n[[ports]]\n{b}"))
                .unwrap()
                .validate()
        };
        let e = two("iface = \"x\"\nname = \"a\"", "iface = \"x\"\nname = \"b\"").unwrap_err();
        assert!(matches!(&e, ConfigError::InterfaceTwice { iface, .. } if iface == "x"));
        assert_eq!(
            e.to_string(),
            "interface \"x\" is given twice (as ports \"a\" and \"b\"); an interface can serve only one port"
        );
        // --port X --edge X: the same, whatever the port kinds.
        let e = two(
            "iface = \"x\"\nname = \"a\"",
            "iface = \"x\"\nname = \"e\"\nedge = true",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("given twice"), "{e}");
        two("iface = \"x\"", "iface = \"y\"").unwrap();
    }

    #[test]
    fn worker_cores_must_be_usable() {
        let c = |t: &str| Config::parse(&format!("{t}\n[[ports]]\niface = \"a\"")).unwrap();
        c("cores = [0, 1]").check_cores(&[0, 1, 2, 5]).unwrap();
        c("").check_cores(&[]).unwrap();
        let e = c("cores = [1, 99]").check_cores(&[0, 1, 2, 5]).unwrap_err();
        assert!(matches!(e, ConfigError::Core { core: 99, .. }));
        assert_eq!(
            e.to_string(),
            "core 99 is not available to this process (usable cores: 0-2, 5)"
        );
        // This host: a core beyond any CPU set is refused.
        let usable = usable_cores();
        assert!(!usable.is_empty());
        assert!(c("cores = [100000]").check_cores(&usable).is_err());
    }

    #[test]
    fn receive_coalescing_is_for_sleeping_workers_and_bounded() {
        let port = "\n[[ports]]\niface = \"a\"";
        let c = |t: &str| Config::parse(&format!("{t}{port}")).unwrap();
        assert_eq!(
            c("").coalesce(),
            std::time::Duration::ZERO,
            "off by default"
        );
        let on = c("coalesce_us = 50");
        on.validate().unwrap();
        assert_eq!(on.coalesce(), std::time::Duration::from_micros(50));
        assert!(c("poll = \"busy\"\ncoalesce_us = 50")
            .validate()
            .unwrap_err()
            .to_string()
            .contains("needs poll = \"sleep-when-idle\""));
        c("poll = \"busy\"\ncoalesce_us = 0").validate().unwrap();
        assert!(c("coalesce_us = 5000")
            .validate()
            .unwrap_err()
            .to_string()
            .contains("above 1000"));
    }

    #[test]
    fn the_punt_interface_name_is_cut_at_a_character_boundary() {
        let c = |name: &str| Config {
            name: name.into(),
            ..Config::default()
        };
        // "om-a" + 2-byte characters: byte 15 falls inside one.
        assert_eq!(c("aéééééééé").punt_iface(), "om-aééééé");
        assert_eq!(c("sat-17").punt_iface(), "om-sat-17");
        assert_eq!(c("abcdefghijklmnop").punt_iface(), "om-abcdefghijkl");
    }

    #[test]
    fn node_and_port_names_must_be_plain() {
        let port = "\n[[ports]]\niface = \"a\"";
        let v = |t: &str| Config::parse(&format!("{t}{port}")).unwrap().validate();
        for bad in ["", ".", "..", "../../tmp/x", "a/b"] {
            let e = v(&format!("name = {bad:?}")).unwrap_err();
            assert!(matches!(e, ConfigError::NodeName { .. }), "{e}");
            let e = e.to_string();
            assert!(
                e.starts_with("node name ") && e.contains("plain name"),
                "{e}"
            );
        }
        v("name = \"sat-17\"").unwrap();
        // --port =IFACE: an empty port name.
        let e = Config::parse("[[ports]]\niface = \"a\"\nname = \"\"")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty port name"), "{e}");
    }

    #[test]
    fn busy_poll_budget_is_within_the_kernels_range() {
        let port = "\npoll = \"busy\"\n[[ports]]\niface = \"a\"";
        let v = |b: u32| {
            Config::parse(&format!("busy_poll_budget = {b}{port}"))
                .unwrap()
                .validate()
        };
        v(64).unwrap();
        v(65535).unwrap();
        for b in [0, 65536] {
            let e = v(b).unwrap_err();
            assert!(matches!(e, ConfigError::BusyPollBudget { budget } if budget == b));
            assert!(e.to_string().contains("outside 1..=65535"));
        }
    }

    #[test]
    fn an_endless_or_huge_config_file_is_refused_not_read_forever() {
        let e = Config::read(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("cannot read /dev/zero: the file is larger than {MAX_CONFIG_BYTES} bytes")
        );
        let e = Config::read(Path::new("/")).unwrap_err().to_string();
        assert!(e.starts_with("cannot read /: "), "{e}");
    }

    #[test]
    fn the_punt_interface_name_is_checked_before_anything_is_attached() {
        let port = "\n[[ports]]\niface = \"a\"";
        let v = |t: &str| {
            Config::parse(&format!("punt = \"host\"\n{t}{port}"))
                .unwrap()
                .validate()
        };
        for bad in ["", "abcdefghijklmnop", "a/b", "a b", "a:b", ".."] {
            let e = v(&format!("punt_iface = {bad:?}")).unwrap_err();
            assert!(matches!(&e, ConfigError::PuntIface { name } if name == bad));
            let e = e.to_string();
            assert!(
                e.starts_with("punt_iface: ") && e.contains("is not an interface name"),
                "{e}"
            );
        }
        v("punt_iface = \"om-punt\"").unwrap();
        // The default, from the node name, is always valid.
        v("name = \"a-very-long-node-name\"").unwrap();
    }

    #[test]
    fn the_metrics_endpoint_is_off_by_default_and_needs_an_address() {
        let port = "\n[[ports]]\niface = \"a\"";
        let v = |t: &str| Config::parse(&format!("{t}{port}")).unwrap();
        assert_eq!(v("").metrics_addr().unwrap(), None);
        let c = v("metrics_listen = \"[::1]:9469\"");
        c.validate().unwrap();
        assert_eq!(
            c.metrics_addr().unwrap(),
            Some("[::1]:9469".parse().unwrap())
        );
        for bad in ["localhost:9469", "9469", "127.0.0.1", "127.0.0.1:99999"] {
            let e = v(&format!("metrics_listen = {bad:?}"))
                .validate()
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "metrics_listen {bad:?}: expected ADDR:PORT, e.g. 127.0.0.1:9469 or [::1]:9469"
                )
            );
        }
    }

    #[test]
    fn the_remote_channel_needs_an_address_and_trusted_keys() {
        let port = "\n[[ports]]\niface = \"a\"";
        let key = "\n[[trusted_keys]]\nname = \"g\"\nkey = \"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\"";
        let v = |t: &str| Config::parse(&format!("{t}{port}")).unwrap();
        assert_eq!(v("").remote_addr().unwrap(), None);
        let e = v("remote_listen = \"0.0.0.0:7470\"")
            .validate()
            .unwrap_err();
        assert!(matches!(e, ConfigError::RemoteWithoutKeys { .. }), "{e}");
        let e = e.to_string();
        assert!(e.contains("[[trusted_keys]]"), "{e}");
        let e = v(&format!("remote_listen = \"ground:7470\"{key}"))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected ADDR:PORT"), "{e}");
        let c = v(&format!(
            "remote_listen = \"[::]:7470\"\nremote_reads = false{key}"
        ));
        c.validate().unwrap();
        assert_eq!(c.remote_addr().unwrap(), Some("[::]:7470".parse().unwrap()));
        assert!(!c.remote_reads);
        assert!(v("").remote_reads, "reads are open by default");
    }

    #[test]
    fn a_control_socket_path_too_long_for_a_unix_socket_is_refused() {
        let port = "\n[[ports]]\niface = \"a\"";
        let v = |t: &str| Config::parse(&format!("{t}{port}")).unwrap().validate();
        let long = format!("/tmp/{}", "x".repeat(MAX_SOCKET_PATH - 5));
        v(&format!("control_socket = {long:?}")).unwrap();
        let e = v(&format!("control_socket = \"{long}y\"")).unwrap_err();
        assert!(
            matches!(e, ConfigError::SocketPath { bytes: 108, .. }),
            "{e}"
        );
        let e = e.to_string();
        assert!(
            e.starts_with("the control socket path /tmp/xxx")
                && e.contains("is 108 bytes; a unix socket path holds at most 107"),
            "{e}"
        );
        // The default path grows with the node name.
        let e = v(&format!("name = \"{}\"", "n".repeat(100)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a unix socket path holds at most 107"), "{e}");
    }
}
