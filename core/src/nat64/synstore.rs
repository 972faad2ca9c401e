//! RFC 6146 §3.5.2.2: unsolicited IPv4 SYNs stored for a TCP simultaneous open.
//!
//! "The lifetime of the STE entry is set to TCP_INCOMING_SYN [...] and the packet is stored":
//! an IPv4 SYN that would otherwise be dropped (no BIB entry for its destination, or
//! address-dependent filtering refuses it) waits here, keyed as its V4 INIT session is, by
//! ((X,x),(Y,y)) = (its destination (T,t), its source (Z,z)). Then either
//!
//! - an IPv6 SYN whose session maps to the same pair arrives within TCP_INCOMING_SYN (6 s): the
//!   IPv6 SYN is forwarded and the stored SYN is taken out ([`SynStore::take`]) and discarded:
//!   RFC 6146 §3.5.2.2 forwards only the IPv6 SYN, and RFC 5382 REQ-4 says "the NAT MUST silently
//!   drop the original unsolicited inbound SYN packet" (the peer, in SYN-SENT, answers the IPv6
//!   SYN with a SYN-ACK, RFC 9293 §3.5), or
//! - none comes: "an ICMP Port Unreachable error (Type 3, Code 3) containing the IPv4 SYN packet
//!   stored is sent back to the source of the v4 SYN" ([`SynStore::expire`], from the timer).
//!
//! The store is preallocated and bounded: `max_entries` slots of [`SLOT_BYTES`] (enough for the
//! whole SYN as an ICMPv4 error may quote it, RFC 1812 §4.3.2.3), one IPv4 source address holds
//! at most `max_per_source` of them, and every refusal is a named drop reason. Entries all live
//! the same time, so they expire in insertion order from one intrusive list: expiry costs
//! O(expired entries). Only drop paths and the creation of a TCP session from the IPv6 side
//! look at it, the latter without a lock while it is empty.

use crate::rfc7915::v4_to_v6::{error_to_sender, V4Header};
use crate::rfc7915::XlatConfig;
use crate::tuple::Ctx;
use crate::verdict::{DropReason, Verdict};
use crate::Timestamp;
use foldhash::fast::FixedState;
use hashbrown::{HashMap, HashTable};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Bytes kept of one SYN: the most an ICMPv4 error quotes (576 − 28, RFC 1812 §4.3.2.3). A
/// longer SYN (TCP Fast Open data) is kept cut to this for the error and not delivered.
pub const SLOT_BYTES: usize = 548;

const NIL: u32 = u32::MAX;

/// Limits of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynStoreConfig {
    /// Most SYNs held at once (default 1024; 0 turns storing off: an unsolicited SYN without a
    /// BIB entry is then dropped at once as `no_binding`, the RFC's "security policy requires
    /// silently dropping externally initiated TCP connections" branch).
    pub max_entries: usize,
    /// Most SYNs held for one IPv4 source address (default 64), so one peer cannot fill the
    /// store for everyone else ([`DropReason::SynStoreSourceLimit`]).
    pub max_per_source: usize,
}

impl Default for SynStoreConfig {
    fn default() -> Self {
        SynStoreConfig {
            max_entries: 1024,
            max_per_source: 64,
        }
    }
}

impl SynStoreConfig {
    /// Largest `max_entries` (65,536: about 38 MB of slots).
    pub const MAX_ENTRIES: usize = 1 << 16;

    /// Bytes allocated for these limits.
    pub fn bytes(&self) -> usize {
        self.max_entries
            .saturating_mul(SLOT_BYTES + std::mem::size_of::<Slot>() + 2 * 24)
    }
}

/// The V4 INIT key: destination (T, t) and source (Z, z) of the IPv4 SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SynKey {
    /// T (a pool4 address).
    pub t4: u32,
    /// t.
    pub t: u16,
    /// Z (the IPv4 peer).
    pub z4: u32,
    /// z.
    pub z: u16,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: SynKey,
    /// Expiry time, ms.
    deadline: u64,
    /// Bytes stored.
    len: u16,
    /// Insertion-order list links (`next` is the free-list link of a free slot).
    prev: u32,
    next: u32,
}

struct Inner {
    slots: Vec<Slot>,
    data: Vec<u8>,
    free: u32,
    head: u32,
    tail: u32,
    index: HashTable<u32>,
    sources: HashMap<u32, u32, FixedState>,
    hs: FixedState,
    /// Rate limit of the expiry's ICMP errors (shared with nothing else: the timer's own bucket).
    ctx: Ctx,
}

/// Lifetime totals of the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SynStoreCounts {
    /// SYNs held now.
    pub held: usize,
    /// SYNs stored since start.
    pub stored: u64,
    /// Simultaneous opens completed (stored SYN matched by an IPv6 SYN).
    pub completed: u64,
    /// Stored SYNs that expired without an IPv6 SYN.
    pub expired: u64,
    /// ICMP Port Unreachable errors produced on expiry (the rest were rate-limited or
    /// suppressed by `send_icmp_errors`).
    pub icmp_sent: u64,
}

/// The bounded store (see the module documentation). Shared by all workers.
pub(crate) struct SynStore {
    inner: Mutex<Inner>,
    /// Entries held (read without the lock on the IPv6 path).
    held: AtomicUsize,
    max: usize,
    per_source: u32,
    timeout_ms: u64,
    stored: AtomicU64,
    completed: AtomicU64,
    expired: AtomicU64,
    icmp_sent: AtomicU64,
}

impl SynStore {
    /// A store for `cfg`, entries living `timeout_ms`.
    pub fn new(cfg: SynStoreConfig, timeout_ms: u64, seed: u64) -> SynStore {
        let n = cfg.max_entries;
        let hs = FixedState::with_seed(seed);
        let slots = (0..n)
            .map(|i| Slot {
                key: SynKey {
                    t4: 0,
                    t: 0,
                    z4: 0,
                    z: 0,
                },
                deadline: 0,
                len: 0,
                prev: NIL,
                next: if i + 1 < n { (i + 1) as u32 } else { NIL },
            })
            .collect();
        SynStore {
            inner: Mutex::new(Inner {
                slots,
                data: vec![0; n * SLOT_BYTES],
                free: if n > 0 { 0 } else { NIL },
                head: NIL,
                tail: NIL,
                index: HashTable::with_capacity(n),
                sources: HashMap::with_capacity_and_hasher(n, hs.clone()),
                hs,
                ctx: Ctx::new(Timestamp(0), 0x5a5a),
            }),
            held: AtomicUsize::new(0),
            max: n,
            per_source: u32::try_from(cfg.max_per_source).unwrap_or(u32::MAX),
            timeout_ms,
            stored: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            icmp_sent: AtomicU64::new(0),
        }
    }

    /// At least one SYN is stored (no lock taken).
    #[inline]
    pub fn held(&self) -> bool {
        self.held.load(Ordering::Relaxed) != 0
    }

    /// Storing is on (`max_entries` > 0).
    #[inline]
    pub fn enabled(&self) -> bool {
        self.max > 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the IPv4 SYN `pkt` under `key`. Returns the reason the packet is counted under:
    /// [`DropReason::TcpV4SynStored`] (stored), [`DropReason::TcpV4SynHeld`] (a retransmission
    /// of a SYN already stored: the first one is kept, and so is its deadline, as the RFC's
    /// V4 INIT lifetime is not refreshed), [`DropReason::SynStoreSourceLimit`] or
    /// [`DropReason::SynStoreFull`].
    pub fn store(&self, key: SynKey, pkt: &[u8], now: Timestamp) -> DropReason {
        let mut g = self.lock();
        let s = &mut *g;
        let h = s.hs.hash_one(key);
        if s.index
            .find(h, |&i| s.slots[i as usize].key == key)
            .is_some()
        {
            return DropReason::TcpV4SynHeld;
        }
        let i = s.free;
        if i == NIL {
            return DropReason::SynStoreFull;
        }
        let c = s.sources.get(&key.z4).copied().unwrap_or(0);
        if c >= self.per_source {
            return DropReason::SynStoreSourceLimit;
        }
        // Within the preallocated capacity: neither map allocates.
        *s.sources.entry(key.z4).or_insert(0) += 1;
        let n = pkt.len().min(SLOT_BYTES);
        let off = i as usize * SLOT_BYTES;
        s.data[off..off + n].copy_from_slice(&pkt[..n]);
        s.free = s.slots[i as usize].next;
        s.slots[i as usize] = Slot {
            key,
            deadline: now.0.saturating_add(self.timeout_ms),
            len: n as u16,
            prev: s.tail,
            next: NIL,
        };
        if s.tail != NIL {
            s.slots[s.tail as usize].next = i;
        } else {
            s.head = i;
        }
        s.tail = i;
        let (slots, hs) = (&s.slots, &s.hs);
        s.index
            .insert_unique(h, i, |&j| hs.hash_one(slots[j as usize].key));
        self.held.fetch_add(1, Ordering::Relaxed);
        self.stored.fetch_add(1, Ordering::Relaxed);
        DropReason::TcpV4SynStored
    }

    /// Discards the SYN stored under `key` (the simultaneous open completed: RFC 5382 REQ-4
    /// drops it, see `Nat64::complete_open`); false when none was stored.
    pub fn discard(&self, key: SynKey) -> bool {
        if self.held.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut g = self.lock();
        let s = &mut *g;
        let h = s.hs.hash_one(key);
        let Ok(e) = s.index.find_entry(h, |&i| s.slots[i as usize].key == key) else {
            return false;
        };
        let (i, _) = e.remove();
        Self::release(s, i);
        self.held.fetch_sub(1, Ordering::Relaxed);
        self.completed.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Unlinks slot `i` (already out of the index) and frees it.
    fn release(s: &mut Inner, i: u32) {
        let Slot {
            key, prev, next, ..
        } = s.slots[i as usize];
        if prev != NIL {
            s.slots[prev as usize].next = next;
        } else {
            s.head = next;
        }
        if next != NIL {
            s.slots[next as usize].prev = prev;
        } else {
            s.tail = prev;
        }
        if let Some(c) = s.sources.get_mut(&key.z4) {
            *c -= 1;
            if *c == 0 {
                s.sources.remove(&key.z4);
            }
        }
        s.slots[i as usize].next = s.free;
        s.slots[i as usize].prev = NIL;
        s.free = i;
    }

    /// Removes the SYNs whose TCP_INCOMING_SYN ran out by `now` and appends, back to back in
    /// `out`, the ICMPv4 Port Unreachable (3/3) for each, from the SYN's destination T to its
    /// source, quoting the stored SYN (§3.5.2.2 V4 INIT). The errors obey `xlat`'s
    /// `send_icmp_errors` and `icmp_errors_per_sec` (the store keeps its own token bucket).
    /// Returns the number of SYNs expired.
    pub fn expire(&self, now: Timestamp, xlat: &XlatConfig, out: &mut Vec<u8>) -> usize {
        if self.held.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        // The error leaves from T, the address the SYN was sent to, as a port unreachable does.
        let cfg = XlatConfig {
            icmp_src4: None,
            ..*xlat
        };
        let mut g = self.lock();
        let s = &mut *g;
        s.ctx.now = now;
        let mut n = 0;
        let mut err = [0u8; 28 + SLOT_BYTES];
        while s.head != NIL && s.slots[s.head as usize].deadline <= now.0 {
            let i = s.head;
            let slot = s.slots[i as usize];
            let h = s.hs.hash_one(slot.key);
            if let Ok(e) = s.index.find_entry(h, |&j| j == i) {
                e.remove();
            }
            Self::release(s, i);
            n += 1;
            let off = i as usize * SLOT_BYTES;
            let pkt = &s.data[off..off + usize::from(slot.len)];
            // Parsed as a quoted header: the slot may hold a cut SYN.
            let Ok(hdr) = V4Header::parse(pkt, false) else {
                continue;
            };
            if let Verdict::IcmpError { len, .. } = error_to_sender(
                &cfg,
                &mut s.ctx,
                pkt,
                hdr,
                3,
                3,
                0,
                DropReason::TcpV4SynStored,
                &mut err,
            ) {
                out.extend_from_slice(&err[..len]);
                self.icmp_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.held.fetch_sub(n, Ordering::Relaxed);
        self.expired.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Counters.
    pub fn counts(&self) -> SynStoreCounts {
        SynStoreCounts {
            held: self.held.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            icmp_sent: self.icmp_sent.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(z4: u32, z: u16) -> SynKey {
        SynKey {
            t4: 0xc000_0201,
            t: 4000,
            z4,
            z,
        }
    }

    #[test]
    fn bounded_with_a_share_per_source_and_slots_reused() {
        let st = SynStore::new(
            SynStoreConfig {
                max_entries: 4,
                max_per_source: 2,
            },
            6000,
            1,
        );
        let p = [0x45u8; 40];
        assert_eq!(
            st.store(key(1, 1), &p, Timestamp(0)),
            DropReason::TcpV4SynStored
        );
        assert_eq!(
            st.store(key(1, 1), &p, Timestamp(1)),
            DropReason::TcpV4SynHeld
        );
        assert_eq!(
            st.store(key(1, 2), &p, Timestamp(2)),
            DropReason::TcpV4SynStored
        );
        assert_eq!(
            st.store(key(1, 3), &p, Timestamp(3)),
            DropReason::SynStoreSourceLimit
        );
        assert_eq!(
            st.store(key(2, 1), &p, Timestamp(4)),
            DropReason::TcpV4SynStored
        );
        assert_eq!(
            st.store(key(3, 1), &p, Timestamp(5)),
            DropReason::TcpV4SynStored
        );
        assert_eq!(
            st.store(key(4, 1), &p, Timestamp(6)),
            DropReason::SynStoreFull
        );
        // Discarding one from the middle of the list frees a slot and the source's share.
        assert!(st.discard(key(1, 2)));
        assert!(!st.discard(key(1, 2)));
        assert_eq!(
            st.store(key(1, 3), &p, Timestamp(7)),
            DropReason::TcpV4SynStored
        );
        assert_eq!(st.counts().held, 4);
        // Expiry walks the list in order; the list stayed consistent after the removal.
        let mut errs = Vec::new();
        let x = XlatConfig::default();
        assert_eq!(st.expire(Timestamp(6003), &x, &mut errs), 1);
        assert_eq!(st.expire(Timestamp(6007), &x, &mut errs), 3);
        assert_eq!(st.counts().held, 0);
        assert_eq!(st.counts().expired, 4);
        assert_eq!(st.counts().completed, 1);
        // All four slots are free again.
        for z in 10..14 {
            assert_eq!(
                st.store(key(z, 1), &p, Timestamp(8000)),
                DropReason::TcpV4SynStored
            );
        }
        assert_eq!(
            st.store(key(20, 1), &p, Timestamp(8000)),
            DropReason::SynStoreFull
        );
    }

    #[test]
    fn a_long_syn_is_cut_to_its_slot_and_discarded() {
        let st = SynStore::new(SynStoreConfig::default(), 6000, 1);
        let p = vec![0x45u8; SLOT_BYTES + 1];
        assert_eq!(
            st.store(key(1, 1), &p, Timestamp(0)),
            DropReason::TcpV4SynStored
        );
        assert!(st.discard(key(1, 1)));
        assert_eq!(st.counts().held, 0);
        assert_eq!(st.counts().completed, 1);
    }
}
