//! `witness selfcheck`: run the reference vectors and print a summary by rule.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::suite::vectors::run_dir;

#[derive(Args)]
pub struct SelfcheckArgs {
    /// The directory of vector files.
    #[arg(long, default_value = "suites/reference")]
    suite: PathBuf,
}

pub fn run(args: SelfcheckArgs) -> Result<()> {
    let outcomes = run_dir(&args.suite)?;
    let mut by_rule: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for o in &outcomes {
        let e = by_rule.entry(o.rules.as_str()).or_default();
        if o.failure.is_none() { e.0 += 1 } else { e.1 += 1 }
    }
    println!("{:<72} {:>6} {:>6}", "rules", "passed", "failed");
    for (rules, (p, f)) in &by_rule {
        println!("{:<72} {p:>6} {f:>6}", if rules.is_empty() { "(no rules named)" } else { rules });
    }
    let failed: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    for o in &failed {
        println!("FAIL {}:{}: {}\n     {}", o.file.display(), o.line, o.case, o.failure.as_deref().unwrap_or_default());
    }
    println!("{} passed, {} failed", outcomes.len() - failed.len(), failed.len());
    if !failed.is_empty() {
        bail!("{} reference vector(s) failed", failed.len());
    }
    Ok(())
}
