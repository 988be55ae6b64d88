//! The bodies of the fuzz targets (fuzz/fuzz_targets/), as plain functions: the
//! `fuzz_target!` binaries call them, the fuzz crate's smoke test runs them on seeded inputs, and
//! `witness fuzz-replay` runs them on a crash input without the instrumented build. A body
//! signals a finding by panicking, with what it found.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arbitrary::Unstructured;

use crate::diff::{DiffConfig, fused_of, world_of};
use crate::encode::names::NameScheme;
use crate::engine::{Selection, compile};
use crate::oracle::{Difference, compare, compare_fused};
use crate::plan::fused::arbitrary_fused_case;
use crate::plan::resources::arbitrary_resource_steps;
use crate::plan::{Misses, PlanConfig, StepPlan, arbitrary_call, build_case};
use crate::reference::concurrency::subtask::Subtask;
use crate::reference::context::{BorrowScope, ComponentInstance, LiftLowerContext};
use crate::reference::flatten::flatten_type;
use crate::reference::lift_flat::{CoreValueIter, lift_flat};
use crate::reference::types::{CoreType, InstanceId, PtrType, StringEncoding};
use crate::reference::{BumpHeap, Flat, TrapKind};
use crate::runtime::driver::run_case;
use crate::runtime::fused::{FusedCase, FusedPrepared};
use crate::runtime::{Artifact, Compiled, Prepared, Unsupported};
use crate::suite::expectations::Expectations;
use crate::world::arbitrary::{TypeConfig, arbitrary_type};
use crate::world::generate::{GeneratedWorld, WorldConfig, arbitrary_world};

/// A target's body: whether the input ran a case; a finding panics.
pub type Body = fn(&[u8]) -> bool;

/// The fuzz targets by name, each with its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("reference_lift", |data| {
        reference_lift(data);
        true
    }),
    ("differential", differential),
    ("differential_cached", differential_cached),
    ("async_differential", async_differential),
    ("resource_sequence", resource_sequence),
    ("composition", composition),
    ("async_reference", async_reference),
    ("wave_value", wave_value),
    ("type_expression", |data| {
        type_expression(data);
        true
    }),
    ("suite_file", suite_file),
    ("expectations_file", expectations_file),
    ("wit_text", wit_text),
    ("wit_package", wit_package),
    ("adapter_reply", adapter_reply),
    ("smith_guest", smith_guest),
];

/// Arbitrary type + arbitrary flat values + arbitrary memory → the reference's `lift_flat`
/// returns a value or a guest-visible trap; never a panic, never a broken spec assertion.
pub fn reference_lift(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(t) = arbitrary_type(&mut u, &TypeConfig::default()) else { return };
    let mut flats = vec![];
    for ct in flatten_type(&t, PtrType::I32) {
        let f = match ct {
            CoreType::I32 => u.arbitrary().map(Flat::I32),
            CoreType::I64 => u.arbitrary().map(Flat::I64),
            CoreType::F32 => u.arbitrary().map(|b| Flat::F32(f32::from_bits(b))),
            CoreType::F64 => u.arbitrary().map(|b| Flat::F64(f64::from_bits(b))),
        };
        let Ok(f) = f else { return };
        flats.push(f);
    }
    let Ok(enc) = u.choose(&StringEncoding::ALL).copied() else { return };
    let mut heap = BumpHeap::new(4096, 16);
    let bytes = u.take_rest();
    let _ = heap.preload(0, &bytes[..bytes.len().min(4096)]);
    let mut inst = ComponentInstance::new(InstanceId(1));
    let mut subtask = Subtask::default();
    let mut cx = LiftLowerContext::new(enc, &mut heap, &mut inst, BorrowScope::Subtask(&mut subtask));
    if let Err(trap) = lift_flat(&mut cx, &mut CoreValueIter::new(flats), &t) {
        assert_ne!(trap.kind, TrapKind::Assertion, "{trap}");
    }
}

/// The repository's expectations files, built in: a fuzz target runs where its sources may
/// not be (ClusterFuzz copies the binaries only). A test checks that these are all the files of
/// expectations/.
pub const EXPECTATIONS_FILES: &[(&str, &str)] = &[
    ("expectations/core.toml", include_str!("../../expectations/core.toml")),
    ("expectations/jco.toml", include_str!("../../expectations/jco.toml")),
    ("expectations/wasmtime-fused.toml", include_str!("../../expectations/wasmtime-fused.toml")),
    ("expectations/wasmtime.toml", include_str!("../../expectations/wasmtime.toml")),
];

/// The built-in expectations files, parsed once.
pub fn expectations() -> &'static Expectations {
    static EXPECTATIONS: OnceLock<Expectations> = OnceLock::new();
    EXPECTATIONS.get_or_init(|| {
        let texts: Vec<(PathBuf, String)> =
            EXPECTATIONS_FILES.iter().map(|(path, text)| (PathBuf::from(path), text.to_string())).collect();
        Expectations::parse(&texts).unwrap_or_else(|e| panic!("{e:#}"))
    })
}

/// Input → a generated world (name scheme and string encoding too) and one plan (a call, or
/// resource steps) → the reference and every default runtime run the case; a difference
/// the expectations do not explain panics, with the world's WIT. So does any harness failure
/// (preparing the world, building the case, instantiating or running an engine): those are
/// bugs of witness. Input that runs out before a world has a plan is skipped. Returns whether
/// a case ran.
pub fn differential(data: &[u8]) -> bool {
    let mut u = Unstructured::new(data);
    let Ok(scheme) = u.choose(&[NameScheme::Standard, NameScheme::Legacy]).copied() else { return false };
    let Ok(encoding) = u.choose(&StringEncoding::ALL).copied() else { return false };
    let Ok(world) = arbitrary_world(&mut u, &WorldConfig::default()) else { return false };
    let mut compiled = CompiledWorld::new(world.wit, scheme, encoding, "input world");
    compiled.check(&mut u, Plans::Any)
}

/// How many campaign worlds `differential_cached` picks among.
pub const POOL_WORLDS: u64 = 64;

thread_local! {
    /// The campaign worlds of `differential_cached`, each compiled on its first use and kept
    /// for the process (libFuzzer runs the target on one thread).
    static POOL: std::cell::RefCell<Vec<Option<CompiledWorld>>> =
        std::cell::RefCell::new((0..POOL_WORLDS).map(|_| None).collect());
}

/// Input → one of the first `POOL_WORLDS` worlds of the differential campaign (`witness diff
/// --seed N`: its world, name scheme and encoding) and one plan from the rest of the input →
/// the same check as `differential`. Each world is compiled once a process, so an input costs
/// instantiations and calls only. Returns whether a case ran.
pub fn differential_cached(data: &[u8]) -> bool {
    with_pool_world(data, Plans::Any)
}

/// How many worlds of the async campaign `async_differential` picks among.
pub const ASYNC_POOL_WORLDS: u64 = 32;

thread_local! {
    /// The async campaign's worlds of `async_differential`, each compiled on its first use.
    static ASYNC_POOL: std::cell::RefCell<Vec<Option<CompiledWorld>>> =
        std::cell::RefCell::new((0..ASYNC_POOL_WORLDS).map(|_| None).collect());
}

/// 🔀 Input → one of the first `ASYNC_POOL_WORLDS` worlds of the async campaign (`witness diff
/// --async --seed N`) and one plan from the rest → the check of `differential_cached`: async
/// exports that yield, call imports and return through task.return, on the reference and every
/// default runtime that runs async worlds. Returns whether a case ran.
pub fn async_differential(data: &[u8]) -> bool {
    let mut u = Unstructured::new(data);
    let Ok(index) = u.int_in_range(0..=ASYNC_POOL_WORLDS - 1) else { return false };
    ASYNC_POOL.with_borrow_mut(|pool| {
        let compiled = pool[index as usize].get_or_insert_with(|| {
            let (wit, scheme, encoding, origin) =
                async_campaign_world(index).unwrap_or_else(|e| panic!("harness failure: {e:#}"));
            CompiledWorld::new(wit, scheme, encoding, &origin)
        });
        compiled.check(&mut u, Plans::Any)
    })
}

/// Input → one of the campaign's first worlds, as `differential_cached` picks it, and resource
/// steps from the rest of the input (own and borrow handles passed both ways, drops, built-in
/// calls; a world without resources gives way to the next one that has some) → the same check. Returns whether a case
/// ran.
pub fn resource_sequence(data: &[u8]) -> bool {
    with_pool_world(data, Plans::Resources)
}

/// 🔀 The async campaign world of seed `index + 1`: its WIT, scheme, encoding and origin.
fn async_campaign_world(index: u64) -> anyhow::Result<(String, NameScheme, StringEncoding, String)> {
    let seed = index + 1;
    let (world, scheme, encoding) = world_of(seed, &DiffConfig::asynchronous())?;
    Ok((world.wit, scheme, encoding, format!("async campaign world {seed} (witness diff --async --seed {seed})")))
}

/// The campaign world of seed `index + 1`: its WIT, scheme, encoding and origin.
fn campaign_world(index: u64) -> anyhow::Result<(String, NameScheme, StringEncoding, String)> {
    let seed = index + 1;
    let (world, scheme, encoding) = world_of(seed, &DiffConfig::default())?;
    Ok((world.wit, scheme, encoding, format!("campaign world {seed} (witness diff --seed {seed})")))
}

/// `check` on the pool world the input's first byte picks, with the rest of the input. For
/// resource steps, a world without resources gives way to the next pool world that has some.
fn with_pool_world(data: &[u8], plans: Plans) -> bool {
    let mut u = Unstructured::new(data);
    let Ok(index) = u.int_in_range(0..=POOL_WORLDS - 1) else { return false };
    POOL.with_borrow_mut(|pool| {
        for k in 0..POOL_WORLDS {
            let i = (index + k) % POOL_WORLDS;
            let compiled = pool[i as usize].get_or_insert_with(|| {
                let (wit, scheme, encoding, origin) =
                    campaign_world(i).unwrap_or_else(|e| panic!("harness failure: {e:#}"));
                CompiledWorld::new(wit, scheme, encoding, &origin)
            });
            if plans == Plans::Any || compiled.artifact.has_resources() {
                return compiled.check(&mut u, plans);
            }
        }
        false
    })
}

thread_local! {
    /// The compositions of the campaign worlds (`composition`): `Some(None)` for a world with
    /// no composition to build (it exports no interface, or one witness cannot compose yet).
    static COMPOSITIONS: std::cell::RefCell<Vec<Option<Option<CompiledComposition>>>> =
        std::cell::RefCell::new((0..POOL_WORLDS).map(|_| None).collect());
}

/// Input → one of the campaign's first worlds, composed as the campaign composes it (a caller
/// guest and a callee guest exporting the world's interfaces, each with its own memory and
/// string encoding), and one fused case from the rest of the input (the caller's calls of the
/// callee, with the values and realloc answers of both) → the reference and every default
/// composition engine (`wasmtime-fused`); a difference the expectations do not explain
/// panics, and so does a harness failure. A world with no composition (it exports no
/// interface, or one witness cannot compose yet) gives way to the next. Returns whether a
/// case ran.
pub fn composition(data: &[u8]) -> bool {
    with_composition(data, |c, case| c.check(&case)).is_some()
}

/// `f` on the composition and the fused case an input of `composition` stands for, as the
/// target decodes it; `None` when the input makes no case.
pub fn with_composition<T>(data: &[u8], f: impl FnOnce(&mut CompiledComposition, FusedCase) -> T) -> Option<T> {
    let mut u = Unstructured::new(data);
    let index = u.int_in_range(0..=POOL_WORLDS - 1).ok()?;
    COMPOSITIONS.with_borrow_mut(|pool| {
        // A world with no composition gives way to the next one that has one.
        for k in 0..POOL_WORLDS {
            let i = (index + k) % POOL_WORLDS;
            if let Some(c) = pool[i as usize].get_or_insert_with(|| CompiledComposition::new(i)) {
                let case = arbitrary_fused_case(&mut u, &c.fp, &PlanConfig::default()).ok()??;
                return Some(f(c, case));
            }
        }
        None
    })
}

/// A campaign world's composition compiled on the reference and the composition engines.
pub struct CompiledComposition {
    wit: String,
    origin: String,
    fp: FusedPrepared,
    pub artifact: Arc<Artifact>,
    pub reference: Box<dyn Compiled>,
    pub engines: Vec<Box<dyn Compiled>>,
}

impl CompiledComposition {
    /// `None` when the world has no composition witness builds; any other failure panics.
    fn new(index: u64) -> Option<CompiledComposition> {
        let (wit, scheme, _, origin) = campaign_world(index).unwrap_or_else(|e| panic!("harness failure: {e:#}"));
        let failure = |what: &str, e: anyhow::Error| -> ! {
            panic!("harness failure: {what}: {e:#}\n{origin}, composed, world:\n{wit}")
        };
        let world = GeneratedWorld { wit: wit.clone() };
        let fp = match fused_of(index + 1, &world, "w", scheme) {
            Ok(Some(fp)) => fp,
            Err(e) if e.downcast_ref::<Unsupported>().is_none() => failure("compose", e),
            Ok(None) | Err(_) => return None,
        };
        let artifact = match fp.artifact() {
            Ok(artifact) => Arc::new(artifact),
            Err(e) if e.downcast_ref::<Unsupported>().is_none() => failure("artifact", e),
            Err(_) => return None,
        };
        let reference = compile(&Selection::reference(), &artifact).unwrap_or_else(|e| failure("compile reference", e));
        let engines = Selection::defaults()
            .into_iter()
            .filter(Selection::fused)
            .map(|s| compile(&s, &artifact).unwrap_or_else(|e| failure(&format!("compile {s}"), e)))
            .collect();
        Some(CompiledComposition { wit, origin, fp, artifact, reference, engines })
    }

    /// One fused case on the reference and every engine.
    fn check(&mut self, case: &FusedCase) {
        let CompiledComposition { wit, origin, fp, artifact, .. } = self;
        let failure = |what: &str, e: anyhow::Error| -> ! {
            panic!("harness failure: {what}: {e:#}\n{origin}, composed, world:\n{wit}")
        };
        let expected = run_case(self.reference.as_mut(), artifact, &case.caller, &[&case.callee])
            .unwrap_or_else(|e| failure("reference run", e));
        for engine in &mut self.engines {
            let name = engine.label().to_string();
            let actual = run_case(engine.as_mut(), artifact, &case.caller, &[&case.callee])
                .unwrap_or_else(|e| failure(&format!("{name} run"), e));
            panic_if_unexplained(&name, compare_fused(fp, &expected, &actual), || {
                format!("{origin}, composed\ncase: {case:?}\nworld:\n{wit}")
            });
        }
    }
}

/// How many campaign worlds `smith_guest` picks among, and the calls a guest gets.
pub const SMITH_WORLDS: u64 = 16;
const SMITH_CALLS: u64 = 8;

thread_local! {
    /// The worlds of `smith_guest` (`witness smith --seed N`), each prepared on its first use;
    /// `Some(None)` for one that cannot be prepared (`witness smith` skips those too).
    static SMITH_POOL: std::cell::RefCell<Vec<Option<Option<crate::smith::SmithWorld>>>> =
        std::cell::RefCell::new((0..SMITH_WORLDS).map(|_| None).collect());
}

/// Input → one of the first `SMITH_WORLDS` worlds of `witness smith`, a seed for the calls'
/// arguments and import results, and the rest as wasm-smith's input for a core module shaped to
/// the world → componentized and run on Wasmtime (its Canonical ABI) and on wasmi with the
/// reference host, compared by outcome (`smith::run_guest`). A mismatch that no limit, known
/// divergence or known engine bug explains panics, and so does a failure after wasm-smith made
/// the module (componentizing, planning, loading on an engine). Returns whether both engines
/// loaded the guest.
pub fn smith_guest(data: &[u8]) -> bool {
    use crate::smith::{Campaign, Guest, SmithSummary, default_engines, run_guest, smith_world};
    let mut u = Unstructured::new(data);
    let Ok(index) = u.int_in_range(0..=SMITH_WORLDS - 1) else { return false };
    let Ok(seed) = u.arbitrary::<u64>() else { return false };
    let data = u.take_rest();
    SMITH_POOL.with_borrow_mut(|pool| {
        for k in 0..SMITH_WORLDS {
            let i = (index + k) % SMITH_WORLDS;
            let world_seed = i + 1;
            let Some(sw) = pool[i as usize].get_or_insert_with(|| smith_world(world_seed).ok()) else { continue };
            let engines = default_engines();
            let cx = Campaign { engines: &engines, expectations: expectations() };
            let replay = "witness fuzz-replay --target smith_guest INPUT".to_string();
            let guest = Guest { world_seed, module: 0, seed, data, calls: SMITH_CALLS, replay };
            let mut s = SmithSummary::default();
            run_guest(&cx, sw, &guest, &mut s);
            let mut findings: Vec<String> = s.unexpected().iter().map(|m| format!("MISMATCH {m}")).collect();
            // A module wasm-smith cannot make from the input is no finding; any later stage is.
            findings.extend(
                s.setup_failures
                    .iter()
                    .filter(|(.., stage, _)| stage != "generate")
                    .map(|(_, _, stage, e)| format!("SETUP FAILURE ({stage}): {e}")),
            );
            if !findings.is_empty() {
                panic!("{}\nworld {world_seed} (witness smith --seed {world_seed}):\n{}", findings.join("\n"), sw.text);
            }
            return s.loaded > 0;
        }
        false
    })
}

/// Which plans a target makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plans {
    /// A call or resource steps, as the campaign does.
    Any,
    /// Resource steps only.
    Resources,
}

/// A finding of a differential target: the differences of `engine` the expectations files do
/// not explain, if any, panic with them and `context` (the world and the case).
fn panic_if_unexplained(engine: &str, differences: Vec<Difference>, context: impl FnOnce() -> String) {
    let unexplained: Vec<_> = differences.into_iter().filter(|d| expectations().explain(engine, d).is_none()).collect();
    if !unexplained.is_empty() {
        let mut msg = format!("{engine} diverges from the reference\n");
        for d in &unexplained {
            msg.push_str(&format!("  [{}] {}\n", d.area, d.detail));
        }
        panic!("{msg}{}", context());
    }
}

/// The plan of a differential input, from what follows its world: like the campaign's
/// `case_of`, some inputs drive resources (when the world has any to drive), the others make
/// one plain call. `None` when the input runs out first, or the world has nothing to call.
fn plan_from(u: &mut Unstructured<'_>, prepared: &Prepared, plans: Plans) -> Option<Vec<StepPlan>> {
    let cfg = PlanConfig::default();
    if plans == Plans::Resources {
        return arbitrary_resource_steps(u, prepared, &cfg).ok().flatten();
    }
    let resources = u.ratio(1, 3).unwrap_or(false);
    match resources.then(|| arbitrary_resource_steps(u, prepared, &cfg)) {
        Some(Ok(Some(steps))) => Some(steps),
        Some(Err(_)) => None,
        None | Some(Ok(None)) => match arbitrary_call(u, prepared, &cfg) {
            Ok(Some(plan)) => Some(vec![StepPlan::Call(plan)]),
            Ok(None) | Err(_) => None,
        },
    }
}

/// What an input of `differential` or `differential_cached` stands for: a world (its WIT,
/// name scheme and encoding) and the steps of one case on it.
pub struct DifferentialInput {
    pub wit: String,
    pub scheme: NameScheme,
    pub encoding: StringEncoding,
    /// Where the world comes from (`input world`, or the campaign world of a seed).
    pub origin: String,
    pub steps: Vec<StepPlan>,
}

/// The targets whose inputs `differential_input` decodes.
pub const DIFFERENTIAL_TARGETS: &[&str] =
    &["differential", "differential_cached", "resource_sequence", "async_differential"];

/// Decode an input of `target` (one of `DIFFERENTIAL_TARGETS`) as the target does. `Err`:
/// the input runs no case (the target skips it), or its world cannot be prepared.
pub fn differential_input(target: &str, data: &[u8]) -> anyhow::Result<DifferentialInput> {
    let mut u = Unstructured::new(data);
    let short = || anyhow::anyhow!("the input runs out before it makes a case");
    let plans = if target == "resource_sequence" { Plans::Resources } else { Plans::Any };
    let (wit, scheme, encoding, origin, prepared) = match target {
        "differential" => {
            let scheme = *u.choose(&[NameScheme::Standard, NameScheme::Legacy]).map_err(|_| short())?;
            let encoding = *u.choose(&StringEncoding::ALL).map_err(|_| short())?;
            let world = arbitrary_world(&mut u, &WorldConfig::default()).map_err(|_| short())?;
            let prepared = Prepared::from_wit(&world.wit, Some("w"), scheme, encoding)?;
            (world.wit, scheme, encoding, "input world".to_string(), prepared)
        }
        "differential_cached" | "resource_sequence" => {
            let index = u.int_in_range(0..=POOL_WORLDS - 1).map_err(|_| short())?;
            // As `with_pool_world` picks: resource steps skip to a world with resources.
            let mut picked = None;
            for k in 0..POOL_WORLDS {
                let (wit, scheme, encoding, origin) = campaign_world((index + k) % POOL_WORLDS)?;
                let prepared = Prepared::from_wit(&wit, Some("w"), scheme, encoding)?;
                if plans == Plans::Any || Artifact::of(&prepared)?.has_resources() {
                    picked = Some((wit, scheme, encoding, origin, prepared));
                    break;
                }
            }
            picked.ok_or_else(|| anyhow::anyhow!("no pool world has resources"))?
        }
        "async_differential" => {
            let index = u.int_in_range(0..=ASYNC_POOL_WORLDS - 1).map_err(|_| short())?;
            let (wit, scheme, encoding, origin) = async_campaign_world(index)?;
            let prepared = Prepared::from_wit(&wit, Some("w"), scheme, encoding)?;
            (wit, scheme, encoding, origin, prepared)
        }
        other => anyhow::bail!("`{other}` is not a differential target ({})", DIFFERENTIAL_TARGETS.join(", ")),
    };
    let steps = plan_from(&mut u, &prepared, plans).ok_or_else(short)?;
    Ok(DifferentialInput { wit, scheme, encoding, origin, steps })
}

/// A world prepared and compiled on the reference and on every default runtime but the
/// compositions, for the differential targets.
struct CompiledWorld {
    wit: String,
    scheme: NameScheme,
    encoding: StringEncoding,
    /// Where the world came from, for findings.
    origin: String,
    prepared: Prepared,
    artifact: Arc<Artifact>,
    reference: Box<dyn Compiled>,
    engines: Vec<Box<dyn Compiled>>,
}

impl CompiledWorld {
    /// Prepare and compile `wit`; any failure is a harness failure (a panic).
    fn new(wit: String, scheme: NameScheme, encoding: StringEncoding, origin: &str) -> CompiledWorld {
        let setup = |what: &str, e: anyhow::Error| -> ! {
            panic!("harness failure: {what}: {e:#}\n{origin}, scheme {scheme:?}, encoding {encoding:?}, world:\n{wit}")
        };
        let prepared = Prepared::from_wit(&wit, Some("w"), scheme, encoding).unwrap_or_else(|e| setup("prepare", e));
        let artifact = Arc::new(Artifact::of(&prepared).unwrap_or_else(|e| setup("artifact", e)));
        let reference = compile(&Selection::reference(), &artifact).unwrap_or_else(|e| setup("compile reference", e));
        // A runtime that cannot run the world at all (the core ones and an async world) is left
        // out; any other failure to compile is the harness's.
        let engines = Selection::defaults()
            .into_iter()
            .filter(|s| !s.fused())
            .filter_map(|s| match compile(&s, &artifact) {
                Ok(c) => Some(c),
                Err(e) if e.downcast_ref::<crate::runtime::Unsupported>().is_some() => None,
                Err(e) => setup(&format!("compile {s}"), e),
            })
            .collect();
        CompiledWorld { wit, scheme, encoding, origin: origin.into(), prepared, artifact, reference, engines }
    }

    /// One plan from `u` (like the campaign's `case_of`: some inputs drive resources, when the
    /// world has any to drive, the others make one plain call), run on the reference and on
    /// every engine; a difference the expectations do not explain panics. Returns false when
    /// `u` runs out before a plan, or the world has nothing to call.
    fn check(&mut self, u: &mut Unstructured<'_>, plans: Plans) -> bool {
        let CompiledWorld { wit, scheme, encoding, origin, prepared, artifact, .. } = self;
        let setup = |what: &str, e: anyhow::Error| -> ! {
            panic!("harness failure: {what}: {e:#}\n{origin}, scheme {scheme:?}, encoding {encoding:?}, world:\n{wit}")
        };
        let Some(steps) = plan_from(u, prepared, plans) else { return false };
        let case = build_case(prepared, &steps, Misses::Ignore).unwrap_or_else(|e| setup("build_case", e));
        let expected =
            run_case(self.reference.as_mut(), artifact, &case, &[]).unwrap_or_else(|e| setup("reference run", e));
        for engine in &mut self.engines {
            let name = engine.label().to_string();
            let actual =
                run_case(engine.as_mut(), artifact, &case, &[]).unwrap_or_else(|e| setup(&format!("{name} run"), e));
            panic_if_unexplained(&name, compare(prepared, &expected, &actual), || {
                format!("{origin}, scheme {scheme:?}, encoding {encoding:?}\nsteps: {steps:?}\nworld:\n{wit}")
            });
        }
        true
    }
}

/// One built-in call of the `async_reference` target. Ends and sets are picked among those
/// made so far (the operation follows the end's kind), now and then by a raw index instead, so
/// that the wrong-handle traps are reached too; pointers may pass the end of the 1 KiB memory
/// and lengths go up to 20, or past `Buffer.MAX_LENGTH`.
#[derive(Debug)]
enum AsyncOp {
    New { future: bool, payload: bool },
    Copy { end: Pick, ptr: u64, n: u64, async_: bool },
    Cancel { end: Pick, async_: bool },
    Drop { end: Pick },
    SetNew,
    SetDrop(Pick),
    Join { end: Pick, set: Option<Pick> },
    Poll(Pick, bool),
    Wait(Pick, bool),
    Yield(bool),
    TaskReturn,
    TaskCancel,
    Backpressure(bool),
    Context(u64),
}

/// A handle operand: the n-th made so far, or a raw table index.
#[derive(Clone, Copy, Debug)]
enum Pick {
    Made(u8),
    Raw(u32),
}

fn arbitrary_pick(u: &mut Unstructured<'_>) -> arbitrary::Result<Pick> {
    Ok(if u.ratio(1, 12)? { Pick::Raw(u.int_in_range(0..=9)?) } else { Pick::Made(u.arbitrary()?) })
}

fn arbitrary_async_op(u: &mut Unstructured<'_>) -> arbitrary::Result<AsyncOp> {
    Ok(match u.int_in_range(0..=40u8)? {
        0..=5 => AsyncOp::New { future: u.arbitrary()?, payload: u.ratio(3, 4)? },
        6..=17 => AsyncOp::Copy {
            end: arbitrary_pick(u)?,
            ptr: if u.ratio(1, 10)? { u.int_in_range(1000..=1100u64)? } else { u.int_in_range(0..=63u64)? * 8 },
            n: if u.ratio(1, 20)? { 1 << 28 } else { u.int_in_range(0..=20u64)? },
            async_: u.ratio(7, 8)?,
        },
        18..=21 => AsyncOp::Cancel { end: arbitrary_pick(u)?, async_: u.ratio(3, 4)? },
        22..=25 => AsyncOp::Drop { end: arbitrary_pick(u)? },
        26..=27 => AsyncOp::SetNew,
        28 => AsyncOp::SetDrop(arbitrary_pick(u)?),
        29..=32 => {
            AsyncOp::Join { end: arbitrary_pick(u)?, set: if u.ratio(1, 5)? { None } else { Some(arbitrary_pick(u)?) } }
        }
        33..=34 => AsyncOp::Poll(arbitrary_pick(u)?, u.arbitrary()?),
        35 => AsyncOp::Wait(arbitrary_pick(u)?, u.arbitrary()?),
        36..=37 => AsyncOp::Yield(u.arbitrary()?),
        38 => match u.int_in_range(0..=3u8)? {
            0 => AsyncOp::TaskReturn,
            1 => AsyncOp::TaskCancel,
            _ => AsyncOp::Context(u.arbitrary()?),
        },
        _ => AsyncOp::Backpressure(u.arbitrary()?),
    })
}

/// An end the `async_reference` body made: its index, whether it is a future's, whether it is
/// the writable end, whether it carries u8 (else no payload).
#[derive(Clone, Copy)]
struct MadeEnd {
    index: u32,
    future: bool,
    writable: bool,
    payload: bool,
}

/// Input → a chooser seed and up to 64 async built-in calls, made by one async export of one
/// instance (stream and future elements are u8 or none, which an instance may copy to
/// itself) → every call returns or traps with a guest-visible class; never a panic, never a
/// broken spec assertion. The store then runs until no thread is ready. Returns whether any
/// call ran.
pub fn async_reference(data: &[u8]) -> bool {
    use std::cell::RefCell;
    use std::rc::Rc;

    use crate::reference::concurrency::Obj;
    use crate::reference::concurrency::builtins as b;
    use crate::reference::concurrency::choice::Seeded;
    use crate::reference::concurrency::embedding::Store;
    use crate::reference::concurrency::task::{CanonicalOptions, core_func};
    use crate::reference::memory::Memory;
    use crate::reference::types::{FuncType, ValType};

    let mut u = Unstructured::new(data);
    let Ok(seed) = u.arbitrary::<u64>() else { return false };
    let mut ops = vec![];
    while ops.len() < 64 {
        match arbitrary_async_op(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    if ops.is_empty() {
        return false;
    }
    let store = Store::new(Seeded::new(seed));
    let inst = store.new_instance();
    let memory: Rc<RefCell<dyn Memory>> = Rc::new(RefCell::new(BumpHeap::new(1024, 512)));
    let mem = Obj(memory);
    let opts = CanonicalOptions { memory: Some(mem.clone()), ..CanonicalOptions::default() };
    let ops = Rc::new(ops);
    let (body_ops, body_opts) = (ops.clone(), opts.clone());
    let body = core_func(move |_| {
        let (ops, opts, mem) = (body_ops.clone(), body_opts.clone(), mem.clone());
        async move {
            let mut ends: Vec<MadeEnd> = vec![];
            let mut sets: Vec<u32> = vec![];
            let with = |async_: bool| CanonicalOptions { async_, ..opts.clone() };
            // The end a pick names (a raw index: a readable u8 stream end, whatever it holds).
            // `None`: a pick among none made (the call is skipped).
            let end_of = |ends: &[MadeEnd], p: Pick| match p {
                Pick::Made(_) if ends.is_empty() => None,
                Pick::Made(n) => Some(ends[n as usize % ends.len()]),
                Pick::Raw(i) => Some(MadeEnd { index: i, future: false, writable: false, payload: true }),
            };
            let set_of = |sets: &[u32], p: Pick| match p {
                Pick::Made(_) if sets.is_empty() => None,
                Pick::Made(n) => Some(sets[n as usize % sets.len()]),
                Pick::Raw(i) => Some(i),
            };
            let t = |e: MadeEnd| {
                let elem = e.payload.then(|| Arc::new(ValType::U8));
                if e.future { ValType::Future(elem) } else { ValType::Stream(elem) }
            };
            for op in ops.iter() {
                let r = match *op {
                    AsyncOp::New { future, payload } => {
                        let made = MadeEnd { index: 0, future, writable: false, payload };
                        let r = if future { b::canon_future_new(&t(made)) } else { b::canon_stream_new(&t(made)) };
                        if let Ok([Flat::I64(packed)]) = r.as_deref() {
                            ends.push(MadeEnd { index: *packed as u32, ..made });
                            ends.push(MadeEnd { index: (*packed >> 32) as u32, writable: true, ..made });
                        }
                        r
                    }
                    AsyncOp::Copy { end, ptr, n, async_ } => {
                        let Some(e) = end_of(&ends, end) else { continue };
                        match (e.future, e.writable) {
                            (false, false) => b::canon_stream_read(&t(e), &with(async_), e.index, ptr, n).await,
                            (false, true) => b::canon_stream_write(&t(e), &with(async_), e.index, ptr, n).await,
                            (true, false) => b::canon_future_read(&t(e), &with(async_), e.index, ptr).await,
                            (true, true) => b::canon_future_write(&t(e), &with(async_), e.index, ptr).await,
                        }
                    }
                    AsyncOp::Cancel { end, async_ } => {
                        let Some(e) = end_of(&ends, end) else { continue };
                        match (e.future, e.writable) {
                            (false, false) => b::canon_stream_cancel_read(&t(e), async_, e.index).await,
                            (false, true) => b::canon_stream_cancel_write(&t(e), async_, e.index).await,
                            (true, false) => b::canon_future_cancel_read(&t(e), async_, e.index).await,
                            (true, true) => b::canon_future_cancel_write(&t(e), async_, e.index).await,
                        }
                    }
                    AsyncOp::Drop { end } => {
                        let Some(e) = end_of(&ends, end) else { continue };
                        let r = match (e.future, e.writable) {
                            (false, false) => b::canon_stream_drop_readable(&t(e), e.index),
                            (false, true) => b::canon_stream_drop_writable(&t(e), e.index),
                            (true, false) => b::canon_future_drop_readable(&t(e), e.index),
                            (true, true) => b::canon_future_drop_writable(&t(e), e.index),
                        };
                        ends.retain(|m| m.index != e.index);
                        r
                    }
                    AsyncOp::SetNew => {
                        let r = b::canon_waitable_set_new();
                        if let Ok([Flat::I32(i)]) = r.as_deref() {
                            sets.push(*i);
                        }
                        r
                    }
                    AsyncOp::SetDrop(s) => {
                        let Some(si) = set_of(&sets, s) else { continue };
                        sets.retain(|&m| m != si);
                        b::canon_waitable_set_drop(si)
                    }
                    AsyncOp::Join { end, set } => {
                        let Some(e) = end_of(&ends, end) else { continue };
                        let si = match set {
                            None => 0,
                            Some(s) => match set_of(&sets, s) {
                                Some(si) => si,
                                None => continue,
                            },
                        };
                        b::canon_waitable_join(e.index, si)
                    }
                    AsyncOp::Poll(s, c) => {
                        let Some(si) = set_of(&sets, s) else { continue };
                        b::canon_waitable_set_poll(c, &mem, si, 1000)
                    }
                    AsyncOp::Wait(s, c) => {
                        let Some(si) = set_of(&sets, s) else { continue };
                        b::canon_waitable_set_wait(c, &mem, si, 1000).await
                    }
                    AsyncOp::Yield(c) => b::canon_thread_yield(c).await,
                    AsyncOp::TaskReturn => b::canon_task_return(None, &opts, vec![]),
                    AsyncOp::TaskCancel => b::canon_task_cancel(),
                    AsyncOp::Backpressure(inc) => {
                        if inc {
                            b::canon_backpressure_inc()
                        } else {
                            b::canon_backpressure_dec()
                        }
                    }
                    AsyncOp::Context(v) => b::canon_context_set(PtrType::I32, (v % 2) as usize, v & 0xffff_ffff),
                };
                r?;
            }
            b::canon_task_return(None, &opts, vec![])?;
            Ok(vec![])
        }
    });
    let ft = FuncType { params: vec![], result: None, async_: true };
    let f = store.lift(body, ft, CanonicalOptions { async_: true, ..opts }, inst);
    let ended = store
        .invoke(&f, Box::new(|| Ok(vec![])), Box::new(|_| Ok(())))
        .and_then(|_| store.run_until_idle(1000).map(|_| ()));
    store.teardown();
    if let Err(trap) = ended {
        assert_ne!(trap.kind, TrapKind::Assertion, "{trap}\nops: {ops:?}");
    }
    true
}

/// Input → an arbitrary type, string encoding and text → `parse_value` gives a value or an
/// error, never a panic; a value prints back in WAVE and that text parses to an equal value.
/// Returns whether the text was a value of the type.
pub fn wave_value(data: &[u8]) -> bool {
    use crate::world::wave::{parse_value, print_value};
    let mut u = Unstructured::new(data);
    let Ok(t) = arbitrary_type(&mut u, &TypeConfig::default()) else { return false };
    let Ok(encoding) = u.choose(&StringEncoding::ALL).copied() else { return false };
    let text = String::from_utf8_lossy(u.take_rest()).into_owned();
    let Ok(v) = parse_value(&t, &text, encoding) else { return false };
    let printed = print_value(&t, &v)
        .unwrap_or_else(|e| panic!("a parsed value does not print: {e:#}\ntype {t:?}, text {text:?}"));
    let again = parse_value(&t, &printed, encoding)
        .unwrap_or_else(|e| panic!("printed text does not parse: {e:#}\ntype {t:?}, printed {printed:?}"));
    assert!(again.matches(&v), "round trip changed the value\ntype {t:?}\ntext {text:?}\nprinted {printed:?}");
    true
}

/// Input → text → `parse_type` (a WIT type expression, validated) gives a type or an error,
/// never a panic; a type has a layout and a flattening.
pub fn type_expression(data: &[u8]) {
    use crate::reference::layout::{alignment, elem_size};
    use crate::world::typexpr::parse_type;
    let text = String::from_utf8_lossy(data);
    if let Ok(t) = parse_type(&text, None) {
        let _ = (alignment(&t, PtrType::I32), elem_size(&t, PtrType::I32), flatten_type(&t, PtrType::I32));
    }
}

/// `data` as the text of a file named `name` in a folder of this process's own: the loaders
/// read files (their errors name the file and line).
fn as_file(name: &str, data: &[u8]) -> PathBuf {
    // One folder a thread: the smoke tests run targets on several threads at once.
    static THREADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    thread_local! {
        static THREAD: u64 = THREADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let dir = std::env::temp_dir().join(format!("witness-fuzz-{}-{}", std::process::id(), THREAD.with(|t| *t)));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("harness failure: cannot make {}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap_or_else(|e| panic!("harness failure: cannot write {}: {e}", path.display()));
    path
}

/// Input → the text of a suite file → the reference runs it alone (no engine): the file is
/// refused with an error, or each case becomes a row (a bad case fails alone); never a panic.
/// Returns whether the file was a suite.
pub fn suite_file(data: &[u8]) -> bool {
    use crate::suite::cases::run_file;
    let path = as_file("fuzz.toml", data);
    run_file(&path, &[], expectations(), &|_, _, _| true).is_ok()
}

/// Input → the text of an expectations file → it loads or is refused with an error; never a
/// panic. Returns whether it loaded.
pub fn expectations_file(data: &[u8]) -> bool {
    let path = as_file("fuzz-expectations.toml", data);
    Expectations::load(&[path]).is_ok()
}

/// Input → a WIT file (`wit_text`) or a wasm-encoded WIT package (`wit_package`) → the loader
/// of `witness diff --wit` (`UserWorld::load`: its only world, prepared) accepts it, or refuses
/// it with an error that names the file; never a panic. A world it accepts builds its artifact
/// and compiles on the reference, or witness has a bug. Returns whether it was accepted.
fn user_world(name: &str, data: &[u8]) -> bool {
    use crate::diff::UserWorld;
    let path = as_file(name, data);
    let user = match UserWorld::load(&path, None) {
        Ok(user) => user,
        Err(e) => {
            let message = format!("{e:#}");
            assert!(message.contains(name), "an error that does not name the file {name}: {message}");
            return false;
        }
    };
    let failure = |what: &str, e: anyhow::Error| -> ! {
        panic!("harness failure: an accepted world fails to {what}: {e:#}\nworld:\n{}", user.text)
    };
    let scheme = user.scheme(NameScheme::Standard);
    let prepared = Prepared::from_wit(&user.text, Some(&user.world), scheme, StringEncoding::Utf8)
        .unwrap_or_else(|e| failure("prepare again", e));
    let artifact = Arc::new(Artifact::of(&prepared).unwrap_or_else(|e| failure("build its artifact", e)));
    compile(&Selection::reference(), &artifact).unwrap_or_else(|e| failure("compile on the reference", e));
    true
}

pub fn wit_text(data: &[u8]) -> bool {
    user_world("fuzz.wit", data)
}

pub fn wit_package(data: &[u8]) -> bool {
    user_world("fuzz.wasm", data)
}

/// The world `adapter_reply`'s conversations are about: strings, lists, options, results, an
/// import called back in the middle of an export call.
const ADAPTER_WORLD: &str = r#"package witness:fuzz;

interface host {
  log: func(message: string, level: u8) -> list<u16>;
}

world w {
  import host;
  export echo: func(text: string, xs: list<u32>) -> tuple<string, option<s64>>;
  export pick: func(which: result<f32, string>) -> result<u8, list<string>>;
}
"#;

thread_local! {
    /// `ADAPTER_WORLD` prepared once, and the cases every conversation runs.
    static ADAPTER_CASES: (Arc<Artifact>, Vec<crate::runtime::Case>) = {
        let failure = |e: anyhow::Error| -> ! { panic!("harness failure: the adapter_reply world: {e:#}") };
        let prepared = Prepared::from_wit(ADAPTER_WORLD, Some("w"), NameScheme::Standard, StringEncoding::Utf8)
            .unwrap_or_else(|e| failure(e));
        let artifact = Arc::new(Artifact::of(&prepared).unwrap_or_else(|e| failure(e)));
        let cases = (0..4)
            .filter_map(|c| crate::diff::case_of(1, c, &prepared, &PlanConfig::default()).unwrap_or_else(|e| failure(e)))
            .collect();
        (artifact, cases)
    };
}

/// The conversation of the `adapter_reply` target with the adapter `command`: compile
/// `ADAPTER_WORLD`, then run each of its cases on a new instance. `Err`: witness refused what
/// the adapter did (a protocol failure, named).
pub fn adapter_conversation(command: &str, kind: crate::adapter::client::Kind) -> anyhow::Result<()> {
    use crate::adapter::client::ProcessRuntime;
    use crate::runtime::Runtime as _;
    ADAPTER_CASES.with(|(artifact, cases)| {
        let mut compiled =
            ProcessRuntime::new(command, kind, std::time::Duration::from_secs(20)).compile(artifact.clone())?;
        for case in cases {
            run_case(compiled.as_mut(), artifact, case, &[])?;
        }
        Ok(())
    })
}

/// An adapter that writes the lines of the file `$1` whatever it is asked: the first at once
/// (the greeting), then one for each line witness writes, as a real adapter answers each
/// request and each callback reply with one line. Once the file ends it writes nothing more,
/// and its output closes while its input stays open (drained), so witness sees the adapter's
/// output end, not a closed pipe.
const REPLAY_ADAPTER: &str = r#"exec 3< "$1"
next() { IFS= read -r line <&3 || [ -n "$line" ]; }
if next; then
  printf '%s\n' "$line"
  while IFS= read -r request && next; do printf '%s\n' "$line"; done
fi
exec cat >/dev/null
"#;

/// Input → a first byte (the adapter is given the component, or the core module) and the
/// lines an adapter writes → witness's protocol client, talking to an adapter that writes them
/// whatever witness asks, runs the conversation (`adapter_conversation`) or refuses a line with
/// an error; never a panic, never a hang (the adapter's output ends with the input). Returns
/// whether the whole conversation ran.
pub fn adapter_reply(data: &[u8]) -> bool {
    use crate::adapter::client::Kind;
    let Some((&first, replies)) = data.split_first() else { return false };
    let kind = if first % 2 == 0 { Kind::Component } else { Kind::Module };
    let path = as_file("adapter-replies.jsonl", replies);
    let script = as_file("replay-adapter.sh", REPLAY_ADAPTER.as_bytes());
    adapter_conversation(&format!("exec sh '{}' '{}'", script.display(), path.display()), kind).is_ok()
}
