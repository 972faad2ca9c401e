//! The answer cache: final (post-synthesis) answers stored as wire bytes, keyed by the
//! lower-cased question and the query bits that change the answer (DO, CD, EDNS present).
//!
//! A hit copies the stored bytes into the caller's buffer and ages every TTL in place (offsets
//! found once at insert time), so the fast path neither parses nor allocates. Bounded: a fixed
//! number of entries per shard; a full shard drops expired entries, then an arbitrary one.
//! Only NOERROR and NXDOMAIN answers with at least one record are cached, for the smallest TTL in
//! them (for a SOA, min(TTL, MINIMUM) as RFC 2308 §5 asks), capped by `max_ttl`.

use nat64_core::dns64::wire;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::Instant;

const SHARDS: usize = 16;

/// Longest cache key: a name plus type, class and flag byte.
pub const KEY_LEN: usize = wire::MAX_NAME + 5;

struct Entry {
    key: Box<[u8]>,
    msg: Box<[u8]>,
    ttl_offs: Box<[u16]>,
    ttls: Box<[u32]>,
    stored_ms: u64,
    expires_ms: u64,
}

/// The cache.
pub struct Cache {
    shards: Box<[Mutex<HashMap<u64, Entry>>]>,
    per_shard: usize,
    max_ttl: u32,
    hasher: foldhash::fast::RandomState,
    epoch: Instant,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("per_shard", &self.per_shard)
            .finish()
    }
}

/// Builds the key for a question into `buf`; returns its length.
pub fn make_key(
    buf: &mut [u8; KEY_LEN],
    qname_lower: &[u8],
    qtype: u16,
    qclass: u16,
    bits: u8,
) -> usize {
    let n = qname_lower.len().min(wire::MAX_NAME);
    buf[..n].copy_from_slice(&qname_lower[..n]);
    buf[n..n + 2].copy_from_slice(&qtype.to_be_bytes());
    buf[n + 2..n + 4].copy_from_slice(&qclass.to_be_bytes());
    buf[n + 4] = bits;
    n + 5
}

/// Key bits: the query had EDNS.
pub const BIT_EDNS: u8 = 1;
/// Key bits: DNSSEC OK.
pub const BIT_DO: u8 = 2;
/// Key bits: checking disabled.
pub const BIT_CD: u8 = 4;
/// Key bits: the client is outside `synthesize_clients`.
pub const BIT_NOSYNTH: u8 = 8;

impl Cache {
    /// A cache of about `entries` answers (0 disables it).
    pub fn new(entries: usize, max_ttl: u32) -> Self {
        Cache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: entries.div_ceil(SHARDS),
            max_ttl,
            hasher: foldhash::fast::RandomState::default(),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn shard(&self, h: u64) -> &Mutex<HashMap<u64, Entry>> {
        &self.shards[(h as usize) % SHARDS]
    }

    /// Copies the cached answer for `key` into `out`, TTLs aged; returns its length.
    pub fn get(&self, key: &[u8], out: &mut [u8]) -> Option<usize> {
        if self.per_shard == 0 {
            return None;
        }
        let h = self.hasher.hash_one(key);
        let now = self.now_ms();
        let Ok(mut shard) = self.shard(h).lock() else {
            return None;
        };
        let e = shard.get(&h)?;
        if &*e.key != key {
            return None;
        }
        if now >= e.expires_ms {
            shard.remove(&h);
            return None;
        }
        let len = e.msg.len();
        let dst = out.get_mut(..len)?;
        dst.copy_from_slice(&e.msg);
        let age = u32::try_from((now - e.stored_ms) / 1000).unwrap_or(u32::MAX);
        for (off, ttl) in e.ttl_offs.iter().zip(e.ttls.iter()) {
            let o = usize::from(*off);
            dst[o..o + 4].copy_from_slice(&ttl.saturating_sub(age).to_be_bytes());
        }
        Some(len)
    }

    /// Stores `msg` (a complete answer) under `key` if it is cacheable.
    pub fn put(&self, key: &[u8], msg: &[u8]) {
        if self.per_shard == 0 || msg.len() > usize::from(u16::MAX) {
            return;
        }
        let rcode = msg.get(3).map_or(2, |b| b & 0x0f);
        if rcode != 0 && rcode != 3 {
            return;
        }
        let mut offs = Vec::new();
        let Ok(Some(min_ttl)) = wire::ttl_offsets(msg, &mut offs) else {
            return;
        };
        let ttl = min_ttl.min(self.max_ttl);
        if ttl == 0 {
            return;
        }
        let ttls: Box<[u32]> = offs
            .iter()
            .map(|&o| u32::from_be_bytes([msg[o], msg[o + 1], msg[o + 2], msg[o + 3]]))
            .collect();
        let Ok(ttl_offs) = offs.iter().map(|&o| u16::try_from(o)).collect() else {
            return;
        };
        let now = self.now_ms();
        let entry = Entry {
            key: key.into(),
            msg: msg.into(),
            ttl_offs,
            ttls,
            stored_ms: now,
            expires_ms: now + u64::from(ttl) * 1000,
        };
        let h = self.hasher.hash_one(key);
        let Ok(mut shard) = self.shard(h).lock() else {
            return;
        };
        if shard.len() >= self.per_shard && !shard.contains_key(&h) {
            shard.retain(|_, e| e.expires_ms > now);
            if shard.len() >= self.per_shard {
                if let Some(k) = shard.keys().next().copied() {
                    shard.remove(&k);
                }
            }
        }
        shard.insert(h, entry);
    }

    /// Entries held (all shards).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(ttl: u32, rcode: u8) -> Vec<u8> {
        let mut m = vec![0, 1, 0x81, 0x80 | rcode, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        m.extend_from_slice(&ttl.to_be_bytes());
        m.extend_from_slice(&[0, 4, 192, 0, 2, 1]);
        m
    }

    #[test]
    fn stores_and_bounds() {
        let c = Cache::new(SHARDS, 3600);
        let mut out = [0u8; 512];
        c.put(b"k1", &answer(300, 0));
        let n = c.get(b"k1", &mut out).unwrap();
        assert_eq!(&out[..n], &answer(300, 0)[..]);
        assert_eq!(c.get(b"k2", &mut out), None);
        // SERVFAIL and TTL 0 are not cached.
        c.put(b"k3", &answer(300, 2));
        c.put(b"k4", &answer(0, 0));
        assert_eq!(c.get(b"k3", &mut out), None);
        assert_eq!(c.get(b"k4", &mut out), None);
        for i in 0..1000u32 {
            c.put(&i.to_be_bytes(), &answer(300, 0));
        }
        assert!(c.len() <= SHARDS, "bounded: {}", c.len());
        // Garbage is not cached and does not panic.
        c.put(b"g", &[0, 1, 0x81, 0x80, 0, 1, 0, 9]);
        assert_eq!(c.get(b"g", &mut out), None);
        let off = Cache::new(0, 10);
        off.put(b"k1", &answer(300, 0));
        assert!(off.is_empty());
    }
}
