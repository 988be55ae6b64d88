//! `witness smith`: arbitrary (wasm-smith) guests on two engines, compared by outcome.

use anyhow::{Result, bail};
use clap::Args;

use std::path::PathBuf;

use crate::engine::Selection;
use crate::smith::{Campaign, default_engines, run_smith_campaign, run_smith_module};
use crate::suite::expectations::Expectations;

#[derive(Args)]
pub struct SmithArgs {
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 10)]
    worlds: u64,
    /// Modules per world.
    #[arg(long, default_value_t = 10)]
    modules: u64,
    /// Calls per module.
    #[arg(long, default_value_t = 8)]
    calls: u64,
    /// Run only this module of the world (replays a mismatch).
    #[arg(long)]
    module: Option<u64>,
    /// The two engines to compare (given twice; default: `wasmtime` and `core`). Any
    /// registered runtime, or an adapter (`process:CMD`, `process-core:CMD`).
    #[arg(long = "engine")]
    engines: Vec<String>,
    /// How long an adapter may take to read one request or write one line, in seconds
    /// (a transpiling compile included); an adapter over it is killed, with its children.
    #[arg(long, value_name = "SECS")]
    adapter_timeout: Option<u64>,
    /// Expectations files: the engines' known divergences and bugs (default:
    /// expectations/*.toml).
    #[arg(long)]
    expectations: Vec<PathBuf>,
}

pub fn run(args: SmithArgs) -> Result<()> {
    let engines = match Selection::parse_args_with(&args.engines, args.adapter_timeout)?.as_slice() {
        [] => default_engines(),
        [a, b] if !a.fused() && !b.fused() => [a.clone(), b.clone()],
        _ => bail!("give two engines with --engine (plain runtimes, not compositions), or none"),
    };
    let paths = if args.expectations.is_empty() { super::diff::default_expectations() } else { args.expectations };
    let expectations = Expectations::load(&paths)?;
    let cx = Campaign { engines: &engines, expectations: &expectations };
    let s = match args.module {
        Some(m) => run_smith_module(&cx, args.seed, m, args.calls)?,
        None => run_smith_campaign(&cx, args.seed, args.worlds, args.modules, args.calls)?,
    };
    println!(
        "{} worlds, {} modules generated, {} componentized, {} loaded by both engines ({} and {}), {} instantiated on both",
        s.worlds, s.modules_generated, s.componentized, s.loaded, engines[0], engines[1], s.instantiated
    );
    println!("{} calls ({} import calls served); outcomes both engines agree on:", s.calls, s.import_calls);
    for (class, n) in &s.outcomes {
        println!("  {class:<24} {n}");
    }
    for m in &s.mismatches {
        let tag = if m.explained.is_none() { " (NEW)" } else { "" };
        println!("\nMISMATCH{tag} {m}");
    }
    for (w, m, stage, e) in &s.setup_failures {
        println!("\nSETUP FAILURE world {w} module {m} ({stage}): {e}");
    }
    let new = s.unexpected().len() + s.setup_failures.len();
    println!("\n{} mismatches ({} new)", s.mismatches.len(), s.unexpected().len());
    if new > 0 {
        bail!("{new} unexpected result(s)");
    }
    Ok(())
}
