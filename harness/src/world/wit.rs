//! Loading WIT and converting wit-parser types into `reference::ValType`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use wit_parser::{
    Function, FunctionKind, Handle, PackageId, Resolve, Type, TypeDefKind, TypeId, TypeOwner, WorldId, WorldItem,
    WorldKey,
};

use crate::reference::types::{CaseType, FieldType, FuncType, InstanceId, ResourceType, ValType};

/// The wit-parser type index behind a reference resource id (see `Converter`).
pub fn resource_type_index(rt: &ResourceType) -> usize {
    (rt.id / 2) as usize
}

/// The instance that implements resources a guest imports (the host), as seen by the reference.
pub const HOST_INSTANCE: InstanceId = InstanceId(0);
/// The guest instance under test.
pub const GUEST_INSTANCE: InstanceId = InstanceId(1);

/// The export witness adds to a user's world that imports functions (see `Wit::add_driver`).
pub const DRIVER_EXPORT: &str = "witness-drive";

/// A freestanding `name: func()`, for the exports witness adds to worlds.
pub fn nullary_function(name: &str) -> Function {
    Function {
        name: name.into(),
        kind: FunctionKind::Freestanding,
        params: vec![],
        result: None,
        docs: Default::default(),
        stability: Default::default(),
        span: Default::default(),
        external_id: None,
    }
}

/// A loaded WIT package and the `Resolve` that holds it and its dependencies.
pub struct Wit {
    pub resolve: Resolve,
    pub package: PackageId,
}

impl Wit {
    /// Load a WIT file, a WIT directory (with `deps/`), or a wasm-encoded WIT package.
    /// wit-parser's errors carry the file and line of the problem.
    pub fn load(path: &Path) -> Result<Wit> {
        // A core module (wasm version 1) would otherwise be read as WIT text.
        const CORE_MODULE: [u8; 8] = [0, b'a', b's', b'm', 1, 0, 0, 0];
        if std::fs::read(path).is_ok_and(|bytes| bytes.starts_with(&CORE_MODULE)) {
            bail!(
                "{} is a core wasm module, not WIT: give a .wit file, a WIT directory or a wasm-encoded WIT package",
                path.display()
            );
        }
        // wit-parser's decoder reserves a section's declared size before it reads the section,
        // so a few bytes claiming a 4 GiB section abort the process: validate first (in memory,
        // sizes are checked against the file's).
        if let Ok(bytes) = std::fs::read(path)
            && bytes.starts_with(b"\0asm")
        {
            wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
                .validate_all(&bytes)
                .map_err(|e| anyhow!("{}: not a valid wasm-encoded WIT package: {e}", path.display()))?;
        }
        let mut resolve = Resolve::default();
        // wit-parser asserts on some malformed packages (a package naming one interface twice
        // under two package names): its panic is this file's error.
        let (package, _) = crate::contain::contain("wit-parser", || {
            resolve.push_path(path).map_err(|e| anyhow!("{}", render_error(&resolve, path, &e)))
        })
        .with_context(|| format!("cannot load WIT from {}", path.display()))?;
        Ok(Wit { resolve, package })
    }

    /// Parse WIT source text (`name` is used in error messages).
    pub fn parse(name: &str, text: &str) -> Result<Wit> {
        let mut resolve = Resolve::default();
        let package = crate::contain::contain("wit-parser", || {
            resolve.push_str(name, text).map_err(|e| anyhow!("{}", resolve.render_error(&e)))
        })?;
        Ok(Wit { resolve, package })
    }

    /// The package as WIT text, its dependencies as nested packages (so one text parses back).
    pub fn to_text(&self) -> Result<String> {
        let others: Vec<PackageId> =
            self.resolve.packages.iter().map(|(id, _)| id).filter(|&id| id != self.package).collect();
        let mut printer = wit_component::WitPrinter::default();
        printer.print(&self.resolve, self.package, &others)?;
        Ok(printer.output.to_string())
    }

    /// Give world `id` an export `DRIVER_EXPORT: func()` if it imports functions: a case calls
    /// it to make the guest call imports, which a world's own exports may not allow (a world
    /// with no exports, or whose exports take resources). 🔀 Where some imports are `async
    /// func`s it is an `async func` too, so that it may call them async-lowered.
    pub fn add_driver(&mut self, id: WorldId) {
        let world = &self.resolve.worlds[id];
        let imported: Vec<&Function> = world
            .imports
            .values()
            .flat_map(|item| -> Vec<&Function> {
                match item {
                    WorldItem::Function(f) => vec![f],
                    WorldItem::Interface { id, .. } => self.resolve.interfaces[*id].functions.values().collect(),
                    WorldItem::Type { .. } => vec![],
                }
            })
            .collect();
        let key = WorldKey::Name(DRIVER_EXPORT.into());
        if !imported.is_empty() && !world.exports.contains_key(&key) {
            let mut driver = nullary_function(DRIVER_EXPORT);
            if imported.iter().any(|f| f.kind.is_async()) {
                driver.kind = FunctionKind::AsyncFreestanding;
            }
            self.resolve.worlds[id].exports.insert(key, WorldItem::Function(driver));
        }
    }

    /// The world named `name`, or the package's only world.
    pub fn world(&self, name: Option<&str>) -> Result<WorldId> {
        self.resolve.select_world(&[self.package], name)
    }

    /// Every named type of the package, as (qualified name, id): `iface.name` for interface
    /// types, `world.name` for world types.
    pub fn named_types(&self) -> Vec<(String, TypeId)> {
        let mut out = vec![];
        for (id, def) in self.resolve.types.iter() {
            let Some(name) = &def.name else { continue };
            let owner = match def.owner {
                TypeOwner::Interface(i) => {
                    let iface = &self.resolve.interfaces[i];
                    if iface.package != Some(self.package) && iface.name.is_some() {
                        continue;
                    }
                    iface.name.clone().unwrap_or_default()
                }
                TypeOwner::World(w) => self.resolve.worlds[w].name.clone(),
                TypeOwner::None => String::new(),
            };
            out.push((format!("{owner}.{name}"), id));
        }
        out
    }

    /// Find a named type by `name` or `owner.name`; an ambiguous name is an error that lists
    /// the candidates.
    pub fn find_type(&self, name: &str) -> Result<TypeId> {
        let all = self.named_types();
        let hits: Vec<&(String, TypeId)> =
            all.iter().filter(|(q, _)| q == name || q.rsplit_once('.').is_some_and(|(_, n)| n == name)).collect();
        match hits.as_slice() {
            [(_, id)] => Ok(*id),
            [] => {
                let known: Vec<&str> = all.iter().map(|(q, _)| q.as_str()).collect();
                bail!("no type named `{name}` in the WIT package (known: {})", known.join(", "))
            }
            many => {
                let names: Vec<&str> = many.iter().map(|(q, _)| q.as_str()).collect();
                bail!("type name `{name}` is ambiguous: {}; write it as owner.name", names.join(", "))
            }
        }
    }
}

/// Converts wit-parser types to reference types.
///
/// Resource identity: a world that imports and exports the same interface has two resource
/// types per resource of it (the import's and the export's), while wit-parser has one type id.
/// So a resource seen from the guest's export side (`export_side`) and defined in an exported
/// interface (`guest_owned`) is the guest's own (implemented by the guest instance, id
/// `2 * index + 1`); every other resource is the host's (id `2 * index`).
pub struct Converter<'a> {
    pub resolve: &'a Resolve,
    pub guest_owned: &'a std::collections::HashSet<TypeId>,
    pub export_side: bool,
    /// 🔀 Whether `async func`s, streams, futures and error-contexts convert: the reference lays
    /// them out and flattens them, but cannot run them yet, so worlds to run refuse them.
    pub asynchronous: bool,
}

impl<'a> Converter<'a> {
    /// A converter for which every resource is implemented by the host.
    pub fn host_resources(resolve: &'a Resolve) -> Converter<'a> {
        static NONE: std::sync::OnceLock<std::collections::HashSet<TypeId>> = std::sync::OnceLock::new();
        Converter { resolve, guest_owned: NONE.get_or_init(Default::default), export_side: false, asynchronous: false }
    }

    /// `host_resources`, with async functions and types converted too (layout, signatures).
    pub fn with_async(resolve: &'a Resolve) -> Converter<'a> {
        Converter { asynchronous: true, ..Converter::host_resources(resolve) }
    }

    /// The same converter, seen from the other side of the guest.
    pub fn side(&self, export_side: bool) -> Converter<'a> {
        Converter { export_side, ..*self }
    }

    pub fn val_type(&self, ty: &Type) -> Result<ValType> {
        self.val_type_in(ty, 0)
    }

    /// `val_type` of a type nested `depth` levels deep in the one being converted.
    fn val_type_in(&self, ty: &Type, depth: u32) -> Result<ValType> {
        Ok(match ty {
            Type::Bool => ValType::Bool,
            Type::U8 => ValType::U8,
            Type::U16 => ValType::U16,
            Type::U32 => ValType::U32,
            Type::U64 => ValType::U64,
            Type::S8 => ValType::S8,
            Type::S16 => ValType::S16,
            Type::S32 => ValType::S32,
            Type::S64 => ValType::S64,
            Type::F32 => ValType::F32,
            Type::F64 => ValType::F64,
            Type::Char => ValType::Char,
            Type::String => ValType::String,
            Type::ErrorContext if self.asynchronous => ValType::ErrorContext,
            Type::ErrorContext => {
                bail!("error-context is an async type; witness runs the synchronous ABI only so far")
            }
            Type::Id(id) => self.type_id_in(*id, depth)?,
        })
    }

    pub fn type_id(&self, id: TypeId) -> Result<ValType> {
        self.type_id_in(id, 0)
    }

    fn type_id_in(&self, id: TypeId, depth: u32) -> Result<ValType> {
        // Aliases are followed in a loop: a chain of them is no nesting.
        let id = alias_root(self.resolve, id);
        if depth > MAX_TYPE_DEPTH {
            bail!("types nest deeper than {MAX_TYPE_DEPTH} levels (wasmparser's limit for components)");
        }
        let def = &self.resolve.types[id];
        let inner = |t: &Type| self.val_type_in(t, depth + 1);
        let opt = |t: &Option<Type>| -> Result<Option<Arc<ValType>>> {
            t.as_ref().map(|t| inner(t).map(Arc::new)).transpose()
        };
        Ok(match &def.kind {
            TypeDefKind::Type(t) => self.val_type_in(t, depth)?,
            TypeDefKind::Record(r) => ValType::Record(
                r.fields
                    .iter()
                    .map(|f| Ok(FieldType { label: f.name.clone(), t: inner(&f.ty)? }))
                    .collect::<Result<_>>()?,
            ),
            TypeDefKind::Tuple(t) => ValType::Tuple(t.types.iter().map(inner).collect::<Result<_>>()?),
            TypeDefKind::Variant(v) => ValType::Variant(
                v.cases
                    .iter()
                    .map(|c| Ok(CaseType { label: c.name.clone(), t: c.ty.as_ref().map(inner).transpose()? }))
                    .collect::<Result<_>>()?,
            ),
            TypeDefKind::Enum(e) => ValType::Enum(e.cases.iter().map(|c| c.name.clone()).collect()),
            TypeDefKind::Flags(f) => ValType::Flags(f.flags.iter().map(|f| f.name.clone()).collect()),
            TypeDefKind::Option(t) => ValType::Option(Arc::new(inner(t)?)),
            TypeDefKind::Result(r) => ValType::Result(opt(&r.ok)?, opt(&r.err)?),
            TypeDefKind::List(t) => ValType::List(Arc::new(inner(t)?), None),
            TypeDefKind::FixedLengthList(t, n) => ValType::List(Arc::new(inner(t)?), Some(*n)),
            TypeDefKind::Handle(Handle::Own(r)) => ValType::Own(self.resource(*r)),
            TypeDefKind::Handle(Handle::Borrow(r)) => ValType::Borrow(self.resource(*r)),
            TypeDefKind::Resource => bail!(
                "`{}` is a resource, not a value type: write own<{0}> or borrow<{0}>",
                def.name.as_deref().unwrap_or("resource")
            ),
            TypeDefKind::Map(k, v) => ValType::Map(Arc::new(inner(k)?), Arc::new(inner(v)?)),
            TypeDefKind::Future(t) if self.asynchronous => ValType::Future(opt(t)?),
            TypeDefKind::Stream(t) if self.asynchronous => ValType::Stream(opt(t)?),
            TypeDefKind::Future(_) | TypeDefKind::Stream(_) => {
                bail!("future and stream are async types; witness runs the synchronous ABI only so far")
            }
            TypeDefKind::Unknown => bail!("unresolved type"),
        })
    }

    /// The `ResourceType` of a resource type id (aliases followed to the defining resource).
    pub fn resource(&self, id: TypeId) -> ResourceType {
        let id = resource_root(self.resolve, id);
        let name = self.resolve.types[id].name.clone().unwrap_or_default();
        let guest = self.export_side && self.guest_owned.contains(&id);
        let impl_instance = if guest { GUEST_INSTANCE } else { HOST_INSTANCE };
        ResourceType { id: 2 * id.index() as u32 + u32::from(guest), name, impl_instance }
    }

    /// The component-level type of a WIT function.
    pub fn func_type(&self, f: &wit_parser::Function) -> Result<FuncType> {
        if f.kind.is_async() && !self.asynchronous {
            bail!(
                "`{}` is an `async func`: witness runs the synchronous Canonical ABI only so far, so a \
                 world with async functions cannot run yet",
                f.name
            );
        }
        let params = f
            .params
            .iter()
            .map(|p| Ok((p.name.clone(), self.val_type(&p.ty)?)))
            .collect::<Result<_>>()
            .with_context(|| format!("in function `{}`", f.name))?;
        let result = f
            .result
            .as_ref()
            .map(|t| self.val_type(t))
            .transpose()
            .with_context(|| format!("in function `{}`", f.name))?;
        Ok(FuncType { params, result, async_: f.kind.is_async() })
    }
}

/// How deeply types may nest (records, variants, lists, ... in each other): wasmparser's
/// `MAX_WASM_COMPONENT_TYPE_DEPTH`, so every type witness takes is one a component may have;
/// deeper input is refused with this limit, never walked into a stack overflow.
pub const MAX_TYPE_DEPTH: u32 = 100;

/// Follow `type a = b` aliases (of defined types) to the type `id` stands for.
fn alias_root(resolve: &Resolve, mut id: TypeId) -> TypeId {
    while let TypeDefKind::Type(Type::Id(next)) = resolve.types[id].kind {
        id = next;
    }
    id
}

/// Follow `type a = b` aliases to the type that defines `id` (for resources: the resource).
pub fn resource_root(resolve: &Resolve, mut id: TypeId) -> TypeId {
    while let TypeDefKind::Type(Type::Id(next)) = resolve.types[id].kind {
        id = next;
    }
    id
}

/// wit-parser's error with its file, line and a snippet. The spans of a single-file package
/// refer to that file alone (a fresh `Resolve` starts its source map at offset 0), so a
/// source map holding just the file renders them; otherwise fall back to the resolve's map.
fn render_error(resolve: &Resolve, path: &Path, e: &anyhow::Error) -> String {
    if path.is_file()
        && let Ok(text) = std::fs::read_to_string(path)
    {
        let mut map = wit_parser::SourceMap::default();
        map.push_str(&path.display().to_string(), text);
        return wit_parser::render_anyhow_error(e, &map);
    }
    resolve.render_error(e)
}
