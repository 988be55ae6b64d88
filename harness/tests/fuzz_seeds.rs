//! The seed corpora committed in fuzz/seeds/ (build.sh packs them): each seed must still reach
//! past its target's first checks, or the fuzzer starts from nothing. `WITNESS_UPDATE_SEEDS=1`
//! writes them again from their sources: the conversation `witness adapter` has with the
//! protocol client (adapter_reply), and campaign worlds encoded by wit-component (wit_package).

use std::path::{Path, PathBuf};

use witness::adapter::client::Kind;
use witness::diff::{DiffConfig, world_of};
use witness::fuzz::{TARGETS, adapter_conversation, adapter_reply, wit_package, wit_text};
use witness::world::wit::Wit;

fn seeds(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds").join(target)
}

fn update() -> bool {
    std::env::var_os("WITNESS_UPDATE_SEEDS").is_some()
}

/// The committed seeds of `target`, at least `min` of them.
fn committed(target: &str, min: usize) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(seeds(target)).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= min, "{} seeds of {target}, want {min} (WITNESS_UPDATE_SEEDS=1 writes them)", files.len());
    files.into_iter().map(|f| (f.clone(), std::fs::read(f).unwrap())).collect()
}

/// A seed of adapter_reply is the kind byte, then everything `witness adapter` wrote in one
/// whole conversation: fed back as the replies, it must carry the conversation to its end.
#[test]
fn adapter_reply_seeds_are_whole_conversations() {
    if update() {
        for (kind, byte, name) in [(Kind::Component, 0u8, "component"), (Kind::Module, 1, "module")] {
            let log = std::env::temp_dir().join(format!("witness-seed-{}-{name}.jsonl", std::process::id()));
            let command = format!("'{}' adapter | tee '{}'", env!("CARGO_BIN_EXE_witness"), log.display());
            adapter_conversation(&command, kind).unwrap();
            let mut seed = vec![byte];
            seed.extend(std::fs::read(&log).unwrap());
            std::fs::write(seeds("adapter_reply").join(format!("{name}.jsonl")), seed).unwrap();
            let _ = std::fs::remove_file(log);
        }
    }
    for (path, seed) in committed("adapter_reply", 2) {
        assert!(adapter_reply(&seed), "{} no longer makes a whole conversation", path.display());
    }
    // The same replies with one cut short are refused, not hung on.
    let (_, seed) = &committed("adapter_reply", 2)[0];
    assert!(!adapter_reply(&seed[..seed.len() / 2]));
}

/// A seed of wit_package is a campaign world as a wasm-encoded WIT package; the world's text
/// must load through wit_text too.
#[test]
fn wit_package_seeds_load() {
    if update() {
        for seed in 1..=8 {
            let (world, ..) = world_of(seed, &DiffConfig::default()).unwrap();
            assert!(wit_text(world.wit.as_bytes()), "campaign world {seed} does not load as WIT text");
            let wit = Wit::parse("world.wit", &world.wit).unwrap();
            let bytes = wit_component::encode(&wit.resolve, wit.package).unwrap();
            std::fs::write(seeds("wit_package").join(format!("world-{seed}.wasm")), bytes).unwrap();
        }
    }
    for (path, seed) in committed("wit_package", 8) {
        assert!(wit_package(&seed), "{} does not load", path.display());
    }
}

/// fuzz/regressions/TARGET holds the inputs of fixed findings (and of differences since
/// recorded in expectations/ with their evidence); each must run through its target clean.
#[test]
fn former_findings_run_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut n = 0;
    for dir in std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()) {
        let target = dir.file_name().unwrap().to_str().unwrap().to_string();
        let (_, body) =
            TARGETS.iter().find(|(name, _)| *name == target).unwrap_or_else(|| panic!("no target {target}"));
        for file in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
            let data = std::fs::read(&file).unwrap();
            let run = std::panic::catch_unwind(|| body(&data));
            assert!(run.is_ok(), "{} is a finding again (its message is above)", file.display());
            n += 1;
        }
    }
    assert!(n >= 3, "{n} former findings");
}

/// The fuzz targets carry the expectations files in their binaries (ClusterFuzz runs them
/// without the sources): they must be every file of expectations/ (include_str! keeps each
/// one's text current).
#[test]
fn built_in_expectations_are_the_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<String> = std::fs::read_dir(root.join("expectations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| format!("expectations/{}", p.file_name().unwrap().to_str().unwrap()))
        .collect();
    files.sort();
    let built_in: Vec<String> = witness::fuzz::EXPECTATIONS_FILES.iter().map(|(path, _)| path.to_string()).collect();
    assert_eq!(built_in, files, "add the new file to witness::fuzz::EXPECTATIONS_FILES");
}
