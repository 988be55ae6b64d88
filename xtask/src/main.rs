//! `cargo xtask ...`: the project's entry points.
//!
//! * `cargo xtask conformance` — the main job. Today it runs the reference self-check (the
//!   spec's worked values in suites/reference against the reference Canonical ABI); engines and
//!   the differential campaign join it as they land.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run the conformance suites (today: the reference self-check).
    Conformance {
        /// The directory of reference vectors.
        #[arg(long)]
        suite: Option<PathBuf>,
    },
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Task::Conformance { suite } => {
            let suite = suite.unwrap_or_else(|| root().join("suites/reference"));
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .current_dir(root())
                .args(["run", "--quiet", "--package", "witness", "--", "selfcheck", "--suite"])
                .arg(&suite)
                .status();
            match status {
                Ok(s) if s.success() => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("error: cannot run cargo: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
