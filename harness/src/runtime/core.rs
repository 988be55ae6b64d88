//! The reference host: the host side of the Canonical ABI for a guest that is a plain core
//! module (the core-module build target). It lowers arguments into the guest and lifts results
//! (`canon lift` of an export, called by the host), lifts arguments and lowers results of the
//! guest's import calls (`canon lower`), keeps the guest's handle table and runs post-return.
//! The same code serves every core runtime (wasmi, Wasmtime's core API, the guest model):
//! each provides a `CoreGuest` and a store for `CoreInstance`.

use std::sync::Arc;

use anyhow::{Result as AnyResult, anyhow, bail};

use super::artifact::{Artifact, Export};
use super::prepared::ImportType;
use super::resources::{is_guest_resource, map_handles};
use super::{Host, Instance, NoHost};
use crate::reference::context::{BorrowScope, ComponentInstance, LiftLowerContext, Subtask};
use crate::reference::flatten::{MAX_FLAT_PARAMS, MAX_FLAT_RESULTS};
use crate::reference::handles::{DropEffect, canon_resource_drop, canon_resource_new, canon_resource_rep};
use crate::reference::lift_flat::{CoreValueIter, lift_flat_values};
use crate::reference::lower_flat::{SpillTo, lower_flat_values};
use crate::reference::memory::Memory;
use crate::reference::types::{FuncType, ResourceType, StringEncoding, ValType};
use crate::reference::value::{Flat, Value};
use crate::reference::{Trap, TrapKind};
use crate::world::wit::GUEST_INSTANCE;

/// A guest core instance the host can call: its memory (with realloc) and its exports.
pub trait CoreGuest: Memory {
    /// Call core export `name`; the guest's import calls are served by `host`.
    fn call(&mut self, name: &str, args: &[Flat], host: &mut HostState) -> Result<Vec<Flat>, Trap>;
    /// Itself as plain memory (for the reference's lifting and lowering).
    fn as_memory(&mut self) -> &mut dyn Memory;
}

/// The host's state for one guest instance.
pub struct HostState {
    pub inst: ComponentInstance,
    pub encoding: StringEncoding,
    pub imports: Vec<ImportType>,
    /// What the guest's imports reach.
    pub host: Box<dyn Host>,
    /// Guest resources the host holds, by slot (type and rep; `None` once moved or dropped).
    pub slots: Vec<Option<(ResourceType, u32)>>,
    /// The guest's destructor export of each guest resource type (by `ResourceType::id`).
    pub dtors: Vec<(u32, String)>,
    /// `false` while the state is lent out to a call (a call that finds it gone is reentrant).
    pub present: bool,
}

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
            present: true,
        }
    }

    fn dtor_of(&self, rt: &ResourceType) -> Option<String> {
        self.dtors.iter().find(|(id, _)| *id == rt.id).map(|(_, n)| n.clone())
    }

    /// Host-side handle values → the reps the reference lowers: a guest resource's slot
    /// becomes its rep (emptying the slot when the handle is an own, which moves).
    fn slots_to_reps(&mut self, t: &ValType, v: &Value) -> Result<Value, Trap> {
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
    fn reps_to_slots(&mut self, t: &ValType, v: &Value) -> Result<Value, Trap> {
        map_handles(t, v, &mut |rt, _, rep| {
            if !is_guest_resource(rt) {
                return Ok(rep);
            }
            self.slots.push(Some((rt.clone(), rep)));
            Ok(self.slots.len() as u32 - 1)
        })
    }
}

impl Default for HostState {
    /// The placeholder left while the real state is lent to a call.
    fn default() -> HostState {
        HostState {
            inst: ComponentInstance::new(GUEST_INSTANCE),
            encoding: StringEncoding::Utf8,
            imports: vec![],
            host: Box::new(NoHost),
            slots: vec![],
            dtors: vec![],
            present: false,
        }
    }
}

fn assertion(msg: impl Into<String>) -> Trap {
    Trap::new(TrapKind::Assertion, msg)
}

/// A failure of the host behind the imports, as the harness failure it is.
fn harness(e: anyhow::Error) -> Trap {
    assertion(format!("{e:#}"))
}

/// The guest called import `thunk` with `flat_args` (`canon_lower`, synchronous).
pub fn serve_import(
    host: &mut HostState,
    guest: &mut dyn CoreGuest,
    thunk: u32,
    flat_args: Vec<Flat>,
) -> Result<Vec<Flat>, Trap> {
    if !host.present {
        return Err(Trap::new(
            TrapKind::MayNotLeave,
            "an import was called while the host was busy (from realloc or post-return)",
        ));
    }
    let ty = host.imports.get(thunk as usize).cloned().ok_or_else(|| assertion(format!("no import {thunk}")))?;
    let arg = |i: usize| -> Result<u32, Trap> {
        match flat_args.get(i) {
            Some(Flat::I32(v)) => Ok(*v),
            other => Err(assertion(format!("resource built-in argument {other:?}"))),
        }
    };
    let ft: FuncType = match ty {
        ImportType::ResourceNew(rt) => {
            return Ok(vec![Flat::I32(canon_resource_new(&mut host.inst, &rt, arg(0)?)?)]);
        }
        ImportType::ResourceRep(rt) => {
            return Ok(vec![Flat::I32(canon_resource_rep(&host.inst, &rt, arg(0)?)?)]);
        }
        ImportType::ResourceDrop(rt) => {
            match canon_resource_drop(&mut host.inst, &rt, arg(0)?)? {
                // The host's own resource: the host's destructor runs.
                DropEffect::Destructor { rep, local: false, .. } => host.host.dtor(&rt, rep).map_err(harness)?,
                // The guest's own resource, dropped by the guest: `rt.dtor(h.rep)` in the guest.
                DropEffect::Destructor { rep, local: true, .. } => {
                    if let Some(dtor) = host.dtor_of(&rt) {
                        guest.call(&dtor, &[Flat::I32(rep)], host)?;
                    }
                }
                DropEffect::None => {}
            }
            return Ok(vec![]);
        }
        ImportType::Func { ft, .. } => ft,
    };
    if !host.inst.may_leave {
        return Err(Trap::new(TrapKind::MayNotLeave, "canon_lower: the instance may not leave"));
    }
    let mut subtask = Subtask::default();
    let mut vi = CoreValueIter::new(flat_args);
    let args = {
        let mut cx =
            LiftLowerContext::new(host.encoding, guest.as_memory(), &mut host.inst, BorrowScope::Subtask(&mut subtask));
        lift_flat_values(&mut cx, MAX_FLAT_PARAMS, &mut vi, &ft.param_types())?
    };
    let result = host.host.import(thunk, args).map_err(|e| e.downcast::<Trap>().unwrap_or_else(harness))?;
    let values: Vec<Value> = result.into_iter().collect();
    if values.len() != ft.result_type().len() {
        return Err(assertion("the planned import result does not match the function's result type"));
    }
    let flat_results = {
        let mut cx =
            LiftLowerContext::new(host.encoding, guest.as_memory(), &mut host.inst, BorrowScope::Subtask(&mut subtask));
        lower_flat_values(&mut cx, MAX_FLAT_RESULTS, &values, &ft.result_type(), SpillTo::OutParam(&mut vi))?
    };
    subtask.deliver_resolve(&mut host.inst);
    Ok(flat_results)
}

/// The host calls `export` of the artifact (`canon_lift`, synchronous): see `call_core_export`.
pub fn call_export(
    host: &mut HostState,
    guest: &mut dyn CoreGuest,
    export: &Export,
    args: &[Value],
) -> Result<Option<Value>, Trap> {
    let core =
        export.core.as_ref().ok_or_else(|| assertion(format!("export {} has no core function", export.func.name)))?;
    call_core_export(host, guest, &core.name, core.post_return.as_deref(), &export.func.ft, args)
}

/// The host calls core export `name` of type `ft` (`canon_lift`, synchronous): lower the
/// arguments (realloc in the guest), call, lift the results, check the borrow scope, then
/// call `post_return` if the guest has one.
pub fn call_core_export(
    host: &mut HostState,
    guest: &mut dyn CoreGuest,
    name: &str,
    post_return: Option<&str>,
    ft: &FuncType,
    args: &[Value],
) -> Result<Option<Value>, Trap> {
    let args = ft.params.iter().zip(args).map(|((_, t), v)| host.slots_to_reps(t, v)).collect::<Result<Vec<_>, _>>()?;
    let task = host.inst.start_task();
    let flat_args = {
        let mut cx = LiftLowerContext::new(host.encoding, guest.as_memory(), &mut host.inst, BorrowScope::Task(task));
        lower_flat_values(&mut cx, MAX_FLAT_PARAMS, &args, &ft.param_types(), SpillTo::Realloc)?
    };
    let flat_results = guest.call(name, &flat_args, host)?;
    let results = {
        let mut cx = LiftLowerContext::new(host.encoding, guest.as_memory(), &mut host.inst, BorrowScope::None);
        lift_flat_values(&mut cx, MAX_FLAT_RESULTS, &mut CoreValueIter::new(flat_results.clone()), &ft.result_type())?
    };
    host.inst.task_return(task)?;
    if let Some(post) = post_return {
        host.inst.may_leave = false;
        let r = guest.call(post, &flat_results, host);
        host.inst.may_leave = true;
        r?;
    }
    host.inst.task_exit(task);
    match (&ft.result, results.first()) {
        (Some(t), Some(v)) => Ok(Some(host.reps_to_slots(t, v)?)),
        _ => Ok(None),
    }
}

/// The host drops the guest resource in `slot`: its destructor runs in the guest.
pub fn drop_slot(host: &mut HostState, guest: &mut dyn CoreGuest, slot: u32) -> Result<(), Trap> {
    let (rt, rep) = host
        .slots
        .get_mut(slot as usize)
        .and_then(Option::take)
        .ok_or_else(|| assertion(format!("host slot {slot} holds no resource")))?;
    if let Some(dtor) = host.dtor_of(&rt) {
        guest.call(&dtor, &[Flat::I32(rep)], host)?;
    }
    Ok(())
}

/// A core runtime's live instance: a store that can show the guest (`CoreGuest`) with its host
/// state lent to it.
pub trait CoreStore {
    /// Run `f` on the guest and its host state.
    fn with_guest<R>(&mut self, f: impl FnOnce(&mut dyn CoreGuest, &mut HostState) -> R) -> R;
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

impl<S: CoreStore> Instance for CoreInstance<S> {
    fn call(&mut self, export: usize, args: &[Value]) -> AnyResult<Result<Option<Value>, Trap>> {
        let export = self.artifact.exports.get(export).ok_or_else(|| anyhow!("no export {export}"))?;
        guest_trap(self.store.with_guest(|guest, host| call_export(host, guest, export, args)))
    }

    fn drop_resource(&mut self, slot: u32) -> AnyResult<Result<(), Trap>> {
        guest_trap(self.store.with_guest(|guest, host| drop_slot(host, guest, slot)))
    }
}
