//! Output of the command-line programs (orbitmesh-ctl, orbitmesh-emu,
//! orbitmesh-bench, ...) when whoever reads it goes away.
//!
//! Rust starts every program with SIGPIPE ignored, so a write to a closed
//! pipe fails with EPIPE and `println!` panics ("failed printing to stdout:
//! Broken pipe"). The programs print through these macros instead:
//!
//! - [`outln!`]/[`out!`] (stdout, the program's product): when the reader
//!   has gone (`orbitmesh-ctl fib show | head -1`), the program ends the way
//!   a Unix tool does, killed by SIGPIPE, with no message; any other write
//!   error is reported as a sentence and the program exits 1.
//! - [`errln!`]/[`err!`] (stderr, progress and diagnostics): a failed write
//!   is dropped and the program carries on, so losing its log never stops
//!   an emulation half-way or skips its cleanup.
//!
//! Restoring SIGPIPE's default disposition at start-up would do the same
//! for stdout, but it would also kill a client whose dataplane closes the
//! control socket mid-request (`protocol::call` reads the refusal
//! that follows a failed write), and `orbitmesh-ctl run` or the emulation
//! whose dataplane dies; so the disposition stays ignored and only writes
//! to stdout end the program.

use std::io::{ErrorKind, Write};

/// Writes to stdout (see the module docs); used by [`out!`] and [`outln!`].
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            broken_pipe();
        }
        write_stderr(format_args!(
            "{}: cannot write the output: {e}\n",
            program()
        ));
        std::process::exit(1);
    }
}

/// How a program ends when stdout's reader has gone: the program's own
/// handler (see [`on_broken_pipe`]) or, without one, exit status 141, which
/// a shell shows as for a process killed by SIGPIPE.
static ON_BROKEN_PIPE: std::sync::OnceLock<fn() -> !> = std::sync::OnceLock::new();

/// Sets how the program ends when stdout's reader has gone; each program
/// installs one that dies of SIGPIPE (raising a signal is a system call this
/// crate does not make). The first call wins.
pub fn on_broken_pipe(die: fn() -> !) {
    let _ = ON_BROKEN_PIPE.set(die);
}

fn broken_pipe() -> ! {
    match ON_BROKEN_PIPE.get() {
        Some(die) => die(),
        None => std::process::exit(141),
    }
}

/// Writes to stderr, dropping a failed write; used by [`err!`] and [`errln!`].
pub fn write_stderr(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

fn program() -> String {
    std::env::args()
        .next()
        .map(|a| a.rsplit('/').next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// `print!` that ends the program quietly when stdout's reader has gone.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` that ends the program quietly when stdout's reader has gone.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that never panics: a failed write to stderr is dropped.
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::cli::write_stderr(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: a failed write to stderr is dropped.
#[macro_export]
macro_rules! errln {
    () => {
        $crate::cli::write_stderr(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}
