//! `canon_lift` and `canon_lower` with the async ABI (CanonicalABI.md "canon lift", "canon
//! lower"): a lifted call runs on a new thread of its task (synchronously, async without a
//! callback (stackful), or async with a callback driven by `CallbackCode`s); a lowered call
//! makes a `Subtask` and either waits for it (sync) or returns its state and index (async).

use std::cell::RefCell;
use std::rc::Rc;

use super::subtask::{Subtask, SubtaskState};
use super::switch::{Cancelled, current_thread};
use super::task::{CanonicalOptions, CoreFunc, FuncInst, HeldContext, OnCancel, OnResolve, OnStart, Task, TaskState};
use super::thread::Thread;
use super::waitable::{Event, EventCode, WaitableRef, WaitableSet};
use super::{InstRef, Obj};
use crate::reference::context::BorrowScope;
use crate::reference::flatten::{
    Context, FlattenOpts, MAX_FLAT_ASYNC_PARAMS, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS, flatten_functype,
};
use crate::reference::handles::{Element, Table};
use crate::reference::lift_flat::{CoreValueIter, lift_flat_values};
use crate::reference::lower_flat::{SpillTo, lower_flat_values};
use crate::reference::reached::reached;
use crate::reference::trap::{Result, TrapKind, assert_that, assertion_failed, trap_if};
use crate::reference::types::FuncType;
use crate::reference::value::{Flat, types_match_values};

fn flatten_opts(opts: &CanonicalOptions) -> FlattenOpts {
    let ptr_type = opts.memory.as_ref().map(|m| m.borrow().ptr_type()).unwrap_or_default();
    FlattenOpts { ptr_type, async_: opts.async_, callback: opts.callback.is_some() }
}

/// `call_and_trap_on_throw(callee, args)` (core exceptions are not modelled: a core trap is a
/// `Trap` already).
pub async fn call_and_trap_on_throw(callee: &CoreFunc, args: Vec<Flat>) -> Result<Vec<Flat>> {
    callee(args).await
}

/// `canon_lift(callee, ft, opts, inst, on_start, on_resolve)`: start the call on a new
/// thread; a synchronous function keeps running the instance's ready threads (the
/// `SyncCallCandidate` choice) until it resolves, and traps when none is ready.
pub fn canon_lift(
    callee: CoreFunc,
    ft: &FuncType,
    opts: &CanonicalOptions,
    inst: &InstRef,
    on_start: OnStart,
    on_resolve: OnResolve,
) -> Result<OnCancel> {
    reached!(canon_lift);
    let task = Task::new(ft.clone(), opts.clone(), inst.clone(), on_start, on_resolve)?;
    let thread = {
        let task = task.clone();
        Thread::new(task.clone(), move || lifted_thread_func(task, callee))
    };
    thread.resume(Cancelled::False)?;
    if !ft.async_ {
        while task.state.get() != TaskState::Resolved {
            let threads: Vec<Rc<Thread>> = inst.borrow().threads.entries().map(|(_, t)| t.clone()).collect();
            let candidates: Vec<Rc<Thread>> = threads.into_iter().filter(|t| t.ready()).collect();
            trap_if(candidates.is_empty(), TrapKind::WouldDeadlock, || {
                "a synchronous call blocked while no thread of its instance is ready".into()
            })?;
            let chosen = task.store().choose(super::choice::ChoicePoint::SyncCallCandidate, candidates.len());
            candidates[chosen].resume(Cancelled::False)?;
        }
    }
    Ok(Rc::new(move || task.request_cancellation()))
}

/// `thread_func` of `canon_lift`.
async fn lifted_thread_func(task: Rc<Task>, callee: CoreFunc) -> Result<()> {
    if !task.enter_implicit_thread().await? {
        return Ok(());
    }
    let (ft, opts, inst) = (task.ft.clone(), task.opts.clone(), task.inst.clone());
    let cx = HeldContext { opts: opts.clone(), inst: inst.clone() };
    let args = task.start()?;
    let flat_args = cx.with(BorrowScope::Task(task.borrow_scope), |cx| {
        lower_flat_values(cx, MAX_FLAT_PARAMS, &args, &ft.param_types(), SpillTo::Realloc)
    })?;
    let flat_ft = flatten_functype(flatten_opts(&opts), &ft, Context::Lift);
    assert_that(types_match_values(&flat_ft.params, &flat_args), "canon_lift: flat arguments match")?;

    if !opts.async_ {
        let flat_results = call_and_trap_on_throw(&callee, flat_args).await?;
        assert_that(types_match_values(&flat_ft.results, &flat_results), "canon_lift: flat results match")?;
        let result = cx.with(BorrowScope::None, |cx| {
            lift_flat_values(cx, MAX_FLAT_RESULTS, &mut CoreValueIter::new(flat_results.clone()), &ft.result_type())
        })?;
        task.return_(result)?;
        if let Some(post_return) = &opts.post_return {
            assert_that(inst.borrow().may_leave, "canon_lift: may_leave before post-return")?;
            inst.borrow_mut().may_leave = false;
            let r = call_and_trap_on_throw(post_return, flat_results).await?;
            assert_that(r.is_empty(), "post-return returns nothing")?;
            inst.borrow_mut().may_leave = true;
        }
        return task.exit_implicit_thread();
    }

    let Some(callback) = opts.callback.clone() else {
        let r = call_and_trap_on_throw(&callee, flat_args).await?;
        assert_that(types_match_values(&flat_ft.results, &r), "canon_lift: a stackful function returns nothing")?;
        return task.exit_implicit_thread();
    };

    let packed = call_and_trap_on_throw(&callee, flat_args).await?;
    let (mut code, mut si) = unpack_callback_result(&packed)?;
    while code != CallbackCode::Exit {
        let implicit = task.implicit_thread();
        let thread = current_thread()?;
        {
            let mut i = inst.borrow_mut();
            let exclusive =
                i.exclusive_thread.as_ref().is_some_and(|t| implicit.as_ref().is_some_and(|m| Rc::ptr_eq(t, m)));
            assert_that(task.needs_exclusive() && exclusive, "callback loop: the implicit thread is exclusive")?;
            i.exclusive_thread = None;
        }
        let no_exclusive: Rc<dyn Fn() -> bool> = {
            let inst = inst.clone();
            Rc::new(move || inst.borrow().exclusive_thread.is_none())
        };
        let event = match code {
            CallbackCode::Yield => {
                let cancelled = thread.wait_until(no_exclusive, true).await?;
                let code = if cancelled.is_true() { EventCode::TaskCancelled } else { EventCode::None };
                Event::new(code, 0, 0)
            }
            CallbackCode::Wait => {
                let wset = inst.borrow().handles.get(si)?.waitable_set("callback WAIT")?;
                WaitableSet::wait_for_event_and(&wset, no_exclusive, true).await?
            }
            CallbackCode::Exit => unreachable!("the loop ends on EXIT"),
        };
        {
            let mut i = inst.borrow_mut();
            assert_that(i.exclusive_thread.is_none(), "callback loop: no exclusive thread before the callback")?;
            i.exclusive_thread = implicit;
        }
        let args = vec![Flat::I32(event.code as u32), Flat::I32(event.p1), Flat::I32(event.p2)];
        let packed = call_and_trap_on_throw(&callback, args).await?;
        (code, si) = unpack_callback_result(&packed)?;
    }
    task.exit_implicit_thread()
}

/// `CallbackCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackCode {
    Exit = 0,
    Yield = 1,
    Wait = 2,
}

impl CallbackCode {
    pub const MAX: u32 = 2;
}

/// `unpack_callback_result(packed)`: the code in the low 4 bits, a waitable set index above.
pub fn unpack_callback_result(results: &[Flat]) -> Result<(CallbackCode, u32)> {
    reached!(unpack_callback_result);
    let [Flat::I32(packed)] = results else {
        return Err(assertion_failed("a callback returns one i32"));
    };
    let code = packed & 0xf;
    trap_if(code > CallbackCode::MAX, TrapKind::InvalidCallbackCode, || {
        format!("callback code {code} (packed {packed:#x}) is above CallbackCode.MAX (2)")
    })?;
    let code = match code {
        0 => CallbackCode::Exit,
        1 => CallbackCode::Yield,
        _ => CallbackCode::Wait,
    };
    const _: () = assert!(Table::<Element>::MAX_LENGTH < 1 << 28);
    Ok((code, packed >> 4))
}

/// `canon_lower(callee, ft, opts, flat_args)`.
pub async fn canon_lower(
    callee: &FuncInst,
    ft: &FuncType,
    opts: &CanonicalOptions,
    flat_args: Vec<Flat>,
) -> Result<Vec<Flat>> {
    reached!(canon_lower);
    let thread = current_thread()?;
    let inst = thread.task.inst.clone();
    trap_if(!inst.borrow().may_leave, TrapKind::MayNotLeave, || "canon_lower: the instance may not leave".into())?;

    let flat_ft = flatten_functype(flatten_opts(opts), ft, Context::Lower);
    assert_that(types_match_values(&flat_ft.params, &flat_args), "canon_lower: flat arguments match")?;
    let flat_args = Rc::new(RefCell::new(CoreValueIter::new(flat_args)));
    let (max_flat_params, max_flat_results) =
        if !opts.async_ { (MAX_FLAT_PARAMS, MAX_FLAT_RESULTS) } else { (MAX_FLAT_ASYNC_PARAMS, 0) };

    let subtask = Obj::new(Subtask::default());
    let cx = HeldContext { opts: opts.clone(), inst: inst.clone() };
    let maybe_on_progress: Rc<RefCell<Rc<dyn Fn()>>> = Rc::new(RefCell::new(Rc::new(|| ())));

    let on_start: OnStart = {
        let (subtask, cx, flat_args, progress, ft) =
            (subtask.clone(), cx.clone(), flat_args.clone(), maybe_on_progress.clone(), ft.clone());
        Box::new(move || {
            let on_progress = progress.borrow().clone();
            on_progress();
            assert_that(subtask.borrow().state == SubtaskState::Starting, "on_start: STARTING")?;
            subtask.borrow_mut().state = SubtaskState::Started;
            let mut s = subtask.borrow_mut();
            cx.with(BorrowScope::Subtask(&mut s), |cx| {
                lift_flat_values(cx, max_flat_params, &mut *flat_args.borrow_mut(), &ft.param_types())
            })
        })
    };
    let on_resolve: OnResolve = {
        let (subtask, cx, flat_args, progress, ft) =
            (subtask.clone(), cx.clone(), flat_args.clone(), maybe_on_progress.clone(), ft.clone());
        Box::new(move |result| {
            let on_progress = progress.borrow().clone();
            on_progress();
            let state = subtask.borrow().state;
            match result {
                None => {
                    assert_that(subtask.borrow().cancellation_requested, "on_resolve(None): cancellation requested")?;
                    let resolved_state = if state == SubtaskState::Starting {
                        SubtaskState::CancelledBeforeStarted
                    } else {
                        assert_that(state == SubtaskState::Started, "on_resolve(None): STARTED")?;
                        SubtaskState::CancelledBeforeReturned
                    };
                    subtask.borrow_mut().resolve(resolved_state, vec![])
                }
                Some(result) => {
                    assert_that(state == SubtaskState::Started, "on_resolve: STARTED")?;
                    let flat_results = {
                        let mut s = subtask.borrow_mut();
                        let mut flat_args = flat_args.borrow_mut();
                        cx.with(BorrowScope::Subtask(&mut s), |cx| {
                            lower_flat_values(
                                cx,
                                max_flat_results,
                                &result,
                                &ft.result_type(),
                                SpillTo::OutParam(&mut *flat_args),
                            )
                        })?
                    };
                    subtask.borrow_mut().resolve(SubtaskState::Returned, flat_results)
                }
            }
        })
    };

    let on_cancel = callee(on_start, on_resolve)?;
    subtask.borrow_mut().on_cancel = Some(on_cancel);
    assert_that(ft.async_ || subtask.borrow().state == SubtaskState::Returned, "canon_lower: a sync callee returned")?;

    if !opts.async_ {
        if !subtask.borrow().resolved() {
            let s = subtask.clone();
            thread.wait_until(Rc::new(move || s.borrow().resolved()), false).await?;
        }
        subtask.borrow_mut().deliver_resolve(&mut inst.borrow_mut())?;
        let flat_results = subtask.borrow().flat_results.clone();
        assert_that(types_match_values(&flat_ft.results, &flat_results), "canon_lower: flat results match")?;
        return Ok(flat_results);
    }
    if subtask.borrow().resolved() {
        subtask.borrow_mut().deliver_resolve(&mut inst.borrow_mut())?;
        assert_that(subtask.borrow().flat_results.is_empty(), "canon_lower: async results go to memory")?;
        return Ok(vec![Flat::I32(SubtaskState::Returned as u32)]);
    }
    let subtaski = inst.borrow_mut().handles.add(Element::Waitable(WaitableRef::Subtask(subtask.clone())))?;
    let on_progress: Rc<dyn Fn()> = {
        let (subtask, inst) = (subtask.clone(), inst.clone());
        Rc::new(move || {
            let (s, inst) = (subtask.clone(), inst.clone());
            let subtask_event = Box::new(move || {
                if s.borrow().resolved() {
                    s.borrow_mut().deliver_resolve(&mut inst.borrow_mut())?;
                }
                Ok(Event::new(EventCode::Subtask, subtaski, s.borrow().state as u32))
            });
            WaitableRef::Subtask(subtask.clone()).set_pending_event(subtask_event);
        })
    };
    *maybe_on_progress.borrow_mut() = on_progress;
    let state = subtask.borrow().state as u32;
    Ok(vec![Flat::I32(state | (subtaski << 4))])
}
