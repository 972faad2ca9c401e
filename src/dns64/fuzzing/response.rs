//! The upstream side of DNS64 on arbitrary bytes: a resolver on loopback answers the engine's
//! upstream queries with the fuzzer's bytes, so the response goes through everything a real one
//! does (our match of ID and question, hickory's `Message::from_vec`, the RFC 6147 steps,
//! re-encoding and truncation for the client).
//!
//! Input layout: byte 0 chooses the client query (bits 0-1: AAAA, A, TXT or a PTR under
//! 64:ff9b::/96; bit 2 EDNS; bit 3 CD; bit 4 DO; bit 5 "raw": each reply is first sent as it
//! is, ID aside, before the shaped one). Bytes 1-2 (big-endian) are the length of the first of
//! the two upstream replies the rest holds (the first upstream query gets the first, later ones
//! the second). A shaped reply is the query's
//! ID, QR | the reply's flags, one question (the upstream query's own), the reply's three record
//! counts, then the reply's remaining bytes as records: reply bytes 0-1 are the flags, 2-7 the
//! counts, 8.. the records.
//!
//! Test support only: it reads our answers back with hickory to check them, the one place outside
//! `hickory_adapter` that names a hickory type.

use super::super::{config::Dns64Config, Admit, Engine, RateLimit};
use hickory_proto::op::Message;
use hickory_proto::rr::RData;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The replies the loopback resolver gives, and how many queries it has answered.
#[derive(Default)]
struct Script {
    replies: [Vec<u8>; 2],
    raw: bool,
    asked: usize,
}

/// Offset just past the question of a query we sent (hickory writes it uncompressed).
fn question_end(q: &[u8]) -> Option<usize> {
    let mut i = 12;
    loop {
        let l = usize::from(*q.get(i)?);
        if l == 0 {
            return (i + 5 <= q.len()).then_some(i + 5);
        }
        if l & 0xc0 != 0 {
            return None;
        }
        i += 1 + l;
    }
}

/// The reply to `query`: the script's next reply, shaped to answer it (see the module doc).
fn shape(query: &[u8], reply: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(query.len() + reply.len());
    out.extend_from_slice(query.get(..2).unwrap_or(&[0, 0]));
    let flags = [
        reply.first().copied().unwrap_or(0) | 0x80,
        reply.get(1).copied().unwrap_or(0),
    ];
    out.extend_from_slice(&flags);
    out.extend_from_slice(&[0, 1]);
    let mut counts = [0u8; 6];
    for (c, b) in counts.iter_mut().zip(reply.iter().skip(2)) {
        *c = *b;
    }
    out.extend_from_slice(&counts);
    if let Some(end) = question_end(query) {
        out.extend_from_slice(&query[12..end]);
    }
    out.extend_from_slice(reply.get(8..).unwrap_or(&[]));
    out
}

impl Script {
    /// The datagrams to send for `query`: the raw reply first when asked to, then the shaped one.
    fn answer(&mut self, query: &[u8]) -> Vec<Vec<u8>> {
        let r = &self.replies[self.asked.min(1)];
        self.asked += 1;
        let mut out = Vec::new();
        if self.raw {
            let mut raw = r.clone();
            if let (Some(d), Some(s)) = (raw.get_mut(..2), query.get(..2)) {
                d.copy_from_slice(s);
            }
            out.push(raw);
        }
        out.push(shape(query, r));
        out
    }
}

/// One engine whose upstream is a loopback resolver replaying the fuzzer's bytes.
pub struct ResponseFuzzer {
    engine: Engine,
    rt: tokio::runtime::Runtime,
    script: Arc<Mutex<Script>>,
    n: u32,
}

impl ResponseFuzzer {
    /// # Panics
    /// If the loopback sockets, the fixed configuration or the runtime cannot be set up (not
    /// input-dependent).
    pub fn new() -> ResponseFuzzer {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let script = Arc::new(Mutex::new(Script::default()));
        let server = rt.block_on(serve(script.clone()));
        let cfg = Dns64Config {
            upstreams: vec![server],
            allow: vec!["2001:db8:1::/64".into()],
            // Every reply arrives at once, yet some inputs leave the engine waiting for its
            // timeout (not yet understood which): keep it short so a run stays quick.
            upstream_timeout_ms: 50,
            query_timeout_ms: 100,
            rate_limit: RateLimit {
                qps: 0,
                ..RateLimit::default()
            },
            ..Dns64Config::default()
        };
        let settings = cfg.validate().expect("fixed configuration is valid");
        ResponseFuzzer {
            engine: Engine::new(settings, vec![server]),
            rt,
            script,
            n: 0,
        }
    }

    /// Asks one query whose upstream replies come from `data`.
    ///
    /// # Panics
    /// When the answer breaks a property: longer than the client's UDP limit, not a response
    /// with the query's ID and question, not parseable, or (for AAAA without CD) carrying an
    /// AAAA record of the exclusion set (RFC 6147 §5.1.4). A panic is the fuzzer's finding.
    pub fn response(&mut self, data: &[u8]) {
        let (Some(&ctl), Some(l)) = (data.first(), data.get(1..3)) else {
            return;
        };
        let rest = &data[3..];
        let cut = usize::from(u16::from_be_bytes([l[0], l[1]])).min(rest.len());
        if let Ok(mut s) = self.script.lock() {
            *s = Script {
                replies: [rest[..cut].to_vec(), rest[cut..].to_vec()],
                raw: ctl & 0x20 != 0,
                asked: 0,
            };
        }
        // A fresh name each time, so the cache never answers in place of the upstream.
        self.n = self.n.wrapping_add(1);
        let (qtype, name) = match ctl & 3 {
            0 => (28u16, format!("q{}.fuzz.example.", self.n)),
            1 => (1, format!("q{}.fuzz.example.", self.n)),
            2 => (16, format!("q{}.fuzz.example.", self.n)),
            _ => {
                // A synthesized address's reverse name: the PTR is asked for in-addr.arpa.
                let a = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, (self.n & 0xffff) as u16);
                let mut s = String::new();
                for b in a.octets().iter().rev() {
                    s.push_str(&format!("{:x}.{:x}.", b & 15, b >> 4));
                }
                (12, s + "ip6.arpa.")
            }
        };
        let (edns, cd, dnssec_ok) = (ctl & 4 != 0, ctl & 8 != 0, ctl & 0x10 != 0);
        let mut q = Vec::new();
        q.extend_from_slice(&(self.n as u16).to_be_bytes());
        q.extend_from_slice(&[0x01, if cd { 0x10 } else { 0 }, 0, 1, 0, 0, 0, 0, 0]);
        q.push(u8::from(edns));
        for label in name.split('.').filter(|l| !l.is_empty()) {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        if edns {
            // OPT: UDP payload 1232, DO as asked.
            q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0]);
            q.extend_from_slice(&[if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
        }
        let limit = if edns { 1232 } else { 512 };
        let src: SocketAddr = "[2001:db8:1::2]:5353".parse().expect("fixed");
        let mut out = vec![0u8; limit];
        let answer = match self.engine.admit(&q, src, &mut out, true) {
            Admit::Answer(n) => Some(out[..n].to_vec()),
            Admit::Drop => None,
            Admit::Slow { udp_limit } => {
                assert_eq!(udp_limit, limit, "UDP limit of our own query");
                self.rt.block_on(super::super::hickory_adapter::resolve_udp(
                    &self.engine,
                    &q,
                    src,
                    udp_limit,
                ))
            }
        };
        let Some(a) = answer else {
            panic!("no answer to a well-formed query from an allowed client");
        };
        check(&q, &a, limit, qtype, cd);
    }
}

/// The properties of an answer `a` to our query `q` (see [`ResponseFuzzer::response`]).
fn check(q: &[u8], a: &[u8], limit: usize, qtype: u16, cd: bool) {
    assert!(a.len() <= limit, "answer of {} bytes over {limit}", a.len());
    assert!(a.len() >= 12, "answer shorter than a header");
    assert_eq!(a[..2], q[..2], "answer does not carry the query ID");
    assert!(a[2] & 0x80 != 0, "answer is not a response");
    let m = match Message::from_vec(a) {
        Ok(m) => m,
        Err(e) => panic!("our answer does not parse: {e}"),
    };
    let qm = Message::from_vec(q).expect("our own query parses");
    assert_eq!(
        m.queries, qm.queries,
        "answer's question is not the query's"
    );
    if qtype == 28 && !cd && !m.metadata.truncation {
        for r in &m.answers {
            if let RData::AAAA(x) = &r.data {
                let o = x.0.octets();
                assert!(
                    o[..10] != [0; 10] || o[10..12] != [0xff, 0xff],
                    "AAAA {} of the exclusion set ::ffff:0:0/96 returned",
                    x.0
                );
            }
        }
    }
}

impl Default for ResponseFuzzer {
    fn default() -> Self {
        Self::new()
    }
}

/// Starts the loopback resolver (UDP, and TCP on the same port when free) on the runtime.
async fn serve(script: Arc<Mutex<Script>>) -> SocketAddr {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("loopback UDP socket");
    let addr = udp.local_addr().expect("bound address");
    let s = script.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let replies = s
                .lock()
                .map(|mut s| s.answer(&buf[..n]))
                .unwrap_or_default();
            for r in replies {
                let _ = udp.send_to(&r, from).await;
            }
        }
    });
    // TCP (after a truncated reply): the same script, length-prefixed.
    if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
        tokio::spawn(async move {
            while let Ok((mut c, _)) = tcp.accept().await {
                let s = script.clone();
                tokio::spawn(async move {
                    let mut lb = [0u8; 2];
                    if c.read_exact(&mut lb).await.is_err() {
                        return;
                    }
                    let mut qb = vec![0u8; usize::from(u16::from_be_bytes(lb))];
                    if c.read_exact(&mut qb).await.is_err() {
                        return;
                    }
                    let replies = s.lock().map(|mut s| s.answer(&qb)).unwrap_or_default();
                    // One reply per connection: the shaped one (the raw one would be read first).
                    if let Some(r) = replies.last() {
                        let len = u16::try_from(r.len()).unwrap_or(u16::MAX);
                        let mut f = len.to_be_bytes().to_vec();
                        f.extend_from_slice(&r[..usize::from(len)]);
                        let _ = c.write_all(&f).await;
                    }
                });
            }
        });
    }
    addr
}
