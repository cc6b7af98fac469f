//! The harness's own traffic: an AF_XDP generator and sink on the
//! dataplane's own I/O (`dataplane::ring::PacketIo` over `XskIo`; the sink
//! with the dataplane's XDP steering program), run by one thread pinned to
//! the generator's core.
//!
//! - [`frame`]: RFC 2544 UDP test frames, MPLS (RFC 3032), IPv4, IPv6
//!   (RFC 8200) or a mix of the three, the stamp (trial, sequence, TX time),
//!   and the per-flow plan (kind, label, egress port).
//! - [`flows`]: per-flow loss, duplicates, reordering (RFC 4737),
//!   misforwarding, and latency (HDR histogram) at the sink.
//! - [`engine`]: the trial loop: rate-controlled batches out, everything
//!   received accounted, then a drain period.

pub mod engine;
pub mod flows;
pub mod frame;
