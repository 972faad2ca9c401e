//! Per-node settings: one file (a Kubernetes ConfigMap) for a fleet of gateways, each of which
//! owns its IPv4 addresses.
//!
//! `node = "${NODE_NAME}"` names this gateway (`${VAR}` is read from the environment; in a
//! DaemonSet the Downward API sets it to `spec.nodeName`) and picks its entry of the `[nodes]`
//! table. An entry writes the keys that must differ between gateways, with the same names as at
//! the top of the file:
//!
//! ```toml
//! node = "${NODE_NAME}"
//! [nodes.egress-a.nat64.pool4]
//! addresses = ["203.0.113.64/30"]
//! [nodes.egress-b.nat64.pool4]
//! addresses = ["203.0.113.68/30"]
//! ```
//!
//! - `nodes.NAME.nat64.pool4.addresses` is this gateway's pool4 (mode nat64). The top-level
//!   `[nat64.pool4]` then keeps only the shared port ranges: a shared address would be in every
//!   node's pool4. Two nodes' pool4 must not overlap: IPv4 return traffic is routed to the
//!   owner of the address, and another gateway has no session for it.
//! - `nodes.NAME.siit.eamt` entries are added to the shared `[siit] eamt` (mode siit).
//!
//! Every entry is validated on every node (so `check-config` on any one of them catches a typo in
//! another's entry); then the picked entry's keys are put in place of the top-level ones and the
//! file is validated as if they had been written there, with their own lines. A file without
//! `node` and `[nodes]` is untouched.

use super::{ConfigError, Mode, RawConfig, RawEam, Validator};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::env::VarError;
use std::net::IpAddr;
use toml::Spanned;

/// The `[nodes]` table: entry name → entry.
pub(super) type RawNodes = BTreeMap<Spanned<String>, Spanned<RawNode>>;

/// One `[nodes.NAME]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    #[serde(default)]
    nat64: RawNodeNat64,
    #[serde(default)]
    siit: RawNodeSiit,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNodeNat64 {
    #[serde(default)]
    pool4: RawNodePool4,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNodePool4 {
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNodeSiit {
    #[serde(default)]
    eamt: Vec<Spanned<RawEam>>,
}

/// The `[nodes]` entry this gateway runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeChoice {
    /// The node name after expansion (`egress-a`).
    pub name: String,
    /// `node` as written (`${NODE_NAME}`).
    pub written: String,
    /// The line of the entry's name in the file.
    pub line: usize,
}

/// Looks up an environment variable (`std::env::var`, or a map in tests).
pub type EnvLookup<'e> = &'e dyn Fn(&str) -> Result<String, VarError>;

/// Expands `${NAME}` in `s` (NAME: letters, digits and `_`, not starting with a digit). Any
/// other `$` is refused, so a `$NODE_NAME` without braces is not taken as a literal name.
///
/// # Errors
/// Why the value cannot be expanded, naming the variable.
pub fn expand_env(s: &str, env: EnvLookup<'_>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let name = after
            .strip_prefix('{')
            .and_then(|a| a.split_once('}'))
            .map(|(n, _)| n)
            .filter(|n| {
                n.chars().next().is_some_and(|c| !c.is_ascii_digit())
                    && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .ok_or_else(|| {
                "a `$` starts an environment variable only as ${NAME} (letters, digits, _)"
                    .to_string()
            })?;
        match env(name) {
            Ok(v) => out.push_str(&v),
            Err(VarError::NotPresent) => {
                return Err(format!(
                    "environment variable {name} is not set (in a DaemonSet set it from the \
                     Downward API: fieldRef fieldPath spec.nodeName)"
                ))
            }
            Err(VarError::NotUnicode(_)) => {
                return Err(format!("environment variable {name} is not UTF-8"))
            }
        }
        rest = &after[name.len() + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One entry's pool4 as IPv4 prefixes (address as u32, length), for the overlap check.
struct NodePool4 {
    name: String,
    line: usize,
    prefixes: Vec<(u32, u8)>,
}

/// A node name as a TOML key: bare when it can be (`egress-a`), else quoted
/// (`"node-1.example.org"`: a bare dotted key would be three nested tables).
fn bare_or_quoted(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The largest number of entry names an error lists.
const LIST_NAMES: usize = 8;

impl Validator<'_> {
    /// Resolves `node` and `[nodes]`: validates every entry, refuses overlapping pool4 between
    /// entries, then moves the picked entry's keys into `raw` (pool4 addresses into
    /// `[nat64.pool4]`, EAMs after the shared `[siit] eamt`). `None` when the file has neither.
    pub(super) fn pick_node(
        &self,
        raw: &mut RawConfig,
        env: EnvLookup<'_>,
    ) -> Result<Option<NodeChoice>, ConfigError> {
        let (node, nodes) =
            match (raw.node.take(), raw.nodes.take()) {
                (None, None) => return Ok(None),
                (Some(n), Some(t)) => (n, t),
                (None, Some(t)) => return Err(self.err(
                    t.span(),
                    "node",
                    "a [nodes] table needs node = \"${NODE_NAME}\" (at the top of the file) to \
                     pick this gateway's entry",
                )),
                (Some(n), None) => {
                    return Err(self.err(
                        n.span(),
                        "node",
                        format!(
                        "\"{}\": there is no [nodes] table to pick an entry from (remove node, \
                         or add [nodes.NAME.nat64.pool4] entries)",
                        n.get_ref()
                    ),
                    ))
                }
            };
        let mode = raw.mode.as_ref().map_or(Mode::Siit, |m| *m.get_ref());
        let name = expand_env(node.get_ref(), env).map_err(|why| {
            self.err(
                node.span(),
                "node",
                format!("\"{}\": {why}", node.get_ref()),
            )
        })?;
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(self.err(
                node.span(),
                "node",
                format!(
                    "\"{}\" gives \"{name}\": a node name is not empty and has no spaces",
                    node.get_ref()
                ),
            ));
        }

        // The top-level pool4 addresses would be shared by every node.
        if let Some(first) = raw
            .nat64
            .as_mut()
            .and_then(|n| n.pool4_addresses_mut().first())
        {
            return Err(self.err(
                first.span(),
                "nat64.pool4.addresses",
                "with a [nodes] table each node writes its own pool4 in \
                 [nodes.NAME.nat64.pool4] addresses: a top-level address would be in every \
                 node's pool4",
            ));
        }

        // Every entry, whichever is picked: its pool4 as IPv4 prefixes, its EAMs.
        let nodes = nodes.into_inner();
        let shared_eams = self.eams(&raw.siit.eamt, "siit.eamt")?;
        let mut pools: Vec<NodePool4> = Vec::new();
        for (k, entry) in &nodes {
            let e = entry.get_ref();
            let key = format!("nodes.{}", bare_or_quoted(k.get_ref()));
            let mut pool = Vec::new();
            for s in &e.nat64.pool4.addresses {
                let akey = format!("{key}.nat64.pool4.addresses");
                let (a, l) = self.prefix(s, &akey, true)?;
                let IpAddr::V4(a) = a else {
                    return Err(self.err(s.span(), &akey, "not an IPv4 address"));
                };
                pool.push((u32::from(a), l));
            }
            if mode == Mode::Nat64 && pool.is_empty() {
                return Err(self.err(
                    k.span(),
                    &format!("{key}.nat64.pool4.addresses"),
                    format!(
                        "node \"{}\" has no pool4 addresses (mode = \"nat64\": each node needs \
                         its own, in [{key}.nat64.pool4] addresses)",
                        k.get_ref(),
                    ),
                ));
            }
            let ekey = format!("{key}.siit.eamt");
            let mut all = shared_eams.clone();
            all.extend(self.eams(&e.siit.eamt, &ekey)?);
            if let Err(why) = nat64_core::eamt::Eamt::new(all) {
                let span = e.siit.eamt.first().map_or(k.span(), |x| x.span());
                return Err(self.err(span, &ekey, format!("with the shared [siit] eamt: {why}")));
            }
            pools.push(NodePool4 {
                name: k.get_ref().clone(),
                line: self.line_of(k.span().start),
                prefixes: pool,
            });
        }
        self.pool4_disjoint(&nodes, &pools)?;

        let mut nodes = nodes;
        let Some((key, entry)) = nodes.remove_entry(name.as_str()) else {
            let names: Vec<String> = pools.iter().map(|p| format!("\"{}\"", p.name)).collect();
            let more = names.len().saturating_sub(LIST_NAMES);
            let mut listed = names
                .iter()
                .take(LIST_NAMES)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if more > 0 {
                listed.push_str(&format!(" and {more} more"));
            }
            return Err(self.err(
                node.span(),
                "node",
                format!(
                    "node \"{name}\"{} has no entry in [nodes]; the table has {}: add \
                     [nodes.{}.nat64.pool4] addresses = [...] for it",
                    if *node.get_ref() == name {
                        String::new()
                    } else {
                        format!(" (from \"{}\")", node.get_ref())
                    },
                    if listed.is_empty() {
                        "none".to_string()
                    } else {
                        listed
                    },
                    bare_or_quoted(&name),
                ),
            ));
        };
        let entry = entry.into_inner();
        if !entry.nat64.pool4.addresses.is_empty() || mode == Mode::Nat64 {
            *raw.nat64
                .get_or_insert_with(Default::default)
                .pool4_addresses_mut() = entry.nat64.pool4.addresses;
        }
        raw.siit.eamt.extend(entry.siit.eamt);
        Ok(Some(NodeChoice {
            name,
            written: node.into_inner(),
            line: self.line_of(key.span().start),
        }))
    }

    /// Refuses two entries whose pool4 prefixes overlap, naming both nodes; the error points at
    /// the later entry's address.
    fn pool4_disjoint(&self, nodes: &RawNodes, pools: &[NodePool4]) -> Result<(), ConfigError> {
        for (j, pb) in pools.iter().enumerate() {
            let b = &pb.name;
            for pa in &pools[..j] {
                let (a, line_a) = (&pa.name, pa.line);
                for (ib, &(nb, lb)) in pb.prefixes.iter().enumerate() {
                    for &(na, la) in &pa.prefixes {
                        let m = super::mask32(la.min(lb));
                        if na & m != nb & m {
                            continue;
                        }
                        let span = nodes
                            .get(b.as_str())
                            .and_then(|e| e.get_ref().nat64.pool4.addresses.get(ib))
                            .map_or(0..0, |s| s.span());
                        return Err(self.err(
                            span,
                            &format!("nodes.{}.nat64.pool4.addresses", bare_or_quoted(b)),
                            format!(
                                "{}/{lb} of node \"{b}\" overlaps {}/{la} of node \"{a}\" \
                                 (line {line_a}): each gateway needs its own pool4, else IPv4 \
                                 return traffic for one node's bindings is routed to another \
                                 that has no session for it",
                                std::net::Ipv4Addr::from(nb),
                                std::net::Ipv4Addr::from(na),
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "NODE_NAME" => Ok("egress-a".into()),
            "EMPTY" => Ok(String::new()),
            _ => Err(VarError::NotPresent),
        }
    }

    #[test]
    fn variables_are_expanded_and_an_unset_one_is_named() {
        assert_eq!(expand_env("${NODE_NAME}", &env).as_deref(), Ok("egress-a"));
        assert_eq!(
            expand_env("gw-${NODE_NAME}-1", &env).as_deref(),
            Ok("gw-egress-a-1")
        );
        assert_eq!(expand_env("plain", &env).as_deref(), Ok("plain"));
        assert_eq!(expand_env("${EMPTY}", &env).as_deref(), Ok(""));
        let e = expand_env("${NOPE}", &env).unwrap_err();
        assert!(e.contains("NOPE is not set"), "{e}");
    }

    #[test]
    fn a_dollar_outside_braces_is_refused() {
        for bad in ["$NODE_NAME", "${NODE_NAME", "${}", "${1X}", "${A-B}", "a$"] {
            assert!(expand_env(bad, &env).is_err(), "{bad} accepted");
        }
    }
}
