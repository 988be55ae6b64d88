//! The `witness` command line as a user runs it (the README examples). Expected outputs are
//! derived by hand from the spec and the documented bump allocator, not copied from a run.

use std::process::Command;

fn witness(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_witness")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn json(args: &[&str]) -> serde_json::Value {
    let (code, out, err) = witness(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

#[test]
fn layout_json_of_a_worked_example() {
    // CanonicalABI.md: option<u64> is a u8 discriminant padded to 8, then the u64: 16 bytes,
    // align 8, flattening [i32 (discriminant), i64].
    let v = json(&["abi", "layout", "option<u64>", "--json"]);
    assert_eq!(v["size"], 16);
    assert_eq!(v["align"], 8);
    assert_eq!(v["flat"], serde_json::json!(["i32", "i64"]));
    assert_eq!(v["payload_offset"], 8);
    // tuple<u8, u16, u8>: fields at 0, 2, 4; size 6, align 2.
    let v = json(&["abi", "layout", "tuple<u8, u16, u8>", "--json"]);
    assert_eq!(v["fields"], serde_json::json!([0, 2, 4]));
    assert_eq!((v["size"].as_u64(), v["align"].as_u64()), (Some(6), Some(2)));
}

#[test]
fn lower_strings_into_a_latin1_utf16_guest() {
    // store_list_into_range: realloc(0,0,4,16) -> 16 (heap base 16). Then "a" (utf8, 1 unit)
    // via store_string_to_latin1_or_utf16: realloc(0,0,2,1) -> 32, all Latin-1, no shrink.
    // "héllo" (utf8, 6 bytes): realloc(0,0,2,6) -> align_to(33,2) = 34; 5 Latin-1 bytes < 6,
    // so realloc(34,6,2,5) -> 34 (shrinks in place).
    let v = json(&["abi", "lower", "list<string>", r#"["a", "héllo"]"#, "--encoding", "latin1+utf16", "--json"]);
    assert_eq!(v["flat"], serde_json::json!([{"type": "i32", "value": 16}, {"type": "i32", "value": 2}]));
    assert_eq!(
        v["realloc"],
        serde_json::json!([[0, 0, 4, 16, 16], [0, 0, 2, 1, 32], [0, 0, 2, 6, 34], [34, 6, 2, 5, 34]])
    );
    assert_eq!(
        v["memory"],
        serde_json::json!([
            {"addr": 16, "hex": "2000000001000000220000000500000061"},
            {"addr": 34, "hex": "68e96c6c6f"}
        ])
    );
    assert_eq!(v["trap"], serde_json::Value::Null);
}

#[test]
fn lower_reports_a_realloc_that_runs_out_of_memory() {
    // list<u64> of 2 needs 16 bytes at align 8: align_to(16, 8) = 16, 16 + 16 > 24 bytes.
    let v = json(&["abi", "lower", "list<u64>", "[1, 2]", "--memory-size", "24", "--json"]);
    assert_eq!(v["trap"]["kind"], "guest-trap");
    assert_eq!(v["realloc"], serde_json::json!([[0, 0, 8, 16, null]]));
}

#[test]
fn lift_values_and_traps() {
    let (code, out, _) = witness(&["abi", "lift", "string", "--flat", "i32:16,i32:3", "--memory-hex", "16:616263"]);
    assert_eq!((code, out.trim()), (0, "\"abc\""));
    // convert_i32_to_char: surrogates trap.
    let v = json(&["abi", "lift", "char", "--flat", "i32:0xd800", "--json"]);
    assert_eq!(v["trap"]["kind"], "invalid-char");
    // load_list_from_range: a list<u16> pointer must be 2-aligned.
    let v = json(&["abi", "lift", "list<u16>", "--flat", "i32:17,i32:1", "--json"]);
    assert_eq!(v["trap"]["kind"], "misaligned-pointer");
}

#[test]
fn signature_of_a_world_with_standard_and_legacy_names() {
    let dir = std::env::temp_dir().join(format!("witness-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wit = dir.join("demo.wit");
    std::fs::write(&wit, "package local:demo@1.2.3;\ninterface api {\n  echo: func(s: string) -> string;\n}\nworld w {\n  import api;\n  export api;\n}\n").unwrap();
    let v = json(&["abi", "signature", wit.to_str().unwrap(), "--json"]);
    // BuildTargets.md: imports "cm32p2|<cin>" "<fn>" with flatten_functype(ft, 'lower');
    // cin of @1.2.3 is @1. echo lowers to (i32 i32 i32) -> () (string param + return area).
    let imports = v["imports"].as_array().unwrap();
    assert_eq!(imports.len(), 1);
    assert_eq!(imports[0]["module"], "cm32p2|local:demo/api@1");
    assert_eq!(imports[0]["name"], "echo");
    assert_eq!(imports[0]["params"], serde_json::json!(["i32", "i32", "i32"]));
    assert_eq!(imports[0]["results"], serde_json::json!([]));
    // Exports "cm32p2|<cin>|<fn>" with flatten_functype(ft, 'lift') = (i32 i32) -> (i32),
    // its "_post" taking the results, and memory + realloc required by the string.
    let names: Vec<&str> = v["exports"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "cm32p2|local:demo/api@1|echo",
            "cm32p2|local:demo/api@1|echo_post",
            "cm32p2_memory",
            "cm32p2_realloc",
            "cm32p2_initialize"
        ]
    );
    assert_eq!(v["exports"][0]["results"], serde_json::json!(["i32"]));
    assert_eq!(v["exports"][1]["params"], serde_json::json!(["i32"]));
    assert_eq!((v["memory_required"].as_bool(), v["realloc_required"].as_bool()), (Some(true), Some(true)));
    // Legacy: the interface name with its full version, `#` for exports, cabi_post_ prefix.
    let v = json(&["abi", "signature", wit.to_str().unwrap(), "--names", "legacy", "--json"]);
    assert_eq!(v["imports"][0]["module"], "local:demo/api@1.2.3");
    assert_eq!(v["exports"][0]["name"], "local:demo/api@1.2.3#echo");
    assert_eq!(v["exports"][1]["name"], "cabi_post_local:demo/api@1.2.3#echo");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_an_error_with_file_and_line_never_a_panic() {
    let dir = std::env::temp_dir().join(format!("witness-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wit = dir.join("bad.wit");
    std::fs::write(&wit, "package a:b;\ninterface i {\n  f: func(x: u32) -> strin;\n}\n").unwrap();
    let (code, _, err) = witness(&["abi", "signature", wit.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.wit:3:22") && err.contains("strin"), "{err}");
    // A core module given as WIT is said to be one (it was read as text: "Control code").
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let (code, _, err) = witness(&["abi", "signature", core.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("is a core wasm module, not WIT"), "{err}");
    // A component header, then a section claiming about 4 GiB in a 16-byte file (found by the
    // wit_package fuzz target: wit-parser's decoder reserved the claimed size and the process
    // aborted). An error that names the file, never an abort.
    let huge = dir.join("huge.wasm");
    std::fs::write(&huge, b"\0asm\x0d\0\x01\0\x07\xee\xff\xff\xff\x0f\x02\x01").unwrap();
    let (code, _, err) = witness(&["diff", "--wit", huge.to_str().unwrap(), "--cases", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("huge.wasm") && err.contains("not a valid wasm-encoded WIT package"), "{err}");
    // A package with no world (found by the wit_text fuzz target: the error did not name the file).
    let empty = dir.join("noworld.wit");
    std::fs::write(&empty, "package a:b;\n").unwrap();
    let (code, _, err) = witness(&["diff", "--wit", empty.to_str().unwrap(), "--cases", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("noworld.wit") && err.contains("no world"), "{err}");
    // A package whose second interface's inner name says another package (`witneso:gen/i0`
    // for `witness:gen/i1`, found by the wit_package fuzz target): wit-parser 0.254.2 asserts
    // ("duplicate interface added") before it checks the package names. An error that names
    // the file, never a panic.
    let wit =
        "package witness:gen;\ninterface i0 { f: func(); }\ninterface i1 { g: func(); }\nworld w { export i0; }\n";
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("gen.wit", wit).unwrap();
    let mut bytes = wit_component::encode(&resolve, pkg).unwrap();
    let (from, to) = (b"witness:gen/i1", b"witneso:gen/i0");
    let at = bytes.windows(from.len()).position(|w| w == from).expect("the inner name of i1");
    bytes[at..at + from.len()].copy_from_slice(to);
    let twice = dir.join("twice.wasm");
    std::fs::write(&twice, &bytes).unwrap();
    let (code, _, err) = witness(&["diff", "--wit", twice.to_str().unwrap(), "--cases", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("twice.wasm") && err.contains("wit-parser panicked"), "{err}");
    assert!(!err.contains("RUST_BACKTRACE"), "the panic hook printed: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
    for args in [
        &["abi", "layout", "tuple<u8,"][..],
        &["abi", "layout", "flags"],
        &["abi", "layout", "point"],
        &["abi", "lower", "u8", "300"],
        &["abi", "lift", "u8", "--flat", "i64:1"],
        &["abi", "lift", "u8", "--flat", "i32:x"],
        &["abi", "lift", "string", "--flat", "i32:0,i32:0", "--memory-hex", "99999999:00"],
        // Not ASCII: a byte-indexed slice of it used to panic.
        &["abi", "lift", "string", "--flat", "i32:16,i32:3", "--memory-hex", "16:aé0"],
    ] {
        let (code, out, err) = witness(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.starts_with("error: ") && !err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn an_async_function_needs_legacy_names() {
    let dir = std::env::temp_dir().join(format!("witness-cli-async-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wit = dir.join("async.wit");
    std::fs::write(&wit, "package a:b;\nworld w {\n  export fetch: async func(url: string) -> string;\n}\n").unwrap();
    // cm32p2 names have no async form; legacy names do.
    let (code, _, err) = witness(&["abi", "signature", wit.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`fetch` is an `async func`") && err.contains("use --names legacy"), "{err}");
    let (code, out, err) = witness(&["abi", "signature", wit.to_str().unwrap(), "--names", "legacy"]);
    assert_eq!(code, 0, "{err}");
    // flatten_functype, async lift with a callback: (ptr, len) -> (i32); task.return gets the
    // result flat, (ptr, len).
    assert!(out.contains(r#""[async-lift]fetch" (func (param i32 i32) (result i32))"#), "{out}");
    assert!(out.contains(r#""[callback][async-lift]fetch" (func (param i32 i32 i32) (result i32))"#), "{out}");
    assert!(out.contains(r#""[export]$root" "[task-return]fetch" (func (param i32 i32))"#), "{out}");
    // A campaign on an async world takes legacy names by itself, and refuses cm32p2 names.
    let (code, out, err) = witness(&["diff", "--wit", wit.to_str().unwrap(), "--worlds", "1", "--cases", "4"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("4 cases") && out.contains("0 new divergences"), "{out}");
    let (code, _, err) = witness(&["diff", "--wit", wit.to_str().unwrap(), "--cases", "1", "--names", "standard"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the world is async") && err.contains("legacy names"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_that_compares_nothing_says_so_and_fails() {
    let empty = std::env::temp_dir().join(format!("witness-cli-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let suites = concat!(env!("CARGO_MANIFEST_DIR"), "/../suites/conformance");
    for (args, says) in [
        (vec!["suite", "--suite", suites, "--engine", ""], "no engine to run"),
        (vec!["suite", "--suite", empty.to_str().unwrap()], "no suite files"),
        (vec!["suite", "--suite", suites, "--filter", "no case is named like this"], "nothing was compared"),
        (vec!["diff", "--engine", "", "--worlds", "1"], "no engine to run"),
    ] {
        let (code, out, err) = witness(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(&empty).unwrap();
}

#[test]
fn an_output_path_that_cannot_be_written_fails_before_the_run() {
    let suites = concat!(env!("CARGO_MANIFEST_DIR"), "/../suites/conformance");
    let nowhere = "/nonexistent-dir/report.xml";
    let (code, out, err) = witness(&["suite", "--suite", suites, "--filter", "utf16", "--junit", nowhere]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("cannot create /nonexistent-dir/report.xml") && out.is_empty(), "{out}{err}");
    let (code, _, err) = witness(&["diff", "--worlds", "1", "--cases", "1", "--repro", "/proc/witness-repro"]);
    // (It fails before any world runs: nothing is written anywhere.)
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot create /proc/witness-repro"), "{err}");
}

#[test]
fn diff_writes_each_divergence_as_a_json_line() {
    let out = std::env::temp_dir().join(format!("witness-cli-diff-{}.json", std::process::id()));
    let repro = std::env::temp_dir().join(format!("witness-cli-repro-{}", std::process::id()));
    let mut args = vec!["diff", "--seed", "1", "--worlds", "5", "--cases", "50"];
    args.extend(["--json", out.to_str().unwrap(), "--repro", repro.to_str().unwrap()]);
    let expectations: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../expectations"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    for e in &expectations {
        args.extend(["--expectations", e.as_str()]);
    }
    let (code, stdout, err) = witness(&args);
    assert_eq!(code, 0, "{stdout}{err}");
    // "0 new divergences, 8 expected (...)": the summary's count against the file's lines.
    let summary = stdout.lines().find(|l| l.contains(" new divergences, ")).expect("a summary line");
    let words: Vec<&str> = summary.split_whitespace().collect();
    let total: usize = words[0].parse::<usize>().unwrap() + words[3].parse::<usize>().unwrap();
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), total, "{summary}");
    assert!(lines.iter().all(|d| d["engine"].is_string() && d["differences"].is_array()), "{lines:?}");
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn deep_input_is_refused_at_the_limit_or_works_never_a_crash() {
    let nested = |open: &str, n: usize| format!("{}u8{}", open.repeat(n), ">".repeat(n));
    // Past wasmparser's nesting limit for components (100): a clear error, not a stack overflow.
    let (code, _, err) = witness(&["abi", "layout", &nested("tuple<", 16_000)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("types nest deeper than 100 levels") && err.len() < 500, "{err}");
    // At the limit: it works.
    let (code, out, err) = witness(&["abi", "layout", &nested("list<", 100)]);
    assert_eq!(code, 0, "{err}");
    // A list is a (pointer, length) pair at any depth: CanonicalABI.md, elem_size_list.
    assert!(out.contains("size    8\nalign   4\nflat    (i32 i32)"), "{out}");
    let dir = std::env::temp_dir().join(format!("witness-cli-deep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A WIT record chain 10,000 deep: refused with the limit, naming the function.
    let mut wit = String::from("package a:b;\ninterface i {\n  record r0 { x: u8 }\n");
    for i in 1..10_000 {
        wit.push_str(&format!("  record r{i} {{ x: r{} }}\n", i - 1));
    }
    wit.push_str("  f: func(a: r9999);\n}\nworld w { export i; }\n");
    std::fs::write(dir.join("deep.wit"), wit).unwrap();
    let (code, _, err) = witness(&["abi", "signature", dir.join("deep.wit").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`f`") && err.contains("types nest deeper than 100 levels"), "{err}");
    // 100,000 chained aliases are no nesting: they work.
    let mut wit = String::from("package a:b;\ninterface i {\n  type t0 = u32;\n");
    for i in 1..100_000 {
        wit.push_str(&format!("  type t{i} = t{};\n", i - 1));
    }
    wit.push_str("  f: func(a: t99999);\n}\nworld w { export i; }\n");
    std::fs::write(dir.join("alias.wit"), wit).unwrap();
    let (code, out, err) = witness(&["abi", "signature", dir.join("alias.wit").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cm32p2|a:b/i|f"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_misspelt_engine_in_an_expectations_file_is_warned_about() {
    let dir = std::env::temp_dir().join(format!("witness-cli-typo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("typo.toml");
    std::fs::write(&file, "[[skip]]\nengine = \"wasmtime-cor\"\ncase = \"x/y\"\nreason = \"r\"\n").unwrap();
    let repro = dir.join("repro");
    let (file_arg, repro_arg) = (file.to_str().unwrap(), repro.to_str().unwrap());
    let args =
        ["diff", "--seed", "1", "--worlds", "1", "--cases", "2", "--expectations", file_arg, "--repro", repro_arg];
    let (_, out, err) = witness(&args);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.contains("engine `wasmtime-cor` is no runtime and did not run (did you mean `wasmtime-core`?)"),
        "{out}{err}"
    );
}

#[test]
fn async_types_have_a_layout_but_no_values_on_the_command_line() {
    // 🔀 alignment/elem_size of StreamType, FutureType, ErrorContextType: 4; flattening: i32.
    let v = json(&["abi", "layout", "tuple<u8, stream<string>, future, error-context>", "--json"]);
    assert_eq!((v["size"].as_u64(), v["align"].as_u64()), (Some(16), Some(4)));
    assert_eq!(v["flat"], serde_json::json!(["i32", "i32", "i32", "i32"]));
    // A stream value is a handle to shared state: a clear refusal, not an assertion trap.
    for args in [&["abi", "lift", "stream<u8>", "--flat", "i32:1"][..], &["abi", "lower", "future<u8>", "x"][..]] {
        let (code, _, err) = witness(args);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("handles to the state their ends share") && err.contains("`abi layout`"), "{err}");
    }
}

#[test]
fn a_fuzz_input_replays_without_cargo_fuzz() {
    // The differential target's body on an input long enough for a world and a plan, and on an
    // empty one; each says what it did, and a missing file or target is an error.
    let dir = std::env::temp_dir().join(format!("witness-cli-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (long, empty) = (dir.join("long"), dir.join("empty"));
    std::fs::write(&long, witness::world::arbitrary::seed_bytes(3, 4096)).unwrap();
    std::fs::write(&empty, b"").unwrap();
    let (code, out, err) =
        witness(&["fuzz-replay", "--target", "differential", long.to_str().unwrap(), empty.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("long: no finding (4096 bytes; ran a case)"), "{out}");
    assert!(out.contains("empty: no finding (0 bytes; too little input for a case)"), "{out}");
    let (code, _, err) = witness(&["fuzz-replay", "--target", "nope", long.to_str().unwrap()]);
    assert!(code == 2 && err.contains("targets: reference_lift, differential"), "{err}");
    let (code, _, err) = witness(&["fuzz-replay", "--target", "differential", dir.join("gone").to_str().unwrap()]);
    assert!(code == 2 && err.contains("cannot read"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `cargo xtask bench`'s second part: both cases run (neither traps) on every engine named.
#[test]
fn bench_calls_runs_the_sync_and_the_async_case() {
    let (code, out, err) = witness(&["bench-calls", "--engine", "reference,wasmtime", "--seconds", "0"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows[0].starts_with("reference") && rows[1].starts_with("wasmtime"), "{out}");
}
