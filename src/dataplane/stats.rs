//! Per-worker packet and drop counters, readable from the control thread.
//!
//! Each worker owns one [`WorkerStats`] and is its only writer: it counts a batch in plain local
//! integers and publishes them with relaxed stores once per batch, so the packet path has no
//! atomic read-modify-write and no lock. Readers (SIGUSR1 dump, the exit summary, a Prometheus
//! scrape, `nat64d stats`) sum all workers: the work of one read is bounded by the number of
//! workers and counters, whatever the traffic.
//!
//! Each worker also publishes a heartbeat (the core's clock at its last wake-up) and whether it
//! sleeps waiting for packets, once per wake-up: [`WorkerStats::healthy`] is the check behind
//! `GET /healthz` and the systemd watchdog.
#![deny(unsafe_code)]

use nat64_core::{DropCounters, DropReason};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Direction labels of the translated-packet counters, indexed like [`BatchCounts::fwd_packets`]:
/// the family of the packet written (`ipv6_to_ipv4` writes IPv4).
pub const DIRECTIONS: [&str; 2] = ["ipv6_to_ipv4", "ipv4_to_ipv6"];
/// Protocol labels of the translated-packet counters.
pub const PROTOCOLS: [&str; 4] = ["tcp", "udp", "icmp", "other"];

/// Direction and protocol index of a packet written to the TUN (its own header: after
/// translation the written packet's family is the direction's target).
#[inline]
pub fn classify(p: &[u8]) -> (usize, usize) {
    let (dir, proto) = match p.first().map(|b| b >> 4) {
        Some(4) => (0, p.get(9).copied()),
        // An IPv6 Fragment header (44) in front: its next header names the protocol.
        Some(6) => match p.get(6).copied() {
            Some(44) => (1, p.get(40).copied()),
            nh => (1, nh),
        },
        _ => (1, None),
    };
    let i = match proto {
        Some(6) => 0,
        Some(17) => 1,
        Some(1 | 58) => 2,
        _ => 3,
    };
    (dir, i)
}

/// Milliseconds a busy worker may go without a wake-up before it counts as stuck.
pub const STALL_MS: u64 = 5_000;

/// Counters of one worker (single writer).
#[derive(Debug)]
pub struct WorkerStats {
    /// Packets read from the TUN.
    pub rx: AtomicU64,
    /// Packets written to the TUN (translated packets, fragments and ICMP errors).
    pub tx: AtomicU64,
    /// ICMP errors the translator generated (also counted in `tx`).
    pub icmp_errors: AtomicU64,
    /// Writes the kernel refused (the packet is lost).
    pub tx_errors: AtomicU64,
    /// Reads that failed with an error other than "no packet".
    pub rx_errors: AtomicU64,
    /// Packets whose handling panicked (a bug; the packet is lost, the worker goes on).
    pub internal_errors: AtomicU64,
    /// Packets not forwarded, by reason.
    pub drops: [AtomicU64; DropReason::COUNT],
    /// Translated packets written, by direction and protocol ([`DIRECTIONS`], [`PROTOCOLS`]).
    pub fwd_packets: [[AtomicU64; 4]; 2],
    /// SYNs whose TCP MSS option was clamped, by direction ([`DIRECTIONS`]).
    pub mss_clamped: [AtomicU64; 2],
    /// Their bytes (IP header included).
    pub fwd_bytes: [[AtomicU64; 4]; 2],
    /// The core's clock (ms) at the worker's last wake-up.
    pub beat_ms: AtomicU64,
    /// The worker sleeps waiting for packets.
    pub idle: AtomicBool,
    /// The worker thread runs (false once it returned or unwound).
    pub alive: AtomicBool,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            rx: AtomicU64::new(0),
            tx: AtomicU64::new(0),
            icmp_errors: AtomicU64::new(0),
            tx_errors: AtomicU64::new(0),
            rx_errors: AtomicU64::new(0),
            internal_errors: AtomicU64::new(0),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            fwd_packets: Default::default(),
            fwd_bytes: Default::default(),
            mss_clamped: Default::default(),
            beat_ms: AtomicU64::new(0),
            idle: AtomicBool::new(true),
            alive: AtomicBool::new(true),
        }
    }
}

/// What a worker counts during one batch, before publishing.
#[derive(Debug, Default, Clone)]
pub struct BatchCounts {
    /// Packets read.
    pub rx: u64,
    /// Packets written.
    pub tx: u64,
    /// ICMP errors generated.
    pub icmp_errors: u64,
    /// Failed writes.
    pub tx_errors: u64,
    /// Failed reads.
    pub rx_errors: u64,
    /// Packets whose handling panicked.
    pub internal_errors: u64,
    /// Drops by reason.
    pub drops: DropCounters,
    /// Translated packets written, by direction and protocol.
    pub fwd_packets: [[u64; 4]; 2],
    /// Their bytes.
    pub fwd_bytes: [[u64; 4]; 2],
    /// SYNs whose MSS was clamped, by direction.
    pub mss_clamped: [u64; 2],
}

impl BatchCounts {
    /// True if nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.rx == 0
            && self.tx == 0
            && self.tx_errors == 0
            && self.rx_errors == 0
            && self.internal_errors == 0
    }
}

fn bump(a: &AtomicU64, n: u64) {
    if n != 0 {
        // Single writer: load + store is enough and avoids a locked RMW.
        a.store(a.load(Relaxed).wrapping_add(n), Relaxed);
    }
}

impl WorkerStats {
    /// Adds a batch's counts and clears them. Only the owning worker calls this.
    pub fn publish(&self, b: &mut BatchCounts) {
        bump(&self.rx, b.rx);
        bump(&self.tx, b.tx);
        bump(&self.icmp_errors, b.icmp_errors);
        bump(&self.tx_errors, b.tx_errors);
        bump(&self.rx_errors, b.rx_errors);
        bump(&self.internal_errors, b.internal_errors);
        for (i, n) in b.drops.0.iter_mut().enumerate() {
            if *n != 0 {
                bump(&self.drops[i], *n);
                *n = 0;
            }
        }
        for d in 0..2 {
            for p in 0..4 {
                bump(&self.fwd_packets[d][p], b.fwd_packets[d][p]);
                bump(&self.fwd_bytes[d][p], b.fwd_bytes[d][p]);
            }
        }
        for d in 0..2 {
            bump(&self.mss_clamped[d], b.mss_clamped[d]);
        }
        b.fwd_packets = [[0; 4]; 2];
        b.fwd_bytes = [[0; 4]; 2];
        b.mss_clamped = [0; 2];
        b.rx = 0;
        b.tx = 0;
        b.icmp_errors = 0;
        b.tx_errors = 0;
        b.rx_errors = 0;
        b.internal_errors = 0;
    }
}

impl WorkerStats {
    /// The worker is about to sleep until a packet comes (`true`) or has woken up at `now_ms`
    /// (`false`). Called once per wake-up by the owning worker.
    #[inline]
    pub fn set_idle(&self, idle: bool, now_ms: u64) {
        if !idle {
            self.beat_ms.store(now_ms, Relaxed);
        }
        self.idle.store(idle, Relaxed);
    }

    /// The worker runs and either sleeps waiting for packets or woke up within [`STALL_MS`] of
    /// `now_ms` (a worker stuck inside a batch, or gone, is not healthy).
    pub fn healthy(&self, now_ms: u64) -> bool {
        self.alive.load(Relaxed)
            && (self.idle.load(Relaxed)
                || now_ms.saturating_sub(self.beat_ms.load(Relaxed)) <= STALL_MS)
    }
}

/// Marks a worker gone when dropped (the worker's thread ends or unwinds).
#[derive(Debug)]
pub struct AliveGuard(pub std::sync::Arc<WorkerStats>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.alive.store(false, Relaxed);
    }
}

/// A sum over all workers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Packets read.
    pub rx: u64,
    /// Packets written.
    pub tx: u64,
    /// ICMP errors generated.
    pub icmp_errors: u64,
    /// Failed writes.
    pub tx_errors: u64,
    /// Failed reads.
    pub rx_errors: u64,
    /// Packets whose handling panicked.
    pub internal_errors: u64,
    /// Drops by reason, indexed by [`DropReason::index`].
    pub drops: Vec<u64>,
    /// Translated packets, by direction and protocol.
    pub fwd_packets: [[u64; 4]; 2],
    /// Their bytes.
    pub fwd_bytes: [[u64; 4]; 2],
    /// SYNs whose MSS was clamped, by direction.
    pub mss_clamped: [u64; 2],
}

impl Totals {
    /// Sums `workers`.
    pub fn sum<'a>(workers: impl IntoIterator<Item = &'a WorkerStats>) -> Totals {
        let mut t = Totals {
            drops: vec![0; DropReason::COUNT],
            ..Totals::default()
        };
        for w in workers {
            t.rx += w.rx.load(Relaxed);
            t.tx += w.tx.load(Relaxed);
            t.icmp_errors += w.icmp_errors.load(Relaxed);
            t.tx_errors += w.tx_errors.load(Relaxed);
            t.rx_errors += w.rx_errors.load(Relaxed);
            t.internal_errors += w.internal_errors.load(Relaxed);
            for (i, d) in w.drops.iter().enumerate() {
                t.drops[i] += d.load(Relaxed);
            }
            for d in 0..2 {
                for p in 0..4 {
                    t.fwd_packets[d][p] += w.fwd_packets[d][p].load(Relaxed);
                    t.fwd_bytes[d][p] += w.fwd_bytes[d][p].load(Relaxed);
                }
                t.mss_clamped[d] += w.mss_clamped[d].load(Relaxed);
            }
        }
        t
    }

    /// Translated packets in all directions and protocols.
    pub fn translated(&self) -> u64 {
        self.fwd_packets.iter().flatten().sum()
    }

    /// The count for `r`.
    pub fn drop_count(&self, r: DropReason) -> u64 {
        self.drops.get(r.index()).copied().unwrap_or(0)
    }

    /// One line: `rx=.. tx=.. icmp_errors=.. tx_errors=.. rx_errors=.. drops: reason=n ...`,
    /// listing only the reasons with a non-zero count.
    pub fn render(&self) -> String {
        let mut s = format!(
            "rx={} tx={} icmp_errors={} tx_errors={} rx_errors={} internal_errors={} \
             mss_clamped_6to4={} mss_clamped_4to6={} drops:",
            self.rx,
            self.tx,
            self.icmp_errors,
            self.tx_errors,
            self.rx_errors,
            self.internal_errors,
            self.mss_clamped[0],
            self.mss_clamped[1]
        );
        let mut any = false;
        for r in DropReason::ALL {
            let n = self.drop_count(*r);
            if n != 0 {
                s.push_str(&format!(" {}={n}", r.as_str()));
                any = true;
            }
        }
        if !any {
            s.push_str(" none");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_sums_and_clears() {
        let w1 = WorkerStats::default();
        let w2 = WorkerStats::default();
        let mut b = BatchCounts {
            rx: 3,
            tx: 2,
            ..BatchCounts::default()
        };
        b.drops.count(DropReason::Truncated);
        w1.publish(&mut b);
        assert!(b.is_empty());
        assert_eq!(b.drops.get(DropReason::Truncated), 0);
        b.rx = 1;
        b.drops.count(DropReason::Truncated);
        b.drops.count(DropReason::WkpNonGlobal);
        w2.publish(&mut b);
        w2.publish(&mut b); // an empty batch adds nothing
        let t = Totals::sum([&w1, &w2]);
        assert_eq!(t.rx, 4);
        assert_eq!(t.tx, 2);
        assert_eq!(t.drop_count(DropReason::Truncated), 2);
        assert_eq!(t.drop_count(DropReason::WkpNonGlobal), 1);
        let line = t.render();
        assert!(line.contains("truncated=2"), "{line}");
        assert!(line.contains("wkp_non_global=1"), "{line}");
        assert!(!line.contains("no_binding"), "{line}");
    }
}
