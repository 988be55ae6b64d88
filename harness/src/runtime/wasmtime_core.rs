//! `wasmtime-core`: the guest as a plain core module (cm32p2 or legacy names) on Wasmtime's
//! core API, a second core-only engine next to `core` (wasmi); the host side of the Canonical
//! ABI is the reference host (`core`). Its differences from the reference are Wasmtime's
//! execution of core wasm, never its Canonical ABI (that is the `wasmtime` runtime).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use wasmtime::{
    AsContext, AsContextMut, Caller, Config, Extern, Func, FuncType, InstancePre, Linker, Module, Store,
    StoreContextMut, Val, ValType,
};

use super::artifact::Artifact;
use super::core::{CoreGuest, CoreInstance, CoreStore, HostState, initialize, serve_import};
use super::wasmi::{ExportNames, core_imports};
use super::{ASYNC_UNSUPPORTED, Compiled, FUEL, Host, Instance, MEMORY_LIMIT, Runtime, Unsupported};
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

fn flat_to_val(f: Flat) -> Val {
    match f {
        Flat::I32(v) => Val::I32(v as i32),
        Flat::I64(v) => Val::I64(v as i64),
        Flat::F32(v) => Val::F32(v.to_bits()),
        Flat::F64(v) => Val::F64(v.to_bits()),
    }
}

fn val_to_flat(v: &Val) -> Result<Flat, Trap> {
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

/// Store data: the reference host's state, the guest's memory, realloc and exports (known
/// once it is instantiated), the store's limits.
struct Data {
    host: HostState,
    memory: Option<wasmtime::Memory>,
    realloc: Option<Func>,
    exports: Arc<HashMap<String, Func>>,
    limits: wasmtime::StoreLimits,
}

/// The guest seen through any Wasmtime context (the store, or a caller inside a host function).
struct WasmtimeGuest<'a> {
    ctx: StoreContextMut<'a, Data>,
}

fn out_of_reach() -> Trap {
    Trap::new(TrapKind::Assertion, "the guest's memory or realloc is out of reach")
}

impl Memory for WasmtimeGuest<'_> {
    fn len(&self) -> u64 {
        self.ctx.data().memory.map_or(0, |m| m.data(self.ctx.as_context()).len() as u64)
    }

    fn read(&self, ptr: u64, out: &mut [u8]) -> Result<(), Trap> {
        let memory = self.ctx.data().memory.ok_or_else(out_of_reach)?;
        read_at(memory.data(self.ctx.as_context()), ptr, out)
    }

    fn write(&mut self, ptr: u64, bytes: &[u8]) -> Result<(), Trap> {
        let memory = self.ctx.data().memory.ok_or_else(out_of_reach)?;
        write_at(memory.data_mut(self.ctx.as_context_mut()), ptr, bytes)
    }

    fn realloc(&mut self, old_ptr: u64, old_size: u64, align: u64, new_size: u64) -> Result<u64, Trap> {
        let realloc = self.ctx.data().realloc.ok_or_else(out_of_reach)?;
        let args = [old_ptr, old_size, align, new_size].map(|v| Val::I32(v as u32 as i32));
        let mut out = [Val::I32(0)];
        realloc.call(self.ctx.as_context_mut(), &args, &mut out).map_err(trap_of)?;
        Ok(u64::from(val_to_flat(&out[0])?.bits() as u32))
    }
}

impl CoreGuest for WasmtimeGuest<'_> {
    fn host(&mut self) -> &mut HostState {
        &mut self.ctx.data_mut().host
    }

    fn call_export(&mut self, name: &str, args: &[Flat]) -> Result<Vec<Flat>, Trap> {
        let func = *self
            .ctx
            .data()
            .exports
            .get(name)
            .ok_or_else(|| Trap::new(TrapKind::Assertion, format!("guest has no export {name}")))?;
        let mut results: Vec<Val> =
            func.ty(self.ctx.as_context()).results().map(|t| Val::default_for_ty(&t).unwrap_or(Val::I32(0))).collect();
        let vals: Vec<Val> = args.iter().map(|&f| flat_to_val(f)).collect();
        func.call(self.ctx.as_context_mut(), &vals, &mut results).map_err(trap_of)?;
        results.iter().map(val_to_flat).collect()
    }
}

/// The name of this runtime.
pub const NAME: &str = "wasmtime-core";

/// The `wasmtime-core` runtime.
pub fn runtime() -> Box<dyn Runtime> {
    Box::new(WasmtimeCoreRuntime)
}

struct WasmtimeCoreRuntime;

impl Runtime for WasmtimeCoreRuntime {
    fn compile(&self, artifact: Arc<Artifact>) -> Result<Box<dyn Compiled>> {
        let Some(core) = &artifact.core else {
            bail!(Unsupported { engine: NAME.into(), reason: "the world has no core module (a composition)".into() });
        };
        if artifact.is_async() {
            bail!(Unsupported { engine: NAME.into(), reason: ASYNC_UNSUPPORTED.into() });
        }
        let mut config = Config::new();
        config.consume_fuel(true);
        let engine = wasmtime::Engine::new(&config).map_err(|e| anyhow!("wasmtime: {e:#}"))?;
        let module = Module::new(&engine, &core.wasm[..]).map_err(|e| anyhow!("wasmtime rejects the guest: {e:#}"))?;
        let mut linker = Linker::<Data>::new(&engine);
        let names = ExportNames::of(&artifact, core);
        for (thunk, (module, name, sig)) in core_imports(&artifact).enumerate() {
            let names = names.clone();
            let ty = FuncType::new(
                &engine,
                sig.params.iter().map(|&t| val_type(t)),
                sig.results.iter().map(|&t| val_type(t)),
            );
            let serve = move |mut caller: Caller<'_, Data>, params: &[Val], results: &mut [Val]| {
                if !caller.data().host.started {
                    // The start function runs: the guest's exports come from the caller.
                    let memory = caller.get_export(&names.memory).and_then(Extern::into_memory);
                    let mut find = |name: &str| caller.get_export(name).and_then(Extern::into_func);
                    let realloc = find(&names.realloc);
                    let dtors: HashMap<String, Func> =
                        names.dtors.iter().filter_map(|d| Some((d.clone(), find(d)?))).collect();
                    let data = caller.data_mut();
                    (data.memory, data.realloc, data.exports) = (memory, realloc, Arc::new(dtors));
                }
                let flats = params.iter().map(val_to_flat).collect::<Result<Vec<_>, _>>().map_err(host_error)?;
                let guest = &mut WasmtimeGuest { ctx: caller.as_context_mut() };
                let out = serve_import(guest, thunk as u32, flats).map_err(host_error)?;
                for (slot, f) in results.iter_mut().zip(out) {
                    *slot = flat_to_val(f);
                }
                Ok(())
            };
            linker.func_new(module, name, ty, serve).map_err(|e| anyhow!("linking {module}::{name}: {e:#}"))?;
        }
        let pre = linker.instantiate_pre(&module).map_err(|e| anyhow!("wasmtime: linking the guest: {e:#}"))?;
        Ok(Box::new(WasmtimeCoreCompiled { engine, pre, artifact }))
    }
}

struct WasmtimeCoreCompiled {
    engine: wasmtime::Engine,
    pre: InstancePre<Data>,
    artifact: Arc<Artifact>,
}

impl CoreStore for Store<Data> {
    type Guest<'a> = WasmtimeGuest<'a>;

    fn guest(&mut self) -> WasmtimeGuest<'_> {
        WasmtimeGuest { ctx: self.as_context_mut() }
    }

    fn refuel(&mut self) -> Result<()> {
        self.set_fuel(FUEL).map_err(|e| anyhow!("{e:#}"))
    }
}

impl Compiled for WasmtimeCoreCompiled {
    fn label(&self) -> &str {
        NAME
    }

    fn instantiate(&mut self, host: Box<dyn Host>) -> Result<Result<Box<dyn Instance + '_>, Trap>> {
        let core = self.artifact.core.as_ref().ok_or_else(|| anyhow!("no core module"))?;
        let limits = wasmtime::StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT).build();
        let host = HostState::new(&self.artifact, host);
        let data = Data { host, memory: None, realloc: None, exports: Arc::default(), limits };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|d| &mut d.limits);
        store.set_fuel(FUEL).map_err(|e| anyhow!("{e:#}"))?;
        let instance = match self.pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(e) => {
                let trap = trap_of(e);
                if trap.kind == TrapKind::Assertion {
                    bail!("wasmtime: instantiation: {trap}");
                }
                return Ok(Err(trap));
            }
        };
        let memory = instance.get_memory(&mut store, &core.memory).context("guest memory")?;
        let realloc = instance.get_func(&mut store, &core.realloc).context("guest realloc")?;
        let exports: HashMap<String, Func> = instance
            .exports(&mut store)
            .filter_map(|e| {
                let name = e.name().to_string();
                e.into_func().map(|f| (name, f))
            })
            .collect();
        let data = store.data_mut();
        (data.memory, data.realloc, data.exports) = (Some(memory), Some(realloc), Arc::new(exports));
        data.host.started = true;
        let init = core.initialize.as_deref().filter(|i| store.data().exports.contains_key(*i));
        if let Err(t) = initialize(&mut store, init)? {
            return Ok(Err(t));
        }
        Ok(Ok(Box::new(CoreInstance { store, artifact: self.artifact.clone() })))
    }
}
