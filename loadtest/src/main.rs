//! `ringmq-load`: parse the command line, run a scenario or `compare`, write the outputs, and
//! exit non-zero with the reason when the broker cannot be reached or drops a client.

use clap::Parser;
use ringmq_load::cli::{Cli, Command};
use ringmq_load::error::LoadError;
use ringmq_load::hgrm::format_distribution;
use ringmq_load::run::{common_of, run_scenario};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringmq-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn execute(command: &Command) -> Result<(), LoadError> {
    if let Command::Compare {
        files,
        svg,
        labels,
        broker_side,
    } = command
    {
        return ringmq_load::compare::run(files, labels.as_deref(), broker_side, svg.as_deref());
    }
    if let Command::Soak {
        host,
        port,
        duration,
        report_every,
        broker_pid,
        pairs,
        rate,
    } = command
    {
        let broker = format!("{host}:{port}")
            .parse()
            .map_err(|_| LoadError::Usage(format!("--host {host:?} is not an IP address")))?;
        return ringmq_load::soak::run(ringmq_load::soak::SoakSettings {
            broker,
            duration: std::time::Duration::from_secs(*duration),
            report_every: std::time::Duration::from_secs((*report_every).max(1)),
            broker_pid: *broker_pid,
            pairs: *pairs,
            rate: *rate,
        });
    }
    ringmq_load::clock::now_ns();
    let report = run_scenario(command)?;
    print!("{}", report.table());
    if let Some(common) = common_of(command) {
        if let Some(path) = &common.hgrm {
            write_file(path, &format_distribution(&report.latency))?;
        }
        if let Some(path) = &common.json {
            let text = serde_json::to_string_pretty(&report.json())
                .map_err(|e| LoadError::Usage(format!("cannot serialise the summary: {e}")))?;
            write_file(path, &(text + "\n"))?;
        }
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<(), LoadError> {
    std::fs::write(path, text).map_err(|source| LoadError::File {
        path: path.display().to_string(),
        source,
    })
}
