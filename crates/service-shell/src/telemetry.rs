//! tracing-subscriber setup: human-readable for a terminal, JSON for log shippers.

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    #[serde(default)]
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    #[serde(default = "default_filter")]
    pub filter: String,
}

fn default_filter() -> String {
    "info".to_string()
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            filter: default_filter(),
        }
    }
}

/// Libraries whose debug/trace events carry request data verbatim (tokio-postgres logs every
/// statement's parameters: recipient ids, hashes, API-key lookups). They are capped at `info`
/// whatever the filter says, unless the filter names them explicitly: logs must never carry
/// personal data or secrets because someone turned on `debug` at 3 a.m.
const CAPPED: &[&str] = &["tokio_postgres", "postgres_protocol"];

/// The effective filter text: `requested`, plus an `info` cap for each [`CAPPED`] target it
/// does not name.
pub fn effective_filter(requested: &str) -> String {
    let mut out = requested.trim().to_string();
    for target in CAPPED {
        if !requested.contains(target) {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(target);
            out.push_str("=info");
        }
    }
    out
}

/// Installs the global subscriber once; later calls (tests building several apps in one
/// process) are harmless no-ops.
pub fn init(settings: &LogSettings) {
    let requested = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.filter.clone());
    let filter = EnvFilter::try_new(effective_filter(&requested))
        .unwrap_or_else(|_| EnvFilter::new(effective_filter("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_that_log_parameters_are_capped_unless_named() {
        assert_eq!(
            effective_filter("debug"),
            "debug,tokio_postgres=info,postgres_protocol=info"
        );
        assert_eq!(
            effective_filter("info,tokio_postgres=debug"),
            "info,tokio_postgres=debug,postgres_protocol=info"
        );
        assert!(EnvFilter::try_new(effective_filter("warn,issuer_api=trace")).is_ok());
    }
}
