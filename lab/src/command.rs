//! Running commands (`ip`, `ethtool`, `sysctl`, ...) to completion, in the
//! host or in a namespace (`ip netns exec`), with errors that say which
//! command failed and what it wrote on stderr.

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};

/// What went wrong building or running a lab.
#[derive(thiserror::Error)]
pub enum Error {
    /// The program could not be started (not installed, not executable).
    #[error("cannot run `{command}`: {io}{hint}")]
    Start {
        command: String,
        io: std::io::Error,
        /// Which package provides the program, when it is missing.
        hint: &'static str,
    },
    /// The program ran and failed.
    #[error("`{command}` failed ({status}){}", colon(stderr))]
    Failed {
        command: String,
        status: ExitStatus,
        /// Its stderr, trimmed (for `ip -batch`, with the failing line).
        stderr: String,
    },
    /// A prefix that could match other labs' namespaces or is not a name.
    #[error("namespace prefix {0:?}: use 1-16 letters or digits")]
    Prefix(String),
    /// A namespace outside the lab's prefix (it would not be cleaned up).
    #[error("namespace {name} is not under {prefix}-")]
    Outside { name: String, prefix: String },
    /// No child process under this label.
    #[error("no process labelled {0:?} in the lab")]
    NoChild(String),
    /// A child could not be signalled or waited for.
    #[error("stopping {label}: {io}")]
    Stop { label: String, io: std::io::Error },
}

/// As Display, so that `unwrap`, `expect` and `main` print the sentence.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn colon(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

/// The package that provides a program the lab runs (for a missing one).
fn hint(program: &OsStr) -> &'static str {
    match program.to_str().unwrap_or("") {
        "ip" => " (apt-get install iproute2)",
        "ethtool" => " (apt-get install ethtool)",
        "taskset" | "setpriv" => " (apt-get install util-linux)",
        "sysctl" => " (apt-get install procps)",
        _ => "",
    }
}

/// One word of a command line, quoted for a POSIX shell when it needs it,
/// so an error's command can be pasted into a shell as it is.
fn shell_word(w: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=,@%+".contains(c);
    if !w.is_empty() && w.chars().all(plain) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// A command as a shell line (program and arguments).
pub(crate) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|w| shell_word(&w.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ip -batch` names the failing line of its input ("Command failed -:3");
/// adds that line, so the error says which of many commands failed.
fn with_batch_line(stderr: &str, input: &str) -> String {
    let line = stderr
        .split("Command failed -:")
        .nth(1)
        .and_then(|rest| {
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            n.parse::<usize>().ok()
        })
        .and_then(|n| input.lines().nth(n.checked_sub(1)?));
    match line {
        Some(l) => format!("{stderr} (line: `{}`)", l.trim()),
        None => stderr.to_string(),
    }
}

/// The error of a command that could not be started.
pub(crate) fn start_error(cmd: &Command, io: std::io::Error) -> Error {
    Error::Start {
        command: describe(cmd),
        hint: match io.kind() {
            std::io::ErrorKind::NotFound => hint(cmd.get_program()),
            _ => "",
        },
        io,
    }
}

/// Runs `cmd` to completion, `input` on its stdin (else no stdin); returns
/// its stdout, or an error with the command line and its stderr.
pub fn output(cmd: &mut Command, input: Option<&str>) -> Result<String> {
    let command = describe(cmd);
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|io| start_error(cmd, io))?;
    // Written from a thread: a child that fills its stderr before reading
    // all its input must not deadlock against us.
    let writer = match (input, child.stdin.take()) {
        (Some(text), Some(mut stdin)) => {
            let text = text.to_string();
            Some(std::thread::spawn(move || stdin.write_all(text.as_bytes())))
        }
        _ => None,
    };
    let out = child
        .wait_with_output()
        .map_err(|io| start_error(cmd, io))?;
    // A write error means the child stopped reading; its status says why.
    if let Some(w) = writer {
        let _ = w.join();
    }
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(Error::Failed {
        command,
        status: out.status,
        stderr: match input {
            Some(text) => with_batch_line(&stderr, text),
            None => stderr,
        },
    })
}

/// Runs `argv` (program first) to completion; returns its stdout.
pub fn run<S: AsRef<OsStr>>(argv: &[S]) -> Result<String> {
    let (program, args) = argv.split_first().expect("a command line has a program");
    output(Command::new(program).args(args), None)
}

/// Runs `argv` with `input` on its stdin (e.g. `ip -batch -`).
pub fn run_input<S: AsRef<OsStr>>(argv: &[S], input: &str) -> Result<String> {
    let (program, args) = argv.split_first().expect("a command line has a program");
    output(Command::new(program).args(args), Some(input))
}

/// A command running `argv` in namespace `ns` (`ip netns exec ns argv..`),
/// for the caller to set up and spawn. `ip netns exec` execs the program,
/// so the child's PID is the program's.
pub fn in_netns<S: AsRef<OsStr>>(ns: &str, argv: &[S]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).args(argv);
    cmd
}

/// Runs `argv` in namespace `ns` to completion; returns its stdout.
pub fn exec_in<S: AsRef<OsStr>>(ns: &str, argv: &[S]) -> Result<String> {
    output(&mut in_netns(ns, argv), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_command_is_named_as_a_shell_line_with_its_stderr() {
        let e = run(&["sh", "-c", "echo 'no such device' >&2; exit 3"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`sh -c 'echo '\\''no such device'\\'' >&2; exit 3'` failed (exit status: 3): no such device"
        );
        assert!(matches!(e, Error::Failed { ref stderr, .. } if stderr == "no such device"));
        // Debug says the same sentence (what `unwrap` prints).
        assert_eq!(format!("{e:?}"), e.to_string());
        let quiet = run(&["false"]).unwrap_err();
        assert_eq!(quiet.to_string(), "`false` failed (exit status: 1)");
    }

    #[test]
    fn a_missing_program_says_which_package_has_it() {
        let mut cmd = Command::new("ip");
        cmd.env("PATH", "/nonexistent");
        let e = output(cmd.args(["netns", "list"]), None).unwrap_err();
        assert!(matches!(e, Error::Start { .. }), "{e}");
        let s = e.to_string();
        assert!(s.starts_with("cannot run `ip netns list`: "), "{s}");
        assert!(s.ends_with(" (apt-get install iproute2)"), "{s}");
        let e = run(&["/nonexistent/orbitmesh-nothing"]).unwrap_err();
        assert!(!e.to_string().contains("apt-get"), "{e}");
    }

    #[test]
    fn stdout_is_returned_and_input_reaches_stdin() {
        assert_eq!(run(&["echo", "a b"]).unwrap(), "a b\n");
        // More than a pipe holds, with the child writing stderr meanwhile.
        let big = "x\n".repeat(200_000);
        let out = run_input(&["sh", "-c", "yes | head -c 100000 >&2; wc -l"], &big).unwrap();
        assert_eq!(out.trim(), "200000");
    }

    #[test]
    fn a_batch_error_names_the_failing_line() {
        let input = "netns add a\nlink add x type dummy\nnetns add c\n";
        let s = with_batch_line("Error: no such thing.\nCommand failed -:2", input);
        assert_eq!(
            s,
            "Error: no such thing.\nCommand failed -:2 (line: `link add x type dummy`)"
        );
        assert_eq!(with_batch_line("other", input), "other");
        assert_eq!(
            with_batch_line("Command failed -:9", input),
            "Command failed -:9"
        );
        assert_eq!(
            with_batch_line("Command failed -:0", input),
            "Command failed -:0"
        );
    }

    #[test]
    fn words_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(shell_word("10.0.0.1/24"), "10.0.0.1/24");
        assert_eq!(shell_word("02:6f:00:00:00:01"), "02:6f:00:00:00:01");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        let cmd = in_netns("om1-gen", &["ethtool", "-S", "gen0"]);
        assert_eq!(describe(&cmd), "ip netns exec om1-gen ethtool -S gen0");
    }
}
