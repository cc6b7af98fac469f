//! The control process's events (`orbitmesh-ctl run --events PATH`): one
//! JSON object per line, for programs that follow a run (the emulator
//! times its repairs by them) instead of reading its log. Each record is
//! the wall time it was written at (`wall_ns`, CLOCK_REALTIME) and one
//! [`Event`], tagged by `event`:
//!
//! ```json
//! {"wall_ns":1764490000123456789,"event":"links_down","links":[[3,4]],"schedule_t_ns":612000000000,"recompute_ms":1.8}
//! {"wall_ns":1764490000125000000,"event":"repair_pushed","node":3,"version":41}
//! ```
//!
//! Every event but `verified` and `repair_pushed` is also a line of the
//! human log ([`Event::line`]), word for word what it was before events
//! existed.

use std::io::{LineWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Something the control process did or found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `version` was active on `node` when read back after its instant.
    Verified { node: u32, version: u64 },
    /// `version` was not active on `node` after its instant (`active` was).
    Late {
        node: u32,
        version: u64,
        active: u64,
    },
    /// `node` refused `version` (the message is the dataplane's).
    Refused {
        node: u32,
        version: u64,
        message: String,
    },
    /// `node` answered something that makes no sense for the request.
    Unexpected { node: u32, answer: String },
    /// The set of links down changed (it is `links` now, smaller id first,
    /// maybe empty when they came back): routes were recomputed for the
    /// instant in force and repaired FIBs are being pushed.
    LinksDown {
        links: Vec<(u32, u32)>,
        schedule_t_ns: i64,
        recompute_ms: f64,
    },
    /// `node` took its repaired FIB (`version`, active at once).
    RepairPushed { node: u32, version: u64 },
    /// `node` did not take its repaired FIB.
    RepairNotTaken { node: u32, answer: String },
    /// With `links` down, the rest of the window was recomputed.
    RestRecomputed {
        links: Vec<(u32, u32)>,
        recompute_ms: f64,
    },
    /// With `links` down, the rest of the window could not be recomputed.
    RestNotRecomputed {
        links: Vec<(u32, u32)>,
        error: String,
    },
    /// With `links` down, routes could not be recomputed at all.
    RepairFailed {
        links: Vec<(u32, u32)>,
        error: String,
    },
    /// These dataplanes cannot be reached (`node`'s error shown); told
    /// when the set grows and every few seconds while it lasts.
    Unreachable {
        nodes: Vec<u32>,
        node: u32,
        error: String,
    },
    /// `node` answered again after being unreachable.
    Reachable { node: u32 },
    /// `node` took a schedule window (crate::windows): `serial`, `entries`
    /// instants, `bytes` of request on the control channel.
    WindowLoaded {
        node: u32,
        serial: u64,
        entries: usize,
        bytes: usize,
    },
    /// `node` already holds serial `held` >= `serial` (this window, or a
    /// later one from another controller): nothing was sent.
    WindowHeld { node: u32, serial: u64, held: u64 },
}

/// An event as written: when, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// CLOCK_REALTIME ns when the event was written.
    pub wall_ns: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// How many nodes an unreachable line names before "and N more".
const NAMED: usize = 8;

/// Links as the log writes them: ["3-4", "7-8"].
fn link_names(links: &[(u32, u32)]) -> Vec<String> {
    links.iter().map(|(a, b)| format!("{a}-{b}")).collect()
}

impl Event {
    /// The event's line in the human log (none for routine successes).
    pub fn line(&self) -> Option<String> {
        Some(match self {
            Event::Verified { .. }
            | Event::RepairPushed { .. }
            | Event::WindowLoaded { .. }
            | Event::WindowHeld { .. } => return None,
            Event::Late {
                node,
                version,
                active,
            } => format!("node {node}: version {version} not active at its instant (active {active})"),
            Event::Refused {
                node,
                version,
                message,
            } => format!("node {node}: version {version} refused: {message}"),
            Event::Unexpected { node, answer } => format!("node {node}: unexpected answer {answer}"),
            Event::LinksDown {
                links,
                schedule_t_ns,
                recompute_ms,
            } => format!(
                "links down {:?}: routes recomputed for schedule t={:.1} s in {recompute_ms:.1} ms; pushing repaired FIBs",
                link_names(links),
                *schedule_t_ns as f64 / 1e9,
            ),
            Event::RepairNotTaken { node, answer } => {
                format!("node {node}: repair not taken: {answer}")
            }
            Event::RestRecomputed {
                links,
                recompute_ms,
            } => format!(
                "links down {:?}: rest of the window recomputed in {recompute_ms:.1} ms",
                link_names(links)
            ),
            Event::RestNotRecomputed { error, .. } => {
                format!("links down, rest of the window not recomputed: {error}")
            }
            Event::RepairFailed { error, .. } => {
                format!("links down, but routes cannot be recomputed: {error}")
            }
            Event::Unreachable { nodes, node, error } => {
                let n = nodes.len();
                let mut ids: Vec<String> = nodes.iter().take(NAMED).map(u32::to_string).collect();
                if n > NAMED {
                    ids.push(format!("and {} more", n - NAMED));
                }
                let s = if n == 1 { "" } else { "s" };
                format!(
                    "{n} dataplane{s} unreachable (node{s} {}); node {node}: {error}; retrying",
                    ids.join(", ")
                )
            }
            Event::Reachable { node } => format!("node {node}: reachable again"),
        })
    }
}

/// Where records go: a file (created or truncated) or standard output
/// (`-`), a line at a time so that a reader following it sees each event
/// as it happens.
pub struct Sink(LineWriter<Box<dyn Write + Send>>);

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

impl Sink {
    /// Opens `path` (`-`: standard output).
    pub fn open(path: &Path) -> std::io::Result<Sink> {
        let out: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::fs::File::create(path)?)
        };
        Ok(Sink(LineWriter::new(out)))
    }

    /// Writes `event` as one line, stamped `wall_ns`.
    pub fn record(&mut self, event: Event, wall_ns: u64) -> std::io::Result<()> {
        let r = Record { wall_ns, event };
        serde_json::to_writer(&mut self.0, &r)?;
        self.0.write_all(b"\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_one_json_object_tagged_by_event() {
        let r = Record {
            wall_ns: 7,
            event: Event::LinksDown {
                links: vec![(3, 4)],
                schedule_t_ns: 612_000_000_000,
                recompute_ms: 1.5,
            },
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"wall_ns":7,"event":"links_down","links":[[3,4]],"schedule_t_ns":612000000000,"recompute_ms":1.5}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
        let pushed = r#"{"wall_ns":9,"event":"repair_pushed","node":3,"version":41}"#;
        assert_eq!(
            serde_json::from_str::<Record>(pushed).unwrap().event,
            Event::RepairPushed {
                node: 3,
                version: 41
            }
        );
        assert!(serde_json::from_str::<Record>(r#"{"wall_ns":9,"event":"bogus"}"#).is_err());
    }

    #[test]
    fn a_sink_writes_a_line_per_event() {
        let p = std::env::temp_dir().join(format!("om-events-{}.jsonl", std::process::id()));
        let mut sink = Sink::open(&p).unwrap();
        sink.record(Event::Reachable { node: 2 }, 5).unwrap();
        // Line-buffered: the line is in the file before the sink is dropped.
        let text = std::fs::read_to_string(&p).unwrap();
        sink.record(
            Event::Verified {
                node: 2,
                version: 1,
            },
            6,
        )
        .unwrap();
        drop(sink);
        assert_eq!(text, "{\"wall_ns\":5,\"event\":\"reachable\",\"node\":2}\n");
        let all = std::fs::read_to_string(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        let events: Vec<Event> = all
            .lines()
            .map(|l| serde_json::from_str::<Record>(l).unwrap().event)
            .collect();
        assert_eq!(
            events[1],
            Event::Verified {
                node: 2,
                version: 1
            }
        );
        let missing = Path::new("/nonexistent-dir/events.jsonl");
        assert!(Sink::open(missing).is_err());
    }

    #[test]
    fn the_human_lines_are_the_log_s() {
        let links = vec![(0, 1), (2, 3)];
        let cases = [
            (
                Event::LinksDown {
                    links: links.clone(),
                    schedule_t_ns: 1_240_000_000,
                    recompute_ms: 0.04,
                },
                r#"links down ["0-1", "2-3"]: routes recomputed for schedule t=1.2 s in 0.0 ms; pushing repaired FIBs"#,
            ),
            (
                Event::Late {
                    node: 4,
                    version: 9,
                    active: 8,
                },
                "node 4: version 9 not active at its instant (active 8)",
            ),
            (
                Event::Unreachable {
                    nodes: (0..10).collect(),
                    node: 0,
                    error: "gone".into(),
                },
                "10 dataplanes unreachable (nodes 0, 1, 2, 3, 4, 5, 6, 7, and 2 more); node 0: gone; retrying",
            ),
            (
                Event::Unreachable {
                    nodes: vec![5],
                    node: 5,
                    error: "gone".into(),
                },
                "1 dataplane unreachable (node 5); node 5: gone; retrying",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.line().as_deref(), Some(want));
        }
        assert_eq!(
            Event::Verified {
                node: 1,
                version: 2
            }
            .line(),
            None
        );
    }
}
