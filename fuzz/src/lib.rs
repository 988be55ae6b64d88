//! The fuzz targets' bodies live in the witness crate (`witness::fuzz`), so that
//! `witness fuzz-replay` runs a crash input without this crate's instrumented build; the
//! `fuzz_target!` binaries in `fuzz_targets/` call them, and so does the smoke test below
//! (`cargo test` in `fuzz/`), which feeds each a fixed set of seeded inputs without libFuzzer,
//! so CI runs the targets on stable without instrumentation.

pub use witness::fuzz::{
    adapter_reply, async_differential, async_reference, composition, differential, differential_cached,
    expectations_file, reference_lift, resource_sequence, smith_guest, suite_file, type_expression, wave_value,
    wit_package, wit_text,
};

#[cfg(test)]
mod smoke {
    use witness::world::arbitrary::seed_bytes;

    /// Inputs per target: 50, or `WITNESS_SMOKE_INPUTS` (a longer run by hand). Lengths vary so
    /// that short inputs (zeros past the end) are covered.
    fn count() -> u64 {
        std::env::var("WITNESS_SMOKE_INPUTS").ok().and_then(|n| n.parse().ok()).unwrap_or(50)
    }

    /// Run `target` on every input; a panic names the input (`seed_bytes(seed, len)`) after the
    /// target's own message. Returns how many inputs `target` reports as having run a case.
    fn run(target: impl Fn(&[u8]) -> bool) -> u64 {
        const LENGTHS: [usize; 4] = [16, 256, 2048, 8192];
        let mut ran = 0;
        for seed in 0..count() {
            let len = LENGTHS[seed as usize % LENGTHS.len()];
            let data = seed_bytes(seed, len);
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&data))) {
                Ok(r) => ran += u64::from(r),
                Err(_) => panic!("the input seed_bytes({seed}, {len}) fails (its message is above)"),
            }
        }
        ran
    }

    #[test]
    fn reference_lift() {
        run(|data| {
            super::reference_lift(data);
            true
        });
    }

    #[test]
    fn async_reference() {
        let ran = run(super::async_reference);
        assert!(ran >= count() / 2, "only {ran} of {} inputs made a call", count());
    }

    #[test]
    fn wave_value() {
        // Random text is rarely a value: this checks that nothing panics; libFuzzer finds values.
        let ran = run(super::wave_value);
        eprintln!("wave_value: {ran} of {} texts were values of their type", count());
    }

    #[test]
    fn type_expression() {
        run(|data| {
            super::type_expression(data);
            true
        });
    }

    #[test]
    fn suite_file() {
        run(super::suite_file);
    }

    /// The hand-written suites are `suite_file`'s seed corpus (.clusterfuzzlite/build.sh zips
    /// them): each must be a suite to the target, or the fuzzer starts from nothing.
    #[test]
    fn suite_file_takes_the_suites() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../suites/conformance"));
        let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.retain(|p| p.extension().is_some_and(|x| x == "toml"));
        assert!(files.len() > 10, "{} suite files", files.len());
        for f in files {
            assert!(super::suite_file(&std::fs::read(&f).unwrap()), "{} is no suite to the target", f.display());
        }
    }

    #[test]
    fn wit_text() {
        run(super::wit_text);
    }

    /// The suites' worlds are `wit_text`'s seed corpus (build.sh takes each suite file's
    /// `world`): each must load.
    #[test]
    fn wit_text_takes_the_suites_worlds() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../suites/conformance"));
        let mut n = 0;
        for f in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
            if f.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            let start = text.find("world = \"\"\"").unwrap_or_else(|| panic!("{}: no world", f.display())) + 11;
            let end = start + text[start..].find("\"\"\"").unwrap();
            let world = &text[start..end];
            assert!(super::wit_text(world.as_bytes()), "{}: its world does not load", f.display());
            n += 1;
        }
        assert!(n > 10, "{n} suites");
    }

    #[test]
    fn wit_package() {
        run(super::wit_package);
    }

    #[test]
    fn adapter_reply() {
        run(super::adapter_reply);
    }

    #[test]
    fn expectations_file() {
        run(super::expectations_file);
    }

    #[test]
    fn differential() {
        let ran = run(super::differential);
        eprintln!("differential: {ran} of {} inputs ran a case", count());
        // Many inputs must reach the engines, or this smoke test checks little (today 30 of 50;
        // the others are too short or their world exports nothing to call).
        assert!(ran >= count() / 4, "only {ran} of {} inputs ran a case", count());
    }

    #[test]
    fn resource_sequence() {
        let ran = run(super::resource_sequence);
        eprintln!("resource_sequence: {ran} of {} inputs ran a case", count());
        assert!(ran >= count() / 4, "only {ran} of {} inputs ran a case", count());
    }

    #[test]
    fn composition() {
        let ran = run(super::composition);
        eprintln!("composition: {ran} of {} inputs ran a case", count());
        assert!(ran >= count() / 4, "only {ran} of {} inputs ran a case", count());
    }

    #[test]
    fn smith_guest() {
        let ran = run(super::smith_guest);
        eprintln!("smith_guest: {ran} of {} inputs loaded on both engines", count());
        assert!(ran >= count() / 4, "only {ran} of {} inputs loaded on both engines", count());
    }

    #[test]
    fn async_differential() {
        let ran = run(super::async_differential);
        eprintln!("async_differential: {ran} of {} inputs ran a case", count());
        assert!(ran >= count() / 4, "only {ran} of {} inputs ran a case", count());
    }

    #[test]
    fn differential_cached() {
        let ran = run(super::differential_cached);
        eprintln!("differential_cached: {ran} of {} inputs ran a case", count());
        assert!(ran >= count() / 4, "only {ran} of {} inputs ran a case", count());
    }
}
