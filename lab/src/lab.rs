//! [`Lab`]: the namespaces of one run, all named `prefix-*`, the veth pairs
//! between them and the processes started in them. Dropping the lab stops
//! the processes (SIGTERM by PID, then SIGKILL) and deletes every namespace
//! under the prefix, which deletes their interfaces; a new lab first removes
//! what a crashed run with the same prefix left.
//!
//! Interfaces are made with `ip -batch` (one `ip` process for all veth
//! pairs, one per namespace to address them and bring them up), so a slice
//! of a few hundred links is built in about a second.

use crate::command::{self, in_netns, run_input, start_error, Error, Result};
use crate::process::{terminate, wait_until};
use std::ffi::OsStr;
use std::io::Write;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How long [`Lab::stop_children`] and drop give the children between
/// SIGTERM and SIGKILL (a dataplane detaches its XDP programs in that time).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Where iproute2 keeps named namespaces (`ip netns list` reads it).
const NETNS_DIR: &str = "/run/netns";

/// Letters and digits only, so `prefix-` never matches another lab's
/// namespaces (no prefix of one lab is `other-prefix-`).
fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() || prefix.len() > 16 || !prefix.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(Error::Prefix(prefix.to_string()));
    }
    Ok(())
}

/// The names that belong to a lab with `prefix` (`prefix-*`), sorted.
fn under_prefix(names: impl IntoIterator<Item = String>, prefix: &str) -> Vec<String> {
    let head = format!("{prefix}-");
    let mut v: Vec<String> = names
        .into_iter()
        .filter(|n| n.len() > head.len() && n.starts_with(&head))
        .collect();
    v.sort();
    v
}

/// The named namespaces of the host.
fn netns_names() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// Namespaces named `prefix-*` that exist now.
fn existing(prefix: &str) -> Vec<String> {
    under_prefix(netns_names(), prefix)
}

/// The `ip -batch` input deleting `names`.
fn delete_batch(names: &[String]) -> String {
    names.iter().map(|n| format!("netns del {n}\n")).collect()
}

fn delete(names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    run_input(&["ip", "-force", "-batch", "-"], &delete_batch(names)).map(drop)
}

/// Deletes every namespace named `prefix-*` (what a killed run left);
/// returns their names.
pub fn remove_leftovers(prefix: &str) -> Result<Vec<String>> {
    check_prefix(prefix)?;
    let stale = existing(prefix);
    delete(&stale)?;
    Ok(stale)
}

/// Writes a line on stderr; never fails (a lab being dropped must not panic
/// because stderr is closed).
fn note(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{args}");
}

/// One end of a veth pair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VethEnd {
    pub ns: String,
    pub name: String,
    /// `aa:bb:cc:dd:ee:ff`; else the kernel picks one.
    pub mac: Option<String>,
    /// Addresses with their prefix length (`10.99.0.1/24`).
    pub addrs: Vec<String>,
}

impl VethEnd {
    pub fn new(ns: impl Into<String>, name: impl Into<String>) -> VethEnd {
        VethEnd {
            ns: ns.into(),
            name: name.into(),
            ..VethEnd::default()
        }
    }

    pub fn mac(mut self, mac: impl Into<String>) -> VethEnd {
        self.mac = Some(mac.into());
        self
    }

    pub fn addr(mut self, addr: impl Into<String>) -> VethEnd {
        self.addrs.push(addr.into());
        self
    }
}

/// A veth pair between two namespaces of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veth {
    pub ends: [VethEnd; 2],
    pub mtu: Option<u32>,
    /// RX and TX queues on each end (the kernel's default is 1).
    pub queues: Option<u32>,
    /// Brought up once made (else left down, as `ip link add` makes it).
    pub up: bool,
}

impl Veth {
    pub fn new(a: VethEnd, b: VethEnd) -> Veth {
        Veth {
            ends: [a, b],
            mtu: None,
            queues: None,
            up: false,
        }
    }

    pub fn mtu(mut self, mtu: u32) -> Veth {
        self.mtu = Some(mtu);
        self
    }

    pub fn queues(mut self, queues: u32) -> Veth {
        self.queues = Some(queues);
        self
    }

    pub fn up(mut self) -> Veth {
        self.up = true;
        self
    }

    /// One end's part of `ip link add`: name, address, namespace, options.
    fn end_args(&self, e: &VethEnd) -> String {
        let mut s = e.name.clone();
        if let Some(m) = &e.mac {
            s += &format!(" address {m}");
        }
        s += &format!(" netns {}", e.ns);
        if let Some(m) = self.mtu {
            s += &format!(" mtu {m}");
        }
        if let Some(q) = self.queues {
            s += &format!(" numtxqueues {q} numrxqueues {q}");
        }
        s
    }

    /// The `ip -batch` line creating the pair.
    fn add_line(&self) -> String {
        format!(
            "link add {} type veth peer name {}\n",
            self.end_args(&self.ends[0]),
            self.end_args(&self.ends[1])
        )
    }

    /// The `ip -n NS -batch` lines addressing each end and bringing it up.
    fn config_lines(&self) -> Vec<(&str, String)> {
        let mut v = Vec::new();
        for e in &self.ends {
            for a in &e.addrs {
                v.push((e.ns.as_str(), format!("addr add {a} dev {}\n", e.name)));
            }
            if self.up {
                v.push((e.ns.as_str(), format!("link set {} up\n", e.name)));
            }
        }
        v
    }
}

/// `(namespace, line)` pairs as one batch per namespace, in first-seen order.
fn by_namespace<'a>(lines: impl IntoIterator<Item = (&'a str, String)>) -> Vec<(&'a str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for (ns, line) in lines {
        match out.iter_mut().find(|(n, _)| *n == ns) {
            Some((_, batch)) => batch.push_str(&line),
            None => out.push((ns, line)),
        }
    }
    out
}

/// Namespaces, links and processes of one run; removed on drop.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    children: Vec<(String, Child)>,
}

impl Lab {
    /// A lab whose namespaces are named `prefix-*` (1-16 letters or
    /// digits). Namespaces left under that prefix by a run that was killed
    /// are removed first (said on stderr).
    pub fn new(prefix: &str) -> Result<Lab> {
        check_prefix(prefix)?;
        let stale = existing(prefix);
        if !stale.is_empty() {
            note(format_args!(
                "removing {} namespaces left by an earlier run ({prefix}-*)",
                stale.len()
            ));
            delete(&stale)?;
        }
        Ok(Lab {
            prefix: prefix.to_string(),
            children: Vec::new(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The name of the lab's namespace for `role` (`prefix-role`).
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    fn check_ns(&self, ns: &str) -> Result<()> {
        if under_prefix([ns.to_string()], &self.prefix).is_empty() {
            return Err(Error::Outside {
                name: ns.to_string(),
                prefix: self.prefix.clone(),
            });
        }
        Ok(())
    }

    /// Creates the namespaces `names` (each `prefix-*`), in one batch.
    pub fn add_namespaces<S: AsRef<str>>(&mut self, names: &[S]) -> Result<()> {
        for n in names {
            self.check_ns(n.as_ref())?;
        }
        let batch: String = names
            .iter()
            .map(|n| format!("netns add {}\n", n.as_ref()))
            .collect();
        // A partial failure is cleaned up too: drop deletes by prefix.
        run_input(&["ip", "-batch", "-"], &batch).map(drop)
    }

    /// Creates veth pairs between the lab's namespaces (one batch), then
    /// addresses them and brings them up as asked (one batch a namespace).
    pub fn add_veths(&mut self, veths: &[Veth]) -> Result<()> {
        for e in veths.iter().flat_map(|v| &v.ends) {
            self.check_ns(&e.ns)?;
        }
        if veths.is_empty() {
            return Ok(());
        }
        let batch: String = veths.iter().map(Veth::add_line).collect();
        run_input(&["ip", "-batch", "-"], &batch)?;
        for (ns, batch) in by_namespace(veths.iter().flat_map(Veth::config_lines)) {
            run_input(&["ip", "-n", ns, "-batch", "-"], &batch)?;
        }
        Ok(())
    }

    /// Runs `ip -n ns` commands in one batch (e.g. `link set p1 up`).
    pub fn ip_in<S: AsRef<str>>(&self, ns: &str, commands: &[S]) -> Result<()> {
        let batch: String = commands
            .iter()
            .map(|c| format!("{}\n", c.as_ref()))
            .collect();
        run_input(&["ip", "-n", ns, "-batch", "-"], &batch).map(drop)
    }

    /// Runs `argv` in namespace `ns` to completion; returns its stdout.
    pub fn exec<S: AsRef<OsStr>>(&self, ns: &str, argv: &[S]) -> Result<String> {
        command::exec_in(ns, argv)
    }

    /// A command running `argv` in namespace `ns`, to set up and hand to
    /// [`spawn`](Lab::spawn).
    pub fn command<S: AsRef<OsStr>>(&self, ns: &str, argv: &[S]) -> Command {
        in_netns(ns, argv)
    }

    /// Starts `cmd` (see [`command`](Lab::command)) as child `label`; the
    /// lab stops it at the latest when it is dropped.
    pub fn spawn(&mut self, label: &str, mut cmd: Command) -> Result<&mut Child> {
        let child = cmd.spawn().map_err(|io| start_error(&cmd, io))?;
        self.children.push((label.to_string(), child));
        Ok(&mut self.children.last_mut().expect("just pushed").1)
    }

    /// The child `label`, if the lab has it.
    pub fn child(&mut self, label: &str) -> Option<&mut Child> {
        self.children
            .iter_mut()
            .find(|(l, _)| l == label)
            .map(|(_, c)| c)
    }

    /// The PID of child `label` (the program's own: `ip netns exec` execs it).
    pub fn pid(&self, label: &str) -> Option<u32> {
        self.children
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, c)| c.id())
    }

    /// Labels of children that have exited, with their status.
    pub fn exited(&mut self) -> Vec<(String, ExitStatus)> {
        self.children
            .iter_mut()
            .filter_map(|(l, c)| c.try_wait().ok().flatten().map(|s| (l.clone(), s)))
            .collect()
    }

    /// Waits for the child `label` to exit (at most `timeout`).
    pub fn wait_for(&mut self, label: &str, timeout: Duration) -> Option<ExitStatus> {
        let c = self.child(label)?;
        wait_until(c, Instant::now() + timeout)
    }

    /// Stops the child `label` (SIGTERM by PID, SIGKILL after `timeout`)
    /// and forgets it; returns its exit status.
    pub fn stop(&mut self, label: &str, timeout: Duration) -> Result<ExitStatus> {
        let i = self
            .children
            .iter()
            .position(|(l, _)| l == label)
            .ok_or_else(|| Error::NoChild(label.to_string()))?;
        let (label, mut c) = self.children.remove(i);
        crate::process::stop(&mut c, timeout).map_err(|io| Error::Stop { label, io })
    }

    /// Stops every child: SIGTERM to each by PID, then SIGKILL to those
    /// still running after [`STOP_TIMEOUT`].
    pub fn stop_children(&mut self) {
        for (_, c) in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = terminate(c.id());
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        for (label, c) in &mut self.children {
            if wait_until(c, deadline).is_none() {
                if let Ok(None) = c.try_wait() {
                    note(format_args!("{label}: did not stop on SIGTERM; killing it"));
                }
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.children.clear();
    }
}

impl Drop for Lab {
    /// Stops the children, then deletes every namespace under the prefix
    /// (all the lab made: [`add_namespaces`](Lab::add_namespaces) refuses
    /// others).
    fn drop(&mut self) {
        self.stop_children();
        let all = existing(&self.prefix);
        if let Err(e) = delete(&all) {
            note(format_args!("cleanup: {e}"));
        }
        let left = existing(&self.prefix);
        if !left.is_empty() {
            note(format_args!(
                "cleanup: namespaces still present: {}",
                left.join(" ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefixes_are_letters_and_digits() {
        for ok in ["om1", "obh", "omtemu", "a", "abcdefghijklmnop"] {
            assert!(check_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["", "om-1", "om_1", "a b", "om/x", "abcdefghijklmnopq"] {
            let e = check_prefix(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("namespace prefix {bad:?}: use 1-16 letters or digits")
            );
        }
        assert!(matches!(Lab::new("x-y"), Err(Error::Prefix(_))));
        assert!(matches!(remove_leftovers(""), Err(Error::Prefix(_))));
    }

    #[test]
    fn leftovers_are_exactly_the_prefix_and_a_dash() {
        let host = names(&[
            "om12a-gen",
            "om12a-dut",
            "om12ab-gen",
            "om12",
            "om12a-",
            "xom12a-gen",
            "om12a",
            "obh-gen",
        ]);
        assert_eq!(
            under_prefix(host.clone(), "om12a"),
            ["om12a-dut", "om12a-gen"]
        );
        assert_eq!(under_prefix(host.clone(), "om12ab"), ["om12ab-gen"]);
        assert_eq!(under_prefix(host.clone(), "obh"), ["obh-gen"]);
        assert!(under_prefix(host, "om1").is_empty());
        assert_eq!(
            delete_batch(&names(&["p-a", "p-b"])),
            "netns del p-a\nnetns del p-b\n"
        );
    }

    #[test]
    fn namespaces_outside_the_prefix_are_refused_before_anything_runs() {
        // No root needed: the check comes first, and an empty lab's drop
        // deletes nothing (no namespace `zzlabunit-*` exists).
        let mut lab = Lab::new("zzlabunit").unwrap();
        assert_eq!(lab.ns("gen"), "zzlabunit-gen");
        let e = lab.add_namespaces(&["zzlabunit-a", "other-b"]).unwrap_err();
        assert_eq!(e.to_string(), "namespace other-b is not under zzlabunit-");
        let v = Veth::new(
            VethEnd::new("zzlabunit-a", "p0"),
            VethEnd::new("zzlabunitx-b", "p1"),
        );
        assert!(matches!(lab.add_veths(&[v]), Err(Error::Outside { .. })));
        assert!(matches!(
            lab.stop("dp", Duration::ZERO),
            Err(Error::NoChild(_))
        ));
    }

    #[test]
    fn veth_lines_carry_macs_mtu_queues_addresses_and_up() {
        let plain = Veth::new(VethEnd::new("p-a", "a0"), VethEnd::new("p-b", "b0"));
        assert_eq!(
            plain.add_line(),
            "link add a0 netns p-a type veth peer name b0 netns p-b\n"
        );
        assert!(plain.config_lines().is_empty());
        let full = Veth::new(
            VethEnd::new("p-a", "a0")
                .mac("02:00:00:00:00:01")
                .addr("10.0.0.1/24"),
            VethEnd::new("p-b", "b0")
                .mac("02:00:00:00:00:02")
                .addr("10.0.0.2/24")
                .addr("fd00::2/64"),
        )
        .mtu(9000)
        .queues(2)
        .up();
        assert_eq!(
            full.add_line(),
            "link add a0 address 02:00:00:00:00:01 netns p-a mtu 9000 numtxqueues 2 numrxqueues 2 \
             type veth peer name b0 address 02:00:00:00:00:02 netns p-b mtu 9000 numtxqueues 2 numrxqueues 2\n"
        );
        let second = Veth::new(VethEnd::new("p-a", "a1"), VethEnd::new("p-c", "c0")).up();
        let batches = by_namespace([&full, &second].into_iter().flat_map(Veth::config_lines));
        assert_eq!(
            batches,
            [
                (
                    "p-a",
                    "addr add 10.0.0.1/24 dev a0\nlink set a0 up\nlink set a1 up\n".to_string()
                ),
                (
                    "p-b",
                    "addr add 10.0.0.2/24 dev b0\naddr add fd00::2/64 dev b0\nlink set b0 up\n"
                        .to_string()
                ),
                ("p-c", "link set c0 up\n".to_string()),
            ]
        );
    }
}
