//! The README is the test (issue 18): every command in it runs as written,
//! against files that ship, and every example file is checked by the
//! programs that read it.
//!
//! How the README marks its fenced blocks (the info string after ```):
//!
//! - `sh`: every command runs in CI, as any user, from the repository root,
//!   and must exit 0. One command a line; `\` continues a line; `#` starts a
//!   comment; a trailing comment that begins with `exit N` means the
//!   command must exit with status N instead (e.g. `fib diff` of two
//!   different files: `# exit 1: they differ`).
//! - `sh root`: the same, when the suite runs as root (skipped with a
//!   message otherwise), in a network namespace this test makes and
//!   removes, also on failure. It has the interfaces `veth-isl0`,
//!   `veth-isl1`, `eth0` and `eth1` (veth pairs to a peer namespace). A
//!   command ending in `&` starts an `orbitmesh-dp` in the background: the
//!   test waits until its control socket answers, and stops it when the
//!   block's script ends. All `sh root` blocks run in one script, in order,
//!   so a later block talks to the dataplanes an earlier one started.
//! - `sh no-ci: REASON`: not run (real NICs, the 2.5-minute demo, long
//!   benchmarks, writes into /etc); listed with the reason. Its commands'
//!   files must still ship.
//! - Any other shell-like tag (`bash`, `console`, `sh rot`, ...) fails the
//!   test, so a typo cannot skip a block.
//! - `toml examples/F`: the block is an excerpt of the shipped file F,
//!   verbatim. Every other `toml` block must still be accepted by the
//!   program that reads it (FIB, dataplane configuration or wiring).
//!
//! `target/release/` in a command stands for the directory of the binaries
//! the suite built (`target/debug` under `cargo test`), and that directory
//! is first on the PATH. A relative path a command names (a word with a `/`
//! or a file extension the project uses) must be a file the repository
//! ships: tracked by git when this is a git checkout, so a file that exists
//! only in the developer's tree fails here and not in a fresh clone. Paths
//! after `--out`, `--man` and `>` are outputs; paths under /tmp that did
//! not exist before the run are removed after it.
//!
//! Every file under examples/ is checked: FIBs by `orbitmesh-ctl fib check`,
//! dataplane configurations by `orbitmesh-dp --check-config`, wirings by the
//! control process's parser, schedules by `schedule load`'s reader.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use dataplane::config::Config;
use orbitmesh_core::fib::FibSpec;
use support::{bin, is_root};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// A block's script may run this long (the README's commands take seconds).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);
/// The interfaces a `sh root` block finds in its namespace.
const ROOT_IFACES: [&str; 4] = ["veth-isl0", "veth-isl1", "eth0", "eth1"];

/// A fenced block: the line of its opening fence, its info string, its
/// lines with their numbers.
#[derive(Debug)]
struct Block {
    line: usize,
    info: String,
    body: Vec<(usize, String)>,
}

/// How a shell block runs.
#[derive(Debug, PartialEq)]
enum Mode {
    Ci,
    Root,
    NoCi(String),
}

/// One command of a shell block.
#[derive(Debug)]
struct Cmd {
    line: usize,
    text: String,
    exit: i32,
    background: bool,
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md beside Cargo.toml")
}

/// Every fenced block of the README, in order.
fn blocks() -> Vec<Block> {
    let text = readme();
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((n, l)) = lines.next() {
        if let Some(info) = l.strip_prefix("```") {
            let body = lines
                .by_ref()
                .take_while(|(_, l)| l.trim() != "```")
                .map(|(i, l)| (i, l.to_string()))
                .collect();
            blocks.push(Block {
                line: n,
                info: info.trim().to_string(),
                body,
            });
        }
    }
    blocks
}

/// The mode of a shell block, `None` for other blocks; a shell-like tag
/// the convention does not know is an error.
fn mode(b: &Block) -> Result<Option<Mode>, String> {
    let info = b.info.as_str();
    if info == "sh" {
        return Ok(Some(Mode::Ci));
    }
    if info == "sh root" {
        return Ok(Some(Mode::Root));
    }
    if let Some(reason) = info.strip_prefix("sh no-ci:") {
        let reason = reason.trim();
        return match reason.is_empty() {
            true => Err(format!(
                "README.md:{}: `sh no-ci:` without a reason",
                b.line
            )),
            false => Ok(Some(Mode::NoCi(reason.to_string()))),
        };
    }
    let word = info.split_whitespace().next().unwrap_or("");
    if ["sh", "bash", "shell", "console", "shell-session", "zsh"].contains(&word) {
        return Err(format!(
            "README.md:{}: ```{info}: write sh, sh root or sh no-ci: REASON (tests/readme.rs)",
            b.line
        ));
    }
    Ok(None)
}

/// Splits a line into code and its trailing comment (`#` at the start or
/// after a blank, outside quotes).
fn split_comment(line: &str) -> (&str, Option<&str>) {
    let (mut single, mut double, mut prev) = (false, false, ' ');
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => {
                return (&line[..i], Some(line[i + 1..].trim()));
            }
            _ => {}
        }
        prev = c;
    }
    (line, None)
}

/// The commands of a shell block.
fn commands(b: &Block) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (n, raw) in &b.body {
        let (code, comment) = split_comment(raw);
        let code = code.trim_end();
        let (start, mut text) = pending.take().unwrap_or((*n, String::new()));
        if let Some(cont) = code.strip_suffix('\\') {
            text.push_str(cont.trim());
            text.push(' ');
            pending = Some((start, text));
            continue;
        }
        text.push_str(code.trim());
        let text = text.trim().to_string();
        if text.is_empty() {
            continue;
        }
        let exit = comment
            .and_then(|c| c.strip_prefix("exit "))
            .and_then(|c| c.split(|ch: char| !ch.is_ascii_digit()).next())
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        let background = text.ends_with('&') && !text.ends_with("&&");
        cmds.push(Cmd {
            line: start,
            text,
            exit,
            background,
        });
    }
    assert!(
        pending.is_none(),
        "README.md:{}: a block ends in `\\`",
        b.line
    );
    cmds
}

/// The words of a command that name files it reads, and the outputs it
/// names (after --out, --man, >).
fn files_named(cmd: &str) -> (Vec<String>, Vec<String>) {
    let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
    let mut words = cmd
        .split(|c: char| c.is_whitespace() || c == ';' || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches(|c| c == '"' || c == '\''));
    while let Some(w) = words.next() {
        // VAR=value, --flag=value, name=iface: the value.
        let w = w.split_once('=').map_or(w, |(_, v)| v);
        if ["--out", "--man", ">", "2>", ">>"].contains(&w) {
            outputs.extend(words.next().map(str::to_string));
            continue;
        }
        if w.starts_with("/tmp/") {
            outputs.push(w.to_string());
            continue;
        }
        let file_like = w.contains('/')
            || [".toml", ".json", ".omfib", ".sh", ".txt", ".key"]
                .iter()
                .any(|e| w.ends_with(e));
        let placeholder = w.contains('$') || w.contains("...") || w.contains('<');
        let url = w.contains("://");
        if file_like && !placeholder && !url && !w.starts_with('-') && !w.starts_with('/') {
            inputs.push(w.to_string());
        }
    }
    (inputs, outputs)
}

/// The files the repository ships: git's index when this is a checkout
/// (as a fresh clone has them), else whatever exists.
fn shipped() -> Option<BTreeSet<String>> {
    let out = Command::new("git")
        .args(["-C", ROOT, "ls-files", "-z"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(
        out.stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect(),
    )
}

/// Why `word` (a file a README command reads) does not ship, if it does not.
fn missing(word: &str, shipped: &Option<BTreeSet<String>>) -> Option<String> {
    if let Some(name) = word.strip_prefix("target/release/") {
        let built = bin_dir().join(name);
        return (!built.exists()).then(|| format!("{word}: the workspace builds no {name}"));
    }
    let path = word.trim_end_matches('/');
    let exists = Path::new(ROOT).join(path).exists();
    let tracked = match shipped {
        Some(files) => files
            .iter()
            .any(|f| f == path || f.starts_with(&format!("{path}/"))),
        None => exists,
    };
    match (exists, tracked) {
        (true, true) => None,
        (false, _) => Some(format!("{word}: no such file in the repository")),
        (true, false) => Some(format!("{word}: exists here but is not committed")),
    }
}

/// The directory of the binaries the suite built.
fn bin_dir() -> PathBuf {
    bin("orbitmesh-ctl")
        .parent()
        .expect("target/<profile>")
        .to_path_buf()
}

/// Every shell block with its mode; panics on a block the convention does
/// not know.
fn shell_blocks() -> Vec<(Block, Mode)> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for b in blocks() {
        match mode(&b) {
            Ok(Some(m)) => out.push((b, m)),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    out
}

#[test]
fn every_file_a_readme_command_names_ships() {
    let shipped = shipped();
    let mut errors = Vec::new();
    let mut checked = 0;
    for (b, _) in shell_blocks() {
        for c in commands(&b) {
            for w in files_named(&c.text).0 {
                checked += 1;
                if let Some(e) = missing(&w, &shipped) {
                    errors.push(format!("README.md:{}: {e}", c.line));
                }
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(checked >= 10, "only {checked} file names found in commands");
}

#[test]
fn commands_that_cannot_run_in_ci_are_listed_with_the_reason() {
    let skipped: Vec<_> = shell_blocks()
        .into_iter()
        .filter_map(|(b, m)| match m {
            Mode::NoCi(r) => Some((b, r)),
            _ => None,
        })
        .collect();
    for (b, reason) in &skipped {
        eprintln!("README.md:{}: not run in CI: {reason}", b.line);
        for c in commands(b) {
            eprintln!("    {}", c.text);
        }
    }
    assert!(!skipped.is_empty());
}

/// A bash script that runs `cmds` in order, each checked for its exit
/// status (named by its README line on failure), waits for background
/// dataplanes' sockets and stops them when it ends.
fn script(cmds: &[Cmd]) -> String {
    let bin = bin_dir().display().to_string();
    let mut s = String::from(SCRIPT_HEAD);
    for c in cmds {
        let text = c
            .text
            .replace("$PWD/target/release", &bin)
            .replace("target/release", &bin);
        let quoted = format!("'{}'", text.replace('\'', r"'\''"));
        // Assignments and background starts stay in this shell; anything
        // else runs in a subshell with -e, so `a; b` fails on a.
        let here = text.starts_with("export ")
            || text.split_whitespace().next().is_some_and(|w| {
                w.contains('=') && !w.starts_with('-') && !w.contains('/') && !w.contains('$')
            })
            || c.background
            || text.starts_with("source ");
        let runner = if here { "readme_here" } else { "readme_sub" };
        s.push_str(&format!("{runner} {} {} {quoted}\n", c.line, c.exit));
        if c.background {
            s.push_str(&format!(
                "readme_wait $! {} {}\n",
                socket_of(&c.text).display(),
                c.line
            ));
        }
    }
    s
}

const SCRIPT_HEAD: &str = r#"
readme_pids=()
readme_stop() { for p in "${readme_pids[@]}"; do kill "$p" 2>/dev/null; done; wait; }
trap readme_stop EXIT
trap 'exit 143' TERM INT
readme_fail() { echo "README.md:$1: $2" >&2; exit 1; }
readme_check() {
    [ "$3" = "$2" ] || readme_fail "$1" "exit status $3, expected $2: $4"
}
readme_here() { eval "$3"; readme_check "$1" "$2" $? "$3"; }
readme_sub() { (set -e; eval "$3"); readme_check "$1" "$2" $? "$3"; }
readme_wait() {
    readme_pids+=("$1")
    for _ in $(seq 200); do
        kill -0 "$1" 2>/dev/null || readme_fail "$3" "the dataplane exited before its socket $2 answered"
        orbitmesh-ctl stats --socket "$2" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    readme_fail "$3" "no answer on $2 within 20 s"
}
"#;

/// The control socket of an `orbitmesh-dp` command line: `--socket`, else
/// the `--config` file's, else /run/orbitmesh/NAME.sock.
fn socket_of(cmd: &str) -> PathBuf {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let after = |flag: &str| {
        words
            .windows(2)
            .find(|w| w[0] == flag)
            .map(|w| w[1].to_string())
    };
    assert!(
        words.iter().any(|w| w.ends_with("orbitmesh-dp")),
        "a README command in the background that is not orbitmesh-dp: {cmd}"
    );
    let mut c = match after("--config") {
        Some(f) => Config::read(&Path::new(ROOT).join(f)).expect("the config it names"),
        None => Config::default(),
    };
    if let Some(n) = after("--name") {
        c.name = n;
    }
    if let Some(s) = after("--socket") {
        c.control_socket = Some(s.into());
    }
    c.socket_path()
}

/// Outputs under /tmp the commands name that do not exist yet (removed
/// after the run).
fn fresh_outputs(cmds: &[Cmd]) -> Vec<PathBuf> {
    cmds.iter()
        .flat_map(|c| files_named(&c.text).1)
        .map(PathBuf::from)
        .filter(|p| p.starts_with("/tmp/") && !p.exists())
        .collect()
}

/// Runs `script` with bash (in namespace `ns` when given) from the
/// repository root; its exit status and output, or the output of a run
/// stopped at [`SCRIPT_TIMEOUT`].
fn run_script(
    tag: &str,
    script: &str,
    lab: Option<(&mut orbitmesh_lab::Lab, &str)>,
) -> (Option<ExitStatus>, String) {
    let dir = std::env::temp_dir().join(format!("om-readme-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("readme.sh");
    std::fs::write(&path, script).unwrap();
    let log = dir.join("out.log");
    let argv = [Path::new("bash"), &path];
    let mut cmd = match &lab {
        Some((l, ns)) => l.command(ns, &argv),
        None => {
            let mut c = Command::new("bash");
            c.arg(&path);
            c
        }
    };
    let path_env = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::fs::File::create(&log).unwrap();
    cmd.current_dir(ROOT)
        .env("PATH", path_env)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stderr(out.try_clone().unwrap())
        .stdout(out);
    let status = match lab {
        Some((l, _)) => {
            l.spawn("readme", cmd).expect("bash");
            let st = l.wait_for("readme", SCRIPT_TIMEOUT);
            let _ = l.stop("readme", orbitmesh_lab::STOP_TIMEOUT);
            st
        }
        None => {
            let mut child = cmd.spawn().expect("bash");
            let t = Instant::now();
            loop {
                if let Some(st) = child.try_wait().expect("wait") {
                    break Some(st);
                }
                if t.elapsed() > SCRIPT_TIMEOUT {
                    let _ = orbitmesh_lab::stop(&mut child, orbitmesh_lab::STOP_TIMEOUT);
                    break None;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (status, out)
}

/// Runs every command of the blocks in `mode`, in one script; fails naming
/// the README line of a command that fails.
fn run_blocks(mode: Mode, tag: &str, lab: Option<(&mut orbitmesh_lab::Lab, &str)>) -> usize {
    let cmds: Vec<Cmd> = shell_blocks()
        .into_iter()
        .filter(|(_, m)| *m == mode)
        .flat_map(|(b, _)| commands(&b))
        .collect();
    assert!(!cmds.is_empty(), "no README commands in mode {mode:?}");
    let outputs = fresh_outputs(&cmds);
    let (status, out) = run_script(tag, &script(&cmds), lab);
    for p in outputs {
        let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
    }
    match status {
        Some(st) if st.success() => cmds.len(),
        Some(st) => panic!("README commands ({mode:?}) failed ({st}):\n{out}"),
        None => panic!("README commands ({mode:?}) still running after {SCRIPT_TIMEOUT:?}:\n{out}"),
    }
}

#[test]
fn every_readme_command_runs_as_written() {
    let n = run_blocks(Mode::Ci, "ci", None);
    eprintln!("{n} README commands ran");
}

#[test]
fn every_root_readme_command_runs_as_written_in_a_namespace() {
    if !is_root() {
        eprintln!("skipped: the README's `sh root` blocks need root (network namespaces, AF_XDP)");
        return;
    }
    let mut lab = orbitmesh_lab::Lab::new(&format!("omrd{}", std::process::id())).expect("lab");
    let (ns, peer) = (lab.ns("node"), lab.ns("peer"));
    lab.add_namespaces(&[&ns, &peer]).expect("namespaces");
    let veths: Vec<_> = ROOT_IFACES
        .iter()
        .enumerate()
        .map(|(i, dev)| {
            orbitmesh_lab::Veth::new(
                orbitmesh_lab::VethEnd::new(&ns, *dev),
                orbitmesh_lab::VethEnd::new(&peer, format!("peer{i}")),
            )
            .up()
        })
        .collect();
    lab.add_veths(&veths).expect("veths");
    // A host's loopback is up; a new namespace's is not (the metrics example
    // scrapes 127.0.0.1).
    lab.ip_in(&ns, &["link set lo up"]).expect("loopback up");
    let n = run_blocks(Mode::Root, "root", Some((&mut lab, &ns)));
    eprintln!("{n} README commands ran as root in {ns}");
    // The lab removes the namespaces (and anything left running) on drop.
}

/// The ```toml blocks of the README, with their info strings.
fn toml_blocks() -> Vec<(String, String)> {
    blocks()
        .into_iter()
        .filter(|b| b.info == "toml" || b.info.starts_with("toml "))
        .map(|b| {
            let body: Vec<&str> = b.body.iter().map(|(_, l)| l.as_str()).collect();
            (b.info.clone(), body.join("\n"))
        })
        .collect()
}

/// The README's TOML examples are what the programs accept: every FIB
/// example builds (and is not empty), every dataplane configuration
/// example parses and validates, every wiring example parses. The FIB
/// example once named a backup next hop it did not define, and `fib check`
/// refused it. A block tagged with a file is an excerpt of that file.
#[test]
fn every_toml_example_in_the_readme_is_accepted() {
    let (mut fibs, mut configs, mut wirings) = (0, 0, 0);
    for (info, b) in toml_blocks() {
        if let Some(file) = info.strip_prefix("toml ") {
            let shipped = std::fs::read_to_string(Path::new(ROOT).join(file.trim()))
                .unwrap_or_else(|e| panic!("README ```{info}: {e}"));
            assert!(
                shipped.contains(&b),
                "README ```{info} is not an excerpt of {file}:\n{b}"
            );
        }
        if b.contains("[[next_hops]]") {
            let spec = FibSpec::parse(&b).unwrap_or_else(|e| panic!("README FIB: {e}\n{b}"));
            spec.check_not_empty(false)
                .and_then(|()| spec.build().map(|_| ()))
                .unwrap_or_else(|e| panic!("README FIB refused: {e}\n{b}"));
            fibs += 1;
        } else if b.contains("[nodes.") {
            control::distribute::Wiring::parse(&b)
                .unwrap_or_else(|e| panic!("README wiring refused: {e}\n{b}"));
            wirings += 1;
        } else if b.contains("iface") {
            let c = Config::parse(&b).unwrap_or_else(|e| panic!("README config: {e}\n{b}"));
            c.validate()
                .unwrap_or_else(|e| panic!("README config refused: {e}\n{b}"));
            configs += 1;
        }
    }
    assert!(
        fibs >= 1 && configs >= 1 && wirings >= 1,
        "found {fibs} FIB, {configs} config and {wirings} wiring examples"
    );
}

/// Runs a binary the suite built; panics with its output unless it exits 0.
fn accepted(program: &str, args: &[&str]) -> String {
    let out = Command::new(bin(program))
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{program} {}: {}\n{text}",
        args.join(" "),
        out.status
    );
    text
}

/// Every file under examples/ is checked by the program that reads it; a
/// file of a kind nobody checks fails (add its check here).
#[test]
fn every_example_file_is_checked_by_the_program_that_reads_it() {
    let dir = Path::new(ROOT).join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples/")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        let rel = format!("examples/{name}");
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        if name.ends_with(".fib.toml") || name.ends_with(".fib.json") {
            accepted("orbitmesh-ctl", &["fib", "check", &rel]);
        } else if name.ends_with(".schedule.json") {
            control::fib_ops::read_schedule(&dir.join(name))
                .unwrap_or_else(|e| panic!("{rel}: {e}"));
        } else if name.ends_with(".toml") && text.contains("[nodes.") {
            control::distribute::Wiring::parse(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
        } else if name.ends_with(".toml") {
            accepted("orbitmesh-dp", &["--config", &rel, "--check-config"]);
        } else {
            panic!("{rel}: no check for this kind of file (tests/readme.rs)");
        }
    }
    assert!(names.len() >= 5, "examples/: {names:?}");
}

/// Runs `orbitmesh-dp --config CFG --check-config`, which must exit 1;
/// returns its stderr.
fn check_config_refuses(cfg: &Path) -> String {
    let out = Command::new(bin("orbitmesh-dp"))
        .arg("--config")
        .arg(cfg)
        .arg("--check-config")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    err
}

/// `--check-config` refuses a bad configuration, naming the file and the
/// field, with exit status 1.
#[test]
fn check_config_names_the_file_and_field_it_refuses() {
    let dir = std::env::temp_dir().join(format!("om-readme-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "name = \"x\"\nbatch = 99\n[[ports]]\niface = \"a\"\n").unwrap();
    let err = check_config_refuses(&cfg);
    assert!(
        err.contains("bad.toml") && err.contains("batch 99"),
        "{err}"
    );
    // A FIB naming a port the configuration does not have.
    std::fs::write(
        &cfg,
        format!(
            "name = \"x\"\nfib = \"{ROOT}/examples/sat-17.fib.toml\"\n[[ports]]\niface = \"a\"\n"
        ),
    )
    .unwrap();
    let err = check_config_refuses(&cfg);
    assert!(
        err.contains("\"isl0\"") && err.contains("no such port"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_convention_reads_commands_comments_and_exit_statuses() {
    let b = Block {
        line: 1,
        info: "sh".into(),
        body: vec![
            (2, "# a comment".into()),
            (3, "a --x 'b # c' \\".into()),
            (4, "    d   # exit 1: they differ".into()),
            (5, "dp --name n &".into()),
        ],
    };
    let c = commands(&b);
    assert_eq!(c.len(), 2);
    assert_eq!(
        (c[0].line, c[0].text.as_str(), c[0].exit),
        (3, "a --x 'b # c' d", 1)
    );
    assert!(c[1].background && c[1].exit == 0);
    let bad = Block {
        line: 9,
        info: "bash".into(),
        body: vec![],
    };
    assert!(mode(&bad).is_err());
    let typo = Block {
        line: 9,
        info: "sh rot".into(),
        body: vec![],
    };
    assert!(mode(&typo).is_err());
    let (ins, outs) =
        files_named("x diff examples/a.toml b.json --out /tmp/o > /tmp/f $S /tmp/c.omfib /etc/x");
    assert_eq!(ins, ["examples/a.toml", "b.json"]);
    assert_eq!(outs, ["/tmp/o", "/tmp/f", "/tmp/c.omfib"]);
}
