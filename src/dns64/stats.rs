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
