//! TCP MSS clamping of translated SYNs (`rfc7915::mss`), through `Siit::translate` and
//! `Nat64::translate`. Inputs are built by etherparse (options as elements or as raw bytes);
//! outputs are parsed by etherparse, and their TCP checksum is checked twice: recomputed by
//! etherparse and verified with the RFC 1071 sum of `common`.

mod common;
use common::*;
use etherparse::{PacketBuilder, PacketHeaders, TcpHeader, TcpOptionElement as O};
use nat64_core::nat64::{Nat64, Nat64Config};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::rfc7915::{MssClamp, XlatConfig};
use nat64_core::siit::Siit;
use nat64_core::{Ctx, Timestamp, Verdict, AUX_LEN, HEADROOM};

/// The IPv4 host (pool6 side) and the IPv6 host reached through the EAM 192.0.2.1 <-> 2001:db8:1::1.
const H4: &str = V4_SERVER;
const E4: &str = "192.0.2.1";

/// TCP flags of a test segment.
#[derive(Clone, Copy, PartialEq)]
enum F {
    Syn,
    SynAck,
    Ack,
}

/// Options as etherparse elements, or raw bytes (for malformed lists).
enum Opts<'a> {
    El(&'a [O]),
    Raw(&'a [u8]),
}

macro_rules! build {
    ($ip:expr, $f:expr, $o:expr) => {{
        let t = $ip.tcp(40000, 80, 1000, 64240);
        let t = match $f {
            F::Syn => t.syn(),
            F::SynAck => t.syn().ack(77),
            F::Ack => t.ack(77),
        };
        let t = match $o {
            Opts::El(e) => t.options(e).expect("options fit"),
            Opts::Raw(r) => t.options_raw(r).expect("raw options are a multiple of 4"),
        };
        let mut v = Vec::new();
        t.write(&mut v, b"").expect("writes");
        v
    }};
}

/// A TCP segment IPv4 `H4` -> `E4` (translated IPv4→IPv6).
fn seg4(f: F, o: Opts) -> Vec<u8> {
    build!(PacketBuilder::ipv4(v4(H4), v4(E4), 64), f, o)
}

/// A TCP segment IPv6 `V6_CLIENT` -> pool6(`H4`) (translated IPv6→IPv4).
fn seg6(f: F, o: Opts) -> Vec<u8> {
    build!(PacketBuilder::ipv6(v6(V6_CLIENT), wkp(H4), 64), f, o)
}

/// Translates `pkt` with `x` as the translator's options; the one output packet and the
/// context's clamp counters.
fn siit_run(x: XlatConfig, pkt: &[u8]) -> (Vec<u8>, [u64; 2]) {
    let mut c = config(false);
    c.xlat = x;
    let s = Siit::new(c);
    go(
        |ctx, buf, len, aux| s.translate(ctx, buf, HEADROOM, len, aux),
        pkt,
    )
}

fn go(
    mut t: impl FnMut(&mut Ctx, &mut [u8], usize, &mut [u8]) -> Verdict,
    pkt: &[u8],
) -> (Vec<u8>, [u64; 2]) {
    let mut buf = vec![0xa5u8; HEADROOM + pkt.len()];
    buf[HEADROOM..].copy_from_slice(pkt);
    let mut aux = vec![0xa5u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(1_000), 7);
    match t(&mut ctx, &mut buf, pkt.len(), &mut aux) {
        Verdict::Forward { start, len } => (buf[start..start + len].to_vec(), ctx.mss_clamped),
        v => panic!("expected a forwarded packet, got {v:?}"),
    }
}

/// The TCP header of a translated packet, after checking its checksum with etherparse's own
/// computation and with the independent RFC 1071 sum.
fn tcp_of(p: &[u8]) -> TcpHeader {
    let h = PacketHeaders::from_ip_slice(p).expect("output parses");
    let Some(etherparse::TransportHeader::Tcp(t)) = h.transport.clone() else {
        panic!("no TCP header")
    };
    let payload = h.payload.slice();
    let want = match h.net {
        Some(etherparse::NetHeaders::Ipv4(ip, _)) => {
            assert!(l4_ok_v4(p), "RFC 1071 sum over the IPv4 pseudo-header");
            t.calc_checksum_ipv4(&ip, payload).unwrap()
        }
        Some(etherparse::NetHeaders::Ipv6(ip, _)) => {
            assert!(l4_ok_v6(p), "RFC 1071 sum over the IPv6 pseudo-header");
            t.calc_checksum_ipv6(&ip, payload).unwrap()
        }
        _ => panic!("no IP header"),
    };
    assert_eq!(
        t.checksum, want,
        "etherparse recomputes the same TCP checksum"
    );
    t
}

/// The MSS values of a header's options (etherparse's iterator).
fn mss_of(t: &TcpHeader) -> Vec<u16> {
    t.options_iterator()
        .filter_map(|o| match o {
            Ok(O::MaximumSegmentSize(m)) => Some(m),
            _ => None,
        })
        .collect()
}

fn x() -> XlatConfig {
    XlatConfig::default()
}

/// Both directions of the SIIT: (input, output TCP header, counters).
fn both(
    f: F,
    o: impl Fn() -> Opts<'static>,
    cfg: XlatConfig,
) -> [(TcpHeader, TcpHeader, [u64; 2]); 2] {
    let mut r = Vec::new();
    for pkt in [seg4(f, o()), seg6(f, o())] {
        let inp = tcp_of(&pkt);
        let (out, n) = siit_run(cfg, &pkt);
        r.push((inp, tcp_of(&out), n));
    }
    [r.remove(0), r.remove(0)]
}

/// Which counter a direction moves: 4→6 is index 1, 6→4 index 0.
const DIR: [(usize, &str); 2] = [(1, "4to6"), (0, "6to4")];

#[test]
fn mss_first_is_clamped_to_fit_both_mtus() {
    let opts = || Opts::El(&[O::MaximumSegmentSize(1460), O::Noop, O::WindowScale(7)]);
    for ((i, o, n), (k, d)) in both(F::Syn, opts, x()).into_iter().zip(DIR) {
        assert_eq!(mss_of(&i), [1460]);
        assert_eq!(mss_of(&o), [1440], "{d}: min(1500 - 60, 1500 - 40)");
        assert_eq!(n[k], 1, "{d}: counted");
        assert_eq!(n[1 - k], 0, "{d}: other direction not counted");
        assert_eq!(
            o.options.as_slice()[4..],
            i.options.as_slice()[4..],
            "{d}: other options kept"
        );
    }
}

#[test]
fn mss_after_other_options_even_and_odd_offsets() {
    // Linux's order (MSS, SACK-permitted, timestamps, NOP, window scale) reversed: MSS last, after
    // NOP NOP SACK-permitted timestamps (offset 14, even) and after NOP SACK-permitted timestamps
    // (offset 13: the value straddles two checksum words).
    let even = || {
        Opts::El(&[
            O::Noop,
            O::Noop,
            O::SelectiveAcknowledgementPermitted,
            O::Timestamp(0x0102_0304, 0),
            O::MaximumSegmentSize(8960),
        ])
    };
    let odd = || {
        Opts::El(&[
            O::Noop,
            O::SelectiveAcknowledgementPermitted,
            O::Timestamp(0xdead_beef, 0),
            O::MaximumSegmentSize(65495),
        ])
    };
    let cfg = XlatConfig {
        ipv4_mtu: 1400,
        ..x()
    };
    for opts in [&even as &dyn Fn() -> Opts<'static>, &odd] {
        for ((i, o, n), (k, d)) in both(F::Syn, opts, cfg).into_iter().zip(DIR) {
            assert_ne!(mss_of(&i), [1360]);
            assert_eq!(mss_of(&o), [1360], "{d}: min(1500 - 60, 1400 - 40)");
            assert_eq!(n[k], 1, "{d}");
            let iopt = i.options.as_slice();
            let oopt = o.options.as_slice();
            let at = iopt.iter().position(|&b| b == 2).unwrap();
            assert_eq!(oopt[..at], iopt[..at], "{d}: options before the MSS kept");
        }
    }
}

#[test]
fn syn_ack_is_clamped() {
    let opts = || {
        Opts::El(&[
            O::MaximumSegmentSize(1460),
            O::SelectiveAcknowledgementPermitted,
        ])
    };
    for ((_, o, n), (k, d)) in both(F::SynAck, opts, x()).into_iter().zip(DIR) {
        assert!(o.syn && o.ack, "{d}");
        assert_eq!(mss_of(&o), [1440], "{d}");
        assert_eq!(n[k], 1, "{d}");
    }
}

/// The output's options are the input's, byte for byte, and nothing was counted.
fn unchanged(f: F, opts: impl Fn() -> Opts<'static>, cfg: XlatConfig, what: &str) {
    for ((i, o, n), (_, d)) in both(f, opts, cfg).into_iter().zip(DIR) {
        assert_eq!(
            o.options.as_slice(),
            i.options.as_slice(),
            "{what}, {d}: options untouched"
        );
        assert_eq!(n, [0, 0], "{what}, {d}: nothing counted");
    }
}

#[test]
fn no_mss_small_mss_and_non_syn_are_unchanged() {
    unchanged(
        F::Syn,
        || Opts::El(&[O::Noop, O::Noop, O::Timestamp(1, 2)]),
        x(),
        "no MSS option",
    );
    unchanged(F::Syn, || Opts::El(&[]), x(), "no options at all");
    unchanged(
        F::Syn,
        || Opts::El(&[O::MaximumSegmentSize(1440)]),
        x(),
        "MSS exactly the limit",
    );
    unchanged(
        F::Syn,
        || Opts::El(&[O::MaximumSegmentSize(536)]),
        x(),
        "MSS already small",
    );
    unchanged(
        F::Ack,
        || Opts::El(&[O::MaximumSegmentSize(1460)]),
        x(),
        "an MSS option on a segment without SYN",
    );
}

#[test]
fn malformed_option_lists_are_left_alone() {
    // A length of 0 (would loop forever), of 1 (shorter than kind + length), one running past
    // the header, an MSS option of the wrong length, and an MSS after End of Option List (not
    // an option). Each list also holds an MSS above the limit, so a walk that skipped the check
    // would clamp it.
    unchanged(
        F::Syn,
        || Opts::Raw(&[2, 4, 0x05, 0xb4, 30, 0, 1, 1]),
        x(),
        "length 0",
    );
    unchanged(
        F::Syn,
        || Opts::Raw(&[2, 4, 0x05, 0xb4, 30, 1, 1, 1]),
        x(),
        "length 1",
    );
    unchanged(
        F::Syn,
        || Opts::Raw(&[2, 4, 0x05, 0xb4, 1, 1, 30, 12]),
        x(),
        "length past the end",
    );
    unchanged(
        F::Syn,
        || Opts::Raw(&[1, 2, 5, 0x05, 0xb4, 0, 0, 0]),
        x(),
        "MSS of length 5",
    );
    unchanged(
        F::Syn,
        || Opts::Raw(&[1, 1, 1, 30]),
        x(),
        "kind without a length byte",
    );
    unchanged(
        F::Syn,
        || Opts::Raw(&[0, 2, 4, 0x05, 0xb4, 0, 0, 0]),
        x(),
        "MSS after End of Option List",
    );
}

#[test]
fn per_direction_switches_and_fixed_values() {
    let opts = || Opts::El(&[O::MaximumSegmentSize(1460)]);
    unchanged(
        F::Syn,
        opts,
        XlatConfig {
            mss_clamp_4to6: MssClamp::Off,
            mss_clamp_6to4: MssClamp::Off,
            ..x()
        },
        "both off",
    );
    // One off, the other on: each direction follows its own key.
    let cfg = XlatConfig {
        mss_clamp_4to6: MssClamp::Off,
        ..x()
    };
    let [(_, o4, n4), (_, o6, n6)] = both(F::Syn, opts, cfg);
    assert_eq!((mss_of(&o4), n4), (vec![1460], [0, 0]), "4to6 off");
    assert_eq!((mss_of(&o6), n6), (vec![1440], [1, 0]), "6to4 on");
    let cfg = XlatConfig {
        mss_clamp_6to4: MssClamp::Off,
        ..x()
    };
    let [(_, o4, n4), (_, o6, n6)] = both(F::Syn, opts, cfg);
    assert_eq!((mss_of(&o4), n4), (vec![1440], [0, 1]), "4to6 on");
    assert_eq!((mss_of(&o6), n6), (vec![1460], [0, 0]), "6to4 off");
    // A number is the limit, whatever the MTUs: lower than the MTUs give, or higher.
    let cfg = XlatConfig {
        mss_clamp_4to6: MssClamp::Max(1200),
        mss_clamp_6to4: MssClamp::Max(1452),
        ..x()
    };
    let [(_, o4, _), (_, o6, _)] = both(F::Syn, opts, cfg);
    assert_eq!(mss_of(&o4), [1200]);
    assert_eq!(mss_of(&o6), [1452], "a number above the MTU-derived 1440");
}

#[test]
fn ipv6_mtu_bounds_the_limit_too() {
    let cfg = XlatConfig {
        ipv6_mtu: 1280,
        ..x()
    };
    let opts = || Opts::El(&[O::MaximumSegmentSize(1460)]);
    for ((_, o, _), (_, d)) in both(F::Syn, opts, cfg).into_iter().zip(DIR) {
        assert_eq!(mss_of(&o), [1220], "{d}: min(1280 - 60, 1500 - 40)");
    }
}

// ---------------------------------------------------------------- stateful NAT64

const T: &str = "192.0.2.7";

fn nat(x: XlatConfig) -> Nat64 {
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
    let mut c = Nat64Config::new(pool6, vec![T.parse().unwrap()], 99);
    c.max_sessions = 100;
    c.max_sessions_per_host = 10;
    c.shards = 1;
    c.xlat = x;
    Nat64::new(c).unwrap()
}

/// IPv6 SYN out (6→4), then the IPv4 SYN-ACK back to the binding (4→6); both clamped when on.
fn nat_handshake(cfg: XlatConfig) -> (TcpHeader, [u64; 2], TcpHeader, [u64; 2]) {
    let n = nat(cfg);
    let mut syn = Vec::new();
    PacketBuilder::ipv6(v6(V6_CLIENT), wkp(H4), 64)
        .tcp(40000, 80, 1000, 64240)
        .syn()
        .options(&[
            O::MaximumSegmentSize(1460),
            O::SelectiveAcknowledgementPermitted,
            O::Timestamp(5, 0),
            O::Noop,
            O::WindowScale(7),
        ])
        .unwrap()
        .write(&mut syn, b"")
        .unwrap();
    let tr = |ctx: &mut Ctx, buf: &mut [u8], len: usize, aux: &mut [u8]| {
        n.translate(ctx, buf, HEADROOM, len, aux)
    };
    let (out4, c1) = go(tr, &syn);
    let t4 = tcp_of(&out4);
    assert_eq!(&out4[12..16], &v4(T), "source is the pool4 address");
    let mut synack = Vec::new();
    PacketBuilder::ipv4(v4(H4), v4(T), 64)
        .tcp(80, t4.source_port, 5000, 65160)
        .syn()
        .ack(1001)
        .options(&[
            O::Noop,
            O::SelectiveAcknowledgementPermitted,
            O::MaximumSegmentSize(1460),
        ])
        .unwrap()
        .write(&mut synack, b"")
        .unwrap();
    let tr = |ctx: &mut Ctx, buf: &mut [u8], len: usize, aux: &mut [u8]| {
        n.translate(ctx, buf, HEADROOM, len, aux)
    };
    let (out6, c2) = go(tr, &synack);
    let t6 = tcp_of(&out6);
    assert_eq!(&out6[24..40], &v6(V6_CLIENT), "back to the IPv6 host");
    assert_eq!(t6.destination_port, 40000, "port restored");
    (t4, c1, t6, c2)
}

#[test]
fn nat64_clamps_syn_and_syn_ack_with_port_rewrite() {
    let cfg = XlatConfig {
        ipv4_mtu: 1400,
        ..x()
    };
    let (t4, c1, t6, c2) = nat_handshake(cfg);
    assert_eq!(mss_of(&t4), [1360], "6to4 SYN");
    assert_eq!(c1, [1, 0]);
    assert_eq!(mss_of(&t6), [1360], "4to6 SYN-ACK");
    assert_eq!(c2, [0, 1]);
}

#[test]
fn nat64_off_switch() {
    let cfg = XlatConfig {
        ipv4_mtu: 1400,
        mss_clamp_4to6: MssClamp::Off,
        mss_clamp_6to4: MssClamp::Off,
        ..x()
    };
    let (t4, c1, t6, c2) = nat_handshake(cfg);
    assert_eq!(mss_of(&t4), [1460]);
    assert_eq!(mss_of(&t6), [1460]);
    assert_eq!((c1, c2), ([0, 0], [0, 0]));
}

#[test]
fn hairpinned_syn_is_clamped_by_the_ipv4_to_ipv6_leg_only() {
    // RFC 7757 §4.2.2: 2001:db8:1::1 -> 64:ff9b::192.0.2.133, which the EAM 192.0.2.128/25 maps
    // back to 2001:db8:e::5. The packet never leaves on the IPv4 side: the 6to4 setting (a
    // ceiling of 1000 here) does not apply, the 4to6 one (MTU-derived, 1440) does.
    let mut pkt = Vec::new();
    PacketBuilder::ipv6(v6(V6_CLIENT), wkp(V4_EAM_SERVER), 64)
        .tcp(40000, 80, 1000, 64240)
        .syn()
        .options(&[O::MaximumSegmentSize(1460)])
        .unwrap()
        .write(&mut pkt, b"")
        .unwrap();
    let cfg = XlatConfig {
        mss_clamp_6to4: MssClamp::Max(1000),
        ..x()
    };
    let (out, n) = siit_run(cfg, &pkt);
    assert_eq!(&out[24..40], &v6(V6_EAM_SERVER), "hairpinned back to IPv6");
    assert_eq!(mss_of(&tcp_of(&out)), [1440]);
    assert_eq!(n, [0, 1]);
}
