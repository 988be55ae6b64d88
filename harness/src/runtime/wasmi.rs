//! `core`: the guest as a plain core module (cm32p2 or legacy names) on wasmi, a core-only
//! engine; the host side of the Canonical ABI is the reference host (`core`). This is the
//! core-module build target, working.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use wasmi::{
    AsContext, AsContextMut, Caller, Config, Func, FuncType, Linker, Module, Store, StoreContextMut, Val, ValType,
};

use super::artifact::{Artifact, CoreModule};
use super::core::{CoreGuest, CoreInstance, CoreStore, HostState, initialize, serve_import};
use super::{ASYNC_UNSUPPORTED, Compiled, FUEL, Host, Instance, MEMORY_LIMIT, Runtime, Unsupported};
use crate::reference::flatten::CoreFuncType;
use crate::reference::memory::{Memory, read_at, write_at};
use crate::reference::types::CoreType;
use crate::reference::value::Flat;
use crate::reference::{Trap, TrapKind};

/// A trap raised by the reference host inside an import, carried through wasmi.
#[derive(Debug)]
pub(crate) struct HostTrap(pub(crate) Trap);

impl fmt::Display for HostTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl wasmi::errors::HostError for HostTrap {}

pub(crate) fn val_type(t: CoreType) -> ValType {
    match t {
        CoreType::I32 => ValType::I32,
        CoreType::I64 => ValType::I64,
        CoreType::F32 => ValType::F32,
        CoreType::F64 => ValType::F64,
    }
}

pub(crate) fn flat_to_val(f: Flat) -> Val {
    match f {
        Flat::I32(v) => Val::I32(v as i32),
        Flat::I64(v) => Val::I64(v as i64),
        Flat::F32(v) => Val::F32(wasmi::F32::from_bits(v.to_bits())),
        Flat::F64(v) => Val::F64(wasmi::F64::from_bits(v.to_bits())),
    }
}

pub(crate) fn val_to_flat(v: &Val) -> Result<Flat, Trap> {
    Ok(match v {
        Val::I32(v) => Flat::I32(*v as u32),
        Val::I64(v) => Flat::I64(*v as u64),
        Val::F32(v) => Flat::F32(f32::from_bits(v.to_bits())),
        Val::F64(v) => Flat::F64(f64::from_bits(v.to_bits())),
        other => {
            return Err(Trap::new(TrapKind::Assertion, format!("unexpected value {other:?}")));
        }
    })
}

fn zero(t: &ValType) -> Val {
    match t {
        ValType::I64 => Val::I64(0),
        ValType::F32 => Val::F32(wasmi::F32::from_bits(0)),
        ValType::F64 => Val::F64(wasmi::F64::from_bits(0)),
        _ => Val::I32(0),
    }
}

/// A wasmi error as a trap: our own host traps come back as they were raised; everything else
/// is core wasm trapping by itself.
pub(crate) fn trap_of(e: wasmi::Error) -> Trap {
    if let Some(HostTrap(t)) = e.downcast_ref::<HostTrap>() {
        return t.clone();
    }
    Trap::new(TrapKind::GuestTrap, format!("wasmi: {e}"))
}

pub(crate) fn host_error(t: Trap) -> wasmi::Error {
    wasmi::Error::host(HostTrap(t))
}

/// What the store of a core instance holds: the reference host's state and the guest's
/// memory, realloc and exports (known once it is instantiated).
pub(crate) struct CoreData {
    pub host: HostState,
    pub memory: Option<wasmi::Memory>,
    pub realloc: Option<Func>,
    pub exports: Arc<HashMap<String, Func>>,
}

impl CoreData {
    pub(crate) fn new(host: HostState) -> CoreData {
        CoreData { host, memory: None, realloc: None, exports: Arc::default() }
    }
}

/// Store data that holds a `CoreData` (with more beside it, for smith's runs).
pub(crate) trait HasCore: 'static {
    fn core(&self) -> &CoreData;
    fn core_mut(&mut self) -> &mut CoreData;
}

/// The store data of the `core` runtime.
pub(crate) struct Data {
    core: CoreData,
    limits: wasmi::StoreLimits,
}

impl HasCore for Data {
    fn core(&self) -> &CoreData {
        &self.core
    }
    fn core_mut(&mut self) -> &mut CoreData {
        &mut self.core
    }
}

/// The guest seen through any wasmi context (the store, or a caller inside a host function).
pub(crate) struct WasmiGuest<'a, T> {
    pub(crate) ctx: StoreContextMut<'a, T>,
}

fn out_of_reach() -> Trap {
    Trap::new(TrapKind::Assertion, "the guest's memory or realloc is out of reach")
}

impl<T: HasCore> Memory for WasmiGuest<'_, T> {
    fn len(&self) -> u64 {
        self.ctx.data().core().memory.map_or(0, |m| m.data(self.ctx.as_context()).len() as u64)
    }

    fn read(&self, ptr: u64, out: &mut [u8]) -> Result<(), Trap> {
        let memory = self.ctx.data().core().memory.ok_or_else(out_of_reach)?;
        read_at(memory.data(self.ctx.as_context()), ptr, out)
    }

    fn write(&mut self, ptr: u64, bytes: &[u8]) -> Result<(), Trap> {
        let memory = self.ctx.data().core().memory.ok_or_else(out_of_reach)?;
        write_at(memory.data_mut(self.ctx.as_context_mut()), ptr, bytes)
    }

    fn realloc(&mut self, old_ptr: u64, old_size: u64, align: u64, new_size: u64) -> Result<u64, Trap> {
        let realloc = self.ctx.data().core().realloc.ok_or_else(out_of_reach)?;
        let args = [old_ptr, old_size, align, new_size].map(|v| Val::I32(v as u32 as i32));
        let mut out = [Val::I32(0)];
        realloc.call(self.ctx.as_context_mut(), &args, &mut out).map_err(trap_of)?;
        Ok(u64::from(val_to_flat(&out[0])?.bits() as u32))
    }
}

impl<T: HasCore> CoreGuest for WasmiGuest<'_, T> {
    fn host(&mut self) -> &mut HostState {
        &mut self.ctx.data_mut().core_mut().host
    }

    fn call_export(&mut self, name: &str, args: &[Flat]) -> Result<Vec<Flat>, Trap> {
        let func = *self
            .ctx
            .data()
            .core()
            .exports
            .get(name)
            .ok_or_else(|| Trap::new(TrapKind::Assertion, format!("guest has no export {name}")))?;
        let mut results: Vec<Val> = func.ty(self.ctx.as_context()).results().iter().map(zero).collect();
        let vals: Vec<Val> = args.iter().map(|&f| flat_to_val(f)).collect();
        func.call(self.ctx.as_context_mut(), &vals, &mut results).map_err(trap_of)?;
        results.iter().map(val_to_flat).collect()
    }
}

/// A host function that is import `thunk` of the guest, served by the reference host. During
/// the start function the store does not know the guest's exports yet: the memory, realloc
/// and destructors of `names` come from the caller.
pub(crate) fn serve_thunk<T: HasCore>(
    caller: &mut Caller<'_, T>,
    names: &ExportNames,
    thunk: u32,
    params: &[Val],
    results: &mut [Val],
) -> Result<(), wasmi::Error> {
    if !caller.data().core().host.started {
        let find = |name: &str| caller.get_export(name).and_then(wasmi::Extern::into_func);
        let memory = caller.get_export(&names.memory).and_then(wasmi::Extern::into_memory);
        let (realloc, dtors): (_, HashMap<String, Func>) =
            (find(&names.realloc), names.dtors.iter().filter_map(|d| Some((d.clone(), find(d)?))).collect());
        let core = caller.data_mut().core_mut();
        (core.memory, core.realloc, core.exports) = (memory, realloc, Arc::new(dtors));
    }
    let flats = params.iter().map(val_to_flat).collect::<Result<Vec<_>, _>>().map_err(host_error)?;
    let out = serve_import(&mut WasmiGuest { ctx: caller.as_context_mut() }, thunk, flats).map_err(host_error)?;
    for (slot, f) in results.iter_mut().zip(out) {
        *slot = flat_to_val(f);
    }
    Ok(())
}

/// The core exports an import may need before instantiation is over.
#[derive(Clone, Debug)]
pub(crate) struct ExportNames {
    pub memory: String,
    pub realloc: String,
    pub dtors: Vec<String>,
}

impl ExportNames {
    pub(crate) fn of(artifact: &Artifact, core: &CoreModule) -> ExportNames {
        let dtors = artifact.dtors.iter().map(|(_, name)| name.clone()).collect();
        ExportNames { memory: core.memory.clone(), realloc: core.realloc.clone(), dtors }
    }
}

/// The core function type of a signature.
pub(crate) fn func_type(sig: &CoreFuncType) -> FuncType {
    FuncType::new(sig.params.iter().map(|&t| val_type(t)), sig.results.iter().map(|&t| val_type(t)))
}

/// The core imports of an artifact, by thunk: (module, name, signature).
pub(crate) fn core_imports(artifact: &Artifact) -> impl Iterator<Item = (&str, &str, &CoreFuncType)> {
    artifact.imports.iter().filter_map(|i| i.core().map(|c| (c.module.as_str(), c.name.as_str(), &c.sig)))
}

/// An instance's function exports by name.
pub(crate) fn func_exports(instance: &wasmi::Instance, store: impl AsContext) -> Arc<HashMap<String, Func>> {
    Arc::new(
        instance
            .exports(&store)
            .filter_map(|e| {
                let name = e.name().to_string();
                e.into_func().map(|f| (name, f))
            })
            .collect(),
    )
}

/// Record the guest's memory, realloc and exports in the store, once it is instantiated.
pub(crate) fn attach<T: HasCore>(store: &mut Store<T>, instance: &wasmi::Instance, core: &CoreModule) -> Result<()> {
    let memory = instance.get_memory(&*store, &core.memory).context("guest memory")?;
    let realloc = instance.get_func(&*store, &core.realloc).context("guest realloc")?;
    let exports = func_exports(instance, &*store);
    let data = store.data_mut().core_mut();
    (data.memory, data.realloc, data.exports) = (Some(memory), Some(realloc), exports);
    data.host.started = true;
    Ok(())
}

/// A wasmi failure of an instantiation: a trap, or (a link error) a failure of the harness.
pub(crate) fn instantiation_trap(e: wasmi::Error) -> Result<Trap> {
    if matches!(e.kind(), wasmi::errors::ErrorKind::Linker(_)) {
        bail!("wasmi cannot link the guest: {e}");
    }
    let trap = trap_of(e);
    if trap.kind == TrapKind::Assertion {
        bail!("harness assertion in the reference host: {trap}");
    }
    Ok(trap)
}

/// The name of this runtime.
pub const NAME: &str = "core";

/// The `core` runtime.
pub fn runtime() -> Box<dyn Runtime> {
    Box::new(WasmiRuntime)
}

struct WasmiRuntime;

impl Runtime for WasmiRuntime {
    fn compile(&self, artifact: Arc<Artifact>) -> Result<Box<dyn Compiled>> {
        let Some(core) = &artifact.core else {
            bail!(Unsupported { engine: NAME.into(), reason: "the world has no core module (a composition)".into() });
        };
        if artifact.is_async() {
            bail!(Unsupported { engine: NAME.into(), reason: ASYNC_UNSUPPORTED.into() });
        }
        let wasm = &core.wasm;
        let mut config = Config::default();
        config.consume_fuel(true);
        let engine = wasmi::Engine::new(&config);
        let module = Module::new(&engine, &wasm[..]).map_err(|e| anyhow!("wasmi rejects the guest: {e}"))?;
        let mut linker = Linker::<Data>::new(&engine);
        let names = ExportNames::of(&artifact, core);
        for (thunk, (module, name, sig)) in core_imports(&artifact).enumerate() {
            let names = names.clone();
            let serve = move |mut caller: Caller<'_, Data>, params: &[Val], results: &mut [Val]| {
                serve_thunk(&mut caller, &names, thunk as u32, params, results)
            };
            linker
                .func_new(module, name, func_type(sig), serve)
                .map_err(|e| anyhow!("linking {module}::{name}: {e}"))?;
        }
        Ok(Box::new(WasmiCompiled { engine, module, linker, artifact }))
    }
}

struct WasmiCompiled {
    engine: wasmi::Engine,
    module: Module,
    linker: Linker<Data>,
    artifact: Arc<Artifact>,
}

impl CoreStore for Store<Data> {
    type Guest<'a> = WasmiGuest<'a, Data>;

    fn guest(&mut self) -> WasmiGuest<'_, Data> {
        WasmiGuest { ctx: self.as_context_mut() }
    }

    fn refuel(&mut self) -> Result<()> {
        self.set_fuel(FUEL).map_err(|e| anyhow!("{e}"))
    }
}

impl Compiled for WasmiCompiled {
    fn label(&self) -> &str {
        NAME
    }

    fn instantiate(&mut self, host: Box<dyn Host>) -> Result<Result<Box<dyn Instance + '_>, Trap>> {
        let core = self.artifact.core.as_ref().ok_or_else(|| anyhow!("no core module"))?;
        let limits = wasmi::StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT).build();
        let data = Data { core: CoreData::new(HostState::new(&self.artifact, host)), limits };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|d| &mut d.limits);
        store.set_fuel(FUEL).map_err(|e| anyhow!("{e}"))?;
        let instance = match self.linker.instantiate_and_start(&mut store, &self.module) {
            Ok(instance) => instance,
            Err(e) => return Ok(Err(instantiation_trap(e)?)),
        };
        attach(&mut store, &instance, core)?;
        let init = core.initialize.as_deref().filter(|i| store.data().core.exports.contains_key(*i));
        if let Err(t) = initialize(&mut store, init)? {
            return Ok(Err(t));
        }
        Ok(Ok(Box::new(CoreInstance { store, artifact: self.artifact.clone() })))
    }
}
