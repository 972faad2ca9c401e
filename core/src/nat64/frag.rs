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
//! DEVIATION(RFC 6146 §3.4): a non-first fragment that arrives before its first fragment is
//! dropped ([`DropReason::FragmentFirstMissing`]) instead of being held: the core's verdicts
//! cannot emit a stored packet later. Senders and Linux forward fragments in order, so the common
//! case (`ping -s 3000`, large DNS answers over UDP) works.

use crate::verdict::DropReason;
use crate::Timestamp;
use foldhash::fast::FixedState;
use hashbrown::HashMap;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Fragment store limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragConfig {
    /// Most datagrams tracked at once (default 4096).
    pub max_entries: usize,
    /// How long after its first fragment the rest of a datagram is accepted (default 2000 ms,
    /// RFC 6146 §4 FRAGMENT_MIN; the RFC requires at least that).
    pub timeout_ms: u64,
    /// Fragmented ICMP messages reassembled at once (default 16; 64 KiB each, allocated at
    /// start). See `nat64::reasm`.
    pub max_reassembly: usize,
}

impl Default for FragConfig {
    fn default() -> Self {
        FragConfig {
            max_entries: 4096,
            timeout_ms: 2000,
            max_reassembly: 16,
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

struct Inner {
    map: HashMap<FragKey, (FragOut, u64), FixedState>,
    queue: VecDeque<(FragKey, u64)>,
}

/// The bounded, time-limited store.
pub(crate) struct FragStore {
    cfg: FragConfig,
    inner: Mutex<Inner>,
}

impl FragStore {
    pub fn new(cfg: FragConfig, seed: u64) -> FragStore {
        let cap = cfg.max_entries;
        FragStore {
            cfg,
            inner: Mutex::new(Inner {
                map: HashMap::with_capacity_and_hasher(cap, FixedState::with_seed(seed)),
                queue: VecDeque::with_capacity(cap * 2),
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
    /// [`DropReason::FragmentStoreFull`] when the store is at its limit.
    pub fn insert(&self, key: FragKey, out: FragOut, now: Timestamp) -> Result<(), DropReason> {
        let mut g = self.lock();
        Self::expire_locked(&mut g, now.0);
        let deadline = now.0.saturating_add(self.cfg.timeout_ms);
        let present = g.map.contains_key(&key);
        if (!present && g.map.len() >= self.cfg.max_entries)
            || g.queue.len() >= self.cfg.max_entries * 2
        {
            return Err(DropReason::FragmentStoreFull);
        }
        g.map.insert(key, (out, deadline));
        g.queue.push_back((key, deadline));
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
        Self::expire_locked(&mut self.lock(), now.0);
    }

    fn expire_locked(g: &mut Inner, now: u64) {
        while let Some(&(k, d)) = g.queue.front() {
            if d > now {
                break;
            }
            g.queue.pop_front();
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
            },
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
    fn reinserted_key_keeps_newer_deadline() {
        let s = FragStore::new(FragConfig::default(), 1);
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
