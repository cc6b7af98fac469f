//! Per-flow accounting at the sink: loss, duplicates, reordering (RFC 4737's
//! "reordered": an arrival whose sequence number is below the next expected
//! one), misforwarding (a frame on the wrong egress port or carrying the
//! wrong label, RFC 3032), and one-way latency in an HDR histogram.
//!
//! Every sequence number a flow may use in a trial has one bit, allocated
//! before the trial starts: an arrival sets its bit (a bit already set is a
//! duplicate), so loss is counted from the bits left clear, independently of
//! the arrival counter, and `sent = received + lost` is a real check.
//! Recording an arrival allocates nothing.

use super::frame::{Arrival, FlowPlan};
use hdrhistogram::Histogram;

/// Counters of one trial at the sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkCounts {
    /// Distinct test frames received (correct or misforwarded).
    pub received: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Arrived on another egress port than the plan's.
    pub wrong_port: u64,
    /// Arrived with another top label than the plan's (or labelled when it
    /// should not be), and not the second FIB's label either.
    pub wrong_label: u64,
    /// Of `received`, those carrying the swap test's second FIB's label
    /// (`FlowPlan::alt_label`; correct, counted to tell the FIBs apart).
    pub alt_label: u64,
    /// Test frames of an earlier trial (arrived after its drain time).
    pub stale: u64,
    /// Frames that are not test frames (ARP, IPv6, ...), or out of the plan.
    pub foreign: u64,
}

impl SinkCounts {
    pub fn misforwarded(&self) -> u64 {
        self.wrong_port + self.wrong_label
    }
}

/// The sink's state for one trial.
#[derive(Debug)]
pub struct FlowTable {
    plan: FlowPlan,
    trial: u16,
    /// Sequence numbers per flow covered by `seen`.
    cap: u32,
    seen: Vec<u64>,
    next: Vec<u32>,
    pub counts: SinkCounts,
    pub latency: Histogram<u64>,
}

impl FlowTable {
    /// Room for `per_flow` sequence numbers in each flow of `plan`.
    pub fn new(plan: FlowPlan, trial: u16, per_flow: u32) -> FlowTable {
        let cap = per_flow.div_ceil(64).max(1) * 64;
        FlowTable {
            plan,
            trial,
            cap,
            seen: vec![0; plan.flows as usize * cap as usize / 64],
            next: vec![0; plan.flows as usize],
            counts: SinkCounts::default(),
            latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
        }
    }

    pub fn capacity_per_flow(&self) -> u32 {
        self.cap
    }

    /// Accounts one frame that arrived on egress port `port` at `now_ns`.
    #[inline]
    pub fn record(&mut self, port: u8, a: Option<Arrival>, now_ns: u64) {
        let Some(a) = a else {
            self.counts.foreign += 1;
            return;
        };
        if a.trial != self.trial {
            self.counts.stale += 1;
            return;
        }
        if a.flow >= self.plan.flows || a.seq >= self.cap {
            self.counts.foreign += 1;
            return;
        }
        let f = a.flow as usize;
        let bit = f * self.cap as usize + a.seq as usize;
        let (w, m) = (bit / 64, 1u64 << (bit % 64));
        if self.seen[w] & m != 0 {
            self.counts.duplicates += 1;
            return;
        }
        self.seen[w] |= m;
        self.counts.received += 1;
        if a.seq < self.next[f] {
            self.counts.reordered += 1;
        } else {
            self.next[f] = a.seq + 1;
        }
        if port != self.plan.expected_port(a.flow) {
            self.counts.wrong_port += 1;
        }
        if a.label != self.plan.expected_label(a.flow) {
            if a.label.is_some() && a.label == self.plan.alt_label(a.flow) {
                self.counts.alt_label += 1;
            } else {
                self.counts.wrong_label += 1;
            }
        }
        self.latency
            .saturating_record(now_ns.saturating_sub(a.tx_ns).max(1));
    }

    /// Frames lost: for each flow, the clear bits below what was sent in it.
    pub fn lost(&self, sent_per_flow: &[u32]) -> u64 {
        let words = self.cap as usize / 64;
        let mut lost = 0u64;
        for (f, &sent) in sent_per_flow.iter().enumerate() {
            let row = &self.seen[f * words..(f + 1) * words];
            let sent = sent.min(self.cap) as usize;
            let full = sent / 64;
            let ones: u64 = row[..full].iter().map(|w| w.count_ones() as u64).sum();
            let tail = if sent & 63 == 0 {
                0
            } else {
                (row[full] & ((1u64 << (sent % 64)) - 1)).count_ones() as u64
            };
            lost += sent as u64 - ones - tail;
        }
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::frame::Profile;

    fn arr(flow: u16, seq: u32, label: Option<u32>) -> Option<Arrival> {
        Some(Arrival {
            flow,
            trial: 9,
            seq,
            tx_ns: 100,
            label,
        })
    }

    #[test]
    fn loss_duplicates_reordering_misforwarding() {
        let plan = FlowPlan::new(2, 1000, 2, Profile::Mpls);
        let mut t = FlowTable::new(plan, 9, 100);
        let l0 = plan.expected_label(0);
        let l1 = plan.expected_label(1);
        for s in [0, 1, 3, 2, 2, 5] {
            t.record(0, arr(0, s, l0), 1100);
        }
        t.record(0, arr(1, 0, l1), 1100); // flow 1 belongs on port 1
        t.record(1, arr(1, 1, l0), 1100); // wrong label
        t.record(1, arr(1, 2, l1), 1100);
        t.record(
            1,
            Some(Arrival {
                trial: 8,
                ..arr(1, 3, l1).unwrap()
            }),
            1,
        );
        t.record(1, None, 1);
        let c = t.counts;
        assert_eq!(c.received, 8);
        assert_eq!(c.duplicates, 1);
        assert_eq!(c.reordered, 1);
        assert_eq!(c.wrong_port, 1);
        assert_eq!(c.wrong_label, 1);
        assert_eq!(c.stale, 1);
        assert_eq!(c.foreign, 1);
        // flow 0 sent 0..=6 (4 and 6 lost), flow 1 sent 0..=3 (3 lost)
        let sent = [7u32, 4];
        assert_eq!(t.lost(&sent), 3);
        assert_eq!(
            sent.iter().map(|&s| s as u64).sum::<u64>(),
            c.received + t.lost(&sent)
        );
        assert_eq!(t.latency.len(), 8);
        assert_eq!(t.latency.max(), 1000);
    }

    #[test]
    fn second_fib_label_is_counted_apart_and_only_when_expected() {
        let one = FlowPlan::new(2, 1000, 2, Profile::Mpls);
        let two = one.with_alt_labels(1);
        let l0 = one.expected_label(0).unwrap();
        for (plan, alt, wrong) in [(one, 0, 2), (two, 1, 1)] {
            let mut t = FlowTable::new(plan, 9, 100);
            t.record(0, arr(0, 0, Some(l0)), 200);
            t.record(0, arr(0, 1, Some(l0 + 1)), 200);
            t.record(0, arr(0, 2, Some(l0 + 2)), 200);
            let c = t.counts;
            assert_eq!((c.received, c.alt_label, c.wrong_label), (3, alt, wrong));
            assert_eq!(c.misforwarded(), wrong);
        }
    }

    #[test]
    fn loss_counts_across_word_boundaries() {
        let plan = FlowPlan::new(1, 10, 1, Profile::Ipv4);
        let mut t = FlowTable::new(plan, 9, 200);
        for s in (0..200).filter(|s| s % 3 != 0) {
            t.record(0, arr(0, s, None), 100);
        }
        assert_eq!(t.lost(&[200]), 67);
        assert_eq!(t.lost(&[130]), 44);
        assert_eq!(t.counts.received, 133);
    }
}
