//! The bodies of the fuzz targets (fuzz/fuzz_targets/), as plain functions: the
//! `fuzz_target!` binaries call them, the fuzz crate's smoke test runs them on seeded inputs, and
//! `witness fuzz-replay` runs them on a crash input without the instrumented build. A body
//! signals a finding by panicking, with what it found.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arbitrary::Unstructured;

use crate::encode::names::NameScheme;
use crate::engine::{Selection, compile};
use crate::oracle::compare;
use crate::plan::resources::arbitrary_resource_steps;
use crate::plan::{Misses, PlanConfig, StepPlan, arbitrary_call, build_case};
use crate::reference::concurrency::subtask::Subtask;
use crate::reference::context::{BorrowScope, ComponentInstance, LiftLowerContext};
use crate::reference::flatten::flatten_type;
use crate::reference::lift_flat::{CoreValueIter, lift_flat};
use crate::reference::types::{CoreType, InstanceId, PtrType, StringEncoding};
use crate::reference::{BumpHeap, Flat, TrapKind};
use crate::runtime::driver::run_case;
use crate::runtime::{Artifact, Prepared};
use crate::suite::expectations::Expectations;
use crate::world::arbitrary::{TypeConfig, arbitrary_type};
use crate::world::generate::{WorldConfig, arbitrary_world};

/// A target's body: whether the input ran a case; a finding panics.
pub type Body = fn(&[u8]) -> bool;

/// The fuzz targets by name, each with its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("reference_lift", |data| {
        reference_lift(data);
        true
    }),
    ("differential", differential),
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

/// The repository's expectations files (`expectations/*.toml`), loaded once.
pub fn expectations() -> &'static Expectations {
    static EXPECTATIONS: OnceLock<Expectations> = OnceLock::new();
    EXPECTATIONS.get_or_init(|| {
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../expectations"));
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        Expectations::load(&paths).unwrap_or_else(|e| panic!("{e:#}"))
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
    let wit = &world.wit;
    let setup = |what: &str, e: anyhow::Error| -> ! {
        panic!("harness failure: {what}: {e:#}\nscheme {scheme:?}, encoding {encoding:?}, world:\n{wit}")
    };
    let prepared = Prepared::from_wit(wit, Some("w"), scheme, encoding).unwrap_or_else(|e| setup("prepare", e));
    // Like the campaign's `case_of`: some inputs drive resources (when the world has any to
    // drive), the others make one plain call.
    let cfg = PlanConfig::default();
    let resources = u.ratio(1, 3).unwrap_or(false);
    let steps = match resources.then(|| arbitrary_resource_steps(&mut u, &prepared, &cfg)) {
        Some(Ok(Some(steps))) => steps,
        // Too little input for a plan.
        Some(Err(_)) => return false,
        None | Some(Ok(None)) => match arbitrary_call(&mut u, &prepared, &cfg) {
            Ok(Some(plan)) => vec![StepPlan::Call(plan)],
            // Nothing to call, or too little input.
            Ok(None) | Err(_) => return false,
        },
    };
    let case = build_case(&prepared, &steps, Misses::Ignore).unwrap_or_else(|e| setup("build_case", e));
    let artifact = Arc::new(Artifact::of(&prepared).unwrap_or_else(|e| setup("artifact", e)));
    let mut reference = compile(&Selection::reference(), &artifact).unwrap_or_else(|e| setup("compile reference", e));
    let expected = run_case(reference.as_mut(), &artifact, &case, &[]).unwrap_or_else(|e| setup("reference run", e));
    for selection in Selection::defaults().into_iter().filter(|s| !s.fused()) {
        let mut engine = compile(&selection, &artifact).unwrap_or_else(|e| setup(&format!("compile {selection}"), e));
        let name = engine.label().to_string();
        let actual =
            run_case(engine.as_mut(), &artifact, &case, &[]).unwrap_or_else(|e| setup(&format!("{name} run"), e));
        let unexplained: Vec<_> = compare(&prepared, &expected, &actual)
            .into_iter()
            .filter(|d| expectations().explain(&name, d).is_none())
            .collect();
        if !unexplained.is_empty() {
            let mut msg = format!("{name} diverges from the reference\n");
            for d in &unexplained {
                msg.push_str(&format!("  [{}] {}\n", d.area, d.detail));
            }
            panic!("{msg}scheme {scheme:?}, encoding {encoding:?}\nsteps: {steps:?}\nworld:\n{wit}");
        }
    }
    true
}
