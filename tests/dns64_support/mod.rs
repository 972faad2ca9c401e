//! Shared test support: a mock upstream resolver on loopback (UDP and TCP on one ephemeral
//! port) serving a fixed test zone, and a small DNS client. Messages are built with
//! hickory-proto, independently of the server's own adapter.
#![allow(dead_code)]

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, NULL, PTR, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use nat64d::dns64::{Dns64Config, Dns64Server};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// One query the mock received: (lower-case name, type, CD, DO, over TCP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    pub qtype: RecordType,
    pub cd: bool,
    pub dnssec_ok: bool,
    pub tcp: bool,
}

pub struct Mock {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mock {
    pub fn count(&self, name: &str, qtype: RecordType) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.name == name && s.qtype == qtype)
            .count()
    }
    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn soa(zone: &str, ttl: u32, minimum: u32) -> Record {
    Record::from_rdata(
        n(zone),
        ttl,
        RData::SOA(SOA::new(
            n("ns.test."),
            n("admin.test."),
            1,
            3600,
            600,
            86400,
            minimum,
        )),
    )
}

fn a(name: &str, ttl: u32, v4: [u8; 4]) -> Record {
    Record::from_rdata(n(name), ttl, RData::A(A(Ipv4Addr::from(v4))))
}

fn aaaa(name: &str, ttl: u32, v6: &str) -> Record {
    Record::from_rdata(
        n(name),
        ttl,
        RData::AAAA(AAAA(v6.parse::<Ipv6Addr>().unwrap())),
    )
}

fn cname(name: &str, target: &str) -> Record {
    Record::from_rdata(n(name), 300, RData::CNAME(CNAME(n(target))))
}

/// A DNAME record (RFC 6672), which hickory 0.26 only carries as unknown data: its RDATA is the
/// target name, uncompressed (RFC 6672 §2.5).
pub fn dname(name: &str, ttl: u32, target: &str) -> Record {
    let mut wire = Vec::new();
    for label in target.trim_end_matches('.').split('.') {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    Record::from_rdata(
        n(name),
        ttl,
        RData::Unknown {
            code: RecordType::DNAME,
            rdata: NULL::with(wire),
        },
    )
}

/// What the mock zone says: (rcode, answers, authorities), or `None` for silence.
/// `tcp` is true when asked over TCP.
fn zone(name: &str, t: RecordType, tcp: bool) -> Option<(ResponseCode, Vec<Record>, Vec<Record>)> {
    use RecordType::{A as Q4, AAAA as Q6};
    let ok = ResponseCode::NoError;
    let nodata = |zone: &str| Some((ok, vec![], vec![soa(zone, 3600, 300)]));
    match (name, t) {
        // NODATA for AAAA with SOA (TTL 3600, MINIMUM 300); two A records, TTL 3600.
        ("v4only.test.", Q6) => nodata("test."),
        ("v4only.test.", Q4) => Some((
            ok,
            vec![a(name, 3600, [1, 2, 3, 4]), a(name, 3600, [5, 6, 7, 8])],
            vec![],
        )),
        // Same without SOA: TTL capped at 600.
        ("nosoa.test.", Q6) => Some((ok, vec![], vec![])),
        ("nosoa.test.", Q4) => Some((ok, vec![a(name, 7200, [1, 2, 3, 4])], vec![])),
        // A TTL below the SOA's.
        ("lowttl.test.", Q6) => nodata("test."),
        ("lowttl.test.", Q4) => Some((ok, vec![a(name, 60, [1, 2, 3, 4])], vec![])),
        // SOA TTL below its MINIMUM: RFC 2308 takes the smaller.
        ("soattl.test.", Q6) => Some((ok, vec![], vec![soa("test.", 120, 900)])),
        ("soattl.test.", Q4) => Some((ok, vec![a(name, 3600, [1, 2, 3, 4])], vec![])),
        ("dual.test.", Q6) => Some((ok, vec![aaaa(name, 300, "2001:db8::1")], vec![])),
        ("dual.test.", Q4) => Some((ok, vec![a(name, 300, [1, 2, 3, 4])], vec![])),
        ("mapped6.test.", Q6) => Some((ok, vec![aaaa(name, 300, "::ffff:1.2.3.4")], vec![])),
        ("mapped6.test.", Q4) => Some((ok, vec![a(name, 300, [1, 2, 3, 4])], vec![])),
        ("mixed.test.", Q6) => Some((
            ok,
            vec![
                aaaa(name, 300, "::ffff:1.2.3.4"),
                aaaa(name, 300, "2001:db8::2"),
            ],
            vec![],
        )),
        ("chain.test.", Q6) => Some((
            ok,
            vec![cname(name, "target.test.")],
            vec![soa("test.", 3600, 300)],
        )),
        ("chain.test.", Q4) => Some((
            ok,
            vec![
                cname(name, "target.test."),
                a("target.test.", 3600, [9, 9, 9, 9]),
            ],
            vec![],
        )),
        ("nxchain.test.", _) => Some((
            ResponseCode::NXDomain,
            vec![cname(name, "gone.test.")],
            vec![soa("test.", 3600, 300)],
        )),
        ("nx.test.", _) => Some((
            ResponseCode::NXDomain,
            vec![],
            vec![soa("test.", 3600, 300)],
        )),
        ("servfail.test.", Q6) => Some((ResponseCode::ServFail, vec![], vec![])),
        ("servfail.test.", Q4) => Some((ok, vec![a(name, 300, [1, 2, 3, 4])], vec![])),
        ("silent.test.", Q6) => None,
        ("silent.test.", Q4) => Some((ok, vec![a(name, 300, [1, 2, 3, 4])], vec![])),
        ("private.test.", Q6) => nodata("test."),
        ("private.test.", Q4) => Some((
            ok,
            vec![a(name, 300, [10, 1, 2, 3]), a(name, 300, [192, 0, 2, 7])],
            vec![],
        )),
        ("ranges.test.", Q6) => nodata("test."),
        ("ranges.test.", Q4) => Some((
            ok,
            vec![a(name, 300, [1, 2, 3, 4]), a(name, 300, [8, 8, 8, 8])],
            vec![],
        )),
        ("never.test.", Q6) => nodata("test."),
        ("never.test.", Q4) => Some((ok, vec![a(name, 300, [1, 2, 3, 4])], vec![])),
        ("always.test.", Q6) => Some((ok, vec![aaaa(name, 300, "2001:db8::5")], vec![])),
        ("always.test.", Q4) => Some((ok, vec![a(name, 300, [1, 2, 3, 4])], vec![])),
        // More than 1232 bytes over UDP (100 A records, 16 bytes each after the first).
        ("huge.test.", Q4) => Some((
            ok,
            (0..100u8).map(|i| a(name, 300, [1, 2, 4, i])).collect(),
            vec![],
        )),
        // A CNAME loop, and a chain longer than the cap (chainN -> chainN+1, A at the end).
        ("loop.test.", _) => Some((
            ok,
            vec![cname(name, "loop2.test."), cname("loop2.test.", name)],
            vec![],
        )),
        (x, t) if x.starts_with("long0.") => {
            let mut v: Vec<Record> = (0..30)
                .map(|i| cname(&format!("long{i}.test."), &format!("long{}.test.", i + 1)))
                .collect();
            if t == Q4 {
                v.push(a("long30.test.", 300, [7, 7, 7, 7]));
            }
            Some((ok, v, vec![]))
        }
        ("big.test.", Q4) => Some((
            ok,
            (0..60u8).map(|i| a(name, 300, [1, 2, 3, i])).collect(),
            vec![],
        )),
        // UDP answers are truncated; TCP has the data.
        ("tc.test.", Q4) if !tcp => Some((ok, vec![], vec![])),
        ("tc.test.", Q4) => Some((ok, vec![a(name, 300, [4, 3, 2, 1])], vec![])),
        ("4.3.2.1.in-addr.arpa.", RecordType::PTR) => Some((
            ok,
            vec![Record::from_rdata(
                n(name),
                300,
                RData::PTR(PTR(n("host.test."))),
            )],
            vec![],
        )),
        // RFC 6672: the DNAME, the CNAME synthesized from it, then the data at the target.
        ("www.old.test.", Q6) => Some((
            ok,
            vec![
                dname("old.test.", 7200, "new.test."),
                cname(name, "www.new.test."),
            ],
            vec![soa("test.", 3600, 300)],
        )),
        ("www.old.test.", Q4) => Some((
            ok,
            vec![
                dname("old.test.", 7200, "new.test."),
                cname(name, "www.new.test."),
                a("www.new.test.", 3600, [9, 9, 9, 9]),
            ],
            vec![],
        )),
        // No address at all: NODATA with SOA (TTL 3600, MINIMUM 300) for both.
        ("noaddr.test.", Q6 | Q4) => nodata("test."),
        // Only excluded AAAA (no SOA with them); the A answer is NODATA with a SOA.
        ("exclnoa.test.", Q6) => Some((ok, vec![aaaa(name, 300, "::ffff:1.2.3.4")], vec![])),
        ("exclnoa.test.", Q4) => nodata("test."),
        // An empty AAAA answer (NODATA with SOA), then the A query fails (RFC 6147 §5.1.6).
        ("aerr.test.", Q6) => nodata("test."),
        ("aerr.test.", Q4) => Some((ResponseCode::ServFail, vec![], vec![])),
        // Slow to answer (the mock waits 300 ms): identical queries overlap.
        ("slow.test.", Q6) => nodata("test."),
        ("slow.test.", Q4) => Some((ok, vec![a(name, 300, [1, 2, 3, 4])], vec![])),
        // The upstream refuses these (like an authoritative server asked outside its zones).
        (x, _) if x.ends_with("refused.test.") || x.ends_with(".0.0.192.in-addr.arpa.") => {
            Some((ResponseCode::Refused, vec![], vec![]))
        }
        // The A answer comes with an NS in authority and its glue in additional (see `respond`).
        ("glue.test.", Q6) => nodata("test."),
        ("glue.test.", Q4) => Some((ok, vec![a(name, 300, [1, 2, 3, 4])], vec![])),
        ("plain.test.", RecordType::TXT) => Some((ok, vec![], vec![soa("test.", 3600, 300)])),
        _ => Some((
            ResponseCode::NXDomain,
            vec![],
            vec![soa("test.", 3600, 300)],
        )),
    }
}

fn respond(buf: &[u8], tcp: bool, seen: &Mutex<Vec<Seen>>) -> Option<Vec<u8>> {
    let q = Message::from_vec(buf).ok()?;
    let query = q.queries.first()?.clone();
    let name = query.name().to_lowercase().to_ascii();
    let dnssec_ok = q.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    seen.lock().unwrap().push(Seen {
        name: name.clone(),
        qtype: query.query_type(),
        cd: q.metadata.checking_disabled,
        dnssec_ok,
        tcp,
    });
    if name == "garbage.test." {
        return Some(vec![0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
    }
    let qtype = query.query_type();
    let (rcode, answers, auth) = zone(&name, qtype, tcp)?;
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.checking_disabled = q.metadata.checking_disabled;
    // Pretend everything validated, so the tests can check that synthesis clears AD.
    m.metadata.authentic_data = true;
    m.metadata.response_code = rcode;
    m.metadata.truncation = name == "tc.test." && !tcp;
    m.add_query(query);
    m.answers = answers;
    m.authorities = auth;
    if name == "glue.test." && qtype == RecordType::A {
        m.authorities.push(Record::from_rdata(
            n("test."),
            3600,
            RData::NS(NS(n("ns.test."))),
        ));
        m.additionals.push(a("ns.test.", 3600, [192, 0, 2, 53]));
    }
    if q.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().ok()
}

/// Starts the mock upstream on 127.0.0.1, UDP and TCP on the same ephemeral port.
pub async fn start_mock() -> Mock {
    let udp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = udp.local_addr().unwrap();
    let tcp = TcpListener::bind(addr).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s1 = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((len, from)) = udp.recv_from(&mut buf).await else {
                return;
            };
            if let Some(ans) = respond(&buf[..len], false, &s1) {
                if ans.windows(6).any(|w| w == b"\x04slow\x04") {
                    let udp = udp.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        let _ = udp.send_to(&ans, from).await;
                    });
                } else {
                    let _ = udp.send_to(&ans, from).await;
                }
            }
        }
    });
    let s2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut st, _)) = tcp.accept().await else {
                return;
            };
            let s = s2.clone();
            tokio::spawn(async move {
                let mut lb = [0u8; 2];
                while st.read_exact(&mut lb).await.is_ok() {
                    let mut b = vec![0u8; usize::from(u16::from_be_bytes(lb))];
                    if st.read_exact(&mut b).await.is_err() {
                        return;
                    }
                    if let Some(ans) = respond(&b, true, &s) {
                        let mut f = (ans.len() as u16).to_be_bytes().to_vec();
                        f.extend_from_slice(&ans);
                        if st.write_all(&f).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Mock { addr, seen }
}

/// A configuration for tests: listen on 127.0.0.1 and ::1 port 0, the mock as upstream,
/// loopback allowed, no rate limit, short upstream timeout.
pub fn config(mock: &Mock) -> Dns64Config {
    Dns64Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        upstreams: vec![mock.addr],
        upstream_timeout_ms: 300,
        udp_threads: 2,
        rate_limit: nat64d::dns64::RateLimit {
            qps: 0,
            ..Default::default()
        },
        ..Dns64Config::default()
    }
}

pub async fn start(cfg: Dns64Config) -> Dns64Server {
    Dns64Server::start(cfg).await.unwrap()
}

/// Builds a query.
pub fn query(name: &str, t: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m
}

/// Adds EDNS (payload 1232) with DO as given.
pub fn with_edns(mut m: Message, dnssec_ok: bool) -> Message {
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.set_dnssec_ok(dnssec_ok);
    m.set_edns(e);
    m
}

/// Sends raw bytes over UDP from `from` and waits up to 2 s for one datagram.
pub async fn udp_raw_from(from: &str, server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let s = UdpSocket::bind(from).await.unwrap();
    s.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(Duration::from_secs(2), s.recv_from(&mut buf)).await {
        Ok(Ok((len, _))) => Some(buf[..len].to_vec()),
        _ => None,
    }
}

pub async fn udp_raw(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let from = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    udp_raw_from(from, server, bytes).await
}

/// Sends `m` over UDP and parses the answer; checks that it answers `m`.
pub async fn ask(server: SocketAddr, m: &Message) -> Option<Message> {
    let ans = udp_raw(server, &m.to_vec().unwrap()).await?;
    let r = Message::from_vec(&ans).unwrap();
    assert_eq!(r.metadata.id, m.metadata.id);
    assert_eq!(r.metadata.message_type, MessageType::Response);
    Some(r)
}

/// Sends `m` over TCP.
pub async fn ask_tcp(server: SocketAddr, m: &Message) -> Message {
    let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
    let b = m.to_vec().unwrap();
    let mut f = (b.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(&b);
    s.write_all(&f).await.unwrap();
    let mut lb = [0u8; 2];
    s.read_exact(&mut lb).await.unwrap();
    let mut r = vec![0u8; usize::from(u16::from_be_bytes(lb))];
    s.read_exact(&mut r).await.unwrap();
    Message::from_vec(&r).unwrap()
}

/// The AAAA addresses of an answer, in order.
pub fn aaaas(m: &Message) -> Vec<Ipv6Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

pub fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// An upstream that answers every UDP query with `rcode` (REFUSED, SERVFAIL) or, with `tc`, an
/// empty truncated answer; it has no TCP listener. Returns its address and a query counter.
pub async fn start_fixed(rcode: ResponseCode, tc: bool) -> (SocketAddr, Arc<Mutex<usize>>) {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let count = Arc::new(Mutex::new(0usize));
    let c = count.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((len, from)) = udp.recv_from(&mut buf).await else {
                return;
            };
            let Ok(q) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            *c.lock().unwrap() += 1;
            let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            m.metadata.recursion_desired = q.metadata.recursion_desired;
            m.metadata.response_code = rcode;
            m.metadata.truncation = tc;
            m.queries = q.queries.clone();
            let _ = udp.send_to(&m.to_vec().unwrap(), from).await;
        }
    });
    (addr, count)
}

/// The SOA records of the authority section: (owner, TTL, MINIMUM).
pub fn soas(m: &Message) -> Vec<(String, u32, u32)> {
    m.authorities
        .iter()
        .filter_map(|r| match &r.data {
            RData::SOA(s) => Some((r.name.to_ascii(), r.ttl, s.minimum)),
            _ => None,
        })
        .collect()
}
