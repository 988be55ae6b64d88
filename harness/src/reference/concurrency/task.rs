//! `Task` (CanonicalABI.md "Tasks"): one call of a lifted function, from `on_start` (the
//! caller hands over the arguments) to `on_resolve` (the result, or `None` when cancelled),
//! with the threads running it. Also the callable shapes the spec passes around (`OnStart`,
//! `OnResolve`, `OnCancel`, `FuncInst`, `CoreFuncInst`) and `CanonicalOptions`.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use super::embedding::Store;
use super::switch::{Cancelled, LocalFuture, current_thread};
use super::thread::Thread;
use super::{InstRef, Obj};
use crate::reference::context::{BorrowScope, LiftLowerContext, TaskId};
use crate::reference::memory::{BumpHeap, Memory};
use crate::reference::reached::reached;
use crate::reference::trap::{Result, TrapKind, assert_that, assertion_failed, trap_if};
use crate::reference::types::{FuncType, StringEncoding};
use crate::reference::value::{Flat, Value};

/// `OnStart`: the caller hands over the arguments (lifting them out of its memory).
pub type OnStart = Box<dyn FnOnce() -> Result<Vec<Value>>>;
/// `OnResolve`: the result (`None`: the call was cancelled) goes back to the caller.
pub type OnResolve = Box<dyn FnOnce(Option<Vec<Value>>) -> Result<()>>;
/// `OnCancel`: the caller asks for cancellation (`Task.request_cancellation`).
pub type OnCancel = Rc<dyn Fn() -> Result<()>>;
/// `FuncInst`: a component-level function, called with its start and resolve callbacks.
pub type FuncInst = Rc<dyn Fn(OnStart, OnResolve) -> Result<OnCancel>>;
/// `CoreFuncInst`: a core function; its body may block (await) where the spec's may.
pub type CoreFunc = Rc<dyn Fn(Vec<Flat>) -> LocalFuture<Result<Vec<Flat>>>>;

/// A core function from an async closure.
pub fn core_func<F, Fut>(f: F) -> CoreFunc
where
    F: Fn(Vec<Flat>) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<Vec<Flat>>> + 'static,
{
    Rc::new(move |args| Box::pin(f(args)))
}

/// `CanonicalOptions` (realloc is the memory's own `Memory::realloc`).
#[derive(Clone)]
pub struct CanonicalOptions {
    pub string_encoding: StringEncoding,
    pub memory: Option<Obj<dyn Memory>>,
    pub post_return: Option<CoreFunc>,
    pub async_: bool,
    pub callback: Option<CoreFunc>,
}

impl Default for CanonicalOptions {
    fn default() -> CanonicalOptions {
        CanonicalOptions {
            string_encoding: StringEncoding::Utf8,
            memory: None,
            post_return: None,
            async_: false,
            callback: None,
        }
    }
}

impl CanonicalOptions {
    /// `LiftOptions.equal(lhs, rhs)`: the same string encoding and the same memory.
    pub fn lift_options_equal(&self, other: &CanonicalOptions) -> bool {
        let same_memory = match (&self.memory, &other.memory) {
            (None, None) => true,
            (Some(a), Some(b)) => a.is(b),
            _ => false,
        };
        self.string_encoding == other.string_encoding && same_memory
    }
}

/// `LiftLowerContext(opts, inst)` as a call or a buffer keeps it across thread switches;
/// each use borrows memory and instance for the one lift or lower.
#[derive(Clone)]
pub struct HeldContext {
    pub opts: CanonicalOptions,
    pub inst: InstRef,
}

impl HeldContext {
    pub fn with<R>(
        &self,
        borrow_scope: BorrowScope<'_>,
        f: impl FnOnce(&mut LiftLowerContext<'_>) -> Result<R>,
    ) -> Result<R> {
        let mut inst = self.inst.borrow_mut();
        let encoding = self.opts.string_encoding;
        match &self.opts.memory {
            Some(memory) => {
                let mut memory = memory.borrow_mut();
                f(&mut LiftLowerContext::new(encoding, &mut *memory, &mut inst, borrow_scope))
            }
            None => {
                let mut no_memory = BumpHeap::new(0, 0);
                f(&mut LiftLowerContext::new(encoding, &mut no_memory, &mut inst, borrow_scope))
            }
        }
    }
}

/// `Task.State`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    Initial,
    Started,
    PendingCancel,
    CancelDelivered,
    Resolved,
}

pub struct Task {
    pub ft: FuncType,
    pub opts: CanonicalOptions,
    pub inst: InstRef,
    /// `task.inst.store`.
    store: Rc<Store>,
    on_start: RefCell<Option<OnStart>>,
    on_resolve: RefCell<Option<OnResolve>>,
    pub state: Cell<TaskState>,
    /// Where `num_borrows` is counted (the instance's borrow scopes, shared with the sync ABI).
    pub borrow_scope: TaskId,
    /// `implicit_thread` and `threads`, held weakly: a running or blocked thread is owned by
    /// the instance's thread table, the store's waiting list or the `resume` running it, and a
    /// strong link back from its task would make every task a reference cycle.
    implicit_thread: RefCell<Option<Weak<Thread>>>,
    threads: RefCell<Vec<Weak<Thread>>>,
}

impl Task {
    pub fn new(
        ft: FuncType,
        opts: CanonicalOptions,
        inst: InstRef,
        on_start: OnStart,
        on_resolve: OnResolve,
    ) -> Result<Rc<Task>> {
        let (store, borrow_scope) = {
            let mut i = inst.borrow_mut();
            let store = i.store.clone();
            (store, i.start_task())
        };
        let Some(store) = store else {
            return Err(assertion_failed("Task: the instance belongs to a store"));
        };
        Ok(Rc::new(Task {
            ft,
            opts,
            inst,
            store,
            on_start: RefCell::new(Some(on_start)),
            on_resolve: RefCell::new(Some(on_resolve)),
            state: Cell::new(TaskState::Initial),
            borrow_scope,
            implicit_thread: RefCell::new(None),
            threads: RefCell::new(vec![]),
        }))
    }

    pub fn store(&self) -> &Rc<Store> {
        &self.store
    }

    /// `implicit_thread`, while it lives.
    pub fn implicit_thread(&self) -> Option<Rc<Thread>> {
        self.implicit_thread.borrow().as_ref().and_then(Weak::upgrade)
    }

    /// `threads`, in registration order.
    pub fn threads(&self) -> Vec<Rc<Thread>> {
        self.threads.borrow().iter().filter_map(Weak::upgrade).collect()
    }

    /// Drop what the task holds of its caller and its threads (`Store::teardown`).
    pub(crate) fn clear(&self) {
        self.on_start.borrow_mut().take();
        self.on_resolve.borrow_mut().take();
        self.implicit_thread.borrow_mut().take();
        self.threads.borrow_mut().clear();
    }

    fn num_borrows(&self) -> u32 {
        self.inst.borrow().tasks.get(&self.borrow_scope).map_or(0, |t| t.num_borrows)
    }

    /// `needs_exclusive`: a synchronous or callback-lifted async function runs alone in its
    /// instance (a stackful one does not).
    pub fn needs_exclusive(&self) -> bool {
        !self.opts.async_ || self.opts.callback.is_some()
    }

    /// `enter_implicit_thread`: an async function waits (cancellably) while the instance has
    /// backpressure, or an exclusive thread runs, or others wait before it; `false` when
    /// cancelled while waiting.
    pub async fn enter_implicit_thread(self: &Rc<Self>) -> Result<bool> {
        reached!("Task.enter_implicit_thread");
        assert_that(self.state.get() == TaskState::Initial, "enter_implicit_thread: INITIAL")?;
        let thread = current_thread()?;
        *self.implicit_thread.borrow_mut() = Some(Rc::downgrade(&thread));
        if self.ft.async_ {
            let inst = self.inst.clone();
            let needs_exclusive = self.needs_exclusive();
            let has_backpressure = move || {
                let i = inst.borrow();
                i.backpressure > 0 || (needs_exclusive && i.exclusive_thread.is_some())
            };
            let num_waiting = self.inst.borrow().num_waiting_to_enter;
            if has_backpressure() || num_waiting > 0 {
                self.inst.borrow_mut().num_waiting_to_enter += 1;
                let cancelled = thread.wait_until(Rc::new(move || !has_backpressure()), true).await?;
                self.inst.borrow_mut().num_waiting_to_enter -= 1;
                if cancelled.is_true() {
                    self.cancel()?;
                    return Ok(false);
                }
            }
            if needs_exclusive {
                let mut i = self.inst.borrow_mut();
                assert_that(i.exclusive_thread.is_none(), "enter_implicit_thread: no exclusive thread")?;
                i.exclusive_thread = Some(thread.clone());
            }
        }
        self.register_thread(&thread)?;
        Ok(true)
    }

    /// `register_thread(thread)`: the thread gets its index in the instance's thread table.
    pub fn register_thread(self: &Rc<Self>, thread: &Rc<Thread>) -> Result<()> {
        let known = self.threads().iter().any(|t| Rc::ptr_eq(t, thread));
        assert_that(!known && Rc::ptr_eq(&thread.task, self), "register_thread: a new thread of this task")?;
        self.threads.borrow_mut().push(Rc::downgrade(thread));
        assert_that(thread.index.get().is_none(), "register_thread: no index yet")?;
        let index = self.inst.borrow_mut().threads.add(thread.clone())?;
        thread.index.set(Some(index));
        Ok(())
    }

    /// `exit_implicit_thread`.
    pub fn exit_implicit_thread(self: &Rc<Self>) -> Result<()> {
        reached!("Task.exit_implicit_thread");
        let Some(thread) = self.implicit_thread() else {
            return Err(assertion_failed("exit_implicit_thread: the implicit thread entered"));
        };
        assert_that(Rc::ptr_eq(&current_thread()?, &thread), "exit_implicit_thread: from the implicit thread")?;
        self.unregister_thread(&thread)?;
        if self.ft.async_ && self.needs_exclusive() {
            let mut i = self.inst.borrow_mut();
            let is_exclusive = i.exclusive_thread.as_ref().is_some_and(|t| Rc::ptr_eq(t, &thread));
            assert_that(is_exclusive, "exit_implicit_thread: the exclusive thread")?;
            i.exclusive_thread = None;
        }
        Ok(())
    }

    /// `unregister_thread(thread)`: when the last thread of a task ends, the task must have
    /// resolved.
    pub fn unregister_thread(self: &Rc<Self>, thread: &Rc<Thread>) -> Result<()> {
        let known = self.threads().iter().any(|t| Rc::ptr_eq(t, thread));
        assert_that(known && Rc::ptr_eq(&thread.task, self), "unregister_thread: a thread of this task")?;
        self.threads.borrow_mut().retain(|t| !std::ptr::eq(t.as_ptr(), Rc::as_ptr(thread)));
        if self.threads().is_empty() {
            trap_if(self.state.get() != TaskState::Resolved, TrapKind::TaskNotResolved, || {
                "the task's last thread ended before task.return or task.cancel".into()
            })?;
            assert_that(self.num_borrows() == 0, "unregister_thread: no borrows left")?;
        }
        let Some(index) = thread.index.get() else {
            return Err(assertion_failed("unregister_thread: the thread has an index"));
        };
        self.inst.borrow_mut().threads.remove(index)?;
        Ok(())
    }

    /// `request_cancellation()`: before the task started, cancel its wait to enter; else
    /// resume one of its cancellable threads with `Cancelled.TRUE` (the `CancelCandidate`
    /// choice), or leave the cancellation pending until one blocks cancellably.
    pub fn request_cancellation(self: &Rc<Self>) -> Result<()> {
        reached!("Task.request_cancellation");
        if self.state.get() == TaskState::Initial {
            self.state.set(TaskState::CancelDelivered);
            let Some(thread) = self.implicit_thread() else {
                return Err(assertion_failed("request_cancellation: the implicit thread entered"));
            };
            return thread.resume(Cancelled::True);
        }
        assert_that(self.state.get() == TaskState::Started, "request_cancellation: STARTED")?;
        let mut candidates: Vec<Rc<Thread>> = self.threads().into_iter().filter(|t| t.cancellable()).collect();
        if self.needs_exclusive() {
            let exclusive = self.inst.borrow().exclusive_thread.clone();
            let implicit = self.implicit_thread();
            let other_exclusive = match (&exclusive, &implicit) {
                (None, _) => false,
                (Some(e), Some(i)) => !Rc::ptr_eq(e, i),
                (Some(_), None) => true,
            };
            if other_exclusive && let Some(i) = implicit {
                candidates.retain(|t| !Rc::ptr_eq(t, &i));
            }
        }
        if candidates.is_empty() {
            self.state.set(TaskState::PendingCancel);
            return Ok(());
        }
        self.state.set(TaskState::CancelDelivered);
        let chosen = self.store.choose(super::choice::ChoicePoint::CancelCandidate, candidates.len());
        candidates[chosen].resume(Cancelled::True)
    }

    /// `deliver_pending_cancel(cancellable)`.
    pub fn deliver_pending_cancel(&self, cancellable: bool) -> bool {
        if cancellable && self.state.get() == TaskState::PendingCancel {
            self.state.set(TaskState::CancelDelivered);
            return true;
        }
        false
    }

    /// `start()`: the arguments, from the caller.
    pub fn start(&self) -> Result<Vec<Value>> {
        assert_that(self.state.get() == TaskState::Initial, "Task.start: INITIAL")?;
        self.state.set(TaskState::Started);
        let on_start = self.on_start.borrow_mut().take();
        match on_start {
            Some(on_start) => on_start(),
            None => Err(assertion_failed("Task.start: once")),
        }
    }

    fn resolve(&self, result: Option<Vec<Value>>) -> Result<()> {
        let on_resolve = self.on_resolve.borrow_mut().take();
        match on_resolve {
            Some(on_resolve) => on_resolve(result),
            None => Err(assertion_failed("Task: on_resolve once")),
        }
    }

    /// `return_(result)`.
    pub fn return_(&self, result: Vec<Value>) -> Result<()> {
        reached!("Task.return_");
        trap_if(self.state.get() == TaskState::Resolved, TrapKind::TaskAlreadyResolved, || {
            "task.return: the task already returned or was cancelled".into()
        })?;
        let num_borrows = self.num_borrows();
        trap_if(num_borrows > 0, TrapKind::BorrowNotDropped, || {
            format!("Task.return_: {num_borrows} borrowed handle(s) not dropped")
        })?;
        self.resolve(Some(result))?;
        self.state.set(TaskState::Resolved);
        Ok(())
    }

    /// `cancel()`: only after a cancellation was delivered.
    pub fn cancel(&self) -> Result<()> {
        reached!("Task.cancel");
        trap_if(self.state.get() != TaskState::CancelDelivered, TrapKind::CancelNotDelivered, || {
            format!("task.cancel: no cancellation was delivered (the task is {:?})", self.state.get())
        })?;
        let num_borrows = self.num_borrows();
        trap_if(num_borrows > 0, TrapKind::BorrowNotDropped, || {
            format!("Task.cancel: {num_borrows} borrowed handle(s) not dropped")
        })?;
        self.resolve(None)?;
        self.state.set(TaskState::Resolved);
        Ok(())
    }
}
