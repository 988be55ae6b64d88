//! `witness fuzz-replay`: run a fuzz target's body on input files (a crash libFuzzer wrote, a
//! corpus entry) without the instrumented build, and say what each does. `witness
//! fuzz-report`: what a differential target's corpus reached (reach.rs).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;

use crate::fuzz::TARGETS;

#[derive(Args)]
pub struct FuzzReplayArgs {
    /// The target, as fuzz/fuzz_targets/ names it (`reference_lift`, `differential`).
    #[arg(long)]
    target: String,
    /// The input files.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

pub fn run(args: FuzzReplayArgs) -> Result<()> {
    let &(_, body) = TARGETS.iter().find(|(name, _)| *name == args.target).ok_or_else(|| {
        let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
        anyhow!("no fuzz target `{}` (targets: {})", args.target, names.join(", "))
    })?;
    // A body reports a finding by panicking: keep the message for the report instead of
    // letting the default hook print it in the middle of the run.
    let found: Arc<Mutex<Option<String>>> = Arc::default();
    let keep = found.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = crate::contain::panic_message(info.payload()).unwrap_or_else(|| "(no message)".into());
        let at = info.location().map(|l| format!(" (at {}:{})", l.file(), l.line())).unwrap_or_default();
        *keep.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{text}{at}"));
    }));
    let mut crashes = 0;
    let mut outcome = Ok(());
    for path in &args.inputs {
        let data = match std::fs::read(path).with_context(|| format!("cannot read {}", path.display())) {
            Ok(data) => data,
            Err(e) => {
                outcome = Err(e);
                break;
            }
        };
        match std::panic::catch_unwind(|| body(&data)) {
            Ok(true) => println!("{}: no finding ({} bytes; ran a case)", path.display(), data.len()),
            Ok(false) => println!("{}: no finding ({} bytes; too little input for a case)", path.display(), data.len()),
            Err(_) => {
                crashes += 1;
                let text = found.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
                println!("{}: FINDING\n{text}", path.display());
            }
        }
    }
    std::panic::set_hook(previous);
    outcome?;
    if crashes > 0 {
        bail!("{crashes} of {} input(s) make `{}` report a finding", args.inputs.len(), args.target);
    }
    Ok(())
}

#[derive(Args)]
pub struct FuzzReportArgs {
    /// The target: `differential`, `differential_cached`, `resource_sequence`,
    /// `async_differential` or `composition`.
    #[arg(long)]
    target: String,
    /// Input files, or folders of them (a corpus).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

pub fn report(args: FuzzReportArgs) -> Result<()> {
    use indicatif::{ProgressBar, ProgressStyle};
    if !crate::fuzz::DIFFERENTIAL_TARGETS.contains(&args.target.as_str()) && args.target != "composition" {
        bail!(
            "--target {}: reports are for {} and composition",
            args.target,
            crate::fuzz::DIFFERENTIAL_TARGETS.join(", ")
        );
    }
    let files = crate::reach::input_files(&args.inputs)?;
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} inputs  {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let reach = crate::reach::reach(&args.target, &files, |done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    print!("{}", reach.render());
    if !reach.failures.is_empty() {
        bail!("{} input(s) could not be replayed", reach.failures.len());
    }
    Ok(())
}
