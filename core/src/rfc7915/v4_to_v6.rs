//! RFC 7915 §4: translating IPv4 into IPv6.
//!
//! The common case rewrites in place: the IPv4 header (with any options) is replaced by a 40-byte
//! IPv6 header, plus an 8-byte Fragment header for fragments, written into the headroom in front of
//! the payload; the transport checksum is updated incrementally. ICMPv4 errors (§4.3), packets that
//! must be fragmented (§4.1, DF=0 above `lowest_ipv6_mtu`) and errors the translator generates (§4.4)
//! are built in `aux`.

use super::icmp::{self, IcmpMap};
use super::mss;
use super::{
    answers_discard, be16, carry_checksum, fix_echo, fix_tcp_udp, icmp_error_allowed_for, proto,
    put16, quoted_ids, write_v4_header, write_v6_header, XlatConfig,
};
use crate::checksum;
use crate::tuple::{Ctx, Frag, Mapper, Role, Tuple4, Tuple6, L4};
use crate::verdict::{DropReason, Verdict};
use std::net::Ipv4Addr;

/// RFC 1812 §4.3.2.3: an ICMPv4 error is at most 576 bytes.
const ICMP4_ERROR_MAX: usize = 576;
/// RFC 4443 §2.4(c): an ICMPv6 error is at most the minimum IPv6 MTU.
const ICMP6_ERROR_MAX: usize = 1280;

/// The fields of an IPv4 header the translator uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct V4Header {
    pub ihl: usize,
    pub total: usize,
    pub tos: u8,
    pub id: u16,
    pub df: bool,
    pub mf: bool,
    /// Fragment offset in 8-byte units.
    pub offset: u16,
    pub ttl: u8,
    pub proto: u8,
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

impl V4Header {
    /// Parses an IPv4 header. `outer` enforces RFC 1812 §5.2.2 (checksum, total length within the
    /// buffer); a header quoted in an ICMP error is checked only for what is present.
    #[inline(always)]
    pub(crate) fn parse(p: &[u8], outer: bool) -> Result<V4Header, DropReason> {
        let bad = |r| {
            if outer {
                r
            } else {
                DropReason::IcmpBadInnerPacket
            }
        };
        if p.len() < 20 {
            return Err(bad(DropReason::Truncated));
        }
        if p[0] >> 4 != 4 {
            return Err(bad(DropReason::UnknownVersion));
        }
        let ihl = usize::from(p[0] & 0x0f) * 4;
        if ihl < 20 || ihl > p.len() {
            return Err(bad(DropReason::Ipv4BadIhl));
        }
        let total = usize::from(be16(p, 2));
        if total < ihl || (outer && total > p.len()) {
            return Err(bad(DropReason::Ipv4BadTotalLength));
        }
        // ihl is a multiple of four.
        if outer && !checksum::verify(checksum::sum32(&p[..ihl])) {
            return Err(DropReason::Ipv4BadHeaderChecksum);
        }
        let ff = be16(p, 6);
        Ok(V4Header {
            ihl,
            total,
            tos: p[1],
            id: be16(p, 4),
            df: ff & 0x4000 != 0,
            mf: ff & 0x2000 != 0,
            offset: ff & 0x1fff,
            ttl: p[8],
            proto: p[9],
            src: [p[12], p[13], p[14], p[15]],
            dst: [p[16], p[17], p[18], p[19]],
        })
    }

    pub(crate) fn is_fragment(&self) -> bool {
        self.mf || self.offset != 0
    }

    fn frag(&self) -> Option<Frag> {
        self.is_fragment().then_some(Frag {
            id: u32::from(self.id),
            offset: self.offset,
            more: self.mf,
        })
    }
}

/// §4.1: an unexpired Loose or Strict Source Route option (RFC 791: pointer not past the end).
fn unexpired_source_route(opts: &[u8]) -> bool {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return false, // end of option list
            1 => i += 1,       // no-operation
            t => {
                let Some(&len) = opts.get(i + 1) else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 {
                    return false;
                }
                if (t == 131 || t == 137) && len >= 3 {
                    if let Some(&ptr) = opts.get(i + 2) {
                        if usize::from(ptr) <= len {
                            return true;
                        }
                    }
                }
                i += len;
            }
        }
    }
    false
}

/// Transport identifiers and TCP flags of a first fragment; `Err` when the header is cut short.
fn transport_ids(proto: u8, seg: &[u8]) -> Result<(L4, u8), DropReason> {
    match proto {
        proto::TCP => {
            if seg.len() < 20 {
                return Err(DropReason::TransportTruncated);
            }
            Ok((
                L4::Ports {
                    src: be16(seg, 0),
                    dst: be16(seg, 2),
                },
                seg[13],
            ))
        }
        proto::UDP => {
            if seg.len() < 8 {
                return Err(DropReason::TransportTruncated);
            }
            Ok((
                L4::Ports {
                    src: be16(seg, 0),
                    dst: be16(seg, 2),
                },
                0,
            ))
        }
        _ => Ok((L4::None, 0)),
    }
}

/// Translates the IPv4 packet at `buf[start..start + len]` into IPv6 (RFC 7915 §4).
pub fn translate_4to6<M: Mapper>(
    cfg: &XlatConfig,
    m: &mut M,
    ctx: &mut Ctx,
    buf: &mut [u8],
    start: usize,
    len: usize,
    aux: &mut [u8],
) -> Verdict {
    match translate(cfg, m, ctx, buf, start, len, aux) {
        Ok(v) => v,
        Err(r) if answers_discard(r) => discard(cfg, ctx, &buf[start..start + len], r, aux),
        Err(r) => Verdict::Drop(r),
    }
}

/// §4.4: a discarded packet is answered with Destination Unreachable, Communication
/// Administratively Prohibited (3/13), subject to `discard_errors`. The packet is still intact:
/// every discard of [`answers_discard`] happens before the translator writes.
#[cold]
fn discard(cfg: &XlatConfig, ctx: &mut Ctx, pkt: &[u8], r: DropReason, aux: &mut [u8]) -> Verdict {
    match V4Header::parse(pkt, true) {
        Ok(h) => error_to_sender_with(cfg, ctx, &pkt[..h.total], h, 3, 13, 0, r, aux, true),
        Err(_) => Verdict::Drop(r),
    }
}

/// True for protocol numbers that only make sense in IPv6 (§4.1 copies the protocol, so these
/// would forge an IPv6 header chain or ICMPv6 message): the IPv4 twin of IPv6 carrying ICMPv4.
#[inline]
fn v6_only_protocol(p: u8) -> bool {
    matches!(
        p,
        proto::HOPOPT | proto::ROUTING | proto::FRAGMENT | proto::DSTOPTS | proto::ICMPV6
    )
}

#[inline(always)]
fn translate<M: Mapper>(
    cfg: &XlatConfig,
    m: &mut M,
    ctx: &mut Ctx,
    buf: &mut [u8],
    start: usize,
    len: usize,
    aux: &mut [u8],
) -> Result<Verdict, DropReason> {
    match fast(cfg, m, ctx, buf, start, len) {
        Some(r) => r,
        None => general(cfg, m, ctx, buf, start, len, aux),
    }
}

/// §4.1 for the common packet, without the general parser: a 20-byte IPv4 header with a valid
/// checksum, not a fragment, carrying UDP with a checksum or TCP other than a SYN (those are
/// clamped), a TTL that survives the decrement and a size that needs neither Fragmentation
/// Needed nor fragmenting. `None`, before anything is looked up or written, for every other
/// packet, which [`general`] translates; for these the result is the one [`general`] gives (the
/// `fast_and_general_agree` test compares them).
#[inline(always)]
fn fast<M: Mapper>(
    cfg: &XlatConfig,
    m: &mut M,
    ctx: &mut Ctx,
    buf: &mut [u8],
    start: usize,
    len: usize,
) -> Option<Result<Verdict, DropReason>> {
    let p = buf.get(start..start.checked_add(len)?)?;
    // Room in front for the 20 bytes the header grows by.
    if p.len() < 28 || p[0] != 0x45 || start < 20 {
        return None;
    }
    let total = usize::from(be16(p, 2));
    let ff = be16(p, 6);
    // A fragment (MF or an offset) takes the general path.
    if total < 28 || total > p.len() || ff & 0x3fff != 0 {
        return None;
    }
    let plen = total - 20;
    let mtu = if ff & 0x4000 != 0 {
        cfg.ipv6_mtu
    } else {
        cfg.lowest_ipv6_mtu.min(cfg.ipv6_mtu)
    };
    if 40 + plen > usize::from(mtu) {
        return None;
    }
    let proto = p[9];
    let tcp_flags = match proto {
        proto::UDP if be16(p, 26) != 0 => 0,
        proto::TCP if plen >= 20 && p[33] & 0x02 == 0 => p[33],
        _ => return None,
    };
    let ttl = p[8];
    let hop_limit = match (cfg.decrement_ttl, ttl) {
        (true, 0 | 1) => return None,
        (true, _) => ttl - 1,
        (false, _) => ttl,
    };
    if !checksum::verify(checksum::sum32(&p[..20])) {
        return None;
    }
    let src: [u8; 4] = p[12..16].try_into().ok()?;
    let dst: [u8; 4] = p[16..20].try_into().ok()?;
    let tc = if cfg.copy_tos { p[1] } else { cfg.tos };
    let l4 = L4::Ports {
        src: be16(p, 20),
        dst: be16(p, 22),
    };
    let t4 = Tuple4 {
        src: Ipv4Addr::from(src),
        dst: Ipv4Addr::from(dst),
        proto,
        l4,
        frag: None,
        tcp_flags,
    };
    let t6 = match m.map_4to6(ctx, &t4, Role::Packet) {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    let (src6, dst6) = (t6.src.octets(), t6.dst.octets());
    let seg_start = start + 20;
    let ph_old = checksum::v4_addrs(&src, &dst);
    let ph_new = checksum::v6_addrs(&src6, &dst6);
    fix_tcp_udp(
        &mut buf[seg_start..seg_start + plen],
        proto,
        ph_old,
        ph_new,
        l4,
        t6.l4,
    );
    let new_start = start - 20;
    write_v6_header(
        &mut buf[new_start..seg_start],
        tc,
        plen as u16,
        proto,
        hop_limit,
        &src6,
        &dst6,
    );
    Some(Ok(Verdict::Forward {
        start: new_start,
        len: 40 + plen,
    }))
}

/// §4.1 for every packet: options, fragments, ICMP, SYN clamping, fragmenting, errors.
fn general<M: Mapper>(
    cfg: &XlatConfig,
    m: &mut M,
    ctx: &mut Ctx,
    buf: &mut [u8],
    start: usize,
    len: usize,
    aux: &mut [u8],
) -> Result<Verdict, DropReason> {
    let end = start.checked_add(len).ok_or(DropReason::BufferTooSmall)?;
    let pkt = buf.get(start..end).ok_or(DropReason::BufferTooSmall)?;
    let h = V4Header::parse(pkt, true)?;
    let pkt = &pkt[..h.total];
    let seg = &pkt[h.ihl..];
    let first = h.offset == 0;
    // IPv6 extension-header numbers (and ICMPv6) carried as an IPv4 protocol would turn into a
    // malformed IPv6 header chain.
    if v6_only_protocol(h.proto) {
        return Err(DropReason::ProtocolMismatch);
    }

    // Transport identification (RFC 6146 §3.4 needs it; SIIT uses it for stateful mappers only).
    let (l4, tcp_flags, echo_type) = if h.proto == proto::ICMP {
        if h.is_fragment() {
            return Err(DropReason::FragmentedIcmp); // §1.2
        }
        if seg.len() < 8 {
            return Err(DropReason::TransportTruncated);
        }
        match icmp::map_4to6(seg[0], seg[1]) {
            IcmpMap::Query { ty } => (L4::IcmpId(be16(seg, 4)), 0, ty),
            IcmpMap::Drop => return Err(DropReason::IcmpUntranslatable),
            map => return icmp_error(cfg, m, ctx, buf, start, h, map, aux),
        }
    } else if first {
        let (l4, flags) = transport_ids(h.proto, seg)?;
        (l4, flags, 0)
    } else {
        (L4::None, 0, 0)
    };

    // §4.1: source route options, then the router's TTL check.
    if h.ihl > 20 && unexpired_source_route(&pkt[20..h.ihl]) {
        return Ok(error_to_sender(
            cfg,
            ctx,
            pkt,
            h,
            3,
            5,
            0,
            DropReason::SourceRoute,
            aux,
        ));
    }
    let hop_limit = if cfg.decrement_ttl {
        if h.ttl <= 1 {
            return Ok(error_to_sender(
                cfg,
                ctx,
                pkt,
                h,
                11,
                0,
                0,
                DropReason::HopLimitExceeded,
                aux,
            ));
        }
        h.ttl - 1
    } else {
        h.ttl
    };

    let t4 = Tuple4 {
        src: Ipv4Addr::from(h.src),
        dst: Ipv4Addr::from(h.dst),
        proto: h.proto,
        l4,
        frag: h.frag(),
        tcp_flags,
    };
    let t6 = m.map_4to6(ctx, &t4, Role::Packet)?;
    let (src6, dst6) = (t6.src.octets(), t6.dst.octets());

    let plen = h.total - h.ihl;
    // A fragment keeps an 8-byte Fragment header in IPv6 (§4.1).
    let fh = if h.is_fragment() { 8 } else { 0 };
    // §4.1: DF set and the next hop cannot take it → Fragmentation Needed. Fragments too: §4.1
    // has no exemption, and the MTU reported leaves room for their Fragment header.
    if h.df && 40 + fh + plen > usize::from(cfg.ipv6_mtu) {
        let mtu = cfg.ipv6_mtu.saturating_sub(20 + fh as u16);
        return Ok(error_to_sender(
            cfg,
            ctx,
            pkt,
            h,
            3,
            4,
            mtu,
            DropReason::PacketTooBig,
            aux,
        ));
    }
    // §4.1: DF=0 packets are fragmented so that every IPv6 packet, Fragment header included, fits
    // both lowest-ipv6-mtu and the next hop's MTU (the §4 MUST).
    let mtu6 = cfg.lowest_ipv6_mtu.min(cfg.ipv6_mtu);
    let must_split = !h.df && 40 + fh + plen > usize::from(mtu6);

    // §4.5: the transport header of a first fragment.
    let seg_start = start + h.ihl;
    let seg_end = start + h.total;
    if first {
        let seg = &mut buf[seg_start..seg_end];
        let ph_old = checksum::v4_addrs(&h.src, &h.dst);
        let ph_new = checksum::v6_addrs(&src6, &dst6);
        match h.proto {
            proto::TCP => {
                let (mut o, mut n) = (ph_old, ph_new);
                // SYN and SYN-ACK only: the flag test keeps the rest of TCP off this path.
                if tcp_flags & 0x02 != 0 {
                    if let Some(max) = cfg.mss_clamp_4to6.limit(cfg) {
                        if let Some((mo, mn)) = mss::clamp_syn(seg, max) {
                            o += mo;
                            n += mn;
                            ctx.mss_clamped[1] += 1;
                        }
                    }
                }
                fix_tcp_udp(seg, proto::TCP, o, n, l4, t6.l4)
            }
            proto::UDP if be16(seg, 6) == 0 => {
                if h.is_fragment() {
                    return Err(DropReason::FragmentedZeroChecksumUdp);
                }
                if !cfg.compute_udp_zero_checksum {
                    return Err(DropReason::ZeroChecksumUdp);
                }
                if let L4::Ports { src, dst } = t6.l4 {
                    put16(seg, 0, src);
                    put16(seg, 2, dst);
                }
                let s = ph_new + checksum::len_proto(plen as u32, proto::UDP) + checksum::sum(seg);
                let c = match checksum::finish(s) {
                    0 => 0xffff,
                    c => c,
                };
                put16(seg, 6, c);
            }
            proto::UDP => fix_tcp_udp(seg, proto::UDP, ph_old, ph_new, l4, t6.l4),
            proto::ICMP => {
                let ph = ph_new + checksum::len_proto(plen as u32, proto::ICMPV6);
                fix_echo(seg, echo_type, 0, ph, t6.l4);
            }
            _ => {}
        }
    }

    let tc = if cfg.copy_tos { h.tos } else { cfg.tos };
    // §4.1 Next Header: ICMPv4 becomes ICMPv6, every other protocol is copied.
    let nh = if h.proto == proto::ICMP {
        proto::ICMPV6
    } else {
        h.proto
    };
    if must_split {
        return split(
            mtu6,
            &buf[seg_start..seg_end],
            h,
            tc,
            nh,
            hop_limit,
            &src6,
            &dst6,
            aux,
        );
    }

    let new_start = seg_start
        .checked_sub(40 + fh)
        .ok_or(DropReason::BufferTooSmall)?;
    let out = &mut buf[new_start..seg_start];
    let plen6 = u16::try_from(plen + fh).map_err(|_| DropReason::PacketTooBig)?;
    if fh == 0 {
        write_v6_header(out, tc, plen6, nh, hop_limit, &src6, &dst6);
    } else {
        write_v6_header(out, tc, plen6, proto::FRAGMENT, hop_limit, &src6, &dst6);
        write_frag_header(&mut out[40..48], nh, h.offset, h.mf, u32::from(h.id));
    }
    Ok(Verdict::Forward {
        start: new_start,
        len: 40 + fh + plen,
    })
}

/// RFC 8200 §4.5 Fragment header; §4.1: identification's high 16 bits zero.
fn write_frag_header(out: &mut [u8], nh: u8, offset: u16, more: bool, id: u32) {
    out[0] = nh;
    out[1] = 0;
    put16(out, 2, (offset << 3) | u16::from(more));
    out[4..8].copy_from_slice(&id.to_be_bytes());
}

/// §4.1: splits the (already fixed up) payload into IPv6 fragments of at most `mtu6` bytes, each
/// with its Fragment header.
#[allow(clippy::too_many_arguments)]
fn split(
    mtu6: u16,
    payload: &[u8],
    h: V4Header,
    tc: u8,
    nh: u8,
    hop_limit: u8,
    src6: &[u8; 16],
    dst6: &[u8; 16],
    aux: &mut [u8],
) -> Result<Verdict, DropReason> {
    let chunk = (usize::from(mtu6).saturating_sub(48)) & !7;
    if chunk == 0 {
        return Err(DropReason::PacketTooBig);
    }
    let mut at = 0;
    let mut off = usize::from(h.offset) * 8;
    for (i, part) in payload.chunks(chunk).enumerate() {
        let last = (i + 1) * chunk >= payload.len();
        let out = aux
            .get_mut(at..at + 48 + part.len())
            .ok_or(DropReason::BufferTooSmall)?;
        write_v6_header(
            out,
            tc,
            (8 + part.len()) as u16,
            proto::FRAGMENT,
            hop_limit,
            src6,
            dst6,
        );
        let frag_off = u16::try_from(off / 8).map_err(|_| DropReason::BadFragment)?;
        write_frag_header(
            &mut out[40..48],
            nh,
            frag_off,
            !last || h.mf,
            u32::from(h.id),
        );
        out[48..].copy_from_slice(part);
        at += 48 + part.len();
        off += part.len();
    }
    Ok(Verdict::ForwardAux { len: at })
}

/// §4.4: builds an ICMPv4 error about `orig` for its sender into `aux`, unless `orig` is itself an
/// ICMP error, a non-first fragment, or from an address no error may go to (RFC 1812 §4.3.2.7).
#[allow(clippy::too_many_arguments)]
pub(crate) fn error_to_sender(
    cfg: &XlatConfig,
    ctx: &mut Ctx,
    orig: &[u8],
    h: V4Header,
    ty: u8,
    code: u8,
    mtu: u16,
    reason: DropReason,
    aux: &mut [u8],
) -> Verdict {
    error_to_sender_with(cfg, ctx, orig, h, ty, code, mtu, reason, aux, false)
}

/// [`error_to_sender`]; `discard` marks a §4.4 discard error (policy `discard_errors`).
#[allow(clippy::too_many_arguments)]
#[cold]
#[inline(never)]
fn error_to_sender_with(
    cfg: &XlatConfig,
    ctx: &mut Ctx,
    orig: &[u8],
    h: V4Header,
    ty: u8,
    code: u8,
    mtu: u16,
    reason: DropReason,
    aux: &mut [u8],
    discard: bool,
) -> Verdict {
    let is_error =
        h.proto == proto::ICMP && orig.get(h.ihl).is_some_and(|&t| icmp::is_icmp4_error(t));
    let src = Ipv4Addr::from(h.src);
    if is_error
        || h.offset != 0
        || src.is_unspecified()
        || src.is_multicast()
        || src.is_broadcast()
        || super::is_special_v4(src)
        || !icmp_error_allowed_for(cfg, ctx, discard)
    {
        return Verdict::Drop(reason);
    }
    let quote = orig.len().min(ICMP4_ERROR_MAX - 28);
    let total = 28 + quote;
    let Some(out) = aux.get_mut(..total) else {
        return Verdict::Drop(reason);
    };
    let from = cfg.icmp_src4.map_or(h.dst, |a| a.octets());
    let id = ctx.ip_id();
    write_v4_header(out, 0, total as u16, id, 0, 64, proto::ICMP, &from, &h.src);
    out[20] = ty;
    out[21] = code;
    out[22..28].fill(0);
    put16(out, 26, mtu);
    out[28..].copy_from_slice(&orig[..quote]);
    let c = checksum::finish(checksum::sum(&out[20..]));
    put16(out, 22, c);
    Verdict::IcmpError { len: total, reason }
}

/// §4.2/§4.3: translates an ICMPv4 error, with the packet it quotes, into `aux`.
#[allow(clippy::too_many_arguments)]
fn icmp_error<M: Mapper>(
    cfg: &XlatConfig,
    m: &mut M,
    ctx: &mut Ctx,
    buf: &[u8],
    start: usize,
    h: V4Header,
    map: IcmpMap,
    aux: &mut [u8],
) -> Result<Verdict, DropReason> {
    let pkt = &buf[start..start + h.total];
    let msg = &pkt[h.ihl..];
    let ty4 = msg[0];
    let body = &msg[8..];

    // RFC 4884: a non-zero length (32-bit words, octet 5) splits the body into the original
    // datagram and an extension structure. Only Destination Unreachable and Time Exceeded have the
    // field in ICMPv6, so other types lose the extension.
    let ext_len_words = usize::from(msg[5]);
    let (dgram, ext) =
        if matches!(ty4, 3 | 11 | 12) && ext_len_words != 0 && ext_len_words * 4 <= body.len() {
            body.split_at(ext_len_words * 4)
        } else {
            (body, &body[body.len()..])
        };
    let (ty6, code6) = match map {
        IcmpMap::Error { ty, code }
        | IcmpMap::PacketTooBig { ty, code }
        | IcmpMap::ParamProblem { ty, code }
        | IcmpMap::FixedPointer { ty, code, .. } => (ty, code),
        IcmpMap::Query { .. } | IcmpMap::Drop => return Err(DropReason::IcmpUntranslatable),
    };
    let keeps_ext = matches!(ty6, 1 | 3) && !ext.is_empty();

    // The quoted packet.
    let ih = V4Header::parse(dgram, false)?;
    // The quoted packet follows the rule for packets (its protocol would be dropped as one).
    if v6_only_protocol(ih.proto) {
        return Err(DropReason::ProtocolMismatch);
    }
    let inner_seg_all = &dgram[ih.ihl..];
    let inner_claim = ih.total - ih.ihl;
    let inner_seg = &inner_seg_all[..inner_seg_all.len().min(inner_claim)];
    let inner_first = ih.offset == 0;
    let (inner_l4, inner_echo) = quoted_ids(
        ih.proto,
        proto::ICMP,
        inner_first,
        inner_seg,
        icmp::is_icmp4_error,
        icmp::map_4to6,
    )?;
    let in4 = Tuple4 {
        src: Ipv4Addr::from(ih.src),
        dst: Ipv4Addr::from(ih.dst),
        proto: ih.proto,
        l4: inner_l4,
        frag: ih.frag(),
        tcp_flags: 0,
    };
    let in6 = m.map_4to6(ctx, &in4, Role::Inner)?;
    let out4 = Tuple4 {
        src: Ipv4Addr::from(h.src),
        dst: Ipv4Addr::from(h.dst),
        proto: proto::ICMP,
        l4: L4::None,
        frag: None,
        tcp_flags: 0,
    };
    let out6: Tuple6 = m.map_4to6(ctx, &out4, Role::ErrorOuter(&in6))?;

    let hop_limit = if cfg.decrement_ttl {
        if h.ttl <= 1 {
            return Err(DropReason::HopLimitExceeded); // never an error about an error
        }
        h.ttl - 1
    } else {
        h.ttl
    };

    // Second word of the ICMPv6 header.
    let mut word2 = [0u8; 4];
    match map {
        IcmpMap::PacketTooBig { .. } => {
            let mut mtu4 = be16(msg, 6);
            if mtu4 == 0 {
                mtu4 = icmp::plateau_mtu(ih.total as u16);
            }
            let mtu = icmp::ptb_mtu_4to6(mtu4, cfg.ipv6_mtu, cfg.ipv4_mtu);
            word2 = mtu.to_be_bytes();
        }
        IcmpMap::ParamProblem { .. } => {
            let p = icmp::pointer_4to6(msg[4]).ok_or(DropReason::IcmpBadPointer)?;
            word2 = p.to_be_bytes();
        }
        IcmpMap::FixedPointer { pointer, .. } => word2[3] = pointer,
        _ => {}
    }

    // Layout in aux: IPv6 | ICMPv6 | inner IPv6 [| inner Fragment] | inner payload [| pad | ext].
    let ifh = if ih.is_fragment() { 8 } else { 0 };
    let inner_hdr = 40 + ifh;
    if aux.len() < ICMP6_ERROR_MAX {
        return Err(DropReason::BufferTooSmall);
    }
    let room = ICMP6_ERROR_MAX - 48 - inner_hdr;
    let mut seg_len = inner_seg.len().min(room);
    let mut ext_out = 0;
    let mut pad_to = 0;
    if keeps_ext {
        // RFC 4884 §4.1: the original datagram is zero-padded to a multiple of 8, at least 128
        // bytes. When it and the extension do not both fit, the quote is shortened (down to
        // those 128 bytes) so that the extension is kept; only a longer extension is dropped.
        let dgram_room = (ICMP6_ERROR_MAX - 48).saturating_sub(ext.len()) & !7;
        if dgram_room >= 128 {
            seg_len = seg_len.min(dgram_room - inner_hdr);
            pad_to = (inner_hdr + seg_len).div_ceil(8).max(16) * 8;
            ext_out = ext.len();
        }
    }
    {
        let inner = &mut aux[48..48 + inner_hdr + seg_len];
        let (ihdr, iseg) = inner.split_at_mut(inner_hdr);
        iseg.copy_from_slice(&inner_seg[..seg_len]);
        let (isrc, idst) = (in6.src.octets(), in6.dst.octets());
        let tc = if cfg.copy_tos { ih.tos } else { cfg.tos };
        let iplen = (inner_claim + ifh) as u16;
        let inh = if ih.proto == proto::ICMP {
            proto::ICMPV6
        } else {
            ih.proto
        };
        if ifh == 0 {
            write_v6_header(ihdr, tc, iplen, inh, ih.ttl, &isrc, &idst);
        } else {
            write_v6_header(ihdr, tc, iplen, proto::FRAGMENT, ih.ttl, &isrc, &idst);
            write_frag_header(&mut ihdr[40..48], inh, ih.offset, ih.mf, u32::from(ih.id));
        }
        if inner_first {
            let ph_old = checksum::v4_addrs(&ih.src, &ih.dst);
            let ph_new = checksum::v6_addrs(&isrc, &idst);
            match ih.proto {
                proto::TCP | proto::UDP => {
                    fix_tcp_udp(iseg, ih.proto, ph_old, ph_new, inner_l4, in6.l4)
                }
                proto::ICMP => {
                    if let Some(ty) = inner_echo {
                        let ph = ph_new + checksum::len_proto(inner_claim as u32, proto::ICMPV6);
                        fix_echo(iseg, ty, 0, ph, in6.l4);
                    }
                }
                _ => {}
            }
        }
    }
    let mut body_len = inner_hdr + seg_len;
    if pad_to != 0 {
        aux[48 + body_len..48 + pad_to].fill(0);
        aux[48 + pad_to..48 + pad_to + ext_out].copy_from_slice(ext);
        body_len = pad_to + ext_out;
    }
    let icmp_len = 8 + body_len;
    let (src6, dst6) = (out6.src.octets(), out6.dst.octets());
    let tc = if cfg.copy_tos { h.tos } else { cfg.tos };
    write_v6_header(
        &mut aux[..40],
        tc,
        icmp_len as u16,
        proto::ICMPV6,
        hop_limit,
        &src6,
        &dst6,
    );
    let icmp6 = &mut aux[40..40 + icmp_len];
    icmp6[0] = ty6;
    icmp6[1] = code6;
    icmp6[2] = 0;
    icmp6[3] = 0;
    icmp6[4..8].copy_from_slice(&word2);
    if pad_to != 0 {
        icmp6[4] = (pad_to / 8) as u8; // RFC 4884 length, 64-bit words
    }
    let new_sum = checksum::v6_addrs(&src6, &dst6)
        + checksum::len_proto(icmp_len as u32, proto::ICMPV6)
        + checksum::sum(icmp6);
    let c = carry_checksum(checksum::sum(msg), new_sum);
    put16(icmp6, 2, c);
    Ok(Verdict::ForwardAux { len: 40 + icmp_len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfc7915::difftest::{config, Rng, TestMapper};
    use crate::{Timestamp, AUX_LEN, HEADROOM};

    /// An IPv4 packet with the fields the fast path tests drawn at random (version and IHL,
    /// total length against the buffer, flags and offset, TTL, protocol, TCP flags, UDP
    /// checksum zero or not, header checksum right or wrong, size across the MTU thresholds,
    /// addresses some of which map to nothing).
    fn packet(r: &mut Rng) -> Vec<u8> {
        let size = r.pick(&[
            20usize, 27, 28, 39, 40, 64, 576, 1232, 1260, 1261, 1460, 1480, 1500,
        ]);
        let mut p: Vec<u8> = (0..size).map(|_| r.next() as u8).collect();
        p[0] = r.pick(&[0x45, 0x45, 0x45, 0x46, 0x65]);
        let total = match r.next() % 8 {
            0 => size + 1,
            1 => size.saturating_sub(8),
            _ => size,
        };
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let ff: u16 = r.pick(&[0, 0, 0x4000, 0x4000, 0x2000, 0x0001, 0x8000, 0x6000]);
        p[6..8].copy_from_slice(&ff.to_be_bytes());
        p[8] = r.pick(&[0, 1, 2, 64, 255]);
        p[9] = r.pick(&[
            proto::UDP,
            proto::UDP,
            proto::TCP,
            proto::TCP,
            proto::ICMP,
            58,
            0,
        ]);
        if r.next().is_multiple_of(8) {
            p[15] = 0;
        }
        if size >= 28 && r.next().is_multiple_of(4) {
            p[26] = 0;
            p[27] = 0;
        }
        if size >= 34 && r.next().is_multiple_of(4) {
            p[33] |= 0x02;
        }
        p[10] = 0;
        p[11] = 0;
        let ck = checksum::finish(checksum::sum32(&p[..20]));
        let ck = if r.next().is_multiple_of(16) {
            ck ^ 1
        } else {
            ck
        };
        p[10..12].copy_from_slice(&ck.to_be_bytes());
        p
    }

    /// For every packet the fast path takes, the general path gives the same verdict, the
    /// same bytes in the whole buffer and the same context; the fast path calls the mapper once
    /// and declines before calling it otherwise.
    #[test]
    fn fast_and_general_agree() {
        let mut r = Rng(0x5eed_0406);
        let (mut fast_n, mut general_n) = (0, 0);
        for _ in 0..200_000 {
            let cfg = config(&mut r);
            let p = packet(&mut r);
            // A start below 20 leaves no room to grow the header: the fast path declines.
            let start = if r.next().is_multiple_of(16) {
                10
            } else {
                HEADROOM
            };
            let mut a = vec![0xa5u8; start + p.len() + 8];
            a[start..start + p.len()].copy_from_slice(&p);
            let mut b = a.clone();
            let mut ctx_a = Ctx::new(Timestamp(5), r.next() as u16);
            let mut ctx_b = ctx_a.clone();
            let (mut ma, mut mb) = (TestMapper::default(), TestMapper::default());
            let mut aux = vec![0u8; AUX_LEN];
            match fast(&cfg, &mut ma, &mut ctx_a, &mut a, start, p.len()) {
                None => {
                    general_n += 1;
                    assert_eq!(ma.calls, 0, "declined after mapping: {p:02x?}");
                    assert_eq!(a[start..start + p.len()], p[..], "declined after writing");
                }
                Some(v) => {
                    fast_n += 1;
                    let w = general(&cfg, &mut mb, &mut ctx_b, &mut b, start, p.len(), &mut aux);
                    assert_eq!(v, w, "verdict of {p:02x?} under {cfg:?}");
                    assert_eq!(a, b, "bytes of {p:02x?} under {cfg:?}");
                    assert_eq!(ctx_a.ip_id(), ctx_b.ip_id(), "identification sequence");
                    assert_eq!((ma.calls, mb.calls), (1, 1));
                }
            }
        }
        assert!(
            fast_n > 5_000 && general_n > 5_000,
            "{fast_n} fast, {general_n} general"
        );
    }
}
