//! DNS64 at the edges (issue 11): DNAME chains, ipv4only.arpa reverse names, negative answers
//! with their SOA, upstream REFUSED as a failure, TCP hygiene and coalesced misses. The real
//! server against the mock upstream of `dns64_support` (messages built with hickory-proto).

mod dns64_support;

use dns64_support::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use nat64d::dns64::{Dns64Config, Dns64Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Rt = RecordType;

async fn setup(f: impl FnOnce(&mut Dns64Config)) -> (Mock, Dns64Server) {
    let mock = start_mock().await;
    let mut cfg = config(&mock);
    f(&mut cfg);
    let server = start(cfg).await;
    (mock, server)
}

fn types(m: &hickory_proto::op::Message) -> Vec<u16> {
    m.answers
        .iter()
        .map(|r| u16::from(r.record_type()))
        .collect()
}

/// The full ip6.arpa name of `a`.
fn ip6_arpa(a: &str) -> String {
    let v: std::net::Ipv6Addr = a.parse().unwrap();
    let mut s = String::new();
    for b in v.octets().iter().rev() {
        s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
    }
    s + "ip6.arpa."
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dname_chain_is_kept_in_synthesized_answers() {
    let (_mock, s) = setup(|_| {}).await;
    for _ in 0..2 {
        // Second round: from the cache.
        let r = ask(s.local_addrs()[0], &query("www.old.test.", Rt::AAAA))
            .await
            .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        // RFC 6147 §5.1.5: DNAME (39), the CNAME synthesized from it (5), then the AAAA (28).
        assert_eq!(types(&r), vec![39, 5, 28], "{:?}", r.answers);
        assert_eq!(r.answers[0].name.to_ascii(), "old.test.");
        match &r.answers[0].data {
            RData::Unknown { rdata, .. } => {
                assert_eq!(rdata.anything, b"\x03new\x04test\x00");
            }
            other => panic!("expected the DNAME, got {other:?}"),
        }
        assert!(r.answers[0].ttl <= 7200 && r.answers[0].ttl > 7000);
        assert_eq!(aaaas(&r), vec![v6("64:ff9b::9.9.9.9")]);
        assert_eq!(r.answers[2].name.to_ascii(), "www.new.test.");
        assert!(r.answers[2].ttl <= 300, "§5.1.7 TTL cap by the SOA");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4only_arpa_reverse_names_are_answered_locally() {
    let (mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    for name in ["170.0.0.192.in-addr.arpa.", "171.0.0.192.IN-ADDR.ARPA."] {
        let r = ask(addr, &query(name, Rt::PTR)).await.unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{name}");
        assert!(r.metadata.authoritative);
        assert_eq!(r.answers.len(), 1);
        match &r.answers[0].data {
            RData::PTR(p) => assert_eq!(p.0.to_ascii(), "ipv4only.arpa."),
            other => panic!("expected PTR, got {other:?}"),
        }
    }
    // Another type for the same name: NODATA, locally.
    let r = ask(addr, &query("170.0.0.192.in-addr.arpa.", Rt::TXT))
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    // §5.3.1 for the synthesized ipv4only.arpa addresses: CNAME, then the local PTR.
    let r = ask(addr, &query(&ip6_arpa("64:ff9b::192.0.0.171"), Rt::PTR))
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(types(&r), vec![5, 12], "{:?}", r.answers);
    match (&r.answers[0].data, &r.answers[1].data) {
        (RData::CNAME(c), RData::PTR(p)) => {
            assert_eq!(c.0.to_ascii(), "171.0.0.192.in-addr.arpa.");
            assert_eq!(p.0.to_ascii(), "ipv4only.arpa.");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        mock.all().is_empty(),
        "the upstream is not asked: {:?}",
        mock.all()
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_and_empty_answers_carry_the_soa() {
    let (mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    // RFC 2308 §3/§5: the SOA's TTL in a negative answer is min(SOA TTL, MINIMUM) = 300.
    let want = vec![("test.".to_string(), 300, 300)];
    // No A either: NODATA.
    let r = ask(addr, &query("noaddr.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert_eq!(soas(&r), want, "noaddr");
    // No A record may be synthesized (10.1.2.3 and 192.0.2.7 are non-global, kept out of the
    // WKP): NODATA from the AAAA answer.
    let r = ask(addr, &query("private.test.", Rt::AAAA)).await.unwrap();
    assert!(r.answers.is_empty());
    assert_eq!(soas(&r), want, "private");
    // Only excluded AAAA (no SOA with them) and an empty A answer with one: its SOA.
    let r = ask(addr, &query("exclnoa.test.", Rt::AAAA)).await.unwrap();
    assert!(r.answers.is_empty(), "{:?}", r.answers);
    assert_eq!(soas(&r), want, "exclnoa");
    // §5.1.6: the AAAA answer was empty and the A query that follows fails (SERVFAIL): the
    // client gets the AAAA's empty answer with its SOA, not the A query's RCODE.
    let r = ask(addr, &query("aerr.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError, "aerr");
    assert!(r.answers.is_empty(), "{:?}", r.answers);
    assert_eq!(soas(&r), want, "aerr");
    assert_eq!(
        mock.count("aerr.test.", Rt::A),
        1,
        "the A query was made and failed"
    );
    // NXDOMAIN passes with its SOA, same TTL rule.
    let r = ask(addr, &query("nx.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(soas(&r), want, "nx");
    // And from the cache (TTL aged, never above 300).
    let r = ask(addr, &query("noaddr.test.", Rt::AAAA)).await.unwrap();
    let got = soas(&r);
    assert_eq!(got.len(), 1);
    assert!(got[0].1 <= 300, "{got:?}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_refused_is_a_failure_never_passed_through() {
    let (mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    // Every upstream refuses: SERVFAIL (as BIND and Unbound answer), never REFUSED.
    let r = ask(addr, &query("x.refused.test.", Rt::A)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    let r = ask(addr, &query("x.refused.test.", Rt::AAAA))
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    s.shutdown().await;
    // A refusing upstream first: the next one answers.
    let (refuser, asked) = start_fixed(ResponseCode::Refused, false).await;
    let mut cfg = config(&mock);
    cfg.upstreams = vec![refuser, mock.addr];
    let s = start(cfg).await;
    let r = ask(s.local_addrs()[0], &query("dual.test.", Rt::AAAA))
        .await
        .unwrap();
    assert_eq!(aaaas(&r), vec![v6("2001:db8::1")]);
    assert_eq!(*asked.lock().unwrap(), 1);
    s.shutdown().await;
}

/// Reads one framed message (or `None` at EOF / error / 3 s without data).
async fn read_framed(st: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let fut = async {
        let mut lb = [0u8; 2];
        st.read_exact(&mut lb).await.ok()?;
        let mut b = vec![0u8; usize::from(u16::from_be_bytes(lb))];
        st.read_exact(&mut b).await.ok()?;
        Some(b)
    };
    tokio::time::timeout(std::time::Duration::from_secs(3), fut)
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_unparseable_message_gets_formerr_then_the_connection_closes() {
    let (_mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    let mut st = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A good query first: the connection serves it.
    let good = query("lowttl.test.", Rt::AAAA).to_vec().unwrap();
    let mut f = (good.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(&good);
    st.write_all(&f).await.unwrap();
    let a = read_framed(&mut st).await.expect("an answer");
    assert_eq!(a[3] & 0xf, 0);
    // A header claiming one question that is not there (RFC 1035 §4.1.1).
    let bad = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0x07, b'x'];
    let mut f = (bad.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(&bad);
    st.write_all(&f).await.unwrap();
    let a = read_framed(&mut st).await.expect("FORMERR first");
    assert_eq!(&a[..2], &[0x12, 0x34]);
    assert_eq!(a[3] & 0xf, 1, "FORMERR");
    // Then the server closes: EOF, not silence until the idle timeout.
    let mut rest = [0u8; 1];
    let n = tokio::time::timeout(std::time::Duration::from_secs(3), st.read(&mut rest))
        .await
        .expect("closed, not left open")
        .unwrap_or(0);
    assert_eq!(n, 0);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_misses_share_one_upstream_query() {
    // The upstream takes 300 ms: a per-upstream timeout well above that.
    let (mock, s) = setup(|c| c.upstream_timeout_ms = 2000).await;
    let addr = s.local_addrs()[0];
    // 20 clients ask the same uncached name while the upstream takes 300 ms to answer: all
    // 20 are sent before any answer is read.
    let mut socks = Vec::new();
    for i in 0..20u16 {
        let mut q = query(
            if i % 2 == 0 {
                "slow.test."
            } else {
                "SLOW.test."
            },
            Rt::AAAA,
        );
        q.metadata.id = 1000 + i;
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.send_to(&q.to_vec().unwrap(), addr).await.unwrap();
        socks.push((q, sock));
    }
    for (q, sock) in socks {
        let mut buf = vec![0u8; 4096];
        let len = tokio::time::timeout(std::time::Duration::from_secs(3), sock.recv(&mut buf))
            .await
            .expect("every client is answered")
            .unwrap();
        let r = hickory_proto::op::Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(r.metadata.id, q.metadata.id);
        assert_eq!(r.queries[0].name(), q.queries[0].name(), "its own case");
        assert_eq!(aaaas(&r), vec![v6("64:ff9b::1.2.3.4")]);
    }
    assert_eq!(mock.count("slow.test.", Rt::AAAA), 1, "{:?}", mock.all());
    assert_eq!(mock.count("slow.test.", Rt::A), 1);
    // DO is part of the identity: a DO query is not served from a non-DO one.
    let r = ask(addr, &with_edns(query("slow.test.", Rt::AAAA), true))
        .await
        .unwrap();
    assert_eq!(aaaas(&r), vec![v6("64:ff9b::1.2.3.4")]);
    assert_eq!(mock.count("slow.test.", Rt::AAAA), 2);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_deadline_per_client_query_then_servfail() {
    // Two silent upstreams, 1 s each: AAAA and A with failover would take 4 s, longer than the
    // client's 2 s wait. The 600 ms deadline answers SERVFAIL first.
    let mock = start_mock().await;
    let silent1 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent2 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut cfg = config(&mock);
    cfg.upstreams = vec![silent1.local_addr().unwrap(), silent2.local_addr().unwrap()];
    cfg.upstream_timeout_ms = 1000;
    cfg.query_timeout_ms = 600;
    let s = start(cfg).await;
    let r = ask(s.local_addrs()[0], &query("v4only.test.", Rt::AAAA))
        .await
        .expect("an answer before the client gives up");
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    let st = s.stats();
    assert_eq!(st.get(nat64d::dns64::Counter::DeadlineExceeded), 1);
    assert!(st.get(nat64d::dns64::Counter::UpstreamTimeout) >= 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_connects_and_refusals_are_counted() {
    use nat64d::dns64::Counter;
    let mock = start_mock().await;
    // Truncated over UDP, no TCP listener: the TCP connect is refused.
    let (tc_only, _) = start_fixed(ResponseCode::NoError, true).await;
    let (refuser, _) = start_fixed(ResponseCode::Refused, false).await;
    let mut cfg = config(&mock);
    cfg.upstreams = vec![tc_only, refuser];
    let s = start(cfg).await;
    let r = ask(s.local_addrs()[0], &query("dual.test.", Rt::A))
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    let st = s.stats();
    assert_eq!(st.get(Counter::UpstreamConnectError), 1);
    assert_eq!(st.get(Counter::UpstreamRefused), 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_are_bounded_per_client_and_counted() {
    use nat64d::dns64::Counter;
    let (_mock, s) = setup(|c| {
        c.tcp_max_connections = 3;
        c.tcp_max_connections_per_client = 2;
    })
    .await;
    let addr = s.local_addrs()[0];
    let framed = |name: &str| {
        let b = query(name, Rt::AAAA).to_vec().unwrap();
        let mut f = (b.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(&b);
        f
    };
    // Two connections from 127.0.0.1 are served and stay open.
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut st = tokio::net::TcpStream::connect(addr).await.unwrap();
        st.write_all(&framed("lowttl.test.")).await.unwrap();
        assert!(read_framed(&mut st).await.is_some());
        open.push(st);
    }
    // A third from the same address is closed without an answer, and counted.
    let mut st = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = st.write_all(&framed("lowttl.test.")).await;
    assert!(read_framed(&mut st).await.is_none());
    assert_eq!(s.stats().get(Counter::TcpRefused), 1);
    // Another client address still fits the total of 3.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = sock.connect(addr).await.unwrap();
    other.write_all(&framed("lowttl.test.")).await.unwrap();
    assert!(read_framed(&mut other).await.is_some());
    // Closing one frees its slot.
    drop(open.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut st = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = st.write_all(&framed("lowttl.test.")).await;
        if read_framed(&mut st).await.is_some() {
            again = Some(st);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a freed slot is reused");
    s.shutdown().await;
}
