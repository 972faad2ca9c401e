//! The answer cache: final (post-synthesis) answers stored as wire bytes, keyed by the
//! lower-cased question and the query bits that change the answer (DO, CD, EDNS present).
//!
//! A hit copies the stored bytes into the caller's buffer and ages every TTL in place (offsets
//! found once at insert time), so the fast path neither parses nor allocates. Bounded: a fixed
//! number of entries per shard, evicted by CLOCK (second chance): a hit sets the entry's
//! reference bit, and an insert into a full shard advances a hand over the slots, clearing
//! reference bits, until it finds an expired or unreferenced entry to replace. Each insert is
//! O(1) amortized (at most two turns of the hand), never a scan of the shard; entries sit in a
//! slab indexed by a `hashbrown::HashTable` that stores the slot number only, so one hash of the
//! key (keyed, random seed: keys come from the network) serves the lookup.
//! Only NOERROR and NXDOMAIN answers with at least one record are cached, for the smallest TTL in
//! them (for a SOA, min(TTL, MINIMUM) as RFC 2308 §5 asks), capped by `max_ttl`.

use hashbrown::HashTable;
use nat64_core::dns64::wire;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::Instant;

const SHARDS: usize = 16;

/// Longest cache key: a name plus type, class and flag byte.
pub const KEY_LEN: usize = wire::MAX_NAME + 5;

struct Entry {
    hash: u64,
    key: Box<[u8]>,
    msg: Box<[u8]>,
    ttl_offs: Box<[u16]>,
    ttls: Box<[u32]>,
    stored_ms: u64,
    expires_ms: u64,
    /// CLOCK reference bit: set by a hit, cleared by the passing hand.
    referenced: bool,
}

/// One shard: the slab of entries and the index from key hash to slot.
struct Shard {
    index: HashTable<u32>,
    slots: Vec<Entry>,
    hand: usize,
}

impl Shard {
    fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| {
                let e = &slots[i as usize];
                e.hash == hash && *e.key == *key
            })
            .map(|&i| i as usize)
    }

    /// Removes the index entry pointing at `slot` (the entry itself stays in the slab).
    fn unindex(&mut self, slot: usize) {
        let hash = self.slots[slot].hash;
        if let Ok(o) = self.index.find_entry(hash, |&i| i as usize == slot) {
            o.remove();
        }
    }

    fn reindex(&mut self, slot: usize) {
        let slots = &self.slots;
        self.index
            .insert_unique(slots[slot].hash, slot as u32, |&i| slots[i as usize].hash);
    }

    /// Drops the entry in `slot` (the last entry moves into it).
    fn remove(&mut self, slot: usize) {
        self.unindex(slot);
        let last = self.slots.len() - 1;
        if slot != last {
            self.unindex(last);
            self.slots.swap_remove(slot);
            self.reindex(slot);
        } else {
            self.slots.pop();
        }
        if self.hand >= self.slots.len() {
            self.hand = 0;
        }
    }

    /// CLOCK: the slot to replace in a full shard (expired or not referenced since the hand last
    /// passed). Terminates within two turns: the first turn clears every reference bit.
    fn victim(&mut self, now: u64) -> usize {
        let n = self.slots.len();
        for _ in 0..2 * n {
            let h = self.hand;
            self.hand = (h + 1) % n;
            let e = &mut self.slots[h];
            if e.expires_ms <= now || !e.referenced {
                return h;
            }
            e.referenced = false;
        }
        self.hand
    }
}

/// The cache.
pub struct Cache {
    shards: Box<[Mutex<Shard>]>,
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
        let per_shard = entries.div_ceil(SHARDS).min(u32::MAX as usize);
        Cache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        index: HashTable::new(),
                        slots: Vec::new(),
                        hand: 0,
                    })
                })
                .collect(),
            per_shard,
            max_ttl,
            hasher: foldhash::fast::RandomState::default(),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn shard(&self, h: u64) -> &Mutex<Shard> {
        // Middle bits pick the shard: hashbrown takes the bucket from the low bits and its tag
        // from the top 7, which must stay spread within a shard.
        &self.shards[(h >> 32) as usize % SHARDS]
    }

    /// Copies the cached answer for `key` into `out`, TTLs aged; returns its length.
    pub fn get(&self, key: &[u8], out: &mut [u8]) -> Option<usize> {
        self.get_at(key, out, self.now_ms())
    }

    fn get_at(&self, key: &[u8], out: &mut [u8], now: u64) -> Option<usize> {
        if self.per_shard == 0 {
            return None;
        }
        let h = self.hasher.hash_one(key);
        let Ok(mut shard) = self.shard(h).lock() else {
            return None;
        };
        let slot = shard.find(h, key)?;
        if now >= shard.slots[slot].expires_ms {
            shard.remove(slot);
            return None;
        }
        let e = &mut shard.slots[slot];
        e.referenced = true;
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
        self.put_at(key, msg, self.now_ms());
    }

    fn put_at(&self, key: &[u8], msg: &[u8], now: u64) {
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
        let h = self.hasher.hash_one(key);
        let entry = Entry {
            hash: h,
            key: key.into(),
            msg: msg.into(),
            ttl_offs,
            ttls,
            stored_ms: now,
            expires_ms: now + u64::from(ttl) * 1000,
            referenced: false,
        };
        let Ok(mut shard) = self.shard(h).lock() else {
            return;
        };
        if let Some(slot) = shard.find(h, key) {
            shard.slots[slot] = entry;
        } else if shard.slots.len() < self.per_shard {
            shard.slots.push(entry);
            let slot = shard.slots.len() - 1;
            shard.reindex(slot);
        } else {
            let slot = shard.victim(now);
            shard.unindex(slot);
            shard.slots[slot] = entry;
            shard.reindex(slot);
        }
    }

    /// Entries held (all shards).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.slots.len()))
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

    #[test]
    fn clock_keeps_what_is_used() {
        // 8 slots per shard, 20,000 cold inserts spread over the shards: a key hit between
        // inserts keeps its reference bit and is never the victim (an arbitrary or FIFO choice
        // evicts it within a few turns).
        let c = Cache::new(SHARDS * 8, 3600);
        let mut out = [0u8; 512];
        c.put_at(b"hot", &answer(300, 0), 0);
        for i in 0..20_000u32 {
            c.put_at(&i.to_be_bytes(), &answer(300, 0), 0);
            assert!(
                c.get_at(b"hot", &mut out, 0).is_some(),
                "hot key evicted after {i}"
            );
        }
        assert_eq!(c.len(), SHARDS * 8);
    }

    #[test]
    fn expired_entries_go_first_and_the_index_stays_consistent() {
        let c = Cache::new(SHARDS * 4, 3600);
        let mut out = [0u8; 512];
        // Short-lived and long-lived entries, all referenced once.
        for i in 0..200u32 {
            let ttl = if i % 2 == 0 { 10 } else { 1000 };
            c.put_at(&i.to_be_bytes(), &answer(ttl, 0), 0);
        }
        let live: Vec<u32> = (0..200u32)
            .filter(|i| c.get_at(&i.to_be_bytes(), &mut out, 0).is_some())
            .collect();
        assert_eq!(live.len(), SHARDS * 4);
        // 20 s later the 10 s entries have expired: a hit on one removes it (the slab's last
        // entry moves into its slot), and every other entry is still found under its own key.
        let now = 20_000;
        for i in &live {
            let got = c.get_at(&i.to_be_bytes(), &mut out, now);
            assert_eq!(got.is_some(), i % 2 == 1, "key {i}");
            if let Some(n) = got {
                // Aged by 20 s.
                assert_eq!(&out[n - 10..n - 6], &980u32.to_be_bytes());
            }
        }
        let long: Vec<u32> = live.iter().copied().filter(|i| i % 2 == 1).collect();
        assert_eq!(c.len(), long.len());
        // New entries fill the freed slots, then replace others; each is found right after.
        for i in 1000..1000 + 8 * SHARDS as u32 {
            c.put_at(&i.to_be_bytes(), &answer(300, 0), now);
            assert!(
                c.get_at(&i.to_be_bytes(), &mut out, now).is_some(),
                "new key {i}"
            );
        }
        assert!(c.len() <= SHARDS * 4);
        // Replacing a key keeps one entry for it.
        let before = c.len();
        c.put_at(&1000u32.to_be_bytes(), &answer(77, 0), now);
        assert_eq!(c.len(), before);
        let n = c.get_at(&1000u32.to_be_bytes(), &mut out, now).unwrap();
        assert_eq!(&out[n - 10..n - 6], &77u32.to_be_bytes());
    }
}
