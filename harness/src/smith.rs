//! Arbitrary guests: wasm-smith modules shaped to a world's core signature (the world's
//! *dummy* module from wit-component is wasm-smith's `module_shape`), componentized with the
//! world and run on two engines, by default Wasmtime as a component (its own Canonical ABI)
//! and wasmi as a core module with the reference host. Whatever a random guest hands back (garbage
//! pointers and lengths, bad realloc answers, traps, loops) must end every call in the same
//! *outcome class* on both: returned (an equal value), trapped (the same `TrapKind`), or called
//! an import the host does not implement.
//!
//! The world is the generated world as written: arbitrary guests do not have the scripted
//! guest's control interface. The `Prepared` of the world (which adds it) is used only for the
//! reference types, the core names and the reference host; its scripted guest is not run.
//!
//! What the host does is the same on both engines: every call of a handle-free import returns
//! an arbitrary valid value, the n-th import call of a module run taking value n of one seeded
//! sequence (a queue both engines share); imports whose types hold handles are not implemented
//! (the call traps after lifting its arguments, on both); each handle-free export is called
//! with arbitrary arguments, in one instance, until a call does not return. Fuel is `FUEL` for
//! instantiation and for each call, on both engines. An instantiation that fails on both
//! engines (a trap in the start function or `_initialize`) is the same outcome.
//!
//! Core runtimes follow the core-module build target: the start function may not call
//! memory-needing imports (runtime::core's `START_IMPORT_TRAP`), `_initialize` runs after it.
//!
//! A mismatch is explained only by precise evidence: a resource limit (`LIMITS`: fuel and
//! stack, where the events of one engine are a prefix of the other's); a known divergence of
//! one engine from the spec in the expectations files, where the other engine's Canonical ABI
//! is the reference's (its trap class is the spec's); or a known bug of an engine's core wasm
//! execution in the expectations files (`[[bug]]`, recognized as its kind says). The rest are
//! findings.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow};
use arbitrary::Unstructured;
use wit_parser::{LiftLowerAbi, ManglingAndAbi, WorldId};

use crate::contain::contain;
use crate::diff::{DiffConfig, world_of};
use crate::encode::component::componentize;
use crate::encode::names::NameScheme;
use crate::engine::{Selection, compile};
use crate::oracle::{Area, Difference};
use crate::plan::canonical_nans;
use crate::reference::types::{FuncType, ResourceType, StringEncoding, ValType};
use crate::reference::value::Value;
use crate::reference::{Trap, TrapKind};
use crate::runtime::artifact::Import;
use crate::runtime::prepared::Prepared;
use crate::runtime::resources::has_handles;
use crate::runtime::{Artifact, Compiled, Host, HostEvent};
use crate::suite::expectations::{BugKind, Expectations};
use crate::world::arbitrary::{arbitrary_value, seed_bytes};
use crate::world::wit::Wit;

/// Bytes of wasm-smith input per module.
const MODULE_INPUT: usize = 16 * 1024;

/// How one call (or the instantiation) of an arbitrary guest ended on one engine.
#[derive(Clone, Debug)]
pub enum Ending {
    /// The export returned this value.
    Returned(Option<Value>),
    /// A trap (for the instantiation: any failure of it).
    Trapped(Trap),
    /// The guest called import `thunk`, which the host does not implement (its type holds
    /// handles); the arguments were lifted first.
    Unimplemented(u32),
}

impl Ending {
    /// The outcome class: `returned`, `trap:<kind>` or `unimplemented-import`.
    pub fn class(&self) -> String {
        match self {
            Ending::Returned(_) => "returned".into(),
            Ending::Trapped(t) => format!("trap:{}", t.kind),
            Ending::Unimplemented(_) => "unimplemented-import".into(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Ending::Returned(v) => format!("returned {v:?}"),
            Ending::Trapped(t) => format!("trapped [{}] {}", t.kind, t.message),
            Ending::Unimplemented(k) => format!("called unimplemented import {k}"),
        }
    }
}

/// One engine's run of one arbitrary guest.
#[derive(Clone, Debug, Default)]
pub struct EngineRun {
    /// The engine's label (an adapter names itself).
    pub label: String,
    /// `None`: instantiated (start function and `_initialize` ran); else how it failed.
    pub init: Option<Ending>,
    /// What the host saw during instantiation.
    pub init_events: Vec<HostEvent>,
    /// Each call: how it ended and what the host saw. The run stops after the first call
    /// that does not return.
    pub calls: Vec<(Ending, Vec<HostEvent>)>,
}

/// One call the host makes: function export `export` with these arguments.
#[derive(Clone, Debug)]
pub struct SmithCall {
    pub export: u32,
    pub args: Vec<Value>,
}

/// The engines disagree on one arbitrary guest.
#[derive(Clone, Debug)]
pub struct SmithMismatch {
    pub world_seed: u64,
    pub module: u64,
    /// The call (by index in the module's plan), or `None` for the instantiation.
    pub call: Option<u64>,
    /// What differs.
    pub what: String,
    /// The two engines, as the command line names them.
    pub engines: [String; 2],
    /// What each did.
    pub ends: [String; 2],
    /// How to run it again.
    pub replay: String,
    /// What explains it (a limit, a known divergence, a known engine bug), if anything.
    pub explained: Option<String>,
}

impl std::fmt::Display for SmithMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = match self.call {
            Some(c) => format!("call {c}"),
            None => "instantiation".into(),
        };
        write!(f, "world {} module {} {at}: {}", self.world_seed, self.module, self.what)?;
        for (engine, end) in self.engines.iter().zip(&self.ends) {
            write!(f, "\n  {engine}: {end}")?;
        }
        write!(f, "\n  replay: {}", self.replay)?;
        if let Some(a) = &self.explained {
            write!(f, "\n  explained: {a}")?;
        }
        Ok(())
    }
}

/// Where two engines may end differently without a finding: resource limits, which the spec
/// leaves to the embedder. (name, why). A limit explains a mismatch only when the host events
/// of one run are a prefix of the other's (see `explain`).
pub const LIMITS: &[(&str, &str)] = &[
    (
        "fuel",
        "one engine ran out of fuel where the other did not, or both did after different numbers \
         of import calls: engines charge different fuel per instruction and per host call",
    ),
    (
        "stack-limit",
        "one engine exhausted its call stack where the other did not, or both did at different \
         depths: wasmi limits recursion depth, Wasmtime the native stack size (512 KiB), the \
         reference host the depth of nested destructor calls",
    ),
];

/// What a campaign did.
#[derive(Clone, Debug, Default)]
pub struct SmithSummary {
    /// Worlds prepared.
    pub worlds: u64,
    /// Worlds that could not be prepared: (world seed, error).
    pub world_failures: Vec<(u64, String)>,
    pub modules_generated: u64,
    pub componentized: u64,
    /// Modules both engines accepted (compiled and linked).
    pub loaded: u64,
    /// Modules instantiated on both engines.
    pub instantiated: u64,
    /// Modules whose instantiation failed on both engines (the same outcome), by class pair.
    pub instantiation_failures: BTreeMap<String, u64>,
    /// Why instantiation failed on both, by the start of Wasmtime's message.
    pub instantiation_messages: BTreeMap<String, u64>,
    /// Instantiations that failed on both but in different classes (the same outcome by the
    /// rules, listed for inspection): (world seed, module, Wasmtime's, wasmi's).
    pub instantiation_class_differences: Vec<(u64, u64, String, String)>,
    /// Calls made on both engines.
    pub calls: u64,
    /// Calls on which both engines agree, by outcome class.
    pub outcomes: BTreeMap<String, u64>,
    /// Import calls the host served (on both engines, counted once).
    pub import_calls: u64,
    pub mismatches: Vec<SmithMismatch>,
    /// Failures of generation, componentization, compilation or the harness: (world seed,
    /// module, stage, error). Each is a finding.
    pub setup_failures: Vec<(u64, u64, String, String)>,
}

impl SmithSummary {
    /// Mismatches the allow-list does not explain.
    pub fn unexpected(&self) -> Vec<&SmithMismatch> {
        self.mismatches.iter().filter(|m| m.explained.is_none()).collect()
    }
}

/// Whether the host implements (import) or calls (export) a function: no handles anywhere.
pub fn handle_free(ft: &FuncType) -> bool {
    !ft.params.iter().any(|(_, t)| has_handles(t)) && !ft.result.as_ref().is_some_and(has_handles)
}

/// A world ready for arbitrary guests.
pub struct SmithWorld {
    /// The WIT text of the world.
    pub text: String,
    /// The world's types, names and reference host (with the control interface, unused).
    pub prepared: Prepared,
    /// The same as the runtimes see it.
    pub artifact: Arc<Artifact>,
    /// The world as written (no control interface): what guests are shaped to.
    pub bare: Wit,
    pub bare_world: WorldId,
    /// The dummy module of the bare world.
    pub shape: Vec<u8>,
}

impl SmithWorld {
    /// Prepare world `world` (or the only one) of WIT text `wit`.
    pub fn new(wit: &str, world: Option<&str>, scheme: NameScheme, encoding: StringEncoding) -> Result<SmithWorld> {
        let prepared = Prepared::from_wit(wit, world, scheme, encoding)?;
        let bare = Wit::parse("world.wit", wit)?;
        let bare_world = bare.world(world)?;
        let mangling = match scheme {
            NameScheme::Standard => ManglingAndAbi::Standard32,
            NameScheme::Legacy => ManglingAndAbi::Legacy(LiftLowerAbi::Sync),
        };
        let shape = contain("wit_component::dummy_module", || {
            Ok(wit_component::dummy_module(&bare.resolve, bare_world, mangling))
        })?;
        let artifact = Arc::new(Artifact::of(&prepared)?);
        Ok(SmithWorld { text: wit.to_string(), prepared, artifact, bare, bare_world, shape })
    }

    /// An arbitrary core module with exactly the world's core imports and exports. Half of
    /// them are generated with wasm-smith's `disallow_traps` (core instructions do not trap, so
    /// more of them reach the Canonical ABI's checks with their garbage).
    pub fn generate(&self, u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
        let e = |e: arbitrary::Error| anyhow!("{e}");
        let min = u.int_in_range(1..=2u64).map_err(e)?;
        let max = min + u.int_in_range(0..=2u64).map_err(e)?;
        let disallow_traps = u.arbitrary().map_err(e)?;
        let shape = with_memory(&self.shape, min, max)?;
        let config = smith_config(shape, disallow_traps);
        let module =
            contain("wasm-smith", || wasm_smith::Module::new(config, u).map_err(|e| anyhow!("wasm-smith: {e}")))?;
        Ok(module.to_bytes())
    }

    /// The component of a core module of this world.
    pub fn componentize(&self, core: &[u8]) -> Result<Vec<u8>> {
        contain("componentize", || {
            componentize(&self.bare.resolve, self.bare_world, core, self.prepared.encoding, self.prepared.scheme)
        })
    }
}

/// wasm-smith's configuration: the shape, and only the features both wasmi and Wasmtime (and
/// wit-component's validator) accept by default. NaNs are canonicalized so that float results
/// do not depend on the engine's NaN propagation.
pub fn smith_config(shape: Vec<u8>, disallow_traps: bool) -> wasm_smith::Config {
    wasm_smith::Config {
        module_shape: Some(shape),
        disallow_traps,
        simd_enabled: false,
        relaxed_simd_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        memory64_enabled: false,
        reference_types_enabled: false,
        tail_call_enabled: false,
        custom_page_sizes_enabled: false,
        custom_descriptors_enabled: false,
        wide_arithmetic_enabled: false,
        max_memories: 1,
        max_tables: 1,
        max_table_elements: 100,
        table_max_size_required: true,
        memory_max_size_required: true,
        max_memory32_bytes: 4 << 16,
        max_funcs: 30,
        max_data_segments: 10,
        max_element_segments: 10,
        canonicalize_nans: true,
        generate_custom_sections: false,
        ..wasm_smith::Config::default()
    }
}

/// `shape` with its memory's limits replaced by `min..=max` pages (the dummy module's memory
/// has 0 pages and no maximum: every access would trap, and `memory.grow` would be unbounded).
fn with_memory(shape: &[u8], min: u64, max: u64) -> Result<Vec<u8>> {
    let mut module = wasm_encoder::Module::new();
    for payload in wasmparser::Parser::new(0).parse_all(shape) {
        let payload = payload.context("parsing the dummy module")?;
        if let wasmparser::Payload::MemorySection(_) = payload {
            let mut memories = wasm_encoder::MemorySection::new();
            memories.memory(wasm_encoder::MemoryType {
                minimum: min,
                maximum: Some(max),
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
            module.section(&memories);
        } else if let Some((id, range)) = payload.as_section() {
            module.section(&wasm_encoder::RawSection { id, data: &shape[range] });
        }
    }
    Ok(module.finish())
}

/// A seed from several numbers.
fn mix(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5157_4d49_5448_u64, |h, &p| (h ^ p).wrapping_mul(0x100_0000_01b3).rotate_left(29))
}

/// The value the host's n-th import call of a module run returns (for a function of result
/// type `result`): the shared queue.
fn import_result(seed: u64, n: u64, result: Option<&ValType>) -> Result<Option<Value>, String> {
    let Some(t) = result else { return Ok(None) };
    let data = seed_bytes(mix(&[seed, n, 2]), 2048);
    let mut u = Unstructured::new(&data);
    arbitrary_value(&mut u, t, StringEncoding::Utf8, &[])
        .map(|v| Some(canonical_nans(v)))
        .map_err(|e| format!("import result {n}: {e}"))
}

/// The calls of a module run: `calls` calls of the handle-free exports, each export once in a
/// seeded order, then again, with arbitrary arguments.
pub fn plan_calls(prepared: &Prepared, seed: u64, calls: u64) -> Result<Vec<SmithCall>> {
    let mut exports: Vec<u32> =
        (0..prepared.exports.len() as u32).filter(|&k| handle_free(&prepared.exports[k as usize].1)).collect();
    let mut out = vec![];
    if exports.is_empty() {
        return Ok(out);
    }
    let order = seed_bytes(mix(&[seed, 3]), 8 * exports.len());
    for (i, w) in order.chunks(8).enumerate().rev() {
        let r = u64::from_le_bytes(w.try_into().unwrap_or_default());
        exports.swap(i, (r % (i as u64 + 1)) as usize);
    }
    for c in 0..calls {
        let data = seed_bytes(mix(&[seed, c, 1]), 4096);
        let mut u = Unstructured::new(&data);
        let export = exports[(c % exports.len() as u64) as usize];
        let ft = &prepared.exports[export as usize].1;
        let args = ft
            .param_types()
            .iter()
            .map(|t| arbitrary_value(&mut u, t, StringEncoding::Utf8, &[]).map(canonical_nans))
            .collect::<arbitrary::Result<Vec<_>>>()
            .map_err(|e| anyhow!("arguments: {e}"))?;
        out.push(SmithCall { export, args });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Running a guest on one runtime.

/// The message of the trap that stops an import the host does not implement.
const UNIMPLEMENTED: &str = "unimplemented import";

/// The host of an arbitrary guest: each handle-free import call returns the next value of one
/// seeded sequence; imports whose types hold handles are not implemented (the call traps after
/// its arguments were lifted).
struct SmithHost {
    seed: u64,
    next_import: u64,
    /// Each import's function type, by thunk (`None`: a resource built-in).
    types: Vec<Option<FuncType>>,
    events: Vec<HostEvent>,
    /// The unimplemented import the guest called.
    unimplemented: Option<u32>,
}

impl Host for SmithHost {
    fn import(&mut self, thunk: u32, args: Vec<Value>) -> Result<Option<Value>> {
        let ft = self.types.get(thunk as usize).cloned().flatten().ok_or_else(|| anyhow!("no import {thunk}"))?;
        if !handle_free(&ft) {
            self.unimplemented = Some(thunk);
            return Err(Trap::new(TrapKind::Unclassified, UNIMPLEMENTED).into());
        }
        self.events.push(HostEvent::Import { thunk, args });
        let n = self.next_import;
        self.next_import += 1;
        import_result(self.seed, n, ft.result.as_ref()).map_err(|e| anyhow!(e))
    }

    fn dtor(&mut self, _: &ResourceType, rep: u32) -> Result<()> {
        self.events.push(HostEvent::Dtor { rep });
        Ok(())
    }
}

/// Run a module's plan on one compiled runtime: instantiate, then call until a call does not
/// return. `Err`: a failure of the harness.
fn run_on(compiled: &mut dyn Compiled, sw: &SmithWorld, seed: u64, plan: &[SmithCall]) -> Result<EngineRun> {
    let types = sw.artifact.imports.iter().map(|i| match i {
        Import::Func { func, .. } => Some(func.ft.clone()),
        Import::Builtin { .. } | Import::Async { .. } => None,
    });
    let host = SmithHost { seed, next_import: 0, types: types.collect(), events: vec![], unimplemented: None };
    let host = Rc::new(RefCell::new(host));
    let lock = || host.borrow_mut();
    let ending = |t: Trap| match lock().unimplemented.take() {
        Some(k) => Ending::Unimplemented(k),
        None => Ending::Trapped(t),
    };
    let mut run = EngineRun { label: compiled.label().to_string(), ..EngineRun::default() };
    let mut instance = match compiled.instantiate(Box::new(host.clone()))? {
        Ok(instance) => instance,
        Err(t) => {
            run.init = Some(ending(t));
            run.init_events = std::mem::take(&mut lock().events);
            return Ok(run);
        }
    };
    run.init_events = std::mem::take(&mut lock().events);
    for call in plan {
        let ending = match instance.call(call.export as usize, &call.args)? {
            Ok(v) => Ending::Returned(v),
            Err(t) => ending(t),
        };
        let stop = !matches!(ending, Ending::Returned(_));
        run.calls.push((ending, std::mem::take(&mut lock().events)));
        if stop {
            break;
        }
    }
    Ok(run)
}

/// Compile module `core` (and its component) of world `sw` on `engine` and run the plan.
fn run_module_on(engine: &Selection, sw: &SmithWorld, core: &[u8], seed: u64, plan: &[SmithCall]) -> Result<EngineRun> {
    let component = sw.componentize(core)?;
    let artifact = Arc::new(sw.artifact.with_guest(core.to_vec(), component));
    contain(&format!("{engine} run"), || run_on(compile(engine, &artifact)?.as_mut(), sw, seed, plan))
}

// ---------------------------------------------------------------------------------------------
// Comparison and campaign.

fn events_match(a: &[HostEvent], b: &[HostEvent]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (HostEvent::Import { thunk: t1, args: a1 }, HostEvent::Import { thunk: t2, args: a2 }) => {
                t1 == t2 && a1.len() == a2.len() && a1.iter().zip(a2).all(|(p, q)| p.matches(q))
            }
            _ => x == y,
        })
}

fn is_fuel(e: &Ending) -> bool {
    matches!(e, Ending::Trapped(t) if t.kind == TrapKind::GuestTrap && t.message.contains("all fuel consumed"))
}

fn is_stack(e: &Ending) -> bool {
    matches!(e, Ending::Trapped(t) if t.kind == TrapKind::GuestTrap && t.message.contains("call stack exhausted"))
}

/// Compare two endings: `None` if they agree, else what differs.
fn compare(wt: &Ending, wi: &Ending) -> Option<String> {
    match (wt, wi) {
        (Ending::Returned(a), Ending::Returned(b)) => match (a, b) {
            (None, None) => None,
            (Some(a), Some(b)) if a.matches(b) => None,
            _ => Some("returned values differ".into()),
        },
        (Ending::Trapped(a), Ending::Trapped(b)) if a.kind == b.kind && a.kind != TrapKind::Unclassified => None,
        (Ending::Unimplemented(a), Ending::Unimplemented(b)) if a == b => None,
        _ if wt.class() != wi.class() => Some(format!("outcome class {} vs {}", wt.class(), wi.class())),
        _ => Some("outcome differs".into()),
    }
}

/// Whether the events of one engine are a prefix of the other's.
fn prefix_related(a: &[HostEvent], b: &[HostEvent]) -> bool {
    let n = a.len().min(b.len());
    events_match(&a[..n], &b[..n])
}

/// What two engines are, to explain their differences.
struct Explainer<'a> {
    /// Each engine's label (as expectations files name it) and whether its Canonical ABI is
    /// the reference's.
    engines: [(String, bool); 2],
    expectations: &'a Expectations,
}

impl Explainer<'_> {
    /// What explains a mismatch of the first engine's `(ending, events)` and the second's.
    fn explain(
        &self,
        (ea, va): (Option<&Ending>, &[HostEvent]),
        (eb, vb): (Option<&Ending>, &[HostEvent]),
    ) -> Option<String> {
        if let (Some(Ending::Trapped(a)), Some(Ending::Trapped(b))) = (ea, eb) {
            // Where one engine's Canonical ABI is the reference's, its trap class is the spec's
            // and the other's is a divergence, known or not.
            let sides = [(&self.engines[1], b, &self.engines[0], a), (&self.engines[0], a, &self.engines[1], b)];
            for ((_, spec_side), expected, (label, other_spec), actual) in sides {
                if *spec_side && !*other_spec {
                    let d = Difference {
                        area: Area::Trap,
                        detail: String::new(),
                        trap_classes: Some((expected.kind.name().into(), actual.kind.name().into())),
                        events: None,
                    };
                    if let Some(k) = self.expectations.explain(label, &d) {
                        return Some(format!("a known divergence of {label} ({})", k.rule));
                    }
                }
            }
        }
        let limit = |hit: fn(&Ending) -> bool| (ea.is_some_and(hit) || eb.is_some_and(hit)) && prefix_related(va, vb);
        if limit(is_fuel) {
            return Some("limit: fuel".into());
        }
        if limit(is_stack) {
            return Some("limit: stack-limit".into());
        }
        None
    }
}

fn describe_events(events: &[HostEvent]) -> String {
    match events.len() {
        0 => String::new(),
        n if n <= 3 => format!(" after host events {events:?}"),
        n => format!(" after {n} host events {:?} ...", &events[..3]),
    }
}

/// The first difference between two runs of one module: what each engine did.
struct RunDifference {
    call: Option<u64>,
    what: String,
    a: String,
    b: String,
    explained: Option<String>,
}

/// An instantiation that failed on both engines.
struct InitFailed {
    /// "first engine's class / second engine's class".
    classes: String,
    /// The start of the first engine's message.
    message: String,
    /// Both endings, when their classes differ.
    differ: Option<(String, String)>,
}

/// What two runs of one module say, call by call.
#[derive(Default)]
struct Verdict {
    /// Both instantiated (with the same host events).
    instantiated: bool,
    /// Both failed to instantiate.
    init_failed: Option<InitFailed>,
    /// Classes of the calls on which both agree, in order.
    agreeing: Vec<String>,
    /// Import calls of the agreeing part.
    import_calls: u64,
    difference: Option<RunDifference>,
}

fn imports_in(events: &[HostEvent]) -> u64 {
    events.iter().filter(|e| matches!(e, HostEvent::Import { .. })).count() as u64
}

/// Compare the runs of one module on the first engine (`wt`) and the second (`wi`).
fn judge(sw: &SmithWorld, plan: &[SmithCall], wt: &EngineRun, wi: &EngineRun, why: &Explainer<'_>) -> Verdict {
    let mut v = Verdict::default();
    match (&wt.init, &wi.init) {
        (None, None) => {
            if !events_match(&wt.init_events, &wi.init_events) {
                v.difference = Some(RunDifference {
                    call: None,
                    what: "host events during instantiation differ".into(),
                    a: format!("instantiated{}", describe_events(&wt.init_events)),
                    b: format!("instantiated{}", describe_events(&wi.init_events)),
                    explained: why.explain((None, &wt.init_events), (None, &wi.init_events)),
                });
                return v;
            }
            v.instantiated = true;
            v.import_calls += imports_in(&wt.init_events);
        }
        (Some(a), Some(b)) => {
            let msg = match a {
                Ending::Trapped(t) => t.message.splitn(3, ':').take(2).collect::<Vec<_>>().join(":"),
                other => other.class(),
            };
            let differ = (a.class() != b.class()).then(|| (a.describe(), b.describe()));
            v.init_failed =
                Some(InitFailed { classes: format!("{} / {}", a.class(), b.class()), message: msg, differ });
            return v;
        }
        (a, b) => {
            let d = |e: &Option<Ending>, ev: &[HostEvent]| match e {
                None => format!("instantiated{}", describe_events(ev)),
                Some(e) => format!("{}{}", e.describe(), describe_events(ev)),
            };
            v.difference = Some(RunDifference {
                call: None,
                what: "instantiation outcome differs".into(),
                a: d(a, &wt.init_events),
                b: d(b, &wi.init_events),
                explained: why.explain((a.as_ref(), &wt.init_events), (b.as_ref(), &wi.init_events)),
            });
            return v;
        }
    }
    for (c, ((ea, va), (eb, vb))) in wt.calls.iter().zip(&wi.calls).enumerate() {
        let what = compare(ea, eb).or_else(|| (!events_match(va, vb)).then(|| "host events differ".to_string()));
        let Some(what) = what else {
            v.agreeing.push(ea.class());
            v.import_calls += imports_in(va);
            continue;
        };
        let export = &sw.prepared.exports[plan[c].export as usize].0;
        v.difference = Some(RunDifference {
            call: Some(c as u64),
            what: format!("{what} (export {export}, args {:?})", plan[c].args),
            a: format!("{}{}", ea.describe(), describe_events(va)),
            b: format!("{}{}", eb.describe(), describe_events(vb)),
            explained: why.explain((Some(ea), va), (Some(eb), vb)),
        });
        break;
    }
    v
}

/// `core` with `i32.const 0; i32.or` before every `select` (the condition is unchanged): a
/// module with the same semantics whose selects a select-miscompilation bug leaves alone (see
/// `BugKind::SelectMiscompilation`).
pub fn guard_selects(core: &[u8]) -> Result<Vec<u8>> {
    use wasm_encoder::Instruction;
    use wasm_encoder::reencode::{Error, Reencode};
    struct Guard;
    impl Reencode for Guard {
        type Error = std::convert::Infallible;
        fn parse_function_body(
            &mut self,
            code: &mut wasm_encoder::CodeSection,
            func: wasmparser::FunctionBody<'_>,
        ) -> Result<(), Error<Self::Error>> {
            let mut f = self.new_function_with_parsed_locals(&func)?;
            let mut reader = func.get_operators_reader()?;
            while !reader.eof() {
                let ins = self.parse_instruction(&mut reader)?;
                if matches!(ins, Instruction::Select | Instruction::TypedSelect(_) | Instruction::TypedSelectMulti(_)) {
                    f.instruction(&Instruction::I32Const(0));
                    f.instruction(&Instruction::I32Or);
                }
                f.instruction(&ins);
            }
            code.function(&f);
            Ok(())
        }
    }
    let mut module = wasm_encoder::Module::new();
    Guard.parse_core_module(&mut module, wasmparser::Parser::new(0), core).map_err(|e| anyhow!("{e}"))?;
    Ok(module.finish())
}

/// Run module `m` of one world (already prepared) on both engines and fold the result into `s`.
fn run_module(cx: &Campaign<'_>, sw: &SmithWorld, world_seed: u64, m: u64, calls: u64, s: &mut SmithSummary) {
    let seed = mix(&[world_seed, m]);
    let data = seed_bytes(seed, MODULE_INPUT);
    let engines = cx.engines;
    let replay = format!(
        "witness smith --seed {world_seed} --worlds 1 --module {m} --calls {calls} --engine {} --engine {}",
        engines[0].shell_arg(),
        engines[1].shell_arg()
    );
    let guest = Guest { world_seed, module: m, seed, data: &data, calls, replay };
    run_guest(cx, sw, &guest, s);
}

/// One arbitrary guest of a world: where it comes from and how it is driven.
pub struct Guest<'a> {
    /// The world's seed and the module's number in it (for reports).
    pub world_seed: u64,
    pub module: u64,
    /// The seed of the calls' arguments and of the import results (`plan_calls`).
    pub seed: u64,
    /// wasm-smith's input.
    pub data: &'a [u8],
    /// Calls to make.
    pub calls: u64,
    /// The command that runs it again.
    pub replay: String,
}

/// Run one arbitrary guest on both engines and fold the result into `s`.
pub fn run_guest(cx: &Campaign<'_>, sw: &SmithWorld, guest: &Guest<'_>, s: &mut SmithSummary) {
    let &Guest { world_seed, module: m, seed, data, calls, .. } = guest;
    let engines = cx.engines;
    let fail = |s: &mut SmithSummary, stage: &str, e: anyhow::Error| {
        s.setup_failures.push((world_seed, m, stage.to_string(), format!("{e:#}")));
    };
    let core = match sw.generate(&mut Unstructured::new(data)) {
        Ok(c) => c,
        Err(e) => return fail(s, "generate", e),
    };
    s.modules_generated += 1;
    if let Err(e) = sw.componentize(&core) {
        return fail(s, "componentize", e);
    }
    s.componentized += 1;
    let plan = match plan_calls(&sw.prepared, seed, calls) {
        Ok(p) => p,
        Err(e) => return fail(s, "plan", e),
    };
    let mut runs = vec![];
    for engine in engines {
        match run_module_on(engine, sw, &core, seed, &plan) {
            Ok(r) => runs.push(r),
            Err(e) => return fail(s, &engine.to_string(), e),
        }
    }
    let (ra, rb) = (&runs[0], &runs[1]);
    s.loaded += 1;
    let why = Explainer {
        engines: [0, 1].map(|k| (runs[k].label.clone(), engines[k].reference_abi())),
        expectations: cx.expectations,
    };
    // The runs again with guarded selects on the engines with a known select miscompilation
    // (the same semantics).
    let buggy = |k: usize| cx.expectations.bug(&runs[k].label, BugKind::SelectMiscompilation).is_some();
    let guarded = || -> Option<(EngineRun, EngineRun)> {
        if !buggy(0) && !buggy(1) {
            return None;
        }
        let g = guard_selects(&core).ok()?;
        let again = |k: usize| match buggy(k) {
            true => run_module_on(&engines[k], sw, &g, seed, &plan).ok(),
            false => Some(runs[k].clone()),
        };
        Some((again(0)?, again(1)?))
    };
    let v = judge(sw, &plan, ra, rb, &why);
    if v.instantiated {
        s.instantiated += 1;
    }
    if let Some(InitFailed { classes, message, differ }) = v.init_failed {
        *s.instantiation_failures.entry(classes).or_default() += 1;
        *s.instantiation_messages.entry(message).or_default() += 1;
        if let Some((mut a, mut b)) = differ {
            if let Some((ga, gb)) = guarded() {
                for (text, run) in [(&mut a, ga), (&mut b, gb)] {
                    if let Some(e) = run.init {
                        text.push_str(&format!(" (guarded selects: {})", e.describe()));
                    }
                }
            }
            s.instantiation_class_differences.push((world_seed, m, a, b));
        }
    }
    s.calls += v.agreeing.len() as u64 + u64::from(v.difference.as_ref().is_some_and(|d| d.call.is_some()));
    for class in v.agreeing {
        *s.outcomes.entry(class).or_default() += 1;
    }
    s.import_calls += v.import_calls;
    let Some(mut d) = v.difference else { return };
    if d.explained.is_none()
        && let Some((ga, gb)) = guarded()
        && judge(sw, &plan, &ga, &gb, &why).difference.is_none()
    {
        // A select miscompilation: the guarded module, same semantics, agrees in full.
        d.explained = Some("a known bug: select miscompilation".into());
    }
    s.mismatches.push(SmithMismatch {
        world_seed,
        module: m,
        call: d.call,
        what: d.what,
        engines: engines.clone().map(|e| e.to_string()),
        ends: [d.a, d.b],
        replay: guest.replay.clone(),
        explained: d.explained,
    });
}

/// The world of seed `world_seed` (as `witness diff` generates it), ready for arbitrary guests.
pub fn smith_world(world_seed: u64) -> Result<SmithWorld> {
    let (world, scheme, encoding) = world_of(world_seed, &DiffConfig::default())?;
    SmithWorld::new(&world.wit, Some("w"), scheme, encoding)
}

/// What a campaign runs on: two engines, and what is known of them.
pub struct Campaign<'a> {
    pub engines: &'a [Selection; 2],
    pub expectations: &'a Expectations,
}

fn campaign(
    cx: &Campaign<'_>,
    seed: u64,
    worlds: u64,
    modules: impl Fn() -> Vec<u64>,
    calls: u64,
) -> Result<SmithSummary> {
    let mut s = SmithSummary::default();
    for w in 0..worlds {
        let world_seed = seed.wrapping_add(w);
        let sw = match contain("world", || smith_world(world_seed)) {
            Ok(sw) => sw,
            Err(e) => {
                s.world_failures.push((world_seed, format!("{e:#}")));
                continue;
            }
        };
        s.worlds += 1;
        for m in modules() {
            run_module(cx, &sw, world_seed, m, calls, &mut s);
        }
    }
    Ok(s)
}

/// The engines smith compares unless told otherwise: Wasmtime's Canonical ABI against the
/// reference host on wasmi.
pub fn default_engines() -> [Selection; 2] {
    [
        Selection::parse(crate::runtime::wasmtime::NAME).expect("registered"),
        Selection::parse(crate::runtime::wasmi::NAME).expect("registered"),
    ]
}

/// Run `modules_per_world` arbitrary guests of each of `worlds` worlds (seeds `seed`,
/// `seed + 1`, ...; the worlds of `witness diff`), `calls` calls each, on both engines.
/// `Err` only when the engines cannot be set up; everything a guest does is in the summary.
pub fn run_smith_campaign(
    cx: &Campaign<'_>,
    seed: u64,
    worlds: u64,
    modules_per_world: u64,
    calls: u64,
) -> Result<SmithSummary> {
    campaign(cx, seed, worlds, || (0..modules_per_world).collect(), calls)
}

/// Run module `module` of world `world_seed` again (the replay of a mismatch).
pub fn run_smith_module(cx: &Campaign<'_>, world_seed: u64, module: u64, calls: u64) -> Result<SmithSummary> {
    campaign(cx, world_seed, 1, || vec![module], calls)
}

/// The core module and component of module `module` of world `world_seed` (to inspect a
/// mismatch, e.g. with `wasm-tools print`).
pub fn smith_module_bytes(world_seed: u64, module: u64) -> Result<(Vec<u8>, Vec<u8>)> {
    let sw = smith_world(world_seed)?;
    let data = seed_bytes(mix(&[world_seed, module]), MODULE_INPUT);
    let core = sw.generate(&mut Unstructured::new(&data))?;
    let component = sw.componentize(&core)?;
    Ok((core, component))
}
