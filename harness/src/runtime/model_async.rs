//! 🔀 The guest model under the async reference: the host calls an async export through the
//! reference's `Store` (`invoke` of `canon_lift` with a callback), ticks the store's event loop
//! until the call resolves, and the script's frames call the async built-ins of
//! `reference::concurrency::builtins`.
//!
//! The spec's built-ins reach the guest's memory through the lift's canonical options, an
//! object of its own; the model's interpreter holds the model while it runs a frame. So the
//! model lives in a `ModelSlot` during an async call, and the two trade places: the
//! interpreter takes the model out of the slot to run an entry (leaving a spare, a model with
//! no memory), and puts it back for the length of each built-in call.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::artifact::{Artifact, Export};
use super::model::GuestModel;
use super::prepared::AsyncImport;
use crate::encode::names::AsyncValueOp;
use crate::encode::protocol;
use crate::reference::concurrency::builtins::*;
use crate::reference::concurrency::canon::canon_lower;
use crate::reference::concurrency::choice::Deterministic;
use crate::reference::concurrency::embedding::Store;
use crate::reference::concurrency::switch::LocalFuture;
use crate::reference::concurrency::task::{CanonicalOptions, CoreFunc, FuncInst, OnCancel, OnResolve, core_func};
use crate::reference::concurrency::{InstRef, Obj};
use crate::reference::context::ComponentInstance;
use crate::reference::error_context::{canon_error_context_drop, canon_error_context_new};
use crate::reference::memory::Memory;
use crate::reference::types::{FuncType, PtrType, StringEncoding, ValType};
use crate::reference::value::{Flat, Value};
use crate::reference::{Trap, TrapKind};

/// The most event-loop steps one export call may take (each runs a frame of the script, so a
/// case runs out of script long before).
const MAX_TICKS: usize = 10_000;

fn assertion(msg: impl Into<String>) -> Trap {
    Trap::new(TrapKind::Assertion, msg)
}

/// Where the guest model is during an async call, as the memory of the lift's options.
pub struct ModelSlot {
    model: GuestModel,
    /// A model with no memory, that stands in the slot while the interpreter runs.
    spare: Option<GuestModel>,
    /// Answers of async imports the host gives later, oldest first.
    later: VecDeque<LaterAnswer>,
    /// The async runtime's object of the component instance. The model's `HostState` holds
    /// the sync ABI's; the state both use (handles, borrow scopes) moves to whichever code
    /// runs: the interpreter's (a frame, a sync built-in) or the async reference's.
    inst: Weak<RefCell<ComponentInstance>>,
}

/// Move the state both ABIs share between `model`'s instance object and the async one.
fn trade_state(model: &mut GuestModel, inst: &Weak<RefCell<ComponentInstance>>) -> Result<(), Trap> {
    let inst = inst.upgrade().ok_or_else(|| assertion("the component instance is gone"))?;
    let mut inst = inst.try_borrow_mut().map_err(|_| assertion("the instance was in use across a guest frame"))?;
    model.host_state().inst.trade_shared_state(&mut inst);
    Ok(())
}

/// An import answer the host holds back: the subtask's `on_resolve` and the result, taken
/// out when the host answers (or when the caller cancels first).
type LaterAnswer = Rc<RefCell<Option<(OnResolve, Option<Value>)>>>;

impl Memory for ModelSlot {
    fn len(&self) -> u64 {
        self.model.len()
    }
    fn read(&self, ptr: u64, out: &mut [u8]) -> Result<(), Trap> {
        self.model.read(ptr, out)
    }
    fn write(&mut self, ptr: u64, bytes: &[u8]) -> Result<(), Trap> {
        self.model.write(ptr, bytes)
    }
    fn realloc(&mut self, old_ptr: u64, old_size: u64, align: u64, new_size: u64) -> Result<u64, Trap> {
        self.model.realloc(old_ptr, old_size, align, new_size)
    }
}

type Slot = Rc<RefCell<ModelSlot>>;

fn slot_mut(slot: &Slot) -> Result<std::cell::RefMut<'_, ModelSlot>, Trap> {
    slot.try_borrow_mut().map_err(|_| assertion("the guest model was reached from inside a lift or lower"))
}

/// The async state of one model instance: the reference's store, the component instance the
/// guest's tasks run in (its handle table holds waitables, sets, stream and future ends),
/// and the slot.
pub struct AsyncState {
    store: Rc<Store>,
    inst: InstRef,
    slot: Slot,
}

impl AsyncState {
    /// The state of one model instance; `spare` and `placeholder` are two stand-ins (models with
    /// no memory) for the slot.
    pub fn new(spare: GuestModel, placeholder: GuestModel) -> AsyncState {
        let store = Store::new(Deterministic);
        let inst = store.new_instance();
        let slot = Rc::new(RefCell::new(ModelSlot {
            model: placeholder,
            spare: Some(spare),
            later: VecDeque::new(),
            inst: Rc::downgrade(&inst.0),
        }));
        AsyncState { store, inst, slot }
    }

    /// The host calls async export `export` of `artifact` on `model` with `args`.
    pub fn call(
        &self,
        model: &mut GuestModel,
        artifact: &Artifact,
        export: usize,
        args: &[Value],
    ) -> Result<Option<Value>, Trap> {
        let e: &Export = artifact.exports.get(export).ok_or_else(|| assertion(format!("no export {export}")))?;
        let core = e.core.as_ref().ok_or_else(|| assertion("an async export without a core function"))?;
        let module = model.module().clone();
        let callback = module
            .export_of(protocol::callback_entry(export as u32))
            .ok_or_else(|| assertion(format!("export {} has no callback", e.func.name)))?;
        // Host-side handles become reps, as for a synchronous call (`core::call_export`).
        let ft = &e.func.ft;
        let args = ft
            .params
            .iter()
            .zip(args)
            .map(|((_, t), v)| model.host_state().slots_to_reps(t, v))
            .collect::<Result<Vec<_>, _>>()?;
        model.async_slot = Rc::downgrade(&self.slot);
        let inst = Rc::downgrade(&self.inst.0);
        trade_state(model, &inst)?;
        std::mem::swap(model, &mut slot_mut(&self.slot)?.model);
        let r = self.invoke(&core.name, &callback.name, e, artifact.encoding, &args);
        std::mem::swap(model, &mut slot_mut(&self.slot)?.model);
        trade_state(model, &inst)?;
        match (&ft.result, r?) {
            (Some(t), Some(v)) => Ok(Some(model.host_state().reps_to_slots(t, &v)?)),
            (_, v) => Ok(v),
        }
    }

    fn invoke(
        &self,
        callee: &str,
        callback: &str,
        export: &Export,
        encoding: StringEncoding,
        args: &[Value],
    ) -> Result<Option<Value>, Trap> {
        let opts = CanonicalOptions {
            string_encoding: encoding,
            memory: Some(memory_of(&self.slot)),
            post_return: None,
            async_: true,
            callback: Some(entry_func(&self.slot, callback)),
        };
        let f = self.store.lift(entry_func(&self.slot, callee), export.func.ft.clone(), opts, self.inst.clone());
        let resolved: Rc<RefCell<Option<Option<Vec<Value>>>>> = Rc::new(RefCell::new(None));
        let (args, cell) = (args.to_vec(), resolved.clone());
        self.store.invoke(
            &f,
            Box::new(move || Ok(args)),
            Box::new(move |r| {
                *cell.borrow_mut() = Some(r);
                Ok(())
            }),
        )?;
        // The host drives the event loop until its call resolves, then stops: work left (a
        // callback after task.return) runs when the store is next ticked. When nothing is ready
        // it gives its oldest held-back import answer; with none left the loop is idle. When to
        // tick and when to answer are the host's choices (Store.tick); Wasmtime's `call_async`
        // also stops at the resolution.
        let mut ticks = 0;
        while resolved.borrow().is_none() {
            if !self.store.tick()? && !self.answer_later_import()? {
                break;
            }
            ticks += 1;
            if ticks == MAX_TICKS {
                return Err(assertion(format!("the async call took {MAX_TICKS} steps of the event loop")));
            }
        }
        let outcome = resolved.borrow_mut().take();
        match outcome {
            Some(Some(values)) => Ok(values.into_iter().next()),
            Some(None) => Err(assertion("the call was cancelled, which the host never asks for")),
            // The spec leaves an embedding waiting for ever here; witness ends the call.
            None => Err(Trap::new(
                TrapKind::WouldDeadlock,
                "the async call has not returned and no thread is ready (the event loop is idle)",
            )),
        }
    }

    /// Give the oldest import answer held back (its subtask resolves: RETURNED, the result
    /// lowered into the guest); whether there was one.
    fn answer_later_import(&self) -> Result<bool, Trap> {
        loop {
            let Some(answer) = slot_mut(&self.slot)?.later.pop_front() else { return Ok(false) };
            // A cancelled call's answer was taken already.
            let Some((on_resolve, result)) = answer.borrow_mut().take() else { continue };
            on_resolve(Some(result.into_iter().collect()))?;
            return Ok(true);
        }
    }
}

impl Drop for AsyncState {
    fn drop(&mut self) {
        self.store.teardown();
    }
}

fn memory_of(slot: &Slot) -> Obj<dyn Memory> {
    Obj(slot.clone() as Rc<RefCell<dyn Memory>>)
}

/// The core function of guest export `name`: the model leaves the slot for the interpreter.
fn entry_func(slot: &Slot, name: &str) -> CoreFunc {
    let (slot, name) = (Rc::downgrade(slot), name.to_string());
    core_func(move |args: Vec<Flat>| {
        let r = run_entry(&slot, &name, &args);
        async move { r }
    })
}

fn run_entry(slot: &Weak<RefCell<ModelSlot>>, name: &str, args: &[Flat]) -> Result<Vec<Flat>, Trap> {
    let slot = slot.upgrade().ok_or_else(|| assertion("the guest model is gone"))?;
    let (mut model, inst) = {
        let mut s = slot_mut(&slot)?;
        let spare = s.spare.take().ok_or_else(|| assertion("a guest entry ran inside another"))?;
        (std::mem::replace(&mut s.model, spare), s.inst.clone())
    };
    trade_state(&mut model, &inst)?;
    let r = model.entry(name, args);
    trade_state(&mut model, &inst)?;
    let mut s = slot_mut(&slot)?;
    let spare = std::mem::replace(&mut s.model, model);
    s.spare = Some(spare);
    r
}

/// The guest called async built-in `builtin` with `args`: the model goes back into the slot
/// while the reference runs it.
pub fn serve_async(model: &mut GuestModel, builtin: &AsyncImport, args: Vec<Flat>) -> Result<Vec<Flat>, Trap> {
    let slot = model.async_slot.upgrade().ok_or_else(|| assertion("an async built-in outside an async call"))?;
    let encoding = model.encoding();
    let inst = slot_mut(&slot)?.inst.clone();
    trade_state(model, &inst)?;
    std::mem::swap(model, &mut slot_mut(&slot)?.model);
    let opts = CanonicalOptions {
        string_encoding: encoding,
        memory: Some(memory_of(&slot)),
        async_: true,
        ..CanonicalOptions::default()
    };
    let r = match builtin {
        AsyncImport::Builtin(name @ ("[error-context-new-utf8]" | "[error-context-drop]")) => {
            error_context_builtin(name, &inst, &args)
        }
        _ => call_builtin(builtin, &opts, &args),
    };
    std::mem::swap(model, &mut slot_mut(&slot)?.model);
    trade_state(model, &inst)?;
    r
}

/// 📝 `error-context.new` (in the deterministic profile: an empty message, memory unread) and
/// `error-context.drop`, on the instance's table.
fn error_context_builtin(
    name: &str,
    inst: &Weak<RefCell<ComponentInstance>>,
    args: &[Flat],
) -> Result<Vec<Flat>, Trap> {
    let inst = inst.upgrade().ok_or_else(|| assertion("the component instance is gone"))?;
    let mut inst = inst.try_borrow_mut().map_err(|_| assertion("the instance is in use"))?;
    let word = |i: usize| arg_word(args, i, name);
    match name {
        "[error-context-new-utf8]" => {
            Ok(vec![Flat::I32(canon_error_context_new(&mut inst, word(0)?.into(), word(1)?.into())?)])
        }
        _ => canon_error_context_drop(&mut inst, word(0)?).map(|()| vec![]),
    }
}

/// The guest called async-lowered import `thunk` (of type `ft`) with `args`: the reference's
/// async `canon_lower`, whose callee is the host. The host answers at once, so the subtask
/// resolves before `canon_lower` returns (RETURNED, its result in the guest's memory), or,
/// where the case says so, later: the subtask is STARTED, and a cancellation before the
/// answer resolves it at once as cancelled (the host gives up its answer).
pub fn serve_async_import(
    model: &mut GuestModel,
    thunk: u32,
    ft: &FuncType,
    args: Vec<Flat>,
) -> Result<Vec<Flat>, Trap> {
    let slot = model.async_slot.upgrade().ok_or_else(|| assertion("an async import outside an async call"))?;
    let encoding = model.encoding();
    let inst = slot_mut(&slot)?.inst.clone();
    trade_state(model, &inst)?;
    std::mem::swap(model, &mut slot_mut(&slot)?.model);
    let opts = CanonicalOptions {
        string_encoding: encoding,
        memory: Some(memory_of(&slot)),
        async_: true,
        ..CanonicalOptions::default()
    };
    let host = Rc::downgrade(&slot);
    let callee: FuncInst = Rc::new(move |on_start, on_resolve| {
        let args = on_start()?;
        let slot = host.upgrade().ok_or_else(|| assertion("the guest model is gone"))?;
        let (result, later) = {
            let mut s = slot_mut(&slot)?;
            let host = &mut s.model.host_state().host;
            (host.import(thunk, args), host.answered_later())
        };
        let result = result.map_err(|e| e.downcast::<Trap>().unwrap_or_else(|e| assertion(format!("{e:#}"))))?;
        if !later {
            on_resolve(Some(result.into_iter().collect()))?;
            let no_cancel: OnCancel = Rc::new(|| Ok(()));
            return Ok(no_cancel);
        }
        let answer: LaterAnswer = Rc::new(RefCell::new(Some((on_resolve, result))));
        slot_mut(&slot)?.later.push_back(answer.clone());
        let on_cancel: OnCancel = Rc::new(move || {
            let held = answer.borrow_mut().take();
            held.map_or(Ok(()), |(on_resolve, _)| on_resolve(None))
        });
        Ok(on_cancel)
    });
    let ft = ft.clone();
    let r = run_once("an async import", Box::pin(async move { canon_lower(&callee, &ft, &opts, args).await }));
    std::mem::swap(model, &mut slot_mut(&slot)?.model);
    trade_state(model, &inst)?;
    r
}

/// A built-in that may block, run to its first suspension: the model's interpreter cannot
/// suspend inside a frame yet, so a built-in that blocks is a harness limit, not a trap.
fn run_once(what: &str, mut f: LocalFuture<Result<Vec<Flat>, Trap>>) -> Result<Vec<Flat>, Trap> {
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(assertion(format!("{what} blocked: the guest model cannot block inside a frame yet"))),
    }
}

/// Argument `i` of a built-in call, an i32.
fn arg_word(args: &[Flat], i: usize, what: &str) -> Result<u32, Trap> {
    match args.get(i) {
        Some(Flat::I32(v)) => Ok(*v),
        other => Err(assertion(format!("argument {i} of {what} is {other:?}"))),
    }
}

fn call_builtin(builtin: &AsyncImport, opts: &CanonicalOptions, args: &[Flat]) -> Result<Vec<Flat>, Trap> {
    let mem = opts.memory.clone().ok_or_else(|| assertion("built-in options without memory"))?;
    let word = |i: usize| arg_word(args, i, &builtin.describe());
    match builtin {
        AsyncImport::TaskReturn { result, .. } => canon_task_return(result.as_ref(), opts, args.to_vec()),
        AsyncImport::Builtin(name) => match *name {
            "[context-get-0]" => canon_context_get(PtrType::I32, 0),
            "[context-set-0]" => canon_context_set(PtrType::I32, 0, word(0)?.into()),
            "[backpressure-inc]" => canon_backpressure_inc(),
            "[backpressure-dec]" => canon_backpressure_dec(),
            "[task-cancel]" => canon_task_cancel(),
            "[thread-yield]" => run_once(name, Box::pin(canon_thread_yield(false))),
            "[waitable-set-new]" => canon_waitable_set_new(),
            "[waitable-set-wait]" => {
                let (si, ptr) = (word(0)?, word(1)?.into());
                run_once(name, Box::pin(async move { canon_waitable_set_wait(false, &mem, si, ptr).await }))
            }
            "[waitable-set-poll]" => canon_waitable_set_poll(false, &mem, word(0)?, word(1)?.into()),
            "[waitable-set-drop]" => canon_waitable_set_drop(word(0)?),
            "[waitable-join]" => canon_waitable_join(word(0)?, word(1)?),
            "[subtask-cancel]" => {
                let i = word(0)?;
                run_once(name, Box::pin(canon_subtask_cancel(false, i)))
            }
            "[subtask-drop]" => canon_subtask_drop(word(0)?),
            other => Err(assertion(format!("{other}: not modelled yet"))),
        },
        AsyncImport::Value { ty, op } => value_builtin(ty, *op, opts, &word),
    }
}

fn value_builtin(
    ty: &ValType,
    op: AsyncValueOp,
    opts: &CanonicalOptions,
    word: &dyn Fn(usize) -> Result<u32, Trap>,
) -> Result<Vec<Flat>, Trap> {
    let stream = matches!(ty, ValType::Stream(_));
    let what = op.name();
    let (ty, opts) = (ty.clone(), opts.clone());
    match (op, stream) {
        (AsyncValueOp::New, true) => canon_stream_new(&ty),
        (AsyncValueOp::New, false) => canon_future_new(&ty),
        (AsyncValueOp::Read, true) => {
            let (i, ptr, n) = (word(0)?, word(1)?.into(), word(2)?.into());
            run_once(what, Box::pin(async move { canon_stream_read(&ty, &opts, i, ptr, n).await }))
        }
        (AsyncValueOp::Write, true) => {
            let (i, ptr, n) = (word(0)?, word(1)?.into(), word(2)?.into());
            run_once(what, Box::pin(async move { canon_stream_write(&ty, &opts, i, ptr, n).await }))
        }
        (AsyncValueOp::Read, false) => {
            let (i, ptr) = (word(0)?, word(1)?.into());
            run_once(what, Box::pin(async move { canon_future_read(&ty, &opts, i, ptr).await }))
        }
        (AsyncValueOp::Write, false) => {
            let (i, ptr) = (word(0)?, word(1)?.into());
            run_once(what, Box::pin(async move { canon_future_write(&ty, &opts, i, ptr).await }))
        }
        (AsyncValueOp::CancelRead, true) => {
            let i = word(0)?;
            run_once(what, Box::pin(async move { canon_stream_cancel_read(&ty, false, i).await }))
        }
        (AsyncValueOp::CancelWrite, true) => {
            let i = word(0)?;
            run_once(what, Box::pin(async move { canon_stream_cancel_write(&ty, false, i).await }))
        }
        (AsyncValueOp::CancelRead, false) => {
            let i = word(0)?;
            run_once(what, Box::pin(async move { canon_future_cancel_read(&ty, false, i).await }))
        }
        (AsyncValueOp::CancelWrite, false) => {
            let i = word(0)?;
            run_once(what, Box::pin(async move { canon_future_cancel_write(&ty, false, i).await }))
        }
        (AsyncValueOp::DropReadable, true) => canon_stream_drop_readable(&ty, word(0)?),
        (AsyncValueOp::DropWritable, true) => canon_stream_drop_writable(&ty, word(0)?),
        (AsyncValueOp::DropReadable, false) => canon_future_drop_readable(&ty, word(0)?),
        (AsyncValueOp::DropWritable, false) => canon_future_drop_writable(&ty, word(0)?),
    }
}
