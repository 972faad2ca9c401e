//! nat64d: userspace NAT64/SIIT gateway daemon.
use clap::Parser;
use nat64d::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => match nat64d::daemon::run(&config.path()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("nat64d: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Translate {
            config,
            input,
            output,
            seed,
        } => {
            match nat64d::tools::translate::run(
                &config.path(),
                input.as_deref(),
                output.as_deref(),
                seed,
            ) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("nat64d translate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Dns64 { config } => match nat64d::dns64::service::run_standalone(&config.path()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nat64d dns64: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Sessions(a) => {
            nat64d::control::socket::cli(nat64d::control::socket::What::Sessions, &a)
        }
        Command::Bib(a) => nat64d::control::socket::cli(nat64d::control::socket::What::Bib, &a),
        Command::Stats(a) => nat64d::control::socket::cli_stats(&a),
        Command::Reload(a) => nat64d::control::socket::cli_reload(&a),
        Command::CheckConfig { config } => match nat64d::config::load(&config.path()) {
            Ok(c) => {
                // What `run` would refuse on this host (check-config on another machine cannot
                // know that machine's addresses).
                if c.mode == nat64d::config::Mode::Nat64 {
                    match nat64d::dataplane::netcfg::host_ipv4_addresses() {
                        Ok(host) => {
                            let errs = c.pool4_on_host(&host);
                            for e in &errs {
                                eprintln!("{e} (on this host)");
                            }
                            if !errs.is_empty() {
                                return ExitCode::FAILURE;
                            }
                        }
                        Err(e) => eprintln!(
                            "nat64d: warning: cannot list this host's addresses ({e}); pool4 not checked against them"
                        ),
                    }
                }
                println!(
                    "{}: OK ({})",
                    config.path().display(),
                    nat64d::config::summary(&c)
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
    }
}
