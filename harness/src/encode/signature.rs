//! The core-module type of a world for the core-module build target: every import and export
//! with its flat signature (`flatten_functype`), and which of memory, realloc and post-return
//! the module must provide (the canonopt validation rules of CanonicalABI.md).

use anyhow::{Context as _, Result, anyhow, bail};
use wit_parser::{Function, InterfaceId, Resolve, WorldId, WorldItem};

use super::names::{
    AsyncValueOp, CoreExport, CoreImport, ExportItem, ImportItem, NameScheme, world_exports, world_imports,
};
use crate::reference::flatten::Context;
use crate::reference::flatten::{
    CoreFuncType, FlattenOpts, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS, flatten_functype, flatten_types,
};
use crate::reference::types::{CoreType, FuncType, PtrType, ValType, despecialize};
use crate::world::wit::Converter;

/// A core import with its type.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ImportSig {
    pub module: String,
    pub name: String,
    pub kind: &'static str,
    #[serde(flatten)]
    pub ty: CoreFuncType,
}

/// A core export with its type; `required` says whether the module must export it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ExportSig {
    pub name: String,
    pub kind: &'static str,
    #[serde(flatten)]
    pub ty: Option<CoreFuncType>,
    pub required: bool,
}

/// The whole core-module type of a world.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CoreSignature {
    pub world: String,
    pub names: &'static str,
    pub imports: Vec<ImportSig>,
    pub exports: Vec<ExportSig>,
    pub memory_required: bool,
    pub realloc_required: bool,
}

/// `true` if the type holds a string or a variable-length list (what needs memory/realloc).
pub fn contains_string_or_list(t: &ValType) -> bool {
    match despecialize(t).as_ref() {
        ValType::String | ValType::List(_, None) => true,
        ValType::List(e, Some(_)) => contains_string_or_list(e),
        ValType::Record(fields) => fields.iter().any(|f| contains_string_or_list(&f.t)),
        ValType::Variant(cases) => cases.iter().filter_map(|c| c.t.as_ref()).any(contains_string_or_list),
        _ => false,
    }
}

/// What `canon lift` (an export) or `canon lower` (an import) of `ft` requires, as
/// (memory, realloc) (CanonicalABI.md "canon lift" / "canon lower" validation; `lift(T)`
/// needs realloc and `lower(T)` memory when T holds a string or list):
/// canon lift: realloc for string/list params or spilled params; memory for string/list
/// results or spilled results. canon lower: memory for string/list params, spilled params or
/// spilled results (component-model #670: memory, not realloc); realloc for string/list
/// results. (`realloc` implies `memory`.)
pub fn requirements(ft: &FuncType, context: Context) -> (bool, bool) {
    let params_hold = ft.params.iter().any(|(_, t)| contains_string_or_list(t));
    let result_holds = ft.result.as_ref().is_some_and(contains_string_or_list);
    let params_spill = flatten_types(&ft.param_types(), PtrType::I32).len() > MAX_FLAT_PARAMS;
    let results_spill = flatten_types(&ft.result_type(), PtrType::I32).len() > MAX_FLAT_RESULTS;
    let (memory, realloc) = match context {
        Context::Lift => (result_holds || results_spill, params_hold || params_spill),
        Context::Lower => (params_hold || params_spill || results_spill, result_holds),
    };
    (memory || realloc, realloc)
}

fn find_function<'r>(
    resolve: &'r Resolve,
    world: WorldId,
    interface: Option<InterfaceId>,
    name: &str,
    import: bool,
) -> Option<&'r Function> {
    match interface {
        Some(i) => resolve.interfaces.get(i)?.functions.get(name),
        None => {
            let w = resolve.worlds.get(world)?;
            let items = if import { &w.imports } else { &w.exports };
            items.values().find_map(|item| match item {
                WorldItem::Function(f) if f.name == name => Some(f),
                _ => None,
            })
        }
    }
}

fn func(params: &[CoreType], results: &[CoreType]) -> CoreFuncType {
    CoreFuncType { params: params.to_vec(), results: results.to_vec() }
}

/// Compute the core-module type of `world` under `scheme` (the synchronous ABI: a world with
/// async functions or types is refused, as a guest to run must be).
pub fn core_signature(resolve: &Resolve, world: WorldId, scheme: NameScheme) -> Result<CoreSignature> {
    signature_with(resolve, world, scheme, Converter::host_resources(resolve))
}

/// 🔀 `core_signature`, async functions and types included: their async lift and lower, with
/// `task.return`, callbacks and the built-ins of the async ABI (Legacy names only: BuildTargets.md
/// defines the synchronous ABI).
pub fn async_core_signature(resolve: &Resolve, world: WorldId, scheme: NameScheme) -> Result<CoreSignature> {
    signature_with(resolve, world, scheme, Converter::with_async(resolve))
}

/// 🔀 The core type of an async-ABI built-in with no function of its own (CanonicalABI.md,
/// "is given type" of each, 32-bit memory).
fn builtin_type(name: &str) -> Option<CoreFuncType> {
    use CoreType::I32;
    Some(match name {
        "[context-get-0]" | "[waitable-set-new]" | "[thread-yield]" => func(&[], &[I32]),
        "[context-set-0]" | "[waitable-set-drop]" | "[subtask-drop]" | "[error-context-drop]" => func(&[I32], &[]),
        "[backpressure-inc]" | "[backpressure-dec]" | "[task-cancel]" => func(&[], &[]),
        "[waitable-set-wait]" | "[waitable-set-poll]" | "[error-context-new-utf8]" => func(&[I32, I32], &[I32]),
        "[waitable-join]" | "[error-context-debug-message-utf8]" => func(&[I32, I32], &[]),
        "[subtask-cancel]" => func(&[I32], &[I32]),
        _ => return None,
    })
}

/// 🔀 The core type of a `future.*` / `stream.*` built-in (CanonicalABI.md: `new` returns both
/// ends packed in an i64; read and write take the end and a buffer pointer, a stream's also a
/// length; cancel returns the copy result; drop takes the end).
fn async_value_type(stream: bool, op: AsyncValueOp) -> CoreFuncType {
    use CoreType::{I32, I64};
    match op {
        AsyncValueOp::New => func(&[], &[I64]),
        AsyncValueOp::Read | AsyncValueOp::Write if stream => func(&[I32, I32, I32], &[I32]),
        AsyncValueOp::Read | AsyncValueOp::Write => func(&[I32, I32], &[I32]),
        AsyncValueOp::CancelRead | AsyncValueOp::CancelWrite => func(&[I32], &[I32]),
        AsyncValueOp::DropReadable | AsyncValueOp::DropWritable => func(&[I32], &[]),
    }
}

fn signature_with(resolve: &Resolve, world: WorldId, scheme: NameScheme, conv: Converter<'_>) -> Result<CoreSignature> {
    use CoreType::I32;
    let mut memory_required = false;
    let mut realloc_required = false;
    // A function's type, how it is lifted or lowered, and what that requires.
    let mut func_type = |interface: Option<InterfaceId>,
                         name: &str,
                         import: bool|
     -> Result<(FuncType, Context, FlattenOpts)> {
        let f = find_function(resolve, world, interface, name, import)
            .ok_or_else(|| anyhow!("function `{name}` not found"))?;
        let ft = conv.func_type(f)?;
        let context = if import { Context::Lower } else { Context::Lift };
        let (m, r) = requirements(&ft, context);
        let opts = if f.kind.is_async() {
            if scheme == NameScheme::Standard {
                bail!("`{name}` is an `async func`: cm32p2 names cover the synchronous ABI only; use --names legacy");
            }
            // 🔀 An async lift or lower always needs memory (CanonicalABI.md validation).
            memory_required = true;
            FlattenOpts::async_(PtrType::I32, !import)
        } else {
            FlattenOpts::sync(PtrType::I32)
        };
        memory_required |= m;
        realloc_required |= r;
        Ok((ft, context, opts))
    };
    let mut imports = vec![];
    // 🔀 Future and stream reads and writes copy through a buffer in memory.
    let mut buffers = false;
    for CoreImport { module, name, item } in world_imports(resolve, world, scheme) {
        let (kind, ty) = match item {
            ImportItem::Func { interface, func: f } => {
                let (ft, context, opts) =
                    func_type(interface, &f, true).with_context(|| format!("import {module}::{name}"))?;
                ("func", flatten_functype(opts, &ft, context))
            }
            // `task.return`: flatten_functype(opts, (func (param $t)?), 'lower').
            ImportItem::TaskReturn { interface, func: f } => {
                let (ft, _, _) = func_type(interface, &f, false).with_context(|| format!("import {module}::{name}"))?;
                let returns = FuncType {
                    params: ft.result.map(|t| ("result".to_string(), t)).into_iter().collect(),
                    result: None,
                    async_: false,
                };
                ("task-return", flatten_functype(FlattenOpts::sync(PtrType::I32), &returns, Context::Lower))
            }
            ImportItem::AsyncValue { stream, op, .. } => {
                buffers |= matches!(op, AsyncValueOp::Read | AsyncValueOp::Write);
                (if stream { "stream" } else { "future" }, async_value_type(stream, op))
            }
            ImportItem::Builtin { name: builtin } => {
                ("builtin", builtin_type(builtin).ok_or_else(|| anyhow!("no type for built-in {builtin}"))?)
            }
            ImportItem::ResourceDrop { .. } => ("resource-drop", func(&[I32], &[])),
            ImportItem::ResourceNew { .. } => ("resource-new", func(&[I32], &[I32])),
            ImportItem::ResourceRep { .. } => ("resource-rep", func(&[I32], &[I32])),
        };
        imports.push(ImportSig { module, name, kind, ty });
    }
    let mut exports = vec![];
    let mut late = vec![];
    for CoreExport { name, item } in world_exports(resolve, world, scheme) {
        match item {
            ExportItem::Func { interface, func: f } => {
                let (ft, context, opts) = func_type(interface, &f, false).with_context(|| format!("export {name}"))?;
                exports.push(ExportSig {
                    name,
                    kind: "func",
                    ty: Some(flatten_functype(opts, &ft, context)),
                    required: true,
                });
            }
            // 🔀 The callback: (event code, waitable, payload) -> callback code.
            ExportItem::Callback { .. } => exports.push(ExportSig {
                name,
                kind: "callback",
                ty: Some(func(&[I32, I32, I32], &[I32])),
                required: true,
            }),
            ExportItem::PostReturn { interface, func: f } => {
                let (ft, context, opts) = func_type(interface, &f, false).with_context(|| format!("export {name}"))?;
                let results = flatten_functype(opts, &ft, context).results;
                exports.push(ExportSig { name, kind: "post-return", ty: Some(func(&results, &[])), required: false });
            }
            ExportItem::Dtor { .. } => {
                exports.push(ExportSig { name, kind: "dtor", ty: Some(func(&[I32], &[])), required: false })
            }
            ExportItem::Memory => late.push((name, "memory")),
            ExportItem::Realloc => late.push((name, "realloc")),
            ExportItem::Initialize => late.push((name, "initialize")),
        }
    }
    memory_required |= buffers;
    // Memory and realloc are required according to the functions seen above.
    for (name, kind) in late {
        let (ty, required) = match kind {
            "memory" => (None, memory_required),
            "realloc" => (Some(func(&[I32, I32, I32, I32], &[I32])), realloc_required),
            _ => (Some(func(&[], &[])), false),
        };
        exports.push(ExportSig { name, kind, ty, required });
    }
    let w = &resolve.worlds[world];
    let world_name = match w.package.map(|p| &resolve.packages[p].name) {
        Some(p) => {
            let version = p.version.as_ref().map(|v| format!("@{v}")).unwrap_or_default();
            format!("{}:{}/{}{version}", p.namespace, p.name, w.name)
        }
        None => w.name.clone(),
    };
    let names = match scheme {
        NameScheme::Standard => "standard",
        NameScheme::Legacy => "legacy",
    };
    Ok(CoreSignature { world: world_name, names, imports, exports, memory_required, realloc_required })
}
