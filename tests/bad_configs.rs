//! The bad-config corpus (tests/bad-configs/): every file is refused by `check-config` with one
//! `FILE:LINE: KEY: REASON` line and exit status 1; never accepted, never a panic (101) or an
//! abort (134). netns-scripts' hostile suite also runs `nat64d run` on them. A file's
//! `# expect: TEXT` lines name what its message must contain (the reason it is bad).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn every_bad_config_is_refused_with_file_line_key_reason() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad-configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/bad-configs")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the corpus has {} files", files.len());
    let mut bad = Vec::new();
    for f in &files {
        let out = Command::new(env!("CARGO_BIN_EXE_nat64d"))
            .arg("check-config")
            .arg(f)
            .env_remove("NAT64D_TEST_UNSET_NODE")
            .output()
            .expect("run nat64d");
        let e = String::from_utf8_lossy(&out.stderr);
        let line = e.trim_end();
        // FILE:LINE: KEY: REASON with a line number >= 1 and a non-empty key and reason.
        let ok_shape = line
            .strip_prefix(&format!("{}:", f.display()))
            .and_then(|rest| rest.split_once(": "))
            .and_then(|(n, rest)| {
                let n: usize = n.parse().ok()?;
                let (key, reason) = rest.split_once(": ")?;
                (n >= 1 && !key.is_empty() && !reason.is_empty()).then_some(())
            })
            .is_some();
        let text = String::from_utf8_lossy(&std::fs::read(f).expect("read")).into_owned();
        let missing: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .filter(|want| !line.contains(want.trim()))
            .collect();
        if out.status.code() != Some(1)
            || !ok_shape
            || line.lines().count() != 1
            || !missing.is_empty()
        {
            bad.push(format!(
                "{}: status {:?}: {line}{}",
                f.display(),
                out.status.code(),
                if missing.is_empty() {
                    String::new()
                } else {
                    format!(" (does not say {missing:?})")
                }
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "not refused as expected:\n{}",
        bad.join("\n")
    );
}
