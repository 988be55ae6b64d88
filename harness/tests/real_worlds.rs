//! The real-world-shaped worlds of suites/worlds/ run clean through a short campaign on every
//! default engine, loaded from their directory and from a wasm-encoded package of it: no setup
//! failure, no divergence the expectations do not explain, and cases run on each.

use std::path::{Path, PathBuf};

use witness::diff::{DiffConfig, Summary, UserWorld, run_campaign};
use witness::suite::expectations::Expectations;

fn expectations() -> Expectations {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../expectations");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    Expectations::load(&files).unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/worlds").join(name)
}

/// The package at `dir` (with its deps/) as a wasm-encoded WIT package, in a file of its own.
fn encoded(dir: &Path, tag: &str) -> PathBuf {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_path(dir).unwrap();
    let bytes = wit_component::encode(&resolve, pkg).unwrap();
    let path = std::env::temp_dir().join(format!("witness-real-{tag}-{}.wasm", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn campaign(path: &Path, world: &str) -> Summary {
    let cfg = DiffConfig {
        seed: 1,
        worlds: 2,
        cases: 45,
        user_world: Some(UserWorld::load(path, Some(world)).unwrap()),
        ..DiffConfig::default()
    };
    run_campaign(&cfg, &expectations(), |_, _| {}, |_| {}).unwrap()
}

fn runs_clean(name: &str, world: &str) -> Vec<Summary> {
    let dir = fixture(name);
    let wasm = encoded(&dir, name);
    let summaries = vec![campaign(&dir, world), campaign(&wasm, world)];
    std::fs::remove_file(&wasm).unwrap();
    for (s, form) in summaries.iter().zip(["directory", "wasm package"]) {
        assert!(s.setup_failures.is_empty(), "{name} ({form}): {:?}", s.setup_failures);
        let new: Vec<_> = s.divergences.iter().filter(|d| !d.expected).collect();
        assert!(new.is_empty(), "{name} ({form}): {new:#?}");
        assert_eq!(s.worlds, 2, "{name} ({form})");
        assert!(s.cases >= 45, "{name} ({form}): only {} cases ran", s.cases);
    }
    summaries
}

#[test]
fn a_resource_used_across_interfaces_and_at_world_level() {
    // Before: Wasmtime refused every instance ("mismatched resource types") since the linker
    // defined `failure` only where it is defined, not where `pipes` and the world `use` it.
    runs_clean("pipes", "app");
}

#[test]
fn an_exported_interface_built_on_imported_types() {
    // Before: wit-parser panicked building the composition's callee world.
    for s in runs_clean("service", "service") {
        let (worlds, reason) = &s.unsupported["wasmtime-fused"];
        assert_eq!(*worlds, 2);
        assert!(reason.contains("uses imported interface `fixture:web/types@0.2.0`"), "{reason}");
    }
}

#[test]
fn a_world_that_only_imports_is_driven_through_witness_drive() {
    // Before: no export to call, so not a single case ran.
    runs_clean("sensors", "sensors");
    let user = UserWorld::load(&fixture("sensors"), Some("sensors")).unwrap();
    assert!(user.text.contains("export witness-drive: func();"), "{}", user.text);
}

/// Over `seeds` resource plans of `world` in fixture `name`: how many import calls (only async
/// ones if `only_async`) pass the guest's handles, and how many return handles to it.
fn import_calls_with_handles(name: &str, world: &str, seeds: u64, only_async: bool) -> (usize, usize) {
    use witness::plan::resources::arbitrary_resource_steps;
    use witness::plan::{GuestOp, PlanConfig, StepPlan};
    use witness::runtime::Prepared;
    use witness::runtime::prepared::ImportType;
    use witness::runtime::resources::has_handles;
    let user = UserWorld::load(&fixture(name), Some(world)).unwrap();
    let scheme = user.scheme(witness::encode::names::NameScheme::Standard);
    let prepared = Prepared::from_wit(&user.text, Some(&user.world), scheme, Default::default()).unwrap();
    let (mut passed, mut received) = (0, 0);
    for seed in 0..seeds {
        let data = witness::world::arbitrary::seed_bytes(seed, 4096);
        let mut u = arbitrary::Unstructured::new(&data);
        let Ok(Some(steps)) = arbitrary_resource_steps(&mut u, &prepared, &PlanConfig::default()) else { continue };
        for step in &steps {
            let StepPlan::Call(call) = step else { continue };
            for op in &call.ops {
                let GuestOp::Import(imp) = op else { continue };
                let ImportType::Func { ft, .. } = &prepared.imports[imp.thunk as usize] else { panic!() };
                if only_async && !ft.async_ {
                    continue;
                }
                passed += usize::from(ft.params.iter().any(|(_, t)| has_handles(t)));
                received += usize::from(ft.result.as_ref().is_some_and(has_handles));
            }
        }
    }
    (passed, received)
}

#[test]
fn guests_call_imports_with_the_host_handles_they_hold() {
    let (passed, received) = import_calls_with_handles("sensors", "sensors", 200, false);
    // `subscribe` and `devices` hand the guest handles; `is-ready`, `kind` and `wait` take them.
    assert!(passed > 20 && received > 20, "{passed} calls passed handles, {received} returned some");
}

#[test]
fn an_async_world_with_resources_runs_on_the_engines_that_run_async() {
    // 🔀 Before: refused (cm32p2 names have no async form; then "an async world with
    // resources: not modelled yet"). Async worlds take legacy names; the engines without async
    // say so rather than fail.
    for world in ["worker", "watcher"] {
        for s in runs_clean("tasks", world) {
            assert!(s.engine_time.contains_key("wasmtime"), "{world}: {:?}", s.engine_time.keys());
            let (_, reason) = &s.unsupported["core"];
            assert!(reason.contains("async"), "{world}: {reason}");
        }
    }
    let user = UserWorld::load(&fixture("tasks"), Some("watcher")).unwrap();
    assert!(user.asynchronous && user.text.contains("export witness-drive: async func();"), "{}", user.text);
}

#[test]
fn async_guests_call_async_imports_with_the_host_handles_they_hold() {
    let (passed, received) = import_calls_with_handles("tasks", "watcher", 300, true);
    // `[method]buffer.fill` and `read-all` take a buffer; `open` returns one.
    assert!(passed > 20 && received > 10, "{passed} async calls passed handles, {received} returned some");
}
