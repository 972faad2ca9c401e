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
    assert!(String::from_utf8_lossy(&o.stderr).contains("pcapng is not supported"));
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
