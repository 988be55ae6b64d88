//! Conformance suites (`suites/*.toml`): hand-written cases over one world each. A case names
//! the spec rules it checks (definitions.py function names) and, where it guards against a
//! known bug, that bug; says what the host calls with which values (WAVE), what the guest does
//! (returns, import calls, corrupted data, realloc answers); and what the spec says must happen.
//! The runner checks that expectation against the reference, then every engine against the
//! reference with the oracle. A bad case fails alone, with its file and line. A case with a
//! `callee` is fused (suite/fused.rs): its guest calls a second guest instead of the host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Deserialize;

use crate::encode::names::NameScheme;
use crate::encode::script::ReallocAnswer;
use crate::runtime::model::NAME as REFERENCE;
use std::sync::Arc;

use crate::encode::script::Script;
use crate::engine::Selection;
use crate::oracle::{Difference, compare, compile_difference};
use crate::plan::{CallPlan, Corruption, GuestOp, GuestValues, ImportPlan, Misses, StepPlan, build_case};
use crate::reference::Value;
use crate::reference::types::{FuncType, StringEncoding, ValType};
use crate::runtime::driver::run_case;
use crate::runtime::prepared::{AsyncImport, ImportType};
use crate::runtime::resources::is_guest_resource;
use crate::runtime::{Artifact, Case, CompileFailed, Compiled, Outcome, Prepared, Unsupported};
use crate::suite::expect::check_plain;
use crate::suite::expectations::Expectations;
use crate::suite::fused::run_fused;
use crate::world::wave::parse_value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SuiteFile {
    /// The world, inline WIT (its only world is used).
    world: String,
    /// The cases, each read on its own, so that a bad one fails alone.
    #[serde(default, rename = "case")]
    cases: Vec<CaseEntry>,
}

/// One `[[case]]` as read: the case, or why it cannot be read.
#[derive(Debug)]
struct CaseEntry(std::result::Result<CaseSpec, String>);

impl<'de> Deserialize<'de> for CaseEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<CaseEntry, D::Error> {
        Ok(CaseEntry(CaseSpec::deserialize(d).map_err(|e| e.to_string())))
    }
}

/// One case of a suite file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CaseSpec {
    pub name: String,
    /// The definitions.py functions whose rules the case checks.
    pub rules: Vec<String>,
    /// Known bugs of real implementations (issue or advisory ids) the case guards against.
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
    /// 🔀 What an async export does, one entry per activation (its call, then each callback
    /// call): words `return` (task.return with `returns`), a built-in (`waitable-set-new`,
    /// `context-set-0:7`, `waitable-join:1,2`), then the callback code (`exit`, `yield`,
    /// `wait:SET`, `code:N`). Default: `["return exit"]`.
    #[serde(default, rename = "async")]
    pub activations: Vec<String>,
    /// Several host steps instead of the one call above.
    #[serde(default, rename = "step")]
    pub steps: Vec<StepSpec>,
    /// A fused case: the guest above is the caller, composed with this callee.
    #[serde(default)]
    pub callee: Option<CalleeSpec>,
    #[serde(default)]
    pub expect: ExpectSpec,
}

/// The callee of a fused case: a second scripted guest whose exports the caller's imports
/// reach through Wasmtime's fused adapters (the reference: canon_lower, then canon_lift). The
/// caller runs `run`, calling the callee once per `imports` entry; the entry's `returns` is
/// what the callee answers.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CalleeSpec {
    /// The callee's string encoding (default utf8).
    #[serde(default)]
    pub encoding: Option<String>,
    /// The callee's realloc answers (`bump`, `trap`, `value:N`), over all its calls.
    #[serde(default)]
    pub realloc: Vec<String>,
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
    #[serde(default, rename = "async")]
    pub activations: Vec<String>,
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
    /// Corrupts the arguments the guest hands over.
    #[serde(default)]
    pub corrupt: Option<CorruptSpec>,
    /// In a fused case, corrupts what the callee returns (`returns`, laid out by the callee).
    #[serde(default)]
    pub returns_corrupt: Option<CorruptSpec>,
    /// 🔀 For an async import: the host answers once the guest's event loop has nothing else
    /// to run, so the call gives a STARTED subtask.
    #[serde(default)]
    pub later: bool,
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
    /// The flat values each post-return call received (the export's flat results), in order.
    pub post_return: Option<Vec<Vec<u64>>>,
    /// The reps the guest's destructors ran with, in order.
    pub dtors: Option<Vec<u32>>,
    /// 🔀 The events the guest's callbacks received, in order: `[code, p1, p2]` each.
    pub events: Option<Vec<[u32; 3]>>,
    /// The reps the host's destructors ran with, in order.
    pub host_dtors: Option<Vec<u32>>,
    /// The return area of each import call whose results go through one (hex): what the
    /// import's results were lowered into.
    pub ret_area: Option<Vec<String>>,
    /// In a fused case, the callee's log: the fields above that a guest's log answers
    /// (the other fields are the caller's).
    pub callee: Option<Box<ExpectSpec>>,
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
    /// The reference's row: what its guest logged, an event a line (for snapshots).
    #[serde(skip)]
    pub trace: Vec<String>,
}

impl CaseResult {
    /// The case's area, as expectations files name it.
    pub fn area(&self) -> &str {
        area_of(&self.file)
    }
}

/// The area of the cases in suite file `file`: its stem.
fn area_of(file: &Path) -> &str {
    file.file_stem().and_then(|s| s.to_str()).unwrap_or_default()
}

/// How a case ended on one engine: its row, before the case's own fields are added.
pub(crate) struct Ran {
    pub engine: String,
    pub status: Status,
    pub trap: Option<String>,
    pub trace: Vec<String>,
}

impl Ran {
    pub(crate) fn new(engine: &str, status: Status, outcome: Option<&Outcome>) -> Ran {
        let trap = outcome.and_then(Outcome::trap_kind).map(|k| k.name().to_string());
        let trace = match (engine == REFERENCE, outcome.and_then(|o| o.log.as_ref())) {
            (true, Some(log)) => log.iter().map(|e| format!("{e:?}")).collect(),
            _ => vec![],
        };
        Ran { engine: engine.to_string(), status, trap, trace }
    }
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

/// The file's line of the first line of the `world` text: the line of its opening quotes, or
/// the next one for a multi-line string (TOML drops the newline right after the quotes).
fn world_first_line(text: &str) -> Result<usize> {
    #[derive(Deserialize)]
    struct WorldSpan {
        world: toml::Spanned<String>,
    }
    let span: WorldSpan = toml::from_str(text)?;
    let start = span.world.span().start;
    let line = text[..start].matches('\n').count() + 1;
    let multi_line = ["\"\"\"\n", "'''\n"].iter().any(|quotes| text[start..].starts_with(quotes));
    Ok(line + usize::from(multi_line))
}

/// Where each case stands in its file, from the TOML parser's spans.
#[derive(Deserialize)]
struct CaseSpans {
    #[serde(default, rename = "case")]
    cases: Vec<toml::Spanned<CaseSpan>>,
}

#[derive(Deserialize)]
struct CaseSpan {
    name: Option<toml::Spanned<toml::Value>>,
}

/// Each case's line (1-based, its `name` where it has one) and name (or its position where it
/// has none), in file order.
fn case_places(text: &str) -> Result<Vec<(usize, String)>> {
    let spans: CaseSpans = toml::from_str(text)?;
    let line = |at: usize| text[..at].matches('\n').count() + 1;
    Ok(spans
        .cases
        .iter()
        .enumerate()
        .map(|(i, c)| match &c.get_ref().name {
            Some(n) => {
                (line(n.span().start), n.get_ref().as_str().map_or_else(|| n.get_ref().to_string(), str::to_string))
            }
            None => (line(c.span().start), format!("(case {})", i + 1)),
        })
        .collect())
}

pub(crate) fn parse_encoding(e: Option<&str>) -> Result<StringEncoding> {
    match e {
        None => Ok(StringEncoding::Utf8),
        Some(e) => StringEncoding::parse(e).ok_or_else(|| anyhow!("unknown encoding `{e}`")),
    }
}

pub(crate) fn parse_names(n: Option<&str>) -> Result<NameScheme> {
    match n {
        None | Some("standard") => Ok(NameScheme::Standard),
        Some("legacy") => Ok(NameScheme::Legacy),
        Some(other) => bail!("unknown name scheme `{other}` (standard or legacy)"),
    }
}

pub(crate) fn corruption(c: &Option<CorruptSpec>) -> Result<Option<Corruption>> {
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

fn realloc_answer(prepared: &Prepared, s: &str) -> Result<ReallocAnswer> {
    let bad = || anyhow!("realloc answer `{s}`: bump, trap, value:N or call:BUILTIN:N");
    Ok(match s {
        "bump" => ReallocAnswer::Bump,
        "trap" => ReallocAnswer::Trap,
        v => match (v.strip_prefix("value:"), v.strip_prefix("call:")) {
            (Some(n), _) => ReallocAnswer::Value(n.parse().map_err(|_| bad())?),
            (_, Some(call)) => {
                let (builtin, arg) = call.rsplit_once(':').ok_or_else(bad)?;
                ReallocAnswer::Call { thunk: builtin_thunk(prepared, builtin)?, arg: arg.parse().map_err(|_| bad())? }
            }
            _ => return Err(bad()),
        },
    })
}

/// A guest's realloc answers, in order.
pub(crate) fn realloc_answers(prepared: &Prepared, answers: &[String]) -> Result<Vec<ReallocAnswer>> {
    answers.iter().map(|r| realloc_answer(prepared, r)).collect()
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

/// `returns` as the result of `ft` (no value for a function without one), strings in `enc`.
pub(crate) fn result_values(
    ft: &FuncType,
    returns: Option<&String>,
    enc: StringEncoding,
    what: &str,
) -> Result<Vec<Value>> {
    Ok(match (&ft.result, returns) {
        (Some(t), Some(r)) => vec![parse_value(t, r, enc).with_context(|| format!("{what}'s `returns`"))?],
        (None, None) => vec![],
        (Some(_), None) => bail!("{what} has a result: say what it returns"),
        (None, Some(_)) => bail!("{what} has no result"),
    })
}

/// The guest's call of import `imp.call`: its thunk, its type, and the arguments the guest
/// lays out (in its encoding, maybe corrupted).
pub(crate) fn import_call<'p>(prepared: &'p Prepared, imp: &ImportSpec) -> Result<(u32, &'p FuncType, GuestValues)> {
    let (thunk, ft) = prepared
        .imports
        .iter()
        .enumerate()
        .find_map(|(i, ty)| match ty {
            ImportType::Func { name, ft } if *name == imp.call => Some((i as u32, ft)),
            _ => None,
        })
        .ok_or_else(|| anyhow!("the world imports no function `{}`", imp.call))?;
    if imp.args.len() != ft.params.len() {
        bail!("import `{}` takes {} argument(s)", imp.call, ft.params.len());
    }
    let values = ft
        .params
        .iter()
        .zip(&imp.args)
        .enumerate()
        .map(|(i, ((name, t), a))| {
            parse_value(t, a, prepared.encoding)
                .with_context(|| format!("import `{}`: `args[{i}]` (parameter `{name}`)", imp.call))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((thunk, ft, GuestValues { values, corruption: corruption(&imp.corrupt)? }))
}

/// Hex digits as bytes (`0a1b`).
fn hex_bytes(hex: &str) -> Result<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        bail!("`{hex}` is not an even number of hex digits");
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| anyhow!("`{hex}` is not hex")))
        .collect()
}

/// 🔀 One activation of an async export (`return`, built-ins, then its callback code), as ops.
/// `import:K` takes the call of `imports[K]` out of `imports`.
fn activation_ops(prepared: &Prepared, activation: &str, imports: &mut [Option<ImportPlan>]) -> Result<Vec<GuestOp>> {
    let number =
        |s: &str| -> Result<u32> { s.parse().map_err(|_| anyhow!("`{s}` is not a number (in `{activation}`)")) };
    let mut ops = vec![];
    for word in activation.split_whitespace() {
        let (name, arg) = word.split_once(':').map_or((word, None), |(n, a)| (n, Some(a)));
        let op = match (name, arg) {
            ("return", None) => GuestOp::TaskReturn,
            ("exit", None) => GuestOp::Activation { code: 0 },
            ("yield", None) => GuestOp::Activation { code: 1 },
            ("wait", Some(set)) => GuestOp::Activation { code: 2 | (number(set)? << 4) },
            ("code", Some(code)) => GuestOp::Activation { code: number(code)? },
            ("import", Some(k)) => {
                let k = number(k)? as usize;
                let len = imports.len();
                let slot = imports.get_mut(k).ok_or_else(|| anyhow!("`{word}`: the case has {len} import(s)"))?;
                GuestOp::Import(slot.take().ok_or_else(|| anyhow!("`{word}`: that import is called already"))?)
            }
            ("poke", Some(a)) => {
                let (addr, hex) = a.split_once(',').ok_or_else(|| anyhow!("`{word}`: give `poke:ADDR,HEX`"))?;
                GuestOp::Poke { addr: number(addr)?, bytes: hex_bytes(hex).with_context(|| format!("`{word}`"))? }
            }
            ("peek", Some(a)) => {
                let (addr, len) = a.split_once(',').ok_or_else(|| anyhow!("`{word}`: give `peek:ADDR,LEN`"))?;
                GuestOp::Peek { addr: number(addr)?, len: number(len)? }
            }
            (name, args) if name.starts_with("task-return.") => {
                // Another export's task.return, called with raw i32 words (a mismatch on purpose).
                let func = &name["task-return.".len()..];
                let thunk = prepared
                    .imports
                    .iter()
                    .position(|i| matches!(i, ImportType::Async(AsyncImport::TaskReturn { func: f, .. }) if f == func))
                    .ok_or_else(|| anyhow!("`{name}`: the world exports no async func `{func}`"))?;
                let args = args.map_or(Ok(vec![]), |a| a.split(',').map(number).collect::<Result<Vec<u32>>>())?;
                GuestOp::AsyncBuiltin { thunk: thunk as u32, args }
            }
            (name, args) if name.starts_with("stream.") || name.starts_with("future.") => {
                let matching: Vec<(usize, &ValType)> = prepared
                    .imports
                    .iter()
                    .enumerate()
                    .filter_map(|(t, i)| match i {
                        ImportType::Async(b @ AsyncImport::Value { ty, .. }) if b.describe() == name => Some((t, ty)),
                        _ => None,
                    })
                    .collect();
                // Each use of `stream<u8>` in a signature has built-ins of its own; the spec
                // compares payload types (`e.shared.t != stream_t.t`), so any of equal ones will do.
                let thunk = match matching[..] {
                    [] => bail!(
                        "`{name}`: the world has no such built-in (it needs a {} type in a signature)",
                        &name[..6]
                    ),
                    [(t, ty), ..] if matching.iter().all(|(_, other)| *other == ty) => t,
                    _ => bail!(
                        "`{name}`: the world's signatures have several such types of different payloads; the suite \
                         names only one"
                    ),
                };
                let args = args.map_or(Ok(vec![]), |a| a.split(',').map(number).collect::<Result<Vec<u32>>>())?;
                GuestOp::AsyncBuiltin { thunk: thunk as u32, args }
            }
            (name, args) => {
                let thunk = prepared
                    .builtin_thunk(&format!("[{name}]"))
                    .ok_or_else(|| anyhow!("`{name}` is neither `return`, a callback code (exit, yield, wait:SET, code:N) nor an async built-in the guest imports"))?;
                let args = args.map_or(Ok(vec![]), |a| a.split(',').map(number).collect::<Result<Vec<u32>>>())?;
                GuestOp::AsyncBuiltin { thunk: thunk as u32, args }
            }
        };
        if matches!(ops.last(), Some(GuestOp::Activation { .. })) {
            bail!("`{activation}`: the callback code ends the activation; start the next one in a new entry");
        }
        ops.push(op);
    }
    if !matches!(ops.last(), Some(GuestOp::Activation { .. })) {
        bail!("`{activation}` does not end with a callback code (exit, yield, wait:SET or code:N)");
    }
    Ok(ops)
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
        .enumerate()
        .map(|(i, ((name, t), a))| {
            parse_value(t, a, StringEncoding::Utf8)
                .with_context(|| format!("`{call}`: `args[{i}]` (parameter `{name}`)"))
        })
        .collect::<Result<Vec<_>>>()?;
    // An async export whose script never says `return` (it traps first, or calls task.return with
    // raw words) needs no `returns`: a result it cannot write, such as a stream, can be left out.
    let says_return = st.activations.iter().any(|a| a.split_whitespace().any(|w| w == "return"));
    let values = if ft.async_ && !st.activations.is_empty() && !says_return && returns.is_none() {
        vec![]
    } else {
        result_values(ft, returns, prepared.encoding, &format!("`{call}`"))?
    };
    let mut ops = vec![];
    for b in builtins {
        ops.push(GuestOp::Builtin { thunk: builtin_thunk(prepared, &b.builtin)?, arg: b.arg });
    }
    let mut import_plans = vec![];
    for imp in imports {
        if imp.returns_corrupt.is_some() {
            bail!("import `{}`: `returns-corrupt` is for a fused case's callee", imp.call);
        }
        let (thunk, ift, args) = import_call(prepared, imp)?;
        let what = format!("import `{}`", imp.call);
        let result = result_values(ift, imp.returns.as_ref(), StringEncoding::Utf8, &what)?.pop();
        if imp.later && !ift.async_ {
            bail!("{what}: `later` is for async imports (a synchronous call waits for its answer)");
        }
        import_plans.push(Some(ImportPlan { thunk, args, result, later: imp.later }));
    }
    if !ft.async_ && !st.activations.is_empty() {
        bail!("`{call}` is not an async func: `async` is for async exports");
    }
    let mut activations = vec![];
    for (i, activation) in st.activations.iter().enumerate() {
        let what = format!("`{call}`: `async[{i}]`");
        activations.extend(activation_ops(prepared, activation, &mut import_plans).with_context(|| what)?);
    }
    // Imports that no `import:K` word places come first.
    ops.extend(import_plans.into_iter().flatten().map(GuestOp::Import));
    ops.extend(activations);
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
    let realloc = realloc_answers(prepared, &c.realloc)?;
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
            activations: c.activations.clone(),
            drop: None,
        };
        return Ok(vec![plan_call(prepared, &step, realloc)?]);
    }
    if !c.call.is_empty()
        || !c.args.is_empty()
        || c.returns.is_some()
        || !c.imports.is_empty()
        || !c.builtins.is_empty()
        || !c.activations.is_empty()
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

/// The prepared worlds of one suite file, made once per encoding and name scheme (a failure
/// is kept, so each case that needs the world reports it).
pub(crate) struct WorldCache<'w, K, P> {
    world: &'w str,
    file: &'w Path,
    /// The file's line of the world text's first line.
    first_line: usize,
    made: BTreeMap<K, Result<P, String>>,
}

impl<'w, K: Ord + Copy, P> WorldCache<'w, K, P> {
    pub(crate) fn new(world: &'w str, file: &'w Path, first_line: usize) -> Self {
        WorldCache { world, file, first_line, made: BTreeMap::new() }
    }

    pub(crate) fn get(&mut self, key: K, make: impl FnOnce(&str, K) -> Result<P>) -> Result<&mut P> {
        let (world, file) = (self.world, self.file);
        self.made
            .entry(key)
            .or_insert_with(|| make(world, key).map_err(|e| in_file(&format!("{e:#}"), file, self.first_line)))
            .as_mut()
            .map_err(|e| anyhow!("{e}"))
    }
}

/// An error about the world text (parsed as `world.wit`) placed in the suite file: each
/// `world.wit:LINE:COL` becomes `FILE:LINE':COL`, the line counted in the file.
fn in_file(message: &str, file: &Path, first_line: usize) -> String {
    const NAME: &str = "world.wit:";
    let mut out = String::new();
    let mut rest = message;
    while let Some(at) = rest.find(NAME) {
        out.push_str(&rest[..at]);
        let after = &rest[at + NAME.len()..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        match after[..digits].parse::<usize>() {
            Ok(line) => out.push_str(&format!("{}:{}", file.display(), line + first_line - 1)),
            Err(_) => out.push_str(NAME),
        }
        rest = if digits > 0 { &after[digits..] } else { after };
    }
    out.push_str(rest);
    format!("{}: the world: {out}", file.display())
}

/// Where a case is, for expectations files: its area (the suite file's stem) and name.
#[derive(Clone, Copy)]
pub(crate) struct CaseId<'a> {
    pub area: &'a str,
    pub name: &'a str,
}

/// How an engine's outcome compares with the reference's: passed, an expected failure (a
/// known divergence, or the case is listed as failing), or failed. A case listed as failing
/// that passes is a failure too, so expectations files stay true.
pub(crate) fn engine_status(engine: &str, id: CaseId<'_>, diffs: &[Difference], expectations: &Expectations) -> Status {
    let listed = expectations.known_failure(engine, id.area, id.name);
    if diffs.is_empty() {
        return match listed {
            Some(k) => Status::Failed(format!("passes, but {} lists it as failing", k.origin())),
            None => Status::Passed,
        };
    }
    let text: Vec<String> = diffs.iter().map(|d| format!("[{}] {}", d.area, d.detail)).collect();
    let explained =
        diffs.iter().map(|d| expectations.explain(engine, d).map(|k| k.rule.as_str())).collect::<Option<Vec<_>>>();
    match (listed.map(|k| k.rule.as_str()), explained) {
        (Some(rule), _) => Status::Xfail(format!("{} ({rule})", text.join("; "))),
        (None, Some(rules)) => Status::Xfail(format!("{} ({})", text.join("; "), rules[0])),
        (None, None) => Status::Failed(text.join("; ")),
    }
}

/// Why a runtime cannot run a world: (its label, what happened).
pub(crate) enum Unavailable {
    /// The world needs what the runtime lacks: its cases are skipped.
    Unsupported(String, String),
    /// The runtime failed to compile a valid world: its cases fail (a `compile` difference),
    /// unless an expectations file says they do.
    Failed(String, String),
    /// The harness failed to set the runtime up.
    Broken(String, String),
}

impl Unavailable {
    fn of(selection: &Selection, e: anyhow::Error) -> Unavailable {
        if let Some(u) = e.downcast_ref::<Unsupported>() {
            return Unavailable::Unsupported(u.engine.clone(), u.reason.clone());
        }
        match e.downcast_ref::<CompileFailed>() {
            Some(f) => Unavailable::Failed(f.engine.clone(), f.message.clone()),
            None => Unavailable::Broken(selection.to_string(), format!("{e:#}")),
        }
    }

    /// This case's row.
    fn row(&self, id: CaseId<'_>, expectations: &Expectations) -> Ran {
        match self {
            Unavailable::Unsupported(engine, reason) => Ran::new(engine, Status::Skipped(reason.clone()), None),
            Unavailable::Failed(engine, message) => {
                let status = match expectations.skip(engine, id.area, id.name) {
                    Some(skip) => Status::Skipped(skip.reason.clone()),
                    None => engine_status(engine, id, &[compile_difference(message)], expectations),
                };
                Ran::new(engine, status, None)
            }
            Unavailable::Broken(engine, message) => {
                Ran::new(engine, Status::Failed(format!("engine error: {message}")), None)
            }
        }
    }
}

/// A world of one suite file made ready: prepared, as an artifact, and compiled once per
/// runtime (an adapter compiles or transpiles it once, then runs every case of the file).
pub(crate) struct Ready<P> {
    pub prepared: P,
    pub artifact: Arc<Artifact>,
    compiled: BTreeMap<String, Result<Box<dyn Compiled>, Unavailable>>,
}

impl<P> Ready<P> {
    pub(crate) fn new(prepared: P, artifact: Artifact) -> Ready<P> {
        Ready { prepared, artifact: Arc::new(artifact), compiled: BTreeMap::new() }
    }

    /// The reference's outcome of `case`.
    pub(crate) fn expected(&mut self, case: &Case, more: &[&Script]) -> Result<Outcome> {
        match compiled(&mut self.compiled, &self.artifact, &Selection::reference()) {
            Ok(reference) => run_case(reference.as_mut(), &self.artifact, case, more),
            Err(_) => bail!("the reference cannot run this world"),
        }
    }

    /// One row per selected runtime: each runs `case`, compared with `expected`.
    pub(crate) fn rows(
        &mut self,
        run: (CaseId<'_>, &Case, &[&Script]),
        selections: impl Iterator<Item = Selection>,
        expectations: &Expectations,
        compare: impl Fn(&P, &Outcome, &Outcome) -> Vec<Difference>,
        expected: &Outcome,
    ) -> Vec<Ran> {
        let (id, case, more) = run;
        let Ready { prepared, artifact, compiled: made } = self;
        let mut out = vec![];
        for selection in selections {
            let compiled = match compiled(made, artifact, &selection) {
                Ok(c) => c,
                Err(unavailable) => {
                    out.push(unavailable.row(id, expectations));
                    continue;
                }
            };
            let label = compiled.label().to_string();
            if let Some(skip) = expectations.skip(&label, id.area, id.name) {
                out.push(Ran::new(&label, Status::Skipped(skip.reason.clone()), None));
                continue;
            }
            out.push(match run_case(compiled.as_mut(), artifact, case, more) {
                // A case listed as failing may fail this way too (an adapter that refuses what
                // its runtime handed it); anything else is a harness failure.
                Err(e) => match expectations.known_failure(&label, id.area, id.name) {
                    Some(k) => Ran::new(&label, Status::Xfail(format!("engine error: {e:#} ({})", k.rule)), None),
                    None => Ran::new(&label, Status::Failed(format!("engine error: {e:#}")), None),
                },
                Ok(actual) => {
                    let status = engine_status(&label, id, &compare(prepared, expected, &actual), expectations);
                    Ran::new(&label, status, Some(&actual))
                }
            });
        }
        out
    }
}

/// The world compiled on `selection`'s runtime, once.
fn compiled<'m>(
    made: &'m mut BTreeMap<String, Result<Box<dyn Compiled>, Unavailable>>,
    artifact: &Arc<Artifact>,
    selection: &Selection,
) -> Result<&'m mut Box<dyn Compiled>, &'m Unavailable> {
    made.entry(selection.to_string())
        .or_insert_with(|| crate::engine::compile(selection, artifact).map_err(|e| Unavailable::of(selection, e)))
        .as_mut()
        .map_err(|u| &*u)
}

/// A plain case: the guest alone, called by the host, on the reference and on the selected
/// runtimes in their plain mode (compositions run fused cases only).
fn run_plain(
    worlds: &mut WorldCache<'_, (StringEncoding, NameScheme), Ready<Prepared>>,
    id: CaseId<'_>,
    c: &CaseSpec,
    engines: &[Selection],
    expectations: &Expectations,
) -> Result<Vec<Ran>> {
    let key = (parse_encoding(c.encoding.as_deref())?, parse_names(c.names.as_deref())?);
    let ready = worlds.get(key, |world, (enc, scheme)| {
        let p = Prepared::from_wit(world, None, scheme, enc)?;
        let artifact = Artifact::of(&p)?;
        Ok(Ready::new(p, artifact))
    })?;
    let case = build_case(&ready.prepared, &plan(&ready.prepared, c)?, Misses::Refuse)?;
    let expected = ready.expected(&case, &[])?;
    let status = expectation_status(check_plain(&ready.prepared, c, &expected));
    let mut out = vec![Ran::new(REFERENCE, status, Some(&expected))];
    let plain = engines.iter().filter(|s| !s.fused()).cloned();
    out.extend(ready.rows((id, &case, &[]), plain, expectations, compare, &expected));
    Ok(out)
}

pub(crate) fn expectation_status(checked: Result<()>) -> Status {
    match checked {
        Ok(()) => Status::Passed,
        Err(e) => Status::Failed(format!("{e:#}")),
    }
}

/// Run suite `file` on `engines`. Every case yields one `reference` row (the expectation) and
/// one row per engine that runs it: plain cases run on every engine but `wasmtime-fused`,
/// fused cases on `wasmtime-fused` only.
pub fn run_file(
    file: &Path,
    engines: &[Selection],
    expectations: &Expectations,
    keep: &Keep<'_>,
) -> Result<Vec<CaseResult>> {
    run_file_reporting(file, engines, expectations, keep, &mut |_| {})
}

/// `run_file`, handing each case's rows to `report` as soon as the case is decided (a run that
/// is killed keeps what it reported).
pub fn run_file_reporting(
    file: &Path,
    engines: &[Selection],
    expectations: &Expectations,
    keep: &Keep<'_>,
    report: &mut dyn FnMut(&CaseResult),
) -> Result<Vec<CaseResult>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let suite: SuiteFile = toml::from_str(&text).with_context(|| format!("{}: invalid suite file", file.display()))?;
    let places = case_places(&text).with_context(|| format!("{}: invalid suite file", file.display()))?;
    let area = area_of(file);
    let first_line = world_first_line(&text).with_context(|| format!("{}: invalid suite file", file.display()))?;
    let mut plain = WorldCache::new(&suite.world, file, first_line);
    let mut fused = WorldCache::new(&suite.world, file, first_line);
    let mut out = vec![];
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (CaseEntry(parsed), (line, name)) in suite.cases.into_iter().zip(places) {
        let first = seen.get(&name).copied();
        seen.entry(name.clone()).or_insert(line);
        // A case that cannot run fails alone, as a row like any other.
        let mut invalid = |why: String| {
            if keep(area, &name, &[]) {
                let (file, name, engine) = (file.to_path_buf(), name.clone(), REFERENCE.to_string());
                let status = Status::Failed(why);
                let row = CaseResult {
                    file,
                    line,
                    name,
                    rules: vec![],
                    bugs: vec![],
                    engine,
                    status,
                    trap: None,
                    trace: vec![],
                };
                report(&row);
                out.push(row);
            }
        };
        let c = match (parsed, first) {
            (Ok(c), None) => c,
            (Err(e), None) => {
                invalid(format!("invalid case: {}", e.to_string().trim_end()));
                continue;
            }
            (_, Some(at)) => {
                invalid(format!("a second case named `{name}` (the first is at line {at})"));
                continue;
            }
        };
        if !keep(area, &c.name, &c.rules) {
            continue;
        }
        let c = &c;
        let row = |ran: Ran| CaseResult {
            file: file.to_path_buf(),
            line,
            name: c.name.clone(),
            rules: c.rules.clone(),
            bugs: c.bugs.clone(),
            engine: ran.engine,
            status: ran.status,
            trap: ran.trap,
            trace: ran.trace,
        };
        let id = CaseId { area, name: &c.name };
        let rows = check_rules(c).and_then(|()| match &c.callee {
            None => run_plain(&mut plain, id, c, engines, expectations),
            Some(callee) => run_fused(&mut fused, id, c, callee, engines, expectations),
        });
        let start = out.len();
        match rows {
            Ok(rows) => out.extend(rows.into_iter().map(row)),
            Err(e) => out.push(row(Ran::new(REFERENCE, Status::Failed(format!("{e:#}")), None))),
        }
        out[start..].iter().for_each(&mut *report);
    }
    Ok(out)
}

/// Which cases of a file run: given the area (the file's stem), the case's name and rules.
pub type Keep<'a> = dyn Fn(&str, &str, &[String]) -> bool + 'a;

/// `witness suite --filter TEXT`: the cases whose name or one of whose rules contains `TEXT`
/// (all without one).
pub fn text_filter(text: Option<&str>) -> impl Fn(&str, &str, &[String]) -> bool + '_ {
    move |_, name, rules| text.is_none_or(|f| name.contains(f) || rules.iter().any(|r| r.contains(f)))
}

/// The names of the cases of suite `file`, in order, malformed ones included (`None` where
/// the file itself does not parse).
pub fn case_names(file: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(file).ok()?;
    toml::from_str::<SuiteFile>(&text).ok()?;
    Some(case_places(&text).ok()?.into_iter().map(|(_, name)| name).collect())
}

/// Every case names the definitions.py functions whose rules it checks.
fn check_rules(c: &CaseSpec) -> Result<()> {
    if c.rules.is_empty() {
        bail!("the case names no rule (definitions.py functions)");
    }
    if let Some(r) = c.rules.iter().find(|r| !crate::suite::coverage::is_rule(r)) {
        bail!("`{r}` is not a definitions.py function witness knows");
    }
    Ok(())
}
