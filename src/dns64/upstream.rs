//! The upstream client: sends an encoded query to the configured recursive resolvers over UDP,
//! retries over TCP when the answer is truncated, and fails over to the next resolver on a
//! timeout, a failed connect, a network error, garbage, SERVFAIL or REFUSED, all within the
//! client query's one deadline. Every failure is counted by kind. REFUSED is never returned: a
//! resolver that refuses us is a failure (as BIND and Unbound treat it). No DNS library here:
//! messages are bytes, checked with the core's wire reads (ID, QR, and the question must match
//! what was sent).
//!
//! Each UDP query uses a fresh socket on a random port (RFC 5452 §9.2) so answers cannot be
//! spoofed by guessing one port.

use super::stats::{Counter, Stats};
use nat64_core::dns64::wire::{self, flags, MAX_NAME};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

/// Largest UDP answer we accept from an upstream (we advertise 1232, RFC 9715 style; a little
/// slack for servers that ignore it).
const MAX_UDP: usize = 4096;

/// Why no usable answer came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// No resolver answered in time (or the deadline passed).
    #[error("no upstream resolver answered in time")]
    Timeout,
    /// Every resolver that answered refused or failed (REFUSED, garbage, network errors).
    #[error("every upstream resolver refused or failed")]
    Failed,
}

/// What one resolver gave.
enum One {
    Answer(Vec<u8>),
    /// Silence until the attempt's time ran out.
    Timeout,
    /// Counted already: connect/network error, garbage.
    Failed,
}

/// The resolvers, with the index of the one that answered last (tried first).
#[derive(Debug)]
pub struct UpstreamPool {
    servers: Vec<SocketAddr>,
    per_server: Duration,
    preferred: AtomicUsize,
    stats: Arc<Stats>,
}

fn rcode(msg: &[u8]) -> u8 {
    msg.get(3).map_or(2, |b| b & 0x0f)
}

impl UpstreamPool {
    /// A pool over `servers` (at least one).
    pub fn new(servers: Vec<SocketAddr>, per_server: Duration, stats: Arc<Stats>) -> Self {
        UpstreamPool {
            servers,
            per_server,
            preferred: AtomicUsize::new(0),
            stats,
        }
    }

    /// Sends `query` (ID already random) and returns the first acceptable answer, or the last
    /// SERVFAIL answer if no resolver gave a better one. Each resolver gets `upstream_timeout`,
    /// cut short by `deadline`; no resolver is tried after it.
    ///
    /// # Errors
    /// [`UpstreamError::Timeout`] when no resolver answered in time, [`UpstreamError::Failed`]
    /// when those that answered refused or failed.
    pub async fn query(&self, query: &[u8], deadline: Instant) -> Result<Vec<u8>, UpstreamError> {
        let mut key = [0u8; MAX_NAME];
        let Ok(sent) = wire::parse_query(query, &mut key) else {
            return Err(UpstreamError::Failed);
        };
        let key = &key[..sent.qname_len];
        let n = self.servers.len();
        let start = self.preferred.load(Ordering::Relaxed) % n.max(1);
        let mut fallback: Option<Vec<u8>> = None;
        let mut failed = false;
        for i in 0..n {
            if Instant::now() >= deadline {
                break;
            }
            let idx = (start + i) % n;
            let server = self.servers[idx];
            if i > 0 {
                self.stats.inc(Counter::UpstreamFailover);
            }
            match self.query_one(server, query, &sent, key, deadline).await {
                One::Answer(ans) if rcode(&ans) == 2 => {
                    self.stats.inc(Counter::UpstreamServfail);
                    fallback = Some(ans);
                }
                One::Answer(ans) if rcode(&ans) == 5 => {
                    self.stats.inc(Counter::UpstreamRefused);
                    failed = true;
                }
                One::Answer(ans) => {
                    self.preferred.store(idx, Ordering::Relaxed);
                    return Ok(ans);
                }
                One::Failed => failed = true,
                One::Timeout => {}
            }
        }
        match fallback {
            Some(f) => Ok(f),
            None if failed => Err(UpstreamError::Failed),
            None => Err(UpstreamError::Timeout),
        }
    }

    async fn query_one(
        &self,
        server: SocketAddr,
        query: &[u8],
        sent: &wire::QueryView,
        key: &[u8],
        deadline: Instant,
    ) -> One {
        self.stats.inc(Counter::UpstreamQueries);
        let until = deadline.min(Instant::now() + self.per_server);
        let ans = match tokio::time::timeout_at(until, self.udp(server, query, sent, key)).await {
            Ok(r) => r,
            Err(_) => {
                self.stats.inc(Counter::UpstreamTimeout);
                return One::Timeout;
            }
        };
        let ans = match ans {
            One::Answer(a) => a,
            other => return other,
        };
        if ans
            .get(2)
            .is_some_and(|b| u16::from(*b) << 8 & flags::TC != 0)
        {
            self.stats.inc(Counter::UpstreamTcpRetry);
            let until = deadline.min(Instant::now() + self.per_server);
            return match tokio::time::timeout_at(until, self.tcp(server, query, sent, key)).await {
                Ok(r) => r,
                Err(_) => {
                    self.stats.inc(Counter::UpstreamTimeout);
                    One::Timeout
                }
            };
        }
        One::Answer(ans)
    }

    /// True if `ans` answers `sent`: same ID, QR set, same question.
    fn matches(&self, ans: &[u8], sent: &wire::QueryView, key: &[u8]) -> bool {
        let mut k2 = [0u8; MAX_NAME];
        // A response's question is read like a query's (ID, flags, one question).
        match wire::parse_query(ans, &mut k2) {
            Ok(v)
                if v.id == sent.id
                    && v.has(flags::QR)
                    && v.qtype == sent.qtype
                    && v.qclass == sent.qclass
                    && &k2[..v.qname_len] == key =>
            {
                true
            }
            _ => {
                self.stats.inc(Counter::UpstreamGarbage);
                false
            }
        }
    }

    async fn udp(
        &self,
        server: SocketAddr,
        query: &[u8],
        sent: &wire::QueryView,
        key: &[u8],
    ) -> One {
        let bind: SocketAddr = if server.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let sock = match UdpSocket::bind(bind).await {
            Ok(s) => s,
            Err(_) => return self.connect_failed(),
        };
        if sock.connect(server).await.is_err() {
            return self.connect_failed();
        }
        if let Err(e) = sock.send(query).await {
            // No route to the resolver shows up here on a connected UDP socket.
            return if matches!(
                e.kind(),
                std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::HostUnreachable
            ) {
                self.connect_failed()
            } else {
                self.stats.inc(Counter::UpstreamNetError);
                One::Failed
            };
        }
        let mut buf = vec![0u8; MAX_UDP];
        // Bounded by the caller's timeout; stray datagrams (wrong ID) are skipped.
        loop {
            match sock.recv(&mut buf).await {
                Ok(len) => {
                    if self.matches(&buf[..len], sent, key) {
                        buf.truncate(len);
                        return One::Answer(buf);
                    }
                }
                Err(_) => {
                    // ICMP port unreachable shows up here: this resolver is down.
                    self.stats.inc(Counter::UpstreamNetError);
                    return One::Failed;
                }
            }
        }
    }

    async fn tcp(
        &self,
        server: SocketAddr,
        query: &[u8],
        sent: &wire::QueryView,
        key: &[u8],
    ) -> One {
        let Ok(mut s) = TcpStream::connect(server).await else {
            return self.connect_failed();
        };
        let Ok(len) = u16::try_from(query.len()) else {
            return One::Failed;
        };
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(query);
        let mut lb = [0u8; 2];
        if s.write_all(&framed).await.is_err() || s.read_exact(&mut lb).await.is_err() {
            self.stats.inc(Counter::UpstreamNetError);
            return One::Failed;
        }
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lb))];
        if s.read_exact(&mut buf).await.is_err() {
            self.stats.inc(Counter::UpstreamNetError);
            return One::Failed;
        }
        if self.matches(&buf, sent, key) {
            One::Answer(buf)
        } else {
            One::Failed
        }
    }

    fn connect_failed(&self) -> One {
        self.stats.inc(Counter::UpstreamConnectError);
        One::Failed
    }
}
