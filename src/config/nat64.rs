//! The `[nat64]` table (stateful NAT64, RFC 6146): pool4, timeouts, limits, filtering, static BIB
//! entries, fragment store, mapping log and control socket.
//!
//! A child module of `config`, so it reports errors through the same validator (file:line:key:
//! reason). Validation ends by building the core's tables once with a tiny session limit, so
//! `nat64d check-config` refuses exactly what `Nat64::new` would refuse at start, without
//! allocating the full tables.

use super::Validator;
use nat64_core::nat64::bib::StaticBib;
use nat64_core::nat64::frag::FragConfig;
use nat64_core::nat64::pool4::{Pool4Config, PortRange};
use nat64_core::nat64::synstore::SynStoreConfig;
use nat64_core::nat64::{Filtering, Nat64, Nat64Config, Nat64ConfigError, Proto, Timeouts};
use nat64_core::siit::SiitConfig;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use toml::Spanned;

/// The default control socket.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/nat64d/control.sock";

/// Longest idle timeout accepted, s (one week).
const MAX_TIMEOUT_S: u64 = 7 * 24 * 3600;

/// `MemAvailable` of /proc/meminfo in bytes (None where it cannot be read).
fn mem_available() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

fn parse_mem_available(meminfo: &str) -> Option<usize> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Refuses tables needing more than the memory available.
fn fits_in_memory(need: usize, available: usize) -> Result<(), String> {
    const MIB: usize = 1 << 20;
    if need <= available {
        return Ok(());
    }
    Err(format!(
        "the tables for these limits need about {} MiB, more than the {} MiB this machine has \
         available (MemAvailable): lower nat64.max_sessions (about 200 bytes a session) or \
         nat64.fragments.max_reassembly (64 KiB a slot)",
        need.div_ceil(MIB),
        available / MIB
    ))
}

/// Most pool4 addresses a prefix may expand to (the core's limit).
const MAX_POOL4: usize = nat64_core::nat64::pool4::Pool4::MAX_ADDRS;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNat64 {
    #[serde(default)]
    pool4: RawPool4,
    #[serde(default)]
    timeouts: RawTimeouts,
    enforce_rfc_minimums: Option<bool>,
    max_sessions: Option<Spanned<u64>>,
    max_sessions_per_host: Option<Spanned<u64>>,
    subscriber_prefix_len: Option<Spanned<u64>>,
    filtering: Option<Spanned<String>>,
    shards: Option<Spanned<u64>>,
    #[serde(default)]
    static_bib: Vec<Spanned<RawStaticBib>>,
    #[serde(default)]
    fragments: RawFrag,
    #[serde(default)]
    syn_store: RawSynStore,
    #[serde(default)]
    mapping_log: RawMappingLog,
    #[serde(default)]
    control: RawControl,
}

impl RawNat64 {
    /// `[nat64.pool4] addresses` as written; a `[nodes]` entry puts its own there.
    pub(super) fn pool4_addresses_mut(&mut self) -> &mut Vec<Spanned<String>> {
        &mut self.pool4.addresses
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool4 {
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
    tcp: Option<Spanned<String>>,
    udp: Option<Spanned<String>>,
    icmp: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    udp: Option<Spanned<u64>>,
    icmp: Option<Spanned<u64>>,
    tcp_est: Option<Spanned<u64>>,
    tcp_trans: Option<Spanned<u64>>,
    tcp_incoming_syn: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaticBib {
    proto: Spanned<String>,
    ipv6: Spanned<String>,
    ipv4: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrag {
    max_entries: Option<Spanned<u64>>,
    timeout_ms: Option<Spanned<u64>>,
    max_reassembly: Option<Spanned<u64>>,
    max_entries_per_source: Option<Spanned<u64>>,
    max_reassembly_per_source: Option<Spanned<u64>>,
    max_held: Option<Spanned<u64>>,
    max_held_bytes: Option<Spanned<u64>>,
    max_held_per_source: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSynStore {
    max_entries: Option<Spanned<u64>>,
    max_per_source: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMappingLog {
    enabled: Option<bool>,
    path: Option<Spanned<String>>,
    capacity: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    socket: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
}

/// Where binding events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingLog {
    /// Not recorded (the default).
    Off,
    /// As `info` lines of the daemon's log (target `nat64d::mapping`).
    ToLog,
    /// Appended as JSON lines to this file (reopened on SIGHUP, for log rotation).
    File(PathBuf),
}

/// The control socket of `nat64d sessions` / `nat64d bib`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// Unix socket path.
    pub socket: PathBuf,
    /// Group that may connect (mode 0660, owner root); `None`: root's group only.
    pub group: Option<String>,
}

/// The validated `[nat64]` table.
#[derive(Debug, Clone)]
pub struct Nat64Settings {
    /// The core's configuration; `hash_seed` is 0 here: the daemon draws it from the OS at start.
    pub core: Nat64Config,
    /// Mapping log destination.
    pub mapping_log: MappingLog,
    /// Control socket.
    pub control: ControlConfig,
    /// pool4 as written (prefixes), for the routes into the TUN.
    pub pool4_prefixes: Vec<super::IpPrefix>,
}

impl Nat64Settings {
    /// The settings fixed when the tables are built (pool6, pool4, timeouts, limits, filtering,
    /// fragments, RFC 7915 options, whether events are queued): a reload that changes one of them
    /// needs a restart. Returns the names of those that differ.
    pub fn table_changes(&self, new: &Nat64Settings) -> Vec<&'static str> {
        let (a, b) = (&self.core, &new.core);
        let mut out = Vec::new();
        if format!("{:?}", a.pool6) != format!("{:?}", b.pool6) {
            out.push("pool6");
        }
        if a.pool4 != b.pool4 {
            out.push("nat64.pool4");
        }
        if a.timeouts != b.timeouts || a.enforce_rfc_minimums != b.enforce_rfc_minimums {
            out.push("nat64.timeouts");
        }
        if a.max_sessions != b.max_sessions
            || a.max_sessions_per_host != b.max_sessions_per_host
            || a.subscriber_prefix_len != b.subscriber_prefix_len
        {
            out.push("nat64.max_sessions");
        }
        if a.filtering != b.filtering {
            out.push("nat64.filtering");
        }
        if a.shards != b.shards {
            out.push("nat64.shards");
        }
        if a.frag != b.frag {
            out.push("nat64.fragments");
        }
        if a.syn_store != b.syn_store {
            out.push("nat64.syn_store");
        }
        if a.xlat != b.xlat {
            out.push("xlat");
        }
        if a.mapping_log != b.mapping_log || a.mapping_log_capacity != b.mapping_log_capacity {
            out.push("nat64.mapping_log.enabled");
        }
        if self.control != new.control {
            out.push("nat64.control");
        }
        out
    }
}

impl Validator<'_> {
    /// Validates `[nat64]` against the already validated pool6 and RFC 7915 options.
    pub(super) fn nat64(
        &self,
        raw: Option<RawNat64>,
        siit: &SiitConfig,
        mode_span: std::ops::Range<usize>,
    ) -> Result<Nat64Settings, super::ConfigError> {
        let Some(raw) = raw else {
            return Err(self.err(
                mode_span,
                "nat64",
                "mode = \"nat64\" needs a [nat64] table with pool4.addresses",
            ));
        };

        // pool4
        let mut addrs: Vec<Ipv4Addr> = Vec::new();
        let mut pool4_prefixes = Vec::new();
        for s in &raw.pool4.addresses {
            let (a, l) = self.prefix(s, "nat64.pool4.addresses", true)?;
            pool4_prefixes.push(super::IpPrefix { addr: a, len: l });
            let IpAddr::V4(a) = a else {
                return Err(self.err(s.span(), "nat64.pool4.addresses", "not an IPv4 address"));
            };
            let n = 1usize << (32 - u32::from(l)).min(31);
            if l < 20 || addrs.len() + n > MAX_POOL4 {
                return Err(self.err(
                    s.span(),
                    "nat64.pool4.addresses",
                    format!("more than {MAX_POOL4} addresses in pool4"),
                ));
            }
            let base = u32::from(a);
            for i in 0..n as u32 {
                addrs.push(Ipv4Addr::from(base + i));
            }
        }
        if addrs.is_empty() {
            return Err(self.err(
                self.span_of_key("nat64.pool4", "addresses"),
                "nat64.pool4.addresses",
                "pool4 needs at least one IPv4 address (the addresses IPv6 hosts share)",
            ));
        }
        let d = Pool4Config::default();
        let pool4 = Pool4Config {
            addrs,
            tcp: self.range(&raw.pool4.tcp, "nat64.pool4.tcp", d.tcp)?,
            udp: self.range(&raw.pool4.udp, "nat64.pool4.udp", d.udp)?,
            icmp: self.range(&raw.pool4.icmp, "nat64.pool4.icmp", d.icmp)?,
        };

        let mut core = Nat64Config::new(siit.pool6.clone(), Vec::new(), 0);
        core.pool4 = pool4;
        core.xlat = siit.xlat;
        core.enforce_rfc_minimums = raw.enforce_rfc_minimums.unwrap_or(true);
        let dt = Timeouts::default();
        let t = &raw.timeouts;
        core.timeouts = Timeouts {
            udp: self.timeout(&t.udp, "udp", 120, dt.udp, core.enforce_rfc_minimums)?,
            icmp: self.timeout(&t.icmp, "icmp", 1, dt.icmp, core.enforce_rfc_minimums)?,
            tcp_est: self.timeout(
                &t.tcp_est,
                "tcp_est",
                7200,
                dt.tcp_est,
                core.enforce_rfc_minimums,
            )?,
            tcp_trans: self.timeout(
                &t.tcp_trans,
                "tcp_trans",
                240,
                dt.tcp_trans,
                core.enforce_rfc_minimums,
            )?,
            tcp_incoming_syn: self.timeout(
                &t.tcp_incoming_syn,
                "tcp_incoming_syn",
                6,
                dt.tcp_incoming_syn,
                core.enforce_rfc_minimums,
            )?,
        };
        core.max_sessions = self.number(
            &raw.max_sessions,
            "nat64.max_sessions",
            1..=Nat64Config::MAX_SESSIONS as u64,
            core.max_sessions as u64,
        )? as usize;
        core.max_sessions_per_host = self.number(
            &raw.max_sessions_per_host,
            "nat64.max_sessions_per_host",
            1..=u64::from(u32::MAX),
            u64::from(core.max_sessions_per_host),
        )? as u32;
        core.subscriber_prefix_len = self.number(
            &raw.subscriber_prefix_len,
            "nat64.subscriber_prefix_len",
            1..=128,
            u64::from(core.subscriber_prefix_len),
        )? as u8;
        if let Some(f) = &raw.filtering {
            core.filtering = match f.get_ref().as_str() {
                "endpoint-independent" => Filtering::EndpointIndependent,
                "address-dependent" => Filtering::AddressDependent,
                other => {
                    return Err(self.err(
                        f.span(),
                        "nat64.filtering",
                        format!(
                        "\"{other}\": expected \"endpoint-independent\" or \"address-dependent\""
                    ),
                    ))
                }
            };
        }
        core.shards =
            self.number(&raw.shards, "nat64.shards", 1..=128, core.shards as u64)? as usize;
        if let Some(sh) = raw
            .shards
            .as_ref()
            .filter(|_| !core.shards.is_power_of_two())
        {
            return Err(self.err(
                sh.span(),
                "nat64.shards",
                format!("{}: must be a power of two from 1 to 128", core.shards),
            ));
        }

        // static BIB
        for (i, e) in raw.static_bib.iter().enumerate() {
            let e = e.get_ref();
            let proto = e.proto.get_ref().parse::<Proto>().map_err(|()| {
                self.err(
                    e.proto.span(),
                    &format!("nat64.static_bib[{i}].proto"),
                    format!(
                        "\"{}\": expected \"tcp\", \"udp\" or \"icmp\"",
                        e.proto.get_ref()
                    ),
                )
            })?;
            let k6 = format!("nat64.static_bib[{i}].ipv6");
            let k4 = format!("nat64.static_bib[{i}].ipv4");
            let v6 = match e.ipv6.get_ref().parse::<SocketAddr>() {
                Ok(SocketAddr::V6(s)) => (*s.ip(), s.port()),
                _ => {
                    return Err(self.err(
                        e.ipv6.span(),
                        &k6,
                        format!(
                            "\"{}\": expected an IPv6 transport address \"[2001:db8::80]:80\"",
                            e.ipv6.get_ref()
                        ),
                    ))
                }
            };
            let v4 = match e.ipv4.get_ref().parse::<SocketAddr>() {
                Ok(SocketAddr::V4(s)) => (*s.ip(), s.port()),
                _ => {
                    return Err(self.err(
                        e.ipv4.span(),
                        &k4,
                        format!(
                            "\"{}\": expected an IPv4 transport address \"192.0.2.1:80\"",
                            e.ipv4.get_ref()
                        ),
                    ))
                }
            };
            core.static_bib.push(StaticBib { proto, v6, v4 });
        }

        // fragments
        let df = FragConfig::default();
        let f = &raw.fragments;
        let max_entries = self.number(
            &f.max_entries,
            "nat64.fragments.max_entries",
            1..=1 << 20,
            df.max_entries as u64,
        )?;
        let max_reassembly = self.number(
            &f.max_reassembly,
            "nat64.fragments.max_reassembly",
            0..=1024,
            df.max_reassembly as u64,
        )?;
        if let Some(t) = f.timeout_ms.as_ref().filter(|t| *t.get_ref() < 2000) {
            return Err(self.err(
                t.span(),
                "nat64.fragments.timeout_ms",
                format!(
                    "{} is below FRAGMENT_MIN = 2000 ms (RFC 6146 §4)",
                    t.get_ref()
                ),
            ));
        }
        // RFC 6146 §3.4: fragments that arrive before their first fragment (0 = drop them).
        let max_held = self.number(
            &f.max_held,
            "nat64.fragments.max_held",
            0..=1 << 16,
            df.max_held as u64,
        )?;
        // At least one largest IPv6 packet (64 KiB + header) when holding is on.
        let max_held_bytes = self.number(
            &f.max_held_bytes,
            "nat64.fragments.max_held_bytes",
            if max_held == 0 { 0 } else { 65_536 + 40 }..=1 << 28,
            df.max_held_bytes as u64,
        )?;
        let max_held_per_source = self.number(
            &f.max_held_per_source,
            "nat64.fragments.max_held_per_source",
            1..=max_held.max(1),
            (df.max_held_per_source as u64).clamp(1, max_held.max(1)),
        )?;
        core.frag = FragConfig {
            max_held: max_held as usize,
            max_held_bytes: max_held_bytes as usize,
            max_held_per_source: max_held_per_source as usize,
            max_entries: max_entries as usize,
            timeout_ms: self.number(
                &f.timeout_ms,
                "nat64.fragments.timeout_ms",
                2000..=60_000,
                df.timeout_ms,
            )?,
            max_reassembly: max_reassembly as usize,
            max_entries_per_source: self.number(
                &f.max_entries_per_source,
                "nat64.fragments.max_entries_per_source",
                1..=max_entries,
                (df.max_entries_per_source as u64).min(max_entries),
            )? as usize,
            max_reassembly_per_source: self.number(
                &f.max_reassembly_per_source,
                "nat64.fragments.max_reassembly_per_source",
                1..=max_reassembly.max(1),
                (df.max_reassembly_per_source as u64).clamp(1, max_reassembly.max(1)),
            )? as usize,
        };

        // RFC 6146 §3.5.2.2 simultaneous open: the store of unsolicited IPv4 SYNs.
        let ds = SynStoreConfig::default();
        let ss = &raw.syn_store;
        let syn_max = self.number(
            &ss.max_entries,
            "nat64.syn_store.max_entries",
            0..=SynStoreConfig::MAX_ENTRIES as u64,
            ds.max_entries as u64,
        )?;
        core.syn_store = SynStoreConfig {
            max_entries: syn_max as usize,
            max_per_source: self.number(
                &ss.max_per_source,
                "nat64.syn_store.max_per_source",
                1..=syn_max.max(1),
                (ds.max_per_source as u64).clamp(1, syn_max.max(1)),
            )? as usize,
        };

        // mapping log
        let ml = &raw.mapping_log;
        let mapping_log = match (ml.enabled.unwrap_or(false), &ml.path) {
            (false, _) => MappingLog::Off,
            (true, None) => MappingLog::ToLog,
            (true, Some(p)) if p.get_ref().is_empty() => MappingLog::ToLog,
            (true, Some(p)) => {
                let path = PathBuf::from(p.get_ref());
                if !path.is_absolute() {
                    return Err(self.err(
                        p.span(),
                        "nat64.mapping_log.path",
                        format!("\"{}\": an absolute path is needed", p.get_ref()),
                    ));
                }
                MappingLog::File(path)
            }
        };
        core.mapping_log = mapping_log != MappingLog::Off;
        core.mapping_log_capacity = self.number(
            &ml.capacity,
            "nat64.mapping_log.capacity",
            1..=1 << 20,
            core.mapping_log_capacity as u64,
        )? as usize;

        // control socket
        let socket = match &raw.control.socket {
            Some(s) => {
                let p = PathBuf::from(s.get_ref());
                if !p.is_absolute() {
                    return Err(self.err(
                        s.span(),
                        "nat64.control.socket",
                        format!("\"{}\": an absolute path is needed", s.get_ref()),
                    ));
                }
                p
            }
            None => PathBuf::from(DEFAULT_CONTROL_SOCKET),
        };
        let group = match &raw.control.group {
            Some(g) if g.get_ref().is_empty() => None,
            Some(g) => {
                if let Err(e) = crate::host::group_id(g.get_ref()) {
                    return Err(self.err(g.span(), "nat64.control.group", e.to_string()));
                }
                Some(g.get_ref().clone())
            }
            None => None,
        };

        // The core's own checks (timeout minimums, ranges, static BIB against pool4/pool6), on
        // tables sized for one session.
        // Pre-sized tables only within the memory the machine has: refuse before allocating.
        if let Some(avail) = mem_available() {
            if let Err(reason) = fits_in_memory(core.table_bytes(), avail) {
                let (span, key) = match (&raw.max_sessions, &raw.fragments.max_reassembly) {
                    (Some(m), _) => (m.span(), "nat64.max_sessions"),
                    (None, Some(r)) => (r.span(), "nat64.fragments.max_reassembly"),
                    (None, None) => (
                        self.span_of_key("nat64", "max_sessions"),
                        "nat64.max_sessions",
                    ),
                };
                return Err(self.err(span, key, reason));
            }
        }
        let mut probe = core.clone();
        probe.max_sessions = 1;
        probe.mapping_log = false;
        probe.frag.max_reassembly = probe.frag.max_reassembly.min(1);
        if let Err(e) = Nat64::new(probe) {
            return Err(self.core_error(&raw, e));
        }
        Ok(Nat64Settings {
            core,
            mapping_log,
            control: ControlConfig { socket, group },
            pool4_prefixes,
        })
    }

    /// Where `key = ...` is written under `[table]` (for errors found after parsing); the table
    /// header if the key is absent, the start of the file if both are.
    fn span_of_key(&self, table: &str, key: &str) -> std::ops::Range<usize> {
        let mut off = 0;
        let mut in_table = false;
        let mut header = None;
        for line in self.text.split_inclusive('\n') {
            let t = line.trim();
            if t.starts_with('[') {
                in_table = t.trim_matches(|c| c == '[' || c == ']').trim() == table;
                if in_table {
                    header = Some(off..off);
                }
            } else if in_table && t.split('=').next().map(str::trim) == Some(key) && t.contains('=')
            {
                return off..off;
            }
            off += line.len();
        }
        header.unwrap_or(0..0)
    }

    /// A number in `range` (`default` when absent), refused with file:line: key: reason.
    fn number(
        &self,
        v: &Option<Spanned<u64>>,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
        default: u64,
    ) -> Result<u64, super::ConfigError> {
        let Some(n) = v else { return Ok(default) };
        let x = *n.get_ref();
        if range.contains(&x) {
            Ok(x)
        } else {
            Err(self.err(
                n.span(),
                key,
                format!(
                    "{x} is out of range: must be from {} to {}",
                    range.start(),
                    range.end()
                ),
            ))
        }
    }

    /// A timeout in seconds: at least the RFC 6146 §4 minimum `rfc_min` unless
    /// `nat64.enforce_rfc_minimums = false` (then at least 1), at most a week.
    fn timeout(
        &self,
        v: &Option<Spanned<u64>>,
        name: &str,
        rfc_min: u32,
        default: u32,
        enforce: bool,
    ) -> Result<u32, super::ConfigError> {
        let key = format!("nat64.timeouts.{name}");
        let Some(n) = v else { return Ok(default) };
        let x = *n.get_ref();
        if enforce && x < u64::from(rfc_min) {
            return Err(self.err(
                n.span(),
                &key,
                format!(
                    "{x} s is below the minimum of {rfc_min} s (RFC 6146 §4); set \
                     nat64.enforce_rfc_minimums = false to allow shorter timeouts (labs, tests)"
                ),
            ));
        }
        let min = if enforce { u64::from(rfc_min) } else { 1 };
        Ok(self.number(v, &key, min..=MAX_TIMEOUT_S, u64::from(default))? as u32)
    }

    /// Parses `first-last` (or one number).
    fn range(
        &self,
        v: &Option<Spanned<String>>,
        key: &str,
        def: PortRange,
    ) -> Result<PortRange, super::ConfigError> {
        let Some(s) = v else { return Ok(def) };
        let txt = s.get_ref().trim();
        let (a, b) = txt.split_once('-').unwrap_or((txt, txt));
        match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
            (Ok(a), Ok(b)) if a <= b => Ok(PortRange::new(a, b)),
            _ => Err(self.err(
                s.span(),
                key,
                format!("\"{txt}\": expected a range \"first-last\" of 0-65535 with first <= last"),
            )),
        }
    }

    /// Maps a core error to the key (and line) it comes from.
    fn core_error(&self, raw: &RawNat64, e: Nat64ConfigError) -> super::ConfigError {
        let first_line = |v: &[Spanned<String>]| v.first().map(|s| s.span()).unwrap_or(0..0);
        match &e {
            Nat64ConfigError::Pool4(_) => self.err(
                first_line(&raw.pool4.addresses),
                "nat64.pool4",
                e.to_string(),
            ),
            Nat64ConfigError::Timeout { name, .. } => self.err(
                self.span_of_key("nat64.timeouts", name),
                &format!("nat64.timeouts.{name}"),
                e.to_string(),
            ),
            Nat64ConfigError::SubscriberPrefixLen(_) => self.err(
                raw.subscriber_prefix_len
                    .as_ref()
                    .map(|s| s.span())
                    .unwrap_or(0..0),
                "nat64.subscriber_prefix_len",
                e.to_string(),
            ),
            Nat64ConfigError::Shards(_) => self.err(
                raw.shards.as_ref().map(|s| s.span()).unwrap_or(0..0),
                "nat64.shards",
                e.to_string(),
            ),
            Nat64ConfigError::ZeroLimit(k) | Nat64ConfigError::TooLarge { name: k, .. } => {
                let f = &raw.fragments;
                let (span, key) = match *k {
                    "max_sessions" => (
                        raw.max_sessions.as_ref().map(|s| s.span()),
                        "nat64.max_sessions",
                    ),
                    "max_sessions_per_host" => (
                        raw.max_sessions_per_host.as_ref().map(|s| s.span()),
                        "nat64.max_sessions_per_host",
                    ),
                    "frag.max_entries" => (
                        f.max_entries.as_ref().map(|s| s.span()),
                        "nat64.fragments.max_entries",
                    ),
                    "frag.max_reassembly" => (
                        f.max_reassembly.as_ref().map(|s| s.span()),
                        "nat64.fragments.max_reassembly",
                    ),
                    "frag.max_entries_per_source" => (
                        f.max_entries_per_source.as_ref().map(|s| s.span()),
                        "nat64.fragments.max_entries_per_source",
                    ),
                    "frag.max_reassembly_per_source" => (
                        f.max_reassembly_per_source.as_ref().map(|s| s.span()),
                        "nat64.fragments.max_reassembly_per_source",
                    ),
                    "frag.max_held" => (
                        f.max_held.as_ref().map(|s| s.span()),
                        "nat64.fragments.max_held",
                    ),
                    "frag.max_held_bytes" => (
                        f.max_held_bytes.as_ref().map(|s| s.span()),
                        "nat64.fragments.max_held_bytes",
                    ),
                    "frag.max_held_per_source" => (
                        f.max_held_per_source.as_ref().map(|s| s.span()),
                        "nat64.fragments.max_held_per_source",
                    ),
                    "mapping_log_capacity" => (
                        raw.mapping_log.capacity.as_ref().map(|s| s.span()),
                        "nat64.mapping_log.capacity",
                    ),
                    _ => (None, "nat64"),
                };
                self.err(span.unwrap_or(0..0), key, e.to_string())
            }
            Nat64ConfigError::StaticBib { index, reason, .. } => self.err(
                raw.static_bib.get(*index).map(|s| s.span()).unwrap_or(0..0),
                &format!("nat64.static_bib[{index}]"),
                reason,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_is_read_from_meminfo() {
        let m = "MemTotal:       16384 kB\nMemFree:  100 kB\nMemAvailable:    2048 kB\n";
        assert_eq!(parse_mem_available(m), Some(2 << 20));
        assert_eq!(parse_mem_available("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn tables_larger_than_memory_are_refused() {
        assert!(fits_in_memory(100 << 20, 200 << 20).is_ok());
        let e = fits_in_memory(300 << 20, 200 << 20).unwrap_err();
        assert!(e.contains("300 MiB") && e.contains("200 MiB"), "{e}");
        assert!(e.contains("nat64.max_sessions"), "{e}");
    }
}
