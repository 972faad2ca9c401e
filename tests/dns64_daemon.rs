//! DNS64 inside the daemon's configuration: `[dns64]` in the main file, validated by
//! `check-config`, served by `nat64d dns64 --config FILE` (the binary, as a user runs it).

mod dns64_support;
use dns64_support::*;
use hickory_proto::rr::RecordType;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("nat64d-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn dns64_subcommand_serves_synthesized_answers() {
    let mock = start_mock().await;
    let d = tmpdir("dns64-daemon");
    let cfg = d.join("nat64d.toml");
    std::fs::write(
        &cfg,
        format!(
            "mode = \"siit\"\npool6 = [\"64:ff9b::/96\"]\n\n[dns64]\nlisten = [\"127.0.0.1:0\"]\nupstreams = [\"{}\"]\nrate_limit = {{ qps = 0 }}\n",
            mock.addr
        ),
    )
    .unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_nat64d"))
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && out.contains("dns64=[127.0.0.1:0]"),
        "{out}"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_nat64d"))
        .args(["dns64", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("dns64 listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    let ans = ask(addr, &query("v4only.test.", RecordType::AAAA)).await;
    // SIGTERM (kill by PID, the child this test started): a clean stop.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    let ans = ans.expect("an answer");
    assert!(
        aaaas(&ans)
            .iter()
            .all(|a| a.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0])
            && !aaaas(&ans).is_empty(),
        "synthesized into 64:ff9b::/96: {ans:?}"
    );
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn bad_dns64_table_names_file_line_and_key() {
    let d = tmpdir("dns64-bad");
    let cfg = d.join("nat64d.toml");
    std::fs::write(
        &cfg,
        "mode = \"siit\"\n\n[dns64]\nlisten = [\"127.0.0.1:5353\"]\nupstreams = []\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_nat64d"))
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("nat64d.toml:3") && err.contains("dns64.upstreams"),
        "{err}"
    );
    std::fs::write(
        &cfg,
        "[dns64]\nlisten = [\"127.0.0.1:5353\"]\nupstream = [\"127.0.0.1:53\"]\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_nat64d"))
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("upstream"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}
