//! Loopback ports for the servers under test, chosen outside the kernel's ephemeral range.
//!
//! A server is restarted on its old port after SIGKILL. A port from the ephemeral range
//! (what binding port 0 hands out) may meanwhile become the local port of any outgoing
//! connection on the machine — a scraper's, a test client's — and the restarted server then
//! fails with "Address already in use". The kernel never gives a port below the range to a
//! connection by itself; only an explicit bind takes it, and binding here checks for that.
//! This module picks such ports; it never starts or stops a process.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

const RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";
/// Ports below this are left to well-known and registered services (and exporters' 9xxx).
const LOWEST: u16 = 10_000;
/// Ports tried before falling back to port 0.
const ATTEMPTS: usize = 200;

/// `ip_local_port_range`'s two numbers (`"32768\t60999\n"`), lowest first.
pub fn parse_range(text: &str) -> Option<(u16, u16)> {
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    let (a, b) = (it.next()?.ok()?, it.next()?.ok()?);
    if it.next().is_some() {
        return None;
    }
    Some((a.min(b), a.max(b)))
}

/// Up to `ATTEMPTS` ports at or above `LOWEST` outside `range` (inclusive bounds), in a
/// wrapping order that starts at `seed`'s place, so two benchmarks started together try
/// different ports first.
pub fn candidates(range: (u16, u16), seed: u64) -> impl Iterator<Item = u16> {
    let (lo, hi) = range;
    let below = u32::from(lo.max(LOWEST)) - u32::from(LOWEST);
    let above_start = u32::from(hi.max(LOWEST - 1)) + 1;
    let above = 65_536 - above_start;
    let n = below + above;
    let start = if n == 0 {
        0
    } else {
        (seed % u64::from(n)) as u32
    };
    (0..n.min(ATTEMPTS as u32)).map(move |i| {
        let k = (start + i) % n;
        let port = if k < below {
            u32::from(LOWEST) + k
        } else {
            above_start + (k - below)
        };
        port as u16
    })
}

/// A loopback address no process holds now and no outgoing connection can take later:
/// bound and released (another process could still bind it in between, which a benchmark
/// on a private machine accepts). Port 0's pick when the range cannot be read or no port
/// outside it is free.
pub fn free_addr() -> std::io::Result<SocketAddr> {
    let range = std::fs::read_to_string(RANGE_FILE)
        .ok()
        .and_then(|t| parse_range(&t));
    if let Some(range) = range {
        let seed = u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        for port in candidates(range, crate::rng::mix(seed)) {
            if let Ok(addr) =
                TcpListener::bind((Ipv4Addr::LOCALHOST, port)).and_then(|l| l.local_addr())
            {
                return Ok(addr);
            }
        }
    }
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_proc_file_parses() {
        assert_eq!(parse_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_range("1024 65535"), Some((1024, 65535)));
        assert_eq!(parse_range("60999 32768"), Some((32768, 60999)));
        assert_eq!(parse_range("32768"), None);
        assert_eq!(parse_range("a b"), None);
        assert_eq!(parse_range("1 2 3"), None);
        assert_eq!(parse_range("70000 80000"), None);
    }

    #[test]
    fn a_range_covering_every_usable_port_leaves_none() {
        assert_eq!(candidates((1024, 65535), 7).count(), 0);
        assert_eq!(candidates((LOWEST, 65535), 7).count(), 0);
    }

    #[test]
    fn ports_above_the_range_are_used_when_below_is_short() {
        let all: Vec<u16> = candidates((LOWEST + 2, 65530), 0).collect();
        assert_eq!(all, [LOWEST, LOWEST + 1, 65531, 65532, 65533, 65534, 65535]);
        // The order wraps from the seed's place.
        let from3: Vec<u16> = candidates((LOWEST + 2, 65530), 3).collect();
        assert_eq!(from3[0], 65532);
        assert_eq!(from3.len(), 7);
        assert_eq!(from3[6], 65531);
    }

    #[test]
    fn the_address_found_is_outside_this_machines_range() {
        let addr = free_addr().unwrap();
        assert!(addr.ip().is_loopback());
        if let Some((lo, hi)) = std::fs::read_to_string(RANGE_FILE)
            .ok()
            .and_then(|t| parse_range(&t))
        {
            if lo > LOWEST + ATTEMPTS as u16 {
                assert!(!(lo..=hi).contains(&addr.port()), "{addr}");
            }
        }
    }

    proptest! {
        #[test]
        fn candidates_are_distinct_bounded_and_outside_the_range(
            a in 0u16.., b in 0u16.., seed in any::<u64>(),
        ) {
            let (lo, hi) = (a.min(b), a.max(b));
            let ports: Vec<u16> = candidates((lo, hi), seed).collect();
            prop_assert!(ports.len() <= ATTEMPTS);
            let mut seen = std::collections::HashSet::new();
            for &p in &ports {
                prop_assert!(p >= LOWEST, "{}", p);
                prop_assert!(!(lo..=hi).contains(&p), "{} in {}..={}", p, lo, hi);
                prop_assert!(seen.insert(p), "{} twice", p);
            }
            // As many as there are, up to the budget.
            let usable = (u32::from(LOWEST)..=65_535)
                .filter(|&p| !(u32::from(lo)..=u32::from(hi)).contains(&p))
                .count();
            prop_assert_eq!(ports.len(), usable.min(ATTEMPTS));
        }
    }
}
