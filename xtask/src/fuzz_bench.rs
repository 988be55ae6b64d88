//! `cargo xtask fuzz-bench`: the fuzz targets' throughput under libFuzzer. Each target is built
//! with `cargo fuzz build -O` once per sanitizer, then run for a fixed time on an empty corpus;
//! the table gives executions a second and peak RSS, side by side in one run, with the ratio of
//! each target to the first one named and to the anchor. A benchmark to read, not a test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

/// Wasmtime's own `component_api` fuzz target, which also compiles a component an input, ran
/// at 4.3 executions a second with ASan on the project's 2-core machine (peak RSS 630 MB).
const ANCHOR_EXECS_PER_SEC: f64 = 4.3;

/// One target's run.
struct Run {
    target: String,
    sanitizer: String,
    execs: u64,
    seconds: f64,
    peak_rss_mb: u64,
    /// Executions a second over the run's second half, from libFuzzer's status lines as they
    /// came: the rate once one-time costs (a target's caches) are behind. `None` when fewer
    /// than two status lines came in that half.
    second_half: Option<f64>,
    /// Why the run ended before its time, if it did (a finding, or libFuzzer's limits).
    stopped: Option<String>,
}

/// The triple cargo-fuzz builds for: the host's.
fn host_triple() -> Result<String> {
    let out = Command::new("rustc").arg("-vV").output().context("cannot run rustc -vV")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.strip_prefix("host: ")).map(str::to_string).context("rustc -vV names no host triple")
}

/// Where `cargo fuzz build -s SANITIZER` puts its build: fuzz/target for `none` (shared with
/// .clusterfuzzlite/build.sh and runs by hand), a folder per sanitizer otherwise, so that
/// switching sanitizers rebuilds nothing.
fn target_dir(fuzz: &Path, sanitizer: &str) -> PathBuf {
    match sanitizer {
        "none" => fuzz.join("target"),
        other => fuzz.join("target").join(other),
    }
}

fn build(fuzz: &Path, sanitizer: &str, target: &str) -> Result<()> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(fuzz).args(["fuzz", "build", "-O", "-s", sanitizer, "--target-dir"]);
    cmd.arg(target_dir(fuzz, sanitizer)).arg(target);
    if sanitizer != "none" {
        // Sanitizers need -Z flags; the stable toolchain takes them with RUSTC_BOOTSTRAP.
        cmd.env("RUSTC_BOOTSTRAP", "1");
    }
    eprintln!("== cargo fuzz build -O -s {sanitizer} {target}");
    let status = cmd.status().context("cannot run cargo fuzz (cargo install cargo-fuzz --locked)")?;
    if !status.success() {
        bail!("cargo fuzz build -s {sanitizer} {target} failed ({status})");
    }
    Ok(())
}

/// The target's own libFuzzer options (fuzz/options/TARGET.options, which build.sh puts into
/// ClusterFuzz's options file too), as flags: `key = value` lines of its `[libfuzzer]` section.
fn target_options(fuzz: &Path, target: &str) -> Result<Vec<String>> {
    let path = fuzz.join("options").join(format!("{target}.options"));
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(vec![]) };
    let mut flags = vec![];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line == "[libfuzzer]" {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!("{}:{}: not `key = value`: {line}", path.display(), n + 1);
        };
        flags.push(format!("-{}={}", key.trim(), value.trim()));
    }
    Ok(flags)
}

/// The value of libFuzzer's final `stat::NAME:` line.
fn stat(log: &str, name: &str) -> Option<u64> {
    let prefix = format!("stat::{name}:");
    log.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

fn run(fuzz: &Path, triple: &str, sanitizer: &str, target: &str, seconds: u64) -> Result<Run> {
    let binary = target_dir(fuzz, sanitizer).join(triple).join("release").join(target);
    let scratch = std::env::temp_dir().join(format!("witness-fuzz-bench-{}-{sanitizer}-{target}", std::process::id()));
    let corpus = scratch.join("corpus");
    std::fs::create_dir_all(&corpus).with_context(|| format!("cannot make {}", corpus.display()))?;
    let options = target_options(fuzz, target)?;
    eprintln!("== {target} ({sanitizer}), {seconds} s on an empty corpus {}", options.join(" "));
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .arg(&corpus)
        .args(&options)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-dict={}", fuzz.join("witness.dict").display()))
        .arg(format!("-artifact_prefix={}/", scratch.display()))
        .args(["-print_final_stats=1", "-max_len=4096", "-len_control=0", "-rss_limit_mb=4096"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    // libFuzzer's status lines (`#N NEW ...`, `#N pulse ...`), timed as they come.
    let mut log = String::new();
    let mut status: Vec<(f64, u64)> = vec![];
    let stderr = child.stderr.take().context("no stderr pipe")?;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.unwrap_or_default();
        if let Some(n) = line.strip_prefix('#').and_then(|l| l.split_whitespace().next()).and_then(|n| n.parse().ok()) {
            status.push((started.elapsed().as_secs_f64(), n));
        }
        log.push_str(&line);
        log.push('\n');
    }
    let exit = child.wait().with_context(|| format!("cannot wait for {}", binary.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    let half: Vec<&(f64, u64)> = status.iter().filter(|(t, _)| *t >= seconds as f64 / 2.0).collect();
    let second_half = match (half.first(), half.last()) {
        (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => Some(n1.saturating_sub(*n0) as f64 / (t1 - t0)),
        _ => None,
    };
    let stopped = (!exit.success()).then(|| {
        let reason = log
            .lines()
            .find(|l| l.contains("ERROR: libFuzzer") || l.contains("==ERROR") || l.contains("panicked at"))
            .unwrap_or("no reason printed")
            .trim()
            .to_string();
        let saved = log.lines().find(|l| l.contains("Test unit written to")).unwrap_or("").trim().to_string();
        format!("{reason} {saved}")
    });
    let execs = stat(&log, "number_of_executed_units")
        .with_context(|| format!("{target} ({sanitizer}) printed no final stats; its log ends:\n{}", tail(&log)))?;
    if stopped.is_none() {
        // Nothing to keep: a finding's input stays there, named in the table.
        let _ = std::fs::remove_dir_all(&scratch);
    }
    Ok(Run {
        target: target.into(),
        sanitizer: sanitizer.into(),
        execs,
        seconds: elapsed,
        peak_rss_mb: stat(&log, "peak_rss_mb").unwrap_or(0),
        second_half,
        stopped,
    })
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

pub fn fuzz_bench(root: &Path, targets: &[String], sanitizers: &[String], seconds: u64) -> Result<bool> {
    let fuzz = root.join("fuzz");
    let triple = host_triple()?;
    // Every build first, so that no build runs beside a measurement.
    for sanitizer in sanitizers {
        for target in targets {
            build(&fuzz, sanitizer, target)?;
        }
    }
    let mut runs = vec![];
    for sanitizer in sanitizers {
        for target in targets {
            runs.push(run(&fuzz, &triple, sanitizer, target, seconds)?);
        }
    }
    println!(
        "\n{:<22} {:<9} {:>9} {:>8} {:>12} {:>10} {:>9} {:>11}",
        "target", "sanitizer", "execs", "exec/s", "2nd half/s", "peak RSS", "× first", "× anchor"
    );
    for r in &runs {
        let rate = r.execs as f64 / r.seconds;
        let first = runs.iter().find(|f| f.sanitizer == r.sanitizer).map_or(rate, |f| f.execs as f64 / f.seconds);
        let half = r.second_half.map_or("-".to_string(), |h| format!("{h:.1}"));
        println!(
            "{:<22} {:<9} {:>9} {:>8.1} {:>12} {:>7} MB {:>8.2}x {:>10.1}x",
            r.target,
            r.sanitizer,
            r.execs,
            rate,
            half,
            r.peak_rss_mb,
            rate / first,
            rate / ANCHOR_EXECS_PER_SEC
        );
    }
    println!(
        "\n× first: against the first target named, same sanitizer. × anchor: against Wasmtime's \
         component_api target with ASan ({ANCHOR_EXECS_PER_SEC} exec/s on this project's 2-core machine). \
         2nd half/s: the rate over the run's second half (one-time costs such as a target's caches behind), \
         from libFuzzer's status lines."
    );
    let mut clean = true;
    for r in runs.iter().filter(|r| r.stopped.is_some()) {
        clean = false;
        println!("{} ({}) stopped early: {}", r.target, r.sanitizer, r.stopped.as_deref().unwrap_or(""));
    }
    Ok(clean)
}
