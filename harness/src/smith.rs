//! Arbitrary guests: wasm-smith modules shaped to a world's core signature (the world's
//! *dummy* module from wit-component is wasm-smith's `module_shape`), componentized with the
//! world and run under the embedded engines: Wasmtime as a component (its own Canonical ABI),
//! wasmi as a core module with the reference host. Whatever a random guest hands back (garbage
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
//! The wasmi side follows the core-module build target where the reference host does not
//! cover it yet: the start function may not call memory-needing imports (`START_IMPORT_TRAP`),
//! `_initialize` runs after it, and `resource.drop` of an own handle of a guest resource calls
//! the guest's destructor export.
//!
//! A mismatch is explained (`ALLOWED`) only by precise evidence: fuel and stack limits (the
//! events of one engine are a prefix of the other's), wasmi's `select` miscompilation (the
//! module with guarded selects agrees in full), known spec-vs-Wasmtime check orders, and a
//! known bug of the reference host. The rest are findings.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, anyhow, bail};
use arbitrary::Unstructured;
use wasmi::AsContextMut as _;
use wit_parser::{LiftLowerAbi, ManglingAndAbi, WorldId};

use crate::diff::{DiffConfig, world_of};
use crate::encode::component::componentize;
use crate::encode::guest::{EntryKind, ImportKind};
use crate::encode::names::NameScheme;
use crate::encode::signature::requirements;
use crate::plan::canonical_nans;
use crate::reference::canon::canon_lower;
use crate::reference::flatten::Context;
use crate::reference::handles::{DropEffect, canon_resource_drop};
use crate::reference::types::{FuncType, ResourceType, StringEncoding, ValType};
use crate::reference::value::{Flat, Value};
use crate::reference::{Trap, TrapKind};
use crate::runtime::Artifact;
use crate::runtime::HarnessError;
use crate::runtime::HostEvent;
use crate::runtime::core::{CoreGuest, HostState, call_export, serve_import};
use crate::runtime::driver::PlannedHost;
use crate::runtime::prepared::{ImportType, Prepared};
use crate::runtime::resources::has_handles;
use crate::runtime::wasmi::{
    CoreData, HasCore, WasmiGuest, attach, flat_to_val as wasmi_val, func_type, host_error as host_err,
    trap_of as wasmi_trap, val_to_flat as flat_of,
};
use crate::runtime::wasmtime::{classify, val_to_value, value_to_val};
use crate::world::arbitrary::{arbitrary_value, seed_bytes};
use crate::world::wit::{GUEST_INSTANCE, Wit};

/// Fuel for instantiation and for each call, on both engines: a guest that loops costs one
/// call, not the run.
pub const FUEL: u64 = 10_000_000;

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
    pub wasmtime: String,
    pub wasmi: String,
    /// How to run it again.
    pub replay: String,
    /// The allow-list entry that explains it (see `ALLOWED`), if any.
    pub allowed: Option<&'static str>,
}

impl std::fmt::Display for SmithMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = match self.call {
            Some(c) => format!("call {c}"),
            None => "instantiation".into(),
        };
        write!(
            f,
            "world {} module {} {at}: {}\n  wasmtime: {}\n  wasmi:    {}\n  replay: {}",
            self.world_seed, self.module, self.what, self.wasmtime, self.wasmi, self.replay
        )?;
        if let Some(a) = self.allowed {
            write!(f, "\n  allowed: {a}")?;
        }
        Ok(())
    }
}

/// Mismatches with a known explanation: (name, evidence). Each is recognized precisely (see
/// `explain` and `run_module`), never by outcome class alone.
pub const ALLOWED: &[(&str, &str)] = &[
    (
        "fuel",
        "engine difference: one engine ran out of fuel where the other did not, or both did after \
         different numbers of import calls (the host events of one are a prefix of the other's); \
         wasmi and Wasmtime charge different fuel per instruction and per host call",
    ),
    (
        "stack-limit",
        "engine difference: one engine exhausted its call stack where the other did not, or both \
         did at different depths (the host events of one are a prefix of the other's): wasmi \
         limits recursion depth, Wasmtime the native stack size (512 KiB)",
    ),
    (
        "wasmi-select",
        "engine bug (wasmi 2.0.0 miscompiles core wasm): a `select` whose condition is \
         `x == 0` / `x != 0` (i32.eqz, i32.eq/ne with 0) picks the wrong operand when a \
         non-constant value was pushed and dropped before it. Reproducer: (module (global (mut \
         i32) (i32.const 9)) (func (export \"f\") (result i32) (local i32) global.get 0 drop \
         i32.const 10 i32.const 20 local.get 0 i32.eqz select)) returns 20 on wasmi, 10 by the \
         spec. Recognized when the same module with `i32.const 0 i32.or` before every select \
         (`guard_selects`, same semantics) agrees with Wasmtime on the whole run",
    ),
    (
        "lift-length-limit",
        "spec vs Wasmtime 48: definitions.py traps a lifted string/list whose byte length exceeds \
         2^28-1 before checking alignment and bounds (StringTooLong/ListTooLong, since \
         component-model #624); Wasmtime's lift has no such limit and reports the alignment or \
         bounds failure (component-model #624; expectations/wasmtime.toml). Recognized: \
         wasmi (reference) StringTooLong/ListTooLong vs Wasmtime OutOfBounds/MisalignedPointer",
    ),
    (
        "list-bounds-before-alignment",
        "spec vs Wasmtime 48: definitions.py's load_list_from_range checks the alignment of a \
         list pointer before its bounds; Wasmtime's load_list (values.rs) and WasmList::new \
         check bounds first (expectations/wasmtime.toml). Recognized: reference MisalignedPointer \
         from load_list_from_range vs Wasmtime `list pointer/length out of bounds of memory`",
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
        self.mismatches.iter().filter(|m| m.allowed.is_none()).collect()
    }
}

/// Whether the host implements (import) or calls (export) a function: no handles anywhere.
pub fn handle_free(ft: &FuncType) -> bool {
    !ft.params.iter().any(|(_, t)| has_handles(t)) && !ft.result.as_ref().is_some_and(has_handles)
}

fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            bail!("{what} panicked: {msg}")
        }
    }
}

/// A world ready for arbitrary guests.
pub struct SmithWorld {
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
        let shape = no_panic("wit_component::dummy_module", || {
            Ok(wit_component::dummy_module(&bare.resolve, bare_world, mangling))
        })?;
        let artifact = Arc::new(Artifact::of(&prepared)?);
        Ok(SmithWorld { prepared, artifact, bare, bare_world, shape })
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
            no_panic("wasm-smith", || wasm_smith::Module::new(config, u).map_err(|e| anyhow!("wasm-smith: {e}")))?;
        Ok(module.to_bytes())
    }

    /// The component of a core module of this world.
    pub fn componentize(&self, core: &[u8]) -> Result<Vec<u8>> {
        no_panic("componentize", || {
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
// wasmi: the core module with the reference host.

/// Store data of a wasmi run.
struct WasmiCtx {
    /// The reference host and the guest's memory, realloc and exports.
    core: CoreData,
    /// What the host's imports return, and what the host saw (shared with the host state).
    planned: Arc<Mutex<PlannedHost>>,
    seed: u64,
    next_import: u64,
    /// Set by an unimplemented import when it traps.
    unimplemented: Option<u32>,
    /// The module's start function is running.
    in_start: bool,
    /// Destructor calls in progress (a destructor may drop another resource).
    dtor_depth: u32,
}

impl HasCore for WasmiCtx {
    fn core(&self) -> &CoreData {
        &self.core
    }
    fn core_mut(&mut self) -> &mut CoreData {
        &mut self.core
    }
}

/// BuildTargets.md: "no memory-needing import calls during the core `start` function (host must
/// trap eagerly)". (A component made by wit-component traps the same way: such imports are
/// lowered through a table that is filled only after the module is instantiated, so Wasmtime
/// reports `uninitialized element`, a core trap.)
pub const START_IMPORT_TRAP: &str = "a memory-needing import was called during the core start function";

/// Most nested destructor calls on wasmi (each is a native-stack recursion of the harness).
const MAX_DTOR_DEPTH: u32 = 64;

/// How an import closure ended besides returning flat values.
enum ImportStop {
    Trap(Trap),
    Unimplemented(Trap),
}

/// The message of the trap that stops an import the host does not implement.
const UNIMPLEMENTED: &str = "unimplemented import";

/// `canon lower` of a function the host does not implement: the arguments are lifted (as
/// Wasmtime does before calling any host function), then the call stops.
fn lift_then_stop(guest: &mut WasmiGuest<'_, WasmiCtx>, ft: &FuncType, flats: Vec<Flat>) -> ImportStop {
    let encoding = guest.host().encoding;
    let stop = |_: &mut WasmiGuest<'_, WasmiCtx>, _| Err(Trap::new(TrapKind::Unclassified, UNIMPLEMENTED));
    match canon_lower(encoding, guest, ft, flats, stop) {
        Err(t) if t.kind == TrapKind::Unclassified && t.message == UNIMPLEMENTED => ImportStop::Unimplemented(t),
        Err(t) => ImportStop::Trap(t),
        Ok(_) => ImportStop::Trap(Trap::new(TrapKind::Assertion, "an unimplemented import returned")),
    }
}

/// `canon resource.drop` of a guest-defined resource: an own handle's destructor (the guest's
/// dtor export) runs directly, as definitions.py's `rt.dtor(h.rep)` for `inst is rt.impl`.
fn drop_guest_resource(
    guest: &mut WasmiGuest<'_, WasmiCtx>,
    rt: &ResourceType,
    dtor: Option<&str>,
    flats: &[Flat],
) -> Result<Vec<Flat>, Trap> {
    let Some(Flat::I32(i)) = flats.first().copied() else {
        return Err(Trap::new(TrapKind::Assertion, format!("resource.drop argument {flats:?}")));
    };
    match canon_resource_drop(&mut guest.host().inst, rt, i)? {
        DropEffect::Destructor { rep, local: true, .. } => {
            if let Some(dtor) = dtor {
                guest.call_export(dtor, &[Flat::I32(rep)])?;
            }
        }
        DropEffect::Destructor { rep, local: false, .. } => {
            guest.host().host.dtor(rt, rep).map_err(|e| Trap::new(TrapKind::Assertion, format!("{e:#}")))?
        }
        DropEffect::None => {}
    }
    Ok(vec![])
}

fn wasmi_linker(engine: &wasmi::Engine, sw: &SmithWorld) -> Result<wasmi::Linker<WasmiCtx>> {
    let prepared = &sw.prepared;
    let mut linker = wasmi::Linker::<WasmiCtx>::new(engine);
    for (k, (imp, ty)) in prepared.guest.imports.iter().zip(&prepared.imports).enumerate() {
        let (memory_name, realloc_name) = (prepared.guest.memory.clone(), prepared.guest.realloc.clone());
        let ty = ty.clone();
        let dtor = match &ty {
            ImportType::ResourceDrop(rt) => prepared.dtors.iter().find(|(id, _)| *id == rt.id).map(|(_, n)| n.clone()),
            _ => None,
        };
        let thunk = k as u32;
        let needs_memory = match &ty {
            ImportType::Func { ft, .. } => requirements(ft, Context::Lower).0,
            _ => false,
        };
        let f = move |mut caller: wasmi::Caller<'_, WasmiCtx>,
                      params: &[wasmi::Val],
                      results: &mut [wasmi::Val]|
              -> Result<(), wasmi::Error> {
            if needs_memory && caller.data().in_start {
                return Err(host_err(Trap::new(TrapKind::GuestTrap, START_IMPORT_TRAP)));
            }
            let flats = params.iter().map(flat_of).collect::<Result<Vec<_>, _>>().map_err(host_err)?;
            // During the start function the store knows none of the guest's exports yet.
            if caller.data().core.memory.is_none() {
                let memory = caller.get_export(&memory_name).and_then(wasmi::Extern::into_memory);
                let realloc = caller.get_export(&realloc_name).and_then(wasmi::Extern::into_func);
                let core = &mut caller.data_mut().core;
                (core.memory, core.realloc) = (memory, realloc);
            }
            if let Some(name) = &dtor
                && !caller.data().core.exports.contains_key(name)
                && let Some(f) = caller.get_export(name).and_then(wasmi::Extern::into_func)
            {
                let mut exports = (*caller.data().core.exports).clone();
                exports.insert(name.clone(), f);
                caller.data_mut().core.exports = Arc::new(exports);
            }
            let (seed, n, planned) = {
                let d = caller.data_mut();
                let n = d.next_import;
                if matches!(&ty, ImportType::Func { ft, .. } if handle_free(ft)) {
                    d.next_import += 1;
                }
                (d.seed, n, d.planned.clone())
            };
            let guest_drop = matches!(&ty, ImportType::ResourceDrop(rt) if rt.impl_instance == GUEST_INSTANCE);
            if guest_drop {
                // Each nested destructor call is a nested wasmi call on the native stack.
                if caller.data().dtor_depth >= MAX_DTOR_DEPTH {
                    return Err(host_err(Trap::new(
                        TrapKind::GuestTrap,
                        "wasmi: call stack exhausted (nested destructor calls)",
                    )));
                }
                caller.data_mut().dtor_depth += 1;
            }
            let r = {
                let mut guest = WasmiGuest { ctx: caller.as_context_mut() };
                match &ty {
                    ImportType::Func { ft, .. } if !handle_free(ft) => Err(lift_then_stop(&mut guest, ft, flats)),
                    ImportType::Func { ft, .. } => match import_result(seed, n, ft.result.as_ref()) {
                        Ok(v) => {
                            let mut planned = planned.lock().unwrap_or_else(|e| e.into_inner());
                            planned.results.clear();
                            planned.results.push_back(v);
                            drop(planned);
                            serve_import(&mut guest, thunk, flats).map_err(ImportStop::Trap)
                        }
                        Err(e) => Err(ImportStop::Trap(Trap::new(TrapKind::Assertion, e))),
                    },
                    ImportType::ResourceDrop(rt) if rt.impl_instance == GUEST_INSTANCE => {
                        drop_guest_resource(&mut guest, rt, dtor.as_deref(), &flats).map_err(ImportStop::Trap)
                    }
                    _ => serve_import(&mut guest, thunk, flats).map_err(ImportStop::Trap),
                }
            };
            if guest_drop {
                caller.data_mut().dtor_depth -= 1;
            }
            let out = match r {
                Ok(out) => out,
                Err(ImportStop::Trap(t)) => return Err(host_err(t)),
                Err(ImportStop::Unimplemented(t)) => {
                    caller.data_mut().unimplemented = Some(thunk);
                    return Err(host_err(t));
                }
            };
            for (slot, f) in results.iter_mut().zip(out) {
                *slot = wasmi_val(f);
            }
            Ok(())
        };
        linker
            .func_new(&imp.module, &imp.name, func_type(&imp.sig), f)
            .map_err(|e| anyhow!("linking {}::{}: {e}", imp.module, imp.name))?;
    }
    Ok(linker)
}

/// How a wasmi failure ended a call: an unimplemented import, or a trap.
fn wasmi_ending(store: &mut wasmi::Store<WasmiCtx>, t: Trap) -> Ending {
    match store.data_mut().unimplemented.take() {
        Some(k) => Ending::Unimplemented(k),
        None => Ending::Trapped(t),
    }
}

/// What the planned host saw so far.
fn take_events(planned: &Arc<Mutex<PlannedHost>>) -> Vec<HostEvent> {
    std::mem::take(&mut planned.lock().unwrap_or_else(|e| e.into_inner()).events)
}

/// Run a module on wasmi. `Err`: wasmi rejects the module, or the harness failed.
fn run_wasmi(engine: &wasmi::Engine, sw: &SmithWorld, core: &[u8], seed: u64, plan: &[SmithCall]) -> Result<EngineRun> {
    let prepared = &sw.prepared;
    let module = wasmi::Module::new(engine, core).map_err(|e| anyhow!("wasmi rejects the module: {e}"))?;
    let linker = wasmi_linker(engine, sw)?;
    let planned = Arc::new(Mutex::new(PlannedHost::default()));
    let ctx = WasmiCtx {
        core: CoreData::new(HostState::new(&sw.artifact, Box::new(planned.clone()))),
        planned: planned.clone(),
        seed,
        next_import: 0,
        unimplemented: None,
        in_start: true,
        dtor_depth: 0,
    };
    let mut store = wasmi::Store::new(engine, ctx);
    store.set_fuel(FUEL).map_err(|e| anyhow!("{e}"))?;
    let mut run = EngineRun::default();
    let started = linker.instantiate_and_start(&mut store, &module);
    store.data_mut().in_start = false;
    let instance = match started {
        Ok(i) => i,
        Err(e) if matches!(e.kind(), wasmi::errors::ErrorKind::Linker(_)) => bail!("wasmi cannot link: {e}"),
        Err(e) => {
            let t = wasmi_trap(e);
            if t.kind == TrapKind::Assertion {
                bail!("harness assertion in the reference host: {t}");
            }
            run.init = Some(wasmi_ending(&mut store, t));
            run.init_events = take_events(&planned);
            return Ok(run);
        }
    };
    attach(&mut store, &instance, sw.artifact.core.as_ref().ok_or_else(|| anyhow!("no core module"))?)?;
    let init_name = prepared.scheme.initialize();
    if store.data().core.exports.contains_key(init_name) {
        // wit-component runs `_initialize` at instantiation, after the start function.
        match (WasmiGuest { ctx: store.as_context_mut() }).call_export(init_name, &[]) {
            Err(t) if t.kind == TrapKind::Assertion => bail!("harness assertion in the reference host: {t}"),
            Err(t) => run.init = Some(wasmi_ending(&mut store, t)),
            Ok(_) => {}
        }
    }
    run.init_events = take_events(&planned);
    if run.init.is_some() {
        return Ok(run);
    }
    for call in plan {
        store.set_fuel(FUEL).map_err(|e| anyhow!("{e}"))?;
        let export = &sw.artifact.exports[call.export as usize];
        let r = call_export(&mut WasmiGuest { ctx: store.as_context_mut() }, export, &call.args);
        let events = take_events(&planned);
        let ending = match r {
            Ok(v) => Ending::Returned(v),
            Err(t) if t.kind == TrapKind::Assertion => bail!("harness assertion in the reference host: {t}"),
            Err(t) => wasmi_ending(&mut store, t),
        };
        let stop = !matches!(ending, Ending::Returned(_));
        run.calls.push((ending, events));
        if stop {
            break;
        }
    }
    Ok(run)
}

// ---------------------------------------------------------------------------------------------
// Wasmtime: the component.

/// A host function of a type the host does not implement was called.
#[derive(Debug)]
struct Unimplemented(u32);

impl std::fmt::Display for Unimplemented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unimplemented import {}", self.0)
    }
}

impl std::error::Error for Unimplemented {}

struct WasmtimeCtx {
    seed: u64,
    next_import: u64,
    events: Vec<HostEvent>,
}

/// Wasmtime's error as an ending (`Err`: a failure of the harness).
fn wasmtime_ending(e: &wasmtime::Error) -> Result<Ending> {
    if let Some(h) = e.downcast_ref::<HarnessError>() {
        bail!("{h}");
    }
    if let Some(Unimplemented(k)) = e.downcast_ref::<Unimplemented>() {
        return Ok(Ending::Unimplemented(*k));
    }
    Ok(Ending::Trapped(classify(e)))
}

fn wasmtime_linker(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
    prepared: &Prepared,
) -> Result<wasmtime::component::Linker<WasmtimeCtx>> {
    use wasmtime::component::Val;
    let mut linker = wasmtime::component::Linker::<WasmtimeCtx>::new(engine);
    for (thunk, (imp, ty)) in prepared.guest.imports.iter().zip(&prepared.imports).enumerate() {
        let (ImportKind::Func { interface, func }, ImportType::Func { ft, .. }) = (&imp.kind, ty) else { continue };
        let ft = ft.clone();
        let thunk = thunk as u32;
        let host = move |mut store: wasmtime::StoreContextMut<'_, WasmtimeCtx>,
                         _ty: wasmtime::component::types::ComponentFunc,
                         params: &[Val],
                         results: &mut [Val]|
              -> wasmtime::Result<()> {
            if !handle_free(&ft) {
                return Err(wasmtime::Error::new(Unimplemented(thunk)));
            }
            let harness = |e: anyhow::Error| wasmtime::Error::new(HarnessError(format!("{e:#}")));
            let args = ft
                .params
                .iter()
                .zip(params)
                .map(|((_, t), v)| val_to_value(t, v))
                .collect::<Result<Vec<_>>>()
                .map_err(harness)?;
            let ctx = store.data_mut();
            ctx.events.push(HostEvent::Import { thunk, args });
            let n = ctx.next_import;
            ctx.next_import += 1;
            let result = import_result(ctx.seed, n, ft.result.as_ref()).map_err(|e| harness(anyhow!(e)))?;
            match (&ft.result, result, results.first_mut()) {
                (Some(t), Some(v), Some(slot)) => *slot = value_to_val(t, &v).map_err(harness)?,
                (None, None, None) => {}
                _ => return Err(harness(anyhow!("the result does not match the import's type"))),
            }
            Ok(())
        };
        match interface {
            Some(iface) => {
                let name = prepared.interface_name(*iface, true)?;
                linker.instance(&name)?.func_new(func, host)?;
            }
            None => {
                linker.root().func_new(func, host)?;
            }
        }
    }
    // Imported resource types (host resources the guest can only drop).
    linker.define_unknown_imports_as_traps(component)?;
    Ok(linker)
}

/// Run a component on Wasmtime. `Err`: Wasmtime rejects the component, or the harness failed.
fn run_wasmtime(
    engine: &wasmtime::Engine,
    sw: &SmithWorld,
    bytes: &[u8],
    seed: u64,
    plan: &[SmithCall],
) -> Result<EngineRun> {
    use wasmtime::component::{Component, Val};
    let prepared = &sw.prepared;
    let component = Component::new(engine, bytes).map_err(|e| anyhow!("Wasmtime rejects the component: {e:#}"))?;
    let linker = wasmtime_linker(engine, &component, prepared)?;
    let pre = linker.instantiate_pre(&component).map_err(|e| anyhow!("Wasmtime cannot link: {e:#}"))?;
    let mut exports = vec![];
    for e in &prepared.guest.exports {
        if let EntryKind::Func { interface, func } = &e.kind {
            let parent = match interface {
                Some(i) => {
                    let name = prepared.interface_name(*i, false)?;
                    Some(component.get_export_index(None, &name).ok_or_else(|| anyhow!("no export {name}"))?)
                }
                None => None,
            };
            exports.push(component.get_export_index(parent.as_ref(), func).ok_or_else(|| anyhow!("no export {func}"))?);
        }
    }
    let mut store = wasmtime::Store::new(engine, WasmtimeCtx { seed, next_import: 0, events: vec![] });
    store.set_fuel(FUEL)?;
    // Wasmtime caps live handles per store at 100,000 (a DoS limit); the spec's limit is the
    // table's MAX_LENGTH = 2^28-1, which the index check enforces.
    store.set_max_component_handles(1 << 28);
    let mut run = EngineRun::default();
    let instance = match pre.instantiate(&mut store) {
        Ok(i) => i,
        Err(e) => {
            run.init = Some(wasmtime_ending(&e)?);
            run.init_events = std::mem::take(&mut store.data_mut().events);
            return Ok(run);
        }
    };
    run.init_events = std::mem::take(&mut store.data_mut().events);
    for call in plan {
        store.set_fuel(FUEL)?;
        let (_, ft) = &prepared.exports[call.export as usize];
        let f = instance
            .get_func(&mut store, exports[call.export as usize])
            .ok_or_else(|| anyhow!("export {} is not a function", call.export))?;
        let args =
            ft.params.iter().zip(&call.args).map(|((_, t), v)| value_to_val(t, v)).collect::<Result<Vec<_>>>()?;
        let mut results = vec![Val::Bool(false); ft.result.iter().count()];
        let ending = match f.call(&mut store, &args, &mut results) {
            Ok(()) => Ending::Returned(match (&ft.result, results.first()) {
                (Some(t), Some(v)) => Some(val_to_value(t, v)?),
                _ => None,
            }),
            Err(e) => wasmtime_ending(&e)?,
        };
        let events = std::mem::take(&mut store.data_mut().events);
        let stop = !matches!(ending, Ending::Returned(_));
        run.calls.push((ending, events));
        if stop {
            break;
        }
    }
    Ok(run)
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

/// The allow-list entry that explains a mismatch (see `ALLOWED`), from the runs alone.
fn explain(
    (ea, va): (Option<&Ending>, &[HostEvent]),
    (eb, vb): (Option<&Ending>, &[HostEvent]),
) -> Option<&'static str> {
    let trap = |e: Option<&Ending>| match e {
        Some(Ending::Trapped(t)) => Some(t.clone()),
        _ => None,
    };
    if let (Some(a), Some(b)) = (trap(ea), trap(eb)) {
        if matches!(b.kind, TrapKind::StringTooLong | TrapKind::ListTooLong)
            && matches!(a.kind, TrapKind::OutOfBounds | TrapKind::MisalignedPointer)
        {
            return Some("lift-length-limit");
        }
        if b.kind == TrapKind::MisalignedPointer
            && b.message.starts_with("load_list_from_range")
            && a.kind == TrapKind::OutOfBounds
            && a.message.contains("list pointer/length out of bounds")
        {
            return Some("list-bounds-before-alignment");
        }
    }
    if (ea.is_some_and(is_fuel) || eb.is_some_and(is_fuel)) && prefix_related(va, vb) {
        return Some("fuel");
    }
    if (ea.is_some_and(is_stack) || eb.is_some_and(is_stack)) && prefix_related(va, vb) {
        return Some("stack-limit");
    }
    None
}

fn describe_events(events: &[HostEvent]) -> String {
    match events.len() {
        0 => String::new(),
        n if n <= 3 => format!(" after host events {events:?}"),
        n => format!(" after {n} host events {:?} ...", &events[..3]),
    }
}

/// The first difference between two runs of one module.
struct RunDifference {
    call: Option<u64>,
    what: String,
    wasmtime: String,
    wasmi: String,
    allowed: Option<&'static str>,
}

/// An instantiation that failed on both engines.
struct InitFailed {
    /// "wasmtime class / wasmi class".
    classes: String,
    /// The start of Wasmtime's message.
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

/// Compare the runs of one module on Wasmtime (`wt`) and wasmi (`wi`).
fn judge(sw: &SmithWorld, plan: &[SmithCall], wt: &EngineRun, wi: &EngineRun) -> Verdict {
    let mut v = Verdict::default();
    match (&wt.init, &wi.init) {
        (None, None) => {
            if !events_match(&wt.init_events, &wi.init_events) {
                v.difference = Some(RunDifference {
                    call: None,
                    what: "host events during instantiation differ".into(),
                    wasmtime: format!("instantiated{}", describe_events(&wt.init_events)),
                    wasmi: format!("instantiated{}", describe_events(&wi.init_events)),
                    allowed: explain((None, &wt.init_events), (None, &wi.init_events)),
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
                wasmtime: d(a, &wt.init_events),
                wasmi: d(b, &wi.init_events),
                allowed: explain((a.as_ref(), &wt.init_events), (b.as_ref(), &wi.init_events)),
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
            wasmtime: format!("{}{}", ea.describe(), describe_events(va)),
            wasmi: format!("{}{}", eb.describe(), describe_events(vb)),
            allowed: explain((Some(ea), va), (Some(eb), vb)),
        });
        break;
    }
    v
}

/// `core` with `i32.const 0; i32.or` before every `select` (the condition is unchanged): the
/// form of a module that wasmi 2.0.0 compiles correctly (see `ALLOWED`, "wasmi-select").
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

/// Run one module of one world (already prepared) and fold the result into `s`.
fn run_module(engines: &Engines, sw: &SmithWorld, world_seed: u64, m: u64, calls: u64, s: &mut SmithSummary) {
    let fail = |s: &mut SmithSummary, stage: &str, e: anyhow::Error| {
        s.setup_failures.push((world_seed, m, stage.to_string(), format!("{e:#}")));
    };
    let seed = mix(&[world_seed, m]);
    let data = seed_bytes(seed, MODULE_INPUT);
    let core = match sw.generate(&mut Unstructured::new(&data)) {
        Ok(c) => c,
        Err(e) => return fail(s, "generate", e),
    };
    s.modules_generated += 1;
    let component = match sw.componentize(&core) {
        Ok(c) => c,
        Err(e) => return fail(s, "componentize", e),
    };
    s.componentized += 1;
    let plan = match plan_calls(&sw.prepared, seed, calls) {
        Ok(p) => p,
        Err(e) => return fail(s, "plan", e),
    };
    let wt = match no_panic("wasmtime run", || run_wasmtime(&engines.wasmtime, sw, &component, seed, &plan)) {
        Ok(r) => r,
        Err(e) => return fail(s, "wasmtime", e),
    };
    let wi = match no_panic("wasmi run", || run_wasmi(&engines.wasmi, sw, &core, seed, &plan)) {
        Ok(r) => r,
        Err(e) => return fail(s, "wasmi", e),
    };
    s.loaded += 1;
    let v = judge(sw, &plan, &wt, &wi);
    if v.instantiated {
        s.instantiated += 1;
    }
    if let Some(InitFailed { classes, message, differ }) = v.init_failed {
        *s.instantiation_failures.entry(classes).or_default() += 1;
        *s.instantiation_messages.entry(message).or_default() += 1;
        if let Some((a, mut b)) = differ {
            // Is it wasmi's select miscompilation?
            let rerun = guard_selects(&core)
                .and_then(|g| no_panic("wasmi run", || run_wasmi(&engines.wasmi, sw, &g, seed, &plan)));
            if let Ok(EngineRun { init: Some(e), .. }) = rerun {
                b.push_str(&format!(" (guarded selects: {})", e.describe()));
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
    if d.allowed.is_none() {
        // wasmi's select miscompilation: the guarded module, same semantics, agrees in full.
        let rerun =
            guard_selects(&core).and_then(|g| no_panic("wasmi run", || run_wasmi(&engines.wasmi, sw, &g, seed, &plan)));
        if let Ok(wi2) = rerun
            && judge(sw, &plan, &wt, &wi2).difference.is_none()
        {
            d.allowed = Some("wasmi-select");
        }
    }
    s.mismatches.push(SmithMismatch {
        world_seed,
        module: m,
        call: d.call,
        what: d.what,
        wasmtime: d.wasmtime,
        wasmi: d.wasmi,
        replay: format!("witness smith --seed {world_seed} --worlds 1 --module {m} --calls {calls}"),
        allowed: d.allowed,
    });
}

/// The engines, built once per campaign.
struct Engines {
    wasmtime: wasmtime::Engine,
    wasmi: wasmi::Engine,
}

impl Engines {
    fn new() -> Result<Engines> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true).consume_fuel(true);
        let wasmtime = wasmtime::Engine::new(&config)?;
        let mut config = wasmi::Config::default();
        config.consume_fuel(true);
        Ok(Engines { wasmtime, wasmi: wasmi::Engine::new(&config) })
    }
}

/// The world of seed `world_seed` (as `witness diff` generates it), ready for arbitrary guests.
pub fn smith_world(world_seed: u64) -> Result<SmithWorld> {
    let (world, scheme, encoding) = world_of(world_seed, &DiffConfig::default())?;
    SmithWorld::new(&world.wit, Some("w"), scheme, encoding)
}

fn campaign(seed: u64, worlds: u64, modules: impl Fn() -> Vec<u64>, calls: u64) -> Result<SmithSummary> {
    let engines = Engines::new()?;
    let mut s = SmithSummary::default();
    for w in 0..worlds {
        let world_seed = seed.wrapping_add(w);
        let sw = match no_panic("world", || smith_world(world_seed)) {
            Ok(sw) => sw,
            Err(e) => {
                s.world_failures.push((world_seed, format!("{e:#}")));
                continue;
            }
        };
        s.worlds += 1;
        for m in modules() {
            run_module(&engines, &sw, world_seed, m, calls, &mut s);
        }
    }
    Ok(s)
}

/// Run `modules_per_world` arbitrary guests of each of `worlds` worlds (seeds `seed`,
/// `seed + 1`, ...; the worlds of `witness diff`), `calls` calls each, on Wasmtime and wasmi.
/// `Err` only when the engines cannot be set up; everything a guest does is in the summary.
pub fn run_smith_campaign(seed: u64, worlds: u64, modules_per_world: u64, calls: u64) -> Result<SmithSummary> {
    campaign(seed, worlds, || (0..modules_per_world).collect(), calls)
}

/// Run module `module` of world `world_seed` again (the replay of a mismatch).
pub fn run_smith_module(world_seed: u64, module: u64, calls: u64) -> Result<SmithSummary> {
    campaign(world_seed, 1, || vec![module], calls)
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
