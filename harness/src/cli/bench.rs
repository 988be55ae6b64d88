//! `witness bench-calls`: cases per second, synchronous against 🔀 async, on each engine. One
//! world has both shapes of the same function (`u32 -> string`); each case is a fresh
//! instance, its script loaded, one export call, the log read back: what a suite or campaign
//! case costs. The async case returns through `task.return` after one `yield`, so its callback
//! loop runs once. A benchmark to read (`cargo xtask bench` runs it), nothing asserted on time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;

use crate::encode::names::NameScheme;
use crate::engine::{Selection, compile};
use crate::plan::{CallPlan, GuestOp, GuestValues, Misses, StepPlan, build_case};
use crate::reference::types::StringEncoding;
use crate::reference::value::{HostString, Value};
use crate::runtime::driver::run_case;
use crate::runtime::{Artifact, Case, Compiled, Prepared};

#[derive(Args)]
pub struct BenchCallsArgs {
    /// Engines to measure (embedded names, comma-separated or repeated).
    #[arg(long = "engine", value_delimiter = ',', default_values_t = ["reference".to_string(), "wasmtime".to_string()])]
    engines: Vec<String>,
    /// How long each shape runs on each engine, in seconds.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
}

const WORLD: &str = "package witness:bench;
world w {
  export sync-call: func(x: u32) -> string;
  export async-call: async func(x: u32) -> string;
}
";

/// The case of export `export`: argument 7, result "seven" (through task.return after a
/// yield, for the async one).
fn case_of(prepared: &Prepared, export: u32) -> Result<Case> {
    let asynchronous = prepared.exports[export as usize].1.async_;
    let ops = match asynchronous {
        true => vec![GuestOp::Activation { code: 1 }, GuestOp::TaskReturn, GuestOp::Activation { code: 0 }],
        false => vec![],
    };
    let call = CallPlan {
        export,
        args: vec![Value::U32(7)],
        ops,
        result: GuestValues { values: vec![Value::String(HostString::utf8("seven"))], corruption: None },
        realloc: vec![],
    };
    build_case(prepared, &[StepPlan::Call(call)], Misses::Refuse)
}

/// Cases per second of `case` on `compiled`, run for `time` (after one unmeasured run, which
/// must end without a trap).
fn rate(compiled: &mut dyn Compiled, artifact: &Artifact, case: &Case, time: Duration) -> Result<f64> {
    let first = run_case(compiled, artifact, case, &[])?;
    if let Some(t) = first.trap {
        bail!("{}: the benchmark case trapped: {t}", compiled.label());
    }
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < time {
        run_case(compiled, artifact, case, &[])?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

pub fn run(args: BenchCallsArgs) -> Result<()> {
    let prepared = Prepared::from_wit(WORLD, Some("w"), NameScheme::Legacy, StringEncoding::Utf8)?;
    let artifact = Arc::new(Artifact::of(&prepared)?);
    let (sync_case, async_case) = (case_of(&prepared, 0)?, case_of(&prepared, 1)?);
    let time = Duration::from_secs(args.seconds);
    println!("{:<16} {:>12} {:>12} {:>12}", "engine", "sync/s", "async/s", "async/sync");
    for engine in &args.engines {
        let mut compiled = compile(&Selection::parse(engine)?, &artifact)?;
        let sync = rate(compiled.as_mut(), &artifact, &sync_case, time)?;
        let asynchronous = rate(compiled.as_mut(), &artifact, &async_case, time)?;
        println!("{engine:<16} {sync:>12.0} {asynchronous:>12.0} {:>11.2}x", asynchronous / sync);
    }
    Ok(())
}
