//! What the core decides for one packet, and why packets are dropped.
//!
//! Every exit path of the translator that does not forward a packet names a [`DropReason`]. The
//! reasons double as metric labels (`as_str`) and as indexes into per-worker counter arrays, so
//! counting a drop is one array increment.

/// Where the output of one translation lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The translated packet is `buf[start..start + len]` (rewritten in place, using headroom).
    Forward { start: usize, len: usize },
    /// One or more translated packets lie back to back in `aux[..len]` (for example the IPv6
    /// fragments of one IPv4 packet, RFC 7915 §4); walk them with [`crate::packets`].
    ForwardAux { len: usize },
    /// The packet was dropped for `reason`, and the translator built an ICMP or ICMPv6 error for
    /// its sender in `aux[..len]` (RFC 7915 §4.4, §5.4).
    IcmpError { len: usize, reason: DropReason },
    /// The packet was dropped.
    Drop(DropReason),
}

impl Verdict {
    /// The drop reason, if the packet was not forwarded.
    pub fn drop_reason(&self) -> Option<DropReason> {
        match *self {
            Verdict::Drop(r) | Verdict::IcmpError { reason: r, .. } => Some(r),
            _ => None,
        }
    }
}

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $name:ident = $label:literal, )*) => {
        /// Why a packet was not translated. One variant per exit path; the label is the metric label.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[$doc])* $name, )*
        }

        impl DropReason {
            /// Every reason, in counter-index order.
            pub const ALL: &'static [DropReason] = &[ $(DropReason::$name,)* ];
            /// Number of reasons (the length of a counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// The metric label, in snake_case.
            pub const fn as_str(self) -> &'static str {
                match self { $( DropReason::$name => $label, )* }
            }

            /// Index into a counter array.
            #[inline]
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

drop_reasons! {
    // --- malformed input (RFC 1812 §5.2.2, RFC 8200 §4) ---
    /// Not IPv4 or IPv6 (version nibble), or shorter than a version nibble.
    UnknownVersion = "unknown_version",
    /// Shorter than its fixed IP header.
    Truncated = "truncated",
    /// IPv4 IHL < 5 or larger than the packet.
    Ipv4BadIhl = "ipv4_bad_ihl",
    /// IPv4 total length smaller than the header or larger than the buffer.
    Ipv4BadTotalLength = "ipv4_bad_total_length",
    /// IPv4 header checksum does not verify (RFC 1812 §5.2.2: a router drops these).
    Ipv4BadHeaderChecksum = "ipv4_bad_header_checksum",
    /// IPv6 payload length larger than the buffer, or zero with a Hop-by-Hop header (a jumbograms are not translated).
    Ipv6BadPayloadLength = "ipv6_bad_payload_length",
    /// An IPv6 extension header runs past the packet, or the chain is too long.
    Ipv6BadExtensionHeader = "ipv6_bad_extension_header",
    /// The first fragment is too short to hold the transport header the translator must update.
    TransportTruncated = "transport_truncated",
    /// An IPv6 fragment header inside an IPv4-bound packet that is not a valid fragment.
    BadFragment = "bad_fragment",

    // --- policy drops (RFC 7915, RFC 6052, RFC 7757) ---
    /// TTL or hop limit would reach zero (RFC 7915 §4.1, §5.1); an ICMP Time Exceeded is returned.
    HopLimitExceeded = "hop_limit_exceeded",
    /// An unexpired IPv4 source route option (RFC 7915 §4.1); Source Route Failed is returned.
    SourceRoute = "source_route",
    /// An IPv6 routing header with Segments Left != 0 (RFC 7915 §5.1); Parameter Problem is returned.
    RoutingHeader = "routing_header",
    /// The translated packet exceeds the next-hop MTU and DF is set (RFC 7915 §4.1, §5.1).
    PacketTooBig = "packet_too_big",
    /// The source address has no mapping (not in EAMT, pool6 or, for errors, the RFC 6791 pool).
    UntranslatableSource = "untranslatable_source",
    /// The destination address has no mapping in the EAMT or pool6.
    UntranslatableDestination = "untranslatable_destination",
    /// RFC 6052 §3.1: a non-global IPv4 address behind the Well-Known Prefix.
    WkpNonGlobal = "wkp_non_global",
    /// An address that is never translated in an ordinary packet, in both directions and modes
    /// (RFC 7915 §4.1/§5.1, RFC 1812 §5.3.7, RFC 3927 §7): IPv4 0/8, 127/8, 169.254/16, 224/4
    /// and 255.255.255.255 (embedded in any prefix or mapped by an EAM), IPv6 multicast. Silent:
    /// §4.1/§5.1 say to drop illegal addresses silently. ICMP errors may carry them (§4.1).
    SpecialAddress = "special_address",
    /// A packet from a non-global IPv6 source (`::`, `::1`, `::ffff:0:0/96`, `fe80::/10`, ...,
    /// see `rfc6890`): never translated, in either mode, and never given a NAT64 binding.
    NonGlobalSource = "non_global_source",
    /// RFC 7915 §1.2: fragmented ICMP is not translated statelessly.
    FragmentedIcmp = "fragmented_icmp",
    /// RFC 7915 §4.5: a fragmented UDP datagram with a zero checksum cannot get an IPv6 checksum.
    FragmentedZeroChecksumUdp = "fragmented_zero_checksum_udp",
    /// A UDP datagram with a zero checksum while computing one is disabled (RFC 7915 §4.5).
    ZeroChecksumUdp = "zero_checksum_udp",
    /// An ICMP/ICMPv6 type or code that RFC 7915 §4.2/§5.2 says to drop, or an unknown one.
    IcmpUntranslatable = "icmp_untranslatable",
    /// An ICMP error that quotes another ICMP error (RFC 7915 §4.2, §5.2: never translated).
    IcmpNestedError = "icmp_nested_error",
    /// The packet quoted inside an ICMP error is not a parsable IP header.
    IcmpBadInnerPacket = "icmp_bad_inner_packet",
    /// RFC 7915 §5.1.1: an extension header (other than ESP) follows the Fragment header, so the
    /// fragment cannot be translated ("SHOULD be dropped and logged"); §5.4's error is returned.
    FragmentExtensionHeader = "fragment_extension_header",
    /// A protocol that belongs to the other IP version: ICMPv6 (58) or an IPv6 extension header
    /// number in IPv4, ICMPv4 (1) in IPv6, also as the protocol of a packet quoted in an ICMP
    /// error. Translating it would forge the other side's ICMP or header chain.
    ProtocolMismatch = "protocol_mismatch",
    /// RFC 8200 §8.1: an IPv6 UDP datagram with checksum zero is discarded (RFC 6935/6936
    /// tunnel exceptions do not apply to a translator), never passed on as IPv4 "no checksum".
    Ipv6ZeroChecksumUdp = "ipv6_zero_checksum_udp",
    /// A Parameter Problem pointer that has no counterpart in the other protocol (RFC 7915 Fig. 3/6).
    IcmpBadPointer = "icmp_bad_pointer",
    /// The caller's buffers are too small for the translated output.
    BufferTooSmall = "buffer_too_small",

    // --- stateful NAT64 (RFC 6146) ---
    /// No BIB entry matches an IPv4 packet (RFC 6146 §3.5: no open relay).
    NoBinding = "no_binding",
    /// Address-dependent filtering refused an IPv4 packet (RFC 6146 §3.5.1).
    Filtered = "filtered",
    /// The session table is full (`max_sessions`).
    TableFull = "table_full",
    /// The subscriber's share is used up: its IPv6 prefix (`subscriber_prefix_len`, default /64)
    /// holds `max_sessions_per_host` sessions (RFC 6146 §3.5 "if resources and policy permit").
    SubscriberSessionLimit = "subscriber_session_limit",
    /// pool4 has no free port for a new binding.
    PoolExhausted = "pool_exhausted",
    /// An ICMP error for which no session exists (RFC 6146 §3.5.3).
    NoSessionForIcmpError = "no_session_for_icmp_error",
    /// A first fragment (or an ICMP fragment for reassembly) refused because the fragment store
    /// (`fragments.max_entries`) or the reassembly slots are in use: its datagram is dropped
    /// whole rather than in part.
    FragmentStoreFull = "fragment_store_full",
    /// A TCP packet that the state machine rejects (RFC 6146 §3.5.2.2).
    TcpStateReject = "tcp_state_reject",
    /// A protocol the stateful translator does not handle (only TCP, UDP and ICMP queries).
    UnsupportedProtocol = "unsupported_protocol",
    /// An IPv6 packet whose source address lies in Pref64::/n (RFC 6146 §3.5, §5.4: prevents
    /// hairpinning loops).
    Pref64Source = "pref64_source",
    /// A non-first fragment whose first fragment was not seen, while holding early fragments is
    /// off (`fragments.max_held = 0`; RFC 6146 §3.4, see `nat64::held`).
    FragmentFirstMissing = "fragment_first_missing",
    /// An IPv4 SYN for a session in V4 INIT whose first SYN is already held (a retransmission
    /// while the store waits for the IPv6 side, RFC 6146 §3.5.2.2), or a held SYN the store did
    /// not keep because it is off: not forwarded, the V4 INIT state is unchanged.
    TcpV4SynHeld = "tcp_v4_syn_held",
    /// An unsolicited IPv4 SYN (no BIB entry, or refused by address-dependent filtering) stored
    /// for TCP_INCOMING_SYN so a simultaneous open from the IPv6 side completes (RFC 6146
    /// §3.5.2.2); not a loss yet: it is delivered with the IPv6 SYN, or answered with ICMP Port
    /// Unreachable when none comes.
    TcpV4SynStored = "tcp_v4_syn_stored",
    /// An unsolicited IPv4 SYN not stored because the SYN store is full (`syn_store.max_entries`).
    SynStoreFull = "syn_store_full",
    /// An unsolicited IPv4 SYN not stored because its IPv4 source holds its share of the SYN
    /// store (`syn_store.max_per_source`).
    SynStoreSourceLimit = "syn_store_source_limit",
    /// A first fragment (or an ICMP fragment for reassembly, or a non-first fragment to hold until
    /// its first fragment) refused because its source, an IPv6 subscriber prefix or an IPv4
    /// address, holds its share of the fragment store, of the reassembly slots or of the held
    /// fragments (`fragments.max_entries_per_source`, `max_reassembly_per_source`,
    /// `max_held_per_source`).
    FragmentSourceLimit = "fragment_source_limit",
    /// A fragment of an ICMP message held for reassembly (RFC 6146 §3.4); not a loss: the
    /// message is translated when its last fragment arrives.
    FragmentQueued = "fragment_queued",
    /// A TCP or UDP fragment that arrived before its first fragment, held until the first
    /// fragment is translated (RFC 6146 §3.4 "MUST handle fragments arriving out of order"); not
    /// a loss: it is translated and sent then (`Nat64::take_released`), or counted as expired.
    FragmentHeld = "fragment_held",
    /// A fragment that arrived before its first fragment and could not be held: the held
    /// fragments' records or memory are used up (`fragments.max_held`, `max_held_bytes`).
    FragmentHeldFull = "fragment_held_full",
    /// A second copy of a fragment already held for its first fragment (same datagram and
    /// offset); RFC 8200 §4.5 lets a destination drop exact duplicates, and forwarding both
    /// could make it abandon the datagram (RFC 5722).
    FragmentHeldDuplicate = "fragment_held_duplicate",
}

/// Plain per-worker counters, indexed by [`DropReason::index`]. Each worker owns one; a reader
/// sums them.
#[derive(Debug, Clone)]
pub struct DropCounters(pub [u64; DropReason::COUNT]);

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters([0; DropReason::COUNT])
    }
}

impl DropCounters {
    /// Counts one drop.
    #[inline]
    pub fn count(&mut self, r: DropReason) {
        self.0[r.index()] += 1;
    }

    /// The count for `r`.
    pub fn get(&self, r: DropReason) -> u64 {
        self.0[r.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in DropReason::ALL {
            let l = r.as_str();
            assert!(seen.insert(l), "duplicate label {l}");
            assert!(l
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()));
        }
        assert_eq!(
            DropReason::ALL[DropReason::Truncated.index()],
            DropReason::Truncated
        );
    }
}
