//! Waitable State (CanonicalABI.md): `EventCode`, `Waitable` (what subtasks and stream and
//! future ends have in common: one pending event, at most one waitable set, a synchronous
//! waiter) and `WaitableSet`.

use std::fmt;
use std::rc::Rc;

use super::Obj;
use super::choice::ChoicePoint;
use super::stream::CopyEnd;
use super::subtask::Subtask;
use super::switch::current_thread;
use crate::reference::trap::{Result, TrapKind, assert_that, assertion_failed, trap_if};

/// `EventCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventCode {
    None = 0,
    Subtask = 1,
    StreamRead = 2,
    StreamWrite = 3,
    FutureRead = 4,
    FutureWrite = 5,
    TaskCancelled = 6,
}

/// `EventTuple`: the code and its two payload words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub code: EventCode,
    pub p1: u32,
    pub p2: u32,
}

impl Event {
    pub fn new(code: EventCode, p1: u32, p2: u32) -> Event {
        Event { code, p1, p2 }
    }
}

/// `pending_event`: computes the event when it is delivered (and updates the waitable then).
pub type PendingEvent = Box<dyn FnOnce() -> Result<Event>>;

/// `Waitable`'s fields.
#[derive(Default)]
pub struct Waitable {
    pending_event: Option<PendingEvent>,
    pub wset: Option<Obj<WaitableSet>>,
    pub has_sync_waiter: bool,
}

impl fmt::Debug for Waitable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<waitable pending={} in_set={}>", self.pending_event.is_some(), self.wset.is_some())
    }
}

/// What holds a `Waitable` (the spec's subclasses).
pub trait HasWaitable {
    fn waitable(&mut self) -> &mut Waitable;
}

/// A reference to any waitable (`isinstance(w, Waitable)`).
#[derive(Clone, Debug, PartialEq)]
pub enum WaitableRef {
    Subtask(Obj<Subtask>),
    CopyEnd(Obj<CopyEnd>),
}

impl WaitableRef {
    fn with<R>(&self, f: impl FnOnce(&mut Waitable) -> R) -> R {
        match self {
            WaitableRef::Subtask(s) => f(s.borrow_mut().waitable()),
            WaitableRef::CopyEnd(e) => f(e.borrow_mut().waitable()),
        }
    }

    /// `set_pending_event(pending_event)`.
    pub fn set_pending_event(&self, pending_event: PendingEvent) {
        self.with(|w| w.pending_event = Some(pending_event));
    }

    pub fn has_pending_event(&self) -> bool {
        self.with(|w| w.pending_event.is_some())
    }

    pub fn in_waitable_set(&self) -> bool {
        self.with(|w| w.wset.is_some())
    }

    pub fn has_sync_waiter(&self) -> bool {
        self.with(|w| w.has_sync_waiter)
    }

    /// `wait_for_pending_event()`: a synchronous wait (not cancellable, outside any set).
    pub async fn wait_for_pending_event(&self) -> Result<()> {
        let (in_set, sync_waiter) = self.with(|w| (w.wset.is_some(), w.has_sync_waiter));
        assert_that(!in_set && !sync_waiter, "wait_for_pending_event: not in a set, no other waiter")?;
        self.with(|w| w.has_sync_waiter = true);
        let this = self.clone();
        current_thread()?.wait_until(Rc::new(move || this.has_pending_event()), false).await?;
        self.with(|w| w.has_sync_waiter = false);
        Ok(())
    }

    /// `get_pending_event()`: take the pending event and compute it.
    pub fn get_pending_event(&self) -> Result<Event> {
        let pending_event = self.with(|w| w.pending_event.take());
        match pending_event {
            Some(pending_event) => pending_event(),
            None => Err(assertion_failed("get_pending_event: an event is pending")),
        }
    }

    /// `join(wset)`: leave the current set, enter `wset` (or none).
    pub fn join(&self, wset: Option<Obj<WaitableSet>>) -> Result<()> {
        assert_that(!self.has_sync_waiter(), "join: no synchronous waiter")?;
        let old = self.with(|w| w.wset.take());
        if let Some(old) = old {
            old.borrow_mut().elems.retain(|e| e != self);
        }
        if let Some(wset) = &wset {
            wset.borrow_mut().elems.push(self.clone());
        }
        self.with(|w| w.wset = wset);
        Ok(())
    }

    /// Drop the pending event and the set, and what the subtask or end holds of the other
    /// side (`Store::teardown`).
    pub(crate) fn clear(&self) {
        self.with(|w| {
            w.pending_event = None;
            w.wset = None;
        });
        match self {
            WaitableRef::Subtask(s) => s.borrow_mut().on_cancel = None,
            WaitableRef::CopyEnd(e) => {
                let shared = e.borrow().shared.clone();
                shared.clear();
            }
        }
    }

    /// `Waitable.drop()`.
    pub fn drop_waitable(&self) -> Result<()> {
        assert_that(!self.has_pending_event(), "Waitable.drop: no pending event")?;
        assert_that(!self.has_sync_waiter(), "Waitable.drop: no synchronous waiter")?;
        self.join(None)
    }
}

/// `WaitableSet`.
#[derive(Debug, Default)]
pub struct WaitableSet {
    pub elems: Vec<WaitableRef>,
    pub num_waiting: u32,
}

impl WaitableSet {
    pub fn has_pending_event(this: &Obj<WaitableSet>) -> bool {
        let elems = this.borrow().elems.clone();
        elems.iter().any(WaitableRef::has_pending_event)
    }

    /// `get_pending_event()`: the spec shuffles the members and delivers the first with an
    /// event, so any member with an event may be next (the `PendingEvent` choice, among them
    /// in join order).
    pub fn get_pending_event(this: &Obj<WaitableSet>) -> Result<Event> {
        let elems = this.borrow().elems.clone();
        let ready: Vec<&WaitableRef> = elems.iter().filter(|w| w.has_pending_event()).collect();
        assert_that(!ready.is_empty(), "WaitableSet.get_pending_event: some member has an event")?;
        let store = current_thread()?.task.store().clone();
        let chosen = store.choose(ChoicePoint::PendingEvent, ready.len());
        ready[chosen].get_pending_event()
    }

    /// `wait_for_event_and(ready_func, cancellable)`.
    pub async fn wait_for_event_and(
        this: &Obj<WaitableSet>,
        ready_func: Rc<dyn Fn() -> bool>,
        cancellable: bool,
    ) -> Result<Event> {
        this.borrow_mut().num_waiting += 1;
        let set = this.clone();
        let ready_and_has_event = Rc::new(move || ready_func() && WaitableSet::has_pending_event(&set));
        let cancelled = current_thread()?.wait_until(ready_and_has_event, cancellable).await?;
        let event = if cancelled.is_true() {
            Event::new(EventCode::TaskCancelled, 0, 0)
        } else {
            WaitableSet::get_pending_event(this)?
        };
        this.borrow_mut().num_waiting -= 1;
        Ok(event)
    }

    /// `wait_for_event(cancellable)`.
    pub async fn wait_for_event(this: &Obj<WaitableSet>, cancellable: bool) -> Result<Event> {
        WaitableSet::wait_for_event_and(this, Rc::new(|| true), cancellable).await
    }

    /// `poll(cancellable)`.
    pub fn poll(this: &Obj<WaitableSet>, cancellable: bool) -> Result<Event> {
        if current_thread()?.task.deliver_pending_cancel(cancellable) {
            Ok(Event::new(EventCode::TaskCancelled, 0, 0))
        } else if !WaitableSet::has_pending_event(this) {
            Ok(Event::new(EventCode::None, 0, 0))
        } else {
            WaitableSet::get_pending_event(this)
        }
    }

    /// `drop()`: only an empty set nobody waits on.
    pub fn drop_set(&self) -> Result<()> {
        trap_if(!self.elems.is_empty(), TrapKind::WaitableSetBusy, || {
            format!("waitable-set.drop: the set still has {} member(s)", self.elems.len())
        })?;
        trap_if(self.num_waiting > 0, TrapKind::WaitableSetBusy, || {
            format!("waitable-set.drop: {} thread(s) wait on the set", self.num_waiting)
        })
    }
}
