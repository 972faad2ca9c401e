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
use nat64_core::nat64::{Filtering, Nat64, Nat64Config, Nat64ConfigError, Proto, Timeouts};
use nat64_core::siit::SiitConfig;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use toml::Spanned;

/// The default control socket.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/nat64d/control.sock";

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
    max_sessions: Option<Spanned<usize>>,
    max_sessions_per_host: Option<Spanned<u32>>,
    subscriber_prefix_len: Option<Spanned<u8>>,
    filtering: Option<Spanned<String>>,
    shards: Option<Spanned<usize>>,
    #[serde(default)]
    static_bib: Vec<Spanned<RawStaticBib>>,
    #[serde(default)]
    fragments: RawFrag,
    #[serde(default)]
    mapping_log: RawMappingLog,
    #[serde(default)]
    control: RawControl,
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
    udp: Option<u32>,
    icmp: Option<u32>,
    tcp_est: Option<u32>,
    tcp_trans: Option<u32>,
    tcp_incoming_syn: Option<u32>,
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
    max_entries: Option<usize>,
    timeout_ms: Option<Spanned<u64>>,
    max_reassembly: Option<usize>,
    max_entries_per_source: Option<usize>,
    max_reassembly_per_source: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMappingLog {
    enabled: Option<bool>,
    path: Option<Spanned<String>>,
    capacity: Option<usize>,
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
        let dt = Timeouts::default();
        let t = &raw.timeouts;
        core.timeouts = Timeouts {
            udp: t.udp.unwrap_or(dt.udp),
            icmp: t.icmp.unwrap_or(dt.icmp),
            tcp_est: t.tcp_est.unwrap_or(dt.tcp_est),
            tcp_trans: t.tcp_trans.unwrap_or(dt.tcp_trans),
            tcp_incoming_syn: t.tcp_incoming_syn.unwrap_or(dt.tcp_incoming_syn),
        };
        core.enforce_rfc_minimums = raw.enforce_rfc_minimums.unwrap_or(true);
        if let Some(m) = &raw.max_sessions {
            core.max_sessions = *m.get_ref();
        }
        if let Some(m) = &raw.max_sessions_per_host {
            core.max_sessions_per_host = *m.get_ref();
        }
        if let Some(m) = &raw.subscriber_prefix_len {
            core.subscriber_prefix_len = *m.get_ref();
        }
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
        if let Some(s) = &raw.shards {
            core.shards = *s.get_ref();
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
        core.frag = FragConfig {
            max_entries: f.max_entries.unwrap_or(df.max_entries),
            timeout_ms: match &f.timeout_ms {
                Some(t) if *t.get_ref() < 2000 => {
                    return Err(self.err(
                        t.span(),
                        "nat64.fragments.timeout_ms",
                        format!(
                            "{} is below FRAGMENT_MIN = 2000 ms (RFC 6146 §4)",
                            t.get_ref()
                        ),
                    ))
                }
                Some(t) => *t.get_ref(),
                None => df.timeout_ms,
            },
            max_reassembly: f.max_reassembly.unwrap_or(df.max_reassembly),
            max_entries_per_source: f
                .max_entries_per_source
                .unwrap_or(df.max_entries_per_source),
            max_reassembly_per_source: f
                .max_reassembly_per_source
                .unwrap_or(df.max_reassembly_per_source),
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
        if let Some(c) = ml.capacity {
            core.mapping_log_capacity = c;
        }

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
                if crate::nat64_ctl::group_id(g.get_ref()).is_none() {
                    return Err(self.err(
                        g.span(),
                        "nat64.control.group",
                        format!("\"{}\": no such group", g.get_ref()),
                    ));
                }
                Some(g.get_ref().clone())
            }
            None => None,
        };

        // The core's own checks (timeout minimums, ranges, static BIB against pool4/pool6), on
        // tables sized for one session.
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
            Nat64ConfigError::ZeroLimit(k) => {
                let span = match *k {
                    "max_sessions" => raw.max_sessions.as_ref().map(|s| s.span()),
                    "max_sessions_per_host" => raw.max_sessions_per_host.as_ref().map(|s| s.span()),
                    _ => None,
                };
                self.err(span.unwrap_or(0..0), &format!("nat64.{k}"), e.to_string())
            }
            Nat64ConfigError::StaticBib { index, reason, .. } => self.err(
                raw.static_bib.get(*index).map(|s| s.span()).unwrap_or(0..0),
                &format!("nat64.static_bib[{index}]"),
                reason,
            ),
        }
    }
}
