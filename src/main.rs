//! The `ringmq` binary: parse the command line, validate the config, start the runtime.

use clap::Parser;
use ringmq::config::Config;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

/// A thread-per-core MQTT broker on io_uring.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// A TOML config file; built-in defaults fill what it leaves out.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The address to listen on (overrides the config file).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The number of shards, one thread each (overrides the config file).
    #[arg(long)]
    shards: Option<NonZeroUsize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => Config::load(path),
        None => Ok(Config::default()),
    };
    let mut config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringmq: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(listen) = cli.listen {
        config.listen = listen;
    }
    if let Some(shards) = cli.shards {
        config.shards = shards;
    }
    match ringmq::runtime::run(config, ringmq::shard::run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringmq: {e}");
            ExitCode::FAILURE
        }
    }
}
