//! Engines: each runs a prepared world's scripted guest and reports an `Outcome` for a `Case`.
//! One trait, one file per engine. The `reference` engine is the prediction: the guest model
//! (`sim`) with the reference host (`host`).

pub mod core_wasmi;
pub mod fused;
pub mod host;
pub mod prepared;
pub mod process;
pub mod resources;
pub mod sim;
pub mod wasmtime_component;
pub mod wasmtime_core;

use anyhow::Result;

use crate::encode::script::{Event, Script};
use crate::reference::value::Value;
use crate::reference::{Trap, TrapKind};

pub use prepared::Prepared;

/// One call the host makes: world export `export` (its index among the guest's function
/// exports) with these arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportCall {
    pub export: u32,
    pub args: Vec<Value>,
}

/// One thing the host does.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Call an export.
    Call(ExportCall),
    /// Drop the guest resource held in host slot `slot` (its destructor runs in the guest).
    Drop { slot: u32 },
}

/// What a case does: the guest's script, the host's steps, and what the host's imports return
/// (one entry per import call, in order; `None` for functions without a result).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Case {
    pub script: Script,
    pub steps: Vec<Step>,
    pub import_results: Vec<Option<Value>>,
}

impl Case {
    /// The number of export calls.
    pub fn calls(&self) -> usize {
        self.steps.iter().filter(|s| matches!(s, Step::Call(_))).count()
    }

    /// The number of import calls the guest's script makes.
    pub fn script_calls(&self) -> usize {
        self.import_results.len()
    }
}

/// What the host saw.
#[derive(Clone, Debug, PartialEq)]
pub enum HostEvent {
    /// The guest called host import thunk `thunk`; the host received these arguments.
    Import { thunk: u32, args: Vec<Value> },
    /// Export `export` returned this result.
    Returned { export: u32, result: Option<Value> },
    /// The host's destructor of a host resource ran with this rep.
    Dtor { rep: u32 },
    /// The host dropped the guest resource in this slot.
    Dropped { slot: u32 },
}

/// Everything observable about one run of a case on one engine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub events: Vec<HostEvent>,
    /// The class and message of the trap that ended the case, if any.
    pub trap: Option<Trap>,
    /// The guest's log, read after the case (absent after a trap: a trapped component
    /// instance cannot be entered again).
    pub log: Option<Vec<Event>>,
    /// In a composition, the callee guest's log (the caller's is `log`).
    pub callee_log: Option<Vec<Event>>,
}

impl Outcome {
    pub fn trap_kind(&self) -> Option<TrapKind> {
        self.trap.as_ref().map(|t| t.kind)
    }
}

/// A failure of the harness inside a host function (not a trap of the guest), carried through
/// an engine's error type.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "harness: {}", self.0)
    }
}

impl std::error::Error for HarnessError {}

/// An engine that runs cases of one prepared world.
pub trait Engine {
    fn name(&self) -> &str;
    /// Run one case. `Err` is a failure of the harness or engine setup, never a guest trap.
    fn run(&mut self, case: &Case) -> Result<Outcome>;
}

/// The memory one store may hold (guest memories are 2 pages and never grow; arbitrary guests
/// may try): a runaway guest costs one case, not the machine.
pub const MEMORY_LIMIT: usize = 16 << 20;

/// The embedded engines, by name.
pub const ENGINES: &[&str] = &["wasmtime", "core", "wasmtime-core"];

/// Engine arguments as given on the command line: embedded names may be comma-separated;
/// a `process:CMD` or `process-core:CMD` argument is one engine whatever its command contains.
pub fn split_engine_args(args: &[String]) -> Vec<String> {
    args.iter()
        .flat_map(|a| match process::process_spec(a).is_some() {
            true => vec![a.clone()],
            false => a.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        })
        .collect()
}

/// Instantiate engine `name` for `prepared`: an embedded engine, the reference, or an adapter
/// process (adapters/PROTOCOL.md) given the component (`process:CMD`) or the core module of
/// the core-module build target (`process-core:CMD`).
pub fn make_engine<'p>(name: &str, prepared: &'p Prepared) -> Result<Box<dyn Engine + 'p>> {
    if let Some((command, kind)) = process::process_spec(name) {
        return Ok(Box::new(process::ProcessEngine::new(prepared, command, kind)?));
    }
    Ok(match name {
        "reference" => Box::new(sim::SimEngine::new(prepared)),
        "core" => Box::new(core_wasmi::WasmiEngine::new(prepared)?),
        "wasmtime" => Box::new(wasmtime_component::WasmtimeEngine::new(prepared)?),
        "wasmtime-core" => Box::new(wasmtime_core::WasmtimeCoreEngine::new(prepared)?),
        other => anyhow::bail!(
            "unknown engine `{other}` (known: reference, {}, process:CMD, process-core:CMD)",
            ENGINES.join(", ")
        ),
    })
}
