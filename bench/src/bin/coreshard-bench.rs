//! `coreshard-bench`: see the library's documentation and `--help`.
//!
//! Exit status: 0 for a clean run; 1 when the run had failures (connection
//! or protocol errors), error replies, or --verify mismatches; 2 when it
//! could not start (bad options, no server).

use clap::Parser;
use coreshard_bench::options::Cli;
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workload = match cli.workload() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("coreshard-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match coreshard_bench::run(&workload, std::io::stdout().is_terminal()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("coreshard-bench: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.table());
    if let Some(path) = &cli.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json + "\n").map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("coreshard-bench: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.clean() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
