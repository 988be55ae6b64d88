//! 🔀 The core-module type of async worlds (`witness abi signature --names legacy`) against
//! two other implementations: every name is the one wit-parser's `wasm_import_name` /
//! `wasm_export_name` give (legacy mangling, async ABI for `async func`s), and a core module with
//! exactly these imports and exports, each of its listed type, is accepted by wit-component,
//! which checks the name and the type of every built-in it knows, and its component by Wasmtime
//! with component-model async (no 🚝 feature).

mod common;

use wasm_encoder::{
    CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection, ImportSection, MemorySection,
    MemoryType, Module, TypeSection, ValType as Wasm,
};
use wit_parser::{
    LiftLowerAbi, ManglingAndAbi, Resolve, TypeDefKind, WasmExport, WasmExportKind, WasmImport, WorldId, WorldItem,
};
use witness::encode::names::{ExportItem, ImportItem, NameScheme, world_exports, world_imports};
use witness::encode::signature::{CoreSignature, async_core_signature};
use witness::reference::flatten::CoreFuncType;
use witness::reference::types::CoreType;

/// An async world shaped like WASI 0.3's (written for witness): async imports and exports,
/// streams and futures in params and results, resources with async methods, an exported
/// interface built on imported types.
const WORLD: &str = r#"
package t:feed@0.1.0;

interface types {
  resource body {
    constructor(contents: option<stream<u8>>, trailers: future<result<list<string>, u32>>);
    consume: static func(this: body) -> tuple<stream<u8>, future<result<_, u32>>>;
    size: async func() -> u64;
  }
  read-all: async func(s: stream<u8>) -> result<list<u8>, string>;
}

interface handler {
  use types.{body};
  handle: async func(request: body) -> result<body, string>;
  ping: func(n: u32) -> u32;
}

world feed {
  import types;
  import now: async func() -> u64;
  import log: func(message: string);
  export handler;
  export tick: async func(ticks: stream<u32>) -> future<u32>;
}
"#;

fn load() -> (Resolve, WorldId) {
    let mut resolve = Resolve::default();
    let pkg = resolve.push_str("feed.wit", WORLD).unwrap();
    let world = resolve.select_world(&[pkg], Some("feed")).unwrap();
    (resolve, world)
}

fn mangling(asynchronous: bool) -> ManglingAndAbi {
    ManglingAndAbi::Legacy(if asynchronous { LiftLowerAbi::AsyncCallback } else { LiftLowerAbi::Sync })
}

#[test]
fn async_names_are_wit_parsers() {
    let (resolve, world) = load();
    let w = &resolve.worlds[world];
    // The world key and function of each (interface, function name), on either side.
    let find = |interface: Option<wit_parser::InterfaceId>, name: &str, import: bool| {
        let items = if import { &w.imports } else { &w.exports };
        items
            .iter()
            .find_map(|(key, item)| match (item, interface) {
                (WorldItem::Function(f), None) if f.name == name => Some((None, f)),
                (WorldItem::Interface { id, .. }, Some(i)) if *id == i => {
                    resolve.interfaces[i].functions.get(name).map(|f| (Some(key), f))
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no function {name}"))
    };
    let mut checked = (0, 0, 0);
    for imp in world_imports(&resolve, world, NameScheme::Legacy) {
        let theirs = match &imp.item {
            ImportItem::Func { interface, func } => {
                let (key, f) = find(*interface, func, true);
                resolve.wasm_import_name(mangling(f.kind.is_async()), WasmImport::Func { interface: key, func: f })
            }
            ImportItem::AsyncValue { interface, func, stream, index, exported, .. } => {
                let (key, f) = find(*interface, func, !exported);
                let id = f.find_futures_and_streams(&resolve)[*index];
                assert_eq!(matches!(resolve.types[id].kind, TypeDefKind::Stream(_)), *stream);
                let ty = Some(id);
                let ImportItem::AsyncValue { op, .. } = &imp.item else { unreachable!() };
                checked.1 += 1;
                let (interface, exported) = (key, *exported);
                if *stream {
                    let intrinsic = stream_op(*op);
                    let async_ = op.async_lowered();
                    resolve.wasm_import_name(
                        mangling(true),
                        WasmImport::StreamIntrinsic { interface, func: f, ty, intrinsic, exported, async_ },
                    )
                } else {
                    let intrinsic = future_op(*op);
                    let async_ = op.async_lowered();
                    resolve.wasm_import_name(
                        mangling(true),
                        WasmImport::FutureIntrinsic { interface, func: f, ty, intrinsic, exported, async_ },
                    )
                }
            }
            // wit-parser does not name these; wit-component checks them below.
            ImportItem::TaskReturn { .. } | ImportItem::Builtin { .. } => {
                checked.2 += 1;
                continue;
            }
            _ => continue,
        };
        assert_eq!((imp.module.clone(), imp.name.clone()), theirs, "{:?}", imp.item);
        checked.0 += 1;
    }
    for exp in world_exports(&resolve, world, NameScheme::Legacy) {
        let (interface, func, kind) = match &exp.item {
            ExportItem::Func { interface, func } => (interface, func, WasmExportKind::Normal),
            ExportItem::Callback { interface, func } => (interface, func, WasmExportKind::Callback),
            ExportItem::PostReturn { interface, func } => (interface, func, WasmExportKind::PostReturn),
            _ => continue,
        };
        let (key, f) = find(*interface, func, false);
        let theirs =
            resolve.wasm_export_name(mangling(f.kind.is_async()), WasmExport::Func { interface: key, func: f, kind });
        assert_eq!(exp.name, theirs);
        checked.0 += 1;
    }
    // Function names; future and stream built-ins, 7 each for the 5 future and stream types of
    // the imported functions' signatures and the 2 of `tick`'s; the rest, which wit-parser does
    // not name (task.return of the 2 async exports, `handle` and `tick`; the 16 other built-ins).
    assert_eq!(checked.1, 7 * 7, "{checked:?}");
    assert!(checked.0 > 10 && checked.2 == 2 + 16, "{checked:?}");
}

fn stream_op(op: witness::encode::names::AsyncValueOp) -> wit_parser::StreamIntrinsic {
    use wit_parser::StreamIntrinsic as S;
    use witness::encode::names::AsyncValueOp as O;
    match op {
        O::New => S::New,
        O::Read => S::Read,
        O::Write => S::Write,
        O::CancelRead => S::CancelRead,
        O::CancelWrite => S::CancelWrite,
        O::DropReadable => S::DropReadable,
        O::DropWritable => S::DropWritable,
    }
}

fn future_op(op: witness::encode::names::AsyncValueOp) -> wit_parser::FutureIntrinsic {
    use wit_parser::FutureIntrinsic as F;
    use witness::encode::names::AsyncValueOp as O;
    match op {
        O::New => F::New,
        O::Read => F::Read,
        O::Write => F::Write,
        O::CancelRead => F::CancelRead,
        O::CancelWrite => F::CancelWrite,
        O::DropReadable => F::DropReadable,
        O::DropWritable => F::DropWritable,
    }
}

fn wasm(t: &CoreType) -> Wasm {
    match t {
        CoreType::I32 => Wasm::I32,
        CoreType::I64 => Wasm::I64,
        CoreType::F32 => Wasm::F32,
        CoreType::F64 => Wasm::F64,
    }
}

/// A core module importing every import of `sig` and exporting every function export (each
/// body `unreachable`), the memory and realloc.
fn module_of(sig: &CoreSignature) -> Vec<u8> {
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    let mut funcs = FunctionSection::new();
    let mut exports = ExportSection::new();
    let mut code = CodeSection::new();
    let mut ty = |t: &CoreFuncType| {
        let index = types.len();
        types.ty().function(t.params.iter().map(wasm), t.results.iter().map(wasm));
        index
    };
    for imp in &sig.imports {
        imports.import(&imp.module, &imp.name, EntityType::Function(ty(&imp.ty)));
    }
    let mut index = sig.imports.len() as u32;
    let mut memory = MemorySection::new();
    for exp in &sig.exports {
        match (&exp.ty, exp.kind) {
            (_, "memory") => {
                memory.memory(MemoryType {
                    minimum: 1,
                    maximum: None,
                    memory64: false,
                    shared: false,
                    page_size_log2: None,
                });
                exports.export(&exp.name, ExportKind::Memory, 0);
            }
            (Some(t), kind) if kind != "initialize" => {
                funcs.function(ty(t));
                let mut body = Function::new([]);
                body.instructions().unreachable().end();
                code.function(&body);
                exports.export(&exp.name, ExportKind::Func, index);
                index += 1;
            }
            _ => {}
        }
    }
    let mut module = Module::new();
    module.section(&types).section(&imports).section(&funcs).section(&memory).section(&exports).section(&code);
    module.finish()
}

#[test]
fn wit_component_accepts_a_module_of_the_async_signature() {
    let (resolve, world) = load();
    let sig = async_core_signature(&resolve, world, NameScheme::Legacy).unwrap();
    assert!(sig.imports.iter().any(|i| i.kind == "task-return") && sig.exports.iter().any(|e| e.kind == "callback"));
    let core = module_of(&sig);
    witness::encode::component::componentize(&resolve, world, &core, Default::default(), NameScheme::Legacy)
        .unwrap_or_else(|e| panic!("{e:#}"));
    // cm32p2 names have no async form: refused with the reason.
    let e = async_core_signature(&resolve, world, NameScheme::Standard).unwrap_err();
    assert!(format!("{e:#}").contains("use --names legacy"), "{e:#}");
}

#[test]
fn generated_worlds_made_async_have_an_accepted_signature() {
    // The campaign's worlds with their plain functions made `async func` (resource members
    // stay sync), a stream parameter added to some: a module of the whole signature is accepted
    // by wit-component, whose validation checks each async name and type it knows.
    use witness::diff::{DiffConfig, world_of};
    let cfg = DiffConfig::default();
    let (mut checked, mut lifted, mut lowered, mut streams) = (0, 0, 0, 0);
    for seed in 0..common::cases(60) {
        let (world, _, _) = world_of(seed, &cfg).unwrap();
        let text = world
            .wit
            .lines()
            .map(|line| {
                let trimmed = line.trim_start();
                let plain = trimmed.starts_with('f') || trimmed.starts_with('g');
                let prefixed = trimmed.starts_with("import f") || trimmed.starts_with("export g");
                if (plain || prefixed) && line.contains(": func(") {
                    let line = line.replacen(": func(", ": async func(", 1);
                    if seed % 2 == 0 {
                        line.replacen("async func(", "async func(ticks: stream<u32>, ", 1)
                    } else {
                        line
                    }
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut resolve = Resolve::default();
        let Ok(pkg) = resolve.push_str("gen.wit", &text) else { continue };
        let w = resolve.select_world(&[pkg], Some("w")).unwrap();
        let sig = async_core_signature(&resolve, w, NameScheme::Legacy)
            .unwrap_or_else(|e| panic!("seed {seed}: {e:#}\n{text}"));
        let core = module_of(&sig);
        let component =
            witness::encode::component::componentize(&resolve, w, &core, Default::default(), NameScheme::Legacy)
                .unwrap_or_else(|e| panic!("seed {seed}: {e:#}\n{text}"));
        wasmtime::component::Component::new(async_engine(), &component)
            .unwrap_or_else(|e| panic!("seed {seed}: Wasmtime: {e:#}\n{text}"));
        checked += 1;
        lifted += sig.exports.iter().filter(|e| e.kind == "callback").count();
        lowered += sig.imports.iter().filter(|i| i.name.starts_with("[async-lower]")).count();
        streams += sig.imports.iter().filter(|i| i.kind == "stream").count();
    }
    assert!(checked > 40 && lifted > 40 && lowered > 40 && streams > 100, "{checked} {lifted} {lowered} {streams}");
}

/// Wasmtime 48 with component-model async, error-context (📝) and maps (🗺️), no 🚝 feature.
fn async_engine() -> &'static wasmtime::Engine {
    static ENGINE: std::sync::OnceLock<wasmtime::Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .wasm_component_model_async(true)
            .wasm_component_model_error_context(true)
            .wasm_component_model_map(true);
        wasmtime::Engine::new(&config).unwrap()
    })
}

#[test]
fn wasmtime_compiles_and_links_the_component_of_an_async_signature() {
    // The component issue H will run: Wasmtime 48 with component-model async validates and
    // compiles it, and a linker that stubs every import instantiates its type.
    let (resolve, world) = load();
    let sig = async_core_signature(&resolve, world, NameScheme::Legacy).unwrap();
    let bytes = witness::encode::component::componentize(
        &resolve,
        world,
        &module_of(&sig),
        Default::default(),
        NameScheme::Legacy,
    )
    .unwrap();
    let engine = async_engine();
    let component = wasmtime::component::Component::new(engine, &bytes).unwrap_or_else(|e| panic!("{e:#}"));
    let mut linker = wasmtime::component::Linker::<()>::new(engine);
    linker.define_unknown_imports_as_traps(&component).unwrap();
    linker.instantiate_pre(&component).unwrap_or_else(|e| panic!("{e:#}"));
    // The synchronous stream and future copies are 🚝: the signature lists the async ones, so
    // Wasmtime needs neither `more_async_builtins` nor stackful lifting for it. Without the
    // async feature, Wasmtime refuses the component.
    let mut sync = wasmtime::Config::new();
    sync.wasm_component_model(true).wasm_component_model_async(false);
    let engine = wasmtime::Engine::new(&sync).unwrap();
    assert!(wasmtime::component::Component::new(&engine, &bytes).is_err());
}
