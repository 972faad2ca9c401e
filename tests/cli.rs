//! The binary's command line: `check-config` and start-up failures (none of these touches a
//! network device: every config here is refused before the TUN is opened).

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nat64d"))
}

/// A config file in its own temporary directory, removed when dropped.
struct TmpFile(PathBuf);

impl Drop for TmpFile {
    fn drop(&mut self) {
        if let Some(d) = self.0.parent() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn tmp(name: &str, text: &str) -> TmpFile {
    let dir = std::env::temp_dir().join(format!("nat64d-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    TmpFile(p)
}

#[test]
fn check_config_accepts_the_example() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("systemd/nat64d.toml");
    let out = bin().arg("check-config").arg(&p).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains(": OK (mode=siit pool6=[64:ff9b::/96]"), "{s}");
}

#[test]
fn check_config_refuses_with_file_line_key() {
    let p = tmp(
        "bad1.toml",
        "mode = \"siit\"\npool6 = [\"2001:db8::/33\"]\n",
    );
    let out = bin().arg("check-config").arg(&p.0).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.trim_end().ends_with(
            "bad1.toml:2: pool6: prefix 2001:db8::/33: length must be 32, 40, 48, 56, 64 or 96"
        ),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "one clear message: {e}");
}

#[test]
fn run_with_an_invalid_config_fails_before_touching_anything() {
    let p = tmp("bad2.toml", "[tun]\nname = \"n64cli\"\nqueues = 1000\n");
    let out = bin().args(["run", "--config"]).arg(&p.0).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("bad2.toml:3: tun.queues: at most 256 queues"),
        "{e}"
    );
    assert!(!std::path::Path::new("/sys/class/net/n64cli").exists());
}

#[test]
fn run_with_a_missing_config() {
    let out = bin()
        .args(["run", "--config", "/nonexistent/nat64d.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("/nonexistent/nat64d.toml: cannot read"), "{e}");
}

#[test]
fn help_lists_the_subcommands() {
    let out = bin().arg("--help").output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    for sub in ["run", "check-config", "translate"] {
        assert!(s.contains(sub), "{sub} missing from:\n{s}");
    }
}

#[test]
fn translate_with_a_missing_config_says_it_once() {
    let out = bin()
        .args(["translate", "-c", "/nonexistent/nat64d.toml"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        e.trim_end(),
        "nat64d translate: /nonexistent/nat64d.toml: cannot read: No such file or directory (os error 2)"
    );
}

#[test]
fn check_config_dev_zero_is_refused_without_reading_it() {
    let out = bin().args(["check-config", "/dev/zero"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.starts_with("/dev/zero:1: (file): not a regular file"),
        "{e}"
    );
}

/// This host's first global IPv4 address (`ip -o -4 addr show`), if it has one.
fn a_host_address() -> Option<String> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    let t = String::from_utf8_lossy(&out.stdout).to_string();
    let a = t
        .lines()
        .next()?
        .split_whitespace()
        .nth(3)?
        .split('/')
        .next()?
        .to_string();
    Some(a)
}

#[test]
fn pool4_on_an_address_of_this_host_is_refused_by_check_config_and_run() {
    let Some(a) = a_host_address() else {
        eprintln!("skipped: this host has no global IPv4 address");
        return;
    };
    let p = tmp(
        "p4host.toml",
        &format!("mode = \"nat64\"\npool6 = [\"64:ff9b::/96\"]\nwkp_strict = false\n[nat64.pool4]\naddresses = [\"{a}\"]\n[tun]\nname = \"op-n64cli\"\n"),
    );
    for args in [vec!["check-config"], vec!["run", "-c"]] {
        let out = bin().args(&args).arg(&p.0).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(
            e.contains(&format!(
                "p4host.toml:5: nat64.pool4.addresses: {a}/32 holds {a}, an address of this host"
            )),
            "{args:?}: {e}"
        );
    }
    assert!(!std::path::Path::new("/sys/class/net/op-n64cli").exists());
}

#[test]
fn every_subcommand_takes_the_file_both_ways() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("systemd/nat64d.toml");
    for form in [vec![], vec!["-c"], vec!["--config"]] {
        let out = bin()
            .arg("check-config")
            .args(&form)
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{form:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // `run FILE` reads FILE (refused here before any device is touched).
    let bad = tmp("pos.toml", "[tun]\nqueues = 1000\n");
    let out = bin().arg("run").arg(&bad.0).output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("pos.toml:2: tun.queues: at most 256 queues"),
        "{e}"
    );
    // Both at once is a usage error.
    let out = bin()
        .arg("check-config")
        .arg(&p)
        .arg("-c")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn messages_name_the_right_line_key_and_fix() {
    let cases: [(&str, &str); 3] = [
        // An array left open on line 2: not "line 4: tun.name".
        (
            "mode = \"siit\"\npool6 = [\"64:ff9b::/96\",\n[tun]\nname = \"x\"\n",
            ":2: pool6: `[` opened here is not closed before line 4",
        ),
        // The bad address quoted once.
        (
            "pool6 = [\"300.1.1.1/96\"]\n",
            ":1: pool6: \"300.1.1.1/96\": not an IP address",
        ),
        (
            "[log]\nlevel = \"verbose\"\n",
            ":2: log.level: \"verbose\" is not a level: use trace, debug, info, warn, error or off",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let f = tmp(&format!("msg{i}.toml"), text);
        let out = bin().arg("check-config").arg(&f.0).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains(want), "want {want}\ngot {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}
