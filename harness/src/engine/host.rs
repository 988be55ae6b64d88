//! The reference host: the host side of the Canonical ABI for a guest that is a plain core
//! module (the core-module build target). It lowers arguments into the guest and lifts results
//! (`canon lift` of an export, called by the host), lifts arguments and lowers results of the
//! guest's import calls (`canon lower`), keeps the guest's handle table and runs post-return.
//! The same code serves wasmi, Wasmtime's core API and the guest model.

use std::collections::VecDeque;

use crate::engine::HostEvent;
use crate::engine::prepared::{ImportType, Prepared};
use crate::reference::context::{BorrowScope, ComponentInstance, LiftLowerContext, Subtask};
use crate::reference::flatten::{MAX_FLAT_PARAMS, MAX_FLAT_RESULTS};
use crate::reference::handles::{DropEffect, canon_resource_drop, canon_resource_new, canon_resource_rep};
use crate::reference::lift_flat::{CoreValueIter, lift_flat_values};
use crate::reference::lower_flat::{SpillTo, lower_flat_values};
use crate::reference::memory::Memory;
use crate::reference::types::{FuncType, StringEncoding};
use crate::reference::value::{Flat, Value};
use crate::reference::{Trap, TrapKind};
use crate::world::wit::GUEST_INSTANCE;

/// A guest core instance the host can call: its memory (with realloc) and its exports.
pub trait CoreGuest: Memory {
    /// Call core export `name`; the guest's import calls are served by `host`.
    fn call(&mut self, name: &str, args: &[Flat], host: &mut HostState) -> Result<Vec<Flat>, Trap>;
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
    /// `false` while the state is lent out to a call (a call that finds it gone is reentrant).
    pub present: bool,
}

impl HostState {
    pub fn new(prepared: &Prepared) -> HostState {
        HostState {
            inst: ComponentInstance::new(GUEST_INSTANCE),
            encoding: prepared.encoding,
            imports: prepared.imports.clone(),
            results: VecDeque::new(),
            events: vec![],
            present: true,
        }
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
            present: false,
        }
    }
}

fn assertion(msg: impl Into<String>) -> Trap {
    Trap::new(TrapKind::Assertion, msg)
}

/// The guest called import `thunk` with `flat_args` (`canon_lower`, synchronous).
pub fn serve_import(
    host: &mut HostState,
    mem: &mut dyn Memory,
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
            if let DropEffect::Destructor { rep, local: false, .. } = canon_resource_drop(&mut host.inst, &rt, arg(0)?)?
            {
                host.events.push(HostEvent::Dtor { rep });
            }
            // A guest-implemented resource's destructor is the guest's business (local).
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
        let mut cx = LiftLowerContext::new(host.encoding, mem, &mut host.inst, BorrowScope::Subtask(&mut subtask));
        lift_flat_values(&mut cx, MAX_FLAT_PARAMS, &mut vi, &ft.param_types())?
    };
    host.events.push(HostEvent::Import { thunk, args });
    let result = host.results.pop_front().ok_or_else(|| assertion("the case gives no result for this import call"))?;
    let values: Vec<Value> = result.into_iter().collect();
    if values.len() != ft.result_type().len() {
        return Err(assertion("the planned import result does not match the function's result type"));
    }
    let flat_results = {
        let mut cx = LiftLowerContext::new(host.encoding, mem, &mut host.inst, BorrowScope::Subtask(&mut subtask));
        lower_flat_values(&mut cx, MAX_FLAT_RESULTS, &values, &ft.result_type(), SpillTo::OutParam(&mut vi))?
    };
    subtask.deliver_resolve(&mut host.inst);
    Ok(flat_results)
}

/// The host calls guest export `k` (`canon_lift`, synchronous): lower the arguments (realloc
/// in the guest), call, lift the results, check the borrow scope, then post-return.
pub fn call_export(
    host: &mut HostState,
    guest: &mut dyn CoreGuest,
    prepared: &Prepared,
    k: u32,
    args: &[Value],
) -> Result<Option<Value>, Trap> {
    let (_, ft) = prepared.exports.get(k as usize).ok_or_else(|| assertion(format!("no export {k}")))?;
    let name = prepared.export_name(k).ok_or_else(|| assertion(format!("no export {k}")))?.to_string();
    let task = host.inst.start_task();
    let flat_args = {
        let mut cx = LiftLowerContext::new(host.encoding, guest, &mut host.inst, BorrowScope::Task(task));
        lower_flat_values(&mut cx, MAX_FLAT_PARAMS, args, &ft.param_types(), SpillTo::Realloc)?
    };
    let flat_results = guest.call(&name, &flat_args, host)?;
    let mut results = {
        let mut cx = LiftLowerContext::new(host.encoding, guest, &mut host.inst, BorrowScope::None);
        lift_flat_values(&mut cx, MAX_FLAT_RESULTS, &mut CoreValueIter::new(flat_results.clone()), &ft.result_type())?
    };
    host.inst.task_return(task)?;
    if let Some(post) = prepared.post_return_name(k) {
        host.inst.may_leave = false;
        let r = guest.call(post, &flat_results, host);
        host.inst.may_leave = true;
        r?;
    }
    host.inst.task_exit(task);
    Ok(results.pop())
}
