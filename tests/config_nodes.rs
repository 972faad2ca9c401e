//! Per-node settings (`node = "${NODE_NAME}"` and `[nodes.NAME]`): every node of a fleet file
//! gets its own pool4 (or EAMs), a file without the table is unchanged, and the ways to get it
//! wrong are refused with file:line: key: reason naming the node or the variable.

use nat64d::config::{self, ConfigError, IpPrefix};
use std::env::VarError;
use std::path::Path;
use std::process::Command;

/// Three egress nodes of one DaemonSet; the third has a DNS name, quoted as a TOML key.
const FLEET: &str = r#"mode = "nat64"
node = "${NODE_NAME}"
pool6 = ["64:ff9b::/96"]
wkp_strict = false

[nat64]
max_sessions = 4096

[nat64.pool4]
tcp = "1024-65535"

[nodes.egress-a.nat64.pool4]
addresses = ["203.0.113.64/30"]

[nodes.egress-b.nat64.pool4]
addresses = ["203.0.113.68/30", "198.51.100.7"]

[nodes."egress-c.example.org"]
nat64.pool4.addresses = ["198.51.100.9"]
"#;

/// A stateless fleet: a shared EAM plus one of each node's own.
const SIIT_FLEET: &str = r#"mode = "siit"
node = "${NODE_NAME}"
pool6 = ["2001:db8:64::/96"]

[[siit.eamt]]
ipv4 = "192.0.2.0/28"
ipv6 = "2001:db8:1::/124"

[[nodes.siit-a.siit.eamt]]
ipv4 = "198.51.100.16/28"
ipv6 = "2001:db8:a::/124"

[[nodes.siit-b.siit.eamt]]
ipv4 = "198.51.100.32/28"
ipv6 = "2001:db8:b::/124"
"#;

fn with_node(text: &str, node: Option<&str>) -> Result<config::Config, ConfigError> {
    let env = |name: &str| match (name, node) {
        ("NODE_NAME", Some(n)) => Ok(n.to_string()),
        _ => Err(VarError::NotPresent),
    };
    config::parse_with_env(Path::new("fleet.toml"), text, &env)
}

/// (line, key, reason) of a refused file.
fn refused(text: &str, node: Option<&str>) -> (usize, String, String) {
    match with_node(text, node) {
        Err(ConfigError::Invalid {
            line, key, reason, ..
        }) => (line, key, reason),
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(c) => panic!("accepted: node {:?}", c.node),
    }
}

fn v4(s: &str, len: u8) -> IpPrefix {
    IpPrefix {
        addr: s.parse().expect("address"),
        len,
    }
}

fn pool4(c: &config::Config) -> Vec<IpPrefix> {
    c.nat64.as_ref().expect("nat64").pool4_prefixes.clone()
}

#[test]
fn each_node_gets_its_own_pool4_and_routes_only_it() {
    let expect = [
        ("egress-a", 12, vec![v4("203.0.113.64", 30)]),
        (
            "egress-b",
            15,
            vec![v4("203.0.113.68", 30), v4("198.51.100.7", 32)],
        ),
        ("egress-c.example.org", 18, vec![v4("198.51.100.9", 32)]),
    ];
    let all: Vec<IpPrefix> = expect.iter().flat_map(|e| e.2.clone()).collect();
    for (name, line, own) in &expect {
        let c = with_node(FLEET, Some(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let n = c.node.as_ref().expect("a node is picked");
        assert_eq!((n.name.as_str(), n.line), (*name, *line));
        assert_eq!(n.written, "${NODE_NAME}");
        assert_eq!(&pool4(&c), own, "{name}");
        // The core's pool4 holds exactly this node's addresses, with the shared port range.
        let core = &c.nat64.as_ref().expect("nat64").core.pool4;
        let count: usize = own.iter().map(|p| 1usize << (32 - p.len)).sum();
        assert_eq!(core.addrs.len(), count, "{name}");
        assert_eq!((core.tcp.first, core.tcp.last), (1024, 65535));
        let routes = c.tun_routes();
        for p in &all {
            assert_eq!(routes.contains(p), own.contains(p), "{name}: route {p}");
        }
        let s = config::summary(&c);
        assert!(
            s.starts_with(&format!(
                "node={name} ([nodes] entry at line {line}) mode=nat64"
            )),
            "{s}"
        );
        assert_eq!(c.mappings_written(), 1 + own.len(), "{name}");
    }
}

#[test]
fn a_siit_node_adds_its_eams_to_the_shared_ones() {
    for (name, own, other) in [
        ("siit-a", v4("198.51.100.16", 28), v4("198.51.100.32", 28)),
        ("siit-b", v4("198.51.100.32", 28), v4("198.51.100.16", 28)),
    ] {
        let c = with_node(SIIT_FLEET, Some(name)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.siit.eamt.entries().len(), 2, "{name}");
        let routes = c.tun_routes();
        assert!(routes.contains(&v4("192.0.2.0", 28)), "{name}: shared EAM");
        assert!(routes.contains(&own), "{name}: own EAM");
        assert!(!routes.contains(&other), "{name}: the other node's EAM");
        assert!(c.nat64.is_none());
    }
}

#[test]
fn a_file_without_nodes_is_unchanged() {
    let plain =
        "mode = \"nat64\"\nwkp_strict = false\n[nat64.pool4]\naddresses = [\"192.0.2.1\"]\n";
    let a = with_node(plain, None).expect("valid");
    let b = with_node(plain, Some("egress-a")).expect("NODE_NAME is not read");
    assert!(a.node.is_none() && b.node.is_none());
    assert_eq!(pool4(&a), vec![v4("192.0.2.1", 32)]);
    assert!(config::summary(&a).starts_with("mode=nat64 pool4=[192.0.2.1/32]"));
}

#[test]
fn an_unset_variable_is_refused_naming_it() {
    let (line, key, reason) = refused(FLEET, None);
    assert_eq!((line, key.as_str()), (2, "node"));
    assert!(reason.contains("NODE_NAME is not set"), "{reason}");
    let (_, _, reason) = refused(FLEET, Some(""));
    assert!(reason.contains("not empty"), "{reason}");
    let t = FLEET.replace("${NODE_NAME}", "$NODE_NAME");
    let (line, _, reason) = refused(&t, Some("egress-a"));
    assert_eq!(line, 2);
    assert!(reason.contains("${NAME}"), "{reason}");
}

#[test]
fn a_node_without_an_entry_is_refused_naming_it() {
    let (line, key, reason) = refused(FLEET, Some("egress-z"));
    assert_eq!((line, key.as_str()), (2, "node"));
    assert!(reason.contains("node \"egress-z\""), "{reason}");
    assert!(
        reason.contains("\"egress-a\", \"egress-b\", \"egress-c.example.org\""),
        "{reason}"
    );
    // A literal name works the same way.
    let t = FLEET.replace("${NODE_NAME}", "egress-b");
    assert_eq!(
        with_node(&t, None)
            .expect("literal")
            .node
            .expect("node")
            .name,
        "egress-b"
    );
    let (_, _, reason) = refused(&FLEET.replace("${NODE_NAME}", "gw9"), None);
    assert!(reason.contains("node \"gw9\""), "{reason}");
}

#[test]
fn overlapping_pool4_between_nodes_is_refused_naming_both() {
    // egress-c takes an address inside egress-a's /30: refused on every node, even egress-b.
    let t = FLEET.replace("\"198.51.100.9\"", "\"203.0.113.66\"");
    for node in ["egress-a", "egress-b", "egress-c.example.org"] {
        let (line, key, reason) = refused(&t, Some(node));
        assert_eq!(line, 19, "{reason}");
        assert_eq!(key, "nodes.\"egress-c.example.org\".nat64.pool4.addresses");
        assert!(
            reason.contains("node \"egress-c.example.org\"")
                && reason.contains("node \"egress-a\" (line 12)"),
            "{reason}"
        );
    }
    // A shorter prefix covering another node's address overlaps too.
    let t = FLEET.replace("\"198.51.100.9\"", "\"203.0.113.0/24\"");
    let (_, _, reason) = refused(&t, Some("egress-a"));
    assert!(reason.contains("203.0.113.0/24"), "{reason}");
    // Adjacent prefixes do not.
    let t = FLEET.replace("\"198.51.100.9\"", "\"203.0.113.72/30\"");
    with_node(&t, Some("egress-a")).expect("adjacent prefixes");
}

#[test]
fn misplaced_or_missing_keys_are_refused() {
    // A top-level pool4 address would be in every node's pool4.
    let t = FLEET.replace("tcp = \"1024-65535\"", "addresses = [\"192.0.2.1\"]");
    let (line, key, _) = refused(&t, Some("egress-a"));
    assert_eq!((line, key.as_str()), (10, "nat64.pool4.addresses"));
    // [nodes] without node, node without [nodes].
    let t = FLEET.replace("node = \"${NODE_NAME}\"\n", "");
    let (line, key, reason) = refused(&t, Some("egress-a"));
    assert_eq!(key, "node");
    assert!(reason.contains("needs node ="), "{line}: {reason}");
    let (line, key, _) = refused("node = \"x\"\n", Some("x"));
    assert_eq!((line, key.as_str()), (1, "node"));
    // mode nat64: a node with no pool4 address, even if it is not the one picked.
    let t = format!("{FLEET}\n[nodes.egress-d]\n");
    let (line, key, reason) = refused(&t, Some("egress-a"));
    assert_eq!(
        (line, key.as_str()),
        (21, "nodes.egress-d.nat64.pool4.addresses")
    );
    assert!(reason.contains("node \"egress-d\""), "{reason}");
    // A key a node entry cannot hold.
    let t = format!("{FLEET}\n[nodes.egress-d.nat64]\nmax_sessions = 5\n");
    let (line, _, reason) = refused(&t, Some("egress-a"));
    assert_eq!(line, 22, "{reason}");
    // Another node's bad address is found on this node.
    let t = FLEET.replace("\"198.51.100.7\"", "\"198.51.100.300\"");
    let (line, key, _) = refused(&t, Some("egress-a"));
    assert_eq!(
        (line, key.as_str()),
        (16, "nodes.egress-b.nat64.pool4.addresses")
    );
    // A node's EAM with the shared one's IPv4 prefix: ambiguous.
    let t = SIIT_FLEET.replace("198.51.100.32/28", "192.0.2.0/28");
    let (line, key, _) = refused(&t, Some("siit-a"));
    assert_eq!((line, key.as_str()), (13, "nodes.siit-b.siit.eamt"));
}

#[test]
fn a_node_pool4_change_is_a_pool4_change_on_reload() {
    let old = with_node(FLEET, Some("egress-a")).expect("old");
    // This node's pool4 changes: the same restart-needed change as a top-level pool4 today.
    let t = FLEET.replace("203.0.113.64/30", "203.0.113.80/30");
    let new = with_node(&t, Some("egress-a")).expect("new");
    let (a, b) = (old.nat64.as_ref(), new.nat64.as_ref());
    let changes = a.expect("nat64").table_changes(b.expect("nat64"));
    assert_eq!(changes, vec!["nat64.pool4"]);
    assert!(old.reload_refusal(&new).is_none());
    // Another node's entry changes: nothing changes here.
    let t = FLEET.replace("198.51.100.7", "198.51.100.8");
    let other = with_node(&t, Some("egress-a")).expect("other");
    let changes = a
        .expect("nat64")
        .table_changes(other.nat64.as_ref().expect("nat64"));
    assert!(changes.is_empty(), "{changes:?}");
    // The picked entry removed: the reload is refused (an invalid file) naming the node.
    let t = FLEET.replace(
        "[nodes.egress-a.nat64.pool4]",
        "[nodes.egress-x.nat64.pool4]",
    );
    let (_, _, reason) = refused(&t, Some("egress-a"));
    assert!(reason.contains("node \"egress-a\""), "{reason}");
}

/// `nat64d check-config` reads NODE_NAME from its environment and names the entry it picked.
#[test]
fn check_config_names_the_picked_node() {
    let dir = std::env::temp_dir().join(format!("nat64d-config-nodes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("fleet.toml");
    std::fs::write(&file, FLEET).expect("write");
    let run = |node: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nat64d"));
        c.arg("check-config").arg(&file);
        match node {
            Some(n) => c.env("NODE_NAME", n),
            None => c.env_remove("NODE_NAME"),
        };
        c.output().expect("run nat64d")
    };
    let ok = run(Some("egress-b"));
    let out = String::from_utf8_lossy(&ok.stdout);
    let unset = run(None);
    let err = String::from_utf8_lossy(&unset.stderr).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        out.contains("OK (node=egress-b ([nodes] entry at line 15) mode=nat64 pool4=[203.0.113.68/30, 198.51.100.7/32]"),
        "{out}"
    );
    assert_eq!(unset.status.code(), Some(1));
    assert!(
        err.starts_with(&format!("{}:2: node: ", file.display())) && err.contains("NODE_NAME"),
        "{err}"
    );
}
