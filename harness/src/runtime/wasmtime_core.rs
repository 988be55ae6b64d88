//! `wasmtime-core`: the guest as a plain core module (cm32p2 or legacy names) on Wasmtime's
//! core API, a second core-only engine next to `core` (wasmi); the host side of the Canonical
//! ABI is the reference host. Its differences from the reference are Wasmtime's execution of
//! core wasm, never its Canonical ABI (that is the `wasmtime` engine).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use wasmtime::{
    AsContextMut, Caller, Config, Extern, Func, FuncType, InstancePre, Linker, Module, Store, Val, ValType,
};

use super::artifact::Artifact;
use super::core::{CoreGuest, CoreInstance, CoreStore, HostState, serve_import};
use super::wasmi::core_imports;
use super::{Compiled, FUEL, Host, Instance, MEMORY_LIMIT, Runtime, Unsupported};
use crate::reference::memory::{Memory, read_at, write_at};
use crate::reference::types::CoreType;
use crate::reference::value::Flat;
use crate::reference::{Trap, TrapKind};

/// A trap raised by the reference host inside an import, carried through Wasmtime.
#[derive(Debug)]
struct HostTrap(Trap);

impl fmt::Display for HostTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for HostTrap {}

fn host_error(t: Trap) -> wasmtime::Error {
    wasmtime::Error::new(HostTrap(t))
}

fn val_type(t: CoreType) -> ValType {
    match t {
        CoreType::I32 => ValType::I32,
        CoreType::I64 => ValType::I64,
        CoreType::F32 => ValType::F32,
        CoreType::F64 => ValType::F64,
    }
}

fn to_val(f: Flat) -> Val {
    match f {
        Flat::I32(v) => Val::I32(v as i32),
        Flat::I64(v) => Val::I64(v as i64),
        Flat::F32(v) => Val::F32(v.to_bits()),
        Flat::F64(v) => Val::F64(v.to_bits()),
    }
}

fn from_val(v: &Val) -> Result<Flat, Trap> {
    Ok(match v {
        Val::I32(v) => Flat::I32(*v as u32),
        Val::I64(v) => Flat::I64(*v as u64),
        Val::F32(v) => Flat::F32(f32::from_bits(*v)),
        Val::F64(v) => Flat::F64(f64::from_bits(*v)),
        other => {
            return Err(Trap::new(TrapKind::Assertion, format!("unexpected value {other:?}")));
        }
    })
}

/// A Wasmtime error as a trap: our own host traps come back as they were raised; a Wasmtime
/// trap is core wasm trapping by itself; anything else is a failure of the harness.
fn trap_of(e: wasmtime::Error) -> Trap {
    if let Some(HostTrap(t)) = e.downcast_ref::<HostTrap>() {
        return t.clone();
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(t) => Trap::new(TrapKind::GuestTrap, format!("wasmtime: {t}")),
        None => Trap::new(TrapKind::Assertion, format!("wasmtime: {e:#}")),
    }
}

struct Ctx {
    host: HostState,
    exports: Arc<HashMap<String, Func>>,
    limits: wasmtime::StoreLimits,
}

/// The guest seen through any Wasmtime context (the store, or a caller inside a host
/// function): its memory, realloc and exports (resolved once per instance).
struct WasmtimeGuest<C> {
    ctx: C,
    memory: wasmtime::Memory,
    realloc: Func,
    exports: Arc<HashMap<String, Func>>,
}

impl<C: AsContextMut<Data = Ctx>> Memory for WasmtimeGuest<C> {
    fn len(&self) -> u64 {
        self.memory.data(self.ctx.as_context()).len() as u64
    }

    fn read(&self, ptr: u64, out: &mut [u8]) -> Result<(), Trap> {
        read_at(self.memory.data(self.ctx.as_context()), ptr, out)
    }

    fn write(&mut self, ptr: u64, bytes: &[u8]) -> Result<(), Trap> {
        write_at(self.memory.data_mut(self.ctx.as_context_mut()), ptr, bytes)
    }

    fn realloc(&mut self, old_ptr: u64, old_size: u64, align: u64, new_size: u64) -> Result<u64, Trap> {
        let args = [old_ptr, old_size, align, new_size].map(|v| Val::I32(v as u32 as i32));
        let mut out = [Val::I32(0)];
        self.realloc.call(self.ctx.as_context_mut(), &args, &mut out).map_err(trap_of)?;
        Ok(u64::from(from_val(&out[0])?.bits() as u32))
    }
}

impl<C: AsContextMut<Data = Ctx>> CoreGuest for WasmtimeGuest<C> {
    fn call(&mut self, name: &str, args: &[Flat], host: &mut HostState) -> Result<Vec<Flat>, Trap> {
        let func = *self
            .exports
            .get(name)
            .ok_or_else(|| Trap::new(TrapKind::Assertion, format!("guest has no export {name}")))?;
        let mut results: Vec<Val> =
            func.ty(self.ctx.as_context()).results().map(|t| Val::default_for_ty(&t).unwrap_or(Val::I32(0))).collect();
        let vals: Vec<Val> = args.iter().map(|&f| to_val(f)).collect();
        // The host state lives in the store while guest code runs, so imports can reach it.
        std::mem::swap(&mut self.ctx.as_context_mut().data_mut().host, host);
        let r = func.call(self.ctx.as_context_mut(), &vals, &mut results);
        std::mem::swap(&mut self.ctx.as_context_mut().data_mut().host, host);
        r.map_err(trap_of)?;
        results.iter().map(from_val).collect()
    }

    fn as_memory(&mut self) -> &mut dyn Memory {
        self
    }
}

/// The `wasmtime-core` runtime.
pub fn runtime() -> Box<dyn Runtime> {
    Box::new(WasmtimeCoreRuntime)
}

struct WasmtimeCoreRuntime;

impl Runtime for WasmtimeCoreRuntime {
    fn compile(&self, artifact: Arc<Artifact>) -> Result<Box<dyn Compiled>> {
        let Some(core) = &artifact.core else {
            bail!(Unsupported {
                engine: "wasmtime-core".into(),
                reason: "the world has no core module (a composition)".into()
            });
        };
        let mut config = Config::new();
        config.consume_fuel(true);
        let engine = wasmtime::Engine::new(&config).map_err(|e| anyhow!("wasmtime: {e:#}"))?;
        let module = Module::new(&engine, &core.wasm[..]).map_err(|e| anyhow!("wasmtime rejects the guest: {e:#}"))?;
        let mut linker = Linker::<Ctx>::new(&engine);
        for (k, imp) in core_imports(&artifact).enumerate() {
            let ty = FuncType::new(
                &engine,
                imp.sig.params.iter().map(|&t| val_type(t)),
                imp.sig.results.iter().map(|&t| val_type(t)),
            );
            let memory_name = core.memory.clone();
            let realloc_name = core.realloc.clone();
            linker
                .func_new(
                    imp.module,
                    imp.name,
                    ty,
                    move |mut caller: Caller<'_, Ctx>, params: &[Val], results: &mut [Val]| {
                        let flats = params.iter().map(from_val).collect::<Result<Vec<_>, _>>().map_err(host_error)?;
                        let memory = caller.get_export(&memory_name).and_then(Extern::into_memory);
                        let realloc = caller.get_export(&realloc_name).and_then(Extern::into_func);
                        let (Some(memory), Some(realloc)) = (memory, realloc) else {
                            return Err(host_error(Trap::new(TrapKind::Assertion, "guest lacks memory or realloc")));
                        };
                        let exports = caller.data().exports.clone();
                        // Lend the host state out of the store for the call; a reentrant import
                        // call (from realloc) finds the placeholder (`present == false`).
                        let mut host = std::mem::take(&mut caller.data_mut().host);
                        let r = {
                            let mut guest = WasmtimeGuest { ctx: &mut caller, memory, realloc, exports };
                            serve_import(&mut host, &mut guest, k as u32, flats)
                        };
                        caller.data_mut().host = host;
                        let out = r.map_err(host_error)?;
                        for (slot, f) in results.iter_mut().zip(out) {
                            *slot = to_val(f);
                        }
                        Ok(())
                    },
                )
                .map_err(|e| anyhow!("linking {}::{}: {e:#}", imp.module, imp.name))?;
        }
        let pre = linker.instantiate_pre(&module).map_err(|e| anyhow!("wasmtime: linking the guest: {e:#}"))?;
        Ok(Box::new(WasmtimeCoreCompiled { engine, pre, artifact }))
    }
}

struct WasmtimeCoreCompiled {
    engine: wasmtime::Engine,
    pre: InstancePre<Ctx>,
    artifact: Arc<Artifact>,
}

/// A live instance: its store, the guest's memory, realloc and exports, and the host state lent
/// to each call.
struct WasmtimeCoreStore {
    store: Store<Ctx>,
    memory: wasmtime::Memory,
    realloc: Func,
    exports: Arc<HashMap<String, Func>>,
    host: HostState,
}

impl CoreStore for WasmtimeCoreStore {
    fn with_guest<R>(&mut self, f: impl FnOnce(&mut dyn CoreGuest, &mut HostState) -> R) -> R {
        let exports = self.exports.clone();
        let mut guest = WasmtimeGuest { ctx: &mut self.store, memory: self.memory, realloc: self.realloc, exports };
        f(&mut guest, &mut self.host)
    }
}

impl Compiled for WasmtimeCoreCompiled {
    fn label(&self) -> &str {
        "wasmtime-core"
    }

    fn instantiate(&mut self, host: Box<dyn Host>) -> Result<Box<dyn Instance + '_>> {
        let core = self.artifact.core.as_ref().ok_or_else(|| anyhow!("no core module"))?;
        let limits = wasmtime::StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT).build();
        let host = HostState::new(&self.artifact, host);
        let mut store = Store::new(&self.engine, Ctx { host, exports: Arc::default(), limits });
        store.limiter(|c| &mut c.limits);
        store.set_fuel(FUEL).map_err(|e| anyhow!("{e:#}"))?;
        let instance = self.pre.instantiate(&mut store).map_err(|e| anyhow!("wasmtime: instantiation: {e:#}"))?;
        let memory = instance.get_memory(&mut store, &core.memory).context("guest memory")?;
        let realloc = instance.get_func(&mut store, &core.realloc).context("guest realloc")?;
        let exports: HashMap<String, Func> = instance
            .exports(&mut store)
            .filter_map(|e| {
                let name = e.name().to_string();
                e.into_func().map(|f| (name, f))
            })
            .collect();
        let exports = Arc::new(exports);
        store.data_mut().exports = exports.clone();
        // Outside guest code the store holds the placeholder; imports reached from realloc
        // called by the host (lowering arguments) find it and trap MayNotLeave.
        let mut host = std::mem::take(&mut store.data_mut().host);
        host.present = true;
        let mut live = WasmtimeCoreStore { store, memory, realloc, exports, host };
        if let Some(init) = core.initialize.as_deref().filter(|i| live.exports.contains_key(*i)) {
            live.with_guest(|guest, host| guest.call(init, &[], host)).map_err(|t| anyhow!("{init} trapped: {t}"))?;
        }
        Ok(Box::new(CoreInstance { store: live, artifact: self.artifact.clone() }))
    }
}
