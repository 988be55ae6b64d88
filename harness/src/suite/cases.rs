//! Conformance suites (`suites/*.toml`): hand-written cases over one world each. A case names
//! the spec rules it checks (definitions.py function names) and, where it guards against a
//! known bug, that bug; says what the host calls with which values (WAVE), what the guest does
//! (returns, import calls, corrupted data, realloc answers); and what the spec says must happen.
//! The runner checks that expectation against the reference, then every engine against the
//! reference with the oracle. A bad case fails alone, with its file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Deserialize;

use crate::encode::names::NameScheme;
use crate::encode::script::{Event, ReallocAnswer};
use crate::engine::prepared::ImportType;
use crate::engine::process::Unsupported;
use crate::engine::resources::is_guest_resource;
use crate::engine::{Engine, HostEvent, Outcome, Prepared, make_engine};
use crate::oracle::compare;
use crate::plan::{CallPlan, Corruption, GuestOp, GuestValues, ImportPlan, StepPlan, build_case};
use crate::reference::types::StringEncoding;
use crate::suite::expectations::Expectations;
use crate::world::wave::{parse_value, print_value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SuiteFile {
    /// The world, inline WIT (its only world is used).
    world: String,
    #[serde(default, rename = "case")]
    cases: Vec<CaseSpec>,
}

/// One case of a suite file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CaseSpec {
    pub name: String,
    /// The definitions.py functions whose rules the case checks.
    pub rules: Vec<String>,
    /// Known bugs (shared/PEERS.md §7) the case guards against.
    #[serde(default)]
    pub bugs: Vec<String>,
    /// The guest's string encoding (utf8, utf16, latin1+utf16; default utf8).
    #[serde(default)]
    pub encoding: Option<String>,
    /// The guest's name scheme (standard or legacy; default standard).
    #[serde(default)]
    pub names: Option<String>,
    /// The export the host calls (`func` or `iface.func`); or give `step`s instead.
    #[serde(default)]
    pub call: String,
    /// Its arguments, in WAVE.
    #[serde(default)]
    pub args: Vec<String>,
    /// What the guest returns, in WAVE (laid out by the reference in the guest's memory).
    #[serde(default)]
    pub returns: Option<String>,
    /// Corrupt what the guest returns: `{ flat = [index, bits] }` or `{ byte = [index, xor] }`.
    #[serde(default)]
    pub corrupt: Option<CorruptSpec>,
    /// Imports the guest calls before it returns.
    #[serde(default)]
    pub imports: Vec<ImportSpec>,
    /// Resource built-ins the guest calls first (before its imports).
    #[serde(default)]
    pub builtins: Vec<BuiltinSpec>,
    /// The guest's realloc answers: `bump`, `trap`, or `value:N`.
    #[serde(default)]
    pub realloc: Vec<String>,
    /// Several host steps instead of the one call above.
    #[serde(default, rename = "step")]
    pub steps: Vec<StepSpec>,
    #[serde(default)]
    pub expect: ExpectSpec,
}

/// One host step of a multi-step case: a call (with what the guest does in it), or dropping
/// the guest resource the host holds in slot `drop` (slots count the guest resources the host
/// received, from 0). A case without steps repeats these fields rather than flattening a
/// StepSpec into CaseSpec: serde can't combine `flatten` with `deny_unknown_fields`, which is
/// what gives a misspelt field its error.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StepSpec {
    #[serde(default)]
    pub call: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub returns: Option<String>,
    #[serde(default)]
    pub corrupt: Option<CorruptSpec>,
    #[serde(default)]
    pub builtins: Vec<BuiltinSpec>,
    #[serde(default)]
    pub imports: Vec<ImportSpec>,
    #[serde(default)]
    pub drop: Option<u32>,
}

/// A resource built-in the guest calls: `R.new` (arg: rep), `R.rep` / `R.drop` (arg: handle)
/// for a resource R the guest exports, `R.drop-imported` for one it imports.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BuiltinSpec {
    pub builtin: String,
    pub arg: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CorruptSpec {
    pub flat: Option<(usize, u64)>,
    pub byte: Option<(usize, u8)>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImportSpec {
    pub call: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub returns: Option<String>,
    #[serde(default)]
    pub corrupt: Option<CorruptSpec>,
}

/// What the spec says must happen (every field optional).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExpectSpec {
    /// The trap class, or `none`.
    pub trap: Option<String>,
    /// The value the host receives, in WAVE.
    pub result: Option<String>,
    /// The guest's realloc calls: `[old_ptr, old_size, align, new_size]` each.
    pub realloc: Option<Vec<[u32; 4]>>,
    /// Values the host's import receives (WAVE), per import call.
    pub import_args: Option<Vec<Vec<String>>>,
    /// The bytes the engine wrote into the guest's heap while lowering the arguments (hex, from
    /// the heap's start up to the allocator's `next`; bytes never written are 00).
    pub heap: Option<String>,
    /// The heap as the guest's (last) export call returns: everything the engine wrote during
    /// the call, import results included (same form as `heap`).
    pub heap_at_return: Option<String>,
    /// What the guest's built-in calls returned, in order (`new`: the handle index, `rep`: the
    /// rep; `drop` returns nothing).
    pub builtin_results: Option<Vec<u64>>,
    /// The flat params each export call received, in order (raw bits).
    pub params: Option<Vec<Vec<u64>>>,
    /// The reps the guest's destructors ran with, in order.
    pub dtors: Option<Vec<u32>>,
    /// The reps the host's destructors ran with, in order.
    pub host_dtors: Option<Vec<u32>>,
}

/// How a case ended on one engine (or on the reference's check).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Passed,
    Failed(String),
    /// Failed as an expectations file says it does.
    Xfail(String),
    Skipped(String),
}

/// One result row.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CaseResult {
    pub file: PathBuf,
    pub line: usize,
    pub name: String,
    pub rules: Vec<String>,
    pub bugs: Vec<String>,
    /// `reference` (the expectation checked against the reference) or an engine.
    pub engine: String,
    pub status: Status,
    /// The class of the trap that ended the case on this engine, if it ran and trapped.
    pub trap: Option<String>,
}

/// The suite files under `dir` (sorted).
pub fn suite_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read suite directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

fn line_of(text: &str, name: &str) -> usize {
    let needle = format!("name = {}", toml_string(name));
    text.lines().position(|l| l.trim_start().starts_with(&needle)).map_or(1, |i| i + 1)
}

fn toml_string(s: &str) -> String {
    format!("{s:?}")
}

fn parse_encoding(e: Option<&str>) -> Result<StringEncoding> {
    match e {
        None => Ok(StringEncoding::Utf8),
        Some(e) => StringEncoding::parse(e).ok_or_else(|| anyhow!("unknown encoding `{e}`")),
    }
}

fn parse_names(n: Option<&str>) -> Result<NameScheme> {
    match n {
        None | Some("standard") => Ok(NameScheme::Standard),
        Some("legacy") => Ok(NameScheme::Legacy),
        Some(other) => bail!("unknown name scheme `{other}` (standard or legacy)"),
    }
}

fn corruption(c: &Option<CorruptSpec>) -> Result<Option<Corruption>> {
    Ok(match c {
        None => None,
        Some(CorruptSpec { flat: Some((index, bits)), byte: None }) => {
            Some(Corruption::Flat { index: *index, bits: *bits })
        }
        Some(CorruptSpec { flat: None, byte: Some((index, xor)) }) => {
            Some(Corruption::Byte { index: *index, xor: *xor })
        }
        Some(_) => bail!("corrupt takes exactly one of flat = [index, bits] or byte = [index, xor]"),
    })
}

fn realloc_answer(s: &str) -> Result<ReallocAnswer> {
    Ok(match s {
        "bump" => ReallocAnswer::Bump,
        "trap" => ReallocAnswer::Trap,
        v => ReallocAnswer::Value(
            v.strip_prefix("value:")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| anyhow!("realloc answer `{v}`: bump, trap or value:N"))?,
        ),
    })
}

fn builtin_thunk(prepared: &Prepared, name: &str) -> Result<u32> {
    let (resource, op) = name
        .rsplit_once('.')
        .ok_or_else(|| anyhow!("builtin `{name}`: write R.new, R.rep, R.drop or R.drop-imported"))?;
    let found = prepared.imports.iter().position(|ty| match (ty, op) {
        (ImportType::ResourceNew(rt), "new") | (ImportType::ResourceRep(rt), "rep") => rt.name == resource,
        (ImportType::ResourceDrop(rt), "drop") => rt.name == resource && is_guest_resource(rt),
        (ImportType::ResourceDrop(rt), "drop-imported") => rt.name == resource && !is_guest_resource(rt),
        _ => false,
    });
    found.map(|i| i as u32).ok_or_else(|| anyhow!("the guest has no built-in `{name}`"))
}

/// One call step.
fn plan_call(prepared: &Prepared, st: &StepSpec, realloc: Vec<ReallocAnswer>) -> Result<StepPlan> {
    let call = st.call.as_deref().ok_or_else(|| anyhow!("a call step needs `call`"))?;
    let (args, returns, corrupt, builtins, imports) =
        (&st.args, st.returns.as_ref(), &st.corrupt, &st.builtins, &st.imports);
    let export = prepared
        .exports
        .iter()
        .position(|(name, _)| name == call)
        .ok_or_else(|| anyhow!("the world exports no function `{call}`"))? as u32;
    let ft = &prepared.exports[export as usize].1;
    if args.len() != ft.params.len() {
        bail!("`{call}` takes {} argument(s), the case gives {}", ft.params.len(), args.len());
    }
    let args = ft
        .params
        .iter()
        .zip(args)
        .map(|((_, t), a)| parse_value(t, a, StringEncoding::Utf8))
        .collect::<Result<Vec<_>>>()?;
    let values = match (&ft.result, returns) {
        (Some(t), Some(r)) => vec![parse_value(t, r, prepared.encoding)?],
        (None, None) => vec![],
        (Some(_), None) => bail!("`{call}` has a result: say what the guest returns"),
        (None, Some(_)) => bail!("`{call}` has no result"),
    };
    let mut ops = vec![];
    for b in builtins {
        ops.push(GuestOp::Builtin { thunk: builtin_thunk(prepared, &b.builtin)?, arg: b.arg });
    }
    for imp in imports {
        let (thunk, ift) = prepared
            .imports
            .iter()
            .enumerate()
            .find_map(|(i, ty)| match ty {
                ImportType::Func { name, ft } if *name == imp.call => Some((i as u32, ft)),
                _ => None,
            })
            .ok_or_else(|| anyhow!("the world imports no function `{}`", imp.call))?;
        if imp.args.len() != ift.params.len() {
            bail!("import `{}` takes {} argument(s)", imp.call, ift.params.len());
        }
        let values = ift
            .params
            .iter()
            .zip(&imp.args)
            .map(|((_, t), a)| parse_value(t, a, prepared.encoding))
            .collect::<Result<Vec<_>>>()?;
        let result = match (&ift.result, &imp.returns) {
            (Some(t), Some(r)) => Some(parse_value(t, r, StringEncoding::Utf8)?),
            (None, None) => None,
            _ => bail!("import `{}`: `returns` must match its result type", imp.call),
        };
        ops.push(GuestOp::Import(ImportPlan {
            thunk,
            args: GuestValues { values, corruption: corruption(&imp.corrupt)? },
            result,
        }));
    }
    Ok(StepPlan::Call(CallPlan {
        export,
        args,
        ops,
        result: GuestValues { values, corruption: corruption(corrupt)? },
        realloc,
    }))
}

/// Turn a case into steps for its prepared world.
fn plan(prepared: &Prepared, c: &CaseSpec) -> Result<Vec<StepPlan>> {
    let realloc: Vec<ReallocAnswer> = c.realloc.iter().map(|r| realloc_answer(r)).collect::<Result<_>>()?;
    if c.steps.is_empty() {
        if c.call.is_empty() {
            bail!("give `call` or `step`s");
        }
        let step = StepSpec {
            call: Some(c.call.clone()),
            args: c.args.clone(),
            returns: c.returns.clone(),
            corrupt: c.corrupt.clone(),
            builtins: c.builtins.clone(),
            imports: c.imports.clone(),
            drop: None,
        };
        return Ok(vec![plan_call(prepared, &step, realloc)?]);
    }
    if !c.call.is_empty()
        || !c.args.is_empty()
        || c.returns.is_some()
        || !c.imports.is_empty()
        || !c.builtins.is_empty()
    {
        bail!("a case with `step`s puts its calls in the steps");
    }
    let mut out = vec![];
    let mut realloc = Some(realloc);
    for (i, st) in c.steps.iter().enumerate() {
        out.push(match (&st.call, st.drop) {
            (Some(_), None) => plan_call(prepared, st, realloc.take().unwrap_or_default())?,
            (None, Some(slot)) => StepPlan::Drop { slot },
            _ => bail!("step {}: give `call` or `drop`", i + 1),
        });
    }
    Ok(out)
}

/// Check the case's expectation against the reference's outcome.
fn check_expectation(prepared: &Prepared, c: &CaseSpec, o: &Outcome) -> Result<()> {
    let e = &c.expect;
    if let Some(trap) = &e.trap {
        let got = o.trap_kind().map_or("none", |k| k.name());
        if got != trap {
            bail!(
                "expected trap {trap}, the reference gives {got}{}",
                o.trap.as_ref().map_or(String::new(), |t| format!(" ({})", t.message))
            );
        }
    }
    if let Some(want) = &e.result {
        let ft = &prepared.exports.iter().find(|(n, _)| *n == c.call).ok_or_else(|| anyhow!("no export"))?.1;
        let t = ft.result.as_ref().ok_or_else(|| anyhow!("`{}` has no result", c.call))?;
        let want_v = parse_value(t, want, StringEncoding::Utf8)?;
        let got = o.events.iter().find_map(|ev| match ev {
            HostEvent::Returned { result: Some(v), .. } => Some(v),
            _ => None,
        });
        match got {
            Some(v) if v.matches(&want_v) => {}
            Some(v) => bail!("expected result {want}, the reference gives {}", print_value(t, v).unwrap_or_default()),
            None => bail!("expected result {want}, the call returned nothing"),
        }
    }
    if let Some(want) = &e.realloc {
        let log = o.log.as_ref().ok_or_else(|| anyhow!("no guest log (the case trapped)"))?;
        let got: Vec<[u32; 4]> = log
            .iter()
            .filter_map(|ev| match ev {
                Event::Realloc { old_ptr, old_size, align, new_size, .. } => {
                    Some([*old_ptr, *old_size, *align, *new_size])
                }
                _ => None,
            })
            .collect();
        if &got != want {
            bail!("expected realloc calls {want:?}, the reference makes {got:?}");
        }
    }
    for (want, at_return) in [(&e.heap, false), (&e.heap_at_return, true)] {
        let Some(want) = want else { continue };
        let log = o.log.as_ref().ok_or_else(|| anyhow!("no guest log (the case trapped)"))?;
        let mut dumps = log.iter().filter_map(|ev| match ev {
            Event::Memory { addr, bytes } if u64::from(*addr) == crate::encode::protocol::HEAP => Some(bytes),
            _ => None,
        });
        let got = if at_return { dumps.next_back() } else { dumps.next() };
        let got = got.ok_or_else(|| anyhow!("no heap dump in the guest log"))?;
        let got: String = got.iter().map(|b| format!("{b:02x}")).collect();
        let want: String = want.chars().filter(|c| !c.is_whitespace()).collect();
        if got != want {
            let when = if at_return { "by the return" } else { "while lowering the arguments" };
            bail!("expected heap {want} {when}, the reference writes {got}");
        }
    }
    let log = || o.log.as_ref().ok_or_else(|| anyhow!("no guest log (the case trapped)"));
    if let Some(want) = &e.builtin_results {
        let builtin = |t: u32| !matches!(prepared.imports.get(t as usize), Some(ImportType::Func { .. }));
        let got: Vec<u64> = log()?
            .iter()
            .filter_map(|ev| match ev {
                Event::Import { thunk, results } if builtin(*thunk) => Some(results.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        if &got != want {
            bail!("expected built-in results {want:?}, the reference gives {got:?}");
        }
    }
    if let Some(want) = &e.params {
        let got: Vec<Vec<u64>> = log()?
            .iter()
            .filter_map(|ev| match ev {
                Event::Enter { entry, params } if *entry < 0x1000 => Some(params.clone()),
                _ => None,
            })
            .collect();
        if &got != want {
            bail!("expected export params {want:?}, the reference gives {got:?}");
        }
    }
    if let Some(want) = &e.dtors {
        let got: Vec<u32> = log()?
            .iter()
            .filter_map(|ev| match ev {
                Event::Enter { entry, params } if *entry >= 0x2000 => params.first().map(|p| *p as u32),
                _ => None,
            })
            .collect();
        if &got != want {
            bail!("expected guest destructor calls {want:?}, the reference gives {got:?}");
        }
    }
    if let Some(want) = &e.host_dtors {
        let got: Vec<u32> = o
            .events
            .iter()
            .filter_map(|ev| match ev {
                HostEvent::Dtor { rep } => Some(*rep),
                _ => None,
            })
            .collect();
        if &got != want {
            bail!("expected host destructor calls {want:?}, the reference gives {got:?}");
        }
    }
    if let Some(want) = &e.import_args {
        let got: Vec<&Vec<crate::reference::Value>> = o
            .events
            .iter()
            .filter_map(|ev| match ev {
                HostEvent::Import { args, .. } => Some(args),
                _ => None,
            })
            .collect();
        if got.len() != want.len() {
            bail!("expected {} import call(s), the reference makes {}", want.len(), got.len());
        }
        for (imp, (want, got)) in c.imports.iter().zip(want.iter().zip(got)) {
            let Some(ImportType::Func { ft, .. }) =
                prepared.imports.iter().find(|ty| matches!(ty, ImportType::Func { name, .. } if *name == imp.call))
            else {
                bail!("no import `{}`", imp.call)
            };
            for ((_, t), (w, g)) in ft.params.iter().zip(want.iter().zip(got)) {
                if !parse_value(t, w, StringEncoding::Utf8)?.matches(g) {
                    bail!(
                        "import `{}` expected argument {w}, the reference gives {}",
                        imp.call,
                        print_value(t, g).unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}

/// A case's world variant: its string encoding and name scheme (after checking its rules).
fn case_setup(c: &CaseSpec) -> Result<(StringEncoding, NameScheme)> {
    if c.rules.is_empty() {
        bail!("the case names no rule (definitions.py functions)");
    }
    if let Some(r) = c.rules.iter().find(|r| !crate::suite::coverage::SYNC_RULES.contains(&r.as_str())) {
        bail!("`{r}` is not a definitions.py function of the synchronous ABI");
    }
    Ok((parse_encoding(c.encoding.as_deref())?, parse_names(c.names.as_deref())?))
}

/// Run suite `file` on `engines`. Every case yields one `reference` row (the expectation) and
/// one row per engine.
pub fn run_file(
    file: &Path,
    engines: &[String],
    expectations: &Expectations,
    filter: Option<&str>,
) -> Result<Vec<CaseResult>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let suite: SuiteFile = toml::from_str(&text).with_context(|| format!("{}: invalid suite file", file.display()))?;
    let area = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
    let cases: Vec<&CaseSpec> = suite
        .cases
        .iter()
        .filter(|c| filter.is_none_or(|f| c.name.contains(f) || c.rules.iter().any(|r| r.contains(f))))
        .collect();
    // Each world variant is prepared once and each engine made once on it (engines keep their
    // compiled component, and an adapter its process, across the file's cases).
    let setups: Vec<Result<(StringEncoding, NameScheme)>> = cases.iter().map(|c| case_setup(c)).collect();
    let mut prepared: BTreeMap<(StringEncoding, bool), Result<Prepared, String>> = BTreeMap::new();
    for (enc, scheme) in setups.iter().flatten() {
        prepared.entry((*enc, *scheme == NameScheme::Legacy)).or_insert_with(|| {
            Prepared::from_wit(&suite.world, None, *scheme, *enc)
                .map_err(|e| format!("{}: the world: {e:#}", file.display()))
        });
    }
    // A failed engine keeps (its name, the status of each case).
    type Made<'p> = Result<Box<dyn Engine + 'p>, (String, Status)>;
    let mut made: BTreeMap<(StringEncoding, bool, &str), Made<'_>> = BTreeMap::new();
    let mut out = vec![];
    for (c, setup) in cases.into_iter().zip(setups) {
        let line = line_of(&text, &c.name);
        let row = |engine: &str, status: Status| CaseResult {
            file: file.to_path_buf(),
            line,
            name: c.name.clone(),
            rules: c.rules.clone(),
            bugs: c.bugs.clone(),
            engine: engine.to_string(),
            status,
            trap: None,
        };
        let ran = |mut r: CaseResult, o: &Outcome| {
            r.trap = o.trap_kind().map(|k| k.name().to_string());
            r
        };
        let key = match setup {
            Ok((enc, scheme)) => (enc, scheme == NameScheme::Legacy),
            Err(e) => {
                out.push(row("reference", Status::Failed(format!("{e:#}"))));
                continue;
            }
        };
        let p = match &prepared[&key] {
            Ok(p) => p,
            Err(e) => {
                out.push(row("reference", Status::Failed(e.clone())));
                continue;
            }
        };
        let case = match plan(p, c).and_then(|steps| build_case(p, &steps)) {
            Ok(case) => case,
            Err(e) => {
                out.push(row("reference", Status::Failed(format!("{e:#}"))));
                continue;
            }
        };
        let expected = match make_engine("reference", p).and_then(|mut r| r.run(&case)) {
            Ok(o) => o,
            Err(e) => {
                out.push(row("reference", Status::Failed(format!("{e:#}"))));
                continue;
            }
        };
        let status = match check_expectation(p, c, &expected) {
            Ok(()) => Status::Passed,
            Err(e) => Status::Failed(format!("{e:#}")),
        };
        out.push(ran(row("reference", status), &expected));
        for spec in engines {
            let engine = made.entry((key.0, key.1, spec.as_str())).or_insert_with(|| {
                make_engine(spec, p).map_err(|e| match e.downcast_ref::<Unsupported>() {
                    Some(u) => (u.engine.clone(), Status::Skipped(u.reason.clone())),
                    None => (spec.clone(), Status::Failed(format!("engine error: {e:#}"))),
                })
            });
            let engine = match engine {
                Ok(engine) => engine,
                Err((name, status)) => {
                    out.push(row(name, status.clone()));
                    continue;
                }
            };
            let name = engine.name().to_string();
            if let Some(skip) = expectations.skip(&name, &area, &c.name) {
                out.push(row(&name, Status::Skipped(skip.reason.clone())));
                continue;
            }
            let actual = engine.run(&case);
            let status = match &actual {
                Err(e) => Status::Failed(format!("engine error: {e:#}")),
                Ok(actual) => {
                    let diffs = compare(p, &expected, actual);
                    let text: Vec<String> = diffs.iter().map(|d| format!("[{}] {}", d.area, d.detail)).collect();
                    let explained = diffs.iter().map(|d| expectations.explain(&name, d)).collect::<Option<Vec<_>>>();
                    match (diffs.is_empty(), expectations.known_failure(&name, &area, &c.name), explained) {
                        (true, Some(k), _) => Status::Failed(format!("passes, but {} lists it as failing", k.origin())),
                        (true, None, _) => Status::Passed,
                        (false, Some(k), _) => Status::Xfail(format!("{} ({})", text.join("; "), k.rule)),
                        (false, None, Some(known)) => Status::Xfail(format!("{} ({})", text.join("; "), known[0].rule)),
                        (false, None, None) => Status::Failed(text.join("; ")),
                    }
                }
            };
            out.push(match &actual {
                Ok(o) => ran(row(&name, status), o),
                Err(_) => row(&name, status),
            });
        }
    }
    Ok(out)
}
