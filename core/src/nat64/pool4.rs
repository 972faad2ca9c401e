//! pool4: the IPv4 transport addresses a NAT64 hands out (RFC 6146 §3.5.1.1, §3.5.2.3, §3.5.3).
//!
//! Each pool4 address has a port range per protocol (TCP, UDP) and an ICMP identifier range. The
//! pool keeps one owner byte per (address, protocol, port): 0 when free, otherwise the table shard
//! that holds the BIB entry. The owner byte is both the allocation bitmap and the way an IPv4
//! packet finds the shard of its BIB entry without a global lock (see [`super`]): one relaxed
//! atomic load. Memory: one byte per port of each range, 192 KiB per address with full ranges.
//!
//! Allocation (RFC 6146 §3.5.1.1, RFC 4787 REQ-3, RFC 6056):
//! - the address is "paired" (RFC 4787 REQ-2): chosen by a keyed hash of the IPv6 host address,
//!   so every binding of one host uses the same IPv4 address, without per-host state;
//! - the port stays in the source port's range class, 0–1023 or 1024–65535, and keeps its parity
//!   when a port of that class and parity is free (falling back to the other parity, then to the
//!   other class: the RFC's "MAY");
//! - the search starts at an offset drawn from a keyed hash of the host, its port and a counter
//!   (RFC 6056 §3.3.3's double-hash idea), so ports are not predictable from outside.

use super::Proto;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU8, Ordering};

/// An inclusive range of ports or ICMP identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port of the range.
    pub first: u16,
    /// Last port of the range (inclusive).
    pub last: u16,
}

impl PortRange {
    /// `first..=last`.
    pub const fn new(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }

    /// True if `p` lies in the range.
    #[inline]
    pub fn contains(&self, p: u16) -> bool {
        p >= self.first && p <= self.last
    }

    /// Number of ports in the range.
    pub fn len(&self) -> usize {
        usize::from(self.last - self.first) + 1
    }

    /// Never true for a validated range (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }
}

/// pool4 as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool4Config {
    /// The IPv4 addresses owned by the translator (RFC 6146 §3: "one or more unicast IPv4
    /// addresses"). The daemon routes them to its TUN device; nothing else may use them.
    pub addrs: Vec<Ipv4Addr>,
    /// TCP ports handed out (default 1–65535).
    pub tcp: PortRange,
    /// UDP ports handed out (default 1–65535).
    pub udp: PortRange,
    /// ICMP query identifiers handed out (default 0–65535).
    pub icmp: PortRange,
}

impl Default for Pool4Config {
    fn default() -> Self {
        Pool4Config {
            addrs: Vec::new(),
            tcp: PortRange::new(1, 65535),
            udp: PortRange::new(1, 65535),
            icmp: PortRange::new(0, 65535),
        }
    }
}

/// Configuration errors of pool4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pool4Error {
    /// No address.
    #[error("pool4 needs at least one IPv4 address")]
    Empty,
    /// More addresses than [`Pool4::MAX_ADDRS`].
    #[error("pool4 has {0} addresses, at most {max} are supported", max = Pool4::MAX_ADDRS)]
    TooMany(usize),
    /// An address appears twice.
    #[error("pool4 address {0} appears twice")]
    Duplicate(Ipv4Addr),
    /// Multicast, broadcast, unspecified or loopback address.
    #[error("pool4 address {0} is not a unicast address")]
    NotUnicast(Ipv4Addr),
    /// `first > last`.
    #[error("pool4 {0} range {1}-{2} is empty")]
    BadRange(&'static str, u16, u16),
}

/// The validated pool with its port owner bytes.
#[derive(Debug)]
pub struct Pool4 {
    cfg: Pool4Config,
    /// Addresses as sorted `u32`s; the index into this is the "address index".
    sorted: Vec<u32>,
    /// Owner bytes: for address index `a` and protocol `p`, `owners[a * 3 + p]`.
    owners: Vec<Box<[AtomicU8]>>,
}

impl Pool4 {
    /// Largest supported pool (owner bytes cost up to 192 KiB per address).
    pub const MAX_ADDRS: usize = 4096;

    /// Validates `cfg` and allocates the owner bytes.
    ///
    /// # Errors
    /// See [`Pool4Error`].
    pub fn new(cfg: Pool4Config) -> Result<Pool4, Pool4Error> {
        if cfg.addrs.is_empty() {
            return Err(Pool4Error::Empty);
        }
        if cfg.addrs.len() > Self::MAX_ADDRS {
            return Err(Pool4Error::TooMany(cfg.addrs.len()));
        }
        for (name, r) in [("tcp", cfg.tcp), ("udp", cfg.udp), ("icmp", cfg.icmp)] {
            if r.first > r.last {
                return Err(Pool4Error::BadRange(name, r.first, r.last));
            }
        }
        let mut sorted: Vec<u32> = Vec::with_capacity(cfg.addrs.len());
        for a in &cfg.addrs {
            if a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback() {
                return Err(Pool4Error::NotUnicast(*a));
            }
            sorted.push(u32::from(*a));
        }
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Pool4Error::Duplicate(Ipv4Addr::from(w[0])));
        }
        let mut owners = Vec::with_capacity(sorted.len() * 3);
        for _ in &sorted {
            for p in Proto::ALL {
                let n = Self::range_of(&cfg, p).len();
                owners.push((0..n).map(|_| AtomicU8::new(0)).collect());
            }
        }
        Ok(Pool4 {
            cfg,
            sorted,
            owners,
        })
    }

    fn range_of(cfg: &Pool4Config, p: Proto) -> PortRange {
        match p {
            Proto::Tcp => cfg.tcp,
            Proto::Udp => cfg.udp,
            Proto::Icmp => cfg.icmp,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Pool4Config {
        &self.cfg
    }

    /// The port range of `p`.
    pub fn range(&self, p: Proto) -> PortRange {
        Self::range_of(&self.cfg, p)
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Never true for a validated pool.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The address with index `i` (addresses are indexed in ascending order).
    pub fn addr(&self, i: usize) -> Option<Ipv4Addr> {
        self.sorted.get(i).map(|&a| Ipv4Addr::from(a))
    }

    /// The index of `a` if it is a pool4 address (RFC 6146 §3.5: IPv4 packets are processed only
    /// when their destination belongs to pool4).
    #[inline]
    pub fn index_of(&self, a: u32) -> Option<usize> {
        // Most addresses asked about (every IPv4 peer, for hairpinning) lie outside the pool.
        match (self.sorted.first(), self.sorted.last()) {
            (Some(&lo), Some(&hi)) if a >= lo && a <= hi => self.sorted.binary_search(&a).ok(),
            _ => None,
        }
    }

    /// True if `a` is a pool4 address.
    #[inline]
    pub fn contains(&self, a: u32) -> bool {
        self.index_of(a).is_some()
    }

    #[inline]
    fn owners(&self, ai: usize, p: Proto) -> &[AtomicU8] {
        &self.owners[ai * 3 + p as usize]
    }

    /// Ports of `p` allocated on the address with index `ai` (a scan of its owner bytes, at
    /// most 64 KiB: for metrics, never on the packet path).
    pub fn ports_in_use(&self, ai: usize, p: Proto) -> usize {
        self.owners.get(ai * 3 + p as usize).map_or(0, |o| {
            o.iter().filter(|b| b.load(Ordering::Relaxed) != 0).count()
        })
    }

    /// The shard that owns `(address index, p, port)`, if the port is allocated. Ports outside
    /// the range are never owned here (static entries outside it are found by the caller).
    #[inline]
    pub fn owner(&self, ai: usize, p: Proto, port: u16) -> Option<usize> {
        let r = self.range(p);
        if !r.contains(port) {
            return None;
        }
        match self.owners(ai, p)[usize::from(port - r.first)].load(Ordering::Relaxed) {
            0 => None,
            v => Some(usize::from(v - 1)),
        }
    }

    /// Claims a specific port for `shard` (static BIB entries). False if taken or out of range.
    pub fn claim(&self, ai: usize, p: Proto, port: u16, shard: usize) -> bool {
        let r = self.range(p);
        if !r.contains(port) {
            return false;
        }
        self.try_claim(ai, p, usize::from(port - r.first), shard)
    }

    #[inline]
    fn try_claim(&self, ai: usize, p: Proto, off: usize, shard: usize) -> bool {
        let tag = (shard + 1) as u8;
        self.owners(ai, p)[off]
            .compare_exchange(0, tag, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Frees a port (the dynamic BIB entry holding it was removed).
    pub fn release(&self, ai: usize, p: Proto, port: u16) {
        let r = self.range(p);
        if r.contains(port) {
            self.owners(ai, p)[usize::from(port - r.first)].store(0, Ordering::Relaxed);
        }
    }

    /// Allocates a port of address `ai` for a new binding of source port `src_port` (or ICMP
    /// identifier), for `shard`. `offset` is the unpredictable start (RFC 6056). Returns `None`
    /// when the address has no free port of `p` left.
    pub fn allocate(
        &self,
        ai: usize,
        p: Proto,
        src_port: u16,
        offset: u32,
        shard: usize,
    ) -> Option<u16> {
        let r = self.range(p);
        if p == Proto::Icmp {
            // RFC 6146 §3.5.3: "any available value".
            return self.scan(ai, p, r, r.first, r.last, offset, None, shard);
        }
        // RFC 6146 §3.5.1.1: keep the class 0-1023 / 1024-65535 and the parity.
        let (lo, hi) = if src_port < 1024 {
            (0, 1023)
        } else {
            (1024, 65535)
        };
        let parity = Some((src_port & 1) as u8);
        let (clo, chi) = (lo.max(r.first), hi.min(r.last));
        if clo <= chi {
            if let Some(t) = self.scan(ai, p, r, clo, chi, offset, parity, shard) {
                return Some(t);
            }
            if let Some(t) = self.scan(ai, p, r, clo, chi, offset, None, shard) {
                return Some(t);
            }
        }
        // The RFC's MAY: a port of another class.
        self.scan(ai, p, r, r.first, r.last, offset, None, shard)
    }

    /// Scans `lo..=hi` (inside `r`) from `offset`, claiming the first free port with `parity`.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        ai: usize,
        p: Proto,
        r: PortRange,
        lo: u16,
        hi: u16,
        offset: u32,
        parity: Option<u8>,
        shard: usize,
    ) -> Option<u16> {
        let len = u32::from(hi - lo) + 1;
        let own = self.owners(ai, p);
        let mut i = offset % len;
        for _ in 0..len {
            let port = lo + i as u16;
            if parity.is_none_or(|par| (port & 1) as u8 == par) {
                let off = usize::from(port - r.first);
                if own[off].load(Ordering::Relaxed) == 0 && self.try_claim(ai, p, off, shard) {
                    return Some(port);
                }
            }
            i += 1;
            if i == len {
                i = 0;
            }
        }
        None
    }

    /// Number of allocated ports of `p` on address `ai` (for statistics; walks the range).
    pub fn used(&self, ai: usize, p: Proto) -> usize {
        self.owners(ai, p)
            .iter()
            .filter(|o| o.load(Ordering::Relaxed) != 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(addrs: &[&str], tcp: PortRange) -> Pool4 {
        Pool4::new(Pool4Config {
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            tcp,
            ..Pool4Config::default()
        })
        .unwrap()
    }

    #[test]
    fn validation() {
        let e = |addrs: &[&str]| {
            Pool4::new(Pool4Config {
                addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
                ..Pool4Config::default()
            })
            .unwrap_err()
        };
        assert_eq!(e(&[]), Pool4Error::Empty);
        assert!(matches!(
            e(&["192.0.2.1", "192.0.2.1"]),
            Pool4Error::Duplicate(_)
        ));
        assert!(matches!(e(&["224.0.0.1"]), Pool4Error::NotUnicast(_)));
        let bad = Pool4::new(Pool4Config {
            addrs: vec!["192.0.2.1".parse().unwrap()],
            udp: PortRange::new(10, 9),
            ..Pool4Config::default()
        });
        assert!(matches!(bad, Err(Pool4Error::BadRange("udp", 10, 9))));
    }

    #[test]
    fn index_and_owner() {
        let p = pool(&["198.51.100.9", "192.0.2.1"], PortRange::new(1, 65535));
        let a = u32::from("192.0.2.1".parse::<Ipv4Addr>().unwrap());
        assert_eq!(p.index_of(a), Some(0));
        assert_eq!(p.addr(1), Some("198.51.100.9".parse().unwrap()));
        assert!(!p.contains(a + 1));
        assert_eq!(p.owner(0, Proto::Tcp, 80), None);
        assert!(p.claim(0, Proto::Tcp, 80, 5));
        assert!(!p.claim(0, Proto::Tcp, 80, 6));
        assert_eq!(p.owner(0, Proto::Tcp, 80), Some(5));
        assert_eq!(p.ports_in_use(0, Proto::Tcp), 1);
        assert_eq!(p.ports_in_use(0, Proto::Udp), 0);
        assert_eq!(p.ports_in_use(1, Proto::Tcp), 0);
        // Other protocols have their own port space (RFC 6146 §3.5.1.1 last bullet).
        assert_eq!(p.owner(0, Proto::Udp, 80), None);
        p.release(0, Proto::Tcp, 80);
        assert_eq!(p.owner(0, Proto::Tcp, 80), None);
        assert_eq!(p.ports_in_use(0, Proto::Tcp), 0);
    }

    #[test]
    fn keeps_class_and_parity() {
        let p = pool(&["192.0.2.1"], PortRange::new(1, 65535));
        for (i, src) in [(0u32, 22u16), (7, 1023), (99, 40000), (12345, 40001)] {
            let t = p
                .allocate(0, Proto::Tcp, src, i.wrapping_mul(2654435761), 0)
                .unwrap();
            assert_eq!(t < 1024, src < 1024, "class of {src} -> {t}");
            assert_eq!(t & 1, src & 1, "parity of {src} -> {t}");
        }
    }

    #[test]
    fn falls_back_to_other_parity_then_class() {
        // Low class 1020..=1023 (odd 1021, 1023), high class 1024..=1027.
        let p = pool(&["192.0.2.1"], PortRange::new(1020, 1027));
        let got: Vec<u16> = (0..8u32)
            .map(|i| {
                p.allocate(0, Proto::Tcp, 21, i.wrapping_mul(7919), 0)
                    .unwrap()
            })
            .collect();
        let mut first2 = got[..2].to_vec();
        first2.sort_unstable();
        assert_eq!(first2, [1021, 1023], "{got:?}");
        let mut next2 = got[2..4].to_vec();
        next2.sort_unstable();
        assert_eq!(next2, [1020, 1022], "{got:?}");
        assert!(got[4..].iter().all(|&t| t >= 1024), "{got:?}");
        let mut all = got.clone();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 8);
        assert_eq!(p.allocate(0, Proto::Tcp, 21, 0, 0), None);
        assert_eq!(p.used(0, Proto::Tcp), 8);
    }

    #[test]
    fn start_offset_spreads_ports() {
        let p = pool(&["192.0.2.1"], PortRange::new(1, 65535));
        let ports: Vec<u16> = (0..8u32)
            .map(|i| {
                p.allocate(0, Proto::Udp, 50000, i.wrapping_mul(0x9e37_79b9), 0)
                    .unwrap()
            })
            .collect();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 8);
        // Not a sequential run.
        assert!(ports.windows(2).any(|w| w[1].abs_diff(w[0]) > 2));
    }
}
