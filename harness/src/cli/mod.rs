//! The `witness` command line.

pub mod abi;
pub mod adapter;
pub mod bench;
pub mod diff;
pub mod fuzz;
pub mod selfcheck;
pub mod smith;
pub mod suite;
pub mod to_case;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "witness",
    version,
    about = "Conformance suite and differential fuzzer for the Component Model's Canonical ABI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ask the reference Canonical ABI: layouts, the bytes of a value, lifting, core signatures.
    Abi {
        #[command(subcommand)]
        command: abi::AbiCommand,
    },
    /// Serve the adapter protocol (adapters/PROTOCOL.md) from an embedded runtime.
    Adapter(adapter::AdapterArgs),
    /// Run the differential campaign: generated worlds and cases, engines against the reference.
    Diff(diff::DiffArgs),
    /// Run arbitrary (wasm-smith) guests shaped to generated worlds on Wasmtime and wasmi.
    Smith(smith::SmithArgs),
    /// Run a fuzz target's body on input files (a crash, a corpus entry), without cargo-fuzz.
    FuzzReplay(fuzz::FuzzReplayArgs),
    /// What a differential fuzz target's corpus reached: trap classes and definitions.py
    /// functions per engine.
    FuzzReport(fuzz::FuzzReportArgs),
    /// Run the conformance suites (suites/conformance/*.toml) on the embedded engines.
    Suite(suite::SuiteArgs),
    /// Turn a finding (a witness diff reproducer folder, a differential fuzz crash) into a
    /// shrunk suite case.
    ToCase(to_case::ToCaseArgs),
    /// Check the reference against the spec's worked values (suites/reference/*.txt).
    Selfcheck(selfcheck::SelfcheckArgs),
    /// Cases per second on each engine, a synchronous call against an async one.
    BenchCalls(bench::BenchCallsArgs),
}

/// Run the CLI: errors print as `error: ...` with their causes, and exit with status 2.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Abi { command } => abi::run(command),
        Command::Adapter(args) => adapter::run(args),
        Command::Selfcheck(args) => selfcheck::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Smith(args) => smith::run(args),
        Command::FuzzReplay(args) => fuzz::run(args),
        Command::FuzzReport(args) => fuzz::report(args),
        Command::Suite(args) => suite::run(args),
        Command::ToCase(args) => to_case::run(args),
        Command::BenchCalls(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
