//! Future State (CanonicalABI.md): `SharedFutureImpl`, a stream of exactly one value. The
//! readable end may only read once; a reader that drops first makes the writer's copy end
//! as DROPPED.

use std::fmt;

use super::stream::{BufferRef, CopyResult, OnCopyDone, check_same_instance};
use super::{InstRef, Obj};
use crate::reference::reached::reached;
use crate::reference::trap::{Result, assert_that};
use crate::reference::types::ValType;

pub struct SharedFutureImpl {
    pub t: Option<ValType>,
    pub dropped: bool,
    pending_inst: Option<InstRef>,
    pending_buffer: Option<BufferRef>,
    /// Whether the pending buffer is the writer's (`ReadableBuffer`) rather than the reader's.
    pending_is_writer: bool,
    pending_on_copy_done: Option<OnCopyDone>,
}

impl fmt::Debug for SharedFutureImpl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<future dropped={} pending={}>", self.dropped, self.pending_buffer.is_some())
    }
}

impl SharedFutureImpl {
    pub fn new(t: Option<ValType>) -> Obj<SharedFutureImpl> {
        Obj::new(SharedFutureImpl {
            t,
            dropped: false,
            pending_inst: None,
            pending_buffer: None,
            pending_is_writer: false,
            pending_on_copy_done: None,
        })
    }

    pub(crate) fn reset_pending(&mut self) {
        self.pending_inst = None;
        self.pending_buffer = None;
        self.pending_on_copy_done = None;
    }

    fn set_pending(&mut self, inst: InstRef, buffer: BufferRef, is_writer: bool, on_copy_done: OnCopyDone) {
        self.pending_inst = Some(inst);
        self.pending_buffer = Some(buffer);
        self.pending_is_writer = is_writer;
        self.pending_on_copy_done = Some(on_copy_done);
    }

    fn reset_and_notify_pending(this: &Obj<SharedFutureImpl>, result: CopyResult) {
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
    pub fn cancel(this: &Obj<SharedFutureImpl>) {
        SharedFutureImpl::reset_and_notify_pending(this, CopyResult::Cancelled);
    }

    /// `drop()`: only a reader's drop can find a copy pending (the writer's end cannot be
    /// dropped before its copy is done), and that copy is the writer's.
    pub fn drop_end(this: &Obj<SharedFutureImpl>) -> Result<()> {
        reached!("SharedFutureImpl.drop");
        let pending = {
            let mut s = this.borrow_mut();
            if s.dropped {
                return Ok(());
            }
            s.dropped = true;
            s.pending_buffer.is_some().then_some(s.pending_is_writer)
        };
        if let Some(is_writer) = pending {
            assert_that(is_writer, "SharedFutureImpl.drop: the pending buffer is the writer's")?;
            SharedFutureImpl::reset_and_notify_pending(this, CopyResult::Dropped);
        }
        Ok(())
    }

    /// `read(inst, dst_buffer, on_copy_done)`.
    pub fn read(this: &Obj<SharedFutureImpl>, inst: &InstRef, dst: BufferRef, on_copy_done: OnCopyDone) -> Result<()> {
        reached!("SharedFutureImpl.read");
        let (dropped, pending, t) = {
            let s = this.borrow();
            (s.dropped, s.pending_buffer.clone().map(|b| (b, s.pending_inst.clone())), s.t.clone())
        };
        assert_that(!dropped && dst.borrow().remain() == 1, "SharedFutureImpl.read: not dropped, room for one")?;
        let Some((pending_buffer, pending_inst)) = pending else {
            this.borrow_mut().set_pending(inst.clone(), dst, false, on_copy_done);
            return Ok(());
        };
        check_same_instance(inst, &pending_inst, t.as_ref())?;
        let vs = pending_buffer.borrow_mut().read(1)?;
        dst.borrow_mut().write(vs)?;
        SharedFutureImpl::reset_and_notify_pending(this, CopyResult::Completed);
        on_copy_done(CopyResult::Completed);
        Ok(())
    }

    /// `write(inst, src_buffer, on_copy_done)`.
    pub fn write(this: &Obj<SharedFutureImpl>, inst: &InstRef, src: BufferRef, on_copy_done: OnCopyDone) -> Result<()> {
        reached!("SharedFutureImpl.write");
        let (dropped, pending, t) = {
            let s = this.borrow();
            (s.dropped, s.pending_buffer.clone().map(|b| (b, s.pending_inst.clone())), s.t.clone())
        };
        assert_that(src.borrow().remain() == 1, "SharedFutureImpl.write: one value")?;
        if dropped {
            on_copy_done(CopyResult::Dropped);
            return Ok(());
        }
        let Some((pending_buffer, pending_inst)) = pending else {
            this.borrow_mut().set_pending(inst.clone(), src, true, on_copy_done);
            return Ok(());
        };
        check_same_instance(inst, &pending_inst, t.as_ref())?;
        let vs = src.borrow_mut().read(1)?;
        pending_buffer.borrow_mut().write(vs)?;
        SharedFutureImpl::reset_and_notify_pending(this, CopyResult::Completed);
        on_copy_done(CopyResult::Completed);
        Ok(())
    }
}
