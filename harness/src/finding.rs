//! A finding made into a suite case (`witness to-case`): a crash input of the `differential`
//! fuzz targets, or a `witness diff` reproducer folder, becomes the world and the steps of one
//! case; those are shrunk while the engine still diverges from the reference (fewer steps and
//! guest operations, smaller values, then a smaller world); and the case is written as a
//! suite file (suites/conformance/README.md), with the expectation the reference gives. The
//! written file is run once more through the suite runner before it is handed out: its
//! reference check must pass and the engine must still fail it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};

use crate::diff::{DiffConfig, steps_of, world_of};
use crate::encode::names::NameScheme;
use crate::encode::script::ReallocAnswer;
use crate::engine::{Selection, compile};
use crate::oracle::{Difference, compare};
use crate::plan::{CallPlan, Corruption, GuestOp, Misses, PlanConfig, StepPlan, build_case, guest_type};
use crate::reference::Value;
use crate::reference::types::{StringEncoding, ValType};
use crate::reference::value::HostString;
use crate::runtime::driver::run_case;
use crate::runtime::prepared::{AsyncImport, ImportType};
use crate::runtime::resources::is_guest_resource;
use crate::runtime::{Artifact, Compiled, HostEvent, Outcome, Prepared};
use crate::suite::cases::{Status, run_file};
use crate::suite::expectations::Expectations;
use crate::world::wave::print_value;
use crate::world::wit::Wit;

/// A world and the steps of one case on it, on which `engine` diverges from the reference.
#[derive(Clone)]
pub struct Finding {
    pub wit: String,
    pub scheme: NameScheme,
    pub encoding: StringEncoding,
    pub steps: Vec<StepPlan>,
    /// The engine, as the command line names it.
    pub engine: Selection,
    /// Where it came from (the case's comment says).
    pub origin: String,
}

/// The most shrinking candidates tried (each one runs the case on the engine and the reference).
const SHRINK_BUDGET: usize = 2000;

/// A crash input of a differential target (`fuzz::DIFFERENTIAL_TARGETS`): the world and steps the
/// target decodes, and the first default runtime that diverges on them in a way `expectations`
/// do not explain.
pub fn from_fuzz_input(path: &Path, target: &str, expectations: &Expectations) -> Result<Finding> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let input = crate::fuzz::differential_input(target, &data).with_context(|| format!("{}", path.display()))?;
    let origin = format!("the {target} fuzz input {} ({})", path.display(), input.origin);
    let mut finding = Finding {
        wit: input.wit,
        scheme: input.scheme,
        encoding: input.encoding,
        steps: input.steps,
        engine: Selection::reference(),
        origin,
    };
    for engine in Selection::defaults().into_iter().filter(|s| !s.fused()) {
        finding.engine = engine;
        if Checker::new(&finding, expectations)?.diverges(&finding.steps)? {
            return Ok(finding);
        }
    }
    bail!(
        "{}: every default runtime agrees with the reference on this input (or the expectations explain it)",
        path.display()
    )
}

/// A `witness diff` reproducer folder (`witness-repro/w<seed>-c<case>-<engine>/`): its replay
/// line names the world seed, the case, the engine and the name scheme; `world.wit` holds the
/// world.
pub fn from_repro(dir: &Path) -> Result<Finding> {
    let plan = dir.join("plan.txt");
    let text = std::fs::read_to_string(&plan).with_context(|| format!("cannot read {}", plan.display()))?;
    let replay = text
        .lines()
        .find_map(|l| l.strip_prefix("# replay: "))
        .ok_or_else(|| anyhow!("{}:1: no `# replay:` line", plan.display()))?;
    let words: Vec<&str> = replay.split_whitespace().collect();
    let flag = |name: &str| words.iter().position(|w| *w == name).and_then(|i| words.get(i + 1)).copied();
    let number = |name: &str| -> Result<u64> {
        flag(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("{}: the replay line has no `{name} N`: {replay}", plan.display()))
    };
    let (seed, case) = (number("--seed")?, number("--case")?);
    let engine = Selection::parse(flag("--engine").ok_or_else(|| anyhow!("{}: no --engine", plan.display()))?)?;
    if engine.fused() {
        bail!("{}: findings of compositions (`{engine}`) cannot be made into cases yet", dir.display());
    }
    if !matches!(engine, Selection::Embedded { .. }) {
        bail!("{}: `{engine}` is an adapter: give an embedded runtime's finding", dir.display());
    }
    if words.contains(&"--wit") {
        bail!("{}: findings on a user's world (--wit) cannot be made into cases yet", dir.display());
    }
    let names = match flag("--names") {
        Some("legacy") => NameScheme::Legacy,
        Some("standard") | None => NameScheme::Standard,
        Some(other) => bail!("{}: unknown --names {other}", plan.display()),
    };
    let (_, scheme, encoding) = world_of(seed, &DiffConfig { names: Some(names), ..DiffConfig::default() })?;
    let world_file = dir.join("world.wit");
    let wit = std::fs::read_to_string(&world_file).with_context(|| format!("cannot read {}", world_file.display()))?;
    let prepared = Prepared::from_wit(&wit, Some("w"), scheme, encoding)
        .with_context(|| format!("{}: the world does not prepare", world_file.display()))?;
    let steps = steps_of(seed, case, &prepared, &PlanConfig::default())?
        .ok_or_else(|| anyhow!("{}: case {case} of world {seed} calls nothing", dir.display()))?;
    Ok(Finding { wit, scheme, encoding, steps, engine, origin: format!("`{replay}`") })
}

/// Runs steps on one world, on the reference and the finding's engine, each compiled once.
struct Checker<'e> {
    prepared: Prepared,
    artifact: Arc<Artifact>,
    reference: Box<dyn Compiled>,
    engine: Box<dyn Compiled>,
    expectations: &'e Expectations,
    runs: usize,
}

impl<'e> Checker<'e> {
    fn new(f: &Finding, expectations: &'e Expectations) -> Result<Checker<'e>> {
        let prepared = Prepared::from_wit(&f.wit, Some("w"), f.scheme, f.encoding)?;
        let artifact = Arc::new(Artifact::of(&prepared)?);
        let reference = compile(&Selection::reference(), &artifact)?;
        let engine = compile(&f.engine, &artifact)?;
        Ok(Checker { prepared, artifact, reference, engine, expectations, runs: 0 })
    }

    /// The reference's outcome and the differences the expectations do not explain; `None`
    /// when the steps make no case (a shrinking step went too far).
    fn run(&mut self, steps: &[StepPlan]) -> Result<Option<(Outcome, Vec<Difference>)>> {
        self.runs += 1;
        let Ok(case) = build_case(&self.prepared, steps, Misses::Refuse) else { return Ok(None) };
        let expected = run_case(self.reference.as_mut(), &self.artifact, &case, &[])?;
        let actual = run_case(self.engine.as_mut(), &self.artifact, &case, &[])?;
        let label = self.engine.label().to_string();
        let diffs = compare(&self.prepared, &expected, &actual)
            .into_iter()
            .filter(|d| self.expectations.explain(&label, d).is_none())
            .collect();
        Ok(Some((expected, diffs)))
    }

    fn diverges(&mut self, steps: &[StepPlan]) -> Result<bool> {
        Ok(self.run(steps)?.is_some_and(|(_, diffs)| !diffs.is_empty()))
    }
}

/// Where a corruption may sit: step `i`'s result (`None`) or the arguments of its import `j`.
type CorruptionSite = (usize, Option<usize>);

fn corruption_at(steps: &mut [StepPlan], (i, j): CorruptionSite) -> Option<&mut Option<Corruption>> {
    let StepPlan::Call(call) = &mut steps[i] else { return None };
    match j {
        None => Some(&mut call.result.corruption),
        Some(j) => match &mut call.ops[j] {
            GuestOp::Import(import) => Some(&mut import.args.corruption),
            _ => None,
        },
    }
}

/// The steps without the corruptions that miss the data they would corrupt. Generated plans
/// may hold such (their cases drop them: `Misses::Ignore`); a suite's author means every
/// corruption written (`Misses::Refuse`), so the case leaves them out.
fn without_missed_corruptions(prepared: &Prepared, steps: &[StepPlan]) -> Vec<StepPlan> {
    let mut sites = vec![];
    for (i, step) in steps.iter().enumerate() {
        if let StepPlan::Call(call) = step {
            sites.push((i, None));
            sites.extend((0..call.ops.len()).map(|j| (i, Some(j))));
        }
    }
    let mut bare = steps.to_vec();
    for &site in &sites {
        if let Some(c) = corruption_at(&mut bare, site) {
            *c = None;
        }
    }
    let mut out = steps.to_vec();
    for &site in &sites {
        let mut alone = bare.clone();
        let (Some(c), Some(original)) =
            (corruption_at(&mut alone, site), corruption_at(&mut out.clone(), site).cloned())
        else {
            continue;
        };
        *c = original;
        if build_case(prepared, &alone, Misses::Refuse).is_err()
            && let Some(c) = corruption_at(&mut out, site)
        {
            *c = None;
        }
    }
    out
}

/// Smaller versions of a value, simplest first. Types are not consulted: a candidate the
/// type does not allow (a shorter fixed-length list) fails to make a case and is dropped.
fn smaller_values(v: &Value) -> Vec<Value> {
    let ints = |x: i128| -> Vec<i128> {
        if x == 0 {
            vec![]
        } else if x / 2 == 0 {
            vec![0]
        } else {
            vec![0, x / 2]
        }
    };
    match v {
        Value::Bool(true) => vec![Value::Bool(false)],
        Value::S8(x) => ints(i128::from(*x)).into_iter().map(|x| Value::S8(x as i8)).collect(),
        Value::U8(x) => ints(i128::from(*x)).into_iter().map(|x| Value::U8(x as u8)).collect(),
        Value::S16(x) => ints(i128::from(*x)).into_iter().map(|x| Value::S16(x as i16)).collect(),
        Value::U16(x) => ints(i128::from(*x)).into_iter().map(|x| Value::U16(x as u16)).collect(),
        Value::S32(x) => ints(i128::from(*x)).into_iter().map(|x| Value::S32(x as i32)).collect(),
        Value::U32(x) => ints(i128::from(*x)).into_iter().map(|x| Value::U32(x as u32)).collect(),
        Value::S64(x) => ints(i128::from(*x)).into_iter().map(|x| Value::S64(x as i64)).collect(),
        Value::U64(x) => ints(i128::from(*x)).into_iter().map(|x| Value::U64(x as u64)).collect(),
        Value::F32(x) if x.to_bits() != 0 => vec![Value::F32(0.0)],
        Value::F64(x) if x.to_bits() != 0 => vec![Value::F64(0.0)],
        Value::Char(c) if *c != 'a' => vec![Value::Char('a')],
        Value::String(s) if !s.text.is_empty() => {
            let half: String = s.text.chars().take(s.text.chars().count() / 2).collect();
            let mut out = vec![Value::String(HostString::new("", s.encoding))];
            if !half.is_empty() {
                out.push(Value::String(HostString::new(&half, s.encoding)));
            }
            out
        }
        Value::List(xs) if !xs.is_empty() => {
            let mut out = vec![Value::List(vec![]), Value::List(xs[..xs.len() / 2].to_vec())];
            for (i, x) in xs.iter().enumerate() {
                for smaller in smaller_values(x) {
                    let mut ys = xs.clone();
                    ys[i] = smaller;
                    out.push(Value::List(ys));
                }
            }
            out
        }
        Value::Record(fields) => {
            let mut out = vec![];
            for (i, (_, x)) in fields.iter().enumerate() {
                for smaller in smaller_values(x) {
                    let mut fs = fields.clone();
                    fs[i].1 = smaller;
                    out.push(Value::Record(fs));
                }
            }
            out
        }
        Value::Variant(case, Some(payload)) => {
            smaller_values(payload).into_iter().map(|p| Value::Variant(case.clone(), Some(Box::new(p)))).collect()
        }
        Value::Flags(set) if !set.is_empty() => vec![Value::Flags(vec![])],
        _ => vec![],
    }
}

/// Every smaller version of `values` with one value made smaller.
fn smaller_lists(values: &[Value]) -> Vec<Vec<Value>> {
    let mut out = vec![];
    for (i, v) in values.iter().enumerate() {
        for smaller in smaller_values(v) {
            let mut vs = values.to_vec();
            vs[i] = smaller;
            out.push(vs);
        }
    }
    out
}

/// The candidates of one call: fewer guest operations, no corruption, plain realloc answers,
/// smaller values.
fn smaller_calls(call: &CallPlan) -> Vec<CallPlan> {
    let mut out = vec![];
    let with = |f: &dyn Fn(&mut CallPlan)| {
        let mut c = call.clone();
        f(&mut c);
        c
    };
    for j in 0..call.ops.len() {
        out.push(with(&|c| {
            c.ops.remove(j);
        }));
    }
    if call.result.corruption.is_some() {
        out.push(with(&|c| c.result.corruption = None));
    }
    for j in 0..call.realloc.len() {
        out.push(with(&|c| {
            c.realloc.truncate(j);
        }));
        if call.realloc[j] != ReallocAnswer::Bump {
            out.push(with(&|c| c.realloc[j] = ReallocAnswer::Bump));
        }
    }
    for args in smaller_lists(&call.args) {
        out.push(CallPlan { args, ..call.clone() });
    }
    for values in smaller_lists(&call.result.values) {
        out.push(with(&|c| c.result.values = values.clone()));
    }
    for (j, op) in call.ops.iter().enumerate() {
        let GuestOp::Import(import) = op else { continue };
        let mut set = |f: &dyn Fn(&mut crate::plan::ImportPlan)| {
            let mut c = call.clone();
            if let GuestOp::Import(i) = &mut c.ops[j] {
                f(i);
            }
            out.push(c);
        };
        if import.args.corruption.is_some() {
            set(&|i| i.args.corruption = None);
        }
        for values in smaller_lists(&import.args.values) {
            set(&|i| i.args.values = values.clone());
        }
        if let Some(result) = &import.result {
            for smaller in smaller_values(result) {
                set(&|i| i.result = Some(smaller.clone()));
            }
        }
    }
    out
}

/// Every candidate one shrinking step away from `steps`: a step left out, or one call made
/// smaller.
fn smaller_steps(steps: &[StepPlan]) -> Vec<Vec<StepPlan>> {
    let mut out = vec![];
    if steps.len() > 1 {
        for i in 0..steps.len() {
            let mut s = steps.to_vec();
            s.remove(i);
            out.push(s);
        }
    }
    for (i, step) in steps.iter().enumerate() {
        let StepPlan::Call(call) = step else { continue };
        for smaller in smaller_calls(call) {
            let mut s = steps.to_vec();
            s[i] = StepPlan::Call(smaller);
            out.push(s);
        }
    }
    out
}

/// Shrink the steps (the world stays): take the first candidate that still diverges, until
/// none does or the budget is spent.
fn shrink_steps(checker: &mut Checker<'_>, mut steps: Vec<StepPlan>) -> Result<Vec<StepPlan>> {
    'shrink: while checker.runs < SHRINK_BUDGET {
        for candidate in smaller_steps(&steps) {
            if checker.runs >= SHRINK_BUDGET {
                break 'shrink;
            }
            if checker.diverges(&candidate)? {
                steps = candidate;
                continue 'shrink;
            }
        }
        break;
    }
    Ok(steps)
}

/// TOML's text of a string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn quoted_list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(", "))
}

/// Values in WAVE, as a case writes them; `guest`: handed over by the guest (handles as the
/// u32 index in its table, as the plans hold them).
fn wave_list(types: &[&ValType], values: &[Value], guest: bool) -> Result<Vec<String>> {
    types
        .iter()
        .zip(values)
        .map(|(t, v)| if guest { print_value(&guest_type(t), v) } else { print_value(t, v) })
        .collect()
}

fn corrupt_field(c: &Option<Corruption>) -> Result<Option<String>> {
    Ok(match c {
        None => None,
        Some(Corruption::Flat { index, bits }) => Some(format!("{{ flat = [{index}, {bits:#x}] }}")),
        Some(Corruption::Byte { index, xor }) => Some(format!("{{ byte = [{index}, {xor}] }}")),
        Some(Corruption::HighBits { .. }) => bail!("a corruption of a slot's high bits has no suite syntax"),
    })
}

/// The suite name of built-in `thunk` (`R.new`, `R.rep`, `R.drop`, `R.drop-imported`).
fn builtin_name(prepared: &Prepared, thunk: u32) -> Result<String> {
    Ok(match prepared.imports.get(thunk as usize) {
        Some(ImportType::ResourceNew(rt)) => format!("{}.new", rt.name),
        Some(ImportType::ResourceRep(rt)) => format!("{}.rep", rt.name),
        Some(ImportType::ResourceDrop(rt)) if is_guest_resource(rt) => format!("{}.drop", rt.name),
        Some(ImportType::ResourceDrop(rt)) => format!("{}.drop-imported", rt.name),
        _ => bail!("import {thunk} is no resource built-in"),
    })
}

fn realloc_field(prepared: &Prepared, answers: &[ReallocAnswer]) -> Result<Vec<String>> {
    answers
        .iter()
        .map(|a| {
            Ok(match a {
                ReallocAnswer::Bump => "bump".to_string(),
                ReallocAnswer::Trap => "trap".to_string(),
                ReallocAnswer::Value(n) => format!("value:{n}"),
                ReallocAnswer::Call { thunk, arg } => format!("call:{}:{arg}", builtin_name(prepared, *thunk)?),
            })
        })
        .collect()
}

/// The `key = value` lines of one call (a case's own, or a step's).
fn call_fields(prepared: &Prepared, call: &CallPlan) -> Result<Vec<String>> {
    let (name, ft) = prepared.exports.get(call.export as usize).ok_or_else(|| anyhow!("no export {}", call.export))?;
    let is_async_call = ft.async_;
    let params: Vec<&ValType> = ft.params.iter().map(|(_, t)| t).collect();
    let mut lines = vec![format!("call = {}", quoted(name))];
    lines.push(format!("args = {}", quoted_list(&wave_list(&params, &call.args, false)?)));
    if let Some(t) = &ft.result {
        lines.push(format!("returns = {}", quoted(&wave_list(&[t], &call.result.values, true)?.concat())));
    }
    if let Some(c) = corrupt_field(&call.result.corruption)? {
        lines.push(format!("corrupt = {c}"));
    }
    let (mut builtins, mut imports) = (vec![], vec![]);
    // 🔀 An async call's activations, in the suite's words (`async`).
    let (mut activations, mut words): (Vec<String>, Vec<String>) = (vec![], vec![]);
    for op in &call.ops {
        match op {
            GuestOp::Builtin { thunk, arg } => {
                if !words.is_empty() || !activations.is_empty() {
                    bail!("the guest calls a resource built-in inside an async call: suite cases make them first");
                }
                builtins.push(format!("{{ builtin = {}, arg = {arg} }}", quoted(&builtin_name(prepared, *thunk)?)))
            }
            GuestOp::TaskReturn => words.push("return".into()),
            GuestOp::AsyncBuiltin { thunk, args } => words.push(async_builtin_word(prepared, *thunk, args)?),
            GuestOp::Poke { addr, bytes } => {
                words.push(format!("poke:{addr},{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
            }
            GuestOp::Peek { addr, len } => words.push(format!("peek:{addr},{len}")),
            GuestOp::Activation { code } => {
                words.push(callback_code_word(*code));
                activations.push(quoted(&words.join(" ")));
                words.clear();
            }
            GuestOp::Import(import) => {
                let Some(ImportType::Func { name, ft }) = prepared.imports.get(import.thunk as usize) else {
                    bail!("import {} is no function", import.thunk)
                };
                let params: Vec<&ValType> = ft.params.iter().map(|(_, t)| t).collect();
                let mut fields = vec![
                    format!("call = {}", quoted(name)),
                    format!("args = {}", quoted_list(&wave_list(&params, &import.args.values, true)?)),
                ];
                if let (Some(t), Some(v)) = (&ft.result, &import.result) {
                    fields.push(format!("returns = {}", quoted(&print_value(t, v)?)));
                }
                if let Some(c) = corrupt_field(&import.args.corruption)? {
                    fields.push(format!("corrupt = {c}"));
                }
                if import.later {
                    fields.push("later = true".into());
                }
                if is_async_call {
                    words.push(format!("import:{}", imports.len()));
                }
                imports.push(format!("{{ {} }}", fields.join(", ")));
            }
        }
    }
    if is_async_call {
        // As `build_case` ends a script that does not end an activation.
        if !words.is_empty() || activations.is_empty() {
            if !call.ops.contains(&GuestOp::TaskReturn) {
                words.push("return".into());
            }
            words.push("exit".into());
            activations.push(quoted(&words.join(" ")));
        }
        if !builtins.is_empty() {
            lines.push(format!("builtins = [{}]", builtins.join(", ")));
        }
        if !imports.is_empty() {
            lines.push(format!("imports = [{}]", imports.join(", ")));
        }
        lines.push(format!("async = [{}]", activations.join(", ")));
        return Ok(lines);
    }
    // The suite's guest makes its built-in calls first, then its imports.
    let builtins_first = call
        .ops
        .iter()
        .skip_while(|op| matches!(op, GuestOp::Builtin { .. }))
        .all(|op| matches!(op, GuestOp::Import(_)));
    if !builtins_first {
        bail!("the guest calls a built-in after an import: suite cases make built-in calls first");
    }
    if !builtins.is_empty() {
        lines.push(format!("builtins = [{}]", builtins.join(", ")));
    }
    if !imports.is_empty() {
        lines.push(format!("imports = [{}]", imports.join(", ")));
    }
    Ok(lines)
}

/// 🔀 A callback code in the suite's words.
fn callback_code_word(code: u32) -> String {
    match (code & 0xf, code >> 4) {
        (0, 0) => "exit".into(),
        (1, 0) => "yield".into(),
        (2, set) => format!("wait:{set}"),
        _ => format!("code:{code}"),
    }
}

/// 🔀 An async built-in call in the suite's words (`waitable-join:1,2`, `stream.read:1,0,4`,
/// `task-return.f:7`).
fn async_builtin_word(prepared: &Prepared, thunk: u32, args: &[u32]) -> Result<String> {
    let name = match prepared.imports.get(thunk as usize) {
        Some(ImportType::Async(AsyncImport::TaskReturn { func, .. })) => format!("task-return.{func}"),
        Some(ImportType::Async(b)) => b.describe(),
        _ => bail!("thunk {thunk} is no async built-in"),
    };
    let args: Vec<String> = args.iter().map(u32::to_string).collect();
    Ok(if args.is_empty() { name } else { format!("{name}:{}", args.join(",")) })
}

/// The rules a case over these steps checks, by the types it moves: the functions of
/// definitions.py that lift and lower them. An author may narrow them.
fn rules_of(prepared: &Prepared, steps: &[StepPlan]) -> Vec<String> {
    let mut rules = vec!["canon_lift".to_string()];
    let mut types: Vec<ValType> = vec![];
    for step in steps {
        let StepPlan::Call(call) = step else {
            rules.push("canon_resource_drop".into());
            continue;
        };
        if let Some((_, ft)) = prepared.exports.get(call.export as usize) {
            types.extend(ft.params.iter().map(|(_, t)| t.clone()));
            types.extend(ft.result.clone());
        }
        for op in &call.ops {
            if let GuestOp::Import(i) = op {
                rules.push("canon_lower".into());
                if let Some(ImportType::Func { ft, .. }) = prepared.imports.get(i.thunk as usize) {
                    types.extend(ft.params.iter().map(|(_, t)| t.clone()));
                    types.extend(ft.result.clone());
                }
            }
        }
    }
    let mut walk = types;
    while let Some(t) = walk.pop() {
        let names: &[&str] = match &t {
            ValType::String => &["load_string", "store_string"],
            ValType::List(e, _) => {
                walk.push((**e).clone());
                &["load_list", "store_list"]
            }
            ValType::Map(k, v) => {
                walk.extend([(**k).clone(), (**v).clone()]);
                &["load_list", "store_list"]
            }
            ValType::Record(fs) => {
                walk.extend(fs.iter().map(|f| f.t.clone()));
                &["load_record", "store_record"]
            }
            ValType::Tuple(ts) => {
                walk.extend(ts.iter().cloned());
                &["load_record", "store_record"]
            }
            ValType::Variant(cs) => {
                walk.extend(cs.iter().filter_map(|c| c.t.clone()));
                &["load_variant", "store_variant"]
            }
            ValType::Option(t) => {
                walk.push((**t).clone());
                &["load_variant", "store_variant"]
            }
            ValType::Result(ok, err) => {
                walk.extend(ok.iter().chain(err).map(|t| (**t).clone()));
                &["load_variant", "store_variant"]
            }
            ValType::Enum(_) => &["load_variant", "store_variant"],
            ValType::Flags(_) => &["load_flags", "store_flags"],
            ValType::Own(_) => &["lift_own", "lower_own"],
            ValType::Borrow(_) => &["lift_borrow", "lower_borrow"],
            ValType::Char => &["convert_i32_to_char", "char_to_i32"],
            _ => &[],
        };
        rules.extend(names.iter().map(|s| s.to_string()));
    }
    rules.retain(|r| crate::suite::coverage::is_rule(r));
    let mut seen = vec![];
    rules.retain(|r| {
        let new = !seen.contains(r);
        seen.push(r.clone());
        new
    });
    rules
}

/// The expectation the reference gives, as the suite writes it: the trap (or none), the
/// result of a one-call case, the host's destructor calls.
fn expect_field(prepared: &Prepared, steps: &[StepPlan], o: &Outcome) -> Result<String> {
    let mut fields = vec![format!("trap = {}", quoted(o.trap_kind().map_or("none", |k| k.name())))];
    if let ([StepPlan::Call(call)], None) = (steps, &o.trap) {
        let ft = &prepared.exports[call.export as usize].1;
        let returned = o.events.iter().find_map(|e| match e {
            HostEvent::Returned { result: Some(v), .. } => Some(v),
            _ => None,
        });
        if let (Some(t), Some(v)) = (&ft.result, returned) {
            fields.push(format!("result = {}", quoted(&print_value(t, v)?)));
        }
    }
    let host_dtors: Vec<String> = o
        .events
        .iter()
        .filter_map(|e| match e {
            HostEvent::Dtor { rep } => Some(rep.to_string()),
            _ => None,
        })
        .collect();
    if !host_dtors.is_empty() {
        fields.push(format!("host-dtors = [{}]", host_dtors.join(", ")));
    }
    Ok(format!("expect = {{ {} }}", fields.join(", ")))
}

/// The suite file of one case.
fn suite_text(f: &Finding, world: &str, checker: &mut Checker<'_>, steps: &[StepPlan]) -> Result<String> {
    let (outcome, diffs) = checker.run(steps)?.ok_or_else(|| anyhow!("the shrunk steps make no case"))?;
    let prepared = &checker.prepared;
    let label = checker.engine.label().to_string();
    let area = diffs.first().map_or("outcome".to_string(), |d| d.area.to_string());
    let mut out = format!("# A finding of {}: {label} diverges from the reference.\n", f.origin);
    for d in &diffs {
        out.push_str(&format!("# [{}] {}\n", d.area, d.detail.replace('\n', "\n#   ")));
    }
    out.push_str("# Written by `witness to-case` (shrunk). Check the rules, then say in a comment which\n");
    out.push_str("# rule of definitions.py makes the expectation right.\n\n");
    out.push_str(&format!("world = \"\"\"\n{}\"\"\"\n\n[[case]]\n", world.replace("\"\"\"", "\"\"\\\"")));
    out.push_str(&format!("name = {}\n", quoted(&format!("{label} diverges in {area} (fuzz finding)"))));
    out.push_str(&format!("rules = {}\n", quoted_list(&rules_of(prepared, steps))));
    out.push_str(&format!("encoding = {}\n", quoted(f.encoding.name())));
    out.push_str(&format!("names = {}\n", quoted(if f.scheme == NameScheme::Legacy { "legacy" } else { "standard" })));
    out.push_str(&format!("{}\n", expect_field(prepared, steps, &outcome)?));
    match steps {
        [StepPlan::Call(call)] => {
            for line in call_fields(prepared, call)? {
                out.push_str(&format!("{line}\n"));
            }
            let realloc = realloc_field(prepared, &call.realloc)?;
            if !realloc.is_empty() {
                out.push_str(&format!("realloc = {}\n", quoted_list(&realloc)));
            }
        }
        _ => {
            // A case's realloc answers are its first call's (suites/conformance/README.md).
            let mut first_call = true;
            let mut tables = String::new();
            for step in steps {
                tables.push_str("\n[[case.step]]\n");
                match step {
                    StepPlan::Drop { slot } => tables.push_str(&format!("drop = {slot}\n")),
                    StepPlan::Call(call) => {
                        for line in call_fields(prepared, call)? {
                            tables.push_str(&format!("{line}\n"));
                        }
                        if first_call {
                            let realloc = realloc_field(prepared, &call.realloc)?;
                            if !realloc.is_empty() {
                                out.push_str(&format!("realloc = {}\n", quoted_list(&realloc)));
                            }
                        } else if call.realloc.iter().any(|a| *a != ReallocAnswer::Bump) {
                            bail!(
                                "a later step answers realloc its own way: suite cases answer for the first call only"
                            );
                        }
                        first_call = false;
                    }
                }
            }
            out.push_str(&tables);
        }
    }
    Ok(out)
}

/// Whether the suite file `text` is one the engine fails (and the reference check passes).
fn suite_fails(text: &str, engine: &Selection, expectations: &Expectations, scratch: &Path) -> Result<bool> {
    std::fs::write(scratch, text).with_context(|| format!("cannot write {}", scratch.display()))?;
    let rows = run_file(scratch, std::slice::from_ref(engine), expectations, &|_, _, _| true)?;
    let reference_ok = rows.iter().any(|r| r.engine == crate::runtime::model::NAME && r.status == Status::Passed);
    let engine_fails =
        rows.iter().any(|r| r.engine != crate::runtime::model::NAME && matches!(r.status, Status::Failed(_)));
    Ok(reference_ok && engine_fails)
}

/// The world's WIT with one item fewer, for each item the case may do without: a world
/// import or export, or a function of an interface.
fn smaller_worlds(wit: &str) -> Result<Vec<String>> {
    // Each candidate parses the text again: ids are only good in the arena that made them, so
    // items are named by their position.
    let base = Wit::parse("world.wit", wit)?;
    let w = &base.resolve.worlds[base.world(Some("w"))?];
    let (imports, exports) = (w.imports.len(), w.exports.len());
    let mut out = vec![];
    for (import, i) in (0..imports).map(|i| (true, i)).chain((0..exports).map(|i| (false, i))) {
        let mut smaller = Wit::parse("world.wit", wit)?;
        let world = smaller.world(Some("w"))?;
        let w = &mut smaller.resolve.worlds[world];
        let items = if import { &mut w.imports } else { &mut w.exports };
        items.shift_remove_index(i);
        if let Ok(text) = smaller.to_text() {
            out.push(text);
        }
    }
    // Whole interfaces of the world's package (one still used leaves WIT that does not parse).
    let interfaces = base.resolve.packages[base.package].interfaces.len();
    for i in 0..interfaces {
        let mut smaller = Wit::parse("world.wit", wit)?;
        smaller.resolve.packages[smaller.package].interfaces.shift_remove_index(i);
        if let Ok(text) = smaller.to_text() {
            out.push(text);
        }
    }
    // Functions, then types (a type still used leaves WIT that does not parse: refused).
    let counts: Vec<(usize, usize)> =
        base.resolve.interfaces.iter().map(|(_, iface)| (iface.functions.len(), iface.types.len())).collect();
    for (functions, remove_function) in [(true, 0), (false, 1)] {
        for (k, &(nf, nt)) in counts.iter().enumerate() {
            for i in 0..if functions { nf } else { nt } {
                let mut smaller = Wit::parse("world.wit", wit)?;
                let Some((id, _)) = smaller.resolve.interfaces.iter().nth(k) else { continue };
                let iface = &mut smaller.resolve.interfaces[id];
                if remove_function == 0 {
                    iface.functions.shift_remove_index(i);
                } else {
                    iface.types.shift_remove_index(i);
                }
                if let Ok(text) = smaller.to_text() {
                    out.push(text);
                }
            }
        }
    }
    Ok(out)
}

/// What `witness to-case` hands out.
pub struct Written {
    pub text: String,
    /// Steps and WIT lines before and after shrinking.
    pub steps: (usize, usize),
    pub world_lines: (usize, usize),
    pub runs: usize,
}

/// Shrink `f` and write it as a suite file; `scratch` is a file the candidates are written to.
pub fn to_case(f: &Finding, expectations: &Expectations, scratch: &Path) -> Result<Written> {
    let mut checker = Checker::new(f, expectations)?;
    let steps = without_missed_corruptions(&checker.prepared, &f.steps);
    if !checker.diverges(&steps)? {
        bail!("{} does not diverge from the reference on these steps (or the expectations explain it)", f.engine);
    }
    let steps = shrink_steps(&mut checker, steps)?;
    let mut world = f.wit.clone();
    let mut text = suite_text(f, &world, &mut checker, &steps)?;
    if !suite_fails(&text, &f.engine, expectations, scratch)? {
        bail!("the case written from the finding does not fail on {} as a suite case:\n{text}", f.engine);
    }
    let mut runs = checker.runs;
    // The world, item by item: the case names exports and imports, so it reads the same. After
    // an item is taken out the pass goes on from the same place; a pass that took any out is
    // followed by another (an item may have been kept only by one taken out after it).
    let (mut from, mut pass_shrank) = (0, false);
    'shrink: while runs < SHRINK_BUDGET {
        let candidates = smaller_worlds(&world)?;
        for (k, smaller) in candidates.into_iter().enumerate().skip(from) {
            runs += 1;
            let candidate = text.replacen(&world, &smaller, 1);
            if suite_fails(&candidate, &f.engine, expectations, scratch).unwrap_or(false) {
                world = smaller;
                text = candidate;
                (from, pass_shrank) = (k, true);
                continue 'shrink;
            }
            if runs >= SHRINK_BUDGET {
                break 'shrink;
            }
        }
        if !std::mem::take(&mut pass_shrank) {
            break;
        }
        from = 0;
    }
    Ok(Written {
        text,
        steps: (f.steps.len(), steps.len()),
        world_lines: (Wit::parse("world.wit", &f.wit)?.to_text()?.lines().count(), world.lines().count()),
        runs,
    })
}

/// A scratch suite file in the system's temporary folder, named after the process.
pub fn scratch_file() -> PathBuf {
    std::env::temp_dir().join(format!("witness-to-case-{}.toml", std::process::id()))
}
