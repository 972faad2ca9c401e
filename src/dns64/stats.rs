//! DNS64 counters: one named counter per outcome, as array indexes (no allocation on the packet
//! path). Every dropped or refused query lands in exactly one of them.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident => $label:literal, $doc:literal;)*) => {
        /// A DNS64 counter.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Counter {
            $(#[doc = $doc] $name,)*
        }
        impl Counter {
            /// Every counter, in index order.
            pub const ALL: &'static [Counter] = &[$(Counter::$name,)*];
            /// The metric label.
            pub fn label(self) -> &'static str {
                match self { $(Counter::$name => $label,)* }
            }
        }
    };
}

counters! {
    Queries => "queries", "Queries received (UDP and TCP).";
    CacheHits => "cache_hits", "Answered from the cache.";
    Coalesced => "coalesced", "Cache misses that waited for an identical query already in flight instead of asking the upstream.";
    Synthesized => "synthesized", "Answers with synthesized AAAA records (RFC 6147 §5.1.7).";
    ExcludedAaaa => "excluded_aaaa", "AAAA records removed because they lie in the exclusion set (§5.1.4).";
    PtrCname => "ptr_cname", "PTR queries answered with a CNAME into in-addr.arpa (§5.3.1).";
    Ipv4Only => "ipv4only_arpa", "ipv4only.arpa answered locally (RFC 8880).";
    Refused => "refused_acl", "Clients outside the ACL, answered REFUSED.";
    RateLimited => "rate_limited", "Queries dropped by the per-prefix rate limit.";
    Malformed => "malformed", "Queries that could not be parsed (FORMERR or dropped).";
    NotQuery => "not_query", "Messages with QR set or an opcode other than QUERY.";
    BadClass => "bad_class", "Queries with a class other than IN (REFUSED).";
    Overload => "overload", "Queries dropped because max_inflight upstream queries were pending.";
    Truncated => "truncated", "UDP answers sent with TC set because they did not fit.";
    ServFail => "servfail", "SERVFAIL sent because no upstream gave a usable answer in time.";
    DeadlineExceeded => "deadline_exceeded", "Client queries whose overall deadline (query_timeout_ms) passed: answered SERVFAIL.";
    UpstreamQueries => "upstream_queries", "Queries sent to an upstream resolver (each failover attempt counts).";
    UpstreamTimeout => "upstream_timeout", "Upstream queries that timed out.";
    UpstreamConnectError => "upstream_connect_error", "Upstream sockets that could not be opened or connected (no route, connection refused).";
    UpstreamNetError => "upstream_net_error", "Upstream send/receive errors (ICMP unreachable, reset).";
    UpstreamGarbage => "upstream_garbage", "Upstream datagrams that did not answer our query.";
    UpstreamServfail => "upstream_servfail", "Upstream SERVFAIL answers (the next upstream is tried).";
    UpstreamRefused => "upstream_refused", "Upstream REFUSED answers (a failure: the next upstream is tried, never passed on).";
    UpstreamFailover => "upstream_failover", "Queries retried on the next upstream.";
    UpstreamTcpRetry => "upstream_tcp_retry", "Truncated upstream answers retried over TCP.";
    TcpRefused => "tcp_refused", "TCP connections closed at once: tcp_max_connections or the per-client bound reached.";
    SendError => "send_error", "Answers that could not be sent to the client.";
}

/// The counter array.
#[derive(Debug, Default)]
pub struct Stats {
    c: [AtomicU64; Counter::ALL.len()],
    /// Results and latency of resolved queries.
    pub resolved: Resolved,
}

impl Stats {
    /// Adds one.
    #[inline]
    pub fn inc(&self, c: Counter) {
        self.c[c as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Reads one.
    pub fn get(&self, c: Counter) -> u64 {
        self.c[c as usize].load(Ordering::Relaxed)
    }

    /// All counters with their labels.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Counter::ALL
            .iter()
            .map(|c| (c.label(), self.get(*c)))
            .collect()
    }
}

/// How a resolved (slow-path) query was answered: the `result` label of
/// `nat64d_dns64_queries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum QueryResult {
    /// NOERROR with at least one AAAA record inside a Pref64::/n (RFC 6147 §5.1.7).
    Synthesized,
    /// NOERROR relayed without synthesis (real AAAA, other types, NODATA).
    Passed,
    /// REFUSED.
    Refused,
    /// NXDOMAIN.
    Nxdomain,
    /// SERVFAIL.
    Servfail,
    /// FORMERR.
    Formerr,
    /// Any other RCODE (NOTIMP, BADVERS...).
    Other,
}

impl QueryResult {
    /// Every result, in index order.
    pub const ALL: [QueryResult; 7] = [
        QueryResult::Synthesized,
        QueryResult::Passed,
        QueryResult::Refused,
        QueryResult::Nxdomain,
        QueryResult::Servfail,
        QueryResult::Formerr,
        QueryResult::Other,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            QueryResult::Synthesized => "synthesized",
            QueryResult::Passed => "passed",
            QueryResult::Refused => "refused",
            QueryResult::Nxdomain => "nxdomain",
            QueryResult::Servfail => "servfail",
            QueryResult::Formerr => "formerr",
            QueryResult::Other => "other",
        }
    }

    /// The result for an answer with RCODE `rcode` (RFC 1035 §4.1.1); `synthesized`: it holds
    /// a synthesized AAAA.
    pub fn of(rcode: u8, synthesized: bool) -> QueryResult {
        match rcode {
            0 if synthesized => QueryResult::Synthesized,
            0 => QueryResult::Passed,
            1 => QueryResult::Formerr,
            2 => QueryResult::Servfail,
            3 => QueryResult::Nxdomain,
            5 => QueryResult::Refused,
            _ => QueryResult::Other,
        }
    }
}

/// Upper bounds (seconds) of the resolution latency histogram.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Results and latency of resolved queries (not the cache-hit fast path, which is counted by
/// `cache_hits`). Written once per resolved query, read by a scrape.
#[derive(Debug, Default)]
pub struct Resolved {
    results: [AtomicU64; 7],
    /// Per bucket (not cumulative); the last slot is +Inf.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl Resolved {
    /// Counts one resolved query.
    pub fn observe(&self, r: QueryResult, elapsed: std::time::Duration) {
        self.results[r as usize].fetch_add(1, Ordering::Relaxed);
        let s = elapsed.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The count of `r`.
    pub fn result(&self, r: QueryResult) -> u64 {
        self.results[r as usize].load(Ordering::Relaxed)
    }

    /// The histogram: (sum in seconds, count, cumulative (upper bound, count) per bucket).
    pub fn histogram(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut acc = 0u64;
        let mut out = Vec::with_capacity(LATENCY_BUCKETS.len() + 1);
        for (i, b) in self.buckets.iter().enumerate() {
            acc += b.load(Ordering::Relaxed);
            out.push((
                LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY),
                acc,
            ));
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, acc, out)
    }
}
