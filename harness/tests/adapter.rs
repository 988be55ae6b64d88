//! The adapter protocol end to end: the suites run through `witness adapter` as a child
//! process give, case by case, what the embedded engines behind it give directly: components
//! (`process:`) what the `wasmtime` engine gives, core modules (`process-core:`, wasmi with
//! the reference host) what the `core` engine gives, resources included. Adapters that break the protocol are reported
//! as such, naming the command.

use std::collections::BTreeMap;
use std::path::Path;

use witness::engine::{Selection, compile};
use witness::runtime::{Artifact, Prepared};
use witness::suite::cases::{Status, run_file, suite_files};
use witness::suite::expectations::Expectations;

fn expectations() -> Expectations {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../expectations");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    Expectations::load(&files).unwrap()
}

fn adapter(kind: &str) -> String {
    format!("{kind}:{} adapter", env!("CARGO_BIN_EXE_witness"))
}

/// (file, case) → status kind, for one engine.
fn statuses(engine: &str) -> BTreeMap<(String, String), (String, Status)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/conformance");
    let mut out = BTreeMap::new();
    for file in suite_files(&dir).unwrap() {
        for r in run_file(&file, &[Selection::parse(engine).unwrap()], &expectations(), &|_, _, _| true).unwrap() {
            if r.engine != "reference" {
                out.insert((r.file.display().to_string(), r.name.clone()), (r.engine.clone(), r.status));
            }
        }
    }
    out
}

/// Every case ends the same way through the adapter as on `embedded`, or (if `skips`) is
/// skipped for resources.
fn same_as_embedded(embedded: &str, kind: &str, label: &str, min_xfails: usize, skips: bool) {
    let embedded = statuses(embedded);
    let through = statuses(&adapter(kind));
    assert_eq!(embedded.len(), through.len());
    let mut compared = 0;
    for (key, (_, want)) in &embedded {
        let (name, got) = &through[key];
        match got {
            // Protocol version 1 carries no resources: only worlds with resources are skipped;
            // a case the embedded engine skips too (an async world on a core engine) may be.
            Status::Skipped(why) => assert!(
                (skips && why.contains("resources")) || matches!(want, Status::Skipped(_)),
                "{key:?} skipped: {why}"
            ),
            _ => {
                assert_eq!(name, label);
                let kind = |s: &Status| std::mem::discriminant(s);
                assert_eq!(kind(got), kind(want), "{key:?}: embedded {want:?}, through the adapter {got:?}");
                compared += 1;
            }
        }
    }
    assert!(compared >= 150, "only {compared} cases ran through the adapter");
    let xfails = through.values().filter(|(_, s)| matches!(s, Status::Xfail(_))).count();
    assert!(xfails >= min_xfails, "{xfails} xfails through the adapter");
}

#[test]
fn components_through_the_adapter_end_as_on_wasmtime() {
    // Resources and 🔀 async worlds (feature `async`, answers given later) included; the known
    // Wasmtime divergences show through the adapter too.
    same_as_embedded("wasmtime", "process", "witness-adapter", 8, false);
}

#[test]
fn core_modules_through_the_adapter_end_as_on_the_core_engine() {
    // The adapter's reference host keeps the handle table here, resources included.
    same_as_embedded("core", "process-core", "witness-adapter-core", 0, false);
}

fn engine_error(command: &str) -> String {
    let p = Prepared::from_wit(
        "package t:t; world w { export f: func(x: u32) -> u32; }",
        None,
        witness::encode::names::NameScheme::Standard,
        witness::reference::StringEncoding::Utf8,
    )
    .unwrap();
    let artifact = std::sync::Arc::new(Artifact::of(&p).unwrap());
    match compile(&Selection::parse(&format!("process:{command}")).unwrap(), &artifact) {
        Ok(_) => panic!("`{command}` was accepted as an adapter"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn an_adapter_that_breaks_the_protocol_is_named_with_the_reason() {
    let e = engine_error("echo '{\"adapter\":\"x\",\"protocol\":7}'");
    assert!(e.contains("speaks protocol Some(7)") && e.contains("echo"), "{e}");
    let e = engine_error("echo oops >&2; exit 3");
    assert!(e.contains("it exited") && e.contains("oops"), "{e}");
    let e = engine_error("echo 'not json'");
    assert!(e.contains("not JSON"), "{e}");
    // Greets, then fails the compile request.
    let e =
        engine_error("echo '{\"adapter\":\"x\",\"protocol\":2}'; read line; echo '{\"error\":\"no luck\",\"id\":1}'");
    assert!(e.contains("compile") && e.contains("no luck"), "{e}");
    // Protocol 1 had no request ids: refused with the version named.
    let e = engine_error("echo '{\"adapter\":\"x\",\"protocol\":1}'");
    assert!(e.contains("speaks protocol Some(1), witness speaks 2"), "{e}");
}

/// The error of compiling world `wit` on adapter `command`, whose lines may take 1 s.
fn quick_adapter_error(wit: &str, command: &str) -> String {
    let scheme = witness::encode::names::NameScheme::Standard;
    let p = Prepared::from_wit(wit, None, scheme, witness::reference::StringEncoding::Utf8).unwrap();
    let artifact = std::sync::Arc::new(Artifact::of(&p).unwrap());
    let selection = Selection::parse_args_with(&[format!("process:{command}")], Some(1)).unwrap();
    match compile(&selection[0], &artifact) {
        Ok(_) => panic!("`{command}` was accepted as an adapter"),
        Err(e) => format!("{e:#}"),
    }
}

/// Whether a process whose command line holds `text` is running.
fn running(text: &str) -> bool {
    let out = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().any(|l| l.contains(text) && !l.contains("ps -eo"))
}

#[test]
fn a_hung_adapter_is_killed_with_everything_it_started() {
    // `sh -c` forks the sleep (a command follows it): killing the shell alone left it running.
    let e = quick_adapter_error("package t:t; world w { export f: func(); }", "sleep 987654; echo gone");
    assert!(e.contains("no reply in 1 s (killed)"), "{e}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!running("sleep 987654"), "the adapter's child survived");
}

#[test]
fn an_adapter_that_never_reads_is_killed() {
    // A compile request larger than a pipe's buffer blocks its writer until the adapter reads.
    let funcs: String = (0..300).map(|i| format!("export g{i}: func(a: string, b: list<u32>) -> string;\n")).collect();
    let wit = format!("package t:t; world w {{\n{funcs}}}");
    let e = quick_adapter_error(&wit, "echo '{\"adapter\":\"x\",\"protocol\":2}'; sleep 987655; echo gone");
    assert!(e.contains("took no input for 1 s (killed)"), "{e}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!running("sleep 987655"), "the adapter's child survived");
}

#[test]
fn an_adapter_line_is_bounded_and_never_quoted_whole() {
    // Not JSON, 100 kB: the message quotes its start only.
    let e = engine_error("head -c 100000 /dev/zero | tr '\\0' x; echo");
    assert!(
        e.contains("not JSON") && e.contains("(100000 bytes)") && e.len() < 2000,
        "{} bytes: {}",
        e.len(),
        &e[..200]
    );
    // Longer than a line may be: refused without reading it all.
    let e =
        engine_error("printf '{\"adapter\":\"'; head -c 70000000 /dev/zero | tr '\\0' x; echo '\",\"protocol\":2}'");
    assert!(e.contains("a line longer than") && e.len() < 2000, "{} bytes: {}", e.len(), &e[..200]);
}

#[test]
fn an_adapter_name_is_a_plain_name_of_its_own() {
    let greet = |name: &str| format!("echo '{{\"adapter\":\"{name}\",\"protocol\":2}}'");
    let e = engine_error(&greet("x/../../../ESCAPED"));
    assert!(e.contains("a name is 1 to 64 letters"), "{e}");
    let e = engine_error(&greet(".."));
    assert!(e.contains("a name is 1 to 64 letters"), "{e}");
    // The label of a component adapter named like an embedded runtime would merge its column.
    let e = engine_error(&greet("wasmtime"));
    assert!(e.contains("the name of an embedded runtime"), "{e}");
}

#[test]
fn the_skeleton_adapter_speaks_the_protocol() {
    // adapters/skeleton.py greets and answers every request; its missing parts are named.
    let skeleton = concat!(env!("CARGO_MANIFEST_DIR"), "/../adapters/skeleton.py");
    let e = engine_error(&format!("python3 {skeleton}"));
    assert!(e.contains("\"compile\" failed: the skeleton does not implement `compile` yet"), "{e}");
}

#[test]
fn an_adapter_that_crashes_is_started_again_for_the_next_instance() {
    let dir = std::env::temp_dir().join(format!("witness-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Crashes on its first call ever (a marker file remembers), answers calls after that.
    let script = dir.join("crash_once.py");
    std::fs::write(
        &script,
        format!(
            r#"import json, os, sys
def send(m): print(json.dumps(m), flush=True)
send({{"adapter": "crash-once", "version": "0", "protocol": 2}})
for line in sys.stdin:
    request = json.loads(line)
    if request["op"] == "call" and not os.path.exists({marker:?}):
        open({marker:?}, "w").close()
        sys.exit(3)
    send({{"ok": None, "id": request["id"]}})
"#,
            marker = dir.join("crashed").display().to_string()
        ),
    )
    .unwrap();
    let scheme = witness::encode::names::NameScheme::Standard;
    let p = Prepared::from_wit("package t:t; world w { export f: func(); }", None, scheme, Default::default()).unwrap();
    let artifact = std::sync::Arc::new(Artifact::of(&p).unwrap());
    let selection = Selection::parse(&format!("process:python3 {}", script.display())).unwrap();
    let mut compiled = compile(&selection, &artifact).unwrap();
    {
        let mut instance = compiled.instantiate(Box::new(witness::runtime::NoHost)).unwrap().unwrap();
        let e = instance.call(0, &[]).unwrap_err();
        assert!(format!("{e:#}").contains("it exited"), "{e:#}");
    }
    // The next case gets a fresh adapter, not a broken pipe.
    let mut instance = compiled.instantiate(Box::new(witness::runtime::NoHost)).unwrap().unwrap();
    assert_eq!(instance.call(0, &[]).unwrap(), Ok(None));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The error of calling `f` (no result) once on a fresh instance of adapter script `script`.
fn first_call_error(name: &str, script: &str) -> String {
    let dir = std::env::temp_dir().join(format!("witness-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("adapter.py");
    std::fs::write(&path, script).unwrap();
    let scheme = witness::encode::names::NameScheme::Standard;
    let p = Prepared::from_wit("package t:t; world w { export f: func(); }", None, scheme, Default::default()).unwrap();
    let artifact = std::sync::Arc::new(Artifact::of(&p).unwrap());
    let selection = Selection::parse(&format!("process:python3 {}", path.display())).unwrap();
    let mut compiled = compile(&selection, &artifact).unwrap();
    let mut instance = compiled.instantiate(Box::new(witness::runtime::NoHost)).unwrap().unwrap();
    let e = format!("{:#}", instance.call(0, &[]).expect_err("the call must fail"));
    drop(instance);
    std::fs::remove_dir_all(&dir).unwrap();
    e
}

#[test]
fn a_reply_nobody_asked_for_or_of_the_wrong_shape_is_a_protocol_failure() {
    // Each script answers every request (numbered by witness) with `answer(request)`.
    let adapter = |name: &str, answer: &str| {
        format!(
            "import json, sys\ndef send(m): print(json.dumps(m), flush=True)\n\
             send({{\"adapter\": \"{name}\", \"protocol\": 2}})\n\
             for line in sys.stdin:\n    request = json.loads(line)\n    {answer}\n"
        )
    };
    let ok = r#"send({"ok": None, "id": request["id"]})"#;
    // Answers `instantiate` twice: the second reply would have been taken for the call's. It
    // is seen waiting when the call is written, or else by its id.
    let twice = adapter("twice", &format!("{ok}\n    if request[\"op\"] == \"instantiate\": {ok}"));
    let e = first_call_error("twice", &twice);
    assert!(e.contains("wrote a line no request asked for") || e.contains("answered request 2 a second time"), "{e}");
    // Answers the call (request 3) with the previous request's id, as a late second reply does.
    let stale = adapter("stale", r#"send({"ok": None, "id": request["id"] - (request["op"] == "call")})"#);
    let e = first_call_error("stale", &stale);
    assert!(e.contains("answered request 2 a second time while witness waited for request 3's reply"), "{e}");
    // Answers the call without an id.
    let bare = adapter("bare", r#"send({"ok": None, "id": None if request["op"] == "call" else request["id"]})"#);
    let e = first_call_error("bare", &bare);
    assert!(e.contains("a final reply without the `id` of its request (3)"), "{e}");
    // Returns a value from `f`, which has none.
    let valued = adapter("valued", r#"send({"ok": 7 if request["op"] == "call" else None, "id": request["id"]})"#);
    let e = first_call_error("valued", &valued);
    assert!(e.contains("returns 7 from `f`, which has no result"), "{e}");
}
