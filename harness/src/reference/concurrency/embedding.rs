//! `Store` (CanonicalABI.md "Embedding API"): the threads waiting anywhere in the store, how
//! a host calls in (`invoke`), turns core functions into component functions and back
//! (`lift`, `lower`), and runs the event loop one step at a time (`tick`). The store also
//! asks the [`Chooser`] at every point where the spec picks at random, and keeps the trail.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::{Rc, Weak};

use super::canon::{canon_lift, canon_lower};
use super::choice::{Choice, ChoicePoint, Chooser};
use super::switch::{Cancelled, current_thread};
use super::task::{CanonicalOptions, CoreFunc, FuncInst, OnCancel, OnResolve, OnStart};
use super::thread::Thread;
use super::{InstRef, Obj};
use crate::reference::context::ComponentInstance;
use crate::reference::handles::Element;
use crate::reference::trap::{Result, assert_that};
use crate::reference::types::{FuncType, InstanceId};

pub struct Store {
    pub waiting: RefCell<Vec<Rc<Thread>>>,
    nesting_depth: Cell<u32>,
    chooser: RefCell<Box<dyn Chooser>>,
    trail: RefCell<Vec<Choice>>,
    /// The instances made, for `teardown` (weak: instances own the store, not the reverse).
    instances: RefCell<Vec<Weak<RefCell<ComponentInstance>>>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<store: {} waiting>", self.waiting.borrow().len())
    }
}

impl Store {
    pub fn new(chooser: impl Chooser + 'static) -> Rc<Store> {
        Rc::new(Store {
            waiting: RefCell::new(vec![]),
            nesting_depth: Cell::new(0),
            chooser: RefCell::new(Box::new(chooser)),
            trail: RefCell::new(vec![]),
            instances: RefCell::new(vec![]),
        })
    }

    /// `ComponentInstance(store)`.
    pub fn new_instance(self: &Rc<Self>) -> InstRef {
        let id = self.instances.borrow().len() as u32 + 1;
        let mut inst = ComponentInstance::new(InstanceId(id));
        inst.store = Some(self.clone());
        let inst = Obj::new(inst);
        self.instances.borrow_mut().push(Rc::downgrade(&inst.0));
        inst
    }

    /// Break the reference cycles a run leaves (a pending copy's buffer holds its instance,
    /// which holds the end; a waiting thread holds its task, which holds the store): empty
    /// every instance's tables, forget pending events, copies and continuations. The store
    /// and its instances are unusable afterwards; dropping them then frees everything.
    pub fn teardown(&self) {
        let instances: Vec<_> = self.instances.borrow_mut().drain(..).filter_map(|w| w.upgrade()).collect();
        for inst in instances {
            let (handles, threads, exclusive) = {
                let mut i = inst.borrow_mut();
                i.store = None;
                i.tasks.clear();
                (std::mem::take(&mut i.handles), std::mem::take(&mut i.threads), i.exclusive_thread.take())
            };
            for (_, e) in handles.entries() {
                match e {
                    Element::Waitable(w) => w.clear(),
                    Element::WaitableSet(s) => s.borrow_mut().elems.clear(),
                    Element::Resource(_) | Element::ErrorContext(_) => {}
                }
            }
            for (_, t) in threads.entries() {
                t.task.clear();
                t.clear();
            }
            drop(exclusive);
        }
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        for t in waiting {
            t.task.clear();
            t.clear();
        }
    }

    /// One of the spec's random choices; a single option is taken without asking.
    pub fn choose(&self, point: ChoicePoint, options: usize) -> usize {
        if options < 2 {
            return 0;
        }
        let chosen = self.chooser.borrow_mut().choose(point, options) % options;
        self.trail.borrow_mut().push(Choice { point, options, chosen });
        chosen
    }

    /// The choices made so far, in order.
    pub fn trail(&self) -> Vec<Choice> {
        self.trail.borrow().clone()
    }

    /// `invoke(f, on_start, on_resolve)`: a host calls `f`; the returned `on_cancel` asks for
    /// the call's cancellation (also from the host).
    pub fn invoke(self: &Rc<Self>, f: &FuncInst, on_start: OnStart, on_resolve: OnResolve) -> Result<OnCancel> {
        self.nesting_depth.set(self.nesting_depth.get() + 1);
        let request_cancellation = f(on_start, on_resolve);
        self.nesting_depth.set(self.nesting_depth.get() - 1);
        let request_cancellation = request_cancellation?;
        let store = self.clone();
        Ok(Rc::new(move || {
            store.nesting_depth.set(store.nesting_depth.get() + 1);
            let r = request_cancellation();
            store.nesting_depth.set(store.nesting_depth.get() - 1);
            r
        }))
    }

    /// `lift(f, ft, opts, inst)`: the component function of core function `f`.
    pub fn lift(self: &Rc<Self>, f: CoreFunc, ft: FuncType, opts: CanonicalOptions, inst: InstRef) -> FuncInst {
        let store = self.clone();
        Rc::new(move |on_start, on_resolve| {
            assert_that(store.nesting_depth.get() > 0, "Store.lift: called through invoke or a lowered import")?;
            let on_cancel = canon_lift(f.clone(), &ft, &opts, &inst, on_start, on_resolve)?;
            assert_that(store.nesting_depth.get() > 0, "Store.lift: still nested")?;
            Ok(on_cancel)
        })
    }

    /// `lower(f, ft, opts, inst)`: the core function that calls component function `f` from
    /// `inst`.
    pub fn lower(self: &Rc<Self>, f: FuncInst, ft: FuncType, opts: CanonicalOptions, inst: InstRef) -> CoreFunc {
        let store = self.clone();
        Rc::new(move |args| {
            let (store, f, ft, opts, inst) = (store.clone(), f.clone(), ft.clone(), opts.clone(), inst.clone());
            Box::pin(async move {
                assert_that(current_thread()?.task.inst.is(&inst), "Store.lower: called from its instance")?;
                assert_that(store.nesting_depth.get() > 0, "Store.lower: nested")?;
                let flat_results = canon_lower(&f, &ft, &opts, args).await?;
                assert_that(store.nesting_depth.get() > 0, "Store.lower: still nested")?;
                Ok(flat_results)
            })
        })
    }

    /// `tick()`: resume one ready waiting thread (the `Tick` choice); `false` when none was
    /// ready.
    pub fn tick(self: &Rc<Self>) -> Result<bool> {
        assert_that(self.nesting_depth.get() == 0, "Store.tick: from the host, not nested")?;
        self.nesting_depth.set(1);
        let waiting = self.waiting.borrow().clone();
        let candidates: Vec<Rc<Thread>> = waiting.into_iter().filter(|t| t.ready()).collect();
        let ran = !candidates.is_empty();
        let r = if ran {
            let chosen = self.choose(ChoicePoint::Tick, candidates.len());
            candidates[chosen].resume(Cancelled::False)
        } else {
            Ok(())
        };
        self.nesting_depth.set(0);
        r.map(|()| ran)
    }

    /// `tick` until no thread is ready (at most `limit` steps): how many ran.
    pub fn run_until_idle(self: &Rc<Self>, limit: usize) -> Result<usize> {
        let mut steps = 0;
        while steps < limit && self.tick()? {
            steps += 1;
        }
        Ok(steps)
    }
}
