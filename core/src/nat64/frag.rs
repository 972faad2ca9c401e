//! RFC 6146 §3.4: fragments. A stateful translator needs the ports of every fragment, but only the
//! first fragment carries them.
//!
//! This store translates fragments as they arrive (the §3.4 alternative to queueing them): when a
//! first fragment (offset 0, more fragments) is translated, its outgoing addresses are stored
//! under `(source, destination, protocol, identification)` of the incoming packet; the following
//! fragments are translated with the same addresses. The store is bounded in entries and time
//! (FRAGMENT_MIN = 2 s by default, configurable), expires in FIFO order at O(expired) cost, and
//! refuses new first fragments when full ([`DropReason::FragmentStoreFull`]), so the whole
//! datagram is dropped rather than half of it.
//!
//! A non-first fragment that arrives before its first fragment ("subsequent fragments may arrive
//! before the first", §3.4) is held in [`super::held`] and translated when the first fragment
//! is ([`super::Nat64::take_released`]).

use crate::verdict::DropReason;
use crate::Timestamp;
use foldhash::fast::FixedState;
use hashbrown::HashMap;
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::Mutex;

/// Fragment store limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragConfig {
    /// Most datagrams tracked at once (default 4096).
    pub max_entries: usize,
    /// How long after its first fragment the rest of a datagram is accepted (default 2000 ms,
    /// RFC 6146 §4 FRAGMENT_MIN; the RFC requires at least that).
    pub timeout_ms: u64,
    /// Fragmented ICMP messages, and fragmented IPv4 UDP datagrams with a zero checksum,
    /// reassembled at once (default 16; 64 KiB each, allocated at start). See `nat64::reasm`.
    pub max_reassembly: usize,
    /// Share of `max_entries` one source may hold (default 512): one IPv6 subscriber prefix
    /// (`subscriber_prefix_len`) or one IPv4 source address. Beyond it that source's new first
    /// fragments are refused ([`DropReason::FragmentSourceLimit`]), so one host's incomplete
    /// datagrams cannot starve everyone else's fragmented traffic.
    pub max_entries_per_source: usize,
    /// Share of `max_reassembly` slots (reassembly memory) one source may hold (default 4).
    pub max_reassembly_per_source: usize,
    /// Non-first TCP/UDP fragments held at once until their first fragment comes (default
    /// 1024; 0 turns holding off: such fragments are dropped as
    /// [`DropReason::FragmentFirstMissing`]). See `nat64::held`.
    pub max_held: usize,
    /// Packet memory for them, allocated at start (default 2 MiB, in 256-byte blocks).
    pub max_held_bytes: usize,
    /// Share of `max_held` one source may hold (default 64), and the same share of
    /// `max_held_bytes` (at least one 64 KiB fragment's worth).
    pub max_held_per_source: usize,
}

impl Default for FragConfig {
    fn default() -> Self {
        FragConfig {
            max_entries: 4096,
            timeout_ms: 2000,
            max_reassembly: 16,
            max_entries_per_source: 512,
            max_reassembly_per_source: 4,
            max_held: 1024,
            max_held_bytes: 2 << 20,
            max_held_per_source: 64,
        }
    }
}

/// Identifies the fragments of one incoming datagram. IPv4 addresses use the first 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub id: u32,
    pub proto: u8,
    pub v6: bool,
}

/// The outgoing addresses of the datagram (IPv4 addresses in the first 4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FragOut {
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

/// Who a fragment's datagram is charged to: an IPv6 subscriber prefix or an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Source {
    v6: bool,
    addr: u128,
}

impl FragKey {
    /// The source charged for this datagram (`mask`: the subscriber prefix mask).
    #[inline]
    pub(crate) fn source(&self, mask: u128) -> Source {
        if self.v6 {
            Source {
                v6: true,
                addr: u128::from_be_bytes(self.src) & mask,
            }
        } else {
            Source {
                v6: false,
                addr: u128::from(u32::from_be_bytes([
                    self.src[0],
                    self.src[1],
                    self.src[2],
                    self.src[3],
                ])),
            }
        }
    }
}

struct Inner {
    map: HashMap<FragKey, (FragOut, u64), FixedState>,
    queue: VecDeque<(FragKey, u64)>,
    /// Queue records per source (each record is charged until it expires, so the map entries of
    /// a source are bounded by its records). Keyed by a 32-bit keyed hash of the [`Source`]
    /// (8-byte buckets, part of the memory per session budget): two sources that collide share
    /// one counter, which only makes the limit stricter for them, and the secret seed keeps
    /// anyone from aiming a collision.
    per_source: HashMap<u32, u32, FixedState>,
    hs: FixedState,
}

/// The bounded, time-limited store.
pub(crate) struct FragStore {
    cfg: FragConfig,
    mask: u128,
    inner: Mutex<Inner>,
}

impl FragStore {
    /// A store for `cfg`; `mask` is the subscriber prefix mask for IPv6 sources.
    pub fn new(cfg: FragConfig, mask: u128, seed: u64) -> FragStore {
        let cap = cfg.max_entries;
        FragStore {
            cfg,
            mask,
            inner: Mutex::new(Inner {
                map: HashMap::with_capacity_and_hasher(cap, FixedState::with_seed(seed)),
                queue: VecDeque::with_capacity(cap * 2),
                // At most one counter per queue record: never grows on the packet path.
                per_source: HashMap::with_capacity_and_hasher(
                    cap * 2,
                    FixedState::with_seed(seed ^ 0x5851_f42d_4c95_7f2d),
                ),
                hs: FixedState::with_seed(seed.rotate_left(23) ^ 0x2545_f491_4f6c_dd1d),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent in a way that matters
        // more than losing fragments, so a poisoned lock is used as is.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers the outgoing addresses of a first fragment.
    ///
    /// # Errors
    /// [`DropReason::FragmentSourceLimit`] when the packet's source holds its share,
    /// [`DropReason::FragmentStoreFull`] when the store is at its limit.
    pub fn insert(&self, key: FragKey, out: FragOut, now: Timestamp) -> Result<(), DropReason> {
        let mut g = self.lock();
        self.expire_locked(&mut g, now.0);
        let deadline = now.0.saturating_add(self.cfg.timeout_ms);
        let src = g.hs.hash_one(key.source(self.mask)) as u32;
        let used = g.per_source.get(&src).copied().unwrap_or(0);
        if used as usize >= self.cfg.max_entries_per_source {
            return Err(DropReason::FragmentSourceLimit);
        }
        let present = g.map.contains_key(&key);
        if (!present && g.map.len() >= self.cfg.max_entries)
            || g.queue.len() >= self.cfg.max_entries * 2
        {
            return Err(DropReason::FragmentStoreFull);
        }
        g.map.insert(key, (out, deadline));
        g.queue.push_back((key, deadline));
        *g.per_source.entry(src).or_insert(0) += 1;
        Ok(())
    }

    /// The outgoing addresses for a non-first fragment.
    pub fn lookup(&self, key: &FragKey, now: Timestamp) -> Option<FragOut> {
        let g = self.lock();
        match g.map.get(key) {
            Some(&(out, deadline)) if deadline > now.0 => Some(out),
            _ => None,
        }
    }

    /// Drops entries older than the timeout.
    pub fn expire(&self, now: Timestamp) {
        self.expire_locked(&mut self.lock(), now.0);
    }

    fn expire_locked(&self, g: &mut Inner, now: u64) {
        while let Some(&(k, d)) = g.queue.front() {
            if d > now {
                break;
            }
            g.queue.pop_front();
            let src = g.hs.hash_one(k.source(self.mask)) as u32;
            if let Some(c) = g.per_source.get_mut(&src) {
                *c -= 1;
                if *c == 0 {
                    g.per_source.remove(&src);
                }
            }
            if g.map.get(&k).is_some_and(|&(_, dd)| dd == d) {
                g.map.remove(&k);
            }
        }
    }

    /// Datagrams tracked.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: [1; 16],
            dst: [2; 16],
            id,
            proto: 17,
            v6: true,
        }
    }
    const OUT: FragOut = FragOut {
        src: [3; 16],
        dst: [4; 16],
    };

    #[test]
    fn bounded_and_time_limited() {
        let s = FragStore::new(
            FragConfig {
                max_entries: 2,
                timeout_ms: 2000,
                max_reassembly: 0,
                max_entries_per_source: 3,
                max_reassembly_per_source: 0,
                ..FragConfig::default()
            },
            u128::MAX,
            7,
        );
        let t0 = Timestamp(10_000);
        s.insert(key(1), OUT, t0).unwrap();
        s.insert(key(2), OUT, t0.plus_ms(500)).unwrap();
        assert_eq!(
            s.insert(key(3), OUT, t0.plus_ms(600)),
            Err(DropReason::FragmentStoreFull)
        );
        assert_eq!(s.lookup(&key(1), t0.plus_ms(1999)), Some(OUT));
        assert_eq!(s.lookup(&key(1), t0.plus_ms(2000)), None);
        assert_eq!(s.lookup(&key(9), t0), None);
        // Key 1 expires, making room.
        s.insert(key(3), OUT, t0.plus_ms(2000)).unwrap();
        assert_eq!(s.len(), 2);
        s.expire(t0.plus_ms(10_000));
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn one_source_holds_at_most_its_share() {
        let s = FragStore::new(
            FragConfig {
                max_entries: 100,
                max_entries_per_source: 10,
                ..FragConfig::default()
            },
            u128::MAX << 64,
            3,
        );
        let t0 = Timestamp(0);
        // One host rotating addresses inside its /64 floods first fragments.
        let flood = |i: u32| FragKey {
            src: (0x2001_0db8_0001_0000_0000_0000_0000_0000u128 | u128::from(i)).to_be_bytes(),
            ..key(i)
        };
        let mut refused = 0;
        for i in 0..1000 {
            match s.insert(flood(i), OUT, t0) {
                Ok(()) => {}
                Err(DropReason::FragmentSourceLimit) => refused += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(refused, 990);
        // Others (another /64, an IPv4 source) still get their datagrams through.
        for i in 0..50 {
            let mut other = key(i);
            other.src[7] = i as u8; // 50 other /64s
            s.insert(other, OUT, t0).unwrap();
            let v4 = FragKey {
                src: [198, 51, 100, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                v6: false,
                ..key(i)
            };
            if i < 10 {
                s.insert(v4, OUT, t0).unwrap();
            } else {
                assert_eq!(s.insert(v4, OUT, t0), Err(DropReason::FragmentSourceLimit));
            }
        }
        // The share comes back when the flood's entries expire.
        s.expire(t0.plus_ms(2000));
        s.insert(flood(5000), OUT, t0.plus_ms(2000)).unwrap();
    }

    #[test]
    fn reinserted_key_keeps_newer_deadline() {
        let s = FragStore::new(FragConfig::default(), u128::MAX, 1);
        let t0 = Timestamp(0);
        s.insert(key(1), OUT, t0).unwrap();
        s.insert(key(1), OUT, t0.plus_ms(1500)).unwrap();
        // The first queue record expires, the entry (renewed) stays.
        s.expire(t0.plus_ms(2100));
        assert_eq!(s.lookup(&key(1), t0.plus_ms(2100)), Some(OUT));
        s.expire(t0.plus_ms(3500));
        assert_eq!(s.len(), 0);
    }
}
