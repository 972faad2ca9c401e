//! RFC 6146 §3.4: TCP and UDP fragments that arrive before their first fragment.
//!
//! "NAT64 MUST handle fragments arriving out of order", within bounded resources and for at
//! least FRAGMENT_MIN. The fragment store ([`super::frag`]) translates each fragment as it
//! arrives with the addresses its first fragment was translated to; a non-first fragment that
//! comes first has no addresses yet, so it is copied here, whole and untranslated
//! ([`crate::DropReason::FragmentHeld`], counted, not lost). When the first fragment of its
//! datagram is translated, the held fragments of that datagram are *released*: the driver takes
//! them one at a time with [`super::Nat64::take_released`] right after the first fragment's
//! verdict, and each is translated then, exactly as if it had arrived in order.
//!
//! Resources are bounded and preallocated at start: `max_held` records and `max_held_bytes` of
//! packet memory in 256-byte blocks chained per packet (no external fragmentation, no allocation
//! per packet). One source (an IPv6 subscriber prefix or an IPv4 address) holds at most
//! `max_held_per_source` records and the same share of the bytes, so one host's stray fragments
//! cannot keep everyone else's out. A held fragment whose first fragment does not come within
//! the fragment timeout (FRAGMENT_MIN by default) is discarded by [`HeldStore::expire`] and
//! counted; RFC 6146 sends nothing then (the Time Exceeded of RFC 792 / RFC 4443 §3.3 is the
//! reassembling destination's to send, and the NAT64 does not reassemble TCP or UDP). An exact
//! duplicate of a held fragment (same datagram and offset) is dropped, as RFC 8200 §4.5 allows a
//! destination to do: forwarding both could make the receiver abandon the datagram (RFC 5722).

use super::frag::FragKey;
use crate::verdict::DropReason;
use crate::Timestamp;
use foldhash::fast::FixedState;
use hashbrown::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bytes per block of packet memory.
pub(crate) const BLOCK: usize = 256;

/// End of a list.
const NIL: u32 = u32::MAX;

/// What the store holds now and has done since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeldCounts {
    /// Fragments held now (waiting for their first fragment, or released and not yet taken).
    pub held: usize,
    /// Bytes of packet memory they use (whole blocks).
    pub bytes: usize,
    /// Fragments held since start.
    pub stored: u64,
    /// Fragments released because their first fragment came.
    pub released: u64,
    /// Fragments discarded because their first fragment did not come in time.
    pub expired: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    /// Waiting for its first fragment: in the age list and in its datagram's chain.
    Held,
    /// Its first fragment was translated: in the released list.
    Released,
}

#[derive(Debug, Clone, Copy)]
struct Rec {
    state: State,
    key: FragKey,
    /// Keyed hash of the source, for the per-source counters.
    src: u32,
    /// Fragment offset in 8-byte units (duplicate detection).
    offset: u16,
    /// An IPv4 packet from the first pass of a hairpinned IPv6 fragment (RFC 6146 §3.8): its
    /// hop was already counted, so it is translated again without decrementing the TTL.
    hairpin: bool,
    len: u32,
    first_block: u32,
    blocks: u32,
    deadline: u64,
    /// Age list (held) or released list (next only).
    prev: u32,
    next: u32,
    /// Next record of the same datagram (held).
    knext: u32,
}

const EMPTY: Rec = Rec {
    state: State::Free,
    key: FragKey {
        src: [0; 16],
        dst: [0; 16],
        id: 0,
        proto: 0,
        v6: false,
    },
    src: 0,
    offset: 0,
    hairpin: false,
    len: 0,
    first_block: NIL,
    blocks: 0,
    deadline: 0,
    prev: NIL,
    next: NIL,
    knext: NIL,
};

struct Inner {
    recs: Box<[Rec]>,
    free_recs: Vec<u32>,
    mem: Box<[u8]>,
    block_next: Box<[u32]>,
    free_block: u32,
    free_blocks: u32,
    /// Datagram → (first, last) held record.
    by_key: HashMap<FragKey, (u32, u32), FixedState>,
    /// Keyed source hash → (records, blocks) it holds.
    per_source: HashMap<u32, (u32, u32), FixedState>,
    age_head: u32,
    age_tail: u32,
    rel_head: u32,
    rel_tail: u32,
    hs: FixedState,
    stored: u64,
    released: u64,
    expired: u64,
}

/// The bounded store of early fragments. Shared by all workers.
pub(crate) struct HeldStore {
    inner: Mutex<Inner>,
    /// Records in use (read without the lock: a first fragment looks only when it is not 0).
    used: AtomicUsize,
    /// Released records not yet taken (read without the lock after every packet).
    released: AtomicUsize,
    per_source_recs: u32,
    per_source_blocks: u32,
    timeout_ms: u64,
    mask: u128,
}

impl HeldStore {
    /// A store of `max_held` records and `max_bytes` of packet memory (rounded down to whole
    /// blocks); `per_source` records per source, and the same share of the blocks.
    pub fn new(
        max_held: usize,
        max_bytes: usize,
        per_source: usize,
        timeout_ms: u64,
        mask: u128,
        seed: u64,
    ) -> HeldStore {
        let max_held = max_held.min(NIL as usize - 1);
        let nblocks = if max_held == 0 {
            0
        } else {
            (max_bytes / BLOCK).min(NIL as usize - 1)
        };
        let per_source = per_source.clamp(usize::from(max_held > 0), max_held.max(1));
        // The same share of the memory as of the records, and room for one largest fragment.
        let per_source_blocks = (nblocks * per_source)
            .checked_div(max_held)
            .unwrap_or(0)
            .max((65535 + 40usize).div_ceil(BLOCK).min(nblocks));
        let block_next: Box<[u32]> = (0..nblocks)
            .map(|i| if i + 1 < nblocks { i as u32 + 1 } else { NIL })
            .collect();
        HeldStore {
            inner: Mutex::new(Inner {
                recs: vec![EMPTY; max_held].into_boxed_slice(),
                free_recs: (0..max_held as u32).rev().collect(),
                mem: vec![0u8; nblocks * BLOCK].into_boxed_slice(),
                block_next,
                free_block: if nblocks > 0 { 0 } else { NIL },
                free_blocks: nblocks as u32,
                // Twice the most keys ever present, so tombstones are cleaned by an in-place
                // rehash, never by growing.
                by_key: HashMap::with_capacity_and_hasher(
                    max_held * 2,
                    FixedState::with_seed(seed ^ 0x9e37_79b9_7f4a_7c15),
                ),
                per_source: HashMap::with_capacity_and_hasher(
                    max_held * 2,
                    FixedState::with_seed(seed ^ 0x6a09_e667_f3bc_c909),
                ),
                age_head: NIL,
                age_tail: NIL,
                rel_head: NIL,
                rel_tail: NIL,
                hs: FixedState::with_seed(seed.rotate_left(31) ^ 0xbb67_ae85_84ca_a73b),
                stored: 0,
                released: 0,
                expired: 0,
            }),
            used: AtomicUsize::new(0),
            released: AtomicUsize::new(0),
            per_source_recs: per_source as u32,
            per_source_blocks: per_source_blocks as u32,
            timeout_ms,
            mask,
        }
    }

    /// Bytes [`HeldStore::new`] allocates for these limits.
    pub fn bytes(max_held: usize, max_bytes: usize) -> usize {
        if max_held == 0 {
            return 0;
        }
        let nblocks = max_bytes / BLOCK;
        max_held
            .saturating_mul(std::mem::size_of::<Rec>() + 4)
            .saturating_add(nblocks.saturating_mul(BLOCK + 4))
            // Two maps of 2 * max_held (keys of 40 and 4 bytes).
            .saturating_add(max_held.saturating_mul(2 * 8 * 2 * 2 + 2 * (48 + 12)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update completes before anything that could panic; a poisoned lock is used as is.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Copies the non-first fragment `pkt` (datagram `key`, offset `offset` in 8-byte units)
    /// until its first fragment comes. `hairpin`: `pkt` is the IPv4 packet of a hairpinned
    /// fragment's first pass (RFC 6146 §3.8), given back by [`HeldStore::take`].
    ///
    /// # Errors
    /// [`DropReason::FragmentFirstMissing`] when holding is off (`max_held = 0`),
    /// [`DropReason::FragmentHeldDuplicate`] for a second copy of a held fragment,
    /// [`DropReason::FragmentSourceLimit`] when its source holds its share,
    /// [`DropReason::FragmentHeldFull`] when the records or the memory are used up.
    pub fn hold(
        &self,
        key: FragKey,
        offset: u16,
        pkt: &[u8],
        now: Timestamp,
        hairpin: bool,
    ) -> Result<(), DropReason> {
        let mut g = self.lock();
        let g = &mut *g;
        if g.recs.is_empty() {
            return Err(DropReason::FragmentFirstMissing);
        }
        self.expire_locked(g, now.0);
        if let Some(&(head, _)) = g.by_key.get(&key) {
            let mut r = head;
            while r != NIL {
                if g.recs[r as usize].offset == offset {
                    return Err(DropReason::FragmentHeldDuplicate);
                }
                r = g.recs[r as usize].knext;
            }
        }
        let blocks = pkt.len().div_ceil(BLOCK).max(1) as u32;
        let src = g.hs.hash_one(key.source(self.mask)) as u32;
        if blocks > g.free_blocks || g.free_recs.is_empty() {
            return Err(DropReason::FragmentHeldFull);
        }
        let (n, b) = g.per_source.get(&src).copied().unwrap_or((0, 0));
        if n >= self.per_source_recs || b + blocks > self.per_source_blocks {
            return Err(DropReason::FragmentSourceLimit);
        }
        let Some(ri) = g.free_recs.pop() else {
            return Err(DropReason::FragmentHeldFull);
        };
        // Copy into a chain of free blocks.
        let first = g.free_block;
        let mut blk = first;
        let mut last = NIL;
        for chunk in pkt.chunks(BLOCK) {
            let at = blk as usize * BLOCK;
            g.mem[at..at + chunk.len()].copy_from_slice(chunk);
            last = blk;
            blk = g.block_next[blk as usize];
        }
        if pkt.is_empty() {
            last = blk;
            blk = g.block_next[blk as usize];
        }
        g.block_next[last as usize] = NIL;
        g.free_block = blk;
        g.free_blocks -= blocks;
        g.per_source.insert(src, (n + 1, b + blocks));
        g.recs[ri as usize] = Rec {
            state: State::Held,
            key,
            src,
            offset,
            hairpin,
            len: pkt.len() as u32,
            first_block: first,
            blocks,
            deadline: now.0.saturating_add(self.timeout_ms),
            prev: g.age_tail,
            next: NIL,
            knext: NIL,
        };
        if g.age_tail != NIL {
            g.recs[g.age_tail as usize].next = ri;
        } else {
            g.age_head = ri;
        }
        g.age_tail = ri;
        match g.by_key.get_mut(&key) {
            Some((_, tail)) => {
                let t = *tail;
                *tail = ri;
                g.recs[t as usize].knext = ri;
            }
            None => {
                g.by_key.insert(key, (ri, ri));
            }
        }
        g.stored += 1;
        self.used.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// True if any fragment is held (one relaxed load: the in-order path looks no further).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.used.load(Ordering::Relaxed) == 0
    }

    /// True if released fragments wait to be taken.
    #[inline]
    pub fn has_released(&self) -> bool {
        self.released.load(Ordering::Relaxed) != 0
    }

    /// The first fragment of `key` was translated: its held fragments are released, in the
    /// order they arrived. Returns how many.
    pub fn release(&self, key: &FragKey) -> usize {
        let mut g = self.lock();
        let g = &mut *g;
        let Some((head, _)) = g.by_key.remove(key) else {
            return 0;
        };
        let mut n = 0;
        let mut r = head;
        while r != NIL {
            let next = g.recs[r as usize].knext;
            unlink_age(g, r);
            let rec = &mut g.recs[r as usize];
            rec.state = State::Released;
            rec.knext = NIL;
            rec.next = NIL;
            rec.prev = NIL;
            if g.rel_tail != NIL {
                g.recs[g.rel_tail as usize].next = r;
            } else {
                g.rel_head = r;
            }
            g.rel_tail = r;
            n += 1;
            r = next;
        }
        g.released += n as u64;
        self.released.fetch_add(n, Ordering::Relaxed);
        n
    }

    /// Copies the next released fragment into `out` and frees it. Returns its length and
    /// whether it was held as a hairpin's IPv4 packet; `None` when none is released. A fragment
    /// longer than `out` is discarded (`Some(Err(len))`).
    pub fn take(&self, out: &mut [u8]) -> Option<Result<(usize, bool), usize>> {
        if !self.has_released() {
            return None;
        }
        let mut g = self.lock();
        let g = &mut *g;
        let r = g.rel_head;
        if r == NIL {
            return None;
        }
        let rec = g.recs[r as usize];
        g.rel_head = rec.next;
        if g.rel_head == NIL {
            g.rel_tail = NIL;
        }
        let len = rec.len as usize;
        let res = match out.get_mut(..len) {
            Some(dst) => {
                let mut blk = rec.first_block;
                for chunk in dst.chunks_mut(BLOCK) {
                    let at = blk as usize * BLOCK;
                    chunk.copy_from_slice(&g.mem[at..at + chunk.len()]);
                    blk = g.block_next[blk as usize];
                }
                Ok((len, rec.hairpin))
            }
            None => Err(len),
        };
        self.released.fetch_sub(1, Ordering::Relaxed);
        self.free(g, r);
        Some(res)
    }

    /// Discards held fragments whose first fragment did not come in time (and released ones a
    /// driver never took). Returns how many.
    pub fn expire(&self, now: Timestamp) -> usize {
        if self.used.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let mut g = self.lock();
        self.expire_locked(&mut g, now.0)
    }

    fn expire_locked(&self, g: &mut Inner, now: u64) -> usize {
        let mut n = 0;
        while g.age_head != NIL && g.recs[g.age_head as usize].deadline <= now {
            let r = g.age_head;
            let key = g.recs[r as usize].key;
            unlink_age(g, r);
            // Take it out of its datagram's chain.
            if let Some(&(head, tail)) = g.by_key.get(&key) {
                if head == r {
                    let nx = g.recs[r as usize].knext;
                    if nx == NIL {
                        g.by_key.remove(&key);
                    } else if let Some(e) = g.by_key.get_mut(&key) {
                        e.0 = nx;
                    }
                } else {
                    let mut p = head;
                    while p != NIL && g.recs[p as usize].knext != r {
                        p = g.recs[p as usize].knext;
                    }
                    if p != NIL {
                        g.recs[p as usize].knext = g.recs[r as usize].knext;
                        if tail == r {
                            if let Some(e) = g.by_key.get_mut(&key) {
                                e.1 = p;
                            }
                        }
                    }
                }
            }
            self.free(g, r);
            n += 1;
        }
        while g.rel_head != NIL && g.recs[g.rel_head as usize].deadline <= now {
            let r = g.rel_head;
            g.rel_head = g.recs[r as usize].next;
            if g.rel_head == NIL {
                g.rel_tail = NIL;
            }
            self.released.fetch_sub(1, Ordering::Relaxed);
            self.free(g, r);
            n += 1;
        }
        g.expired += n as u64;
        n
    }

    /// Returns record `r`'s blocks, its source's charge and the record itself.
    fn free(&self, g: &mut Inner, r: u32) {
        let rec = g.recs[r as usize];
        if rec.blocks > 0 {
            let mut last = rec.first_block;
            while g.block_next[last as usize] != NIL {
                last = g.block_next[last as usize];
            }
            g.block_next[last as usize] = g.free_block;
            g.free_block = rec.first_block;
            g.free_blocks += rec.blocks;
        }
        if let Some(c) = g.per_source.get_mut(&rec.src) {
            c.0 -= 1;
            c.1 -= rec.blocks;
            if c.0 == 0 {
                g.per_source.remove(&rec.src);
            }
        }
        g.recs[r as usize] = EMPTY;
        g.free_recs.push(r);
        self.used.fetch_sub(1, Ordering::Relaxed);
    }

    /// What is held now and the totals since start.
    pub fn counts(&self) -> HeldCounts {
        let g = self.lock();
        HeldCounts {
            held: g.recs.len() - g.free_recs.len(),
            bytes: (g.block_next.len() - g.free_blocks as usize) * BLOCK,
            stored: g.stored,
            released: g.released,
            expired: g.expired,
        }
    }
}

/// Unlinks held record `r` from the age list.
fn unlink_age(g: &mut Inner, r: u32) {
    let Rec { prev, next, .. } = g.recs[r as usize];
    if prev != NIL {
        g.recs[prev as usize].next = next;
    } else {
        g.age_head = next;
    }
    if next != NIL {
        g.recs[next as usize].prev = prev;
    } else {
        g.age_tail = prev;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32, src: u8) -> FragKey {
        FragKey {
            src: [src; 16],
            dst: [2; 16],
            id,
            proto: 17,
            v6: true,
        }
    }

    fn pkt(len: usize, fill: u8) -> Vec<u8> {
        (0..len).map(|i| fill ^ (i as u8)).collect()
    }

    #[test]
    fn holds_releases_in_arrival_order_and_frees_everything() {
        let s = HeldStore::new(8, 8 * 1024, 8, 2000, u128::MAX, 1);
        let t = Timestamp(100);
        let a = pkt(1000, 1);
        let b = pkt(300, 2);
        s.hold(key(1, 1), 200, &a, t, false).unwrap();
        s.hold(key(2, 1), 100, &pkt(10, 3), t, false).unwrap();
        s.hold(key(1, 1), 100, &b, t, false).unwrap();
        assert_eq!(
            s.hold(key(1, 1), 100, &b, t, false),
            Err(DropReason::FragmentHeldDuplicate)
        );
        assert!(!s.has_released());
        assert_eq!(s.release(&key(1, 1)), 2);
        assert_eq!(s.release(&key(1, 1)), 0);
        let mut out = vec![0u8; 2000];
        assert_eq!(s.take(&mut out), Some(Ok((1000, false))));
        assert_eq!(&out[..1000], &a[..]);
        assert_eq!(s.take(&mut out), Some(Ok((300, false))));
        assert_eq!(&out[..300], &b[..]);
        assert_eq!(s.take(&mut out), None);
        let c = s.counts();
        assert_eq!((c.held, c.bytes, c.stored, c.released), (1, BLOCK, 3, 2));
        // The other datagram never gets its first fragment.
        assert_eq!(s.expire(Timestamp(2099)), 0);
        assert_eq!(s.expire(Timestamp(2100)), 1);
        let c = s.counts();
        assert_eq!((c.held, c.bytes, c.expired), (0, 0, 1));
        assert!(s.is_empty());
    }

    #[test]
    fn bounded_in_records_bytes_and_per_source() {
        // 4 records, 16 blocks; 2 records per source.
        let s = HeldStore::new(4, 16 * BLOCK, 2, 2000, u128::MAX, 2);
        let t = Timestamp(0);
        s.hold(key(1, 1), 1, &pkt(BLOCK, 0), t, false).unwrap();
        s.hold(key(2, 1), 1, &pkt(BLOCK, 0), t, false).unwrap();
        assert_eq!(
            s.hold(key(3, 1), 1, &pkt(8, 0), t, false),
            Err(DropReason::FragmentSourceLimit)
        );
        s.hold(key(4, 2), 1, &pkt(8, 0), t, false).unwrap();
        s.hold(key(5, 3), 1, &pkt(8, 0), t, false).unwrap();
        assert_eq!(
            s.hold(key(6, 4), 1, &pkt(8, 0), t, false),
            Err(DropReason::FragmentHeldFull)
        );
        // Memory: a fragment larger than what is free.
        s.expire(Timestamp(2000));
        s.hold(key(7, 5), 1, &pkt(12 * BLOCK, 0), Timestamp(2000), false)
            .unwrap();
        assert_eq!(
            s.hold(key(8, 6), 1, &pkt(5 * BLOCK, 0), Timestamp(2000), false),
            Err(DropReason::FragmentHeldFull)
        );
        s.hold(key(8, 6), 1, &pkt(4 * BLOCK, 0), Timestamp(2000), false)
            .unwrap();
        assert_eq!(s.counts().bytes, 16 * BLOCK);
    }

    #[test]
    fn expiry_in_the_middle_of_a_chain_keeps_the_rest() {
        let s = HeldStore::new(8, 8 * BLOCK, 8, 2000, u128::MAX, 3);
        s.hold(key(1, 1), 10, &pkt(8, 1), Timestamp(0), false)
            .unwrap();
        s.hold(key(1, 1), 20, &pkt(8, 2), Timestamp(500), false)
            .unwrap();
        s.hold(key(1, 1), 30, &pkt(8, 3), Timestamp(600), false)
            .unwrap();
        assert_eq!(s.expire(Timestamp(2000)), 1);
        assert_eq!(s.release(&key(1, 1)), 2);
        let mut out = [0u8; 8];
        assert_eq!(s.take(&mut out), Some(Ok((8, false))));
        assert_eq!(out, pkt(8, 2)[..]);
        // Released but never taken: freed at its deadline.
        assert_eq!(s.expire(Timestamp(2600)), 1);
        assert!(s.is_empty() && !s.has_released());
    }

    #[test]
    fn off_when_no_records() {
        let s = HeldStore::new(0, 1 << 20, 4, 2000, u128::MAX, 4);
        assert_eq!(
            s.hold(key(1, 1), 1, &[1, 2, 3], Timestamp(0), false),
            Err(DropReason::FragmentFirstMissing)
        );
        assert_eq!(s.counts(), HeldCounts::default());
    }
}
