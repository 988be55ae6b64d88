//! Buffer State (CanonicalABI.md): the guest memory a stream or future copy reads from or
//! writes into, with how much of it has been copied (`progress`). A copy checks the whole
//! range once, when the buffer is made, so each later partial copy cannot trap on bounds.

use super::task::HeldContext;
use crate::reference::context::BorrowScope;
use crate::reference::layout::{align_to, alignment, elem_size};
use crate::reference::load::load_list_from_valid_range;
use crate::reference::memory::exceeds;
use crate::reference::store::store_list_into_valid_range;
use crate::reference::trap::{Result, TrapKind, assert_that, assertion_failed, trap_if};
use crate::reference::types::ValType;
use crate::reference::value::Value;

/// `Buffer.MAX_LENGTH`.
pub const MAX_LENGTH: u64 = (1 << 28) - 1;

/// `ReadableBuffer` and `WritableBuffer`: a copy reads from the writer's buffer and writes
/// into the reader's.
pub trait Buffer {
    /// `t`: the element type (`None` for `stream`/`future` without one).
    fn t(&self) -> Option<&ValType>;
    fn remain(&self) -> u64;
    fn is_zero_length(&self) -> bool;
    fn progress(&self) -> u64;
    /// `ReadableBuffer.read(n)`.
    fn read(&mut self, n: u64) -> Result<Vec<Value>>;
    /// `WritableBuffer.write(vs)`.
    fn write(&mut self, vs: Vec<Value>) -> Result<()>;
}

/// `BufferGuestImpl(t, cx, ptr, length)`.
pub struct BufferGuestImpl {
    pub cx: HeldContext,
    pub t: Option<ValType>,
    pub ptr: u64,
    pub progress: u64,
    pub length: u64,
    /// `ReadableBufferGuestImpl` (true) or `WritableBufferGuestImpl`.
    readable: bool,
}

impl BufferGuestImpl {
    fn new(t: Option<ValType>, cx: HeldContext, ptr: u64, length: u64, readable: bool) -> Result<BufferGuestImpl> {
        trap_if(length > MAX_LENGTH, TrapKind::BufferTooLong, || {
            format!("a copy of {length} elements exceeds Buffer.MAX_LENGTH")
        })?;
        if let Some(t) = &t
            && length > 0
        {
            let (ptr_type, mem_len) = match &cx.opts.memory {
                Some(m) => (m.borrow().ptr_type(), m.borrow().len()),
                None => return Err(assertion_failed("a copy of elements has a memory")),
            };
            let align = alignment(t, ptr_type);
            trap_if(ptr != align_to(ptr, align), TrapKind::MisalignedPointer, || {
                format!("copy buffer at {ptr} is not aligned to {align}")
            })?;
            let size = u128::from(length) * u128::from(elem_size(t, ptr_type));
            trap_if(exceeds(ptr, size, mem_len), TrapKind::OutOfBounds, || {
                format!("copy buffer {ptr}+{size} reaches past the end of memory ({mem_len})")
            })?;
        }
        Ok(BufferGuestImpl { cx, t, ptr, progress: 0, length, readable })
    }

    /// `ReadableBufferGuestImpl(t, cx, ptr, length)`: the writer's values.
    pub fn readable(t: Option<ValType>, cx: HeldContext, ptr: u64, length: u64) -> Result<BufferGuestImpl> {
        BufferGuestImpl::new(t, cx, ptr, length, true)
    }

    /// `WritableBufferGuestImpl(t, cx, ptr, length)`: where the reader's values go.
    pub fn writable(t: Option<ValType>, cx: HeldContext, ptr: u64, length: u64) -> Result<BufferGuestImpl> {
        BufferGuestImpl::new(t, cx, ptr, length, false)
    }

    fn size(&self, t: &ValType) -> u64 {
        let ptr_type = self.cx.opts.memory.as_ref().map(|m| m.borrow().ptr_type()).unwrap_or_default();
        elem_size(t, ptr_type)
    }
}

impl Buffer for BufferGuestImpl {
    fn t(&self) -> Option<&ValType> {
        self.t.as_ref()
    }

    fn remain(&self) -> u64 {
        self.length - self.progress
    }

    fn is_zero_length(&self) -> bool {
        self.length == 0
    }

    fn progress(&self) -> u64 {
        self.progress
    }

    fn read(&mut self, n: u64) -> Result<Vec<Value>> {
        assert_that(self.readable && n <= self.remain(), "read: a readable buffer with n remaining")?;
        let vs = match self.t.clone() {
            Some(t) => {
                let vs = self.cx.with(BorrowScope::None, |cx| load_list_from_valid_range(cx, self.ptr, n, &t))?;
                self.ptr += n * self.size(&t);
                match vs {
                    Value::List(vs) => vs,
                    _ => return Err(assertion_failed("a list loads as a list")),
                }
            }
            None => (0..n).map(|_| Value::Record(vec![])).collect(),
        };
        self.progress += n;
        Ok(vs)
    }

    fn write(&mut self, vs: Vec<Value>) -> Result<()> {
        let n = vs.len() as u64;
        assert_that(!self.readable && n <= self.remain(), "write: a writable buffer with room")?;
        match self.t.clone() {
            Some(t) => {
                self.cx.with(BorrowScope::None, |cx| store_list_into_valid_range(cx, &vs, self.ptr, &t))?;
                self.ptr += n * self.size(&t);
            }
            None => assert_that(vs.iter().all(|v| *v == Value::Record(vec![])), "write: unit values")?,
        }
        self.progress += n;
        Ok(())
    }
}
