//! RFC 6146 §3.2: session tables, and the table shard that holds BIB entries and sessions.
//!
//! A session maps `(X',x),(Y',y) <--> (T,t),(Z,z)` (ICMP: `(X',Y',i1) <--> (T,Z,i2)`). Y' is
//! always Pref64(Z) and y = z (§3.2), so a session stores X', x, T, t, Z, z and finds its entry
//! from either side through two indexes: the IPv6 key `(proto, X', x, Z, z)` and the IPv4 key
//! `(proto, T, t, Z, z)` (for ICMP queries z is 0 and x/t are the identifiers).
//!
//! # Sharding
//! The tables are split into shards, each behind its own lock. A host's BIB entries and sessions
//! all live in the shard chosen by a keyed hash of its IPv6 address, so the per-host limit is a
//! shard-local counter and an IPv6 packet locks one shard. An IPv4 packet finds the same shard
//! through pool4's owner byte of its destination transport address (see [`super::pool4`]).
//!
//! # Layout and memory
//! Sessions and BIB entries live in slabs (`Vec`s with free lists). The two session indexes (by
//! IPv6 key and by IPv4 key) are `index::Index` tables of slab indexes whose buckets are one
//! cache line each, so an established-flow lookup touches one line of the index and the
//! session's own line; the two BIB indexes are `hashbrown::HashTable<u32>` (4 bytes plus one
//! control byte per bucket, used when a flow is created). A session is one 64-byte cache line;
//! see docs/conformance/rfc6146.md for the measured total per session.
//!
//! # Timers
//! Every lifetime class ([`Lifetime`]) has one fixed timeout, so each class keeps an intrusive
//! list ordered by last refresh: a refresh moves the session to the tail, expiry pops from the
//! head while the head is due. Expiry costs O(expired sessions), never O(table size). Times are
//! kept in ticks of 100 ms.

use super::bib::{Bib, BibInfo};
use super::index::{prefetch, Index, Location};
use super::log::{EventKind, MappingEvent};
use super::pool4::Pool4;
use super::tcp::{self, Lifetime, TcpState};
use super::Proto;
use crate::Timestamp;
use foldhash::fast::FixedState;
use hashbrown::{HashMap, HashTable};
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// End of an intrusive list.
pub(crate) const NIL: u32 = u32::MAX;
/// `proto` value of a free slab slot.
const FREE: u8 = 0xff;
/// Milliseconds per timer tick.
pub(crate) const TICK_MS: u64 = 100;

/// Converts a timestamp to ticks (saturating at `u32::MAX`, about 13.6 years of uptime).
#[inline]
pub(crate) fn ticks(now: Timestamp) -> u32 {
    u32::try_from(now.0 / TICK_MS).unwrap_or(u32::MAX)
}

/// A session as stored: 60 bytes of fields, aligned to one 64-byte cache line so a lookup
/// touches one line of the slab, not two.
#[derive(Debug, Clone)]
#[repr(align(64))]
pub(crate) struct Session {
    /// X'.
    pub x6: [u8; 16],
    /// T.
    pub t4: u32,
    /// Z.
    pub z4: u32,
    /// Owning BIB entry.
    pub bib: u32,
    /// Last refresh, in ticks.
    pub last: u32,
    /// Timer list links (free-list link when the slot is free).
    pub lru_prev: u32,
    pub lru_next: u32,
    /// The BIB entry's session list links.
    pub bib_prev: u32,
    pub bib_next: u32,
    /// x (or i1).
    pub x: u16,
    /// t (or i2).
    pub t: u16,
    /// z (0 for ICMP).
    pub z: u16,
    /// [`Proto`] index, or `FREE`.
    pub proto: u8,
    /// [`TcpState`] for TCP.
    pub state: u8,
    /// [`Lifetime`] class.
    pub class: u8,
}

/// The IPv6-side session key: (proto, X', x, Z, z).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key6 {
    pub proto: Proto,
    pub x6: [u8; 16],
    pub x: u16,
    pub z4: u32,
    pub z: u16,
}

/// The IPv4-side session key: (proto, T, t, Z, z).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key4 {
    pub proto: Proto,
    pub t4: u32,
    pub t: u16,
    pub z4: u32,
    pub z: u16,
}

impl Session {
    #[inline]
    fn k6_packed(&self) -> (u128, u64, u8) {
        pack6(&self.x6, self.x, self.z4, self.z, self.proto)
    }
    #[inline]
    fn k4_packed(&self) -> u128 {
        pack4(self.t4, self.t, self.z4, self.z, self.proto)
    }
}

#[inline]
fn pack6(x6: &[u8; 16], x: u16, z4: u32, z: u16, proto: u8) -> (u128, u64, u8) {
    (
        u128::from_ne_bytes(*x6),
        (u64::from(z4) << 32) | (u64::from(z) << 16) | u64::from(x),
        proto,
    )
}

#[inline]
fn pack4(t4: u32, t: u16, z4: u32, z: u16, proto: u8) -> u128 {
    (u128::from(proto) << 96)
        | (u128::from(t4) << 64)
        | (u128::from(t) << 48)
        | (u128::from(z4) << 16)
        | u128::from(z)
}

#[inline]
fn pack_b6(x6: &[u8; 16], x: u16, proto: u8) -> (u128, u32) {
    (
        u128::from_ne_bytes(*x6),
        (u32::from(proto) << 16) | u32::from(x),
    )
}

#[inline]
fn pack_b4(t4: u32, t: u16, proto: u8) -> u64 {
    (u64::from(proto) << 48) | (u64::from(t4) << 16) | u64::from(t)
}

/// Timeouts in ticks, indexed by [`Lifetime`].
pub(crate) type TimeoutTicks = [u32; Lifetime::COUNT];

/// Session filter for [`super::Nat64::sessions`] and [`super::Nat64::bib`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this protocol.
    pub proto: Option<Proto>,
    /// Only entries of this IPv6 host (X').
    pub v6: Option<Ipv6Addr>,
    /// Only entries with this IPv4 address as T or Z.
    pub v4: Option<Ipv4Addr>,
}

/// One session as listed by [`super::Nat64::sessions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// Protocol.
    pub proto: Proto,
    /// (X', x): the IPv6 host.
    pub v6_src: (Ipv6Addr, u16),
    /// (Y', y): the IPv4 peer as the IPv6 host sees it (first pool6 prefix).
    pub v6_dst: (Ipv6Addr, u16),
    /// (T, t): the pool4 transport address.
    pub v4_src: (Ipv4Addr, u16),
    /// (Z, z): the IPv4 peer. For ICMP, z is the identifier i2.
    pub v4_dst: (Ipv4Addr, u16),
    /// TCP state (None for UDP and ICMP).
    pub tcp_state: Option<TcpState>,
    /// Timer class.
    pub lifetime: Lifetime,
    /// Milliseconds until the session expires if idle.
    pub expires_in_ms: u64,
}

impl std::fmt::Display for SessionInfo {
    /// One line for `nat64d sessions`:
    /// `udp [2001:db8::a]:5000 [64:ff9b::c633:640a]:53 <-> 192.0.2.1:40000 198.51.100.10:53 - 299.9s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}]:{} [{}]:{} <-> {}:{} {}:{} {} {}.{}s",
            self.proto.as_str(),
            self.v6_src.0,
            self.v6_src.1,
            self.v6_dst.0,
            self.v6_dst.1,
            self.v4_src.0,
            self.v4_src.1,
            self.v4_dst.0,
            self.v4_dst.1,
            self.tcp_state.map_or("-", TcpState::as_str),
            self.expires_in_ms / 1000,
            self.expires_in_ms % 1000 / 100,
        )
    }
}

impl std::fmt::Display for BibInfo {
    /// One line for `nat64d bib`: `tcp [2001:db8::80]:80 <-> 192.0.2.1:8080 static 3 sessions`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}]:{} <-> {}:{} {} {} sessions",
            self.proto.as_str(),
            self.v6.0,
            self.v6.1,
            self.v4.0,
            self.v4.1,
            if self.is_static { "static" } else { "dynamic" },
            self.sessions,
        )
    }
}

/// Counts kept by a shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounts {
    /// Sessions per protocol, indexed by [`Proto`].
    pub sessions: [usize; 3],
    /// BIB entries per protocol.
    pub bib: [usize; 3],
    /// Static BIB entries (included in `bib`).
    pub static_bib: usize,
    /// Mapping-log events dropped because the queue was full.
    pub events_dropped: u64,
    /// Bytes held by the slabs and indexes (capacity, not just use).
    pub memory_bytes: usize,
}

/// What a batch needs to prefetch a shard's index buckets without taking its lock: the hash
/// key (fixed) and where the two session indexes are (updated when one grows).
#[derive(Debug)]
pub(crate) struct ShardHint {
    hs: FixedState,
    s6: Location,
    s4: Location,
}

impl ShardHint {
    /// Batch step 1 for IPv6 key `k`: prefetches its index bucket, without the lock.
    #[inline]
    pub fn prefetch6(&self, k: &Key6) {
        self.s6.prefetch(
            self.hs
                .hash_one(pack6(&k.x6, k.x, k.z4, k.z, k.proto as u8)),
        );
    }

    /// Batch step 1 for IPv4 key `k`.
    #[inline]
    pub fn prefetch4(&self, k: &Key4) {
        self.s4
            .prefetch(self.hs.hash_one(pack4(k.t4, k.t, k.z4, k.z, k.proto as u8)));
    }
}

/// One shard: BIB entries and sessions of the IPv6 hosts hashed to it.
pub(crate) struct Shard {
    hs: FixedState,
    hint: Arc<ShardHint>,
    sessions: Vec<Session>,
    free_s: u32,
    bibs: Vec<Bib>,
    free_b: u32,
    s6: Index,
    s4: Index,
    b6: HashTable<u32>,
    b4: HashTable<u32>,
    /// Sessions per subscriber: IPv6 source address masked with `subscriber_mask`.
    /// (Keyed by bytes, not `u128`: align 1 keeps a bucket at 20 bytes instead of 32.)
    hosts: HashMap<[u8; 16], u32, FixedState>,
    subscriber_mask: u128,
    /// Address-dependent filtering only: sessions per (BIB entry, IPv4 peer address) that open
    /// the filter, so the §3.5.1 check is one lookup, not a walk of the entry's sessions.
    peers: Option<HashMap<(u32, u32), u32, FixedState>>,
    /// Timer lists (head, tail) per [`Lifetime`].
    lru: [(u32, u32); Lifetime::COUNT],
    counts: TableCounts,
    events: VecDeque<MappingEvent>,
    log_cap: usize,
}

impl Shard {
    /// A shard pre-sized for `cap` sessions, with a mapping-log ring of `log_cap` (0 = off).
    pub fn new(seed: u64, subscriber_mask: u128, cap: usize, log_cap: usize, adf: bool) -> Shard {
        let hs = FixedState::with_seed(seed);
        let (s6, s4) = (Index::with_capacity(cap), Index::with_capacity(cap));
        let hint = ShardHint {
            hs: hs.clone(),
            s6: Location::default(),
            s4: Location::default(),
        };
        s6.publish(&hint.s6);
        s4.publish(&hint.s4);
        Shard {
            hs: hs.clone(),
            hint: Arc::new(hint),
            sessions: Vec::with_capacity(cap),
            free_s: NIL,
            bibs: Vec::with_capacity(cap),
            free_b: NIL,
            s6,
            s4,
            b6: HashTable::with_capacity(cap),
            b4: HashTable::with_capacity(cap),
            hosts: HashMap::with_capacity_and_hasher((cap / 8).clamp(16, 1 << 16), hs.clone()),
            subscriber_mask,
            peers: adf.then(|| HashMap::with_capacity_and_hasher(cap, hs)),
            lru: [(NIL, NIL); Lifetime::COUNT],
            counts: TableCounts::default(),
            events: VecDeque::with_capacity(log_cap),
            log_cap,
        }
    }

    // ---- lookups ----

    #[inline]
    fn h<T: std::hash::Hash>(&self, k: T) -> u64 {
        self.hs.hash_one(k)
    }

    /// The session with IPv6 key `k`.
    #[inline]
    pub fn find6(&self, k: &Key6) -> Option<u32> {
        let p = pack6(&k.x6, k.x, k.z4, k.z, k.proto as u8);
        let h = self.h(p);
        self.s6
            .find(h, |i| self.sessions[i as usize].k6_packed() == p)
    }

    /// The session with IPv4 key `k`.
    #[inline]
    pub fn find4(&self, k: &Key4) -> Option<u32> {
        let p = pack4(k.t4, k.t, k.z4, k.z, k.proto as u8);
        let h = self.h(p);
        self.s4
            .find(h, |i| self.sessions[i as usize].k4_packed() == p)
    }

    /// What a batch reads without the lock (see [`ShardHint`]).
    pub fn hint(&self) -> Arc<ShardHint> {
        Arc::clone(&self.hint)
    }

    /// Batch step 2: prefetches the line of the session with IPv6 key `k`; false if there is
    /// no such session.
    #[inline]
    pub fn prefetch_session6(&self, k: &Key6) -> bool {
        self.find6(k)
            .map(|i| prefetch(&self.sessions[i as usize]))
            .is_some()
    }

    /// Batch step 2: prefetches the line of the session with IPv4 key `k`; false if there is
    /// no such session.
    #[inline]
    pub fn prefetch_session4(&self, k: &Key4) -> bool {
        self.find4(k)
            .map(|i| prefetch(&self.sessions[i as usize]))
            .is_some()
    }

    /// The BIB entry of (X', x).
    #[inline]
    pub fn find_bib6(&self, proto: Proto, x6: &[u8; 16], x: u16) -> Option<u32> {
        let p = pack_b6(x6, x, proto as u8);
        let h = self.h(p);
        self.b6
            .find(h, |&i| {
                let b = &self.bibs[i as usize];
                pack_b6(&b.x6, b.x, b.proto) == p
            })
            .copied()
    }

    /// The BIB entry of (T, t).
    #[inline]
    pub fn find_bib4(&self, proto: Proto, t4: u32, t: u16) -> Option<u32> {
        let p = pack_b4(t4, t, proto as u8);
        let h = self.h(p);
        self.b4
            .find(h, |&i| {
                let b = &self.bibs[i as usize];
                pack_b4(b.t4, b.t, b.proto) == p
            })
            .copied()
    }

    /// A session by slab index.
    #[inline]
    pub fn session(&self, i: u32) -> &Session {
        &self.sessions[i as usize]
    }

    /// A BIB entry by slab index.
    #[inline]
    pub fn bib_entry(&self, i: u32) -> &Bib {
        &self.bibs[i as usize]
    }

    /// The subscriber (prefix) of IPv6 host `x6`.
    #[inline]
    fn subscriber(&self, x6: &[u8; 16]) -> [u8; 16] {
        (u128::from_be_bytes(*x6) & self.subscriber_mask).to_be_bytes()
    }

    /// Sessions of the subscriber prefix of IPv6 host `x6`.
    #[inline]
    pub fn subscriber_sessions(&self, x6: &[u8; 16]) -> u32 {
        self.hosts.get(&self.subscriber(x6)).copied().unwrap_or(0)
    }

    /// RFC 6146 §3.5.1 address-dependent filtering: does BIB entry `b` have a session with an
    /// IPv4 peer address `z4` (held IPv4 SYNs do not count)?
    pub fn bib_has_peer(&self, b: u32, z4: u32) -> bool {
        if let Some(p) = &self.peers {
            let indexed = p.contains_key(&(b, z4));
            // Debug builds (the test suite) check the index against the list walk.
            debug_assert_eq!(indexed, self.walk_has_peer(b, z4), "ADF peer index");
            return indexed;
        }
        self.walk_has_peer(b, z4)
    }

    fn walk_has_peer(&self, b: u32, z4: u32) -> bool {
        let mut i = self.bibs[b as usize].head;
        while i != NIL {
            let s = &self.sessions[i as usize];
            // A held IPv4 SYN (V4 INIT, TCP_INCOMING_SYN) does not open the filter.
            if s.z4 == z4 && s.class != Lifetime::TcpIncomingSyn as u8 {
                return true;
            }
            i = s.bib_next;
        }
        false
    }

    /// Adjusts the ADF peer count of (b, z4) by +1 or -1.
    fn peer_count(&mut self, b: u32, z4: u32, up: bool) {
        let Some(p) = &mut self.peers else {
            return;
        };
        if up {
            *p.entry((b, z4)).or_insert(0) += 1;
        } else if let Some(c) = p.get_mut(&(b, z4)) {
            *c -= 1;
            if *c == 0 {
                p.remove(&(b, z4));
            }
        }
    }

    // ---- BIB ----

    /// Inserts a BIB entry (the caller has claimed (T, t) in pool4).
    #[allow(clippy::too_many_arguments)]
    pub fn insert_bib(
        &mut self,
        proto: Proto,
        x6: [u8; 16],
        x: u16,
        t4: u32,
        t: u16,
        is_static: bool,
        now: Timestamp,
    ) -> u32 {
        let b = Bib {
            x6,
            created: now.0,
            t4,
            sessions: 0,
            head: NIL,
            x,
            t,
            proto: proto as u8,
            is_static,
        };
        let idx = if self.free_b != NIL {
            let i = self.free_b;
            // A free BIB slot keeps the next free index in `head`.
            self.free_b = self.bibs[i as usize].head;
            self.bibs[i as usize] = b;
            i
        } else {
            self.bibs.push(b);
            (self.bibs.len() - 1) as u32
        };
        let hs = &self.hs;
        let bibs = &self.bibs;
        let h6 = hs.hash_one(pack_b6(&x6, x, proto as u8));
        self.b6.insert_unique(h6, idx, |&i| {
            let b = &bibs[i as usize];
            hs.hash_one(pack_b6(&b.x6, b.x, b.proto))
        });
        let h4 = hs.hash_one(pack_b4(t4, t, proto as u8));
        self.b4.insert_unique(h4, idx, |&i| {
            let b = &bibs[i as usize];
            hs.hash_one(pack_b4(b.t4, b.t, b.proto))
        });
        self.counts.bib[proto as usize] += 1;
        if is_static {
            self.counts.static_bib += 1;
        }
        self.log(EventKind::Created, idx, now);
        idx
    }

    fn remove_bib(&mut self, b: u32, pool4: &Pool4, now: Timestamp) {
        self.log(EventKind::Removed, b, now);
        let e = self.bibs[b as usize].clone();
        let hs = &self.hs;
        let h6 = hs.hash_one(pack_b6(&e.x6, e.x, e.proto));
        if let Ok(o) = self.b6.find_entry(h6, |&i| i == b) {
            o.remove();
        }
        let h4 = hs.hash_one(pack_b4(e.t4, e.t, e.proto));
        if let Ok(o) = self.b4.find_entry(h4, |&i| i == b) {
            o.remove();
        }
        let proto = Proto::from_index(e.proto);
        if let (Some(ai), Some(p)) = (pool4.index_of(e.t4), proto) {
            pool4.release(ai, p, e.t);
        }
        if let Some(p) = proto {
            self.counts.bib[p as usize] -= 1;
        }
        if e.is_static {
            self.counts.static_bib -= 1;
        }
        let slot = &mut self.bibs[b as usize];
        slot.proto = FREE;
        slot.head = self.free_b;
        self.free_b = b;
    }

    fn log(&mut self, kind: EventKind, b: u32, now: Timestamp) {
        if self.log_cap == 0 {
            return;
        }
        if self.events.len() >= self.log_cap {
            self.counts.events_dropped += 1;
            return;
        }
        let e = &self.bibs[b as usize];
        let Some(proto) = Proto::from_index(e.proto) else {
            return;
        };
        self.events.push_back(MappingEvent {
            kind,
            proto,
            v6: (Ipv6Addr::from(e.x6), e.x),
            v4: (Ipv4Addr::from(e.t4), e.t),
            created: Timestamp(e.created),
            at: now,
        });
    }

    /// Moves queued mapping-log events to `out`.
    pub fn drain_events(&mut self, out: &mut Vec<MappingEvent>) {
        out.extend(self.events.drain(..));
    }

    // ---- sessions ----

    /// Inserts a session of BIB entry `b` towards (Z, z), in timer class `class`.
    pub fn insert_session(
        &mut self,
        b: u32,
        z4: u32,
        z: u16,
        state: u8,
        class: Lifetime,
        now: Timestamp,
    ) -> u32 {
        let be = &self.bibs[b as usize];
        let s = Session {
            x6: be.x6,
            t4: be.t4,
            z4,
            bib: b,
            last: ticks(now),
            lru_prev: NIL,
            lru_next: NIL,
            bib_prev: NIL,
            bib_next: be.head,
            x: be.x,
            t: be.t,
            z,
            proto: be.proto,
            state,
            class: class as u8,
        };
        let idx = if self.free_s != NIL {
            let i = self.free_s;
            self.free_s = self.sessions[i as usize].lru_next;
            self.sessions[i as usize] = s;
            i
        } else {
            self.sessions.push(s);
            (self.sessions.len() - 1) as u32
        };
        // BIB session list: push front.
        let old_head = self.bibs[b as usize].head;
        if old_head != NIL {
            self.sessions[old_head as usize].bib_prev = idx;
        }
        let be = &mut self.bibs[b as usize];
        be.head = idx;
        be.sessions += 1;
        self.lru_push(idx, class);
        let hs = &self.hs;
        let sessions = &self.sessions;
        let s = &sessions[idx as usize];
        let h6 = hs.hash_one(s.k6_packed());
        let h4 = hs.hash_one(s.k4_packed());
        if self
            .s6
            .insert(h6, idx, |i| hs.hash_one(sessions[i as usize].k6_packed()))
        {
            self.s6.publish(&self.hint.s6);
        }
        if self
            .s4
            .insert(h4, idx, |i| hs.hash_one(sessions[i as usize].k4_packed()))
        {
            self.s4.publish(&self.hint.s4);
        }
        let sub = self.subscriber(&self.sessions[idx as usize].x6);
        *self.hosts.entry(sub).or_insert(0) += 1;
        let p = usize::from(self.sessions[idx as usize].proto);
        self.counts.sessions[p] += 1;
        if class != Lifetime::TcpIncomingSyn {
            self.peer_count(b, z4, true);
        }
        idx
    }

    /// Refreshes session `i` into timer class `class` (RFC 6146: "sets (or resets) the timer").
    #[inline]
    pub fn refresh(&mut self, i: u32, class: Lifetime, now: Timestamp) {
        let t = ticks(now);
        let s = &self.sessions[i as usize];
        if s.last == t && s.class == class as u8 {
            return;
        }
        self.lru_unlink(i);
        let s = &mut self.sessions[i as usize];
        let was_held = s.class == Lifetime::TcpIncomingSyn as u8;
        s.last = t;
        s.class = class as u8;
        let (b, z4) = (s.bib, s.z4);
        self.lru_push(i, class);
        // A held IPv4 SYN's session opens the filter once the IPv6 side answered.
        if was_held && class != Lifetime::TcpIncomingSyn {
            self.peer_count(b, z4, true);
        }
    }

    /// Sets the TCP state of session `i`.
    #[inline]
    pub fn set_state(&mut self, i: u32, st: TcpState) {
        self.sessions[i as usize].state = st as u8;
    }

    /// Removes session `i`, and its BIB entry if that was dynamic and this was its last session.
    /// Returns the number of removed sessions (1), for the caller's global count.
    pub fn remove_session(&mut self, i: u32, pool4: &Pool4, now: Timestamp) {
        self.lru_unlink(i);
        let s = self.sessions[i as usize].clone();
        let hs = &self.hs;
        self.s6.remove(hs.hash_one(s.k6_packed()), i);
        self.s4.remove(hs.hash_one(s.k4_packed()), i);
        // BIB session list unlink.
        if s.bib_prev != NIL {
            self.sessions[s.bib_prev as usize].bib_next = s.bib_next;
        } else {
            self.bibs[s.bib as usize].head = s.bib_next;
        }
        if s.bib_next != NIL {
            self.sessions[s.bib_next as usize].bib_prev = s.bib_prev;
        }
        let sub = self.subscriber(&s.x6);
        if let Some(c) = self.hosts.get_mut(&sub) {
            *c -= 1;
            if *c == 0 {
                self.hosts.remove(&sub);
            }
        }
        self.counts.sessions[usize::from(s.proto)] -= 1;
        if s.class != Lifetime::TcpIncomingSyn as u8 {
            self.peer_count(s.bib, s.z4, false);
        }
        let slot = &mut self.sessions[i as usize];
        slot.proto = FREE;
        slot.lru_next = self.free_s;
        self.free_s = i;
        let be = &mut self.bibs[s.bib as usize];
        be.sessions -= 1;
        if be.sessions == 0 && !be.is_static {
            self.remove_bib(s.bib, pool4, now);
        }
    }

    /// Removes BIB entry `b` with all its sessions; returns the number of sessions removed.
    pub fn remove_bib_and_sessions(&mut self, b: u32, pool4: &Pool4, now: Timestamp) -> usize {
        // Make it dynamic so the last session's removal takes the entry with it.
        self.bibs[b as usize].is_static = false;
        self.counts.static_bib -= 1;
        let mut n = 0;
        while self.bibs[b as usize].proto != FREE && self.bibs[b as usize].head != NIL {
            let s = self.bibs[b as usize].head;
            self.remove_session(s, pool4, now);
            n += 1;
        }
        if self.bibs[b as usize].proto != FREE {
            // It had no session.
            self.remove_bib(b, pool4, now);
        }
        n
    }

    fn lru_push(&mut self, i: u32, class: Lifetime) {
        let c = class as usize;
        let (_, tail) = self.lru[c];
        {
            let s = &mut self.sessions[i as usize];
            s.lru_prev = tail;
            s.lru_next = NIL;
        }
        if tail != NIL {
            self.sessions[tail as usize].lru_next = i;
        } else {
            self.lru[c].0 = i;
        }
        self.lru[c].1 = i;
    }

    fn lru_unlink(&mut self, i: u32) {
        let s = &self.sessions[i as usize];
        let (p, n, c) = (s.lru_prev, s.lru_next, usize::from(s.class));
        if p != NIL {
            self.sessions[p as usize].lru_next = n;
        } else {
            self.lru[c].0 = n;
        }
        if n != NIL {
            self.sessions[n as usize].lru_prev = p;
        } else {
            self.lru[c].1 = p;
        }
    }

    /// Expires due sessions. Cost: O(removed + moved), never O(table size).
    /// Handles at most `budget` due sessions (removed, or moved to TRANS); returns (removed,
    /// handled). The caller repeats while `handled == budget`, releasing the lock in between.
    pub fn expire(
        &mut self,
        now: Timestamp,
        to: &TimeoutTicks,
        pool4: &Pool4,
        budget: usize,
    ) -> (usize, usize) {
        let nt = ticks(now);
        let mut removed = 0;
        let mut handled = 0;
        for class in Lifetime::ALL {
            let c = class as usize;
            loop {
                let head = self.lru[c].0;
                if head == NIL || handled == budget {
                    break;
                }
                let s = &self.sessions[head as usize];
                // Due when at least the full timeout has passed, whatever the tick rounding.
                if u64::from(s.last) + u64::from(to[c]) + 1 > u64::from(nt) {
                    break;
                }
                let next = if s.proto == Proto::Tcp as u8 {
                    tcp::on_expiry(TcpState::from_u8(s.state))
                } else {
                    None
                };
                handled += 1;
                match next {
                    Some((st, l)) => {
                        self.set_state(head, st);
                        self.refresh(head, l, now);
                    }
                    None => {
                        self.remove_session(head, pool4, now);
                        removed += 1;
                    }
                }
            }
        }
        (removed, handled)
    }

    // ---- inspection ----

    pub fn counts(&self) -> TableCounts {
        let mut c = self.counts;
        c.memory_bytes = self.memory_bytes();
        c
    }

    fn memory_bytes(&self) -> usize {
        self.sessions.capacity() * std::mem::size_of::<Session>()
            + self.bibs.capacity() * std::mem::size_of::<Bib>()
            + self.s6.allocation_size()
            + self.s4.allocation_size()
            + self.b6.allocation_size()
            + self.b4.allocation_size()
            + self.hosts.allocation_size()
            + self.peers.as_ref().map_or(0, |p| p.allocation_size())
    }

    /// Appends the sessions matching `f` (at most `limit` in total in `out`).
    pub fn sessions_into(
        &self,
        f: &Filter,
        now: Timestamp,
        to: &TimeoutTicks,
        embed: &dyn Fn(Ipv4Addr) -> Ipv6Addr,
        out: &mut Vec<SessionInfo>,
        limit: usize,
    ) {
        let nt = u64::from(ticks(now));
        for s in &self.sessions {
            if out.len() >= limit {
                return;
            }
            let Some(proto) = Proto::from_index(s.proto) else {
                continue;
            };
            if f.proto.is_some_and(|p| p != proto)
                || f.v6.is_some_and(|a| a.octets() != s.x6)
                || f.v4
                    .is_some_and(|a| u32::from(a) != s.t4 && u32::from(a) != s.z4)
            {
                continue;
            }
            let c = usize::from(s.class);
            let due = u64::from(s.last) + u64::from(to[c]) + 1;
            let z = Ipv4Addr::from(s.z4);
            let (y, zp) = if proto == Proto::Icmp {
                (s.x, s.t)
            } else {
                (s.z, s.z)
            };
            out.push(SessionInfo {
                proto,
                v6_src: (Ipv6Addr::from(s.x6), s.x),
                v6_dst: (embed(z), y),
                v4_src: (Ipv4Addr::from(s.t4), s.t),
                v4_dst: (z, zp),
                tcp_state: (proto == Proto::Tcp).then(|| TcpState::from_u8(s.state)),
                lifetime: Lifetime::ALL[c],
                expires_in_ms: due.saturating_sub(nt) * TICK_MS,
            });
        }
    }

    /// Appends the BIB entries matching `f`.
    pub fn bib_into(&self, f: &Filter, out: &mut Vec<BibInfo>, limit: usize) {
        for b in &self.bibs {
            if out.len() >= limit {
                return;
            }
            let Some(proto) = Proto::from_index(b.proto) else {
                continue;
            };
            if f.proto.is_some_and(|p| p != proto)
                || f.v6.is_some_and(|a| a.octets() != b.x6)
                || f.v4.is_some_and(|a| u32::from(a) != b.t4)
            {
                continue;
            }
            out.push(BibInfo {
                proto,
                v6: (Ipv6Addr::from(b.x6), b.x),
                v4: (Ipv4Addr::from(b.t4), b.t),
                is_static: b.is_static,
                sessions: b.sessions,
                created: Timestamp(b.created),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_layout_is_compact() {
        assert_eq!(std::mem::size_of::<Session>(), 64);
        assert_eq!(std::mem::size_of::<Bib>(), 48);
    }

    /// The lock-free prefetch hint follows both session indexes as they grow.
    #[test]
    fn hint_follows_growing_indexes() {
        let mut sh = Shard::new(7, u128::MAX, 8, 0, false);
        let (s6, s4) = (sh.s6.allocation_size(), sh.s4.allocation_size());
        let b = sh.insert_bib(
            Proto::Udp,
            [0x20; 16],
            1000,
            0xc000_0201,
            2000,
            true,
            Timestamp(0),
        );
        for z in 0..200u16 {
            sh.insert_session(b, 0xc633_640a, z, 0, Lifetime::Udp, Timestamp(0));
        }
        assert!(sh.s6.allocation_size() > s6 && sh.s4.allocation_size() > s4);
        assert!(sh.s6.is_published_at(&sh.hint.s6));
        assert!(sh.s4.is_published_at(&sh.hint.s4));
        for z in 0..200u16 {
            let k = Key4 {
                proto: Proto::Udp,
                t4: 0xc000_0201,
                t: 2000,
                z4: 0xc633_640a,
                z,
            };
            assert!(sh.prefetch_session4(&k));
        }
    }

    #[test]
    fn packed_keys_are_injective_on_fields() {
        let a = [1u8; 16];
        let k = |x, z4, z, p| pack6(&a, x, z4, z, p);
        assert_ne!(k(1, 2, 3, 0), k(1, 2, 3, 1));
        assert_ne!(k(1, 2, 3, 0), k(2, 2, 3, 0));
        assert_ne!(k(1, 2, 3, 0), k(1, 3, 3, 0));
        assert_ne!(k(1, 2, 3, 0), k(1, 2, 4, 0));
        assert_ne!(pack4(1, 2, 3, 4, 0), pack4(1, 2, 3, 4, 1));
        assert_ne!(pack4(1, 2, 3, 4, 0), pack4(1, 2, 3, 5, 0));
        assert_ne!(pack4(1, 2, 3, 4, 0), pack4(2, 2, 3, 4, 0));
        assert_ne!(pack_b4(1, 2, 0), pack_b4(1, 2, 2));
    }
}
