//! The `[dns64]` configuration table and its validation into the core's [`Dns64Policy`].
//!
//! Every field has a default; unknown keys are refused. [`Dns64Config::validate`] turns the
//! strings into checked values, naming the key and the offending value on error.

use nat64_core::dns64::acl::Acl;
use nat64_core::dns64::net::{IpNet, Ipv4Net, Ipv6Net};
use nat64_core::dns64::normalize_name;
use nat64_core::dns64::ratelimit::RateLimitConfig;
use nat64_core::dns64::Dns64Policy;
use nat64_core::rfc6052::Prefix6052;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// DNS64 server settings (TOML table `[dns64]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Dns64Config {
    /// Addresses to serve on (UDP and TCP), `"addr"` (port 53) or `"addr:port"` / `"[v6]:port"`.
    /// Port 0 picks a free port (tests).
    #[serde(deserialize_with = "socket_addrs")]
    pub listen: Vec<SocketAddr>,
    /// Upstream recursive resolvers, tried in order with failover; same forms as `listen`.
    #[serde(deserialize_with = "socket_addrs")]
    pub upstreams: Vec<SocketAddr>,
    /// Per-upstream timeout for one query, in milliseconds.
    pub upstream_timeout_ms: u64,
    /// One overall deadline per client query, in milliseconds, shared by the AAAA and A steps
    /// and the failover between upstreams; SERVFAIL when it passes. Keep it below the clients'
    /// own timeout (5 s for the common stub resolvers).
    pub query_timeout_ms: u64,
    /// RFC 6052 prefixes (Pref64::/n) to synthesize into, e.g. `"64:ff9b::/96"`.
    pub prefixes: Vec<String>,
    /// RFC 6147 §5.1.4 exclusion set: AAAA records inside are treated as absent.
    pub exclude: Vec<String>,
    /// RFC 6147 §5.1.7 mapped ranges: only A records inside are synthesized.
    pub mapped: Vec<String>,
    /// RFC 6052 §3.1: no non-global IPv4 behind 64:ff9b::/96 (off only for labs).
    pub wkp_strict: bool,
    /// Client networks that get answers; everyone else gets REFUSED.
    pub allow: Vec<String>,
    /// Clients whose AAAA queries are synthesized (BIND's `clients`); the others (for example
    /// dual-stack networks) get plain forwarding. Default: everyone.
    pub synthesize_clients: Vec<String>,
    /// Per-client-prefix rate limit.
    pub rate_limit: RateLimit,
    /// Most cached answers.
    pub cache_size: usize,
    /// Longest time an answer stays cached, in seconds.
    pub cache_max_ttl: u32,
    /// Names (and subdomains) never synthesized.
    pub never_synthesize: Vec<String>,
    /// Names (and subdomains) synthesized even when they have AAAA records.
    pub always_synthesize: Vec<String>,
    /// Synthesize for every name even when AAAA records exist (off by default).
    pub synthesize_all: bool,
    /// RFC 6147 §5.1.2: treat SERVFAIL and other error RCODEs on AAAA as an empty answer.
    pub synthesize_on_error: bool,
    /// RFC 6147 §5.1.3: treat an AAAA timeout as an empty answer.
    pub synthesize_on_timeout: bool,
    /// RFC 6147 §5.1.8: send the A query together with the AAAA query (faster answers for
    /// IPv4-only names, one extra upstream query for names that have AAAA records).
    pub parallel_queries: bool,
    /// Synthesize even when the client set CD (it validates itself and will see a failure).
    pub break_dnssec: bool,
    /// Add Extended DNS Error 29 "Synthesized" (RFC 8914) to synthesized answers.
    pub edns_ede: bool,
    /// UDP worker threads per listen address; 0 = one per core.
    pub udp_threads: usize,
    /// How the UDP threads get their datagrams. `false` (default): the threads share one socket
    /// per address, so a query waits only while every thread is busy or descheduled. `true`:
    /// each thread has its own `SO_REUSEPORT` socket and the kernel hashes each client
    /// (address and port) to one of them, so a query waits whenever its thread is not running,
    /// even while another thread is idle: a longer tail on a loaded machine.
    pub udp_reuseport: bool,
    /// Datagrams per `recvmmsg`/`sendmmsg` call on Linux, at most 32 (1 = one `recvfrom`/`sendto`
    /// each).
    pub udp_batch: usize,
    /// Most queries being resolved upstream at once; beyond it queries are dropped (counted).
    pub max_inflight: usize,
    /// Idle timeout of a TCP client connection, in milliseconds.
    pub tcp_timeout_ms: u64,
    /// Identical cache misses in flight share one upstream query (off only to measure it).
    pub coalesce: bool,
    /// Most TCP client connections open at once; beyond it new ones are closed (counted).
    pub tcp_max_connections: usize,
    /// Most TCP connections open at once from one client address (counted when refused).
    pub tcp_max_connections_per_client: usize,
}

/// Rate limit per client prefix (`[dns64.rate_limit]`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    /// Sustained queries per second per client prefix; 0 turns the limit off.
    pub qps: u32,
    /// Queries allowed in a burst.
    pub burst: u32,
    /// IPv4 client prefix length.
    pub ipv4_prefix_len: u8,
    /// IPv6 client prefix length.
    pub ipv6_prefix_len: u8,
    /// Most client prefixes tracked.
    pub max_clients: usize,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            qps: 1000,
            burst: 2000,
            ipv4_prefix_len: 24,
            ipv6_prefix_len: 56,
            max_clients: 65536,
        }
    }
}

impl Default for Dns64Config {
    fn default() -> Self {
        Dns64Config {
            listen: vec![SocketAddr::from(([0u16; 8], 53))],
            upstreams: Vec::new(),
            upstream_timeout_ms: 1500,
            query_timeout_ms: 2500,
            prefixes: vec!["64:ff9b::/96".into()],
            exclude: vec!["::ffff:0:0/96".into()],
            mapped: vec!["0.0.0.0/0".into()],
            wkp_strict: true,
            allow: vec!["::1/128".into(), "127.0.0.0/8".into()],
            synthesize_clients: vec!["::/0".into(), "0.0.0.0/0".into()],
            rate_limit: RateLimit::default(),
            cache_size: 65536,
            cache_max_ttl: 86400,
            never_synthesize: Vec::new(),
            always_synthesize: Vec::new(),
            synthesize_all: false,
            synthesize_on_error: true,
            synthesize_on_timeout: true,
            parallel_queries: false,
            break_dnssec: false,
            edns_ede: true,
            udp_threads: 0,
            udp_reuseport: false,
            udp_batch: 32,
            max_inflight: 512,
            tcp_timeout_ms: 10_000,
            coalesce: true,
            tcp_max_connections: 1024,
            tcp_max_connections_per_client: 16,
        }
    }
}

/// Reads `"192.0.2.53"`, `"2001:db8::53"` (port 53) or `"192.0.2.53:5353"`, `"[2001:db8::53]:53"`.
fn socket_addrs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    let v: Vec<String> = Vec::deserialize(d)?;
    v.iter()
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{s:?}: expected an address, optionally with a port (192.0.2.53, [2001:db8::53]:53)"
                    ))
                })
        })
        .collect()
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dns64.{key} = {value:?}: {reason}")]
pub struct ConfigError {
    /// The key, e.g. `prefixes[1]`.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

fn err(key: String, value: &str, reason: impl ToString) -> ConfigError {
    ConfigError {
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// The checked settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Synthesis policy.
    pub policy: Dns64Policy,
    /// Client ACL.
    pub acl: Acl,
    /// Clients that get synthesis.
    pub synth_acl: Acl,
    /// Rate limit.
    pub rate_limit: RateLimitConfig,
    /// Listen addresses.
    pub listen: Vec<SocketAddr>,
    /// Upstreams.
    pub upstreams: Vec<SocketAddr>,
    /// Per-upstream timeout.
    pub upstream_timeout: Duration,
    /// Cache entries.
    pub cache_size: usize,
    /// Cache TTL cap.
    pub cache_max_ttl: u32,
    /// See [`Dns64Config::parallel_queries`].
    pub parallel_queries: bool,
    /// See [`Dns64Config::break_dnssec`].
    pub break_dnssec: bool,
    /// See [`Dns64Config::edns_ede`].
    pub edns_ede: bool,
    /// UDP threads (resolved from 0).
    pub udp_threads: usize,
    /// See [`Dns64Config::udp_reuseport`].
    pub udp_reuseport: bool,
    /// See [`Dns64Config::udp_batch`].
    pub udp_batch: usize,
    /// Slow-path concurrency bound.
    pub max_inflight: usize,
    /// TCP idle timeout.
    pub tcp_timeout: Duration,
    /// See [`Dns64Config::query_timeout_ms`].
    pub query_timeout: Duration,
    /// See [`Dns64Config::coalesce`].
    pub coalesce: bool,
    /// See [`Dns64Config::tcp_max_connections`].
    pub tcp_max_connections: usize,
    /// See [`Dns64Config::tcp_max_connections_per_client`].
    pub tcp_max_per_client: usize,
}

/// Parses `addr/len` as an RFC 6052 prefix.
///
/// # Errors
/// Syntax, or a prefix RFC 6052 §2.2 does not allow.
pub fn parse_prefix(s: &str) -> Result<Prefix6052, String> {
    let (a, l) = s
        .trim()
        .split_once('/')
        .ok_or("expected address/length, e.g. 64:ff9b::/96")?;
    let addr = a
        .parse()
        .map_err(|_| format!("{a:?} is not an IPv6 address"))?;
    let len = l
        .parse()
        .map_err(|_| format!("{l:?} is not a prefix length"))?;
    Prefix6052::new(addr, len).map_err(|e| e.to_string())
}

fn names(key: &str, list: &[String]) -> Result<Vec<String>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let n = normalize_name(s);
            let ok = n.len() <= 254
                && (n == "."
                    || n.trim_end_matches('.').split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && l.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    }));
            if ok {
                Ok(n)
            } else {
                Err(err(format!("{key}[{i}]"), s, "not a domain name"))
            }
        })
        .collect()
}

impl Dns64Config {
    /// Checks every value and builds the runtime [`Settings`].
    ///
    /// # Errors
    /// The first bad value, naming its key.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        if self.listen.is_empty() {
            return Err(err("listen".into(), "[]", "at least one address is needed"));
        }
        if self.upstreams.is_empty() {
            return Err(err(
                "upstreams".into(),
                "[]",
                "at least one upstream resolver is needed, e.g. [\"192.0.2.53:53\"]",
            ));
        }
        for (i, u) in self.upstreams.iter().enumerate() {
            let loops = self.listen.iter().any(|l| {
                l.port() == u.port()
                    && l.port() != 0
                    && (l.ip() == u.ip() || (l.ip().is_unspecified() && is_loopback(u.ip())))
            });
            if loops {
                return Err(err(
                    format!("upstreams[{i}]"),
                    &u.to_string(),
                    "this is one of our own listen addresses: queries would loop",
                ));
            }
        }
        let mut prefixes = Vec::new();
        for (i, s) in self.prefixes.iter().enumerate() {
            let p = parse_prefix(s).map_err(|r| err(format!("prefixes[{i}]"), s, r))?;
            if prefixes.contains(&p) {
                return Err(err(format!("prefixes[{i}]"), s, "listed twice"));
            }
            prefixes.push(p);
        }
        if prefixes.is_empty() {
            return Err(err(
                "prefixes".into(),
                "[]",
                "at least one prefix is needed",
            ));
        }
        let exclude = self
            .exclude
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse::<Ipv6Net>()
                    .map_err(|e| err(format!("exclude[{i}]"), s, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mapped = self
            .mapped
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse::<Ipv4Net>()
                    .map_err(|e| err(format!("mapped[{i}]"), s, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let allow = self
            .allow
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse::<IpNet>()
                    .map_err(|e| err(format!("allow[{i}]"), s, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let synth = self
            .synthesize_clients
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse::<IpNet>()
                    .map_err(|e| err(format!("synthesize_clients[{i}]"), s, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rl = self.rate_limit;
        if rl.ipv4_prefix_len > 32 || rl.ipv6_prefix_len == 0 || rl.ipv6_prefix_len > 128 {
            return Err(err(
                "rate_limit".into(),
                &format!("{}/{}", rl.ipv4_prefix_len, rl.ipv6_prefix_len),
                "prefix lengths must be 0-32 (IPv4) and 1-128 (IPv6)",
            ));
        }
        if self.upstream_timeout_ms == 0 {
            return Err(err("upstream_timeout_ms".into(), "0", "must be positive"));
        }
        if self.query_timeout_ms == 0 {
            return Err(err("query_timeout_ms".into(), "0", "must be positive"));
        }
        if self.tcp_max_connections == 0 || self.tcp_max_connections_per_client == 0 {
            return Err(err(
                if self.tcp_max_connections == 0 {
                    "tcp_max_connections".into()
                } else {
                    "tcp_max_connections_per_client".into()
                },
                "0",
                "must be positive (TCP is mandatory for DNS, RFC 7766)",
            ));
        }
        let policy = Dns64Policy {
            prefixes,
            exclude,
            mapped,
            wkp_strict: self.wkp_strict,
            synth_on_error: self.synthesize_on_error,
            synth_on_timeout: self.synthesize_on_timeout,
            synthesize_all: self.synthesize_all,
            never: names("never_synthesize", &self.never_synthesize)?,
            always: names("always_synthesize", &self.always_synthesize)?,
        };
        let udp_threads = if self.udp_threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.udp_threads
        };
        Ok(Settings {
            policy,
            acl: Acl::new(allow),
            synth_acl: Acl::new(synth),
            rate_limit: RateLimitConfig {
                qps: rl.qps,
                burst: rl.burst,
                v4_len: rl.ipv4_prefix_len,
                v6_len: rl.ipv6_prefix_len,
                max_entries: rl.max_clients,
            },
            listen: self.listen.clone(),
            upstreams: self.upstreams.clone(),
            upstream_timeout: Duration::from_millis(self.upstream_timeout_ms),
            cache_size: self.cache_size,
            cache_max_ttl: self.cache_max_ttl,
            parallel_queries: self.parallel_queries,
            break_dnssec: self.break_dnssec,
            edns_ede: self.edns_ede,
            udp_threads,
            udp_reuseport: self.udp_reuseport,
            udp_batch: self.udp_batch.max(1),
            max_inflight: self.max_inflight.max(1),
            tcp_timeout: Duration::from_millis(self.tcp_timeout_ms.max(1)),
            query_timeout: Duration::from_millis(self.query_timeout_ms),
            coalesce: self.coalesce,
            tcp_max_connections: self.tcp_max_connections,
            tcp_max_per_client: self.tcp_max_connections_per_client,
        })
    }
}

/// True if `a` is a loopback address (also `::ffff:127.x`).
pub fn is_loopback(a: IpAddr) -> bool {
    nat64_core::dns64::acl::normalize(a).is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Dns64Config, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn defaults_and_keys() {
        let c = parse("upstreams = [\"192.0.2.53\", \"2001:db8::53\", \"[::1]:5353\"]").unwrap();
        assert_eq!(
            c.upstreams,
            vec![
                "192.0.2.53:53".parse::<SocketAddr>().unwrap(),
                "[2001:db8::53]:53".parse().unwrap(),
                "[::1]:5353".parse().unwrap()
            ]
        );
        assert!(parse("upstreams = [\"nope\"]")
            .unwrap_err()
            .to_string()
            .contains("expected an address"));
        let s = c.validate().unwrap();
        assert_eq!(s.policy.prefixes, vec![Prefix6052::WKP]);
        assert!(s.policy.excluded("::ffff:1.2.3.4".parse().unwrap()));
        assert!(s.acl.allows("::1".parse().unwrap()));
        assert!(!s.acl.allows("2001:db8::1".parse().unwrap()));
        let full = parse(
            r#"
            listen = ["[::1]:0", "127.0.0.1:0"]
            upstreams = ["127.0.0.1:53", "[::1]:53"]
            upstream_timeout_ms = 500
            prefixes = ["64:ff9b::/96", "2001:db8:64::/48"]
            exclude = ["::ffff:0:0/96", "2001:db8:dead::/48"]
            mapped = ["192.0.2.0/24"]
            wkp_strict = false
            allow = ["2001:db8::/32", "::1/128"]
            synthesize_clients = ["2001:db8:64::/48"]
            cache_size = 10
            cache_max_ttl = 60
            never_synthesize = ["Corp.Example"]
            always_synthesize = ["cdn.example."]
            synthesize_all = false
            synthesize_on_error = false
            synthesize_on_timeout = false
            parallel_queries = true
            break_dnssec = true
            edns_ede = false
            udp_threads = 1
            udp_reuseport = true
            udp_batch = 1
            max_inflight = 8
            tcp_timeout_ms = 1000
            query_timeout_ms = 1200
            tcp_max_connections = 10
            tcp_max_connections_per_client = 2
            coalesce = false
            [rate_limit]
            qps = 5
            burst = 10
            ipv4_prefix_len = 32
            ipv6_prefix_len = 64
            max_clients = 100
            "#,
        )
        .unwrap();
        let s = full.validate().unwrap();
        assert_eq!(s.policy.prefixes.len(), 2);
        assert_eq!(s.policy.never, vec!["corp.example.".to_string()]);
        assert_eq!(s.rate_limit.qps, 5);
        assert!(!s.policy.synth_on_error);
        assert_eq!(s.query_timeout, Duration::from_millis(1200));
        assert_eq!((s.tcp_max_connections, s.tcp_max_per_client), (10, 2));
        assert!(!s.coalesce);
        assert!(s.udp_reuseport);
        // Shipped default: the threads share one socket (a shorter tail under load).
        assert!(!Dns64Config::default().udp_reuseport);
    }

    #[test]
    fn errors_name_the_key() {
        assert!(parse("upstream = []")
            .unwrap_err()
            .to_string()
            .contains("unknown field"));
        let c = parse("upstreams = [\"192.0.2.53:53\"]\nprefixes = [\"64:ff9b::/95\"]").unwrap();
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, "prefixes[0]");
        assert!(e.to_string().contains("length must be"), "{e}");
        let c = parse("upstreams = [\"192.0.2.53:53\"]\nexclude = [\"::ffff/96\"]").unwrap();
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, "exclude[0]");
        let c = parse("upstreams = [\"192.0.2.53:53\"]\nmapped = [\"2001:db8::/32\"]").unwrap();
        assert_eq!(c.validate().unwrap_err().key, "mapped[0]");
        let c = parse("upstreams = [\"192.0.2.53:53\"]\nnever_synthesize = [\"a..b\"]").unwrap();
        assert_eq!(c.validate().unwrap_err().key, "never_synthesize[0]");
        let c = parse("").unwrap();
        assert_eq!(c.validate().unwrap_err().key, "upstreams");
        let c = parse("upstreams = [\"192.0.2.53\"]\nquery_timeout_ms = 0").unwrap();
        assert_eq!(c.validate().unwrap_err().key, "query_timeout_ms");
        let c = parse("upstreams = [\"192.0.2.53\"]\ntcp_max_connections_per_client = 0").unwrap();
        assert_eq!(
            c.validate().unwrap_err().key,
            "tcp_max_connections_per_client"
        );
        let c =
            parse("listen = [\"[::]:53\"]\nupstreams = [\"192.0.2.1\", \"127.0.0.1\"]").unwrap();
        assert_eq!(c.validate().unwrap_err().key, "upstreams[1]");
    }
}
