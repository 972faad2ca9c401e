//! Logging with tracing: text or JSON on stderr (journald picks it up), the level reloadable on
//! SIGHUP. Nothing on the packet path logs above `debug`.
#![deny(unsafe_code)]

use crate::config::{LogConfig, LogFormat};
use std::io::IsTerminal;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Changes the log level of the running subscriber.
pub struct LogHandle(reload::Handle<EnvFilter, Registry>);

impl LogHandle {
    /// Applies a new level directive.
    ///
    /// # Errors
    /// The directive does not parse, or the subscriber is gone.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        let f = EnvFilter::builder()
            .parse(with_quiet_deps(level))
            .map_err(|e| e.to_string())?;
        self.0.reload(f).map_err(|e| e.to_string())
    }
}

/// hickory-server logs two INFO lines per DNS query over TCP: keep it at WARN unless the directive
/// names it.
fn with_quiet_deps(level: &str) -> String {
    if level.contains("hickory") {
        level.to_string()
    } else {
        format!("{level},hickory_server=warn")
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the configured level.
///
/// # Errors
/// A subscriber is already installed.
pub fn init(cfg: &LogConfig) -> Result<LogHandle, String> {
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| cfg.level.clone());
    let filter = EnvFilter::builder()
        .parse(with_quiet_deps(&level))
        .map_err(|e| format!("log level \"{level}\": {e}"))?;
    let (filter, handle) = reload::Layer::new(filter);
    let reg = tracing_subscriber::registry().with(filter);
    let r = match cfg.format {
        LogFormat::Text => reg
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_target(false),
            )
            .try_init(),
        LogFormat::Json => reg
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    r.map_err(|e| e.to_string())?;
    Ok(LogHandle(handle))
}
