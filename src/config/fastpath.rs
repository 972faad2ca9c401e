//! The `[fastpath]` table: the eBPF fast path (`src/fastpath`, `docs/fastpath.md`).
//!
//! ```toml
//! [fastpath]
//! enabled = true                  # default false
//! ipv6_interfaces = ["eth0"]      # TC ingress; IPv4 packets translated from here leave by
//! ipv4_interfaces = ["eth1"]      # the first ipv4 interface, and the other way round
//! ```
//!
//! Mode siit only for now: NAT64 sessions are not installed into the program yet (issue 15).

use super::{ConfigError, Mode, Validator};
use serde::Deserialize;
use toml::Spanned;

/// `[fastpath]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFastpath {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    ipv6_interfaces: Vec<Spanned<String>>,
    #[serde(default)]
    ipv4_interfaces: Vec<Spanned<String>>,
}

/// The validated `[fastpath]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastPathConfig {
    /// Load and attach the program.
    pub enabled: bool,
    /// Interfaces facing the IPv6 side (TC ingress; translated IPv6 leaves by the first).
    pub ipv6_interfaces: Vec<String>,
    /// Interfaces facing the IPv4 side (TC ingress; translated IPv4 leaves by the first).
    pub ipv4_interfaces: Vec<String>,
}

/// Linux's IFNAMSIZ less the terminating NUL.
const MAX_IFNAME: usize = 15;

impl Validator<'_> {
    pub(super) fn fastpath(
        &self,
        raw: Option<Spanned<RawFastpath>>,
        mode: Mode,
    ) -> Result<FastPathConfig, ConfigError> {
        let Some(raw) = raw else {
            return Ok(FastPathConfig::default());
        };
        let span = raw.span();
        let raw = raw.into_inner();
        let names = |list: Vec<Spanned<String>>, key: &str| {
            let mut out: Vec<String> = Vec::new();
            for n in list {
                let s = n.get_ref();
                if s.is_empty()
                    || s.len() > MAX_IFNAME
                    || s.contains(['/', ':'])
                    || s.chars().any(char::is_whitespace)
                {
                    return Err(self.err(
                        n.span(),
                        key,
                        format!("\"{s}\": not an interface name (1 to {MAX_IFNAME} characters, no '/', ':' or space)"),
                    ));
                }
                if out.contains(s) {
                    return Err(self.err(n.span(), key, format!("\"{s}\" is listed twice")));
                }
                out.push(s.clone());
            }
            Ok(out)
        };
        let ipv6_interfaces = names(raw.ipv6_interfaces, "fastpath.ipv6_interfaces")?;
        let ipv4_interfaces = names(raw.ipv4_interfaces, "fastpath.ipv4_interfaces")?;
        if let Some(both) = ipv6_interfaces.iter().find(|n| ipv4_interfaces.contains(n)) {
            return Err(self.err(
                span,
                "fastpath",
                format!("\"{both}\" is in both ipv6_interfaces and ipv4_interfaces"),
            ));
        }
        if raw.enabled {
            if mode != Mode::Siit {
                return Err(self.err(
                    span,
                    "fastpath.enabled",
                    "the fast path translates mode siit only (NAT64 sessions are not installed \
                     into it yet); write enabled = false",
                ));
            }
            if ipv6_interfaces.is_empty() || ipv4_interfaces.is_empty() {
                return Err(self.err(
                    span,
                    "fastpath.enabled",
                    "needs ipv6_interfaces and ipv4_interfaces (at least one each): the \
                     interfaces where translated traffic arrives and leaves",
                ));
            }
        }
        Ok(FastPathConfig {
            enabled: raw.enabled,
            ipv6_interfaces,
            ipv4_interfaces,
        })
    }
}
