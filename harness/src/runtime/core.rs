//! The reference host: the host side of the Canonical ABI for a guest that is a plain core
//! module (the core-module build target), as every core runtime embeds it (wasmi, Wasmtime's
//! core API, the guest model). Export calls are the reference's `canon_lift`, import calls its
//! `canon_lower`, resource built-ins its `canon_resource_*`; this file adds what only an
//! embedding knows: the host state in the runtime's store (handle table, host slots, the
//! `Host` behind the imports) and the guest's exports and destructors.
//!
//! A runtime shows its instance as a `CoreGuest` from any context (the store between calls, a
//! caller inside an import): memory, realloc, exports, and the host state in the store. No
//! borrow of that state outlives one step, so guest code run from inside the host (realloc,
//! a destructor) finds the state where it always is: `canon resource.rep` from inside realloc
//! reads the table, as the spec says.

use std::sync::Arc;

use anyhow::{Result as AnyResult, anyhow, bail};

use super::artifact::{Artifact, Export};
use super::prepared::ImportType;
use super::resources::{has_handles, is_guest_resource, map_handles};
use super::{Host, Instance};
use crate::encode::signature::requirements;
use crate::reference::canon::{CoreCallee, LiftOptions, canon_lift, canon_lower};
use crate::reference::context::{ComponentInstance, InstanceMemory};
use crate::reference::flatten::Context;
use crate::reference::handles::{DropEffect, canon_resource_drop, canon_resource_new, canon_resource_rep};
use crate::reference::memory::Memory;
use crate::reference::types::{ResourceType, StringEncoding, ValType};
use crate::reference::value::{Flat, Value};
use crate::reference::{Trap, TrapKind};
use crate::world::wit::GUEST_INSTANCE;

/// A guest core instance as the reference host reaches it: its memory and realloc, its
/// exports, and the host state that lives in its store.
pub trait CoreGuest: Memory {
    fn host(&mut self) -> &mut HostState;
    /// Call core export `name` (`call_and_trap_on_throw`).
    fn call_export(&mut self, name: &str, args: &[Flat]) -> Result<Vec<Flat>, Trap>;
}

impl<G: CoreGuest + ?Sized> CoreGuest for &mut G {
    fn host(&mut self) -> &mut HostState {
        (**self).host()
    }
    fn call_export(&mut self, name: &str, args: &[Flat]) -> Result<Vec<Flat>, Trap> {
        (**self).call_export(name, args)
    }
}

impl<G: CoreGuest> InstanceMemory for G {
    fn memory(&self) -> &dyn Memory {
        self
    }
    fn memory_mut(&mut self) -> &mut dyn Memory {
        self
    }
    fn inst(&mut self) -> &mut ComponentInstance {
        &mut self.host().inst
    }
}

impl<G: CoreGuest> CoreCallee for G {
    fn call(&mut self, name: &str, args: &[Flat]) -> Result<Vec<Flat>, Trap> {
        self.call_export(name, args)
    }
}

/// The host's state for one guest instance.
pub struct HostState {
    pub inst: ComponentInstance,
    pub encoding: StringEncoding,
    pub imports: Arc<[ImportType]>,
    /// What the guest's imports reach.
    pub host: Box<dyn Host>,
    /// Guest resources the host holds, by slot (type and rep; `None` once moved or dropped).
    pub slots: Vec<Option<(ResourceType, u32)>>,
    /// The guest's destructor export of each guest resource type (by `ResourceType::id`).
    pub dtors: Vec<(u32, String)>,
    /// Instantiation is over: the start function has run (imports that need memory trap
    /// before, see `START_IMPORT_TRAP`).
    pub started: bool,
    /// Destructor calls in progress (a destructor may drop another resource).
    dtor_depth: u32,
}

/// BuildTargets.md: no memory-needing import may be called during the core `start` function
/// (the host must trap eagerly). A component made by wit-component traps the same way: such
/// imports are lowered through a table filled only after the module is instantiated.
pub const START_IMPORT_TRAP: &str = "a memory-needing import was called during the core start function";

/// The most nested destructor calls (each one is a nested call of the runtime, on the native
/// stack of the harness).
const MAX_DTOR_DEPTH: u32 = 64;

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState").field("inst", &self.inst).field("slots", &self.slots).finish_non_exhaustive()
    }
}

impl HostState {
    /// The host of a fresh instance of `artifact`, whose imports reach `host`.
    pub fn new(artifact: &Artifact, host: Box<dyn Host>) -> HostState {
        HostState {
            inst: ComponentInstance::new(GUEST_INSTANCE),
            encoding: artifact.encoding,
            imports: artifact.import_types(),
            host,
            slots: vec![],
            dtors: artifact.dtors.clone(),
            started: false,
            dtor_depth: 0,
        }
    }

    fn dtor_of(&self, rt: &ResourceType) -> Option<String> {
        self.dtors.iter().find(|(id, _)| *id == rt.id).map(|(_, n)| n.clone())
    }

    /// Host-side handle values → the reps the reference lowers: a guest resource's slot
    /// becomes its rep (emptying the slot when the handle is an own, which moves).
    pub(super) fn slots_to_reps(&mut self, t: &ValType, v: &Value) -> Result<Value, Trap> {
        map_handles(t, v, &mut |rt, own, x| {
            if !is_guest_resource(rt) {
                return Ok(x);
            }
            let slot = self.slots.get_mut(x as usize).ok_or_else(|| assertion(format!("no host slot {x}")))?;
            let rep = slot.as_ref().map(|(_, rep)| *rep).ok_or_else(|| assertion(format!("host slot {x} is empty")))?;
            if own {
                *slot = None;
            }
            Ok(rep)
        })
    }

    /// Lifted reps → host-side handle values: a guest resource the host receives gets a slot.
    pub(super) fn reps_to_slots(&mut self, t: &ValType, v: &Value) -> Result<Value, Trap> {
        map_handles(t, v, &mut |rt, _, rep| {
            if !is_guest_resource(rt) {
                return Ok(rep);
            }
            self.slots.push(Some((rt.clone(), rep)));
            Ok(self.slots.len() as u32 - 1)
        })
    }
}

fn assertion(msg: impl Into<String>) -> Trap {
    Trap::new(TrapKind::Assertion, msg)
}

/// A failure of the `Host` behind an import: a trap of what it reached (a composition's
/// callee), else a failure of the harness.
fn host_failure(e: anyhow::Error) -> Trap {
    e.downcast::<Trap>().unwrap_or_else(|e| assertion(format!("{e:#}")))
}

/// The guest called import `thunk` with `flat_args`: a resource built-in, or a function
/// (`canon_lower`, synchronous, whose callee is the host).
pub fn serve_import<G: CoreGuest>(guest: &mut G, thunk: u32, flat_args: Vec<Flat>) -> Result<Vec<Flat>, Trap> {
    let imports = guest.host().imports.clone();
    let ty = imports.get(thunk as usize).ok_or_else(|| assertion(format!("no import {thunk}")))?;
    let arg = |i: usize| -> Result<u32, Trap> {
        match flat_args.get(i) {
            Some(Flat::I32(v)) => Ok(*v),
            other => Err(assertion(format!("resource built-in argument {other:?}"))),
        }
    };
    match ty {
        ImportType::ResourceNew(rt) => Ok(vec![Flat::I32(canon_resource_new(&mut guest.host().inst, rt, arg(0)?)?)]),
        ImportType::ResourceRep(rt) => Ok(vec![Flat::I32(canon_resource_rep(&guest.host().inst, rt, arg(0)?)?)]),
        ImportType::ResourceDrop(rt) => {
            match canon_resource_drop(&mut guest.host().inst, rt, arg(0)?)? {
                // The host's own resource: the host's destructor runs.
                DropEffect::Destructor { rep, local: false, .. } => {
                    guest.host().host.dtor(rt, rep).map_err(host_failure)?
                }
                // The guest's own resource, dropped by the guest: `rt.dtor(h.rep)` in the guest.
                DropEffect::Destructor { rep, local: true, .. } => {
                    if let Some(dtor) = guest.host().dtor_of(rt) {
                        if guest.host().dtor_depth >= MAX_DTOR_DEPTH {
                            let message = "call stack exhausted (nested destructor calls)";
                            return Err(Trap::new(TrapKind::GuestTrap, message));
                        }
                        guest.host().dtor_depth += 1;
                        let r = guest.call_export(&dtor, &[Flat::I32(rep)]);
                        guest.host().dtor_depth -= 1;
                        r?;
                    }
                }
                DropEffect::None => {}
            }
            Ok(vec![])
        }
        // Core runtimes refuse async worlds (`ASYNC_UNSUPPORTED`); the guest model serves these
        // itself, on the async reference.
        ImportType::Async(builtin) => {
            Err(assertion(format!("{}: not served by the synchronous host", builtin.describe())))
        }
        ImportType::Func { ft, .. } => {
            if !guest.host().started && requirements(ft, Context::Lower).0 {
                return Err(Trap::new(TrapKind::GuestTrap, START_IMPORT_TRAP));
            }
            let encoding = guest.host().encoding;
            canon_lower(encoding, guest, ft, flat_args, |guest, args| {
                guest.host().host.import(thunk, args).map_err(host_failure)
            })
        }
    }
}

/// The host calls `export` of the artifact with host-side values (`canon_lift`, synchronous).
pub fn call_export<G: CoreGuest>(guest: &mut G, export: &Export, args: &[Value]) -> Result<Option<Value>, Trap> {
    let core =
        export.core.as_ref().ok_or_else(|| assertion(format!("export {} has no core function", export.func.name)))?;
    let ft = &export.func.ft;
    if args.len() != ft.params.len() {
        return Err(assertion(format!("{} arguments for {} params", args.len(), ft.params.len())));
    }
    // Host-side handles become reps (most calls have none: their arguments go as they are).
    let mapped;
    let args = match ft.params.iter().any(|(_, t)| has_handles(t)) {
        false => args,
        true => {
            mapped = ft
                .params
                .iter()
                .zip(args)
                .map(|((_, t), v)| guest.host().slots_to_reps(t, v))
                .collect::<Result<Vec<_>, _>>()?;
            &mapped[..]
        }
    };
    let opts = LiftOptions {
        string_encoding: guest.host().encoding,
        callee: &core.name,
        post_return: core.post_return.as_deref(),
    };
    match (&ft.result, canon_lift(&opts, guest, ft, args)?) {
        (Some(t), Some(v)) if has_handles(t) => Ok(Some(guest.host().reps_to_slots(t, &v)?)),
        (_, v) => Ok(v),
    }
}

/// The host drops the guest resource in `slot`: its destructor runs in the guest.
pub fn drop_slot<G: CoreGuest>(guest: &mut G, slot: u32) -> Result<(), Trap> {
    let (rt, rep) = guest
        .host()
        .slots
        .get_mut(slot as usize)
        .and_then(Option::take)
        .ok_or_else(|| assertion(format!("host slot {slot} holds no resource")))?;
    if let Some(dtor) = guest.host().dtor_of(&rt) {
        guest.call_export(&dtor, &[Flat::I32(rep)])?;
    }
    Ok(())
}

/// A core runtime's live instance: its store, shown as a `CoreGuest`.
pub trait CoreStore {
    type Guest<'a>: CoreGuest
    where
        Self: 'a;
    fn guest(&mut self) -> Self::Guest<'_>;
    /// Give the guest `FUEL` for the next call (where the runtime meters fuel).
    fn refuel(&mut self) -> AnyResult<()> {
        Ok(())
    }
}

/// An instance of any core runtime: calls go through the reference host.
pub struct CoreInstance<S> {
    pub store: S,
    pub artifact: Arc<Artifact>,
}

/// A trap of the reference host's own assertions is a harness failure, not a guest trap.
fn guest_trap<T>(r: Result<T, Trap>) -> AnyResult<Result<T, Trap>> {
    match r {
        Err(t) if t.kind == TrapKind::Assertion => bail!("harness assertion: {t}"),
        r => Ok(r),
    }
}

/// Run the guest's initialization export `init`, where it has one: a trap ends instantiation.
pub fn initialize<S: CoreStore>(store: &mut S, init: Option<&str>) -> AnyResult<Result<(), Trap>> {
    match init {
        None => Ok(Ok(())),
        Some(init) => guest_trap(store.guest().call_export(init, &[]).map(drop)),
    }
}

impl<S: CoreStore> Instance for CoreInstance<S> {
    fn call(&mut self, export: usize, args: &[Value]) -> AnyResult<Result<Option<Value>, Trap>> {
        let export = self.artifact.exports.get(export).ok_or_else(|| anyhow!("no export {export}"))?;
        self.store.refuel()?;
        guest_trap(call_export(&mut self.store.guest(), export, args))
    }

    fn drop_resource(&mut self, slot: u32) -> AnyResult<Result<(), Trap>> {
        self.store.refuel()?;
        guest_trap(drop_slot(&mut self.store.guest(), slot))
    }

    fn with_guest_memory(
        &mut self,
        guest: usize,
        f: &mut dyn FnMut(&mut dyn Memory) -> AnyResult<()>,
    ) -> AnyResult<bool> {
        if guest != 0 {
            bail!("a core instance has one guest, not guest {guest}");
        }
        f(&mut self.store.guest())?;
        Ok(true)
    }
}
