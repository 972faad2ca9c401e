//! Configuration: valid files, and invalid ones whose message names file, line, key and reason.

use nat64d::config::{self, parse_prefix, ConfigError, IpPrefix, LogFormat, Mode};
use nat64d::daemon::plan_reload;
use std::net::IpAddr;
use std::path::Path;

fn parse(text: &str) -> Result<config::Config, ConfigError> {
    config::parse(Path::new("nat64d.toml"), text)
}

/// The error's (line, key, reason); panics with the message if it is not an `Invalid`.
fn invalid(text: &str) -> (usize, String, String, String) {
    match parse(text) {
        Err(e @ ConfigError::Invalid { .. }) => {
            let msg = e.to_string();
            let ConfigError::Invalid {
                line, key, reason, ..
            } = e
            else {
                unreachable!()
            };
            (line, key, reason, msg)
        }
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(_) => panic!("accepted an invalid config:\n{text}"),
    }
}

#[test]
fn defaults_for_everything_but_addresses() {
    let c = parse("").expect("an empty file is valid");
    assert_eq!(c.mode, Mode::Siit);
    assert_eq!(c.siit.pool6.prefixes().len(), 1);
    assert!(c.siit.pool6.prefixes()[0].is_well_known());
    assert!(c.siit.pool6.wkp_strict());
    assert!(c.siit.eamt.is_empty());
    assert_eq!(c.tun.name, "nat64");
    assert_eq!(c.tun.mtu, 1500);
    assert!(c.tun.queues >= 1);
    assert!(c.tun.routes);
    assert!(c.tun.offload);
    assert_eq!(c.log.level, "info");
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.siit.xlat.lowest_ipv6_mtu, 1280);
}

#[test]
fn the_shipped_example_is_valid() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/nat64d.toml");
    let c = config::load(&p).expect("systemd/nat64d.toml");
    assert_eq!(c.siit.eamt.entries().len(), 1);
    assert!(!c.siit.rfc6791.is_empty());
}

#[test]
fn full_file() {
    let c = parse(
        r#"
mode = "siit"
pool6 = ["2001:db8:64::/96", "64:ff9b::/96"]
wkp_strict = false
[tun]
name = "n64"
mtu = 1400
queues = 3
offload = false
addresses = ["192.0.2.1", "2001:db8:ffff::1/128"]
extra_routes = ["203.0.113.0/24"]
[siit]
eamt = [
  { ipv4 = "192.0.2.10", ipv6 = "2001:db8:6::10" },
  { ipv4 = "198.51.100.0/28", ipv6 = "2001:db8:7::/124" },
]
rfc6791_pool = ["192.0.2.254/32"]
[xlat]
lowest_ipv6_mtu = 1400
copy_tos = false
tos = 8
[log]
level = "nat64d=debug,warn"
format = "json"
"#,
    )
    .expect("valid");
    assert!(!c.siit.pool6.wkp_strict());
    assert_eq!(c.tun.queues, 3);
    assert!(!c.tun.offload);
    assert_eq!(c.tun.mtu, 1400);
    assert_eq!(c.siit.xlat.lowest_ipv6_mtu, 1400);
    assert!(!c.siit.xlat.copy_tos);
    assert_eq!(c.siit.xlat.tos, 8);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(
        c.tun.addresses[0],
        IpPrefix {
            addr: "192.0.2.1".parse().unwrap(),
            len: 32
        }
    );
    let routes: Vec<String> = c.tun_routes().iter().map(|r| r.to_string()).collect();
    // pool6 prefixes, EAMT IPv4 prefixes, extra routes; sorted, IPv4 first.
    assert_eq!(
        routes,
        [
            "192.0.2.10/32",
            "198.51.100.0/28",
            "203.0.113.0/24",
            "64:ff9b::/96",
            "2001:db8:64::/96",
        ]
    );
}

/// RFC 7757 §3.2: an EAM written without prefix lengths is a /32 and a /128, each side on its
/// own (a bare IPv4 beside an IPv6 prefix keeps the prefix's written length).
#[test]
fn bare_eam_addresses_default_to_host_prefixes() {
    let c = parse(
        r#"mode = "siit"
pool6 = ["64:ff9b::/96"]
[siit]
eamt = [
  { ipv4 = "192.0.2.10", ipv6 = "2001:db8:6::10" },
  { ipv4 = "203.0.113.7", ipv6 = "2001:db8:8::/120" },
]
"#,
    )
    .expect("valid");
    let got: Vec<(String, u8, String, u8)> = c
        .siit
        .eamt
        .entries()
        .iter()
        .map(|e| {
            let ((a4, l4), (a6, l6)) = (e.v4(), e.v6());
            (a4.to_string(), l4, a6.to_string(), l6)
        })
        .collect();
    let want = |a4: &str, l4, a6: &str, l6| (a4.to_string(), l4, a6.to_string(), l6);
    for w in [
        want("192.0.2.10", 32, "2001:db8:6::10", 128),
        want("203.0.113.7", 32, "2001:db8:8::", 120),
    ] {
        assert!(got.contains(&w), "{w:?} missing from {got:?}");
    }
}

#[test]
fn routes_off_keeps_only_extra_routes() {
    let c = parse("[tun]\nroutes = false\nextra_routes = [\"203.0.113.0/24\"]\n").unwrap();
    let r = c.tun_routes();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].addr, "203.0.113.0".parse::<IpAddr>().unwrap());
}

#[test]
fn bad_pool6_length_names_file_line_key() {
    let (line, key, reason, msg) =
        invalid("mode = \"siit\"\n\n\npool6 = [\n  \"64:ff9b::/96\",\n  \"2001:db8::/33\",\n]\n");
    assert_eq!(line, 6);
    assert_eq!(key, "pool6");
    assert!(
        reason.contains("length must be 32, 40, 48, 56, 64 or 96"),
        "{reason}"
    );
    assert_eq!(
        msg,
        "nat64d.toml:6: pool6: prefix 2001:db8::/33: length must be 32, 40, 48, 56, 64 or 96"
    );
}

#[test]
fn overlapping_pool6_prefixes() {
    let (line, key, reason, _) = invalid("pool6 = [\"2001:db8::/32\", \"2001:db8:1::/48\"]\n");
    assert_eq!((line, key.as_str()), (1, "pool6"));
    assert!(reason.contains("overlap"), "{reason}");
}

#[test]
fn empty_pool6_is_refused() {
    let (_, key, reason, _) = invalid("pool6 = []\n");
    assert_eq!(key, "pool6");
    assert!(reason.contains("at least one"), "{reason}");
}

#[test]
fn unknown_key_names_table_and_key() {
    let (line, key, reason, _) = invalid("[tun]\nname = \"x\"\nmtuu = 1500\n");
    assert_eq!(line, 3);
    assert_eq!(key, "tun.mtuu");
    assert!(reason.contains("unknown field"), "{reason}");
}

#[test]
fn unknown_table_is_refused() {
    let (line, key, reason, _) = invalid("mode = \"siit\"\n[nat46]\nx = 1\n");
    assert_eq!(line, 2);
    assert_eq!(key, "nat46");
    assert!(reason.contains("unknown field"), "{reason}");
}

#[test]
fn wrong_type() {
    let (line, key, reason, _) = invalid("[tun]\nmtu = \"big\"\n");
    assert_eq!((line, key.as_str()), (2, "tun.mtu"));
    assert!(reason.contains("invalid type"), "{reason}");
}

#[test]
fn syntax_error_has_a_line() {
    let (line, _, _, msg) = invalid("mode = \"siit\"\n[tun\nname = 1\n");
    assert_eq!(line, 2, "{msg}");
}

#[test]
fn small_mtu() {
    let (line, key, reason, _) = invalid("\n[tun]\nmtu = 1200\n");
    assert_eq!((line, key.as_str()), (3, "tun.mtu"));
    assert!(reason.contains("1280"), "{reason}");
}

#[test]
fn bad_tun_name() {
    let (_, key, _, _) = invalid("[tun]\nname = \"a-very-long-interface-name\"\n");
    assert_eq!(key, "tun.name");
    let (_, key, _, _) = invalid("[tun]\nname = \"a/b\"\n");
    assert_eq!(key, "tun.name");
}

#[test]
fn eamt_errors_point_at_the_entry() {
    let (line, key, reason, _) = invalid(
        "[siit]\neamt = [\n { ipv4 = \"192.0.2.1\", ipv6 = \"2001:db8::1\" },\n { ipv4 = \"192.0.2.300\", ipv6 = \"2001:db8::2\" },\n]\n",
    );
    assert_eq!((line, key.as_str()), (4, "siit.eamt[1].ipv4"));
    assert!(reason.contains("not an IP address"), "{reason}");

    let (line, key, reason, _) =
        invalid("[siit]\neamt = [\n { ipv4 = \"2001:db8::9\", ipv6 = \"2001:db8::2\" },\n]\n");
    assert_eq!((line, key.as_str()), (3, "siit.eamt[0].ipv4"));
    assert!(reason.contains("IPv4"), "{reason}");

    // RFC 7757 §3.2: the IPv4 suffix may not be longer than the IPv6 one.
    let (_, key, reason, _) =
        invalid("[siit]\neamt = [{ ipv4 = \"192.0.2.0/24\", ipv6 = \"2001:db8::1/128\" }]\n");
    assert_eq!(key, "siit.eamt[0]");
    assert!(reason.contains("suffix"), "{reason}");

    let (_, key, reason, _) = invalid(
        "[siit]\neamt = [\n{ ipv4 = \"192.0.2.1\", ipv6 = \"2001:db8::1\" },\n{ ipv4 = \"192.0.2.1\", ipv6 = \"2001:db8::2\" }]\n",
    );
    assert_eq!(key, "siit.eamt");
    assert!(reason.contains("ambiguous"), "{reason}");

    let (_, key, _, _) = invalid("[siit]\neamt = [{ ipv4 = \"192.0.2.1\" }]\n");
    assert_eq!(key, "siit.eamt");
}

#[test]
fn host_bits_and_missing_lengths() {
    let (_, key, reason, _) = invalid("[tun]\nextra_routes = [\"192.0.2.1/24\"]\n");
    assert_eq!(key, "tun.extra_routes");
    assert!(reason.contains("bits set beyond"), "{reason}");
    let (_, _, reason, _) = invalid("[tun]\nextra_routes = [\"192.0.2.0\"]\n");
    assert!(reason.contains("needs a length"), "{reason}");
    let (_, key, _, _) = invalid("[siit]\nrfc6791_pool = [\"2001:db8::/64\"]\n");
    assert_eq!(key, "siit.rfc6791_pool");
}

#[test]
fn nat64_mode_needs_its_table() {
    // The [nat64] table itself is tested in tests/nat64_config.rs.
    let (line, key, reason, _) = invalid("\nmode = \"nat64\"\n");
    assert_eq!((line, key.as_str()), (2, "nat64"));
    assert!(reason.contains("needs a [nat64] table"), "{reason}");
    let (_, key, reason, _) = invalid("mode = \"nat46\"\n");
    assert_eq!(key, "mode");
    assert!(reason.contains("unknown variant"), "{reason}");
}

#[test]
fn xlat_and_log_values() {
    let (_, key, _, _) = invalid("[xlat]\nlowest_ipv6_mtu = 1000\n");
    assert_eq!(key, "xlat.lowest_ipv6_mtu");
    let (_, key, _, _) = invalid("[xlat]\nicmp_src4 = \"2001:db8::1\"\n");
    assert_eq!(key, "xlat.icmp_src4");
    let c = parse("[xlat]\nicmp_src6 = \"2001:db8::1\"\nicmp_errors_per_sec = 0\n").unwrap();
    assert_eq!(c.siit.xlat.icmp_src6, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(c.siit.xlat.icmp_errors_per_sec, 0);
    let (_, key, _, _) = invalid("[log]\nformat = \"xml\"\n");
    assert_eq!(key, "log.format");
    let (_, key, _, _) = invalid("[log]\nlevel = \"nat64d=loud\"\n");
    assert_eq!(key, "log.level");
}

#[test]
fn missing_file_names_the_file() {
    let e = config::load(Path::new("/nonexistent/nat64d.toml")).unwrap_err();
    let m = e.to_string();
    assert!(
        m == "/nonexistent/nat64d.toml: cannot read: No such file or directory (os error 2)",
        "{m}"
    );
}

#[test]
fn prefix_parser() {
    assert_eq!(
        parse_prefix("2001:db8::/32", false).unwrap(),
        ("2001:db8::".parse().unwrap(), 32)
    );
    assert_eq!(
        parse_prefix("192.0.2.7", true).unwrap(),
        ("192.0.2.7".parse().unwrap(), 32)
    );
    assert!(parse_prefix("192.0.2.0/33", false).is_err());
    assert!(parse_prefix("192.0.2.0/x", false).is_err());
    assert!(parse_prefix("0.0.0.0/0", false).is_ok());
}

#[test]
fn reload_plan_lists_restart_only_settings() {
    let a = parse("[tun]\nmtu = 1500\n").unwrap();
    let b = parse("pool6 = [\"2001:db8:64::/96\"]\n[tun]\nmtu = 1400\nname = \"x\"\n").unwrap();
    let p = plan_reload(&a, &b);
    assert_eq!(p.needs_restart, vec!["tun.name", "tun.mtu"]);
    assert!(plan_reload(&a, &a).needs_restart.is_empty());
}

/// A file in its own temporary directory (removed when dropped).
struct Tmp(std::path::PathBuf);
impl Drop for Tmp {
    fn drop(&mut self) {
        if let Some(d) = self.0.parent() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
fn tmp(name: &str, bytes: &[u8]) -> Tmp {
    let d = std::env::temp_dir().join(format!("nat64d-cfg-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, bytes).unwrap();
    Tmp(p)
}

#[test]
fn an_empty_file_is_always_refused() {
    let f = tmp("empty.toml", b"");
    let m = config::load(&f.0).unwrap_err().to_string();
    assert!(m.ends_with("empty.toml:1: (file): the file is empty (0 bytes): refused, an empty file would run with no mapping at all"), "{m}");
}

#[test]
fn a_device_or_directory_is_not_read() {
    // /dev/zero would never end: refused before reading.
    let m = config::load(Path::new("/dev/zero"))
        .unwrap_err()
        .to_string();
    assert!(
        m.starts_with("/dev/zero:1: (file): not a regular file"),
        "{m}"
    );
    let m = config::load(Path::new("/tmp")).unwrap_err().to_string();
    assert!(m.starts_with("/tmp:1: (file): not a regular file"), "{m}");
}

#[test]
fn an_oversized_file_is_refused() {
    let mut big = b"mode = \"siit\"\n".to_vec();
    big.resize(config::MAX_FILE_BYTES as usize + 1, b'#');
    let f = tmp("big.toml", &big);
    let m = config::load(&f.0).unwrap_err().to_string();
    assert!(
        m.contains("big.toml:1: (file): larger than 1048576 bytes"),
        "{m}"
    );
    // Exactly at the limit is read (and judged on its content).
    big.truncate(config::MAX_FILE_BYTES as usize);
    let f = tmp("limit.toml", &big);
    assert!(config::load(&f.0).is_ok());
}

#[test]
fn non_utf8_names_its_line() {
    let f = tmp("latin1.toml", b"mode = \"siit\"\n# caf\xe9\n");
    let m = config::load(&f.0).unwrap_err().to_string();
    assert!(
        m.ends_with("latin1.toml:2: (file): not UTF-8 (byte 19 is invalid)"),
        "{m}"
    );
}

const MAPPED: &str = "pool6 = [\"64:ff9b::/96\"]\nwkp_strict = false\n[siit]\neamt = [{ ipv4 = \"192.0.2.2\", ipv6 = \"2001:db8::2\" }]\n";

#[test]
fn a_reload_that_removes_every_mapping_is_refused_unless_the_file_says_so() {
    let old = parse(MAPPED).unwrap();
    // Truncated after the first line of comments / the mode: all defaults.
    let truncated = parse("# nat64d\nmode = \"siit\"\n").unwrap();
    let why = old.reload_refusal(&truncated).expect("refused");
    assert!(
        why.contains("writes no mapping") && why.contains("allow_empty_mappings = true"),
        "{why}"
    );
    let meant = parse("mode = \"siit\"\nallow_empty_mappings = true\n").unwrap();
    assert_eq!(old.reload_refusal(&meant), None);
    // Removing some mappings is an ordinary reload.
    let fewer = parse("pool6 = [\"64:ff9b::/96\"]\nwkp_strict = false\n").unwrap();
    assert_eq!(old.reload_refusal(&fewer), None);
    // A running config of defaults only has nothing to lose.
    assert_eq!(truncated.reload_refusal(&truncated), None);
}

const NAT64_P4: &str = "mode = \"nat64\"\npool6 = [\"64:ff9b::/96\"]\nwkp_strict = false\n[nat64.pool4]\naddresses = [\n  \"203.0.113.7\",\n  \"198.51.100.0/30\",\n]\n";

#[test]
fn pool4_on_an_address_of_the_host_is_named_with_its_line() {
    let c = parse(NAT64_P4).unwrap();
    let host = vec![
        ("lo".to_string(), "127.0.0.1".parse().unwrap()),
        ("eth0".to_string(), "198.51.100.2".parse().unwrap()),
    ];
    let e: Vec<String> = c
        .pool4_on_host(&host)
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("nat64d.toml:7: nat64.pool4.addresses: 198.51.100.0/30 holds 198.51.100.2, an address of this host (eth0)"),
        "{e:?}"
    );
    let host = vec![("eth0".to_string(), "203.0.113.7".parse().unwrap())];
    let e = c.pool4_on_host(&host);
    assert!(e[0].to_string().starts_with("nat64d.toml:6: "), "{}", e[0]);
    let host = vec![("eth0".to_string(), "198.51.100.4".parse().unwrap())];
    assert!(c.pool4_on_host(&host).is_empty());
}

#[test]
fn eamt_in_nat64_mode_is_refused_at_its_line() {
    let text =
        format!("{NAT64_P4}[siit]\neamt = [{{ ipv4 = \"192.0.2.9\", ipv6 = \"2001:db8::9\" }}]\n");
    let (line, key, reason, _) = invalid(&text);
    assert_eq!((line, key.as_str()), (10, "siit.eamt"));
    assert!(
        reason.starts_with("not used in mode = \"nat64\""),
        "{reason}"
    );
}

#[test]
fn discard_errors_switch() {
    use nat64_core::rfc7915::DiscardErrors;
    // RFC 7915 §4.4/§5.4: sent, rate-limited (the default) or not sent.
    let c = parse("").unwrap();
    assert_eq!(c.siit.xlat.discard_errors, DiscardErrors::RateLimited);
    for (s, want) in [
        ("off", DiscardErrors::Off),
        ("rate-limited", DiscardErrors::RateLimited),
        ("sent", DiscardErrors::Sent),
    ] {
        let c = parse(&format!("[xlat]\ndiscard_errors = \"{s}\"\n")).unwrap();
        assert_eq!(c.siit.xlat.discard_errors, want);
    }
    let (line, key, reason, _) = invalid("[xlat]\n\ndiscard_errors = \"always\"\n");
    assert_eq!((line, key.as_str()), (3, "xlat.discard_errors"));
    assert!(reason.contains("rate-limited"), "{reason}");
}

#[test]
fn eam_only_siit_and_ipv6_rfc6791_pool() {
    let c = parse(
        "pool6 = []\n[siit]\neamt = [ { ipv4 = \"192.0.2.1\", ipv6 = \"2001:db8:1::1\" } ]\n\
         rfc6791_pool6 = \"2001:db8:ffff::/96\"\n",
    )
    .unwrap();
    assert!(c.siit.pool6.prefixes().is_empty());
    assert_eq!(
        c.siit.rfc6791.pick6("198.51.100.1".parse().unwrap()),
        Some("2001:db8:ffff::c633:6401".parse().unwrap())
    );
    // NAT64 always needs a prefix.
    let (_, key, _, _) =
        invalid("mode = \"nat64\"\npool6 = []\n[nat64.pool4]\naddresses = [\"192.0.2.1\"]\n");
    assert_eq!(key, "pool6");
    let (line, key, _, _) = invalid("[siit]\nrfc6791_pool6 = \"2001:db8::1/64\"\n");
    assert_eq!((line, key.as_str()), (2, "siit.rfc6791_pool6"));
}

#[test]
fn mss_clamp_per_direction() {
    use nat64_core::rfc7915::MssClamp;
    // On by default in both directions, derived from the MTUs.
    let c = parse("").unwrap();
    assert_eq!(c.siit.xlat.mss_clamp_4to6, MssClamp::Auto);
    assert_eq!(c.siit.xlat.mss_clamp_6to4, MssClamp::Auto);
    let c = parse("[xlat]\nmss_clamp_4to6 = false\nmss_clamp_6to4 = 1400\n").unwrap();
    assert_eq!(c.siit.xlat.mss_clamp_4to6, MssClamp::Off);
    assert_eq!(c.siit.xlat.mss_clamp_6to4, MssClamp::Max(1400));
    let c = parse("[xlat]\nmss_clamp_4to6 = true\nmss_clamp_6to4 = 536\n").unwrap();
    assert_eq!(c.siit.xlat.mss_clamp_4to6, MssClamp::Auto);
    assert_eq!(c.siit.xlat.mss_clamp_6to4, MssClamp::Max(536));
    for (value, want) in [
        ("535", "535 is not an MSS from 536 to 65535"),
        ("65536", "65536 is not an MSS from 536 to 65535"),
        ("-1", "-1 is not an MSS from 536 to 65535"),
        (
            "\"auto\"",
            "expected true, false or an MSS from 536 to 65535",
        ),
        ("1400.5", "expected true, false or an MSS"),
    ] {
        let (line, key, reason, _) = invalid(&format!("[xlat]\n\nmss_clamp_6to4 = {value}\n"));
        assert_eq!((line, key.as_str()), (3, "xlat.mss_clamp_6to4"), "{value}");
        assert!(reason.contains(want), "{value}: {reason}");
    }
    let (line, key, _, msg) = invalid("[xlat]\nmss_clamp_4to6 = 100\n");
    assert_eq!((line, key.as_str()), (2, "xlat.mss_clamp_4to6"));
    assert!(
        msg.starts_with("nat64d.toml:2: xlat.mss_clamp_4to6: "),
        "{msg}"
    );
}
