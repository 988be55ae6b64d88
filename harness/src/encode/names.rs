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
//!   `wit-component` still accepts (its `Legacy` mangling), with the synchronous ABI
//!   only (no `[async-lower]`/`[async-lift]` prefixes).
//!
//! This module only *lists* the names a world defines (the "build target");
//! whether a module must provide a given export (e.g. `cm32p2_memory`) depends
//! on the function types it actually uses and is decided elsewhere.
//!
//! It is written from the spec text, independently of
//! `wit_parser::Resolve::wasm_import_name`/`wasm_export_name`, because the
//! test-suite uses those as a differential oracle.
//!
//! Scope: the synchronous ABI. Future/stream/async intrinsics are not defined
//! by BuildTargets.md and are never listed; functions whose types mention them
//! are still listed under their plain names (the name does not depend on the
//! type).
//!
//! Nothing here panics: ids that do not belong to `resolve` and items that
//! cannot be named (e.g. an anonymous interface keyed by id) are skipped.

use wit_parser::{Function, Interface, InterfaceId, Resolve, TypeDefKind, TypeId, WorldId, WorldItem, WorldKey};

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
}

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
    for (key, item) in &world.imports {
        match item {
            WorldItem::Function(func) => out.push(CoreImport {
                module: scheme.import_module(None),
                name: func.name.clone(),
                item: ImportItem::Func { interface: None, func: func.name.clone() },
            }),
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
                out.extend(iface.functions.values().map(|func| CoreImport {
                    module: module.clone(),
                    name: func.name.clone(),
                    item: ImportItem::Func { interface: Some(*id), func: func.name.clone() },
                }));
                out.extend(original_resources(resolve, iface).map(|(resource, rn)| CoreImport {
                    module: module.clone(),
                    name: scheme.resource_intrinsic(Intrinsic::Drop, rn),
                    item: ImportItem::ResourceDrop { resource, exported: false },
                }));
            }
        }
    }
    for (key, item) in &world.exports {
        let WorldItem::Interface { id, .. } = item else {
            continue;
        };
        let Some((iface, label)) = interface_and_label(resolve, key, *id, scheme) else {
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
    out
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
