//! `witness smith`: arbitrary (wasm-smith) guests on Wasmtime and wasmi, compared by outcome.

use anyhow::{Result, bail};
use clap::Args;

use crate::smith::{run_smith_campaign, run_smith_module};

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
}

pub fn run(args: SmithArgs) -> Result<()> {
    let s = match args.module {
        Some(m) => run_smith_module(args.seed, m, args.calls)?,
        None => run_smith_campaign(args.seed, args.worlds, args.modules, args.calls)?,
    };
    println!(
        "{} worlds, {} modules generated, {} componentized, {} loaded by both engines, {} instantiated on both",
        s.worlds, s.modules_generated, s.componentized, s.loaded, s.instantiated
    );
    println!("{} calls ({} import calls served); outcomes both engines agree on:", s.calls, s.import_calls);
    for (class, n) in &s.outcomes {
        println!("  {class:<24} {n}");
    }
    for m in &s.mismatches {
        let tag = m.allowed.map_or("NEW".to_string(), |a| format!("allowed: {a}"));
        println!(
            "\nMISMATCH ({tag}) world {} module {}: {}\n  wasmtime: {}\n  wasmi:    {}\n  replay: {}",
            m.world_seed, m.module, m.what, m.wasmtime, m.wasmi, m.replay
        );
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
