//! The reference vectors of suites/reference (expected values from the spec) all pass.

use std::path::Path;

#[test]
fn reference_vectors_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/reference");
    let outcomes = witness::suite::vectors::run_dir(&dir).unwrap();
    assert!(outcomes.len() >= 60, "only {} vectors found", outcomes.len());
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.failure.as_ref().map(|f| format!("{}:{}: {}\n  {f}", o.file.display(), o.line, o.case)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_malformed_vector_fails_alone_with_its_line() {
    let dir = std::env::temp_dir().join(format!("witness-vectors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lift.txt"), "u8 | i32:1 | 1\nnot a type<< | i32:1 | 1\nu8 | i32:2 | 2\n").unwrap();
    let outcomes = witness::suite::vectors::run_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let failed: Vec<usize> = outcomes.iter().filter(|o| o.failure.is_some()).map(|o| o.line).collect();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(failed, vec![2]);
}
