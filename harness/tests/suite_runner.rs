//! The suite runner itself: a wrong expectation or a bad value fails alone, named by file and
//! line; fused cases run on the composition modes only.

use std::path::Path;

use witness::engine::Selection;
use witness::suite::cases::{CaseResult, Status, run_file};
use witness::suite::expectations::Expectations;

fn expectations() -> Expectations {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../expectations");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    Expectations::load(&files).unwrap()
}

/// Run suite text `text` (written to a file of its own) on `engines`.
fn run_text(tag: &str, text: &str, engines: &[&str]) -> Vec<CaseResult> {
    let engines: Vec<Selection> = engines.iter().map(|e| Selection::parse(e).unwrap()).collect();
    let dir = std::env::temp_dir().join(format!("witness-suite-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("s.toml");
    std::fs::write(&file, text).unwrap();
    let rows = run_file(&file, &engines, &expectations(), &|_, _, _| true).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    rows
}

#[test]
fn a_wrong_expectation_or_a_bad_value_fails_alone_with_its_line() {
    let rows = run_text(
        "plain",
        r#"world = """
package t:t;
world w { export echo: func(s: string) -> string; }
"""

[[case]]
name = "right"
rules = ["store_string_copy"]
call = "echo"
args = ['"abc"']
returns = '"abc"'
expect = { realloc = [[0, 0, 1, 3]] }

[[case]]
name = "wrong expectation"
rules = ["store_string_copy"]
call = "echo"
args = ['"abc"']
returns = '"abc"'
expect = { realloc = [[0, 0, 1, 4]] }

[[case]]
name = "bad value"
rules = ["store_string_copy"]
call = "echo"
args = ['not wave']
returns = '"abc"'
"#,
        &["core"],
    );
    let reference: Vec<(usize, &str, bool)> = rows
        .iter()
        .filter(|r| r.engine == "reference")
        .map(|r| (r.line, r.name.as_str(), matches!(r.status, Status::Passed)))
        .collect();
    assert_eq!(reference, vec![(7, "right", true), (15, "wrong expectation", false), (23, "bad value", false)]);
    // The bad value's message names the field it is in, and quotes the part WAVE refused.
    let bad = rows.iter().find(|r| r.name == "bad value").unwrap();
    assert!(
        matches!(&bad.status, Status::Failed(why)
            if why.contains("`echo`: `args[0]` (parameter `s`)") && why.ends_with("at 0..3: `not`")),
        "{:?}",
        bad.status
    );
}

#[test]
fn fused_cases_run_on_the_composition_only_and_a_bad_one_fails_alone() {
    let rows = run_text(
        "fused",
        r#"world = """
package t:t;
interface api { take: func(s: string); }
world w { export api; }
"""

[[case]]
name = "plain"
rules = ["store_string_copy"]
call = "api.take"
args = ['"abc"']

[[case]]
name = "fused right"
rules = ["store_utf8_to_utf16"]
callee = { encoding = "utf16" }
imports = [{ call = "api.take", args = ['"ab"'] }]
expect = { callee = { realloc = [[0, 0, 2, 4]], params = [[65536, 2]] } }

[[case]]
name = "fused wrong expectation"
rules = ["store_utf8_to_utf16"]
callee = { encoding = "utf16" }
imports = [{ call = "api.take", args = ['"ab"'] }]
expect = { callee = { realloc = [[0, 0, 2, 2]] } }

[[case]]
name = "fused bad encoding"
rules = ["store_string_copy"]
callee = { encoding = "utf32" }
imports = [{ call = "api.take", args = ['"ab"'] }]

[[case]]
name = "fused with a host call"
rules = ["store_string_copy"]
callee = { encoding = "utf8" }
call = "api.take"
args = ['"ab"']
"#,
        &["core", "wasmtime-fused"],
    );
    let got: Vec<(usize, &str, &str, bool)> =
        rows.iter().map(|r| (r.line, r.name.as_str(), r.engine.as_str(), matches!(r.status, Status::Passed))).collect();
    assert_eq!(
        got,
        vec![
            (8, "plain", "reference", true),
            (8, "plain", "core", true),
            (14, "fused right", "reference", true),
            (14, "fused right", "wasmtime-fused", true),
            (21, "fused wrong expectation", "reference", false),
            (21, "fused wrong expectation", "wasmtime-fused", true),
            (28, "fused bad encoding", "reference", false),
            (34, "fused with a host call", "reference", false),
        ]
    );
}

#[test]
fn a_malformed_or_duplicate_case_fails_alone_with_its_line() {
    let rows = run_text(
        "schema",
        r#"world = """
package t:t;
world w { export echo: func(s: string) -> string; }
"""

[[case]]
name = "good"
rules = ["store_string_copy"]
call = "echo"
args = ['"abc"']
returns = '"abc"'

[[case]]
name = 'unknown field'
rules = ["store_string_copy"]
call = "echo"
colour = "blue"

[[case]]
name = "good"
rules = ["store_string_copy"]
call = "echo"
args = ['"x"']
returns = '"x"'
"#,
        &["core"],
    );
    let got: Vec<(usize, &str, &str, bool)> =
        rows.iter().map(|r| (r.line, r.name.as_str(), r.engine.as_str(), matches!(r.status, Status::Passed))).collect();
    assert_eq!(
        got,
        vec![
            (7, "good", "reference", true),
            (7, "good", "core", true),
            (14, "unknown field", "reference", false),
            (20, "good", "reference", false),
        ]
    );
    let why = |i: usize| match &rows[i].status {
        Status::Failed(why) => why.clone(),
        other => panic!("{other:?}"),
    };
    // serde's message ends in a newline, which would leave a blank line in the report.
    assert!(why(2).contains("unknown field `colour`") && !why(2).ends_with('\n'), "{:?}", why(2));
    assert!(why(3).contains("a second case named `good` (the first is at line 7)"), "{}", why(3));
}

#[test]
fn each_case_is_reported_as_soon_as_it_is_decided() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/conformance/strings.toml");
    let engines = [Selection::parse("core").unwrap()];
    // The names reported so far, seen each time a row comes: rows come case by case.
    let mut reported: Vec<String> = vec![];
    let mut at_report = vec![];
    let rows = witness::suite::cases::run_file_reporting(&dir, &engines, &expectations(), &|_, _, _| true, &mut |r| {
        at_report.push(reported.len());
        reported.push(r.name.clone());
    })
    .unwrap();
    assert_eq!(reported, rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>());
    assert!(rows.len() > 10 && at_report.windows(2).all(|w| w[1] == w[0] + 1));
}

#[test]
fn an_error_in_the_world_names_its_line_in_the_suite_file() {
    let rows = run_text(
        "badworld",
        r#"# a comment first
world = """
package t:t;
world w { export echo: func(s: strin) -> string; }
"""

[[case]]
name = "any"
rules = ["store_string_copy"]
call = "echo"
args = ['"abc"']
returns = '"abc"'
"#,
        &["core"],
    );
    let Status::Failed(why) = &rows[0].status else { panic!("{:?}", rows[0].status) };
    // `strin` is on line 4 of the file (line 2 of the world text).
    assert!(why.contains("s.toml:4:") && why.contains("strin"), "{why}");
}

#[test]
fn a_corruption_past_the_data_fails_the_case_instead_of_doing_nothing() {
    let rows = run_text(
        "corrupt",
        r#"world = """
package t:t;
world w { export get: func() -> u32; }
"""

[[case]]
name = "in range"
rules = ["lift_flat_values"]
call = "get"
returns = '7'
corrupt = { flat = [0, 9] }
expect = { result = '9' }

[[case]]
name = "past the flat values"
rules = ["lift_flat_values"]
call = "get"
returns = '7'
corrupt = { flat = [1, 9] }

[[case]]
name = "no bytes to corrupt"
rules = ["lift_flat_values"]
call = "get"
returns = '7'
corrupt = { byte = [0, 1] }
"#,
        &["core"],
    );
    let status = |name: &str| &rows.iter().find(|r| r.engine == "reference" && r.name == name).unwrap().status;
    // A u32 result is the i32 the guest returns, whatever was planned (lift_flat, `u32`).
    assert!(matches!(status("in range"), Status::Passed), "{:?}", status("in range"));
    assert!(
        matches!(status("past the flat values"), Status::Failed(why) if why.contains("flat value 1, but the guest hands over 1")),
        "{:?}",
        status("past the flat values")
    );
    assert!(
        matches!(status("no bytes to corrupt"), Status::Failed(why) if why.contains("byte 0, but the guest writes 0 bytes")),
        "{:?}",
        status("no bytes to corrupt")
    );
}

#[test]
fn a_case_listed_as_failing_may_fail_with_an_engine_error() {
    // An adapter that greets and compiles, then fails every call: each case is an engine error.
    let dir = std::env::temp_dir().join(format!("witness-listed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let adapter = dir.join("flaky.py");
    std::fs::write(
        &adapter,
        "import json, sys\nprint(json.dumps({'adapter': 'flaky', 'protocol': 2}), flush=True)\n\
         for line in sys.stdin:\n    r = json.loads(line)\n    \
         reply = {'error': 'boom'} if r['op'] == 'call' else {'ok': None}\n    \
         print(json.dumps({**reply, 'id': r['id']}), flush=True)\n",
    )
    .unwrap();
    let listed = dir.join("flaky.toml");
    std::fs::write(
        &listed,
        "[[failure]]\nengine = \"flaky\"\ncase = \"s/listed\"\nrule = \"store_string_copy\"\nevidence = \"test\"\n",
    )
    .unwrap();
    let file = dir.join("s.toml");
    let case = |name: &str| {
        format!(
            "[[case]]\nname = \"{name}\"\nrules = [\"store_string_copy\"]\ncall = \"echo\"\nargs = ['\"a\"']\nreturns = '\"a\"'\n\n"
        )
    };
    let world = "world = \"\"\"\npackage t:t;\nworld w { export echo: func(s: string) -> string; }\n\"\"\"\n\n";
    std::fs::write(&file, format!("{world}{}{}", case("listed"), case("not listed"))).unwrap();
    let engines = [Selection::parse(&format!("process:python3 {}", adapter.display())).unwrap()];
    let expectations = Expectations::load(&[&listed]).unwrap();
    let rows = run_file(&file, &engines, &expectations, &|_, _, _| true).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let flaky = |name: &str| rows.iter().find(|r| r.engine == "flaky" && r.name == name).unwrap().status.clone();
    assert!(matches!(flaky("listed"), Status::Xfail(why) if why.contains("engine error") && why.contains("boom")));
    assert!(matches!(flaky("not listed"), Status::Failed(why) if why.contains("engine error")));
}
