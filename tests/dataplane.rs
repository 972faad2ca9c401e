//! The worker's per-packet step (`dataplane::handle_packet`) with the real core: what it writes to
//! the TUN and what it counts, for each kind of verdict. Inputs are built with etherparse.

use etherparse::{IpNumber, Ipv4Header, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use nat64_core::siit::Siit;
use nat64_core::{Ctx, DropReason, Timestamp, HEADROOM};
use nat64d::dataplane::{handle_packet, Buffers};
use nat64d::stats::BatchCounts;
use std::io;
use std::path::Path;

const CFG: &str = r#"
pool6 = ["64:ff9b::/96"]
wkp_strict = false
[siit]
eamt = [{ ipv4 = "192.0.2.2", ipv6 = "2001:db8:1::2" }]
"#;

fn siit() -> Siit {
    let c = nat64d::config::parse(Path::new("test.toml"), CFG).expect("config");
    Siit::new(c.siit)
}

const CLI6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
// 64:ff9b::198.51.100.2
const SRV6: [u8; 16] = [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 198, 51, 100, 2];
const SRV4: [u8; 4] = [198, 51, 100, 2];
const CLI4: [u8; 4] = [192, 0, 2, 2];

fn udp6(hl: u8, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(CLI6, SRV6, hl).udp(40000, 53);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).expect("build");
    v
}

/// Runs one packet through `handle_packet`; returns the written packets and the counts.
fn run(pkt: &[u8], fail_writes: bool) -> (Vec<Vec<u8>>, BatchCounts) {
    let s = siit();
    let mut b = Buffers::default();
    b.buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
    let mut ctx = Ctx::new(Timestamp(0), 1);
    let mut c = BatchCounts::default();
    let mut out = Vec::new();
    handle_packet(
        &s,
        &mut ctx,
        &mut b.buf,
        pkt.len(),
        &mut b.aux,
        &mut c,
        |p| {
            if fail_writes {
                Err(io::Error::from(io::ErrorKind::WouldBlock))
            } else {
                out.push(p.to_vec());
                Ok(p.len())
            }
        },
    );
    (out, c)
}

#[test]
fn forward_ipv6_udp_becomes_ipv4() {
    let (out, c) = run(&udp6(64, b"hello"), false);
    assert_eq!((c.rx, c.tx, c.tx_errors), (1, 1, 0));
    assert_eq!(out.len(), 1);
    let p = SlicedPacket::from_ip(&out[0]).expect("an IP packet");
    let Some(NetSlice::Ipv4(ip)) = p.net else {
        panic!("not IPv4")
    };
    assert_eq!(ip.header().source(), CLI4);
    assert_eq!(ip.header().destination(), SRV4);
    assert_eq!(ip.header().ttl(), 63);
    let Some(TransportSlice::Udp(u)) = p.transport else {
        panic!("not UDP")
    };
    assert_eq!((u.source_port(), u.destination_port()), (40000, 53));
    assert_eq!(u.payload(), b"hello");
}

#[test]
fn forward_ipv4_udp_becomes_ipv6() {
    let b = PacketBuilder::ipv4(SRV4, CLI4, 64).udp(53, 40000);
    let mut pkt = Vec::new();
    b.write(&mut pkt, b"answer").unwrap();
    let (out, c) = run(&pkt, false);
    assert_eq!((c.rx, c.tx), (1, 1));
    let p = SlicedPacket::from_ip(&out[0]).expect("an IP packet");
    let Some(NetSlice::Ipv6(ip)) = p.net else {
        panic!("not IPv6")
    };
    assert_eq!(ip.header().source(), SRV6);
    assert_eq!(ip.header().destination(), CLI6);
    let Some(TransportSlice::Udp(u)) = p.transport else {
        panic!("not UDP")
    };
    assert_eq!(u.payload(), b"answer");
}

#[test]
fn big_ipv4_datagram_is_written_as_several_ipv6_fragments() {
    // DF=0 and larger than lowest_ipv6_mtu (1280) after translation: RFC 7915 §4 fragments it.
    let payload = vec![0x5au8; 2000];
    let mut ip = Ipv4Header::new(0, 64, IpNumber::UDP, SRV4, CLI4).unwrap();
    ip.dont_fragment = false;
    let b = PacketBuilder::ip(etherparse::IpHeaders::Ipv4(ip, Default::default())).udp(53, 40000);
    let mut pkt = Vec::new();
    b.write(&mut pkt, &payload).unwrap();
    let (out, c) = run(&pkt, false);
    assert!(out.len() >= 2, "{} packets", out.len());
    assert_eq!(c.tx as usize, out.len());
    for p in &out {
        assert_eq!(p[0] >> 4, 6);
        assert!(p.len() <= 1280, "fragment of {} bytes", p.len());
    }
}

#[test]
fn hop_limit_exhausted_writes_an_icmp_error_and_counts_the_reason() {
    let (out, c) = run(&udp6(1, b"x"), false);
    assert_eq!(c.icmp_errors, 1);
    assert_eq!(c.drops.get(DropReason::HopLimitExceeded), 1);
    assert_eq!(out.len(), 1);
    let p = SlicedPacket::from_ip(&out[0]).expect("an IP packet");
    let Some(NetSlice::Ipv6(ip)) = p.net else {
        panic!("not ICMPv6")
    };
    assert_eq!(ip.header().destination(), CLI6);
    assert!(matches!(p.transport, Some(TransportSlice::Icmpv6(_))));
}

#[test]
fn garbage_is_counted_and_nothing_is_written() {
    let (out, c) = run(&[0x45, 0, 0], false);
    assert!(out.is_empty());
    assert_eq!(c.rx, 1);
    assert_eq!(c.tx, 0);
    assert_eq!(c.drops.0.iter().sum::<u64>(), 1);

    let (out, c) = run(&[0x10; 60], false);
    assert!(out.is_empty());
    assert_eq!(c.drops.get(DropReason::UnknownVersion), 1);
}

#[test]
fn untranslatable_source_is_dropped() {
    let mut src = CLI6;
    src[15] = 9; // 2001:db8:1::9: in no EAM entry, not in pool6
    let b = PacketBuilder::ipv6(src, SRV6, 64).udp(1, 2);
    let mut pkt = Vec::new();
    b.write(&mut pkt, b"x").unwrap();
    let (out, c) = run(&pkt, false);
    // RFC 7915 §5.4: the discard is answered with ICMPv6 1/1 (xlat.discard_errors, rate-limited
    // by default) and still counted under its reason.
    assert_eq!(out.len(), 1, "one ICMPv6 error back to the sender");
    assert_eq!((out[0][0] >> 4, out[0][40], out[0][41]), (6, 1, 1));
    assert_eq!(&out[0][24..40], &src);
    assert_eq!(c.drops.get(DropReason::UntranslatableSource), 1);
}

#[test]
fn failed_writes_are_counted() {
    let (out, c) = run(&udp6(64, b"hello"), true);
    assert!(out.is_empty());
    assert_eq!((c.rx, c.tx, c.tx_errors), (1, 0, 1));
}

#[test]
fn clamped_syns_are_counted_by_direction_and_published() {
    use etherparse::TcpOptionElement::MaximumSegmentSize;
    let syn4 = {
        let mut v = Vec::new();
        PacketBuilder::ipv4(SRV4, CLI4, 64)
            .tcp(40000, 80, 1, 64240)
            .syn()
            .options(&[MaximumSegmentSize(1460)])
            .unwrap()
            .write(&mut v, b"")
            .unwrap();
        v
    };
    let (out, c) = run(&syn4, false);
    assert_eq!(out.len(), 1);
    assert_eq!(
        c.mss_clamped,
        [0, 1],
        "ipv4_to_ipv6 is index 1, like DIRECTIONS"
    );
    // Published into the worker's stats and summed; the batch is cleared.
    let w = nat64d::stats::WorkerStats::default();
    let mut c = c;
    w.publish(&mut c);
    assert_eq!(c.mss_clamped, [0, 0]);
    let t = nat64d::stats::Totals::sum([&w]);
    assert_eq!(t.mss_clamped, [0, 1]);
    assert!(t.render().contains("mss_clamped_4to6=1"), "{}", t.render());
    // A SYN whose MSS already fits is not counted.
    let small = {
        let mut v = Vec::new();
        PacketBuilder::ipv6(CLI6, SRV6, 64)
            .tcp(40000, 80, 1, 64240)
            .syn()
            .options(&[MaximumSegmentSize(1200)])
            .unwrap()
            .write(&mut v, b"")
            .unwrap();
        v
    };
    let (_, c) = run(&small, false);
    assert_eq!(c.mss_clamped, [0, 0]);
}
