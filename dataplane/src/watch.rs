//! The port watcher, run from the dataplane's housekeeping loop: it follows
//! each port's carrier into [`Liveness`], and notices when a port's
//! interface has gone: deleted, moved to another namespace, or deleted and
//! re-created under the same name (a new interface, which neither the XDP
//! program nor the AF_XDP sockets are attached to).
//!
//! A gone port is down for good (its traffic takes the backups), shown as
//! "gone" in `stats`, and logged once as an error saying to restart the
//! dataplane: re-attaching XDP and re-binding every worker's socket under
//! running workers is not done.

use crate::shared::Liveness;
use crate::sys::xdp;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// One port as watched.
#[derive(Debug)]
struct Watched {
    name: String,
    iface: String,
    /// The index of the interface the dataplane attached to.
    ifindex: u32,
    /// `/sys/class/net/IFACE/carrier`, kept open and re-read in place
    /// (pread at 0 makes sysfs regenerate the value): one syscall per port
    /// per tick instead of a path walk, which matters with dozens of
    /// instances on two cores.
    carrier: Option<File>,
    gone: bool,
}

/// Every port of one dataplane, slot by slot.
#[derive(Debug)]
pub struct PortWatch {
    ports: Vec<Watched>,
}

fn open_carrier(iface: &str) -> Option<File> {
    File::open(format!("/sys/class/net/{iface}/carrier")).ok()
}

impl PortWatch {
    /// `ports[slot] = (port name, interface)`; the interfaces' indexes are
    /// read now, so call it once XDP is attached.
    pub fn new(ports: &[(String, String)]) -> anyhow::Result<PortWatch> {
        let ports = ports
            .iter()
            .map(|(name, iface)| {
                Ok(Watched {
                    name: name.clone(),
                    iface: iface.clone(),
                    ifindex: xdp::ifindex(iface)?,
                    carrier: open_carrier(iface),
                    gone: false,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(PortWatch { ports })
    }

    /// The ports of configuration `c`, by slot; call it once XDP is
    /// attached.
    pub fn of_config(c: &crate::config::Config) -> anyhow::Result<PortWatch> {
        PortWatch::new(
            &c.ports
                .iter()
                .map(|p| (p.name().to_string(), p.iface.clone()))
                .collect::<Vec<_>>(),
        )
    }

    /// One look at every port; updates `live`.
    pub fn tick(&mut self, live: &Liveness) {
        let mut buf = [0u8; 8];
        for (i, w) in self.ports.iter_mut().enumerate() {
            if w.gone {
                continue;
            }
            let up = match w.carrier.as_ref().map(|f| f.read_at(&mut buf, 0)) {
                Some(Ok(n)) => n > 0 && buf[0] == b'1',
                // Unreadable: the interface is administratively down (sysfs
                // answers EINVAL), or gone (ENODEV, also once re-created).
                _ => false,
            };
            if !up {
                if let Some(how) = w.vanished() {
                    w.gone = true;
                    live.set_gone(i);
                    tracing::error!(
                        port = %w.name,
                        iface = %w.iface,
                        "interface {} {how}: port {} is down for good and its traffic takes the backups; restart orbitmesh-dp to use the interface again",
                        w.iface,
                        w.name
                    );
                    continue;
                }
                if w.carrier.is_none() {
                    w.carrier = open_carrier(&w.iface);
                }
            }
            if up != live.carrier(i) {
                // The audit trail, like a port set up or down by hand.
                let state = if up { "up" } else { "down" };
                tracing::info!(port = %w.name, iface = %w.iface, up, "port carrier {state}");
                live.set_carrier(i, up);
            }
        }
    }
}

impl Watched {
    /// How the interface went, if it did.
    fn vanished(&self) -> Option<&'static str> {
        match xdp::ifindex(&self.iface) {
            Err(_) => Some("is gone (deleted, or moved to another network namespace)"),
            Ok(i) if i != self.ifindex => {
                Some("was deleted and re-created (a new interface, not attached to this dataplane)")
            }
            Ok(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(iface: &str, ifindex: u32) -> Watched {
        Watched {
            name: "p".into(),
            iface: iface.into(),
            ifindex,
            carrier: None,
            gone: false,
        }
    }

    #[test]
    fn an_interface_deleted_or_replaced_is_gone_for_good() {
        let lo = xdp::ifindex("lo").expect("every host has lo");
        assert_eq!(watched("lo", lo).vanished(), None);
        assert!(watched("lo", lo + 1000)
            .vanished()
            .unwrap()
            .contains("deleted and re-created"));
        assert!(watched("om-nosuch0", 7)
            .vanished()
            .unwrap()
            .starts_with("is gone"));

        let live = Liveness::all_up();
        let mut w = PortWatch {
            ports: vec![watched("lo", lo), watched("lo", lo + 1000)],
        };
        w.tick(&live);
        assert!(!live.gone(0));
        assert!(live.gone(1) && !live.carrier(1));
        // It stays gone (and down).
        w.tick(&live);
        assert!(live.gone(1) && !live.carrier(1));
    }
}
