//! The handle table and resource handles (CanonicalABI.md "Table State" / "Resource State"),
//! handle lifting and lowering (`lift_own`, `lift_borrow`, `lower_own`, `lower_borrow`) and the
//! resource built-ins `canon_resource_new`, `canon_resource_rep`, `canon_resource_drop`.

use super::concurrency::Obj;
use super::concurrency::stream::{CopyEnd, EndKind};
use super::concurrency::subtask::Subtask;
use super::concurrency::waitable::{WaitableRef, WaitableSet};
use super::context::{BorrowScope, ComponentInstance, LiftLowerContext, TaskId};
use super::trap::{Result, Trap, TrapKind, assert_that, trap_if};
use super::types::{ResourceType, ValType};
use crate::reference::reached::reached;

/// `ResourceHandle(rt, rep, own, borrow_scope)` with its `num_lends` counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceHandle {
    pub rt: ResourceType,
    pub rep: u32,
    pub own: bool,
    pub borrow_scope: Option<TaskId>,
    pub num_lends: u32,
}

impl ResourceHandle {
    pub fn new(rt: ResourceType, rep: u32, own: bool, borrow_scope: Option<TaskId>) -> ResourceHandle {
        ResourceHandle { rt, rep, own, borrow_scope, num_lends: 0 }
    }
}

/// 📝 `ErrorContext(debug_message)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorContext {
    pub debug_message: crate::reference::value::HostString,
}

/// What a table slot holds: definitions.py's `Table` holds any object, and each user checks
/// the kind it expects (`trap_if(not isinstance(h, ResourceHandle))`). 🔀 Waitables (subtasks,
/// stream and future ends) and waitable sets are shared objects, equal only to themselves.
#[derive(Clone, Debug, PartialEq)]
pub enum Element {
    Resource(ResourceHandle),
    ErrorContext(ErrorContext),
    Waitable(WaitableRef),
    WaitableSet(Obj<WaitableSet>),
}

impl From<ResourceHandle> for Element {
    fn from(h: ResourceHandle) -> Element {
        Element::Resource(h)
    }
}

impl From<ErrorContext> for Element {
    fn from(e: ErrorContext) -> Element {
        Element::ErrorContext(e)
    }
}

/// `trap_if(not isinstance(e, ...))` for the kind a built-in expects.
fn wrong_kind(what: &str, e: &Element, expected: &str) -> Trap {
    let got = match e {
        Element::Resource(_) => "a resource handle",
        Element::ErrorContext(_) => "an error-context",
        Element::Waitable(WaitableRef::Subtask(_)) => "a subtask",
        Element::Waitable(WaitableRef::CopyEnd(e)) => e.borrow().kind.name(),
        Element::WaitableSet(_) => "a waitable set",
    };
    Trap::new(TrapKind::HandleTypeMismatch, format!("{what}: the element is {got}, not {expected}"))
}

impl Element {
    /// `trap_if(not isinstance(e, ResourceHandle))`.
    pub fn resource(&self, what: &str) -> Result<&ResourceHandle> {
        match self {
            Element::Resource(h) => Ok(h),
            other => Err(wrong_kind(what, other, "a resource handle")),
        }
    }

    fn into_resource(self, what: &str) -> Result<ResourceHandle> {
        match self {
            Element::Resource(h) => Ok(h),
            other => Err(wrong_kind(what, &other, "a resource handle")),
        }
    }

    /// 🔀 `trap_if(not isinstance(e, WaitableSet))`.
    pub fn waitable_set(&self, what: &str) -> Result<Obj<WaitableSet>> {
        match self {
            Element::WaitableSet(s) => Ok(s.clone()),
            other => Err(wrong_kind(what, other, "a waitable set")),
        }
    }

    /// 🔀 `trap_if(not isinstance(w, Waitable))`.
    pub fn waitable(&self, what: &str) -> Result<WaitableRef> {
        match self {
            Element::Waitable(w) => Ok(w.clone()),
            other => Err(wrong_kind(what, other, "a waitable")),
        }
    }

    /// 🔀 `trap_if(not isinstance(subtask, Subtask))`.
    pub fn subtask(&self, what: &str) -> Result<Obj<Subtask>> {
        match self {
            Element::Waitable(WaitableRef::Subtask(s)) => Ok(s.clone()),
            other => Err(wrong_kind(what, other, "a subtask")),
        }
    }

    /// 🔀 `trap_if(not isinstance(e, EndT))`.
    pub fn copy_end(&self, kind: EndKind, what: &str) -> Result<Obj<CopyEnd>> {
        match self {
            Element::Waitable(WaitableRef::CopyEnd(e)) if e.borrow().kind == kind => Ok(e.clone()),
            other => Err(wrong_kind(what, other, kind.name())),
        }
    }

    /// 📝 `trap_if(not isinstance(e, ErrorContext))`.
    pub fn error_context(&self, what: &str) -> Result<&ErrorContext> {
        match self {
            Element::ErrorContext(e) => Ok(e),
            other => Err(wrong_kind(what, other, "an error-context")),
        }
    }
}

/// `Table`: index 0 is reserved, freed indices are reused most-recent first, and the table
/// never grows past `MAX_LENGTH`. A component instance has one of handles (`Element`s) and 🧵
/// one of threads.
#[derive(Clone, Debug)]
pub struct Table<E = Element> {
    pub array: Vec<Option<E>>,
    pub free: Vec<u32>,
}

impl<E> Default for Table<E> {
    fn default() -> Table<E> {
        Table { array: vec![None], free: vec![] }
    }
}

impl<E> Table<E> {
    pub const MAX_LENGTH: u64 = (1 << 28) - 1;

    /// `Table.get(i)`: traps on an index past the end or an empty slot (so 0 always traps).
    pub fn get(&self, i: u32) -> Result<&E> {
        trap_if(i as usize >= self.array.len(), TrapKind::UnknownHandle, || {
            format!("Table.get: index {i} is past the end of the table (length {})", self.array.len())
        })?;
        self.array[i as usize]
            .as_ref()
            .ok_or_else(|| Trap::new(TrapKind::UnknownHandle, format!("Table.get: index {i} is empty")))
    }

    /// `Table.add(e)`: reuse the most recently freed index, else append.
    pub fn add(&mut self, e: impl Into<E>) -> Result<u32> {
        let e = e.into();
        if let Some(i) = self.free.pop() {
            self.array[i as usize] = Some(e);
            return Ok(i);
        }
        let i = self.array.len() as u64;
        trap_if(i > Table::<Element>::MAX_LENGTH, TrapKind::TableFull, || {
            format!("Table.add: index {i} would exceed Table.MAX_LENGTH")
        })?;
        self.array.push(Some(e));
        Ok(i as u32)
    }

    /// `Table.remove(i)`.
    pub fn remove(&mut self, i: u32) -> Result<E> {
        self.get(i)?;
        let e = self.array[i as usize].take().expect("checked by get");
        self.free.push(i);
        Ok(e)
    }

    /// The occupied indices with their elements, in index order.
    pub fn entries(&self) -> impl Iterator<Item = (u32, &E)> {
        self.array.iter().enumerate().filter_map(|(i, e)| e.as_ref().map(|e| (i as u32, e)))
    }
}

impl Table<Element> {
    /// Mutable access to a resource handle's counters (`num_lends`); `None` where `get` would
    /// trap or the element is no resource handle.
    pub fn resource_mut(&mut self, i: u32) -> Option<&mut ResourceHandle> {
        match self.array.get_mut(i as usize).and_then(Option::as_mut) {
            Some(Element::Resource(h)) => Some(h),
            _ => None,
        }
    }

    /// The occupied indices that hold resource handles, with them (for reports and snapshots).
    pub fn resources(&self) -> impl Iterator<Item = (u32, &ResourceHandle)> {
        self.entries().filter_map(|(i, e)| match e {
            Element::Resource(h) => Some((i, h)),
            _ => None,
        })
    }
}

fn resource_type(t: &ValType) -> Result<&ResourceType> {
    match t {
        ValType::Own(rt) | ValType::Borrow(rt) => Ok(rt),
        _ => Err(Trap::new(TrapKind::Assertion, "handle operation on a non-handle type")),
    }
}

fn check_type(h: &ResourceHandle, rt: &ResourceType, what: &str) -> Result<()> {
    trap_if(h.rt != *rt, TrapKind::HandleTypeMismatch, || {
        format!("{what}: handle is a `{}` (#{}), expected a `{}` (#{})", h.rt.name, h.rt.id, rt.name, rt.id)
    })
}

/// `lift_own(cx, i, t)`: ownership moves out of the table; traps on a lent or borrowed handle.
pub fn lift_own(cx: &mut LiftLowerContext<'_>, i: u32, t: &ValType) -> Result<u32> {
    reached!(lift_own);
    let rt = resource_type(t)?;
    let h = cx.inst().handles.remove(i)?.into_resource("lift_own")?;
    check_type(&h, rt, "lift_own")?;
    trap_if(h.num_lends != 0, TrapKind::HandleLent, || {
        format!("lift_own: handle {i} is lent out ({} borrow(s))", h.num_lends)
    })?;
    trap_if(!h.own, TrapKind::NotOwned, || format!("lift_own: handle {i} is a borrow, not an own"))?;
    Ok(h.rep)
}

/// `lift_borrow(cx, i, t)`: the handle stays; it is lent for the duration of the call.
pub fn lift_borrow(cx: &mut LiftLowerContext<'_>, i: u32, t: &ValType) -> Result<u32> {
    reached!(lift_borrow);
    assert_that(matches!(cx.borrow_scope, BorrowScope::Subtask(_)), "lift_borrow: the borrow scope is a Subtask")?;
    let rt = resource_type(t)?;
    let h = cx.inst().handles.get(i)?.resource("lift_borrow")?;
    check_type(h, rt, "lift_borrow")?;
    let rep = h.rep;
    // `Subtask.add_lender`
    if let Some(h) = cx.inst().handles.resource_mut(i) {
        h.num_lends += 1;
    }
    if let BorrowScope::Subtask(subtask) = &mut cx.borrow_scope {
        subtask.lenders.push(i);
    }
    Ok(rep)
}

/// `lower_own(cx, rep, t)`: a new owning handle in the receiving instance's table.
pub fn lower_own(cx: &mut LiftLowerContext<'_>, rep: u32, t: &ValType) -> Result<u32> {
    reached!(lower_own);
    let rt = resource_type(t)?.clone();
    cx.inst().handles.add(ResourceHandle::new(rt, rep, true, None))
}

/// `lower_borrow(cx, rep, t)`: the resource's own implementation receives the bare rep;
/// anyone else receives a borrow handle counted against the current task.
pub fn lower_borrow(cx: &mut LiftLowerContext<'_>, rep: u32, t: &ValType) -> Result<u32> {
    reached!(lower_borrow);
    let rt = resource_type(t)?.clone();
    let BorrowScope::Task(task) = cx.borrow_scope else {
        return Err(Trap::new(TrapKind::Assertion, "lower_borrow needs a Task borrow scope"));
    };
    if cx.inst().id == rt.impl_instance {
        return Ok(rep);
    }
    // `h.borrow_scope.num_borrows += 1`: the scope is a live Task.
    let Some(scope) = cx.inst().tasks.get_mut(&task) else {
        return Err(Trap::new(TrapKind::Assertion, format!("lower_borrow: task {} is not running", task.0)));
    };
    scope.num_borrows += 1;
    cx.inst().handles.add(ResourceHandle::new(rt, rep, false, Some(task)))
}

/// `canon_resource_new(rt, rep)`.
pub fn canon_resource_new(inst: &mut ComponentInstance, rt: &ResourceType, rep: u32) -> Result<u32> {
    reached!(canon_resource_new);
    trap_if(!inst.may_leave, TrapKind::MayNotLeave, || "resource.new while may_leave is false".into())?;
    inst.handles.add(ResourceHandle::new(rt.clone(), rep, true, None))
}

/// `canon_resource_rep(rt, i)`: works on own and borrow handles, no `may_leave` check.
pub fn canon_resource_rep(inst: &ComponentInstance, rt: &ResourceType, i: u32) -> Result<u32> {
    reached!(canon_resource_rep);
    let h = inst.handles.get(i)?.resource("resource.rep")?;
    check_type(h, rt, "resource.rep")?;
    Ok(h.rep)
}

/// What `canon_resource_drop` leaves to its caller: dropping an own handle runs the resource's
/// destructor with the rep (directly when `inst` implements the resource, else through a
/// synchronous call into the implementing instance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DropEffect {
    None,
    Destructor { rt: ResourceType, rep: u32, local: bool },
}

/// `canon_resource_drop(rt, i)`.
pub fn canon_resource_drop(inst: &mut ComponentInstance, rt: &ResourceType, i: u32) -> Result<DropEffect> {
    reached!(canon_resource_drop);
    trap_if(!inst.may_leave, TrapKind::MayNotLeave, || "resource.drop while may_leave is false".into())?;
    let h = inst.handles.remove(i)?.into_resource("resource.drop")?;
    check_type(&h, rt, "resource.drop")?;
    trap_if(h.num_lends != 0, TrapKind::HandleLent, || {
        format!("resource.drop: handle {i} is lent out ({} borrow(s))", h.num_lends)
    })?;
    if h.own {
        assert_that(h.borrow_scope.is_none(), "resource.drop: an own handle has no borrow scope")?;
        let local = inst.id == rt.impl_instance;
        return Ok(DropEffect::Destructor { rt: rt.clone(), rep: h.rep, local });
    }
    // `h.borrow_scope.num_borrows -= 1`: the borrow's task is running and counts it.
    let task = h.borrow_scope.and_then(|t| inst.tasks.get_mut(&t));
    let Some(task) = task.filter(|t| t.num_borrows > 0) else {
        return Err(Trap::new(TrapKind::Assertion, format!("resource.drop: borrow {i} has no task counting it")));
    };
    task.num_borrows -= 1;
    Ok(DropEffect::None)
}
