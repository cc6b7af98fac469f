//! orbitmesh-dp's refusals of bad command lines, run as a built binary.
//! The interfaces named do not exist, so a dataplane that wrongly accepted
//! its arguments stops at "no interface named" and touches nothing.

use std::process::Command;

/// Runs orbitmesh-dp with `args`; it must fail (exit 1) with one error line
/// on stderr, which is returned.
fn refused(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_orbitmesh-dp"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run orbitmesh-dp");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.starts_with("orbitmesh-dp: error: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("Some(") && !err.contains("Error {"), "{err}");
    err
}

#[test]
fn one_interface_under_two_port_names_is_refused_before_anything_is_attached() {
    let e = refused(&["--port", "a=om-nosuch0", "--port", "b=om-nosuch0"]);
    assert!(
        e.contains("interface \"om-nosuch0\" is given twice (as ports \"a\" and \"b\")"),
        "{e}"
    );
    let e = refused(&["--port", "om-nosuch0", "--edge", "e=om-nosuch0"]);
    assert!(e.contains("is given twice"), "{e}");
}

#[test]
fn a_core_this_process_cannot_run_on_is_refused() {
    let e = refused(&["--port", "om-nosuch0", "--core", "100000"]);
    assert!(
        e.contains("core 100000 is not available to this process (usable cores: "),
        "{e}"
    );
}

#[test]
fn a_malformed_log_filter_is_refused() {
    let e = refused(&["--port", "om-nosuch0", "--log", "info,[bad"]);
    assert!(e.contains("--log \"info,[bad\" is not a log filter"), "{e}");
}

#[test]
fn an_unknown_log_level_is_refused_not_read_as_a_target() {
    // RUST_LOG syntax would take "verbose" for a target and hide every line.
    let e = refused(&["--port", "om-nosuch0", "--log", "verbose"]);
    assert!(
        e.contains("--log \"verbose\": \"verbose\" is not a log level (give one of error, warn"),
        "{e}"
    );
    let e = refused(&["--port", "om-nosuch0", "--log", "info,chatty"]);
    assert!(e.contains("\"chatty\" is not a log level"), "{e}");
    // Levels and TARGET=LEVEL pass the check (and stop at the interface).
    for ok in ["WARN", "info,dataplane=debug", "off"] {
        let e = refused(&["--port", "om-nosuch0", "--log", ok]);
        assert!(e.contains("om-nosuch0"), "{ok}: {e}");
    }
}

#[test]
fn a_metrics_address_that_is_not_addr_port_is_refused_by_name() {
    let e = refused(&["--port", "om-nosuch0", "--metrics-listen", "localhost:9469"]);
    assert!(
        e.contains("metrics_listen \"localhost:9469\": expected ADDR:PORT, e.g. 127.0.0.1:9469"),
        "{e}"
    );
}
