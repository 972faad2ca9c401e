//! Stateful NAT64 around the packet path: the hash seed from the OS, the timer thread (session
//! expiry and the mapping log), and the local control socket (either mode) behind `nat64d
//! stats`, `nat64d reload`, `nat64d sessions` and `nat64d bib`.
//!
//! Control protocol (one request per connection, served concurrently up to `MAX_CONNECTIONS`, each
//! with a deadline; text): the client sends one line
//! `sessions|bib|counts [proto=tcp|udp|icmp] [v6=ADDR] [v4=ADDR] [limit=N] [format=json]`,
//! `stats [format=json]` or `reload`, and reads until the daemon closes the connection; a refused
//! request is answered with one line `error: ...`. `reload` answers `result: applied|partial|refused`
//! then `refused: REASON`, `needs restart: KEY` and `warning: ...` lines.
//! The socket is created with mode 0660, owned by the daemon's user (root) and the configured
//! group, so only they can list the tables.

use crate::config::{ControlConfig, MappingLog, Nat64Settings};
use crate::dataplane::now_ms;
use nat64_core::nat64::log::MappingEvent;
use nat64_core::nat64::session::Filter;
use nat64_core::nat64::{Nat64, Proto};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the timer thread expires sessions and drains the mapping log.
pub const TICK: Duration = Duration::from_millis(200);

/// Most lines one `sessions` / `bib` answer lists unless the request says otherwise.
pub const DEFAULT_LIMIT: usize = 10_000;

/// A random 64-bit seed for the table hashes and port randomization, from the OS
/// (the OS generator through `getrandom`; the core never reads OS randomness).
///
/// # Errors
/// The OS generator cannot be read.
pub fn random_seed() -> io::Result<u64> {
    getrandom::u64().map_err(|e| io::Error::other(format!("reading OS randomness: {e}")))
}

/// A parsed control request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `sessions`, `bib` or `counts`.
    pub what: What,
    /// Filters.
    pub filter: Filter,
    /// Most entries listed.
    pub limit: usize,
    /// Answer in JSON (`format=json`).
    pub json: bool,
}

/// Which table a request lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// The session table.
    Sessions,
    /// The BIB.
    Bib,
    /// Table totals.
    Counts,
    /// Every counter (either mode).
    Stats,
    /// Re-read the configuration file, as SIGHUP does, and report the result.
    Reload,
}

impl Request {
    /// The request line (without newline).
    pub fn to_line(&self) -> String {
        let mut s = match self.what {
            What::Sessions => "sessions",
            What::Bib => "bib",
            What::Counts => "counts",
            What::Stats => "stats",
            What::Reload => "reload",
        }
        .to_string();
        if matches!(self.what, What::Reload) {
            return s;
        }
        if self.json {
            s.push_str(" format=json");
        }
        if matches!(self.what, What::Stats) {
            return s;
        }
        if let Some(p) = self.filter.proto {
            let _ = write!(s, " proto={}", p.as_str());
        }
        if let Some(a) = self.filter.v6 {
            let _ = write!(s, " v6={a}");
        }
        if let Some(a) = self.filter.v4 {
            let _ = write!(s, " v4={a}");
        }
        let _ = write!(s, " limit={}", self.limit);
        s
    }

    /// Parses a request line.
    ///
    /// # Errors
    /// A message naming the bad word.
    pub fn parse(line: &str) -> Result<Request, String> {
        let mut words = line.split_whitespace();
        let what = match words.next() {
            Some("sessions") => What::Sessions,
            Some("bib") => What::Bib,
            Some("counts") => What::Counts,
            Some("stats") => What::Stats,
            Some("reload") => What::Reload,
            Some(w) => return Err(format!("unknown request \"{w}\"")),
            None => return Err("empty request".to_string()),
        };
        let mut r = Request {
            what,
            filter: Filter::default(),
            limit: DEFAULT_LIMIT,
            json: false,
        };
        for w in words {
            let bad = || format!("bad filter \"{w}\"");
            let (k, v) = w.split_once('=').ok_or_else(bad)?;
            let table = matches!(r.what, What::Sessions | What::Bib | What::Counts);
            match k {
                _ if r.what == What::Reload => return Err(format!("reload takes no \"{w}\"")),
                "format" => match v {
                    "json" => r.json = true,
                    "text" => r.json = false,
                    _ => return Err(bad()),
                },
                _ if !table => return Err(bad()),
                "proto" => r.filter.proto = Some(v.parse::<Proto>().map_err(|()| bad())?),
                "v6" => r.filter.v6 = Some(v.parse().map_err(|_| bad())?),
                "v4" => r.filter.v4 = Some(v.parse().map_err(|_| bad())?),
                "limit" => r.limit = v.parse().map_err(|_| bad())?,
                _ => return Err(bad()),
            }
        }
        Ok(r)
    }
}

/// Answers a table request in JSON: `{"sessions": [...], "listed": N, "totals": {...}}`.
fn answer_json(nat: &Nat64, req: &Request, now: nat64_core::Timestamp) -> String {
    use serde_json::json;
    let c = nat.counts();
    let per = |v: [usize; 3]| json!({"tcp": v[0], "udp": v[1], "icmp": v[2]});
    let v = match req.what {
        What::Sessions => {
            let list: Vec<_> = nat
                .sessions(&req.filter, now, req.limit)
                .iter()
                .map(|s| {
                    json!({
                        "proto": s.proto.as_str(),
                        "v6_src": {"addr": s.v6_src.0, "port": s.v6_src.1},
                        "v6_dst": {"addr": s.v6_dst.0, "port": s.v6_dst.1},
                        "v4_src": {"addr": s.v4_src.0, "port": s.v4_src.1},
                        "v4_dst": {"addr": s.v4_dst.0, "port": s.v4_dst.1},
                        "tcp_state": s.tcp_state.map(|t| t.as_str()),
                        "expires_in_ms": s.expires_in_ms,
                    })
                })
                .collect();
            json!({"listed": list.len(), "sessions": list, "totals": per(c.sessions)})
        }
        What::Bib => {
            let list: Vec<_> = nat
                .bib(&req.filter, req.limit)
                .iter()
                .map(|b| {
                    json!({
                        "proto": b.proto.as_str(),
                        "v6": {"addr": b.v6.0, "port": b.v6.1},
                        "v4": {"addr": b.v4.0, "port": b.v4.1},
                        "static": b.is_static,
                        "sessions": b.sessions,
                    })
                })
                .collect();
            json!({"listed": list.len(), "bib": list, "totals": per(c.bib), "static": c.static_bib})
        }
        _ => json!({
            "sessions": per(c.sessions), "bib": per(c.bib), "static_bib": c.static_bib,
            "fragments": c.fragments, "reassembling": c.reassembling,
            "held_fragments": c.held.held, "held_fragments_expired": c.held.expired,
            "mapping_events_dropped": c.events_dropped, "table_bytes": c.table_bytes,
            "pool4_bytes": c.pool4_bytes,
        }),
    };
    let mut s = v.to_string();
    s.push('\n');
    s
}

/// Answers `req` from `nat` (the lines the client prints).
pub fn answer(nat: &Nat64, req: &Request, now: nat64_core::Timestamp) -> String {
    if req.json {
        return answer_json(nat, req, now);
    }
    let mut out = String::new();
    let c = nat.counts();
    match req.what {
        What::Sessions => {
            let list = nat.sessions(&req.filter, now, req.limit);
            for s in &list {
                let _ = writeln!(out, "{s}");
            }
            let _ = writeln!(
                out,
                "# {} listed; sessions tcp={} udp={} icmp={}",
                list.len(),
                c.sessions[0],
                c.sessions[1],
                c.sessions[2]
            );
        }
        What::Bib => {
            let list = nat.bib(&req.filter, req.limit);
            for b in &list {
                let _ = writeln!(out, "{b}");
            }
            let _ = writeln!(
                out,
                "# {} listed; bib tcp={} udp={} icmp={} (static {})",
                list.len(),
                c.bib[0],
                c.bib[1],
                c.bib[2],
                c.static_bib
            );
        }
        What::Counts | What::Stats | What::Reload => {
            let _ = writeln!(
                out,
                "sessions tcp={} udp={} icmp={} total={}\nbib tcp={} udp={} icmp={} static={}\n\
                 fragments={} reassembling={} held={} held_expired={} mapping_events_dropped={}\n\
                 table_bytes={} pool4_bytes={}\n\
                 syn_store held={} stored={} completed={} expired={} icmp_sent={}",
                c.sessions[0],
                c.sessions[1],
                c.sessions[2],
                nat.session_count(),
                c.bib[0],
                c.bib[1],
                c.bib[2],
                c.static_bib,
                c.fragments,
                c.reassembling,
                c.held.held,
                c.held.expired,
                c.events_dropped,
                c.table_bytes,
                c.pool4_bytes,
                c.syn_store.held,
                c.syn_store.stored,
                c.syn_store.completed,
                c.syn_store.expired,
                c.syn_store.icmp_sent
            );
        }
    }
    out
}

/// Sends `req` to the daemon at `socket` and returns its answer.
///
/// # Errors
/// A message saying why (no daemon listening, permission denied, an error line from the daemon).
pub fn query(socket: &Path, req: &Request) -> Result<String, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                " (is nat64d running with mode = \"nat64\"?)"
            }
            io::ErrorKind::PermissionDenied => {
                " (root or the group in nat64.control.group may connect)"
            }
            _ => "",
        };
        format!("cannot connect to {}: {e}{hint}", socket.display())
    })?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    s.write_all(format!("{}\n", req.to_line()).as_bytes())
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    if let Some(e) = out.strip_prefix("error: ") {
        return Err(e.trim_end().to_string());
    }
    Ok(out)
}

/// The control socket named by `--socket` or the configuration file.
fn socket_of(socket: &Option<PathBuf>, config: &crate::cli::ConfigArg) -> Result<PathBuf, String> {
    if let Some(s) = socket {
        return Ok(s.clone());
    }
    match crate::config::load(&config.path()) {
        Ok(c) => c.control.map(|c| c.socket).ok_or_else(|| {
            format!(
                "{}: no control socket: mode is \"siit\" and there is no [control] table",
                config.path().display()
            )
        }),
        // No readable config (e.g. not root): the default socket.
        Err(crate::config::ConfigError::Io { .. }) => {
            Ok(PathBuf::from(crate::config::DEFAULT_CONTROL_SOCKET))
        }
        Err(e) => Err(e.to_string()),
    }
}

fn print(out: &str) {
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

/// `nat64d sessions` / `nat64d bib`: prints the daemon's answer.
pub fn cli(what: What, a: &crate::cli::TableArgs) -> std::process::ExitCode {
    use std::process::ExitCode;
    let proto = match a.proto.as_deref().map(str::parse::<Proto>) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(())) => {
            eprintln!("nat64d: --proto must be tcp, udp or icmp");
            return ExitCode::from(2);
        }
    };
    let req = Request {
        what,
        filter: Filter {
            proto,
            v6: a.v6,
            v4: a.v4,
        },
        limit: a.limit,
        json: a.json,
    };
    match ask(&a.socket, &a.config, &req) {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}

/// Finds the daemon's socket (from `--socket` or the config), sends `req` and prints the answer;
/// `None` after printing why it failed.
fn ask(socket: &Option<PathBuf>, config: &crate::cli::ConfigArg, req: &Request) -> Option<String> {
    let answer = socket_of(socket, config).and_then(|s| query(&s, req));
    match answer {
        Ok(out) => {
            print(&out);
            Some(out)
        }
        Err(e) => {
            eprintln!("nat64d: {e}");
            None
        }
    }
}

/// Where the timer writes the packets the core produces on expiry: the ICMP Port Unreachable
/// errors for stored IPv4 SYNs that no IPv6 SYN answered (RFC 6146 §3.5.2.2). The daemon passes a
/// writer on a TUN queue; one packet per call.
pub type PacketSink = Box<dyn FnMut(&[u8]) -> io::Result<()> + Send>;

/// `nat64d stats`: every counter, as a table or JSON.
pub fn cli_stats(a: &crate::cli::StatsArgs) -> std::process::ExitCode {
    let req = Request {
        what: What::Stats,
        filter: Filter::default(),
        limit: 0,
        json: a.json,
    };
    match ask(&a.socket, &a.config, &req) {
        Some(_) => std::process::ExitCode::SUCCESS,
        None => std::process::ExitCode::FAILURE,
    }
}

/// `nat64d reload`: asks the daemon to re-read its file and prints the result. Exit status 0
/// when applied (even partly: the keys that need a restart are printed), 1 when refused.
pub fn cli_reload(a: &crate::cli::ReloadArgs) -> std::process::ExitCode {
    let req = Request {
        what: What::Reload,
        filter: Filter::default(),
        limit: 0,
        json: false,
    };
    match ask(&a.socket, &a.config, &req) {
        Some(out) if !out.starts_with("result: refused") => std::process::ExitCode::SUCCESS,
        _ => std::process::ExitCode::FAILURE,
    }
}

/// What a reload did (the answer of `reload`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// The file was refused (`file:line: key: reason`); the running configuration stays.
    pub refused: Option<String>,
    /// Changed settings that take effect only after a restart.
    pub needs_restart: Vec<String>,
    /// Parts that could not be applied (static BIB entries, log level...).
    pub warnings: Vec<String>,
}

impl ReloadReport {
    /// `applied`, `partial` (applied, something needs a restart or warned) or `refused`.
    pub fn result(&self) -> &'static str {
        if self.refused.is_some() {
            "refused"
        } else if self.needs_restart.is_empty() && self.warnings.is_empty() {
            "applied"
        } else {
            "partial"
        }
    }

    /// The answer's lines.
    pub fn render(&self) -> String {
        let mut s = format!("result: {}\n", self.result());
        if let Some(r) = &self.refused {
            let _ = writeln!(s, "refused: {r}");
        }
        for k in &self.needs_restart {
            let _ = writeln!(s, "needs restart: {k}");
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }
}

/// A reload asked over the control socket: the main thread answers on the channel.
pub type ReloadAsk = tokio::sync::oneshot::Sender<ReloadReport>;

/// What the control socket answers from.
pub struct ControlCtx {
    /// Mode nat64: the tables (`sessions`, `bib`, `counts`).
    pub nat: Option<Arc<Nat64>>,
    /// The counters (`stats`).
    pub sources: Option<Arc<crate::control::metrics::Sources>>,
    /// Where `reload` goes (the daemon's main loop).
    pub reload: Option<std::sync::mpsc::Sender<ReloadAsk>>,
    /// The tables' clock.
    pub epoch: Instant,
}

/// The control socket's thread.
pub struct ControlServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    socket: PathBuf,
}

impl ControlServer {
    /// Binds `c` (see [`bind_control`]) and serves `ctx`; `key` names the setting in errors.
    ///
    /// # Errors
    /// The socket cannot be bound or the thread cannot start (the message names the socket).
    pub fn start(c: &ControlConfig, key: &str, ctx: ControlCtx) -> Result<ControlServer, String> {
        let listener = bind_control(c).map_err(|e| format!("{key} {}: {e}", c.socket.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let ctx = Arc::new(ctx);
        let thread = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || control_loop(listener, ctx, st))
            .map_err(|e| format!("cannot start the control socket thread: {e}"))?;
        Ok(ControlServer {
            stop,
            thread: Some(thread),
            socket: c.socket.clone(),
        })
    }

    /// Stops the thread and removes the socket file.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the thread out of accept().
        let _ = UnixStream::connect(&self.socket);
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
        // Only our socket: something else put at the path meanwhile is left alone.
        if std::fs::symlink_metadata(&self.socket)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        {
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

/// The open mapping log file (reopened on reload, for log rotation).
type LogFile = Arc<Mutex<Option<(PathBuf, std::fs::File)>>>;

/// The NAT64 threads of a running daemon.
pub struct Nat64Runtime {
    nat: Arc<Nat64>,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    timer: Option<JoinHandle<()>>,
    control: Option<ControlServer>,
    log_file: LogFile,
}

fn open_log(p: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
}

/// Binds the control socket. Whatever is at the path is looked at without following a symlink
/// (lstat): nothing is fine; a socket nobody answers on (left by a daemon that died) is removed;
/// a socket a daemon answers on, or anything that is not a socket (a regular file, a symlink, a
/// directory), is refused and left alone. Mode 0660 and the group are then set on the socket
/// inode itself, through an `O_PATH | O_NOFOLLOW` descriptor, never through a symlink.
pub fn bind_control(c: &ControlConfig) -> io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Some(dir) = c.socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::symlink_metadata(&c.socket) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(&c.socket).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another nat64d answers on this socket",
                ));
            }
            // unlink() removes the socket entry itself (it never follows a symlink).
            std::fs::remove_file(&c.socket)?;
        }
        Ok(m) => {
            let what = file_kind(&m.file_type());
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "exists and is {what}, not a socket; nat64d removes only a stale socket: \
                     move it away or set another nat64.control.socket"
                ),
            ));
        }
    }
    let l = UnixListener::bind(&c.socket)?;
    let gid = match &c.group {
        Some(g) => Some(crate::host::group_id(g)?),
        None => None,
    };
    if let Err(e) = set_socket_owner_mode(&c.socket, gid) {
        let _ = std::fs::remove_file(&c.socket);
        return Err(e);
    }
    Ok(l)
}

fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_block_device() || t.is_char_device() {
        "a device node"
    } else {
        "not a regular file"
    }
}

/// chmod 0660 (and chgrp) the socket just bound at `p`, on its own inode: opened with
/// `O_PATH | O_NOFOLLOW` (a symlink swapped in is refused), checked to be a socket, then changed
/// through `/proc/self/fd/N`, which names that inode and no other.
fn set_socket_owner_mode(p: &Path, gid: Option<u32>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)?;
    // fstat works on an O_PATH descriptor.
    if !f.metadata()?.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "was replaced by something that is not a socket",
        ));
    }
    let via = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
    std::fs::set_permissions(&via, std::fs::Permissions::from_mode(0o660))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(&via, None, Some(gid))?;
    }
    Ok(())
}

impl Nat64Runtime {
    /// Starts the timer thread and a control socket (`nat64.control`, answering table requests
    /// only) for `nat`, whose clock is `epoch`.
    ///
    /// # Errors
    /// The control socket or the mapping log file cannot be set up, or a thread cannot start.
    pub fn start(nat: Arc<Nat64>, s: &Nat64Settings, epoch: Instant) -> Result<Self, String> {
        let ctx = ControlCtx {
            nat: Some(nat.clone()),
            sources: None,
            reload: None,
            epoch,
        };
        let control = ControlServer::start(&s.control, "nat64.control.socket", ctx)?;
        let mut rt = Self::start_tables(nat, s, epoch, None)?;
        rt.control = Some(control);
        Ok(rt)
    }

    /// Starts the timer thread only (the daemon runs the control socket itself, in either mode).
    /// The timer writes the core's expiry packets (ICMP errors for unanswered stored SYNs) to
    /// `sink`; without one they are counted by the core and discarded.
    ///
    /// # Errors
    /// The mapping log file cannot be opened, or the thread cannot start.
    pub fn start_tables(
        nat: Arc<Nat64>,
        s: &Nat64Settings,
        epoch: Instant,
        sink: Option<PacketSink>,
    ) -> Result<Self, String> {
        let log_file: LogFile = Arc::new(Mutex::new(None));
        if let MappingLog::File(p) = &s.mapping_log {
            let f =
                open_log(p).map_err(|e| format!("nat64.mapping_log.path {}: {e}", p.display()))?;
            *lock(&log_file) = Some((p.clone(), f));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let to_log = s.mapping_log == MappingLog::ToLog;
        let timer = {
            let (nat, stop, lf) = (nat.clone(), stop.clone(), log_file.clone());
            std::thread::Builder::new()
                .name("nat64-timer".into())
                .spawn(move || timer_loop(&nat, &stop, epoch, to_log, &lf, sink))
                .map_err(|e| format!("cannot start the NAT64 timer: {e}"))?
        };
        Ok(Nat64Runtime {
            nat,
            epoch,
            stop,
            timer: Some(timer),
            control: None,
            log_file,
        })
    }

    /// The shared tables.
    pub fn nat(&self) -> &Arc<Nat64> {
        &self.nat
    }

    /// Applies a reloaded `[nat64]` table to the running one: static BIB entries are added and
    /// removed in place and the mapping log file is reopened; changes to anything the tables are
    /// built from are reported (they need a restart). Returns the settings now in effect and the
    /// warnings to log.
    pub fn reload(&self, old: &Nat64Settings, new: &Nat64Settings) -> (Nat64Settings, Vec<String>) {
        let mut warn: Vec<String> = new
            .table_changes_without_static(old)
            .into_iter()
            .map(|k| format!("{k} changed; this takes effect only after a restart (all sessions are lost then)"))
            .collect();
        let now = now_ms(self.epoch);
        let mut eff = old.clone();
        let (o, n) = (&old.core.static_bib, &new.core.static_bib);
        let mut kept: Vec<_> = Vec::new();
        for e in o {
            if n.contains(e) {
                kept.push(*e);
            } else if !self.nat.remove_static_bib(e, now) {
                warn.push(format!("static BIB entry {e:?} was not found to remove"));
            }
        }
        for e in n {
            if !o.contains(e) {
                match self.nat.add_static_bib(e, now) {
                    Ok(()) => kept.push(*e),
                    Err(err) => warn.push(format!("static BIB entry {e:?} not added: {err}")),
                }
            }
        }
        eff.core.static_bib = kept;
        // The mapping log file: reopened (rotation) or moved, when the log is on.
        if let (MappingLog::File(_), MappingLog::File(p)) = (&old.mapping_log, &new.mapping_log) {
            match open_log(p) {
                Ok(f) => {
                    *lock(&self.log_file) = Some((p.clone(), f));
                    eff.mapping_log = new.mapping_log.clone();
                }
                Err(e) => warn.push(format!("nat64.mapping_log.path {}: {e}", p.display())),
            }
        }
        (eff, warn)
    }

    /// Stops the threads and removes the socket file (when it runs one).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(c) = self.control.take() {
            c.stop();
        }
        if let Some(h) = self.timer.take() {
            let _ = h.join();
        }
    }
}

impl Nat64Settings {
    /// [`Nat64Settings::table_changes`] without the mapping log path (applied on reload).
    fn table_changes_without_static(&self, old: &Nat64Settings) -> Vec<&'static str> {
        let mut v = old.table_changes(self);
        if matches!(
            (&old.mapping_log, &self.mapping_log),
            (MappingLog::File(_), MappingLog::File(_))
        ) {
            v.retain(|k| *k != "nat64.mapping_log.enabled");
        }
        if old.mapping_log != self.mapping_log
            && !matches!(
                (&old.mapping_log, &self.mapping_log),
                (MappingLog::File(_), MappingLog::File(_))
            )
            && !v.contains(&"nat64.mapping_log.enabled")
        {
            v.push("nat64.mapping_log");
        }
        v
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wall-clock milliseconds at the core's time 0.
fn unix_ms_at_epoch(epoch: Instant) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    now.saturating_sub(epoch.elapsed().as_millis() as u64)
}

/// One mapping-log line: the core's JSON with wall-clock times in front.
pub fn event_line(e: &MappingEvent, base_unix_ms: u64, line: &mut String) {
    line.clear();
    let mut body = String::new();
    if e.write_json(&mut body).is_err() {
        return;
    }
    let _ = write!(
        line,
        "{{\"unix_ms\":{},\"created_unix_ms\":{},{}",
        base_unix_ms + e.at.0,
        base_unix_ms + e.created.0,
        body.strip_prefix('{').unwrap_or(&body)
    );
}

fn timer_loop(
    nat: &Nat64,
    stop: &AtomicBool,
    epoch: Instant,
    to_log: bool,
    lf: &LogFile,
    mut sink: Option<PacketSink>,
) {
    let base = unix_ms_at_epoch(epoch);
    let mut ev = Vec::new();
    let mut line = String::new();
    let mut lines = String::new();
    let mut errors = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(TICK);
        errors.clear();
        let st = nat.expire_with_errors(now_ms(epoch), &mut errors);
        if st.sessions_removed > 0 || st.syn_expired > 0 {
            tracing::trace!(
                "expired {} sessions, {} stored SYNs",
                st.sessions_removed,
                st.syn_expired
            );
        }
        // §3.5.2.2: Port Unreachable for the stored SYNs no IPv6 SYN answered.
        if let Some(out) = sink.as_mut() {
            for p in nat64_core::packets(&errors) {
                if let Err(e) = out(p) {
                    tracing::debug!("tun write of an expiry ICMP error failed: {e}");
                }
            }
        }
        ev.clear();
        nat.drain_events(&mut ev);
        if ev.is_empty() {
            continue;
        }
        lines.clear();
        for e in &ev {
            event_line(e, base, &mut line);
            if to_log {
                tracing::info!(target: "nat64d::mapping", "{line}");
            } else {
                lines.push_str(&line);
                lines.push('\n');
            }
        }
        if !to_log {
            if let Some((p, f)) = lock(lf).as_mut() {
                if let Err(e) = f.write_all(lines.as_bytes()) {
                    tracing::warn!("mapping log {}: {e}", p.display());
                }
            }
        }
    }
}

/// Connections served at once; one more is answered `error: busy` and closed.
pub const MAX_CONNECTIONS: usize = 128;
/// Time a client has to send its request line.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Time a client has to read the whole answer.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(10);

/// Serves the control socket: every connection is a task of a one-thread runtime, so an idle or
/// slow client holds a task, not the socket; at most [`MAX_CONNECTIONS`] at once, each with a
/// deadline for its request ([`REQUEST_DEADLINE`]) and for its answer ([`ANSWER_DEADLINE`]).
fn control_loop(l: UnixListener, ctx: Arc<ControlCtx>, stop: Arc<AtomicBool>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("control socket: cannot start its runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let l = match l
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixListener::from_std(l))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("control socket: {e}");
                return;
            }
        };
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let conn = l.accept().await;
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let mut s = match conn {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::debug!("control socket: accept: {e}");
                    // EMFILE and the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let msg = format!(
                        "error: busy ({MAX_CONNECTIONS} control connections open), try again\n"
                    );
                    let _ =
                        tokio::time::timeout(REQUEST_DEADLINE, s.write_all(msg.as_bytes())).await;
                });
                continue;
            };
            let ctx = ctx.clone();
            tokio::spawn(async move {
                serve(&mut s, &ctx).await;
                drop(permit);
            });
        }
    });
}

/// One connection: one request line (at most 4096 bytes) within [`REQUEST_DEADLINE`], then the
/// answer within [`ANSWER_DEADLINE`].
async fn serve(s: &mut tokio::net::UnixStream, ctx: &ControlCtx) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let mut line = String::new();
    let read = {
        let mut r = tokio::io::BufReader::new(&mut *s).take(4096);
        tokio::time::timeout(REQUEST_DEADLINE, r.read_line(&mut line)).await
    };
    let reply = match read {
        Ok(Ok(_)) => match Request::parse(line.trim()) {
            Ok(req) => dispatch(ctx, &req).await,
            Err(e) => format!("error: {e}\n"),
        },
        Ok(Err(e)) => format!("error: {e}\n"),
        Err(_) => format!(
            "error: no request within {} s\n",
            REQUEST_DEADLINE.as_secs()
        ),
    };
    match tokio::time::timeout(ANSWER_DEADLINE, s.write_all(reply.as_bytes())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!("control socket: {e}"),
        Err(_) => tracing::debug!("control socket: answer not read within the deadline"),
    }
}

/// How long `reload` waits for the main loop's answer.
pub const RELOAD_DEADLINE: Duration = Duration::from_secs(30);

async fn dispatch(ctx: &ControlCtx, req: &Request) -> String {
    match req.what {
        What::Sessions | What::Bib | What::Counts => match &ctx.nat {
            Some(nat) => answer(nat, req, now_ms(ctx.epoch)),
            None => "error: mode is \"siit\": there are no NAT64 tables (stats and reload work)\n"
                .to_string(),
        },
        What::Stats => match &ctx.sources {
            Some(src) => {
                let snap = src.snapshot();
                if req.json {
                    match serde_json::to_string(&snap) {
                        Ok(mut j) => {
                            j.push('\n');
                            j
                        }
                        Err(e) => format!("error: {e}\n"),
                    }
                } else {
                    snap.table()
                }
            }
            None => "error: this socket does not serve stats\n".to_string(),
        },
        What::Reload => {
            let Some(tx) = &ctx.reload else {
                return "error: this socket does not serve reload\n".to_string();
            };
            let (ask, answer) = tokio::sync::oneshot::channel();
            if tx.send(ask).is_err() {
                return "error: the daemon is stopping\n".to_string();
            }
            match tokio::time::timeout(RELOAD_DEADLINE, answer).await {
                Ok(Ok(r)) => r.render(),
                Ok(Err(_)) => "error: the daemon is stopping\n".to_string(),
                Err(_) => format!(
                    "error: no reload result within {} s\n",
                    RELOAD_DEADLINE.as_secs()
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let r = Request::parse("sessions proto=udp v6=2001:db8::1 v4=192.0.2.1 limit=5").unwrap();
        assert_eq!(r.what, What::Sessions);
        assert_eq!(r.filter.proto, Some(Proto::Udp));
        assert_eq!(r.limit, 5);
        assert_eq!(Request::parse(&r.to_line()).unwrap(), r);
        assert!(Request::parse("sessions proto=sctp").is_err());
        assert!(Request::parse("drop all").is_err());
        assert!(Request::parse("bib v4=2001:db8::1").is_err());
        let j = Request::parse("bib format=json limit=3").unwrap();
        assert!(j.json);
        assert_eq!(Request::parse(&j.to_line()).unwrap(), j);
        let st = Request::parse("stats format=json").unwrap();
        assert_eq!((st.what, st.json), (What::Stats, true));
        assert_eq!(Request::parse(&st.to_line()).unwrap(), st);
        assert!(Request::parse("stats proto=udp").is_err());
        assert_eq!(Request::parse("reload").unwrap().what, What::Reload);
        assert!(Request::parse("reload format=json").is_err());
    }
}
