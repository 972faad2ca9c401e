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
    let (_mock, s) = setup(|c| {
        c.rate_limit.qps = 1;
        c.rate_limit.burst = 2;
    })
    .await;
    let addr = s.local_addrs()[0];
    let mut answered = 0;
    for _ in 0..5 {
        if ask(addr, &query("lowttl.test.", Rt::AAAA)).await.is_some() {
            answered += 1;
        }
    }
    // Burst 2 plus at most the tokens refilled while the dropped queries waited out their 2 s.
    assert!(answered < 5, "answered {answered} of 5");
    assert!(s.stats().get(Counter::RateLimited) >= 1);
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
    let (_mock, s) = setup(|c| c.max_inflight = 1).await;
    let addr = s.local_addrs()[0];
    // Whichever query gets the only slot holds it for at least the upstream timeout (the
    // upstream never answers AAAA for silent.test.), so the other one finds it taken.
    let slow = query("silent.test.", Rt::AAAA);
    let other = query("silent.test.", Rt::AAAA);
    let (a, b) = tokio::join!(ask(addr, &slow), ask(addr, &other));
    assert_eq!(
        usize::from(a.is_some()) + usize::from(b.is_some()),
        1,
        "exactly one of two simultaneous queries fits in max_inflight = 1"
    );
    assert_eq!(s.stats().get(Counter::Overload), 1);
    // Once the slot is free, queries are served again.
    let r = ask(addr, &query("nosoa.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("64:ff9b::1.2.3.4")]);
    s.shutdown().await;
}
