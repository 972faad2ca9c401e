//! The daemon's lifecycle: start, reload, statistics, stop.
//!
//! Start: validate the config, open the TUN queues, put addresses and routes on the device, spawn
//! one worker per queue, then tell systemd READY. The main thread then only waits for signals
//! (forwarded from a signal-hook thread) and pings the watchdog:
//! - SIGHUP: RELOADING; re-read the file; if valid, swap the translator (pool6, EAMT, RFC 6791
//!   pool, RFC 7915 options) for all workers at once, sync routes and the log level; if invalid,
//!   log why and keep the running config; then READY.
//! - SIGUSR1: log the counters (packets, ICMP errors, drops per reason).
//! - `nat64d reload` (control socket): the same reload as SIGHUP; its result goes back to the
//!   client.
//!
//! The watchdog is pinged only while every worker made progress or waits idle (the check of the
//! metrics endpoint's `/healthz`), so systemd restarts a gateway whose worker is stuck.
//! - SIGTERM / SIGINT: STOPPING; stop the workers, remove the routes and addresses this process
//!   added (the TUN device itself disappears with its last descriptor unless it was a persistent
//!   device we attached to), log the counters.
#![deny(unsafe_code)]

use crate::config::{self, Config};
use crate::control::metrics::{MetricsServer, ReloadCounts, Sources};
use crate::control::socket::{ControlCtx, ControlServer, Nat64Runtime, ReloadAsk, ReloadReport};
use crate::dataplane::netcfg::NetCfg;
use crate::dataplane::stats::{AliveGuard, Totals, WorkerStats};
use crate::dataplane::tun;
use crate::dataplane::xlator::Translator;
use crate::dataplane::{self, SharedTranslator};
use crate::logging::LogHandle;
use arc_swap::ArcSwap;
use nat64_core::siit::Siit;
use sd_notify::NotifyState;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tun_rs::InterruptEvent;

/// A start-up failure (one clear message, then exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The TUN device could not be opened.
    #[error(transparent)]
    Tun(#[from] tun::TunError),
    /// Routes or addresses could not be set.
    #[error(transparent)]
    Net(#[from] crate::dataplane::netcfg::NetError),
    /// Anything else at start (threads, signals).
    #[error("{0}")]
    Other(String),
}

/// What a reload changes, and which changed settings it cannot apply (they need a restart).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Settings that changed but need a restart.
    pub needs_restart: Vec<&'static str>,
}

/// Compares the running config with a new one.
pub fn plan_reload(old: &Config, new: &Config) -> ReloadPlan {
    let mut p = ReloadPlan::default();
    if old.mode != new.mode {
        p.needs_restart.push("mode");
    }
    let (a, b) = (&old.tun, &new.tun);
    if a.name != b.name {
        p.needs_restart.push("tun.name");
    }
    if a.mtu != b.mtu {
        p.needs_restart.push("tun.mtu");
    }
    if a.queues != b.queues {
        p.needs_restart.push("tun.queues");
    }
    if a.offload != b.offload {
        p.needs_restart.push("tun.offload");
    }
    if a.txqueuelen != b.txqueuelen {
        p.needs_restart.push("tun.txqueuelen");
    }
    if a.addresses != b.addresses {
        p.needs_restart.push("tun.addresses");
    }
    if old.log.format != new.log.format {
        p.needs_restart.push("log.format");
    }
    p
}

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify: {e}");
    }
}

enum Event {
    Signal(i32),
    Reload(ReloadAsk),
}

struct Running {
    cfg: Config,
    translator: SharedTranslator,
    net: NetCfg,
    log: Option<LogHandle>,
    stats: Vec<Arc<WorkerStats>>,
    /// Mode nat64: the tables' timer (the state survives reloads).
    nat64: Option<Nat64Runtime>,
    /// Reload outcomes (metrics).
    reloads: Arc<ReloadCounts>,
    /// The eBPF fast path (`[fastpath] enabled` and loaded).
    fastpath: Option<crate::fastpath::FastPath>,
}

impl Running {
    fn totals(&self) -> Totals {
        Totals::sum(self.stats.iter().map(|s| s.as_ref()))
    }

    /// SIGUSR1: the counters (and the NAT64 table sizes) as `info` lines.
    fn log_counters(&self) {
        tracing::info!("counters: {}", self.totals().render());
        if let Some(fp) = &self.fastpath {
            tracing::info!("fastpath: {}", fp.render_counters());
        }
        if let Some(rt) = &self.nat64 {
            let c = rt.nat().counts();
            tracing::info!(
                "nat64: sessions tcp={} udp={} icmp={} bib tcp={} udp={} icmp={} static={} fragments={} events_dropped={}",
                c.sessions[0], c.sessions[1], c.sessions[2], c.bib[0], c.bib[1], c.bib[2],
                c.static_bib, c.fragments, c.events_dropped
            );
        }
    }

    fn reload(&mut self) -> ReloadReport {
        let mono = NotifyState::monotonic_usec_now().ok();
        let mut st = vec![NotifyState::Reloading];
        st.extend(mono);
        notify(&st);
        let mut report = ReloadReport::default();
        match config::load(&self.cfg.path) {
            Err(e) => {
                tracing::error!("reload refused, keeping the running configuration: {e}");
                report.refused = Some(e.to_string());
            }
            Ok(new) if self.cfg.reload_refusal(&new).is_some() => {
                let why = self.cfg.reload_refusal(&new).unwrap_or_default();
                tracing::error!("reload refused, keeping the running configuration: {why}");
                report.refused = Some(why);
            }
            Ok(new) => {
                let mut plan = plan_reload(&self.cfg, &new);
                // Endpoints bound at start.
                if self.cfg.metrics != new.metrics {
                    plan.needs_restart.push("metrics.listen");
                }
                if self.cfg.control != new.control {
                    plan.needs_restart.push("control");
                }
                if self.cfg.fastpath != new.fastpath {
                    plan.needs_restart.push("fastpath");
                }
                for k in &plan.needs_restart {
                    tracing::warn!("reload: {k} changed; this takes effect only after a restart");
                    report.needs_restart.push((*k).to_string());
                }
                // Mode nat64 keeps its tables (the Nat64 in the running translator); only the
                // static BIB and the mapping log file change in place (control::socket).
                let nat64_applied = match (&self.nat64, &self.cfg.nat64, &new.nat64) {
                    (Some(rt), Some(old), Some(n)) => {
                        let (eff, warns) = rt.reload(old, n);
                        for w in warns {
                            tracing::warn!("reload: {w}");
                            report.warnings.push(w);
                        }
                        Some(eff)
                    }
                    // The new file switches to siit: that needs a restart (warned above).
                    (Some(_), Some(old), None) => Some(old.clone()),
                    _ => {
                        self.translator
                            .store(Arc::new(Translator::Siit(Siit::new(new.siit.clone()))));
                        None
                    }
                };
                if nat64_applied.is_none() {
                    fastpath_refresh(&mut self.fastpath, &new.siit, &mut report.warnings);
                }
                if let Some(h) = &self.log {
                    if self.cfg.log.level != new.log.level {
                        if let Err(e) = h.set_level(&new.log.level) {
                            tracing::warn!("reload: log.level: {e}");
                            report.warnings.push(format!("log.level: {e}"));
                        }
                    }
                }
                // Keep the settings that did not take effect, so the next reload compares
                // against what actually runs.
                let mut applied = new;
                applied.mode = self.cfg.mode;
                applied.tun.name = self.cfg.tun.name.clone();
                applied.tun.mtu = self.cfg.tun.mtu;
                applied.tun.queues = self.cfg.tun.queues;
                applied.tun.txqueuelen = self.cfg.tun.txqueuelen;
                applied.tun.offload = self.cfg.tun.offload;
                applied.tun.addresses = self.cfg.tun.addresses.clone();
                applied.log.format = self.cfg.log.format;
                applied.metrics = self.cfg.metrics;
                applied.control = self.cfg.control.clone();
                applied.fastpath = self.cfg.fastpath.clone();
                if let Some(eff) = nat64_applied {
                    applied.siit = self.cfg.siit.clone();
                    applied.nat64 = Some(eff);
                }
                for e in self.net.sync_routes(&applied.tun_routes()) {
                    tracing::warn!("reload: {e}");
                    report.warnings.push(e.to_string());
                }
                self.cfg = applied;
                tracing::info!("reloaded: {}", config::summary(&self.cfg));
            }
        }
        let c = match report.result() {
            "applied" => &self.reloads.applied,
            "partial" => &self.reloads.partial,
            _ => &self.reloads.refused,
        };
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        notify(&[NotifyState::Ready]);
        report
    }
}

/// A writer of single packets on TUN queue `q` (a duplicate descriptor), with the zero virtio-net
/// header an offload queue expects in front of each packet.
fn tun_sink(
    q: &tun_rs::SyncDevice,
    offload: bool,
) -> std::io::Result<crate::control::socket::PacketSink> {
    use std::io::Write as _;
    use std::os::fd::AsFd as _;
    let mut f = std::fs::File::from(q.as_fd().try_clone_to_owned()?);
    let hdr = if offload {
        tun_rs::VIRTIO_NET_HDR_LEN
    } else {
        0
    };
    let mut buf = Vec::with_capacity(hdr + 1500);
    Ok(Box::new(move |p: &[u8]| {
        buf.clear();
        buf.resize(hdr, 0);
        buf.extend_from_slice(p);
        f.write(&buf).map(|_| ())
    }))
}

/// Runs the gateway with the config at `path` until SIGTERM/SIGINT: [`Daemon::start`], then
/// [`Daemon::run`] (the event loop, which reloads on request), then [`Daemon::stop`].
///
/// # Errors
/// [`StartError`] for anything that prevents starting; after start, only a worker thread that
/// died makes it return an error.
pub fn run(path: &std::path::Path) -> Result<(), StartError> {
    let mut d = Daemon::start(path)?;
    let failed = d.run();
    d.stop(failed)
}

/// The TUN device with its addresses and routes in place.
struct Dataplane {
    tun: tun::Tun,
    net: NetCfg,
}

/// The signal thread, forwarding into the main loop's channel.
struct SignalThread {
    handle: signal_hook::iterator::Handle,
    thread: JoinHandle<()>,
}

/// A started gateway: what [`Daemon::run`] watches and [`Daemon::stop`] takes down.
struct Daemon {
    run: Running,
    /// Signals and reload asks, in arrival order.
    events: mpsc::Receiver<Event>,
    signals: SignalThread,
    /// Forwards the control socket's reload asks into `events`.
    reload_fwd: JoinHandle<()>,
    workers: Vec<JoinHandle<std::io::Result<()>>>,
    /// Tells the workers to stop.
    stop: Arc<InterruptEvent>,
    sources: Arc<Sources>,
    control: Option<ControlServer>,
    metrics: Option<MetricsServer>,
    dns64: Option<crate::dns64::service::Dns64Service>,
    /// The TUN device existed before us (persistent): our routes and addresses stay on it
    /// unless we take them off.
    attached: bool,
    /// A part that failed after the dataplane was up: the daemon stops at once, cleanly.
    failed_start: Option<String>,
}

impl Daemon {
    /// Start: validate the config, bind the DNS64 and metrics ports, open the TUN and configure
    /// it, install the signal handlers, spawn the workers, the NAT64 timer and the control
    /// socket, then tell systemd READY.
    fn start(path: &std::path::Path) -> Result<Daemon, StartError> {
        let cfg = config::load(path)?;
        if cfg.mode == config::Mode::Nat64 {
            let host = crate::dataplane::netcfg::host_ipv4_addresses()?;
            if let Some(e) = cfg.pool4_on_host(&host).into_iter().next() {
                return Err(e.into());
            }
        }
        let log = match crate::logging::init(&cfg.log) {
            Ok(h) => Some(h),
            Err(e) => {
                eprintln!("nat64d: logging: {e}");
                None
            }
        };
        tracing::info!("starting: {}", config::summary(&cfg));

        // DNS64 first: a port that cannot be bound stops us before anything is changed.
        let dns64 = match &cfg.dns64 {
            Some(d) => Some(
                crate::dns64::service::Dns64Service::start(d.clone()).map_err(StartError::Other)?,
            ),
            None => None,
        };
        // The metrics port too (it is served once the workers run).
        let metrics_listener = match cfg.metrics {
            Some(a) => Some(MetricsServer::bind(a).map_err(StartError::Other)?),
            None => None,
        };

        let Dataplane { tun, net } = open_dataplane(&cfg)?;
        let attached = tun.attached;

        // Signals first, so none is lost once workers run.
        let (tx, events) = mpsc::channel::<Event>();
        let reload_tx = tx.clone();
        let signals = spawn_signals(tx)?;

        let (first, nat) = match (&cfg.mode, &cfg.nat64) {
            (config::Mode::Nat64, Some(n)) => {
                let mut c = n.core.clone();
                c.hash_seed = crate::control::socket::random_seed()
                    .map_err(|e| StartError::Other(format!("cannot read a hash seed: {e}")))?;
                let nat = Arc::new(
                    nat64_core::nat64::Nat64::new(c)
                        .map_err(|e| StartError::Other(format!("nat64: {e}")))?,
                );
                (Translator::Nat64(nat.clone()), Some(nat))
            }
            _ => (Translator::Siit(Siit::new(cfg.siit.clone())), None),
        };
        let translator: SharedTranslator = Arc::new(ArcSwap::from_pointee(first));
        let stop = Arc::new(
            InterruptEvent::new()
                .map_err(|e| StartError::Other(format!("cannot create the stop event: {e}")))?,
        );
        let epoch = Instant::now();
        let mut failed_start: Option<String> = None;
        // The NAT64 timer's output (RFC 6146 §3.5.2.2 Port Unreachable on expiry of a stored
        // SYN): a second descriptor of the first queue, written to only.
        let sink = match (&nat, tun.queues.first()) {
            (Some(_), Some(q)) => match tun_sink(q, tun.offload) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(
                        "nat64: no TUN writer for the timer ({e}); expiry errors are not sent"
                    );
                    None
                }
            },
            _ => None,
        };
        let fastpath = start_fastpath(&cfg);
        let (stats, workers) =
            spawn_workers(tun, usize::from(cfg.tun.mtu), &translator, &stop, epoch)?;

        let nat64 = match (&nat, &cfg.nat64) {
            (Some(nat), Some(s)) => match Nat64Runtime::start_tables(nat.clone(), s, epoch, sink) {
                Ok(rt) => Some(rt),
                Err(e) => {
                    tracing::error!("{e}");
                    failed_start = Some(e);
                    None
                }
            },
            _ => None,
        };
        let reloads = Arc::new(ReloadCounts::default());
        let sources = Arc::new(Sources {
            mode: match cfg.mode {
                config::Mode::Siit => "siit",
                config::Mode::Nat64 => "nat64",
            },
            workers: stats.clone(),
            epoch,
            nat: nat.clone(),
            dns64: dns64.as_ref().map(|d| d.stats()),
            reloads: reloads.clone(),
        });
        // The control socket, in either mode: stats, reload, and the tables in mode nat64.
        let (ask_tx, ask_rx) = mpsc::channel::<ReloadAsk>();
        let control = if failed_start.is_none() {
            let ctx = ControlCtx {
                nat: nat.clone(),
                sources: Some(sources.clone()),
                reload: Some(ask_tx),
                epoch,
            };
            start_control(&cfg, ctx).unwrap_or_else(|e| {
                tracing::error!("{e}");
                failed_start = Some(e);
                None
            })
        } else {
            // Only the control socket asks (the forwarder ends when it is gone).
            drop(ask_tx);
            None
        };
        // Forward reload asks into the main loop's channel.
        let reload_fwd = std::thread::Builder::new()
            .name("reload-asks".into())
            .spawn(move || {
                for a in ask_rx {
                    if reload_tx.send(Event::Reload(a)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| StartError::Other(format!("cannot start a thread: {e}")))?;
        let metrics = match metrics_listener {
            Some(l) => match MetricsServer::serve(l, sources.clone()) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::error!("{e}");
                    failed_start.get_or_insert(e);
                    None
                }
            },
            None => None,
        };
        if failed_start.is_none() {
            notify(&[NotifyState::Ready, NotifyState::Status("translating")]);
            tracing::info!("ready");
        }
        Ok(Daemon {
            run: Running {
                cfg,
                translator,
                net,
                log,
                stats,
                nat64,
                reloads,
                fastpath,
            },
            events,
            signals,
            reload_fwd,
            workers,
            stop,
            sources,
            control,
            metrics,
            dns64,
            attached,
            failed_start,
        })
    }

    /// Run: the event loop on the main thread. Reloads on SIGHUP or a control-socket ask,
    /// logs the counters on SIGUSR1, pings the watchdog while every worker makes progress.
    /// Returns on SIGTERM/SIGINT (`None`) or with what failed (a worker ended, the signal thread
    /// ended, or a part of the start).
    fn run(&mut self) -> Option<String> {
        if let Some(f) = self.failed_start.take() {
            return Some(f);
        }
        let watchdog = sd_notify::watchdog_enabled();
        let tick = watchdog
            .map(|w| w / 2)
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        loop {
            match self.events.recv_timeout(tick) {
                Ok(Event::Signal(SIGHUP)) => {
                    tracing::info!("SIGHUP: reloading {}", self.run.cfg.path.display());
                    self.run.reload();
                }
                Ok(Event::Reload(ask)) => {
                    tracing::info!("control socket: reloading {}", self.run.cfg.path.display());
                    let _ = ask.send(self.run.reload());
                }
                Ok(Event::Signal(SIGUSR1)) => self.run.log_counters(),
                Ok(Event::Signal(s)) => {
                    tracing::info!(
                        "{}: stopping",
                        if s == SIGINT { "SIGINT" } else { "SIGTERM" }
                    );
                    return None;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Some("the signal thread ended".to_string());
                }
            }
            if watchdog.is_some() {
                // Liveness is not enough: a worker stuck inside a batch stops the pings.
                let stuck = self.sources.stuck_workers();
                if stuck.is_empty() {
                    notify(&[NotifyState::Watchdog]);
                } else {
                    tracing::error!("workers {stuck:?} made no progress: not pinging the watchdog");
                }
            }
            if let Some(i) = self.workers.iter().position(|w| w.is_finished()) {
                return Some(format!("worker {i} ended unexpectedly"));
            }
        }
    }

    /// Stop: STOPPING; close the endpoints, stop and join the workers, stop the NAT64 timer,
    /// take our routes and addresses off a persistent device, stop DNS64 and the signal
    /// thread, log the counters. `failed` (from [`Daemon::run`]) and any worker error make the
    /// result an error.
    fn stop(self, mut failed: Option<String>) -> Result<(), StartError> {
        let Daemon {
            mut run,
            events,
            signals,
            reload_fwd,
            workers,
            stop,
            control,
            metrics,
            dns64,
            attached,
            ..
        } = self;
        notify(&[NotifyState::Stopping]);
        drop(metrics);
        if let Some(c) = control {
            c.stop();
        }
        let _ = reload_fwd.join();
        if let Err(e) = stop.trigger() {
            tracing::error!("cannot signal the workers to stop: {e}");
        }
        for (i, w) in workers.into_iter().enumerate() {
            match w.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!("worker {i}: {e}");
                    failed.get_or_insert_with(|| format!("worker {i}: {e}"));
                }
                Err(_) => {
                    tracing::error!("worker {i} panicked");
                    failed.get_or_insert_with(|| format!("worker {i} panicked"));
                }
            }
        }
        if let Some(rt) = run.nat64.take() {
            rt.stop();
        }
        if let Some(fp) = run.fastpath.take() {
            // Dropping it detaches the program and frees its maps.
            tracing::info!("fastpath: detaching; {}", fp.render_counters());
        }
        if attached {
            // A persistent device outlives us: take our routes and addresses off it. A device
            // we created vanished with its last queue, and its routes with it.
            for e in run.net.remove_all() {
                tracing::warn!("cleanup: {e}");
            }
        }
        if let Some(d) = dns64 {
            d.stop();
        }
        signals.handle.close();
        let _ = signals.thread.join();
        drop(events);
        tracing::info!("stopped; counters: {}", run.totals().render());
        match failed {
            Some(f) => Err(StartError::Other(f)),
            None => Ok(()),
        }
    }
}

/// `[fastpath] enabled`: loads and attaches the eBPF fast path; when it cannot (not built, no
/// permission, an old kernel, a missing interface) says why and runs TUN-only.
fn start_fastpath(cfg: &Config) -> Option<crate::fastpath::FastPath> {
    if !cfg.fastpath.enabled {
        return None;
    }
    match crate::fastpath::FastPath::start(&cfg.fastpath, &cfg.siit) {
        Ok(fp) => {
            tracing::info!("fastpath: attached at TC ingress of {:?}", fp.attached());
            Some(fp)
        }
        Err(e) => {
            tracing::warn!("fastpath: {e}; running TUN-only");
            None
        }
    }
}

/// After a reload: the fast path's tables follow the new SIIT tables, or it goes (TUN-only).
fn fastpath_refresh(
    fp: &mut Option<crate::fastpath::FastPath>,
    siit: &nat64_core::siit::SiitConfig,
    warnings: &mut Vec<String>,
) {
    if let Some(f) = fp {
        if let Err(e) = f.refresh(siit) {
            tracing::warn!("reload: fastpath: {e}; detached, running TUN-only");
            warnings.push(format!("fastpath: {e}"));
            *fp = None;
        }
    }
}

/// Opens the TUN device and puts the configured addresses and routes on it; on a refusal,
/// takes off what it had added.
fn open_dataplane(cfg: &Config) -> Result<Dataplane, StartError> {
    let tun = tun::open(&cfg.tun)?;
    if let Some(e) = &tun.offload_error {
        tracing::warn!("tun.offload: not available ({e}); running without offload");
    }
    let mut net = NetCfg::new(&tun.name);
    let started = (|| -> Result<(), crate::dataplane::netcfg::NetError> {
        for a in &cfg.tun.addresses {
            net.add_address(*a)?;
        }
        net.link_up(!tun.attached)?;
        if tun.offload {
            // Otherwise a 64 KiB TCP super-packet of small segments (130 of 552 bytes were seen
            // during hostile.sh) cannot be split into the worker's buffers and is lost whole,
            // counted as rx_errors.
            if let Err(e) = net.limit_gso_segments(dataplane::OFFLOAD_MAX_SEGMENTS) {
                tracing::warn!("tun.offload: {e}; GSO packets of more than {} segments will be dropped (rx_errors)", dataplane::OFFLOAD_MAX_SEGMENTS);
            }
        }
        for r in cfg.tun_routes() {
            net.add_route(r)?;
        }
        Ok(())
    })();
    if let Err(e) = started {
        for e2 in net.remove_all() {
            tracing::warn!("cleanup: {e2}");
        }
        return Err(e.into());
    }
    tracing::info!(
        "tun {} {} with {} queue(s){}; routes: {}",
        tun.name,
        if tun.attached { "attached" } else { "created" },
        tun.queues.len(),
        if tun.offload {
            ", offload (GSO/GRO)"
        } else {
            ""
        },
        net.routes()
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Dataplane { tun, net })
}

/// Installs the handlers for SIGTERM, SIGINT, SIGHUP and SIGUSR1 and forwards them to `tx`
/// from a thread of their own.
fn spawn_signals(tx: mpsc::Sender<Event>) -> Result<SignalThread, StartError> {
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
        .map_err(|e| StartError::Other(format!("cannot install signal handlers: {e}")))?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for s in signals.forever() {
                if tx.send(Event::Signal(s)).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| StartError::Other(format!("cannot start the signal thread: {e}")))?;
    Ok(SignalThread { handle, thread })
}

/// The workers' counters and threads, in queue order.
type Workers = (Vec<Arc<WorkerStats>>, Vec<JoinHandle<std::io::Result<()>>>);

/// Spawns one worker thread per TUN queue, each owning its queue.
fn spawn_workers(
    tun: tun::Tun,
    mtu: usize,
    translator: &SharedTranslator,
    stop: &Arc<InterruptEvent>,
    epoch: Instant,
) -> Result<Workers, StartError> {
    let offload = tun.offload;
    let mut stats = Vec::new();
    let mut workers = Vec::new();
    for (i, q) in tun.queues.into_iter().enumerate() {
        let st = Arc::new(WorkerStats::default());
        stats.push(st.clone());
        let (t, s) = (translator.clone(), stop.clone());
        let h = std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || {
                let _alive = AliveGuard(st.clone());
                if offload {
                    dataplane::run_worker_offload(i, q, mtu, t, st, s, epoch)
                } else {
                    dataplane::run_worker(i, q, t, st, s, epoch)
                }
            })
            .map_err(|e| StartError::Other(format!("cannot start worker {i}: {e}")))?;
        workers.push(h);
    }
    Ok((stats, workers))
}

/// Starts the control socket when the config has one.
///
/// # Errors
/// The socket cannot be made (the message names the config key).
fn start_control(cfg: &Config, ctx: ControlCtx) -> Result<Option<ControlServer>, String> {
    let Some(c) = &cfg.control else {
        return Ok(None);
    };
    let key = if cfg.mode == config::Mode::Nat64 {
        "control.socket (or nat64.control.socket)"
    } else {
        "control.socket"
    };
    ControlServer::start(c, key, ctx).map(Some)
}
