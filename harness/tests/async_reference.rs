//! The async reference (`witness::reference::concurrency`) run through scenarios: the
//! expected values are the spec's (CanonicalABI.md, definitions.py as of component-model
//! #705), worked out by hand from the rule each test names.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use witness::reference::concurrency::Obj;
use witness::reference::concurrency::builtins::*;
use witness::reference::concurrency::choice::{ChoicePoint, Deterministic, Replay};
use witness::reference::concurrency::embedding::Store;
use witness::reference::concurrency::task::{
    CanonicalOptions, CoreFunc, FuncInst, OnCancel, OnResolve, OnStart, core_func,
};
use witness::reference::concurrency::{InstRef, switch::current_thread};
use witness::reference::memory::{BumpHeap, Memory};
use witness::reference::types::{FuncType, ValType};
use witness::reference::value::{Flat, Value};
use witness::reference::{Trap, TrapKind};

type Outcome = Rc<RefCell<Option<Option<Vec<Value>>>>>;
/// What a call ended with: its result (`None`: it did not resolve), or a trap.
type Ended = Result<Option<Vec<Value>>, Trap>;
/// The events a callback was called with.
type EventLog = Rc<RefCell<Vec<(u32, u32, u32)>>>;

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

/// What a guest's core code reaches: its memory and its canonopts (async, no callback), with
/// shorthands for the built-ins on `stream<u8>` and `future<u8>`.
#[derive(Clone)]
struct Ctx {
    mem: Obj<dyn Memory>,
    opts: CanonicalOptions,
}

fn stream_u8() -> ValType {
    ValType::Stream(Some(Arc::new(ValType::U8)))
}

fn future_u8() -> ValType {
    ValType::Future(Some(Arc::new(ValType::U8)))
}

/// Where `wait` and `poll` store an event's payload words.
const EVENT_AT: u64 = 900;

impl Ctx {
    fn of(g: &Guest) -> Ctx {
        Ctx { mem: g.mem.clone(), opts: g.opts(true, None) }
    }
    fn with_async(&self, async_: bool) -> CanonicalOptions {
        CanonicalOptions { async_, ..self.opts.clone() }
    }
    fn ends(packed: Vec<Flat>) -> (u32, u32) {
        let [Flat::I64(p)] = packed[..] else { panic!("new returns one i64") };
        (p as u32, (p >> 32) as u32)
    }
    fn stream_new(&self) -> Result<(u32, u32), Trap> {
        Ok(Ctx::ends(canon_stream_new(&stream_u8())?))
    }
    fn future_new(&self) -> Result<(u32, u32), Trap> {
        Ok(Ctx::ends(canon_future_new(&future_u8())?))
    }
    async fn read(&self, i: u32, ptr: u64, n: u64, async_: bool) -> Result<u32, Trap> {
        Ok(i32_of(&canon_stream_read(&stream_u8(), &self.with_async(async_), i, ptr, n).await?))
    }
    async fn write(&self, i: u32, ptr: u64, n: u64, async_: bool) -> Result<u32, Trap> {
        Ok(i32_of(&canon_stream_write(&stream_u8(), &self.with_async(async_), i, ptr, n).await?))
    }
    async fn fread(&self, i: u32, ptr: u64, async_: bool) -> Result<u32, Trap> {
        Ok(i32_of(&canon_future_read(&future_u8(), &self.with_async(async_), i, ptr).await?))
    }
    async fn fwrite(&self, i: u32, ptr: u64, async_: bool) -> Result<u32, Trap> {
        Ok(i32_of(&canon_future_write(&future_u8(), &self.with_async(async_), i, ptr).await?))
    }
    fn new_set(&self) -> Result<u32, Trap> {
        Ok(i32_of(&canon_waitable_set_new()?))
    }
    /// `waitable-set.wait` (not cancellable): (code, p1, p2).
    async fn wait(&self, si: u32) -> Result<(u32, u32, u32), Trap> {
        let code = i32_of(&canon_waitable_set_wait(false, &self.mem, si, EVENT_AT).await?);
        Ok((code, read_u32(&self.mem, EVENT_AT), read_u32(&self.mem, EVENT_AT + 4)))
    }
    fn poll(&self, si: u32, cancellable: bool) -> Result<(u32, u32, u32), Trap> {
        let code = i32_of(&canon_waitable_set_poll(cancellable, &self.mem, si, EVENT_AT)?);
        Ok((code, read_u32(&self.mem, EVENT_AT), read_u32(&self.mem, EVENT_AT + 4)))
    }
    fn ret(&self, vs: Vec<Flat>, t: Option<&ValType>) -> Result<(), Trap> {
        canon_task_return(t, &self.opts, vs).map(|_| ())
    }
}

/// A core function over a guest's `Ctx`.
fn core<F, Fut>(cx: &Ctx, f: F) -> CoreFunc
where
    F: Fn(Ctx, Vec<Flat>) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<Vec<Flat>, Trap>> + 'static,
{
    let cx = cx.clone();
    core_func(move |args| f(cx.clone(), args))
}

/// `g`'s export of type `ft`: `async_` with `callback` (or stackful), or synchronous.
fn export(
    store: &Rc<Store>,
    g: &Guest,
    ft: &FuncType,
    async_: bool,
    callback: Option<CoreFunc>,
    body: CoreFunc,
) -> FuncInst {
    store.lift(body, ft.clone(), g.opts(async_, callback), g.inst.clone())
}

/// `f` imported into `g`, lowered sync or async.
fn import(store: &Rc<Store>, g: &Guest, f: &FuncInst, ft: &FuncType, async_: bool) -> CoreFunc {
    store.lower(f.clone(), ft.clone(), g.opts(async_, None), g.inst.clone())
}

/// A host function that takes its arguments (lifting them out of the caller) and returns
/// `result` at once.
fn host_fn(result: Option<Value>) -> FuncInst {
    Rc::new(move |on_start: OnStart, on_resolve: OnResolve| {
        on_start()?;
        on_resolve(Some(result.clone().into_iter().collect()))?;
        let on_cancel: OnCancel = Rc::new(|| Ok(()));
        Ok(on_cancel)
    })
}

/// The host calls `f`, then the store runs until the call resolves (its result) or no
/// thread is ready (`None`). Threads that yield forever do not keep it going: it stops at
/// the resolution.
fn run(store: &Rc<Store>, f: &FuncInst, args: Vec<Value>) -> Ended {
    let (outcome, _) = host_call(store, f, args)?;
    for _ in 0..1000 {
        if let Some(result) = outcome.borrow().clone() {
            return Ok(result);
        }
        if !store.tick()? {
            break;
        }
    }
    let unresolved = outcome.borrow().is_none();
    if unresolved { Ok(None) } else { Ok(outcome.borrow().clone().flatten()) }
}

fn trap_of<T: std::fmt::Debug>(r: Result<T, Trap>) -> TrapKind {
    match r {
        Err(t) => t.kind,
        Ok(v) => panic!("expected a trap, got {v:?}"),
    }
}

/// `(event code, payload)` pairs and packed copy results, by their spec names.
const STREAM_READ: u32 = 2;
const STREAM_WRITE: u32 = 3;
const FUTURE_READ: u32 = 4;
const FUTURE_WRITE: u32 = 5;
const SUBTASK: u32 = 1;
const COMPLETED: u32 = 0;
const DROPPED: u32 = 1;
const CANCELLED: u32 = 2;
const RETURNED: u32 = 2;

fn copied(result: u32, n: u32) -> u32 {
    result | (n << 4)
}

fn u32s(vs: &[u32]) -> Vec<Flat> {
    vs.iter().map(|&v| Flat::I32(v)).collect()
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
            let st = ValType::Stream(Some(Arc::new(ValType::U8)));
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

// ---- test/async/trap-if-block-and-sync.wast: a synchronously typed call may not block ----

fn run_sync_export(
    body: impl Fn(Ctx) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Trap>>>> + 'static,
) -> Ended {
    let store = Store::new(Deterministic);
    let g = Guest::new(&store);
    let cx = Ctx::of(&g);
    let body = Rc::new(body);
    let f = export(
        &store,
        &g,
        &func(vec![], Some(ValType::U32), false),
        false,
        None,
        core(&cx, move |cx, _| {
            let body = body.clone();
            async move {
                body(cx).await?;
                Ok(u32s(&[42]))
            }
        }),
    );
    run(&store, &f, vec![])
}

/// `canon_lift` of a sync-typed function: `trap_if(not candidates)` once its only thread
/// blocks with nothing ready (a wait on an empty set, `thread.suspend`, a synchronous copy
/// nobody answers); `thread.yield` and `waitable-set.poll` are fine.
#[test]
fn a_synchronous_task_may_not_block() {
    let blocks: Vec<(&str, TrapKind, Ended)> = vec![
        (
            "wait",
            TrapKind::WouldDeadlock,
            run_sync_export(|cx| {
                Box::pin(async move {
                    let si = cx.new_set()?;
                    cx.wait(si).await.map(|_| ())
                })
            }),
        ),
        (
            "suspend",
            TrapKind::WouldDeadlock,
            run_sync_export(|_| Box::pin(async move { canon_thread_suspend(false).await.map(|_| ()) })),
        ),
        (
            "sync stream.read",
            TrapKind::WouldDeadlock,
            run_sync_export(|cx| {
                Box::pin(async move {
                    let (r, _w) = cx.stream_new()?;
                    cx.read(r, 0, 4, false).await.map(|_| ())
                })
            }),
        ),
        (
            "sync future.write",
            TrapKind::WouldDeadlock,
            run_sync_export(|cx| {
                Box::pin(async move {
                    let (_r, w) = cx.future_new()?;
                    cx.fwrite(w, 0, false).await.map(|_| ())
                })
            }),
        ),
    ];
    for (what, kind, r) in blocks {
        assert_eq!(trap_of(r), kind, "{what}");
    }
    let yields = run_sync_export(|_| Box::pin(async move { canon_thread_yield(false).await.map(|_| ()) }));
    assert_eq!(yields, Ok(Some(vec![Value::U32(42)])), "yield: the lift's loop resumes the same thread");
    let polls = run_sync_export(|cx| {
        Box::pin(async move {
            let si = cx.new_set()?;
            assert_eq!(cx.poll(si, false)?, (0, 0, 0), "EventCode.NONE");
            Ok(())
        })
    });
    assert_eq!(polls, Ok(Some(vec![Value::U32(42)])));
}

/// 🧵 The thread built-ins inside a sync-typed call: `resume-later` of a new thread,
/// `yield-then-resume` into it, and `suspend-then-resume` there and back are all fine (the
/// lift's loop finds the caller ready); `resume-later` of a thread that is not suspended traps.
#[test]
fn thread_switches_inside_a_synchronous_task() {
    use witness::reference::concurrency::builtins::CoreFuncRef;
    use witness::reference::flatten::CoreFuncType;
    use witness::reference::handles::Table;
    use witness::reference::types::CoreType;

    fn table(body: CoreFunc) -> Table<CoreFuncRef> {
        let mut t = Table::default();
        t.add(CoreFuncRef { t: CoreFuncType { params: vec![CoreType::I32], results: vec![] }, callee: body }).unwrap();
        t
    }
    let ft = CoreFuncType { params: vec![CoreType::I32], results: vec![] };
    let noop = || core_func(|_| async { Ok(vec![]) });

    let ran = Rc::new(RefCell::new(vec![]));
    let r = ran.clone();
    let resumed_later = run_sync_export(move |_| {
        let (ft, r) = (ft.clone(), r.clone());
        Box::pin(async move {
            let tbl = table(noop());
            let t = i32_of(&canon_thread_new_indirect(&ft, &tbl, 1, Flat::I32(0))?);
            canon_thread_resume_later(t)?;
            r.borrow_mut().push(trap_of(canon_thread_resume_later(t)));
            Ok(())
        })
    });
    assert_eq!(resumed_later, Ok(Some(vec![Value::U32(42)])));
    assert_eq!(*ran.borrow(), vec![TrapKind::ThreadNotSuspended], "a waiting thread is not suspended");

    let ft = CoreFuncType { params: vec![CoreType::I32], results: vec![] };
    let yielded = run_sync_export(move |_| {
        let ft = ft.clone();
        Box::pin(async move {
            let tbl = table(noop());
            let t = i32_of(&canon_thread_new_indirect(&ft, &tbl, 1, Flat::I32(0))?);
            assert_eq!(i32_of(&canon_thread_yield_then_resume(false, t).await?), 0);
            Ok(())
        })
    });
    assert_eq!(yielded, Ok(Some(vec![Value::U32(42)])));

    let ft = CoreFuncType { params: vec![CoreType::I32], results: vec![] };
    let back_and_forth = run_sync_export(move |_| {
        let ft = ft.clone();
        Box::pin(async move {
            let resume_back = core_func(|args| async move {
                let [Flat::I32(main)] = args[..] else { panic!("one i32") };
                canon_thread_suspend_then_resume(false, main).await?;
                Ok(vec![])
            });
            let tbl = table(resume_back);
            let me = i32_of(&canon_thread_index()?);
            let t = i32_of(&canon_thread_new_indirect(&ft, &tbl, 1, Flat::I32(me))?);
            assert_eq!(i32_of(&canon_thread_suspend_then_resume(false, t).await?), 0);
            Ok(())
        })
    });
    assert_eq!(back_and_forth, Ok(Some(vec![Value::U32(42)])));
}

// ---- futures and streams in one instance (u8 elements may be copied within an instance) ----

/// Runs `body` as an async-typed, synchronously lifted export of a fresh instance.
fn in_one_instance(
    body: impl Fn(Ctx, Guest, Rc<Store>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Trap>>>> + 'static,
) -> Ended {
    let store = Store::new(Deterministic);
    let g = Guest::new(&store);
    let cx = Ctx::of(&g);
    let (g2, store2) = (Guest { inst: g.inst.clone(), mem: g.mem.clone() }, store.clone());
    let body = Rc::new(body);
    let f = export(
        &store,
        &g,
        &func(vec![], Some(ValType::U32), true),
        false,
        None,
        core(&cx, move |cx, _| {
            let (body, g2, store2) =
                (body.clone(), Guest { inst: g2.inst.clone(), mem: g2.mem.clone() }, store2.clone());
            async move {
                body(cx, g2, store2).await?;
                Ok(u32s(&[42]))
            }
        }),
    );
    run(&store, &f, vec![])
}

fn ok42() -> Ended {
    Ok(Some(vec![Value::U32(42)]))
}

/// trap-if-done.wast: a future end is DONE once its value was copied (or, for the writer, the
/// reader dropped), a stream end once the other end dropped; any copy or transfer of a DONE
/// end traps (`trap_if(e.state != CopyState.IDLE)`, also in `lift_async_value`).
#[test]
fn done_ends_may_not_copy_again() {
    let eager_write = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.future_new()?;
            assert_eq!(cx.fread(r, 16, true).await?, BLOCKED);
            assert_eq!(cx.fwrite(w, 16, true).await?, COMPLETED);
            cx.fwrite(w, 16, true).await.map(|_| ())
        })
    });
    assert_eq!(trap_of(eager_write), TrapKind::CopyState);

    let reader_dropped = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.future_new()?;
            canon_future_drop_readable(&future_u8(), r)?;
            assert_eq!(cx.fwrite(w, 16, true).await?, DROPPED);
            cx.fwrite(w, 16, true).await.map(|_| ())
        })
    });
    assert_eq!(trap_of(reader_dropped), TrapKind::CopyState);

    let read_twice = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.future_new()?;
            write_mem(&cx.mem, 16, &[42]);
            assert_eq!(cx.fwrite(w, 16, true).await?, BLOCKED);
            assert_eq!(cx.fread(r, 17, true).await?, COMPLETED);
            assert_eq!(read_mem(&cx.mem, 17, 1), vec![42]);
            cx.fread(r, 17, true).await.map(|_| ())
        })
    });
    assert_eq!(trap_of(read_twice), TrapKind::CopyState);

    let lift_after_read = in_one_instance(|cx, g, store| {
        Box::pin(async move {
            let (r, w) = cx.future_new()?;
            assert_eq!(cx.fwrite(w, 16, true).await?, BLOCKED);
            assert_eq!(cx.fread(r, 17, true).await?, COMPLETED);
            let ft = func(vec![future_u8()], None, false);
            let pass = import(&store, &g, &host_fn(None), &ft, false);
            pass(u32s(&[r])).await.map(|_| ())
        })
    });
    assert_eq!(trap_of(lift_after_read), TrapKind::CopyState);

    let stream_writer_dropped = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.stream_new()?;
            canon_stream_drop_writable(&stream_u8(), w)?;
            assert_eq!(cx.read(r, 16, 100, true).await?, copied(DROPPED, 0));
            cx.read(r, 16, 100, true).await.map(|_| ())
        })
    });
    assert_eq!(trap_of(stream_writer_dropped), TrapKind::CopyState);

    let stream_reader_dropped = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.stream_new()?;
            canon_stream_drop_readable(&stream_u8(), r)?;
            assert_eq!(cx.write(w, 16, 1, true).await?, copied(DROPPED, 0));
            cx.write(w, 16, 1, true).await.map(|_| ())
        })
    });
    assert_eq!(trap_of(stream_reader_dropped), TrapKind::CopyState);

    let concurrent = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (_r, w) = cx.stream_new()?;
            assert_eq!(cx.write(w, 16, 4, true).await?, BLOCKED);
            cx.write(w, 16, 4, true).await.map(|_| ())
        })
    });
    assert_eq!(trap_of(concurrent), TrapKind::CopyState, "a second copy while one is pending");
}

/// trap-if-sync-and-waitable-set.wast: a synchronous copy, cancel or subtask.cancel of a
/// waitable in a set traps (`trap_if(e.in_waitable_set() and not async_)`).
#[test]
fn synchronous_use_of_a_waitable_in_a_set_traps() {
    let sync_read = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, _w) = cx.future_new()?;
            let si = cx.new_set()?;
            canon_waitable_join(r, si)?;
            cx.fread(r, 16, false).await.map(|_| ())
        })
    });
    assert_eq!(trap_of(sync_read), TrapKind::InWaitableSet);
    let sync_write = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (_r, w) = cx.stream_new()?;
            let si = cx.new_set()?;
            canon_waitable_join(w, si)?;
            cx.write(w, 16, 4, false).await.map(|_| ())
        })
    });
    assert_eq!(trap_of(sync_write), TrapKind::InWaitableSet);
    let sync_cancel = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, _w) = cx.stream_new()?;
            assert_eq!(cx.read(r, 16, 4, true).await?, BLOCKED);
            let si = cx.new_set()?;
            canon_waitable_join(r, si)?;
            canon_stream_cancel_read(&stream_u8(), false, r).await.map(|_| ())
        })
    });
    assert_eq!(trap_of(sync_cancel), TrapKind::InWaitableSet);
    // The async forms are fine: the cancel finds the copy pending and cancels it.
    let async_cancel = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, _w) = cx.stream_new()?;
            assert_eq!(cx.read(r, 16, 4, true).await?, BLOCKED);
            let si = cx.new_set()?;
            canon_waitable_join(r, si)?;
            assert_eq!(i32_of(&canon_stream_cancel_read(&stream_u8(), true, r).await?), copied(CANCELLED, 0));
            Ok(())
        })
    });
    assert_eq!(async_cancel, ok42());
}

/// trap-if-sync-and-waitable-set.wast, join-during-sync-*: a thread blocked in a synchronous
/// copy is the end's synchronous waiter; joining the end into a set traps
/// (`canon_waitable_join: trap_if(w.has_sync_waiter)`).
#[test]
fn joining_an_end_a_synchronous_copy_waits_on_traps() {
    use witness::reference::concurrency::builtins::CoreFuncRef;
    use witness::reference::flatten::CoreFuncType;
    use witness::reference::handles::Table;
    use witness::reference::types::CoreType;
    let r = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (fr, _fw) = cx.future_new()?;
            let reader = {
                let cx = cx.clone();
                core_func(move |args| {
                    let cx = cx.clone();
                    async move {
                        let [Flat::I32(end)] = args[..] else { panic!("one i32") };
                        cx.fread(end, 16, false).await?;
                        Ok(vec![])
                    }
                })
            };
            let ft = CoreFuncType { params: vec![CoreType::I32], results: vec![] };
            let mut tbl = Table::default();
            tbl.add(CoreFuncRef { t: ft.clone(), callee: reader })?;
            let t = i32_of(&canon_thread_new_indirect(&ft, &tbl, 1, Flat::I32(fr))?);
            canon_thread_yield_then_resume(false, t).await?;
            let si = cx.new_set()?;
            canon_waitable_join(fr, si).map(|_| ())
        })
    });
    assert_eq!(trap_of(r), TrapKind::HasSyncWaiter);
}

/// futures-must-write.wast: the writable end of a future may not be dropped before it wrote
/// (`WritableFutureEnd.drop: trap_if(self.state != DONE)`); after the reader dropped, the
/// write ends DROPPED (1) and the writer may drop.
#[test]
fn futures_must_be_written() {
    let unwritten = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (_r, w) = cx.future_new()?;
            canon_future_drop_writable(&future_u8(), w).map(|_| ())
        })
    });
    assert_eq!(trap_of(unwritten), TrapKind::FutureNotWritten);
    let reader_gone = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.future_new()?;
            canon_future_drop_readable(&future_u8(), r)?;
            assert_eq!(cx.fwrite(w, 16, true).await?, DROPPED);
            canon_future_drop_writable(&future_u8(), w).map(|_| ())
        })
    });
    assert_eq!(reader_gone, ok42());
}

/// drop-stream.wast: an end is copying until its event is delivered, even when the other
/// end already filled it, so dropping it then traps (`CopyEnd.drop: trap_if(self.copying())`).
#[test]
fn an_end_may_not_drop_mid_copy() {
    let reader = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.stream_new()?;
            assert_eq!(cx.read(r, 8, 100, true).await?, BLOCKED);
            write_mem(&cx.mem, 200, &[0x78, 0x56, 0x34, 0x12]);
            assert_eq!(cx.write(w, 200, 4, true).await?, copied(COMPLETED, 4));
            assert_eq!(read_u32(&cx.mem, 8), 0x1234_5678);
            canon_stream_drop_readable(&stream_u8(), r).map(|_| ())
        })
    });
    assert_eq!(trap_of(reader), TrapKind::CopyState);
    let writer = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.stream_new()?;
            assert_eq!(cx.write(w, 200, 8, true).await?, BLOCKED);
            assert_eq!(cx.read(r, 8, 4, true).await?, copied(COMPLETED, 4));
            canon_stream_drop_writable(&stream_u8(), w).map(|_| ())
        })
    });
    assert_eq!(trap_of(writer), TrapKind::CopyState);
}

/// cancel-stream.wast, as definitions.py has it: a cancel of a pending copy that nothing
/// touched is CANCELLED (0x2); a cancel after the other end copied 4 elements returns the
/// pending COMPLETED event (0x40; the wast file expects 0x42 there, definitions.py and
/// run_tests.py's test_cancel_copy give 0x40); after the writer dropped, DROPPED|4 (0x41).
#[test]
fn cancelling_stream_copies() {
    let r = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.stream_new()?;
            let st = stream_u8();
            let cancel_read = || canon_stream_cancel_read(&st, false, r);
            assert_eq!(cx.read(r, 8, 100, true).await?, BLOCKED);
            assert_eq!(i32_of(&cancel_read().await?), copied(CANCELLED, 0));
            assert_eq!(cx.read(r, 8, 100, true).await?, BLOCKED);
            assert_eq!(cx.write(w, 200, 4, true).await?, copied(COMPLETED, 4));
            assert_eq!(i32_of(&cancel_read().await?), copied(COMPLETED, 4));
            assert_eq!(cx.read(r, 8, 100, true).await?, BLOCKED);
            assert_eq!(cx.write(w, 200, 4, true).await?, copied(COMPLETED, 4));
            canon_stream_drop_writable(&stream_u8(), w)?;
            assert_eq!(i32_of(&cancel_read().await?), copied(DROPPED, 4));
            Ok(())
        })
    });
    assert_eq!(r, ok42());
    let w = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.stream_new()?;
            let st = stream_u8();
            let cancel_write = || canon_stream_cancel_write(&st, false, w);
            assert_eq!(cx.write(w, 200, 8, true).await?, BLOCKED);
            assert_eq!(i32_of(&cancel_write().await?), copied(CANCELLED, 0));
            assert_eq!(cx.write(w, 200, 8, true).await?, BLOCKED);
            assert_eq!(cx.read(r, 8, 4, true).await?, copied(COMPLETED, 4));
            assert_eq!(i32_of(&cancel_write().await?), copied(COMPLETED, 4));
            Ok(())
        })
    });
    assert_eq!(w, ok42());
    let idle = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, _w) = cx.stream_new()?;
            canon_stream_cancel_read(&stream_u8(), true, r).await.map(|_| ())
        })
    });
    assert_eq!(trap_of(idle), TrapKind::CopyState, "a cancel with no copy in progress");
}

/// zero-length.wast in one instance: a 0-length read meeting a pending 0-length write
/// completes the writer (COMPLETED|0) and waits itself; a 4-byte write then completes that
/// reader and waits; the reader takes the 4 bytes; when the reader drops before the writer
/// saw its event, the writer's event turns DROPPED|4 (0x41). Two 0-length copies where the
/// writer comes second: the writer completes at once, the reader stays pending.
#[test]
fn zero_length_copies_meet() {
    let r = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.stream_new()?;
            let (ws, rs) = (cx.new_set()?, cx.new_set()?);
            canon_waitable_join(w, ws)?;
            canon_waitable_join(r, rs)?;
            assert_eq!(cx.write(w, 0xdead_beef, 0, true).await?, BLOCKED);
            assert_eq!(cx.read(r, 0xdead_beef, 0, true).await?, BLOCKED);
            assert_eq!(cx.wait(ws).await?, (STREAM_WRITE, w, copied(COMPLETED, 0)));
            write_mem(&cx.mem, 0, &[0x78, 0x56, 0x34, 0x12]);
            assert_eq!(cx.write(w, 0, 4, true).await?, BLOCKED);
            assert_eq!(cx.wait(rs).await?, (STREAM_READ, r, copied(COMPLETED, 0)));
            assert_eq!(cx.read(r, 100, 100, true).await?, copied(COMPLETED, 4));
            assert_eq!(read_u32(&cx.mem, 100), 0x1234_5678);
            canon_waitable_join(r, 0)?;
            canon_stream_drop_readable(&stream_u8(), r)?;
            assert_eq!(cx.wait(ws).await?, (STREAM_WRITE, w, copied(DROPPED, 4)));
            Ok(())
        })
    });
    assert_eq!(r, ok42());
    let writer_second = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.stream_new()?;
            assert_eq!(cx.read(r, 0, 0, true).await?, BLOCKED);
            assert_eq!(cx.write(w, 0, 0, true).await?, copied(COMPLETED, 0));
            let rs = cx.new_set()?;
            canon_waitable_join(r, rs)?;
            assert_eq!(cx.poll(rs, false)?, (0, 0, 0), "the reader is still pending, no event");
            Ok(())
        })
    });
    assert_eq!(writer_second, ok42());
}

/// closed-stream.wast: a read from a stream whose writer dropped is DROPPED with no progress.
#[test]
fn reading_a_closed_stream() {
    let r = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.stream_new()?;
            canon_stream_drop_writable(&stream_u8(), w)?;
            assert_eq!(cx.read(r, 8, 4, true).await?, copied(DROPPED, 0));
            Ok(())
        })
    });
    assert_eq!(r, ok42());
}

/// same-component-stream-future.wast: a future of `char` may not be read and written in
/// one instance (`trap_if(inst is self.pending_inst and not none_or_number_type(t))`); a
/// future of `u8` may.
#[test]
fn same_instance_copies_of_non_numbers_trap() {
    let chars = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let t = ValType::Future(Some(Arc::new(ValType::Char)));
            let (r, w) = Ctx::ends(canon_future_new(&t)?);
            assert_eq!(i32_of(&canon_future_read(&t, &cx.opts, r, 16).await?), BLOCKED);
            canon_future_write(&t, &cx.opts, w, 20).await.map(|_| ())
        })
    });
    assert_eq!(trap_of(chars), TrapKind::SameInstanceCopy);
    let bytes = in_one_instance(|cx, _, _| {
        Box::pin(async move {
            let (r, w) = cx.future_new()?;
            write_mem(&cx.mem, 16, &[42]);
            assert_eq!(cx.fread(r, 17, true).await?, BLOCKED);
            assert_eq!(cx.fwrite(w, 16, true).await?, COMPLETED);
            assert_eq!(read_mem(&cx.mem, 17, 1), vec![42]);
            Ok(())
        })
    });
    assert_eq!(bytes, ok42());
}

/// trap-if-transfer-in-waitable-set.wast: an end in a waitable set may not be passed on
/// (`lift_async_value: trap_if(e.in_waitable_set())`), here through `task.return`.
#[test]
fn an_end_in_a_set_may_not_be_passed() {
    let store = Store::new(Deterministic);
    let g = Guest::new(&store);
    let cx = Ctx::of(&g);
    let ft = func(vec![], Some(future_u8()), true);
    let f = export(
        &store,
        &g,
        &ft,
        true,
        Some(never_called()),
        core(&cx, |cx, _| async move {
            let (r, _w) = cx.future_new()?;
            let si = cx.new_set()?;
            canon_waitable_join(r, si)?;
            cx.ret(u32s(&[r]), Some(&future_u8()))?;
            Ok(u32s(&[0]))
        }),
    );
    assert_eq!(trap_of(run(&store, &f, vec![])), TrapKind::InWaitableSet);
}

// ---- two instances: a caller D and a callee C ----

/// The callee's callback that logs each event and then runs `turn` (which returns the
/// packed callback code).
fn logging_callback<F, Fut>(cx: &Ctx, log: &EventLog, turn: F) -> CoreFunc
where
    F: Fn(Ctx, (u32, u32, u32)) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<u32, Trap>> + 'static,
{
    let (log, turn) = (log.clone(), Rc::new(turn));
    core(cx, move |cx, args| {
        let (log, turn) = (log.clone(), turn.clone());
        async move {
            let [Flat::I32(c), Flat::I32(p1), Flat::I32(p2)] = args[..] else { panic!("three i32") };
            log.borrow_mut().push((c, p1, p2));
            Ok(u32s(&[turn(cx, (c, p1, p2)).await?]))
        }
    })
}

/// cancel-subtask.wast: a subtask whose callee waits non-cancellably gets its cancellation
/// left pending (`Task.request_cancellation` finds no cancellable thread): an async
/// `subtask.cancel` returns BLOCKED, and when the future the callee waits on is written, the
/// callee returns normally, so the subtask's event is (SUBTASK, i, RETURNED) and the result
/// (42) is in the caller's memory.
#[test]
fn a_cancellation_stays_pending_while_the_callee_cannot_take_it() {
    let store = Store::new(Deterministic);
    let (d, c) = (Guest::new(&store), Guest::new(&store));
    let (dx, cx) = (Ctx::of(&d), Ctx::of(&c));
    let g_ft = func(vec![future_u8()], Some(ValType::U32), true);
    let g = export(
        &store,
        &c,
        &g_ft,
        false,
        None,
        core(&cx, |cx, args| async move {
            let [Flat::I32(fut)] = args[..] else { panic!("one future") };
            assert_eq!(cx.fread(fut, 64, true).await?, BLOCKED);
            let si = cx.new_set()?;
            canon_waitable_join(fut, si)?;
            assert_eq!(cx.wait(si).await?, (FUTURE_READ, fut, COMPLETED));
            Ok(u32s(&[42]))
        }),
    );
    let g_import = import(&store, &d, &g, &g_ft, true);
    let run_ft = func(vec![], Some(ValType::U32), true);
    let main = export(
        &store,
        &d,
        &run_ft,
        false,
        None,
        core(&dx, move |cx, _| {
            let g_import = g_import.clone();
            async move {
                let (r, w) = cx.future_new()?;
                let packed = i32_of(&g_import(u32s(&[r, 4])).await?);
                assert_eq!(packed & 0xf, 1, "STARTED");
                let sub = packed >> 4;
                assert_eq!(i32_of(&canon_subtask_cancel(true, sub).await?), BLOCKED);
                write_mem(&cx.mem, 64, &[7]);
                assert_eq!(cx.fwrite(w, 64, true).await?, COMPLETED);
                let si = cx.new_set()?;
                canon_waitable_join(sub, si)?;
                assert_eq!(cx.wait(si).await?, (SUBTASK, sub, RETURNED));
                Ok(u32s(&[read_u32(&cx.mem, 4)]))
            }
        }),
    );
    assert_eq!(run(&store, &main, vec![]), ok42());
}

/// cancellable.wast: a callee blocked cancellably (a cancellable `waitable-set.wait`, a
/// cancellable `thread.yield`) takes the cancellation at once: the wait returns
/// TASK_CANCELLED (6) and the yield 1, the callee calls `task.cancel`, and `subtask.cancel`
/// returns CANCELLED_BEFORE_RETURNED (4). A cancellation that arrives while the callee waits
/// non-cancellably stays pending until a cancellable `waitable-set.poll`, which returns 6.
#[test]
fn cancellable_waits_take_the_cancellation() {
    type Body = fn(Ctx, Vec<Flat>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Flat>, Trap>>>>;
    let wait_cancel: Body = |cx, _| {
        Box::pin(async move {
            let si = cx.new_set()?;
            let code = i32_of(&canon_waitable_set_wait(true, &cx.mem, si, EVENT_AT).await?);
            assert_eq!(code, 6, "TASK_CANCELLED");
            canon_task_cancel()?;
            Ok(u32s(&[0]))
        })
    };
    let yield_cancel: Body = |_, _| {
        Box::pin(async move {
            while i32_of(&canon_thread_yield(true).await?) != 1 {}
            canon_task_cancel()?;
            Ok(u32s(&[0]))
        })
    };
    for (what, body) in [("wait", wait_cancel), ("yield", yield_cancel)] {
        let store = Store::new(Deterministic);
        let (d, c) = (Guest::new(&store), Guest::new(&store));
        let (dx, cx) = (Ctx::of(&d), Ctx::of(&c));
        let ft = func(vec![], None, true);
        let callee = export(&store, &c, &ft, true, Some(never_called()), core(&cx, body));
        let callee = import(&store, &d, &callee, &ft, true);
        let main = export(
            &store,
            &d,
            &func(vec![], Some(ValType::U32), true),
            false,
            None,
            core(&dx, move |_, _| {
                let callee = callee.clone();
                async move {
                    let packed = i32_of(&callee(vec![]).await?);
                    assert_eq!(packed & 0xf, 1, "STARTED");
                    let state = i32_of(&canon_subtask_cancel(true, packed >> 4).await?);
                    canon_subtask_drop(packed >> 4)?;
                    Ok(u32s(&[state]))
                }
            }),
        );
        assert_eq!(run(&store, &main, vec![]), Ok(Some(vec![Value::U32(4)])), "{what}");
    }

    let store = Store::new(Deterministic);
    let (d, c) = (Guest::new(&store), Guest::new(&store));
    let (dx, cx) = (Ctx::of(&d), Ctx::of(&c));
    let ft = func(vec![future_u8()], None, true);
    let callee = export(
        &store,
        &c,
        &ft,
        true,
        Some(never_called()),
        core(&cx, |cx, args| async move {
            let [Flat::I32(fut)] = args[..] else { panic!("one future") };
            assert_eq!(cx.fread(fut, 64, true).await?, BLOCKED);
            let si = cx.new_set()?;
            canon_waitable_join(fut, si)?;
            assert_eq!(cx.wait(si).await?, (FUTURE_READ, fut, COMPLETED), "not cancellable: the read comes first");
            assert_eq!(cx.poll(si, true)?.0, 6, "the pending cancellation, delivered");
            canon_task_cancel()?;
            Ok(u32s(&[0]))
        }),
    );
    let callee = import(&store, &d, &callee, &ft, true);
    let main = export(
        &store,
        &d,
        &func(vec![], Some(ValType::U32), true),
        false,
        None,
        core(&dx, move |cx, _| {
            let callee = callee.clone();
            async move {
                let (r, w) = cx.future_new()?;
                let sub = i32_of(&callee(u32s(&[r])).await?) >> 4;
                assert_eq!(i32_of(&canon_subtask_cancel(true, sub).await?), BLOCKED);
                assert_eq!(cx.fwrite(w, 64, true).await?, COMPLETED);
                let si = cx.new_set()?;
                canon_waitable_join(sub, si)?;
                assert_eq!(cx.wait(si).await?, (SUBTASK, sub, 4), "CANCELLED_BEFORE_RETURNED");
                Ok(u32s(&[42]))
            }
        }),
    );
    assert_eq!(run(&store, &main, vec![]), ok42());
}

/// cross-task-future.wast: future ends belong to the instance, not to the task that made
/// them. C.one (sync) makes a future; C.two (callback) returns its readable end with
/// `task.return` and exits with its write still pending; D reads the value (COMPLETED, 0x42).
#[test]
fn a_future_outlives_the_task_that_wrote_it() {
    use std::cell::Cell;
    let store = Store::new(Deterministic);
    let (d, c) = (Guest::new(&store), Guest::new(&store));
    let (dx, cx) = (Ctx::of(&d), Ctx::of(&c));
    let ends = Rc::new(Cell::new((0, 0)));
    let e = ends.clone();
    let one_ft = func(vec![], None, false);
    let one = export(
        &store,
        &c,
        &one_ft,
        false,
        None,
        core(&cx, move |cx, _| {
            let e = e.clone();
            async move {
                e.set(cx.future_new()?);
                Ok(vec![])
            }
        }),
    );
    let two_ft = func(vec![], Some(future_u8()), true);
    let e = ends.clone();
    let two = export(
        &store,
        &c,
        &two_ft,
        true,
        Some(never_called()),
        core(&cx, move |cx, _| {
            let e = e.clone();
            async move {
                let (r, w) = e.get();
                cx.ret(u32s(&[r]), Some(&future_u8()))?;
                write_mem(&cx.mem, 32, &[0x42]);
                assert_eq!(cx.fwrite(w, 32, true).await?, BLOCKED);
                Ok(u32s(&[0]))
            }
        }),
    );
    let (one, two) = (import(&store, &d, &one, &one_ft, false), import(&store, &d, &two, &two_ft, false));
    let main = export(
        &store,
        &d,
        &func(vec![], Some(ValType::U32), true),
        false,
        None,
        core(&dx, move |cx, _| {
            let (one, two) = (one.clone(), two.clone());
            async move {
                one(vec![]).await?;
                let fr = i32_of(&two(vec![]).await?);
                assert_eq!(cx.fread(fr, 32, true).await?, COMPLETED);
                Ok(u32s(&[u32::from(read_mem(&cx.mem, 32, 1)[0])]))
            }
        }),
    );
    assert_eq!(run(&store, &main, vec![]), Ok(Some(vec![Value::U32(0x42)])));
    assert!(c.inst.borrow().handles.get(ends.get().0).is_err(), "the readable end left C's table");
}

/// drop-subtask.wast: a subtask may only be dropped once its resolution was delivered
/// (`Subtask.drop: trap_if(not self.resolve_delivered())`). The callee YIELDs until a flag is
/// set: dropping before that traps; after the caller saw (SUBTASK, i, RETURNED) it may drop.
#[test]
fn a_subtask_drops_only_after_its_resolution() {
    use std::cell::Cell;
    for drop_early in [true, false] {
        let store = Store::new(Deterministic);
        let (d, c) = (Guest::new(&store), Guest::new(&store));
        let (dx, cx) = (Ctx::of(&d), Ctx::of(&c));
        let done = Rc::new(Cell::new(false));
        let events = Rc::new(RefCell::new(vec![]));
        let flag = done.clone();
        let callback = logging_callback(&cx, &events, move |cx, _| {
            let flag = flag.clone();
            async move {
                if !flag.get() {
                    return Ok(1);
                }
                cx.ret(vec![], None)?;
                Ok(0)
            }
        });
        let ft = func(vec![], None, true);
        let looper = export(&store, &c, &ft, true, Some(callback), core(&cx, |_, _| async { Ok(u32s(&[1])) }));
        let looper = import(&store, &d, &looper, &ft, true);
        let flag = done.clone();
        let main = export(
            &store,
            &d,
            &func(vec![], Some(ValType::U32), true),
            false,
            None,
            core(&dx, move |cx, _| {
                let (looper, flag) = (looper.clone(), flag.clone());
                async move {
                    let packed = i32_of(&looper(vec![]).await?);
                    assert_eq!(packed & 0xf, 1, "STARTED");
                    let sub = packed >> 4;
                    if drop_early {
                        canon_subtask_drop(sub)?;
                    }
                    flag.set(true);
                    let si = cx.new_set()?;
                    canon_waitable_join(sub, si)?;
                    assert_eq!(cx.wait(si).await?, (SUBTASK, sub, RETURNED));
                    canon_subtask_drop(sub)?;
                    Ok(u32s(&[42]))
                }
            }),
        );
        let r = run(&store, &main, vec![]);
        if drop_early {
            assert_eq!(trap_of(r), TrapKind::SubtaskState);
        } else {
            assert_eq!(r, ok42());
            assert!(events.borrow().iter().all(|e| *e == (0, 0, 0)), "a YIELD resumes with EventCode.NONE");
        }
    }
}

/// drop-waitable-set.wast: a set a callback WAITs on has a waiter (`num_waiting`); dropping it
/// then traps, even from another task of the instance (which may enter: the waiting task gave
/// up the instance's exclusive use while it waits).
#[test]
fn a_set_with_a_waiter_may_not_drop() {
    use std::cell::Cell;
    let store = Store::new(Deterministic);
    let (d, c) = (Guest::new(&store), Guest::new(&store));
    let (dx, cx) = (Ctx::of(&d), Ctx::of(&c));
    let set = Rc::new(Cell::new(0));
    let s = set.clone();
    let ft = func(vec![], None, true);
    let waiter = export(
        &store,
        &c,
        &ft,
        true,
        Some(never_called()),
        core(&cx, move |cx, _| {
            let s = s.clone();
            async move {
                s.set(cx.new_set()?);
                Ok(u32s(&[2 | (s.get() << 4)]))
            }
        }),
    );
    let s = set.clone();
    let dropper = export(
        &store,
        &c,
        &ft,
        true,
        Some(never_called()),
        core(&cx, move |_, _| {
            let s = s.clone();
            async move {
                canon_waitable_set_drop(s.get())?;
                Ok(u32s(&[0]))
            }
        }),
    );
    let (waiter, dropper) = (import(&store, &d, &waiter, &ft, true), import(&store, &d, &dropper, &ft, false));
    let main = export(
        &store,
        &d,
        &func(vec![], Some(ValType::U32), true),
        false,
        None,
        core(&dx, move |_, _| {
            let (waiter, dropper) = (waiter.clone(), dropper.clone());
            async move {
                assert_eq!(i32_of(&waiter(vec![]).await?), 1 | (1 << 4), "STARTED, subtask 1");
                dropper(vec![]).await?;
                Ok(u32s(&[42]))
            }
        }),
    );
    assert_eq!(trap_of(run(&store, &main, vec![])), TrapKind::WaitableSetBusy);
}

/// run_tests.py test_async_backpressure: while the callee's instance has backpressure, an
/// async call to it waits to enter (the subtask is STARTING, 0, with its index above); once
/// `backpressure.dec` lifts it, the call runs and its event is (SUBTASK, i, RETURNED).
/// `backpressure.dec` below 0 and `inc` past 2^16 - 1 trap.
#[test]
fn backpressure_holds_calls_until_lifted() {
    let store = Store::new(Deterministic);
    let (d, c) = (Guest::new(&store), Guest::new(&store));
    let (dx, cx) = (Ctx::of(&d), Ctx::of(&c));
    let sync_ft = func(vec![], None, false);
    let inc = export(&store, &c, &sync_ft, false, None, core(&cx, |_, _| async { canon_backpressure_inc() }));
    let dec = export(&store, &c, &sync_ft, false, None, core(&cx, |_, _| async { canon_backpressure_dec() }));
    let ft = func(vec![], Some(ValType::U32), true);
    let f = export(
        &store,
        &c,
        &ft,
        true,
        Some(never_called()),
        core(&cx, |cx, _| async move {
            cx.ret(u32s(&[7]), Some(&ValType::U32))?;
            Ok(u32s(&[0]))
        }),
    );
    let (inc, dec) = (import(&store, &d, &inc, &sync_ft, false), import(&store, &d, &dec, &sync_ft, false));
    let f = import(&store, &d, &f, &ft, true);
    let main = export(
        &store,
        &d,
        &func(vec![], Some(ValType::U32), true),
        false,
        None,
        core(&dx, move |cx, _| {
            let (inc, dec, f) = (inc.clone(), dec.clone(), f.clone());
            async move {
                inc(vec![]).await?;
                let packed = i32_of(&f(u32s(&[8])).await?);
                assert_eq!(packed & 0xf, 0, "STARTING: waiting to enter");
                let sub = packed >> 4;
                dec(vec![]).await?;
                let si = cx.new_set()?;
                canon_waitable_join(sub, si)?;
                assert_eq!(cx.wait(si).await?, (SUBTASK, sub, RETURNED));
                Ok(u32s(&[read_u32(&cx.mem, 8)]))
            }
        }),
    );
    assert_eq!(run(&store, &main, vec![]), Ok(Some(vec![Value::U32(7)])));

    let under = run_sync_export(|_| Box::pin(async { canon_backpressure_dec().map(|_| ()) }));
    assert_eq!(trap_of(under), TrapKind::BackpressureRange);
    let over = run_sync_export(|_| {
        Box::pin(async {
            for _ in 0..(1 << 16) - 1 {
                canon_backpressure_inc()?;
            }
            canon_backpressure_inc().map(|_| ())
        })
    });
    assert_eq!(trap_of(over), TrapKind::BackpressureRange);
}

/// reentrance.wast case 7: an async call back into an instance whose callback-lifted task
/// holds its exclusive use waits to enter (STARTING, 0x20); when that task WAITs, the
/// instance is free, the call runs, and each side sees (SUBTASK, 2, RETURNED).
#[test]
fn reentering_a_callback_task_waits_for_the_instance() {
    use std::cell::Cell;
    let store = Store::new(Deterministic);
    let (outer, c) = (Guest::new(&store), Guest::new(&store));
    let (ox, cx) = (Ctx::of(&outer), Ctx::of(&c));
    let ft = func(vec![], Some(ValType::U32), true);
    let b = export(
        &store,
        &outer,
        &ft,
        true,
        Some(never_called()),
        core(&ox, |cx, _| async move {
            cx.ret(u32s(&[42]), Some(&ValType::U32))?;
            Ok(u32s(&[0]))
        }),
    );
    let b_in_c = import(&store, &c, &b, &ft, true);
    let c_log = Rc::new(RefCell::new(vec![]));
    let c_set = Rc::new(Cell::new(0));
    let s = c_set.clone();
    let c_callback = logging_callback(&cx, &c_log, move |cx, (_, sub, _)| async move {
        canon_subtask_drop(sub)?;
        cx.ret(u32s(&[read_u32(&cx.mem, 0)]), Some(&ValType::U32))?;
        Ok(0)
    });
    let c_f = export(
        &store,
        &c,
        &ft,
        true,
        Some(c_callback),
        core(&cx, move |cx, _| {
            let (b_in_c, s) = (b_in_c.clone(), s.clone());
            async move {
                s.set(cx.new_set()?);
                let packed = i32_of(&b_in_c(u32s(&[0])).await?);
                assert_eq!(packed, 0x20, "STARTING, subtask 2 (the set is 1)");
                canon_waitable_join(packed >> 4, s.get())?;
                Ok(u32s(&[2 | (s.get() << 4)]))
            }
        }),
    );
    let c_in_outer = import(&store, &outer, &c_f, &ft, true);
    let o_log = Rc::new(RefCell::new(vec![]));
    let o_callback = logging_callback(&ox, &o_log, move |cx, (_, sub, _)| async move {
        canon_subtask_drop(sub)?;
        cx.ret(u32s(&[read_u32(&cx.mem, 4)]), Some(&ValType::U32))?;
        Ok(0)
    });
    let a = export(
        &store,
        &outer,
        &ft,
        true,
        Some(o_callback),
        core(&ox, move |cx, _| {
            let c_in_outer = c_in_outer.clone();
            async move {
                let packed = i32_of(&c_in_outer(u32s(&[4])).await?);
                assert_eq!(packed & 0xf, 1, "STARTED");
                let si = cx.new_set()?;
                canon_waitable_join(packed >> 4, si)?;
                Ok(u32s(&[2 | (si << 4)]))
            }
        }),
    );
    assert_eq!(run(&store, &a, vec![]), ok42());
    assert_eq!(*c_log.borrow(), vec![(SUBTASK, 2, RETURNED)]);
    assert_eq!(o_log.borrow().len(), 1);
    assert_eq!(o_log.borrow()[0].0, SUBTASK);
    assert_eq!(o_log.borrow()[0].2, RETURNED);
}

/// Context slots are per thread (`thread.storage`): a value set in the first turn of a
/// callback task is there in the next turn (the same implicit thread), and a new call starts
/// with both slots 0.
#[test]
fn context_slots_live_in_the_thread() {
    use witness::reference::types::PtrType;
    let store = Store::new(Deterministic);
    let g = Guest::new(&store);
    let cx = Ctx::of(&g);
    let callback = core(&cx, |cx, _| async move {
        let [Flat::I32(v)] = canon_context_get(PtrType::I32, 0)?[..] else { panic!("one i32") };
        cx.ret(u32s(&[v]), Some(&ValType::U32))?;
        Ok(u32s(&[0]))
    });
    let ft = func(vec![], Some(ValType::U32), true);
    let f = export(
        &store,
        &g,
        &ft,
        true,
        Some(callback),
        core(&cx, |_, _| async {
            let [Flat::I32(before)] = canon_context_get(PtrType::I32, 0)?[..] else { panic!("one i32") };
            assert_eq!(before, 0, "a new thread starts with 0");
            canon_context_set(PtrType::I32, 0, 1234)?;
            Ok(u32s(&[1]))
        }),
    );
    assert_eq!(run(&store, &f, vec![]), Ok(Some(vec![Value::U32(1234)])));
    assert_eq!(run(&store, &f, vec![]), Ok(Some(vec![Value::U32(1234)])), "and again from 0");
}

/// `WaitableSet.get_pending_event` may deliver any member with an event: with two ends
/// ready, the deterministic chooser gives the first joined, a replayed answer of 1 the
/// second; the trail records one `PendingEvent` choice of 2 options either way.
#[test]
fn which_ready_event_comes_first_is_a_choice() {
    for answer in [0usize, 1] {
        let store = Store::new(Replay::new([0, answer]));
        let g = Guest::new(&store);
        let cx = Ctx::of(&g);
        let first = Rc::new(RefCell::new(0));
        let f1 = first.clone();
        let f = export(
            &store,
            &g,
            &func(vec![], None, true),
            false,
            None,
            core(&cx, move |cx, _| {
                let f1 = f1.clone();
                async move {
                    let (r1, w1) = cx.stream_new()?;
                    let (r2, w2) = cx.stream_new()?;
                    assert_eq!(cx.write(w1, 0, 1, true).await?, BLOCKED);
                    assert_eq!(cx.write(w2, 0, 1, true).await?, BLOCKED);
                    assert_eq!(cx.read(r1, 8, 1, true).await?, copied(COMPLETED, 1));
                    assert_eq!(cx.read(r2, 8, 1, true).await?, copied(COMPLETED, 1));
                    let si = cx.new_set()?;
                    canon_waitable_join(w1, si)?;
                    canon_waitable_join(w2, si)?;
                    let (code, end, _) = cx.wait(si).await?;
                    assert_eq!(code, STREAM_WRITE);
                    *f1.borrow_mut() = if end == w1 { 1 } else { 2 };
                    Ok(vec![])
                }
            }),
        );
        assert_eq!(run(&store, &f, vec![]), Ok(Some(vec![])));
        assert_eq!(*first.borrow(), answer + 1, "answer {answer}");
        let pending: Vec<_> = store.trail().into_iter().filter(|c| c.point == ChoicePoint::PendingEvent).collect();
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].options, pending[0].chosen), (2, answer));
    }
}

/// cross-abi-calls.wast, async lowering: more than 4 flat parameters (`MAX_FLAT_ASYNC_PARAMS`)
/// go through one pointer into the caller's memory, and the result through an out-pointer;
/// a callee that returns at once makes the lowered call return RETURNED (2) with no subtask.
#[test]
fn async_lowering_spills_params_past_four() {
    let store = Store::new(Deterministic);
    let d = Guest::new(&store);
    let dx = Ctx::of(&d);
    let seen = Rc::new(RefCell::new(vec![]));
    let s = seen.clone();
    let callee: FuncInst = Rc::new(move |on_start: OnStart, on_resolve: OnResolve| {
        s.borrow_mut().extend(on_start()?);
        on_resolve(Some(vec![Value::U32(99)]))?;
        let on_cancel: OnCancel = Rc::new(|| Ok(()));
        Ok(on_cancel)
    });
    let ft = func(vec![ValType::U8, ValType::U16, ValType::U32, ValType::U64, ValType::S8], Some(ValType::U32), true);
    let lowered = import(&store, &d, &callee, &ft, true);
    let main = export(
        &store,
        &d,
        &func(vec![], Some(ValType::U32), true),
        false,
        None,
        core(&dx, move |cx, _| {
            let lowered = lowered.clone();
            async move {
                // the params as a tuple<u8, u16, u32, u64, s8> at 64: offsets 0, 2, 4, 8, 16
                let mut bytes = vec![0u8; 24];
                bytes[0] = 1;
                bytes[2..4].copy_from_slice(&2u16.to_le_bytes());
                bytes[4..8].copy_from_slice(&3u32.to_le_bytes());
                bytes[8..16].copy_from_slice(&4u64.to_le_bytes());
                bytes[16] = 0xfb;
                write_mem(&cx.mem, 64, &bytes);
                let status = i32_of(&lowered(u32s(&[64, 128])).await?);
                assert_eq!(status, RETURNED, "returned at once: no subtask");
                Ok(u32s(&[read_u32(&cx.mem, 128)]))
            }
        }),
    );
    assert_eq!(run(&store, &main, vec![]), Ok(Some(vec![Value::U32(99)])));
    assert_eq!(*seen.borrow(), vec![Value::U8(1), Value::U16(2), Value::U32(3), Value::U64(4), Value::S8(-5)]);
}

/// partial-stream-copies.wast: a pending read keeps filling until its event is delivered
/// (8 then 4 bytes of 12), a third write finding it full completes it and waits itself; the
/// reader then takes 4, 2 and the last 6 of that write, and when it drops, the writer's event
/// is DROPPED|12 (0xc1). Stream ends move through a parameter and through `task.return`.
#[test]
fn partial_copies_across_instances() {
    let store = Store::new(Deterministic);
    let (d, c) = (Guest::new(&store), Guest::new(&store));
    let (dx, cx) = (Ctx::of(&d), Ctx::of(&c));
    let words = Rc::new(RefCell::new(vec![]));
    let w = words.clone();
    let callback = core(&cx, move |cx, args| {
        let w = w.clone();
        async move {
            assert_eq!(args, u32s(&[STREAM_READ, 1, copied(COMPLETED, 12)]));
            w.borrow_mut().extend([read_u32(&cx.mem, 0x10), read_u32(&cx.mem, 0x14), read_u32(&cx.mem, 0x18)]);
            assert_eq!(cx.read(1, 0x10, 4, true).await?, copied(COMPLETED, 4));
            w.borrow_mut().push(read_u32(&cx.mem, 0x10));
            assert_eq!(cx.read(1, 0x10, 2, true).await?, copied(COMPLETED, 2));
            w.borrow_mut().push(u32::from(u16::from_le_bytes(read_mem(&cx.mem, 0x10, 2).try_into().unwrap())));
            assert_eq!(cx.read(1, 0x10, 8, true).await?, copied(COMPLETED, 6));
            w.borrow_mut().push(read_u32(&cx.mem, 0x10));
            canon_waitable_join(1, 0)?;
            canon_stream_drop_readable(&stream_u8(), 1)?;
            canon_waitable_join(4, 0)?;
            canon_stream_drop_writable(&stream_u8(), 4)?;
            Ok(u32s(&[0]))
        }
    });
    let ft = func(vec![stream_u8()], Some(stream_u8()), true);
    let transform = export(
        &store,
        &c,
        &ft,
        true,
        Some(callback),
        core(&cx, |cx, args| async move {
            let ws = cx.new_set()?;
            assert_eq!(args, u32s(&[1]), "the incoming readable end");
            let (outr, outw) = cx.stream_new()?;
            // The spec's test has its set made first (index 1); here the parameter came first.
            let insr = 1;
            assert_eq!((ws, outr, outw), (2, 3, 4));
            assert_eq!(cx.read(insr, 0x10, 12, true).await?, BLOCKED);
            cx.ret(u32s(&[outr]), Some(&stream_u8()))?;
            canon_waitable_join(insr, ws)?;
            canon_waitable_join(outw, ws)?;
            Ok(u32s(&[2 | (ws << 4)]))
        }),
    );
    let transform = import(&store, &d, &transform, &ft, true);
    let main = export(
        &store,
        &d,
        &func(vec![], Some(ValType::U32), true),
        false,
        None,
        core(&dx, move |cx, _| {
            let transform = transform.clone();
            async move {
                let (insr, insw) = cx.stream_new()?;
                assert_eq!((insr, insw), (1, 2));
                assert_eq!(i32_of(&transform(u32s(&[insr, 8])).await?), RETURNED);
                let outsr = read_u32(&cx.mem, 8);
                assert_eq!(outsr, 1, "the freed slot is reused");
                write_mem(&cx.mem, 16, &0x0123_4567_89ab_cdef_u64.to_le_bytes());
                assert_eq!(cx.write(insw, 16, 8, true).await?, copied(COMPLETED, 8));
                assert_eq!(cx.write(insw, 16, 8, true).await?, copied(COMPLETED, 4));
                write_mem(&cx.mem, 16, &0xfedc_ba98_7654_3210_u64.to_le_bytes());
                write_mem(&cx.mem, 24, &0x7654_3210_u32.to_le_bytes());
                assert_eq!(cx.write(insw, 16, 12, true).await?, BLOCKED);
                let ws = cx.new_set()?;
                canon_waitable_join(insw, ws)?;
                assert_eq!(cx.wait(ws).await?, (STREAM_WRITE, insw, copied(DROPPED, 12)));
                canon_waitable_join(insw, 0)?;
                canon_stream_drop_writable(&stream_u8(), insw)?;
                canon_stream_drop_readable(&stream_u8(), outsr)?;
                Ok(u32s(&[42]))
            }
        }),
    );
    assert_eq!(run(&store, &main, vec![]), ok42());
    assert_eq!(*words.borrow(), vec![0x89ab_cdef, 0x0123_4567, 0x89ab_cdef, 0x7654_3210, 0xba98, 0x3210_fedc]);
}

/// wait-during-callback.wast: a callback-lifted function may wait synchronously itself; the
/// future it waits on is written, so the wait returns FUTURE_READ (4) with the end's index.
/// The writer's own event is FUTURE_WRITE with COMPLETED.
#[test]
fn a_callback_task_may_wait_itself() {
    let store = Store::new(Deterministic);
    let g = Guest::new(&store);
    let cx = Ctx::of(&g);
    let ft = func(vec![], Some(ValType::U32), true);
    let f = export(
        &store,
        &g,
        &ft,
        true,
        Some(never_called()),
        core(&cx, |cx, _| async move {
            let (r, w) = cx.future_new()?;
            assert_eq!(cx.fwrite(w, 0, true).await?, BLOCKED);
            assert_eq!(cx.fread(r, 4, true).await?, COMPLETED);
            let si = cx.new_set()?;
            canon_waitable_join(w, si)?;
            assert_eq!(cx.wait(si).await?, (FUTURE_WRITE, w, COMPLETED));
            cx.ret(u32s(&[42]), Some(&ValType::U32))?;
            Ok(u32s(&[0]))
        }),
    );
    assert_eq!(run(&store, &f, vec![]), ok42());
}

/// empty-wait.wast: joining an end that already has an event into a set another task waits
/// on wakes that task. C.blocker WAITs on C's set; C.unblocker makes a future, starts a read,
/// joins the readable end into that set and writes; the blocker's callback sees
/// (FUTURE_READ, end, COMPLETED) and returns 42, which D finds after (SUBTASK, 2, RETURNED).
#[test]
fn joining_a_ready_end_wakes_the_waiter() {
    use std::cell::Cell;
    let store = Store::new(Deterministic);
    let (d, c) = (Guest::new(&store), Guest::new(&store));
    let (dx, cx) = (Ctx::of(&d), Ctx::of(&c));
    let c_set = Rc::new(Cell::new(0));
    let s = c_set.clone();
    let ft = func(vec![], Some(ValType::U32), true);
    let events = Rc::new(RefCell::new(vec![]));
    let blocker_cb = logging_callback(&cx, &events, |cx, (_, end, _)| async move {
        canon_future_drop_readable(&future_u8(), end)?;
        cx.ret(u32s(&[42]), Some(&ValType::U32))?;
        Ok(0)
    });
    let blocker = export(
        &store,
        &c,
        &ft,
        true,
        Some(blocker_cb),
        core(&cx, move |cx, _| {
            let s = s.clone();
            async move {
                s.set(cx.new_set()?);
                Ok(u32s(&[2 | (s.get() << 4)]))
            }
        }),
    );
    let s = c_set.clone();
    let unblocker = export(
        &store,
        &c,
        &ft,
        true,
        Some(never_called()),
        core(&cx, move |cx, _| {
            let s = s.clone();
            async move {
                let (r, w) = cx.future_new()?;
                assert_eq!(cx.fread(r, 100, true).await?, BLOCKED);
                canon_waitable_join(r, s.get())?;
                assert_eq!(cx.fwrite(w, 100, true).await?, COMPLETED);
                canon_future_drop_writable(&future_u8(), w)?;
                cx.ret(u32s(&[43]), Some(&ValType::U32))?;
                Ok(u32s(&[0]))
            }
        }),
    );
    let (blocker, unblocker) = (import(&store, &d, &blocker, &ft, true), import(&store, &d, &unblocker, &ft, true));
    let main = export(
        &store,
        &d,
        &func(vec![], Some(ValType::U32), true),
        false,
        None,
        core(&dx, move |cx, _| {
            let (blocker, unblocker) = (blocker.clone(), unblocker.clone());
            async move {
                let ws = cx.new_set()?;
                let packed = i32_of(&blocker(u32s(&[4])).await?);
                assert_eq!(packed, 1 | (2 << 4), "STARTED, subtask 2");
                assert_eq!(i32_of(&unblocker(u32s(&[8])).await?), RETURNED);
                assert_eq!(read_u32(&cx.mem, 8), 43);
                canon_waitable_join(2, ws)?;
                assert_eq!(cx.wait(ws).await?, (SUBTASK, 2, RETURNED));
                canon_subtask_drop(2)?;
                Ok(u32s(&[read_u32(&cx.mem, 4)]))
            }
        }),
    );
    assert_eq!(run(&store, &main, vec![]), ok42());
    assert_eq!(*events.borrow(), vec![(FUTURE_READ, 2, COMPLETED)], "C's readable end is 2 (its set is 1)");
}

/// `explore` runs a scenario under every sequence of answers the spec's choices allow: the
/// two-ready-ends scenario has exactly two outcomes (either end first), each reached once; a
/// scenario without choices runs once.
#[test]
fn explore_finds_every_allowed_order() {
    use witness::reference::concurrency::choice::explore;
    let scenario = |chooser: Replay| {
        let store = Store::new(chooser);
        let g = Guest::new(&store);
        let cx = Ctx::of(&g);
        let first = Rc::new(RefCell::new(0));
        let f1 = first.clone();
        let f = export(
            &store,
            &g,
            &func(vec![], None, true),
            false,
            None,
            core(&cx, move |cx, _| {
                let f1 = f1.clone();
                async move {
                    let (r1, w1) = cx.stream_new()?;
                    let (r2, w2) = cx.stream_new()?;
                    cx.write(w1, 0, 1, true).await?;
                    cx.write(w2, 0, 1, true).await?;
                    cx.read(r1, 8, 1, true).await?;
                    cx.read(r2, 8, 1, true).await?;
                    let si = cx.new_set()?;
                    canon_waitable_join(w1, si)?;
                    canon_waitable_join(w2, si)?;
                    let (_, end, _) = cx.wait(si).await?;
                    *f1.borrow_mut() = if end == w1 { 1 } else { 2 };
                    Ok(vec![])
                }
            }),
        );
        let ended = run(&store, &f, vec![]);
        assert_eq!(ended, Ok(Some(vec![])));
        let outcome = *first.borrow();
        (outcome, store.trail())
    };
    let (runs, truncated) = explore(100, scenario);
    assert!(!truncated);
    let mut outcomes: Vec<u32> = runs.iter().map(|r| r.outcome).collect();
    outcomes.sort();
    // The wait's `wait_until` choice (block or not) doubles the runs; the delivered end is the
    // `PendingEvent` choice.
    assert_eq!(outcomes, vec![1, 1, 2, 2]);
    let mut answers: Vec<Vec<usize>> = runs.iter().map(|r| r.answers.clone()).collect();
    answers.sort();
    answers.dedup();
    assert_eq!(answers.len(), runs.len(), "each order is run once");

    let (runs, _) = explore(100, |chooser| {
        let store = Store::new(chooser);
        let g = Guest::new(&store);
        let f = export(
            &store,
            &g,
            &func(vec![], None, false),
            false,
            None,
            core(&Ctx::of(&g), |_, _| async { Ok(vec![]) }),
        );
        (run(&store, &f, vec![]), store.trail())
    });
    assert_eq!(runs.len(), 1);
}

/// `Store::teardown` frees what a run leaves behind: after a run that ends with a copy pending
/// and a thread waiting forever, tearing the store down and dropping it frees the instance and
/// its memory (without teardown the pending buffer and the waiting thread keep both alive).
#[test]
fn teardown_frees_a_stopped_run() {
    let (inst, mem) = {
        let store = Store::new(Deterministic);
        let g = Guest::new(&store);
        let cx = Ctx::of(&g);
        let f = export(
            &store,
            &g,
            &func(vec![], None, true),
            false,
            None,
            core(&cx, |cx, _| async move {
                let (_r, w) = cx.stream_new()?;
                assert_eq!(cx.write(w, 0, 4, true).await?, BLOCKED);
                let si = cx.new_set()?;
                canon_waitable_join(w, si)?;
                cx.wait(si).await?;
                Ok(vec![])
            }),
        );
        assert_eq!(run(&store, &f, vec![]), Ok(None), "the write never completes");
        let weak = (Rc::downgrade(&g.inst.0), Rc::downgrade(&g.mem.0));
        store.teardown();
        weak
    };
    assert!(inst.upgrade().is_none(), "the instance is freed");
    assert!(mem.upgrade().is_none(), "its memory is freed");
}

/// `waitable-set.poll`/`wait` store the event's payload at the guest's pointer: a misaligned
/// one or one past the end of memory traps (definitions.py only asserts both; see
/// `unpack_event`), an aligned one in bounds gets the two words.
#[test]
fn the_event_pointer_is_checked() {
    for (ptr, expected) in
        [(1001, Some(TrapKind::MisalignedPointer)), (1020, Some(TrapKind::OutOfBounds)), (1016, None)]
    {
        let r = in_one_instance(move |cx, _, _| {
            Box::pin(async move {
                let si = cx.new_set()?;
                canon_waitable_set_poll(false, &cx.mem, si, ptr).map(|_| ())
            })
        });
        match expected {
            Some(kind) => assert_eq!(trap_of(r), kind, "ptr {ptr}"),
            None => assert_eq!(r, ok42(), "ptr {ptr}"),
        }
    }
}
