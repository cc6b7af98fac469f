//! FIB schedules: one node's FIBs for the instants ahead, so that the node
//! switches at each predicted instant on its own, with no controller present
//! (time-variant routing, RFC 9657: the topology is known in advance, so the
//! forwarding state for every instant can be installed ahead of time).
//!
//! A [`Schedule`] is an ordered list of entries, each an activation instant
//! (ns since the Unix epoch, CLOCK_REALTIME: see [`crate::time`]) and a FIB:
//! the first in full, each later one in full or as a [`FibDelta`] against
//! the entry before it. Satellite FIBs change a few labels per instant, so
//! deltas are what keeps an hours-long window small.
//!
//! The schedule is refused whole (and whatever runs stays) unless: it names
//! the node it is given to, has 1 to [`MAX_ENTRIES`] entries, instants and
//! FIB versions strictly grow, the first entry is full, and every delta
//! applies (it removes only what the entry before it has). Whether each FIB
//! builds for the node's ports is the runtime's check, walking the entries
//! with [`Schedule::walk`], which keeps one expanded FIB at a time, so a
//! window of thousands of entries never holds thousands of full FIBs.
//!
//! A schedule carries a `serial`: uploads of the same schedule (same serial,
//! same content) are idempotent, a lower serial is refused as older, so a
//! restarted or a second, redundant controller converges on one state.

use crate::fib::spec::{
    check_version, FibSpec, GroupId, GroupSpec, LabelSpec, NextHopId, NextHopSpec, PortSpec,
    Prefix, RouteSpec, TtlSpec,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Most entries one schedule may hold (a day of changes every 2 s).
pub const MAX_ENTRIES: usize = 50_000;

/// One node's FIBs for the instants ahead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The node (its configured name) this schedule is for.
    pub node: String,
    /// Grows with every new schedule for this node (see the module docs).
    pub serial: u64,
    pub entries: Vec<Entry>,
}

/// A FIB and the instant it takes effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Activation instant, ns since the Unix epoch (CLOCK_REALTIME).
    pub at_ns: u64,
    #[serde(flatten)]
    pub fib: EntryFib,
}

/// An entry's FIB: in full, or as the changes to the entry before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryFib {
    Full(FibSpec),
    Delta(FibDelta),
}

/// The changes from one FIB to the next: entries set (added or replaced,
/// keyed by next-hop id, group id, label or prefix) and entries removed;
/// ports, TTL models and hash seed are kept unless given. Because next
/// hops and groups are keyed by their stable ids (references inside the
/// entries are ids too), adding or removing one touches nothing else.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FibDelta {
    /// The resulting FIB's version.
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PortSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ingress: Option<TtlSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_egress: Option<TtlSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_seed: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_hops: Vec<NextHopSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_next_hops: Vec<NextHopId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_groups: Vec<GroupId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<LabelSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_labels: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_routes: Vec<Prefix>,
}

/// Why a schedule was refused; `entry` is the index of the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the schedule has no entries")]
    Empty,
    #[error("the schedule has {0} entries; at most {MAX_ENTRIES} are accepted")]
    TooLong(usize),
    #[error("entry 0 is a delta; the first entry must be a full FIB")]
    FirstIsDelta,
    #[error("entry {entry}: activation at {at_ns} ns is not after the entry before it ({prev_ns} ns); instants must strictly grow")]
    OutOfOrder {
        entry: usize,
        at_ns: u64,
        prev_ns: u64,
    },
    #[error("entry {entry}: FIB version {version} is not above the entry before it ({prev}); versions must strictly grow")]
    VersionNotGrowing {
        entry: usize,
        version: u64,
        prev: u64,
    },
    #[error("entry {entry}: {problem}")]
    BadEntry { entry: usize, problem: String },
    #[error("entry {entry}: the delta removes {what}, which the entry before it does not have")]
    RemovesMissing { entry: usize, what: String },
}

impl Schedule {
    /// Checks what can be checked without building FIBs (see the module
    /// docs) by walking every entry.
    pub fn check(&self) -> Result<(), ScheduleError> {
        self.walk(|_, _, _| Ok(()))
    }

    /// Expands the entries in order, calling `f(index, at_ns, fib)` with
    /// each full FIB; stops at the first error (the schedule's or `f`'s).
    /// One expanded FIB is held at a time.
    pub fn walk(
        &self,
        mut f: impl FnMut(usize, u64, &FibSpec) -> Result<(), ScheduleError>,
    ) -> Result<(), ScheduleError> {
        self.check_shape()?;
        let mut cur = None;
        for (i, e) in self.entries.iter().enumerate() {
            let next = self.expand_entry(i, cur.take())?;
            f(i, e.at_ns, &next)?;
            cur = Some(next);
        }
        Ok(())
    }

    /// The full FIB of entry `index` (expanding the deltas before it).
    pub fn fib_at(&self, index: usize) -> Result<FibSpec, ScheduleError> {
        self.check_shape()?;
        if index >= self.entries.len() {
            return Err(ScheduleError::BadEntry {
                entry: index,
                problem: format!("no such entry (the schedule has {})", self.entries.len()),
            });
        }
        let mut cur = None;
        for i in 0..=index {
            cur = Some(self.expand_entry(i, cur.take())?);
        }
        Ok(cur.expect("index < len"))
    }

    /// Entry `i`'s full FIB, given entry `i - 1`'s (`None` for the first).
    pub fn expand_entry(&self, i: usize, base: Option<FibSpec>) -> Result<FibSpec, ScheduleError> {
        match (&self.entries[i].fib, base) {
            (EntryFib::Full(spec), _) => Ok(spec.clone()),
            (EntryFib::Delta(d), Some(base)) => d
                .apply(base)
                .map_err(|what| ScheduleError::RemovesMissing { entry: i, what }),
            (EntryFib::Delta(_), None) => Err(ScheduleError::FirstIsDelta),
        }
    }

    /// The index of the entry in force at `now_ns`: the last one whose
    /// instant has come; `None` before the first.
    pub fn in_force(&self, now_ns: u64) -> Option<usize> {
        self.entries
            .partition_point(|e| e.at_ns <= now_ns)
            .checked_sub(1)
    }

    /// The FIB version of each entry, in order.
    pub fn versions(&self) -> Vec<u64> {
        self.entries
            .iter()
            .map(|e| match &e.fib {
                EntryFib::Full(f) => f.version,
                EntryFib::Delta(d) => d.version,
            })
            .collect()
    }

    /// A schedule of these full FIBs, each after the first encoded as a
    /// delta against the one before it.
    pub fn delta_encoded(node: &str, serial: u64, fibs: &[(u64, FibSpec)]) -> Schedule {
        let entries = fibs
            .iter()
            .enumerate()
            .map(|(i, (at_ns, f))| Entry {
                at_ns: *at_ns,
                fib: match i {
                    0 => EntryFib::Full(f.clone()),
                    _ => EntryFib::Delta(FibDelta::between(&fibs[i - 1].1, f)),
                },
            })
            .collect();
        Schedule {
            node: node.to_string(),
            serial,
            entries,
        }
    }

    fn check_shape(&self) -> Result<(), ScheduleError> {
        if self.entries.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if self.entries.len() > MAX_ENTRIES {
            return Err(ScheduleError::TooLong(self.entries.len()));
        }
        if matches!(self.entries[0].fib, EntryFib::Delta(_)) {
            return Err(ScheduleError::FirstIsDelta);
        }
        let versions = self.versions();
        for (i, v) in versions.iter().enumerate() {
            check_version(*v).map_err(|problem| ScheduleError::BadEntry { entry: i, problem })?;
            if i == 0 {
                continue;
            }
            let (prev, cur) = (&self.entries[i - 1], &self.entries[i]);
            if cur.at_ns <= prev.at_ns {
                return Err(ScheduleError::OutOfOrder {
                    entry: i,
                    at_ns: cur.at_ns,
                    prev_ns: prev.at_ns,
                });
            }
            if *v <= versions[i - 1] {
                return Err(ScheduleError::VersionNotGrowing {
                    entry: i,
                    version: *v,
                    prev: versions[i - 1],
                });
            }
        }
        Ok(())
    }
}

impl FibDelta {
    /// The changes that turn `a` into `b`.
    pub fn between(a: &FibSpec, b: &FibSpec) -> FibDelta {
        let (next_hops, removed_next_hops) = diff(&a.next_hops, &b.next_hops, |n| n.id);
        let (groups, removed_groups) = diff(&a.groups, &b.groups, |g| g.id);
        let (labels, removed_labels) = diff(&a.labels, &b.labels, |l| l.label);
        let (routes, removed_routes) = diff(&a.routes, &b.routes, |r| r.prefix);
        FibDelta {
            version: b.version,
            ports: (a.ports != b.ports).then(|| b.ports.clone()),
            ttl_ingress: (a.ttl_ingress != b.ttl_ingress).then_some(b.ttl_ingress),
            ttl_egress: (a.ttl_egress != b.ttl_egress).then_some(b.ttl_egress),
            hash_seed: (a.hash_seed != b.hash_seed).then_some(b.hash_seed),
            next_hops,
            removed_next_hops,
            groups,
            removed_groups,
            labels,
            removed_labels,
            routes,
            removed_routes,
        }
    }

    /// `base` with these changes; `Err(what)` names a removal of something
    /// `base` does not have. Entries keep `base`'s order, new ones follow
    /// in the delta's order.
    pub fn apply(&self, mut base: FibSpec) -> Result<FibSpec, String> {
        base.version = self.version;
        if let Some(p) = &self.ports {
            base.ports = p.clone();
        }
        base.ttl_ingress = self.ttl_ingress.unwrap_or(base.ttl_ingress);
        base.ttl_egress = self.ttl_egress.unwrap_or(base.ttl_egress);
        base.hash_seed = self.hash_seed.unwrap_or(base.hash_seed);
        patch(
            &mut base.next_hops,
            &self.next_hops,
            &self.removed_next_hops,
            |n| n.id,
            "next hop",
        )?;
        patch(
            &mut base.groups,
            &self.groups,
            &self.removed_groups,
            |g| g.id,
            "group",
        )?;
        patch(
            &mut base.labels,
            &self.labels,
            &self.removed_labels,
            |l| l.label,
            "label",
        )?;
        patch(
            &mut base.routes,
            &self.routes,
            &self.removed_routes,
            |r| r.prefix,
            "route",
        )?;
        Ok(base)
    }
}

/// What `b` sets (new or changed, keyed by `key`) and removes against `a`.
fn diff<T: Clone + PartialEq, K: Ord + Clone>(
    a: &[T],
    b: &[T],
    key: impl Fn(&T) -> K,
) -> (Vec<T>, Vec<K>) {
    let old: BTreeMap<K, &T> = a.iter().map(|x| (key(x), x)).collect();
    let new: BTreeSet<K> = b.iter().map(&key).collect();
    let set = b
        .iter()
        .filter(|x| old.get(&key(x)) != Some(x))
        .cloned()
        .collect();
    let removed = old.keys().filter(|k| !new.contains(*k)).cloned().collect();
    (set, removed)
}

/// Applies `set` and `removed` to `items` (see [`FibDelta::apply`]).
fn patch<T: Clone, K: Ord + Clone + std::fmt::Display>(
    items: &mut Vec<T>,
    set: &[T],
    removed: &[K],
    key: impl Fn(&T) -> K,
    what: &str,
) -> Result<(), String> {
    let index: BTreeMap<K, usize> = items.iter().enumerate().map(|(i, x)| (key(x), i)).collect();
    let mut gone = vec![false; items.len()];
    for k in removed {
        match index.get(k) {
            Some(&i) if !gone[i] => gone[i] = true,
            _ => return Err(format!("{what} {k}")),
        }
    }
    let mut keep = gone.iter().map(|g| !g);
    items.retain(|_| keep.next().unwrap_or(true));
    let index: BTreeMap<K, usize> = items.iter().enumerate().map(|(i, x)| (key(x), i)).collect();
    for x in set {
        match index.get(&key(x)) {
            Some(&i) => items[i] = x.clone(),
            None => items.push(x.clone()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fib(version: u64, labels: &[(u32, &str)]) -> FibSpec {
        let mut t = format!(
            "version = {version}\n[[ports]]\nname = \"isl0\"\n[[ports]]\nname = \"isl1\"\n\
             [[next_hops]]\nname = \"a\"\nport = \"isl0\"\ndst_mac = \"02:00:00:00:00:01\"\nsrc_mac = \"02:00:00:00:00:02\"\n\
             [[next_hops]]\nname = \"b\"\nport = \"isl1\"\ndst_mac = \"02:00:00:00:00:03\"\nsrc_mac = \"02:00:00:00:00:04\"\n"
        );
        for (l, nh) in labels {
            t += &format!("[[labels]]\nlabel = {l}\naction = \"swap\"\nnext_hop = \"{nh}\"\n");
        }
        FibSpec::parse(&t).unwrap()
    }

    fn fibs() -> Vec<(u64, FibSpec)> {
        vec![
            (1_000, fib(1, &[(16001, "a"), (16002, "a"), (16003, "b")])),
            (2_000, fib(2, &[(16001, "b"), (16002, "a"), (16003, "b")])),
            (3_000, fib(3, &[(16001, "b"), (16003, "b"), (16004, "a")])),
        ]
    }

    #[test]
    fn deltas_carry_only_what_changed_and_expand_back_exactly() {
        let s = Schedule::delta_encoded("n0", 1, &fibs());
        let EntryFib::Delta(d) = &s.entries[1].fib else {
            panic!("a delta")
        };
        assert_eq!(d.labels.len(), 1, "one label changed: {d:?}");
        assert!(d.removed_labels.is_empty() && d.next_hops.is_empty() && d.ports.is_none());
        let EntryFib::Delta(d) = &s.entries[2].fib else {
            panic!("a delta")
        };
        assert_eq!(
            (d.labels.len(), d.removed_labels.as_slice()),
            (1, &[16002][..])
        );
        let mut seen = Vec::new();
        s.walk(|i, at, f| {
            seen.push((at, f.clone()));
            assert_eq!(f, &fibs()[i].1, "entry {i}");
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, fibs());
        assert_eq!(s.fib_at(2).unwrap(), fibs()[2].1);
        // Through JSON and back, as it travels and is stored.
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&j).unwrap(), s);
    }

    #[test]
    fn the_entry_in_force_is_the_last_whose_instant_has_come() {
        let s = Schedule::delta_encoded("n0", 1, &fibs());
        assert_eq!(s.in_force(999), None);
        assert_eq!(s.in_force(1_000), Some(0));
        assert_eq!(s.in_force(2_999), Some(1));
        assert_eq!(s.in_force(u64::MAX), Some(2));
    }

    #[test]
    fn a_malformed_schedule_is_refused_naming_the_entry() {
        let good = Schedule::delta_encoded("n0", 1, &fibs());
        good.check().unwrap();
        let mut s = good.clone();
        s.entries.clear();
        assert_eq!(s.check(), Err(ScheduleError::Empty));
        let mut s = good.clone();
        s.entries[2].at_ns = 2_000;
        assert!(matches!(
            s.check(),
            Err(ScheduleError::OutOfOrder { entry: 2, .. })
        ));
        let mut s = good.clone();
        s.entries.swap(1, 2);
        assert!(matches!(
            s.check(),
            Err(ScheduleError::OutOfOrder { entry: 2, .. })
        ));
        let mut s = good.clone();
        s.entries.remove(0);
        assert_eq!(s.check(), Err(ScheduleError::FirstIsDelta));
        let mut s = good.clone();
        if let EntryFib::Delta(d) = &mut s.entries[2].fib {
            d.version = 2;
        }
        assert!(matches!(
            s.check(),
            Err(ScheduleError::VersionNotGrowing {
                entry: 2,
                version: 2,
                prev: 2
            })
        ));
        let mut s = good.clone();
        if let EntryFib::Delta(d) = &mut s.entries[1].fib {
            d.removed_labels.push(17000);
        }
        let e = s.check().unwrap_err();
        assert!(
            matches!(e, ScheduleError::RemovesMissing { entry: 1, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("label 17000"), "{e}");
        let mut s = good;
        s.entries = vec![s.entries[0].clone(); MAX_ENTRIES + 1];
        assert_eq!(s.check(), Err(ScheduleError::TooLong(MAX_ENTRIES + 1)));
    }

    #[test]
    fn a_delta_that_removes_and_adds_next_hops_keeps_every_other_id() {
        // a = 1, b = 2; the next FIB drops a and adds c (id 3), and the
        // label that went via a goes via c.
        let a = fib(1, &[(16001, "a"), (16002, "b")]);
        let mut b = a.clone();
        b.version = 2;
        b.next_hops.remove(0);
        let mut c = b.next_hops[0].clone();
        (c.id, c.name) = (NextHopId(3), "c".into());
        b.next_hops.push(c);
        b.labels[0].next_hop = Some(NextHopId(3));
        let d = FibDelta::between(&a, &b);
        assert_eq!(d.removed_next_hops, [NextHopId(1)]);
        assert_eq!(d.next_hops.len(), 1);
        assert_eq!(d.next_hops[0].id, NextHopId(3));
        // b kept its id, so the label via b is not in the delta.
        let set: Vec<u32> = d.labels.iter().map(|l| l.label).collect();
        assert_eq!(set, [16001]);
        let after = d.apply(a.clone()).unwrap();
        assert_eq!(after, b);
        assert_eq!(after.next_hop_named("b"), Some(NextHopId(2)));
        assert_eq!(after.labels[1].next_hop, Some(NextHopId(2)));
        let f = after.build().unwrap();
        assert!(f.ilm(16001).is_some() && f.ilm(16002).is_some());
        // Ids travel as ids.
        let j = serde_json::to_string(&d).unwrap();
        assert!(j.contains("\"removed_next_hops\":[1]"), "{j}");
        assert_eq!(serde_json::from_str::<FibDelta>(&j).unwrap(), d);
        // Removing an id the FIB before does not have is refused.
        let mut bad = d;
        bad.removed_next_hops.push(NextHopId(9));
        assert_eq!(bad.apply(a).unwrap_err(), "next hop 9");
    }
}
