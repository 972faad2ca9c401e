//! The DNS64 server's transport and safety rules: ACL, rate limit, TCP, truncation, upstream
//! TCP fallback and failover, ipv4only.arpa, reverse mapping, malformed input.

mod dns64_support;

use dns64_support::*;
use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, RecordType};
use nat64d::dns64::{Counter, Dns64Config, Dns64Server};

type Rt = RecordType;

async fn setup(f: impl FnOnce(&mut Dns64Config)) -> (Mock, Dns64Server) {
    let mock = start_mock().await;
    let mut cfg = config(&mock);
    f(&mut cfg);
    let server = start(cfg).await;
    (mock, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_outside_the_acl_are_refused() {
    let (mock, s) = setup(|c| {
        c.listen = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
        c.allow = vec!["::1/128".into()];
    })
    .await;
    let v4 = s.local_addrs()[0];
    let v6addr = s.local_addrs()[1];
    let r = ask(v4, &query("v4only.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    assert!(r.answers.is_empty());
    let r = ask_tcp(v4, &query("v4only.test.", Rt::AAAA)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    assert_eq!(mock.count("v4only.test.", Rt::AAAA), 0, "nothing forwarded");
    // A question whose name is a compression pointer (to "\x01a\x00" hidden in the ID and
    // flags: ID 0x0161, flags 0) takes the slow parser, but the ACL still applies first.
    let compressed = [
        0x01, 0x61, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x00, 0, 1, 0, 1,
    ];
    let r = udp_raw(v4, &compressed).await.unwrap();
    assert_eq!(r[3] & 0xf, 5, "REFUSED");
    assert_eq!(mock.count("a.", Rt::A), 0);
    // From an allowed client the same query is resolved.
    let r = udp_raw(v6addr, &compressed).await.unwrap();
    assert_eq!(r[3] & 0xf, 3, "NXDOMAIN from the mock");
    assert_eq!(mock.count("a.", Rt::A), 1);
    let r = ask(v6addr, &query("v4only.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(s.stats().get(Counter::Refused) >= 2);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_mapped_clients_are_normalized_before_the_acl() {
    // A dual-stack [::] socket sees 127.0.0.1 as ::ffff:127.0.0.1.
    let (_mock, s) = setup(|c| {
        c.listen = vec!["[::]:0".parse().unwrap()];
        c.allow = vec!["127.0.0.0/8".into()];
    })
    .await;
    let port = s.local_addrs()[0].port();
    let via4 = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let via6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
    let r = ask(via4, &query("lowttl.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    let r = ask(via6, &query("lowttl.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    s.shutdown().await;
    // And an IPv6-only ACL does not admit IPv4 clients through the mapped form.
    let (_mock, s) = setup(|c| {
        c.listen = vec!["[::]:0".parse().unwrap()];
        c.allow = vec!["::/0".into()];
    })
    .await;
    let via4 = std::net::SocketAddr::from(([127, 0, 0, 1], s.local_addrs()[0].port()));
    let r = ask(via4, &query("lowttl.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_client_prefix() {
    // One token a second, burst 3, each IPv4 address its own client (/32).
    let (_mock, s) = setup(|c| {
        c.rate_limit.qps = 1;
        c.rate_limit.burst = 3;
        c.rate_limit.ipv4_prefix_len = 32;
    })
    .await;
    let addr = s.local_addrs()[0];
    let q = query("lowttl.test.", Rt::AAAA).to_vec().unwrap();
    // Client 127.0.0.1 spends its burst (the first is resolved, the next two are cache hits,
    // all within the first second) and the fourth query is dropped...
    for i in 0..3 {
        assert!(
            udp_raw_from("127.0.0.1:0", addr, &q).await.is_some(),
            "query {i} of the burst"
        );
    }
    assert!(udp_raw_from("127.0.0.1:0", addr, &q).await.is_none());
    assert_eq!(s.stats().get(Counter::RateLimited), 1);
    // ...while client 127.0.0.2, limited on its own, is still served.
    for i in 0..3 {
        assert!(
            udp_raw_from("127.0.0.2:0", addr, &q).await.is_some(),
            "second client, query {i}"
        );
    }
    assert_eq!(s.stats().get(Counter::RateLimited), 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_answers_are_capped_at_1232_bytes() {
    let (_mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    // 100 A records: about 1,650 bytes. A client offering 4096 still gets at most 1232 over
    // UDP (RFC 6147 leaves it to DNS; we advertise 1232): TC set, no records...
    let mut big = with_edns(query("huge.test.", Rt::A), false);
    big.edns.as_mut().unwrap().set_max_payload(4096);
    let raw = udp_raw(addr, &big.to_vec().unwrap()).await.unwrap();
    assert!(raw.len() <= 1232, "{} bytes", raw.len());
    let r = hickory_proto::op::Message::from_vec(&raw).unwrap();
    assert!(r.metadata.truncation);
    assert!(r.answers.is_empty());
    // ...the same from the cache...
    let raw = udp_raw(addr, &big.to_vec().unwrap()).await.unwrap();
    assert!(raw.len() <= 1232 && raw[2] & 0x02 != 0, "TC from the cache");
    // ...and over TCP the whole answer, longer than 1232.
    let r = ask_tcp(addr, &query("huge.test.", Rt::A)).await;
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 100);
    assert!(r.to_vec().unwrap().len() > 1232);
    assert!(s.stats().get(Counter::Truncated) >= 2);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthesized_answers_have_ra_set() {
    let (_mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    for _ in 0..2 {
        // Resolved, then from the cache.
        let r = ask(addr, &query("v4only.test.", Rt::AAAA)).await.unwrap();
        assert_eq!(aaaas(&r).len(), 2);
        assert!(r.metadata.recursion_available, "RA on a synthesized answer");
        assert!(r.metadata.recursion_desired);
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cname_loops_and_long_chains_are_capped() {
    let (_mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    // A loop: answered (not hung, not SERVFAIL), the chain passed on, nothing synthesized.
    let r = ask(addr, &query("loop.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(r.answers.len(), 2);
    assert!(aaaas(&r).is_empty());
    // 30 CNAMEs then an A: the chain is followed at most MAX_CHAIN (16) steps, so the A at
    // its end is not reached and nothing is synthesized.
    let r = ask_tcp(addr, &query("long0.test.", Rt::AAAA)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(aaaas(&r).is_empty(), "{:?}", aaaas(&r));
    s.shutdown().await;
}

/// An upstream on 127.0.0.1 that answers every query with `bytes(query)` and records the
/// source port of each query.
async fn recording_upstream(
    reply: fn(&[u8]) -> Vec<u8>,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<u16>>>,
) {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let ports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let p = ports.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, from)) = udp.recv_from(&mut buf).await {
            p.lock().unwrap().push(from.port());
            let _ = udp.send_to(&reply(&buf[..len]), from).await;
        }
    });
    (addr, ports)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_on_servfail_refused_and_garbage() {
    // Each bad upstream first, then the mock: the answer comes from the mock, the failure is
    // counted by kind, and the bad one was asked.
    let garbage = |q: &[u8]| {
        // The query's ID (so it is "for us") followed by bytes that parse as nothing.
        let mut v = q[..2.min(q.len())].to_vec();
        v.extend_from_slice(&[0x81, 0x80, 0xff, 0xff, 0, 0, 0, 0]);
        v
    };
    let (g_addr, g_ports) = recording_upstream(garbage).await;
    for (bad, counter) in [
        (Some(ResponseCode::ServFail), Counter::UpstreamServfail),
        (Some(ResponseCode::Refused), Counter::UpstreamRefused),
        (None, Counter::UpstreamGarbage),
    ] {
        let mock = start_mock().await;
        let (bad_addr, asked) = match bad {
            Some(rc) => {
                let (a, c) = start_fixed(rc, false).await;
                (a, Some(c))
            }
            None => (g_addr, None),
        };
        let mut cfg = config(&mock);
        cfg.upstreams = vec![bad_addr, mock.addr];
        let s = start(cfg).await;
        let r = ask(s.local_addrs()[0], &query("dual.test.", Rt::AAAA))
            .await
            .unwrap();
        assert_eq!(
            r.metadata.response_code,
            ResponseCode::NoError,
            "{counter:?}"
        );
        assert_eq!(aaaas(&r), vec![v6("2001:db8::1")], "{counter:?}");
        assert!(s.stats().get(counter) >= 1, "{counter:?} counted");
        assert!(s.stats().get(Counter::UpstreamFailover) >= 1, "{counter:?}");
        match asked {
            Some(c) => assert!(*c.lock().unwrap() >= 1),
            None => assert!(!g_ports.lock().unwrap().is_empty()),
        }
        assert_eq!(mock.count("dual.test.", Rt::AAAA), 1, "{counter:?}");
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_queries_use_random_source_ports() {
    // An upstream that refuses everything: each client query costs one upstream query (no
    // failover target), each from the port the resolver picked.
    let refuse = |q: &[u8]| {
        let mut v = q.to_vec();
        if v.len() >= 4 {
            v[2] |= 0x80;
            v[3] = (v[3] & 0xf0) | 5;
        }
        v
    };
    let (up, ports) = recording_upstream(refuse).await;
    let mock = start_mock().await;
    let mut cfg = config(&mock);
    cfg.upstreams = vec![up];
    let s = start(cfg).await;
    for i in 0..12 {
        let r = ask(s.local_addrs()[0], &query(&format!("p{i}.test."), Rt::A))
            .await
            .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    }
    let ports = ports.lock().unwrap().clone();
    assert!(ports.len() >= 12, "{ports:?}");
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    // RFC 5452 §9.2: the source port is part of the query's entropy; a fixed or sequential
    // port would show here (the kernel's ephemeral ports are random per bind).
    assert!(
        distinct.len() >= ports.len() - 1,
        "repeated ports: {ports:?}"
    );
    let sequential = ports
        .windows(2)
        .filter(|w| w[1] == w[0].wrapping_add(1))
        .count();
    assert!(sequential < ports.len() / 2, "sequential ports: {ports:?}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_udp_truncation() {
    let (_mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    // 60 A records do not fit 512 bytes: TC over UDP without EDNS...
    let r = ask(addr, &query("big.test.", Rt::A)).await.unwrap();
    assert!(r.metadata.truncation);
    assert!(r.answers.is_empty());
    // ...then from the cache, still truncated...
    let r = ask(addr, &query("big.test.", Rt::A)).await.unwrap();
    assert!(r.metadata.truncation);
    // ...fit with EDNS 1232 (60 * 16 + header), and all come over TCP.
    let r = ask(addr, &with_edns(query("big.test.", Rt::A), false))
        .await
        .unwrap();
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 60);
    let r = ask_tcp(addr, &query("big.test.", Rt::A)).await;
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 60);
    // Synthesis over TCP.
    let r = ask_tcp(addr, &query("v4only.test.", Rt::AAAA)).await;
    assert_eq!(
        aaaas(&r),
        vec![v6("64:ff9b::1.2.3.4"), v6("64:ff9b::5.6.7.8")]
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_truncation_falls_back_to_tcp() {
    let (mock, s) = setup(|_| {}).await;
    let r = ask(s.local_addrs()[0], &query("tc.test.", Rt::A))
        .await
        .unwrap();
    assert_eq!(r.answers.len(), 1);
    assert!(!r.metadata.truncation);
    let seen = mock.all();
    assert!(seen.iter().any(|q| q.name == "tc.test." && !q.tcp));
    assert!(seen.iter().any(|q| q.name == "tc.test." && q.tcp));
    assert_eq!(s.stats().get(Counter::UpstreamTcpRetry), 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failover() {
    let mock = start_mock().await;
    // A resolver that never answers, and a closed port.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let closed = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let mut cfg = config(&mock);
    cfg.upstreams = vec![silent.local_addr().unwrap(), closed, mock.addr];
    let s = start(cfg).await;
    let addr = s.local_addrs()[0];
    let r = ask(addr, &query("dual.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("2001:db8::1")]);
    assert!(s.stats().get(Counter::UpstreamFailover) >= 2);
    // The resolver that answered is tried first from now on.
    let before = s.stats().get(Counter::UpstreamFailover);
    let r = ask(addr, &query("lowttl.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("64:ff9b::1.2.3.4")]);
    assert_eq!(s.stats().get(Counter::UpstreamFailover), before);
    s.shutdown().await;
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4only_arpa_is_answered_locally() {
    let (mock, s) =
        setup(|c| c.prefixes = vec!["64:ff9b::/96".into(), "2001:db8:64::/64".into()]).await;
    let addr = s.local_addrs()[0];
    let r = ask(addr, &query("ipv4only.arpa.", Rt::AAAA)).await.unwrap();
    assert_eq!(
        aaaas(&r),
        vec![
            v6("64:ff9b::192.0.0.170"),
            v6("64:ff9b::192.0.0.171"),
            v6("2001:db8:64:0:c0:0:aa00:0"),
            v6("2001:db8:64:0:c0:0:ab00:0"),
        ]
    );
    assert!(r.metadata.authoritative);
    let r = ask(addr, &query("IPv4Only.Arpa.", Rt::A)).await.unwrap();
    assert_eq!(r.answers.len(), 2);
    assert!(mock.all().is_empty(), "the upstream is not asked");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_of_synthesized_address_is_a_cname_to_in_addr_arpa() {
    let (mock, s) = setup(|_| {}).await;
    // 64:ff9b::1.2.3.4 = 64:ff9b::102:304
    let name = "4.0.3.0.2.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.b.9.f.f.4.6.0.0.ip6.arpa.";
    let r = ask(s.local_addrs()[0], &query(name, Rt::PTR))
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(r.answers.len(), 2, "{:?}", r.answers);
    match &r.answers[0].data {
        RData::CNAME(c) => assert_eq!(c.0.to_ascii(), "4.3.2.1.in-addr.arpa."),
        other => panic!("expected CNAME, got {other:?}"),
    }
    match &r.answers[1].data {
        RData::PTR(p) => assert_eq!(p.0.to_ascii(), "host.test."),
        other => panic!("expected PTR, got {other:?}"),
    }
    assert_eq!(mock.count("4.3.2.1.in-addr.arpa.", Rt::PTR), 1);
    // Outside the prefix: forwarded as it is.
    let other = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    let r = ask(s.local_addrs()[0], &query(other, Rt::PTR))
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_queries_get_formerr_or_nothing() {
    let (_mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    // Shorter than a header: no answer.
    assert_eq!(udp_raw(addr, &[1, 2, 3]).await, None);
    // Header claims a question that is not there: FORMERR with the ID.
    let r = udp_raw(addr, &[0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    assert_eq!(&r[..2], &[0xab, 0xcd]);
    assert_eq!(r[3] & 0xf, 1);
    // Two questions: FORMERR.
    let mut two = query("a.test.", Rt::A);
    two.add_query(hickory_proto::op::Query::query(
        hickory_proto::rr::Name::from_ascii("b.test.").unwrap(),
        Rt::A,
    ));
    let r = ask(addr, &two).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    // A response sent to us: ignored.
    let mut resp = query("a.test.", Rt::A);
    resp.metadata.message_type = hickory_proto::op::MessageType::Response;
    assert!(ask(addr, &resp).await.is_none());
    // Class CH: REFUSED; opcode STATUS: NOTIMP.
    let mut ch = query("version.bind.", Rt::TXT);
    ch.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(
        ask(addr, &ch).await.unwrap().metadata.response_code,
        ResponseCode::Refused
    );
    let mut st = query("a.test.", Rt::A);
    st.metadata.op_code = OpCode::Status;
    assert_eq!(
        ask(addr, &st).await.unwrap().metadata.response_code,
        ResponseCode::NotImp
    );
    // EDNS version 1: BADVERS (16) = low bits 0 in the header, 1 in the OPT record (last 11 bytes).
    let mut v1 = with_edns(query("lowttl.test.", Rt::AAAA), false);
    v1.edns.as_mut().unwrap().set_version(1);
    let r = udp_raw(addr, &v1.to_vec().unwrap()).await.unwrap();
    assert_eq!(r[3] & 0xf, 0);
    assert_eq!(r[r.len() - 11 + 5], 1, "extended RCODE");
    // Random garbage of many sizes: never a crash, the server still answers.
    let mut x: u32 = 12345;
    for len in 0..200usize {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.send_to(&junk, addr).unwrap();
    }
    let r = ask(addr, &query("lowttl.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("64:ff9b::1.2.3.4")]);
    assert!(s.stats().get(Counter::Malformed) >= 2);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_garbage_is_servfail() {
    let (_mock, s) = setup(|_| {}).await;
    let r = ask(s.local_addrs()[0], &query("garbage.test.", Rt::A))
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert!(s.stats().get(Counter::UpstreamGarbage) >= 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_on_signal() {
    let mock = start_mock().await;
    let mut cfg = config(&mock);
    cfg.listen = vec!["127.0.0.1:0".parse().unwrap()];
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(nat64d::dns64::serve(cfg, rx));
    tx.send(true).unwrap();
    task.await.unwrap().unwrap();
    // And a bad configuration is an error naming the key.
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let mut bad = config(&mock);
    bad.prefixes = vec!["64:ff9b::/95".into()];
    let e = nat64d::dns64::serve(bad, rx).await.unwrap_err().to_string();
    assert!(e.contains("prefixes[0]"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_beyond_max_inflight_are_dropped_and_counted() {
    let (mock, s) = setup(|c| {
        c.max_inflight = 1;
        // The slot is held until the silent upstream's AAAA times out: far longer than this
        // test runs, so the order of events below decides, not the clock.
        c.upstream_timeout_ms = 30_000;
        c.query_timeout_ms = 30_000;
    })
    .await;
    let addr = s.local_addrs()[0];
    // The first query takes the only slot; wait until the upstream has seen it (the slot is
    // taken before the upstream query is sent).
    let first = tokio::spawn(async move { ask(addr, &query("silent.test.", Rt::AAAA)).await });
    while mock.count("silent.test.", Rt::AAAA) == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // A different name (no coalescing with the first) finds the slot taken: dropped, counted,
    // and never forwarded.
    assert!(ask(addr, &query("dual.test.", Rt::AAAA)).await.is_none());
    assert_eq!(s.stats().get(Counter::Overload), 1);
    assert_eq!(mock.count("dual.test.", Rt::AAAA), 0);
    assert!(
        first.await.unwrap().is_none(),
        "the first query is still pending"
    );
    s.shutdown().await;
}
