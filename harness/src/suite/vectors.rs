//! Reference vectors (`suites/reference/*.txt`): one case per line, expected values taken from
//! the spec, checked against the reference. They are the reference's self-check: the first
//! thing `cargo xtask conformance` runs.
//!
//! `layout.txt`: `TYPE | SIZE ALIGN | FLAT TYPES`.
//! `lift.txt`:   `TYPE | FLAT VALUES | EXPECTED [| ENCODING]`, EXPECTED a WAVE value or `trap KIND`.
//! Blank lines and `#` comments are ignored; `# rules: a, b` names the definitions.py
//! functions the following cases check.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::reference::context::ComponentInstance;
use crate::reference::flatten::flatten_type;
use crate::reference::layout::{alignment, elem_size};
use crate::reference::lift_flat::lift_value;
use crate::reference::memory::BumpHeap;
use crate::reference::types::{PtrType, StringEncoding};
use crate::reference::value::Flat;
use crate::world::typexpr::parse_type;
use crate::world::wave::{parse_value, print_value};
use crate::world::wit::GUEST_INSTANCE;

/// How one reference vector came out.
#[derive(Debug)]
pub struct VectorResult {
    pub file: PathBuf,
    pub line: usize,
    pub rules: String,
    pub case: String,
    /// `None` when it passed, else what went wrong.
    pub failure: Option<String>,
}

/// Run every `*.txt` file in `dir`. A malformed line fails alone, with its file and line.
pub fn run_dir(dir: &Path) -> Result<Vec<VectorResult>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read suite directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no *.txt vector files in {}", dir.display());
    }
    let mut out = vec![];
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let kind = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let mut rules = String::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(r) = line.strip_prefix("# rules:") {
                rules = r.trim().to_string();
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let failure = match kind.as_str() {
                "layout" => check_layout(line),
                "lift" => check_lift(line),
                other => Err(anyhow!("unknown vector file kind `{other}` (expected layout or lift)")),
            }
            .err()
            .map(|e| format!("{e:#}"));
            out.push(VectorResult {
                file: file.clone(),
                line: i + 1,
                rules: rules.clone(),
                case: line.to_string(),
                failure,
            });
        }
    }
    Ok(out)
}

fn columns(line: &str, min: usize, max: usize) -> Result<Vec<&str>> {
    let cols: Vec<&str> = line.split('|').map(str::trim).collect();
    if cols.len() < min || cols.len() > max {
        bail!("expected {min} to {max} columns separated by `|`, found {}", cols.len());
    }
    Ok(cols)
}

fn check_layout(line: &str) -> Result<()> {
    let cols = columns(line, 3, 3)?;
    let t = parse_type(cols[0], None)?;
    let nums: Vec<u64> =
        cols[1].split_whitespace().map(|n| n.parse()).collect::<Result<_, _>>().context("SIZE ALIGN")?;
    let [size, align] = nums[..] else { bail!("expected `SIZE ALIGN`, found `{}`", cols[1]) };
    let flat: Vec<&str> = cols[2].split_whitespace().collect();
    let pt = PtrType::I32;
    let got_flat: Vec<&str> = flatten_type(&t, pt).iter().map(|c| c.name()).collect();
    let got = (elem_size(&t, pt), alignment(&t, pt), got_flat);
    if got != (size, align, flat.clone()) {
        bail!(
            "expected size {size} align {align} flat ({}), reference says size {} align {} flat ({})",
            flat.join(" "),
            got.0,
            got.1,
            got.2.join(" ")
        );
    }
    Ok(())
}

fn check_lift(line: &str) -> Result<()> {
    let cols = columns(line, 3, 4)?;
    let t = parse_type(cols[0], None)?;
    let flats: Vec<Flat> =
        cols[1].split(',').map(|s| Flat::parse(s.trim()).map_err(|e| anyhow!(e))).collect::<Result<_>>()?;
    let encoding = match cols.get(3) {
        Some(e) => StringEncoding::parse(e).ok_or_else(|| anyhow!("unknown encoding `{e}`"))?,
        None => StringEncoding::Utf8,
    };
    let mut heap = BumpHeap::new(BumpHeap::DEFAULT_MEMORY_SIZE, BumpHeap::DEFAULT_HEAP_BASE);
    let mut inst = ComponentInstance::new(GUEST_INSTANCE);
    let lifted = lift_value(&mut inst, &t, flats, encoding, &mut heap);
    let expected = cols[2];
    match (expected.strip_prefix("trap "), lifted) {
        (Some(kind), Err(trap)) if trap.kind.name() == kind.trim() => Ok(()),
        (Some(kind), Err(trap)) => bail!("expected trap {kind}, reference traps {trap}"),
        (Some(kind), Ok(v)) => bail!("expected trap {kind}, reference lifts {}", show(&t, &v)),
        (None, Err(trap)) => bail!("expected {expected}, reference traps {trap}"),
        (None, Ok(have)) => {
            let want = parse_value(&t, expected, StringEncoding::Utf8)?;
            if !want.matches(&have) {
                bail!("expected {expected}, reference lifts {}", show(&t, &have));
            }
            Ok(())
        }
    }
}

fn show(t: &crate::reference::ValType, v: &crate::reference::Value) -> String {
    print_value(t, v).unwrap_or_else(|_| format!("{v:?}"))
}
