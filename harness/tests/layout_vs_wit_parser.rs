//! Differential test of layout and flattening against a second implementation: wit-parser's
//! `SizeAlign` (size, alignment, field and payload offsets, for 32- and 64-bit pointers) and
//! `Resolve::wasm_signature` (core signatures of imported and exported functions), on
//! arbitrary types printed as WIT and parsed back by wit-parser.

mod common;

use arbitrary::Unstructured;
use std::sync::Arc;
use wit_parser::abi::{AbiVariant, WasmType};
use wit_parser::{SizeAlign, Type, TypeDefKind};
use witness::reference::flatten::{Context, FlattenOpts, flatten_functype};
use witness::reference::layout::{alignment, elem_size, field_offsets, payload_offset};
use witness::reference::types::{CoreType, FuncType, InstanceId, PtrType, ResourceType, ValType, despecialize};
use witness::world::arbitrary::{TypeConfig, arbitrary_type};
use witness::world::print::WitPrinter;
use witness::world::wit::{Converter, Wit};

fn resource_r() -> ResourceType {
    ResourceType { id: 0, name: "r".into(), impl_instance: InstanceId(0) }
}

/// A WIT package with `root` as a type alias and functions over it.
fn package(t: &ValType) -> String {
    let mut p = WitPrinter::default();
    let root = p.expr(t);
    let many: Vec<String> = (0..17).map(|i| format!("p{i}: root")).collect();
    format!(
        "package t:t;\ninterface i {{\n  resource r;\n  {}\n  type root = {root};\n  one: func(p: root) -> root;\n  many: func({}) -> tuple<root, root>;\n}}\n",
        p.typedefs.join("\n  "),
        many.join(", ")
    )
}

fn core(t: &WasmType) -> CoreType {
    match t {
        WasmType::I32 | WasmType::Pointer | WasmType::Length => CoreType::I32,
        WasmType::I64 | WasmType::PointerOrI64 => CoreType::I64,
        WasmType::F32 => CoreType::F32,
        WasmType::F64 => CoreType::F64,
    }
}

fn check(seed: u64, t: &ValType) {
    let text = package(t);
    let wit = Wit::parse("gen.wit", &text).unwrap_or_else(|e| panic!("seed {seed}: wit-parser rejects\n{text}\n{e:?}"));
    let resolve = &wit.resolve;
    let root = wit.find_type("root").unwrap();
    let mut sa = SizeAlign::default();
    sa.fill(resolve);
    let ty = Type::Id(root);

    // The printed-and-parsed type converts back to the generated one.
    let conv = Converter::host_resources(resolve);
    let back = conv.type_id(root).unwrap();
    let r_id = conv.resource(wit.find_type("r").unwrap());
    assert_eq!(strip_resource_ids(&back, &r_id), *t, "seed {seed}: conversion\n{text}");

    for (pt, size, align) in [
        (PtrType::I32, sa.size(&ty).size_wasm32() as u64, sa.align(&ty).align_wasm32() as u64),
        (PtrType::I64, sa.size(&ty).size_wasm64() as u64, sa.align(&ty).align_wasm64() as u64),
    ] {
        assert_eq!(elem_size(t, pt), size, "seed {seed}: elem_size {pt:?}\n{text}");
        assert_eq!(alignment(t, pt), align, "seed {seed}: alignment {pt:?}\n{text}");
    }

    // Field offsets of records/tuples and the payload offset of variants.
    let mut def = &resolve.types[root].kind;
    while let TypeDefKind::Type(Type::Id(id)) = def {
        def = &resolve.types[*id].kind;
    }
    let offsets = |types: Vec<&Type>| -> Vec<(u64, u64)> {
        sa.field_offsets(types).into_iter().map(|(o, _)| (o.size_wasm32() as u64, o.size_wasm64() as u64)).collect()
    };
    let ours = |fields: &[witness::reference::types::FieldType]| -> Vec<(u64, u64)> {
        field_offsets(fields, PtrType::I32).into_iter().zip(field_offsets(fields, PtrType::I64)).collect()
    };
    match (despecialize(t).as_ref(), def) {
        (ValType::Record(fields), TypeDefKind::Record(r)) => {
            assert_eq!(
                ours(fields),
                offsets(r.fields.iter().map(|f| &f.ty).collect()),
                "seed {seed}: field offsets\n{text}"
            );
        }
        (ValType::Record(fields), TypeDefKind::Tuple(tu)) => {
            assert_eq!(ours(fields), offsets(tu.types.iter().collect()), "seed {seed}: tuple offsets\n{text}");
        }
        (ValType::Variant(cases), TypeDefKind::Variant(v)) => {
            let theirs = sa.payload_offset(v.tag(), v.cases.iter().map(|c| c.ty.as_ref()));
            assert_eq!(
                payload_offset(cases, PtrType::I32),
                theirs.size_wasm32() as u64,
                "seed {seed}: payload\n{text}"
            );
            assert_eq!(
                payload_offset(cases, PtrType::I64),
                theirs.size_wasm64() as u64,
                "seed {seed}: payload\n{text}"
            );
        }
        _ => {}
    }

    // Core signatures: 'lower' is a guest import, 'lift' a guest export.
    let iface = resolve.interfaces.iter().find(|(_, i)| i.name.as_deref() == Some("i")).unwrap().1;
    for name in ["one", "many"] {
        let f = &iface.functions[name];
        let ft: FuncType = conv.func_type(f).unwrap();
        for (variant, context) in [(AbiVariant::GuestImport, Context::Lower), (AbiVariant::GuestExport, Context::Lift)]
        {
            let theirs = resolve.wasm_signature(variant, f);
            let ours = flatten_functype(FlattenOpts::sync(PtrType::I32), &ft, context);
            let tp: Vec<CoreType> = theirs.params.iter().map(core).collect();
            let tr: Vec<CoreType> = theirs.results.iter().map(core).collect();
            assert_eq!((ours.params, ours.results), (tp, tr), "seed {seed}: {name} {context:?}\n{text}");
        }
    }
}

/// Resource identities differ between the generator and wit-parser; compare the rest.
fn strip_resource_ids(t: &ValType, parsed_r: &ResourceType) -> ValType {
    let fix = |rt: &ResourceType| {
        if rt == parsed_r { resource_r() } else { rt.clone() }
    };
    match t {
        ValType::Own(rt) => ValType::Own(fix(rt)),
        ValType::Borrow(rt) => ValType::Borrow(fix(rt)),
        ValType::List(e, l) => ValType::List(Arc::new(strip_resource_ids(e, parsed_r)), *l),
        ValType::Record(fs) => ValType::Record(
            fs.iter()
                .map(|f| witness::reference::types::FieldType {
                    label: f.label.clone(),
                    t: strip_resource_ids(&f.t, parsed_r),
                })
                .collect(),
        ),
        ValType::Tuple(ts) => ValType::Tuple(ts.iter().map(|t| strip_resource_ids(t, parsed_r)).collect()),
        ValType::Variant(cs) => ValType::Variant(
            cs.iter()
                .map(|c| witness::reference::types::CaseType {
                    label: c.label.clone(),
                    t: c.t.as_ref().map(|t| strip_resource_ids(t, parsed_r)),
                })
                .collect(),
        ),
        ValType::Option(t) => ValType::option(strip_resource_ids(t, parsed_r)),
        ValType::Result(o, e) => ValType::result(
            o.as_deref().map(|t| strip_resource_ids(t, parsed_r)),
            e.as_deref().map(|t| strip_resource_ids(t, parsed_r)),
        ),
        other => other.clone(),
    }
}

/// `f(seed, t)` for the arbitrary type (with resource `r`) of each of `n` seeds; nine in ten
/// seeds must give one.
fn for_arbitrary_types(n: u64, mut f: impl FnMut(u64, &ValType)) {
    let cfg = TypeConfig { resources: vec![resource_r()], ..TypeConfig::default() };
    let mut checked = 0;
    for seed in 0..n {
        let data = common::bytes(seed, 512);
        let mut u = Unstructured::new(&data);
        let Ok(t) = arbitrary_type(&mut u, &cfg) else {
            continue;
        };
        f(seed, &t);
        checked += 1;
    }
    assert!(checked as u64 > n * 9 / 10, "only {checked} of {n} seeds produced a type");
}

#[test]
fn layout_and_flattening_match_wit_parser_on_arbitrary_types() {
    for_arbitrary_types(common::cases(400), check);
}

#[test]
fn layout_matches_wit_parser_on_hand_picked_edges() {
    // Discriminant steps (256/257 cases), flags steps, and nested padding.
    let many = |n: usize| ValType::Enum((0..n).map(|i| format!("e{i}")).collect());
    let flags = |n: usize| ValType::Flags((0..n).map(|i| format!("g{i}")).collect());
    let cases = [
        many(1),
        many(256),
        many(257),
        flags(8),
        flags(9),
        flags(16),
        flags(17),
        flags(32),
        ValType::Tuple(Arc::new([ValType::U8, ValType::option(ValType::U64), ValType::U16])),
        ValType::result(Some(ValType::F32), Some(ValType::String)),
        ValType::variant([("a", Some(ValType::F32)), ("b", Some(ValType::U64)), ("c", None)]),
        ValType::list(ValType::Tuple(Arc::new([ValType::U8, ValType::U32]))),
    ];
    for (i, t) in cases.iter().enumerate() {
        check(10_000 + i as u64, t);
    }
}

/// 🔀 A WIT package of async functions over `root` (its type alias), streams and futures of it.
fn async_package(t: &ValType) -> String {
    let mut p = WitPrinter::default();
    let root = p.expr(t);
    let four: Vec<String> = (0..5).map(|i| format!("p{i}: root")).collect();
    format!(
        "package t:t;\ninterface i {{\n  resource r;\n  {}\n  type root = {root};\n  \
         one: async func(p: root) -> root;\n  none: async func();\n  five: async func({}) -> tuple<root, root>;\n  \
         ends: async func(s: stream<root>, f: future, e: error-context) -> future<root>;\n  \
         sync-ends: func(s: stream, f: future<root>) -> stream<root>;\n}}\n",
        p.typedefs.join("\n  "),
        four.join(", ")
    )
}

#[test]
fn async_flattening_matches_wit_parser() {
    // flatten_functype with opts.async_ (definitions.py): 'lower' is wit-parser's
    // GuestImportAsync, 'lift' with a callback GuestExportAsync, without GuestExportAsyncStackful;
    // a sync function passing stream and future ends flattens them as i32 handles.
    for_arbitrary_types(common::cases(200), |seed, t| {
        let text = async_package(t);
        let wit =
            Wit::parse("gen.wit", &text).unwrap_or_else(|e| panic!("seed {seed}: wit-parser rejects\n{text}\n{e:?}"));
        let resolve = &wit.resolve;
        let conv = Converter::with_async(resolve);
        let iface = resolve.interfaces.iter().find(|(_, i)| i.name.as_deref() == Some("i")).unwrap().1;
        for (name, f) in &iface.functions {
            let ft = conv.func_type(f).unwrap_or_else(|e| panic!("seed {seed}: {name}: {e:#}"));
            let variants: &[(AbiVariant, Context, FlattenOpts)] = if f.kind.is_async() {
                &[
                    (AbiVariant::GuestImportAsync, Context::Lower, FlattenOpts::async_(PtrType::I32, false)),
                    (AbiVariant::GuestExportAsync, Context::Lift, FlattenOpts::async_(PtrType::I32, true)),
                    (AbiVariant::GuestExportAsyncStackful, Context::Lift, FlattenOpts::async_(PtrType::I32, false)),
                ]
            } else {
                &[
                    (AbiVariant::GuestImport, Context::Lower, FlattenOpts::sync(PtrType::I32)),
                    (AbiVariant::GuestExport, Context::Lift, FlattenOpts::sync(PtrType::I32)),
                ]
            };
            for (variant, context, opts) in variants {
                let theirs = resolve.wasm_signature(*variant, f);
                let ours = flatten_functype(*opts, &ft, *context);
                let tp: Vec<CoreType> = theirs.params.iter().map(core).collect();
                let tr: Vec<CoreType> = theirs.results.iter().map(core).collect();
                assert_eq!((ours.params, ours.results), (tp, tr), "seed {seed}: {name} {variant:?}\n{text}");
            }
        }
    });
}
