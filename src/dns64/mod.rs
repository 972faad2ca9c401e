//! The DNS64 server (RFC 6147): listens on UDP and TCP, answers from a cache or resolves through
//! the upstream resolvers, synthesizing AAAA records with the core's [`nat64_core::dns64`] rules.
//!
//! Layout:
//! - [`config`] — the `[dns64]` table.
//! - `udp`: one thread per core, sharing one socket per listen address (or, with
//!   `udp_reuseport`, each with its own `SO_REUSEPORT` socket), reading and answering up to 32
//!   datagrams per system call (`recvmmsg`/`sendmmsg`). The
//!   fast path (ACL, rate limit, cache hit) runs on that thread without allocating; misses go to
//!   the tokio runtime, which answers on the same socket.
//! - `hickory_adapter`: the only file that knows hickory: full parsing and the resolution steps.
//! - `tcp`: DNS over TCP with bounded connections (total and per client), an idle timeout, and
//!   the connection closed after an unparseable message (FORMERR first).
//! - `upstream`: the resolver client; `cache`: answers as bytes; `stats`: counters.
//!
//! Entry points: [`serve`] (runs until a shutdown signal) or [`Dns64Server::start`] /
//! [`Dns64Server::shutdown`] with [`Dns64Server::local_addrs`] for tests on port 0.

pub mod cache;
pub mod config;
mod hickory_adapter;
pub mod service;
pub mod stats;
mod tcp;
mod udp;
pub mod upstream;

pub use config::{ConfigError, Dns64Config, RateLimit, Settings};
pub use stats::{Counter, Stats};

use cache::{make_key, Cache, BIT_CD, BIT_DO, BIT_EDNS, BIT_NOSYNTH, KEY_LEN};
use nat64_core::dns64::ratelimit::{prefix_key, RateLimiter};
use nat64_core::dns64::wire::{self, flags, WireError, MAX_NAME};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use upstream::UpstreamPool;

const LIMITER_SHARDS: usize = 16;

/// Shared state of one DNS64 server.
pub(crate) struct Engine {
    pub settings: Settings,
    pub stats: Arc<Stats>,
    pub cache: Cache,
    pub upstream: UpstreamPool,
    /// Rate limiters, sharded by client prefix (so threads rarely meet on one lock).
    pub limiters: Box<[Mutex<RateLimiter>]>,
    pub inflight: Arc<tokio::sync::Semaphore>,
    pub epoch: Instant,
    /// Cache misses being resolved, by cache key: identical ones wait for the first's answer.
    pub pending: Mutex<Pending>,
}

/// The in-flight table: cache key → the answer, once the first query has it.
pub(crate) type Pending =
    std::collections::HashMap<Box<[u8]>, tokio::sync::watch::Receiver<Option<Arc<[u8]>>>>;

/// What the fast path decided for one query.
pub(crate) enum Admit {
    /// An answer of this length is in the output buffer.
    Answer(usize),
    /// Nothing to send (counted).
    Drop,
    /// Needs resolution; the UDP size limit for the answer.
    Slow { udp_limit: usize },
}

impl Engine {
    /// An engine for validated `settings`, asking `upstreams` (empty: every miss fails at once,
    /// which the request fuzzer uses to reach the slow path without a network).
    fn new(settings: config::Settings, upstreams: Vec<SocketAddr>) -> Engine {
        let stats = Arc::new(Stats::default());
        Engine {
            cache: Cache::new(settings.cache_size, settings.cache_max_ttl),
            upstream: UpstreamPool::new(upstreams, settings.upstream_timeout, stats.clone()),
            limiters: (0..LIMITER_SHARDS)
                .map(|_| {
                    let mut rl = settings.rate_limit;
                    rl.max_entries = rl.max_entries.div_ceil(LIMITER_SHARDS);
                    Mutex::new(RateLimiter::new(rl))
                })
                .collect(),
            inflight: Arc::new(tokio::sync::Semaphore::new(settings.max_inflight)),
            epoch: Instant::now(),
            pending: Mutex::default(),
            stats,
            settings,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The fast path: header checks, ACL, rate limit, cache. `out` must hold 64 KiB for TCP or
    /// the UDP limit; `udp` selects truncation.
    pub(crate) fn admit(&self, pkt: &[u8], src: SocketAddr, out: &mut [u8], udp: bool) -> Admit {
        self.stats.inc(Counter::Queries);
        // Messages that are not queries get nothing (never answer a response: no loops).
        if pkt.len() < 12 || pkt[2] & 0x80 != 0 {
            self.stats.inc(if pkt.len() < 12 {
                Counter::Malformed
            } else {
                Counter::NotQuery
            });
            return Admit::Drop;
        }
        let mut qname = [0u8; MAX_NAME];
        let parsed = wire::parse_query(pkt, &mut qname);
        // The ACL and the rate limit come before anything else, whatever the question looks
        // like, so no query reaches the slow path (and the upstream) from outside the ACL.
        if !self.settings.acl.allows(src.ip()) {
            self.stats.inc(Counter::Refused);
            return reply(wire::empty_reply(pkt, parsed.as_ref().ok(), 5, false, out));
        }
        if self.settings.rate_limit.qps > 0 {
            let now = self.now_ms();
            let k = prefix_key(&self.settings.rate_limit, src.ip());
            // Fibonacci hashing: the top bits of the product depend on every prefix bit.
            let h = ((k ^ (k >> 64)) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let shard = (h >> 60) as usize % self.limiters.len();
            let ok = self
                .limiters
                .get(shard)
                .and_then(|m| m.lock().ok())
                .is_none_or(|mut l| l.check(src.ip(), now));
            if !ok {
                self.stats.inc(Counter::RateLimited);
                return Admit::Drop;
            }
        }
        let q = match parsed {
            Ok(q) => q,
            // Legal but unusual: the full parser in the slow path handles it.
            Err(WireError::Compressed) => return Admit::Slow { udp_limit: 512 },
            Err(_) => {
                self.stats.inc(Counter::Malformed);
                return reply(wire::empty_reply(pkt, None, 1, false, out));
            }
        };
        // RFC 6891 §6.1.3: we speak EDNS version 0 only.
        if q.edns.is_some_and(|e| e.version != 0) {
            self.stats.inc(Counter::Malformed);
            return reply(wire::empty_reply(pkt, Some(&q), 16, false, out));
        }
        if q.opcode() != 0 {
            self.stats.inc(Counter::NotQuery);
            return reply(wire::empty_reply(pkt, Some(&q), 4, false, out));
        }
        // DEVIATION(RFC 6147 §5.1): other classes should be served as if no DNS64 were
        // configured; we refuse them rather than forward (CHAOS `version.bind` stays local).
        if q.qclass != 1 {
            self.stats.inc(Counter::BadClass);
            return reply(wire::empty_reply(pkt, Some(&q), 5, false, out));
        }
        let limit = if udp { wire::udp_limit(&q) } else { out.len() };
        let mut key = [0u8; KEY_LEN];
        let klen = make_key(
            &mut key,
            &qname[..q.qname_len],
            q.qtype,
            q.qclass,
            cache_bits(&q, self.settings.synth_acl.allows(src.ip())),
        );
        let Some(n) = self.cache.get(&key[..klen], out) else {
            return Admit::Slow { udp_limit: limit };
        };
        self.stats.inc(Counter::CacheHits);
        // The stored answer was for another query: take this one's ID, RD bit and name case.
        out[..2].copy_from_slice(&pkt[..2]);
        out[2] = (out[2] & !0x01) | (pkt[2] & 0x01);
        out[12..q.question_end].copy_from_slice(&pkt[12..q.question_end]);
        if n > limit {
            self.stats.inc(Counter::Truncated);
            return reply(wire::empty_reply(
                pkt,
                Some(&q),
                u16::from(out[3] & 0xf),
                true,
                out,
            ));
        }
        Admit::Answer(n)
    }
}

fn reply(n: Option<usize>) -> Admit {
    n.map_or(Admit::Drop, Admit::Answer)
}

/// The cache-key bits of a query.
pub(crate) fn cache_bits(q: &wire::QueryView, synthesize: bool) -> u8 {
    let mut b = if synthesize { 0 } else { BIT_NOSYNTH };
    if let Some(e) = q.edns {
        b |= BIT_EDNS;
        if e.dnssec_ok {
            b |= BIT_DO;
        }
    }
    if q.has(flags::CD) {
        b |= BIT_CD;
    }
    b
}

/// A running DNS64 server.
pub struct Dns64Server {
    engine: Arc<Engine>,
    addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    udp_threads: Vec<std::thread::JoinHandle<()>>,
    tcp: tcp::TcpServer,
}

impl std::fmt::Debug for Dns64Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns64Server")
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl Dns64Server {
    /// Validates `cfg`, binds every listen address (UDP and TCP on the same port; port 0 picks
    /// one) and starts serving. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// A configuration error (naming the key) or a socket that cannot be bound.
    pub async fn start(cfg: Dns64Config) -> anyhow::Result<Dns64Server> {
        let settings = cfg.validate()?;
        let upstreams = settings.upstreams.clone();
        let engine = Arc::new(Engine::new(settings, upstreams));
        let stop = Arc::new(AtomicBool::new(false));
        let mut addrs = Vec::new();
        let mut threads = Vec::new();
        let mut tcp_listeners = Vec::new();
        let rt = tokio::runtime::Handle::current();
        for want in &engine.settings.listen {
            // Port 0: the kernel picks a free UDP port, which may be taken for TCP; pick again
            // (bounded) rather than fail. A configured port fails at once.
            let mut attempt = 0;
            let (bound, sockets, tcp) = loop {
                let (bound, sockets) = udp::bind(
                    *want,
                    engine.settings.udp_threads,
                    engine.settings.udp_reuseport,
                )?;
                match std::net::TcpListener::bind(bound) {
                    Ok(tcp) => break (bound, sockets, tcp),
                    Err(e)
                        if want.port() == 0
                            && e.kind() == std::io::ErrorKind::AddrInUse
                            && attempt < 16 =>
                    {
                        attempt += 1;
                    }
                    Err(e) => anyhow::bail!("dns64: cannot bind TCP {bound}: {e}"),
                }
            };
            tcp.set_nonblocking(true)?;
            tcp_listeners.push(tokio::net::TcpListener::from_std(tcp)?);
            for s in sockets {
                threads.push(udp::spawn_worker(
                    s,
                    engine.clone(),
                    rt.clone(),
                    stop.clone(),
                )?);
            }
            addrs.push(bound);
        }
        let tcp = tcp::TcpServer::start(engine.clone(), tcp_listeners);
        tracing::info!(?addrs, "dns64 serving");
        Ok(Dns64Server {
            engine,
            addrs,
            stop,
            udp_threads: threads,
            tcp,
        })
    }

    /// The bound addresses (UDP and TCP share each), in `listen` order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.engine.stats.clone()
    }

    /// Stops serving and waits for the workers.
    pub async fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tcp.shutdown().await;
        let threads = self.udp_threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// Runs the DNS64 server until `shutdown` turns true (or its sender is dropped).
///
/// # Errors
/// As [`Dns64Server::start`].
pub async fn serve(
    cfg: Dns64Config,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let server = Dns64Server::start(cfg).await?;
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    server.shutdown().await;
    Ok(())
}

/// DNS64 request handling on untrusted bytes, for `fuzz/fuzz_targets/dns64_request.rs` and the
/// same property in `cargo test` (tests/fuzz_props.rs): a request goes through the fast path
/// (header checks, ACL, rate limit, cache) as a client inside and outside the ACL, and, where the
/// fast path hands it on, through the slow path (the full parser, local answers, synthesis
/// planning) with no upstream, so every miss ends in the failure answer without a network.
/// [`fuzzing::ResponseFuzzer`] does the same for upstream responses, with a loopback resolver
/// (`fuzz/fuzz_targets/dns64_response.rs`).
#[doc(hidden)]
pub mod fuzzing {
    use super::{config::Dns64Config, Admit, Engine};
    mod response;
    pub use response::ResponseFuzzer;
    use std::net::SocketAddr;

    /// One engine and runtime kept across requests (the cache and limiters keep their state).
    pub struct RequestFuzzer {
        engine: Engine,
        rt: tokio::runtime::Runtime,
        out: Vec<u8>,
    }

    impl RequestFuzzer {
        /// # Panics
        /// If the fixed test configuration or the runtime cannot be built (not input-dependent).
        pub fn new() -> RequestFuzzer {
            let cfg = Dns64Config {
                upstreams: vec!["192.0.2.53:53".parse().expect("fixed address")],
                allow: vec!["2001:db8:1::/64".into()],
                query_timeout_ms: 50,
                ..Dns64Config::default()
            };
            let settings = cfg.validate().expect("fixed configuration is valid");
            RequestFuzzer {
                engine: Engine::new(settings, Vec::new()),
                rt: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime"),
                out: vec![0; 65535],
            }
        }

        /// Handles `pkt` from an allowed and a refused client over UDP and TCP.
        ///
        /// # Panics
        /// When an answer breaks a property: longer than its buffer or the UDP limit, not a
        /// response, or not carrying the query's ID. A panic is the fuzzer's finding.
        pub fn request(&mut self, pkt: &[u8]) {
            let inside: SocketAddr = "[2001:db8:1::2]:5353".parse().expect("fixed");
            let outside: SocketAddr = "[2001:db8:2::2]:5353".parse().expect("fixed");
            for (src, udp) in [(inside, true), (inside, false), (outside, true)] {
                let limit = if udp { 4096 } else { self.out.len() };
                let answer = match self.engine.admit(pkt, src, &mut self.out[..limit], udp) {
                    Admit::Answer(n) => Some(self.out[..n].to_vec()),
                    Admit::Drop => None,
                    Admit::Slow { udp_limit } => {
                        assert!(src == inside, "a refused client reached the slow path");
                        let a = self.rt.block_on(super::hickory_adapter::resolve(
                            &self.engine,
                            pkt,
                            src,
                        ));
                        if let Some(a) = &a {
                            assert!(!udp || a.len() <= udp_limit.max(512), "UDP answer too long");
                        }
                        a
                    }
                };
                if let Some(a) = answer {
                    assert!(a.len() >= 12, "answer shorter than a header");
                    assert_eq!(a[..2], pkt[..2], "answer does not carry the query ID");
                    assert!(a[2] & 0x80 != 0, "answer is not a response");
                }
            }
        }
    }

    impl Default for RequestFuzzer {
        fn default() -> Self {
            Self::new()
        }
    }
}

#[cfg(test)]
mod alloc_tests {
    //! The fast path allocates nothing per query: a counting allocator (per thread) around
    //! `Engine::admit` for cache hits, REFUSED and malformed queries.
    use super::*;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Counting;
    thread_local! {
        static ALLOCS: Cell<usize> = const { Cell::new(0) };
    }
    // SAFETY: forwards to the system allocator unchanged; only counts calls.
    #[allow(unsafe_code)] // a counting allocator must implement the unsafe GlobalAlloc trait
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            ALLOCS.with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(p, l) }
        }
    }
    #[global_allocator]
    static A: Counting = Counting;

    fn allocs() -> usize {
        ALLOCS.with(|c| c.get())
    }

    fn engine() -> Engine {
        let cfg = Dns64Config {
            upstreams: vec!["127.0.0.1:9".parse().unwrap()],
            allow: vec!["127.0.0.0/8".into()],
            ..Dns64Config::default()
        };
        let settings = cfg.validate().unwrap();
        let stats = Arc::new(Stats::default());
        Engine {
            cache: Cache::new(1000, 3600),
            upstream: UpstreamPool::new(vec![], settings.upstream_timeout, stats.clone()),
            limiters: (0..LIMITER_SHARDS)
                .map(|_| Mutex::new(RateLimiter::new(settings.rate_limit)))
                .collect(),
            inflight: Arc::new(tokio::sync::Semaphore::new(1)),
            epoch: Instant::now(),
            pending: Mutex::default(),
            stats,
            settings,
        }
    }

    /// Query "a." AAAA, ID `id`.
    fn query(id: u16) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 28, 0, 1]);
        q
    }

    #[test]
    fn fast_path_does_not_allocate() {
        let e = engine();
        // The cached answer: a. AAAA 64:ff9b::102:304, TTL 300.
        let mut ans = vec![
            0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 1, b'a', 0, 0, 28, 0, 1,
        ];
        ans.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1, 0, 0, 1, 44, 0, 16]);
        ans.extend_from_slice(
            &"64:ff9b::1.2.3.4"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        let mut key = [0u8; KEY_LEN];
        let klen = make_key(&mut key, b"\x01a\x00", 28, 1, 0);
        e.cache.put(&key[..klen], &ans);
        let inside: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let outside: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        let mut out = vec![0u8; 4096];
        let queries: Vec<Vec<u8>> = (0..100).map(query).collect();
        // Warm up (the rate limiter's first bucket for this client).
        assert!(matches!(
            e.admit(&queries[0], inside, &mut out, true),
            Admit::Answer(_)
        ));
        // The counter sees allocations on this thread.
        let b = allocs();
        drop(std::hint::black_box(Vec::<u8>::with_capacity(8)));
        assert_eq!(allocs(), b + 1);
        let before = allocs();
        for q in &queries {
            assert!(
                matches!(e.admit(q, inside, &mut out, true), Admit::Answer(n) if n == ans.len())
            );
            assert_eq!(&out[..2], &q[..2]);
            assert!(matches!(
                e.admit(q, outside, &mut out, true),
                Admit::Answer(_)
            ));
            assert!(matches!(
                e.admit(&q[..14], inside, &mut out, true),
                Admit::Answer(12)
            ));
        }
        assert_eq!(allocs() - before, 0, "allocations on the fast path");
        assert_eq!(e.stats.get(Counter::CacheHits), 101);
        assert_eq!(e.stats.get(Counter::Refused), 100);
    }
}
