//! `cargo xtask ...`: the project's entry points. Each runs the `witness` CLI through cargo.
//!
//! * `cargo xtask conformance` — the main job: the reference self-check (the spec's worked
//!   values in suites/reference against the reference Canonical ABI), the conformance suites
//!   (suites/conformance, `witness suite --coverage`), then a short differential campaign
//!   (`witness diff --seed 1 --worlds 5 --cases 50`, or as many worlds as --fuzz-seconds
//!   allow: every engine against the reference, divergences not in the expectations fail).
//!   --engine, --expectations go to both; --suite, --filter, --json, --junit to the suites.
//!   Fails if any step fails.
//! * `cargo xtask bench` — the differential campaign's throughput on a release build
//!   (`witness diff --seed 1 --worlds 50 --cases 200`): its summary, then each engine's time
//!   relative to the reference's; then `witness bench-calls`, each engine's cases per second
//!   with an async call against a synchronous one. A benchmark to read, not a test: nothing is
//!   asserted on time.
//! * `cargo xtask fuzz-bench` — the fuzz targets' throughput under libFuzzer (fuzz_bench.rs):
//!   `differential` and `differential_cached` built with `cargo fuzz build -O` with no sanitizer
//!   and with ASan, each run 60 s on an empty corpus; executions a second and peak RSS side by
//!   side. Needs cargo-fuzz; like `bench`, nothing is asserted on time.
//! * `cargo xtask tidy` — rustfmt, clippy with warnings as errors, and ARCHITECTURE.md's
//!   dependency rule and code map (see tidy.rs). Run it before every commit; CI runs it.

mod fuzz_bench;
mod tidy;

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run the conformance suites: the reference self-check, the hand-written suites, then a
    /// short differential campaign.
    Conformance {
        /// The directory of reference vectors (the self-check's).
        #[arg(long)]
        vectors: Option<PathBuf>,
        /// Run the differential campaign for this many seconds instead of 5 worlds.
        #[arg(long)]
        fuzz_seconds: Option<u64>,
        #[command(flatten)]
        suites: SuiteArgs,
    },
    /// Check formatting, clippy, and ARCHITECTURE.md's dependency rule and code map.
    Tidy,
    /// Benchmark the differential campaign (release build).
    Bench {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 50)]
        worlds: u64,
        #[arg(long, default_value_t = 200)]
        cases: u64,
    },
    /// Benchmark fuzz targets under libFuzzer (`cargo fuzz build -O`, then fixed-time runs).
    FuzzBench {
        /// A fuzz target (fuzz/fuzz_targets); repeatable. The first is the others' baseline.
        #[arg(long = "target", default_values_t = ["differential".to_string(), "differential_cached".to_string()])]
        targets: Vec<String>,
        /// A cargo-fuzz sanitizer (`none`, `address`, ...); repeatable.
        #[arg(long = "sanitizer", default_values_t = ["none".to_string(), "address".to_string()])]
        sanitizers: Vec<String>,
        /// How long each target runs.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

/// What `cargo xtask conformance` passes on to `witness suite` (and `witness diff`).
#[derive(clap::Args)]
struct SuiteArgs {
    /// An engine to run: an embedded runtime (`wasmtime`, `core`, `wasmtime-core`,
    /// `wasmtime-fused`, `wasmtime-winch`, `wasmtime-pulley`, ...; `witness suite --help` lists
    /// them all; comma-separated works too), or an adapter (adapters/PROTOCOL.md) given
    /// components (`process:CMD`) or core modules (`process-core:CMD`). Repeatable; default:
    /// the default runtimes.
    #[arg(long = "engine", visible_alias = "engines")]
    engines: Vec<String>,
    /// How long an adapter may take to read one request or write one line, in seconds
    /// (default 120); an adapter over it is killed, with its children.
    #[arg(long, value_name = "SECS")]
    adapter_timeout: Option<u64>,
    /// The directory of conformance suite files (default: suites/conformance).
    #[arg(long)]
    suite: Option<PathBuf>,
    /// Only cases whose name or rules contain this text.
    #[arg(long)]
    filter: Option<String>,
    /// Expectations files (default: expectations/*.toml). Repeatable.
    #[arg(long)]
    expectations: Vec<PathBuf>,
    /// Write every suite result as a JSON line to this file, as the run goes.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a JUnit XML report of the suites to this file.
    #[arg(long)]
    junit: Option<PathBuf>,
}

/// An argument naming a file: absolute, since witness runs from the repository root.
fn absolute(path: &PathBuf) -> Result<std::ffi::OsString> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(cwd.join(path).into_os_string())
}

impl SuiteArgs {
    /// The arguments both `witness suite` and `witness diff` take.
    fn shared_args(&self) -> Result<Vec<std::ffi::OsString>> {
        let mut args: Vec<std::ffi::OsString> = vec![];
        for engine in &self.engines {
            args.extend(["--engine".into(), engine.into()]);
        }
        if let Some(secs) = self.adapter_timeout {
            args.extend(["--adapter-timeout".into(), secs.to_string().into()]);
        }
        for path in &self.expectations {
            args.extend(["--expectations".into(), absolute(path)?]);
        }
        Ok(args)
    }

    /// The `witness suite` arguments.
    fn suite_args(&self) -> Result<Vec<std::ffi::OsString>> {
        let mut args: Vec<std::ffi::OsString> = vec!["suite".into(), "--coverage".into()];
        args.extend(self.shared_args()?);
        if let Some(filter) = &self.filter {
            args.extend(["--filter".into(), filter.into()]);
        }
        for (flag, path) in [("--suite", &self.suite), ("--json", &self.json), ("--junit", &self.junit)] {
            if let Some(path) = path {
                args.extend([flag.into(), absolute(path)?]);
            }
        }
        Ok(args)
    }
}

/// The repository root. `cargo run` sets CARGO_MANIFEST_DIR for the run too; prefer it to
/// the build's, which a target directory shared between checkouts may have from another one.
fn root() -> PathBuf {
    let xtask =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    xtask.join("..")
}

/// `cargo run [--release] -p witness -- args...`, from the repository root.
fn witness(release: bool, args: &[&str]) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root()).args(["run", "--quiet", "--package", "witness"]);
    if release {
        cmd.arg("--release");
    }
    cmd.arg("--").args(args);
    cmd
}

/// Run a step; `Ok(false)` if it ran and failed.
fn step(name: &str, mut cmd: Command) -> Result<bool> {
    eprintln!("== {name}");
    let status = cmd.status().with_context(|| format!("cannot run cargo for {name}"))?;
    if !status.success() {
        eprintln!("== {name}: FAILED ({status})");
    }
    Ok(status.success())
}

fn conformance(vectors: Option<PathBuf>, fuzz_seconds: Option<u64>, suites: &SuiteArgs) -> Result<bool> {
    let vectors = match vectors {
        Some(v) => absolute(&v)?.into(),
        None => root().join("suites/reference"),
    };
    let mut selfcheck = witness(false, &["selfcheck", "--suite"]);
    selfcheck.arg(&vectors);
    let selfcheck_ok = step("reference self-check", selfcheck)?;
    let mut suite_cmd = witness(false, &[]);
    suite_cmd.args(suites.suite_args()?);
    let suites_ok = step("conformance suites (witness suite)", suite_cmd)?;
    // Run the campaign even if a step before failed: every result is worth seeing.
    let (worlds, budget) = match fuzz_seconds {
        Some(secs) => ("1000000".to_string(), vec!["--seconds".to_string(), secs.to_string()]),
        None => ("5".to_string(), vec![]),
    };
    let mut diff = witness(false, &["diff", "--seed", "1", "--worlds", &worlds, "--cases", "50"]);
    diff.args(&budget).args(suites.shared_args()?);
    let what = match fuzz_seconds {
        Some(secs) => format!("differential campaign (witness diff --seed 1 --cases 50 --seconds {secs})"),
        None => "differential campaign (witness diff --seed 1 --worlds 5 --cases 50)".to_string(),
    };
    let diff_ok = step(&what, diff)?;
    Ok(selfcheck_ok && suites_ok && diff_ok)
}

/// The campaign's total time from `witness diff`'s first summary line (`... in 5.4 s (...`).
fn total_time(summary: &str) -> Option<f64> {
    let line = summary.lines().find(|l| l.contains(" checked calls in "))?;
    line.split(" checked calls in ").nth(1)?.split_whitespace().next()?.parse().ok()
}

/// Per-engine times from `witness diff`'s summary lines (`  NAME   1.23 s running cases`).
fn engine_times(summary: &str) -> Vec<(String, f64)> {
    summary
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_suffix("s running cases")?;
            let mut words = rest.split_whitespace();
            let name = words.next()?;
            let secs = words.next()?.parse().ok()?;
            Some((name.to_string(), secs))
        })
        .collect()
}

fn bench(seed: u64, worlds: u64, cases: u64) -> Result<bool> {
    // Build first, so that the build's output and time stay out of the benchmark.
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.current_dir(root()).args(["build", "--release", "--package", "witness"]);
    if !step("build (release)", build)? {
        return Ok(false);
    }
    let (seed, worlds, cases) = (seed.to_string(), worlds.to_string(), cases.to_string());
    let args = ["diff", "--seed", &seed, "--worlds", &worlds, "--cases", &cases];
    eprintln!("== witness {}", args.join(" "));
    let out = witness(true, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo for the benchmark")?;
    let summary = String::from_utf8_lossy(&out.stdout);
    print!("{summary}");
    let times = engine_times(&summary);
    if let Some(&(_, reference)) = times.iter().find(|(name, _)| name == "reference")
        && reference > 0.0
    {
        println!("\ntime running cases, relative to the reference:");
        for (name, secs) in &times {
            println!("  {name:<14} {:>7.2}x", secs / reference);
        }
        if let Some(total) = total_time(&summary) {
            let other = total - times.iter().map(|(_, s)| s).sum::<f64>();
            println!(
                "  {:<14} {:>7.2}x  ({other:.1} s: preparing worlds, compiling, planning)",
                "rest",
                other / reference
            );
        }
    }
    if !out.status.success() {
        // New divergences or setup failures: the figures stand, but say so.
        eprintln!("== witness diff reported unexpected results ({})", out.status);
    }
    if summary.trim().is_empty() {
        bail!("witness diff printed no summary ({})", out.status);
    }
    // Async calls against synchronous ones, per engine (the goal: async at least a third).
    let engines = "reference,wasmtime,wasmtime-winch,wasmtime-pulley";
    let calls = ["bench-calls", "--engine", engines];
    println!();
    let called = step(&format!("witness {}", calls.join(" ")), witness(true, &calls))?;
    Ok(out.status.success() && called)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Conformance { vectors, fuzz_seconds, suites } => conformance(vectors, fuzz_seconds, &suites),
        Task::Bench { seed, worlds, cases } => bench(seed, worlds, cases),
        Task::FuzzBench { targets, sanitizers, seconds } => {
            fuzz_bench::fuzz_bench(&root(), &targets, &sanitizers, seconds)
        }
        Task::Tidy => tidy::tidy(&root()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
