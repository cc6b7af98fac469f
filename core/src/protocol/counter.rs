//! The counters of a `stats` reply by identity. [`Counter`] names every
//! counter a dataplane reports: the pipeline's ([`crate::stats::Counters`]),
//! the punt path's, the emulation's delay line's, and the order refusals
//! ([`crate::sign::Refusal`]). [`CounterValues`] holds one reply's values,
//! asked for by [`Counter`]. A counter's name ([`Counter::name`]) is used
//! only at the edges: on the wire (JSON `[name, value]` pairs, the format
//! of protocol version 1) and in what `orbitmesh-ctl stats` prints.

use crate::sign::Refusal;
use crate::stats::{DropReason, PuntReason};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One counter of a dataplane's `stats` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Frames handed to the pipeline.
    Rx,
    /// Frames given a port to leave by.
    Forwarded,
    /// Of those, frames sent to a backup (or another ECMP) next hop
    /// because the chosen port was down (fast reroute).
    BackupUsed,
    /// Frames the pipeline dropped, by reason.
    Drop(DropReason),
    /// Frames the pipeline punted, by reason.
    Punt(PuntReason),
    /// Punted frames written to the host's TAP interface.
    PuntToHost,
    /// Punted frames dropped because the punt queue was full.
    PuntQueueFull,
    /// Punted frames the TAP interface did not take.
    PuntWriteFailed,
    /// Frames the emulation's delay line dropped on a link marked gone.
    EmuLinkGoneDrops,
    /// Orders (schedules, clears, changes by hand) refused, by kind.
    Order(Refusal),
}

impl Counter {
    pub const COUNT: usize = 3 + DropReason::COUNT + PuntReason::COUNT + 4 + Refusal::ALL.len();
    /// Every counter, in the order a `stats` reply lists them.
    pub const ALL: [Counter; Counter::COUNT] = all();

    /// The counter's name on the wire and in `orbitmesh-ctl stats`.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Rx => "rx",
            Counter::Forwarded => "forwarded",
            Counter::BackupUsed => "backup_used",
            Counter::Drop(r) => r.name(),
            Counter::Punt(r) => r.name(),
            Counter::PuntToHost => "punt_to_host",
            Counter::PuntQueueFull => "punt_queue_full",
            Counter::PuntWriteFailed => "punt_write_failed",
            Counter::EmuLinkGoneDrops => "emu_link_gone_drops",
            Counter::Order(r) => r.name(),
        }
    }

    /// The counter of this name, if this build knows it.
    pub fn from_name(name: &str) -> Option<Counter> {
        Counter::ALL.into_iter().find(|c| c.name() == name)
    }
}

const fn all() -> [Counter; Counter::COUNT] {
    let mut a = [Counter::Rx; Counter::COUNT];
    a[1] = Counter::Forwarded;
    a[2] = Counter::BackupUsed;
    let mut i = 3;
    let mut j = 0;
    while j < DropReason::COUNT {
        a[i + j] = Counter::Drop(DropReason::ALL[j]);
        j += 1;
    }
    i += j;
    j = 0;
    while j < PuntReason::COUNT {
        a[i + j] = Counter::Punt(PuntReason::ALL[j]);
        j += 1;
    }
    i += j;
    a[i] = Counter::PuntToHost;
    a[i + 1] = Counter::PuntQueueFull;
    a[i + 2] = Counter::PuntWriteFailed;
    a[i + 3] = Counter::EmuLinkGoneDrops;
    i += 4;
    j = 0;
    while j < Refusal::ALL.len() {
        a[i + j] = Counter::Order(Refusal::ALL[j]);
        j += 1;
    }
    a
}

/// The counters of one `stats` reply. On the wire, a list of `[name,
/// value]` pairs; counters this build does not know (those of a newer
/// dataplane) are kept as sent, so they are still shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterValues {
    known: Vec<(Counter, u64)>,
    unknown: Vec<(String, u64)>,
}

impl CounterValues {
    /// The counter's value; 0 if the reply did not have it (an older
    /// dataplane's).
    pub fn get(&self, c: Counter) -> u64 {
        self.known
            .iter()
            .find(|(k, _)| *k == c)
            .map_or(0, |&(_, v)| v)
    }

    /// The counters this build knows, in the reply's order.
    pub fn known(&self) -> &[(Counter, u64)] {
        &self.known
    }

    /// The counters this build does not know, as sent.
    pub fn unknown(&self) -> &[(String, u64)] {
        &self.unknown
    }

    /// An unknown counter's value by its name (0 if absent): for showing
    /// a newer dataplane's counters, rates included.
    pub fn unknown_value(&self, name: &str) -> u64 {
        self.unknown
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// Every counter as (name, value), known ones first: what is printed.
    pub fn named(&self) -> impl Iterator<Item = (&str, u64)> {
        let known = self.known.iter().map(|&(c, v)| (c.name(), v));
        known.chain(self.unknown.iter().map(|(n, v)| (n.as_str(), *v)))
    }
}

impl FromIterator<(Counter, u64)> for CounterValues {
    fn from_iter<I: IntoIterator<Item = (Counter, u64)>>(it: I) -> CounterValues {
        CounterValues {
            known: it.into_iter().collect(),
            unknown: Vec::new(),
        }
    }
}

impl Serialize for CounterValues {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.named())
    }
}

impl<'de> Deserialize<'de> for CounterValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CounterValues, D::Error> {
        let mut v = CounterValues::default();
        for (name, value) in Vec::<(String, u64)>::deserialize(d)? {
            match Counter::from_name(&name) {
                Some(c) => v.known.push((c, value)),
                None => v.unknown.push((name, value)),
            }
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_its_own_name_and_is_found_by_it() {
        let names: std::collections::HashSet<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Counter::COUNT);
        for c in Counter::ALL {
            assert_eq!(Counter::from_name(c.name()), Some(c));
        }
        assert_eq!(Counter::from_name("bogus"), None);
        // Every pipeline counter (stats::Counters, one cell each) is named.
        let pipeline = Counter::ALL.iter().filter(|k| {
            matches!(
                k,
                Counter::Rx
                    | Counter::Forwarded
                    | Counter::BackupUsed
                    | Counter::Drop(_)
                    | Counter::Punt(_)
            )
        });
        assert_eq!(pipeline.count(), 3 + DropReason::COUNT + PuntReason::COUNT);
        assert_eq!(Counter::ALL[0], Counter::Rx);
        assert_eq!(
            Counter::ALL[Counter::COUNT - 1],
            Counter::Order(Refusal::Replayed)
        );
    }

    #[test]
    fn the_wire_format_is_the_list_of_name_value_pairs() {
        let v: CounterValues = [
            (Counter::Rx, 10),
            (Counter::Drop(DropReason::Mtu), 2),
            (Counter::Order(Refusal::Unsigned), 1),
        ]
        .into_iter()
        .collect();
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(
            json,
            r#"[["rx",10],["mtu_exceeded",2],["order_unsigned",1]]"#
        );
        assert_eq!(serde_json::from_str::<CounterValues>(&json).unwrap(), v);
        assert_eq!(v.get(Counter::Drop(DropReason::Mtu)), 2);
        assert_eq!(v.get(Counter::Forwarded), 0, "absent: 0");
        // A newer dataplane's counter is kept, by name, and sent on as is.
        let newer = r#"[["rx",10],["warp_drive",7]]"#;
        let n: CounterValues = serde_json::from_str(newer).unwrap();
        assert_eq!((n.get(Counter::Rx), n.unknown_value("warp_drive")), (10, 7));
        assert_eq!(serde_json::to_string(&n).unwrap(), newer);
    }
}
