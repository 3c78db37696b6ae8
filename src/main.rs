//! The `ringmq` binary: parse the command line, validate the config, start the runtime.

use clap::{Parser, Subcommand};
use ringmq::config::{Config, ConfigError, LogConfig, MAX_SHARDS, RawConfig};
use ringmq::obs::{self, LogFilter, Registry};
use ringmq::runtime;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long the exit waits for the last log lines to reach stderr.
const LOG_FLUSH: Duration = Duration::from_secs(1);

/// A thread-per-core MQTT broker on io_uring.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML config file; built-in defaults otherwise.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address of a plain MQTT listener (the config file's `listen`, served before its
    /// `[[listeners]]`), e.g. 127.0.0.1:1883.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Number of shards (overrides the config file); default one per core.
    #[arg(long)]
    shards: Option<NonZeroUsize>,
    /// Print the configuration (defaults, then the file and flags) as TOML and exit.
    #[arg(long)]
    print_default_config: bool,
    /// What to log (overrides the config file): off, error, warn, info or debug, optionally
    /// per module as in RUST_LOG, e.g. "info,ringmq::shard=debug".
    #[arg(long, value_name = "FILTER")]
    log_level: Option<LogFilter>,
    /// Without a subcommand, run the broker.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage a Mosquitto password file (compatible with mosquitto_passwd).
    Passwd(ringmq::auth::passwd_cli::PasswdArgs),
}

fn load_config(cli: &Cli) -> Result<Config, ConfigError> {
    let mut raw = match &cli.config {
        Some(path) => RawConfig::load(path)?,
        None => RawConfig::default(),
    };
    if let Some(listen) = cli.listen {
        raw.listen = Some(listen.to_string());
    }
    let mut config = raw.validate()?;
    if let Some(shards) = cli.shards {
        if shards.get() > MAX_SHARDS {
            return Err(ConfigError::OutOfRange {
                field: "--shards",
                value: shards.get() as u64,
                min: 1,
                max: MAX_SHARDS as u64,
            });
        }
        config.shards = shards;
    }
    if let Some(filter) = &cli.log_level {
        config.log.filter = filter.clone();
    }
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Passwd(args)) = &cli.command {
        return ringmq::auth::passwd_cli::run(args);
    }
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            // The config that would say how to log is the one refused: log as the defaults
            // (and --log-level) say.
            let log = LogConfig {
                filter: cli.log_level.clone().unwrap_or_default(),
                ..LogConfig::default()
            };
            start_logging(&log);
            log::error!("ringmq: {e}");
            return exit(ExitCode::from(2));
        }
    };
    if cli.print_default_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    start_logging(&config.log);
    let registry = Arc::new(Registry::new(config.shards.get()));
    if let Some(addr) = config.metrics.listen
        && let Err(e) = serve_metrics(addr, &registry)
    {
        log::error!("ringmq: cannot serve metrics on {addr}: {e}");
        return exit(ExitCode::FAILURE);
    }
    // Before any shard runs: the logs are replayed, their torn tails cut, and the directory
    // locked while this process lives.
    let persistence = match ringmq::shard::Persistence::recover(&config) {
        Ok(p) => p,
        Err(e) => {
            log::error!("ringmq: {e}");
            return exit(ExitCode::FAILURE);
        }
    };
    let shard_main = move |setup| {
        ringmq::shard::run_observed(setup, Arc::clone(&registry), Arc::clone(&persistence))
    };
    match runtime::run(config, shard_main) {
        Ok(()) => {
            log::info!("ringmq: stopped");
            exit(ExitCode::SUCCESS)
        }
        // An unusable certificate, key or CA file is a configuration error too.
        Err(e @ runtime::RuntimeError::Tls(_)) => {
            log::error!("ringmq: {e}");
            exit(ExitCode::from(2))
        }
        Err(e) => {
            log::error!("ringmq: {e}");
            exit(ExitCode::FAILURE)
        }
    }
}

/// Starts the metrics listener's thread (`GET /metrics`) on `addr`.
fn serve_metrics(addr: SocketAddr, registry: &Arc<Registry>) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let endpoints = obs::Endpoints::new(Arc::clone(registry));
    obs::spawn_metrics_server(listener, endpoints)?;
    log::info!(addr:% = bound; "metrics listening on {bound}");
    Ok(())
}

fn start_logging(log: &LogConfig) {
    if let Err(e) = obs::install_logger(log.filter.clone(), log.format) {
        eprintln!("ringmq: cannot start the logger: {e}");
    }
}

/// Lets the logger write what is queued, then exits with `code`.
fn exit(code: ExitCode) -> ExitCode {
    obs::flush_logs(LOG_FLUSH);
    code
}
