//! Stream State (CanonicalABI.md): `CopyResult`, the state both ends of a stream share
//! (`SharedStreamImpl`: at most one pending copy, waiting for the other end), `CopyState`
//! and the ends themselves (`CopyEnd`, also used for futures), which are waitables in a
//! component's table.

use std::fmt;
use std::rc::Rc;

use super::buffer::Buffer;
use super::future::SharedFutureImpl;
use super::waitable::{HasWaitable, Waitable, WaitableRef};
use super::{InstRef, Obj};
use crate::reference::context::LiftLowerContext;
use crate::reference::handles::Element;
use crate::reference::reached::reached;
use crate::reference::trap::{Result, TrapKind, assert_that, assertion_failed, trap_if};
use crate::reference::types::{ValType, contains_borrow};
use crate::reference::value::Value;

/// `CopyResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyResult {
    Completed = 0,
    Dropped = 1,
    Cancelled = 2,
}

/// A buffer as both ends of a copy hold it.
pub type BufferRef = Obj<dyn Buffer>;
/// `ReclaimBuffer`: hands the pending buffer back to its owner once it sees the event.
pub type ReclaimBuffer = Box<dyn FnOnce()>;
/// `OnCopy`: some values were copied into or out of the pending buffer.
pub type OnCopy = Rc<dyn Fn(ReclaimBuffer)>;
/// `OnCopyDone`: the pending copy is over, with this result.
pub type OnCopyDone = Rc<dyn Fn(CopyResult)>;

/// `SharedStreamImpl`.
pub struct SharedStreamImpl {
    pub t: Option<ValType>,
    pub dropped: bool,
    pending_inst: Option<InstRef>,
    pending_buffer: Option<BufferRef>,
    pending_on_copy: Option<OnCopy>,
    pending_on_copy_done: Option<OnCopyDone>,
}

impl fmt::Debug for SharedStreamImpl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<stream dropped={} pending={}>", self.dropped, self.pending_buffer.is_some())
    }
}

/// `none_or_number_type(t)`.
pub fn none_or_number_type(t: Option<&ValType>) -> bool {
    use ValType::*;
    matches!(t, None | Some(U8 | U16 | U32 | U64 | S8 | S16 | S32 | S64 | F32 | F64))
}

/// `trap_if(inst is self.pending_inst and not none_or_number_type(self.t))  # temporary`, of
/// streams and futures alike.
pub(super) fn check_same_instance(inst: &InstRef, pending_inst: &Option<InstRef>, t: Option<&ValType>) -> Result<()> {
    let same = pending_inst.as_ref().is_some_and(|p| p.is(inst));
    trap_if(same && !none_or_number_type(t), TrapKind::SameInstanceCopy, || {
        "both ends of a copy of non-number values are in the same instance".into()
    })
}

impl SharedStreamImpl {
    pub fn new(t: Option<ValType>) -> Obj<SharedStreamImpl> {
        Obj::new(SharedStreamImpl {
            t,
            dropped: false,
            pending_inst: None,
            pending_buffer: None,
            pending_on_copy: None,
            pending_on_copy_done: None,
        })
    }

    fn reset_pending(&mut self) {
        self.pending_inst = None;
        self.pending_buffer = None;
        self.pending_on_copy = None;
        self.pending_on_copy_done = None;
    }

    fn set_pending(&mut self, inst: InstRef, buffer: BufferRef, on_copy: OnCopy, on_copy_done: OnCopyDone) {
        self.pending_inst = Some(inst);
        self.pending_buffer = Some(buffer);
        self.pending_on_copy = Some(on_copy);
        self.pending_on_copy_done = Some(on_copy_done);
    }

    fn reset_and_notify_pending(this: &Obj<SharedStreamImpl>, result: CopyResult) {
        let pending_on_copy_done = {
            let mut s = this.borrow_mut();
            let f = s.pending_on_copy_done.take();
            s.reset_pending();
            f
        };
        if let Some(f) = pending_on_copy_done {
            f(result);
        }
    }

    /// `cancel()`.
    pub fn cancel(this: &Obj<SharedStreamImpl>) {
        SharedStreamImpl::reset_and_notify_pending(this, CopyResult::Cancelled);
    }

    /// `drop()`: the other end's pending copy, if any, ends as DROPPED.
    pub fn drop_end(this: &Obj<SharedStreamImpl>) {
        reached!("SharedStreamImpl.drop");
        let pending = {
            let mut s = this.borrow_mut();
            if s.dropped {
                return;
            }
            s.dropped = true;
            s.pending_buffer.is_some()
        };
        if pending {
            SharedStreamImpl::reset_and_notify_pending(this, CopyResult::Dropped);
        }
    }

    fn reclaim(this: &Obj<SharedStreamImpl>) -> ReclaimBuffer {
        let this = this.clone();
        Box::new(move || this.borrow_mut().reset_pending())
    }

    /// `read(inst, dst_buffer, on_copy, on_copy_done)`.
    pub fn read(
        this: &Obj<SharedStreamImpl>,
        inst: &InstRef,
        dst: BufferRef,
        on_copy: OnCopy,
        on_copy_done: OnCopyDone,
    ) -> Result<()> {
        reached!("SharedStreamImpl.read");
        let (dropped, pending) = {
            let s = this.borrow();
            (s.dropped, s.pending_buffer.clone().map(|b| (b, s.pending_inst.clone(), s.pending_on_copy.clone())))
        };
        if dropped {
            on_copy_done(CopyResult::Dropped);
            return Ok(());
        }
        let Some((pending_buffer, pending_inst, pending_on_copy)) = pending else {
            this.borrow_mut().set_pending(inst.clone(), dst, on_copy, on_copy_done);
            return Ok(());
        };
        let t = this.borrow().t.clone();
        assert_that(
            dst.borrow().t() == t.as_ref() && pending_buffer.borrow().t() == t.as_ref(),
            "read: one element type",
        )?;
        check_same_instance(inst, &pending_inst, t.as_ref())?;
        let pending_remain = pending_buffer.borrow().remain();
        if pending_remain > 0 {
            let dst_remain = dst.borrow().remain();
            if dst_remain > 0 {
                let n = dst_remain.min(pending_remain);
                let vs = pending_buffer.borrow_mut().read(n)?;
                dst.borrow_mut().write(vs)?;
                if let Some(f) = pending_on_copy {
                    f(SharedStreamImpl::reclaim(this));
                }
            }
            on_copy_done(CopyResult::Completed);
        } else {
            SharedStreamImpl::reset_and_notify_pending(this, CopyResult::Completed);
            this.borrow_mut().set_pending(inst.clone(), dst, on_copy, on_copy_done);
        }
        Ok(())
    }

    /// `write(inst, src_buffer, on_copy, on_copy_done)`: as `read`, and two zero-length
    /// copies meet without either waiting.
    pub fn write(
        this: &Obj<SharedStreamImpl>,
        inst: &InstRef,
        src: BufferRef,
        on_copy: OnCopy,
        on_copy_done: OnCopyDone,
    ) -> Result<()> {
        reached!("SharedStreamImpl.write");
        let (dropped, pending) = {
            let s = this.borrow();
            (s.dropped, s.pending_buffer.clone().map(|b| (b, s.pending_inst.clone(), s.pending_on_copy.clone())))
        };
        if dropped {
            on_copy_done(CopyResult::Dropped);
            return Ok(());
        }
        let Some((pending_buffer, pending_inst, pending_on_copy)) = pending else {
            this.borrow_mut().set_pending(inst.clone(), src, on_copy, on_copy_done);
            return Ok(());
        };
        let t = this.borrow().t.clone();
        assert_that(
            src.borrow().t() == t.as_ref() && pending_buffer.borrow().t() == t.as_ref(),
            "write: one element type",
        )?;
        check_same_instance(inst, &pending_inst, t.as_ref())?;
        let pending_remain = pending_buffer.borrow().remain();
        if pending_remain > 0 {
            let src_remain = src.borrow().remain();
            if src_remain > 0 {
                let n = src_remain.min(pending_remain);
                let vs = src.borrow_mut().read(n)?;
                pending_buffer.borrow_mut().write(vs)?;
                if let Some(f) = pending_on_copy {
                    f(SharedStreamImpl::reclaim(this));
                }
            }
            on_copy_done(CopyResult::Completed);
        } else if src.borrow().is_zero_length() && pending_buffer.borrow().is_zero_length() {
            on_copy_done(CopyResult::Completed);
        } else {
            SharedStreamImpl::reset_and_notify_pending(this, CopyResult::Completed);
            this.borrow_mut().set_pending(inst.clone(), src, on_copy, on_copy_done);
        }
        Ok(())
    }
}

/// `CopyState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyState {
    Idle,
    Copying,
    CancellingCopy,
    Done,
}

/// The shared state behind an end (`CopyEnd.shared`).
#[derive(Clone, Debug, PartialEq)]
pub enum SharedEnd {
    Stream(Obj<SharedStreamImpl>),
    Future(Obj<SharedFutureImpl>),
}

impl SharedEnd {
    /// `shared.t`.
    pub fn t(&self) -> Option<ValType> {
        match self {
            SharedEnd::Stream(s) => s.borrow().t.clone(),
            SharedEnd::Future(f) => f.borrow().t.clone(),
        }
    }

    /// `shared.cancel()`.
    pub fn cancel(&self) {
        match self {
            SharedEnd::Stream(s) => SharedStreamImpl::cancel(s),
            SharedEnd::Future(f) => SharedFutureImpl::cancel(f),
        }
    }

    /// Forget the pending copy (`Store::teardown`).
    pub(crate) fn clear(&self) {
        match self {
            SharedEnd::Stream(s) => s.borrow_mut().reset_pending(),
            SharedEnd::Future(f) => f.borrow_mut().reset_pending(),
        }
    }

    /// `shared.drop()`.
    pub fn drop_end(&self) -> Result<()> {
        match self {
            SharedEnd::Stream(s) => {
                SharedStreamImpl::drop_end(s);
                Ok(())
            }
            SharedEnd::Future(f) => SharedFutureImpl::drop_end(f),
        }
    }
}

/// Which end (the spec's subclasses of `CopyEnd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndKind {
    ReadableStream,
    WritableStream,
    ReadableFuture,
    WritableFuture,
}

impl EndKind {
    pub fn name(self) -> &'static str {
        match self {
            EndKind::ReadableStream => "a readable stream end",
            EndKind::WritableStream => "a writable stream end",
            EndKind::ReadableFuture => "a readable future end",
            EndKind::WritableFuture => "a writable future end",
        }
    }
}

/// `CopyEnd` (`ReadableStreamEnd`, `WritableStreamEnd`, `ReadableFutureEnd`,
/// `WritableFutureEnd`).
#[derive(Debug)]
pub struct CopyEnd {
    pub waitable: Waitable,
    pub state: CopyState,
    pub shared: SharedEnd,
    pub kind: EndKind,
}

impl HasWaitable for CopyEnd {
    fn waitable(&mut self) -> &mut Waitable {
        &mut self.waitable
    }
}

impl CopyEnd {
    pub fn new(kind: EndKind, shared: SharedEnd) -> Obj<CopyEnd> {
        Obj::new(CopyEnd { waitable: Waitable::default(), state: CopyState::Idle, shared, kind })
    }

    pub fn copying(&self) -> bool {
        match self.state {
            CopyState::Idle | CopyState::Done => false,
            CopyState::Copying | CopyState::CancellingCopy => true,
        }
    }

    /// `drop()`: never mid-copy; a future's writable end only once its value was written
    /// (`WritableFutureEnd.drop`).
    pub fn drop_end(this: &Obj<CopyEnd>) -> Result<()> {
        let (kind, state, copying, shared) = {
            let e = this.borrow();
            (e.kind, e.state, e.copying(), e.shared.clone())
        };
        if kind == EndKind::WritableFuture {
            trap_if(state != CopyState::Done, TrapKind::FutureNotWritten, || {
                format!("future.drop-writable before a value was written (the end is {state:?})")
            })?;
        }
        trap_if(copying, TrapKind::CopyState, || format!("{} was dropped mid-copy ({state:?})", kind.name()))?;
        shared.drop_end()?;
        WaitableRef::CopyEnd(this.clone()).drop_waitable()
    }
}

/// `lift_stream(cx, i, t)` / `lift_future(cx, i, t)` (`lift_async_value`): the readable end
/// leaves the sender's table (it must be idle and in no waitable set) and its shared state is
/// the value.
pub fn lift_async_value(cx: &mut LiftLowerContext<'_>, i: u32, t: &ValType) -> Result<Value> {
    reached!(lift_async_value);
    let (kind, elem) = match t {
        ValType::Stream(elem) => (EndKind::ReadableStream, elem),
        ValType::Future(elem) => (EndKind::ReadableFuture, elem),
        _ => return Err(assertion_failed("lift_async_value: a stream or future")),
    };
    assert_that(!contains_borrow(t), "lift_async_value: no borrow inside")?;
    let e = cx.inst().handles.remove(i)?.copy_end(kind, "lift_async_value")?;
    let shared = e.borrow().shared.clone();
    let elem = elem.as_deref().cloned();
    trap_if(shared.t() != elem, TrapKind::HandleTypeMismatch, || {
        format!("lift_async_value: the end carries {:?}, the type {elem:?}", shared.t())
    })?;
    let state = e.borrow().state;
    trap_if(state != CopyState::Idle, TrapKind::CopyState, || {
        format!("an end that is {state:?} was passed in a call")
    })?;
    trap_if(WaitableRef::CopyEnd(e.clone()).in_waitable_set(), TrapKind::InWaitableSet, || {
        "an end in a waitable set was passed in a call".into()
    })?;
    Ok(match shared {
        SharedEnd::Stream(s) => Value::Stream(s),
        SharedEnd::Future(f) => Value::Future(f),
    })
}

/// `lower_stream(cx, v, t)` / `lower_future(cx, v, t)`: a new readable end in the receiver's
/// table.
pub fn lower_async_value(cx: &mut LiftLowerContext<'_>, v: &Value, t: &ValType) -> Result<u32> {
    reached!(lower_async_value);
    assert_that(!contains_borrow(t), "lower_async_value: no borrow inside")?;
    let end = match (t, v) {
        (ValType::Stream(_), Value::Stream(s)) => CopyEnd::new(EndKind::ReadableStream, SharedEnd::Stream(s.clone())),
        (ValType::Future(_), Value::Future(f)) => CopyEnd::new(EndKind::ReadableFuture, SharedEnd::Future(f.clone())),
        _ => return Err(assertion_failed("lower_async_value: a stream or future value of its type")),
    };
    cx.inst().handles.add(Element::Waitable(WaitableRef::CopyEnd(end)))
}
