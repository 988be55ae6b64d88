//! Core-module import and export names of a WIT world.
//!
//! A core wasm module stands for a component ("simple component") when its
//! imports and exports follow a naming convention that maps each core item to
//! a WIT item of a *target world*. Two conventions exist:
//!
//! * [`NameScheme::Standard`]: the `wasm32` build target of BuildTargets.md
//!   (component-model PR #378, branch `add-build-targets`): every name
//!   carries the prefix `cm32p2` and interfaces are named by their
//!   *canonicalized interface name* (`cin`), so a core-only host can match
//!   imports by plain string equality.
//! * [`NameScheme::Legacy`]: the names wit-bindgen emits today and
//!   `wit-component` still accepts (its `Legacy` mangling). 🔀 An `async func` is lowered
//!   and lifted with the async ABI (`[async-lower]`, `[async-lift]` and its `[callback]`), as
//!   wit-bindgen does, with its `task.return` and the built-ins of the future and stream types
//!   in its signature; a world with anything async also lists the async ABI's other built-ins.
//!
//! This module only *lists* the names a world defines (the "build target");
//! whether a module must provide a given export (e.g. `cm32p2_memory`) depends
//! on the function types it actually uses and is decided elsewhere.
//!
//! It is written from the spec text, independently of
//! `wit_parser::Resolve::wasm_import_name`/`wasm_export_name`, because the
//! test-suite uses those as a differential oracle.
//!
//! Scope of `Standard`: the synchronous ABI. Future/stream/async intrinsics are not defined
//! by BuildTargets.md and are never listed; functions whose types mention them
//! are still listed under their plain names (the name does not depend on the
//! type).
//!
//! Nothing here panics: ids that do not belong to `resolve` and items that
//! cannot be named (e.g. an anonymous interface keyed by id) are skipped.

use wit_parser::{Function, Interface, InterfaceId, Resolve, Type, TypeDefKind, TypeId, WorldId, WorldItem, WorldKey};

/// The `prefix` of the `wasm32` build target (BuildTargets.md "Imports and
/// Exports"): `cm` for "canonical ABI", `32` for the memory, `p2` for the
/// Canonical ABI version (not a WASI version).
pub const STANDARD_PREFIX: &str = "cm32p2";

/// Which naming convention to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameScheme {
    /// BuildTargets.md `wasm32` names (`cm32p2…`); wit-parser's
    /// `ManglingAndAbi::Standard32`.
    Standard,
    /// wit-bindgen's names with the sync ABI; wit-parser's
    /// `ManglingAndAbi::Legacy(LiftLowerAbi::Sync)`.
    Legacy,
}

/// One core function import of the build target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CoreImport {
    /// Core import module name.
    pub module: String,
    /// Core import field name.
    pub name: String,
    /// The WIT-level item the import stands for.
    pub item: ImportItem,
}

/// What a [`CoreImport`] binds to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ImportItem {
    /// `canon lower` of a WIT function.
    Func {
        /// The interface the function belongs to; `None` for a world-level
        /// function.
        interface: Option<InterfaceId>,
        /// Component-level function name, e.g. `[method]r.m`.
        func: String,
    },
    /// `canon resource.drop`.
    ResourceDrop {
        /// The (original) resource type.
        resource: TypeId,
        /// `true` for the `_ex_`/`[export]` intrinsic of a resource defined by
        /// an exported interface (the guest's own resource type); `false` for
        /// a resource of an imported interface or of the world itself.
        exported: bool,
    },
    /// `canon resource.new` of a resource of an exported interface.
    ResourceNew {
        /// The (original) resource type.
        resource: TypeId,
    },
    /// `canon resource.rep` of a resource of an exported interface.
    ResourceRep {
        /// The (original) resource type.
        resource: TypeId,
    },
    /// 🔀 `canon task.return` of an exported `async func` (Legacy).
    TaskReturn { interface: Option<InterfaceId>, func: String },
    /// 🔀 A `future.*` or `stream.*` built-in of the `index`th future or stream type in a
    /// function's signature (wit-parser's `find_futures_and_streams` order), of an imported
    /// function or, `exported`, of an exported one (Legacy).
    AsyncValue {
        interface: Option<InterfaceId>,
        func: String,
        stream: bool,
        op: AsyncValueOp,
        index: usize,
        exported: bool,
    },
    /// 🔀 A built-in of the async ABI that belongs to no function (`[waitable-set-new]`, ...).
    Builtin { name: &'static str },
}

/// 🔀 The built-ins of one future or stream type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AsyncValueOp {
    New,
    Read,
    Write,
    CancelRead,
    CancelWrite,
    DropReadable,
    DropWritable,
}

impl AsyncValueOp {
    pub const ALL: [AsyncValueOp; 7] = [
        AsyncValueOp::New,
        AsyncValueOp::Read,
        AsyncValueOp::Write,
        AsyncValueOp::CancelRead,
        AsyncValueOp::CancelWrite,
        AsyncValueOp::DropReadable,
        AsyncValueOp::DropWritable,
    ];

    /// Whether the built-in is listed async-lowered (`[async-lower]`). CanonicalABI.md: for
    /// read and write "🚝 - `async` is allowed to be omitted, otherwise it must be present"
    /// (synchronous copies moved behind 🚝, component-model #641); for the cancels "🚝 - `async`
    /// is allowed (otherwise it must be absent)". A module imports the forms without 🚝.
    pub fn async_lowered(self) -> bool {
        matches!(self, AsyncValueOp::Read | AsyncValueOp::Write)
    }

    /// The built-in's name after `future.` / `stream.`.
    pub fn name(self) -> &'static str {
        match self {
            AsyncValueOp::New => "new",
            AsyncValueOp::Read => "read",
            AsyncValueOp::Write => "write",
            AsyncValueOp::CancelRead => "cancel-read",
            AsyncValueOp::CancelWrite => "cancel-write",
            AsyncValueOp::DropReadable => "drop-readable",
            AsyncValueOp::DropWritable => "drop-writable",
        }
    }
}

/// 🔀 The async ABI's built-ins a module may import whatever its functions are (Legacy names,
/// as (module, name); the string-taking error-context ones in the utf8 form). `task.cancel` is
/// an exported task's, so it comes from `[export]$root`.
pub const ASYNC_BUILTINS: &[(&str, &str)] = &[
    ("$root", "[context-get-0]"),
    ("$root", "[context-set-0]"),
    ("$root", "[backpressure-inc]"),
    ("$root", "[backpressure-dec]"),
    ("[export]$root", "[task-cancel]"),
    ("$root", "[thread-yield]"),
    ("$root", "[waitable-set-new]"),
    ("$root", "[waitable-set-wait]"),
    ("$root", "[waitable-set-poll]"),
    ("$root", "[waitable-set-drop]"),
    ("$root", "[waitable-join]"),
    ("$root", "[subtask-cancel]"),
    ("$root", "[subtask-drop]"),
    ("$root", "[error-context-new-utf8]"),
    ("$root", "[error-context-debug-message-utf8]"),
    ("$root", "[error-context-drop]"),
];

/// One core export of the build target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CoreExport {
    /// Core export name.
    pub name: String,
    /// The WIT-level item or ABI hook the export provides.
    pub item: ExportItem,
}

/// What a [`CoreExport`] provides.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExportItem {
    /// The core function `canon lift`ed as a WIT export.
    Func {
        /// The interface the function belongs to; `None` for a world-level
        /// function.
        interface: Option<InterfaceId>,
        /// Component-level function name, e.g. `[constructor]r`.
        func: String,
    },
    /// 🔀 The callback of an `async func` export lifted with `[async-lift]` (Legacy).
    Callback {
        /// See [`ExportItem::Func`].
        interface: Option<InterfaceId>,
        /// See [`ExportItem::Func`].
        func: String,
    },
    /// The `post-return` function of the export [`ExportItem::Func`] with the
    /// same `interface` and `func`.
    PostReturn {
        /// See [`ExportItem::Func`].
        interface: Option<InterfaceId>,
        /// See [`ExportItem::Func`].
        func: String,
    },
    /// The destructor of a resource defined by an exported interface.
    Dtor {
        /// The (original) resource type.
        resource: TypeId,
    },
    /// The linear memory used as the `memory` canonopt.
    Memory,
    /// The function used as the `realloc` canonopt.
    Realloc,
    /// The initialization function, called before any other export.
    Initialize,
}

/// Every core import of `world` under `scheme`.
///
/// Order: first the world's imports in the `Resolve`'s order (for an
/// interface: its functions in declaration order, then the drops of its
/// original resources), then the resource intrinsics (drop, new, rep per
/// resource) of the world's exported interfaces in export order. Within each
/// interface this is the order of BuildTargets.md's example; across world
/// items it is not the WIT source order, because wit-parser's elaboration
/// lists imported interfaces (including ones pulled in by `use`) before
/// world-level types and functions. Returns an empty list if `world` is not
/// in `resolve`.
///
/// Names are not deduplicated: a world importing two semver-compatible
/// versions of one interface (which wit-parser accepts) gets the same
/// standard names twice, since both have the same `cin`; such a world has no
/// usable `wasm32` build target.
pub fn world_imports(resolve: &Resolve, world: WorldId, scheme: NameScheme) -> Vec<CoreImport> {
    let Some(world) = resolve.worlds.get(world) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut asynchronous = false;
    for (key, item) in &world.imports {
        match item {
            WorldItem::Function(func) => {
                out.push(CoreImport {
                    module: scheme.import_module(None),
                    name: scheme.import_func(func),
                    item: ImportItem::Func { interface: None, func: func.name.clone() },
                });
                asynchronous |= async_value_builtins(&mut out, resolve, scheme, None, None, func, false);
            }
            // BuildTargets.md predates world-level resources; like
            // wit-component we treat them as resources of an imported
            // interface whose module is the world-level one.
            WorldItem::Type { id, .. } => {
                if let Some(rn) = original_resource_name(resolve, *id) {
                    out.push(CoreImport {
                        module: scheme.import_module(None),
                        name: scheme.resource_intrinsic(Intrinsic::Drop, rn),
                        item: ImportItem::ResourceDrop { resource: *id, exported: false },
                    });
                }
            }
            WorldItem::Interface { id, .. } => {
                let Some((iface, label)) = interface_and_label(resolve, key, *id, scheme) else {
                    continue;
                };
                let module = scheme.import_module(Some(&label));
                for func in iface.functions.values() {
                    out.push(CoreImport {
                        module: module.clone(),
                        name: scheme.import_func(func),
                        item: ImportItem::Func { interface: Some(*id), func: func.name.clone() },
                    });
                    asynchronous |=
                        async_value_builtins(&mut out, resolve, scheme, Some(*id), Some(&label), func, false);
                }
                out.extend(original_resources(resolve, iface).map(|(resource, rn)| CoreImport {
                    module: module.clone(),
                    name: scheme.resource_intrinsic(Intrinsic::Drop, rn),
                    item: ImportItem::ResourceDrop { resource, exported: false },
                }));
            }
        }
    }
    for (key, item) in &world.exports {
        let (interface, label, funcs): (Option<(InterfaceId, &Interface)>, Option<String>, Vec<&Function>) = match item
        {
            WorldItem::Function(func) => (None, None, vec![func]),
            WorldItem::Interface { id, .. } => match interface_and_label(resolve, key, *id, scheme) {
                Some((iface, label)) => (Some((*id, iface)), Some(label), iface.functions.values().collect()),
                None => continue,
            },
            WorldItem::Type { .. } => continue,
        };
        let id = interface.map(|(id, _)| id);
        for func in funcs {
            asynchronous |= async_value_builtins(&mut out, resolve, scheme, id, label.as_deref(), func, true);
            if func.kind.is_async() && scheme == NameScheme::Legacy {
                out.push(CoreImport {
                    module: format!("[export]{}", label.as_deref().unwrap_or("$root")),
                    name: format!("[task-return]{}", func.name),
                    item: ImportItem::TaskReturn { interface: id, func: func.name.clone() },
                });
            }
        }
        let (Some((_, iface)), Some(label)) = (interface, label) else {
            continue;
        };
        let module = scheme.exported_resource_module(&label);
        for (resource, rn) in original_resources(resolve, iface) {
            let intrinsics = [
                (Intrinsic::Drop, ImportItem::ResourceDrop { resource, exported: true }),
                (Intrinsic::New, ImportItem::ResourceNew { resource }),
                (Intrinsic::Rep, ImportItem::ResourceRep { resource }),
            ];
            out.extend(intrinsics.into_iter().map(|(intrinsic, item)| CoreImport {
                module: module.clone(),
                name: scheme.resource_intrinsic(intrinsic, rn),
                item,
            }));
        }
    }
    if asynchronous && scheme == NameScheme::Legacy {
        out.extend(ASYNC_BUILTINS.iter().map(|&(module, name)| CoreImport {
            module: module.into(),
            name: name.into(),
            item: ImportItem::Builtin { name },
        }));
    }
    out
}

/// 🔀 The future and stream types of `func`'s signature in wit-component's order (params, then
/// the result; each type after those in its payload; repeats kept), which numbers their
/// built-ins. Walked with a stack of its own: a chain of aliases or types may be deep.
pub fn futures_and_streams(resolve: &Resolve, func: &Function) -> Vec<TypeId> {
    let mut out = vec![];
    let mut stack: Vec<(Type, bool)> =
        func.params.iter().map(|p| (p.ty, false)).chain(func.result.map(|t| (t, false))).collect();
    stack.reverse();
    while let Some((ty, done)) = stack.pop() {
        let Type::Id(id) = ty else { continue };
        let Some(def) = resolve.types.get(id) else { continue };
        if done {
            out.push(id);
            continue;
        }
        let mut children: Vec<Type> = match &def.kind {
            TypeDefKind::Record(r) => r.fields.iter().map(|f| f.ty).collect(),
            TypeDefKind::Tuple(t) => t.types.clone(),
            TypeDefKind::Variant(v) => v.cases.iter().filter_map(|c| c.ty).collect(),
            TypeDefKind::Option(t)
            | TypeDefKind::List(t)
            | TypeDefKind::FixedLengthList(t, _)
            | TypeDefKind::Type(t) => vec![*t],
            TypeDefKind::Map(k, v) => vec![*k, *v],
            TypeDefKind::Result(r) => r.ok.iter().chain(&r.err).copied().collect(),
            TypeDefKind::Future(t) | TypeDefKind::Stream(t) => {
                stack.push((ty, true));
                t.iter().copied().collect()
            }
            _ => vec![],
        };
        children.reverse();
        stack.extend(children.into_iter().map(|t| (t, false)));
    }
    out
}

/// 🔀 Push the future and stream built-ins of `func`'s signature (Legacy only); whether the
/// function is async or has any, so that the async ABI's other built-ins are listed too.
fn async_value_builtins(
    out: &mut Vec<CoreImport>,
    resolve: &Resolve,
    scheme: NameScheme,
    interface: Option<InterfaceId>,
    label: Option<&str>,
    func: &Function,
    exported: bool,
) -> bool {
    let values = futures_and_streams(resolve, func);
    if scheme != NameScheme::Legacy {
        return func.kind.is_async() || !values.is_empty();
    }
    let module = format!("{}{}", if exported { "[export]" } else { "" }, label.unwrap_or("$root"));
    for (index, ty) in values.iter().enumerate() {
        let stream = matches!(resolve.types[*ty].kind, TypeDefKind::Stream(_));
        let kind = if stream { "stream" } else { "future" };
        for op in AsyncValueOp::ALL {
            out.push(CoreImport {
                module: module.clone(),
                name: format!(
                    "{}[{kind}-{}-{index}]{}",
                    if op.async_lowered() { "[async-lower]" } else { "" },
                    op.name(),
                    func.name
                ),
                item: ImportItem::AsyncValue { interface, func: func.name.clone(), stream, op, index, exported },
            });
        }
    }
    func.kind.is_async() || !values.is_empty()
}

/// Every core export of `world` under `scheme`.
///
/// Order: the world's exports in the `Resolve`'s order (each function directly
/// followed by its post-return; for an interface, its functions in
/// declaration order, then the destructors of its original resources), then
/// memory, realloc and initialize. Post-return and the three ABI exports are
/// always listed: the build target defines them all, and which ones a module
/// must provide is decided from the function types elsewhere. Returns an
/// empty list if `world` is not in `resolve`.
pub fn world_exports(resolve: &Resolve, world: WorldId, scheme: NameScheme) -> Vec<CoreExport> {
    let Some(world) = resolve.worlds.get(world) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, item) in &world.exports {
        match item {
            WorldItem::Function(func) => push_export_func(&mut out, scheme, None, None, func),
            WorldItem::Interface { id, .. } => {
                let Some((iface, label)) = interface_and_label(resolve, key, *id, scheme) else {
                    continue;
                };
                for func in iface.functions.values() {
                    push_export_func(&mut out, scheme, Some(*id), Some(&label), func);
                }
                out.extend(original_resources(resolve, iface).map(|(resource, rn)| CoreExport {
                    name: scheme.dtor(&label, rn),
                    item: ExportItem::Dtor { resource },
                }));
            }
            // Worlds cannot export types; nothing to name.
            WorldItem::Type { .. } => {}
        }
    }
    out.extend([
        CoreExport { name: scheme.memory().to_string(), item: ExportItem::Memory },
        CoreExport { name: scheme.realloc().to_string(), item: ExportItem::Realloc },
        CoreExport { name: scheme.initialize().to_string(), item: ExportItem::Initialize },
    ]);
    out
}

/// The canonicalized interface name (`cin`) of `iface` (BuildTargets.md
/// "Interface Name Canonicalization"): `ns:pkg/name` followed, if the package
/// is versioned, by `@` and the canonicalized version (build metadata
/// dropped; `M.m.p-pre` if there is a prerelease, else `M` if `M > 0`, else
/// `0.m` if `m > 0`, else `0.0.p`).
///
/// An unnamed (inline) interface has no interface name; BuildTargets.md's
/// example uses the plain name it is imported/exported under (`j`), which is
/// found by searching the worlds of `resolve`. Returns an empty string when
/// `iface` is not in `resolve` or is an unnamed interface no world names.
pub fn canonicalized_interface_name(resolve: &Resolve, iface: InterfaceId) -> String {
    if let Some(name) = interface_id(resolve, iface, true) {
        return name;
    }
    let Some(interface) = resolve.interfaces.get(iface) else {
        return String::new();
    };
    if let Some(name) = &interface.name {
        // A named interface outside any package cannot be qualified.
        return name.clone();
    }
    resolve
        .worlds
        .iter()
        .flat_map(|(_, world)| world.imports.iter().chain(world.exports.iter()))
        .find_map(|(key, item)| match (key, item) {
            (WorldKey::Name(label), WorldItem::Interface { id, .. }) if *id == iface => Some(label.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// `ns:pkg/name@version` of a named interface of a package, with the
/// canonicalized version (`canonical`) or the full one. `None` for unnamed
/// interfaces, interfaces without a package, and ids not in `resolve`.
fn interface_id(resolve: &Resolve, iface: InterfaceId, canonical: bool) -> Option<String> {
    let interface = resolve.interfaces.get(iface)?;
    let name = interface.name.as_ref()?;
    let package = resolve.packages.get(interface.package?)?;
    let pkg = &package.name;
    let mut id = format!("{}:{}/{name}", pkg.namespace, pkg.name);
    if let Some(v) = &pkg.version {
        let version = if canonical {
            canonical_version(v.major, v.minor, v.patch, v.pre.as_str())
        } else {
            // The legacy scheme keeps the full version, build metadata
            // included (as wit-component's `Legacy` mangling matches it).
            v.to_string()
        };
        id.push('@');
        id.push_str(&version);
    }
    Some(id)
}

/// BuildTargets.md's canonicalized version; build metadata is never used.
fn canonical_version(major: u64, minor: u64, patch: u64, pre: &str) -> String {
    if !pre.is_empty() {
        format!("{major}.{minor}.{patch}-{pre}")
    } else if major == 0 && minor == 0 {
        format!("0.0.{patch}")
    } else if major == 0 {
        format!("0.{minor}")
    } else {
        major.to_string()
    }
}

/// The interface behind a world item and the name it is referred to by in
/// core names.
///
/// The name comes from the world key, not the interface: an unnamed
/// interface and a labelled import of a named interface (`import lbl:
/// ns:pkg/i;`, which BuildTargets.md predates) are both keyed by a plain
/// name, which is used verbatim as wit-component does; an interface keyed by
/// its id is named by its `cin` (standard) or full id (legacy).
fn interface_and_label<'r>(
    resolve: &'r Resolve,
    key: &WorldKey,
    iface: InterfaceId,
    scheme: NameScheme,
) -> Option<(&'r Interface, String)> {
    let interface = resolve.interfaces.get(iface)?;
    let label = match key {
        WorldKey::Name(label) => label.clone(),
        WorldKey::Interface(id) => interface_id(resolve, *id, scheme == NameScheme::Standard)?,
    };
    Some((interface, label))
}

/// The resources defined by `iface` itself, in declaration order.
///
/// "Original" (BuildTargets.md): not defined equal to another resource, so
/// `use`d resources and `type a = b` aliases, whose kind is an alias rather
/// than `resource`, are skipped; they belong to their defining interface.
fn original_resources<'r>(resolve: &'r Resolve, iface: &'r Interface) -> impl Iterator<Item = (TypeId, &'r str)> + 'r {
    iface.types.values().filter_map(|id| Some((*id, original_resource_name(resolve, *id)?)))
}

/// The name of `ty` if it is a resource definition (not an alias).
fn original_resource_name(resolve: &Resolve, ty: TypeId) -> Option<&str> {
    let def = resolve.types.get(ty)?;
    match def.kind {
        TypeDefKind::Resource => def.name.as_deref(),
        _ => None,
    }
}

/// Appends the export of `func` and its post-return.
fn push_export_func(
    out: &mut Vec<CoreExport>,
    scheme: NameScheme,
    interface: Option<InterfaceId>,
    label: Option<&str>,
    func: &Function,
) {
    let name = scheme.export_func(label, &func.name);
    // 🔀 An async func is lifted with a callback and has no post-return (Legacy).
    if func.kind.is_async() && scheme == NameScheme::Legacy {
        let lifted = format!("[async-lift]{name}");
        let callback = format!("[callback]{lifted}");
        out.push(CoreExport { name: lifted, item: ExportItem::Func { interface, func: func.name.clone() } });
        out.push(CoreExport { name: callback, item: ExportItem::Callback { interface, func: func.name.clone() } });
        return;
    }
    let post = scheme.post_return(&name);
    out.push(CoreExport { name, item: ExportItem::Func { interface, func: func.name.clone() } });
    out.push(CoreExport { name: post, item: ExportItem::PostReturn { interface, func: func.name.clone() } });
}

/// The resource intrinsics a module imports.
#[derive(Clone, Copy)]
enum Intrinsic {
    Drop,
    New,
    Rep,
}

/// The string rules of each scheme (BuildTargets.md for `Standard`,
/// wit-component's `Legacy` mangling for `Legacy`). `label` is the interface's name as chosen by
/// [`interface_and_label`]; `None` means world level.
impl NameScheme {
    /// Field name of an imported function: 🔀 `[async-lower]` before an async one (Legacy).
    fn import_func(self, func: &Function) -> String {
        match self {
            Self::Legacy if func.kind.is_async() => format!("[async-lower]{}", func.name),
            _ => func.name.clone(),
        }
    }

    /// Module of imported functions and of imported resources' drops.
    fn import_module(self, label: Option<&str>) -> String {
        match (self, label) {
            (Self::Standard, Some(label)) => format!("{STANDARD_PREFIX}|{label}"),
            (Self::Standard, None) => STANDARD_PREFIX.to_string(),
            (Self::Legacy, Some(label)) => label.to_string(),
            (Self::Legacy, None) => "$root".to_string(),
        }
    }

    /// Module of the intrinsics of an exported interface's resources.
    fn exported_resource_module(self, label: &str) -> String {
        match self {
            Self::Standard => format!("{STANDARD_PREFIX}|_ex_{label}"),
            Self::Legacy => format!("[export]{label}"),
        }
    }

    /// Field name of a resource intrinsic of resource `rn`.
    fn resource_intrinsic(self, intrinsic: Intrinsic, rn: &str) -> String {
        let op = match intrinsic {
            Intrinsic::Drop => "drop",
            Intrinsic::New => "new",
            Intrinsic::Rep => "rep",
        };
        match self {
            Self::Standard => format!("{rn}_{op}"),
            Self::Legacy => format!("[resource-{op}]{rn}"),
        }
    }

    /// Export name of a lifted function.
    fn export_func(self, label: Option<&str>, func: &str) -> String {
        match (self, label) {
            (Self::Standard, label) => format!("{STANDARD_PREFIX}|{}|{func}", label.unwrap_or("")),
            (Self::Legacy, Some(label)) => format!("{label}#{func}"),
            (Self::Legacy, None) => func.to_string(),
        }
    }

    /// Post-return export name for the function exported as `export`.
    fn post_return(self, export: &str) -> String {
        match self {
            Self::Standard => format!("{export}_post"),
            Self::Legacy => format!("cabi_post_{export}"),
        }
    }

    /// Destructor export name of resource `rn` of the exported interface.
    fn dtor(self, label: &str, rn: &str) -> String {
        match self {
            Self::Standard => format!("{STANDARD_PREFIX}|{label}|{rn}_dtor"),
            Self::Legacy => format!("{label}#[dtor]{rn}"),
        }
    }

    fn memory(self) -> &'static str {
        match self {
            Self::Standard => "cm32p2_memory",
            Self::Legacy => "memory",
        }
    }

    fn realloc(self) -> &'static str {
        match self {
            Self::Standard => "cm32p2_realloc",
            Self::Legacy => "cabi_realloc",
        }
    }

    pub fn initialize(self) -> &'static str {
        match self {
            Self::Standard => "cm32p2_initialize",
            Self::Legacy => "_initialize",
        }
    }
}
