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
use nat64_core::{Verdict, HEADROOM};

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

/// A named input packet and what its translation must give. `size` is the IP packet length.
pub struct Case {
    pub name: String,
    pub pkt: Vec<u8>,
    /// The verdict and output size the case is meant to time: a case that falls into a drop
    /// (or the wrong path) must fail, not show up as a speed-up.
    pub expect: Expect,
}

/// The expected result of translating a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `Verdict::Forward` of one packet of this many bytes.
    Forward(usize),
    /// `Verdict::ForwardAux` holding packets of these sizes back to back (IPv6 fragments, or an
    /// ICMP error the translator rebuilt there).
    Aux(&'static [usize]),
}

/// Checks one translation's verdict and output against `case.expect`, so the bench and the
/// instruction counter refuse to time a case that took another path.
pub fn check(case: &Case, v: Verdict, buf: &[u8], aux: &[u8]) -> Result<(), String> {
    let fail = |what: String| Err(format!("case {}: {what}", case.name));
    match (case.expect, v) {
        (Expect::Forward(want), Verdict::Forward { start, len }) => {
            if len != want {
                return fail(format!("forwarded {len} bytes, expected {want}"));
            }
            let out = &buf[start..start + len];
            let want_version = if case.pkt[0] >> 4 == 6 { 4 } else { 6 };
            if out[0] >> 4 != want_version {
                return fail(format!(
                    "output is IPv{}, expected IPv{want_version}",
                    out[0] >> 4
                ));
            }
            // A translated SYN never carries an MSS above what fits both MTUs (MSS clamping
            // on, the default), so a SYN case that skipped the clamp fails here.
            if let Some(m) = syn_mss(out) {
                let limit = nat64_core::rfc7915::mss::auto_limit(1500, 1500);
                if m > limit {
                    return fail(format!("SYN leaves with MSS {m}, above {limit}"));
                }
            }
            Ok(())
        }
        (Expect::Aux(want), Verdict::ForwardAux { len }) => {
            let got: Vec<usize> = nat64_core::packets(&aux[..len]).map(<[u8]>::len).collect();
            if got != want {
                return fail(format!("fragments of {got:?} bytes, expected {want:?}"));
            }
            Ok(())
        }
        (e, v) => fail(format!("verdict {v:?}, expected {e:?}")),
    }
}

/// The MSS option of a TCP SYN (etherparse's parser), if `p` is one that has it.
fn syn_mss(p: &[u8]) -> Option<u16> {
    let h = etherparse::PacketHeaders::from_ip_slice(p).ok()?;
    let Some(etherparse::TransportHeader::Tcp(t)) = h.transport else {
        return None;
    };
    if !t.syn {
        return None;
    }
    t.options_iterator().find_map(|o| match o {
        Ok(etherparse::TcpOptionElement::MaximumSegmentSize(m)) => Some(m),
        _ => None,
    })
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
fn with_df(v: Vec<u8>) -> Vec<u8> {
    set_df(v, true)
}

/// Sets or clears DF and recomputes the header checksum with etherparse (its builder's default
/// is DF=1, which sends a 1500-byte packet down the Fragmentation Needed path instead).
fn set_df(mut v: Vec<u8>, df: bool) -> Vec<u8> {
    let (mut h, _) = etherparse::Ipv4Header::from_slice(&v).expect("parse");
    h.dont_fragment = df;
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
            // §5.1: the 40-byte IPv6 header becomes a 20-byte IPv4 header.
            expect: Expect::Forward(s6 - 20),
        });
        c.push(Case {
            name: format!("4to6/udp/{s4}"),
            pkt: with_df(udp4(s4)),
            // §4.1: 20-byte IPv4 header → 40-byte IPv6 header, no Fragment header with DF=1.
            expect: Expect::Forward(s4 + 20),
        });
    }
    // DF=0 above lowest-ipv6-mtu: split into IPv6 fragments (the one path that copies payload).
    // §4.1: 1480 bytes of UDP in fragments of at most 1280 bytes: 40 + 8 + 1232 (a multiple of 8),
    // then 40 + 8 + 248.
    c.push(Case {
        name: "4to6/udp-frag/1500".into(),
        pkt: set_df(udp4(1500), false),
        expect: Expect::Aux(&[1280, 296]),
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
        expect: Expect::Forward(1440),
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
        expect: Expect::Forward(1460),
    });
    // MSS clamping: a SYN with Linux's option layout (MSS, SACK-permitted, timestamps, NOP,
    // window scale) whose MSS 8960 (a 9000-byte link) is lowered to 1440.
    let syn_opts = [
        etherparse::TcpOptionElement::MaximumSegmentSize(8960),
        etherparse::TcpOptionElement::SelectiveAcknowledgementPermitted,
        etherparse::TcpOptionElement::Timestamp(0x0102_0304, 0),
        etherparse::TcpOptionElement::Noop,
        etherparse::TcpOptionElement::WindowScale(7),
    ];
    let mut v = Vec::new();
    PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .tcp(40000, 80, 1, 64240)
        .syn()
        .options(&syn_opts)
        .expect("options")
        .write(&mut v, &[])
        .expect("build");
    c.push(Case {
        name: "6to4/tcp-syn-mss".into(),
        pkt: v,
        expect: Expect::Forward(20 + 40),
    });
    let mut v = Vec::new();
    PacketBuilder::ipv4(SERVER4, CLIENT4, 64)
        .tcp(80, 40000, 1, 64240)
        .syn()
        .options(&syn_opts)
        .expect("options")
        .write(&mut v, &[])
        .expect("build");
    c.push(Case {
        name: "4to6/tcp-syn-mss".into(),
        pkt: with_df(v),
        expect: Expect::Forward(40 + 40),
    });
    let mut v = Vec::new();
    PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .icmpv6_echo_request(7, 1)
        .write(&mut v, &[0x5a; 56])
        .expect("build");
    c.push(Case {
        name: "6to4/icmp-echo".into(),
        pkt: v,
        expect: Expect::Forward(84),
    });
    let mut v = Vec::new();
    PacketBuilder::ipv4(SERVER4, CLIENT4, 64)
        .icmpv4_echo_reply(7, 1)
        .write(&mut v, &[0x5a; 56])
        .expect("build");
    c.push(Case {
        name: "4to6/icmp-echo".into(),
        pkt: v,
        expect: Expect::Forward(104),
    });
    // An ICMPv4 Port Unreachable quoting the IPv4 form of 6to4/udp/576 (built with etherparse,
    // not by the translator: 192.0.2.1 -> 198.51.100.10, TTL 63).
    let mut quoted = Vec::new();
    PacketBuilder::ipv4(CLIENT4, SERVER4, 63)
        .udp(40000, 53)
        .write(&mut quoted, &[0x5a; 576 - 48])
        .expect("build");
    let quoted = set_df(quoted, false); // §5.1: 556 bytes ≤ 1260 leave with DF=0
    let mut v = Vec::new();
    PacketBuilder::ipv4(SERVER4, CLIENT4, 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut v, &quoted[..548])
        .expect("build");
    c.push(Case {
        name: "4to6/icmp-error".into(),
        pkt: v,
        // §4.3: 40 + 8, then the 548 quoted bytes with their IPv4 header grown to IPv6 (+20).
        expect: Expect::Aux(&[40 + 8 + 548 + 20]),
    });
    c
}

/// Bytes restored before each iteration: the headroom plus every byte translation may rewrite
/// (IP and transport headers), never the payload, so cost does not grow with packet size.
pub fn restore_len(pkt: &[u8]) -> usize {
    HEADROOM + pkt.len().min(128)
}
