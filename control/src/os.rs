//! What orbitmesh-ctl asks of the operating system, through a safe wrapper
//! (`signal-hook`), so that this crate has no `unsafe` and needs no BPF
//! toolchain: ending the way a Unix tool ends when its output's reader has
//! gone.

/// Ends the process as a Unix tool does when the reader of its output has
/// gone: by SIGPIPE's default action (a shell shows status 141).
pub fn die_of_sigpipe() -> ! {
    let _ = signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGPIPE);
    std::process::exit(141)
}
