//! Reading the files operators hand in (FIBs, schedules, configs) without
//! trusting their size, and the documented TOML examples tests check.

use std::path::Path;

/// Reads at most `limit` bytes of a file; a longer one (or an endless one
/// such as `/dev/zero`) is an error that says so, with nothing more read.
pub fn read_limited(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("the file is larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// The first TOML example in a source file's `//!` docs, as plain TOML:
/// lets tests check that documented examples stay valid.
pub fn doc_toml_example(source: &str) -> String {
    source
        .lines()
        .skip_while(|l| !l.starts_with("//! ```toml"))
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| l.trim_start_matches("//!").trim_start().to_string() + "\n")
        .collect()
}
