//! Command line.
#![deny(unsafe_code)]

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/nat64d/nat64d.toml";

/// The configuration file, given either way: `nat64d run FILE` or `nat64d run --config FILE`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// The configuration file [default: /etc/nat64d/nat64d.toml].
    #[arg(value_name = "FILE", conflicts_with = "config")]
    pub file: Option<PathBuf>,
    /// The configuration file (the same as FILE).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// The file given, or [`DEFAULT_CONFIG`].
    pub fn path(&self) -> PathBuf {
        self.file
            .clone()
            .or_else(|| self.config.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }
}

/// nat64d: userspace NAT64/SIIT gateway.
#[derive(Debug, Parser)]
#[command(name = "nat64d", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway: create the TUN device, its routes, and translate until SIGTERM/SIGINT.
    /// SIGHUP reloads the configuration; SIGUSR1 logs the counters.
    Run {
        /// The configuration file.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Run captured packets through the translator of FILE's mode (SIIT, or stateful NAT64 with
    /// tables kept across the capture and time from its timestamps): one line per packet
    /// (verdict or drop reason), translated packets written to a pcap.
    Translate {
        /// The configuration file (mode, pool6, EAMT, RFC 6791 pool, [nat64], xlat options).
        #[command(flatten)]
        config: ConfigArg,
        /// Input pcap (raw IP, Ethernet or Linux cooked); `-` or absent: hex packets on stdin,
        /// one per line.
        #[arg(short, long)]
        input: Option<PathBuf>,
        /// Output pcap (LINKTYPE_RAW) for the translated packets and ICMP errors.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Seed of the stateful tables' hash (mode = "nat64"), so a replay is reproducible.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Run only the DNS64 server of FILE's `[dns64]` table (no TUN, no translation) until
    /// SIGTERM/SIGINT.
    Dns64 {
        /// The configuration file.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List the NAT64 session table of the running daemon (mode = "nat64"), through its control
    /// socket: `proto [X']:x [Y']:y <-> T:t Z:z state expires-in`.
    Sessions(TableArgs),
    /// List the NAT64 binding information base (BIB) of the running daemon.
    Bib(TableArgs),
    /// Show the running daemon's counters (either mode; the same as its Prometheus metrics):
    /// packets, drops by reason, tables, DNS64, reloads.
    Stats(StatsArgs),
    /// Ask the running daemon to re-read its configuration file (as SIGHUP does) and print the
    /// result: applied, refused (file:line: key: reason) or what needs a restart.
    Reload(ReloadArgs),
    /// Validate a configuration file without starting anything (exit status 0 if valid).
    CheckConfig {
        /// The configuration file.
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// Filters and the socket of `nat64d sessions` / `nat64d bib`.
#[derive(Debug, clap::Args)]
pub struct TableArgs {
    /// Only this protocol: tcp, udp or icmp.
    #[arg(long)]
    pub proto: Option<String>,
    /// Only entries of this IPv6 host.
    #[arg(long)]
    pub v6: Option<std::net::Ipv6Addr>,
    /// Only entries with this IPv4 address (pool4 address or IPv4 peer).
    #[arg(long)]
    pub v4: Option<std::net::Ipv4Addr>,
    /// Most entries listed.
    #[arg(long, default_value_t = 10_000)]
    pub limit: usize,
    /// The control socket (default: control.socket or nat64.control.socket of --config).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// One JSON document instead of lines.
    #[arg(long)]
    pub json: bool,
    /// The configuration file naming the control socket.
    #[command(flatten)]
    pub config: ConfigArg,
}

/// `nat64d stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// One JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The control socket (default: control.socket or nat64.control.socket of --config).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// The configuration file naming the control socket.
    #[command(flatten)]
    pub config: ConfigArg,
}

/// `nat64d reload`.
#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// The control socket (default: control.socket or nat64.control.socket of --config).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// The configuration file naming the control socket.
    #[command(flatten)]
    pub config: ConfigArg,
}
