//! `nat64d translate` as a user runs it: a config file, a pcap in, a pcap out, one line per packet.

use etherparse::PacketBuilder;
use nat64d::translate::{read_pcap, PcapWriter};
use std::io::Write;
use std::process::{Command, Stdio};

const CONFIG: &str = r#"
mode = "siit"
pool6 = ["64:ff9b::/96"]
wkp_strict = false
[siit]
eamt = [ { ipv4 = "192.0.2.1", ipv6 = "2001:db8:1::1" } ]
rfc6791_pool = ["203.0.113.1"]
"#;

fn v6_udp() -> Vec<u8> {
    let mut dst = [0u8; 16];
    dst[..4].copy_from_slice(&[0, 0x64, 0xff, 0x9b]);
    dst[12..].copy_from_slice(&[198, 51, 100, 10]);
    let src: std::net::Ipv6Addr = "2001:db8:1::1".parse().unwrap();
    let mut v = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst, 64)
        .udp(5353, 53)
        .write(&mut v, b"query")
        .unwrap();
    v
}

fn v4_ttl1() -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4([198, 51, 100, 10], [192, 0, 2, 1], 1)
        .udp(53, 5353)
        .write(&mut v, b"answer")
        .unwrap();
    v
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("nat64d-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn pcap_in_pcap_out() {
    let d = tmpdir("translate");
    let cfg = d.join("nat64d.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let input = d.join("in.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&input).unwrap()).unwrap();
    w.write((1, 0), &v6_udp()).unwrap();
    w.write((2, 0), &v4_ttl1()).unwrap();
    w.write((3, 0), &[0x45, 0, 0]).unwrap();
    w.finish().unwrap();
    let output = d.join("out.pcap");
    let o = Command::new(env!("CARGO_BIN_EXE_nat64d"))
        .args(["translate", "--config"])
        .arg(&cfg)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("#1 6->4 2001:db8:1::1.5353 > 64:ff9b::c633:640a.53 UDP"),
        "{stdout}"
    );
    assert!(lines[0].ends_with("[forward]"), "{stdout}");
    assert!(
        lines[1].contains("-> 192.0.2.1.5353 > 198.51.100.10.53 UDP"),
        "{stdout}"
    );
    assert!(
        lines[2].contains("[icmp-error (hop_limit_exceeded)]"),
        "{stdout}"
    );
    assert!(lines[3].contains("ICMP type 11 code 0"), "{stdout}");
    assert!(lines[4].contains("[drop truncated]"), "{stdout}");
    assert_eq!(
        lines[5],
        "3 packets (siit): 1 forwarded, 1 answered with an ICMP error, 1 dropped"
    );
    let out = read_pcap(&std::fs::read(&output).unwrap(), "out").unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].ts, (1, 0));
    assert_eq!(out[0].ip[0] >> 4, 4);
    assert_eq!(&out[0].ip[16..20], &[198, 51, 100, 10]);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn hex_on_stdin() {
    let d = tmpdir("translate-hex");
    let cfg = d.join("nat64d.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let hex: String = v6_udp().iter().map(|b| format!("{b:02x} ")).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nat64d"))
        .args(["translate", "--config"])
        .arg(&cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "# a comment line\n{hex}\n").unwrap();
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(
        s.contains("[forward]") && s.contains("1 packets (siit): 1 forwarded"),
        "{s}"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn bad_inputs_are_clear_errors() {
    let d = tmpdir("translate-bad");
    let cfg = d.join("nat64d.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let ng = d.join("x.pcapng");
    std::fs::write(
        &ng,
        [
            0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_nat64d"))
        .args(["translate", "--config"])
        .arg(&cfg)
        .arg("--input")
        .arg(&ng)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("x.pcapng: pcapng section header block is malformed or truncated"),
        "{err}"
    );
    // A pcap whose last record claims more bytes than the file holds.
    let mut cut = pcap_bytes(101, false, false, &[(1, 0, &v6_udp())]);
    cut.truncate(cut.len() - 3);
    let pc = d.join("cut.pcap");
    std::fs::write(&pc, &cut).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_nat64d"))
        .args(["translate", "--config"])
        .arg(&cfg)
        .arg("--input")
        .arg(&pc)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cut.pcap: record 1 is truncated"), "{err}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nat64d"))
        .args(["translate", "--config"])
        .arg(&cfg)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"60 0\nzz\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("stdin:1: odd number of hex digits"));
    std::fs::remove_dir_all(&d).ok();
}

const NAT64_CONFIG: &str = r#"
mode = "nat64"
pool6 = ["64:ff9b::/96"]
wkp_strict = false
[nat64]
max_sessions = 1000
max_sessions_per_host = 100
[nat64.pool4]
addresses = ["192.0.2.1"]
[[nat64.static_bib]]
proto = "tcp"
ipv6 = "[2001:db8:6::80]:80"
ipv4 = "192.0.2.1:80"
"#;

/// `mode = "nat64"` runs the stateful translator, with its tables kept across the capture: an
/// IPv4 SYN to a static BIB entry reaches the IPv6 server, whose SYN-ACK then finds the session.
#[test]
fn nat64_mode_replays_statefully() {
    let d = tmpdir("translate-nat64");
    let cfg = d.join("nat64d.toml");
    std::fs::write(&cfg, NAT64_CONFIG).unwrap();
    let mut syn = Vec::new();
    PacketBuilder::ipv4([198, 51, 100, 10], [192, 0, 2, 1], 64)
        .tcp(40000, 80, 1000, 65000)
        .syn()
        .write(&mut syn, b"")
        .unwrap();
    let server: std::net::Ipv6Addr = "2001:db8:6::80".parse().unwrap();
    let client: std::net::Ipv6Addr = "64:ff9b::c633:640a".parse().unwrap();
    let mut syn_ack = Vec::new();
    PacketBuilder::ipv6(server.octets(), client.octets(), 64)
        .tcp(80, 40000, 5000, 65000)
        .syn()
        .ack(1001)
        .write(&mut syn_ack, b"")
        .unwrap();
    let input = d.join("in.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&input).unwrap()).unwrap();
    w.write((100, 0), &syn).unwrap();
    w.write((100, 5000), &syn_ack).unwrap();
    w.finish().unwrap();
    for seed in ["7", "7"] {
        let o = Command::new(env!("CARGO_BIN_EXE_nat64d"))
            .args(["translate", "--seed", seed, "--config"])
            .arg(&cfg)
            .arg("--input")
            .arg(&input)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(lines[0].contains("[forward]"), "{stdout}");
        assert!(
            lines[1].contains("-> 64:ff9b::c633:640a.40000 > 2001:db8:6::80.80 TCP"),
            "{stdout}"
        );
        assert!(lines[2].contains("[forward]"), "{stdout}");
        assert!(
            lines[3].contains("-> 192.0.2.1.80 > 198.51.100.10.40000 TCP"),
            "{stdout}"
        );
        assert_eq!(
            lines[4],
            "2 packets (nat64): 2 forwarded, 0 answered with an ICMP error, 0 dropped"
        );
    }
    std::fs::remove_dir_all(&d).ok();
}

/// RFC 6146 §3.5.2.2 on the capture's clock: an unsolicited IPv4 SYN is stored; when the
/// capture's time passes TCP_INCOMING_SYN (6 s) with no IPv6 SYN, the replay shows the ICMPv4
/// Port Unreachable the daemon's timer would send, quoting the SYN, and writes it to the output.
#[test]
fn nat64_replay_shows_the_timer_error_for_an_unanswered_syn() {
    let d = tmpdir("translate-synexpiry");
    let cfg = d.join("nat64d.toml");
    std::fs::write(&cfg, NAT64_CONFIG).unwrap();
    let mut syn = Vec::new();
    PacketBuilder::ipv4([198, 51, 100, 10], [192, 0, 2, 1], 64)
        .tcp(40000, 4000, 1000, 65000)
        .syn()
        .write(&mut syn, b"")
        .unwrap();
    let later = v6_udp();
    let (input, output) = (d.join("in.pcap"), d.join("out.pcap"));
    let mut w = PcapWriter::new(std::fs::File::create(&input).unwrap()).unwrap();
    w.write((100, 0), &syn).unwrap();
    w.write((103, 0), &later).unwrap();
    w.write((107, 0), &later).unwrap();
    w.finish().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_nat64d"))
        .args(["translate", "--seed", "7", "--config"])
        .arg(&cfg)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].contains("[drop tcp_v4_syn_stored]"), "{stdout}");
    // Nothing at 3 s; at 7 s the error comes before the packet that moved the clock.
    let timer: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("timer:"))
        .collect();
    assert_eq!(timer.len(), 1, "{stdout}");
    assert!(
        lines[timer[0] - 1].contains("> 198.51.100.10.53 UDP"),
        "after the 3 s packet: {stdout}"
    );
    assert!(
        lines[timer[0] + 1].contains("-> 192.0.2.1 > 198.51.100.10"),
        "{stdout}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .ends_with("; 1 ICMP errors from the NAT64 timer"),
        "{stdout}"
    );
    // The output capture holds it: ICMPv4 3/3 from T to the SYN's source, quoting the SYN whole.
    let out = read_pcap(&std::fs::read(&output).unwrap(), "out.pcap").unwrap();
    let err = out
        .iter()
        .find(|p| p.ip[0] >> 4 == 4 && p.ip[9] == 1)
        .expect("an ICMPv4 packet in the output");
    let e = &err.ip;
    assert_eq!(&e[12..16], &[192, 0, 2, 1]);
    assert_eq!(&e[16..20], &[198, 51, 100, 10]);
    assert_eq!((e[20], e[21]), (3, 3), "Port Unreachable");
    assert_eq!(&e[28..], &syn[..], "quotes the stored SYN");
    std::fs::remove_dir_all(&d).ok();
}

/// IPv6 fragments (offset in bytes, more, bytes) of `whole` with identification `id`, built
/// with etherparse's IPv6 and Fragment headers.
fn v6_fragments(whole: &[u8], id: u32, cuts: &[usize]) -> Vec<Vec<u8>> {
    use etherparse::{IpFragOffset, IpNumber, Ipv6FragmentHeader, Ipv6Header};
    let seg = &whole[40..];
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(seg.len());
    bounds
        .windows(2)
        .map(|w| {
            let body = &seg[w[0]..w[1]];
            let h = Ipv6Header {
                traffic_class: 0,
                flow_label: Default::default(),
                payload_length: (8 + body.len()) as u16,
                next_header: IpNumber(44),
                hop_limit: 64,
                source: whole[8..24].try_into().unwrap(),
                destination: whole[24..40].try_into().unwrap(),
            };
            let f = Ipv6FragmentHeader::new(
                IpNumber(whole[6]),
                IpFragOffset::try_new((w[0] / 8) as u16).unwrap(),
                w[1] < seg.len(),
                id,
            );
            let mut v = Vec::new();
            h.write(&mut v).unwrap();
            f.write(&mut v).unwrap();
            v.extend_from_slice(body);
            v
        })
        .collect()
}

/// RFC 6146 §3.4 in a replay: a UDP datagram in three IPv6 fragments captured last-first. The
/// two early fragments are held (`drop fragment_held`), the first fragment is translated, and the
/// held ones follow it tagged `released`, in arrival order; the output capture holds exactly the
/// packets of the in-order capture. A lone fragment whose first never comes expires on the
/// capture's clock.
#[test]
fn nat64_replay_of_fragments_captured_last_first() {
    let d = tmpdir("translate-fragorder");
    let cfg = d.join("nat64d.toml");
    std::fs::write(&cfg, NAT64_CONFIG).unwrap();
    let client: std::net::Ipv6Addr = "2001:db8:1::a".parse().unwrap();
    let server: std::net::Ipv6Addr = "64:ff9b::c633:640a".parse().unwrap();
    let mut whole = Vec::new();
    PacketBuilder::ipv6(client.octets(), server.octets(), 64)
        .udp(5000, 53)
        .write(&mut whole, &(0..2192).map(|i| i as u8).collect::<Vec<_>>())
        .unwrap();
    let f = v6_fragments(&whole, 0x5eed, &[800, 1600]);
    let lone = v6_fragments(&whole, 0x1057, &[800]).remove(1);
    let run = |name: &str, order: [usize; 3]| {
        let (input, output) = (
            d.join(format!("{name}.pcap")),
            d.join(format!("{name}-out.pcap")),
        );
        let mut w = PcapWriter::new(std::fs::File::create(&input).unwrap()).unwrap();
        for (i, k) in order.iter().enumerate() {
            w.write((100, i as u32 * 1000), &f[*k]).unwrap();
        }
        w.write((100, 500_000), &lone).unwrap();
        w.write((103, 0), &v6_udp()).unwrap();
        w.finish().unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_nat64d"))
            .args(["translate", "--seed", "7", "--config"])
            .arg(&cfg)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut out: Vec<Vec<u8>> = read_pcap(&std::fs::read(&output).unwrap(), "out")
            .unwrap()
            .into_iter()
            .map(|c| c.ip)
            .collect();
        out.sort();
        (stdout, out)
    };
    let (_, want) = run("in-order", [0, 1, 2]);
    // Three fragments and the later UDP packet.
    assert_eq!(want.len(), 4);
    let (stdout, got) = run("last-first", [2, 1, 0]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("#1 6->4") && lines[0].ends_with("[drop fragment_held]"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("#2 6->4") && lines[1].ends_with("[drop fragment_held]"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("#3 6->4") && lines[2].ends_with("[forward]"),
        "{stdout}"
    );
    assert!(
        lines[3].contains("> 198.51.100.10.53 UDP, 820 bytes"),
        "{stdout}"
    );
    // Released in the order they came: the last fragment (600 payload bytes), then the middle.
    assert_eq!(
        lines[4], "  released: a held fragment of #3  [forward]",
        "{stdout}"
    );
    assert!(
        lines[5].ends_with("> 198.51.100.10 proto 17, 620 bytes"),
        "{stdout}"
    );
    assert_eq!(
        lines[6], "  released: a held fragment of #3  [forward]",
        "{stdout}"
    );
    assert!(
        lines[7].ends_with("> 198.51.100.10 proto 17, 820 bytes"),
        "{stdout}"
    );
    assert!(
        lines[8].starts_with("#4 6->4") && lines[8].ends_with("[drop fragment_held]"),
        "{stdout}"
    );
    assert_eq!(
        lines[9], "timer: 1 held fragments expired without their first fragment",
        "{stdout}"
    );
    assert!(
        lines[10].starts_with("#5 6->4") && lines[10].ends_with("[forward]"),
        "{stdout}"
    );
    assert_eq!(
        lines[12],
        "5 packets (nat64): 2 forwarded, 0 answered with an ICMP error, 3 dropped"
    );
    assert_eq!(
        lines[13],
        "held fragments (RFC 6146 §3.4): 2 released and forwarded after their first fragment, \
         1 expired"
    );
    assert_eq!(
        got, want,
        "the last-first replay sends the in-order packets"
    );
    std::fs::remove_dir_all(&d).ok();
}

// ---- Capture files written by hand from the format specifications (not by our writer) ----
// Classic pcap: draft-ietf-opsawg-pcap §4 (file header) and §5 (record header).
// pcapng: draft-ietf-opsawg-pcapng §4.1 SHB, §4.2 IDB, §4.3 EPB, options §3.5.

type Rec<'a> = (u32, u32, &'a [u8]);

/// A classic pcap file: 24-byte header, then per record ts_sec, ts_frac, caplen, origlen.
fn pcap_bytes(linktype: u32, big_endian: bool, nanos: bool, recs: &[Rec<'_>]) -> Vec<u8> {
    let mut v = Vec::new();
    let w32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    w32(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    // Version 2.4 as two 16-bit fields.
    if big_endian {
        v.extend_from_slice(&[0, 2, 0, 4]);
    } else {
        v.extend_from_slice(&[2, 0, 4, 0]);
    }
    w32(&mut v, 0); // reserved (thiszone)
    w32(&mut v, 0); // reserved (sigfigs)
    w32(&mut v, 262_144); // snaplen
    w32(&mut v, linktype);
    for (sec, frac, data) in recs {
        w32(&mut v, *sec);
        w32(&mut v, *frac);
        w32(&mut v, data.len() as u32);
        w32(&mut v, data.len() as u32);
        v.extend_from_slice(data);
    }
    v
}

/// One pcapng block (little-endian): type, total length, body padded to 32 bits, total length.
fn ng_block(btype: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let total = (12 + body.len() + pad) as u32;
    let mut v = Vec::new();
    v.extend_from_slice(&btype.to_le_bytes());
    v.extend_from_slice(&total.to_le_bytes());
    v.extend_from_slice(body);
    v.extend(std::iter::repeat_n(0u8, pad));
    v.extend_from_slice(&total.to_le_bytes());
    v
}

/// Section Header Block: byte-order magic, version 1.0, section length -1 (unknown).
fn ng_shb() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(-1i64).to_le_bytes());
    ng_block(0x0a0d_0d0a, &b)
}

/// Interface Description Block; `tsresol` adds the if_tsresol option (code 9).
fn ng_idb(linktype: u16, tsresol: Option<u8>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&linktype.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // snaplen: no limit
    if let Some(r) = tsresol {
        b.extend_from_slice(&9u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&[r, 0, 0, 0]);
        b.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
    }
    ng_block(1, &b)
}

/// Enhanced Packet Block: interface, 64-bit timestamp in the interface's units, lengths, data.
fn ng_epb(if_id: u32, ts: u64, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&if_id.to_le_bytes());
    b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&(ts as u32).to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(data);
    ng_block(6, &b)
}

fn v4_udp() -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4([198, 51, 100, 10], [192, 0, 2, 1], 64)
        .udp(53, 5353)
        .write(&mut v, b"answer")
        .unwrap();
    v
}

/// An Ethernet frame: destination, source, then the given tags and EtherType, then payload.
fn ether(tags_and_type: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    f.extend_from_slice(tags_and_type);
    f.extend_from_slice(payload);
    f
}

/// Runs `nat64d translate` on a capture file; returns (success, stdout, stderr).
fn translate_file(
    name: &str,
    config: &str,
    bytes: &[u8],
    extra: &[&str],
) -> (bool, String, String) {
    let d = tmpdir(name);
    let cfg = d.join("nat64d.toml");
    std::fs::write(&cfg, config).unwrap();
    let input = d.join("in.cap");
    std::fs::write(&input, bytes).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_nat64d"))
        .arg("translate")
        .args(extra)
        .arg("--config")
        .arg(&cfg)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&d).ok();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const V6_OUT: &str = "-> 192.0.2.1.5353 > 198.51.100.10.53 UDP";
const V4_OUT: &str = "-> 64:ff9b::c633:640a.53 > 2001:db8:1::1.5353 UDP";

#[test]
fn raw_ip_link_types_101_228_229() {
    for (lt, pkts) in [
        (101, vec![v6_udp(), v4_udp()]),
        (228, vec![v4_udp()]),
        (229, vec![v6_udp()]),
        // DLT_RAW as OpenBSD numbers it.
        (14, vec![v4_udp()]),
    ] {
        let recs: Vec<Rec<'_>> = pkts.iter().map(|p| (1, 0, &p[..])).collect();
        // Big-endian files too: the reader must follow the magic's byte order.
        for be in [false, true] {
            let bytes = pcap_bytes(lt, be, false, &recs);
            let (ok, out, err) = translate_file("lt-raw", CONFIG, &bytes, &[]);
            assert!(ok, "link type {lt} be={be}: {out}{err}");
            let n = pkts.len();
            assert!(
                out.contains(&format!("{n} packets (siit): {n} forwarded")),
                "link type {lt} be={be}: {out}"
            );
        }
    }
}

#[test]
fn ethernet_frames_with_vlan_tags_are_translated() {
    let v6 = v6_udp();
    let v4 = v4_udp();
    let frames = [
        ether(&[0x86, 0xdd], &v6),
        // 802.1Q C-tag, VLAN 100.
        ether(&[0x81, 0x00, 0x00, 0x64, 0x86, 0xdd], &v6),
        // QinQ: 802.1ad S-tag 10, then C-tag 100, then IPv4.
        ether(
            &[0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00],
            &v4,
        ),
        // ARP: named in the report, not translated.
        ether(&[0x08, 0x06], &[0, 1, 8, 0, 6, 4, 0, 1]),
    ];
    let recs: Vec<Rec<'_>> = frames.iter().map(|f| (1, 0, &f[..])).collect();
    let bytes = pcap_bytes(1, false, false, &recs);
    let (ok, out, err) = translate_file("lt-eth", CONFIG, &bytes, &[]);
    assert!(ok, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "record 4 skipped: EtherType 0x0806 is not IPv4 or IPv6",
        "{out}"
    );
    assert!(
        lines[2].contains(V6_OUT) && lines[4].contains(V6_OUT),
        "{out}"
    );
    assert!(lines[6].contains(V4_OUT), "{out}");
    assert!(
        out.contains("3 packets (siit): 3 forwarded"),
        "VLAN-tagged frames must be translated, not skipped: {out}"
    );
}

#[test]
fn linux_cooked_v1_and_v2() {
    let v6 = v6_udp();
    let v4 = v4_udp();
    // SLL (113): packet type 0 (to us), ARPHRD_ETHER 1, address length 6, 8 address bytes,
    // protocol.
    let sll = |proto: &[u8], p: &[u8]| {
        let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        f.extend_from_slice(proto);
        f.extend_from_slice(p);
        f
    };
    let v1 = [
        sll(&[0x86, 0xdd], &v6),
        // libpcap puts a stripped VLAN tag back after the protocol field.
        sll(&[0x81, 0x00, 0x00, 0x64, 0x08, 0x00], &v4),
    ];
    let recs: Vec<Rec<'_>> = v1.iter().map(|f| (1, 0, &f[..])).collect();
    let bytes = pcap_bytes(113, false, false, &recs);
    let (ok, out, err) = translate_file("lt-sll", CONFIG, &bytes, &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(V6_OUT) && out.contains(V4_OUT), "{out}");
    assert!(out.contains("2 packets (siit): 2 forwarded"), "{out}");

    // SLL2 (276, `tcpdump -i any`): protocol, reserved, ifindex, ARPHRD, packet type,
    // address length, 8 address bytes.
    let sll2 = |proto: [u8; 2], p: &[u8]| {
        let mut f = vec![proto[0], proto[1], 0, 0, 0, 0, 0, 3, 0, 1, 4, 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
        f.extend_from_slice(p);
        f
    };
    let v2 = [sll2([0x08, 0x00], &v4), sll2([0x86, 0xdd], &v6)];
    let recs: Vec<Rec<'_>> = v2.iter().map(|f| (1, 0, &f[..])).collect();
    let bytes = pcap_bytes(276, false, true, &recs);
    let (ok, out, err) = translate_file("lt-sll2", CONFIG, &bytes, &[]);
    assert!(ok, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[1].contains(V4_OUT) && lines[3].contains(V6_OUT),
        "{out}"
    );
    assert!(out.contains("2 packets (siit): 2 forwarded"), "{out}");
}

#[test]
fn bsd_loopback_null() {
    // LINKTYPE_NULL: the family in the capturing host's order; AF_INET6 is 30 on macOS.
    let mut a = 30u32.to_le_bytes().to_vec();
    a.extend_from_slice(&v6_udp());
    let mut b = 2u32.to_be_bytes().to_vec();
    b.extend_from_slice(&v4_udp());
    let recs: Vec<Rec<'_>> = vec![(1, 0, &a), (1, 0, &b)];
    let bytes = pcap_bytes(0, false, false, &recs);
    let (ok, out, err) = translate_file("lt-null", CONFIG, &bytes, &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("2 packets (siit): 2 forwarded"), "{out}");
}

#[test]
fn unknown_link_type_is_refused_clearly() {
    let v6 = v6_udp();
    // LINKTYPE_IEEE802_11 (105).
    let bytes = pcap_bytes(105, false, false, &[(1, 0, &v6)]);
    let (ok, out, err) = translate_file("lt-unknown", CONFIG, &bytes, &[]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("in.cap: link type 105 is not supported"),
        "{err}"
    );
    // The same in a pcapng interface description.
    let mut ng = ng_shb();
    ng.extend(ng_idb(105, None));
    ng.extend(ng_epb(0, 0, &v6));
    let (ok, out, err) = translate_file("lt-unknown-ng", CONFIG, &ng, &[]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("in.cap: link type 105 is not supported"),
        "{err}"
    );
}

#[test]
fn pcapng_is_read_with_its_timestamps() {
    let mut ng = ng_shb();
    // Interface 0: Ethernet, nanosecond clock; interface 1: raw IP, default microseconds.
    ng.extend(ng_idb(1, Some(9)));
    ng.extend(ng_idb(101, None));
    ng.extend(ng_epb(
        0,
        1_700_000_000_123_456_789,
        &ether(&[0x86, 0xdd], &v6_udp()),
    ));
    ng.extend(ng_epb(1, 1_700_000_001_000_250, &v4_udp()));
    let d = tmpdir("pcapng-out");
    let out_pcap = d.join("out.pcap");
    let (ok, out, err) = translate_file(
        "pcapng",
        CONFIG,
        &ng,
        &["--output", out_pcap.to_str().unwrap()],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains(V6_OUT) && out.contains(V4_OUT), "{out}");
    assert!(out.contains("2 packets (siit): 2 forwarded"), "{out}");
    // The outputs carry the input's time, in microseconds.
    let o = read_pcap(&std::fs::read(&out_pcap).unwrap(), "out").unwrap();
    assert_eq!(o.len(), 2);
    assert_eq!(o[0].ts, (1_700_000_000, 123_456));
    assert_eq!(o[1].ts, (1_700_000_001, 250));
    std::fs::remove_dir_all(&d).ok();
}

const NAT64_UDP_CONFIG: &str = r#"
mode = "nat64"
pool6 = ["64:ff9b::/96"]
wkp_strict = false
[nat64]
filtering = "address-dependent"
[nat64.pool4]
addresses = ["192.0.2.1"]
"#;

/// Stateful replay runs on the pcapng clock: a reply 10 s after the query finds its session,
/// one 1,000 s later (past the default 300 s UDP timeout) does not.
#[test]
fn pcapng_timestamps_drive_the_stateful_clock() {
    let client: std::net::Ipv6Addr = "2001:db8:1::1".parse().unwrap();
    let server: std::net::Ipv6Addr = "64:ff9b::c633:640a".parse().unwrap();
    let mut q = Vec::new();
    PacketBuilder::ipv6(client.octets(), server.octets(), 64)
        .udp(5353, 53)
        .write(&mut q, b"query")
        .unwrap();
    let ng_of = |pkts: &[(u64, &[u8])]| {
        let mut ng = ng_shb();
        ng.extend(ng_idb(101, Some(9)));
        for (t, p) in pkts {
            ng.extend(ng_epb(0, *t, p));
        }
        ng
    };
    const S: u64 = 1_000_000_000;
    // First run: learn the pool4 port the query is given (a function of the seed).
    let first = ng_of(&[(100 * S, &q)]);
    let (ok, out, err) = translate_file("ng-clock-1", NAT64_UDP_CONFIG, &first, &["--seed", "9"]);
    assert!(ok, "{out}{err}");
    let port: u16 = out
        .lines()
        .nth(1)
        .and_then(|l| l.split("-> 192.0.2.1.").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no mapped port in {out}"));
    let mut reply = Vec::new();
    PacketBuilder::ipv4([198, 51, 100, 10], [192, 0, 2, 1], 64)
        .udp(53, port)
        .write(&mut reply, b"answer")
        .unwrap();
    let all = ng_of(&[(100 * S, &q), (110 * S, &reply), (1110 * S, &reply)]);
    let (ok, out, err) = translate_file("ng-clock-2", NAT64_UDP_CONFIG, &all, &["--seed", "9"]);
    assert!(ok, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[2].starts_with("#2 4->6") && lines[2].ends_with("[forward]"),
        "{out}"
    );
    assert!(
        lines[4].starts_with("#3 4->6") && lines[4].contains("[drop "),
        "{out}"
    );
}
