//! `fuzz/` is outside the workspace, so nothing else notices when it drifts: its lock must give
//! every crate it shares with the daemon the daemon's version (what ships is what is fuzzed), it
//! must hold everything `fuzz/Cargo.toml` asks for (`cargo metadata --locked`), and every target
//! file must be a `[[bin]]` of the manifest (and every `[[bin]]` a file).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// name → versions of the `[[package]]` entries of a Cargo.lock.
fn lock_versions(path: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(path).expect("lock file");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for pkg in text.split("[[package]]").skip(1) {
        let field = |k: &str| {
            pkg.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_string)
        };
        if let (Some(n), Some(v)) = (field("name"), field("version")) {
            out.entry(n).or_default().insert(v);
        }
    }
    out
}

#[test]
fn fuzz_lock_has_the_workspace_versions() {
    let ws = lock_versions(&Path::new(ROOT).join("Cargo.lock"));
    let fz = lock_versions(&Path::new(ROOT).join("fuzz/Cargo.lock"));
    let shared: Vec<_> = fz.keys().filter(|k| ws.contains_key(*k)).collect();
    // The fuzz crate links the daemon: most of its lock is shared.
    assert!(shared.len() > 50, "only {} shared crates", shared.len());
    let differ: Vec<String> = shared
        .into_iter()
        .filter(|k| ws[*k] != fz[*k])
        .map(|k| format!("{k}: workspace {:?}, fuzz {:?}", ws[k], fz[k]))
        .collect();
    assert!(
        differ.is_empty(),
        "fuzz/Cargo.lock is stale (copy ../Cargo.lock into fuzz/ and run cargo metadata there):\n{}",
        differ.join("\n")
    );
}

#[test]
fn fuzz_lock_satisfies_the_fuzz_manifest() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .arg("--manifest-path")
        .arg(Path::new(ROOT).join("fuzz/Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata --locked in fuzz/ failed (the lock lacks what the manifest asks for):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_fuzz_target_is_a_bin_and_every_bin_a_target() {
    let manifest = std::fs::read_to_string(Path::new(ROOT).join("fuzz/Cargo.toml")).expect("toml");
    let bins: BTreeSet<String> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("path = \"fuzz_targets/"))
        .filter_map(|v| v.strip_suffix('"'))
        .map(str::to_string)
        .collect();
    let files: BTreeSet<String> = std::fs::read_dir(Path::new(ROOT).join("fuzz/fuzz_targets"))
        .expect("fuzz_targets")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".rs") && f != "common.rs")
        .collect();
    assert!(
        files.contains("dns64_wire.rs") && files.len() >= 8,
        "{files:?}"
    );
    assert_eq!(
        bins, files,
        "[[bin]] paths of fuzz/Cargo.toml vs fuzz/fuzz_targets/*.rs"
    );
}
