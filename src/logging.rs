//! Logging: `tracing` events to stderr, as text or JSON lines, filtered by `log.level`.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Does nothing if one is already installed (an embedding
/// application's own, or a second call).
pub fn init(config: &LogConfig) {
    let filter = config.filter();
    let layer = fmt::layer().with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(
                layer
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(
                layer
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_filter(filter),
            )
            .try_init(),
    };
    // An already installed subscriber is not an error for a library.
    drop(result);
}
