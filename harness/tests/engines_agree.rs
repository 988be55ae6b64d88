//! Every embedded engine agrees with the reference on generated worlds and plans (the
//! differential oracle end to end, value calls and resource sequences).

use std::sync::Arc;
use witness::diff::{DiffConfig, case_of, world_of};

use witness::engine::{Selection, compile};
use witness::oracle::compare;
use witness::runtime::driver::run_case;
use witness::runtime::{Artifact, Prepared};
use witness::suite::expectations::Expectations;

mod common;

#[test]
fn engines_agree_with_the_reference_on_generated_worlds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../expectations");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    let expectations = Expectations::load(&files).unwrap();
    let cfg = DiffConfig::default();
    let (mut cases, mut traps, mut resource_steps) = (0, 0, 0);
    for seed in 0..common::cases(16) {
        let (world, scheme, enc) = world_of(seed, &cfg).unwrap();
        let prepared = Prepared::from_wit(&world.wit, Some("w"), scheme, enc)
            .unwrap_or_else(|e| panic!("seed {seed}: {e:?}\n{}", world.wit));
        let artifact = Arc::new(Artifact::of(&prepared).unwrap());
        let mut reference = compile(&Selection::reference(), &artifact).unwrap();
        let plain = Selection::defaults().into_iter().filter(|s| !s.fused());
        let mut engines: Vec<_> = plain.map(|s| compile(&s, &artifact).unwrap()).collect();
        for c in 0..24 {
            let Some(case) = case_of(seed, c, &prepared, &cfg.plan_config).unwrap() else { continue };
            resource_steps += usize::from(case.steps.len() > 1);
            let expected = run_case(reference.as_mut(), &artifact, &case, &[])
                .unwrap_or_else(|e| panic!("seed {seed} case {c}: reference: {e:?}"));
            for engine in &mut engines {
                let name = engine.label().to_string();
                let actual = run_case(engine.as_mut(), &artifact, &case, &[])
                    .unwrap_or_else(|e| panic!("seed {seed} case {c}: {name}: {e:?}"));
                let unexplained: Vec<_> = compare(&prepared, &expected, &actual)
                    .into_iter()
                    .filter(|d| expectations.explain(&name, d).is_none())
                    .collect();
                assert!(
                    unexplained.is_empty(),
                    "seed {seed} case {c} {name}: {unexplained:#?}\n{}\n{case:?}",
                    world.wit
                );
            }
            cases += 1;
            traps += usize::from(expected.trap.is_some());
        }
    }
    assert!(cases > 100, "only {cases} cases ran");
    assert!(traps > 0 && traps < cases, "{traps} of {cases} cases trapped");
    assert!(resource_steps > 5, "only {resource_steps} multi-step resource cases ran");
}

/// 🔀 Generated async worlds (`witness diff --async`): Wasmtime agrees with the reference on
/// async exports (yields, imports sync and async, task.return of every generated type).
#[test]
fn engines_agree_with_the_reference_on_generated_async_worlds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../expectations");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    let expectations = Expectations::load(&files).unwrap();
    let cfg = DiffConfig::asynchronous();
    let (mut async_calls, mut cases) = (0, 0);
    for seed in 0..common::cases(12) {
        let (world, scheme, enc) = world_of(seed, &cfg).unwrap();
        let prepared = Prepared::from_wit(&world.wit, Some("w"), scheme, enc)
            .unwrap_or_else(|e| panic!("seed {seed}: {e:?}\n{}", world.wit));
        let artifact = Arc::new(Artifact::of(&prepared).unwrap());
        let mut reference = compile(&Selection::reference(), &artifact).unwrap();
        let mut wasmtime = compile(&Selection::parse("wasmtime").unwrap(), &artifact).unwrap();
        for c in 0..24 {
            let Some(case) = case_of(seed, c, &prepared, &cfg.plan_config).unwrap() else { continue };
            let expected = run_case(reference.as_mut(), &artifact, &case, &[]).unwrap();
            let actual = run_case(wasmtime.as_mut(), &artifact, &case, &[]).unwrap();
            let unexplained: Vec<_> = compare(&prepared, &expected, &actual)
                .into_iter()
                .filter(|d| expectations.explain("wasmtime", d).is_none())
                .collect();
            assert!(unexplained.is_empty(), "seed {seed} case {c}: {unexplained:#?}\n{}\n{case:?}", world.wit);
            let export = |s: &witness::runtime::Step| match s {
                witness::runtime::Step::Call(call) => Some(call.export as usize),
                _ => None,
            };
            async_calls += case.steps.iter().filter_map(export).filter(|&k| prepared.exports[k].1.async_).count();
            cases += 1;
        }
    }
    assert!(cases > 100, "only {cases} cases ran");
    assert!(async_calls > 50, "only {async_calls} async export calls");
}
