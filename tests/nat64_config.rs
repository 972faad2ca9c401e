//! The `[nat64]` table: what `nat64d check-config` and `nat64d run` accept, and the file:line:key
//! of what they refuse.

use nat64d::config::{self, MappingLog, Mode};
use std::path::Path;

const GOOD: &str = r#"mode = "nat64"
pool6 = ["64:ff9b::/96"]
wkp_strict = false
[nat64]
max_sessions = 1000
max_sessions_per_host = 10
subscriber_prefix_len = 56
filtering = "address-dependent"
[nat64.pool4]
addresses = ["192.0.2.1", "203.0.113.0/30"]
tcp = "1024-65535"
icmp = "100-200"
[nat64.timeouts]
udp = 200
[[nat64.static_bib]]
proto = "tcp"
ipv6 = "[2001:db8:1::2]:80"
ipv4 = "192.0.2.1:8080"
[nat64.mapping_log]
enabled = true
path = "/var/log/nat64d/mappings.jsonl"
[nat64.control]
socket = "/run/nat64d/test.sock"
group = "0"
"#;

fn parse(text: &str) -> Result<config::Config, String> {
    config::parse(Path::new("t.toml"), text).map_err(|e| e.to_string())
}

#[test]
fn a_full_table_is_accepted() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.mode, Mode::Nat64);
    let n = c.nat64.as_ref().unwrap();
    assert_eq!(n.core.pool4.addrs.len(), 5);
    assert_eq!(n.core.pool4.tcp.first, 1024);
    assert_eq!(n.core.pool4.icmp.last, 200);
    assert_eq!(n.core.timeouts.udp, 200);
    assert_eq!(n.core.timeouts.icmp, 60, "RFC default kept");
    assert_eq!(n.core.max_sessions_per_host, 10);
    assert_eq!(n.core.subscriber_prefix_len, 56);
    assert_eq!(n.core.static_bib.len(), 1);
    assert!(n.core.mapping_log);
    assert_eq!(
        n.mapping_log,
        MappingLog::File("/var/log/nat64d/mappings.jsonl".into())
    );
    let routes: Vec<String> = c.tun_routes().iter().map(|r| r.to_string()).collect();
    assert!(routes.contains(&"192.0.2.1/32".to_string()), "{routes:?}");
    assert!(routes.contains(&"203.0.113.0/30".to_string()), "{routes:?}");
    assert!(routes.contains(&"64:ff9b::/96".to_string()), "{routes:?}");
}

#[test]
fn defaults_are_the_rfc_ones() {
    let c = parse("mode = \"nat64\"\n[nat64.pool4]\naddresses = [\"192.0.2.1\"]\n").unwrap();
    let n = c.nat64.unwrap();
    assert_eq!(n.core.timeouts.udp, 300);
    assert_eq!(n.core.timeouts.tcp_est, 7200);
    assert_eq!(n.core.timeouts.tcp_trans, 240);
    assert_eq!(n.core.subscriber_prefix_len, 64, "one subscriber = one /64");
    assert_eq!(n.mapping_log, MappingLog::Off);
    assert_eq!(
        n.control.socket.to_str(),
        Some(config::DEFAULT_CONTROL_SOCKET)
    );
}

#[test]
fn errors_name_file_line_and_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("mode = \"nat64\"\n", "t.toml:1: nat64:", "needs a [nat64] table"),
        (
            "mode = \"nat64\"\n[nat64.pool4]\naddresses = [\"2001:db8::1\"]\n",
            "t.toml:3: nat64.pool4.addresses:",
            "not an IPv4",
        ),
        (
            "mode = \"nat64\"\n[nat64.pool4]\naddresses = [\"192.0.2.1\"]\nudp = \"9-2\"\n",
            "t.toml:4: nat64.pool4.udp:",
            "first <= last",
        ),
        (
            "mode = \"nat64\"\n[nat64.pool4]\naddresses = [\"192.0.2.1\"]\n[nat64.timeouts]\nicmp = 5\ntcp_est = 60\n",
            "t.toml:6: nat64.timeouts.tcp_est:",
            "below the minimum of 7200",
        ),
        (
            "mode = \"nat64\"\n[nat64]\nsubscriber_prefix_len = 0\n[nat64.pool4]\naddresses = [\"192.0.2.1\"]\n",
            "t.toml:3: nat64.subscriber_prefix_len:",
            "from 1 to 128",
        ),
        (
            "mode = \"nat64\"\n[nat64]\nfiltering = \"full-cone\"\n[nat64.pool4]\naddresses = [\"192.0.2.1\"]\n",
            "t.toml:3: nat64.filtering:",
            "endpoint-independent",
        ),
        (
            "mode = \"nat64\"\n[nat64.pool4]\naddresses = [\"192.0.2.1\"]\n[[nat64.static_bib]]\nproto = \"tcp\"\nipv6 = \"[2001:db8::2]:80\"\nipv4 = \"192.0.2.7:80\"\n",
            "nat64.static_bib[0]:",
            "not in pool4",
        ),
        (
            "mode = \"nat64\"\n[nat64.pool4]\naddresses = [\"192.0.2.1\"]\n[nat64.fragments]\ntimeout_ms = 10\n",
            "t.toml:5: nat64.fragments.timeout_ms:",
            "FRAGMENT_MIN",
        ),
        (
            "mode = \"nat64\"\n[nat64.pool4]\naddresses = [\"192.0.2.1\"]\n[nat64.control]\ngroup = \"no-such-group-nat64d\"\n",
            "t.toml:5: nat64.control.group:",
            "no such group \"no-such-group-nat64d\"",
        ),
        (
            "mode = \"nat64\"\n[nat64.pool4]\naddresses = [\"192.0.2.1\"]\nports = 5\n",
            "t.toml:4: nat64.pool4.ports:",
            "unknown field",
        ),
    ];
    for (text, place, why) in cases {
        let e = parse(text).expect_err(text);
        assert!(e.starts_with(place) || e.contains(place), "{text}: {e}");
        assert!(e.contains(why), "{text}: {e}");
    }
}

#[test]
fn a_nat64_table_is_checked_in_siit_mode_too() {
    let e = parse("[nat64.pool4]\naddresses = [\"198.51.100.300\"]\n").unwrap_err();
    assert!(e.contains("nat64.pool4.addresses"), "{e}");
    let c = parse("[nat64.pool4]\naddresses = [\"192.0.2.1\"]\n").unwrap();
    assert!(c.nat64.is_none());
    assert!(c
        .tun_routes()
        .iter()
        .all(|r| r.to_string() != "192.0.2.1/32"));
}

#[test]
fn the_shipped_examples_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let s = config::load(&dir.join("nat64d.toml")).unwrap();
    assert_eq!(s.mode, Mode::Siit);
    let n = config::load(&dir.join("nat64d-stateful.toml")).unwrap();
    assert_eq!(n.mode, Mode::Nat64);
    assert_eq!(n.nat64.unwrap().core.static_bib.len(), 1);
}

#[test]
fn every_number_has_a_range_checked_with_file_line_and_key() {
    // Issue 9: values check-config used to accept and that crashed `run` (capacity overflow
    // panic, allocation abort) or failed without file:line.
    let base = "mode = \"nat64\"\n[nat64.pool4]\naddresses = [\"192.0.2.1\"]\n";
    let cases: &[(&str, &str, &str)] = &[
        (
            "[nat64]\nmax_sessions = 18446744073709551615\n",
            "t.toml:5: nat64.max_sessions:",
            "",
        ),
        (
            "[nat64]\nmax_sessions = 4294967295\n",
            "t.toml:5: nat64.max_sessions:",
            "1 to 67108864",
        ),
        (
            "[nat64]\nmax_sessions = 0\n",
            "t.toml:5: nat64.max_sessions:",
            "1 to",
        ),
        (
            "[nat64]\nmax_sessions_per_host = 0\n",
            "t.toml:5: nat64.max_sessions_per_host:",
            "1 to",
        ),
        (
            "[nat64]\nshards = 3\n",
            "t.toml:5: nat64.shards:",
            "power of two",
        ),
        (
            "[nat64]\nshards = 1024\n",
            "t.toml:5: nat64.shards:",
            "1 to 128",
        ),
        (
            "[nat64]\nsubscriber_prefix_len = 129\n",
            "t.toml:5: nat64.subscriber_prefix_len:",
            "1 to 128",
        ),
        (
            "[nat64.fragments]\nmax_reassembly = 4000000\n",
            "t.toml:5: nat64.fragments.max_reassembly:",
            "0 to 1024",
        ),
        (
            "[nat64.fragments]\n\nmax_entries = 0\n",
            "t.toml:6: nat64.fragments.max_entries:",
            "1 to",
        ),
        (
            "[nat64.fragments]\nmax_entries = 100\nmax_entries_per_source = 101\n",
            "t.toml:6: nat64.fragments.max_entries_per_source:",
            "1 to 100",
        ),
        (
            "[nat64.fragments]\nmax_reassembly_per_source = 0\n",
            "t.toml:5: nat64.fragments.max_reassembly_per_source:",
            "1 to",
        ),
        (
            "[nat64.fragments]\nmax_held = 70000\n",
            "t.toml:5: nat64.fragments.max_held:",
            "0 to 65536",
        ),
        (
            "[nat64.fragments]\nmax_held_bytes = 1500\n",
            "t.toml:5: nat64.fragments.max_held_bytes:",
            "65576 to",
        ),
        (
            "[nat64.fragments]\nmax_held = 10\nmax_held_per_source = 11\n",
            "t.toml:6: nat64.fragments.max_held_per_source:",
            "1 to 10",
        ),
        (
            "[nat64.syn_store]\nmax_entries = 70000\n",
            "t.toml:5: nat64.syn_store.max_entries:",
            "0 to 65536",
        ),
        (
            "[nat64.syn_store]\nmax_entries = 10\nmax_per_source = 11\n",
            "t.toml:6: nat64.syn_store.max_per_source:",
            "1 to 10",
        ),
        (
            "[nat64.syn_store]\nmax_per_source = 0\n",
            "t.toml:5: nat64.syn_store.max_per_source:",
            "1 to 1024",
        ),
        (
            "[nat64.fragments]\ntimeout_ms = 3600000\n",
            "t.toml:5: nat64.fragments.timeout_ms:",
            "2000 to 60000",
        ),
        (
            "[nat64.mapping_log]\ncapacity = 1000000000000\n",
            "t.toml:5: nat64.mapping_log.capacity:",
            "1 to",
        ),
        (
            "[nat64.timeouts]\nudp = 99999999999\n",
            "t.toml:5: nat64.timeouts.udp:",
            "120",
        ),
        (
            "[nat64]\nenforce_rfc_minimums = false\n[nat64.timeouts]\nudp = 0\n",
            "t.toml:7: nat64.timeouts.udp:",
            "1 to 604800",
        ),
        (
            "[nat64]\nenforce_rfc_minimums = false\n[nat64.timeouts]\ntcp_est = 604801\n",
            "t.toml:7: nat64.timeouts.tcp_est:",
            "1 to 604800",
        ),
        // Issue 10: the RFC-minimum error names the switch that lifts it.
        (
            "[nat64.timeouts]\nudp = 60\n",
            "t.toml:5: nat64.timeouts.udp:",
            "nat64.enforce_rfc_minimums = false",
        ),
    ];
    for (tail, place, why) in cases {
        let text = format!("{base}{tail}");
        let e = parse(&text).expect_err(&text);
        assert!(e.starts_with(place), "{text}\n=> {e}");
        assert!(e.contains(why), "{text}\n=> {e}");
    }
    // The largest accepted values still validate (and the labs' short timeouts with the switch).
    let ok = format!(
        "{base}[nat64]\nenforce_rfc_minimums = false\nmax_sessions_per_host = 4294967295\nsubscriber_prefix_len = 128\n[nat64.timeouts]\nudp = 1\n[nat64.fragments]\nmax_reassembly = 0\n"
    );
    parse(&ok).unwrap();
}

#[test]
fn held_fragment_limits_are_read_and_zero_turns_holding_off() {
    let c = parse(&format!(
        "{GOOD}[nat64.fragments]\nmax_held = 10\nmax_held_bytes = 100000\nmax_held_per_source = 3\n"
    ))
    .unwrap();
    let f = c.nat64.unwrap().core.frag;
    assert_eq!(
        (f.max_held, f.max_held_bytes, f.max_held_per_source),
        (10, 100_000, 3)
    );
    let c = parse(&format!(
        "{GOOD}[nat64.fragments]\nmax_held = 0\nmax_held_bytes = 0\n"
    ))
    .unwrap();
    assert_eq!(c.nat64.unwrap().core.frag.max_held, 0);
    // Defaults: on, RFC 6146 §3.4.
    let f = parse(GOOD).unwrap().nat64.unwrap().core.frag;
    assert_eq!(
        (f.max_held, f.max_held_bytes, f.max_held_per_source),
        (1024, 2 << 20, 64)
    );
}
