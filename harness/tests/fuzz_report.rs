//! `witness fuzz-report` (witness::reach) on seeded inputs of `differential_cached` and
//! `composition`: the counts must add up the way the spec says the cases run.

use witness::reach::{Reach, reach};
use witness::world::arbitrary::seed_bytes;

/// The report of `target` on 24 seeded inputs of 2048 bytes, with what holds for every target:
/// every input replays, at least half make a case, and each case ends once on each engine
/// (returned, `none`, or with one trap class).
fn report_of(target: &str) -> Reach {
    let dir = std::env::temp_dir().join(format!("witness-fuzz-report-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<_> = (0..24)
        .map(|i| {
            let path = dir.join(format!("input-{i}"));
            std::fs::write(&path, seed_bytes(i, 2048)).unwrap();
            path
        })
        .collect();
    let r = reach(target, &files, |_, _| {}).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.inputs, 24);
    assert!(r.cases >= 12, "{} of 24 inputs made a case", r.cases);
    for engine in &r.engines {
        let ended: u64 = r.traps.iter().filter(|((e, _), _)| e == engine).map(|(_, n)| n).sum();
        assert_eq!(ended, r.cases, "{engine}");
    }
    r
}

fn count(r: &Reach, engine: &str, f: &'static str) -> u64 {
    r.functions.get(&(engine.to_string(), f)).copied().unwrap_or(0)
}

#[test]
fn a_corpus_report_adds_up() {
    let r = report_of("differential_cached");
    assert_eq!(r.engines[0], "reference");
    // Every case calls an export, a lifted function: canon_lift runs, lowering the arguments
    // (lower_flat_values) and lifting the results (lift_flat_values, also for no results), on
    // the reference and on each runtime whose host is the reference.
    for engine in ["reference", "core", "wasmtime-core"] {
        for f in ["canon_lift", "lower_flat_values", "lift_flat_values"] {
            assert_eq!(count(&r, engine, f), r.cases, "{engine} {f}");
        }
    }
    // Wasmtime lowers and lifts itself: no marks are counted for it.
    assert!(r.functions.keys().all(|(e, _)| e != "wasmtime"));
    let report = r.render();
    assert!(report.contains("never reached") && report.contains("canon_lift"), "{report}");
}

/// The same for `composition`: each fused case runs the caller's export, which calls the callee
/// (the plan always makes that call), so on the reference canon_lift runs (the caller's
/// export, the callee's) and canon_lower (the caller's import of the callee) in every case.
#[test]
fn a_composition_corpus_report_adds_up() {
    let r = report_of("composition");
    assert_eq!(r.engines, ["reference", "wasmtime-fused"]);
    for f in ["canon_lift", "canon_lower", "lower_flat_values", "lift_flat_values"] {
        assert_eq!(count(&r, "reference", f), r.cases, "{f}");
    }
    assert!(r.functions.keys().all(|(e, _)| e == "reference"));
}
