//! Transport tuples and the address-mapping seam between RFC 7915 translation and its users.
//!
//! RFC 7915 translates headers but leaves "how addresses are mapped" to the user: stateless SIIT
//! (RFC 6052 prefixes and the EAMT, [`crate::siit`]) or stateful NAT64 (RFC 6146 BIB and sessions).
//! The translator extracts a [`Tuple4`]/[`Tuple6`] from each header it translates and asks a
//! [`Mapper`] for the outgoing tuple (RFC 6146 §3.6 "computing the outgoing tuple").

use crate::verdict::DropReason;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Transport identifiers of a tuple (RFC 6146 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4 {
    /// TCP or UDP source and destination ports.
    Ports { src: u16, dst: u16 },
    /// The identifier of an ICMP/ICMPv6 query (echo) message.
    IcmpId(u16),
    /// No transport identifiers: another protocol, or a non-first fragment.
    None,
}

/// Fragment fields of a packet that is a fragment (IPv4 MF/offset, or an IPv6 Fragment header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frag {
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// Fragment offset in 8-byte units; 0 for the first fragment (which carries the ports).
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
}

/// An IPv4 tuple. `proto` is the IPv4 protocol number (1 for ICMP).
///
/// Inputs to a [`Mapper`] also carry `frag` (for fragments) and `tcp_flags` (the TCP flags byte,
/// 0 for other protocols) so a stateful mapper can run the RFC 6146 state machine; in a mapper's
/// output only the addresses, `proto` and `l4` are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub l4: L4,
    pub frag: Option<Frag>,
    pub tcp_flags: u8,
}

/// An IPv6 tuple. `proto` is the upper-layer next header (58 for ICMPv6). See [`Tuple4`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub proto: u8,
    pub l4: L4,
    pub frag: Option<Frag>,
    pub tcp_flags: u8,
}

/// Which header a mapping request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role<'a, T> {
    /// The header of an ordinary packet.
    Packet,
    /// The packet quoted inside an ICMP error. It travelled the opposite way, so a stateful mapper
    /// matches it against sessions reversed (RFC 6146 §3.5.3). Mapped before the outer header.
    Inner,
    /// The outer header of an ICMP error; the argument is the already translated inner tuple, so a
    /// stateful mapper can route the error to the host that sent the quoted packet. A stateless
    /// mapper may fall back to the RFC 6791 pool for the source.
    ErrorOuter(&'a T),
}

/// Time as passed into the core: milliseconds since an arbitrary epoch chosen by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// This time plus `ms` milliseconds.
    pub fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }
}

/// Per-call context owned by the calling worker: the time and a counter for IPv4 identification
/// values (RFC 7915 §5.1), so the core keeps no global mutable state.
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    pub now: Timestamp,
    /// Next IPv4 identification for translated packets that need one.
    pub next_ip_id: u16,
    /// Token bucket for translator-generated ICMP errors (RFC 7915 §4.4 rate limit). Starts full
    /// (`u32::MAX`); each use clamps it to the configured `icmp_errors_per_sec`, so the first
    /// burst is the configured rate whatever it is.
    pub icmp_tokens: u32,
    /// When the bucket was last refilled (ms).
    pub icmp_bucket_time: u64,
    /// Set by a driver while it translates a datagram it reassembled from IPv6 fragments: the
    /// sender fragmented it, so it leaves with DF=0 whole and the IPv4 MTU check of RFC 7915
    /// §5.1 is left to the IPv4 next hop (NAT64, RFC 6146 §3.4).
    pub reassembled: bool,
    /// SYNs whose MSS option the translator clamped (RFC 7915 module `mss`), IPv6→IPv4 at index
    /// 0 and IPv4→IPv6 at 1; the driver takes and publishes them.
    pub mss_clamped: [u64; 2],
}

impl Ctx {
    /// A context at time `now`; `id_seed` should differ between workers.
    pub fn new(now: Timestamp, id_seed: u16) -> Ctx {
        Ctx {
            now,
            next_ip_id: id_seed,
            icmp_tokens: u32::MAX,
            icmp_bucket_time: now.0,
            reassembled: false,
            mss_clamped: [0; 2],
        }
    }

    /// A fresh IPv4 identification value.
    #[inline]
    pub fn ip_id(&mut self) -> u16 {
        // An odd stride visits all 2^16 values before repeating.
        self.next_ip_id = self.next_ip_id.wrapping_add(0x9e37);
        self.next_ip_id
    }
}

/// Computes outgoing tuples: RFC 6146 §3.6 for NAT64, RFC 7915 §6 / RFC 7757 for SIIT.
pub trait Mapper {
    /// Maps an IPv4 tuple to IPv6.
    ///
    /// # Errors
    /// The drop reason when no mapping exists or policy refuses it.
    fn map_4to6(
        &mut self,
        ctx: &mut Ctx,
        t: &Tuple4,
        role: Role<'_, Tuple6>,
    ) -> Result<Tuple6, DropReason>;

    /// Maps an IPv6 tuple to IPv4.
    ///
    /// # Errors
    /// The drop reason when no mapping exists or policy refuses it.
    fn map_6to4(
        &mut self,
        ctx: &mut Ctx,
        t: &Tuple6,
        role: Role<'_, Tuple4>,
    ) -> Result<Tuple4, DropReason>;

    /// True once a packet's mapping sends it straight back into the translator (RFC 7757
    /// §4.2.2, RFC 6146 §3.8) rather than out of the IPv4 interface, whose MTU then does not
    /// apply.
    fn hairpins(&self) -> bool {
        false
    }
}
