//! The session indexes: hash tables of session slab indexes whose every bucket is one 64-byte
//! cache line, for the lookups of [`super::session`].
//!
//! A bucket holds ten (16-bit tag, `u32` slab index) slots. The home bucket of a key is a
//! function of its hash and the bucket count alone (multiply-shift, no power-of-two rounding), so
//! a lookup reads one line of the index in the common case, and a batch can prefetch that line
//! before it takes the shard's lock to look ([`Index::prefetch`]). A full bucket sends new
//! entries on to the next one (linear probing by bucket) and counts them in its `over` field; a
//! lookup stops at the first bucket whose count is zero, and a removal decrements the counts it
//! passes, so there are no tombstones and a table never degrades with churn.
//!
//! The table grows (doubling) beyond 90 % of its slots, re-hashing every entry through the
//! caller's closure (the keys live in the session slab, not here).

/// Slots per bucket: 10 × (4 + 2) bytes + the 4-byte overflow count = 64 bytes.
const SLOTS: usize = 10;

use std::sync::atomic::{AtomicUsize, Ordering};

/// One cache line of the index.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    /// Slab indexes (meaningful where `tag` is not 0).
    idx: [u32; SLOTS],
    /// High hash bits of each entry; 0 marks a free slot.
    tag: [u16; SLOTS],
    /// Entries stored beyond this bucket whose probe passed through it.
    over: u32,
}

const EMPTY: Bucket = Bucket {
    idx: [0; SLOTS],
    tag: [0; SLOTS],
    over: 0,
};

/// A session index (see the module documentation).
#[derive(Debug)]
pub(crate) struct Index {
    buckets: Vec<Bucket>,
    len: usize,
}

/// The tag of hash `h`: its top 16 bits, never 0 (0 marks a free slot).
#[inline]
fn tag(h: u64) -> u16 {
    ((h >> 48) as u16).max(1)
}

/// Buckets for `cap` entries: at most 80 % of the slots used at `cap`.
fn buckets_for(cap: usize) -> usize {
    cap.div_ceil(8).clamp(1, u32::MAX as usize)
}

/// Issues a prefetch of the cache line holding `r` into all cache levels.
#[inline(always)]
pub(crate) fn prefetch<T>(r: &T) {
    prefetch_addr(r as *const T as usize);
}

/// Issues a prefetch of the cache line at address `a`, which may be stale (memory since freed):
/// a prefetch is a hint and never faults. A no-op on targets without a stable prefetch
/// instruction.
#[inline(always)]
pub(crate) fn prefetch_addr(a: usize) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)] // the prefetch intrinsic is an `unsafe` target-feature function
    // SAFETY: PREFETCHT0 only hints the cache: it reads no memory architecturally and cannot
    // fault, whatever the address (Intel SDM, PREFETCHh), and SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(a as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = a;
}

/// Where an index's buckets are, readable without the shard's lock (for prefetching only: it
/// may be stale for a moment after the index grew, which costs a useless prefetch, nothing else).
#[derive(Debug, Default)]
pub(crate) struct Location {
    base: AtomicUsize,
    buckets: AtomicUsize,
}

impl Location {
    /// Prefetches the home bucket of hash `h`.
    #[inline]
    pub fn prefetch(&self, h: u64) {
        let n = self.buckets.load(Ordering::Relaxed);
        let b = home_of(h, n);
        prefetch_addr(
            self.base
                .load(Ordering::Relaxed)
                .wrapping_add(b * std::mem::size_of::<Bucket>()),
        );
    }
}

/// The home bucket of hash `h` among `n`: its low 32 bits scaled to `n`.
#[inline]
fn home_of(h: u64, n: usize) -> usize {
    (((h & 0xffff_ffff) * n as u64) >> 32) as usize
}

impl Index {
    /// An index pre-sized for `cap` entries.
    pub fn with_capacity(cap: usize) -> Index {
        Index {
            buckets: vec![EMPTY; buckets_for(cap)],
            len: 0,
        }
    }

    /// Bytes [`Index::with_capacity`] allocates for `cap` entries.
    pub fn bytes_for(cap: usize) -> usize {
        buckets_for(cap).saturating_mul(std::mem::size_of::<Bucket>())
    }

    /// Entries held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated.
    pub fn allocation_size(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }

    /// The home bucket of hash `h`.
    #[inline]
    fn home(&self, h: u64) -> usize {
        home_of(h, self.buckets.len())
    }

    /// True if `loc` says where the buckets are now.
    #[cfg(test)]
    pub fn is_published_at(&self, loc: &Location) -> bool {
        loc.base.load(Ordering::Relaxed) == self.buckets.as_ptr() as usize
            && loc.buckets.load(Ordering::Relaxed) == self.buckets.len()
    }

    /// Publishes where the buckets are to `loc`.
    pub fn publish(&self, loc: &Location) {
        loc.base
            .store(self.buckets.as_ptr() as usize, Ordering::Relaxed);
        loc.buckets.store(self.buckets.len(), Ordering::Relaxed);
    }

    #[inline]
    fn next(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// The entry of hash `h` for which `eq` holds.
    #[inline]
    pub fn find(&self, h: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let t = tag(h);
        let mut b = self.home(h);
        // Bounded by the bucket count: a lookup never loops, whatever the counts say.
        for _ in 0..self.buckets.len() {
            let bk = &self.buckets[b];
            for j in 0..SLOTS {
                if bk.tag[j] == t && eq(bk.idx[j]) {
                    return Some(bk.idx[j]);
                }
            }
            if bk.over == 0 {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    /// Inserts `idx` under hash `h` (the caller knows the key is not present). `rehash` gives
    /// the hash of a stored index, for growing. Returns true if the buckets moved (grew).
    pub fn insert(&mut self, h: u64, idx: u32, rehash: impl Fn(u32) -> u64) -> bool {
        let grow = (self.len + 1) * 10 > self.buckets.len() * SLOTS * 9;
        if grow {
            self.grow(&rehash);
        }
        self.place(h, idx);
        self.len += 1;
        grow
    }

    /// Stores an entry in the first bucket with a free slot from its home on. There is one:
    /// the table is never more than 90 % full.
    fn place(&mut self, h: u64, idx: u32) {
        let t = tag(h);
        let mut b = self.home(h);
        for _ in 0..self.buckets.len() {
            let bk = &mut self.buckets[b];
            if let Some(j) = bk.tag.iter().position(|&x| x == 0) {
                bk.tag[j] = t;
                bk.idx[j] = idx;
                return;
            }
            bk.over += 1;
            b = self.next(b);
        }
        debug_assert!(false, "index full");
    }

    fn grow(&mut self, rehash: &impl Fn(u32) -> u64) {
        let n = (self.buckets.len() * 2).min(u32::MAX as usize);
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; n]);
        for bk in &old {
            for j in 0..SLOTS {
                if bk.tag[j] != 0 {
                    self.place(rehash(bk.idx[j]), bk.idx[j]);
                }
            }
        }
    }

    /// Removes the entry `idx` stored under hash `h`; false if it is not there.
    pub fn remove(&mut self, h: u64, idx: u32) -> bool {
        let t = tag(h);
        let home = self.home(h);
        let mut b = home;
        let mut steps = 0;
        let found = loop {
            let bk = &self.buckets[b];
            if let Some(j) = (0..SLOTS).find(|&j| bk.tag[j] == t && bk.idx[j] == idx) {
                break Some(j);
            }
            if bk.over == 0 || steps == self.buckets.len() {
                break None;
            }
            b = self.next(b);
            steps += 1;
        };
        let Some(j) = found else {
            return false;
        };
        self.buckets[b].tag[j] = 0;
        // The buckets it had passed no longer count it.
        let mut p = home;
        for _ in 0..steps {
            self.buckets[p].over -= 1;
            p = self.next(p);
        }
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
    }

    /// Random inserts and removals against a `HashMap`, with hashes crowded into few home
    /// buckets so that overflow chains, wrap-around and growth all happen.
    #[test]
    fn matches_a_map_under_churn_and_collisions() {
        // Hash of key k: only 4 distinct home values (low bits) with varied tags, plus some
        // exact duplicates of the whole hash.
        let hash = |k: u32| -> u64 {
            let tag = u64::from(k % 7) << 48;
            let home = u64::from(k % 4) * 0x4000_0000;
            tag | home | u64::from(k % 3) << 20
        };
        let mut ix = Index::with_capacity(8);
        let mut model: HashMap<u32, ()> = HashMap::new();
        let mut r = 0x2545_f491_4f6c_dd1d_u64;
        for step in 0..20_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let k = (r % 600) as u32;
            let eq = |i: u32| i == k;
            let present = ix.find(hash(k), eq).is_some();
            assert_eq!(present, model.contains_key(&k), "step {step} key {k}");
            if present {
                assert!(ix.remove(hash(k), k));
                model.remove(&k);
            } else {
                ix.insert(hash(k), k, hash);
                model.insert(k, ());
            }
            assert_eq!(ix.len(), model.len());
        }
        for k in 0..600 {
            assert_eq!(
                ix.find(hash(k), |i| i == k).is_some(),
                model.contains_key(&k)
            );
        }
        // Empty again: every overflow count is back to zero.
        for k in 0..600 {
            if model.contains_key(&k) {
                assert!(ix.remove(hash(k), k));
            }
        }
        assert_eq!(ix.len(), 0);
        assert!(ix
            .buckets
            .iter()
            .all(|b| b.over == 0 && b.tag == [0; SLOTS]));
        assert!(!ix.remove(hash(1), 1));
    }

    #[test]
    fn published_location_follows_growth() {
        let mut ix = Index::with_capacity(8);
        let loc = Location::default();
        ix.publish(&loc);
        let h = |k: u32| u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut grew = 0;
        for k in 0..100 {
            if ix.insert(h(k), k, h) {
                grew += 1;
                ix.publish(&loc);
            }
            assert_eq!(
                loc.base.load(Ordering::Relaxed),
                ix.buckets.as_ptr() as usize
            );
            assert_eq!(loc.buckets.load(Ordering::Relaxed), ix.buckets.len());
        }
        assert!(grew >= 3, "{grew}");
        // Any hash maps into the buckets.
        for h in [0, u64::MAX, 0xffff_ffff, 1 << 32] {
            assert!(home_of(h, ix.buckets.len()) < ix.buckets.len());
        }
    }

    #[test]
    fn presized_table_does_not_grow_up_to_its_capacity() {
        let mut ix = Index::with_capacity(1000);
        let size = ix.allocation_size();
        assert_eq!(size, Index::bytes_for(1000));
        let h = |k: u32| u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for k in 0..1000 {
            ix.insert(h(k), k, h);
        }
        assert_eq!(ix.allocation_size(), size);
        for k in 0..1000 {
            assert_eq!(ix.find(h(k), |i| i == k), Some(k));
        }
        assert_eq!(ix.find(h(1000), |i| i == 1000), None);
    }
}
