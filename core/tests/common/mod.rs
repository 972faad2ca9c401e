//! Shared helpers for packet tests: inputs come from etherparse (an independent builder), and
//! checksums are verified with a plain RFC 1071 sum written here, not with the core's code.
#![allow(dead_code)]

use etherparse::{
    IpFragOffset, IpNumber, Ipv4Header, Ipv6FragmentHeader, Ipv6Header, PacketBuilder,
};
use nat64_core::eamt::{Eam, Eamt};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::rfc6791::Rfc6791Pool;
use nat64_core::rfc7915::XlatConfig;
use nat64_core::siit::{Siit, SiitConfig};
use nat64_core::{packets, Ctx, Timestamp, Verdict, AUX_LEN, HEADROOM};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The IPv6-only client, mapped by the EAM 192.0.2.1 <-> 2001:db8:1::1.
pub const V6_CLIENT: &str = "2001:db8:1::1";
pub const V4_SERVER: &str = "198.51.100.10";
pub const V4_CLIENT: &str = "192.0.2.10";
/// EAM: 192.0.2.128/25 <-> 2001:db8:e::/121 (IPv4-only clients reach IPv6 servers here).
pub const V6_EAM_SERVER: &str = "2001:db8:e::5";
pub const V4_EAM_SERVER: &str = "192.0.2.133";

pub fn v4(s: &str) -> [u8; 4] {
    s.parse::<Ipv4Addr>().unwrap().octets()
}
pub fn v6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}
/// The pool6 (64:ff9b::/96) form of an IPv4 address.
pub fn wkp(s: &str) -> [u8; 16] {
    let a = v4(s);
    let mut o = v6("64:ff9b::");
    o[12..].copy_from_slice(&a);
    o
}

pub fn config(strict: bool) -> SiitConfig {
    SiitConfig {
        pool6: Pool6::new(vec![Prefix6052::WKP], strict).unwrap(),
        eamt: Eamt::new(vec![
            Eam::new(
                "192.0.2.128".parse().unwrap(),
                25,
                "2001:db8:e::".parse().unwrap(),
                121,
            )
            .unwrap(),
            Eam::new(
                "192.0.2.1".parse().unwrap(),
                32,
                "2001:db8:1::1".parse().unwrap(),
                128,
            )
            .unwrap(),
        ])
        .unwrap(),
        rfc6791: Rfc6791Pool::new(&[("203.0.113.0".parse().unwrap(), 28)]).unwrap(),
        xlat: XlatConfig::default(),
    }
}

pub fn siit() -> Siit {
    Siit::new(config(false))
}

/// Output of one translation, copied out for assertions.
#[derive(Debug)]
pub enum Out {
    Packets(Vec<Vec<u8>>),
    Error(Vec<u8>, nat64_core::DropReason),
    Drop(nat64_core::DropReason),
}

impl Out {
    pub fn one(self) -> Vec<u8> {
        match self {
            Out::Packets(mut v) if v.len() == 1 => v.remove(0),
            o => panic!("expected one packet, got {o:?}"),
        }
    }
    pub fn error(self) -> (Vec<u8>, nat64_core::DropReason) {
        match self {
            Out::Error(p, r) => (p, r),
            o => panic!("expected an ICMP error, got {o:?}"),
        }
    }
    /// The reason of a packet that was not forwarded, answered with an ICMP error (RFC 7915
    /// §4.4/§5.4) or not.
    pub fn refused(self) -> nat64_core::DropReason {
        match self {
            Out::Drop(r) | Out::Error(_, r) => r,
            o => panic!("expected a drop, got {o:?}"),
        }
    }
    pub fn dropped(self) -> nat64_core::DropReason {
        match self {
            Out::Drop(r) => r,
            o => panic!("expected a drop, got {o:?}"),
        }
    }
}

pub fn run_with(s: &Siit, pkt: &[u8]) -> Out {
    let mut buf = vec![0xa5u8; HEADROOM + pkt.len()];
    buf[HEADROOM..].copy_from_slice(pkt);
    let mut aux = vec![0xa5u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(1_000), 7);
    match s.translate(&mut ctx, &mut buf, HEADROOM, pkt.len(), &mut aux) {
        Verdict::Forward { start, len } => Out::Packets(vec![buf[start..start + len].to_vec()]),
        Verdict::ForwardAux { len } => {
            Out::Packets(packets(&aux[..len]).map(|p| p.to_vec()).collect())
        }
        Verdict::IcmpError { len, reason } => Out::Error(aux[..len].to_vec(), reason),
        Verdict::Drop(r) => Out::Drop(r),
    }
}

pub fn run(pkt: &[u8]) -> Out {
    run_with(&siit(), pkt)
}

// --- builders (etherparse) ---

pub fn udp6(src: [u8; 16], dst: [u8; 16], hl: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(src, dst, hl)
        .udp(40000, 53)
        .write(&mut v, payload)
        .unwrap();
    v
}

pub fn udp4(src: [u8; 4], dst: [u8; 4], ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src, dst, ttl)
        .udp(40000, 53)
        .write(&mut v, payload)
        .unwrap();
    v
}

pub fn tcp6(src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(src, dst, 64)
        .tcp(40000, 80, 12345, 65000)
        .syn()
        .write(&mut v, payload)
        .unwrap();
    v
}

pub fn tcp4(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .tcp(80, 40000, 777, 65000)
        .ack(12346)
        .write(&mut v, payload)
        .unwrap();
    v
}

pub fn echo6(src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(src, dst, 64)
        .icmpv6_echo_request(0x1234, 1)
        .write(&mut v, payload)
        .unwrap();
    v
}

pub fn echo4_reply(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .icmpv4_echo_reply(0x1234, 1)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// An IPv4 packet with explicit header fields and a raw payload (the transport bytes).
#[allow(clippy::too_many_arguments)]
pub fn raw4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    ttl: u8,
    df: bool,
    mf: bool,
    offset: u16,
    id: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut h = Ipv4Header::new(payload.len() as u16, ttl, IpNumber(proto), src, dst).unwrap();
    h.dont_fragment = df;
    h.more_fragments = mf;
    h.fragment_offset = IpFragOffset::try_new(offset).unwrap();
    h.identification = id;
    h.options = options.try_into().unwrap();
    h.total_len = (h.header_len() + payload.len()) as u16;
    h.header_checksum = h.calc_header_checksum();
    let mut v = Vec::new();
    h.write(&mut v).unwrap();
    v.extend_from_slice(payload);
    v
}

/// An IPv6 packet with a Fragment header and a raw payload.
pub fn frag6(
    src: [u8; 16],
    dst: [u8; 16],
    nh: u8,
    offset: u16,
    more: bool,
    id: u32,
    payload: &[u8],
) -> Vec<u8> {
    let h = Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: (8 + payload.len()) as u16,
        next_header: IpNumber(44),
        hop_limit: 64,
        source: src,
        destination: dst,
    };
    let f = Ipv6FragmentHeader::new(
        IpNumber(nh),
        IpFragOffset::try_new(offset).unwrap(),
        more,
        id,
    );
    let mut v = Vec::new();
    h.write(&mut v).unwrap();
    f.write(&mut v).unwrap();
    v.extend_from_slice(payload);
    v
}

/// An IPv6 packet whose next header chain is given raw (`exts` starts with the first extension).
pub fn raw6(src: [u8; 16], dst: [u8; 16], first_nh: u8, hl: u8, rest: &[u8]) -> Vec<u8> {
    let h = Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: rest.len() as u16,
        next_header: IpNumber(first_nh),
        hop_limit: hl,
        source: src,
        destination: dst,
    };
    let mut v = Vec::new();
    h.write(&mut v).unwrap();
    v.extend_from_slice(rest);
    v
}

// --- independent checksum verification (RFC 1071) ---

pub fn sum16(data: &[u8]) -> u32 {
    let mut s: u32 = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        s += u32::from(data[i]) << 8 | u32::from(data[i + 1]);
        i += 2;
    }
    if i < data.len() {
        s += u32::from(data[i]) << 8;
    }
    s
}

pub fn folds_to_ffff(mut s: u32) -> bool {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s == 0xffff
}

/// True if the upper-layer checksum of an IPv4 packet verifies (ICMP without pseudo-header).
pub fn l4_ok_v4(p: &[u8]) -> bool {
    let ihl = usize::from(p[0] & 15) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    let seg = &p[ihl..total];
    let proto = p[9];
    if proto == 1 {
        return folds_to_ffff(sum16(seg));
    }
    let ph = sum16(&p[12..20]) + u32::from(proto) + seg.len() as u32;
    folds_to_ffff(ph + sum16(seg))
}

/// True if the upper-layer checksum of an unfragmented IPv6 packet without extension headers
/// verifies.
pub fn l4_ok_v6(p: &[u8]) -> bool {
    let seg = &p[40..];
    let ph = sum16(&p[8..40]) + u32::from(p[6]) + seg.len() as u32;
    folds_to_ffff(ph + sum16(seg))
}

pub fn v4_header_ok(p: &[u8]) -> bool {
    let ihl = usize::from(p[0] & 15) * 4;
    folds_to_ffff(sum16(&p[..ihl]))
}

/// Fills in the checksum of an ICMPv4 message (type, code, checksum, ... at offset 0).
pub fn set_icmp4_checksum(msg: &mut [u8]) {
    msg[2] = 0;
    msg[3] = 0;
    let mut s = sum16(msg);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    msg[2..4].copy_from_slice(&(!(s as u16)).to_be_bytes());
}

/// Fills in the checksum of an ICMPv6 message (RFC 4443 §2.3: pseudo-header of `src`, `dst`,
/// the message length and next header 58).
pub fn set_icmp6_checksum(src: &[u8; 16], dst: &[u8; 16], msg: &mut [u8]) {
    msg[2] = 0;
    msg[3] = 0;
    let mut s = sum16(src) + sum16(dst) + msg.len() as u32 + 58 + sum16(msg);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    msg[2..4].copy_from_slice(&(!(s as u16)).to_be_bytes());
}
