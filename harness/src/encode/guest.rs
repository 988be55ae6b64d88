//! The scripted guest: one core module per world (wasm-encoder) whose behaviour comes from a
//! script loaded at run time (see `protocol`). Every export logs its flat params, runs its
//! frame of the script (calling imports, writing bytes) and returns the scripted flat results;
//! `realloc` logs each call and answers from the script (bump allocation by default);
//! post-return and destructor exports log and run a frame if the script has one for them.
//! A control interface (`witness:guest/control`: load, reset, read-log) drives it the same way
//! as a component and as a core module.

use std::collections::HashMap;

use anyhow::{Context as _, Result, anyhow, bail};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, ElementSection, Elements, EntityType, ExportKind, ExportSection, Function,
    FunctionSection, ImportSection, InstructionSink, MemArg, MemorySection, MemoryType, Module, RefType, TableSection,
    TableType, TypeSection, ValType as WasmValType,
};
use wit_parser::{Resolve, WorldId, WorldItem};

use super::names::{ExportItem, ImportItem, NameScheme, world_exports, world_imports};
use super::protocol::{self as p, answer, log, op};
use super::signature::{async_core_signature, core_signature};
use crate::reference::flatten::CoreFuncType;
use crate::reference::types::{CoreType, FuncType, ValType};

/// The control package of a plain guest; a second guest in the same component (the caller of
/// a composition) uses `CALLER_CONTROL_PACKAGE` so the two control interfaces differ.
pub const CONTROL_PACKAGE: &str = "guest";
pub const CALLER_CONTROL_PACKAGE: &str = "caller-guest";

/// WIT of the control interface every scripted guest exports (package `witness:<name>`).
pub fn control_wit(package: &str) -> String {
    format!("package witness:{package};\n\n{CONTROL_INTERFACE}")
}

const CONTROL_INTERFACE: &str = "interface control {
  /// Write 15 words of script at CONTROL + offset.
  load: func(offset: u32, w0: u64, w1: u64, w2: u64, w3: u64, w4: u64, w5: u64, w6: u64, w7: u64, w8: u64, w9: u64, w10: u64, w11: u64, w12: u64, w13: u64, w14: u64);
  /// Rewind the script, clear the log, reset the heap.
  reset: func();
  /// The log so far.
  read-log: func() -> list<u8>;
}
";

/// The types of `load`, `reset` and `read-log`, as CONTROL_INTERFACE declares them.
pub fn control_func_types() -> [(&'static str, FuncType); 3] {
    let load = std::iter::once(("offset".to_string(), ValType::U32))
        .chain((0..LOAD_CHUNK / 8).map(|i| (format!("w{i}"), ValType::U64)))
        .collect();
    [
        ("load", FuncType { params: load, result: None, async_: false }),
        ("reset", FuncType { params: vec![], result: None, async_: false }),
        ("read-log", FuncType { params: vec![], result: Some(ValType::list(ValType::U8)), async_: false }),
    ]
}

/// Bytes `load` writes per call.
pub const LOAD_CHUNK: usize = 120;

/// What a guest import stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportKind {
    Func {
        interface: Option<wit_parser::InterfaceId>,
        func: String,
    },
    ResourceDrop {
        resource: wit_parser::TypeId,
        exported: bool,
    },
    ResourceNew {
        resource: wit_parser::TypeId,
    },
    ResourceRep {
        resource: wit_parser::TypeId,
    },
    /// 🔀 A built-in of the async ABI (`task.return`, `waitable-set.new`, `stream.read`, ...),
    /// as the world's names list it.
    Async(ImportItem),
}

/// A core import of the guest; its index is its thunk number in scripts.
#[derive(Clone, Debug)]
pub struct GuestImport {
    pub module: String,
    pub name: String,
    pub sig: CoreFuncType,
    pub kind: ImportKind,
}

/// What a guest export does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A world function (entry `export_entry(k)`).
    Func { interface: Option<wit_parser::InterfaceId>, func: String },
    /// Its post-return (entry `post_return_entry(k)`).
    PostReturn { of: u32 },
    /// A resource destructor (entry `dtor_entry(k)`).
    Dtor { resource: wit_parser::TypeId },
    /// 🔀 The callback of async function k (entry `callback_entry(k)`).
    Callback { of: u32 },
}

#[derive(Clone, Debug)]
pub struct GuestExport {
    pub name: String,
    pub sig: CoreFuncType,
    pub entry: u32,
    pub kind: EntryKind,
}

impl GuestExport {
    /// Whether the export may run without a frame of its own (a post-return or a destructor
    /// the case says nothing about); a function or a callback without one traps.
    pub fn frame_optional(&self) -> bool {
        !matches!(self.kind, EntryKind::Func { .. } | EntryKind::Callback { .. })
    }
}

/// Everything the encoder needs: the world's core imports and exports under one name scheme.
#[derive(Clone, Debug)]
pub struct GuestModule {
    pub scheme: NameScheme,
    pub imports: Vec<GuestImport>,
    pub exports: Vec<GuestExport>,
    pub memory: String,
    pub realloc: String,
    pub control_load: String,
    pub control_reset: String,
    pub control_read_log: String,
}

impl GuestModule {
    /// The guest of `world`, which must export the control interface (`add_control`). 🔀 An
    /// async world (Legacy names only) gets the async ABI's built-ins as imports and a
    /// callback beside each async export.
    pub fn new(resolve: &Resolve, world: WorldId, scheme: NameScheme) -> Result<GuestModule> {
        let sig = if is_async_world(resolve, world) {
            async_core_signature(resolve, world, scheme)?
        } else {
            core_signature(resolve, world, scheme)?
        };
        let control = control_interface(resolve, world)?;
        let mut imports = vec![];
        for (i, imp) in world_imports(resolve, world, scheme).into_iter().enumerate() {
            let kind = match imp.item {
                ImportItem::Func { interface, func } => ImportKind::Func { interface, func },
                ImportItem::ResourceDrop { resource, exported } => ImportKind::ResourceDrop { resource, exported },
                ImportItem::ResourceNew { resource } => ImportKind::ResourceNew { resource },
                ImportItem::ResourceRep { resource } => ImportKind::ResourceRep { resource },
                item @ (ImportItem::TaskReturn { .. } | ImportItem::AsyncValue { .. } | ImportItem::Builtin { .. }) => {
                    ImportKind::Async(item)
                }
            };
            imports.push(GuestImport { module: imp.module, name: imp.name, sig: sig.imports[i].ty.clone(), kind });
        }
        let (mut exports, mut memory, mut realloc) = (vec![], String::new(), String::new());
        let mut control_names = HashMap::new();
        let mut func_entries: HashMap<(Option<wit_parser::InterfaceId>, String), u32> = HashMap::new();
        let mut dtors = 0;
        for (i, exp) in world_exports(resolve, world, scheme).into_iter().enumerate() {
            let ty = sig.exports[i].ty.clone();
            match exp.item {
                ExportItem::Func { interface: Some(iface), func } if iface == control => {
                    control_names.insert(func, exp.name);
                }
                ExportItem::PostReturn { interface: Some(iface), .. } if iface == control => {}
                ExportItem::Callback { interface, func } => {
                    let k = *func_entries
                        .get(&(interface, func))
                        .ok_or_else(|| anyhow!("{}: callback before its function", exp.name))?;
                    let sig = ty.ok_or_else(|| anyhow!("export {} has no type", exp.name))?;
                    exports.push(GuestExport {
                        name: exp.name,
                        sig,
                        entry: p::callback_entry(k),
                        kind: EntryKind::Callback { of: k },
                    });
                }
                ExportItem::Func { interface, func } => {
                    let k = func_entries.len() as u32;
                    func_entries.insert((interface, func.clone()), k);
                    let sig = ty.ok_or_else(|| anyhow!("export {} has no type", exp.name))?;
                    exports.push(GuestExport {
                        name: exp.name,
                        sig,
                        entry: p::export_entry(k),
                        kind: EntryKind::Func { interface, func },
                    });
                }
                ExportItem::PostReturn { interface, func } => {
                    let k = *func_entries
                        .get(&(interface, func))
                        .ok_or_else(|| anyhow!("{}: post-return before its function", exp.name))?;
                    let sig = ty.ok_or_else(|| anyhow!("export {} has no type", exp.name))?;
                    exports.push(GuestExport {
                        name: exp.name,
                        sig,
                        entry: p::post_return_entry(k),
                        kind: EntryKind::PostReturn { of: k },
                    });
                }
                ExportItem::Dtor { resource } => {
                    let sig = ty.ok_or_else(|| anyhow!("export {} has no type", exp.name))?;
                    exports.push(GuestExport {
                        name: exp.name,
                        sig,
                        entry: p::dtor_entry(dtors),
                        kind: EntryKind::Dtor { resource },
                    });
                    dtors += 1;
                }
                ExportItem::Memory => memory = exp.name,
                ExportItem::Realloc => realloc = exp.name,
                ExportItem::Initialize => {}
            }
        }
        let mut take = |n: &str| control_names.remove(n).ok_or_else(|| anyhow!("the control interface has no `{n}`"));
        Ok(GuestModule {
            scheme,
            imports,
            exports,
            memory,
            realloc,
            control_load: take("load")?,
            control_reset: take("reset")?,
            control_read_log: take("read-log")?,
        })
    }

    /// The export of entry `entry`.
    pub fn export_of(&self, entry: u32) -> Option<&GuestExport> {
        self.exports.iter().find(|e| e.entry == entry)
    }
}

/// 🔀 Whether `world` has anything async: an `async func`, a future or a stream (the async
/// ABI's built-ins are then imported).
pub fn is_async_world(resolve: &Resolve, world: WorldId) -> bool {
    world_imports(resolve, world, NameScheme::Legacy).iter().any(|i| {
        matches!(i.item, ImportItem::TaskReturn { .. } | ImportItem::AsyncValue { .. } | ImportItem::Builtin { .. })
    })
}

fn is_control(resolve: &Resolve, iface: wit_parser::InterfaceId, package: Option<&str>) -> bool {
    let i = &resolve.interfaces[iface];
    i.name.as_deref() == Some("control")
        && i.package.is_some_and(|pk| {
            let name = &resolve.packages[pk].name;
            name.namespace == "witness" && package.is_none_or(|p| name.name == p)
        })
}

/// The control interface `world` exports.
pub fn control_interface(resolve: &Resolve, world: WorldId) -> Result<wit_parser::InterfaceId> {
    resolve.worlds[world]
        .exports
        .values()
        .find_map(|item| match item {
            WorldItem::Interface { id, .. } if is_control(resolve, *id, None) => Some(*id),
            _ => None,
        })
        .ok_or_else(|| anyhow!("the world exports no witness control interface"))
}

/// Add the control interface of package `witness:<package>` to `world`'s exports (pushing the
/// package into `resolve` once).
pub fn add_control(resolve: &mut Resolve, world: WorldId, package: &str) -> Result<()> {
    let existing = resolve.interfaces.iter().map(|(id, _)| id).find(|&id| is_control(resolve, id, Some(package)));
    let iface = match existing {
        Some(i) => i,
        None => {
            let pkg = resolve.push_str("witness-control.wit", &control_wit(package)).context("control interface")?;
            resolve.packages[pkg].interfaces["control"]
        }
    };
    let key = wit_parser::WorldKey::Interface(iface);
    resolve.worlds[world].exports.insert(
        key,
        wit_parser::WorldItem::Interface {
            id: iface,
            stability: Default::default(),
            docs: Default::default(),
            external_id: Default::default(),
            span: Default::default(),
        },
    );
    Ok(())
}

fn wasm_type(t: CoreType) -> WasmValType {
    match t {
        CoreType::I32 => WasmValType::I32,
        CoreType::I64 => WasmValType::I64,
        CoreType::F32 => WasmValType::F32,
        CoreType::F64 => WasmValType::F64,
    }
}

fn mem(offset: u64, align: u32) -> MemArg {
    MemArg { offset, align, memory_index: 0 }
}

/// Push the raw 64-bit bits of local `l` of type `t`.
fn raw(f: &mut InstructionSink<'_>, l: u32, t: CoreType) {
    f.local_get(l);
    match t {
        CoreType::I32 => {
            f.i64_extend_i32_u();
        }
        CoreType::I64 => {}
        CoreType::F32 => {
            f.i32_reinterpret_f32().i64_extend_i32_u();
        }
        CoreType::F64 => {
            f.i64_reinterpret_f64();
        }
    }
}

/// Load a value of type `t` from the address on the stack plus `offset`.
fn load(f: &mut InstructionSink<'_>, t: CoreType, offset: u64) {
    match t {
        CoreType::I32 => f.i32_load(mem(offset, 2)),
        CoreType::I64 => f.i64_load(mem(offset, 3)),
        CoreType::F32 => f.f32_load(mem(offset, 2)),
        CoreType::F64 => f.f64_load(mem(offset, 3)),
    };
}

fn c(v: u64) -> i32 {
    v as i32
}

struct Types {
    section: TypeSection,
    map: HashMap<(Vec<WasmValType>, Vec<WasmValType>), u32>,
}

impl Types {
    fn get(&mut self, params: &[WasmValType], results: &[WasmValType]) -> u32 {
        let key = (params.to_vec(), results.to_vec());
        if let Some(&i) = self.map.get(&key) {
            return i;
        }
        let i = self.map.len() as u32;
        self.section.ty().function(params.iter().copied(), results.iter().copied());
        self.map.insert(key, i);
        i
    }

    fn core(&mut self, sig: &CoreFuncType) -> u32 {
        let ps: Vec<WasmValType> = sig.params.iter().map(|&t| wasm_type(t)).collect();
        let rs: Vec<WasmValType> = sig.results.iter().map(|&t| wasm_type(t)).collect();
        self.get(&ps, &rs)
    }
}

/// Encode the scripted guest of `module` as a core wasm module.
pub fn encode_guest(module: &GuestModule) -> Result<Vec<u8>> {
    use WasmValType::{I32, I64};
    if module.memory.is_empty() || module.realloc.is_empty() {
        bail!("the guest needs memory and realloc export names");
    }
    let mut types = Types { section: TypeSection::new(), map: HashMap::new() };
    let mut imports = ImportSection::new();
    for imp in &module.imports {
        let ty = types.core(&imp.sig);
        imports.import(&imp.module, &imp.name, EntityType::Function(ty));
    }
    let ni = module.imports.len() as u32;
    // Defined functions, in this order.
    let f_log_record = ni;
    let f_log_memory = ni + 1;
    let f_realloc = ni + 2;
    let f_run_frame = ni + 3;
    let f_thunks = ni + 4;
    let f_exports = f_thunks + ni;
    let f_load = f_exports + module.exports.len() as u32;
    let f_reset = f_load + 1;
    let f_read_log = f_load + 2;

    let t_log_record = types.get(&[I32, I32, I64], &[]);
    let t_log_memory = types.get(&[I32, I32], &[]);
    let t_realloc = types.get(&[I32, I32, I32, I32], &[I32]);
    let t_run_frame = types.get(&[I32, I32], &[]);
    let t_thunk = types.get(&[], &[]);
    let mut load_params = vec![I32];
    load_params.extend([I64; 15]);
    let t_load = types.get(&load_params, &[]);
    let t_read_log = types.get(&[], &[I32]);

    let mut funcs = FunctionSection::new();
    let mut code = CodeSection::new();
    funcs.function(t_log_record);
    code.function(&log_record_fn());
    funcs.function(t_log_memory);
    code.function(&log_memory_fn(f_log_record));
    funcs.function(t_realloc);
    code.function(&realloc_fn(f_log_record, t_thunk, ni > 0));
    funcs.function(t_run_frame);
    code.function(&run_frame_fn(f_log_memory, t_thunk));
    for (k, imp) in module.imports.iter().enumerate() {
        funcs.function(t_thunk);
        code.function(&thunk_fn(k as u32, &imp.sig, f_log_record));
    }
    for exp in &module.exports {
        funcs.function(types.core(&exp.sig));
        code.function(&export_fn(exp, exp.frame_optional(), f_log_record, f_run_frame));
    }
    funcs.function(t_load);
    code.function(&load_fn());
    funcs.function(t_thunk);
    code.function(&reset_fn());
    funcs.function(t_read_log);
    code.function(&read_log_fn());

    let mut tables = TableSection::new();
    tables.table(TableType {
        element_type: RefType::FUNCREF,
        table64: false,
        minimum: ni.into(),
        maximum: Some(ni.into()),
        shared: false,
    });
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: p::MEMORY_PAGES,
        maximum: Some(p::MEMORY_PAGES),
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports.export(&module.memory, ExportKind::Memory, 0);
    exports.export(&module.realloc, ExportKind::Func, f_realloc);
    for (i, exp) in module.exports.iter().enumerate() {
        exports.export(&exp.name, ExportKind::Func, f_exports + i as u32);
    }
    exports.export(&module.control_load, ExportKind::Func, f_load);
    exports.export(&module.control_reset, ExportKind::Func, f_reset);
    exports.export(&module.control_read_log, ExportKind::Func, f_read_log);
    let mut elems = ElementSection::new();
    let thunks: Vec<u32> = (0..ni).map(|k| f_thunks + k).collect();
    if ni > 0 {
        elems.active(Some(0), &ConstExpr::i32_const(0), Elements::Functions(thunks.into()));
    }

    let mut module = Module::new();
    module.section(&types.section);
    module.section(&imports);
    module.section(&funcs);
    module.section(&tables);
    module.section(&memories);
    module.section(&exports);
    module.section(&elems);
    module.section(&code);
    let bytes = module.finish();
    wasmparser::Validator::new().validate_all(&bytes).context("the encoded guest does not validate")?;
    Ok(bytes)
}

/// log_record(tag, a, b): append one record, or set LOG_OVERFLOW when the log is full.
fn log_record_fn() -> Function {
    // params: 0 tag, 1 a, 2 b; local 3 cursor
    let mut f = Function::new([(1, WasmValType::I32)]);
    let mut s = f.instructions();
    s.i32_const(c(p::LOG_CURSOR)).i32_load(mem(0, 2)).local_tee(3);
    s.i32_const(16).i32_add().i32_const(c(p::SCRATCH)).i32_gt_u().if_(BlockType::Empty);
    s.i32_const(c(p::LOG_OVERFLOW)).i32_const(1).i32_store(mem(0, 2)).return_();
    s.end();
    s.local_get(3).local_get(0).i32_store(mem(0, 2));
    s.local_get(3).local_get(1).i32_store(mem(4, 2));
    s.local_get(3).local_get(2).i64_store(mem(8, 3));
    s.i32_const(c(p::LOG_CURSOR)).local_get(3).i32_const(16).i32_add().i32_store(mem(0, 2));
    s.end();
    f
}

/// log_memory(addr, len): a MEMORY record and the bytes, padded to 16 (all or nothing: when
/// `16 + pad16(len)` bytes do not fit, LOG_OVERFLOW is set instead).
fn log_memory_fn(f_log_record: u32) -> Function {
    // params: 0 addr, 1 len; local 2 cursor (i32); local 3 padded (i64)
    let mut f = Function::new([(1, WasmValType::I32), (1, WasmValType::I64)]);
    let mut s = f.instructions();
    s.local_get(1).i64_extend_i32_u().i64_const(15).i64_add().i64_const(-16).i64_and().local_set(3);
    s.i32_const(c(p::LOG_CURSOR)).i32_load(mem(0, 2)).local_set(2);
    s.local_get(2).i64_extend_i32_u().i64_const(16).i64_add().local_get(3).i64_add();
    s.i64_const(p::SCRATCH as i64).i64_gt_u().if_(BlockType::Empty);
    s.i32_const(c(p::LOG_OVERFLOW)).i32_const(1).i32_store(mem(0, 2)).return_();
    s.end();
    s.i32_const(log::MEMORY as i32).local_get(0).local_get(1).i64_extend_i32_u().call(f_log_record);
    s.local_get(2).i32_const(16).i32_add().local_get(0).local_get(1).memory_copy(0, 0);
    s.i32_const(c(p::LOG_CURSOR))
        .local_get(2)
        .i32_const(16)
        .i32_add()
        .local_get(3)
        .i32_wrap_i64()
        .i32_add()
        .i32_store(mem(0, 2));
    s.end();
    f
}

/// realloc(old_ptr, old_size, align, new_size): log, then answer from the script.
fn realloc_fn(f_log_record: u32, t_thunk: u32, has_thunks: bool) -> Function {
    // params 0 old_ptr, 1 old_size, 2 align, 3 new_size; locals 4 rc, 5 kind, 6 ptr, 7 a (i32), 8 end (i64)
    let mut f = Function::new([(4, WasmValType::I32), (1, WasmValType::I64)]);
    let mut s = f.instructions();
    s.i32_const(log::REALLOC as i32).local_get(0).local_get(1).i64_extend_i32_u().call(f_log_record);
    s.i32_const(log::REALLOC_ARGS as i32).local_get(2).local_get(3).i64_extend_i32_u().call(f_log_record);
    s.i32_const(c(p::REALLOC_CURSOR)).i32_load(mem(0, 2)).local_tee(4).i32_load(mem(0, 2)).local_tee(5);
    s.i32_const(answer::END as i32).i32_ne().if_(BlockType::Empty);
    s.i32_const(c(p::REALLOC_CURSOR)).local_get(4).i32_const(8).i32_add().i32_store(mem(0, 2));
    s.end();
    s.local_get(5).i32_const(answer::TRAP as i32).i32_eq().if_(BlockType::Empty).unreachable().end();
    if has_thunks {
        // CALL: ARG_BUF[0] = the next slot's first word; skip that slot; call the thunk; then
        // allocate as BUMP does (below).
        s.local_get(5).i32_const(answer::CALL as i32).i32_eq().if_(BlockType::Empty);
        s.i32_const(c(p::ARG_BUF)).local_get(4).i32_load(mem(8, 2)).i64_extend_i32_u().i64_store(mem(0, 3));
        s.i32_const(c(p::REALLOC_CURSOR)).local_get(4).i32_const(16).i32_add().i32_store(mem(0, 2));
        s.local_get(4).i32_load(mem(4, 2)).call_indirect(0, t_thunk);
        s.end();
    } else {
        // No import to call: the guest traps, as a call_indirect into an empty table would.
        s.local_get(5).i32_const(answer::CALL as i32).i32_eq().if_(BlockType::Empty).unreachable().end();
    }
    s.local_get(5).i32_const(answer::VALUE as i32).i32_eq().if_(BlockType::Empty);
    s.local_get(4).i32_load(mem(4, 2)).local_set(6);
    s.else_();
    // old_ptr != 0 && new_size <= old_size: shrink in place
    s.local_get(0).i32_const(0).i32_ne().local_get(3).local_get(1).i32_le_u().i32_and().if_(BlockType::Empty);
    s.local_get(0).local_set(6);
    s.else_();
    // a = max(align, 1); ptr = ceil(next / a) * a; end = ptr + new_size (i64)
    s.local_get(2).i32_const(1).local_get(2).i32_const(1).i32_gt_u().select().local_set(7);
    s.i32_const(c(p::HEAP_NEXT))
        .i32_load(mem(0, 2))
        .i64_extend_i32_u()
        .local_get(7)
        .i64_extend_i32_u()
        .i64_add()
        .i64_const(1)
        .i64_sub();
    s.local_get(7).i64_extend_i32_u().i64_div_u().local_get(7).i64_extend_i32_u().i64_mul().local_tee(8);
    s.local_get(3).i64_extend_i32_u().i64_add().local_set(8);
    s.local_get(8).i64_const(p::MEMORY_SIZE as i64).i64_gt_u().if_(BlockType::Empty).unreachable().end();
    // ptr = end - new_size
    s.local_get(8).local_get(3).i64_extend_i32_u().i64_sub().i32_wrap_i64().local_set(6);
    s.i32_const(c(p::HEAP_NEXT)).local_get(8).i32_wrap_i64().i32_store(mem(0, 2));
    // copy min(old_size, new_size) bytes from old_ptr, when there are any
    s.local_get(1).local_get(3).local_get(1).local_get(3).i32_lt_u().select().local_set(7);
    s.local_get(7).if_(BlockType::Empty);
    s.local_get(6).local_get(0).local_get(7).memory_copy(0, 0);
    s.end();
    s.end();
    s.end();
    s.i32_const(log::REALLOC_RET as i32).local_get(6).i64_const(0).call(f_log_record);
    s.local_get(6);
    s.end();
    f
}

/// run_frame(entry, optional): run the frame of `entry`, or trap (return, if optional) when
/// the script's next frame is not for this entry.
fn run_frame_fn(f_log_memory: u32, t_thunk: u32) -> Function {
    // params 0 entry, 1 optional; locals 2 ip, 3 tag, 4 a (i32), 5 b (i64)
    let mut f = Function::new([(3, WasmValType::I32), (1, WasmValType::I64)]);
    let mut s = f.instructions();
    s.i32_const(c(p::SCRIPT_CURSOR))
        .i32_load(mem(0, 2))
        .local_tee(2)
        .i32_load(mem(0, 2))
        .i32_const(op::FRAME as i32)
        .i32_ne();
    s.local_get(2).i32_load(mem(4, 2)).local_get(0).i32_ne().i32_or().if_(BlockType::Empty);
    s.local_get(1).if_(BlockType::Empty).return_().end();
    s.unreachable();
    s.end();
    s.local_get(2).i32_const(16).i32_add().local_set(2);
    s.i32_const(c(p::RESULT_COUNT)).i32_const(0).i32_store(mem(0, 2));
    s.loop_(BlockType::Empty);
    // fetch
    s.local_get(2).i32_load(mem(0, 2)).local_set(3);
    s.local_get(2).i32_load(mem(4, 2)).local_set(4);
    s.local_get(2).i64_load(mem(8, 3)).local_set(5);
    s.local_get(2).i32_const(16).i32_add().local_set(2);
    s.i32_const(c(p::SCRIPT_CURSOR)).local_get(2).i32_store(mem(0, 2));
    for _ in 0..9 {
        s.block(BlockType::Empty); // default, RETURN, RESULT, TRAP, LOG_HEAP, LOG_MEMORY, CALL, ARG, WRITE
    }
    s.local_get(3).br_table([8, 8, 0, 1, 2, 3, 4, 5, 6, 7], 8);
    s.end();
    // WRITE: memory.copy(a, ip, b); ip += pad16(b)
    s.local_get(4).local_get(2).local_get(5).i32_wrap_i64().memory_copy(0, 0);
    s.local_get(2).local_get(5).i32_wrap_i64().i32_const(15).i32_add().i32_const(-16).i32_and().i32_add().local_set(2);
    s.i32_const(c(p::SCRIPT_CURSOR)).local_get(2).i32_store(mem(0, 2));
    s.br(8);
    s.end();
    // ARG: ARG_BUF[count++] = b
    push_value(&mut s, p::ARG_COUNT, p::ARG_BUF);
    s.br(7);
    s.end();
    // CALL: thunk a (the cursor is saved, the thunk clears the argument count)
    s.local_get(4).call_indirect(0, t_thunk);
    s.br(6);
    s.end();
    // LOG_MEMORY
    s.local_get(4).local_get(5).i32_wrap_i64().call(f_log_memory);
    s.br(5);
    s.end();
    // LOG_HEAP: from a to the heap's next
    s.local_get(4).i32_const(c(p::HEAP_NEXT)).i32_load(mem(0, 2)).local_get(4).i32_sub().call(f_log_memory);
    s.br(4);
    s.end();
    // TRAP
    s.unreachable();
    s.end();
    // RESULT: RESULT_BUF[count++] = b
    push_value(&mut s, p::RESULT_COUNT, p::RESULT_BUF);
    s.br(2);
    s.end();
    // RETURN
    s.return_();
    s.end();
    // END, FRAME, unknown opcode: the script does not say what to do here
    s.unreachable();
    s.end();
    s.end();
    f
}

/// `buf[count++] = b` (local 5), trapping past MAX_VALUES.
fn push_value(s: &mut InstructionSink<'_>, count: u64, buf: u64) {
    s.i32_const(c(count))
        .i32_load(mem(0, 2))
        .i32_const(p::MAX_VALUES as i32)
        .i32_ge_u()
        .if_(BlockType::Empty)
        .unreachable()
        .end();
    s.i32_const(c(count)).i32_load(mem(0, 2)).i32_const(8).i32_mul().local_get(5).i64_store(mem(buf, 3));
    s.i32_const(c(count)).i32_const(c(count)).i32_load(mem(0, 2)).i32_const(1).i32_add().i32_store(mem(0, 2));
}

/// thunk k: call import k with the argument buffer, log its results.
fn thunk_fn(k: u32, sig: &CoreFuncType, f_log_record: u32) -> Function {
    let locals: Vec<(u32, WasmValType)> = sig.results.iter().map(|&t| (1, wasm_type(t))).collect();
    let mut f = Function::new(locals);
    let mut s = f.instructions();
    for (i, &t) in sig.params.iter().enumerate() {
        s.i32_const(0);
        load(&mut s, t, p::ARG_BUF + 8 * i as u64);
    }
    s.call(k);
    for j in (0..sig.results.len() as u32).rev() {
        s.local_set(j);
    }
    s.i32_const(log::IMPORT_DONE as i32).i32_const(k as i32).i64_const(0).call(f_log_record);
    for (j, &t) in sig.results.iter().enumerate() {
        s.i32_const(log::IMPORT_RESULT as i32).i32_const(0);
        raw(&mut s, j as u32, t);
        s.call(f_log_record);
    }
    s.i32_const(c(p::ARG_COUNT)).i32_const(0).i32_store(mem(0, 2));
    s.end();
    f
}

/// An export: log the entry and its params, run its frame, return the result buffer.
fn export_fn(exp: &GuestExport, optional: bool, f_log_record: u32, f_run_frame: u32) -> Function {
    let mut f = Function::new([]);
    let mut s = f.instructions();
    s.i32_const(log::ENTER as i32).i32_const(exp.entry as i32).i64_const(0).call(f_log_record);
    for (i, &t) in exp.sig.params.iter().enumerate() {
        s.i32_const(log::PARAM as i32).i32_const(0);
        raw(&mut s, i as u32, t);
        s.call(f_log_record);
    }
    s.i32_const(exp.entry as i32).i32_const(i32::from(optional)).call(f_run_frame);
    for (j, &t) in exp.sig.results.iter().enumerate() {
        s.i32_const(0);
        load(&mut s, t, p::RESULT_BUF + 8 * j as u64);
    }
    s.end();
    f
}

/// load(offset, w0..w14): write 120 bytes at CONTROL + offset.
fn load_fn() -> Function {
    let mut f = Function::new([]);
    let mut s = f.instructions();
    s.local_get(0)
        .i64_extend_i32_u()
        .i64_const(LOAD_CHUNK as i64)
        .i64_add()
        .i64_const((p::LOG - p::CONTROL) as i64)
        .i64_gt_u();
    s.if_(BlockType::Empty).unreachable().end();
    for i in 0..15u32 {
        s.local_get(0).local_get(1 + i).i64_store(mem(p::CONTROL + 8 * u64::from(i), 3));
    }
    s.end();
    f
}

/// reset(): rewind every cursor and zero the log, scratch and heap.
fn reset_fn() -> Function {
    let mut f = Function::new([]);
    let mut s = f.instructions();
    for (addr, value) in p::RESET {
        s.i32_const(c(addr)).i32_const(c(value)).i32_store(mem(0, 2));
    }
    s.i32_const(c(p::LOG)).i32_const(0).i32_const(c(p::MEMORY_SIZE - p::LOG)).memory_fill(0);
    s.end();
    f
}

/// read-log(): (LOG, cursor - LOG) in the return area.
fn read_log_fn() -> Function {
    let mut f = Function::new([]);
    let mut s = f.instructions();
    s.i32_const(c(p::RET_AREA)).i32_const(c(p::LOG)).i32_store(mem(0, 2));
    s.i32_const(c(p::RET_AREA))
        .i32_const(c(p::LOG_CURSOR))
        .i32_load(mem(0, 2))
        .i32_const(c(p::LOG))
        .i32_sub()
        .i32_store(mem(4, 2));
    s.i32_const(c(p::RET_AREA));
    s.end();
    f
}
