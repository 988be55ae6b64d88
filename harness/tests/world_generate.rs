//! Tests of `witness::world::generate`: every generated world parses with wit-parser and has
//! the world `w`; over many seeds every feature of the generator shows up in a good fraction of
//! worlds (measured on wit-parser's view of the world, not on the generator's own notes); every
//! function type converts to valid reference types; the core signature and the core names of
//! both schemes are computed, and the names agree with wit-parser's; and no input panics.

mod common;

use std::collections::BTreeMap;

use arbitrary::Unstructured;
use wit_parser::abi::AbiVariant;
use wit_parser::{
    Function, FunctionKind, Handle, InterfaceId, LiftLowerAbi, ManglingAndAbi, Resolve, ResourceIntrinsic, Type,
    TypeDefKind, TypeId, TypeOwner, WasmExport, WasmExportKind, WasmImport, WorldId, WorldItem, WorldKey,
};
use witness::encode::names::{ExportItem, ImportItem, NameScheme, world_exports, world_imports};
use witness::encode::signature::core_signature;
use witness::reference::flatten::{
    Context, FlattenOpts, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS, flatten_functype, flatten_types,
};
use witness::reference::types::{CoreType, FuncType, PtrType, ValType};
use witness::reference::validate::validate_type;
use witness::world::generate::{GeneratedWorld, WorldConfig, arbitrary_world};
use witness::world::wit::Converter;

const SEEDS: u64 = 500;
const BYTES: usize = 8192;

fn generate(seed: u64, cfg: &WorldConfig) -> GeneratedWorld {
    let data = common::bytes(seed, BYTES);
    let mut u = Unstructured::new(&data);
    arbitrary_world(&mut u, cfg).unwrap_or_else(|e| panic!("seed {seed}: {e}"))
}

/// Parses the WIT and selects `w`; panics with the text on failure.
fn load(context: &str, wit: &str) -> (Resolve, WorldId) {
    let mut resolve = Resolve::default();
    let pkg = match resolve.push_str("generated.wit", wit) {
        Ok(pkg) => pkg,
        Err(e) => panic!("{context}: wit-parser rejects:\n{e:#}\n{wit}"),
    };
    let world =
        resolve.select_world(&[pkg], Some("w")).unwrap_or_else(|e| panic!("{context}: no world `w`: {e:#}\n{wit}"));
    (resolve, world)
}

/// One function of a world as wit-parser sees it.
struct Func<'r> {
    import: bool,
    key: Option<&'r WorldKey>,
    interface: Option<InterfaceId>,
    func: &'r Function,
}

fn functions(resolve: &Resolve, world: WorldId) -> Vec<Func<'_>> {
    let w = &resolve.worlds[world];
    let mut out = vec![];
    for (import, items) in [(true, &w.imports), (false, &w.exports)] {
        for (key, item) in items {
            match item {
                WorldItem::Function(func) => out.push(Func { import, key: None, interface: None, func }),
                WorldItem::Interface { id, .. } => {
                    for func in resolve.interfaces[*id].functions.values() {
                        out.push(Func { import, key: Some(key), interface: Some(*id), func })
                    }
                }
                WorldItem::Type { .. } => {}
            }
        }
    }
    out
}

/// The interfaces a world imports (`true`) or exports (`false`).
fn interfaces(resolve: &Resolve, world: WorldId, import: bool) -> Vec<(&WorldKey, InterfaceId)> {
    let w = &resolve.worlds[world];
    let items = if import { &w.imports } else { &w.exports };
    items
        .iter()
        .filter_map(|(k, item)| match item {
            WorldItem::Interface { id, .. } => Some((k, *id)),
            _ => None,
        })
        .collect()
}

fn has_resource(resolve: &Resolve, iface: InterfaceId) -> bool {
    resolve.types.iter().any(|(_, t)| t.owner == TypeOwner::Interface(iface) && matches!(t.kind, TypeDefKind::Resource))
}

fn any_type(t: &ValType, p: &dyn Fn(&ValType) -> bool) -> bool {
    p(t) || match t {
        ValType::List(e, _) | ValType::Option(e) => any_type(e, p),
        ValType::Map(k, v) => any_type(k, p) || any_type(v, p),
        ValType::Record(fs) => fs.iter().any(|f| any_type(&f.t, p)),
        ValType::Tuple(ts) => ts.iter().any(|t| any_type(t, p)),
        ValType::Variant(cs) => cs.iter().filter_map(|c| c.t.as_ref()).any(|t| any_type(t, p)),
        ValType::Result(ok, err) => [ok, err].into_iter().filter_map(|t| t.as_deref()).any(|t| any_type(t, p)),
        _ => false,
    }
}

fn depth(t: &ValType) -> u32 {
    let sub = match t {
        ValType::List(e, _) | ValType::Option(e) => depth(e),
        ValType::Map(k, v) => depth(k).max(depth(v)),
        ValType::Record(fs) => fs.iter().map(|f| depth(&f.t)).max().unwrap_or(0),
        ValType::Tuple(ts) => ts.iter().map(depth).max().unwrap_or(0),
        ValType::Variant(cs) => cs.iter().filter_map(|c| c.t.as_ref()).map(depth).max().unwrap_or(0),
        ValType::Result(ok, err) => [ok, err].into_iter().filter_map(|t| t.as_deref()).map(depth).max().unwrap_or(0),
        _ => return 0,
    };
    sub + 1
}

/// Every type id a wit-parser type reaches (through aliases, handles and compound types).
fn reached(resolve: &Resolve, t: &Type, out: &mut Vec<TypeId>) {
    let Type::Id(id) = t else { return };
    if out.contains(id) {
        return;
    }
    out.push(*id);
    let mut go = |t: &Type| reached(resolve, t, out);
    match &resolve.types[*id].kind {
        TypeDefKind::Record(r) => r.fields.iter().for_each(|f| go(&f.ty)),
        TypeDefKind::Tuple(t) => t.types.iter().for_each(go),
        TypeDefKind::Variant(v) => v.cases.iter().filter_map(|c| c.ty.as_ref()).for_each(go),
        TypeDefKind::Option(t) | TypeDefKind::List(t) | TypeDefKind::Type(t) => go(t),
        TypeDefKind::Result(r) => r.ok.iter().chain(&r.err).for_each(go),
        TypeDefKind::Handle(Handle::Own(r) | Handle::Borrow(r)) => go(&Type::Id(*r)),
        _ => {}
    }
}

/// Follow `type a = b` aliases (a `use` makes one) to the defining type.
fn root(resolve: &Resolve, mut id: TypeId) -> TypeId {
    while let TypeDefKind::Type(Type::Id(next)) = resolve.types[id].kind {
        id = next;
    }
    id
}

/// Which type kinds to tally, with their predicates.
/// A type kind's name and whether a type is of that kind.
type TypeFeature = (&'static str, fn(&ValType) -> bool);

const TYPE_FEATURES: &[TypeFeature] = &[
    ("type bool", |t| matches!(t, ValType::Bool)),
    ("type s8/u8/s16/u16", |t| matches!(t, ValType::S8 | ValType::U8 | ValType::S16 | ValType::U16)),
    ("type s32/u32", |t| matches!(t, ValType::S32 | ValType::U32)),
    ("type s64/u64", |t| matches!(t, ValType::S64 | ValType::U64)),
    ("type f32/f64", |t| matches!(t, ValType::F32 | ValType::F64)),
    ("type char", |t| matches!(t, ValType::Char)),
    ("type string", |t| matches!(t, ValType::String)),
    ("type list", |t| matches!(t, ValType::List(_, None))),
    ("type record", |t| matches!(t, ValType::Record(_))),
    ("type tuple", |t| matches!(t, ValType::Tuple(_))),
    ("type variant", |t| matches!(t, ValType::Variant(_))),
    ("type enum", |t| matches!(t, ValType::Enum(_))),
    ("type option", |t| matches!(t, ValType::Option(_))),
    ("type result", |t| matches!(t, ValType::Result(..))),
    ("type flags", |t| matches!(t, ValType::Flags(_))),
    ("type map", |t| matches!(t, ValType::Map(..))),
    ("type own (anywhere)", |t| matches!(t, ValType::Own(_))),
];

/// The features one world shows, measured through wit-parser and the reference.
fn features(resolve: &Resolve, world: WorldId) -> Vec<&'static str> {
    let mut out = vec![];
    let mut add = |f: &'static str| {
        if !out.contains(&f) {
            out.push(f);
        }
    };
    let conv = Converter::host_resources(resolve);
    let pkg = resolve.worlds[world].package.expect("world has a package");
    add(if resolve.packages[pkg].name.version.is_some() { "versioned package" } else { "unversioned package" });
    for f in functions(resolve, world) {
        add(match (f.interface.is_some(), f.import) {
            (true, true) => "imported interface function",
            (true, false) => "exported interface function",
            (false, true) => "world-level import",
            (false, false) => "world-level export",
        });
        match f.func.kind {
            FunctionKind::Constructor(_) => add("constructor"),
            FunctionKind::Method(_) => add("method"),
            FunctionKind::Static(_) => add("static function"),
            FunctionKind::Freestanding => {}
            _ => panic!("unexpected function kind {:?}", f.func.kind),
        }
        let ft = conv.func_type(f.func).expect("converts");
        let flat = flatten_functype(FlattenOpts::sync(PtrType::I32), &ft, Context::Lift);
        if flatten_types(&ft.param_types(), PtrType::I32).len() > MAX_FLAT_PARAMS {
            assert_eq!(flat.params, [CoreType::I32], "{}", f.func.name);
            add("spilled params");
        }
        if flatten_types(&ft.result_type(), PtrType::I32).len() > MAX_FLAT_RESULTS {
            assert_eq!(flat.results, [CoreType::I32], "{}", f.func.name);
            add("spilled results");
        }
        // What the signature reaches through a `use` (an alias of another interface's type).
        let mut ids = vec![];
        for t in f.func.params.iter().map(|p| &p.ty).chain(&f.func.result) {
            reached(resolve, t, &mut ids);
        }
        for &id in &ids {
            if !matches!(resolve.types[id].kind, TypeDefKind::Type(Type::Id(_))) {
                continue;
            }
            let def = &resolve.types[root(resolve, id)];
            if matches!(def.kind, TypeDefKind::Resource) {
                add("resource used from another interface");
                if matches!(f.func.kind, FunctionKind::Method(_) | FunctionKind::Constructor(_)) {
                    add("resource member taking or returning a used resource");
                }
            } else {
                add("type used from another interface");
            }
            if let TypeOwner::Interface(i) = def.owner
                && resolve.interfaces[i].package != Some(pkg)
            {
                add("type or resource from a dependency package");
            }
        }
        for (name, t) in &ft.params {
            if any_type(t, &|t| matches!(t, ValType::Own(_))) {
                add("own param");
            }
            if name != "self" && any_type(t, &|t| matches!(t, ValType::Borrow(_))) {
                add("borrow param (not self)");
            }
        }
        for t in ft.params.iter().map(|(_, t)| t).chain(&ft.result) {
            for (feature, p) in TYPE_FEATURES {
                if any_type(t, p) {
                    add(feature);
                }
            }
            if depth(t) >= 3 {
                add("type nested 3 deep");
            }
        }
    }
    let imported = interfaces(resolve, world, true);
    let exported = interfaces(resolve, world, false);
    if imported.iter().any(|(_, i)| exported.iter().any(|(_, e)| e == i)) {
        add("interface imported and exported");
    }
    if exported.iter().any(|(_, e)| resolve.interface_direct_deps(*e).any(|d| !exported.iter().any(|(_, x)| *x == d))) {
        add("exported interface using an imported one");
    }
    if resolve.worlds[world].imports.values().any(|item| {
        matches!(item, WorldItem::Type { id, .. } if matches!(resolve.types[*id].kind, TypeDefKind::Type(Type::Id(_))))
    }) {
        add("world-level use");
    }
    let res_in = |l: &[(&WorldKey, InterfaceId)]| l.iter().any(|(_, i)| has_resource(resolve, *i));
    if res_in(&imported) {
        add("resource in imported interface");
    }
    if res_in(&exported) {
        add("resource in exported interface");
    }
    if res_in(&imported) && res_in(&exported) {
        add("resources in imported and exported interfaces");
    }
    if resolve.worlds[world].imports.values().any(|item| {
        matches!(item, WorldItem::Type { id, .. }
            if matches!(resolve.types[*id].kind, TypeDefKind::Resource))
    }) {
        add("world-level resource");
    }
    out
}

#[test]
fn generated_worlds_parse_and_cover_every_feature() {
    let cfg = WorldConfig::default();
    let mut tally: BTreeMap<&str, u64> = BTreeMap::new();
    for feature in [
        "imported interface function",
        "exported interface function",
        "world-level import",
        "world-level export",
        "interface imported and exported",
        "spilled params",
        "spilled results",
        "constructor",
        "method",
        "static function",
        "own param",
        "borrow param (not self)",
        "resource in imported interface",
        "resource in exported interface",
        "resources in imported and exported interfaces",
        "world-level resource",
        "versioned package",
        "unversioned package",
        "type nested 3 deep",
        "resource used from another interface",
        "resource member taking or returning a used resource",
        "type used from another interface",
        "type or resource from a dependency package",
        "exported interface using an imported one",
        "world-level use",
    ]
    .into_iter()
    .chain(TYPE_FEATURES.iter().map(|(f, _)| *f))
    {
        tally.insert(feature, 0);
    }
    for seed in 0..SEEDS {
        let g = generate(seed, &cfg);
        let (resolve, world) = load(&format!("seed {seed}"), &g.wit);
        assert!(!functions(&resolve, world).is_empty(), "seed {seed}: world without functions\n{}", g.wit);
        for f in features(&resolve, world) {
            *tally.get_mut(f).unwrap_or_else(|| panic!("untallied {f}")) += 1;
        }
    }
    eprintln!("feature tally over {SEEDS} worlds:");
    for (f, n) in &tally {
        eprintln!("  {n:4}  {f}");
    }
    let rare: Vec<_> = tally.iter().filter(|(_, n)| **n * 20 < SEEDS).collect();
    assert!(rare.is_empty(), "features in fewer than 5% of worlds: {rare:?}");
}

#[test]
fn function_types_convert_and_validate() {
    let cfg = WorldConfig::default();
    for seed in 0..SEEDS {
        let g = generate(seed, &cfg);
        let (resolve, world) = load(&format!("seed {seed}"), &g.wit);
        let conv = Converter::host_resources(&resolve);
        for f in functions(&resolve, world) {
            let ft = conv.func_type(f.func).unwrap_or_else(|e| panic!("seed {seed}: {e:#}\n{}", g.wit));
            for t in ft.params.iter().map(|(_, t)| t).chain(&ft.result) {
                if let Err(e) = validate_type(t) {
                    panic!("seed {seed}: {}: {e}: {t:?}\n{}", f.func.name, g.wit);
                }
            }
            if let Some(r) = &ft.result {
                assert!(!any_type(r, &|t| matches!(t, ValType::Borrow(_))), "seed {seed}: borrow in a result");
            }
            // wit-parser's own flattening agrees on which sides spill.
            let ours = |context| flatten_functype(FlattenOpts::sync(PtrType::I32), &ft, context);
            let spill_params = flatten_types(&ft.param_types(), PtrType::I32).len() > 16;
            let spill_results = flatten_types(&ft.result_type(), PtrType::I32).len() > 1;
            for (variant, context) in
                [(AbiVariant::GuestImport, Context::Lower), (AbiVariant::GuestExport, Context::Lift)]
            {
                let theirs = resolve.wasm_signature(variant, f.func);
                let what = format!("seed {seed}: {} {variant:?}", f.func.name);
                assert_eq!(theirs.indirect_params, spill_params, "{what}");
                assert_eq!(theirs.retptr, spill_results, "{what}");
                let ours = ours(context);
                assert_eq!(ours.params.len(), theirs.params.len(), "{what}");
                assert_eq!(ours.results.len(), theirs.results.len(), "{what}");
            }
        }
    }
}

const MANGLINGS: [(NameScheme, ManglingAndAbi); 2] = [
    (NameScheme::Standard, ManglingAndAbi::Standard32),
    (NameScheme::Legacy, ManglingAndAbi::Legacy(LiftLowerAbi::Sync)),
];

#[test]
fn core_signatures_and_names_agree_with_wit_parser() {
    let cfg = WorldConfig::default();
    for seed in 0..SEEDS {
        let g = generate(seed, &cfg);
        let (resolve, world) = load(&format!("seed {seed}"), &g.wit);
        for (scheme, mangling) in MANGLINGS {
            let what = format!("seed {seed} {scheme:?}");
            if let Err(e) = core_signature(&resolve, world, scheme) {
                panic!("{what}: core_signature fails: {e:#}\n{}", g.wit);
            }
            let imports = world_imports(&resolve, world, scheme);
            let exports = world_exports(&resolve, world, scheme);
            for f in functions(&resolve, world) {
                if f.import {
                    let theirs =
                        resolve.wasm_import_name(mangling, WasmImport::Func { interface: f.key, func: f.func });
                    let ours: Vec<_> = imports
                        .iter()
                        .filter(|i| i.item == ImportItem::Func { interface: f.interface, func: f.func.name.clone() })
                        .map(|i| (i.module.clone(), i.name.clone()))
                        .collect();
                    assert_eq!(ours, [theirs], "{what}: import {}\n{}", f.func.name, g.wit);
                } else {
                    for post_return in [false, true] {
                        let kind = || {
                            if post_return { WasmExportKind::PostReturn } else { WasmExportKind::Normal }
                        };
                        let theirs = resolve.wasm_export_name(
                            mangling,
                            WasmExport::Func { interface: f.key, func: f.func, kind: kind() },
                        );
                        let item = match post_return {
                            false => ExportItem::Func { interface: f.interface, func: f.func.name.clone() },
                            true => ExportItem::PostReturn { interface: f.interface, func: f.func.name.clone() },
                        };
                        let ours: Vec<_> = exports.iter().filter(|e| e.item == item).map(|e| e.name.clone()).collect();
                        assert_eq!(
                            ours,
                            [theirs],
                            "{what}: export {} (post-return: {post_return})\n{}",
                            f.func.name,
                            g.wit
                        );
                    }
                }
            }
            // Resource intrinsics and destructors: wit-parser names them without panicking.
            for import in [true, false] {
                for (key, iface) in interfaces(&resolve, world, import) {
                    for (_, &id) in &resolve.interfaces[iface].types {
                        if !matches!(resolve.types[id].kind, TypeDefKind::Resource) {
                            continue;
                        }
                        let intrinsics = if import {
                            vec![ResourceIntrinsic::ImportedDrop]
                        } else {
                            vec![
                                ResourceIntrinsic::ExportedDrop,
                                ResourceIntrinsic::ExportedNew,
                                ResourceIntrinsic::ExportedRep,
                            ]
                        };
                        for intrinsic in intrinsics {
                            resolve.wasm_import_name(
                                mangling,
                                WasmImport::ResourceIntrinsic { interface: Some(key), resource: id, intrinsic },
                            );
                        }
                        if !import {
                            resolve
                                .wasm_export_name(mangling, WasmExport::ResourceDtor { interface: key, resource: id });
                        }
                    }
                }
            }
        }
    }
}

/// Flat param and result counts of every function of a generated world.
fn flat_counts(resolve: &Resolve, world: WorldId) -> Vec<(String, FuncType, usize, usize)> {
    let conv = Converter::host_resources(resolve);
    functions(resolve, world)
        .into_iter()
        .map(|f| {
            let ft = conv.func_type(f.func).expect("converts");
            let p = flatten_types(&ft.param_types(), PtrType::I32).len();
            let r = flatten_types(&ft.result_type(), PtrType::I32).len();
            (f.func.name.clone(), ft, p, r)
        })
        .collect()
}

#[test]
fn knobs_are_respected() {
    // Forced spills: every function spills its params, every one but constructors its results.
    let always = WorldConfig { spill_params_prob: (1, 1), spill_results_prob: (1, 1), ..WorldConfig::default() };
    for seed in 0..100 {
        let g = generate(seed, &always);
        let (resolve, world) = load(&format!("always-spill seed {seed}"), &g.wit);
        for (name, _, p, r) in flat_counts(&resolve, world) {
            assert!(p > MAX_FLAT_PARAMS, "seed {seed}: {name}: {p} flat params");
            if !name.starts_with("[constructor]") {
                assert!(r > MAX_FLAT_RESULTS, "seed {seed}: {name}: {r} flat results");
            }
        }
    }
    // No params, no spills, no resources: every function has no params.
    let never = WorldConfig { max_params: 0, spill_params_prob: (0, 1), resources: false, ..WorldConfig::default() };
    for seed in 0..100 {
        let g = generate(seed, &never);
        assert!(!g.wit.contains("resource"), "seed {seed}\n{}", g.wit);
        let (resolve, world) = load(&format!("no-params seed {seed}"), &g.wit);
        for (name, ft, _, _) in flat_counts(&resolve, world) {
            assert!(ft.params.is_empty(), "seed {seed}: {name}");
        }
    }
    // Nothing allowed: still one function, a world-level import.
    let empty = WorldConfig { max_interfaces: 0, max_world_funcs: 0, resources: false, ..WorldConfig::default() };
    for seed in 0..20 {
        let g = generate(seed, &empty);
        let (resolve, world) = load(&format!("empty seed {seed}"), &g.wit);
        let funcs = functions(&resolve, world);
        assert_eq!(funcs.len(), 1, "{}", g.wit);
        assert!(funcs[0].import && funcs[0].interface.is_none(), "{}", g.wit);
    }
    // Shallow types: max_depth 0 gives only scalars, strings and handles (spills add
    // depth-1 records and tuples, results a depth-1 wrapper).
    let flat = WorldConfig {
        spill_params_prob: (0, 1),
        spill_results_prob: (0, 1),
        type_config: witness::world::arbitrary::TypeConfig { max_depth: 0, ..Default::default() },
        ..WorldConfig::default()
    };
    for seed in 0..100 {
        let g = generate(seed, &flat);
        let (resolve, world) = load(&format!("flat seed {seed}"), &g.wit);
        for (name, ft, _, _) in flat_counts(&resolve, world) {
            for t in ft.params.iter().map(|(_, t)| t).chain(&ft.result) {
                assert_eq!(depth(t), 0, "seed {seed}: {name}: {t:?}");
            }
        }
    }
}

#[test]
fn generation_is_deterministic() {
    let cfg = WorldConfig::default();
    for seed in 0..20 {
        assert_eq!(generate(seed, &cfg).wit, generate(seed, &cfg).wit);
    }
}

#[test]
fn any_bytes_give_a_world_or_an_error_never_a_panic() {
    let cfg = WorldConfig::default();
    let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0; 64], vec![0xff; 4096], vec![0x80; 512]];
    for seed in 0..300 {
        inputs.push(common::bytes(seed + 10_000, (seed as usize * 7) % 300));
    }
    for (i, data) in inputs.iter().enumerate() {
        let mut u = Unstructured::new(data);
        if let Ok(g) = arbitrary_world(&mut u, &cfg) {
            let (resolve, world) = load(&format!("input {i}"), &g.wit);
            assert!(!functions(&resolve, world).is_empty(), "input {i}");
        }
    }
}

#[test]
fn generated_labels_are_never_in_sorted_order() {
    // Fields, cases and flags are laid out in declaration order; an implementation that sorts
    // them by name must diverge, so no generated list of labels may be sorted already.
    let cfg = WorldConfig::default();
    let mut lists = 0;
    for seed in 0..SEEDS {
        let g = generate(seed, &cfg);
        let (resolve, _) = load(&format!("seed {seed}"), &g.wit);
        for (_, def) in resolve.types.iter() {
            let names: Vec<&str> = match &def.kind {
                TypeDefKind::Record(r) => r.fields.iter().map(|f| f.name.as_str()).collect(),
                TypeDefKind::Variant(v) => v.cases.iter().map(|c| c.name.as_str()).collect(),
                TypeDefKind::Enum(e) => e.cases.iter().map(|c| c.name.as_str()).collect(),
                TypeDefKind::Flags(f) => f.flags.iter().map(|f| f.name.as_str()).collect(),
                _ => continue,
            };
            if names.len() < 2 {
                continue;
            }
            lists += 1;
            assert!(!names.windows(2).all(|w| w[0] < w[1]), "seed {seed}: {names:?}\n{}", g.wit);
        }
    }
    assert!(lists > 1000, "only {lists} label lists");
}
