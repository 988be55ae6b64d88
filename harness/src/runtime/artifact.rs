//! What a runtime compiles: a prepared world as the adapter protocol's `compile` request
//! describes it (adapters/PROTOCOL.md): the guest as a component and as a core module of the
//! core-module build target, every function and resource at its boundary by the names the
//! runtime sees, and the control functions of each scripted guest inside it. A runtime needs
//! nothing else, so `witness adapter` can rebuild one from a request and serve any runtime.

use std::sync::{Arc, OnceLock};

use anyhow::{Result, anyhow};

use super::prepared::{AsyncImport, ImportType, Prepared};
use super::resources::resource_owner;
use crate::encode::guest::{EntryKind, GuestModule, ImportKind, control_func_types, control_interface};
use crate::reference::flatten::CoreFuncType;
use crate::reference::types::{FuncType, ResourceType, StringEncoding};

/// A function at the boundary: its interface (the full instance name; `None` at the world's
/// root), its WIT name and type.
#[derive(Clone, Debug, PartialEq)]
pub struct Func {
    pub interface: Option<String>,
    pub name: String,
    pub ft: FuncType,
}

/// The core export that is a function, and its post-return.
#[derive(Clone, Debug, PartialEq)]
pub struct CoreExport {
    pub name: String,
    pub post_return: Option<String>,
}

/// A function the host may call.
#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    pub func: Func,
    /// `None` where there is no core module (a composition).
    pub core: Option<CoreExport>,
}

/// A core import: its module and name, its core signature.
#[derive(Clone, Debug, PartialEq)]
pub struct CoreImport {
    pub module: String,
    pub name: String,
    pub sig: CoreFuncType,
}

/// A resource built-in of the core module (`canon resource.new|rep|drop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    New,
    Rep,
    Drop,
}

impl Builtin {
    /// Its name in the protocol.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::New => "resource-new",
            Builtin::Rep => "resource-rep",
            Builtin::Drop => "resource-drop",
        }
    }

    pub fn from_name(name: &str) -> Option<Builtin> {
        [Builtin::New, Builtin::Rep, Builtin::Drop].into_iter().find(|b| b.name() == name)
    }
}

/// An import of the guest, by thunk index: a host function, or (core module only) a resource
/// built-in the host serves from its handle table, or 🔀 a built-in of the async ABI.
#[derive(Clone, Debug, PartialEq)]
pub enum Import {
    Func { func: Func, core: Option<CoreImport> },
    Builtin { builtin: Builtin, rt: ResourceType, core: CoreImport },
    Async { builtin: AsyncImport, core: CoreImport },
}

impl Import {
    /// The core import, where there is a core module.
    pub fn core(&self) -> Option<&CoreImport> {
        match self {
            Import::Func { core, .. } => core.as_ref(),
            Import::Builtin { core, .. } | Import::Async { core, .. } => Some(core),
        }
    }
}

/// A resource type at the boundary and the instance that defines it, on the side that
/// implements it (`None`: the world's root). `rt.impl_instance` says which side that is.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub rt: ResourceType,
    pub interface: Option<String>,
}

/// The core module of the core-module build target.
#[derive(Clone, Debug)]
pub struct CoreModule {
    pub wasm: Vec<u8>,
    pub memory: String,
    pub realloc: String,
    /// The initialization export, called after instantiation when the module has it.
    pub initialize: Option<String>,
}

/// A scripted guest's control functions, as indices into `Artifact::exports`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Control {
    pub reset: usize,
    pub load: usize,
    pub read_log: usize,
}

/// What the reference runtime models: the scripted guest, or a composition of two.
#[derive(Clone, Debug)]
pub struct Model {
    pub guest: Arc<GuestModule>,
    pub composition: Option<Composition>,
}

/// The two guests of a composition, each as its own artifact: the caller's exports and
/// control functions come first in the composite's exports, then the callee's control
/// functions; each caller import thunk reaches one callee export.
#[derive(Clone, Debug)]
pub struct Composition {
    pub caller: Arc<Artifact>,
    pub callee: Arc<Artifact>,
    pub thunk_to_export: Vec<Option<u32>>,
}

#[derive(Clone, Debug)]
pub struct Artifact {
    /// The component (for a composition, the composite).
    pub component: Option<Vec<u8>>,
    /// The core module (none for a composition).
    pub core: Option<CoreModule>,
    /// The guest's string encoding (its core module's canonopts).
    pub encoding: StringEncoding,
    /// By thunk index.
    pub imports: Vec<Import>,
    /// The world's function exports first (export k is index k), then control functions.
    pub exports: Vec<Export>,
    /// The scripted guests inside: the first one's log is the outcome's `log`, the second's
    /// (a composition's callee) `callee_log`.
    pub guests: Vec<Control>,
    /// Every resource type at the boundary.
    pub resources: Vec<Resource>,
    /// The guest's destructor export of each of its resource types (by `ResourceType::id`).
    pub dtors: Vec<(u32, String)>,
    /// Set where the world was prepared here (not rebuilt from a protocol request).
    pub model: Option<Model>,
    /// `import_types`, made on first use and shared by every instance (each instance used to
    /// clone every function type). `imports` must not change after that first use.
    pub import_types: OnceLock<Arc<[ImportType]>>,
}

impl Artifact {
    /// The world's function exports (without control functions).
    pub fn world_exports(&self) -> usize {
        self.guests.iter().map(|g| g.reset.min(g.load).min(g.read_log)).min().unwrap_or(self.exports.len())
    }

    /// Whether any import is a resource built-in or any type a handle: the protocol's
    /// `resources` feature.
    pub fn has_resources(&self) -> bool {
        !self.resources.is_empty() || self.imports.iter().any(|i| matches!(i, Import::Builtin { .. }))
    }

    /// 🔀 Whether the world uses the async ABI (an async function, a future or a stream).
    pub fn is_async(&self) -> bool {
        self.imports.iter().any(|i| matches!(i, Import::Async { .. }))
            || self.exports.iter().any(|e| e.func.ft.async_)
            || self.imports.iter().any(|i| matches!(i, Import::Func { func, .. } if func.ft.async_))
    }

    /// The resource at the boundary of type `rt`.
    pub fn resource(&self, rt: &ResourceType) -> Result<&Resource> {
        self.resources
            .iter()
            .find(|r| r.rt.id == rt.id)
            .ok_or_else(|| anyhow!("no resource `{}` (#{})", rt.name, rt.id))
    }

    /// The artifact of another guest of the same world (an arbitrary module shaped to its
    /// core signature): the world's exports only, no scripted guest inside, nothing to model,
    /// and post-returns only where the module exports them (BuildTargets.md: they are optional).
    pub fn with_guest(&self, core: Vec<u8>, component: Vec<u8>) -> Artifact {
        let exported: Vec<String> = wasmparser::Parser::new(0)
            .parse_all(&core)
            .filter_map(|p| match p {
                Ok(wasmparser::Payload::ExportSection(s)) => Some(s),
                _ => None,
            })
            .flat_map(|s| s.into_iter().filter_map(|e| e.ok().map(|e| e.name.to_string())).collect::<Vec<_>>())
            .collect();
        let mut a = self.clone();
        a.exports.truncate(self.world_exports());
        for e in a.exports.iter_mut().filter_map(|e| e.core.as_mut()) {
            e.post_return = e.post_return.take().filter(|p| exported.contains(p));
        }
        a.guests.clear();
        a.model = None;
        a.component = Some(component);
        if let Some(c) = &mut a.core {
            c.wasm = core;
        }
        a
    }

    /// The import types the reference host serves, by thunk.
    pub fn import_types(&self) -> Arc<[ImportType]> {
        let make = || {
            self.imports
                .iter()
                .map(|i| match i {
                    Import::Func { func, .. } => ImportType::Func { name: func.name.clone(), ft: func.ft.clone() },
                    Import::Builtin { builtin: Builtin::New, rt, .. } => ImportType::ResourceNew(rt.clone()),
                    Import::Builtin { builtin: Builtin::Rep, rt, .. } => ImportType::ResourceRep(rt.clone()),
                    Import::Builtin { builtin: Builtin::Drop, rt, .. } => ImportType::ResourceDrop(rt.clone()),
                    Import::Async { builtin, .. } => ImportType::Async(builtin.clone()),
                })
                .collect()
        };
        self.import_types.get_or_init(make).clone()
    }

    /// The artifact of a prepared world: its component and core module, as they are.
    pub fn of(prepared: &Prepared) -> Result<Artifact> {
        let module = &prepared.guest;
        let mut imports = vec![];
        let mut resources: Vec<Resource> = vec![];
        let mut add_resource = |rt: &ResourceType| -> Result<()> {
            if !resources.iter().any(|r| r.rt.id == rt.id) {
                resources.push(Resource { rt: rt.clone(), interface: resource_owner(prepared, rt)? });
            }
            Ok(())
        };
        for (imp, ty) in module.imports.iter().zip(&prepared.imports) {
            let core = CoreImport { module: imp.module.clone(), name: imp.name.clone(), sig: imp.sig.clone() };
            let (builtin, rt) = match (&imp.kind, ty) {
                (ImportKind::Func { interface, func }, ImportType::Func { ft, .. }) => {
                    let interface = interface.map(|i| prepared.interface_name(i, true)).transpose()?;
                    let func = Func { interface, name: func.clone(), ft: ft.clone() };
                    imports.push(Import::Func { func, core: Some(core) });
                    continue;
                }
                (_, ImportType::ResourceNew(rt)) => (Builtin::New, rt),
                (_, ImportType::ResourceRep(rt)) => (Builtin::Rep, rt),
                (_, ImportType::ResourceDrop(rt)) => (Builtin::Drop, rt),
                (_, ImportType::Async(builtin)) => {
                    imports.push(Import::Async { builtin: builtin.clone(), core });
                    continue;
                }
                (_, ImportType::Func { .. }) => anyhow::bail!("import {} is a function of another kind", imp.name),
            };
            add_resource(rt)?;
            imports.push(Import::Builtin { builtin, rt: rt.clone(), core });
        }
        let mut exports = vec![];
        let entries = module.exports.iter().filter_map(|e| match &e.kind {
            EntryKind::Func { interface, func } => Some((interface, func)),
            _ => None,
        });
        for (k, ((_, ft), (interface, func))) in prepared.exports.iter().zip(entries).enumerate() {
            let interface = interface.map(|i| prepared.interface_name(i, false)).transpose()?;
            let k = k as u32;
            let core = prepared.export_name(k).map(|name| CoreExport {
                name: name.to_string(),
                post_return: prepared.post_return_name(k).map(str::to_string),
            });
            exports.push(Export { func: Func { interface, name: func.clone(), ft: ft.clone() }, core });
        }
        let guests = vec![add_control(&mut exports, prepared)?];
        Ok(Artifact {
            component: Some(prepared.component.clone()),
            core: Some(CoreModule {
                wasm: prepared.core.clone(),
                memory: module.memory.clone(),
                realloc: module.realloc.clone(),
                initialize: Some(prepared.scheme.initialize().to_string()),
            }),
            encoding: prepared.encoding,
            imports,
            exports,
            guests,
            resources,
            dtors: prepared.dtors.clone(),
            model: Some(Model { guest: Arc::new(module.clone()), composition: None }),
            import_types: OnceLock::new(),
        })
    }
}

/// Append `prepared`'s control functions to `exports`.
pub(super) fn add_control(exports: &mut Vec<Export>, prepared: &Prepared) -> Result<Control> {
    let module = &prepared.guest;
    let interface = Some(prepared.interface_name(control_interface(&prepared.wit.resolve, prepared.world)?, false)?);
    let base = exports.len();
    for (name, ft) in control_func_types() {
        let core_name = match name {
            "load" => &module.control_load,
            "reset" => &module.control_reset,
            _ => &module.control_read_log,
        };
        let core = Some(CoreExport { name: core_name.clone(), post_return: None });
        exports.push(Export { func: Func { interface: interface.clone(), name: name.into(), ft }, core });
    }
    // In control_func_types' order: load, reset, read-log.
    Ok(Control { load: base, reset: base + 1, read_log: base + 2 })
}
