//! The control socket as a careless operator or a hostile local user meets it: nat64d removes
//! only a stale socket at its path (never a regular file, never through a symlink), and idle
//! connections neither starve queries nor pile up beyond the bound.

use nat64_core::nat64::session::Filter;
use nat64_core::nat64::Nat64;
use nat64d::nat64_ctl::{query, Nat64Runtime, Request, What, MAX_CONNECTIONS};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A private directory, removed when dropped.
struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn dir(name: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("nat64d-ctl-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Dir(d)
}

fn start(sock: &Path) -> Result<Nat64Runtime, String> {
    let text = format!(
        "mode = \"nat64\"\npool6 = [\"64:ff9b::/96\"]\nwkp_strict = false\n\
         [nat64.pool4]\naddresses = [\"192.0.2.1\"]\n[nat64.control]\nsocket = \"{}\"\n",
        sock.display()
    );
    let cfg = nat64d::config::parse(Path::new("t.toml"), &text).expect("config");
    let s = cfg.nat64.clone().expect("nat64");
    let mut core = s.core.clone();
    core.max_sessions = 1024;
    let nat = Arc::new(Nat64::new(core).expect("nat64"));
    Nat64Runtime::start(nat, &s, Instant::now())
}

fn counts() -> Request {
    Request {
        what: What::Counts,
        filter: Filter::default(),
        limit: 10,
        json: false,
    }
}

#[test]
fn a_regular_file_at_the_socket_path_is_refused_and_kept() {
    let d = dir("file");
    let p = d.0.join("ctl.sock");
    std::fs::write(&p, "precious").unwrap();
    let e = start(&p).err().expect("refused");
    assert!(e.contains("is a regular file, not a socket"), "{e}");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "precious");
}

#[test]
fn a_symlink_at_the_socket_path_is_refused_and_its_target_untouched() {
    let d = dir("link");
    let target = d.0.join("target");
    std::fs::write(&target, "precious").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let p = d.0.join("ctl.sock");
    std::os::unix::fs::symlink(&target, &p).unwrap();
    let e = start(&p).err().expect("refused");
    assert!(e.contains("is a symbolic link, not a socket"), "{e}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the link's target kept its mode");
    assert!(std::fs::symlink_metadata(&p)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let d = dir("stale");
    let p = d.0.join("ctl.sock");
    drop(UnixListener::bind(&p).unwrap()); // the file stays, nobody answers
    let rt = start(&p).expect("a stale socket is replaced");
    let mode = std::fs::symlink_metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    assert!(query(&p, &counts()).unwrap().contains("sessions tcp=0"));
    let e = start(&p).err().expect("a live socket is refused");
    assert!(e.contains("another nat64d answers"), "{e}");
    rt.stop();
    assert!(!p.exists());
}

#[test]
fn idle_connections_do_not_starve_a_query_and_are_bounded() {
    let d = dir("idle");
    let p = d.0.join("ctl.sock");
    let rt = start(&p).expect("start");
    // 100 clients that connect and say nothing.
    let idle: Vec<UnixStream> = (0..100).map(|_| UnixStream::connect(&p).unwrap()).collect();
    let out = query(&p, &counts()).expect("a query is served while 100 clients idle");
    assert!(out.contains("sessions tcp=0"), "{out}");
    // Fill the remaining slots: the next connection is told so at once.
    let more: Vec<UnixStream> = (idle.len()..MAX_CONNECTIONS)
        .map(|_| UnixStream::connect(&p).unwrap())
        .collect();
    let mut s = UnixStream::connect(&p).unwrap();
    let mut busy = String::new();
    s.read_to_string(&mut busy).unwrap();
    assert!(busy.starts_with("error: busy"), "{busy}");
    drop((idle, more));
    rt.stop();
}
