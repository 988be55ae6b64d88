//! The async reference (`witness::reference::concurrency`) run through scenarios: the
//! expected values are the spec's (CanonicalABI.md, definitions.py as of component-model
//! #705), worked out by hand from the rule each test names.

use std::cell::RefCell;
use std::rc::Rc;

use witness::reference::concurrency::Obj;
use witness::reference::concurrency::builtins::*;
use witness::reference::concurrency::choice::{ChoicePoint, Deterministic, Replay};
use witness::reference::concurrency::embedding::Store;
use witness::reference::concurrency::task::{CanonicalOptions, CoreFunc, FuncInst, OnCancel, core_func};
use witness::reference::concurrency::{InstRef, switch::current_thread};
use witness::reference::memory::{BumpHeap, Memory};
use witness::reference::types::{FuncType, ValType};
use witness::reference::value::{Flat, Value};
use witness::reference::{Trap, TrapKind};

type Outcome = Rc<RefCell<Option<Option<Vec<Value>>>>>;

/// A component instance with its own 1 KiB memory (heap from 512).
struct Guest {
    inst: InstRef,
    mem: Obj<dyn Memory>,
}

impl Guest {
    fn new(store: &Rc<Store>) -> Guest {
        let mem: Rc<RefCell<dyn Memory>> = Rc::new(RefCell::new(BumpHeap::new(1024, 512)));
        Guest { inst: store.new_instance(), mem: Obj(mem) }
    }

    fn opts(&self, async_: bool, callback: Option<CoreFunc>) -> CanonicalOptions {
        CanonicalOptions { memory: Some(self.mem.clone()), async_, callback, ..CanonicalOptions::default() }
    }
}

fn write_mem(m: &Obj<dyn Memory>, ptr: u64, bytes: &[u8]) {
    m.borrow_mut().write(ptr, bytes).unwrap();
}

fn read_mem(m: &Obj<dyn Memory>, ptr: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    m.borrow().read(ptr, &mut out).unwrap();
    out
}

fn read_u32(m: &Obj<dyn Memory>, ptr: u64) -> u32 {
    u32::from_le_bytes(read_mem(m, ptr, 4).try_into().unwrap())
}

fn func(params: Vec<ValType>, result: Option<ValType>, async_: bool) -> FuncType {
    let params = params.into_iter().enumerate().map(|(i, t)| (format!("p{i}"), t)).collect();
    FuncType { params, result, async_ }
}

/// The host calls `f` with `args`; the outcome cell fills when the call resolves.
fn host_call(store: &Rc<Store>, f: &FuncInst, args: Vec<Value>) -> Result<(Outcome, OnCancel), Trap> {
    let outcome: Outcome = Rc::new(RefCell::new(None));
    let o = outcome.clone();
    let on_cancel = store.invoke(
        f,
        Box::new(move || Ok(args)),
        Box::new(move |r| {
            *o.borrow_mut() = Some(r);
            Ok(())
        }),
    )?;
    Ok((outcome, on_cancel))
}

fn i32_of(vs: &[Flat]) -> u32 {
    match vs {
        [Flat::I32(v)] => *v,
        other => panic!("expected one i32, got {other:?}"),
    }
}

fn never_called() -> CoreFunc {
    core_func(|_| async { panic!("this callback is never called") })
}

/// An async func with a callback returns its value through `task.return` and exits with
/// `CallbackCode.EXIT` (0): the host sees the value, the instance has no thread left.
#[test]
fn callback_lift_returns_through_task_return() {
    let store = Store::new(Deterministic);
    let g = Guest::new(&store);
    let opts = g.opts(true, Some(never_called()));
    let ret_opts = opts.clone();
    let core = core_func(move |_| {
        let ret_opts = ret_opts.clone();
        async move {
            canon_task_return(Some(&ValType::U32), &ret_opts, vec![Flat::I32(42)])?;
            Ok(vec![Flat::I32(0)])
        }
    });
    let f = store.lift(core, func(vec![], Some(ValType::U32), true), opts, g.inst.clone());
    let (outcome, _) = host_call(&store, &f, vec![]).unwrap();
    assert_eq!(*outcome.borrow(), Some(Some(vec![Value::U32(42)])));
    assert_eq!(g.inst.borrow().threads.entries().count(), 0);
}

/// `task.return` twice: `Task.return_` traps once the task is RESOLVED.
#[test]
fn task_return_twice_traps() {
    let store = Store::new(Deterministic);
    let g = Guest::new(&store);
    let opts = g.opts(true, Some(never_called()));
    let ret_opts = opts.clone();
    let core = core_func(move |_| {
        let ret_opts = ret_opts.clone();
        async move {
            canon_task_return(None, &ret_opts, vec![])?;
            canon_task_return(None, &ret_opts, vec![])?;
            Ok(vec![Flat::I32(0)])
        }
    });
    let f = store.lift(core, func(vec![], None, true), opts, g.inst.clone());
    let err = host_call(&store, &f, vec![]).err().expect("a trap");
    assert_eq!(err.kind, TrapKind::TaskAlreadyResolved, "{err}");
}

/// A callback-lifted task that exits without `task.return`: `unregister_thread` traps when
/// the task's last thread ends unresolved.
#[test]
fn exit_without_return_traps() {
    let store = Store::new(Deterministic);
    let g = Guest::new(&store);
    let core = core_func(|_| async { Ok(vec![Flat::I32(0)]) });
    let f = store.lift(core, func(vec![], None, true), g.opts(true, Some(never_called())), g.inst.clone());
    let err = host_call(&store, &f, vec![]).err().expect("a trap");
    assert_eq!(err.kind, TrapKind::TaskNotResolved, "{err}");
}

/// A callback code above `CallbackCode.MAX` (2) traps in `unpack_callback_result`; the
/// waitable-set index above the low 4 bits does not matter.
#[test]
fn callback_code_above_max_traps() {
    let store = Store::new(Deterministic);
    let g = Guest::new(&store);
    let core = core_func(|_| async { Ok(vec![Flat::I32(3 | (1 << 4))]) });
    let f = store.lift(core, func(vec![], None, true), g.opts(true, Some(never_called())), g.inst.clone());
    let err = host_call(&store, &f, vec![]).err().expect("a trap");
    assert_eq!(err.kind, TrapKind::InvalidCallbackCode, "{err}");
}

/// A stream of u8 within one instance (numbers may be copied within an instance): an async
/// write of 4 bytes finds no reader and returns BLOCKED; a read of 2 then copies 2 of them at
/// once (`COMPLETED | 2 << 4` = 0x20), and the writer's event is STREAM_WRITE with the same
/// packed result; its buffer is reclaimed, so a second read waits (BLOCKED).
#[test]
fn stream_partial_copy_within_an_instance() {
    let store = Store::new(Deterministic);
    let g = Guest::new(&store);
    let opts = g.opts(true, None);
    let (mem, copy_opts) = (g.mem.clone(), opts.clone());
    let seen = Rc::new(RefCell::new(vec![]));
    let log = seen.clone();
    let core = core_func(move |_| {
        let (mem, opts, log) = (mem.clone(), copy_opts.clone(), log.clone());
        async move {
            let st = ValType::Stream(Some(Box::new(ValType::U8)));
            let [Flat::I64(ends)] = canon_stream_new(&st)?[..] else { panic!("stream.new returns one i64") };
            let (ri, wi) = (ends as u32, (ends >> 32) as u32);
            write_mem(&mem, 100, &[1, 2, 3, 4]);
            let v = i32_of(&canon_stream_write(&st, &opts, wi, 100, 4).await?);
            log.borrow_mut().push(v);
            let v = i32_of(&canon_stream_read(&st, &opts, ri, 200, 2).await?);
            log.borrow_mut().push(v);
            let si = i32_of(&canon_waitable_set_new()?);
            canon_waitable_join(wi, si)?;
            let v = i32_of(&canon_waitable_set_wait(false, &mem, si, 300).await?);
            log.borrow_mut().push(v);
            log.borrow_mut().push(read_u32(&mem, 300));
            log.borrow_mut().push(read_u32(&mem, 304));
            let v = i32_of(&canon_stream_read(&st, &opts, ri, 200, 2).await?);
            log.borrow_mut().push(v);
            canon_task_return(None, &opts, vec![])?;
            Ok(vec![])
        }
    });
    let f = store.lift(core, func(vec![], None, true), opts, g.inst.clone());
    let (outcome, _) = host_call(&store, &f, vec![]).unwrap();
    store.run_until_idle(10).unwrap();
    assert_eq!(*outcome.borrow(), Some(Some(vec![])));
    let copied = read_mem(&g.mem, 200, 2);
    assert_eq!(copied, vec![1, 2]);
    // write BLOCKED; read 2 completed; event STREAM_WRITE(3) for end 2 with 2<<4; read BLOCKED
    assert_eq!(*seen.borrow(), vec![BLOCKED, 0x20, 3, 2, 0x20, BLOCKED]);
}

/// Cancelling a subtask that waits in its callback loop: the callee's cancellable WAIT
/// resumes with TASK_CANCELLED (6), its callback calls `task.cancel`, so the subtask resolves
/// CANCELLED_BEFORE_RETURNED (4), which synchronous `subtask.cancel` returns. Before that the
/// async-lowered call returned STARTED (1) with the subtask's index in the bits above 4.
#[test]
fn subtask_cancel_reaches_the_callee_callback() {
    let store = Store::new(Deterministic);
    let (caller, callee) = (Guest::new(&store), Guest::new(&store));
    let events = Rc::new(RefCell::new(vec![]));

    let callee_opts = callee.opts(true, None);
    let log = events.clone();
    let callback = core_func(move |args| {
        let log = log.clone();
        async move {
            log.borrow_mut().push(args.clone());
            canon_task_cancel()?;
            Ok(vec![Flat::I32(0)])
        }
    });
    let callee_opts = CanonicalOptions { callback: Some(callback), ..callee_opts };
    let callee_core = core_func(|_| async {
        let si = i32_of(&canon_waitable_set_new()?);
        Ok(vec![Flat::I32(2 | (si << 4))])
    });
    let ft = func(vec![], None, true);
    let callee_f = store.lift(callee_core, ft.clone(), callee_opts, callee.inst.clone());

    let caller_opts = caller.opts(true, None);
    let lowered = store.lower(callee_f, ft.clone(), caller_opts.clone(), caller.inst.clone());
    let results = Rc::new(RefCell::new(vec![]));
    let r = results.clone();
    let ret_opts = caller_opts.clone();
    let caller_core = core_func(move |_| {
        let (lowered, r, ret_opts) = (lowered.clone(), r.clone(), ret_opts.clone());
        async move {
            let packed = i32_of(&lowered(vec![]).await?);
            r.borrow_mut().push(packed);
            let subtaski = packed >> 4;
            let v = i32_of(&canon_subtask_cancel(false, subtaski).await?);
            r.borrow_mut().push(v);
            canon_subtask_drop(subtaski)?;
            canon_task_return(None, &ret_opts, vec![])?;
            Ok(vec![])
        }
    });
    let f = store.lift(caller_core, ft, caller_opts, caller.inst.clone());
    let (outcome, _) = host_call(&store, &f, vec![]).unwrap();
    assert_eq!(*outcome.borrow(), Some(Some(vec![])));
    let packed = results.borrow()[0];
    assert_eq!(packed & 0xf, 1, "STARTED");
    assert_ne!(packed >> 4, 0, "a subtask index");
    assert_eq!(results.borrow()[1], 4, "CANCELLED_BEFORE_RETURNED");
    assert_eq!(*events.borrow(), vec![vec![Flat::I32(6), Flat::I32(0), Flat::I32(0)]]);
}

/// `wait_until` with a ready condition is a choice: the deterministic profile blocks (so
/// `thread.yield` switches), the other answer returns at once. Both are recorded.
#[test]
fn yield_is_a_recorded_choice() {
    for answer in [0, 1] {
        let store = Store::new(Replay::new([answer]));
        let g = Guest::new(&store);
        let opts = g.opts(true, None);
        let ret = opts.clone();
        let core = core_func(move |_| {
            let ret = ret.clone();
            async move {
                assert_eq!(i32_of(&canon_thread_yield(false).await?), 0, "not cancelled");
                canon_task_return(None, &ret, vec![])?;
                Ok(vec![])
            }
        });
        let f = store.lift(core, func(vec![], None, true), opts, g.inst.clone());
        let (outcome, _) = host_call(&store, &f, vec![]).unwrap();
        let resolved_before_tick = outcome.borrow().is_some();
        assert_eq!(resolved_before_tick, answer == 1, "answer {answer}");
        store.run_until_idle(10).unwrap();
        assert_eq!(*outcome.borrow(), Some(Some(vec![])));
        let points: Vec<ChoicePoint> = store.trail().iter().map(|c| c.point).collect();
        assert_eq!(points[0], ChoicePoint::WaitUntilReady);
        let _ = current_thread;
    }
}
