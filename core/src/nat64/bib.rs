//! RFC 6146 §3.1: Binding Information Bases.
//!
//! A BIB entry maps an IPv6 transport address to an IPv4 one, `(X',x) <--> (T,t)` (for ICMP
//! queries `(X',i1) <--> (T,i2)`), in one of three BIBs (TCP, UDP, ICMP; here one table keyed by
//! protocol). Dynamic entries are created by IPv6 packets and removed with their last session;
//! static entries (configured port forwards, "manually configured BIB entries" which NAT64
//! implementations SHOULD support) stay until the configuration changes.
//!
//! Entries live in the table shard of their IPv6 host (see [`super::session`]); this module holds
//! the entry layout, the static configuration and the snapshot type.

use super::Proto;
use crate::Timestamp;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A BIB entry as stored (46 bytes of fields, 48 with padding).
#[derive(Debug, Clone)]
pub(crate) struct Bib {
    /// X'.
    pub x6: [u8; 16],
    /// Creation time (ms), for the mapping log.
    pub created: u64,
    /// T.
    pub t4: u32,
    /// Number of sessions of this entry.
    pub sessions: u32,
    /// First session in this entry's session list (`NIL` when none).
    pub head: u32,
    /// x (or i1).
    pub x: u16,
    /// t (or i2).
    pub t: u16,
    /// [`Proto`] index; `FREE` marks an unused slot.
    pub proto: u8,
    /// Configured, never removed with its last session (RFC 6146 §3.1).
    pub is_static: bool,
}

/// A statically configured BIB entry (a port forward: IPv4 clients reach `v6` through `v4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticBib {
    /// Protocol (for ICMP the ports are query identifiers).
    pub proto: Proto,
    /// IPv6 transport address (X', x).
    pub v6: (Ipv6Addr, u16),
    /// IPv4 transport address (T, t); T must be a pool4 address.
    pub v4: (Ipv4Addr, u16),
}

/// One BIB entry as listed by [`super::Nat64::bib`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BibInfo {
    /// Protocol.
    pub proto: Proto,
    /// IPv6 transport address (X', x).
    pub v6: (Ipv6Addr, u16),
    /// IPv4 transport address (T, t).
    pub v4: (Ipv4Addr, u16),
    /// Configured rather than created by traffic.
    pub is_static: bool,
    /// Number of sessions using it.
    pub sessions: u32,
    /// When it was created.
    pub created: Timestamp,
}
