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
//! - the search starts at `F(X', Z, protocol, counter, key)`, F SipHash-2-4 and the counter one
//!   per table shard: RFC 6056 §3.3.3's keyed F, with the counter moved inside F. The ports a
//!   host sees say nothing about the key, and the next port of a host towards a peer cannot be
//!   told from the last one (see the DEVIATION note on [`PortKey::port_offset`]).
//!
//! The key ([`PortKey`]) is not the tables' hash seed: clients see the ports (and the pool4
//! address) they are mapped to, so whatever picks them is a PRF whose outputs an observer may
//! collect. The session tables' hash (foldhash, chosen for speed, not as a PRF) keeps a key no
//! output of this module depends on. Both come from the one configured seed (`hash_seed`), so a
//! run with a fixed seed (`nat64d translate --seed`) stays reproducible.

use super::Proto;
use siphasher::sip::SipHasher24;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// The secret of pool4 address and port selection (RFC 6056 §3.3.3 `secret_key`), 128 bits of
/// SipHash-2-4 key.
///
/// SipHash-2-4 rather than 1-3: it is the variant its authors claim as a PRF, and the one Linux
/// uses for the same job (`secure_ipv4_port_ephemeral`); it runs once per new BIB entry, never
/// per packet. The `siphasher` crate provides it with explicit keys (std's SipHash has no public
/// keyed constructor that is not deprecated).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PortKey {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for PortKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PortKey(..)")
    }
}

impl PortKey {
    /// Domain separation for [`PortKey::from_seed`]: the key words are SipHash-2-4 of these
    /// labels under a key made of the seed, so knowing the port key does not give the seed (nor
    /// the table keys made from it) short of a key recovery on SipHash.
    const LABELS: [&'static [u8]; 2] = [b"nat64d pool4 port key 0", b"nat64d pool4 port key 1"];
    const SEED_PAD: u64 = 0x706f_6f6c_342d_6b65; // "pool4-ke"

    /// The port key derived from the configured hash seed (deterministic: the same seed gives
    /// the same key, hence the same ports for the same sequence of flows).
    pub fn from_seed(seed: u64) -> PortKey {
        let kdf = SipHasher24::new_with_keys(seed, Self::SEED_PAD);
        PortKey {
            k0: kdf.hash(Self::LABELS[0]),
            k1: kdf.hash(Self::LABELS[1]),
        }
    }

    /// A key from its two words (tests, and callers with a key of their own).
    pub const fn from_words(k0: u64, k1: u64) -> PortKey {
        PortKey { k0, k1 }
    }

    /// True if either key word equals `v` (tests check the table seeds are not the port key).
    pub fn has_word(&self, v: u64) -> bool {
        self.k0 == v || self.k1 == v
    }

    #[inline]
    fn prf(&self, msg: &[u8]) -> u64 {
        SipHasher24::new_with_keys(self.k0, self.k1).hash(msg)
    }

    /// RFC 4787 REQ-2 (paired): the pool4 address index of host `x6`, a function of the host
    /// alone, in `0..n` (`n > 0`).
    #[inline]
    pub fn addr_index(&self, x6: &[u8; 16], n: usize) -> usize {
        if n <= 1 {
            return 0; // one address (the common pool): no PRF to run
        }
        let mut m = [0u8; 17];
        m[0] = 0; // domain: address pairing
        m[1..].copy_from_slice(x6);
        // Multiply-shift instead of `%`: an index in 0..n with no division.
        ((u128::from(self.prf(&m)) * n as u128) >> 64) as usize
    }

    /// The start of the port search for host X', IPv4 peer Z and protocol `p`, the `count`th
    /// binding made in its shard: RFC 6056 §3.3.3's `F(local_IP, remote_IP, remote_port,
    /// secret_key)` for a NAT64, with the counter as one more input.
    // DEVIATION(RFC 6056 §3.3.3): Algorithm 3 adds the counter to F's output, so successive
    // bindings of one host towards one peer get successive ports, and whoever sees one (the peer)
    // can predict the next. Hashing the counter with the rest keeps every start independent (as
    // in Algorithms 1 and 2). The price is Algorithm 1's: a port just released may come back
    // sooner than Algorithm 3's order would allow (chance about 1 in the range per binding); a
    // port still held never does, since pool4 hands out only free ports.
    #[inline]
    pub fn port_offset(&self, x6: &[u8; 16], z4: u32, p: Proto, count: u32) -> u32 {
        let mut m = [0u8; 26];
        m[0] = 1; // domain: port offset
        m[1..17].copy_from_slice(x6);
        m[17..21].copy_from_slice(&z4.to_be_bytes());
        m[21] = p as u8;
        m[22..].copy_from_slice(&count.to_be_bytes());
        self.prf(&m) as u32
    }
}

/// The counter of [`PortKey::port_offset`] (RFC 6056's `next_ephemeral`), one per table shard
/// and on its own cache line: a shard's
/// counter moves only under that shard's lock, so shards never contend on it.
#[derive(Debug, Default)]
#[repr(align(64))]
struct NextEphemeral(AtomicU32);

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
    /// The secret of address and port selection.
    key: PortKey,
    /// One counter per table shard.
    next: Box<[NextEphemeral]>,
}

impl Pool4 {
    /// Largest supported pool (owner bytes cost up to 192 KiB per address).
    pub const MAX_ADDRS: usize = 4096;

    /// Validates `cfg` and allocates the owner bytes, with `key` for address and port selection
    /// and a selection counter for each of `shards` table shards (at least one).
    ///
    /// # Errors
    /// See [`Pool4Error`].
    pub fn new(cfg: Pool4Config, key: PortKey, shards: usize) -> Result<Pool4, Pool4Error> {
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
            key,
            next: (0..shards.max(1))
                .map(|_| NextEphemeral::default())
                .collect(),
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

    /// Prefetches the owner byte of `(address index, p, port)`, for [`super::Nat64::prefetch`].
    #[inline]
    pub(crate) fn prefetch_owner(&self, ai: usize, p: Proto, port: u16) {
        let r = self.range(p);
        if let Some(b) = self
            .owners
            .get(ai * 3 + p as usize)
            .and_then(|o| o.get(usize::from(port.wrapping_sub(r.first))))
        {
            super::index::prefetch(b);
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

    /// Picks the pool4 transport address of a new BIB entry for host `x6`, source port (or ICMP
    /// identifier) `x`, first packet towards IPv4 peer `z4`, created in table shard `shard`:
    /// the address paired with the host, a port searched from [`PortKey::port_offset`] with the
    /// shard's counter. Returns (address index, port), or `None` when that address has no free port of
    /// `p` left. Allocates no memory.
    pub fn allocate_for(
        &self,
        p: Proto,
        x6: &[u8; 16],
        x: u16,
        z4: u32,
        shard: usize,
    ) -> Option<(usize, u16)> {
        let ai = self.key.addr_index(x6, self.sorted.len());
        let n = self.next.get(shard).or(self.next.first())?;
        let count = n.0.fetch_add(1, Ordering::Relaxed);
        let offset = self.key.port_offset(x6, z4, p, count);
        self.allocate(ai, p, x, offset, shard).map(|t| (ai, t))
    }

    /// Allocates a port of address `ai` for a new binding of source port `src_port` (or ICMP
    /// identifier), for `shard`. `offset` is the start of the search (see
    /// [`Pool4::allocate_for`]). Returns `None` when the address has no free port of `p` left.
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
        keyed_pool(addrs, tcp, PortKey::from_seed(1), 1)
    }

    fn keyed_pool(addrs: &[&str], tcp: PortRange, key: PortKey, shards: usize) -> Pool4 {
        Pool4::new(
            Pool4Config {
                addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
                tcp,
                ..Pool4Config::default()
            },
            key,
            shards,
        )
        .unwrap()
    }

    #[test]
    fn validation() {
        let e = |addrs: &[&str]| {
            Pool4::new(
                Pool4Config {
                    addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
                    ..Pool4Config::default()
                },
                PortKey::from_seed(0),
                1,
            )
            .unwrap_err()
        };
        assert_eq!(e(&[]), Pool4Error::Empty);
        assert!(matches!(
            e(&["192.0.2.1", "192.0.2.1"]),
            Pool4Error::Duplicate(_)
        ));
        assert!(matches!(e(&["224.0.0.1"]), Pool4Error::NotUnicast(_)));
        let bad = Pool4::new(
            Pool4Config {
                addrs: vec!["192.0.2.1".parse().unwrap()],
                udp: PortRange::new(10, 9),
                ..Pool4Config::default()
            },
            PortKey::from_seed(0),
            1,
        );
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

    // ---- port selection key (RFC 6056 §3.3.3) ----

    fn host(i: u32) -> [u8; 16] {
        let mut a: [u8; 16] = "2001:db8:1::"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        a[12..].copy_from_slice(&i.to_be_bytes());
        a
    }

    const Z: u32 = 0xcb00_7105; // 203.0.113.5

    /// 64 new bindings (hosts, peers, protocols and shards vary) on a pool keyed with `key`.
    fn picks(key: PortKey) -> Vec<(usize, u16)> {
        let p = keyed_pool(
            &["192.0.2.1", "192.0.2.2", "198.51.100.7"],
            PortRange::new(1, 65535),
            key,
            4,
        );
        (0..64u32)
            .map(|i| {
                let proto = [Proto::Udp, Proto::Tcp, Proto::Icmp][i as usize % 3];
                p.allocate_for(
                    proto,
                    &host(i % 9),
                    40000 + i as u16,
                    Z + i % 5,
                    i as usize % 4,
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn same_seed_same_ports() {
        let a = picks(PortKey::from_seed(0x1234_5678_9abc_def0));
        assert_eq!(a, picks(PortKey::from_seed(0x1234_5678_9abc_def0)));
    }

    #[test]
    fn different_seed_different_ports() {
        let a = picks(PortKey::from_seed(1));
        let b = picks(PortKey::from_seed(2));
        // Independent keys: on 64 draws from ~32k ports almost none coincide.
        let same = a.iter().zip(&b).filter(|(x, y)| x.1 == y.1).count();
        assert!(same <= 2, "{same} of 64 ports equal under different seeds");
        // The paired address changes too for some of the 9 hosts.
        assert!(a.iter().zip(&b).any(|(x, y)| x.0 != y.0));
    }

    #[test]
    fn port_key_is_not_a_table_key() {
        for seed in [
            0u64,
            1,
            0x1234_5678_9abc_def0,
            u64::MAX,
            0x9e37_79b9_7f4a_7c15,
        ] {
            let k = PortKey::from_seed(seed);
            assert!(!k.has_word(seed), "port key holds the seed itself");
            for shard in 0..128 {
                let t = super::super::shard_seed(seed, shard);
                assert!(!k.has_word(t), "port key = table key of shard {shard}");
            }
            // And the ports differ from those a table key would pick.
            assert_ne!(picks(k), picks(PortKey::from_words(seed, seed)));
        }
    }

    #[test]
    fn nat64_picks_with_the_key_derived_from_hash_seed() {
        use super::super::steps::{filter_and_update6, In6};
        use super::super::Nat64Config;
        use crate::pool6::Pool6;
        use crate::rfc6052::Prefix6052;
        let seed = 0x0bad_cafe_f00d_d00d;
        let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
        let mut c = Nat64Config::new(pool6, vec!["192.0.2.1".parse().unwrap()], seed);
        c.enforce_rfc_minimums = false;
        c.shards = 1;
        let nat = super::super::Nat64::new(c).unwrap();
        // The same bindings made directly on a pool with the derived key, one shard.
        let twin = keyed_pool(
            &["192.0.2.1"],
            PortRange::new(1, 65535),
            PortKey::from_seed(seed),
            1,
        );
        for i in 0..16u32 {
            let i6 = In6 {
                proto: Proto::Udp,
                x6: host(i),
                x: 5000 + i as u16,
                z4: Z,
                z: 53,
                flags: 0,
            };
            let b = filter_and_update6(&nat, crate::Timestamp(0), &i6).unwrap();
            let (_, t) = twin
                .allocate_for(Proto::Udp, &i6.x6, i6.x, i6.z4, 0)
                .unwrap();
            assert_eq!(b.t, t, "binding {i}");
        }
    }

    #[test]
    fn ports_spread_over_the_pool() {
        // 24,000 bindings of distinct hosts to a few peers on one address, high class: per
        // 1/16th of 1024..=65535 the count stays within 15 % of the mean; per address of a
        // four-address pool, within 10 %.
        let p = keyed_pool(
            &["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"],
            PortRange::new(1, 65535),
            PortKey::from_seed(42),
            8,
        );
        let mut buckets = [0u32; 16];
        let mut per_addr = [0u32; 4];
        let n = 24_000u32;
        for i in 0..n {
            let (ai, t) = p
                .allocate_for(
                    Proto::Udp,
                    &host(i),
                    40000 + (i % 2) as u16,
                    Z + i % 3,
                    i as usize % 8,
                )
                .unwrap();
            assert!(t >= 1024);
            buckets[usize::from(t - 1024) * 16 / 64512] += 1;
            per_addr[ai] += 1;
        }
        let mean = f64::from(n) / 16.0;
        for (b, c) in buckets.iter().enumerate() {
            assert!(
                (f64::from(*c) - mean).abs() < 0.15 * mean,
                "bucket {b}: {c} vs {mean}: {buckets:?}"
            );
        }
        for (a, c) in per_addr.iter().enumerate() {
            let m = f64::from(n) / 4.0;
            assert!(
                (f64::from(*c) - m).abs() < 0.10 * m,
                "address {a}: {c}: {per_addr:?}"
            );
        }
        // One host to one peer: successive bindings get distinct ports (the counter moves).
        let q = pool(&["192.0.2.1"], PortRange::new(1, 65535));
        let mut seen: Vec<u16> = (0..32)
            .map(|j| {
                q.allocate_for(Proto::Tcp, &host(1), 40000 + 2 * j, Z, 0)
                    .unwrap()
                    .1
            })
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 32);
    }
}
