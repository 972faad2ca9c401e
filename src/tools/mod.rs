//! Offline tools: subcommands that use the daemon's configuration and translator without
//! running the gateway.
//!
//! - [`translate`]: `nat64d translate`, captured packets through the configured translator.

pub mod translate;
