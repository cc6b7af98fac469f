//! The emulation's Linux side: network namespaces, veth pairs and the child
//! processes running in them, all owned by a [`Lab`] that removes them when
//! it is dropped (normal end, error or Ctrl-C): children get SIGTERM by PID
//! (the dataplanes detach their XDP programs), then the namespaces are
//! deleted, which deletes their veths.
//!
//! Interfaces are made with `ip -batch` (one `ip` process for all veths, one
//! per namespace to bring its interfaces up), so a 40-node slice with a few
//! hundred links is built in about a second.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What went wrong building, running in or removing a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// `ip` itself could not be started.
    #[error("cannot run ip (apt-get install iproute2): {0}")]
    NoIp(std::io::Error),
    /// Talking to an `ip` process (`args` as run) failed.
    #[error("ip {args}: {error}")]
    IpIo { args: String, error: std::io::Error },
    /// `ip args` refused (its stderr).
    #[error("ip {args}: {stderr}")]
    IpFailed { args: String, stderr: String },
    #[error("namespace prefix {0:?}: use 1-16 letters or digits")]
    BadPrefix(String),
    #[error("namespace {namespace} is not under {prefix}-")]
    NotUnderPrefix { namespace: String, prefix: String },
    /// A command run in a namespace could not be started.
    #[error("{argv}: {error}")]
    ExecIo { argv: String, error: std::io::Error },
    /// A command run in namespace `ns` failed (its stderr).
    #[error("{argv} in {ns}: {stderr}")]
    ExecFailed {
        argv: String,
        ns: String,
        stderr: String,
    },
    /// The child `label` (program `program`) could not be started.
    #[error("{label}: cannot start {program}: {error}")]
    Spawn {
        label: String,
        program: String,
        error: std::io::Error,
    },
}

/// Namespaces and processes of one emulation.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
}

fn run_ip(args: &[&str], batch: Option<&str>) -> Result<(), LabError> {
    let mut cmd = Command::new("ip");
    cmd.args(args)
        .stdin(if batch.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(LabError::NoIp)?;
    let io = |error| LabError::IpIo {
        args: args.join(" "),
        error,
    };
    if let (Some(text), Some(mut stdin)) = (batch, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(io)?;
    }
    let out = child.wait_with_output().map_err(io)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::IpFailed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Namespaces whose name starts with `prefix-`.
fn namespaces_with(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    text.unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .map(str::to_string)
        .collect()
}

impl Lab {
    /// A lab whose namespaces are named `prefix-*`. Namespaces left with that
    /// prefix by an emulation that was killed are removed first (said on
    /// stderr).
    pub fn new(prefix: &str) -> Result<Lab, LabError> {
        if prefix.is_empty()
            || prefix.len() > 16
            || !prefix.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(LabError::BadPrefix(prefix.to_string()));
        }
        let stale = namespaces_with(prefix);
        if !stale.is_empty() {
            orbitmesh_core::errln!(
                "removing {} namespaces left by an earlier run ({}-*)",
                stale.len(),
                prefix
            );
            let batch: String = stale.iter().map(|n| format!("netns del {n}\n")).collect();
            run_ip(&["-force", "-batch", "-"], Some(&batch))?;
        }
        Ok(Lab {
            prefix: prefix.to_string(),
            namespaces: Vec::new(),
            children: Vec::new(),
        })
    }

    /// Creates the namespaces (loopback up in each).
    pub fn add_namespaces(&mut self, names: &[String]) -> Result<(), LabError> {
        for n in names {
            if !n.starts_with(&format!("{}-", self.prefix)) {
                return Err(LabError::NotUnderPrefix {
                    namespace: n.clone(),
                    prefix: self.prefix.clone(),
                });
            }
        }
        let batch: String = names.iter().map(|n| format!("netns add {n}\n")).collect();
        // Recorded first: a partial failure is still cleaned up.
        self.namespaces.extend(names.iter().cloned());
        run_ip(&["-batch", "-"], Some(&batch))
    }

    /// Creates veth pairs: (namespace, interface, MAC) for each end.
    pub fn add_veths(&mut self, pairs: &[[(String, String, String); 2]]) -> Result<(), LabError> {
        let batch: String = pairs
            .iter()
            .map(|[(na, ia, ma), (nb, ib, mb)]| {
                format!(
                    "link add {ia} address {ma} netns {na} type veth peer name {ib} address {mb} netns {nb}\n"
                )
            })
            .collect();
        run_ip(&["-batch", "-"], Some(&batch))
    }

    /// Runs `ip -n ns` commands in one batch (e.g. `link set p1 up`).
    pub fn ip_in(&self, ns: &str, commands: &[String]) -> Result<(), LabError> {
        let batch: String = commands.iter().map(|c| format!("{c}\n")).collect();
        run_ip(&["-n", ns, "-batch", "-"], Some(&batch))
    }

    /// Runs `argv` in namespace `ns` to completion.
    pub fn exec(&self, ns: &str, argv: &[&str]) -> Result<(), LabError> {
        let out = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .map_err(|error| LabError::ExecIo {
                argv: argv.join(" "),
                error,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(LabError::ExecFailed {
                argv: argv.join(" "),
                ns: ns.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
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
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|error| LabError::Spawn {
                label: label.to_string(),
                program: argv[0].clone(),
                error,
            })?;
        self.children.push((label.to_string(), child));
        Ok(&mut self.children.last_mut().expect("just pushed").1)
    }

    /// Labels of children that have exited, with their status.
    pub fn exited(&mut self) -> Vec<(String, std::process::ExitStatus)> {
        self.children
            .iter_mut()
            .filter_map(|(l, c)| c.try_wait().ok().flatten().map(|s| (l.clone(), s)))
            .collect()
    }

    /// Waits for the child `label` to exit (at most `timeout`).
    pub fn wait_for(&mut self, label: &str, timeout: Duration) -> Option<std::process::ExitStatus> {
        let t0 = Instant::now();
        let (_, c) = self.children.iter_mut().find(|(l, _)| l == label)?;
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            if t0.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops every child: SIGTERM by PID, then SIGKILL after 3 s.
    pub fn stop_children(&mut self) {
        for (_, c) in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = crate::os::terminate(c.id());
            }
        }
        let t0 = Instant::now();
        for (label, c) in &mut self.children {
            loop {
                match c.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if t0.elapsed() > Duration::from_secs(3) => {
                        orbitmesh_core::errln!("{label}: did not stop on SIGTERM; killing it");
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        self.children.clear();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_children();
        if !self.namespaces.is_empty() {
            let batch: String = self
                .namespaces
                .iter()
                .map(|n| format!("netns del {n}\n"))
                .collect();
            if let Err(e) = run_ip(&["-force", "-batch", "-"], Some(&batch)) {
                orbitmesh_core::errln!("cleanup: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_that_could_reach_other_namespaces_is_refused() {
        for p in ["", "ome-x", "a/b", "abcdefghijklmnopq"] {
            let e = Lab::new(p).unwrap_err();
            assert!(matches!(&e, LabError::BadPrefix(x) if x == p), "{e}");
            let want = format!("namespace prefix {p:?}: use 1-16 letters or digits");
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn namespaces_outside_the_prefix_are_refused_before_any_is_made() {
        // No namespace is created: the check comes first (no root needed).
        let mut lab = Lab {
            prefix: "omlabt".into(),
            namespaces: Vec::new(),
            children: Vec::new(),
        };
        let e = lab
            .add_namespaces(&["omlabt-a".into(), "other-b".into()])
            .unwrap_err();
        assert!(
            matches!(&e, LabError::NotUnderPrefix { namespace, prefix }
                if namespace == "other-b" && prefix == "omlabt"),
            "{e}"
        );
        assert_eq!(e.to_string(), "namespace other-b is not under omlabt-");
        assert!(lab.namespaces.is_empty());
    }
}
