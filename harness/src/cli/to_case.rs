//! `witness to-case`: a finding (a crash input of the `differential` fuzz targets, or a
//! `witness diff` reproducer folder) as a shrunk suite case, ready for suites/conformance.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::finding::{from_fuzz_input, from_repro, scratch_file, to_case};
use crate::fuzz::DIFFERENTIAL_TARGETS;
use crate::suite::expectations::Expectations;

#[derive(Args)]
pub struct ToCaseArgs {
    /// A reproducer folder of `witness diff` (witness-repro/w<seed>-c<case>-<engine>), or a
    /// crash input of a fuzz target (give --target).
    input: PathBuf,
    /// The fuzz target the input is for: `differential`, `differential_cached`,
    /// `resource_sequence` or `async_differential`.
    #[arg(long)]
    target: Option<String>,
    /// Expectations files: a divergence they explain is no finding (default:
    /// expectations/*.toml if present). `--no-expectations` counts every divergence.
    #[arg(long)]
    expectations: Vec<PathBuf>,
    #[arg(long, conflicts_with = "expectations")]
    no_expectations: bool,
    /// Write the suite file here (default: print it).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub fn run(args: ToCaseArgs) -> Result<()> {
    let paths = match (args.no_expectations, args.expectations.is_empty()) {
        (true, _) => vec![],
        (false, true) => super::diff::default_expectations(),
        (false, false) => args.expectations.clone(),
    };
    let expectations = Expectations::load(&paths)?;
    let finding = match args.target.as_deref() {
        None if args.input.is_dir() => from_repro(&args.input)?,
        None => bail!("{}: a crash input needs --target ({})", args.input.display(), DIFFERENTIAL_TARGETS.join(", ")),
        Some(target) if DIFFERENTIAL_TARGETS.contains(&target) => from_fuzz_input(&args.input, target, &expectations)?,
        Some(other) => {
            bail!("--target {other}: the findings of {} become cases", DIFFERENTIAL_TARGETS.join(", "))
        }
    };
    let scratch = scratch_file();
    let written = to_case(&finding, &expectations, &scratch);
    let _ = std::fs::remove_file(&scratch);
    let written = written?;
    eprintln!(
        "shrunk: {} step(s) → {}, world {} → {} lines ({} runs)",
        written.steps.0, written.steps.1, written.world_lines.0, written.world_lines.1, written.runs
    );
    match &args.out {
        Some(path) => {
            std::fs::write(path, &written.text).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}: add it to suites/conformance/ (or its case to a suite file there)", path.display());
        }
        None => print!("{}", written.text),
    }
    Ok(())
}
