//! Two guests composed: Wasmtime's fused adapters agree with the reference chain (caller model,
//! canon_lower, canon_lift, callee model) in all 9 string-encoding pairs.

use arbitrary::Unstructured;
use witness::diff::{DiffConfig, world_of};
use witness::engine::{Selection, compile};
use witness::oracle::compare_fused;
use witness::plan::fused::arbitrary_fused_case;
use witness::reference::StringEncoding;
use witness::runtime::driver::run_case;
use witness::runtime::fused::FusedPrepared;
use witness::suite::expectations::Expectations;
use witness::world::arbitrary::seed_bytes;

mod common;

#[test]
fn wasmtime_fused_agrees_with_the_reference() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../expectations");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    let expectations = Expectations::load(&files).unwrap();
    let cfg = DiffConfig::default();
    let mut pairs = std::collections::BTreeSet::new();
    let (mut cases, mut traps) = (0, 0);
    // The encoding pair comes from the count of worlds whose compositions ran cases, so all 9
    // come round.
    let (wanted, mut composed) = (common::cases(18), 0);
    for seed in 0..wanted * 4 {
        if composed == wanted {
            break;
        }
        let (world, scheme, _) = world_of(seed, &cfg).unwrap();
        let caller_enc = StringEncoding::ALL[(composed % 3) as usize];
        let callee_enc = StringEncoding::ALL[(composed / 3 % 3) as usize];
        let fp = match FusedPrepared::new(&world.wit, Some("w"), scheme, caller_enc, callee_enc) {
            Ok(fp) => fp,
            Err(e) if format!("{e:#}").contains("exports nothing") => continue,
            // Exports built on imported interfaces: not composed yet (the campaign skips them).
            Err(e) if e.downcast_ref::<witness::runtime::Unsupported>().is_some() => continue,
            Err(e) => panic!("seed {seed}: {e:?}\n{}", world.wit),
        };
        let cases_before = cases;
        let artifact = std::sync::Arc::new(fp.artifact().unwrap());
        let mut reference = compile(&Selection::reference(), &artifact).unwrap();
        let mut engine = compile(&Selection::parse("wasmtime-fused").unwrap(), &artifact).unwrap();
        for c in 0..16 {
            let data = seed_bytes(seed * 1000 + c, 4096);
            let mut u = Unstructured::new(&data);
            let Some(case) = arbitrary_fused_case(&mut u, &fp, &cfg.plan_config).unwrap() else { break };
            let expected = run_case(reference.as_mut(), &artifact, &case.caller, &[&case.callee])
                .unwrap_or_else(|e| panic!("seed {seed} case {c}: reference: {e:?}"));
            let actual = run_case(engine.as_mut(), &artifact, &case.caller, &[&case.callee])
                .unwrap_or_else(|e| panic!("seed {seed} case {c}: wasmtime-fused: {e:?}"));
            let unexplained: Vec<_> = compare_fused(&fp, &expected, &actual)
                .into_iter()
                .filter(|d| expectations.explain("wasmtime-fused", d).is_none())
                .collect();
            assert!(unexplained.is_empty(), "seed {seed} case {c}: {unexplained:#?}\n{}\n{case:#?}", world.wit);
            cases += 1;
            traps += usize::from(expected.trap.is_some());
            pairs.insert((caller_enc, callee_enc));
        }
        composed += u64::from(cases > cases_before);
    }
    assert!(cases > 50, "only {cases} cases ran");
    assert!(traps > 0 && traps < cases, "{traps} of {cases} cases trapped");
    assert_eq!(pairs.len(), 9, "encoding pairs covered: {pairs:?}");
}
