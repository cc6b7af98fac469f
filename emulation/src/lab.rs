//! The emulation's Linux side, on the shared lab (`orbitmesh_lab`): network
//! namespaces, veth pairs and the child processes running in them, all
//! owned by a [`Lab`] that removes them when it is dropped (normal end,
//! error or Ctrl-C): children get SIGTERM by PID (the dataplanes detach
//! their XDP programs), then every `prefix-*` namespace is deleted, which
//! deletes their veths. This layer keeps the emulator's calls (names and
//! MACs as strings); errors are the lab's typed [`orbitmesh_lab::Error`].

use std::process::{Child, Stdio};
use std::time::Duration;

/// Namespaces and processes of one emulation.
#[derive(Debug)]
pub struct Lab(orbitmesh_lab::Lab);

pub use orbitmesh_lab::Error as LabError;

impl Lab {
    /// A lab whose namespaces are named `prefix-*`. Namespaces left with that
    /// prefix by an emulation that was killed are removed first (said on
    /// stderr).
    pub fn new(prefix: &str) -> Result<Lab, LabError> {
        orbitmesh_lab::Lab::new(prefix).map(Lab)
    }

    /// Creates the namespaces (each `prefix-*`; loopback is left down).
    pub fn add_namespaces(&mut self, names: &[String]) -> Result<(), LabError> {
        self.0.add_namespaces(names)
    }

    /// Creates veth pairs: (namespace, interface, MAC) for each end.
    pub fn add_veths(&mut self, pairs: &[[(String, String, String); 2]]) -> Result<(), LabError> {
        let end = |(ns, name, mac): &(String, String, String)| {
            orbitmesh_lab::VethEnd::new(ns, name).mac(mac)
        };
        let veths: Vec<_> = pairs
            .iter()
            .map(|[a, b]| orbitmesh_lab::Veth::new(end(a), end(b)))
            .collect();
        self.0.add_veths(&veths)
    }

    /// Creates veth pairs as the shared lab describes them (addresses, up).
    pub fn add_lab_veths(&mut self, veths: &[orbitmesh_lab::Veth]) -> Result<(), LabError> {
        self.0.add_veths(veths)
    }

    /// Runs `ip -n ns` commands in one batch (e.g. `link set p1 up`).
    pub fn ip_in(&self, ns: &str, commands: &[String]) -> Result<(), LabError> {
        self.0.ip_in(ns, commands)
    }

    /// Runs `argv` in namespace `ns` to completion.
    pub fn exec(&self, ns: &str, argv: &[&str]) -> Result<(), LabError> {
        self.0.exec(ns, argv).map(drop)
    }

    /// Starts `argv` in namespace `ns`; the lab stops it at the end.
    pub fn spawn(
        &mut self,
        label: &str,
        ns: &str,
        argv: &[String],
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<&mut Child, LabError> {
        let mut cmd = self.0.command(ns, argv);
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        self.0.spawn(label, cmd)
    }

    /// Labels of children that have exited, with their status.
    pub fn exited(&mut self) -> Vec<(String, std::process::ExitStatus)> {
        self.0.exited()
    }

    /// Waits for the child `label` to exit (at most `timeout`).
    pub fn wait_for(&mut self, label: &str, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.0.wait_for(label, timeout)
    }

    /// Stops the child `label` (SIGTERM by PID, SIGKILL after `timeout`)
    /// and forgets it.
    pub fn stop(
        &mut self,
        label: &str,
        timeout: Duration,
    ) -> Result<std::process::ExitStatus, LabError> {
        self.0.stop(label, timeout)
    }

    /// Stops every child: SIGTERM by PID, then SIGKILL after 3 s.
    pub fn stop_children(&mut self) {
        self.0.stop_children()
    }
}
