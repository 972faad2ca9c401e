//! nat64d: userspace NAT64/SIIT gateway daemon.
use clap::Parser;
use nat64d::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => match nat64d::daemon::run(&config) {
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
        } => match nat64d::translate::run(&config, input.as_deref(), output.as_deref(), seed) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nat64d translate: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Dns64 { config } => match nat64d::dns64_service::run_standalone(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nat64d dns64: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Sessions(a) => nat64d::nat64_ctl::cli(nat64d::nat64_ctl::What::Sessions, &a),
        Command::Bib(a) => nat64d::nat64_ctl::cli(nat64d::nat64_ctl::What::Bib, &a),
        Command::CheckConfig { file } => match nat64d::config::load(&file) {
            Ok(c) => {
                println!("{}: OK ({})", file.display(), nat64d::config::summary(&c));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
    }
}
