//! Where a dataplane's control socket is: given in its configuration file
//! (`control_socket`, relative to the file's directory), else
//! `/run/orbitmesh/NAME.sock`. The dataplane and the tools that reach it
//! (`orbitmesh-ctl --config`) find it by these same rules. A dataplane may
//! also listen on TCP (`remote_listen`, signed orders only): an
//! [`Endpoint`] is either.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The directory of the default sockets.
pub const SOCKET_DIR: &str = "/run/orbitmesh";
/// A dataplane's name when its configuration gives none.
pub const DEFAULT_NAME: &str = "orbitmesh";
/// Largest configuration file read (real ones are a few hundred bytes).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// The default socket of a dataplane named `name`.
pub fn default_socket(name: &str) -> PathBuf {
    PathBuf::from(format!("{SOCKET_DIR}/{name}.sock"))
}

/// Where a client reaches a dataplane's control server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The local unix socket.
    Socket(PathBuf),
    /// The remote channel: HOST:PORT (TCP).
    Tcp(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Socket(p) => write!(f, "{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// Whether `addr` reads as HOST:PORT (a name or address, then a port
/// number: `sat-17.mgmt:7470`, `10.99.0.17:7470`, `[fd00::11]:7470`);
/// it is resolved only when connecting.
pub fn is_host_port(addr: &str) -> bool {
    addr.rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
}

/// The two settings of a dataplane configuration that locate its socket;
/// the dataplane checks the rest of the file when it starts.
#[derive(Debug, Deserialize)]
struct Locator {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    control_socket: Option<PathBuf>,
}

/// The control socket of the dataplane configured by the file at `path`.
pub fn socket_of_config(path: &Path) -> Result<PathBuf, String> {
    let bytes = crate::file::read_limited(path, MAX_CONFIG_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| format!("cannot read {}: not UTF-8 text ({e})", path.display()))?;
    let l: Locator = toml::from_str(text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(match l.control_socket {
        Some(p) if p.is_relative() => path.parent().unwrap_or(Path::new("")).join(p),
        Some(p) => p,
        None => default_socket(l.name.as_deref().unwrap_or(DEFAULT_NAME)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_needs_a_host_and_a_port_number() {
        for ok in ["10.99.0.17:7470", "sat-17.mgmt:7470", "[fd00::11]:7470"] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "",
            "10.99.0.17",
            ":7470",
            "h:",
            "h:70000",
            "h:x",
            "/run/n1.sock",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }

    #[test]
    fn the_socket_is_found_as_the_dataplane_finds_it() {
        let dir = std::env::temp_dir().join(format!("om-endpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("sat.toml");
        std::fs::write(&f, "name = \"sat-3\"\n[[ports]]\niface = \"a\"\n").unwrap();
        assert_eq!(socket_of_config(&f).unwrap(), default_socket("sat-3"));
        std::fs::write(&f, "control_socket = \"run/s.sock\"\n").unwrap();
        assert_eq!(socket_of_config(&f).unwrap(), dir.join("run/s.sock"));
        std::fs::write(&f, "control_socket = 7\n").unwrap();
        assert!(socket_of_config(&f).unwrap_err().contains("control_socket"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(socket_of_config(&f).unwrap_err().contains("cannot read"));
    }
}
