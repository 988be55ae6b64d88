//! The async reference (`witness::reference::concurrency`) run through scenarios: the
//! expected values are the spec's (CanonicalABI.md, definitions.py as of component-model
//! #705), worked out by hand from the rule each test names.

use std::cell::RefCell;
use std::rc::Rc;

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
    ValType::Stream(Some(Box::new(ValType::U8)))
}

fn future_u8() -> ValType {
    ValType::Future(Some(Box::new(ValType::U8)))
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
fn run(store: &Rc<Store>, f: &FuncInst, args: Vec<Value>) -> Result<Option<Vec<Value>>, Trap> {
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

// ---- test/async/trap-if-block-and-sync.wast: a synchronously typed call may not block ----

fn run_sync_export(
    body: impl Fn(Ctx) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Trap>>>> + 'static,
) -> Result<Option<Vec<Value>>, Trap> {
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
    let blocks: Vec<(&str, TrapKind, Result<Option<Vec<Value>>, Trap>)> = vec![
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
) -> Result<Option<Vec<Value>>, Trap> {
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

fn ok42() -> Result<Option<Vec<Value>>, Trap> {
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
            let t = ValType::Future(Some(Box::new(ValType::Char)));
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
