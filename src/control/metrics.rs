//! Prometheus metrics: `GET /metrics` (text exposition written by `prometheus-client`) and
//! `GET /healthz` on `[metrics] listen`, and the [`Snapshot`] behind `nat64d stats`.
//!
//! `/metrics` negotiates its format ([`Format::negotiate`]): OpenMetrics 1.0 text, the crate's
//! own output, when the `Accept` header asks for `application/openmetrics-text` (Prometheus
//! does); otherwise the classic text format 0.0.4 that `promtool check metrics` and older tools
//! read, converted from the crate's output by [`openmetrics_to_text`].
//!
//! Nothing here is written per packet: the workers keep plain per-batch counters and publish
//! them once per wake-up ([`crate::stats`]); a scrape reads every worker's published values
//! and folds them (work bounded by workers × counters, plus the pool4 owner bytes and the NAT64
//! shard totals). The endpoint only reads: no request changes state or shows more than the
//! counters. It answers one request per connection (`Connection: close`), reads at most
//! [`MAX_REQUEST`] bytes within [`REQUEST_DEADLINE`], serves at most [`MAX_CONNECTIONS`] at once;
//! other paths get 404, other methods on the two paths 405.
#![deny(unsafe_code)]

use crate::dns64::stats::{Counter as DnsCounter, QueryResult, Stats as DnsStats};
use crate::stats::{Totals, WorkerStats, DIRECTIONS, PROTOCOLS};
use nat64_core::nat64::{Nat64, Proto};
use nat64_core::DropReason;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest request head read (request line and headers).
pub const MAX_REQUEST: usize = 8192;
/// Connections served at once; more are closed without an answer.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send its request head.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Time a client has to read the answer.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(10);

/// Reload outcomes (`nat64d_reloads_total{result}`), written by the main thread.
#[derive(Debug, Default)]
pub struct ReloadCounts {
    /// Applied completely.
    pub applied: AtomicU64,
    /// Applied, but some changed settings need a restart.
    pub partial: AtomicU64,
    /// Refused (the running configuration stays).
    pub refused: AtomicU64,
}

/// What a scrape or `nat64d stats` reads.
pub struct Sources {
    /// `siit` or `nat64`.
    pub mode: &'static str,
    /// Every worker's published counters.
    pub workers: Vec<Arc<WorkerStats>>,
    /// The workers' clock.
    pub epoch: Instant,
    /// Mode nat64: the tables.
    pub nat: Option<Arc<Nat64>>,
    /// The DNS64 server's counters, when it runs.
    pub dns64: Option<Arc<DnsStats>>,
    /// Reload outcomes.
    pub reloads: Arc<ReloadCounts>,
}

impl Sources {
    /// Workers that are gone, or busy without a wake-up for [`crate::stats::STALL_MS`].
    pub fn stuck_workers(&self) -> Vec<usize> {
        let now = crate::dataplane::now_ms(self.epoch).0;
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, w)| !w.healthy(now))
            .map(|(i, _)| i)
            .collect()
    }

    /// Every worker made progress or waits idle (the check of `/healthz` and the watchdog).
    pub fn healthy(&self) -> bool {
        self.stuck_workers().is_empty()
    }

    /// Reads everything once.
    pub fn snapshot(&self) -> Snapshot {
        let t = Totals::sum(self.workers.iter().map(|w| w.as_ref()));
        let mut translated = Vec::new();
        for (d, dir) in DIRECTIONS.iter().enumerate() {
            for (p, proto) in PROTOCOLS.iter().enumerate() {
                translated.push(Flow {
                    direction: dir,
                    protocol: proto,
                    packets: t.fwd_packets[d][p],
                    bytes: t.fwd_bytes[d][p],
                });
            }
        }
        let drops = DropReason::ALL
            .iter()
            .map(|r| (r.as_str(), t.drop_count(*r)))
            .collect();
        let nat64 = self.nat.as_ref().map(|n| {
            let c = n.counts();
            let pool = n.pool4();
            let mut pool4 = Vec::new();
            for ai in 0..pool.len() {
                for p in Proto::ALL {
                    pool4.push(PortUse {
                        address: pool.addr(ai).map(|a| a.to_string()).unwrap_or_default(),
                        protocol: p.as_str(),
                        in_use: pool.ports_in_use(ai, p) as u64,
                        size: pool.range(p).len() as u64,
                    });
                }
            }
            TableSnapshot {
                sessions: per_proto(c.sessions),
                bib: per_proto(c.bib),
                static_bib: c.static_bib as u64,
                fragments: c.fragments as u64,
                reassembling: c.reassembling as u64,
                held_fragments: c.held.held as u64,
                held_fragments_expired: c.held.expired,
                mapping_events_dropped: c.events_dropped,
                pool4,
            }
        });
        let dns64 = self.dns64.as_ref().map(|s| Dns64Snapshot {
            results: QueryResult::ALL
                .iter()
                .map(|r| (r.label(), s.resolved.result(*r)))
                .collect(),
            counters: DnsCounter::ALL
                .iter()
                .map(|c| (c.label(), s.get(*c)))
                .collect(),
            latency: s.resolved.histogram(),
        });
        let unhealthy = self.stuck_workers();
        Snapshot {
            mode: self.mode,
            version: env!("CARGO_PKG_VERSION"),
            workers: self.workers.len(),
            healthy: unhealthy.is_empty(),
            stuck_workers: unhealthy,
            received: t.rx,
            written: t.tx,
            translated,
            icmp_errors: t.icmp_errors,
            tun_read_errors: t.rx_errors,
            tun_write_errors: t.tx_errors,
            internal_errors: t.internal_errors,
            mss_clamped: DIRECTIONS
                .iter()
                .zip(t.mss_clamped)
                .map(|(d, n)| (*d, n))
                .collect(),
            drops,
            nat64,
            dns64,
            reloads: Reloads {
                applied: self.reloads.applied.load(Relaxed),
                partial: self.reloads.partial.load(Relaxed),
                refused: self.reloads.refused.load(Relaxed),
            },
        }
    }
}

fn per_proto(v: [usize; 3]) -> Vec<(&'static str, u64)> {
    Proto::ALL
        .iter()
        .map(|p| (p.as_str(), v[*p as usize] as u64))
        .collect()
}

/// Translated packets of one direction and protocol.
#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    /// `ipv6_to_ipv4` or `ipv4_to_ipv6`.
    pub direction: &'static str,
    /// `tcp`, `udp`, `icmp`, `other`.
    pub protocol: &'static str,
    /// Packets written.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Port use of one pool4 address and protocol.
#[derive(Debug, Clone, Serialize)]
pub struct PortUse {
    /// The pool4 address.
    pub address: String,
    /// `tcp`, `udp`, `icmp`.
    pub protocol: &'static str,
    /// Ports (ICMP identifiers) allocated.
    pub in_use: u64,
    /// Ports in the range.
    pub size: u64,
}

/// The NAT64 tables.
#[derive(Debug, Clone, Serialize)]
pub struct TableSnapshot {
    /// Sessions per protocol.
    pub sessions: Vec<(&'static str, u64)>,
    /// BIB entries per protocol.
    pub bib: Vec<(&'static str, u64)>,
    /// Static BIB entries.
    pub static_bib: u64,
    /// Datagrams in the fragment store.
    pub fragments: u64,
    /// ICMP messages being reassembled.
    pub reassembling: u64,
    /// TCP/UDP fragments held until their first fragment comes (RFC 6146 §3.4).
    pub held_fragments: u64,
    /// Held fragments whose first fragment never came (since start).
    pub held_fragments_expired: u64,
    /// Mapping-log events dropped.
    pub mapping_events_dropped: u64,
    /// Port use.
    pub pool4: Vec<PortUse>,
}

/// The DNS64 server.
#[derive(Debug, Clone, Serialize)]
pub struct Dns64Snapshot {
    /// Resolved queries by result.
    pub results: Vec<(&'static str, u64)>,
    /// Every DNS64 counter.
    pub counters: Vec<(&'static str, u64)>,
    /// Resolution latency: (sum in s, count, cumulative buckets).
    pub latency: (f64, u64, Vec<(f64, u64)>),
}

/// Reload outcomes.
#[derive(Debug, Clone, Serialize)]
pub struct Reloads {
    /// Applied completely.
    pub applied: u64,
    /// Applied; some settings need a restart.
    pub partial: u64,
    /// Refused.
    pub refused: u64,
}

/// Every counter at one moment (`nat64d stats`, and what a scrape encodes).
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// `siit` or `nat64`.
    pub mode: &'static str,
    /// nat64d's version.
    pub version: &'static str,
    /// Worker threads.
    pub workers: usize,
    /// Every worker made progress or waits idle.
    pub healthy: bool,
    /// Workers that did not.
    pub stuck_workers: Vec<usize>,
    /// Packets read from the TUN.
    pub received: u64,
    /// Packets written to the TUN.
    pub written: u64,
    /// Translated packets by direction and protocol.
    pub translated: Vec<Flow>,
    /// ICMP errors generated.
    pub icmp_errors: u64,
    /// Failed TUN reads.
    pub tun_read_errors: u64,
    /// Failed TUN writes.
    pub tun_write_errors: u64,
    /// Packets whose handling panicked.
    pub internal_errors: u64,
    /// SYNs whose TCP MSS option was clamped, by direction.
    pub mss_clamped: Vec<(&'static str, u64)>,
    /// Drops by reason (every reason).
    pub drops: Vec<(&'static str, u64)>,
    /// Mode nat64: the tables.
    pub nat64: Option<TableSnapshot>,
    /// The DNS64 server.
    pub dns64: Option<Dns64Snapshot>,
    /// Reload outcomes.
    pub reloads: Reloads,
}

impl Snapshot {
    /// The human table of `nat64d stats`: zero drop reasons are left out.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "nat64d {} mode {}: {} worker(s), {}",
            self.version,
            self.mode,
            self.workers,
            if self.healthy {
                "healthy".to_string()
            } else {
                format!("STUCK workers {:?}", self.stuck_workers)
            }
        );
        let _ = writeln!(
            s,
            "packets  received {}  written {}  icmp_errors {}  tun_read_errors {}  tun_write_errors {}  internal_errors {}",
            self.received, self.written, self.icmp_errors, self.tun_read_errors, self.tun_write_errors, self.internal_errors
        );
        let _ = writeln!(
            s,
            "tcp mss clamped {}",
            self.mss_clamped
                .iter()
                .map(|(d, n)| format!("{d}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let _ = writeln!(
            s,
            "{:<14} {:<6} {:>14} {:>16}",
            "translated", "proto", "packets", "bytes"
        );
        for f in &self.translated {
            let _ = writeln!(
                s,
                "{:<14} {:<6} {:>14} {:>16}",
                f.direction, f.protocol, f.packets, f.bytes
            );
        }
        let nz: Vec<_> = self.drops.iter().filter(|(_, n)| *n > 0).collect();
        let _ = writeln!(s, "drops ({} reasons, nonzero shown)", self.drops.len());
        for (r, n) in &nz {
            let _ = writeln!(s, "  {r:<32} {n:>14}");
        }
        if nz.is_empty() {
            let _ = writeln!(s, "  none");
        }
        if let Some(t) = &self.nat64 {
            let join = |v: &[(&str, u64)]| {
                v.iter()
                    .map(|(k, n)| format!("{k}={n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(s, "sessions {}", join(&t.sessions));
            let _ = writeln!(s, "bib      {} static={}", join(&t.bib), t.static_bib);
            let _ = writeln!(
                s,
                "fragments {}  reassembling {}  held {} (expired {})  mapping_events_dropped {}",
                t.fragments,
                t.reassembling,
                t.held_fragments,
                t.held_fragments_expired,
                t.mapping_events_dropped
            );
            for p in &t.pool4 {
                let _ = writeln!(
                    s,
                    "pool4 {:<15} {:<4} {:>6} of {:>6} ports in use",
                    p.address, p.protocol, p.in_use, p.size
                );
            }
        }
        if let Some(d) = &self.dns64 {
            let nz: Vec<String> = d
                .results
                .iter()
                .chain(d.counters.iter())
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| format!("{k}={n}"))
                .collect();
            let _ = writeln!(s, "dns64 {}", nz.join(" "));
        }
        let _ = writeln!(
            s,
            "reloads applied={} partial={} refused={}",
            self.reloads.applied, self.reloads.partial, self.reloads.refused
        );
        s
    }
}

/// The collector a scrape calls: one [`Snapshot`], encoded.
#[derive(Clone)]
pub struct Metrics(pub Arc<Sources>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> Result<(), std::fmt::Error> {
    let m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

/// A family with one label: `(label value, value)` pairs.
fn family(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    ty: MetricType,
    key: &str,
    vals: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, ty)?;
    for (k, v) in vals {
        let labels = [(key, *k)];
        let me = m.encode_family(&labels)?;
        match ty {
            MetricType::Counter => ConstCounter::new(*v).encode(me)?,
            _ => ConstGauge::new(i64::try_from(*v).unwrap_or(i64::MAX)).encode(me)?,
        }
    }
    Ok(())
}

impl Collector for Metrics {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.snapshot();
        {
            // A gauge of 1 (the Prometheus convention for build info; the OpenMetrics `info`
            // type is not understood by the Prometheus text format tools).
            let mut m = e.encode_descriptor(
                "nat64d_build_info",
                "Version and mode of the running daemon (always 1).",
                None,
                MetricType::Gauge,
            )?;
            let labels = [("version", s.version), ("mode", s.mode)];
            ConstGauge::new(1i64).encode(m.encode_family(&labels)?)?;
        }
        gauge(
            &mut e,
            "nat64d_workers",
            "Dataplane worker threads.",
            s.workers as i64,
        )?;
        gauge(
            &mut e,
            "nat64d_healthy",
            "1 while every worker made progress or waits idle (the /healthz check).",
            i64::from(s.healthy),
        )?;
        counter(
            &mut e,
            "nat64d_received_packets",
            "Packets read from the TUN.",
            s.received,
        )?;
        counter(
            &mut e,
            "nat64d_written_packets",
            "Packets written to the TUN (translated packets and ICMP errors).",
            s.written,
        )?;
        for (name, help, bytes) in [
            ("nat64d_translated_packets", "Translated packets written, by direction (family written) and protocol.", false),
            ("nat64d_translated_bytes", "Bytes of translated packets written (IP header included), by direction and protocol.", true),
        ] {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            for f in &s.translated {
                let labels = [("direction", f.direction), ("protocol", f.protocol)];
                let me = m.encode_family(&labels)?;
                ConstCounter::new(if bytes { f.bytes } else { f.packets }).encode(me)?;
            }
        }
        family(
            &mut e,
            "nat64d_dropped_packets",
            "Packets not translated, by reason (every DropReason; see docs/operations.md).",
            MetricType::Counter,
            "reason",
            &s.drops,
        )?;
        counter(
            &mut e,
            "nat64d_icmp_errors_generated",
            "ICMP errors the translator generated.",
            s.icmp_errors,
        )?;
        family(
            &mut e,
            "nat64d_tun_errors",
            "Failed TUN reads and writes (a failed write loses the packet).",
            MetricType::Counter,
            "op",
            &[("read", s.tun_read_errors), ("write", s.tun_write_errors)],
        )?;
        family(
            &mut e,
            "nat64d_tcp_mss_clamped",
            "SYNs whose TCP MSS option was lowered to fit the MTUs, by direction (family written).",
            MetricType::Counter,
            "direction",
            &s.mss_clamped,
        )?;
        counter(
            &mut e,
            "nat64d_internal_errors",
            "Packets whose handling panicked (a bug; the worker goes on).",
            s.internal_errors,
        )?;
        let drop = |r: DropReason| {
            s.drops
                .iter()
                .find(|(k, _)| *k == r.as_str())
                .map_or(0, |x| x.1)
        };
        family(
            &mut e,
            "nat64d_table_full_refusals",
            "New flows refused because a table was full (the drops table_full, pool_exhausted, fragment_store_full).",
            MetricType::Counter,
            "table",
            &[
                ("sessions", drop(DropReason::TableFull)),
                ("pool4", drop(DropReason::PoolExhausted)),
                ("fragments", drop(DropReason::FragmentStoreFull)),
            ],
        )?;
        if let Some(t) = &s.nat64 {
            family(
                &mut e,
                "nat64d_sessions",
                "NAT64 sessions, by protocol.",
                MetricType::Gauge,
                "protocol",
                &t.sessions,
            )?;
            family(
                &mut e,
                "nat64d_bib_entries",
                "NAT64 BIB entries (static included), by protocol.",
                MetricType::Gauge,
                "protocol",
                &t.bib,
            )?;
            gauge(
                &mut e,
                "nat64d_bib_static_entries",
                "Static BIB entries.",
                t.static_bib as i64,
            )?;
            gauge(
                &mut e,
                "nat64d_fragment_store_entries",
                "Datagrams held in the fragment store.",
                t.fragments as i64,
            )?;
            gauge(
                &mut e,
                "nat64d_reassembling_messages",
                "Fragmented ICMP messages being reassembled.",
                t.reassembling as i64,
            )?;
            gauge(
                &mut e,
                "nat64d_fragments_held",
                "TCP/UDP fragments held until their first fragment comes (RFC 6146 3.4).",
                t.held_fragments as i64,
            )?;
            counter(
                &mut e,
                "nat64d_fragments_held_expired",
                "Held fragments discarded because their first fragment did not come in time.",
                t.held_fragments_expired,
            )?;
            counter(
                &mut e,
                "nat64d_mapping_log_events_dropped",
                "Mapping-log events lost because the queue was full.",
                t.mapping_events_dropped,
            )?;
            for (name, help, size) in [
                (
                    "nat64d_pool4_ports_in_use",
                    "pool4 ports (ICMP identifiers) allocated, by address and protocol.",
                    false,
                ),
                (
                    "nat64d_pool4_ports",
                    "pool4 ports in the configured range, by address and protocol.",
                    true,
                ),
            ] {
                let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
                for p in &t.pool4 {
                    let labels = [("address", p.address.as_str()), ("protocol", p.protocol)];
                    let me = m.encode_family(&labels)?;
                    ConstGauge::new(
                        i64::try_from(if size { p.size } else { p.in_use }).unwrap_or(i64::MAX),
                    )
                    .encode(me)?;
                }
            }
        }
        if let Some(d) = &s.dns64 {
            family(
                &mut e,
                "nat64d_dns64_queries",
                "DNS64 queries resolved (cache misses), by result.",
                MetricType::Counter,
                "result",
                &d.results,
            )?;
            let get = |c: DnsCounter| {
                d.counters
                    .iter()
                    .find(|(k, _)| *k == c.label())
                    .map_or(0, |x| x.1)
            };
            family(
                &mut e,
                "nat64d_dns64_upstream_failures",
                "Upstream queries that failed, by kind.",
                MetricType::Counter,
                "kind",
                &[
                    ("timeout", get(DnsCounter::UpstreamTimeout)),
                    ("connect", get(DnsCounter::UpstreamConnectError)),
                    ("network", get(DnsCounter::UpstreamNetError)),
                    ("garbage", get(DnsCounter::UpstreamGarbage)),
                    ("servfail", get(DnsCounter::UpstreamServfail)),
                    ("refused", get(DnsCounter::UpstreamRefused)),
                ],
            )?;
            family(
                &mut e,
                "nat64d_dns64_events",
                "Every DNS64 counter (cache hits, ACL refusals, rate limiting, truncation...).",
                MetricType::Counter,
                "event",
                &d.counters,
            )?;
            let m = e.encode_descriptor(
                "nat64d_dns64_resolve_seconds",
                "Time to answer a DNS64 query that missed the cache.",
                None,
                MetricType::Histogram,
            )?;
            let (sum, count, buckets) = &d.latency;
            let mut m = m;
            m.encode_histogram::<NoLabelSet>(
                *sum,
                *count,
                buckets,
                None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
            )?;
        }
        family(
            &mut e,
            "nat64d_reloads",
            "Configuration reloads (SIGHUP or nat64d reload), by result.",
            MetricType::Counter,
            "result",
            &[
                ("applied", s.reloads.applied),
                ("partial", s.reloads.partial),
                ("refused", s.reloads.refused),
            ],
        )?;
        Ok(())
    }
}

/// The registry of a running daemon.
pub fn registry(src: Arc<Sources>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(Metrics(src)));
    r
}

/// The exposition formats `GET /metrics` serves, chosen by the scraper's `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text, as `prometheus-client` writes it (Prometheus asks for it).
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4 (`promtool check metrics`, curl, older
    /// scrapers), derived from the OpenMetrics text by [`openmetrics_to_text`].
    Text,
}

impl Format {
    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// Picks the format for an `Accept` header value (all `Accept` lines joined by `,`), as
    /// RFC 9110 §12.5.1 describes: the acceptable range with the highest weight wins, a named
    /// type beats a wildcard at equal weight, then the earlier range. OpenMetrics is served only
    /// when asked for by name (without a version, or 1.0.0 / 0.0.1, which this text satisfies);
    /// everything else, no header and nothing acceptable included, gets the classic text,
    /// the format every Prometheus-compatible tool reads.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let mut best: Option<((u16, bool), Format)> = None;
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = Some(1000);
            let mut version = None;
            for p in parts {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => q = weight(v),
                    "version" => version = Some(v),
                    _ => {}
                }
            }
            let (f, named) = match media.as_str() {
                "application/openmetrics-text"
                    if matches!(version, None | Some("1.0.0") | Some("0.0.1")) =>
                {
                    (Format::OpenMetrics, true)
                }
                "text/plain" if matches!(version, None | Some("0.0.4")) => (Format::Text, true),
                "text/*" | "*/*" => (Format::Text, false),
                _ => continue,
            };
            let Some(q) = q.filter(|q| *q > 0) else {
                continue;
            };
            if best.is_none_or(|(rank, _)| (q, named) > rank) {
                best = Some(((q, named), f));
            }
        }
        best.map_or(Format::Text, |(_, f)| f)
    }
}

/// An RFC 9110 §12.4.2 weight (`0`, `0.5`, `1.000`) in thousandths; `None` when malformed.
fn weight(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let milli = match int {
        "0" => frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0u16, |a, b| a * 10 + u16::from(b - b'0')),
        "1" if frac.bytes().all(|b| b == b'0') => 1000,
        _ => return None,
    };
    Some(milli)
}

/// The body of `GET /metrics` in format `f`.
pub fn render(r: &Registry, f: Format) -> String {
    let mut s = String::with_capacity(16 * 1024);
    if let Err(e) = prometheus_client::encoding::text::encode(&mut s, r) {
        tracing::warn!("metrics: encoding failed: {e}");
    }
    match f {
        Format::OpenMetrics => s,
        Format::Text => openmetrics_to_text(&s),
    }
}

/// The metadata of the family being converted.
#[derive(Default)]
struct Family<'a> {
    name: &'a str,
    help: Option<&'a str>,
    ty: Option<&'a str>,
    written: bool,
}

impl Family<'_> {
    /// The classic name and type: an OpenMetrics counter `x` has the samples `x_total`, and
    /// the classic format names the family after them (so do the Go client and promtool's
    /// lint); an info `x` has the sample `x_info` and becomes a gauge of that name; a type the
    /// classic format lacks (`unknown`, `stateset`, `gaugehistogram`) becomes `untyped`.
    fn classic(&self) -> (String, &'static str) {
        match self.ty {
            Some("counter") => (format!("{}_total", self.name), "counter"),
            Some("info") => (format!("{}_info", self.name), "gauge"),
            Some("gauge") => (self.name.to_string(), "gauge"),
            Some("histogram") => (self.name.to_string(), "histogram"),
            Some("summary") => (self.name.to_string(), "summary"),
            _ => (self.name.to_string(), "untyped"),
        }
    }

    fn write(&mut self, out: &mut String) {
        if self.written || self.name.is_empty() {
            return;
        }
        self.written = true;
        let (name, ty) = self.classic();
        if let Some(h) = self.help {
            out.push_str("# HELP ");
            out.push_str(&name);
            out.push(' ');
            classic_help(h, out);
            out.push('\n');
        }
        if self.ty.is_some() {
            let _ = writeln!(out, "# TYPE {name} {ty}");
        }
    }
}

/// Re-escapes an OpenMetrics HELP text (escapes `\\`, `\"`, `\n`) for the classic format, which
/// knows only `\\` and `\n` (a `\"` there is a parse error). A backslash that starts no escape
/// is taken literally.
fn classic_help(h: &str, out: &mut String) {
    let mut it = h.chars().peekable();
    while let Some(c) = it.next() {
        match (c, it.peek()) {
            ('\\', Some('\\')) | ('\\', Some('n')) => {
                out.push('\\');
                out.extend(it.next());
            }
            ('\\', Some('"')) => {
                out.push('"');
                it.next();
            }
            ('\\', _) => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
}

/// Where the label set of a sample line ends (the byte after `}`), quotes and escapes
/// respected; `None` when it is not closed.
fn labels_end(line: &str, open: usize) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, b) in line.bytes().enumerate().skip(open + 1) {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'}' if !quoted => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Converts OpenMetrics text (`prometheus-client`'s output) to the classic text format 0.0.4:
/// counter families are named with their `_total` samples, info families become gauges,
/// `# UNIT` lines, `_created` samples and exemplars are left out (the classic format has none),
/// timestamps go from seconds to milliseconds, and `# EOF` ends the input and is not copied.
/// Samples and label sets are otherwise copied as they are (both formats escape label values
/// alike). Work and output are linear in the input.
pub fn openmetrics_to_text(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    let mut fam = Family::default();
    for line in om.lines() {
        if line == "# EOF" {
            break;
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let (kind, rest) = meta.split_once(' ').unwrap_or((meta, ""));
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            if !matches!(kind, "HELP" | "TYPE" | "UNIT") {
                continue;
            }
            if name != fam.name {
                fam.write(&mut out);
                fam = Family {
                    name,
                    ..Family::default()
                };
            }
            match kind {
                "HELP" => fam.help = Some(text),
                "TYPE" => fam.ty = Some(text),
                _ => {}
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        fam.write(&mut out);
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let series_end = if line[name_end..].starts_with('{') {
            let Some(e) = labels_end(line, name_end) else {
                continue;
            };
            e
        } else {
            name_end
        };
        let name = &line[..name_end];
        let created = name.strip_prefix(fam.name).is_some_and(|s| s == "_created")
            && matches!(fam.ty, Some("counter" | "histogram" | "summary"));
        if created {
            continue;
        }
        // After the series: value, an optional timestamp, an optional `# exemplar`.
        let mut rest = line[series_end..].split_whitespace();
        let Some(value) = rest.next() else {
            continue;
        };
        out.push_str(&line[..series_end]);
        out.push(' ');
        out.push_str(value);
        if let Some(ts) = rest.next().filter(|t| *t != "#") {
            if let Ok(secs) = ts.parse::<f64>() {
                let _ = write!(out, " {}", (secs * 1000.0).round() as i64);
            }
        }
        out.push('\n');
    }
    fam.write(&mut out);
    out
}

/// One HTTP answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
    /// Send only the head (HEAD).
    pub head_only: bool,
    /// The body depends on the request's `Accept` header (`Vary: Accept`).
    pub negotiated: bool,
}

const TEXT: &str = "text/plain; charset=utf-8";

fn plain(status: u16, body: &str) -> Answer {
    Answer {
        status,
        content_type: TEXT,
        body: body.to_string(),
        head_only: false,
        negotiated: false,
    }
}

/// The value of a request header, every line of that name joined by `,` (RFC 9110 §5.3).
fn header(head: &str, name: &str) -> Option<String> {
    let mut v: Option<String> = None;
    for l in head.lines().skip(1) {
        let Some((k, val)) = l.split_once(':') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case(name) {
            let val = val.trim();
            v = Some(match v {
                Some(prev) => format!("{prev},{val}"),
                None => val.to_string(),
            });
        }
    }
    v
}

/// Routes one request head (everything up to the blank line).
pub fn route(head: &[u8], reg: &Registry, src: &Sources) -> Answer {
    let Ok(head) = std::str::from_utf8(head) else {
        return plain(400, "bad request\n");
    };
    let line = head.lines().next().unwrap_or("");
    let mut w = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (w.next(), w.next(), w.next(), w.next())
    else {
        return plain(400, "bad request line\n");
    };
    if !version.starts_with("HTTP/1.") {
        return plain(505, "HTTP/1.x only\n");
    }
    let path = target.split('?').next().unwrap_or("");
    let get = match method {
        "GET" => true,
        "HEAD" => false,
        _ if path == "/metrics" || path == "/healthz" => {
            return plain(405, "method not allowed: GET or HEAD\n")
        }
        _ => return plain(404, "not found\n"),
    };
    let mut a = match path {
        "/metrics" => {
            let f = Format::negotiate(header(head, "accept").as_deref());
            Answer {
                status: 200,
                content_type: f.content_type(),
                body: render(reg, f),
                head_only: false,
                negotiated: true,
            }
        }
        "/healthz" => {
            let stuck = src.stuck_workers();
            if stuck.is_empty() {
                plain(200, "ok\n")
            } else {
                plain(503, &format!("stuck workers: {stuck:?}\n"))
            }
        }
        _ => plain(404, "not found\n"),
    };
    a.head_only = !get;
    a
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// The bytes sent for `a`.
pub fn encode_answer(a: &Answer) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        a.status,
        reason(a.status),
        a.content_type,
        a.body.len(),
        match (a.status, a.negotiated) {
            (405, _) => "Allow: GET, HEAD\r\n",
            (_, true) => "Vary: Accept\r\n",
            _ => "",
        }
    )
    .into_bytes();
    if !a.head_only {
        out.extend_from_slice(a.body.as_bytes());
    }
    out
}

/// The metrics HTTP server on its own thread (a one-thread tokio runtime).
pub struct MetricsServer {
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `listen` and serves `src`.
    ///
    /// # Errors
    /// The address cannot be bound, or the thread cannot start.
    pub fn start(listen: SocketAddr, src: Arc<Sources>) -> Result<MetricsServer, String> {
        Self::serve(Self::bind(listen)?, src)
    }

    /// Binds `listen` (at start, before anything is changed).
    ///
    /// # Errors
    /// The address cannot be bound (the message names `metrics.listen`).
    pub fn bind(listen: SocketAddr) -> Result<std::net::TcpListener, String> {
        let l = std::net::TcpListener::bind(listen)
            .map_err(|e| format!("metrics.listen {listen}: {e}"))?;
        l.set_nonblocking(true)
            .map_err(|e| format!("metrics.listen {listen}: {e}"))?;
        Ok(l)
    }

    /// Serves `src` on `l` (from [`MetricsServer::bind`]).
    ///
    /// # Errors
    /// The thread cannot start.
    pub fn serve(l: std::net::TcpListener, src: Arc<Sources>) -> Result<MetricsServer, String> {
        let addr = l.local_addr().map_err(|e| format!("metrics.listen: {e}"))?;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || serve_loop(l, src, stop_rx))
            .map_err(|e| format!("metrics: cannot start its thread: {e}"))?;
        tracing::info!("metrics on http://{addr}/metrics");
        Ok(MetricsServer {
            stop,
            thread: Some(thread),
            addr,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_loop(
    l: std::net::TcpListener,
    src: Arc<Sources>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("metrics: cannot start its runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let l = match tokio::net::TcpListener::from_std(l) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("metrics: {e}");
                return;
            }
        };
        let reg = Arc::new(registry(src.clone()));
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let conn = tokio::select! {
                c = l.accept() => c,
                _ = stop.changed() => break,
            };
            let s = match conn {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::debug!("metrics: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Over the bound: closed at once (dropped), never queued.
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let (reg, src) = (reg.clone(), src.clone());
            tokio::spawn(async move {
                serve_one(s, &reg, &src).await;
                drop(permit);
            });
        }
    });
}

async fn serve_one(mut s: tokio::net::TcpStream, reg: &Registry, src: &Sources) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut n = 0;
    let head_end = loop {
        if let Some(i) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            break Some(i);
        }
        if n == buf.len() {
            break None;
        }
        match tokio::time::timeout(REQUEST_DEADLINE, s.read(&mut buf[n..])).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(k)) => n += k,
        }
    };
    let a = match head_end {
        Some(i) => route(&buf[..i], reg, src),
        None => plain(431, "request head too large\n"),
    };
    let bytes = encode_answer(&a);
    let _ = tokio::time::timeout(ANSWER_DEADLINE, async {
        s.write_all(&bytes).await?;
        s.shutdown().await
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::BatchCounts;

    fn sources(n: usize) -> Sources {
        Sources {
            mode: "siit",
            workers: (0..n).map(|_| Arc::new(WorkerStats::default())).collect(),
            epoch: Instant::now(),
            nat: None,
            dns64: None,
            reloads: Arc::default(),
        }
    }

    fn sample(text: &str, name_and_labels: &str) -> Option<u64> {
        text.lines().find_map(|l| {
            l.strip_prefix(name_and_labels)?
                .strip_prefix(' ')?
                .parse()
                .ok()
        })
    }

    #[test]
    fn a_scrape_folds_every_worker() {
        let src = Arc::new(sources(2));
        let mut b = BatchCounts::default();
        b.fwd_packets[0][1] = 3;
        b.fwd_bytes[0][1] = 300;
        b.drops.count(DropReason::Truncated);
        src.workers[0].publish(&mut b);
        b.fwd_packets[0][1] = 4;
        b.fwd_bytes[0][1] = 400;
        b.drops.count(DropReason::Truncated);
        b.drops.count(DropReason::Truncated);
        src.workers[1].publish(&mut b);
        let reg = registry(src.clone());
        let text = render(&reg, Format::OpenMetrics);
        assert_eq!(
            sample(
                &text,
                "nat64d_translated_packets_total{direction=\"ipv6_to_ipv4\",protocol=\"udp\"}"
            ),
            Some(7),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                "nat64d_translated_bytes_total{direction=\"ipv6_to_ipv4\",protocol=\"udp\"}"
            ),
            Some(700)
        );
        assert_eq!(
            sample(&text, "nat64d_dropped_packets_total{reason=\"truncated\"}"),
            Some(3)
        );
        // Every drop reason is a label value, zero or not.
        for r in DropReason::ALL {
            let k = format!("nat64d_dropped_packets_total{{reason=\"{}\"}}", r.as_str());
            assert!(sample(&text, &k).is_some(), "{k} missing");
        }
        assert!(text.ends_with("# EOF\n"));
        // The classic text carries the same folded values.
        let plain = render(&reg, Format::Text);
        assert_eq!(
            sample(&plain, "nat64d_dropped_packets_total{reason=\"truncated\"}"),
            Some(3),
            "{plain}"
        );
    }

    #[test]
    fn openmetrics_converts_to_the_classic_text_format() {
        // Written by hand from the OpenMetrics 1.0 specification (counter samples `_total`,
        // `_created`, `# UNIT`, exemplars after ` # `, timestamps in seconds, `# EOF`) and the
        // expected output from the text format 0.0.4 (HELP/TYPE named like the samples, only
        // `\\` and `\n` escaped in HELP, timestamps in milliseconds).
        let om = concat!(
            "# HELP req_seconds Time \\\"spent\\\" \\\\ here,\\nthen.\n",
            "# TYPE req_seconds counter\n",
            "# UNIT req_seconds seconds\n",
            "req_seconds_total{path=\"/a\\\"} #b\",code=\"200\"} 7 # {trace_id=\"x\"} 1.0 1520879607.789\n",
            "req_seconds_created{path=\"/a\\\"} #b\",code=\"200\"} 1520430000.123\n",
            "# HELP up Up.\n",
            "# TYPE up gauge\n",
            "up 1 1520879607.789\n",
            "# TYPE lat histogram\n",
            "lat_bucket{le=\"0.5\"} 2\n",
            "lat_bucket{le=\"+Inf\"} 3\n",
            "lat_sum 1.5\n",
            "lat_count 3\n",
            "lat_created 1520430000\n",
            "# TYPE build info\n",
            "# HELP build Build.\n",
            "build_info{version=\"1\"} 1\n",
            "# TYPE odd unknown\n",
            "odd NaN\n",
            "# EOF\n",
            "after_eof 1\n",
        );
        let want = concat!(
            "# HELP req_seconds_total Time \"spent\" \\\\ here,\\nthen.\n",
            "# TYPE req_seconds_total counter\n",
            "req_seconds_total{path=\"/a\\\"} #b\",code=\"200\"} 7\n",
            "# HELP up Up.\n",
            "# TYPE up gauge\n",
            "up 1 1520879607789\n",
            "# TYPE lat histogram\n",
            "lat_bucket{le=\"0.5\"} 2\n",
            "lat_bucket{le=\"+Inf\"} 3\n",
            "lat_sum 1.5\n",
            "lat_count 3\n",
            "# HELP build_info Build.\n",
            "# TYPE build_info gauge\n",
            "build_info{version=\"1\"} 1\n",
            "# TYPE odd untyped\n",
            "odd NaN\n",
        );
        assert_eq!(openmetrics_to_text(om), want);
        // An unclosed label set is left out rather than copied half.
        assert_eq!(
            openmetrics_to_text("# TYPE g gauge\ng{a=\"1} 2\ng 3\n"),
            "# TYPE g gauge\ng 3\n"
        );
    }

    /// Every family the daemon can expose: two workers, the NAT64 tables, DNS64 with latency.
    fn full_sources() -> Sources {
        use nat64_core::nat64::Nat64Config;
        use nat64_core::pool6::Pool6;
        use nat64_core::rfc6052::Prefix6052;
        let Ok(pool6) = Pool6::new(vec![Prefix6052::WKP], false) else {
            panic!("pool6")
        };
        let mut c = Nat64Config::new(pool6, vec![std::net::Ipv4Addr::new(192, 0, 2, 1)], 7);
        c.enforce_rfc_minimums = false;
        let Ok(nat) = Nat64::new(c) else {
            panic!("nat64")
        };
        let dns = DnsStats::default();
        dns.resolved
            .observe(QueryResult::Synthesized, Duration::from_millis(3));
        dns.inc(DnsCounter::ALL[0]);
        let mut src = sources(2);
        src.mode = "nat64";
        src.nat = Some(Arc::new(nat));
        src.dns64 = Some(Arc::new(dns));
        src
    }

    /// `nat64d stats` shows the fragments held until their first fragment comes (RFC 6146
    /// §3.4), and those that expired, like the metrics `nat64d_fragments_held` and
    /// `nat64d_fragments_held_expired_total`.
    #[test]
    fn the_stats_table_shows_held_fragments() {
        let src = full_sources();
        let Some(nat) = src.nat.clone() else {
            panic!("nat")
        };
        let line = |src: &Sources| {
            let t = src.snapshot().table();
            t.lines()
                .find(|l| l.starts_with("fragments "))
                .map(str::to_string)
                .unwrap_or_default()
        };
        assert_eq!(
            line(&src),
            "fragments 0  reassembling 0  held 0 (expired 0)  mapping_events_dropped 0"
        );
        // A non-first UDP fragment (offset 8 bytes) from 198.51.100.9 to the pool4 address,
        // written byte by byte, header checksum by the RFC 1071 sum.
        let mut p = vec![
            0x45, 0, 0, 28, 0x12, 0x34, 0x00, 0x01, 64, 17, 0, 0, 198, 51, 100, 9, 192, 0, 2, 1,
        ];
        p.extend_from_slice(&[0xab; 8]);
        let mut sum: u32 = p[..20]
            .chunks(2)
            .map(|c| u32::from(c[0]) << 8 | u32::from(c[1]))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        let mut buf = vec![0u8; nat64_core::HEADROOM + 64];
        buf[nat64_core::HEADROOM..nat64_core::HEADROOM + p.len()].copy_from_slice(&p);
        let mut aux = vec![0u8; nat64_core::AUX_LEN];
        let mut ctx = nat64_core::Ctx::new(nat64_core::Timestamp(10), 1);
        let v = nat.translate(&mut ctx, &mut buf, nat64_core::HEADROOM, p.len(), &mut aux);
        assert_eq!(
            v,
            nat64_core::Verdict::Drop(nat64_core::DropReason::FragmentHeld)
        );
        assert_eq!(
            line(&src),
            "fragments 0  reassembling 0  held 1 (expired 0)  mapping_events_dropped 0"
        );
        nat.expire(nat64_core::Timestamp(10 + 2000));
        assert_eq!(
            line(&src),
            "fragments 0  reassembling 0  held 0 (expired 1)  mapping_events_dropped 0"
        );
    }

    #[test]
    fn the_classic_scrape_is_the_openmetrics_scrape_in_the_0_0_4_format() {
        let reg = registry(Arc::new(full_sources()));
        let om = render(&reg, Format::OpenMetrics);
        let plain = render(&reg, Format::Text);
        assert!(
            om.contains("# TYPE nat64d_dns64_resolve_seconds histogram"),
            "{om}"
        );
        assert!(
            !plain.contains("# EOF") && !plain.contains("# UNIT"),
            "{plain}"
        );
        // The same samples, in the same order.
        let samples = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(String::from)
                .collect()
        };
        assert_eq!(samples(&om), samples(&plain));
        // Each sample belongs to the family TYPEd just before it, as the classic parser and
        // `promtool check metrics` require: counters are named with `_total`, a histogram's
        // samples carry `_bucket`/`_sum`/`_count`; every family is typed once and has HELP.
        let mut seen = std::collections::HashSet::new();
        let mut cur: Option<(String, String)> = None;
        let mut help = None;
        for l in plain.lines() {
            if let Some(r) = l.strip_prefix("# HELP ") {
                help = r.split(' ').next().map(String::from);
            } else if let Some(r) = l.strip_prefix("# TYPE ") {
                let (n, t) = r.split_once(' ').unwrap_or((r, ""));
                assert_eq!(help.as_deref(), Some(n), "HELP before TYPE {n}");
                assert!(seen.insert(n.to_string()), "{n} typed twice");
                if t == "counter" {
                    assert!(n.ends_with("_total"), "counter {n}");
                }
                cur = Some((n.to_string(), t.to_string()));
            } else {
                let name = l.split(['{', ' ']).next().unwrap_or("");
                let Some((n, t)) = &cur else {
                    panic!("sample before any TYPE: {l}")
                };
                let ok = name == n
                    || (t == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| name.strip_prefix(n.as_str()) == Some(s)));
                assert!(ok, "{l} is not of family {n} ({t})");
            }
        }
        for f in [
            "nat64d_translated_packets_total",
            "nat64d_dropped_packets_total",
            "nat64d_sessions",
            "nat64d_pool4_ports_in_use",
            "nat64d_dns64_queries_total",
            "nat64d_dns64_resolve_seconds",
            "nat64d_build_info",
            "nat64d_reloads_total",
        ] {
            assert!(seen.contains(f), "{f} missing from the classic scrape");
        }
    }

    #[test]
    fn the_format_follows_the_accept_header() {
        use Format::{OpenMetrics as Om, Text};
        // What Prometheus 2.42 sends.
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                    version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        for (accept, want) in [
            (Some(prom), Om),
            (None, Text),
            (Some(""), Text),
            (Some("*/*"), Text),
            (Some("text/plain"), Text),
            (Some("text/plain; version=0.0.4"), Text),
            (Some("application/openmetrics-text"), Om),
            (Some("Application/OpenMetrics-Text; Version=\"1.0.0\""), Om),
            (Some("application/openmetrics-text; version=0.0.1"), Om),
            // A version we do not write is not served under its name.
            (Some("application/openmetrics-text; version=2.0.0"), Text),
            (Some("application/openmetrics-text;q=0"), Text),
            (
                Some("text/plain;q=0.5, application/openmetrics-text;q=0.6"),
                Om,
            ),
            (
                Some("application/openmetrics-text;q=0.4, text/plain;q=0.5"),
                Text,
            ),
            // At equal weight a named type beats a wildcard, then the first wins.
            (Some("*/*, application/openmetrics-text"), Om),
            (Some("text/plain, application/openmetrics-text"), Text),
            (Some("application/openmetrics-text, text/plain"), Om),
            // A malformed weight makes its range unusable.
            (
                Some("application/openmetrics-text;q=2, text/plain;q=0.1"),
                Text,
            ),
            (Some("application/openmetrics-text;q=0.0001"), Text),
            (Some("application/json, image/png"), Text),
        ] {
            assert_eq!(Format::negotiate(accept), want, "Accept: {accept:?}");
        }
        assert_eq!(weight("0.5"), Some(500));
        assert_eq!(weight("1.000"), Some(1000));
        assert_eq!(weight("0"), Some(0));
        assert_eq!(weight("1.5"), None);

        // Through the router: the header is found whatever its case, and split lines join.
        let src = sources(1);
        let reg = registry(Arc::new(sources(1)));
        let r = |h: &str| route(h.as_bytes(), &reg, &src);
        let a = r("GET /metrics HTTP/1.1\r\nHost: x\r\naccept: application/openmetrics-text");
        assert_eq!(a.content_type, Om.content_type());
        assert!(a.body.ends_with("# EOF\n"));
        let a = r(
            "GET /metrics HTTP/1.1\r\nAccept: image/png\r\nACCEPT: application/openmetrics-text",
        );
        assert_eq!(a.content_type, Om.content_type());
        let a = r("GET /metrics HTTP/1.1\r\nHost: x");
        assert_eq!(a.content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert!(!a.body.contains("# EOF"));
        let head = String::from_utf8_lossy(&encode_answer(&a)).into_owned();
        assert!(head.contains("\r\nVary: Accept\r\n"), "{head}");
        let h = String::from_utf8_lossy(&encode_answer(&r("GET /healthz HTTP/1.1"))).into_owned();
        assert!(!h.contains("Vary"), "{h}");
    }

    #[test]
    fn routes_and_methods() {
        let src = sources(1);
        let reg = registry(Arc::new(sources(1)));
        let r = |h: &str| route(h.as_bytes(), &reg, &src);
        assert_eq!(r("GET /metrics HTTP/1.1\r\nHost: x").status, 200);
        assert_eq!(r("GET /metrics?x=1 HTTP/1.0").status, 200);
        assert_eq!(r("GET /healthz HTTP/1.1").status, 200);
        let h = r("HEAD /metrics HTTP/1.1");
        assert_eq!(h.status, 200);
        // HEAD: the head only (it ends at the blank line), Content-Length of the GET body.
        assert!(encode_answer(&h).ends_with(b"\r\n\r\n"));
        assert!(!h.body.is_empty());
        assert_eq!(r("POST /metrics HTTP/1.1").status, 405);
        assert_eq!(r("DELETE /healthz HTTP/1.1").status, 405);
        assert!(
            String::from_utf8_lossy(&encode_answer(&r("PUT /metrics HTTP/1.1")))
                .contains("Allow: GET, HEAD")
        );
        assert_eq!(r("GET / HTTP/1.1").status, 404);
        assert_eq!(r("GET /metrics/../x HTTP/1.1").status, 404);
        assert_eq!(r("GET /metrics/ HTTP/1.1").status, 404);
        assert_eq!(r("GET /healthz/ HTTP/1.1").status, 404);
        assert_eq!(r("OPTIONS /metrics HTTP/1.1").status, 405);
        assert_eq!(r("get /metrics HTTP/1.1").status, 405);
        assert_eq!(r("POST /reload HTTP/1.1").status, 404);
        assert_eq!(r("GET /metrics").status, 400);
        assert_eq!(r("GET /metrics SPDY/3").status, 505);
        assert_eq!(route(&[0xff, 0xfe], &reg, &src).status, 400);
    }

    #[test]
    fn healthz_fails_for_a_stuck_or_gone_worker() {
        let src = sources(2);
        let now = crate::dataplane::now_ms(src.epoch).0;
        assert!(src.healthy(), "idle workers are healthy");
        // Busy and woke up just now: healthy.
        src.workers[0].set_idle(false, now);
        assert!(src.healthy());
        // Busy since long before now: stuck.
        src.workers[0].beat_ms.store(0, Relaxed);
        let src2 = Sources {
            epoch: Instant::now() - Duration::from_millis(crate::stats::STALL_MS + 1000),
            workers: src.workers.clone(),
            ..sources(0)
        };
        assert_eq!(src2.stuck_workers(), vec![0]);
        // A worker whose thread ended.
        src.workers[0].set_idle(true, 0);
        drop(crate::stats::AliveGuard(src.workers[1].clone()));
        assert_eq!(src.stuck_workers(), vec![1]);
        let reg = registry(Arc::new(sources(1)));
        assert_eq!(route(b"GET /healthz HTTP/1.1", &reg, &src).status, 503);
    }
}
