//! The conformance suites pass, one test per case (`cargo test --test conformance_suites --
//! strings/` runs the cases of strings.toml): every case's expectation (worked out from the
//! spec) holds on the reference, and every registered runtime, in every mode, agrees with the
//! reference or fails as an expectations file says. One more test checks that every
//! `[[case]]` of every file became a test, so a case cannot silently drop out.

use std::collections::BTreeMap;
use std::path::Path;

use libtest_mimic::{Arguments, Failed, Trial};
use witness::engine::Selection;
use witness::suite::cases::{CaseResult, Status, case_names, run_file, suite_files};
use witness::suite::expectations::Expectations;

fn expectations() -> Expectations {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../expectations");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    Expectations::load(&files).unwrap()
}

/// Whether libtest's filter arguments select the test `name` (as libtest-mimic decides).
fn selected(args: &Arguments, name: &str) -> bool {
    let matches = |f: &str| if args.exact { name == f } else { name.contains(f) };
    args.filter.as_deref().is_none_or(matches) && !args.skip.iter().any(|s| matches(s))
}

/// The failures among one case's rows, one line each.
fn failures(rows: &[CaseResult]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| match &r.status {
            Status::Failed(why) => Some(format!("{}:{} [{}] {}: {why}", r.file.display(), r.line, r.engine, r.name)),
            _ => None,
        })
        .collect()
}

fn main() {
    let args = Arguments::from_args();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/conformance");
    let engines = Selection::all();
    let expectations = expectations();
    let mut trials = vec![];
    let mut counts = vec![];
    for file in suite_files(&dir).expect("the suite directory") {
        let area = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let text = std::fs::read_to_string(&file).expect("a readable suite file");
        let headers = text.lines().filter(|l| l.trim() == "[[case]]").count();
        let names = case_names(&file);
        counts.push((file.display().to_string(), headers, names.as_ref().map(Vec::len)));
        let Some(names) = names else { continue };
        // Run the selected cases of the file together (its worlds compile once), then report
        // each case as its own test.
        let keep = |area: &str, name: &str, _: &[String]| selected(&args, &format!("{area}/{name}"));
        let mut rows: BTreeMap<String, Vec<CaseResult>> = BTreeMap::new();
        if names.iter().any(|n| selected(&args, &format!("{area}/{n}"))) {
            for r in run_file(&file, &engines, &expectations, &keep).expect("a suite file that parses") {
                rows.entry(r.name.clone()).or_default().push(r);
            }
        }
        for name in names {
            let case_rows = rows.remove(&name).unwrap_or_default();
            trials.push(Trial::test(format!("{area}/{name}"), move || {
                let failed = failures(&case_rows);
                match (case_rows.is_empty(), failed.is_empty()) {
                    (true, _) => Err(Failed::from("the case gave no result")),
                    (false, true) => Ok(()),
                    (false, false) => Err(Failed::from(failed.join("\n"))),
                }
            }));
        }
    }
    trials.push(Trial::test("every [[case]] of every suite file is a test", move || {
        let lost: Vec<String> = counts
            .iter()
            .filter(|(_, headers, parsed)| *parsed != Some(*headers))
            .map(|(file, headers, parsed)| format!("{file}: {headers} [[case]] headers, {parsed:?} cases parsed"))
            .collect();
        let total: usize = counts.iter().map(|(_, h, _)| h).sum();
        match (lost.is_empty(), total) {
            (true, t) if t > 0 => Ok(()),
            (true, _) => Err(Failed::from("no cases at all")),
            (false, _) => Err(Failed::from(lost.join("\n"))),
        }
    }));
    libtest_mimic::run(&args, trials).exit();
}
