//! Per-client-prefix rate limit: a token bucket for each IPv4 /`v4_len` or IPv6 /`v6_len` client
//! prefix. Pure: the caller passes `now` in milliseconds. The table is bounded; when it is full,
//! idle (refilled) buckets are dropped first, and if none is idle the table starts over, so a
//! flood of spoofed sources costs a bounded amount of memory.

use super::acl::normalize;
use std::collections::HashMap;
use std::net::IpAddr;

/// Rate-limit settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Sustained queries per second per prefix; 0 disables the limit.
    pub qps: u32,
    /// Bucket depth (queries that may arrive at once).
    pub burst: u32,
    /// IPv4 client prefix length the limit is kept for.
    pub v4_len: u8,
    /// IPv6 client prefix length the limit is kept for.
    pub v6_len: u8,
    /// Most prefixes tracked at once.
    pub max_entries: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens times 1000.
    milli: u64,
    last_ms: u64,
}

/// The client prefix `client` is counted under (IPv4-mapped addresses as IPv4). Callers that
/// shard limiters pick the shard from it, so one prefix always meets the same bucket.
pub fn prefix_key(cfg: &RateLimitConfig, client: IpAddr) -> u128 {
    match normalize(client) {
        IpAddr::V4(a) => {
            let l = u32::from(cfg.v4_len.min(32));
            let m = if l == 0 { 0 } else { u32::MAX << (32 - l) };
            (1u128 << 127) | u128::from(u32::from(a) & m)
        }
        IpAddr::V6(a) => {
            let l = u32::from(cfg.v6_len.clamp(1, 127));
            u128::from(a) & (u128::MAX << (128 - l))
        }
    }
}

/// The limiter.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    cfg: RateLimitConfig,
    table: HashMap<u128, Bucket>,
}

impl RateLimiter {
    /// A limiter with `cfg`.
    pub fn new(cfg: RateLimitConfig) -> Self {
        RateLimiter {
            cfg,
            table: HashMap::new(),
        }
    }

    /// See [`prefix_key`].
    pub fn key(&self, client: IpAddr) -> u128 {
        prefix_key(&self.cfg, client)
    }

    /// Takes a token for `client` at `now_ms`; false if its prefix is over the limit.
    pub fn check(&mut self, client: IpAddr, now_ms: u64) -> bool {
        if self.cfg.qps == 0 {
            return true;
        }
        let key = self.key(client);
        let cap = u64::from(self.cfg.burst.max(1)) * 1000;
        let rate = u64::from(self.cfg.qps);
        if !self.table.contains_key(&key) && self.table.len() >= self.cfg.max_entries.max(1) {
            self.table
                .retain(|_, b| b.milli + now_ms.saturating_sub(b.last_ms) * rate < cap);
            if self.table.len() >= self.cfg.max_entries.max(1) {
                self.table.clear();
            }
        }
        let b = self.table.entry(key).or_insert(Bucket {
            milli: cap,
            last_ms: now_ms,
        });
        let elapsed = now_ms.saturating_sub(b.last_ms);
        b.milli = (b.milli + elapsed * rate).min(cap);
        b.last_ms = now_ms.max(b.last_ms);
        if b.milli >= 1000 {
            b.milli -= 1000;
            true
        } else {
            false
        }
    }

    /// Prefixes currently tracked.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True if no prefix is tracked.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(qps: u32, burst: u32, max: usize) -> RateLimitConfig {
        RateLimitConfig {
            qps,
            burst,
            v4_len: 24,
            v6_len: 56,
            max_entries: max,
        }
    }

    #[test]
    fn bucket_per_prefix() {
        let mut r = RateLimiter::new(cfg(10, 3, 100));
        let c1: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let c1b: IpAddr = "2001:db8:0:2::7".parse().unwrap(); // same /56
        let c2: IpAddr = "2001:db8:1::1".parse().unwrap();
        assert!(r.check(c1, 0));
        assert!(r.check(c1b, 0));
        assert!(r.check(c1, 0));
        assert!(!r.check(c1b, 0), "burst of 3 used up by the /56");
        assert!(r.check(c2, 0), "another prefix has its own bucket");
        assert!(!r.check(c1, 50), "half a token after 50 ms at 10 qps");
        assert!(r.check(c1, 100));
        // IPv4-mapped clients share the IPv4 /24 bucket.
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.99".parse().unwrap();
        for _ in 0..3 {
            assert!(r.check(v4, 0));
        }
        assert!(!r.check(mapped, 0));
    }

    #[test]
    fn table_is_bounded_and_zero_disables() {
        let mut r = RateLimiter::new(cfg(1, 1, 4));
        for i in 0..100u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(i << 8));
            assert!(r.check(a, 0));
            assert!(r.len() <= 4);
        }
        let mut off = RateLimiter::new(cfg(0, 0, 1));
        for _ in 0..1000 {
            assert!(off.check("::1".parse().unwrap(), 0));
        }
        assert!(off.is_empty());
    }
}
