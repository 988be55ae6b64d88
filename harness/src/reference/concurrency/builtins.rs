//! The 🔀 async built-ins and the 🧵 thread built-ins (CanonicalABI.md "canon context.get"
//! through "canon thread.yield-then-promote"), each with every `trap_if` of the spec. They run
//! on a thread of the store (`current_thread()`), take and return flat core values as the
//! spec's do, and those that may block are `async`.

use std::rc::Rc;

use super::buffer::BufferGuestImpl;
use super::canon::call_and_trap_on_throw;
use super::future::SharedFutureImpl;
use super::stream::{
    BufferRef, CopyEnd, CopyResult, CopyState, EndKind, OnCopy, OnCopyDone, ReclaimBuffer, SharedEnd, SharedStreamImpl,
};
use super::switch::current_thread;
use super::task::{CanonicalOptions, CoreFunc, HeldContext};
use super::thread::Thread;
use super::waitable::{Event, EventCode, WaitableRef, WaitableSet};
use super::{InstRef, Obj};
use crate::reference::context::BorrowScope;
use crate::reference::flatten::{CoreFuncType, MAX_FLAT_PARAMS};
use crate::reference::handles::{Element, Table};
use crate::reference::layout::align_to;
use crate::reference::lift_flat::{CoreValueIter, lift_flat_values};
use crate::reference::memory::{Memory, exceeds};
use crate::reference::reached::reached;
use crate::reference::store::store;
use crate::reference::trap::{Result, TrapKind, assert_that, assertion_failed, trap_if};
use crate::reference::types::{PtrType, ValType};
use crate::reference::value::{Flat, Value};

/// `BLOCKED`: an async copy or cancel that has not finished yet.
pub const BLOCKED: u32 = 0xffff_ffff;

fn i32s(vs: &[u32]) -> Vec<Flat> {
    vs.iter().map(|&v| Flat::I32(v)).collect()
}

fn current_instance() -> Result<InstRef> {
    Ok(current_thread()?.task.inst.clone())
}

fn check_may_leave(inst: &InstRef, what: &str) -> Result<()> {
    trap_if(!inst.borrow().may_leave, TrapKind::MayNotLeave, || format!("{what} while may_leave is false"))
}

/// The element type of a `stream<T>` or `future<T>` type (`stream_t.t`).
fn payload(t: &ValType, what: &str) -> Result<Option<ValType>> {
    match t {
        ValType::Stream(p) | ValType::Future(p) => Ok(p.as_deref().cloned()),
        _ => Err(assertion_failed(&format!("{what}: a stream or future type"))),
    }
}

/// 🔀 `canon_context_get(t, i)`.
pub fn canon_context_get(t: PtrType, i: usize) -> Result<Vec<Flat>> {
    reached!(canon_context_get);
    let thread = current_thread()?;
    assert_that(i < 2, "context.get: slot 0 or 1")?;
    let result = thread.storage.get()[i];
    assert_that(u128::from(result) < 1u128 << (t.ptr_size() * 8), "context.get: the value fits the type")?;
    Ok(vec![match t {
        PtrType::I32 => Flat::I32(result as u32),
        PtrType::I64 => Flat::I64(result),
    }])
}

/// 🔀 `canon_context_set(t, i, v)`.
pub fn canon_context_set(t: PtrType, i: usize, v: u64) -> Result<Vec<Flat>> {
    reached!(canon_context_set);
    let thread = current_thread()?;
    assert_that(i < 2, "context.set: slot 0 or 1")?;
    assert_that(u128::from(v) < 1u128 << (t.ptr_size() * 8), "context.set: the value fits the type")?;
    let mut storage = thread.storage.get();
    storage[i] = v;
    thread.storage.set(storage);
    Ok(vec![])
}

/// 🔀 `canon_backpressure_inc()`.
pub fn canon_backpressure_inc() -> Result<Vec<Flat>> {
    reached!(canon_backpressure_inc);
    let inst = current_instance()?;
    let mut i = inst.borrow_mut();
    assert_that((0..1 << 16).contains(&i.backpressure), "backpressure in range")?;
    i.backpressure += 1;
    trap_if(i.backpressure == 1 << 16, TrapKind::BackpressureRange, || "backpressure.inc past 2^16 - 1".into())?;
    Ok(vec![])
}

/// 🔀 `canon_backpressure_dec()`.
pub fn canon_backpressure_dec() -> Result<Vec<Flat>> {
    reached!(canon_backpressure_dec);
    let inst = current_instance()?;
    let mut i = inst.borrow_mut();
    assert_that((0..1 << 16).contains(&i.backpressure), "backpressure in range")?;
    i.backpressure -= 1;
    trap_if(i.backpressure < 0, TrapKind::BackpressureRange, || "backpressure.dec below 0".into())?;
    Ok(vec![])
}

/// 🔀 `canon_task_return(result_type, opts, flat_args)`.
pub fn canon_task_return(
    result_type: Option<&ValType>,
    opts: &CanonicalOptions,
    flat_args: Vec<Flat>,
) -> Result<Vec<Flat>> {
    reached!(canon_task_return);
    let task = current_thread()?.task.clone();
    check_may_leave(&task.inst, "task.return")?;
    trap_if(!task.opts.async_, TrapKind::NotAsyncTask, || "task.return in a synchronously lifted task".into())?;
    trap_if(result_type != task.ft.result.as_ref(), TrapKind::TaskReturnMismatch, || {
        format!("task.return's result type {result_type:?} is not the function's {:?}", task.ft.result)
    })?;
    trap_if(!opts.lift_options_equal(&task.opts), TrapKind::TaskReturnMismatch, || {
        "task.return's options (string encoding, memory) differ from the lift's".into()
    })?;
    let cx = HeldContext { opts: opts.clone(), inst: task.inst.clone() };
    let result = cx.with(BorrowScope::Task(task.borrow_scope), |cx| {
        lift_flat_values(cx, MAX_FLAT_PARAMS, &mut CoreValueIter::new(flat_args), &task.ft.result_type())
    })?;
    task.return_(result)?;
    Ok(vec![])
}

/// 🔀 `canon_task_cancel()`.
pub fn canon_task_cancel() -> Result<Vec<Flat>> {
    reached!(canon_task_cancel);
    let task = current_thread()?.task.clone();
    check_may_leave(&task.inst, "task.cancel")?;
    trap_if(!task.opts.async_, TrapKind::NotAsyncTask, || "task.cancel in a synchronously lifted task".into())?;
    task.cancel()?;
    Ok(vec![])
}

/// 🔀 `canon_waitable_set_new()`.
pub fn canon_waitable_set_new() -> Result<Vec<Flat>> {
    reached!(canon_waitable_set_new);
    let inst = current_instance()?;
    check_may_leave(&inst, "waitable-set.new")?;
    let i = inst.borrow_mut().handles.add(Element::WaitableSet(Obj::new(WaitableSet::default())))?;
    Ok(i32s(&[i]))
}

/// 🔀 `canon_waitable_set_wait(cancellable, mem, si, ptr)`.
pub async fn canon_waitable_set_wait(cancellable: bool, mem: &Obj<dyn Memory>, si: u32, ptr: u64) -> Result<Vec<Flat>> {
    reached!(canon_waitable_set_wait);
    let inst = current_instance()?;
    check_may_leave(&inst, "waitable-set.wait")?;
    let wset = inst.borrow().handles.get(si)?.waitable_set("waitable-set.wait")?;
    let event = WaitableSet::wait_for_event(&wset, cancellable).await?;
    unpack_event(mem, &inst, ptr, event)
}

/// `unpack_event(mem, inst, ptr, e)`: the payload words go to memory, the code is returned.
/// definitions.py stores them with `store`, which only asserts that the guest's pointer is
/// aligned and in bounds (a gap: nothing traps first). Engines trap there, so here a
/// misaligned pointer or one past the end traps with the class they report.
pub fn unpack_event(mem: &Obj<dyn Memory>, inst: &InstRef, ptr: u64, e: Event) -> Result<Vec<Flat>> {
    let len = mem.borrow().len();
    trap_if(ptr != align_to(ptr, 4), TrapKind::MisalignedPointer, || {
        format!("event payload at {ptr} is not aligned to 4")
    })?;
    trap_if(exceeds(ptr, 8, len), TrapKind::OutOfBounds, || {
        format!("event payload at {ptr}+8 reaches past the end of memory ({len})")
    })?;
    let opts = CanonicalOptions { memory: Some(mem.clone()), ..CanonicalOptions::default() };
    let cx = HeldContext { opts, inst: inst.clone() };
    cx.with(BorrowScope::None, |cx| {
        store(cx, &Value::U32(e.p1), &ValType::U32, ptr)?;
        store(cx, &Value::U32(e.p2), &ValType::U32, ptr + 4)
    })?;
    Ok(i32s(&[e.code as u32]))
}

/// 🔀 `canon_waitable_set_poll(cancellable, mem, si, ptr)`.
pub fn canon_waitable_set_poll(cancellable: bool, mem: &Obj<dyn Memory>, si: u32, ptr: u64) -> Result<Vec<Flat>> {
    reached!(canon_waitable_set_poll);
    let inst = current_instance()?;
    check_may_leave(&inst, "waitable-set.poll")?;
    let wset = inst.borrow().handles.get(si)?.waitable_set("waitable-set.poll")?;
    let event = WaitableSet::poll(&wset, cancellable)?;
    unpack_event(mem, &inst, ptr, event)
}

/// 🔀 `canon_waitable_set_drop(i)`.
pub fn canon_waitable_set_drop(i: u32) -> Result<Vec<Flat>> {
    reached!(canon_waitable_set_drop);
    let inst = current_instance()?;
    check_may_leave(&inst, "waitable-set.drop")?;
    let wset = inst.borrow_mut().handles.remove(i)?.waitable_set("waitable-set.drop")?;
    wset.borrow().drop_set()?;
    Ok(vec![])
}

/// 🔀 `canon_waitable_join(wi, si)`: `si` 0 leaves the current set.
pub fn canon_waitable_join(wi: u32, si: u32) -> Result<Vec<Flat>> {
    reached!(canon_waitable_join);
    let inst = current_instance()?;
    check_may_leave(&inst, "waitable.join")?;
    let w = inst.borrow().handles.get(wi)?.waitable("waitable.join")?;
    trap_if(w.has_sync_waiter(), TrapKind::HasSyncWaiter, || {
        "waitable.join of a waitable a synchronous call waits on".into()
    })?;
    if si == 0 {
        w.join(None)?;
    } else {
        let wset = inst.borrow().handles.get(si)?.waitable_set("waitable.join")?;
        w.join(Some(wset))?;
    }
    Ok(vec![])
}

/// 🔀 `canon_subtask_cancel(async_, i)`.
pub async fn canon_subtask_cancel(async_: bool, i: u32) -> Result<Vec<Flat>> {
    reached!(canon_subtask_cancel);
    let inst = current_instance()?;
    check_may_leave(&inst, "subtask.cancel")?;
    let subtask = inst.borrow().handles.get(i)?.subtask("subtask.cancel")?;
    let w = WaitableRef::Subtask(subtask.clone());
    trap_if(subtask.borrow().resolve_delivered(), TrapKind::SubtaskState, || {
        "subtask.cancel of a subtask whose resolution was delivered".into()
    })?;
    trap_if(subtask.borrow().cancellation_requested, TrapKind::SubtaskState, || {
        "subtask.cancel of a subtask already being cancelled".into()
    })?;
    trap_if(w.in_waitable_set() && !async_, TrapKind::InWaitableSet, || {
        "synchronous subtask.cancel of a subtask in a waitable set".into()
    })?;
    if subtask.borrow().resolved() {
        assert_that(w.has_pending_event(), "subtask.cancel: a resolved subtask has its event pending")?;
    } else {
        subtask.borrow_mut().cancellation_requested = true;
        let on_cancel = subtask.borrow().on_cancel.clone();
        if let Some(on_cancel) = on_cancel {
            on_cancel()?;
        }
        if !subtask.borrow().resolved() {
            if !async_ {
                w.wait_for_pending_event().await?;
            } else {
                return Ok(i32s(&[BLOCKED]));
            }
        }
    }
    let event = w.get_pending_event()?;
    let state = subtask.borrow().state as u32;
    assert_that(event == Event::new(EventCode::Subtask, i, state), "subtask.cancel: the subtask's own event")?;
    assert_that(subtask.borrow().resolve_delivered(), "subtask.cancel: resolution delivered")?;
    Ok(i32s(&[state]))
}

/// 🔀 `canon_subtask_drop(i)` (with `Subtask.drop`).
pub fn canon_subtask_drop(i: u32) -> Result<Vec<Flat>> {
    reached!(canon_subtask_drop);
    let inst = current_instance()?;
    check_may_leave(&inst, "subtask.drop")?;
    let subtask = inst.borrow_mut().handles.remove(i)?.subtask("subtask.drop")?;
    reached!("Subtask.drop");
    trap_if(!subtask.borrow().resolve_delivered(), TrapKind::SubtaskState, || {
        "subtask.drop before the subtask's resolution was delivered".into()
    })?;
    WaitableRef::Subtask(subtask).drop_waitable()?;
    Ok(vec![])
}

/// 🔀 `canon_stream_new(stream_t)`: readable index in the low 32 bits, writable above.
pub fn canon_stream_new(stream_t: &ValType) -> Result<Vec<Flat>> {
    reached!(canon_stream_new);
    let inst = current_instance()?;
    check_may_leave(&inst, "stream.new")?;
    let shared = SharedEnd::Stream(SharedStreamImpl::new(payload(stream_t, "stream.new")?));
    new_ends(&inst, shared, EndKind::ReadableStream, EndKind::WritableStream)
}

/// 🔀 `canon_future_new(future_t)`.
pub fn canon_future_new(future_t: &ValType) -> Result<Vec<Flat>> {
    reached!(canon_future_new);
    let inst = current_instance()?;
    check_may_leave(&inst, "future.new")?;
    let shared = SharedEnd::Future(SharedFutureImpl::new(payload(future_t, "future.new")?));
    new_ends(&inst, shared, EndKind::ReadableFuture, EndKind::WritableFuture)
}

fn new_ends(inst: &InstRef, shared: SharedEnd, readable: EndKind, writable: EndKind) -> Result<Vec<Flat>> {
    let mut i = inst.borrow_mut();
    let ri = i.handles.add(Element::Waitable(WaitableRef::CopyEnd(CopyEnd::new(readable, shared.clone()))))?;
    let wi = i.handles.add(Element::Waitable(WaitableRef::CopyEnd(CopyEnd::new(writable, shared))))?;
    Ok(vec![Flat::I64(u64::from(ri) | (u64::from(wi) << 32))])
}

/// The checks `stream_copy`, `future_copy` and `cancel_copy` open with.
fn copy_end(inst: &InstRef, i: u32, kind: EndKind, t: &ValType, what: &str) -> Result<Obj<CopyEnd>> {
    check_may_leave(inst, what)?;
    let e = inst.borrow().handles.get(i)?.copy_end(kind, what)?;
    let expected = payload(t, what)?;
    let actual = e.borrow().shared.t();
    trap_if(actual != expected, TrapKind::HandleTypeMismatch, || {
        format!("{what}: the end carries {actual:?}, the built-in {expected:?}")
    })?;
    Ok(e)
}

/// 🔀 `canon_stream_read(stream_t, opts, i, ptr, n)`.
pub async fn canon_stream_read(
    stream_t: &ValType,
    opts: &CanonicalOptions,
    i: u32,
    ptr: u64,
    n: u64,
) -> Result<Vec<Flat>> {
    reached!(canon_stream_read);
    stream_copy(EndKind::ReadableStream, EventCode::StreamRead, stream_t, opts, i, ptr, n).await
}

/// 🔀 `canon_stream_write(stream_t, opts, i, ptr, n)`.
pub async fn canon_stream_write(
    stream_t: &ValType,
    opts: &CanonicalOptions,
    i: u32,
    ptr: u64,
    n: u64,
) -> Result<Vec<Flat>> {
    reached!(canon_stream_write);
    stream_copy(EndKind::WritableStream, EventCode::StreamWrite, stream_t, opts, i, ptr, n).await
}

fn check_copy_start(e: &Obj<CopyEnd>, async_: bool, what: &str) -> Result<()> {
    let state = e.borrow().state;
    trap_if(state != CopyState::Idle, TrapKind::CopyState, || format!("{what} of an end that is {state:?}, not idle"))?;
    trap_if(WaitableRef::CopyEnd(e.clone()).in_waitable_set() && !async_, TrapKind::InWaitableSet, || {
        format!("synchronous {what} of an end in a waitable set")
    })
}

/// `stream_copy(EndT, BufferT, event_code, stream_t, opts, i, ptr, n)`.
async fn stream_copy(
    kind: EndKind,
    event_code: EventCode,
    stream_t: &ValType,
    opts: &CanonicalOptions,
    i: u32,
    ptr: u64,
    n: u64,
) -> Result<Vec<Flat>> {
    reached!(stream_copy);
    let what = if kind == EndKind::ReadableStream { "stream.read" } else { "stream.write" };
    let inst = current_instance()?;
    let e = copy_end(&inst, i, kind, stream_t, what)?;
    check_copy_start(&e, opts.async_, what)?;
    let t = payload(stream_t, what)?;
    assert_that(!matches!(t, Some(ValType::Char)), "stream_copy: no stream<char>")?;
    let cx = HeldContext { opts: opts.clone(), inst: inst.clone() };
    let buffer: BufferRef = if kind == EndKind::ReadableStream {
        to_buffer(BufferGuestImpl::writable(t, cx, ptr, n)?)
    } else {
        to_buffer(BufferGuestImpl::readable(t, cx, ptr, n)?)
    };

    let stream_event = {
        let (e, buffer) = (e.clone(), buffer.clone());
        move |result: CopyResult, reclaim_buffer: ReclaimBuffer| -> Result<Event> {
            reclaim_buffer();
            assert_that(e.borrow().copying(), "stream_event: copying")?;
            e.borrow_mut().state = if result == CopyResult::Dropped { CopyState::Done } else { CopyState::Idle };
            let progress = buffer.borrow().progress();
            assert_that(progress <= super::buffer::MAX_LENGTH, "stream_event: progress fits")?;
            Ok(Event::new(event_code, i, result as u32 | ((progress as u32) << 4)))
        }
    };
    let stream_event = Rc::new(stream_event);
    let on_copy: OnCopy = {
        let (e, stream_event) = (e.clone(), stream_event.clone());
        Rc::new(move |reclaim_buffer| {
            let stream_event = stream_event.clone();
            let pending = Box::new(move || stream_event(CopyResult::Completed, reclaim_buffer));
            WaitableRef::CopyEnd(e.clone()).set_pending_event(pending);
        })
    };
    let on_copy_done: OnCopyDone = {
        let (e, stream_event) = (e.clone(), stream_event.clone());
        Rc::new(move |result| {
            let stream_event = stream_event.clone();
            let pending = Box::new(move || stream_event(result, Box::new(|| ())));
            WaitableRef::CopyEnd(e.clone()).set_pending_event(pending);
        })
    };

    e.borrow_mut().state = CopyState::Copying;
    let SharedEnd::Stream(shared) = e.borrow().shared.clone() else {
        return Err(assertion_failed("a stream end shares a stream"));
    };
    if kind == EndKind::ReadableStream {
        SharedStreamImpl::read(&shared, &inst, buffer, on_copy, on_copy_done)?;
    } else {
        SharedStreamImpl::write(&shared, &inst, buffer, on_copy, on_copy_done)?;
    }
    finish_copy(&e, opts.async_, event_code, i).await
}

/// The end of `stream_copy` and `future_copy`: the event, now or after a synchronous wait,
/// or `BLOCKED`.
async fn finish_copy(e: &Obj<CopyEnd>, async_: bool, event_code: EventCode, i: u32) -> Result<Vec<Flat>> {
    let w = WaitableRef::CopyEnd(e.clone());
    if !w.has_pending_event() {
        if !async_ {
            w.wait_for_pending_event().await?;
        } else {
            return Ok(i32s(&[BLOCKED]));
        }
    }
    let event = w.get_pending_event()?;
    assert_that(event.code == event_code && event.p1 == i && event.p2 != BLOCKED, "copy: the end's own event")?;
    Ok(i32s(&[event.p2]))
}

fn to_buffer(b: BufferGuestImpl) -> BufferRef {
    Obj(Rc::new(std::cell::RefCell::new(b)))
}

/// 🔀 `canon_future_read(future_t, opts, i, ptr)`.
pub async fn canon_future_read(future_t: &ValType, opts: &CanonicalOptions, i: u32, ptr: u64) -> Result<Vec<Flat>> {
    reached!(canon_future_read);
    future_copy(EndKind::ReadableFuture, EventCode::FutureRead, future_t, opts, i, ptr).await
}

/// 🔀 `canon_future_write(future_t, opts, i, ptr)`.
pub async fn canon_future_write(future_t: &ValType, opts: &CanonicalOptions, i: u32, ptr: u64) -> Result<Vec<Flat>> {
    reached!(canon_future_write);
    future_copy(EndKind::WritableFuture, EventCode::FutureWrite, future_t, opts, i, ptr).await
}

/// `future_copy(EndT, BufferT, event_code, future_t, opts, i, ptr)`.
async fn future_copy(
    kind: EndKind,
    event_code: EventCode,
    future_t: &ValType,
    opts: &CanonicalOptions,
    i: u32,
    ptr: u64,
) -> Result<Vec<Flat>> {
    reached!(future_copy);
    let what = if kind == EndKind::ReadableFuture { "future.read" } else { "future.write" };
    let inst = current_instance()?;
    let e = copy_end(&inst, i, kind, future_t, what)?;
    check_copy_start(&e, opts.async_, what)?;
    let t = payload(future_t, what)?;
    let cx = HeldContext { opts: opts.clone(), inst: inst.clone() };
    let buffer: BufferRef = if kind == EndKind::ReadableFuture {
        to_buffer(BufferGuestImpl::writable(t, cx, ptr, 1)?)
    } else {
        to_buffer(BufferGuestImpl::readable(t, cx, ptr, 1)?)
    };
    let on_copy_done: OnCopyDone = {
        let (e, buffer) = (e.clone(), buffer.clone());
        Rc::new(move |result| {
            // `assert(result != DROPPED or event_code == FUTURE_WRITE)`: only a writer sees
            // its reader drop; checked when the event is delivered (a closure cannot fail).
            let dropped_reader_end = result == CopyResult::Dropped && event_code != EventCode::FutureWrite;
            let (e2, buffer) = (e.clone(), buffer.clone());
            let future_event = Box::new(move || -> Result<Event> {
                assert_that(!dropped_reader_end, "future on_copy_done: DROPPED only for a writer")?;
                let remain = buffer.borrow().remain();
                assert_that((remain == 0) == (result == CopyResult::Completed), "future_event: completed iff copied")?;
                assert_that(e2.borrow().copying(), "future_event: copying")?;
                e2.borrow_mut().state = match result {
                    CopyResult::Dropped | CopyResult::Completed => CopyState::Done,
                    CopyResult::Cancelled => CopyState::Idle,
                };
                Ok(Event::new(event_code, i, result as u32))
            });
            WaitableRef::CopyEnd(e.clone()).set_pending_event(future_event);
        })
    };
    e.borrow_mut().state = CopyState::Copying;
    let SharedEnd::Future(shared) = e.borrow().shared.clone() else {
        return Err(assertion_failed("a future end shares a future"));
    };
    if kind == EndKind::ReadableFuture {
        SharedFutureImpl::read(&shared, &inst, buffer, on_copy_done)?;
    } else {
        SharedFutureImpl::write(&shared, &inst, buffer, on_copy_done)?;
    }
    finish_copy(&e, opts.async_, event_code, i).await
}

/// 🔀 `canon_stream_cancel_read(stream_t, async_, i)`.
pub async fn canon_stream_cancel_read(stream_t: &ValType, async_: bool, i: u32) -> Result<Vec<Flat>> {
    reached!(canon_stream_cancel_read);
    cancel_copy(EndKind::ReadableStream, EventCode::StreamRead, stream_t, async_, i).await
}

/// 🔀 `canon_stream_cancel_write(stream_t, async_, i)`.
pub async fn canon_stream_cancel_write(stream_t: &ValType, async_: bool, i: u32) -> Result<Vec<Flat>> {
    reached!(canon_stream_cancel_write);
    cancel_copy(EndKind::WritableStream, EventCode::StreamWrite, stream_t, async_, i).await
}

/// 🔀 `canon_future_cancel_read(future_t, async_, i)`.
pub async fn canon_future_cancel_read(future_t: &ValType, async_: bool, i: u32) -> Result<Vec<Flat>> {
    reached!(canon_future_cancel_read);
    cancel_copy(EndKind::ReadableFuture, EventCode::FutureRead, future_t, async_, i).await
}

/// 🔀 `canon_future_cancel_write(future_t, async_, i)`.
pub async fn canon_future_cancel_write(future_t: &ValType, async_: bool, i: u32) -> Result<Vec<Flat>> {
    reached!(canon_future_cancel_write);
    cancel_copy(EndKind::WritableFuture, EventCode::FutureWrite, future_t, async_, i).await
}

/// `cancel_copy(EndT, event_code, stream_or_future_t, async_, i)`.
async fn cancel_copy(kind: EndKind, event_code: EventCode, t: &ValType, async_: bool, i: u32) -> Result<Vec<Flat>> {
    reached!(cancel_copy);
    let what = match kind {
        EndKind::ReadableStream => "stream.cancel-read",
        EndKind::WritableStream => "stream.cancel-write",
        EndKind::ReadableFuture => "future.cancel-read",
        EndKind::WritableFuture => "future.cancel-write",
    };
    let inst = current_instance()?;
    let e = copy_end(&inst, i, kind, t, what)?;
    let w = WaitableRef::CopyEnd(e.clone());
    let state = e.borrow().state;
    trap_if(state != CopyState::Copying, TrapKind::CopyState, || {
        format!("{what} of an end that is {state:?}, not copying")
    })?;
    trap_if(w.has_sync_waiter(), TrapKind::HasSyncWaiter, || format!("{what} of an end a synchronous copy waits on"))?;
    trap_if(w.in_waitable_set() && !async_, TrapKind::InWaitableSet, || {
        format!("synchronous {what} of an end in a waitable set")
    })?;
    e.borrow_mut().state = CopyState::CancellingCopy;
    if !w.has_pending_event() {
        let shared = e.borrow().shared.clone();
        shared.cancel();
        if !w.has_pending_event() {
            if !async_ {
                w.wait_for_pending_event().await?;
            } else {
                return Ok(i32s(&[BLOCKED]));
            }
        }
    }
    let event = w.get_pending_event()?;
    assert_that(!e.borrow().copying() && event.code == event_code && event.p1 == i, "cancel: the end's own event")?;
    Ok(i32s(&[event.p2]))
}

/// 🔀 `canon_stream_drop_readable(stream_t, i)`.
pub fn canon_stream_drop_readable(stream_t: &ValType, i: u32) -> Result<Vec<Flat>> {
    reached!(canon_stream_drop_readable);
    drop_end(EndKind::ReadableStream, stream_t, i)
}

/// 🔀 `canon_stream_drop_writable(stream_t, hi)`.
pub fn canon_stream_drop_writable(stream_t: &ValType, hi: u32) -> Result<Vec<Flat>> {
    reached!(canon_stream_drop_writable);
    drop_end(EndKind::WritableStream, stream_t, hi)
}

/// 🔀 `canon_future_drop_readable(future_t, i)`.
pub fn canon_future_drop_readable(future_t: &ValType, i: u32) -> Result<Vec<Flat>> {
    reached!(canon_future_drop_readable);
    drop_end(EndKind::ReadableFuture, future_t, i)
}

/// 🔀 `canon_future_drop_writable(future_t, hi)`.
pub fn canon_future_drop_writable(future_t: &ValType, hi: u32) -> Result<Vec<Flat>> {
    reached!(canon_future_drop_writable);
    drop_end(EndKind::WritableFuture, future_t, hi)
}

/// `drop(EndT, stream_or_future_t, hi)`.
fn drop_end(kind: EndKind, t: &ValType, hi: u32) -> Result<Vec<Flat>> {
    let what = match kind {
        EndKind::ReadableStream => "stream.drop-readable",
        EndKind::WritableStream => "stream.drop-writable",
        EndKind::ReadableFuture => "future.drop-readable",
        EndKind::WritableFuture => "future.drop-writable",
    };
    let inst = current_instance()?;
    check_may_leave(&inst, what)?;
    let e = inst.borrow_mut().handles.remove(hi)?.copy_end(kind, what)?;
    let expected = payload(t, what)?;
    let actual = e.borrow().shared.t();
    trap_if(actual != expected, TrapKind::HandleTypeMismatch, || {
        format!("{what}: the end carries {actual:?}, the built-in {expected:?}")
    })?;
    CopyEnd::drop_end(&e)?;
    Ok(vec![])
}

/// 🧵 `canon_thread_index()`.
pub fn canon_thread_index() -> Result<Vec<Flat>> {
    let thread = current_thread()?;
    check_may_leave(&thread.task.inst, "thread.index")?;
    canon_index(&thread)
}

/// 🧵 `CoreFuncRef`: an element of a core `funcref` table.
#[derive(Clone)]
pub struct CoreFuncRef {
    pub t: CoreFuncType,
    pub callee: CoreFunc,
}

/// 🧵 `canon_thread_new_indirect(ft, ftbl, fi, c)`: a new suspended thread of the current
/// task that will call `ftbl[fi](c)`.
pub fn canon_thread_new_indirect(ft: &CoreFuncType, ftbl: &Table<CoreFuncRef>, fi: u32, c: Flat) -> Result<Vec<Flat>> {
    let task = current_thread()?.task.clone();
    check_may_leave(&task.inst, "thread.new-indirect")?;
    let f = ftbl.get(fi)?.clone();
    trap_if(f.t != *ft, TrapKind::GuestTrap, || "thread.new-indirect: the table element has another type".into())?;
    let thread_task = task.clone();
    let new_thread = Thread::new(task.clone(), move || async move {
        let r = call_and_trap_on_throw(&f.callee, vec![c]).await?;
        assert_that(r.is_empty(), "a thread function returns nothing")?;
        let this = current_thread()?;
        thread_task.unregister_thread(&this)
    });
    assert_that(new_thread.suspended(), "thread.new-indirect: the new thread is suspended")?;
    task.register_thread(&new_thread)?;
    canon_index(&new_thread)
}

fn canon_index(t: &Rc<Thread>) -> Result<Vec<Flat>> {
    match t.index.get() {
        Some(i) => Ok(i32s(&[i])),
        None => Err(assertion_failed("a registered thread has an index")),
    }
}

fn other_thread(i: u32, what: &str) -> Result<(Rc<Thread>, Rc<Thread>)> {
    let thread = current_thread()?;
    check_may_leave(&thread.task.inst, what)?;
    let other = thread.task.inst.borrow().threads.get(i)?.clone();
    Ok((thread, other))
}

fn check_suspended(other: &Thread, what: &str) -> Result<()> {
    trap_if(!other.suspended(), TrapKind::ThreadNotSuspended, || {
        format!("{what}: thread {i:?} is not suspended", i = other.index.get())
    })
}

/// 🧵 `canon_thread_resume_later(i)`.
pub fn canon_thread_resume_later(i: u32) -> Result<Vec<Flat>> {
    let (_, other) = other_thread(i, "thread.resume-later")?;
    check_suspended(&other, "thread.resume-later")?;
    other.resume_later()?;
    Ok(vec![])
}

/// 🧵 `canon_thread_suspend(cancellable)`.
pub async fn canon_thread_suspend(cancellable: bool) -> Result<Vec<Flat>> {
    let thread = current_thread()?;
    check_may_leave(&thread.task.inst, "thread.suspend")?;
    let cancelled = thread.suspend(cancellable).await?;
    Ok(i32s(&[cancelled as u32]))
}

/// 🧵 `canon_thread_yield(cancellable)`.
pub async fn canon_thread_yield(cancellable: bool) -> Result<Vec<Flat>> {
    reached!(canon_thread_yield);
    let thread = current_thread()?;
    check_may_leave(&thread.task.inst, "thread.yield")?;
    let cancelled = thread.yield_(cancellable).await?;
    Ok(i32s(&[cancelled as u32]))
}

/// 🧵 `canon_thread_suspend_then_resume(cancellable, i)`.
pub async fn canon_thread_suspend_then_resume(cancellable: bool, i: u32) -> Result<Vec<Flat>> {
    let (thread, other) = other_thread(i, "thread.suspend-then-resume")?;
    check_suspended(&other, "thread.suspend-then-resume")?;
    let cancelled = thread.suspend_then_resume(cancellable, other).await?;
    Ok(i32s(&[cancelled as u32]))
}

/// 🧵 `canon_thread_yield_then_resume(cancellable, i)`.
pub async fn canon_thread_yield_then_resume(cancellable: bool, i: u32) -> Result<Vec<Flat>> {
    let (thread, other) = other_thread(i, "thread.yield-then-resume")?;
    check_suspended(&other, "thread.yield-then-resume")?;
    let cancelled = thread.yield_then_resume(cancellable, other).await?;
    Ok(i32s(&[cancelled as u32]))
}

/// 🧵 `canon_thread_suspend_then_promote(cancellable, i)`.
pub async fn canon_thread_suspend_then_promote(cancellable: bool, i: u32) -> Result<Vec<Flat>> {
    let (thread, other) = other_thread(i, "thread.suspend-then-promote")?;
    let cancelled = thread.suspend_then_promote(cancellable, other).await?;
    Ok(i32s(&[cancelled as u32]))
}

/// 🧵 `canon_thread_yield_then_promote(cancellable, i)`.
pub async fn canon_thread_yield_then_promote(cancellable: bool, i: u32) -> Result<Vec<Flat>> {
    let (thread, other) = other_thread(i, "thread.yield-then-promote")?;
    let cancelled = thread.yield_then_promote(cancellable, other).await?;
    Ok(i32s(&[cancelled as u32]))
}
