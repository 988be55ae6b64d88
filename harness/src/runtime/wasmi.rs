//! `core`: the guest as a plain core module (cm32p2 or legacy names) on wasmi, a core-only
//! engine; the host side of the Canonical ABI is the reference host. This is the core-module
//! build target, working.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use wasmi::{AsContextMut, Caller, Config, Extern, Func, FuncType, Linker, Module, Store, Val, ValType};

use super::artifact::{Artifact, CoreModule};
use super::core::{CoreGuest, CoreInstance, CoreStore, HostState, serve_import};
use super::{Compiled, FUEL, Host, Instance, Runtime, Unsupported};
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

pub(crate) fn to_val(f: Flat) -> Val {
    match f {
        Flat::I32(v) => Val::I32(v as i32),
        Flat::I64(v) => Val::I64(v as i64),
        Flat::F32(v) => Val::F32(wasmi::F32::from_bits(v.to_bits())),
        Flat::F64(v) => Val::F64(wasmi::F64::from_bits(v.to_bits())),
    }
}

pub(crate) fn from_val(v: &Val) -> Result<Flat, Trap> {
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

pub(crate) fn zero(t: &ValType) -> Val {
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

/// Store data: the reference host (lent to each guest call), the guest's exports (for calls
/// made from inside imports) and the store's limits.
pub(crate) struct Ctx {
    host: HostState,
    exports: Arc<HashMap<String, Func>>,
    limits: wasmi::StoreLimits,
}

/// Store data that holds the reference host while guest code runs, so imports can reach it.
pub(crate) trait HostSlot {
    fn host_slot(&mut self) -> &mut HostState;
}

impl HostSlot for Ctx {
    fn host_slot(&mut self) -> &mut HostState {
        &mut self.host
    }
}

/// The guest seen through any wasmi context (the store, or a caller inside a host function):
/// its memory, realloc and exports (resolved once per instance). Memory and realloc are absent
/// only where smith's start function runs with no wasm caller.
pub(crate) struct WasmiGuest<C> {
    pub(crate) ctx: C,
    pub(crate) memory: Option<wasmi::Memory>,
    pub(crate) realloc: Option<Func>,
    pub(crate) exports: Arc<HashMap<String, Func>>,
}

fn no_memory() -> Trap {
    Trap::new(TrapKind::Assertion, "the guest's memory or realloc is out of reach")
}

impl<C: AsContextMut> Memory for WasmiGuest<C> {
    fn len(&self) -> u64 {
        self.memory.map_or(0, |m| m.data(self.ctx.as_context()).len() as u64)
    }

    fn read(&self, ptr: u64, out: &mut [u8]) -> Result<(), Trap> {
        read_at(self.memory.ok_or_else(no_memory)?.data(self.ctx.as_context()), ptr, out)
    }

    fn write(&mut self, ptr: u64, bytes: &[u8]) -> Result<(), Trap> {
        write_at(self.memory.ok_or_else(no_memory)?.data_mut(self.ctx.as_context_mut()), ptr, bytes)
    }

    fn realloc(&mut self, old_ptr: u64, old_size: u64, align: u64, new_size: u64) -> Result<u64, Trap> {
        let args = [old_ptr, old_size, align, new_size].map(|v| Val::I32(v as u32 as i32));
        let mut out = [Val::I32(0)];
        self.realloc.ok_or_else(no_memory)?.call(self.ctx.as_context_mut(), &args, &mut out).map_err(trap_of)?;
        Ok(u64::from(from_val(&out[0])?.bits() as u32))
    }
}

impl<C: AsContextMut> CoreGuest for WasmiGuest<C>
where
    C::Data: HostSlot,
{
    fn call(&mut self, name: &str, args: &[Flat], host: &mut HostState) -> Result<Vec<Flat>, Trap> {
        let func = *self
            .exports
            .get(name)
            .ok_or_else(|| Trap::new(TrapKind::Assertion, format!("guest has no export {name}")))?;
        let mut results: Vec<Val> = func.ty(self.ctx.as_context()).results().iter().map(zero).collect();
        let vals: Vec<Val> = args.iter().map(|&f| to_val(f)).collect();
        // Lend the host to the store for the call, so imports can reach it.
        std::mem::swap(self.ctx.as_context_mut().data_mut().host_slot(), host);
        let r = func.call(self.ctx.as_context_mut(), &vals, &mut results);
        std::mem::swap(self.ctx.as_context_mut().data_mut().host_slot(), host);
        r.map_err(trap_of)?;
        results.iter().map(from_val).collect()
    }

    fn as_memory(&mut self) -> &mut dyn Memory {
        self
    }
}

/// One core import the reference host serves: its module and name, its core signature.
pub(crate) struct CoreImport<'a> {
    pub module: &'a str,
    pub name: &'a str,
    pub sig: &'a CoreFuncType,
}

/// A linker whose import k is `canon lower` of thunk k by the reference host (`serve_import`),
/// reaching the guest through its exports `memory` and `realloc`.
pub(crate) fn reference_linker<'a>(
    engine: &wasmi::Engine,
    imports: impl IntoIterator<Item = CoreImport<'a>>,
    memory: &str,
    realloc: &str,
) -> Result<Linker<Ctx>> {
    let mut linker = Linker::<Ctx>::new(engine);
    for (k, imp) in imports.into_iter().enumerate() {
        let ty =
            FuncType::new(imp.sig.params.iter().map(|&t| val_type(t)), imp.sig.results.iter().map(|&t| val_type(t)));
        let (memory_name, realloc_name) = (memory.to_string(), realloc.to_string());
        linker
            .func_new(
                imp.module,
                imp.name,
                ty,
                move |mut caller: Caller<'_, Ctx>, params: &[Val], results: &mut [Val]| {
                    let flats = params
                        .iter()
                        .map(from_val)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|t| wasmi::Error::host(HostTrap(t)))?;
                    let memory = caller.get_export(&memory_name).and_then(Extern::into_memory);
                    let realloc = caller.get_export(&realloc_name).and_then(Extern::into_func);
                    let (Some(memory), Some(realloc)) = (memory, realloc) else {
                        return Err(wasmi::Error::host(HostTrap(Trap::new(
                            TrapKind::Assertion,
                            "guest lacks memory or realloc",
                        ))));
                    };
                    let exports = caller.data().exports.clone();
                    let mut host = std::mem::take(&mut caller.data_mut().host);
                    let r = {
                        let mut guest =
                            WasmiGuest { ctx: &mut caller, memory: Some(memory), realloc: Some(realloc), exports };
                        serve_import(&mut host, &mut guest, k as u32, flats)
                    };
                    caller.data_mut().host = host;
                    let out = r.map_err(|t| wasmi::Error::host(HostTrap(t)))?;
                    for (slot, f) in results.iter_mut().zip(out) {
                        *slot = to_val(f);
                    }
                    Ok(())
                },
            )
            .map_err(|e| anyhow!("linking {}::{}: {e}", imp.module, imp.name))?;
    }
    Ok(linker)
}

/// A fresh instance of `module` with fuel and a memory limit; its host state is returned to
/// the caller, who lends it to each call (`WasmiGuest::call`).
pub(crate) fn instantiate(
    engine: &wasmi::Engine,
    linker: &Linker<Ctx>,
    module: &Module,
    host: HostState,
    memory: &str,
    realloc: &str,
) -> Result<(Store<Ctx>, HostState, WasmiGuestParts)> {
    let limits = wasmi::StoreLimitsBuilder::new().memory_size(super::MEMORY_LIMIT).build();
    let mut store = Store::new(engine, Ctx { host, exports: Arc::default(), limits });
    store.limiter(|c| &mut c.limits);
    store.set_fuel(FUEL).map_err(|e| anyhow!("{e}"))?;
    let instance =
        linker.instantiate_and_start(&mut store, module).map_err(|e| anyhow!("wasmi: instantiation: {e}"))?;
    let memory = instance.get_memory(&store, memory).context("guest memory")?;
    let realloc = instance.get_func(&store, realloc).context("guest realloc")?;
    let exports = func_exports(&instance, &store);
    store.data_mut().exports = exports.clone();
    let mut host = std::mem::take(&mut store.data_mut().host);
    host.present = true;
    Ok((store, host, WasmiGuestParts { memory, realloc, exports }))
}

/// An instance's function exports by name.
pub(crate) fn func_exports(instance: &wasmi::Instance, store: impl wasmi::AsContext) -> Arc<HashMap<String, Func>> {
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

/// What a `WasmiGuest` needs besides its context.
pub(crate) struct WasmiGuestParts {
    pub memory: wasmi::Memory,
    pub realloc: Func,
    pub exports: Arc<HashMap<String, Func>>,
}

impl WasmiGuestParts {
    pub(crate) fn guest<C: AsContextMut>(&self, ctx: C) -> WasmiGuest<C> {
        WasmiGuest { ctx, memory: Some(self.memory), realloc: Some(self.realloc), exports: self.exports.clone() }
    }
}

/// The `core` runtime.
pub fn runtime() -> Box<dyn Runtime> {
    Box::new(WasmiRuntime)
}

struct WasmiRuntime;

impl Runtime for WasmiRuntime {
    fn compile(&self, artifact: Arc<Artifact>) -> Result<Box<dyn Compiled>> {
        let Some(core) = &artifact.core else {
            bail!(Unsupported { engine: "core".into(), reason: "the world has no core module (a composition)".into() });
        };
        let mut config = Config::default();
        config.consume_fuel(true);
        let engine = wasmi::Engine::new(&config);
        let module = Module::new(&engine, &core.wasm[..]).map_err(|e| anyhow!("wasmi rejects the guest: {e}"))?;
        let linker = reference_linker(&engine, core_imports(&artifact), &core.memory, &core.realloc)?;
        Ok(Box::new(WasmiCompiled { engine, module, linker, artifact }))
    }
}

/// The core imports of an artifact, by thunk.
pub(crate) fn core_imports(artifact: &Artifact) -> impl Iterator<Item = CoreImport<'_>> {
    artifact.imports.iter().filter_map(|i| match i {
        super::artifact::Import::Func { core: Some(c), .. } | super::artifact::Import::Builtin { core: c, .. } => {
            Some(CoreImport { module: &c.module, name: &c.name, sig: &c.sig })
        }
        super::artifact::Import::Func { core: None, .. } => None,
    })
}

struct WasmiCompiled {
    engine: wasmi::Engine,
    module: Module,
    linker: Linker<Ctx>,
    artifact: Arc<Artifact>,
}

/// A live wasmi instance: its store and the host state lent to each call.
pub(crate) struct WasmiStore {
    pub(crate) store: Store<Ctx>,
    pub(crate) host: HostState,
    pub(crate) parts: WasmiGuestParts,
}

impl CoreStore for WasmiStore {
    fn with_guest<R>(&mut self, f: impl FnOnce(&mut dyn CoreGuest, &mut HostState) -> R) -> R {
        f(&mut self.parts.guest(&mut self.store), &mut self.host)
    }
}

impl WasmiStore {
    /// A fresh instance of the artifact's core module; its initialization export runs.
    pub(crate) fn new(
        engine: &wasmi::Engine,
        linker: &Linker<Ctx>,
        module: &Module,
        core: &CoreModule,
        host: HostState,
    ) -> Result<WasmiStore> {
        let (store, host, parts) = instantiate(engine, linker, module, host, &core.memory, &core.realloc)?;
        let mut s = WasmiStore { store, host, parts };
        if let Some(init) = core.initialize.as_deref().filter(|i| s.parts.exports.contains_key(*i)) {
            s.with_guest(|guest, host| guest.call(init, &[], host)).map_err(|t| anyhow!("{init} trapped: {t}"))?;
        }
        Ok(s)
    }
}

impl Compiled for WasmiCompiled {
    fn label(&self) -> &str {
        "core"
    }

    fn instantiate(&mut self, host: Box<dyn Host>) -> Result<Box<dyn Instance + '_>> {
        let core = self.artifact.core.as_ref().ok_or_else(|| anyhow!("no core module"))?;
        let host = HostState::new(&self.artifact, host);
        let store = WasmiStore::new(&self.engine, &self.linker, &self.module, core, host)?;
        Ok(Box::new(CoreInstance { store, artifact: self.artifact.clone() }))
    }
}
