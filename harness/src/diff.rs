//! The differential campaign behind `witness diff` and the `differential` fuzz target: seeded
//! worlds, seeded plans, every engine against the reference, divergences sorted into expected
//! (an expectations file explains them) and new ones, each with a reproducer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use arbitrary::Unstructured;

use crate::encode::names::NameScheme;
use crate::engine::Selection;
use crate::oracle::{Difference, compare, compare_fused, compile_difference};
use crate::plan::fused::arbitrary_fused_case;
use crate::plan::resources::arbitrary_resource_steps;
use crate::plan::{Misses, PlanConfig, StepPlan, arbitrary_call, build_case};
use crate::reference::types::StringEncoding;
use crate::runtime::driver::run_case;
use crate::runtime::fused::{FusedCase, FusedPrepared};
use crate::runtime::model::NAME as REFERENCE;
use crate::runtime::{Artifact, Case, CompileFailed, Compiled, Outcome, Prepared, Unsupported};
use crate::suite::expectations::Expectations;
use crate::world::arbitrary::seed_bytes;
use crate::world::generate::{GeneratedWorld, WorldConfig, arbitrary_world};

/// A user's world to run a campaign on instead of generated ones.
#[derive(Clone, Debug)]
pub struct UserWorld {
    pub path: PathBuf,
    /// The package as WIT text (dependencies nested), so it travels into repros.
    pub text: String,
    pub world: String,
    /// 🔀 The world has async functions (or stream, future or error-context types), so its
    /// guests take legacy names: cm32p2 names have no async form.
    pub asynchronous: bool,
}

impl UserWorld {
    /// Load a WIT file, a WIT directory with deps/, or a wasm-encoded WIT package.
    pub fn load(path: &Path, world: Option<&str>) -> Result<UserWorld> {
        let mut wit = crate::world::wit::Wit::load(path)?;
        let id = wit.world(world).with_context(|| format!("{}: no world to run", path.display()))?;
        wit.add_driver(id);
        let user = UserWorld {
            path: path.to_path_buf(),
            text: wit.to_text()?,
            world: wit.resolve.worlds[id].name.clone(),
            asynchronous: crate::encode::guest::is_async_world(&wit.resolve, id),
        };
        // A world witness cannot run fails here, once, with the reason.
        Prepared::from_wit(&user.text, Some(&user.world), user.scheme(NameScheme::Standard), StringEncoding::Utf8)
            .with_context(|| format!("{}: world `{}` cannot run", path.display(), user.world))?;
        Ok(user)
    }

    /// The name scheme of a campaign world that would take `scheme`.
    pub fn scheme(&self, scheme: NameScheme) -> NameScheme {
        if self.asynchronous { NameScheme::Legacy } else { scheme }
    }
}

impl DiffConfig {
    /// 🔀 The async campaign (`witness diff --async`): about half the functions `async func`,
    /// legacy names (cm32p2 names have no async form).
    pub fn asynchronous() -> DiffConfig {
        let mut cfg = DiffConfig { names: Some(NameScheme::Legacy), ..DiffConfig::default() };
        cfg.world_config.async_prob = (1, 2);
        cfg
    }
}

/// Knobs of a campaign.
#[derive(Clone, Debug)]
pub struct DiffConfig {
    pub seed: u64,
    pub worlds: u64,
    pub cases: u64,
    pub engines: Vec<Selection>,
    /// One scheme for every world, or alternate (None).
    pub names: Option<NameScheme>,
    /// Run only case `c` of each world (replays one divergence).
    pub only_case: Option<u64>,
    pub world_config: WorldConfig,
    pub plan_config: PlanConfig,
    /// Where reproducers go (none: not written).
    pub repro_dir: Option<PathBuf>,
    /// Run on this world (with every seed's cases) instead of generated worlds.
    pub user_world: Option<UserWorld>,
    /// Start no new world after this long (`worlds` stays the upper bound).
    pub time_budget: Option<Duration>,
}

impl Default for DiffConfig {
    fn default() -> DiffConfig {
        DiffConfig {
            seed: 1,
            worlds: 10,
            cases: 100,
            engines: Selection::defaults(),
            names: None,
            only_case: None,
            world_config: WorldConfig::default(),
            plan_config: PlanConfig::default(),
            repro_dir: None,
            user_world: None,
            time_budget: None,
        }
    }
}

/// One case on which an engine and the reference disagree.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Divergence {
    pub world_seed: u64,
    pub case: u64,
    pub engine: String,
    pub differences: Vec<Difference>,
    /// Every difference is explained by the expectations.
    pub expected: bool,
    pub replay: String,
    pub repro: Option<PathBuf>,
}

/// What a campaign did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub worlds: u64,
    pub cases: u64,
    /// Export calls run on engines (reference included).
    pub checked_calls: u64,
    /// Import calls the cases' guests are scripted to make (each case counted once).
    pub import_calls: u64,
    pub compilations: u64,
    pub divergences: Vec<Divergence>,
    /// (engine, area) → (new, expected) divergence counts.
    pub by_area: BTreeMap<(String, String), (u64, u64)>,
    /// Time spent running cases, per engine (reference included).
    pub engine_time: BTreeMap<String, Duration>,
    /// Worlds that could not be prepared (a generator or encoder bug): seed and error.
    pub setup_failures: Vec<(u64, String)>,
    /// Worlds an engine cannot run (an adapter's or the protocol's limit), per engine: how
    /// many, and the first reason.
    pub unsupported: BTreeMap<String, (u64, String)>,
    pub elapsed: Duration,
}

impl Summary {
    pub fn unexpected(&self) -> usize {
        self.divergences.iter().filter(|d| !d.expected).count() + self.setup_failures.len()
    }
}

/// The world of seed `seed` (its scheme and encoding too).
pub fn world_of(seed: u64, cfg: &DiffConfig) -> Result<(GeneratedWorld, NameScheme, StringEncoding)> {
    let data = seed_bytes(seed, 8192);
    let mut u = Unstructured::new(&data);
    let world = arbitrary_world(&mut u, &cfg.world_config).map_err(|e| anyhow::anyhow!("world generator: {e}"))?;
    let scheme = cfg.names.unwrap_or(if seed.is_multiple_of(2) { NameScheme::Standard } else { NameScheme::Legacy });
    let encoding = StringEncoding::ALL[(seed / 2 % 3) as usize];
    Ok((world, scheme, encoding))
}

/// The case `c` of a prepared world (`None` when the world has nothing to call).
pub fn case_of(world_seed: u64, c: u64, prepared: &Prepared, cfg: &PlanConfig) -> Result<Option<Case>> {
    steps_of(world_seed, c, prepared, cfg)?.map(|steps| build_case(prepared, &steps, Misses::Ignore)).transpose()
}

/// The steps of case `c` of a prepared world (`None` when the world has nothing to call).
pub fn steps_of(world_seed: u64, c: u64, prepared: &Prepared, cfg: &PlanConfig) -> Result<Option<Vec<StepPlan>>> {
    let data = seed_bytes(world_seed.wrapping_mul(1_000_003).wrapping_add(c), 4096);
    let mut u = Unstructured::new(&data);
    // One case in three drives resources, where the world has any to drive.
    if c % 3 == 2 {
        match arbitrary_resource_steps(&mut u, prepared, cfg) {
            Ok(Some(steps)) => return Ok(Some(steps)),
            Ok(None) => {}
            Err(e) => anyhow::bail!("resource plan generator: {e}"),
        }
    }
    match arbitrary_call(&mut u, prepared, cfg) {
        Ok(Some(plan)) => Ok(Some(vec![StepPlan::Call(plan)])),
        Ok(None) => Ok(None),
        Err(e) => anyhow::bail!("plan generator: {e}"),
    }
}

fn write_repro(
    dir: &Path,
    d: &Divergence,
    world: &GeneratedWorld,
    case: &str,
    expected: &Outcome,
    actual: &Outcome,
) -> Result<PathBuf> {
    let path = dir.join(format!("w{}-c{}-{}", d.world_seed, d.case, d.engine));
    std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    std::fs::write(path.join("world.wit"), &world.wit)?;
    let mut text = format!("# replay: {}\n\n", d.replay);
    for diff in &d.differences {
        text.push_str(&format!("difference [{}]: {}\n", diff.area, diff.detail));
    }
    text.push_str(&format!(
        "\ncase:\n{case}\n\nreference outcome:\n{expected:#?}\n\n{} outcome:\n{actual:#?}\n",
        d.engine
    ));
    std::fs::write(path.join("plan.txt"), text)?;
    Ok(path)
}

/// The composition of world `seed`'s exported interfaces (its two encodings come from the seed,
/// so a campaign covers all 9 pairs), or `None` when the world exports no interface.
pub fn fused_of(seed: u64, world: &GeneratedWorld, name: &str, scheme: NameScheme) -> Result<Option<FusedPrepared>> {
    let caller = StringEncoding::ALL[(seed % 3) as usize];
    let callee = StringEncoding::ALL[(seed / 3 % 3) as usize];
    match FusedPrepared::new(&world.wit, Some(name), scheme, caller, callee) {
        Ok(fp) => Ok(Some(fp)),
        Err(e) if format!("{e:#}").contains("exports nothing") => Ok(None),
        Err(e) => Err(e),
    }
}

/// The fused case `c` of a composition.
pub fn fused_case_of(world_seed: u64, c: u64, fp: &FusedPrepared, cfg: &PlanConfig) -> Result<Option<FusedCase>> {
    let data = seed_bytes(world_seed.wrapping_mul(1_000_033).wrapping_add(c), 4096);
    arbitrary_fused_case(&mut Unstructured::new(&data), fp, cfg)
}

/// What a divergence of one world is recorded with.
struct Recorder<'a> {
    expectations: &'a Expectations,
    repro_dir: Option<&'a Path>,
    world: &'a GeneratedWorld,
    world_seed: u64,
    scheme: &'static str,
    /// `--wit ... --world ...` when the campaign runs on a user's world.
    source: String,
}

impl Recorder<'_> {
    /// Record `differences` of `engine` (its label) on case `c`; `selection` is how the
    /// command line names the engine, for the replay command.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        s: &mut Summary,
        engine: &str,
        selection: &Selection,
        c: u64,
        differences: Vec<Difference>,
        case: impl FnOnce() -> String,
        outcomes: (&Outcome, &Outcome),
    ) -> Result<()> {
        if differences.is_empty() {
            return Ok(());
        }
        let expected_all = differences.iter().all(|d| self.expectations.explain(engine, d).is_some());
        for d in &differences {
            let e = s.by_area.entry((engine.to_string(), d.area.to_string())).or_default();
            if expected_all { e.1 += 1 } else { e.0 += 1 }
        }
        let replay = format!(
            "witness diff --seed {} --worlds 1 --case {c} --engine {} --names {}{}",
            self.world_seed,
            selection.shell_arg(),
            self.scheme,
            self.source
        );
        let mut div = Divergence {
            world_seed: self.world_seed,
            case: c,
            engine: engine.to_string(),
            differences,
            expected: expected_all,
            replay,
            repro: None,
        };
        if let (Some(dir), false) = (self.repro_dir, expected_all) {
            // A reproducer that cannot be written loses the file, never the campaign.
            match write_repro(dir, &div, self.world, &case(), outcomes.0, outcomes.1) {
                Ok(path) => div.repro = Some(path),
                Err(e) => s.setup_failures.push((self.world_seed, format!("cannot write a reproducer: {e:#}"))),
            }
        }
        s.divergences.push(div);
        Ok(())
    }
}

/// Compile `artifact` on each of `selections`: the runtimes that take it, with how the command
/// line names each. A runtime that cannot run the world is counted as unsupported; one that
/// fails to compile a valid world diverges (area `compile`); any other failure is a setup
/// failure of the world.
fn compile_all<'s>(
    s: &mut Summary,
    recorder: &Recorder<'_>,
    selections: impl Iterator<Item = &'s Selection>,
    artifact: &Arc<Artifact>,
) -> Result<Vec<(&'s Selection, Box<dyn Compiled>)>> {
    let mut out = vec![];
    for selection in selections {
        match crate::engine::compile(selection, artifact) {
            Ok(c) => out.push((selection, c)),
            Err(e) => match (e.downcast_ref::<Unsupported>(), e.downcast_ref::<CompileFailed>()) {
                (Some(u), _) => s.unsupported.entry(u.engine.clone()).or_insert_with(|| (0, u.reason.clone())).0 += 1,
                (_, Some(f)) => {
                    let none = Outcome::default();
                    let differences = vec![compile_difference(&f.message)];
                    recorder.record(s, &f.engine, selection, 0, differences, || "(compile)".into(), (&none, &none))?;
                }
                _ => s.setup_failures.push((recorder.world_seed, format!("{selection}: {e:#}"))),
            },
        }
    }
    s.compilations += out.len() as u64;
    Ok(out)
}

/// Run a campaign. `progress(done, total)` is called after each case, and `report` with each
/// divergence as soon as it is found (a killed campaign keeps what it reported).
pub fn run_campaign(
    cfg: &DiffConfig,
    expectations: &Expectations,
    mut progress: impl FnMut(u64, u64),
    mut report: impl FnMut(&Divergence),
) -> Result<Summary> {
    let start = Instant::now();
    let mut s = Summary::default();
    let mut reported = 0;
    let total = cfg.worlds * cfg.cases;
    let mut done = 0;
    for w in 0..cfg.worlds {
        if cfg.time_budget.is_some_and(|b| start.elapsed() >= b) {
            break;
        }
        let world_seed = cfg.seed.wrapping_add(w);
        let prepared = world_of(world_seed, cfg).and_then(|(mut world, scheme, enc)| {
            let (name, scheme) = match &cfg.user_world {
                Some(user) => {
                    world.wit = user.text.clone();
                    (user.world.clone(), user.scheme(scheme))
                }
                None => ("w".to_string(), scheme),
            };
            let p = Prepared::from_wit(&world.wit, Some(&name), scheme, enc)?;
            Ok((world, name, p))
        });
        let (world, world_name, prepared) = match prepared {
            Ok(x) => x,
            Err(e) => {
                s.setup_failures.push((world_seed, format!("{e:#}")));
                done += cfg.cases;
                progress(done, total);
                continue;
            }
        };
        s.worlds += 1;
        let scheme = match prepared.scheme {
            NameScheme::Standard => "standard",
            NameScheme::Legacy => "legacy",
        };
        let source = match &cfg.user_world {
            Some(u) => format!(" --wit {} --world {}", u.path.display(), u.world),
            None => String::new(),
        };
        let cases: Vec<u64> = match cfg.only_case {
            Some(c) => vec![c],
            None => (0..cfg.cases).collect(),
        };
        let recorder =
            Recorder { expectations, repro_dir: cfg.repro_dir.as_deref(), world: &world, world_seed, scheme, source };
        let artifact = Arc::new(Artifact::of(&prepared)?);
        let mut reference = crate::engine::compile(&Selection::reference(), &artifact)?;
        let mut engines = compile_all(&mut s, &recorder, cfg.engines.iter().filter(|e| !e.fused()), &artifact)?;
        // 🔀 Compositions of async guests are not modelled yet.
        let fused = if artifact.is_async() {
            for selection in cfg.engines.iter().filter(|e| e.fused()) {
                let entry = s.unsupported.entry(selection.to_string());
                entry.or_insert_with(|| (0, "an async composition: not modelled yet".into())).0 += 1;
            }
            None
        } else if cfg.engines.iter().any(Selection::fused) {
            match fused_of(world_seed, &world, &world_name, prepared.scheme).and_then(|fp| match fp {
                Some(fp) => Ok(Some((Arc::new(fp.artifact()?), fp))),
                None => Ok(None),
            }) {
                Ok(fp) => fp,
                Err(e) => {
                    match e.downcast_ref::<Unsupported>() {
                        Some(u) => {
                            for selection in cfg.engines.iter().filter(|e| e.fused()) {
                                let entry = s.unsupported.entry(selection.to_string());
                                entry.or_insert_with(|| (0, u.reason.clone())).0 += 1;
                            }
                        }
                        None => s.setup_failures.push((world_seed, format!("compositions: {e:#}"))),
                    }
                    None
                }
            }
        } else {
            None
        };
        let (mut fused_reference, mut fused_engines) = match &fused {
            Some((artifact, _)) => (
                Some(crate::engine::compile(&Selection::reference(), artifact)?),
                compile_all(&mut s, &recorder, cfg.engines.iter().filter(|e| e.fused()), artifact)?,
            ),
            None => (None, vec![]),
        };
        for &c in &cases {
            done += 1;
            if let Some(case) = case_of(world_seed, c, &prepared, &cfg.plan_config)? {
                s.cases += 1;
                s.import_calls += case.script_calls() as u64;
                let t = Instant::now();
                let expected = run_case(reference.as_mut(), &artifact, &case, &[])
                    .with_context(|| format!("world {world_seed} case {c}: reference"))?;
                *s.engine_time.entry(REFERENCE.into()).or_default() += t.elapsed();
                s.checked_calls += case.calls() as u64;
                for (arg, engine) in &mut engines {
                    let name = engine.label().to_string();
                    let t = Instant::now();
                    let actual = match run_case(engine.as_mut(), &artifact, &case, &[]) {
                        Ok(o) => o,
                        Err(e) => {
                            s.setup_failures.push((world_seed, format!("{name} case {c}: {e:#}")));
                            continue;
                        }
                    };
                    *s.engine_time.entry(name.clone()).or_default() += t.elapsed();
                    s.checked_calls += case.calls() as u64;
                    let differences = compare(&prepared, &expected, &actual);
                    let outcomes = (&expected, &actual);
                    recorder.record(&mut s, &name, arg, c, differences, || format!("{case:#?}"), outcomes)?;
                }
            }
            if let (Some((artifact, fp)), Some(reference)) = (&fused, &mut fused_reference)
                && let Some(case) = fused_case_of(world_seed, c, fp, &cfg.plan_config)?
            {
                s.cases += 1;
                let t = Instant::now();
                let expected = run_case(reference.as_mut(), artifact, &case.caller, &[&case.callee])
                    .with_context(|| format!("world {world_seed} fused case {c}: reference"))?;
                *s.engine_time.entry(REFERENCE.into()).or_default() += t.elapsed();
                for (arg, engine) in &mut fused_engines {
                    let name = engine.label().to_string();
                    let t = Instant::now();
                    match run_case(engine.as_mut(), artifact, &case.caller, &[&case.callee]) {
                        Ok(actual) => {
                            *s.engine_time.entry(name.clone()).or_default() += t.elapsed();
                            // The host's call of `run`, and the caller's calls of the callee.
                            s.checked_calls += 2 * (1 + case.caller.script_calls() as u64);
                            let differences = compare_fused(fp, &expected, &actual);
                            let outcomes = (&expected, &actual);
                            recorder.record(&mut s, &name, arg, c, differences, || format!("{case:#?}"), outcomes)?;
                        }
                        Err(e) => s.setup_failures.push((world_seed, format!("{name} case {c}: {e:#}"))),
                    }
                }
            }
            s.divergences[reported..].iter().for_each(&mut report);
            reported = s.divergences.len();
            progress(done, total);
        }
    }
    s.divergences[reported..].iter().for_each(&mut report);
    s.elapsed = start.elapsed();
    Ok(s)
}
