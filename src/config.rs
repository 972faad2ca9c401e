//! The configuration file (TOML): parsing, validation into core types, and error messages that
//! name the file, the line, the key and the reason.
//!
//! Parsing is strict (`deny_unknown_fields` everywhere): a typo is an error, not a silently ignored
//! key. Every address is kept with its source span so that a semantic error (a bad prefix length,
//! overlapping prefixes) points at the line that holds it. Validation builds the core's own types
//! ([`Pool6`], [`Eamt`], [`Rfc6791Pool`], [`XlatConfig`]), so `nat64d check-config` accepts exactly
//! what `nat64d run` accepts.
//!
//! `mode = "nat64"` (stateful, RFC 6146) takes its settings from the `[nat64]` table
//! ([`nat64`], a child module); a `[dns64]` table is added by its module.
#![deny(unsafe_code)]

mod fastpath;
mod nat64;
mod nodes;
pub use fastpath::FastPathConfig;
pub use nat64::{ControlConfig, MappingLog, Nat64Settings, DEFAULT_CONTROL_SOCKET};
pub use nodes::{expand_env, EnvLookup, NodeChoice};

use nat64_core::eamt::{Eam, Eamt};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::rfc6791::Rfc6791Pool;
use nat64_core::rfc7915::{DiscardErrors, MssClamp, XlatConfig};
use nat64_core::siit::SiitConfig;
use serde::Deserialize;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A configuration error, ready to print: `file:line: key: reason`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{file}: cannot read: {error}")]
    Io {
        /// The path as given.
        file: String,
        /// The OS error (in the message, not a `source()`: printed once by an error chain).
        error: std::io::Error,
    },
    /// A syntax, type, unknown-key or value error at a known place.
    #[error("{file}:{line}: {key}: {reason}")]
    Invalid {
        /// The path as given.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The dotted key (`tun.mtu`, `siit.eamt[1].ipv4`).
        key: String,
        /// Why the value is refused.
        reason: String,
    },
}

/// Which translator the daemon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Stateless IP/ICMP translation (RFC 7915) with pool6 and the EAMT.
    Siit,
    /// Stateful NAT64 (RFC 6146); needs a `[nat64]` table.
    Nat64,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

// ---------------------------------------------------------------------------------------------
// The file as written (raw, spanned).

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    mode: Option<Spanned<Mode>>,
    #[serde(default)]
    pool6: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default = "yes")]
    wkp_strict: bool,
    /// Lets a reload apply a file that writes no mapping at all (see [`Config::mappings_written`]).
    #[serde(default)]
    allow_empty_mappings: bool,
    #[serde(default)]
    tun: RawTun,
    #[serde(default)]
    siit: RawSiit,
    #[serde(default)]
    xlat: RawXlat,
    #[serde(default)]
    log: RawLog,
    /// The DNS64 server (RFC 6147); absent = no DNS64.
    #[serde(default)]
    dns64: Option<Spanned<crate::dns64::Dns64Config>>,
    #[serde(default)]
    nat64: Option<nat64::RawNat64>,
    /// The Prometheus endpoint; absent = off.
    #[serde(default)]
    metrics: Option<Spanned<RawMetrics>>,
    /// The control socket in either mode (mode nat64 also reads `[nat64.control]`).
    #[serde(default)]
    control: Option<Spanned<RawTopControl>>,
    /// This gateway's name (`"${NODE_NAME}"`), picking its `[nodes]` entry ([`nodes`]).
    #[serde(default)]
    node: Option<Spanned<String>>,
    /// Per-node settings of a fleet sharing this file.
    #[serde(default)]
    nodes: Option<Spanned<nodes::RawNodes>>,
    /// The eBPF fast path; absent = off.
    #[serde(default)]
    fastpath: Option<Spanned<fastpath::RawFastpath>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopControl {
    socket: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTun {
    name: Option<Spanned<String>>,
    mtu: Option<Spanned<u16>>,
    queues: Option<Spanned<u16>>,
    txqueuelen: Option<Spanned<u32>>,
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
    routes: Option<bool>,
    offload: Option<bool>,
    #[serde(default)]
    extra_routes: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSiit {
    #[serde(default)]
    eamt: Vec<Spanned<RawEam>>,
    #[serde(default)]
    rfc6791_pool: Vec<Spanned<String>>,
    #[serde(default)]
    rfc6791_pool6: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEam {
    ipv4: Spanned<String>,
    ipv6: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawXlat {
    lowest_ipv6_mtu: Option<Spanned<u16>>,
    ipv6_mtu: Option<Spanned<u16>>,
    ipv4_mtu: Option<Spanned<u16>>,
    compute_udp_zero_checksum: Option<bool>,
    copy_tos: Option<bool>,
    tos: Option<u8>,
    generate_ipv4_id: Option<bool>,
    send_icmp_errors: Option<bool>,
    icmp_errors_per_sec: Option<u32>,
    discard_errors: Option<Spanned<String>>,
    icmp_src4: Option<Spanned<String>>,
    icmp_src6: Option<Spanned<String>>,
    mss_clamp_4to6: Option<Spanned<toml::Value>>,
    mss_clamp_6to4: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<Spanned<String>>,
    format: Option<LogFormat>,
}

// ---------------------------------------------------------------------------------------------
// The validated configuration.

/// An IP prefix `addr/len` (either family), as used for routes and TUN addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length.
    pub len: u8,
}

impl std::fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// TUN device settings (restart needed to change them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunConfig {
    /// Interface name (at most 15 bytes).
    pub name: String,
    /// MTU of the device.
    pub mtu: u16,
    /// Number of queues = worker threads.
    pub queues: usize,
    /// Transmit queue length of the device (packets the kernel queues for us to read).
    pub txqueuelen: u32,
    /// Addresses put on the device.
    pub addresses: Vec<IpPrefix>,
    /// Route pool6 and the EAMT's IPv4 prefixes into the device.
    pub routes: bool,
    /// Further routes into the device.
    pub extra_routes: Vec<IpPrefix>,
    /// Open the device with IFF_VNET_HDR: GSO super-packets split on read, GRO on write.
    pub offload: bool,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// An `EnvFilter` directive (`info`, `nat64d=debug,warn`).
    pub level: String,
    /// Text or JSON.
    pub format: LogFormat,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// The translator.
    pub mode: Mode,
    /// The stateless translator's tables and options.
    pub siit: SiitConfig,
    /// The TUN device.
    pub tun: TunConfig,
    /// Logging.
    pub log: LogConfig,
    /// The DNS64 server, if the file has a `[dns64]` table.
    pub dns64: Option<crate::dns64::Dns64Config>,
    /// The `[nat64]` table (present when `mode = "nat64"`).
    pub nat64: Option<Nat64Settings>,
    /// The file has a `pool6` key (false: the default, the WKP).
    pub pool6_written: bool,
    /// `allow_empty_mappings = true`: a reload may apply this file even if it writes no mapping.
    pub allow_empty_mappings: bool,
    /// Mode nat64: each pool4 prefix with the line that writes it.
    pub pool4_lines: Vec<(IpPrefix, usize)>,
    /// `[metrics] listen`: the Prometheus endpoint (`None`: off).
    pub metrics: Option<std::net::SocketAddr>,
    /// The control socket of `nat64d stats|reload|sessions|bib`: `[control]`, or in mode nat64
    /// `[nat64.control]` (with its default path); `None` in mode siit without `[control]`.
    pub control: Option<ControlConfig>,
    /// The `[nodes]` entry picked by `node` (`None`: the file has no `[nodes]` table).
    pub node: Option<NodeChoice>,
    /// `[fastpath]`: the eBPF fast path (off by default).
    pub fastpath: FastPathConfig,
}

impl Config {
    /// The mappings the file writes itself: `pool6` prefixes (when the key is present), EAMT
    /// entries and, in mode nat64, pool4 prefixes. A reload whose file writes none while the
    /// running one wrote some (an emptied or truncated file) is refused unless the new file says
    /// `allow_empty_mappings = true`.
    pub fn mappings_written(&self) -> usize {
        let pool6 = if self.pool6_written {
            self.siit.pool6.prefixes().len()
        } else {
            0
        };
        let pool4 = match (self.mode, &self.nat64) {
            (Mode::Nat64, Some(n)) => n.pool4_prefixes.len(),
            _ => 0,
        };
        pool6 + self.siit.eamt.entries().len() + pool4
    }

    /// pool4 prefixes that hold an address of this host (`host`: interface name and IPv4
    /// address): packets to them end in the host's own stack, never in the TUN, so every
    /// translated flow would be lost. One `file:line: key: reason` per clash.
    pub fn pool4_on_host(&self, host: &[(String, std::net::Ipv4Addr)]) -> Vec<ConfigError> {
        let mut out = Vec::new();
        for (p, line) in &self.pool4_lines {
            let IpAddr::V4(net) = p.addr else { continue };
            for (dev, a) in host {
                if u32::from(*a) & mask32(p.len) == u32::from(net) & mask32(p.len) {
                    out.push(ConfigError::Invalid {
                        file: self.path.display().to_string(),
                        line: *line,
                        key: "nat64.pool4.addresses".to_string(),
                        reason: format!(
                            "{p} holds {a}, an address of this host ({dev}): packets to it are \
                             delivered to the host, never to the TUN; use addresses routed to \
                             this gateway but not assigned to any of its interfaces"
                        ),
                    });
                }
            }
        }
        out
    }

    /// Why a reload from `self` (running) to `new` must be refused, if it must: `new` writes no
    /// mapping where `self` wrote some, and does not say `allow_empty_mappings = true`.
    pub fn reload_refusal(&self, new: &Config) -> Option<String> {
        let (old_n, new_n) = (self.mappings_written(), new.mappings_written());
        (old_n > 0 && new_n == 0 && !new.allow_empty_mappings).then(|| {
            format!(
                "{}: the file writes no mapping (no pool6 key, no siit.eamt entry, no \
                 nat64.pool4 address) where the running configuration has {old_n}: an emptied \
                 or truncated file? Write allow_empty_mappings = true to apply it anyway",
                new.path.display()
            )
        })
    }

    /// The routes the daemon points into the TUN: pool6 prefixes, the EAMT's IPv4 prefixes (when
    /// `tun.routes`), then `tun.extra_routes`. Sorted, without duplicates.
    pub fn tun_routes(&self) -> Vec<IpPrefix> {
        let mut r = Vec::new();
        if self.tun.routes {
            for p in self.siit.pool6.prefixes() {
                r.push(IpPrefix {
                    addr: IpAddr::V6(p.addr()),
                    len: p.prefix_len(),
                });
            }
            if let (Mode::Nat64, Some(n)) = (self.mode, &self.nat64) {
                r.extend(n.pool4_prefixes.iter().copied());
            }
            for e in self.siit.eamt.entries() {
                let (a, l) = e.v4();
                r.push(IpPrefix {
                    addr: IpAddr::V4(a),
                    len: l,
                });
            }
        }
        r.extend(self.tun.extra_routes.iter().copied());
        r.sort();
        r.dedup();
        r
    }
}

/// Reads and validates `path`.
///
/// # Errors
/// [`ConfigError`] naming the file, line, key and reason.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = read_file(path)?;
    parse(path, &text)
}

/// The largest configuration file read (a real one is a few KiB; a bigger one is a mistake, such as
/// `/dev/zero` or a log file given by error).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads a configuration file: a regular file (a symlink to one is fine), not empty, at most
/// [`MAX_FILE_BYTES`], UTF-8.
///
/// # Errors
/// [`ConfigError::Io`] for what cannot be read, [`ConfigError::Invalid`] (`(file)`) otherwise.
pub fn read_file(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read as _;
    let file = path.display().to_string();
    let io = |error| ConfigError::Io {
        file: file.clone(),
        error,
    };
    let whole = |line: usize, reason: String| ConfigError::Invalid {
        file: file.clone(),
        line,
        key: "(file)".to_string(),
        reason,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let m = f.metadata().map_err(io)?;
    if !m.is_file() {
        return Err(whole(
            1,
            "not a regular file (a device, FIFO or directory); give the configuration file".into(),
        ));
    }
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(whole(
            1,
            format!("larger than {MAX_FILE_BYTES} bytes; this is not a nat64d configuration"),
        ));
    }
    if bytes.is_empty() {
        return Err(whole(
            1,
            "the file is empty (0 bytes): refused, an empty file would run with no mapping at all"
                .into(),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        whole(line, format!("not UTF-8 (byte {at} is invalid)"))
    })
}

/// Validates `text` as the content of `path` (the path is used in messages only).
///
/// # Errors
/// [`ConfigError::Invalid`] naming the file, line, key and reason.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    parse_with_env(path, text, &|name| std::env::var(name))
}

/// [`parse`] with the environment `node = "${VAR}"` is expanded from (tests pick a node without
/// changing the process environment).
///
/// # Errors
/// [`ConfigError::Invalid`] naming the file, line, key and reason.
pub fn parse_with_env(path: &Path, text: &str, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
    let v = Validator {
        file: path.display().to_string(),
        text,
    };
    let mut raw: RawConfig = toml::from_str(text).map_err(|e| v.toml_error(&e))?;
    let node = v.pick_node(&mut raw, env)?;
    let mut cfg = v.validate(path, raw)?;
    cfg.node = node;
    Ok(cfg)
}

struct Validator<'a> {
    file: String,
    text: &'a str,
}

impl Validator<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The line of the first string value starting with `v` (a pool4 address as written); 1 if
    /// not found.
    fn line_of_value(&self, v: &str) -> usize {
        self.text
            .find(&format!("\"{v}"))
            .map_or(1, |o| self.line_of(o))
    }

    fn err(&self, span: Range<usize>, key: &str, reason: impl std::fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: self.line_of(span.start),
            key: key.to_string(),
            reason: reason.to_string(),
        }
    }

    /// A toml/serde error: the message says why; the key is read back from the source around the
    /// span (the `[table]` header above it plus the key on its line).
    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let mut line = self.line_of(span.start);
        let mut reason = e.message().trim().replace('\n', " ");
        // An array or inline table left open: the parser reads on into the next lines (a table
        // header below is taken as an element) and fails there. Point at the opening line.
        if let Some(open) = self.unclosed_before(span.start) {
            let l = self.line_of(open);
            let headers_between = self
                .text
                .lines()
                .skip(l)
                .take(line.saturating_sub(l))
                .any(looks_like_header);
            if l < line && headers_between {
                reason = format!(
                    "`{}` opened here is not closed before line {line}",
                    &self.text[open..=open]
                );
                line = l;
            }
        }
        let key = self.key_at(line);
        ConfigError::Invalid {
            file: self.file.clone(),
            line,
            key,
            reason,
        }
    }

    /// The offset of the outermost value bracket (`[` or `{`) still open at `end`, skipping
    /// strings, comments and table headers.
    fn unclosed_before(&self, end: usize) -> Option<usize> {
        let b = self.text.as_bytes();
        let end = end.min(b.len());
        let mut stack: Vec<usize> = Vec::new();
        let (mut i, mut line_start) = (0, true);
        let mut quote: Option<u8> = None;
        while i < end {
            let c = b[i];
            if let Some(q) = quote {
                if c == b'\\' && q == b'"' {
                    i += 1;
                } else if c == q || c == b'\n' {
                    quote = None;
                }
            } else {
                match c {
                    b'"' | b'\'' => quote = Some(c),
                    b'#' => {
                        while i < end && b[i] != b'\n' {
                            i += 1;
                        }
                        line_start = true;
                        continue;
                    }
                    b'[' if line_start && stack.is_empty() => {
                        while i < end && b[i] != b'\n' {
                            i += 1;
                        }
                        continue;
                    }
                    b'[' | b'{' => stack.push(i),
                    b']' | b'}' => {
                        stack.pop();
                    }
                    _ => {}
                }
            }
            if c == b'\n' {
                line_start = true;
            } else if !c.is_ascii_whitespace() {
                line_start = false;
            }
            i += 1;
        }
        stack.first().copied()
    }

    fn key_at(&self, line: usize) -> String {
        let lines: Vec<&str> = self.text.lines().collect();
        let Some(here) = lines.get(line.saturating_sub(1)) else {
            return "(file)".to_string();
        };
        let here = here.trim();
        let header = |l: &str| -> Option<String> {
            let l = l.trim();
            let inner = l
                .strip_prefix("[[")
                .and_then(|x| x.split("]]").next())
                .or_else(|| l.strip_prefix('[').and_then(|x| x.split(']').next()))?;
            Some(inner.trim().to_string()).filter(|t| !t.is_empty())
        };
        if here.starts_with('[') {
            return header(here).unwrap_or_else(|| "(table)".to_string());
        }
        let key = here
            .split('=')
            .next()
            .map(|k| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.is_empty() && !k.starts_with('#'));
        let table = lines[..line.saturating_sub(1)]
            .iter()
            .rev()
            .find(|l| l.trim_start().starts_with('['))
            .and_then(|l| header(l));
        match (table, key) {
            (Some(t), Some(k)) => format!("{t}.{k}"),
            (None, Some(k)) => k,
            (Some(t), None) => t,
            (None, None) => "(file)".to_string(),
        }
    }

    fn validate(&self, path: &Path, raw: RawConfig) -> Result<Config, ConfigError> {
        let mode_span = raw.mode.as_ref().map(|m| m.span()).unwrap_or(0..0);
        let mode = match raw.mode {
            Some(m) => m.into_inner(),
            None => Mode::Siit,
        };

        // pool6
        let (pool6_span, pool6_raw) = match raw.pool6 {
            Some(p) => (p.span(), p.into_inner()),
            None => (0..0, Vec::new()),
        };
        let pool6_written = pool6_span != (0..0);
        let mut prefixes = Vec::new();
        for s in &pool6_raw {
            let (a, l) = self.prefix(s, "pool6", false)?;
            let IpAddr::V6(a) = a else {
                return Err(self.err(
                    s.span(),
                    "pool6",
                    format!("prefix {}: not IPv6", s.get_ref()),
                ));
            };
            prefixes.push(
                Prefix6052::new(a, l)
                    .map_err(|e| self.err(s.span(), "pool6", format!("prefix {e}")))?,
            );
        }
        if prefixes.is_empty() && pool6_span == (0..0) {
            prefixes.push(Prefix6052::WKP);
        }

        // EAMT
        let eams = self.eams(&raw.siit.eamt, "siit.eamt")?;
        let eamt_span = raw.siit.eamt.first().map(|e| e.span()).unwrap_or(0..0);
        let eamt = Eamt::new(eams).map_err(|e| self.err(eamt_span, "siit.eamt", e))?;
        // `pool6 = []`: an EAM-only SIIT (RFC 7756 SIIT-DC), which needs EAMs to do anything;
        // NAT64 always needs a prefix.
        let pool6 = if prefixes.is_empty() && mode == Mode::Siit && !eamt.is_empty() {
            Pool6::none(raw.wkp_strict)
        } else {
            Pool6::new(prefixes, raw.wkp_strict).map_err(|e| {
                let why = match e {
                    nat64_core::pool6::Pool6Error::Empty => "pool6 needs at least one prefix \
                        (an empty pool6 is an EAM-only SIIT: mode \"siit\" with [siit] eamt entries)"
                        .to_string(),
                    e => e.to_string(),
                };
                self.err(pool6_span, "pool6", why)
            })?
        };

        // RFC 6791 pool
        let mut r6791 = Vec::new();
        for s in &raw.siit.rfc6791_pool {
            let (a, l) = self.prefix(s, "siit.rfc6791_pool", true)?;
            let IpAddr::V4(a) = a else {
                return Err(self.err(s.span(), "siit.rfc6791_pool", "not an IPv4 prefix"));
            };
            r6791.push((a, l));
        }
        let mut rfc6791 = Rfc6791Pool::new(&r6791).map_err(|e| {
            let span = raw
                .siit
                .rfc6791_pool
                .first()
                .map(|s| s.span())
                .unwrap_or(0..0);
            self.err(span, "siit.rfc6791_pool", e)
        })?;
        if let Some(s) = &raw.siit.rfc6791_pool6 {
            let (a, l) = self.prefix(s, "siit.rfc6791_pool6", true)?;
            let IpAddr::V6(a) = a else {
                return Err(self.err(s.span(), "siit.rfc6791_pool6", "not an IPv6 prefix"));
            };
            rfc6791 = rfc6791
                .with_v6(a, l)
                .map_err(|e| self.err(s.span(), "siit.rfc6791_pool6", e))?;
        }

        // TUN
        let name = match raw.tun.name {
            Some(n) => {
                let s = n.get_ref();
                if s.is_empty()
                    || s.len() > 15
                    || s.contains(['/', ':'])
                    || s.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(self.err(
                        n.span(),
                        "tun.name",
                        format!(
                            "\"{s}\": an interface name is 1-15 bytes without '/', ':' or spaces"
                        ),
                    ));
                }
                s.clone()
            }
            None => "nat64".to_string(),
        };
        let mtu = match raw.tun.mtu {
            Some(m) if *m.get_ref() < 1280 => {
                return Err(self.err(
                    m.span(),
                    "tun.mtu",
                    format!("{} is below the IPv6 minimum MTU of 1280", m.get_ref()),
                ))
            }
            Some(m) => *m.get_ref(),
            None => 1500,
        };
        let queues = match raw.tun.queues {
            Some(q) if *q.get_ref() > 256 => {
                return Err(self.err(q.span(), "tun.queues", "at most 256 queues"))
            }
            Some(q) if *q.get_ref() > 0 => usize::from(*q.get_ref()),
            _ => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        };
        let txqueuelen = match raw.tun.txqueuelen {
            Some(t) if *t.get_ref() == 0 => {
                return Err(self.err(t.span(), "tun.txqueuelen", "must be at least 1"))
            }
            Some(t) => *t.get_ref(),
            None => 1000,
        };
        let mut addresses = Vec::new();
        for s in &raw.tun.addresses {
            let (addr, len) = self.prefix(s, "tun.addresses", true)?;
            addresses.push(IpPrefix { addr, len });
        }
        let mut extra_routes = Vec::new();
        for s in &raw.tun.extra_routes {
            let (addr, len) = self.prefix(s, "tun.extra_routes", false)?;
            extra_routes.push(IpPrefix { addr, len });
        }

        // RFC 7915 options
        let d = XlatConfig::default();
        let mtu_opt = |v: &Option<Spanned<u16>>, key: &str, min: u16, def: u16| match v {
            Some(m) if *m.get_ref() < min => Err(self.err(
                m.span(),
                key,
                format!("{} is below the minimum of {min}", m.get_ref()),
            )),
            Some(m) => Ok(*m.get_ref()),
            None => Ok(def),
        };
        let x = &raw.xlat;
        let xlat = XlatConfig {
            lowest_ipv6_mtu: mtu_opt(
                &x.lowest_ipv6_mtu,
                "xlat.lowest_ipv6_mtu",
                1280,
                d.lowest_ipv6_mtu,
            )?,
            ipv6_mtu: mtu_opt(&x.ipv6_mtu, "xlat.ipv6_mtu", 1280, d.ipv6_mtu)?,
            ipv4_mtu: mtu_opt(&x.ipv4_mtu, "xlat.ipv4_mtu", 68, d.ipv4_mtu)?,
            compute_udp_zero_checksum: x
                .compute_udp_zero_checksum
                .unwrap_or(d.compute_udp_zero_checksum),
            copy_tos: x.copy_tos.unwrap_or(d.copy_tos),
            tos: x.tos.unwrap_or(d.tos),
            generate_ipv4_id: x.generate_ipv4_id.unwrap_or(d.generate_ipv4_id),
            decrement_ttl: true,
            send_icmp_errors: x.send_icmp_errors.unwrap_or(d.send_icmp_errors),
            icmp_errors_per_sec: x.icmp_errors_per_sec.unwrap_or(d.icmp_errors_per_sec),
            discard_errors: match &x.discard_errors {
                Some(s) => match s.get_ref().as_str() {
                    "off" => DiscardErrors::Off,
                    "rate-limited" => DiscardErrors::RateLimited,
                    "sent" => DiscardErrors::Sent,
                    o => {
                        return Err(self.err(
                            s.span(),
                            "xlat.discard_errors",
                            format!("\"{o}\": expected \"off\", \"rate-limited\" or \"sent\""),
                        ))
                    }
                },
                None => d.discard_errors,
            },
            icmp_src4: match &x.icmp_src4 {
                Some(s) => match s.get_ref().parse::<std::net::Ipv4Addr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        return Err(self.err(
                            s.span(),
                            "xlat.icmp_src4",
                            format!("\"{}\" is not an IPv4 address", s.get_ref()),
                        ))
                    }
                },
                None => d.icmp_src4,
            },
            icmp_src6: match &x.icmp_src6 {
                Some(s) => match s.get_ref().parse::<std::net::Ipv6Addr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        return Err(self.err(
                            s.span(),
                            "xlat.icmp_src6",
                            format!("\"{}\" is not an IPv6 address", s.get_ref()),
                        ))
                    }
                },
                None => d.icmp_src6,
            },
            mss_clamp_4to6: self.mss_clamp(&x.mss_clamp_4to6, "xlat.mss_clamp_4to6")?,
            mss_clamp_6to4: self.mss_clamp(&x.mss_clamp_6to4, "xlat.mss_clamp_6to4")?,
        };

        // Logging
        let level = match raw.log.level {
            Some(l) => {
                let s = l.get_ref();
                if let Some(bad) = not_a_level(s) {
                    return Err(self.err(
                        l.span(),
                        "log.level",
                        format!(
                            "\"{bad}\" is not a level: use trace, debug, info, warn, error or \
                             off, or target=level directives such as \"nat64d=debug,warn\""
                        ),
                    ));
                }
                if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(s) {
                    return Err(self.err(l.span(), "log.level", format!("\"{s}\": {e}")));
                }
                s.clone()
            }
            None => "info".to_string(),
        };

        // DNS64: the table's own validation names the key; the line is the table's.
        let dns64 = match raw.dns64 {
            Some(d) => {
                if let Err(e) = d.get_ref().validate() {
                    return Err(self.err(d.span(), &format!("dns64.{}", e.key), e.reason.clone()));
                }
                Some(d.into_inner())
            }
            None => None,
        };

        let siit = SiitConfig {
            pool6,
            eamt,
            rfc6791,
            xlat,
        };
        // [nat64]: validated whenever written (check-config catches its errors in either mode),
        // needed by mode = "nat64", kept only there.
        // [siit] eamt in mode nat64: RFC 6146's translator has no EAMT; the entries' IPv4
        // prefixes would only be routed into the TUN and dropped there.
        if let (Mode::Nat64, Some(first)) = (mode, raw.siit.eamt.first()) {
            return Err(self.err(
                first.span(),
                "siit.eamt",
                "not used in mode = \"nat64\" (the stateful translator has no EAMT; its IPv4 \
                 prefixes would be routed into the TUN and dropped): remove [siit] eamt or use \
                 mode = \"siit\"",
            ));
        }
        let nat64 = match (mode, raw.nat64) {
            (Mode::Nat64, n) => Some(self.nat64(n, &siit, mode_span)?),
            (Mode::Siit, Some(n)) => {
                self.nat64(Some(n), &siit, mode_span)?;
                None
            }
            (Mode::Siit, None) => None,
        };

        let metrics = match &raw.metrics {
            None => None,
            Some(m) => match &m.get_ref().listen {
                None => {
                    return Err(self.err(
                        m.span(),
                        "metrics.listen",
                        "missing: write listen = \"[::1]:9164\" (or remove [metrics] to turn \
                         the endpoint off)",
                    ))
                }
                Some(l) => Some(l.get_ref().parse::<std::net::SocketAddr>().map_err(|e| {
                    self.err(
                        l.span(),
                        "metrics.listen",
                        format!(
                            "\"{}\": {e}; an address and port such as \"[::1]:9164\" or \
                             \"127.0.0.1:9164\"",
                            l.get_ref()
                        ),
                    )
                })?),
            },
        };
        let control = match (&raw.control, &nat64) {
            // [control] wins over [nat64.control] (documented in docs/operations.md).
            (Some(c), _) => {
                let c = c.get_ref();
                let socket = match &c.socket {
                    Some(s) => {
                        let p = PathBuf::from(s.get_ref());
                        if !p.is_absolute() {
                            return Err(self.err(
                                s.span(),
                                "control.socket",
                                format!("\"{}\": an absolute path is needed", s.get_ref()),
                            ));
                        }
                        p
                    }
                    None => PathBuf::from(DEFAULT_CONTROL_SOCKET),
                };
                let group = match &c.group {
                    Some(g) if g.get_ref().is_empty() => None,
                    Some(g) => {
                        if let Err(e) = crate::host::group_id(g.get_ref()) {
                            return Err(self.err(g.span(), "control.group", e.to_string()));
                        }
                        Some(g.get_ref().clone())
                    }
                    None => None,
                };
                Some(ControlConfig { socket, group })
            }
            (None, Some(n)) => Some(n.control.clone()),
            (None, None) => None,
        };
        let fastpath = self.fastpath(raw.fastpath, mode)?;
        let pool4_lines = nat64
            .iter()
            .flat_map(|n| n.pool4_prefixes.iter())
            .map(|p| (*p, self.line_of_value(&p.addr.to_string())))
            .collect();
        Ok(Config {
            path: path.to_path_buf(),
            mode,
            siit,
            tun: TunConfig {
                name,
                mtu,
                queues,
                txqueuelen,
                addresses,
                routes: raw.tun.routes.unwrap_or(true),
                extra_routes,
                offload: raw.tun.offload.unwrap_or(true),
            },
            log: LogConfig {
                level,
                format: raw.log.format.unwrap_or(LogFormat::Text),
            },
            dns64,
            nat64,
            pool6_written,
            allow_empty_mappings: raw.allow_empty_mappings,
            pool4_lines,
            metrics,
            control,
            node: None,
            fastpath,
        })
    }

    /// Parses EAMT entries written under `key` (`siit.eamt`, `nodes.NAME.siit.eamt`).
    fn eams(&self, list: &[Spanned<RawEam>], key: &str) -> Result<Vec<Eam>, ConfigError> {
        let mut eams = Vec::new();
        for (i, e) in list.iter().enumerate() {
            let e = e.get_ref();
            let k4 = format!("{key}[{i}].ipv4");
            let k6 = format!("{key}[{i}].ipv6");
            let (a4, l4) = self.prefix(&e.ipv4, &k4, true)?;
            let (a6, l6) = self.prefix(&e.ipv6, &k6, true)?;
            let IpAddr::V4(a4) = a4 else {
                return Err(self.err(e.ipv4.span(), &k4, "not an IPv4 address"));
            };
            let IpAddr::V6(a6) = a6 else {
                return Err(self.err(e.ipv6.span(), &k6, "not an IPv6 address"));
            };
            eams.push(
                Eam::new(a4, l4, a6, l6)
                    .map_err(|err| self.err(e.ipv4.span(), &format!("{key}[{i}]"), err))?,
            );
        }
        Ok(eams)
    }

    /// Parses `addr/len`; without `/len` a host prefix when `host_ok`.
    fn prefix(
        &self,
        s: &Spanned<String>,
        key: &str,
        host_ok: bool,
    ) -> Result<(IpAddr, u8), ConfigError> {
        parse_prefix(s.get_ref(), host_ok)
            .map_err(|why| self.err(s.span(), key, format!("\"{}\": {why}", s.get_ref())))
    }

    /// `[xlat] mss_clamp_4to6` / `mss_clamp_6to4`: `true` (the default) clamps translated SYNs
    /// to what fits the MTUs, `false` leaves them alone, a number is the largest MSS let through.
    fn mss_clamp(
        &self,
        v: &Option<Spanned<toml::Value>>,
        key: &str,
    ) -> Result<MssClamp, ConfigError> {
        let Some(v) = v else {
            return Ok(MssClamp::Auto);
        };
        let why = match v.get_ref() {
            toml::Value::Boolean(true) => return Ok(MssClamp::Auto),
            toml::Value::Boolean(false) => return Ok(MssClamp::Off),
            toml::Value::Integer(n) => match u16::try_from(*n) {
                Ok(m) if m >= MSS_MIN => return Ok(MssClamp::Max(m)),
                _ => format!("{n} is not an MSS from {MSS_MIN} to 65535"),
            },
            o => format!("{o}: expected true, false or an MSS from {MSS_MIN} to 65535"),
        };
        Err(self.err(v.span(), key, why))
    }
}

/// The smallest fixed MSS accepted: RFC 9293 §3.7.1's default for IPv4 (a 576-byte datagram).
const MSS_MIN: u16 = 536;

/// The first directive of a log filter that is a bare word other than a level (`verbose`):
/// `EnvFilter` would take it as a target name and log nothing a user expects.
fn not_a_level(filter: &str) -> Option<&str> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    filter.split(',').map(str::trim).find(|d| {
        !d.is_empty()
            && !d.contains(['=', '[', ':'])
            && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(d))
    })
}

/// Parses `addr/len` (or a bare address, as a host prefix, when `host_ok`). Host bits beyond the
/// length are refused.
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_prefix(s: &str, host_ok: bool) -> Result<(IpAddr, u8), String> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a
        .trim()
        .parse()
        .map_err(|_| "not an IP address".to_string())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match l {
        Some(l) => l
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| format!("prefix length must be a number from 0 to {max}"))?,
        None if host_ok => max,
        None => return Err("a prefix needs a length (addr/len)".to_string()),
    };
    let host_bits = match addr {
        IpAddr::V4(a) => u32::from(a) & !mask32(len) != 0,
        IpAddr::V6(a) => u128::from(a) & !mask128(len) != 0,
    };
    if host_bits && l.is_some() {
        return Err(format!("address has bits set beyond /{len}"));
    }
    Ok((addr, len))
}

/// `[name]` or `[[name]]` alone on a line.
fn looks_like_header(l: &str) -> bool {
    let t = l.split('#').next().unwrap_or("").trim();
    let inner = t
        .strip_prefix("[[")
        .and_then(|x| x.strip_suffix("]]"))
        .or_else(|| t.strip_prefix('[').and_then(|x| x.strip_suffix(']')));
    inner.is_some_and(|x| {
        !x.is_empty()
            && x.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '))
    })
}

fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

/// A human-readable summary of what a config translates (logged at start and reload).
pub fn summary(c: &Config) -> String {
    let p: Vec<String> = c
        .siit
        .pool6
        .prefixes()
        .iter()
        .map(|p| format!("{}/{}", p.addr(), p.prefix_len()))
        .collect();
    let pool4 = match &c.nat64 {
        Some(n) => format!(
            " pool4=[{}]",
            n.pool4_prefixes
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    };
    let node = match &c.node {
        Some(n) => format!("node={} ([nodes] entry at line {}) ", n.name, n.line),
        None => String::new(),
    };
    format!(
        "{node}mode={}{pool4} pool6=[{}] eamt={} entries tun={} mtu={} queues={}",
        match c.mode {
            Mode::Siit => "siit",
            Mode::Nat64 => "nat64",
        },
        p.join(", "),
        c.siit.eamt.entries().len(),
        c.tun.name,
        c.tun.mtu,
        c.tun.queues
    ) + &match &c.dns64 {
        Some(d) => format!(
            " dns64=[{}] upstreams=[{}]",
            d.listen
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            d.upstreams
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    }
}
