//! The observability keys: `log_level` and `log_format` (top level) and the `[metrics]`
//! section, from the file format to typed values and back to commented TOML.

use super::ConfigError;
use crate::obs::{LogFilter, LogFormat};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// What is logged and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogConfig {
    /// Default level and per-module levels (`log_level = "info,ringmq::shard=debug"`).
    pub filter: LogFilter,
    pub format: LogFormat,
}

/// The metrics endpoint and the `$SYS` topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where `GET /metrics` (Prometheus) and `GET /latency.hgrm` are served; `None`: off.
    pub listen: Option<SocketAddr>,
    /// How often the `$SYS/broker/...` topics are published; `None`: never.
    pub sys_interval: Option<Duration>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: None,
            sys_interval: Some(Duration::from_secs(DEFAULT_SYS_INTERVAL)),
        }
    }
}

const DEFAULT_SYS_INTERVAL: u64 = 10;
/// The longest `$SYS` interval accepted: a day.
const MAX_SYS_INTERVAL: u64 = 86_400;

/// `[metrics]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMetrics {
    /// Empty: no metrics listener.
    pub listen: String,
    /// Seconds; 0: no `$SYS` topics.
    pub sys_interval: u64,
}

impl Default for RawMetrics {
    fn default() -> Self {
        Self {
            listen: String::new(),
            sys_interval: DEFAULT_SYS_INTERVAL,
        }
    }
}

impl RawMetrics {
    pub(super) fn validate(self) -> Result<MetricsConfig, ConfigError> {
        let listen = match self.listen.as_str() {
            "" => None,
            text => Some(text.parse().map_err(|_| {
                ConfigError::Parse(format!(
                    "metrics.listen: {text:?} is not an IP:port socket address"
                ))
            })?),
        };
        if self.sys_interval > MAX_SYS_INTERVAL {
            return Err(ConfigError::OutOfRange {
                field: "metrics.sys_interval",
                value: self.sys_interval,
                min: 0,
                max: MAX_SYS_INTERVAL,
            });
        }
        let sys_interval = (self.sys_interval > 0).then(|| Duration::from_secs(self.sys_interval));
        Ok(MetricsConfig {
            listen,
            sys_interval,
        })
    }
}

/// `log_level` and `log_format` as written into their typed form.
pub(super) fn validate_log(level: &str, format: &str) -> Result<LogConfig, ConfigError> {
    let filter = level
        .parse()
        .map_err(|e| ConfigError::Parse(format!("log_level: {e}")))?;
    let format = format.parse().map_err(|()| {
        ConfigError::Parse(format!(
            "log_format: {format:?} is neither \"text\" nor \"json\""
        ))
    })?;
    Ok(LogConfig { filter, format })
}

/// The top-level log keys, commented, for `--print-default-config`.
pub(super) fn log_toml(log: &LogConfig) -> String {
    format!(
        r#"# What is logged (to stderr): off, error, warn, info or debug, optionally per module as in
# RUST_LOG, e.g. "info,ringmq::shard=debug". --log-level overrides it.
log_level = "{}"
# "text" (one line per event) or "json" (one JSON object per line).
log_format = "{}"
"#,
        log.filter, log.format
    )
}

/// The `[metrics]` section, commented, for `--print-default-config`.
pub(super) fn metrics_toml(metrics: &MetricsConfig) -> String {
    let listen = metrics.listen.map(|a| a.to_string()).unwrap_or_default();
    let sys_interval = metrics.sys_interval.map_or(0, |d| d.as_secs());
    format!(
        r#"[metrics]
# HTTP listener for GET /metrics (Prometheus text format) and GET /latency.hgrm, e.g.
# "127.0.0.1:9183". Empty = off.
listen = "{listen}"
# Seconds between publications of the retained $SYS/broker/... topics; 0 = off.
sys_interval = {sys_interval}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn logs_at_info_as_text_with_metrics_off_and_sys_every_10_s_by_default() {
        let c = Config::default();
        assert_eq!(c.log, LogConfig::default());
        assert_eq!(c.log.filter.to_string(), "info");
        assert_eq!(c.log.format, LogFormat::Text);
        assert_eq!(c.metrics.listen, None);
        assert_eq!(c.metrics.sys_interval, Some(Duration::from_secs(10)));
    }

    #[test]
    fn the_observability_keys_print_and_read_back() {
        let mut c = Config::default();
        c.log.filter = "warn,ringmq::shard=debug".parse().unwrap_or_default();
        c.log.format = LogFormat::Json;
        c.metrics.listen = Some(SocketAddr::from(([127, 0, 0, 1], 9183)));
        c.metrics.sys_interval = None;
        assert_eq!(Config::from_toml_str(&c.to_toml()), Ok(c));
    }

    #[test]
    fn bad_observability_values_are_refused() {
        for text in [
            "log_level = \"loud\"",
            "log_format = \"xml\"",
            "[metrics]\nlisten = \"localhost\"",
            "[metrics]\nsys_interval = 86401",
        ] {
            assert!(Config::from_toml_str(text).is_err(), "{text}");
        }
        let c = Config::from_toml_str("[metrics]\nsys_interval = 0\nlisten = \"\"");
        assert_eq!(
            c.map(|c| c.metrics),
            Ok(MetricsConfig {
                listen: None,
                sys_interval: None
            })
        );
    }
}
