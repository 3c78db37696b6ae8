//! The `ringmq` binary: parse the command line, validate the config, start the runtime.

use clap::{Parser, Subcommand};
use ringmq::config::{Config, ConfigError, MAX_SHARDS, RawConfig};
use ringmq::runtime;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

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
            eprintln!("ringmq: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.print_default_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    match runtime::run(config, ringmq::shard::run) {
        Ok(()) => {
            eprintln!("ringmq: stopped");
            ExitCode::SUCCESS
        }
        // An unusable certificate, key or CA file is a configuration error too.
        Err(e @ runtime::RuntimeError::Tls(_)) => {
            eprintln!("ringmq: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("ringmq: {e}");
            ExitCode::FAILURE
        }
    }
}
