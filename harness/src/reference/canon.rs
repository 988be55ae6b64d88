//! `canon_lift` and `canon_lower` (CanonicalABI.md "canon lift", "canon lower"), synchronous:
//! a component function made of a core function, and a core function made of a component
//! function. The embedding supplies the core side (`CoreCallee`: the guest's exports) and the
//! component side (the `callee` of `canon_lower`: whatever the import reaches).

use super::concurrency::subtask::{Subtask, SubtaskState};
use super::context::{BorrowScope, InstanceMemory, LiftLowerContext};
use super::flatten::{MAX_FLAT_PARAMS, MAX_FLAT_RESULTS};
use super::lift_flat::{CoreValueIter, lift_flat_values};
use super::lower_flat::{SpillTo, lower_flat_values};
use super::trap::{Result, TrapKind, assert_that, trap_if};
use super::types::{FuncType, StringEncoding};
use super::value::{Flat, Value};
use crate::reference::reached::reached;

/// The core instance behind a `canon lift`: its exports, called by name.
pub trait CoreCallee: InstanceMemory {
    /// `call_and_trap_on_throw(callee, thread, args)`.
    fn call(&mut self, name: &str, args: &[Flat]) -> Result<Vec<Flat>>;
}

/// The canonopts of one `canon lift`: the string encoding, the core function and its
/// `post-return` (memory and realloc are the callee's own).
#[derive(Clone, Copy, Debug)]
pub struct LiftOptions<'a> {
    pub string_encoding: StringEncoding,
    pub callee: &'a str,
    pub post_return: Option<&'a str>,
}

/// `canon_lift(opts, inst, ft, callee, caller, on_start, on_resolve)`, synchronous, called by a
/// host with `args`: lower the arguments into the callee (its realloc), call, lift the
/// results, `Task.return_` (no borrow may outlive the call), post-return with `may_leave`
/// cleared, `Task.exit`.
pub fn canon_lift(
    opts: &LiftOptions<'_>,
    callee: &mut dyn CoreCallee,
    ft: &FuncType,
    args: &[Value],
) -> Result<Option<Value>> {
    reached!(canon_lift);
    assert_that(args.len() == ft.params.len(), "canon_lift: one argument per parameter")?;
    let task = callee.inst().start_task();
    let flat_args = {
        let mut cx = LiftLowerContext::joined(opts.string_encoding, &mut *callee, BorrowScope::Task(task));
        lower_flat_values(&mut cx, MAX_FLAT_PARAMS, args, &ft.param_types(), SpillTo::Realloc)?
    };
    let flat_results = callee.call(opts.callee, &flat_args)?;
    let mut result = {
        let mut cx = LiftLowerContext::joined(opts.string_encoding, &mut *callee, BorrowScope::None);
        lift_flat_values(&mut cx, MAX_FLAT_RESULTS, &mut CoreValueIter::new(flat_results.clone()), &ft.result_type())?
    };
    callee.inst().task_return(task)?;
    if let Some(post_return) = opts.post_return {
        callee.inst().may_leave = false;
        let r = callee.call(post_return, &flat_results);
        callee.inst().may_leave = true;
        r?;
    }
    callee.inst().task_exit(task);
    Ok(result.pop())
}

/// `canon_lower(opts, ft, callee, thread, flat_args)`, synchronous: lift the arguments out of
/// the calling instance, call `callee` with them, lower its result back (spilled results go
/// to the caller's out-param), then `Subtask.deliver_resolve` frees what the call borrowed.
pub fn canon_lower<G: InstanceMemory>(
    string_encoding: StringEncoding,
    caller: &mut G,
    ft: &FuncType,
    flat_args: Vec<Flat>,
    callee: impl FnOnce(&mut G, Vec<Value>) -> Result<Option<Value>>,
) -> Result<Vec<Flat>> {
    reached!(canon_lower);
    trap_if(!caller.inst().may_leave, TrapKind::MayNotLeave, || "canon_lower: the instance may not leave".into())?;
    let mut subtask = Subtask::default();
    let mut flat_args = CoreValueIter::new(flat_args);
    let args = {
        let mut cx = LiftLowerContext::joined(string_encoding, caller, BorrowScope::Subtask(&mut subtask));
        lift_flat_values(&mut cx, MAX_FLAT_PARAMS, &mut flat_args, &ft.param_types())?
    };
    let result: Vec<Value> = callee(caller, args)?.into_iter().collect();
    assert_that(result.len() == ft.result_type().len(), "canon_lower: the callee's result does not match its type")?;
    let flat_results = {
        let mut cx = LiftLowerContext::joined(string_encoding, caller, BorrowScope::Subtask(&mut subtask));
        lower_flat_values(&mut cx, MAX_FLAT_RESULTS, &result, &ft.result_type(), SpillTo::OutParam(&mut flat_args))?
    };
    subtask.resolve(SubtaskState::Returned, flat_results.clone())?;
    subtask.deliver_resolve(caller.inst())?;
    Ok(flat_results)
}
