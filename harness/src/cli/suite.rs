//! `witness suite`: run the conformance suites on the embedded engines.

use std::collections::BTreeMap;
use std::path::PathBuf;

use std::io::Write as _;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use indicatif::ProgressBar;

use crate::suite::cases::{Status, run_file, suite_files};
use crate::suite::coverage::coverage;
use crate::suite::expectations::Expectations;

#[derive(Args)]
pub struct SuiteArgs {
    /// The directory of suite files.
    #[arg(long, default_value = "suites/conformance")]
    suite: PathBuf,
    /// Engines to run: embedded names (comma-separated; `wasmtime-fused` runs the fused cases,
    /// the others the plain ones) or `process:CMD` / `process-core:CMD` (an adapter,
    /// adapters/PROTOCOL.md); repeatable.
    #[arg(long = "engine", visible_alias = "engines", default_values_t = crate::engine::ENGINES.iter().chain([&crate::engine::fused::FUSED]).map(|s| s.to_string()))]
    engines: Vec<String>,
    /// Only cases whose name or rules contain this text.
    #[arg(long)]
    filter: Option<String>,
    /// Expectations files (default: expectations/*.toml if present).
    #[arg(long)]
    expectations: Vec<PathBuf>,
    /// Write every result as a JSON line, as the run goes (a killed run keeps what it did).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a JUnit XML report at the end.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Also print which definitions.py rules the suites name, and how often.
    #[arg(long)]
    coverage: bool,
}

pub fn run(args: SuiteArgs) -> Result<()> {
    let paths = if args.expectations.is_empty() { super::diff::default_expectations() } else { args.expectations };
    let expectations = Expectations::load(&paths)?;
    let files = suite_files(&args.suite)?;
    let engines = crate::engine::split_engine_args(&args.engines);
    let mut json = match &args.json {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => None,
    };
    let bar = ProgressBar::new(files.len() as u64);
    let mut rows = vec![];
    let mut broken_files = 0;
    for file in files {
        bar.set_message(file.display().to_string());
        match run_file(&file, &engines, &expectations, args.filter.as_deref()) {
            Ok(r) => {
                if let Some(out) = json.as_mut() {
                    for row in &r {
                        writeln!(out, "{}", serde_json::to_string(row)?)?;
                    }
                    out.flush()?;
                }
                rows.extend(r);
            }
            Err(e) => {
                bar.suspend(|| println!("FAIL {}: {e:#}", file.display()));
                broken_files += 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(path) = &args.junit {
        std::fs::write(path, junit(&rows)).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // file stem (the area) × engine → passed, failed, xfail, skipped
    let mut table: BTreeMap<(String, String), [u32; 4]> = BTreeMap::new();
    for r in &rows {
        let area = r.file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let e = table.entry((area, r.engine.clone())).or_default();
        match &r.status {
            Status::Passed => e[0] += 1,
            Status::Failed(_) => e[1] += 1,
            Status::Xfail(_) => e[2] += 1,
            Status::Skipped(_) => e[3] += 1,
        }
    }
    // The totals per engine, as area `all`, after the areas.
    let mut totals: BTreeMap<String, [u32; 4]> = BTreeMap::new();
    for ((_, engine), counts) in &table {
        let t = totals.entry(engine.clone()).or_default();
        t.iter_mut().zip(counts).for_each(|(t, c)| *t += c);
    }
    let w = table.keys().map(|(_, e)| e.len()).max().unwrap_or(0).max(6);
    println!("{:<14} {:<w$} {:>6} {:>6} {:>6} {:>7}", "area", "engine", "passed", "failed", "xfail", "skipped");
    let all = totals.iter().map(|(e, c)| (("all".to_string(), e.clone()), c));
    for ((area, engine), [p, f, x, s]) in table.iter().map(|(k, c)| (k.clone(), c)).chain(all) {
        println!("{area:<14} {engine:<w$} {p:>6} {f:>6} {x:>6} {s:>7}");
    }
    let failed: Vec<_> = rows.iter().filter(|r| matches!(r.status, Status::Failed(_))).collect();
    for r in &failed {
        if let Status::Failed(why) = &r.status {
            println!(
                "\nFAIL {}:{} [{}] {} ({})\n  {why}",
                r.file.display(),
                r.line,
                r.engine,
                r.name,
                r.rules.join(", ")
            );
        }
    }
    if args.coverage {
        let named = rows.iter().filter(|r| r.engine == "reference").flat_map(|r| r.rules.iter().map(String::as_str));
        let cov = coverage(named);
        let covered = cov.iter().filter(|(_, n)| *n > 0).count();
        println!("\nrule coverage: {covered} of {} definitions.py functions have cases (cases per rule)", cov.len());
        for row in cov.chunks(3) {
            let cells: Vec<String> = row.iter().map(|(rule, n)| format!("{rule:<40}{n:>4}")).collect();
            println!("  {}", cells.join("   "));
        }
        let missing: Vec<&str> = cov.iter().filter(|(_, n)| *n == 0).map(|(r, _)| *r).collect();
        if !missing.is_empty() {
            println!("no cases yet: {}", missing.join(", "));
        }
    }
    let passed = rows.iter().filter(|r| r.status == Status::Passed).count();
    println!("\n{passed} passed, {} failed", failed.len());
    if !failed.is_empty() || broken_files > 0 {
        bail!("{} case result(s) failed, {broken_files} suite file(s) unreadable", failed.len());
    }
    Ok(())
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A JUnit report: one testsuite per engine, one testcase per case.
fn junit(rows: &[crate::suite::cases::CaseResult]) -> String {
    let mut by_engine: BTreeMap<&str, Vec<&crate::suite::cases::CaseResult>> = BTreeMap::new();
    for r in rows {
        by_engine.entry(r.engine.as_str()).or_default().push(r);
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"witness\">\n");
    for (engine, rows) in by_engine {
        let failures = rows.iter().filter(|r| matches!(r.status, Status::Failed(_))).count();
        let skipped = rows.iter().filter(|r| matches!(r.status, Status::Skipped(_) | Status::Xfail(_))).count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">\n",
            xml(engine),
            rows.len()
        ));
        for r in rows {
            let class = r.file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            out.push_str(&format!("    <testcase classname=\"{}\" name=\"{}\"", xml(class), xml(&r.name)));
            match &r.status {
                Status::Passed => out.push_str("/>\n"),
                Status::Failed(why) => {
                    out.push_str(&format!(">\n      <failure message=\"{}\"/>\n    </testcase>\n", xml(why)))
                }
                Status::Xfail(why) | Status::Skipped(why) => {
                    out.push_str(&format!(">\n      <skipped message=\"{}\"/>\n    </testcase>\n", xml(why)))
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
