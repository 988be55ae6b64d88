//! The core-module type of a world for the core-module build target: every import and export
//! with its flat signature (`flatten_functype`), and which of memory, realloc and post-return
//! the module must provide (the canonopt validation rules of CanonicalABI.md).

use anyhow::{Context as _, Result, anyhow};
use wit_parser::{Function, InterfaceId, Resolve, WorldId, WorldItem};

use super::names::{CoreExport, CoreImport, ExportItem, ImportItem, NameScheme, world_exports, world_imports};
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

/// Compute the core-module type of `world` under `scheme`.
pub fn core_signature(resolve: &Resolve, world: WorldId, scheme: NameScheme) -> Result<CoreSignature> {
    use CoreType::I32;
    let conv = Converter::host_resources(resolve);
    let mut memory_required = false;
    let mut realloc_required = false;
    let mut func_type = |interface: Option<InterfaceId>, name: &str, import: bool| -> Result<(FuncType, Context)> {
        let f = find_function(resolve, world, interface, name, import)
            .ok_or_else(|| anyhow!("function `{name}` not found"))?;
        let ft = conv.func_type(f)?;
        let context = if import { Context::Lower } else { Context::Lift };
        let (m, r) = requirements(&ft, context);
        memory_required |= m;
        realloc_required |= r;
        Ok((ft, context))
    };
    let mut imports = vec![];
    for CoreImport { module, name, item } in world_imports(resolve, world, scheme) {
        let (kind, ty) = match item {
            ImportItem::Func { interface, func: f } => {
                let (ft, context) =
                    func_type(interface, &f, true).with_context(|| format!("import {module}::{name}"))?;
                ("func", flatten_functype(FlattenOpts::sync(PtrType::I32), &ft, context))
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
                let (ft, context) = func_type(interface, &f, false).with_context(|| format!("export {name}"))?;
                exports.push(ExportSig {
                    name,
                    kind: "func",
                    ty: Some(flatten_functype(FlattenOpts::sync(PtrType::I32), &ft, context)),
                    required: true,
                });
            }
            ExportItem::PostReturn { interface, func: f } => {
                let (ft, context) = func_type(interface, &f, false).with_context(|| format!("export {name}"))?;
                let results = flatten_functype(FlattenOpts::sync(PtrType::I32), &ft, context).results;
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
