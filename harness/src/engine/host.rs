//! The reference host: the host side of the Canonical ABI for a guest that is a plain core
//! module (the core-module build target). It lowers arguments into the guest and lifts results
//! (`canon lift` of an export, called by the host), lifts arguments and lowers results of the
//! guest's import calls (`canon lower`), keeps the guest's handle table and runs post-return.
//! The same code serves wasmi, Wasmtime's core API and the guest model.

use std::collections::VecDeque;

use crate::engine::HostEvent;
use crate::engine::prepared::{ImportType, Prepared};
use crate::engine::resources::{is_guest_resource, map_handles};
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

/// Where a guest's import calls go instead of the host's planned answers: the other guest of a
/// composition (its callee), which the reference reaches through `canon_lift`.
pub trait Forward {
    /// The import `thunk` was called with these (lifted) arguments; the callee's result.
    fn call(&mut self, thunk: u32, args: Vec<Value>) -> Result<Option<Value>, Trap>;
    /// The guest dropped the last own handle of host resource `rt` with this rep: the host's
    /// destructor runs (recorded as a host event either way).
    fn host_dtor(&mut self, _rt: &ResourceType, _rep: u32) -> Result<(), Trap> {
        Ok(())
    }
    fn as_any(&mut self) -> &mut dyn std::any::Any;
}

impl std::fmt::Debug for dyn Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Forward")
    }
}

/// The host's state for one guest instance.
#[derive(Debug)]
pub struct HostState {
    pub inst: ComponentInstance,
    pub encoding: StringEncoding,
    pub imports: Vec<ImportType>,
    /// What the host's imports return, in call order.
    pub results: VecDeque<Option<Value>>,
    pub events: Vec<HostEvent>,
    /// Guest resources the host holds, by slot (type and rep; `None` once moved or dropped).
    pub slots: Vec<Option<(ResourceType, u32)>>,
    /// The guest's destructor export of each guest resource type (by `ResourceType::id`).
    pub dtors: Vec<(u32, String)>,
    /// `false` while the state is lent out to a call (a call that finds it gone is reentrant).
    pub present: bool,
    /// Set in a composition: imports reach the callee instead of the host.
    pub forward: Option<Box<dyn Forward>>,
}

impl HostState {
    pub fn new(prepared: &Prepared) -> HostState {
        HostState {
            inst: ComponentInstance::new(GUEST_INSTANCE),
            encoding: prepared.encoding,
            imports: prepared.imports.clone(),
            results: VecDeque::new(),
            events: vec![],
            slots: vec![],
            dtors: prepared.dtors.clone(),
            present: true,
            forward: None,
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
            results: VecDeque::new(),
            events: vec![],
            slots: vec![],
            dtors: vec![],
            present: false,
            forward: None,
        }
    }
}

fn assertion(msg: impl Into<String>) -> Trap {
    Trap::new(TrapKind::Assertion, msg)
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
                DropEffect::Destructor { rep, local: false, .. } => {
                    host.events.push(HostEvent::Dtor { rep });
                    if let Some(forward) = host.forward.as_mut() {
                        forward.host_dtor(&rt, rep)?;
                    }
                }
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
    let result = match host.forward.as_mut() {
        Some(forward) => forward.call(thunk, args)?,
        None => {
            host.events.push(HostEvent::Import { thunk, args });
            host.results.pop_front().ok_or_else(|| assertion("the case gives no result for this import call"))?
        }
    };
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

/// The host calls guest export `k` (`canon_lift`, synchronous): see `call_core_export`.
pub fn call_export(
    host: &mut HostState,
    guest: &mut dyn CoreGuest,
    prepared: &Prepared,
    k: u32,
    args: &[Value],
) -> Result<Option<Value>, Trap> {
    let (_, ft) = prepared.exports.get(k as usize).ok_or_else(|| assertion(format!("no export {k}")))?;
    let name = prepared.export_name(k).ok_or_else(|| assertion(format!("no export {k}")))?;
    call_core_export(host, guest, name, prepared.post_return_name(k), ft, args)
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
