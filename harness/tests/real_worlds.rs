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
