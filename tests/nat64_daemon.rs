//! Mode nat64 in the daemon without root: the config builds a `Nat64`, the worker's per-packet
//! step translates through the `Translator` enum, and the control socket lists what it created;
//! a reload adds a static BIB entry in place; after stop the CLI query says no daemon runs.

use etherparse::PacketBuilder;
use nat64_core::nat64::session::Filter;
use nat64_core::nat64::{Nat64, Proto};
use nat64_core::{Ctx, HEADROOM};
use nat64d::dataplane::{handle_packet, now_ms, Buffers};
use nat64d::nat64_ctl::{query, Nat64Runtime, Request, What};
use nat64d::stats::BatchCounts;
use nat64d::xlator::Translator;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

fn config(sock: &Path, extra: &str) -> nat64d::config::Config {
    let text = format!(
        r#"mode = "nat64"
pool6 = ["64:ff9b::/96"]
wkp_strict = false
[nat64.pool4]
addresses = ["192.0.2.1"]
[nat64.control]
socket = "{}"
{extra}
"#,
        sock.display()
    );
    nat64d::config::parse(Path::new("t.toml"), &text).expect("config")
}

fn temp_socket(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("nat64d-test-{}-{name}.sock", std::process::id()))
}

fn req(what: What, proto: Option<Proto>) -> Request {
    Request {
        what,
        filter: Filter {
            proto,
            ..Filter::default()
        },
        limit: 100,
        json: false,
    }
}

#[test]
fn control_socket_lists_a_translated_flow_and_reload_adds_a_forward() {
    let sock = temp_socket("a");
    let cfg = config(&sock, "");
    let s = cfg.nat64.clone().expect("nat64 settings");
    let mut core = s.core.clone();
    core.hash_seed = nat64d::nat64_ctl::random_seed().expect("seed");
    core.max_sessions = 1024;
    let nat = Arc::new(Nat64::new(core).expect("nat64"));
    let t = Translator::Nat64(nat.clone());
    let epoch = Instant::now();
    let rt = Nat64Runtime::start(nat.clone(), &s, epoch).expect("runtime");
    let mode = std::fs::metadata(&sock).map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o777
    });
    assert_eq!(mode.ok(), Some(0o660));

    // One UDP packet from 2001:db8:1::2 to 64:ff9b::198.51.100.2 through the worker's step.
    let b = PacketBuilder::ipv6(
        [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 198, 51, 100, 2],
        64,
    )
    .udp(40000, 53);
    let mut pkt = Vec::new();
    b.write(&mut pkt, b"query").expect("build");
    let mut buf = Buffers::default();
    buf.buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(&pkt);
    let mut ctx = Ctx::new(now_ms(epoch), 1);
    let mut c = BatchCounts::default();
    let mut out = Vec::new();
    handle_packet(
        &t,
        &mut ctx,
        &mut buf.buf,
        pkt.len(),
        &mut buf.aux,
        &mut c,
        |p| {
            out.push(p.to_vec());
            Ok(p.len())
        },
    );
    assert_eq!(out.len(), 1, "translated");
    assert_eq!(
        &out[0][12..16],
        &[192, 0, 2, 1],
        "source is the pool4 address"
    );

    let sessions = query(&sock, &req(What::Sessions, Some(Proto::Udp))).expect("sessions");
    assert!(
        sessions.starts_with("udp [2001:db8:1::2]:40000 [64:ff9b::c633:6402]:53 <-> 192.0.2.1:"),
        "{sessions}"
    );
    assert!(
        sessions.contains("# 1 listed; sessions tcp=0 udp=1 icmp=0"),
        "{sessions}"
    );
    let none = query(&sock, &req(What::Sessions, Some(Proto::Tcp))).expect("sessions");
    assert!(none.starts_with("# 0 listed"), "{none}");
    let bib = query(&sock, &req(What::Bib, None)).expect("bib");
    assert!(
        bib.contains("udp [2001:db8:1::2]:40000 <-> 192.0.2.1:"),
        "{bib}"
    );
    assert!(bib.contains("dynamic 1 sessions"), "{bib}");

    // Reload: a new static entry appears in place, the session stays.
    let new = config(
        &sock,
        "[[nat64.static_bib]]\nproto = \"tcp\"\nipv6 = \"[2001:db8:1::2]:80\"\nipv4 = \"192.0.2.1:8080\"\n",
    )
    .nat64
    .expect("nat64");
    let (eff, warns) = rt.reload(&s, &new);
    assert!(warns.is_empty(), "{warns:?}");
    assert_eq!(eff.core.static_bib.len(), 1);
    let bib = query(&sock, &req(What::Bib, Some(Proto::Tcp))).expect("bib");
    assert!(
        bib.contains("tcp [2001:db8:1::2]:80 <-> 192.0.2.1:8080 static"),
        "{bib}"
    );
    assert_eq!(nat.session_count(), 1);
    // A table setting: reported, not applied.
    let mut bigger = new.clone();
    bigger.core.max_sessions += 1;
    let (_, warns) = rt.reload(&new, &bigger);
    assert!(
        warns
            .iter()
            .any(|w| w.starts_with("nat64.max_sessions changed")),
        "{warns:?}"
    );

    // A bad request is answered with an error line.
    let mut s2 = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
    use std::io::{Read, Write};
    s2.write_all(b"drop everything\n").expect("write");
    let mut ans = String::new();
    s2.read_to_string(&mut ans).expect("read");
    assert!(ans.starts_with("error: unknown request"), "{ans}");

    rt.stop();
    assert!(!sock.exists(), "socket removed at stop");
    let e = query(&sock, &req(What::Sessions, None)).expect_err("no daemon");
    assert!(e.contains("is nat64d running"), "{e}");
}

#[test]
fn a_live_socket_is_not_taken_over() {
    let sock = temp_socket("b");
    let cfg = config(&sock, "");
    let s = cfg.nat64.expect("nat64");
    let mut core = s.core.clone();
    core.max_sessions = 16;
    let nat = Arc::new(Nat64::new(core).expect("nat64"));
    let rt = Nat64Runtime::start(nat.clone(), &s, Instant::now()).expect("first");
    let second = Nat64Runtime::start(nat, &s, Instant::now());
    assert!(
        second
            .as_ref()
            .is_err_and(|e| e.contains("another nat64d answers")),
        "{:?}",
        second.as_ref().err()
    );
    rt.stop();
}

#[test]
fn mapping_log_lines_carry_wall_clock_time() {
    use nat64_core::nat64::log::{EventKind, MappingEvent};
    let e = MappingEvent {
        kind: EventKind::Created,
        proto: Proto::Tcp,
        v6: ("2001:db8:1::2".parse().unwrap(), 40000),
        v4: ("192.0.2.1".parse().unwrap(), 61000),
        created: nat64_core::Timestamp(1500),
        at: nat64_core::Timestamp(1500),
    };
    let mut line = String::new();
    nat64d::nat64_ctl::event_line(&e, 1_700_000_000_000, &mut line);
    assert!(
        line.starts_with(
            r#"{"unix_ms":1700000001500,"created_unix_ms":1700000001500,"event":"bib_created","proto":"tcp","v6_addr":"2001:db8:1::2","v6_port":40000,"v4_addr":"192.0.2.1","v4_port":61000"#
        ),
        "{line}"
    );
    assert!(line.ends_with('}'), "{line}");
}

/// RFC 6146 §3.5.2.2 through the daemon's pieces: an unsolicited IPv4 SYN goes through the
/// worker's step (stored, counted as `tcp_v4_syn_stored`), and the NAT64 timer thread writes the
/// ICMP Port Unreachable quoting it to its packet sink (the TUN in the daemon) once
/// TCP_INCOMING_SYN (1 s here) has run out.
#[test]
fn timer_writes_port_unreachable_for_an_unanswered_stored_syn() {
    use nat64_core::DropReason;
    use std::sync::Mutex;
    let sock = temp_socket("simopen");
    let cfg = config(&sock, "");
    let s = cfg.nat64.clone().expect("nat64 settings");
    let mut core = s.core.clone();
    // The core's floor for TCP_INCOMING_SYN is 1 s (the config file's is the RFC's 6 s).
    core.timeouts.tcp_incoming_syn = 1;
    core.hash_seed = 7;
    core.max_sessions = 1024;
    let nat = Arc::new(Nat64::new(core).expect("nat64"));
    let t = Translator::Nat64(nat.clone());
    let epoch = Instant::now();
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = {
        let seen = seen.clone();
        Box::new(move |p: &[u8]| {
            seen.lock().expect("sink").push(p.to_vec());
            Ok(())
        })
    };
    let rt = Nat64Runtime::start_tables(nat.clone(), &s, epoch, Some(sink)).expect("runtime");

    let mut syn = Vec::new();
    PacketBuilder::ipv4([198, 51, 100, 7], [192, 0, 2, 1], 64)
        .tcp(5555, 4000, 31337, 64000)
        .syn()
        .write(&mut syn, &[])
        .expect("build");
    let mut buf = Buffers::default();
    buf.buf[HEADROOM..HEADROOM + syn.len()].copy_from_slice(&syn);
    let mut ctx = Ctx::new(now_ms(epoch), 1);
    let mut c = BatchCounts::default();
    let mut out = Vec::new();
    handle_packet(
        &t,
        &mut ctx,
        &mut buf.buf,
        syn.len(),
        &mut buf.aux,
        &mut c,
        |p| {
            out.push(p.to_vec());
            Ok(p.len())
        },
    );
    assert!(out.is_empty(), "stored, not forwarded");
    assert_eq!(c.drops.get(DropReason::TcpV4SynStored), 1);

    // Wait (bounded) for the timer thread; no assertion on how long it took.
    let mut errs = Vec::new();
    for _ in 0..200 {
        errs = seen.lock().expect("sink").clone();
        if !errs.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    rt.stop();
    assert_eq!(errs.len(), 1, "one Port Unreachable");
    let e = &errs[0];
    assert_eq!(&e[12..16], &[192, 0, 2, 1], "from T");
    assert_eq!(&e[16..20], &[198, 51, 100, 7], "to the SYN's source");
    assert_eq!((e[9], e[20], e[21]), (1, 3, 3), "ICMP 3/3");
    assert_eq!(&e[28..], &syn[..], "quotes the stored SYN");
    assert_eq!(nat.counts().syn_store.icmp_sent, 1);
}
