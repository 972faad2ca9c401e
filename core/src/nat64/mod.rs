//! RFC 6146: stateful NAT64.
//!
//! Many IPv6-only hosts share a few IPv4 addresses (pool4). IPv6 packets create bindings (BIB
//! entries, [`bib`]) and sessions ([`session`]); IPv4 packets are translated only when they match
//! a binding, subject to the filtering mode. Header translation is RFC 7915's
//! ([`crate::rfc7915`]); this module supplies the [`crate::Mapper`] that computes each
//! outgoing tuple, following the processing steps of RFC 6146 §3.3, one function each in
//! [`steps`]:
//!
//! 1. §3.4 determining the incoming tuple (fragments through [`frag`]; fragments that arrive
//!    before their first fragment are held in [`held`] until it comes),
//! 2. §3.5 filtering and updating binding and session information ([`tcp`] for TCP),
//! 3. §3.6 computing the outgoing tuple,
//! 4. §3.7 translating the packet (RFC 7915, in place),
//! 5. §3.8 handling hairpinning ([`Nat64::translate`] runs the IPv4→IPv6 pass again).
//!
//! # Using it
//! Build a [`Nat64Config`], call [`Nat64::new`] once, share the `Nat64` (`&self` everywhere; it
//! is `Sync`) with all workers, call [`Nat64::translate`] per packet with a per-worker
//! [`crate::Ctx`] whose `now` is current, call [`Nat64::expire`] from a timer (every second
//! is plenty), and drain [`Nat64::drain_events`] for the mapping log. After every packet's
//! verdict, call [`Nat64::take_released`] until it returns `None` and send what it returns like
//! a verdict of `translate`: fragments that arrived before their first fragment (RFC 6146 §3.4),
//! translated now that it came. A worker that holds a batch of packets calls
//! [`Nat64::prefetch`] on it first, so the table lookups of the batch overlap their cache
//! misses (a hint; translations do not depend on it). [`Nat64::sessions`] and
//! [`Nat64::bib`] list the tables for the control socket.
//!
//! # Concurrency
//! The tables are sharded by a keyed hash of the IPv6 host address ([`session`]); every packet
//! locks exactly one shard (an ICMP error: one per mapped header), so both directions of a flow
//! may arrive on different workers. The hash seed comes from the driver
//! ([`Nat64Config::hash_seed`]) so remote peers cannot aim collisions at one bucket or shard.

pub mod bib;
pub mod frag;
pub mod held;
mod index;
pub mod log;
pub mod pool4;
mod reasm;
pub mod session;
pub mod steps;
pub mod synstore;
pub mod tcp;

use crate::pool6::Pool6;
use crate::rfc7915::{self, XlatConfig};
use crate::tuple::Ctx;
use crate::verdict::{DropReason, Verdict};
use crate::Timestamp;
use bib::{BibInfo, StaticBib};
use foldhash::fast::FixedState;
use frag::{FragConfig, FragStore};
use held::{HeldCounts, HeldStore};
use log::MappingEvent;
use pool4::{Pool4, Pool4Config, Pool4Error, PortKey};
use session::{Filter, SessionInfo, Shard, TableCounts, TimeoutTicks};
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use synstore::{SynStore, SynStoreConfig, SynStoreCounts};
use tcp::Lifetime;

pub use steps::Nat64Mapper;

/// The three BIBs / session tables of RFC 6146 §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Proto {
    /// TCP.
    Tcp = 0,
    /// UDP.
    Udp = 1,
    /// ICMP query messages (echo), keyed by identifier.
    Icmp = 2,
}

impl Proto {
    /// All protocols, in index order.
    pub const ALL: [Proto; 3] = [Proto::Tcp, Proto::Udp, Proto::Icmp];

    /// Lower-case name (`tcp`, `udp`, `icmp`), as used in the mapping log and CLI filters.
    pub const fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }

    /// From the index stored in tables.
    pub(crate) fn from_index(i: u8) -> Option<Proto> {
        Proto::ALL.get(usize::from(i)).copied()
    }

    /// From an IPv4 protocol number.
    pub const fn from_v4(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            1 => Some(Proto::Icmp),
            _ => None,
        }
    }

    /// From an IPv6 upper-layer protocol number.
    pub const fn from_v6(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            58 => Some(Proto::Icmp),
            _ => None,
        }
    }

    /// The IPv4 protocol number.
    pub const fn v4_number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Icmp => 1,
        }
    }

    /// The IPv6 protocol number.
    pub const fn v6_number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Icmp => 58,
        }
    }
}

impl std::str::FromStr for Proto {
    type Err = ();
    fn from_str(s: &str) -> Result<Proto, ()> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "icmp" => Ok(Proto::Icmp),
            _ => Err(()),
        }
    }
}

/// Filtering of IPv4 packets that match a binding but no session (RFC 4787 §5, RFC 6146 §3.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filtering {
    /// Endpoint-independent filtering (RFC 4787 REQ-8's recommendation for transparency):
    /// any IPv4 peer may use an existing binding.
    #[default]
    EndpointIndependent,
    /// Address-dependent filtering: only IPv4 addresses the IPv6 host has sent to (RFC 6146
    /// §3.5.1 "Address-Dependent Filters").
    AddressDependent,
}

/// Session idle timeouts in seconds (RFC 6146 §4 defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// UDP (default 300 = UDP_DEFAULT; RFC minimum UDP_MIN = 120).
    pub udp: u32,
    /// ICMP queries (default 60 = ICMP_DEFAULT).
    pub icmp: u32,
    /// TCP established (default 7200 = TCP_EST, also the RFC minimum; TCP_TRANS is added on
    /// expiry, giving RFC 5382's 2 h 4 min).
    pub tcp_est: u32,
    /// TCP transitory (default 240 = TCP_TRANS, also the RFC minimum).
    pub tcp_trans: u32,
    /// Hold of an unsolicited IPv4 SYN (default 6 = TCP_INCOMING_SYN).
    pub tcp_incoming_syn: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            udp: 300,
            icmp: 60,
            tcp_est: 7200,
            tcp_trans: 240,
            tcp_incoming_syn: 6,
        }
    }
}

impl Timeouts {
    fn ticks(&self) -> TimeoutTicks {
        let t = |s: u32| s.saturating_mul((1000 / session::TICK_MS) as u32);
        let mut out = [0; Lifetime::COUNT];
        out[Lifetime::Udp as usize] = t(self.udp);
        out[Lifetime::Icmp as usize] = t(self.icmp);
        out[Lifetime::TcpEst as usize] = t(self.tcp_est);
        out[Lifetime::TcpTrans as usize] = t(self.tcp_trans);
        out[Lifetime::TcpIncomingSyn as usize] = t(self.tcp_incoming_syn);
        out
    }
}

/// Everything the stateful translator needs; validated by [`Nat64::new`].
#[derive(Debug, Clone)]
pub struct Nat64Config {
    /// Pref64::/n (RFC 6146 §3.5.4): IPv4 peers appear as addresses under the first prefix;
    /// IPv6 packets are accepted towards any of them.
    pub pool6: Pool6,
    /// The IPv4 addresses and port ranges handed out.
    pub pool4: Pool4Config,
    /// Idle timeouts.
    pub timeouts: Timeouts,
    /// Refuse timeouts below the RFC minimums (UDP 120 s, TCP_EST 7200 s, TCP_TRANS 240 s).
    /// Default true; tests and labs turn it off to watch expiry quickly.
    pub enforce_rfc_minimums: bool,
    /// Most sessions in total (default 1,048,576). New flows beyond it are refused
    /// ([`DropReason::TableFull`]); existing flows continue.
    pub max_sessions: usize,
    /// Most sessions of one subscriber, the IPv6 addresses sharing the first
    /// `subscriber_prefix_len` bits (default 65,536), so one subscriber (or a SYN flood from one
    /// source, or from the IPv4 side towards one static binding) fills at most its share,
    /// however many addresses of its prefix it uses. Refused flows:
    /// [`DropReason::SubscriberSessionLimit`].
    pub max_sessions_per_host: u32,
    /// The IPv6 prefix length that makes one subscriber for `max_sessions_per_host`, 1..=128
    /// (default 64: RFC 6146 §3.5 leaves the unit to the operator; a /64 is what one
    /// subscriber's LAN gets, and SLAAC privacy addresses rotate inside it). 128 limits each
    /// address on its own.
    pub subscriber_prefix_len: u8,
    /// Filtering of IPv4 packets (default endpoint-independent).
    pub filtering: Filtering,
    /// Configured BIB entries (port forwards).
    pub static_bib: Vec<StaticBib>,
    /// Fragment store limits.
    pub frag: FragConfig,
    /// Store of unsolicited IPv4 SYNs for TCP simultaneous open (RFC 6146 §3.5.2.2).
    pub syn_store: SynStoreConfig,
    /// Queue binding created/removed events for the mapping log (default false).
    pub mapping_log: bool,
    /// Events buffered per shard before new ones are dropped and counted (default 4096).
    pub mapping_log_capacity: usize,
    /// Number of table shards, a power of two from 1 to 128 (default 16).
    pub shards: usize,
    /// Secret seed for every table hash and for port randomization; the driver passes a random
    /// value (the core reads no OS randomness).
    pub hash_seed: u64,
    /// RFC 7915 header translation options.
    pub xlat: XlatConfig,
}

impl Nat64Config {
    /// A configuration with RFC defaults for `pool6` and `pool4_addrs`.
    pub fn new(pool6: Pool6, pool4_addrs: Vec<Ipv4Addr>, hash_seed: u64) -> Nat64Config {
        Nat64Config {
            pool6,
            pool4: Pool4Config {
                addrs: pool4_addrs,
                ..Pool4Config::default()
            },
            timeouts: Timeouts::default(),
            enforce_rfc_minimums: true,
            max_sessions: 1 << 20,
            max_sessions_per_host: 1 << 16,
            subscriber_prefix_len: 64,
            filtering: Filtering::default(),
            static_bib: Vec::new(),
            frag: FragConfig::default(),
            syn_store: SynStoreConfig::default(),
            mapping_log: false,
            mapping_log_capacity: 4096,
            shards: 16,
            hash_seed,
            xlat: XlatConfig::default(),
        }
    }
}

impl Nat64Config {
    /// Largest `max_sessions` (2^26): session and BIB slab indexes are `u32` per shard, and at
    /// about 190 bytes a session this is already 12.8 GB.
    pub const MAX_SESSIONS: usize = 1 << 26;

    /// An upper estimate of the bytes [`Nat64::new`] allocates for these limits (tables
    /// pre-sized for `max_sessions`, fragment store, reassembly slots, mapping-log rings, pool4
    /// owner bytes), so a driver can refuse a configuration the machine cannot hold before
    /// allocating. Saturates instead of overflowing.
    pub fn table_bytes(&self) -> usize {
        // A hashbrown table of `n` items: buckets = next power of two of n * 8 / 7, each with
        // one control byte plus the item.
        fn table(n: usize, item: usize) -> usize {
            let buckets = n
                .saturating_mul(8)
                .div_ceil(7)
                .max(4)
                .checked_next_power_of_two()
                .unwrap_or(usize::MAX);
            buckets.saturating_mul(item + 1)
        }
        let shards = self.shards.clamp(1, 128);
        let share = self.max_sessions.div_ceil(shards);
        let per_shard = share.saturating_add(share / 4).min(self.max_sessions);
        let mut shard = per_shard
            .saturating_mul(
                std::mem::size_of::<session::Session>() + std::mem::size_of::<bib::Bib>(),
            )
            // Two session indexes (64-byte buckets of ten slots, one per 8 sessions pre-sized)
            // and two hashbrown BIB indexes.
            .saturating_add(index::Index::bytes_for(per_shard).saturating_mul(2))
            .saturating_add(table(per_shard, 4).saturating_mul(2))
            .saturating_add(table((per_shard / 8).clamp(16, 1 << 16), 20));
        if self.filtering == Filtering::AddressDependent {
            shard = shard.saturating_add(table(per_shard, 12));
        }
        if self.mapping_log {
            shard = shard.saturating_add(
                self.mapping_log_capacity
                    .saturating_mul(std::mem::size_of::<log::MappingEvent>()),
            );
        }
        let f = &self.frag;
        let frags = table(f.max_entries, 80)
            .saturating_add(f.max_entries.saturating_mul(2 * 48))
            .saturating_add(table(f.max_entries.saturating_mul(2), 36));
        let reasm = f
            .max_reassembly
            .saturating_mul(crate::HEADROOM + 40 + 65535 + 65536 / 8)
            .saturating_add(HeldStore::bytes(f.max_held, f.max_held_bytes));
        let ports: usize = [self.pool4.tcp, self.pool4.udp, self.pool4.icmp]
            .iter()
            .map(|r| usize::from(r.last.saturating_sub(r.first)) + 1)
            .sum();
        shard
            .saturating_mul(shards)
            .saturating_add(self.syn_store.bytes())
            .saturating_add(frags)
            .saturating_add(reasm)
            .saturating_add(self.pool4.addrs.len().saturating_mul(ports))
    }
}

/// Configuration errors of [`Nat64::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Nat64ConfigError {
    /// pool4 is invalid.
    #[error("pool4: {0}")]
    Pool4(#[from] Pool4Error),
    /// A timeout is below its RFC minimum, or zero.
    #[error(
        "timeout {name} = {value} s is below the minimum of {min} s (RFC 6146 §4; \
         enforce_rfc_minimums = false lifts the RFC minimums, for labs)"
    )]
    Timeout {
        /// Config key.
        name: &'static str,
        /// Configured seconds.
        value: u32,
        /// Minimum seconds.
        min: u32,
    },
    /// `shards` is not a power of two in 1..=128.
    #[error("shards = {0}: must be a power of two from 1 to 128")]
    Shards(usize),
    /// `subscriber_prefix_len` is not in 1..=128.
    #[error("subscriber_prefix_len = {0}: must be from 1 to 128")]
    SubscriberPrefixLen(u8),
    /// A limit is larger than the core supports.
    #[error("{name} = {value} is larger than the maximum of {max}")]
    TooLarge {
        /// Field name.
        name: &'static str,
        /// Configured value.
        value: usize,
        /// Maximum.
        max: usize,
    },
    /// A limit is zero.
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
    /// A static BIB entry is invalid.
    #[error("static BIB entry #{index} ({proto} [{v6}]:{v6_port} <-> {v4}:{v4_port}): {reason}")]
    StaticBib {
        /// Position in the list.
        index: usize,
        /// Protocol name.
        proto: &'static str,
        /// X'.
        v6: Ipv6Addr,
        /// x.
        v6_port: u16,
        /// T.
        v4: Ipv4Addr,
        /// t.
        v4_port: u16,
        /// Why.
        reason: &'static str,
    },
}

/// Why a static BIB entry could not be added at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StaticBibError(pub &'static str);

/// What [`Nat64::expire`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpireStats {
    /// Sessions removed.
    pub sessions_removed: usize,
    /// Stored IPv4 SYNs whose TCP_INCOMING_SYN ran out (RFC 6146 §3.5.2.2 V4 INIT).
    pub syn_expired: usize,
    /// Held fragments whose first fragment did not come within the fragment timeout (RFC 6146
    /// §3.4), discarded without an ICMP error.
    pub held_expired: usize,
}

/// Table totals for metrics and `nat64d sessions` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Nat64Counts {
    /// Sessions per protocol, indexed by [`Proto`].
    pub sessions: [usize; 3],
    /// BIB entries per protocol (static ones included).
    pub bib: [usize; 3],
    /// Static BIB entries.
    pub static_bib: usize,
    /// Datagrams in the fragment store.
    pub fragments: usize,
    /// Fragmented ICMP messages being reassembled.
    pub reassembling: usize,
    /// Fragments held until their first fragment comes (RFC 6146 §3.4).
    pub held: HeldCounts,
    /// Mapping-log events dropped because a queue was full.
    pub events_dropped: u64,
    /// Bytes held by the session and BIB tables (allocated capacity).
    pub table_bytes: usize,
    /// Bytes of pool4 port owner bytes.
    pub pool4_bytes: usize,
    /// The store of unsolicited IPv4 SYNs.
    pub syn_store: SynStoreCounts,
}

/// Pref64::/n on the packet path: each prefix as a (mask, value) pair of `u128`, so matching is
/// one AND and compare per prefix, and a /96 embeds or extracts with one OR or cast. The RFC 6052
/// §3.1 rule of pool6 (`wkp_strict`) is precomputed per prefix.
#[derive(Debug, Clone)]
pub(crate) struct Pref64Match {
    /// (mask, prefix value, prefix, strict: RFC 6052 §3.1 applies).
    masks: Vec<(u128, u128, crate::rfc6052::Prefix6052, bool)>,
}

impl Pref64Match {
    fn new(pool6: &Pool6) -> Pref64Match {
        let masks = pool6
            .prefixes()
            .iter()
            .map(|p| {
                let bits = u32::from(p.prefix_len());
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                let strict = pool6.wkp_strict() && p.is_well_known();
                (mask, u128::from(p.addr()) & mask, *p, strict)
            })
            .collect();
        Pref64Match { masks }
    }

    /// True if `a` lies in one of the prefixes.
    #[inline]
    pub(crate) fn contains(&self, a: &Ipv6Addr) -> bool {
        let v = u128::from(*a);
        self.masks.iter().any(|&(m, p, _, _)| v & m == p)
    }

    /// RFC 6052 §2.3 extraction (any prefix), with RFC 6052 §3.1 for the Well-Known Prefix.
    #[inline]
    pub(crate) fn extract(&self, a: &Ipv6Addr) -> Option<Result<Ipv4Addr, DropReason>> {
        let v = u128::from(*a);
        let &(_, _, p, strict) = self.masks.iter().find(|&&(m, pv, _, _)| v & m == pv)?;
        let z = if p.prefix_len() == 96 {
            Ipv4Addr::from(v as u32)
        } else {
            p.extract(&a.octets())?
        };
        if strict && crate::rfc6052::is_non_global_v4(z) {
            return Some(Err(DropReason::WkpNonGlobal));
        }
        Some(Ok(z))
    }

    /// The IPv4 address embedded in `a` under any prefix, without RFC 6052 §3.1 (for naming why
    /// a refused address was refused).
    #[cold]
    pub(crate) fn extract_lax(&self, a: &Ipv6Addr) -> Option<Ipv4Addr> {
        let v = u128::from(*a);
        let &(_, _, p, _) = self.masks.iter().find(|&&(m, pv, _, _)| v & m == pv)?;
        p.extract(&a.octets())
    }

    /// RFC 6052 §2.3 embedding under the first prefix (§3.5.4), with RFC 6052 §3.1.
    #[inline]
    pub(crate) fn embed(&self, z: Ipv4Addr) -> Result<Ipv6Addr, DropReason> {
        let (_, pv, p, strict) = self.masks[0];
        if strict && crate::rfc6052::is_non_global_v4(z) {
            return Err(DropReason::WkpNonGlobal);
        }
        Ok(if p.prefix_len() == 96 {
            Ipv6Addr::from(pv | u128::from(u32::from(z)))
        } else {
            Ipv6Addr::from(p.embed(z))
        })
    }
}

/// The stateful translator: configuration and tables, shared by all workers.
pub struct Nat64 {
    pub(crate) pool6: Pool6,
    pub(crate) pref64: Pref64Match,
    pub(crate) pool4: Pool4,
    pub(crate) xlat: XlatConfig,
    pub(crate) filtering: Filtering,
    pub(crate) max_sessions: usize,
    pub(crate) per_host: u32,
    pub(crate) to: TimeoutTicks,
    shards: Box<[Mutex<Shard>]>,
    /// Per shard, what [`Nat64::prefetch`] reads without the lock.
    hints: Box<[Arc<session::ShardHint>]>,
    shard_mask: usize,
    /// Mask of `subscriber_prefix_len` bits.
    subscriber_mask: u128,
    host_hs: FixedState,
    /// Static BIB entries whose port lies outside pool4's ranges: `pack (proto, T, t)` → shard.
    static_oor: RwLock<hashbrown::HashMap<(u8, u32, u16), usize, FixedState>>,
    /// `static_oor` is not empty (checked before taking its lock on the packet path).
    has_oor: AtomicBool,
    pub(crate) frags: FragStore,
    /// Non-first fragments waiting for their first fragment (§3.4).
    pub(crate) held: HeldStore,
    reasm: reasm::Reassembly,
    /// Unsolicited IPv4 SYNs waiting for a simultaneous open (§3.5.2.2).
    pub(crate) synstore: SynStore,
    /// Sessions in all shards (kept exact; admission reserves before inserting).
    total: AtomicUsize,
}

impl std::fmt::Debug for Nat64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nat64")
            .field("pool4", &self.pool4.config())
            .field("filtering", &self.filtering)
            .field("shards", &self.shards.len())
            .field("sessions", &self.total.load(Ordering::Relaxed))
            .finish()
    }
}

impl Nat64 {
    /// Validates `cfg` and builds the tables, pre-sized for the configured limits.
    ///
    /// # Errors
    /// See [`Nat64ConfigError`].
    pub fn new(cfg: Nat64Config) -> Result<Nat64, Nat64ConfigError> {
        let t = &cfg.timeouts;
        let mins: [(&'static str, u32, u32); 5] = if cfg.enforce_rfc_minimums {
            [
                ("udp", t.udp, 120),
                ("icmp", t.icmp, 1),
                ("tcp_est", t.tcp_est, 7200),
                ("tcp_trans", t.tcp_trans, 240),
                ("tcp_incoming_syn", t.tcp_incoming_syn, 1),
            ]
        } else {
            [
                ("udp", t.udp, 1),
                ("icmp", t.icmp, 1),
                ("tcp_est", t.tcp_est, 1),
                ("tcp_trans", t.tcp_trans, 1),
                ("tcp_incoming_syn", t.tcp_incoming_syn, 1),
            ]
        };
        for (name, value, min) in mins {
            if value < min {
                return Err(Nat64ConfigError::Timeout { name, value, min });
            }
        }
        if !cfg.shards.is_power_of_two() || cfg.shards > 128 {
            return Err(Nat64ConfigError::Shards(cfg.shards));
        }
        if cfg.max_sessions == 0 {
            return Err(Nat64ConfigError::ZeroLimit("max_sessions"));
        }
        if cfg.max_sessions > Nat64Config::MAX_SESSIONS {
            return Err(Nat64ConfigError::TooLarge {
                name: "max_sessions",
                value: cfg.max_sessions,
                max: Nat64Config::MAX_SESSIONS,
            });
        }
        for (name, value, max) in [
            ("frag.max_entries", cfg.frag.max_entries, 1 << 20),
            ("frag.max_reassembly", cfg.frag.max_reassembly, 1024),
            ("frag.max_held", cfg.frag.max_held, 1 << 16),
            ("frag.max_held_bytes", cfg.frag.max_held_bytes, 1 << 28),
            ("mapping_log_capacity", cfg.mapping_log_capacity, 1 << 20),
            (
                "syn_store.max_entries",
                cfg.syn_store.max_entries,
                SynStoreConfig::MAX_ENTRIES,
            ),
        ] {
            if value > max {
                return Err(Nat64ConfigError::TooLarge { name, value, max });
            }
        }
        if cfg.max_sessions_per_host == 0 {
            return Err(Nat64ConfigError::ZeroLimit("max_sessions_per_host"));
        }
        if !(1..=128).contains(&cfg.subscriber_prefix_len) {
            return Err(Nat64ConfigError::SubscriberPrefixLen(
                cfg.subscriber_prefix_len,
            ));
        }
        if cfg.frag.max_entries == 0 {
            return Err(Nat64ConfigError::ZeroLimit("frag.max_entries"));
        }
        if cfg.syn_store.max_entries > 0 && cfg.syn_store.max_per_source == 0 {
            return Err(Nat64ConfigError::ZeroLimit("syn_store.max_per_source"));
        }
        if cfg.frag.max_entries_per_source == 0 {
            return Err(Nat64ConfigError::ZeroLimit("frag.max_entries_per_source"));
        }
        if cfg.frag.max_held > 0 && cfg.frag.max_held_bytes == 0 {
            return Err(Nat64ConfigError::ZeroLimit("frag.max_held_bytes"));
        }
        if cfg.frag.max_held > 0 && cfg.frag.max_held_per_source == 0 {
            return Err(Nat64ConfigError::ZeroLimit("frag.max_held_per_source"));
        }
        if cfg.frag.max_reassembly > 0 && cfg.frag.max_reassembly_per_source == 0 {
            return Err(Nat64ConfigError::ZeroLimit(
                "frag.max_reassembly_per_source",
            ));
        }
        // Port selection has a key of its own (see pool4): clients see their mapped ports.
        let pool4 = Pool4::new(
            cfg.pool4.clone(),
            PortKey::from_seed(cfg.hash_seed),
            cfg.shards,
        )?;
        // Pre-size every shard for its share plus a quarter (hosts hash unevenly); a shard that
        // holds more (few heavy hosts) grows, an amortized cost on flow creation only.
        let share = cfg.max_sessions.div_ceil(cfg.shards);
        let per_shard = (share + share / 4).min(cfg.max_sessions);
        let log_cap = if cfg.mapping_log {
            cfg.mapping_log_capacity
        } else {
            0
        };
        let seed = cfg.hash_seed;
        let subscriber_mask = u128::MAX << (128 - u32::from(cfg.subscriber_prefix_len));
        let shards: Box<[Mutex<Shard>]> = (0..cfg.shards)
            .map(|i| {
                Mutex::new(Shard::new(
                    shard_seed(seed, i),
                    subscriber_mask,
                    per_shard,
                    log_cap,
                    cfg.filtering == Filtering::AddressDependent,
                ))
            })
            .collect();
        let hints = shards.iter().map(|s| lock(s).hint()).collect();
        let nat = Nat64 {
            pref64: Pref64Match::new(&cfg.pool6),
            pool6: cfg.pool6,
            pool4,
            xlat: cfg.xlat,
            filtering: cfg.filtering,
            max_sessions: cfg.max_sessions,
            per_host: cfg.max_sessions_per_host,
            to: cfg.timeouts.ticks(),
            shards,
            hints,
            shard_mask: cfg.shards - 1,
            subscriber_mask,
            host_hs: FixedState::with_seed(seed.rotate_left(17) ^ 0x5bd1_e995),
            static_oor: RwLock::new(hashbrown::HashMap::with_hasher(FixedState::with_seed(seed))),
            has_oor: AtomicBool::new(false),
            frags: FragStore::new(cfg.frag, subscriber_mask, seed.rotate_left(41)),
            held: HeldStore::new(
                cfg.frag.max_held,
                cfg.frag.max_held_bytes,
                cfg.frag.max_held_per_source,
                cfg.frag.timeout_ms,
                subscriber_mask,
                seed.rotate_left(53) ^ 0x510e_527f_ade6_82d1,
            ),
            reasm: reasm::Reassembly::new(
                cfg.frag.max_reassembly,
                cfg.frag.max_reassembly_per_source,
                subscriber_mask,
                cfg.frag.timeout_ms,
            ),
            synstore: SynStore::new(
                cfg.syn_store,
                u64::from(cfg.timeouts.tcp_incoming_syn).saturating_mul(1000),
                seed.rotate_left(29) ^ 0x3c6e_f372,
            ),
            total: AtomicUsize::new(0),
        };
        for (index, e) in cfg.static_bib.iter().enumerate() {
            nat.add_static(e)
                .map_err(|reason| Nat64ConfigError::StaticBib {
                    index,
                    proto: e.proto.as_str(),
                    v6: e.v6.0,
                    v6_port: e.v6.1,
                    v4: e.v4.0,
                    v4_port: e.v4.1,
                    reason,
                })?;
        }
        Ok(nat)
    }

    fn add_static(&self, e: &StaticBib) -> Result<(), &'static str> {
        self.add_static_bib(e, Timestamp(0)).map_err(|e| e.0)
    }

    /// Adds a static BIB entry (a port forward) to the running tables, e.g. on a configuration
    /// reload.
    ///
    /// # Errors
    /// The IPv4 address is not in pool4, the IPv6 address lies in pool6, or either transport
    /// address is already bound.
    pub fn add_static_bib(&self, e: &StaticBib, now: Timestamp) -> Result<(), StaticBibError> {
        let t4 = u32::from(e.v4.0);
        let Some(ai) = self.pool4.index_of(t4) else {
            return Err(StaticBibError("the IPv4 address is not in pool4"));
        };
        if self.pool6.contains(&e.v6.0.octets()) {
            return Err(StaticBibError("the IPv6 address lies in pool6"));
        }
        let x6 = e.v6.0.octets();
        let si = self.shard_of_host(&x6);
        let mut sh = lock(&self.shards[si]);
        if sh.find_bib6(e.proto, &x6, e.v6.1).is_some() {
            return Err(StaticBibError(
                "the IPv6 transport address already has a BIB entry",
            ));
        }
        let used = StaticBibError("the IPv4 transport address is already used");
        if self.pool4.range(e.proto).contains(e.v4.1) {
            if !self.pool4.claim(ai, e.proto, e.v4.1, si) {
                return Err(used);
            }
        } else {
            let mut oor = self.static_oor.write().unwrap_or_else(|e| e.into_inner());
            let k = (e.proto as u8, t4, e.v4.1);
            if oor.contains_key(&k) {
                return Err(used);
            }
            oor.insert(k, si);
            self.has_oor.store(true, Ordering::Release);
        }
        sh.insert_bib(e.proto, x6, e.v6.1, t4, e.v4.1, true, now);
        Ok(())
    }

    /// Removes a static BIB entry and the sessions using it (their connections are cut; the
    /// forward is gone). Returns false if no such static entry exists.
    pub fn remove_static_bib(&self, e: &StaticBib, now: Timestamp) -> bool {
        let x6 = e.v6.0.octets();
        let si = self.shard_of_host(&x6);
        let mut sh = lock(&self.shards[si]);
        let Some(b) = sh.find_bib6(e.proto, &x6, e.v6.1) else {
            return false;
        };
        let be = sh.bib_entry(b);
        if !be.is_static || be.t4 != u32::from(e.v4.0) || be.t != e.v4.1 {
            return false;
        }
        let n = sh.remove_bib_and_sessions(b, &self.pool4, now);
        self.total.fetch_sub(n, Ordering::Relaxed);
        if !self.pool4.range(e.proto).contains(e.v4.1) {
            let mut oor = self.static_oor.write().unwrap_or_else(|e| e.into_inner());
            oor.remove(&(e.proto as u8, u32::from(e.v4.0), e.v4.1));
            self.has_oor.store(!oor.is_empty(), Ordering::Release);
        }
        true
    }

    /// The shard holding IPv6 host `x6`: chosen by its subscriber prefix, so every address of
    /// one subscriber lives in one shard and its session count is one shard-local counter.
    #[inline]
    pub(crate) fn shard_of_host(&self, x6: &[u8; 16]) -> usize {
        let p = u128::from_be_bytes(*x6) & self.subscriber_mask;
        (self.host_hs.hash_one(p) >> 40) as usize & self.shard_mask
    }

    /// The shard holding the BIB entry of (T, t), found without locking.
    #[inline]
    pub(crate) fn shard_of_v4(&self, p: Proto, ai: usize, t4: u32, t: u16) -> Option<usize> {
        self.pool4.owner(ai, p, t).or_else(|| {
            if !self.has_oor.load(Ordering::Acquire) {
                return None;
            }
            let oor = self.static_oor.read().unwrap_or_else(|e| e.into_inner());
            oor.get(&(p as u8, t4, t)).copied()
        })
    }

    #[inline]
    pub(crate) fn shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        lock(&self.shards[i])
    }

    /// Reserves room for one new session of host `x6` in `sh` (RFC 6146 §3.5 "if resources and
    /// policy permit"): its subscriber prefix's share first, then the total.
    #[inline]
    pub(crate) fn admit(&self, sh: &Shard, x6: &[u8; 16]) -> Result<(), DropReason> {
        if sh.subscriber_sessions(x6) >= self.per_host {
            return Err(DropReason::SubscriberSessionLimit);
        }
        if self.total.fetch_add(1, Ordering::Relaxed) >= self.max_sessions {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(DropReason::TableFull);
        }
        Ok(())
    }

    /// Gives back a reservation that did not become a session.
    #[inline]
    pub(crate) fn unadmit(&self) {
        self.total.fetch_sub(1, Ordering::Relaxed);
    }

    /// Looks up the sessions of a batch of packets ahead of translating them, so the cache
    /// misses of the whole batch overlap instead of following one another: first the session
    /// index bucket of every packet is prefetched, then (those lines now arriving) every packet's
    /// session line. [`Nat64::translate`] on each packet afterwards finds its table lines in
    /// cache. At a million sessions visited in random order a lookup otherwise waits for two or
    /// three misses in a row (index line, session line, for IPv4 the pool4 owner byte).
    ///
    /// Only a hint: results never depend on it. Looks at the first [`PREFETCH_BATCH`] packets;
    /// only plain TCP/UDP packets and ICMP echo messages without extension headers or fragment
    /// fields are looked up (anything else is translated as usual, just without the head start).
    /// Takes each packet's shard lock once, briefly; creates and refreshes nothing. Returns how
    /// many of the packets have a session (whose line was prefetched).
    pub fn prefetch<'p>(&self, pkts: impl IntoIterator<Item = &'p [u8]>) -> usize {
        let mut probes: [Option<(usize, Probe)>; PREFETCH_BATCH] = [None; PREFETCH_BATCH];
        let mut batch: [&[u8]; PREFETCH_BATCH] = [&[]; PREFETCH_BATCH];
        let mut n = 0;
        for (slot, p) in batch.iter_mut().zip(pkts) {
            *slot = p;
            n += 1;
            // IPv4: the pool4 owner byte that names the shard comes first.
            if let Some((ai, proto, t)) = self.owner_of4(p) {
                self.pool4.prefetch_owner(ai, proto, t);
            }
        }
        for (slot, p) in probes.iter_mut().zip(&batch[..n]) {
            *slot = self.probe(p);
            // No lock here: a lock is a full barrier that would wait for the loads before it
            // (the pool4 owner bytes of IPv4 packets), and prefetches need none.
            if let Some((si, k)) = slot {
                match k {
                    Probe::V6(k) => self.hints[*si].prefetch6(k),
                    Probe::V4(k) => self.hints[*si].prefetch4(k),
                }
            }
        }
        let mut found = 0;
        for (si, k) in probes.iter().flatten() {
            let sh = lock(&self.shards[*si]);
            found += usize::from(match k {
                Probe::V6(k) => sh.prefetch_session6(k),
                Probe::V4(k) => sh.prefetch_session4(k),
            });
        }
        found
    }

    /// The pool4 owner byte an IPv4 packet's shard is found by: (address index, protocol,
    /// port or identifier), for [`Nat64::prefetch`].
    #[inline]
    fn owner_of4(&self, p: &[u8]) -> Option<(usize, Proto, u16)> {
        if p.first()? >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let proto = Proto::from_v4(*p.get(9)?)?;
        let t4 = u32::from_be_bytes(p.get(16..20)?.try_into().ok()?);
        let ai = self.pool4.index_of(t4)?;
        let t = match proto {
            Proto::Icmp => p.get(ihl + 4..ihl + 6)?,
            _ => p.get(ihl + 2..ihl + 4)?,
        };
        Some((ai, proto, u16::from_be_bytes([t[0], t[1]])))
    }

    /// The shard and session key of a packet for [`Nat64::prefetch`]: the §3.4 incoming tuple
    /// of the common case, read straight from the headers.
    #[inline]
    fn probe(&self, p: &[u8]) -> Option<(usize, Probe)> {
        let be16 = |i: usize| p.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        match p.first()? >> 4 {
            6 => {
                let proto = Proto::from_v6(*p.get(6)?)?;
                let x6: [u8; 16] = p.get(8..24)?.try_into().ok()?;
                let dst: [u8; 16] = p.get(24..40)?.try_into().ok()?;
                let z4 = u32::from(self.pref64.extract(&Ipv6Addr::from(dst))?.ok()?);
                let (x, z) = match proto {
                    // Echo request: (X', i1).
                    Proto::Icmp if *p.get(40)? == 128 => (be16(44)?, 0),
                    Proto::Icmp => return None,
                    _ => (be16(40)?, be16(42)?),
                };
                let k = session::Key6 {
                    proto,
                    x6,
                    x,
                    z4,
                    z,
                };
                Some((self.shard_of_host(&x6), Probe::V6(k)))
            }
            4 => {
                let ihl = usize::from(p[0] & 0x0f) * 4;
                // MF or a fragment offset: left to the fragment path.
                if be16(6)? & 0x3fff != 0 || ihl < 20 {
                    return None;
                }
                let proto = Proto::from_v4(*p.get(9)?)?;
                let z4 = u32::from_be_bytes(p.get(12..16)?.try_into().ok()?);
                let t4 = u32::from_be_bytes(p.get(16..20)?.try_into().ok()?);
                let ai = self.pool4.index_of(t4)?;
                let (z, t) = match proto {
                    // Echo reply: (T, i2).
                    Proto::Icmp if *p.get(ihl)? == 0 => (0, be16(ihl + 4)?),
                    Proto::Icmp => return None,
                    _ => (be16(ihl)?, be16(ihl + 2)?),
                };
                let si = self.shard_of_v4(proto, ai, t4, t)?;
                let k = session::Key4 {
                    proto,
                    t4,
                    t,
                    z4,
                    z,
                };
                Some((si, Probe::V4(k)))
            }
            _ => None,
        }
    }

    /// Translates one packet (RFC 6146 §3.3 steps 1–5). Same buffer contract as
    /// [`crate::siit::Siit::translate`]: the packet is `buf[start..start + len]` with
    /// [`crate::HEADROOM`] bytes free in front; `aux` receives fragments and ICMP errors.
    pub fn translate(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        len: usize,
        aux: &mut [u8],
    ) -> Verdict {
        let Some(&first) = buf.get(start) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        // §3.4: fragmented ICMP messages are reassembled first (see `reasm`).
        let Some(pkt) = start.checked_add(len).and_then(|end| buf.get(start..end)) else {
            return Verdict::Drop(DropReason::BufferTooSmall);
        };
        let held = match first >> 4 {
            4 => reasm::Reassembly::is_candidate4(pkt) || self.zero_checksum_udp4(pkt, ctx.now),
            6 => reasm::Reassembly::is_candidate6(pkt),
            _ => false,
        };
        if held {
            let now = ctx.now;
            let done = |b: &mut [u8], s: usize, l: usize| {
                ctx.reassembled = true;
                let v = self.translate_packet(ctx, b, s, l, aux);
                ctx.reassembled = false;
                match v {
                    // The whole message lies in the store's slot: hand it out in `aux`.
                    Verdict::Forward { start, len } => match aux.get_mut(..len) {
                        Some(out) => {
                            out.copy_from_slice(&b[start..start + len]);
                            // IPv6 -> IPv4: the sender fragmented it, so the fragments would
                            // have been translated with DF = 0 (RFC 7915 §5.1.1); the whole
                            // message keeps that, so a smaller IPv4 link MTU fragments it
                            // instead of bouncing it (the sender cannot shrink it any further).
                            if out.len() >= 20 && out[0] >> 4 == 4 && out[6] & 0x40 != 0 {
                                out[6] &= !0x40;
                                let ihl = usize::from(out[0] & 0x0f) * 4;
                                out[10] = 0;
                                out[11] = 0;
                                if let Some(h) = out.get(..ihl) {
                                    let c = crate::checksum::finish(crate::checksum::sum(h));
                                    out[10..12].copy_from_slice(&c.to_be_bytes());
                                }
                            }
                            Verdict::ForwardAux { len }
                        }
                        None => Verdict::Drop(DropReason::BufferTooSmall),
                    },
                    v => v,
                }
            };
            return if first >> 4 == 4 {
                let v = self.reasm.feed4(pkt, now, done);
                // A zero-checksum UDP datagram's fragments that came before its first fragment
                // were held: released now, they join its reassembly (`take_released`).
                if !self.held.is_empty() && reasm::Reassembly::is_zero_checksum_udp4(pkt) {
                    if let Some(key) = reasm::Reassembly::udp4_key(pkt) {
                        if self.reasm.has(&key, now) {
                            self.held.release(&key);
                        }
                    }
                }
                v
            } else {
                self.reasm.feed6(pkt, now, done)
            };
        }
        self.translate_packet(ctx, buf, start, len, aux)
    }

    /// §3.4: an IPv4 UDP fragment of a datagram with a zero checksum, which is reassembled so
    /// the checksum can be calculated: its first fragment, or a later one whose datagram is
    /// being reassembled. Only while `compute_udp_zero_checksum` is on (off, such datagrams are
    /// dropped whole as RFC 7915 §4.5 lets a translator do). Costs a header check, and a lookup
    /// for non-first UDP fragments only.
    #[inline]
    fn zero_checksum_udp4(&self, pkt: &[u8], now: Timestamp) -> bool {
        if !self.xlat.compute_udp_zero_checksum {
            return false;
        }
        if reasm::Reassembly::is_zero_checksum_udp4(pkt) {
            return true;
        }
        match reasm::Reassembly::non_first_udp4_key(pkt) {
            Some(key) => self.reasm.has(&key, now),
            None => false,
        }
    }

    /// §3.3 steps 1–5 for one whole packet or non-ICMP fragment.
    fn translate_packet(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        len: usize,
        aux: &mut [u8],
    ) -> Verdict {
        let Some(&first) = buf.get(start) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        let mut m = Nat64Mapper::new(self);
        match first >> 4 {
            4 => match rfc7915::translate_4to6(&self.xlat, &mut m, ctx, buf, start, len, aux) {
                // §3.4: other protocols SHOULD get ICMPv4 Protocol Unreachable.
                Verdict::Drop(r @ DropReason::UnsupportedProtocol) => {
                    self.refuse4(ctx, &buf[start..start + len], r, 2, aux)
                }
                // §3.4: a fragment before its first fragment is held (intact: the mapper failed
                // before the translator wrote).
                Verdict::Drop(DropReason::FragmentFirstMissing) => {
                    self.hold_early(&m, ctx.now, &buf[start..start + len], false)
                }
                // §3.5.2.2: an unsolicited SYN is stored (the mapper failed before the
                // translator wrote, so the packet is intact).
                Verdict::Drop(r) => match m.syn_to_store() {
                    Some(k) => self.store_syn(k, &buf[start..start + len], ctx.now),
                    None => Verdict::Drop(r),
                },
                v => v,
            },
            6 => {
                let v = rfc7915::translate_6to4(&self.xlat, &mut m, ctx, buf, start, len, aux);
                match v {
                    // §3.5.1.1, §3.5.2.3: no IPv4 transport address or no room for the binding:
                    // ICMPv6 Destination Unreachable, Address Unreachable (SHOULD). The mapper
                    // fails before the translator writes, so the packet is intact.
                    Verdict::Drop(
                        r @ (DropReason::PoolExhausted
                        | DropReason::TableFull
                        | DropReason::SubscriberSessionLimit),
                    ) => self.refuse6(ctx, &buf[start..start + len], r, 3, aux),
                    // §3.4: other protocols SHOULD get ICMPv6 Port Unreachable.
                    Verdict::Drop(r @ DropReason::UnsupportedProtocol) => {
                        self.refuse6(ctx, &buf[start..start + len], r, 4, aux)
                    }
                    // §3.4: a fragment before its first fragment is held.
                    Verdict::Drop(DropReason::FragmentFirstMissing) => {
                        self.hold_early(&m, ctx.now, &buf[start..start + len], false)
                    }
                    // §3.5.2.2 V4 INIT: the IPv6 SYN completes a simultaneous open; the stored
                    // IPv4 SYN is dropped silently (RFC 5382 REQ-4).
                    Verdict::Forward { start, len } if m.syn_to_take().is_some() => {
                        self.complete_open(m.syn_to_take(), start, len)
                    }
                    // §3.8: the translated packet is addressed to pool4, so it is treated as if
                    // received on the IPv4 interface, from step 2 on; the hop limit was already
                    // decremented once.
                    Verdict::Forward { start, len } if m.hairpin() => {
                        self.hairpin_pass(ctx, buf, start, len, aux)
                    }
                    // The same for a translated ICMP error, which lies in `aux`: moved back into
                    // `buf` where its packet was, then translated from there (every output).
                    Verdict::ForwardAux { len: alen } if m.hairpin() => {
                        let Some(dst) = buf.get_mut(start..start + alen) else {
                            return Verdict::Drop(DropReason::BufferTooSmall);
                        };
                        dst.copy_from_slice(&aux[..alen]);
                        let mut back = Nat64Mapper::new(self);
                        let x = XlatConfig {
                            decrement_ttl: false,
                            ..self.xlat
                        };
                        rfc7915::translate_4to6(&x, &mut back, ctx, buf, start, alen, aux)
                    }
                    v => v,
                }
            }
            _ => Verdict::Drop(DropReason::UnknownVersion),
        }
    }

    /// §3.8: the second pass of a hairpinned packet, `buf[start..start + len]` the IPv4 packet
    /// of the first: processed as if received on the IPv4 side, from step 2 on, without a
    /// second hop-limit decrement. A non-first fragment whose first fragment's second pass has
    /// not run yet (it is running on another worker, between its two passes) is held like any
    /// early fragment, as this IPv4 packet, and passes again when that first fragment does.
    fn hairpin_pass(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        len: usize,
        aux: &mut [u8],
    ) -> Verdict {
        let mut back = Nat64Mapper::new(self);
        let x = XlatConfig {
            decrement_ttl: false,
            ..self.xlat
        };
        match rfc7915::translate_4to6(&x, &mut back, ctx, buf, start, len, aux) {
            // The mapper failed before the translator wrote: the IPv4 packet is intact.
            Verdict::Drop(DropReason::FragmentFirstMissing) => {
                self.hold_early(&back, ctx.now, &buf[start..start + len], true)
            }
            v => v,
        }
    }

    /// §3.4: holds `pkt`, a TCP or UDP fragment whose first fragment was not seen, until the
    /// first fragment is translated (or the fragment timeout passes). `hairpin`: `pkt` is the
    /// IPv4 packet of a hairpinned fragment's first pass.
    #[cold]
    #[inline(never)]
    fn hold_early(
        &self,
        m: &Nat64Mapper<'_>,
        now: Timestamp,
        pkt: &[u8],
        hairpin: bool,
    ) -> Verdict {
        let Some((key, offset)) = m.early_fragment() else {
            return Verdict::Drop(DropReason::FragmentFirstMissing);
        };
        match self.held.hold(key, offset, pkt, now, hairpin) {
            Ok(()) => {
                // The first fragment may have been translated on another worker between this
                // packet's lookup and its hold, and found the store empty then: look again, so
                // the fragment is not left to expire. (Either that worker sees this fragment
                // held, or this lookup sees its entry: both go through the stores' locks.) The
                // same for a zero-checksum UDP datagram whose reassembly opened meanwhile.
                if self.frags.lookup(&key, now).is_some()
                    || (!key.v6 && key.proto == 17 && self.reasm.has(&key, now))
                {
                    self.held.release(&key);
                }
                Verdict::Drop(DropReason::FragmentHeld)
            }
            Err(r) => Verdict::Drop(r),
        }
    }

    /// §3.4: the first fragment of datagram `key` was translated; its held fragments are
    /// released for [`Nat64::take_released`].
    #[inline]
    pub(crate) fn first_fragment_translated(&self, key: &frag::FragKey) {
        if !self.held.is_empty() {
            self.held.release(key);
        }
    }

    /// Translates the next fragment released from the hold (RFC 6146 §3.4: it arrived before its
    /// first fragment, which has now been translated), writing it to `buf[start..]` first; the
    /// verdict is one of [`Nat64::translate`]'s, for the same buffers. `None` when no fragment
    /// waits: one relaxed atomic load. Call it after every packet's verdict until it returns
    /// `None`; any worker may take any released fragment.
    #[inline]
    pub fn take_released(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        aux: &mut [u8],
    ) -> Option<Verdict> {
        if !self.held.has_released() {
            return None;
        }
        self.take_released_slow(ctx, buf, start, aux)
    }

    #[cold]
    #[inline(never)]
    fn take_released_slow(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        aux: &mut [u8],
    ) -> Option<Verdict> {
        let room = buf.get_mut(start..).unwrap_or(&mut []);
        match self.held.take(room)? {
            // The second pass of a hairpinned fragment (§3.8): it is released only once its
            // datagram's first fragment has passed there too.
            Ok((len, true)) => Some(self.hairpin_pass(ctx, buf, start, len, aux)),
            // As if it arrived now (a zero-checksum UDP fragment joins its reassembly).
            Ok((len, false)) => Some(self.translate(ctx, buf, start, len, aux)),
            Err(_) => Some(Verdict::Drop(DropReason::BufferTooSmall)),
        }
    }

    /// §3.5.2.2: stores the unsolicited IPv4 SYN `pkt` (its IPv4 total length of it).
    #[cold]
    #[inline(never)]
    fn store_syn(&self, k: synstore::SynKey, pkt: &[u8], now: Timestamp) -> Verdict {
        let total = pkt
            .get(2..4)
            .map_or(pkt.len(), |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
        let pkt = &pkt[..total.min(pkt.len())];
        Verdict::Drop(self.synstore.store(k, pkt, now))
    }

    /// §3.5.2.2 V4 INIT + V6 SYN: the translated IPv6 SYN (`buf[start..start + len]`) goes out
    /// and the SYN stored for the session is discarded. RFC 6146 forwards only the IPv6 SYN, and
    /// RFC 5382 REQ-4 (which §3.5.2.2 implements) says "the NAT MUST silently drop the original
    /// unsolicited inbound SYN packet": the IPv4 peer, in SYN-SENT, answers the IPv6 SYN with a
    /// SYN-ACK and the simultaneous open completes from there (RFC 9293 §3.5).
    #[cold]
    #[inline(never)]
    fn complete_open(&self, k: Option<synstore::SynKey>, start: usize, len: usize) -> Verdict {
        if let Some(k) = k {
            // The slot is freed and counted as completed.
            self.synstore.discard(k);
        }
        Verdict::Forward { start, len }
    }

    /// An ICMPv6 Destination Unreachable with `code` about `pkt`, rate-limited and suppressed
    /// like the translator's own errors (RFC 4443 §2.4).
    fn refuse6(
        &self,
        ctx: &mut Ctx,
        pkt: &[u8],
        r: DropReason,
        code: u8,
        aux: &mut [u8],
    ) -> Verdict {
        match rfc7915::v6_to_v4::V6Header::parse(pkt, true) {
            Ok(h) => {
                rfc7915::v6_to_v4::error_to_sender(&self.xlat, ctx, pkt, &h, 1, code, 0, r, aux)
            }
            Err(_) => Verdict::Drop(r),
        }
    }

    /// An ICMPv4 Destination Unreachable with `code` about `pkt`.
    fn refuse4(
        &self,
        ctx: &mut Ctx,
        pkt: &[u8],
        r: DropReason,
        code: u8,
        aux: &mut [u8],
    ) -> Verdict {
        match rfc7915::v4_to_v6::V4Header::parse(pkt, true) {
            Ok(h) => {
                rfc7915::v4_to_v6::error_to_sender(&self.xlat, ctx, pkt, h, 3, code, 0, r, aux)
            }
            Err(_) => Verdict::Drop(r),
        }
    }

    /// Expires idle sessions and their dynamic BIB entries, and old fragment-store entries.
    /// Call it from a timer (every 0.1–1 s); its cost is proportional to what expires, not to the
    /// table size.
    ///
    /// The ICMP Port Unreachable errors owed to the sources of expired stored SYNs (§3.5.2.2)
    /// are discarded here; a driver that can send them calls [`Nat64::expire_with_errors`].
    pub fn expire(&self, now: Timestamp) -> ExpireStats {
        let mut errors = Vec::new();
        self.expire_with_errors(now, &mut errors)
    }

    /// [`Nat64::expire`], appending to `errors` (back to back, walk them with
    /// [`crate::packets`]) the ICMPv4 Port Unreachable (3/3) errors that RFC 6146 §3.5.2.2 V4
    /// INIT sends "back to the source of the v4 SYN" when no IPv6 SYN came within
    /// TCP_INCOMING_SYN. Each quotes the stored SYN; they are rate-limited like the
    /// translator's own errors (`xlat.icmp_errors_per_sec`, `xlat.send_icmp_errors`). The
    /// caller writes them to the IPv4 side.
    pub fn expire_with_errors(&self, now: Timestamp, errors: &mut Vec<u8>) -> ExpireStats {
        let mut st = ExpireStats {
            syn_expired: self.synstore.expire(now, &self.xlat, errors),
            ..ExpireStats::default()
        };
        // In chunks, so a mass expiry (a clock jump, a flood ageing out) never holds a shard's
        // lock for long while workers wait on it.
        const CHUNK: usize = 1024;
        for s in self.shards.iter() {
            loop {
                let (removed, handled) = lock(s).expire(now, &self.to, &self.pool4, CHUNK);
                self.total.fetch_sub(removed, Ordering::Relaxed);
                st.sessions_removed += removed;
                if handled < CHUNK {
                    break;
                }
            }
        }
        self.frags.expire(now);
        st.held_expired = self.held.expire(now);
        self.reasm.expire(now);
        st
    }

    /// A snapshot of the sessions matching `f`, at most `limit` of them (for the control socket;
    /// allocates, takes each shard lock in turn).
    pub fn sessions(&self, f: &Filter, now: Timestamp, limit: usize) -> Vec<SessionInfo> {
        let mut out = Vec::new();
        let p = self.pool6.prefixes()[0];
        let embed = move |a: Ipv4Addr| Ipv6Addr::from(p.embed(a));
        for s in self.shards.iter() {
            lock(s).sessions_into(f, now, &self.to, &embed, &mut out, limit);
        }
        out
    }

    /// A snapshot of the BIB entries matching `f`, at most `limit`.
    pub fn bib(&self, f: &Filter, limit: usize) -> Vec<BibInfo> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            lock(s).bib_into(f, &mut out, limit);
        }
        out
    }

    /// Moves the queued mapping-log events to `out` (empty unless `mapping_log` is on).
    pub fn drain_events(&self, out: &mut Vec<MappingEvent>) {
        for s in self.shards.iter() {
            lock(s).drain_events(out);
        }
    }

    /// Table totals.
    pub fn counts(&self) -> Nat64Counts {
        let mut c = Nat64Counts::default();
        for s in self.shards.iter() {
            let t: TableCounts = lock(s).counts();
            for i in 0..3 {
                c.sessions[i] += t.sessions[i];
                c.bib[i] += t.bib[i];
            }
            c.static_bib += t.static_bib;
            c.events_dropped += t.events_dropped;
            c.table_bytes += t.memory_bytes;
        }
        c.fragments = self.frags.len();
        c.syn_store = self.synstore.counts();
        c.reassembling = self.reasm.len();
        c.held = self.held.counts();
        c.pool4_bytes = self.pool4.len()
            * Proto::ALL
                .iter()
                .map(|&p| self.pool4.range(p).len())
                .sum::<usize>();
        c
    }

    /// Total sessions.
    pub fn session_count(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// pool4 (addresses, ranges, port use).
    pub fn pool4(&self) -> &Pool4 {
        &self.pool4
    }

    /// pool6.
    pub fn pool6(&self) -> &Pool6 {
        &self.pool6
    }
}

/// Most packets one [`Nat64::prefetch`] call looks at.
pub const PREFETCH_BATCH: usize = 32;

/// A session key for [`Nat64::prefetch`].
#[derive(Debug, Clone, Copy)]
enum Probe {
    V6(session::Key6),
    V4(session::Key4),
}

/// The hash seed of table shard `i` (foldhash, for indexing only: never the port key).
fn shard_seed(seed: u64, i: usize) -> u64 {
    seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Locks a shard; a poisoned lock (a panic in another worker) is used as is, since every table
/// update completes before anything that could panic.
#[inline]
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
