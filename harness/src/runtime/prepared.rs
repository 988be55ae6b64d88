//! A world made ready for the engines: the scripted guest's core module and component under
//! one name scheme and string encoding, and the reference types of its imports and exports.

use std::collections::HashSet;

use anyhow::{Context as _, Result, anyhow};
use wit_parser::{TypeDefKind, TypeId, WorldId, WorldItem};

use crate::encode::component::componentize;
use crate::encode::guest::{
    CONTROL_PACKAGE, EntryKind, GuestModule, ImportKind, add_control, encode_guest, is_async_world,
};
use crate::encode::names::{AsyncValueOp, ImportItem, NameScheme, futures_and_streams};
use crate::reference::types::{FuncType, ResourceType, StringEncoding, ValType};
use crate::world::wit::{Converter, Wit};

/// What a guest import is, in reference terms.
#[derive(Clone, Debug)]
pub enum ImportType {
    Func {
        name: String,
        ft: FuncType,
    },
    ResourceNew(ResourceType),
    ResourceRep(ResourceType),
    ResourceDrop(ResourceType),
    /// 🔀 A built-in of the async ABI.
    Async(AsyncImport),
}

/// 🔀 A built-in of the async ABI the guest imports, with the types it needs.
#[derive(Clone, Debug, PartialEq)]
pub enum AsyncImport {
    /// `task.return` of export `func` (named as in `Prepared::exports`), with its result type.
    TaskReturn { func: String, result: Option<ValType> },
    /// A built-in of no function, by its core name (`[waitable-set-new]`, ...).
    Builtin(&'static str),
    /// A `stream.*` or `future.*` built-in of one stream or future type.
    Value { ty: ValType, op: AsyncValueOp },
}

impl AsyncImport {
    /// The built-in in reports: `task.return f`, `waitable-set.new`, `stream.read`.
    pub fn describe(&self) -> String {
        match self {
            AsyncImport::TaskReturn { func, .. } => format!("task.return {func}"),
            AsyncImport::Builtin(name) => name.trim_matches(['[', ']']).to_string(),
            AsyncImport::Value { ty, op } => {
                let kind = if matches!(ty, ValType::Stream(_)) { "stream" } else { "future" };
                format!("{kind}.{}", op.name())
            }
        }
    }
}

pub struct Prepared {
    pub wit: Wit,
    pub world: WorldId,
    pub scheme: NameScheme,
    pub encoding: StringEncoding,
    pub guest: GuestModule,
    pub core: Vec<u8>,
    pub component: Vec<u8>,
    /// Function exports by index k (entry `export_entry(k)`): (name in the world, type).
    pub exports: Vec<(String, FuncType)>,
    /// Imports by thunk index.
    pub imports: Vec<ImportType>,
    /// The destructor export of each guest resource type (by `ResourceType::id`).
    pub dtors: Vec<(u32, String)>,
}

impl Prepared {
    /// 🔀 The thunk of async built-in `core_name` (`[waitable-set-new]`), if the guest imports it.
    pub fn builtin_thunk(&self, core_name: &str) -> Option<u32> {
        self.imports
            .iter()
            .position(|i| matches!(i, ImportType::Async(AsyncImport::Builtin(b)) if *b == core_name))
            .map(|t| t as u32)
    }
}

/// Resources defined by interfaces the world exports: the guest implements them.
fn guest_resources(wit: &Wit, world: WorldId) -> HashSet<TypeId> {
    let resolve = &wit.resolve;
    let mut out = HashSet::new();
    for item in resolve.worlds[world].exports.values() {
        if let WorldItem::Interface { id, .. } = item {
            for &t in resolve.interfaces[*id].types.values() {
                if matches!(resolve.types[t].kind, TypeDefKind::Resource) {
                    out.insert(t);
                }
            }
        }
    }
    out
}

/// The WIT-level name of a function (`iface.func` or `func`).
fn func_name(wit: &Wit, interface: Option<wit_parser::InterfaceId>, func: &str) -> String {
    match interface.and_then(|i| wit.resolve.interfaces[i].name.clone()) {
        Some(i) => format!("{i}.{func}"),
        None => func.to_string(),
    }
}

impl Prepared {
    pub fn new(wit: Wit, world: WorldId, scheme: NameScheme, encoding: StringEncoding) -> Result<Prepared> {
        Prepared::with_control(wit, world, scheme, encoding, CONTROL_PACKAGE)
    }

    /// `new`, with the guest's control interface in package `witness:<control>`.
    pub fn with_control(
        mut wit: Wit,
        world: WorldId,
        scheme: NameScheme,
        encoding: StringEncoding,
        control: &str,
    ) -> Result<Prepared> {
        add_control(&mut wit.resolve, world, control)?;
        let guest = GuestModule::new(&wit.resolve, world, scheme)?;
        let core = encode_guest(&guest)?;
        let component = componentize(&wit.resolve, world, &core, encoding, scheme)?;
        let guest_owned = guest_resources(&wit, world);
        let asynchronous = is_async_world(&wit.resolve, world);
        let exp = Converter { resolve: &wit.resolve, guest_owned: &guest_owned, export_side: true, asynchronous };
        let imp = exp.side(false);
        let function = |interface: Option<wit_parser::InterfaceId>, name: &str, import: bool| {
            match interface {
                Some(i) => wit.resolve.interfaces[i].functions.get(name),
                None => {
                    let w = &wit.resolve.worlds[world];
                    let items = if import { &w.imports } else { &w.exports };
                    items.values().find_map(|it| match it {
                        WorldItem::Function(f) if f.name == name => Some(f),
                        _ => None,
                    })
                }
            }
            .ok_or_else(|| anyhow!("function `{name}` not found"))
        };
        let find = |interface: Option<wit_parser::InterfaceId>, name: &str, import: bool| -> Result<FuncType> {
            let conv = if import { &imp } else { &exp };
            conv.func_type(function(interface, name, import)?)
        };
        let mut exports = vec![];
        for e in &guest.exports {
            if let EntryKind::Func { interface, func } = &e.kind {
                exports.push((
                    func_name(&wit, *interface, func),
                    find(*interface, func, false).with_context(|| e.name.clone())?,
                ));
            }
        }
        let mut imports = vec![];
        for i in &guest.imports {
            imports.push(match &i.kind {
                ImportKind::Func { interface, func } => ImportType::Func {
                    name: func_name(&wit, *interface, func),
                    ft: find(*interface, func, true).with_context(|| i.name.clone())?,
                },
                ImportKind::ResourceNew { resource } => ImportType::ResourceNew(exp.resource(*resource)),
                ImportKind::ResourceRep { resource } => ImportType::ResourceRep(exp.resource(*resource)),
                ImportKind::ResourceDrop { resource, exported: true } => {
                    ImportType::ResourceDrop(exp.resource(*resource))
                }
                ImportKind::ResourceDrop { resource, exported: false } => {
                    ImportType::ResourceDrop(imp.resource(*resource))
                }
                ImportKind::Async(ImportItem::TaskReturn { interface, func }) => {
                    let ft = find(*interface, func, false).with_context(|| i.name.clone())?;
                    ImportType::Async(AsyncImport::TaskReturn {
                        func: func_name(&wit, *interface, func),
                        result: ft.result,
                    })
                }
                ImportKind::Async(ImportItem::Builtin { name }) => ImportType::Async(AsyncImport::Builtin(name)),
                ImportKind::Async(ImportItem::AsyncValue { interface, func, op, index, exported, .. }) => {
                    let f = function(*interface, func, !exported)?;
                    let id = *futures_and_streams(&wit.resolve, f)
                        .get(*index)
                        .ok_or_else(|| anyhow!("{}: no future or stream {index} in `{func}`", i.name))?;
                    let conv = if *exported { &exp } else { &imp };
                    ImportType::Async(AsyncImport::Value { ty: conv.type_id(id)?, op: *op })
                }
                ImportKind::Async(other) => anyhow::bail!("{}: not an async built-in ({other:?})", i.name),
            });
        }
        let dtors = guest
            .exports
            .iter()
            .filter_map(|e| match e.kind {
                EntryKind::Dtor { resource } => Some((exp.resource(resource).id, e.name.clone())),
                _ => None,
            })
            .collect();
        Ok(Prepared { wit, world, scheme, encoding, guest, core, component, exports, imports, dtors })
    }

    /// Parse WIT text and prepare its world `world` (or its only world).
    pub fn from_wit(text: &str, world: Option<&str>, scheme: NameScheme, encoding: StringEncoding) -> Result<Prepared> {
        let wit = Wit::parse("world.wit", text)?;
        let w = wit.world(world)?;
        Prepared::new(wit, w, scheme, encoding)
    }

    /// The component-level instance name of an interface in the world (`ns:pkg/iface@v`, or
    /// the plain name of an inline interface), on its import or export side.
    pub fn interface_name(&self, iface: wit_parser::InterfaceId, import: bool) -> Result<String> {
        let resolve = &self.wit.resolve;
        let w = &resolve.worlds[self.world];
        let items = if import { &w.imports } else { &w.exports };
        items
            .iter()
            .find_map(|(key, item)| match item {
                WorldItem::Interface { id, .. } if *id == iface => Some(resolve.name_world_key(key)),
                _ => None,
            })
            .ok_or_else(|| anyhow!("interface not found in the world"))
    }

    /// The core export name of function export k.
    pub fn export_name(&self, k: u32) -> Option<&str> {
        self.guest.export_of(crate::encode::protocol::export_entry(k)).map(|e| e.name.as_str())
    }

    /// The core export name of the post-return of function export k.
    pub fn post_return_name(&self, k: u32) -> Option<&str> {
        self.guest.export_of(crate::encode::protocol::post_return_entry(k)).map(|e| e.name.as_str())
    }
}
