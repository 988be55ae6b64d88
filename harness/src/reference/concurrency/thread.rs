//! `Thread` (CanonicalABI.md "Threads"): a continuation plus the function that says when a
//! waiting thread is ready, its task, whether it may be cancelled where it blocked, its index
//! in the instance's thread table and its two context slots (`storage`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::rc::Rc;

use super::choice::ChoicePoint;
use super::switch::{self, Cancelled, Continuation, cont_new};
use super::task::Task;
use crate::reference::trap::{Result, assert_that, assertion_failed};

/// `ready_func`: polled by the scheduler while the thread waits.
pub type ReadyFunc = Rc<dyn Fn() -> bool>;

pub struct Thread {
    cont: RefCell<Option<Continuation>>,
    ready_func: RefCell<Option<ReadyFunc>>,
    pub task: Rc<Task>,
    cancellable: Cell<bool>,
    pub index: Cell<Option<u32>>,
    /// The `context.get`/`context.set` slots.
    pub storage: Cell<[u64; 2]>,
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<thread {:?}>", self.index.get())
    }
}

impl Thread {
    pub fn running(&self) -> bool {
        self.cont.borrow().is_none()
    }

    pub fn suspended(&self) -> bool {
        !self.running() && self.ready_func.borrow().is_none()
    }

    pub fn waiting(&self) -> bool {
        !self.running() && self.ready_func.borrow().is_some()
    }

    /// Whether the thread may be resumed with `Cancelled.TRUE` where it blocked.
    pub fn cancellable(&self) -> bool {
        self.cancellable.get()
    }

    pub fn ready(&self) -> bool {
        let ready_func = self.ready_func.borrow().clone();
        self.waiting() && ready_func.is_some_and(|f| f())
    }

    /// `Thread(task, thread_func)`: suspended until first resumed.
    pub fn new<F, Fut>(task: Rc<Task>, thread_func: F) -> Rc<Thread>
    where
        F: FnOnce() -> Fut + 'static,
        Fut: Future<Output = Result<()>> + 'static,
    {
        Rc::new_cyclic(|this: &std::rc::Weak<Thread>| {
            let this = this.clone();
            let cont_func = move |cancelled: Cancelled| async move {
                let running = this.upgrade().is_some_and(|t| t.running());
                assert_that(running && !cancelled.is_true(), "a new thread starts running, not cancelled")?;
                thread_func().await
            };
            Thread {
                cont: RefCell::new(Some(cont_new(cont_func))),
                ready_func: RefCell::new(None),
                task,
                cancellable: Cell::new(false),
                index: Cell::new(None),
                storage: Cell::new([0, 0]),
            }
        })
    }

    /// Drop the continuation and what the thread waits for (`Store::teardown`).
    pub(crate) fn clear(&self) {
        self.cont.borrow_mut().take();
        self.ready_func.borrow_mut().take();
    }

    fn start_waiting_internal(self: &Rc<Self>, ready_func: ReadyFunc) -> Result<()> {
        assert_that(!self.waiting() && self.ready_func.borrow().is_none(), "start_waiting_internal: not waiting")?;
        *self.ready_func.borrow_mut() = Some(ready_func);
        self.task.store().waiting.borrow_mut().push(self.clone());
        Ok(())
    }

    pub(crate) fn stop_waiting_internal(self: &Rc<Self>, cancelled: Cancelled) -> Result<()> {
        assert_that(self.waiting(), "stop_waiting_internal: waiting")?;
        assert_that(cancelled.is_true() || self.ready(), "stop_waiting_internal: cancelled or ready")?;
        *self.ready_func.borrow_mut() = None;
        self.task.store().waiting.borrow_mut().retain(|t| !Rc::ptr_eq(t, self));
        Ok(())
    }

    /// `resume_later`: make a suspended thread ready.
    pub fn resume_later(self: &Rc<Self>) -> Result<()> {
        assert_that(self.suspended(), "resume_later: suspended")?;
        self.start_waiting_internal(Rc::new(|| true))?;
        assert_that(self.ready(), "resume_later: ready")
    }

    /// `resume(cancelled)`: run this thread, and every thread it switches to, until one blocks
    /// without naming a thread to switch to.
    pub fn resume(self: &Rc<Self>, cancelled: Cancelled) -> Result<()> {
        assert_that(!self.running(), "resume: not running")?;
        assert_that(self.cancellable.get() || !cancelled.is_true(), "resume: cancelled only where cancellable")?;
        if self.waiting() {
            self.stop_waiting_internal(cancelled)?;
        }
        let mut thread = Some(self.clone());
        let mut cancelled = cancelled;
        while let Some(t) = thread {
            let cont = t.cont.borrow_mut().take();
            let Some(cont) = cont else {
                return Err(assertion_failed("resume: a thread to switch to is not running"));
            };
            let (cont, switch_to) = switch::resume(cont, cancelled, t.clone())?;
            *t.cont.borrow_mut() = cont;
            thread = switch_to;
            cancelled = Cancelled::False;
        }
        Ok(())
    }

    async fn block_internal(self: &Rc<Self>, cancellable: bool) -> Result<Cancelled> {
        self.cancellable.set(cancellable);
        let cancelled = switch::block(None).await?;
        assert_that(self.running() && (cancellable || !cancelled.is_true()), "block_internal: resumed as allowed")?;
        Ok(cancelled)
    }

    async fn switch_to_internal(self: &Rc<Self>, cancellable: bool, other: Rc<Thread>) -> Result<Cancelled> {
        self.cancellable.set(cancellable);
        let cancelled = switch::block(Some(other)).await?;
        assert_that(self.running() && (cancellable || !cancelled.is_true()), "switch_to_internal: resumed as allowed")?;
        Ok(cancelled)
    }

    /// `suspend(cancellable)`.
    pub async fn suspend(self: &Rc<Self>, cancellable: bool) -> Result<Cancelled> {
        assert_that(self.running(), "suspend: running")?;
        if self.task.deliver_pending_cancel(cancellable) {
            return Ok(Cancelled::True);
        }
        self.block_internal(cancellable).await
    }

    /// `wait_until(ready_func, cancellable)`: when `ready_func` already holds, the spec may
    /// return at once (the `WaitUntilReady` choice) or block anyway.
    pub async fn wait_until(self: &Rc<Self>, ready_func: ReadyFunc, cancellable: bool) -> Result<Cancelled> {
        assert_that(self.running(), "wait_until: running")?;
        if self.task.deliver_pending_cancel(cancellable) {
            return Ok(Cancelled::True);
        }
        if ready_func() && self.task.store().choose(ChoicePoint::WaitUntilReady, 2) == 1 {
            return Ok(Cancelled::False);
        }
        self.start_waiting_internal(ready_func)?;
        self.block_internal(cancellable).await
    }

    /// `yield_(cancellable)`.
    pub async fn yield_(self: &Rc<Self>, cancellable: bool) -> Result<Cancelled> {
        self.wait_until(Rc::new(|| true), cancellable).await
    }

    /// `suspend_then_resume(cancellable, other)`.
    pub async fn suspend_then_resume(self: &Rc<Self>, cancellable: bool, other: Rc<Thread>) -> Result<Cancelled> {
        assert_that(self.running() && other.suspended(), "suspend_then_resume: other is suspended")?;
        if self.task.deliver_pending_cancel(cancellable) {
            return Ok(Cancelled::True);
        }
        self.switch_to_internal(cancellable, other).await
    }

    /// `yield_then_resume(cancellable, other)`.
    pub async fn yield_then_resume(self: &Rc<Self>, cancellable: bool, other: Rc<Thread>) -> Result<Cancelled> {
        assert_that(self.running() && other.suspended(), "yield_then_resume: other is suspended")?;
        if self.task.deliver_pending_cancel(cancellable) {
            return Ok(Cancelled::True);
        }
        self.start_waiting_internal(Rc::new(|| true))?;
        self.switch_to_internal(cancellable, other).await
    }

    /// `suspend_then_promote(cancellable, other)`.
    pub async fn suspend_then_promote(self: &Rc<Self>, cancellable: bool, other: Rc<Thread>) -> Result<Cancelled> {
        assert_that(self.running(), "suspend_then_promote: running")?;
        if self.task.deliver_pending_cancel(cancellable) {
            return Ok(Cancelled::True);
        }
        if other.ready() {
            other.stop_waiting_internal(Cancelled::False)?;
            Box::pin(self.suspend_then_resume(cancellable, other)).await
        } else {
            Box::pin(self.suspend(cancellable)).await
        }
    }

    /// `yield_then_promote(cancellable, other)`.
    pub async fn yield_then_promote(self: &Rc<Self>, cancellable: bool, other: Rc<Thread>) -> Result<Cancelled> {
        assert_that(self.running(), "yield_then_promote: running")?;
        if self.task.deliver_pending_cancel(cancellable) {
            return Ok(Cancelled::True);
        }
        if other.ready() {
            other.stop_waiting_internal(Cancelled::False)?;
            Box::pin(self.yield_then_resume(cancellable, other)).await
        } else {
            Box::pin(self.yield_(cancellable)).await
        }
    }
}
