//! `witness diff`: the differential campaign on the command line.

use std::path::PathBuf;

use std::io::Write as _;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::diff::{DiffConfig, run_campaign};
use crate::encode::names::NameScheme;
use crate::suite::expectations::Expectations;

#[derive(Args)]
pub struct DiffArgs {
    /// Seed of the first world; world i uses seed + i.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 10)]
    worlds: u64,
    /// Cases per world.
    #[arg(long, default_value_t = 100)]
    cases: u64,
    /// Start no new world after this many seconds (--worlds stays the upper bound).
    #[arg(long)]
    seconds: Option<u64>,
    /// Run only this case of each world (to replay a divergence).
    #[arg(long)]
    case: Option<u64>,
    /// Engines to compare with the reference: embedded names (comma-separated) or
    /// `process:CMD` (an adapter, adapters/PROTOCOL.md); repeatable.
    #[arg(long = "engine", visible_alias = "engines", default_values_t = crate::engine::Selection::defaults().iter().map(|s| s.to_string()))]
    engines: Vec<String>,
    /// How long an adapter may take to read one request or write one line, in seconds
    /// (a transpiling compile included); an adapter over it is killed, with its children.
    #[arg(long, value_name = "SECS")]
    adapter_timeout: Option<u64>,
    /// Write each divergence as a JSON line to this file, as soon as it is found.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Name scheme of the guests (default: alternate by world).
    #[arg(long, value_enum)]
    names: Option<super::abi::Names>,
    /// Expectations files (known divergences); default: expectations/*.toml if present.
    #[arg(long)]
    expectations: Vec<PathBuf>,
    /// Run on this world instead of generated ones: a WIT file, a WIT directory with deps/, or a
    /// wasm-encoded WIT package (each seed then gives another set of cases).
    #[arg(long)]
    wit: Option<PathBuf>,
    /// The world of --wit (default: the package's only world).
    #[arg(long)]
    world: Option<String>,
    /// Where to write reproducers of new divergences.
    #[arg(long, default_value = "witness-repro")]
    repro: PathBuf,
    /// 🔀 Generate async worlds: about half their functions `async func` (with `legacy` names).
    #[arg(long = "async")]
    asynchronous: bool,
}

pub fn default_expectations() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir("expectations")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub fn run(args: DiffArgs) -> Result<()> {
    let paths = if args.expectations.is_empty() { default_expectations() } else { args.expectations.clone() };
    let expectations = Expectations::load(&paths)?;
    if args.asynchronous && matches!(args.names, Some(super::abi::Names::Standard)) {
        bail!("--async needs legacy names: cm32p2 names have no async form");
    }
    let base = if args.asynchronous { DiffConfig::asynchronous() } else { DiffConfig::default() };
    let user_world = args.wit.as_deref().map(|p| crate::diff::UserWorld::load(p, args.world.as_deref())).transpose()?;
    if user_world.as_ref().is_some_and(|u| u.asynchronous) && matches!(args.names, Some(super::abi::Names::Standard)) {
        bail!("the world is async: its guests need legacy names (cm32p2 names have no async form)");
    }
    let cfg = DiffConfig {
        seed: args.seed,
        worlds: args.worlds,
        cases: args.cases,
        engines: crate::engine::Selection::parse_args_with(&args.engines, args.adapter_timeout)?,
        names: args
            .names
            .map(|n| match n {
                super::abi::Names::Standard => NameScheme::Standard,
                super::abi::Names::Legacy => NameScheme::Legacy,
            })
            .or(base.names),
        only_case: args.case,
        repro_dir: Some(args.repro.clone()),
        user_world,
        time_budget: args.seconds.map(std::time::Duration::from_secs),
        ..base
    };
    if cfg.engines.is_empty() {
        bail!("no engine to run: --engine names none");
    }
    // The repro folder is made before the run: a path that cannot be written costs nothing.
    std::fs::create_dir_all(&args.repro).with_context(|| format!("cannot create {}", args.repro.display()))?;
    let total = if args.case.is_some() { args.worlds } else { args.worlds * args.cases };
    // A time-bound campaign shows seconds, not cases, since its number of worlds is open.
    let (bar, unit) = match args.seconds {
        Some(secs) => (ProgressBar::new(secs), "s"),
        None => (ProgressBar::new(total), "cases"),
    };
    bar.set_style(
        ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {unit}  {{elapsed_precise}}  {{msg}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = std::time::Instant::now();
    // Each divergence goes to the JSON lines as soon as it is found; a failure to write them
    // stops them, not the campaign, and is reported at the end.
    let mut json = args
        .json
        .as_ref()
        .map(|p| std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display())))
        .transpose()?
        .map(std::io::BufWriter::new);
    let mut json_failed: Option<anyhow::Error> = None;
    let write_json = |d: &crate::diff::Divergence| {
        if let (Some(out), None) = (json.as_mut(), &json_failed) {
            let written = serde_json::to_string(d)
                .map_err(anyhow::Error::from)
                .and_then(|l| writeln!(out, "{l}").and_then(|()| out.flush()).map_err(Into::into));
            json_failed = written.err();
        }
    };
    let progress = |_, _| match args.seconds {
        Some(secs) => bar.set_position(start.elapsed().as_secs().min(secs)),
        None => bar.inc(1),
    };
    let s = run_campaign(&cfg, &expectations, progress, write_json)?;
    bar.finish_and_clear();

    let secs = s.elapsed.as_secs_f64().max(1e-9);
    println!(
        "{} worlds, {} cases ({} import calls scripted), {} checked calls in {:.1} s ({:.0} calls/s), {} compilations",
        s.worlds,
        s.cases,
        s.import_calls,
        s.checked_calls,
        secs,
        s.checked_calls as f64 / secs,
        s.compilations
    );
    for (engine, t) in &s.engine_time {
        println!("  {engine:<14} {:>8.2} s running cases", t.as_secs_f64());
    }
    if !s.by_area.is_empty() {
        println!("\n{:<14} {:<14} {:>6} {:>9}", "engine", "area", "new", "expected");
        for ((engine, area), (new, expected)) in &s.by_area {
            println!("{engine:<14} {area:<14} {new:>6} {expected:>9}");
        }
    }
    for (engine, (worlds, reason)) in &s.unsupported {
        println!("\n{engine}: {worlds} world(s) skipped: {reason}");
    }
    for (seed, e) in &s.setup_failures {
        println!("\nSETUP FAILURE world {seed}: {e}");
    }
    let new: Vec<_> = s.divergences.iter().filter(|d| !d.expected).collect();
    for d in new.iter().take(20) {
        println!("\nDIVERGENCE {} world {} case {}", d.engine, d.world_seed, d.case);
        for diff in &d.differences {
            println!("  [{}] {}", diff.area, diff.detail.lines().next().unwrap_or_default());
        }
        if let Some(r) = &d.repro {
            println!("  repro: {}", r.display());
        }
        println!("  replay: {}", d.replay);
    }
    if new.len() > 20 {
        println!("\n... and {} more new divergences", new.len() - 20);
    }
    let ran = s.engine_time.keys().chain(s.unsupported.keys()).map(String::as_str);
    for misspelt in expectations.misspelt_engines(ran) {
        println!("\nwarning: {misspelt}");
    }
    let expected = s.divergences.len() - new.len();
    println!(
        "\n{} new divergences, {} expected (explained by {} expectation entries)",
        new.len(),
        expected,
        expectations.entries.len()
    );
    if let (Some(e), Some(path)) = (json_failed, &args.json) {
        return Err(e.context(format!("cannot write {}", path.display())));
    }
    // The folder made before the run goes again if nothing went into it.
    let _ = std::fs::remove_dir(&args.repro);
    if s.unexpected() > 0 {
        bail!(
            "{} unexpected result(s): {} new divergence(s) and {} setup failure(s) (worlds or cases witness \
             could not run)",
            s.unexpected(),
            new.len(),
            s.setup_failures.len()
        );
    }
    if s.cases == 0 {
        bail!("nothing was compared: no world had a case to run");
    }
    Ok(())
}
