//! Benchmark inputs shared by the criterion bench (`benches/translate.rs`) and the instruction
//! counter (`examples/icount.rs`). Built with etherparse; translated with a fixed SIIT config.
#![allow(dead_code)]

use etherparse::PacketBuilder;
use nat64_core::eamt::{Eam, Eamt};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::rfc6791::Rfc6791Pool;
use nat64_core::rfc7915::XlatConfig;
use nat64_core::siit::{Siit, SiitConfig};
use nat64_core::{Ctx, Timestamp, Verdict, AUX_LEN, HEADROOM};

pub const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const CLIENT4: [u8; 4] = [192, 0, 2, 1];
pub const SERVER4: [u8; 4] = [198, 51, 100, 10];
pub const SERVER6: [u8; 16] = [
    0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 198, 51, 100, 10,
];

pub fn siit() -> Siit {
    Siit::new(SiitConfig {
        pool6: Pool6::new(vec![Prefix6052::WKP], false).expect("pool6"),
        eamt: Eamt::new(vec![
            Eam::new(CLIENT4.into(), 32, CLIENT6.into(), 128).expect("eam")
        ])
        .expect("eamt"),
        rfc6791: Rfc6791Pool::default(),
        xlat: XlatConfig::default(),
    })
}

/// A named input packet. `size` is the IP packet length.
pub struct Case {
    pub name: String,
    pub pkt: Vec<u8>,
}

fn udp6(size: usize) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .udp(40000, 53)
        .write(&mut v, &vec![0x5a; size - 48])
        .expect("build");
    v
}

fn udp4(size: usize) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(SERVER4, CLIENT4, 64)
        .udp(53, 40000)
        .write(&mut v, &vec![0x5a; size - 28])
        .expect("build");
    v
}

/// Sets DF (as Linux does for TCP and PMTU-discovering UDP) and fixes the header checksum with
/// etherparse, so the packet takes the in-place path rather than §4.1 fragmentation.
fn with_df(mut v: Vec<u8>) -> Vec<u8> {
    let (mut h, _) = etherparse::Ipv4Header::from_slice(&v).expect("parse");
    h.dont_fragment = true;
    h.header_checksum = h.calc_header_checksum();
    let mut hdr = Vec::new();
    h.write(&mut hdr).expect("write");
    v[..hdr.len()].copy_from_slice(&hdr);
    v
}

pub fn cases() -> Vec<Case> {
    let mut c = Vec::new();
    // 4to6 tops out at 1480: with DF set, 1500 bytes of IPv4 would not fit a 1500-byte IPv6 MTU
    // (that case is the Fragmentation Needed path).
    for (s6, s4) in [(64, 64), (576, 576), (1500, 1480)] {
        c.push(Case {
            name: format!("6to4/udp/{s6}"),
            pkt: udp6(s6),
        });
        c.push(Case {
            name: format!("4to6/udp/{s4}"),
            pkt: with_df(udp4(s4)),
        });
    }
    // DF=0 above lowest-ipv6-mtu: split into IPv6 fragments (the one path that copies payload).
    c.push(Case {
        name: "4to6/udp-frag/1500".into(),
        pkt: udp4(1500),
    });
    let mut v = Vec::new();
    PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .tcp(40000, 80, 1, 65000)
        .ack(1)
        .write(&mut v, &[0x5a; 1400])
        .expect("build");
    c.push(Case {
        name: "6to4/tcp/1460".into(),
        pkt: v,
    });
    let mut v = Vec::new();
    PacketBuilder::ipv4(SERVER4, CLIENT4, 64)
        .tcp(80, 40000, 1, 65000)
        .ack(1)
        .write(&mut v, &[0x5a; 1400])
        .expect("build");
    c.push(Case {
        name: "4to6/tcp/1440".into(),
        pkt: with_df(v),
    });
    let mut v = Vec::new();
    PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .icmpv6_echo_request(7, 1)
        .write(&mut v, &[0x5a; 56])
        .expect("build");
    c.push(Case {
        name: "6to4/icmp-echo".into(),
        pkt: v,
    });
    let mut v = Vec::new();
    PacketBuilder::ipv4(SERVER4, CLIENT4, 64)
        .icmpv4_echo_reply(7, 1)
        .write(&mut v, &[0x5a; 56])
        .expect("build");
    c.push(Case {
        name: "4to6/icmp-echo".into(),
        pkt: v,
    });
    // An ICMPv4 Port Unreachable quoting the translated UDP datagram.
    let s = siit();
    let mut buf = vec![0u8; HEADROOM + 2048];
    let q = udp6(576);
    buf[HEADROOM..HEADROOM + q.len()].copy_from_slice(&q);
    let mut aux = vec![0u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(0), 1);
    let Verdict::Forward { start, len } =
        s.translate(&mut ctx, &mut buf, HEADROOM, q.len(), &mut aux)
    else {
        panic!("seed translation failed");
    };
    let quoted = buf[start..start + len].to_vec();
    let mut v = Vec::new();
    PacketBuilder::ipv4(SERVER4, CLIENT4, 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut v, &quoted[..548])
        .expect("build");
    c.push(Case {
        name: "4to6/icmp-error".into(),
        pkt: v,
    });
    c
}

/// Bytes restored before each iteration: the headroom plus every byte translation may rewrite
/// (IP and transport headers), never the payload, so cost does not grow with packet size.
pub fn restore_len(pkt: &[u8]) -> usize {
    HEADROOM + pkt.len().min(128)
}
