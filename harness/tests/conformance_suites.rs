//! The conformance suites pass: every case's expectation (worked out from the spec) holds on
//! the reference, and every embedded engine agrees with the reference or fails as an
//! expectations file says. A malformed case fails alone, named by file and line.

use std::path::Path;

use witness::engine::ENGINES;
use witness::suite::cases::{Status, run_file, suite_files};
use witness::suite::expectations::Expectations;

fn expectations() -> Expectations {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../expectations");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    Expectations::load(&files).unwrap()
}

#[test]
fn conformance_suites_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/conformance");
    let engines: Vec<String> = ENGINES.iter().map(|s| s.to_string()).collect();
    let mut rows = vec![];
    for file in suite_files(&dir).unwrap() {
        rows.extend(run_file(&file, &engines, &expectations(), None).unwrap());
    }
    assert!(rows.iter().filter(|r| r.engine == "reference").count() >= 17, "too few cases");
    let failed: Vec<String> = rows
        .iter()
        .filter_map(|r| match &r.status {
            Status::Failed(why) => Some(format!("{}:{} [{}] {}: {why}", r.file.display(), r.line, r.engine, r.name)),
            _ => None,
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn a_wrong_expectation_or_a_bad_value_fails_alone_with_its_line() {
    let dir = std::env::temp_dir().join(format!("witness-suite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("s.toml");
    std::fs::write(
        &file,
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
    )
    .unwrap();
    let rows = run_file(&file, &["core".to_string()], &expectations(), None).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let reference: Vec<(usize, &str, bool)> = rows
        .iter()
        .filter(|r| r.engine == "reference")
        .map(|r| (r.line, r.name.as_str(), matches!(r.status, Status::Passed)))
        .collect();
    assert_eq!(reference, vec![(7, "right", true), (15, "wrong expectation", false), (23, "bad value", false)]);
}
