//! `witness suite`: run the conformance suites on the embedded engines.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::suite::cases::{Status, run_file, suite_files};
use crate::suite::expectations::Expectations;

#[derive(Args)]
pub struct SuiteArgs {
    /// The directory of suite files.
    #[arg(long, default_value = "suites/conformance")]
    suite: PathBuf,
    /// Engines to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = crate::engine::ENGINES.iter().map(|s| s.to_string()))]
    engines: Vec<String>,
    /// Only cases whose name or rules contain this text.
    #[arg(long)]
    filter: Option<String>,
    /// Expectations files (default: expectations/*.toml if present).
    #[arg(long)]
    expectations: Vec<PathBuf>,
}

pub fn run(args: SuiteArgs) -> Result<()> {
    let paths = if args.expectations.is_empty() { super::diff::default_expectations() } else { args.expectations };
    let expectations = Expectations::load(&paths)?;
    let mut rows = vec![];
    for file in suite_files(&args.suite)? {
        match run_file(&file, &args.engines, &expectations, args.filter.as_deref()) {
            Ok(r) => rows.extend(r),
            Err(e) => println!("FAIL {}: {e:#}", file.display()),
        }
    }
    // file stem (the area) × engine → passed, failed, xfail, skipped
    let mut table: BTreeMap<(String, String), [u32; 4]> = BTreeMap::new();
    for r in &rows {
        let area = r.file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let e = table.entry((area, r.engine.clone())).or_default();
        match &r.status {
            Status::Passed => e[0] += 1,
            Status::Failed(_) => e[1] += 1,
            Status::Xfail(_) => e[2] += 1,
            Status::Skipped(_) => e[3] += 1,
        }
    }
    println!("{:<14} {:<14} {:>6} {:>6} {:>6} {:>7}", "area", "engine", "passed", "failed", "xfail", "skipped");
    for ((area, engine), [p, f, x, s]) in &table {
        println!("{area:<14} {engine:<14} {p:>6} {f:>6} {x:>6} {s:>7}");
    }
    let failed: Vec<_> = rows.iter().filter(|r| matches!(r.status, Status::Failed(_))).collect();
    for r in &failed {
        if let Status::Failed(why) = &r.status {
            println!(
                "\nFAIL {}:{} [{}] {} ({})\n  {why}",
                r.file.display(),
                r.line,
                r.engine,
                r.name,
                r.rules.join(", ")
            );
        }
    }
    let passed = rows.iter().filter(|r| r.status == Status::Passed).count();
    println!("\n{passed} passed, {} failed", failed.len());
    if !failed.is_empty() {
        bail!("{} case result(s) failed", failed.len());
    }
    Ok(())
}
