//! The Kubernetes manifests (deploy/kubernetes/): the ConfigMap's nat64d.toml is a valid
//! configuration on every node of its `[nodes]` table (NODE_NAME set to each in turn), each node
//! gets its own pool4, the DaemonSet gives the daemon NODE_NAME and probes the port the
//! configuration's `[metrics]` listens on, and kustomization.yaml lists every manifest.
//! netns-scripts/k8s-validate.sh checks the manifests' schemas (kubernetes-validate --strict).

use std::env::VarError;
use std::path::Path;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(DIR).join(name)).expect("manifest")
}

/// The block scalar under `nat64d.toml: |`, indented by four spaces.
fn configmap_toml() -> String {
    let yaml = read("configmap.yaml");
    let mut toml = String::new();
    for l in yaml
        .lines()
        .skip_while(|l| l.trim() != "nat64d.toml: |")
        .skip(1)
    {
        if l.trim().is_empty() {
            toml.push('\n');
            continue;
        }
        match l.strip_prefix("    ") {
            Some(t) => {
                toml.push_str(t);
                toml.push('\n');
            }
            None => break,
        }
    }
    toml
}

/// The entry names of `[nodes.NAME...]` headers.
fn node_names(toml: &str) -> Vec<String> {
    let mut names: Vec<String> = toml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[nodes."))
        .filter_map(|rest| rest.split(['.', ']']).next())
        .map(str::to_string)
        .collect();
    names.dedup();
    names
}

fn parse_on(toml: &str, node: Option<&str>) -> Result<nat64d::config::Config, String> {
    let env = |name: &str| match (name, node) {
        ("NODE_NAME", Some(n)) => Ok(n.to_string()),
        _ => Err(VarError::NotPresent),
    };
    nat64d::config::parse_with_env(Path::new("configmap.yaml"), toml, &env)
        .map_err(|e| e.to_string())
}

#[test]
fn configmap_config_is_valid_on_every_node() {
    let toml = configmap_toml();
    assert!(toml.contains("mode = \"nat64\""), "block found: {toml}");
    assert!(toml.contains("node = \"${NODE_NAME}\""), "{toml}");
    let nodes = node_names(&toml);
    assert!(nodes.len() >= 2, "a fleet has several nodes: {nodes:?}");
    let mut pools = Vec::new();
    for n in &nodes {
        let cfg = parse_on(&toml, Some(n)).unwrap_or_else(|e| panic!("NODE_NAME={n}: {e}"));
        assert_eq!(cfg.node.as_ref().map(|c| c.name.as_str()), Some(n.as_str()));
        assert!(cfg.dns64.is_some());
        let p = cfg.nat64.expect("nat64").pool4_prefixes;
        assert!(!p.is_empty());
        assert!(
            !pools.contains(&p),
            "{n} shares its pool4 with another node"
        );
        pools.push(p);
    }
    // Without NODE_NAME (a DaemonSet that forgot the Downward API) the daemon refuses to start.
    let e = parse_on(&toml, None).expect_err("NODE_NAME unset");
    assert!(e.contains("NODE_NAME is not set"), "{e}");
    // A node without an entry is refused, naming it.
    let e = parse_on(&toml, Some("worker-9")).expect_err("no entry");
    assert!(e.contains("node \"worker-9\""), "{e}");
}

#[test]
fn daemonset_sets_node_name_and_probes_the_metrics_port() {
    let ds = read("daemonset.yaml");
    let flat: String = ds.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("- name: NODE_NAME valueFrom: fieldRef: fieldPath: spec.nodeName"),
        "NODE_NAME from the Downward API"
    );
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert!(
            flat.contains(&format!("{probe}: httpGet: path: /healthz port: metrics")),
            "{probe} on /healthz"
        );
    }
    // The named port is the one [metrics] listens on.
    let cfg = parse_on(&configmap_toml(), Some("egress-1")).expect("config");
    let port = cfg.metrics.expect("[metrics]").port();
    assert!(
        flat.contains(&format!(
            "- name: metrics containerPort: {port} protocol: TCP"
        )),
        "containerPort {port}"
    );
    assert!(cfg.metrics.expect("[metrics]").ip().is_unspecified());
}

#[test]
fn services_are_ipv6_single_stack_and_kustomization_lists_every_manifest() {
    for svc in ["service-dns64.yaml", "service-metrics.yaml"] {
        let s = read(svc);
        assert!(s.contains("ipFamilies: [IPv6]"), "{svc}");
        assert!(s.contains("ipFamilyPolicy: SingleStack"), "{svc}");
    }
    assert!(read("service-metrics.yaml").contains("- name: metrics"));
    let k = read("kustomization.yaml");
    let mut files: Vec<String> = std::fs::read_dir(DIR)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml")
        .collect();
    files.sort();
    for f in &files {
        assert!(
            k.contains(&format!("  - {f}\n")),
            "kustomization.yaml misses {f}"
        );
    }
}
