//! Differential tests of `witness::encode::names` against wit-parser.
//!
//! `Resolve::wasm_import_name`/`wasm_export_name` are what wit-component uses
//! to bind a core module to a world, so agreeing with them means modules
//! built from our names are accepted there. The oracle below walks each world
//! with wit-parser's data model and asks wit-parser for every name; our module
//! derives the same list from the BuildTargets.md rules on its own.
//!
//! Hand-written expectations are copied from BuildTargets.md's text and
//! example (standard scheme) and from the names wit-bindgen emits and wit-component's
//! `Legacy` mangling accepts (legacy scheme, see
//! `build_targets_example_legacy_follows_the_legacy_rules`), never
//! from our own output, so the tests also pin both implementations to the
//! spec text.
//!
//! Cases outside BuildTargets.md (world-level resources, labelled
//! "implements" imports `import lbl: ns:pkg/i;`, semver-compatible duplicate
//! imports) follow wit-parser and are marked `NOT IN BuildTargets.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use wit_parser::{
    Function, InterfaceId, LiftLowerAbi, ManglingAndAbi, Resolve, ResourceIntrinsic, TypeDefKind, TypeId, TypeOwner,
    WasmExport, WasmExportKind, WasmImport, WorldId, WorldItem, WorldKey,
};
use witness::encode::names::{
    CoreExport, CoreImport, ExportItem, ImportItem, NameScheme, STANDARD_PREFIX, canonicalized_interface_name,
    world_exports, world_imports,
};

/// Our schemes with the wit-parser mangling each must reproduce.
const SCHEMES: [(NameScheme, ManglingAndAbi); 2] = [
    (NameScheme::Standard, ManglingAndAbi::Standard32),
    (NameScheme::Legacy, ManglingAndAbi::Legacy(LiftLowerAbi::Sync)),
];

/// Parses `sources` in order (dependencies first) and selects world `w` of
/// the last one.
fn load(sources: &[&str]) -> (Resolve, WorldId) {
    let mut resolve = Resolve::default();
    let mut last = None;
    for (i, src) in sources.iter().enumerate() {
        match resolve.push_str(format!("input{i}.wit"), src) {
            Ok(pkg) => last = Some(pkg),
            Err(e) => panic!("WIT rejected: {e:#}\n{src}"),
        }
    }
    let pkg = last.expect("at least one WIT source");
    let world = resolve.select_world(&[pkg], Some("w")).expect("world `w` exists");
    (resolve, world)
}

// ---------------------------------------------------------------------------
// The oracle: wit-parser's names for every item of a world.

/// The original resources of interface `iface`: resource definitions owned by
/// it. Found through the type arena's owners rather than the interface's type
/// map (which `names` uses) to keep the two walks independent.
fn owned_resources(resolve: &Resolve, iface: InterfaceId) -> Vec<TypeId> {
    resolve
        .types
        .iter()
        .filter(|(_, ty)| ty.owner == TypeOwner::Interface(iface) && matches!(ty.kind, TypeDefKind::Resource))
        .map(|(id, _)| id)
        .collect()
}

/// Expected imports: world imports in the `Resolve`'s order (per interface:
/// functions, then resource drops, as in BuildTargets.md's example), then
/// intrinsics of exported interfaces' resources.
fn oracle_imports(resolve: &Resolve, world: WorldId, mangling: ManglingAndAbi) -> Vec<CoreImport> {
    let func = |key: Option<&WorldKey>, interface: Option<InterfaceId>, func: &Function| {
        let (module, name) = resolve.wasm_import_name(mangling, WasmImport::Func { interface: key, func });
        CoreImport { module, name, item: ImportItem::Func { interface, func: func.name.clone() } }
    };
    let intrinsic = |key: Option<&WorldKey>, resource: TypeId, intrinsic: ResourceIntrinsic, item: ImportItem| {
        let (module, name) =
            resolve.wasm_import_name(mangling, WasmImport::ResourceIntrinsic { interface: key, resource, intrinsic });
        CoreImport { module, name, item }
    };
    let drop = |resource, exported| ImportItem::ResourceDrop { resource, exported };

    let w = &resolve.worlds[world];
    let mut out = Vec::new();
    for (key, item) in &w.imports {
        match item {
            WorldItem::Function(f) => out.push(func(None, None, f)),
            // NOT IN BuildTargets.md: world-level resource (wit-parser: module
            // `cm32p2` / `$root`).
            WorldItem::Type { id, .. } => {
                if matches!(resolve.types[*id].kind, TypeDefKind::Resource) {
                    out.push(intrinsic(None, *id, ResourceIntrinsic::ImportedDrop, drop(*id, false)));
                }
            }
            WorldItem::Interface { id, .. } => {
                for f in resolve.interfaces[*id].functions.values() {
                    out.push(func(Some(key), Some(*id), f));
                }
                for r in owned_resources(resolve, *id) {
                    out.push(intrinsic(Some(key), r, ResourceIntrinsic::ImportedDrop, drop(r, false)));
                }
            }
        }
    }
    for (key, item) in &w.exports {
        if let WorldItem::Interface { id, .. } = item {
            for r in owned_resources(resolve, *id) {
                out.push(intrinsic(Some(key), r, ResourceIntrinsic::ExportedDrop, drop(r, true)));
                out.push(intrinsic(
                    Some(key),
                    r,
                    ResourceIntrinsic::ExportedNew,
                    ImportItem::ResourceNew { resource: r },
                ));
                out.push(intrinsic(
                    Some(key),
                    r,
                    ResourceIntrinsic::ExportedRep,
                    ImportItem::ResourceRep { resource: r },
                ));
            }
        }
    }
    out
}

/// Expected exports: world exports (each function followed by its
/// post-return, interface dtors after the functions), then the ABI exports.
fn oracle_exports(resolve: &Resolve, world: WorldId, mangling: ManglingAndAbi) -> Vec<CoreExport> {
    let func = |out: &mut Vec<CoreExport>, key: Option<&WorldKey>, interface: Option<InterfaceId>, func: &Function| {
        let name =
            |kind: WasmExportKind| resolve.wasm_export_name(mangling, WasmExport::Func { interface: key, func, kind });
        out.push(CoreExport {
            name: name(WasmExportKind::Normal),
            item: ExportItem::Func { interface, func: func.name.clone() },
        });
        out.push(CoreExport {
            name: name(WasmExportKind::PostReturn),
            item: ExportItem::PostReturn { interface, func: func.name.clone() },
        });
    };
    let w = &resolve.worlds[world];
    let mut out = Vec::new();
    for (key, item) in &w.exports {
        match item {
            WorldItem::Function(f) => func(&mut out, None, None, f),
            WorldItem::Interface { id, .. } => {
                for f in resolve.interfaces[*id].functions.values() {
                    func(&mut out, Some(key), Some(*id), f);
                }
                for r in owned_resources(resolve, *id) {
                    out.push(CoreExport {
                        name: resolve
                            .wasm_export_name(mangling, WasmExport::ResourceDtor { interface: key, resource: r }),
                        item: ExportItem::Dtor { resource: r },
                    });
                }
            }
            WorldItem::Type { .. } => {}
        }
    }
    for (export, item) in [
        (WasmExport::Memory, ExportItem::Memory),
        (WasmExport::Realloc, ExportItem::Realloc),
        (WasmExport::Initialize, ExportItem::Initialize),
    ] {
        out.push(CoreExport { name: resolve.wasm_export_name(mangling, export), item });
    }
    out
}

// ---------------------------------------------------------------------------
// Comparison helpers.

/// Asserts `ours == oracle`, listing the differing entries on failure.
fn assert_same<T: Debug + PartialEq>(context: &str, ours: &[T], oracle: &[T]) {
    if ours == oracle {
        return;
    }
    let missing: Vec<_> = oracle.iter().filter(|x| !ours.contains(x)).collect();
    let extra: Vec<_> = ours.iter().filter(|x| !oracle.contains(x)).collect();
    panic!(
        "{context}: names differ from wit-parser\n missing: {missing:#?}\n extra: {extra:#?}\n \
         ours (in order): {ours:#?}\n wit-parser (in order): {oracle:#?}"
    );
}

fn import_pairs(imports: &[CoreImport]) -> Vec<(String, String)> {
    imports.iter().map(|i| (i.module.clone(), i.name.clone())).collect()
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

fn export_names(exports: &[CoreExport]) -> Vec<String> {
    exports.iter().map(|e| e.name.clone()).collect()
}

/// Compares both schemes with wit-parser and checks scheme-independent
/// invariants. Returns our lists per scheme for further checks.
fn check_world(
    resolve: &Resolve,
    world: WorldId,
    context: &str,
) -> Vec<(NameScheme, Vec<CoreImport>, Vec<CoreExport>)> {
    let mut results = Vec::new();
    for (scheme, mangling) in SCHEMES {
        let imports = world_imports(resolve, world, scheme);
        let exports = world_exports(resolve, world, scheme);
        let ctx = format!("{context} [{scheme:?}]");
        assert_same(&format!("{ctx} imports"), &imports, &oracle_imports(resolve, world, mangling));
        assert_same(&format!("{ctx} exports"), &exports, &oracle_exports(resolve, world, mangling));

        // BuildTargets.md "Imports and Exports": every standard name starts
        // with the prefix, so a runtime can tell build-target names apart;
        // legacy names must not, or wit-component would classify them as
        // standard (wit-component picks the scheme by the `cm32p2` prefix).
        for module in imports.iter().map(|i| &i.module) {
            assert_eq!(module.starts_with(STANDARD_PREFIX), scheme == NameScheme::Standard, "{ctx}: module {module}");
        }
        for name in exports.iter().map(|e| &e.name) {
            assert_eq!(name.starts_with(STANDARD_PREFIX), scheme == NameScheme::Standard, "{ctx}: export {name}");
        }
        results.push((scheme, imports, exports));
    }
    // The schemes name the same items in the same order; only strings differ.
    let items = |r: &(NameScheme, Vec<CoreImport>, Vec<CoreExport>)| {
        (r.1.iter().map(|i| i.item.clone()).collect::<Vec<_>>(), r.2.iter().map(|e| e.item.clone()).collect::<Vec<_>>())
    };
    assert_eq!(items(&results[0]), items(&results[1]), "{context}: schemes list different items");

    // Interfaces keyed by id are named by their cin (BuildTargets.md
    // "Interface Name Canonicalization"), which wit-parser also exposes.
    let w = &resolve.worlds[world];
    for (key, _) in w.imports.iter().chain(&w.exports) {
        if let WorldKey::Interface(id) = key {
            assert_eq!(
                canonicalized_interface_name(resolve, *id),
                resolve.canonicalized_id_of(*id).expect("named interface"),
                "{context}: cin"
            );
        }
    }
    results
}

/// Asserts that no two imports share (module, name) and no two exports share
/// a name: BuildTargets.md matches imports "by string equality", so each
/// name must denote one item.
fn assert_unique(context: &str, imports: &[CoreImport], exports: &[CoreExport]) {
    let pairs = import_pairs(imports);
    let set: BTreeSet<_> = pairs.iter().collect();
    assert_eq!(set.len(), pairs.len(), "{context}: duplicate import in {pairs:#?}");
    let names = export_names(exports);
    let set: BTreeSet<_> = names.iter().collect();
    assert_eq!(set.len(), names.len(), "{context}: duplicate export in {names:#?}");
}

fn check_unique_world(resolve: &Resolve, world: WorldId, context: &str) {
    for (scheme, imports, exports) in check_world(resolve, world, context) {
        assert_unique(&format!("{context} [{scheme:?}]"), &imports, &exports);
    }
}

// ---------------------------------------------------------------------------
// The BuildTargets.md example.

/// BuildTargets.md "Example", verbatim.
const BUILD_TARGETS_EXAMPLE: &str = r#"
package ns:pkg@0.2.1;

interface i {
  resource r {
    constructor(s: string);
    m: func() -> string;
  }
  frob: func(in: r) -> r;
}

world w {
  import f: func() -> string;
  import i;
  import j: interface {
    resource r {
      constructor(s: string);
      m: func() -> string;
    }
    frob: func(in: r) -> r;
  }
  export g: func() -> string;
  export i;
  export j: interface {
    resource r {
      constructor(s: string);
      m: func() -> string;
    }
    frob: func(in: r) -> r;
  }
}
"#;

/// Rule: BuildTargets.md "WIT-derived Function Imports"; the example's
/// import list is complete, so ours must equal it. Compared as sorted
/// lists: our order follows the `Resolve`, where wit-parser puts interfaces
/// before world-level functions, unlike the example's source order.
#[test]
fn build_targets_example_imports_match_spec_text() {
    let (resolve, world) = load(&[BUILD_TARGETS_EXAMPLE]);
    let expected: Vec<(String, String)> = [
        ("cm32p2", "f"),
        ("cm32p2|ns:pkg/i@0.2", "[constructor]r"),
        ("cm32p2|ns:pkg/i@0.2", "[method]r.m"),
        ("cm32p2|ns:pkg/i@0.2", "frob"),
        ("cm32p2|ns:pkg/i@0.2", "r_drop"),
        ("cm32p2|j", "[constructor]r"),
        ("cm32p2|j", "[method]r.m"),
        ("cm32p2|j", "frob"),
        ("cm32p2|j", "r_drop"),
        ("cm32p2|_ex_ns:pkg/i@0.2", "r_drop"),
        ("cm32p2|_ex_ns:pkg/i@0.2", "r_new"),
        ("cm32p2|_ex_ns:pkg/i@0.2", "r_rep"),
        ("cm32p2|_ex_j", "r_drop"),
        ("cm32p2|_ex_j", "r_new"),
        ("cm32p2|_ex_j", "r_rep"),
    ]
    .iter()
    .map(|(m, n)| (m.to_string(), n.to_string()))
    .collect();
    let ours = world_imports(&resolve, world, NameScheme::Standard);
    assert_eq!(sorted(import_pairs(&ours)), sorted(expected));
}

/// Rule: BuildTargets.md "WIT-derived Function Exports", "Memory Exports",
/// "Initialization Export". The example lists `_post` only for `g`, though
/// the rule defines `<fn>_post` for every exported function, so ours must be
/// the example plus exactly the `_post` of each interface function.
#[test]
fn build_targets_example_exports_match_spec_text() {
    let (resolve, world) = load(&[BUILD_TARGETS_EXAMPLE]);
    let example = [
        "cm32p2||g",
        "cm32p2||g_post",
        "cm32p2|ns:pkg/i@0.2|[constructor]r",
        "cm32p2|ns:pkg/i@0.2|[method]r.m",
        "cm32p2|ns:pkg/i@0.2|frob",
        "cm32p2|ns:pkg/i@0.2|r_dtor",
        "cm32p2|j|[constructor]r",
        "cm32p2|j|[method]r.m",
        "cm32p2|j|frob",
        "cm32p2|j|r_dtor",
        "cm32p2_memory",
        "cm32p2_realloc",
        "cm32p2_initialize",
    ];
    let mut expected: BTreeSet<String> = example.iter().map(|s| s.to_string()).collect();
    for name in example {
        let interface_func = name.starts_with("cm32p2|") && !name.starts_with("cm32p2||") && !name.ends_with("_dtor");
        if interface_func {
            expected.insert(format!("{name}_post"));
        }
    }
    let ours = world_exports(&resolve, world, NameScheme::Standard);
    let ours_set: BTreeSet<String> = export_names(&ours).into_iter().collect();
    assert_eq!(ours_set, expected);
    assert_eq!(ours.len(), expected.len(), "no duplicates");
}

/// Rule: the legacy scheme (world-level imports in module `$root`, interfaces by their full
/// name and version, `[export]<iface>` modules for exported resources' built-ins,
/// `[resource-new|rep|drop]<r>` fields, `<iface>#<fn>` exports, `cabi_post_<export>`
/// post-returns), applied by hand to the BuildTargets.md example.
#[test]
fn build_targets_example_legacy_follows_the_legacy_rules() {
    let (resolve, world) = load(&[BUILD_TARGETS_EXAMPLE]);
    let i = "ns:pkg/i@0.2.1";
    let mut expected_imports = vec![("$root".to_string(), "f".to_string())];
    for module in [i, "j"] {
        for name in ["[constructor]r", "[method]r.m", "frob", "[resource-drop]r"] {
            expected_imports.push((module.to_string(), name.to_string()));
        }
    }
    for module in [i, "j"] {
        for name in ["[resource-drop]r", "[resource-new]r", "[resource-rep]r"] {
            expected_imports.push((format!("[export]{module}"), name.to_string()));
        }
    }
    let ours = world_imports(&resolve, world, NameScheme::Legacy);
    assert_eq!(sorted(import_pairs(&ours)), sorted(expected_imports));

    let mut expected_exports = vec!["g".to_string(), "cabi_post_g".to_string()];
    for iface in [i, "j"] {
        for f in ["[constructor]r", "[method]r.m", "frob"] {
            expected_exports.push(format!("{iface}#{f}"));
            expected_exports.push(format!("cabi_post_{iface}#{f}"));
        }
        expected_exports.push(format!("{iface}#[dtor]r"));
    }
    expected_exports.extend(["memory", "cabi_realloc", "_initialize"].map(String::from));
    let ours = world_exports(&resolve, world, NameScheme::Legacy);
    assert_eq!(sorted(export_names(&ours)), sorted(expected_exports));
}

/// Rules: all of BuildTargets.md "Imports and Exports", against wit-parser.
#[test]
fn build_targets_example_vs_wit_parser() {
    let (resolve, world) = load(&[BUILD_TARGETS_EXAMPLE]);
    check_unique_world(&resolve, world, "BuildTargets example");
}

// ---------------------------------------------------------------------------
// Interface name canonicalization.

/// Rule: BuildTargets.md "Interface Name Canonicalization" (its table, plus
/// the versions this suite cares about).
#[test]
fn canonicalized_interface_names_match_spec_table() {
    let cases = [
        // BuildTargets.md's table.
        ("", "a:b/c"),
        ("@1.2.3+alpha", "a:b/c@1"),
        ("@0.1.2+alpha", "a:b/c@0.1"),
        ("@0.0.1+alpha", "a:b/c@0.0.1"),
        ("@1.2.3-nightly+alpha", "a:b/c@1.2.3-nightly"),
        // Further cases of the same rules.
        ("@1.2.3", "a:b/c@1"),
        ("@0.2.1", "a:b/c@0.2"),
        ("@0.0.1", "a:b/c@0.0.1"),
        ("@0.0.0", "a:b/c@0.0.0"),
        ("@10.0.0", "a:b/c@10"),
        ("@1.2.3-rc.1+build", "a:b/c@1.2.3-rc.1"),
        ("@0.0.1-rc.1", "a:b/c@0.0.1-rc.1"),
        ("@0.2.0-alpha.3.x", "a:b/c@0.2.0-alpha.3.x"),
    ];
    for (version, expected) in cases {
        let mut resolve = Resolve::default();
        let pkg = resolve.push_str("c.wit", &format!("package a:b{version};\ninterface c {{}}\n")).expect("valid WIT");
        let iface = resolve.packages[pkg].interfaces["c"];
        assert_eq!(canonicalized_interface_name(&resolve, iface), expected, "version {version:?}");
        assert_eq!(resolve.canonicalized_id_of(iface).as_deref(), Some(expected), "wit-parser, version {version:?}");
    }
}

/// Rule: BuildTargets.md "Example": an unnamed interface is referred to by
/// its plain name (`j`), since it has no interface name to canonicalize.
#[test]
fn canonicalized_name_of_unnamed_interface_is_its_plain_name() {
    let (resolve, world) = load(&[BUILD_TARGETS_EXAMPLE]);
    let w = &resolve.worlds[world];
    let mut seen = 0;
    for (key, item) in w.imports.iter().chain(&w.exports) {
        if let (WorldKey::Name(label), WorldItem::Interface { id, .. }) = (key, item) {
            assert_eq!(label, "j");
            assert_eq!(canonicalized_interface_name(&resolve, *id), "j");
            seen += 1;
        }
    }
    assert_eq!(seen, 2, "j is imported and exported");
}

// ---------------------------------------------------------------------------
// Hand-written worlds.

/// Dependency packages with the versions of interest. Each interface has a
/// resource with constructor, method and static function, plus a free
/// function.
fn versioned_packages() -> Vec<String> {
    [("v:one", "@1.2.3"), ("v:two", "@0.2.1"), ("v:three", "@0.0.1"), ("v:four", "@1.2.3-rc.1+build"), ("v:five", "")]
        .iter()
        .map(|(pkg, ver)| {
            format!(
                "package {pkg}{ver};\n\
             interface api {{\n\
               resource file {{\n\
                 constructor(path: string);\n\
                 read: func(n: u32) -> list<u8>;\n\
                 open: static func(path: string) -> file;\n\
               }}\n\
               resource dir;\n\
               stat: func(f: borrow<file>) -> u64;\n\
             }}\n"
            )
        })
        .collect()
}

/// Rules: BuildTargets.md imports/exports of interfaces with
/// canonicalized names for @1.2.3, @0.2.1, @0.0.1, @1.2.3-rc.1+build and
/// unversioned packages, including `[constructor]`/`[method]`/`[static]`
/// names verbatim and resource drop/new/rep/dtor.
#[test]
fn versioned_interfaces_vs_wit_parser() {
    let deps = versioned_packages();
    let main = "package v:main;\n\
        world w {\n\
          import v:one/api@1.2.3;\n\
          export v:one/api@1.2.3;\n\
          import v:two/api@0.2.1;\n\
          export v:three/api@0.0.1;\n\
          import v:four/api@1.2.3-rc.1+build;\n\
          export v:four/api@1.2.3-rc.1+build;\n\
          import v:five/api;\n\
        }\n";
    let mut sources: Vec<&str> = deps.iter().map(String::as_str).collect();
    sources.push(main);
    let (resolve, world) = load(&sources);
    check_unique_world(&resolve, world, "versioned");

    // Spot-check the canonicalized modules against the spec's rule directly.
    let ours = world_imports(&resolve, world, NameScheme::Standard);
    let modules: BTreeSet<&str> = ours.iter().map(|i| i.module.as_str()).collect();
    let expected: BTreeSet<&str> = [
        "cm32p2|v:one/api@1",
        "cm32p2|_ex_v:one/api@1",
        "cm32p2|v:two/api@0.2",
        "cm32p2|_ex_v:three/api@0.0.1",
        "cm32p2|v:four/api@1.2.3-rc.1",
        "cm32p2|_ex_v:four/api@1.2.3-rc.1",
        "cm32p2|v:five/api",
    ]
    .into();
    assert_eq!(modules, expected);
    assert!(ours.iter().any(|i| i.module == "cm32p2|v:two/api@0.2" && i.name == "[static]file.open"));
    let exports = export_names(&world_exports(&resolve, world, NameScheme::Standard));
    assert!(exports.contains(&"cm32p2|v:three/api@0.0.1|[method]file.read_post".to_string()));
    assert!(exports.contains(&"cm32p2|v:four/api@1.2.3-rc.1|dir_dtor".to_string()));

    // Legacy keeps the full version, build metadata included.
    let legacy = world_imports(&resolve, world, NameScheme::Legacy);
    assert!(legacy.iter().any(|i| i.module == "[export]v:four/api@1.2.3-rc.1+build" && i.name == "[resource-new]file"));
}

/// Rules: BuildTargets.md world-level function imports (`cm32p2` / `<fn>`)
/// and exports (`cm32p2||<fn>`), unnamed interfaces (`cm32p2|<name>`,
/// `cm32p2|_ex_<name>`). NOT IN BuildTargets.md: world-level resources,
/// whose drop wit-parser names `cm32p2` / `<rn>_drop` (`$root` /
/// `[resource-drop]<rn>` in legacy).
#[test]
fn world_level_items_and_unnamed_interfaces_vs_wit_parser() {
    let src = "package t:world-level;\n\
        world w {\n\
          resource handle {\n\
            constructor(x: u32);\n\
            get: func() -> u32;\n\
            make: static func() -> handle;\n\
          }\n\
          import log: func(msg: string);\n\
          import take: func(h: handle) -> handle;\n\
          import host: interface {\n\
            resource conn { send: func(b: list<u8>); }\n\
            resource quiet;\n\
            connect: func(addr: string) -> conn;\n\
          }\n\
          export run: func(args: list<string>) -> result<string, u32>;\n\
          export nothing: func();\n\
          export guest: interface {\n\
            resource obj { constructor(); name: func() -> string; }\n\
            resource bare;\n\
            make: func() -> obj;\n\
          }\n\
          export plain: interface { ping: func() -> u8; }\n\
        }\n";
    let (resolve, world) = load(&[src]);
    check_unique_world(&resolve, world, "world-level");

    let imports = world_imports(&resolve, world, NameScheme::Standard);
    let pairs = import_pairs(&imports);
    let has = |m: &str, n: &str| pairs.contains(&(m.to_string(), n.to_string()));
    assert!(has("cm32p2", "log") && has("cm32p2", "[constructor]handle") && has("cm32p2", "[static]handle.make"));
    assert!(has("cm32p2|host", "connect") && has("cm32p2|host", "quiet_drop"));
    for op in ["drop", "new", "rep"] {
        assert!(has("cm32p2|_ex_guest", &format!("bare_{op}")), "bare_{op}");
    }
    // NOT IN BuildTargets.md: world-level resource drop, per wit-parser.
    assert!(has("cm32p2", "handle_drop"));
    // An exported interface without resources needs no `_ex_` module.
    assert!(!pairs.iter().any(|(m, _)| m == "cm32p2|_ex_plain"));

    let exports = export_names(&world_exports(&resolve, world, NameScheme::Standard));
    for name in
        ["cm32p2||run", "cm32p2||run_post", "cm32p2||nothing_post", "cm32p2|guest|obj_dtor", "cm32p2|plain|ping_post"]
    {
        assert!(exports.contains(&name.to_string()), "{name}");
    }
}

/// Rule: BuildTargets.md "original" resource types: a resource `use`d from
/// another interface, or aliased with `type a = b`, gets no `_drop`/`_dtor`
/// of its own; it belongs to its defining interface.
#[test]
fn used_and_aliased_resources_are_not_original() {
    let src = "package t:alias@2.0.0;\n\
        interface defs { resource r { m: func(); } }\n\
        interface users {\n\
          use defs.{r};\n\
          type r2 = r;\n\
          take: func(x: r2) -> r;\n\
        }\n\
        world w {\n\
          import users;\n\
          export users;\n\
        }\n";
    let (resolve, world) = load(&[src]);
    check_unique_world(&resolve, world, "alias");
    let imports = world_imports(&resolve, world, NameScheme::Standard);
    let drops: Vec<_> =
        imports.iter().filter(|i| i.name.ends_with("_drop")).map(|i| (i.module.as_str(), i.name.as_str())).collect();
    // `defs` is imported by elaboration; `users` defines no resource, so the
    // exported `users` has no `_ex_` intrinsics.
    assert_eq!(drops, [("cm32p2|t:alias/defs@2", "r_drop")]);
    let exports = export_names(&world_exports(&resolve, world, NameScheme::Standard));
    assert!(!exports.iter().any(|e| e.ends_with("_dtor")), "{exports:#?}");
    assert!(exports.contains(&"cm32p2|t:alias/users@2|take".to_string()));
}

/// NOT IN BuildTargets.md (it predates labelled "implements" imports):
/// `import lbl: ns:pkg/i;` is keyed by the label, and wit-parser uses the
/// label verbatim in place of the cin in both schemes; we follow it.
#[test]
fn labelled_imports_follow_wit_parser() {
    let dep = "package l:dep@0.3.7;\n\
        interface store { resource bucket; get: func(b: borrow<bucket>) -> string; }\n";
    let main = "package l:main;\n\
        world w {\n\
          import primary: l:dep/store@0.3.7;\n\
          import l:dep/store@0.3.7;\n\
          export backup: l:dep/store@0.3.7;\n\
        }\n";
    let (resolve, world) = load(&[dep, main]);
    check_unique_world(&resolve, world, "labelled");
    let pairs = import_pairs(&world_imports(&resolve, world, NameScheme::Standard));
    for (m, n) in [
        ("cm32p2|primary", "get"),
        ("cm32p2|primary", "bucket_drop"),
        ("cm32p2|l:dep/store@0.3", "get"),
        ("cm32p2|_ex_backup", "bucket_new"),
    ] {
        assert!(pairs.contains(&(m.to_string(), n.to_string())), "{m} {n}");
    }
}

/// NOT IN BuildTargets.md: a world importing two semver-compatible versions
/// of one interface (wit-parser accepts it) has colliding standard names,
/// since both canonicalize to the same cin; legacy names stay distinct. Both
/// implementations agree on the collision.
#[test]
fn semver_compatible_duplicates_collide_in_standard_scheme() {
    let src = "package t:main;\n\
        package a:b@1.2.0 { interface i { f: func(); } }\n\
        package a:b@1.3.0 { interface i { f: func(); } }\n\
        world w {\n\
          import a:b/i@1.2.0;\n\
          import a:b/i@1.3.0;\n\
        }\n";
    let (resolve, world) = load(&[src]);
    let results = check_world(&resolve, world, "semver duplicates");
    for (scheme, imports, _) in results {
        let pairs = import_pairs(&imports);
        let distinct: BTreeSet<_> = pairs.iter().collect();
        match scheme {
            NameScheme::Standard => {
                assert_eq!(pairs, vec![("cm32p2|a:b/i@1".to_string(), "f".to_string()); 2])
            }
            NameScheme::Legacy => assert_eq!(distinct.len(), 2),
        }
    }
}

/// No panics on foreign ids: a world or interface of another `Resolve`
/// yields nothing.
#[test]
fn foreign_ids_yield_nothing() {
    let (a, world_a) = load(&[BUILD_TARGETS_EXAMPLE]);
    let (b, _) = load(&["package o:ther;\nworld w { import x: func(); }\n"]);
    for (scheme, _) in SCHEMES {
        assert!(world_imports(&b, world_a, scheme).is_empty());
        assert!(world_exports(&b, world_a, scheme).is_empty());
    }
    let iface = a.interfaces.iter().next().map(|(id, _)| id).expect("an interface");
    assert_eq!(canonicalized_interface_name(&b, iface), "");
}

// ---------------------------------------------------------------------------
// Generated worlds.

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Disposition {
    Absent,
    Import,
    Export,
    Both,
    /// `import lbl: iface;` (NOT IN BuildTargets.md).
    Labelled,
}

/// A version suffix (`@M.m.p[-pre][+build]`) or none.
fn gen_version(rng: &mut Rng) -> String {
    if rng.chance(20) {
        return String::new();
    }
    let mut v = format!("@{}.{}.{}", rng.below(3), rng.below(3), rng.below(3));
    if rng.chance(30) {
        v.push('-');
        v.push_str(rng.pick(&["rc.1", "alpha", "nightly.2", "0.3.7"]));
    }
    if rng.chance(30) {
        v.push('+');
        v.push_str(rng.pick(&["build", "b.7", "20240101"]));
    }
    v
}

/// Resource (and, with `funcs`, function) items of an interface or world
/// body; resource names get `tag` so they do not clash across scopes.
/// Returns the text and whether a resource `<tag>res0` was defined.
fn gen_items(rng: &mut Rng, tag: &str, funcs: bool) -> (String, bool) {
    let mut body = String::new();
    let resources = rng.below(3);
    for r in 0..resources {
        let name = format!("{tag}res{r}");
        if rng.chance(30) {
            body.push_str(&format!("resource {name};\n"));
            continue;
        }
        body.push_str(&format!("resource {name} {{\n"));
        if rng.chance(60) {
            body.push_str("constructor(a: u32);\n");
        }
        for m in 0..rng.below(3) {
            body.push_str(&format!("m{m}: func(s: string) -> list<u8>;\n"));
        }
        for s in 0..rng.below(2) {
            body.push_str(&format!("s{s}: static func() -> {name};\n"));
        }
        body.push_str("}\n");
    }
    for f in 0..if funcs { rng.below(4) } else { 0 } {
        let sig = if resources > 0 && rng.chance(50) {
            format!("func(x: borrow<{tag}res0>) -> {tag}res0")
        } else {
            "func(a: u64, b: string) -> option<u32>".to_string()
        };
        body.push_str(&format!("{tag}f{f}: {sig};\n"));
    }
    (body, resources > 0)
}

/// WIT text of one generated world `w` plus the dependency packages nested in
/// the same file.
fn gen_world(seed: u64) -> String {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut packages = String::new();
    let mut world = String::new();
    if rng.chance(40) {
        // NOT IN BuildTargets.md: world-level resources.
        world.push_str(&gen_items(&mut rng, "w", false).0);
    }
    let mut labels = 0;
    for p in 0..1 + rng.below(3) {
        let version = gen_version(&mut rng);
        let pkg = format!("gen{seed}:p{p}");
        let count = 1 + rng.below(3);
        let dispositions: Vec<Disposition> = (0..count)
            .map(|_| match rng.below(8) {
                0 => Disposition::Absent,
                1 | 2 => Disposition::Import,
                3 | 4 => Disposition::Export,
                5 | 6 => Disposition::Both,
                _ => Disposition::Labelled,
            })
            .collect();
        packages.push_str(&format!("package {pkg}{version} {{\n"));
        let (mut prev_has_resource, mut prev_uses) = (false, false);
        for (k, disposition) in dispositions.iter().enumerate() {
            packages.push_str(&format!("interface i{k} {{\n"));
            // `use` a resource of the previous interface, unless that one is
            // only exported (an import may not depend on an export) or uses
            // another one itself (wit-parser rejects some transitive mixes
            // of imported and exported dependencies).
            let uses = prev_has_resource && !prev_uses && dispositions[k - 1] != Disposition::Export && rng.chance(60);
            if uses {
                packages.push_str(&format!("use i{}.{{i{}res0 as used}};\n", k - 1, k - 1));
                packages.push_str("type alias = used;\ntake-used: func(x: alias) -> used;\n");
            }
            let (items, has_resource) = gen_items(&mut rng, &format!("i{k}"), true);
            (prev_has_resource, prev_uses) = (has_resource, uses);
            packages.push_str(&items);
            packages.push_str("}\n");
            let path = format!("{pkg}/i{k}{version}");
            match disposition {
                Disposition::Absent => {}
                Disposition::Import => world.push_str(&format!("import {path};\n")),
                Disposition::Export => world.push_str(&format!("export {path};\n")),
                Disposition::Both => world.push_str(&format!("import {path};\nexport {path};\n")),
                Disposition::Labelled => {
                    world.push_str(&format!("import lbl{labels}: {path};\n"));
                    labels += 1;
                }
            }
        }
        packages.push_str("}\n");
    }
    for n in 0..rng.below(3) {
        let (dir, name) = if rng.chance(50) { ("import", "inl-imp") } else { ("export", "inl-exp") };
        let (items, _) = gen_items(&mut rng, "", true);
        world.push_str(&format!("{dir} {name}{n}: interface {{\n{items}}}\n"));
    }
    for n in 0..rng.below(3) {
        world.push_str(&format!("import wimp{n}: func(a: string) -> u32;\n"));
    }
    for n in 0..rng.below(3) {
        world.push_str(&format!("export wexp{n}: func(a: list<u32>) -> string;\n"));
    }
    format!("package gen{seed}:main;\n{packages}world w {{\n{world}}}\n")
}

/// Rules: every BuildTargets.md import/export rule and the canonicalization
/// rule, on 400 generated worlds (named interfaces with random versions,
/// imported/exported/both, unnamed interfaces, world-level functions,
/// resources with constructors/methods/statics, `use`d and aliased
/// resources), against wit-parser in both schemes. The tally at the end makes
/// sure the generator really exercised each kind of item.
#[test]
fn generated_worlds_agree_with_wit_parser() {
    let mut imports_seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut exports_seen: BTreeMap<&str, usize> = BTreeMap::new();
    for seed in 0..400 {
        let src = gen_world(seed);
        let (resolve, world) = load(&[src.as_str()]);
        let results = check_world(&resolve, world, &format!("seed {seed}:\n{src}"));
        for (scheme, imports, exports) in &results {
            assert_unique(&format!("seed {seed} [{scheme:?}]:\n{src}"), imports, exports);
        }
        let (_, imports, exports) = &results[0];
        for i in imports {
            let kind = match &i.item {
                ImportItem::Func { interface: None, .. } => "world func",
                ImportItem::Func { .. } => "interface func",
                ImportItem::ResourceDrop { exported: false, .. } => "drop",
                ImportItem::ResourceDrop { exported: true, .. } => "exported drop",
                ImportItem::ResourceNew { .. } => "new",
                ImportItem::ResourceRep { .. } => "rep",
                ImportItem::TaskReturn { .. } | ImportItem::AsyncValue { .. } | ImportItem::Builtin { .. } => {
                    panic!("seed {seed}: an async built-in in a sync world: {i:?}")
                }
            };
            *imports_seen.entry(kind).or_default() += 1;
        }
        for e in exports {
            let kind = match &e.item {
                ExportItem::Func { interface: None, .. } => "world func",
                ExportItem::Func { .. } => "interface func",
                ExportItem::PostReturn { .. } => "post-return",
                ExportItem::Dtor { .. } => "dtor",
                ExportItem::Memory | ExportItem::Realloc | ExportItem::Initialize => "abi",
                ExportItem::Callback { .. } => panic!("seed {seed}: a callback in a sync world: {e:?}"),
            };
            *exports_seen.entry(kind).or_default() += 1;
        }
    }
    for kind in ["world func", "interface func", "drop", "exported drop", "new", "rep"] {
        assert!(imports_seen.get(kind).copied().unwrap_or(0) > 20, "import kind {kind}: {imports_seen:?}");
    }
    for kind in ["world func", "interface func", "post-return", "dtor", "abi"] {
        assert!(exports_seen.get(kind).copied().unwrap_or(0) > 20, "export kind {kind}: {exports_seen:?}");
    }
}
