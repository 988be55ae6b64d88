//! `witness suite`: run the conformance suites on the embedded engines.

use std::collections::BTreeMap;
use std::path::PathBuf;

use std::io::Write as _;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use indicatif::ProgressBar;

use crate::runtime::model::NAME as REFERENCE;
use crate::suite::cases::{Status, run_file_reporting, suite_files, text_filter};
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
    #[arg(long = "engine", visible_alias = "engines", default_values_t = crate::engine::Selection::defaults().iter().map(|s| s.to_string()))]
    engines: Vec<String>,
    /// How long an adapter may take to read one request or write one line, in seconds
    /// (a transpiling compile included); an adapter over it is killed, with its children.
    #[arg(long, value_name = "SECS")]
    adapter_timeout: Option<u64>,
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

/// One cell of the summary: the passed count, then `nF` failed, `nX` xfail, `nS` skipped.
fn cell([p, f, x, s]: [u32; 4]) -> String {
    let mut out = p.to_string();
    for (n, tag) in [(f, 'F'), (x, 'X'), (s, 'S')] {
        if n > 0 {
            out.push_str(&format!(" {n}{tag}"));
        }
    }
    out
}

/// Area × engine, with an `all` row; engines as columns so the table reads at a glance.
fn summary_table(table: &BTreeMap<(String, String), [u32; 4]>) -> String {
    let engines: Vec<&String> = {
        let mut e: Vec<&String> = table.keys().map(|(_, e)| e).collect();
        // The reference column (the expectations themselves) first.
        e.sort_by_key(|e| (e.as_str() != REFERENCE, e.as_str()));
        e.dedup();
        e
    };
    let areas: Vec<&String> = {
        let mut a: Vec<&String> = table.keys().map(|(a, _)| a).collect();
        a.dedup();
        a
    };
    let mut totals: BTreeMap<&String, [u32; 4]> = BTreeMap::new();
    for ((_, engine), counts) in table {
        let t = totals.entry(engine).or_default();
        t.iter_mut().zip(counts).for_each(|(t, c)| *t += c);
    }
    let row_of = |get: &dyn Fn(&String) -> Option<[u32; 4]>| -> Vec<String> {
        engines.iter().map(|e| get(e).map_or("-".to_string(), cell)).collect()
    };
    let mut rows: Vec<(String, Vec<String>)> =
        areas.iter().map(|a| ((*a).clone(), row_of(&|e| table.get(&((*a).clone(), e.clone())).copied()))).collect();
    rows.push(("all".into(), row_of(&|e| totals.get(e).copied())));
    let widths: Vec<usize> = engines
        .iter()
        .enumerate()
        .map(|(i, e)| rows.iter().map(|(_, cells)| cells[i].len()).max().unwrap_or(0).max(e.len()))
        .collect();
    let line = |first: &str, cells: &[String]| {
        let cells: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect();
        format!("{first:<14} {}\n", cells.join("  "))
    };
    let mut out = line("area", &engines.iter().map(|e| e.to_string()).collect::<Vec<_>>());
    for (area, cells) in &rows {
        out.push_str(&line(area, cells));
    }
    out.push_str("(passed; F failed, X expected failures, S skipped; - not run)\n");
    out
}

pub fn run(args: SuiteArgs) -> Result<()> {
    let paths = if args.expectations.is_empty() { super::diff::default_expectations() } else { args.expectations };
    let expectations = Expectations::load(&paths)?;
    let files = suite_files(&args.suite)?;
    if files.is_empty() {
        bail!("no suite files (*.toml) in {}", args.suite.display());
    }
    let engines = crate::engine::Selection::parse_args_with(&args.engines, args.adapter_timeout)?;
    if engines.is_empty() {
        bail!("no engine to run: --engine names none");
    }
    // Output files are created before the run, so a path that cannot be written costs nothing.
    let create =
        |p: &std::path::PathBuf| std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()));
    let mut json = args.json.as_ref().map(create).transpose()?.map(std::io::BufWriter::new);
    let junit_file = args.junit.as_ref().map(create).transpose()?;
    let bar = ProgressBar::new(files.len() as u64);
    let mut rows = vec![];
    let mut broken_files = 0;
    // A failure to write the JSON lines stops them, not the run; it is reported at the end.
    let mut json_failed: Option<anyhow::Error> = None;
    for file in files {
        bar.set_message(file.display().to_string());
        // Each result goes to the JSON lines as soon as its case is decided.
        let mut write_json = |row: &crate::suite::cases::CaseResult| {
            if let (Some(out), None) = (json.as_mut(), &json_failed) {
                let written = serde_json::to_string(row)
                    .map_err(anyhow::Error::from)
                    .and_then(|l| writeln!(out, "{l}").and_then(|()| out.flush()).map_err(Into::into));
                json_failed = written.err();
            }
        };
        let keep = text_filter(args.filter.as_deref());
        let ran = run_file_reporting(&file, &engines, &expectations, &keep, &mut write_json);
        match ran {
            Ok(r) => rows.extend(r),
            Err(e) => {
                bar.suspend(|| println!("FAIL {}: {e:#}", file.display()));
                broken_files += 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    // file stem (the area) × engine → passed, failed, xfail, skipped
    let mut table: BTreeMap<(String, String), [u32; 4]> = BTreeMap::new();
    for r in &rows {
        let e = table.entry((r.area().to_string(), r.engine.clone())).or_default();
        match &r.status {
            Status::Passed => e[0] += 1,
            Status::Failed(_) => e[1] += 1,
            Status::Xfail(_) => e[2] += 1,
            Status::Skipped(_) => e[3] += 1,
        }
    }
    print!("{}", summary_table(&table));
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
        let named = rows.iter().filter(|r| r.engine == REFERENCE).flat_map(|r| r.rules.iter().map(String::as_str));
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
    // A filtered run leaves cases out, so entries for them are not stale.
    if args.filter.is_none() && broken_files == 0 {
        let ran = rows.iter().map(|r| (r.engine.as_str(), r.area(), r.name.as_str()));
        for stale in expectations.unused(ran) {
            println!("\nwarning: {stale}");
        }
    }
    for misspelt in expectations.misspelt_engines(rows.iter().map(|r| r.engine.as_str())) {
        println!("\nwarning: {misspelt}");
    }
    let count = |f: fn(&Status) -> bool| rows.iter().filter(|r| f(&r.status)).count();
    println!(
        "\n{} passed, {} failed, {} expected failures, {} skipped",
        count(|s| matches!(s, Status::Passed)),
        failed.len(),
        count(|s| matches!(s, Status::Xfail(_))),
        count(|s| matches!(s, Status::Skipped(_)))
    );
    if let (Some(e), Some(path)) = (json_failed, &args.json) {
        return Err(e.context(format!("cannot write {}", path.display())));
    }
    if let (Some(mut file), Some(path)) = (junit_file, &args.junit) {
        file.write_all(junit(&rows).as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !failed.is_empty() || broken_files > 0 {
        bail!("{} case result(s) failed, {broken_files} suite file(s) unreadable", failed.len());
    }
    if !rows.iter().any(|r| r.engine != REFERENCE) {
        match (&args.filter, rows.is_empty()) {
            (Some(f), true) => bail!("nothing was compared: no case's name or rules contain `{f}`"),
            _ => bail!("nothing was compared: no engine ran a case"),
        }
    }
    Ok(())
}

/// `s` as XML attribute text: markup escaped, white space kept as character references, and
/// the characters XML 1.0 does not allow at all (other control characters, U+FFFE, U+FFFF)
/// written out as `\u{..}`, so the report stays well-formed whatever a name or message holds.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push_str(&format!("&#{};", c as u32)),
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
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
            out.push_str(&format!("    <testcase classname=\"{}\" name=\"{}\"", xml(r.area()), xml(&r.name)));
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

#[cfg(test)]
mod tests {
    /// XML 1.0's `Char` production, written from the standard (section 2.2).
    fn xml_char(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
    }

    #[test]
    fn xml_text_is_well_formed_whatever_it_holds() {
        let nasty = "a\u{0}b\u{1b}[31m\u{7}c\u{fffe}\"<&>'\n\td";
        let out = super::xml(nasty);
        assert!(out.chars().all(xml_char), "{out:?}");
        assert!(!out.contains(['<', '>', '"', '\n']), "{out:?}");
        assert_eq!(out, "a\\u{0}b\\u{1b}[31m\\u{7}c\\u{fffe}&quot;&lt;&amp;&gt;'&#10;&#9;d");
    }
}
