//! The Kubernetes manifest's embedded configuration is a valid nat64d configuration.

#[test]
fn configmap_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes/nat64d.yaml");
    let yaml = std::fs::read_to_string(path).expect("manifest");
    // The block scalar under `nat64d.toml: |`, indented by four spaces.
    let mut lines = yaml
        .lines()
        .skip_while(|l| l.trim() != "nat64d.toml: |")
        .skip(1);
    let mut toml = String::new();
    for l in lines.by_ref() {
        match l.strip_prefix("    ") {
            Some(t) => {
                toml.push_str(t);
                toml.push('\n');
            }
            None => break,
        }
    }
    assert!(toml.contains("mode = \"nat64\""), "block found: {toml}");
    let cfg = nat64d::config::parse(std::path::Path::new("nat64d.yaml"), &toml)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.dns64.is_some());
}
