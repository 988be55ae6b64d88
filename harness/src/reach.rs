//! What a fuzzing run reached (`witness fuzz-report`): the inputs of a differential target (a
//! corpus folder, crash files) replayed on the reference and every default runtime (for
//! `composition`: the composition engines), counting
//! per engine the trap classes the cases ended with and the definitions.py functions that ran
//! (the reference's marks, `reference::reached`), so that coverage gaps show. Engines that
//! lower and lift with the reference (the core-module runtimes) mark functions themselves;
//! Wasmtime lowers and lifts with its own code, so its column is left empty (what witness's
//! glue runs there is not its ABI) and the reference's column says what its cases were
//! checked against.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};

use crate::contain::contain;
use crate::encode::script::Script;
use crate::engine::{Selection, compile};
use crate::fuzz::{differential_input, with_composition};
use crate::plan::{Misses, build_case};
use crate::reference::reached::{ASYNC_RULES, SYNC_RULES, take};
use crate::runtime::driver::run_case;
use crate::runtime::{Artifact, Case, Compiled, Prepared};

/// Counts over the replayed inputs.
#[derive(Default)]
pub struct Reach {
    pub inputs: u64,
    /// Inputs that made a case (the others run out first, or their world has nothing to call).
    pub cases: u64,
    /// Engines in the order they ran (the reference first).
    pub engines: Vec<String>,
    /// (engine, trap class or `none`) → cases.
    pub traps: BTreeMap<(String, String), u64>,
    /// (engine, definitions.py function) → cases that ran it.
    pub functions: BTreeMap<(String, &'static str), u64>,
    /// Inputs that could not be replayed (a harness failure), with the reason.
    pub failures: Vec<(PathBuf, String)>,
}

/// One world compiled on the reference and the engines.
struct WorldEngines {
    prepared: Prepared,
    artifact: Arc<Artifact>,
    /// The engines that run the world, with their selection.
    engines: Vec<(Box<dyn Compiled>, Selection)>,
}

/// The input files: each path, or the files of each folder (sorted).
pub fn input_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Replay `files` as inputs of `target`; `progress(done, total)` after each.
pub fn reach(target: &str, files: &[PathBuf], mut progress: impl FnMut(u64, u64)) -> Result<Reach> {
    let mut r = Reach::default();
    let mut worlds: HashMap<String, WorldEngines> = HashMap::new();
    let selections: Vec<Selection> = std::iter::once(Selection::reference())
        .chain(Selection::defaults().into_iter().filter(|s| !s.fused()))
        .collect();
    for (n, path) in files.iter().enumerate() {
        r.inputs += 1;
        let replayed = match target {
            "composition" => replay_composition(&mut r, path),
            _ => replay_one(&mut r, &mut worlds, &selections, target, path),
        };
        if let Err(e) = replayed {
            r.failures.push((path.clone(), format!("{e:#}")));
        }
        progress(n as u64 + 1, files.len() as u64);
    }
    Ok(r)
}

fn replay_one(
    r: &mut Reach,
    worlds: &mut HashMap<String, WorldEngines>,
    selections: &[Selection],
    target: &str,
    path: &Path,
) -> Result<()> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    // An input that makes no case is no failure: the target skips it too.
    let Ok(input) = differential_input(target, &data) else { return Ok(()) };
    let key = format!("{:?} {:?}\n{}", input.scheme, input.encoding, input.wit);
    if !worlds.contains_key(&key) {
        let prepared = Prepared::from_wit(&input.wit, Some("w"), input.scheme, input.encoding)?;
        let artifact = Arc::new(Artifact::of(&prepared)?);
        // A runtime that cannot run the world (an async one on the core runtimes) is left out,
        // as the targets leave it out.
        let mut engines = vec![];
        for s in selections {
            match compile(s, &artifact) {
                Ok(c) => engines.push((c, s.clone())),
                Err(e) if e.downcast_ref::<crate::runtime::Unsupported>().is_some() => {}
                Err(e) => return Err(e),
            }
        }
        worlds.insert(key.clone(), WorldEngines { prepared, artifact, engines });
    }
    let set = worlds.get_mut(&key).expect("inserted above");
    let case = build_case(&set.prepared, &input.steps, Misses::Ignore)?;
    r.cases += 1;
    for (engine, selection) in set.engines.iter_mut().map(|(c, s)| (c, &*s)) {
        // An engine with its own Canonical ABI runs witness's glue only (value conversion).
        r.run(engine.as_mut(), selection.reference_abi(), &set.artifact, &case, &[])?;
    }
    Ok(())
}

/// An input of `composition`: its fused case on the reference and the composition engines
/// (compiled once a world, as the target does). The composition engines are Wasmtime's fused
/// adapters, which mark no function: the reference's column says what the cases reached.
fn replay_composition(r: &mut Reach, path: &Path) -> Result<()> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    // The target signals a harness failure or an unexplained difference by panicking; here
    // that is this input's failure. An input that makes no case is none: the target skips it.
    contain("the composition target", || {
        with_composition(&data, |c, case| -> Result<()> {
            r.cases += 1;
            let reference = std::iter::once((c.reference.as_mut(), true));
            for (engine, marks) in reference.chain(c.engines.iter_mut().map(|e| (e.as_mut(), false))) {
                r.run(engine, marks, &c.artifact, &case.caller, &[&case.callee])?;
            }
            Ok(())
        })
        .transpose()
    })?;
    Ok(())
}

impl Reach {
    /// Run `case` on `engine` and count how it ended and, if `marks` (the engine lowers and
    /// lifts with the reference), the definitions.py functions it ran.
    fn run(
        &mut self,
        engine: &mut dyn Compiled,
        marks: bool,
        artifact: &Artifact,
        case: &Case,
        more: &[&Script],
    ) -> Result<()> {
        let label = engine.label().to_string();
        if !self.engines.contains(&label) {
            self.engines.push(label.clone());
        }
        // Marks left by building the case, or by the engine before, are not this run's.
        take();
        let outcome = run_case(engine, artifact, case, more)?;
        let marked = take();
        if marks {
            for function in marked {
                *self.functions.entry((label.clone(), function)).or_default() += 1;
            }
        }
        let class = outcome.trap_kind().map_or("none", |k| k.name()).to_string();
        *self.traps.entry((label, class)).or_default() += 1;
        Ok(())
    }

    /// The report: trap classes per engine, functions per engine, the functions no case ran.
    pub fn render(&self) -> String {
        let mut out = format!("{} inputs, {} made a case\n", self.inputs, self.cases);
        let header = |first: &str| {
            let mut line = format!("\n{first:<40}");
            for e in &self.engines {
                line.push_str(&format!(" {e:>14}"));
            }
            line + "\n"
        };
        out.push_str(&header("trap class (cases)"));
        let classes: std::collections::BTreeSet<&String> = self.traps.keys().map(|(_, c)| c).collect();
        for class in classes {
            out.push_str(&format!("{class:<40}"));
            for e in &self.engines {
                out.push_str(&format!(" {:>14}", self.traps.get(&(e.clone(), class.clone())).copied().unwrap_or(0)));
            }
            out.push('\n');
        }
        out.push_str(&header("definitions.py function (cases)"));
        let mut never = vec![];
        // 🔀 The async ABI's functions, where the inputs reached any of them.
        let reached = |f: &&str| self.engines.iter().any(|e| self.functions.contains_key(&(e.clone(), *f)));
        let rules: Vec<&str> = match ASYNC_RULES.iter().any(reached) {
            true => SYNC_RULES.iter().chain(ASYNC_RULES).copied().collect(),
            false => SYNC_RULES.to_vec(),
        };
        for f in &rules {
            let counts: Vec<u64> =
                self.engines.iter().map(|e| self.functions.get(&(e.clone(), *f)).copied().unwrap_or(0)).collect();
            if counts.iter().all(|&c| c == 0) {
                never.push(*f);
                continue;
            }
            out.push_str(&format!("{f:<40}"));
            for c in counts {
                out.push_str(&format!(" {:>14}", if c == 0 { "-".to_string() } else { c.to_string() }));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "\nnever reached ({} of {} functions): {}\n",
            never.len(),
            rules.len(),
            if never.is_empty() { "none".to_string() } else { never.join(", ") }
        ));
        out.push_str(
            "(an engine that lowers and lifts with its own code, such as wasmtime, marks no function: its cases \
             were checked against the reference's column)\n",
        );
        for (path, why) in &self.failures {
            out.push_str(&format!("could not replay {}: {why}\n", path.display()));
        }
        out
    }
}
