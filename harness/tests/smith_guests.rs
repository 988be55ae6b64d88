//! Arbitrary (wasm-smith) guests shaped to generated worlds run on two engines, by default
//! Wasmtime (as components) and wasmi (as core modules with the reference host); every call
//! must end in the same outcome class on both. Mismatches are printed; each must be explained
//! by a resource limit (`smith::LIMITS`) or by the expectations files (known divergences from
//! the spec, known engine bugs, each with its evidence).

use witness::engine::Selection;
use witness::smith::{Campaign, SmithSummary, default_engines, run_smith_campaign};
use witness::suite::expectations::Expectations;

fn expectations() -> Expectations {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../expectations");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    Expectations::load(&files).unwrap()
}

fn report(s: &SmithSummary) {
    println!(
        "worlds {} (failed {}), modules generated {}, componentized {}, loaded {}, instantiated {}, \
         calls {}, import calls {}",
        s.worlds,
        s.world_failures.len(),
        s.modules_generated,
        s.componentized,
        s.loaded,
        s.instantiated,
        s.calls,
        s.import_calls
    );
    println!("instantiation failures on both: {:?}", s.instantiation_failures);
    println!("instantiation failure messages: {:#?}", s.instantiation_messages);
    println!("agreeing outcomes: {:?}", s.outcomes);
    for f in &s.world_failures {
        println!("world failure: {f:?}");
    }
    for f in &s.setup_failures {
        println!("setup failure: {f:?}");
    }
    for d in &s.instantiation_class_differences {
        println!("instantiation failed on both, in different classes: {d:?}");
    }
    for m in &s.mismatches {
        println!("mismatch: {m}");
    }
    println!("mismatches: {} ({} unexplained)", s.mismatches.len(), s.unexpected().len());
}

#[test]
fn arbitrary_guests_agree_on_outcome_classes() {
    let (worlds, modules) = (14, 8);
    let (engines, expectations) = (default_engines(), expectations());
    let cx = Campaign { engines: &engines, expectations: &expectations };
    let s = run_smith_campaign(&cx, 1, worlds, modules, 6).expect("engines set up");
    report(&s);
    assert!(s.world_failures.is_empty(), "worlds failed: {:?}", s.world_failures);
    assert!(s.setup_failures.is_empty(), "setup failures: {:?}", s.setup_failures);
    assert_eq!(s.worlds, worlds);
    assert_eq!(s.modules_generated, worlds * modules);
    assert_eq!(s.componentized, s.modules_generated);
    assert_eq!(s.loaded, s.modules_generated);
    assert!(s.instantiated >= 10, "too few modules instantiated: {}", s.instantiated);
    assert!(s.calls >= 20, "too few calls: {}", s.calls);
    assert!(s.outcomes.get("returned").is_some_and(|&n| n > 0), "no call returned");
    let abi_traps: u64 =
        s.outcomes.iter().filter(|(c, _)| c.starts_with("trap:") && *c != "trap:guest-trap").map(|(_, n)| n).sum();
    assert!(abi_traps > 0, "no call reached a Canonical ABI check");
    for m in &s.mismatches {
        assert!(m.explained.is_some(), "unexplained mismatch:\n{m}");
    }
}

#[test]
fn any_two_registered_runtimes_compare() {
    // Two core VMs behind the same reference host: they may differ only where the VMs do.
    let engines = [Selection::parse("wasmtime-core").unwrap(), Selection::parse("core").unwrap()];
    let expectations = expectations();
    let s = run_smith_campaign(&Campaign { engines: &engines, expectations: &expectations }, 20, 6, 6, 6)
        .expect("engines set up");
    report(&s);
    assert!(s.setup_failures.is_empty(), "setup failures: {:?}", s.setup_failures);
    assert_eq!(s.loaded, s.modules_generated);
    assert!(s.calls >= 10, "too few calls: {}", s.calls);
    for m in &s.mismatches {
        assert!(m.engines == ["wasmtime-core", "core"], "{m}");
        assert!(m.explained.is_some(), "unexplained mismatch:\n{m}");
    }
}

/// A longer campaign: `SMITH_SEED`, `SMITH_WORLDS`, `SMITH_MODULES`, `SMITH_CALLS` (run with
/// `--ignored --nocapture`). Prints everything; fails on unexplained mismatches.
#[test]
#[ignore]
fn long_smith_campaign() {
    let var = |n: &str, d: u64| std::env::var(n).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let (engines, expectations) = (default_engines(), expectations());
    let s = run_smith_campaign(
        &Campaign { engines: &engines, expectations: &expectations },
        var("SMITH_SEED", 1),
        var("SMITH_WORLDS", 50),
        var("SMITH_MODULES", 20),
        var("SMITH_CALLS", 8),
    )
    .expect("engines set up");
    report(&s);
    assert!(s.unexpected().is_empty(), "unexplained mismatches");
}

/// Write module `SMITH_MODULE` of world `SMITH_WORLD` (core module, component, WIT) to
/// `SMITH_DUMP_DIR` to inspect a mismatch (run with `--ignored`).
#[test]
#[ignore]
fn dump_smith_module() {
    let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("set {n}"));
    let (w, m): (u64, u64) = (var("SMITH_WORLD").parse().unwrap(), var("SMITH_MODULE").parse().unwrap());
    let dir = std::path::PathBuf::from(var("SMITH_DUMP_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let (core, component) = witness::smith::smith_module_bytes(w, m).unwrap();
    std::fs::write(dir.join("core.wasm"), core).unwrap();
    std::fs::write(dir.join("component.wasm"), component).unwrap();
    let (world, _, _) = witness::diff::world_of(w, &Default::default()).unwrap();
    std::fs::write(dir.join("world.wit"), world.wit).unwrap();
    let sw = witness::smith::smith_world(w).unwrap();
    for (k, i) in sw.prepared.guest.imports.iter().enumerate() {
        println!("import {k}: {}::{} {:?}", i.module, i.name, i.sig);
    }
    for (k, (n, ft)) in sw.prepared.exports.iter().enumerate() {
        println!("export {k}: {n} {ft:?}");
    }
}
