//! RFC 6146 §3.4–§3.8: the processing steps, one function each, and the per-packet
//! [`Nat64Mapper`] that RFC 7915 translation calls for every header it translates.
//!
//! | step | IPv6 → IPv4 | IPv4 → IPv6 |
//! |---|---|---|
//! | §3.4 determining the incoming tuple | [`incoming_tuple6`] | [`incoming_tuple4`] |
//! | §3.5 filtering and updating | [`filter_and_update6`] | [`filter_and_update4`] |
//! | §3.6 computing the outgoing tuple | [`outgoing_tuple4`] | [`outgoing_tuple6`] |
//! | §3.7 translating the packet | `rfc7915::translate_6to4` | `rfc7915::translate_4to6` |
//! | §3.8 handling hairpinning | [`Nat64Mapper::hairpin`] + [`super::Nat64::translate`] | |
//!
//! ICMP errors (§3.4, §3.5.3, §3.6): the translator maps the quoted packet first
//! ([`Role::Inner`]): it travelled the other way, so it is looked up in the session table with
//! source and destination swapped, and never creates or refreshes state. Then the outer header
//! ([`Role::ErrorOuter`]) goes to the host of the quoted packet: IPv4-bound errors leave from the
//! session's pool4 address T, IPv6-bound errors go to the session's X'.

use super::frag::{FragKey, FragOut};
use super::session::{Key4, Key6, Shard};
use super::synstore::SynKey;
use super::tcp::{self, flags, Lifetime, Side, TcpState, Timer};
use super::{Filtering, Nat64, Proto};
use crate::tuple::{Ctx, Frag, Mapper, Role, Tuple4, Tuple6, L4};
use crate::verdict::DropReason;
use crate::Timestamp;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The incoming tuple of an IPv6 packet (§3.4), in the session table's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct In6 {
    /// Protocol.
    pub proto: Proto,
    /// Source X'.
    pub x6: [u8; 16],
    /// Source port x, or ICMPv6 identifier i1.
    pub x: u16,
    /// Z, extracted from the destination Y' (§3.5.4).
    pub z4: u32,
    /// Destination port y = z (0 for ICMP).
    pub z: u16,
    /// TCP flags.
    pub flags: u8,
}

/// The incoming tuple of an IPv4 packet (§3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct In4 {
    /// Protocol.
    pub proto: Proto,
    /// Source Z (the IPv4 peer).
    pub z4: u32,
    /// Source port z (0 for ICMP).
    pub z: u16,
    /// Destination T (a pool4 address) and its pool4 index.
    pub t4: u32,
    /// Index of T in pool4.
    pub ai: usize,
    /// Destination port t, or ICMPv4 identifier i2.
    pub t: u16,
    /// TCP flags.
    pub flags: u8,
}

/// What §3.4 yields: a tuple, or a non-first fragment that takes its first fragment's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<T> {
    /// A packet (or first fragment) with transport identifiers.
    Tuple(T),
    /// A non-first fragment (no transport header).
    Fragment,
}

/// The binding a packet was matched to: (X', x) <--> (T, t).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// X'.
    pub x6: [u8; 16],
    /// x (or i1).
    pub x: u16,
    /// T.
    pub t4: u32,
    /// t (or i2).
    pub t: u16,
}

fn is_special4(a: Ipv4Addr) -> bool {
    crate::rfc7915::is_special_v4(a)
}

fn is_non_first(f: &Option<Frag>) -> bool {
    matches!(f, Some(f) if f.offset != 0)
}

fn is_first_fragment(f: &Option<Frag>) -> bool {
    matches!(f, Some(f) if f.offset == 0 && f.more)
}

/// §3.5 address checks shared by packets and ICMP error headers on the IPv6 side: the source
/// must not lie in Pref64::/n (§5.4 hairpinning loops), the destination must. Returns Z.
///
/// Z in 0/8, 127/8, 169.254/16, 224/4 or 255.255.255.255 is `special_address` (RFC 7915 §5.1,
/// RFC 1812 §5.3.7, RFC 3927 §7) whatever the prefix: the same rule and reason as SIIT, checked
/// before RFC 6052 §3.1's `wkp_non_global` (those addresses are non-global too).
fn check_addrs6(nat: &Nat64, src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<u32, DropReason> {
    if src.is_multicast() || dst.is_multicast() {
        return Err(DropReason::SpecialAddress);
    }
    if nat.pref64.contains(src) {
        return Err(DropReason::Pref64Source);
    }
    let z = match nat.pref64.extract(dst) {
        Some(Ok(z)) => z,
        Some(Err(e)) => return Err(special_or(nat, dst, e)),
        None => return Err(DropReason::UntranslatableDestination),
    };
    if is_special4(z) {
        return Err(DropReason::SpecialAddress);
    }
    Ok(u32::from(z))
}

/// A refused extraction (RFC 6052 §3.1 behind the Well-Known Prefix) of a special IPv4 address
/// reports `special_address`, so one rule names these addresses whatever the prefix.
#[cold]
fn special_or(nat: &Nat64, a: &Ipv6Addr, e: DropReason) -> DropReason {
    match nat.pref64.extract_lax(a) {
        Some(z) if is_special4(z) => DropReason::SpecialAddress,
        _ => e,
    }
}

/// §3.4 (IPv6): the incoming 5-tuple or 3-tuple, and the §3.5 address checks.
///
/// # Errors
/// Addresses outside Pref64 rules, protocols other than TCP, UDP and ICMPv6 queries.
pub fn incoming_tuple6(nat: &Nat64, t: &Tuple6) -> Result<(Incoming<In6>, u32), DropReason> {
    // The non-global source rule shared with stateless mode: no binding for `::1`, `fe80::`, ...
    if crate::rfc6890::is_non_global_source6(&t.src) {
        return Err(DropReason::NonGlobalSource);
    }
    let z4 = check_addrs6(nat, &t.src, &t.dst)?;
    let proto = Proto::from_v6(t.proto).ok_or(DropReason::UnsupportedProtocol)?;
    if is_non_first(&t.frag) {
        return Ok((Incoming::Fragment, z4));
    }
    let (x, z) = match (proto, t.l4) {
        (Proto::Icmp, L4::IcmpId(id)) => (id, 0),
        (Proto::Tcp | Proto::Udp, L4::Ports { src, dst }) => (src, dst),
        _ => return Err(DropReason::TransportTruncated),
    };
    let i = In6 {
        proto,
        x6: t.src.octets(),
        x,
        z4,
        z,
        flags: t.tcp_flags,
    };
    Ok((Incoming::Tuple(i), z4))
}

/// §3.4 (IPv4): the incoming tuple, and the §3.5 rule that only packets to pool4 are processed.
///
/// # Errors
/// Destinations outside pool4, special sources, other protocols.
pub fn incoming_tuple4(nat: &Nat64, t: &Tuple4) -> Result<Incoming<In4>, DropReason> {
    if is_special4(t.src) || is_special4(t.dst) {
        return Err(DropReason::SpecialAddress);
    }
    let t4 = u32::from(t.dst);
    let ai = nat
        .pool4
        .index_of(t4)
        .ok_or(DropReason::UntranslatableDestination)?;
    let proto = Proto::from_v4(t.proto).ok_or(DropReason::UnsupportedProtocol)?;
    if is_non_first(&t.frag) {
        return Ok(Incoming::Fragment);
    }
    let (z, tt) = match (proto, t.l4) {
        (Proto::Icmp, L4::IcmpId(id)) => (0, id),
        (Proto::Tcp | Proto::Udp, L4::Ports { src, dst }) => (src, dst),
        _ => return Err(DropReason::TransportTruncated),
    };
    Ok(Incoming::Tuple(In4 {
        proto,
        z4: u32::from(t.src),
        z,
        t4,
        ai,
        t: tt,
        flags: t.tcp_flags,
    }))
}

/// §3.5.1–§3.5.3 for a packet of an existing session: the TCP state machine, or the UDP / ICMP
/// timer reset. Returns false if the packet must not be forwarded (a held IPv4 SYN's session
/// refuses further IPv4 packets until the IPv6 side answers).
fn update_existing(
    sh: &mut Shard,
    s: u32,
    proto: Proto,
    side: Side,
    fl: u8,
    now: Timestamp,
) -> bool {
    match proto {
        Proto::Udp => sh.refresh(s, Lifetime::Udp, now),
        Proto::Icmp => sh.refresh(s, Lifetime::Icmp, now),
        Proto::Tcp => {
            let e = sh.session(s);
            let st = TcpState::from_u8(e.state);
            if side == Side::V4
                && st == TcpState::V4Init
                && e.class == Lifetime::TcpIncomingSyn as u8
            {
                return false;
            }
            let (ns, timer) = tcp::next(st, side, fl);
            sh.set_state(s, ns);
            if let Timer::Set(l) = timer {
                sh.refresh(s, l, now);
            }
        }
    }
    true
}

fn lifetime_of(proto: Proto) -> Lifetime {
    match proto {
        Proto::Udp => Lifetime::Udp,
        Proto::Icmp => Lifetime::Icmp,
        Proto::Tcp => Lifetime::TcpTrans,
    }
}

fn bound_of(sh: &Shard, s: u32) -> Bound {
    let e = sh.session(s);
    Bound {
        x6: e.x6,
        x: e.x,
        t4: e.t4,
        t: e.t,
    }
}

/// §3.5.1.1 / §3.5.2.3 / §3.5.3: a new BIB entry for (X', x), with T paired to the host and t
/// allocated by pool4.
fn create_bib(
    nat: &Nat64,
    sh: &mut Shard,
    si: usize,
    i: &In6,
    now: Timestamp,
) -> Result<u32, DropReason> {
    let pool = &nat.pool4;
    // RFC 4787 REQ-2 (paired address) and RFC 6056 §3.3.3 (port), with pool4's own key.
    let (ai, t) = pool
        .allocate_for(i.proto, &i.x6, i.x, i.z4, si)
        .ok_or(DropReason::PoolExhausted)?;
    let t4 = pool
        .addr(ai)
        .map(u32::from)
        .ok_or(DropReason::PoolExhausted)?;
    Ok(sh.insert_bib(i.proto, i.x6, i.x, t4, t, false, now))
}

/// §3.5 for an IPv6 packet: find or create the BIB entry and the session, run the TCP state
/// machine. Returns the binding.
///
/// # Errors
/// [`DropReason::TableFull`], [`DropReason::PoolExhausted`], [`DropReason::TcpStateReject`]
/// (a non-SYN TCP segment without a BIB entry, §3.5.2.2 CLOSED).
pub fn filter_and_update6(nat: &Nat64, now: Timestamp, i: &In6) -> Result<Bound, DropReason> {
    let si = nat.shard_of_host(&i.x6);
    let mut sh = nat.shard(si);
    let k = Key6 {
        proto: i.proto,
        x6: i.x6,
        x: i.x,
        z4: i.z4,
        z: i.z,
    };
    if let Some(s) = sh.find6(&k) {
        update_existing(&mut sh, s, i.proto, Side::V6, i.flags, now);
        return Ok(bound_of(&sh, s));
    }
    let syn = i.flags & flags::SYN != 0;
    let (b, reserved) = match sh.find_bib6(i.proto, &i.x6, i.x) {
        Some(b) => (b, false),
        None => {
            if i.proto == Proto::Tcp && !syn {
                return Err(DropReason::TcpStateReject);
            }
            nat.admit(&sh, &i.x6)?;
            match create_bib(nat, &mut sh, si, i, now) {
                Ok(b) => (b, true),
                Err(e) => {
                    nat.unadmit();
                    return Err(e);
                }
            }
        }
    };
    let be = sh.bib_entry(b);
    let bound = Bound {
        x6: be.x6,
        x: be.x,
        t4: be.t4,
        t: be.t,
    };
    if i.proto == Proto::Tcp && !syn {
        // §3.5.2.2 CLOSED, "any other packet" with a BIB entry: forwarded, no state.
        return Ok(bound);
    }
    if !reserved {
        nat.admit(&sh, &i.x6)?;
    }
    let (st, l) = if i.proto == Proto::Tcp {
        tcp::initial(Side::V6, false)
    } else {
        (TcpState::Established, lifetime_of(i.proto))
    };
    sh.insert_session(b, i.z4, i.z, st as u8, l, now);
    Ok(bound)
}

/// §3.5 for an IPv4 packet: only packets matching a BIB entry pass (no open relay), subject to
/// the filtering mode; sessions are created "if resources and policy permit".
///
/// # Errors
/// [`DropReason::NoBinding`], [`DropReason::Filtered`], [`DropReason::TcpV4SynHeld`],
/// [`DropReason::TableFull`].
pub fn filter_and_update4(nat: &Nat64, now: Timestamp, i: &In4) -> Result<Bound, DropReason> {
    let si = nat
        .shard_of_v4(i.proto, i.ai, i.t4, i.t)
        .ok_or(DropReason::NoBinding)?;
    let mut sh = nat.shard(si);
    let k = Key4 {
        proto: i.proto,
        t4: i.t4,
        t: i.t,
        z4: i.z4,
        z: i.z,
    };
    if let Some(s) = sh.find4(&k) {
        if !update_existing(&mut sh, s, i.proto, Side::V4, i.flags, now) {
            return Err(DropReason::TcpV4SynHeld);
        }
        return Ok(bound_of(&sh, s));
    }
    let b = sh
        .find_bib4(i.proto, i.t4, i.t)
        .ok_or(DropReason::NoBinding)?;
    let be = sh.bib_entry(b);
    let bound = Bound {
        x6: be.x6,
        x: be.x,
        t4: be.t4,
        t: be.t,
    };
    let allowed = nat.filtering == Filtering::EndpointIndependent || sh.bib_has_peer(b, i.z4);
    match i.proto {
        Proto::Tcp if i.flags & flags::SYN != 0 => {
            // §3.5.2.2 CLOSED, V4 SYN with a BIB entry. Under address-dependent filtering the SYN
            // is held for TCP_INCOMING_SYN so a simultaneous open from the IPv6 side succeeds:
            // the session is V4 INIT here, the packet is stored by the caller (`synstore`, from
            // the `TcpV4SynHeld` error) and delivered after the IPv6 SYN or answered with Port
            // Unreachable on expiry. A V4 SYN the filter allows is forwarded even under ADF.
            let held = !allowed;
            nat.admit(&sh, &bound.x6)?;
            let (st, l) = tcp::initial(Side::V4, held);
            sh.insert_session(b, i.z4, i.z, st as u8, l, now);
            if held {
                Err(DropReason::TcpV4SynHeld)
            } else {
                Ok(bound)
            }
        }
        // §3.5.2.2 CLOSED, any other TCP packet: forwarded if a BIB entry exists and the
        // filter allows it; no state is created.
        Proto::Tcp if allowed => Ok(bound),
        _ if !allowed => Err(DropReason::Filtered),
        _ => {
            nat.admit(&sh, &bound.x6)?;
            sh.insert_session(
                b,
                i.z4,
                i.z,
                TcpState::Established as u8,
                lifetime_of(i.proto),
                now,
            );
            Ok(bound)
        }
    }
}

/// §3.6 (IPv6 → IPv4): source from the BIB, destination Z from Pref64.
pub fn outgoing_tuple4(t: &Tuple6, proto: Proto, b: &Bound, z4: u32, z: u16) -> Tuple4 {
    Tuple4 {
        src: Ipv4Addr::from(b.t4),
        dst: Ipv4Addr::from(z4),
        proto: proto.v4_number(),
        l4: match proto {
            Proto::Icmp => L4::IcmpId(b.t),
            _ => L4::Ports { src: b.t, dst: z },
        },
        frag: t.frag,
        tcp_flags: t.tcp_flags,
    }
}

/// §3.6 (IPv4 → IPv6): source Y' = Pref64(Z), destination from the BIB.
pub fn outgoing_tuple6(t: &Tuple4, proto: Proto, b: &Bound, y6: Ipv6Addr, z: u16) -> Tuple6 {
    Tuple6 {
        src: y6,
        dst: Ipv6Addr::from(b.x6),
        proto: proto.v6_number(),
        l4: match proto {
            Proto::Icmp => L4::IcmpId(b.x),
            _ => L4::Ports { src: z, dst: b.x },
        },
        frag: t.frag,
        tcp_flags: t.tcp_flags,
    }
}

/// What the last mapping asks of the SYN store (§3.5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SynAction {
    None,
    /// The IPv4 SYN was refused (no BIB entry, or held under address-dependent filtering): store
    /// it under this key.
    Store(SynKey),
    /// An IPv6 SYN mapped to this V4 INIT key while SYNs are stored: take the stored one out.
    Take(SynKey),
}

/// The per-packet mapper: borrows the shared [`Nat64`], remembers whether the packet hairpins.
#[derive(Debug)]
pub struct Nat64Mapper<'a> {
    nat: &'a Nat64,
    hairpin: bool,
    syn: SynAction,
    /// §3.4: the packet is a fragment whose first fragment was not seen (datagram, offset).
    early: Option<(FragKey, u16)>,
}

impl<'a> Nat64Mapper<'a> {
    /// A mapper for one packet.
    pub fn new(nat: &'a Nat64) -> Self {
        Nat64Mapper {
            nat,
            hairpin: false,
            syn: SynAction::None,
            early: None,
        }
    }

    /// §3.5.2.2: the key to store the just refused IPv4 packet under, if it is an unsolicited
    /// SYN the store takes.
    pub(crate) fn syn_to_store(&self) -> Option<SynKey> {
        match self.syn {
            SynAction::Store(k) => Some(k),
            _ => None,
        }
    }

    /// §3.5.2.2: the V4 INIT key the just mapped IPv6 SYN completes, if SYNs are stored.
    pub(crate) fn syn_to_take(&self) -> Option<SynKey> {
        match self.syn {
            SynAction::Take(k) => Some(k),
            _ => None,
        }
    }

    /// §3.4: the datagram and offset of the just refused packet, if it is a fragment that came
    /// before its first fragment (to be held).
    pub(crate) fn early_fragment(&self) -> Option<(FragKey, u16)> {
        self.early
    }

    /// §3.4: no first fragment seen for `k`: remembered so the caller can hold the packet.
    #[cold]
    fn first_missing(&mut self, k: FragKey, f: &Option<Frag>) -> DropReason {
        self.early = f.map(|f| (k, f.offset));
        DropReason::FragmentFirstMissing
    }

    /// §3.8: true if the IPv4 packet produced by the last IPv6→IPv4 mapping is addressed to a
    /// pool4 address, so it must be processed again as an incoming IPv4 packet.
    pub fn hairpin(&self) -> bool {
        self.hairpin
    }

    fn packet_6to4(&mut self, ctx: &mut Ctx, t: &Tuple6) -> Result<Tuple4, DropReason> {
        let nat = self.nat;
        let (inc, z4) = incoming_tuple6(nat, t)?;
        self.hairpin = nat.pool4.contains(z4);
        let key = t.frag.map(|f| FragKey {
            src: t.src.octets(),
            dst: t.dst.octets(),
            id: f.id,
            proto: t.proto,
            v6: true,
        });
        let i = match inc {
            Incoming::Fragment => {
                let k = key.ok_or(DropReason::BadFragment)?;
                let Some(o) = nat.frags.lookup(&k, ctx.now) else {
                    return Err(self.first_missing(k, &t.frag));
                };
                return Ok(Tuple4 {
                    src: v4_of(&o.src),
                    dst: v4_of(&o.dst),
                    proto: t.proto,
                    l4: L4::None,
                    frag: t.frag,
                    tcp_flags: 0,
                });
            }
            Incoming::Tuple(i) => i,
        };
        let b = filter_and_update6(nat, ctx.now, &i)?;
        if i.flags & flags::SYN != 0 && nat.synstore.held() && !self.hairpin {
            self.syn = SynAction::Take(SynKey {
                t4: b.t4,
                t: b.t,
                z4,
                z: i.z,
            });
        }
        let out = outgoing_tuple4(t, i.proto, &b, z4, i.z);
        if let (Some(k), true) = (key, is_first_fragment(&t.frag)) {
            nat.frags.insert(k, frag_out4(&out), ctx.now)?;
            nat.first_fragment_translated(&k);
        }
        Ok(out)
    }

    /// §3.5.2.2 CLOSED, V4 SYN: "if the destination transport address [...] is not in use in
    /// the TCP BIB" the packet is stored (V4 INIT, TCP_INCOMING_SYN), and so it is when it is
    /// in use but address-dependent filtering holds it. Only a plain SYN (no ACK, RST or FIN),
    /// unfragmented, to a port pool4 could bind, and only while the store is on (off is the
    /// RFC's "security policy requires silently dropping externally initiated TCP connections").
    #[cold]
    fn note_unsolicited_syn(&mut self, t: &Tuple4, i: &In4, e: DropReason) {
        let nat = self.nat;
        let plain_syn = i.flags & (flags::SYN | flags::ACK | flags::RST | flags::FIN) == flags::SYN;
        let storable = match e {
            DropReason::NoBinding => nat.pool4.range(Proto::Tcp).contains(i.t),
            DropReason::TcpV4SynHeld => true,
            _ => false,
        };
        if i.proto == Proto::Tcp
            && plain_syn
            && storable
            && t.frag.is_none()
            && nat.synstore.enabled()
        {
            self.syn = SynAction::Store(SynKey {
                t4: i.t4,
                t: i.t,
                z4: i.z4,
                z: i.z,
            });
        }
    }

    fn packet_4to6(&mut self, ctx: &mut Ctx, t: &Tuple4) -> Result<Tuple6, DropReason> {
        let nat = self.nat;
        let inc = incoming_tuple4(nat, t)?;
        let key = t.frag.map(|f| FragKey {
            src: v4_key(t.src),
            dst: v4_key(t.dst),
            id: f.id,
            proto: t.proto,
            v6: false,
        });
        let i = match inc {
            Incoming::Fragment => {
                let k = key.ok_or(DropReason::BadFragment)?;
                let Some(o) = nat.frags.lookup(&k, ctx.now) else {
                    return Err(self.first_missing(k, &t.frag));
                };
                return Ok(Tuple6 {
                    src: Ipv6Addr::from(o.src),
                    dst: Ipv6Addr::from(o.dst),
                    proto: if t.proto == 1 { 58 } else { t.proto },
                    l4: L4::None,
                    frag: t.frag,
                    tcp_flags: 0,
                });
            }
            Incoming::Tuple(i) => i,
        };
        // Y' first: a peer without an IPv6 representation creates no state.
        let y6 = nat.pref64.embed(t.src)?;
        let b = match filter_and_update4(nat, ctx.now, &i) {
            Ok(b) => b,
            Err(e) => {
                self.note_unsolicited_syn(t, &i, e);
                return Err(e);
            }
        };
        let out = outgoing_tuple6(t, i.proto, &b, y6, i.z);
        if let (Some(k), true) = (key, is_first_fragment(&t.frag)) {
            let o = FragOut {
                src: out.src.octets(),
                dst: out.dst.octets(),
            };
            nat.frags.insert(k, o, ctx.now)?;
            nat.first_fragment_translated(&k);
        }
        Ok(out)
    }

    /// §3.4/§3.6 for the packet quoted in an ICMPv6 error: it went IPv4 → IPv6 (Y' → X'), so the
    /// session is found with source and destination swapped. State is neither created nor
    /// refreshed (§3.5: ICMP errors do not affect the tables).
    fn inner_6to4(&self, t: &Tuple6) -> Result<Tuple4, DropReason> {
        let nat = self.nat;
        let no = DropReason::NoSessionForIcmpError;
        let z4 = match nat.pref64.extract(&t.src) {
            Some(Ok(z)) => u32::from(z),
            _ => return Err(no),
        };
        let proto = Proto::from_v6(t.proto).ok_or(no)?;
        let (x, z) = match (proto, t.l4) {
            (Proto::Icmp, L4::IcmpId(id)) => (id, 0),
            (Proto::Tcp | Proto::Udp, L4::Ports { src, dst }) => (dst, src),
            _ => return Err(no),
        };
        let x6 = t.dst.octets();
        let sh = nat.shard(nat.shard_of_host(&x6));
        let s = sh
            .find6(&Key6 {
                proto,
                x6,
                x,
                z4,
                z,
            })
            .ok_or(no)?;
        let b = bound_of(&sh, s);
        Ok(Tuple4 {
            src: Ipv4Addr::from(z4),
            dst: Ipv4Addr::from(b.t4),
            proto: proto.v4_number(),
            l4: match proto {
                Proto::Icmp => L4::IcmpId(b.t),
                _ => L4::Ports { src: z, dst: b.t },
            },
            frag: t.frag,
            tcp_flags: t.tcp_flags,
        })
    }

    /// The quoted packet of an ICMPv4 error: it went IPv6 → IPv4 ((T,t) → (Z,z)).
    fn inner_4to6(&self, t: &Tuple4) -> Result<Tuple6, DropReason> {
        let nat = self.nat;
        let no = DropReason::NoSessionForIcmpError;
        let t4 = u32::from(t.src);
        let ai = nat.pool4.index_of(t4).ok_or(no)?;
        let proto = Proto::from_v4(t.proto).ok_or(no)?;
        let (tt, z) = match (proto, t.l4) {
            (Proto::Icmp, L4::IcmpId(id)) => (id, 0),
            (Proto::Tcp | Proto::Udp, L4::Ports { src, dst }) => (src, dst),
            _ => return Err(no),
        };
        let z4 = u32::from(t.dst);
        let si = nat.shard_of_v4(proto, ai, t4, tt).ok_or(no)?;
        let sh = nat.shard(si);
        let s = sh
            .find4(&Key4 {
                proto,
                t4,
                t: tt,
                z4,
                z,
            })
            .ok_or(no)?;
        let b = bound_of(&sh, s);
        drop(sh);
        let y6 = nat.pref64.embed(t.dst)?;
        Ok(Tuple6 {
            src: Ipv6Addr::from(b.x6),
            dst: y6,
            proto: proto.v6_number(),
            l4: match proto {
                Proto::Icmp => L4::IcmpId(b.x),
                _ => L4::Ports { src: b.x, dst: z },
            },
            frag: t.frag,
            tcp_flags: t.tcp_flags,
        })
    }
}

fn v4_of(b: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn v4_key(a: Ipv4Addr) -> [u8; 16] {
    let mut k = [0; 16];
    k[..4].copy_from_slice(&a.octets());
    k
}

fn frag_out4(t: &Tuple4) -> FragOut {
    FragOut {
        src: v4_key(t.src),
        dst: v4_key(t.dst),
    }
}

impl Mapper for Nat64Mapper<'_> {
    fn hairpins(&self) -> bool {
        self.hairpin
    }

    fn map_4to6(
        &mut self,
        ctx: &mut Ctx,
        t: &Tuple4,
        role: Role<'_, Tuple6>,
    ) -> Result<Tuple6, DropReason> {
        match role {
            Role::Packet => self.packet_4to6(ctx, t),
            Role::Inner => self.inner_4to6(t),
            Role::ErrorOuter(inner) => {
                // The error goes to the IPv6 host of the quoted packet; its source (an IPv4 router
                // or the peer) is represented under Pref64, even an "illegal" one (RFC 7915 §4.1).
                if is_special4(t.dst) {
                    return Err(DropReason::SpecialAddress);
                }
                if !self.nat.pool4.contains(u32::from(t.dst)) {
                    return Err(DropReason::UntranslatableDestination);
                }
                // Where RFC 6052 §3.1 forbids writing the source under the Well-Known Prefix
                // (0.0.0.0, 127/8, private routers), the translator's own `icmp_src6`, as SIIT;
                // without one, the pool4 address T the error was sent to, under Pref64: the
                // translator's own address on its IPv4 side (as RFC 6791 §4 lets an IPv6→IPv4
                // translator source errors from its IPv4 address), so an error from a private
                // router on the IPv4 path (a Fragmentation Needed for PMTUD, a traceroute hop)
                // still reaches the host. Only when T is not global either is it dropped.
                let src = match (self.nat.pref64.embed(t.src), self.nat.xlat.icmp_src6) {
                    (Ok(a), _) => a,
                    (Err(_), Some(a)) => a,
                    (Err(e), None) => self.nat.pref64.embed(t.dst).map_err(|_| e)?,
                };
                Ok(Tuple6 {
                    src,
                    dst: inner.src,
                    proto: 58,
                    l4: t.l4,
                    frag: t.frag,
                    tcp_flags: 0,
                })
            }
        }
    }

    fn map_6to4(
        &mut self,
        ctx: &mut Ctx,
        t: &Tuple6,
        role: Role<'_, Tuple4>,
    ) -> Result<Tuple4, DropReason> {
        match role {
            Role::Packet => self.packet_6to4(ctx, t),
            Role::Inner => self.inner_6to4(t),
            Role::ErrorOuter(inner) => {
                // The error leaves from the session's pool4 address T towards Z (which the
                // quoted packet came from); the IPv6 node that sent it has no IPv4 address.
                let z4 = check_addrs6(self.nat, &t.src, &t.dst)?;
                self.hairpin = self.nat.pool4.contains(z4);
                Ok(Tuple4 {
                    src: inner.dst,
                    dst: Ipv4Addr::from(z4),
                    proto: 1,
                    l4: t.l4,
                    frag: t.frag,
                    tcp_flags: 0,
                })
            }
        }
    }
}
