//! orbitmesh's IPv4 LPM on the exact routes and addresses given to DPDK's
//! `dpdk-test-fib`, so the two lookups can be compared in one run
//! (scripts/bench-dpdk-fib.sh).
//!
//! `lpm-compare gen ROUTES IPS [N_ROUTES] [N_IPS]` writes a BGP-like table
//! (`a.b.c.d/len nexthop` per line) and addresses inside it (one per line);
//! `lpm-compare run ROUTES IPS` builds the table and prints nanoseconds per
//! lookup (batches of 32, like rte_fib_lookup_bulk).

use anyhow::{bail, Context, Result};
use bench::workload::bgp_like_prefixes;
use orbitmesh_core::fib::lpm::Lpm4;
use orbitmesh_core::fib::Prefix;
use orbitmesh_core::outln;
use rand::{Rng, SeedableRng};
use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

fn main() -> Result<()> {
    if bench::version_asked("lpm-compare") {
        return Ok(());
    }
    orbitmesh_core::cli::on_broken_pipe(dataplane::sys::signal::die_of_sigpipe);
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("gen") if a.len() >= 4 => {
            let n: usize = a
                .get(4)
                .map_or(Ok(1_000_000), |s| s.parse())
                .context("N_ROUTES")?;
            let m: usize = a
                .get(5)
                .map_or(Ok(1_000_000), |s| s.parse())
                .context("N_IPS")?;
            let p = bgp_like_prefixes(n, 2);
            let mut w = std::io::BufWriter::new(
                std::fs::File::create(&a[2]).with_context(|| a[2].clone())?,
            );
            for (i, &(pfx, len)) in p.iter().enumerate() {
                writeln!(w, "{}/{} {}", Ipv4Addr::from_bits(pfx), len, i % 64)?;
            }
            let mut r = rand::rngs::StdRng::seed_from_u64(9);
            let mut w = std::io::BufWriter::new(
                std::fs::File::create(&a[3]).with_context(|| a[3].clone())?,
            );
            for _ in 0..m {
                let (pfx, len) = p[r.gen_range(0..p.len())];
                writeln!(
                    w,
                    "{}",
                    Ipv4Addr::from_bits(pfx | (r.gen::<u32>() & (u32::MAX >> len)))
                )?;
            }
            Ok(())
        }
        Some("run") if a.len() >= 4 => {
            let mut routes = Vec::new();
            for (n, line) in
                std::io::BufReader::new(std::fs::File::open(&a[2]).with_context(|| a[2].clone())?)
                    .lines()
                    .enumerate()
            {
                let line = line?;
                let (pfx, nh) = line.split_once(' ').with_context(|| {
                    format!("{}:{}: expected 'prefix/len nexthop'", a[2], n + 1)
                })?;
                let at = || format!("{}:{}: {pfx:?}", a[2], n + 1);
                let p: Prefix = pfx.parse().with_context(at)?;
                let IpAddr::V4(ip) = p.addr() else {
                    bail!("{}: not an IPv4 prefix", at());
                };
                routes.push((
                    ip.to_bits(),
                    p.length(),
                    nh.trim().parse::<u32>()? % 1_000_000,
                ));
            }
            let ips: Vec<u32> = std::io::BufReader::new(std::fs::File::open(&a[3])?)
                .lines()
                .map(|l| Ok(l?.trim().parse::<Ipv4Addr>()?.to_bits()))
                .collect::<Result<_>>()?;
            let t0 = Instant::now();
            let t = Lpm4::build(&routes);
            let build = t0.elapsed();
            let mut best = f64::MAX;
            let mut sum = 0u64;
            for _ in 0..5 {
                let t0 = Instant::now();
                for chunk in ips.chunks(32) {
                    let mut out = [0u32; 32];
                    for (o, &ip) in out.iter_mut().zip(chunk) {
                        *o = t.lookup(ip).unwrap_or(u32::MAX);
                    }
                    sum = sum.wrapping_add(std::hint::black_box(out)[0] as u64);
                }
                best = best.min(t0.elapsed().as_nanos() as f64 / ips.len() as f64);
            }
            outln!(
                "routes {} ips {} build_ms {:.1} lookup_ns {:.2} (checksum {})",
                routes.len(),
                ips.len(),
                build.as_secs_f64() * 1e3,
                best,
                sum
            );
            Ok(())
        }
        _ => bail!(
            "usage: lpm-compare gen ROUTES IPS [N_ROUTES] [N_IPS] | lpm-compare run ROUTES IPS"
        ),
    }
}
