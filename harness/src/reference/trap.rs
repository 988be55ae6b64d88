//! `trap()` / `trap_if()` of definitions.py as values: every rule violation a guest can cause
//! becomes a `Trap` with a class (`TrapKind`), never a panic.

use std::fmt;

/// The class of a trap. Engines are compared on this class, never on message text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrapKind {
    /// A pointer handed to the ABI (list, string, spilled tuple, return area) is not aligned.
    MisalignedPointer,
    /// A pointer plus length reaches past the end of linear memory.
    OutOfBounds,
    /// `realloc` returned a pointer that is not aligned to the requested alignment.
    ReallocMisaligned,
    /// `realloc` returned a pointer whose allocation reaches past the end of memory.
    ReallocOutOfBounds,
    /// A variant/enum/option/result discriminant is not smaller than the number of cases.
    InvalidDiscriminant,
    /// An `i32` that is not a Unicode scalar value was lifted as `char`.
    InvalidChar,
    /// String bytes are not valid UTF-8.
    InvalidUtf8,
    /// String code units are not valid UTF-16 (an unpaired surrogate).
    InvalidUtf16,
    /// A string's byte length exceeds `MAX_STRING_BYTE_LENGTH`.
    StringTooLong,
    /// A list's byte length exceeds `MAX_LIST_BYTE_LENGTH`.
    ListTooLong,
    /// A handle index is 0, out of range, or names an empty slot (`Table.get`).
    UnknownHandle,
    /// A handle names a resource of another type, or a table element that is not a resource.
    HandleTypeMismatch,
    /// An own handle was lifted or dropped while it is lent out (`num_lends != 0`).
    HandleLent,
    /// A borrow handle was lifted as `own` (`trap_if(not h.own)`).
    NotOwned,
    /// A task returned while it still holds borrow handles (`num_borrows != 0`).
    BorrowNotDropped,
    /// The handle table is full (`Table.MAX_LENGTH`).
    TableFull,
    /// An import or built-in was called while `may_leave` is false (e.g. from realloc or post-return).
    MayNotLeave,
    /// An engine refused to enter an instance already on the stack. The spec has had no such
    /// trap since component-model #705 (which removed `may_enter`): the reference never
    /// expects it; it only names what engines report.
    Reentrance,
    /// 🔀 `task.return` (or `task.cancel`) of a task that already returned or was cancelled.
    TaskAlreadyResolved,
    /// 🔀 A task's last thread ended before the task returned or was cancelled.
    TaskNotResolved,
    /// 🔀 `task.cancel` of a task to which no cancellation was delivered.
    CancelNotDelivered,
    /// 🔀 `task.return` or `task.cancel` called from a synchronously lifted task.
    NotAsyncTask,
    /// 🔀 `task.return`'s result type or options differ from the task's function.
    TaskReturnMismatch,
    /// 🔀 A callback (or async-lifted core function) returned a code above `CallbackCode.MAX`.
    InvalidCallbackCode,
    /// 🔀 A synchronous call blocked while no thread of the callee's instance was ready. Also
    /// a host's async call whose event loop went idle before the call returned: the spec
    /// leaves such a host waiting for ever; witness (like Wasmtime) ends the call there.
    WouldDeadlock,
    /// 🔀 `backpressure.inc` past 2^16 - 1 or `backpressure.dec` below 0.
    BackpressureRange,
    /// 🔀 A waitable set was dropped while it had members or a thread waiting on it.
    WaitableSetBusy,
    /// 🔀 `waitable.join` or a cancel of a waitable that a synchronous call is waiting on.
    HasSyncWaiter,
    /// 🔀 A synchronous wait on (or a transfer of) a waitable that is in a waitable set.
    InWaitableSet,
    /// 🔀 `subtask.cancel` of a delivered or already cancelled subtask, or `subtask.drop` before its resolution was delivered.
    SubtaskState,
    /// 🔀 A stream or future copy, transfer or cancel in the wrong copy state (not idle, done, not copying), or an end dropped mid-copy.
    CopyState,
    /// 🔀 The writable end of a future was dropped before a value was written.
    FutureNotWritten,
    /// 🔀 A stream copy longer than `Buffer.MAX_LENGTH` elements.
    BufferTooLong,
    /// 🔀 Both ends of a copy of non-number elements are in the same instance (a temporary rule of the spec).
    SameInstanceCopy,
    /// 🧵 A thread built-in that resumes another thread named one that is not suspended.
    ThreadNotSuspended,
    /// Core wasm trapped by itself (unreachable, out-of-bounds access, ... inside the guest).
    GuestTrap,
    /// A precondition the spec states as `assert` did not hold: a bug of the caller of the
    /// reference (the harness), never of a guest.
    Assertion,
    /// An engine's trap that its message table does not map to a class: a finding, never a
    /// match (the reference never produces it).
    Unclassified,
}

impl TrapKind {
    pub const ALL: [TrapKind; 38] = [
        TrapKind::MisalignedPointer,
        TrapKind::OutOfBounds,
        TrapKind::ReallocMisaligned,
        TrapKind::ReallocOutOfBounds,
        TrapKind::InvalidDiscriminant,
        TrapKind::InvalidChar,
        TrapKind::InvalidUtf8,
        TrapKind::InvalidUtf16,
        TrapKind::StringTooLong,
        TrapKind::ListTooLong,
        TrapKind::UnknownHandle,
        TrapKind::HandleTypeMismatch,
        TrapKind::HandleLent,
        TrapKind::NotOwned,
        TrapKind::BorrowNotDropped,
        TrapKind::TableFull,
        TrapKind::MayNotLeave,
        TrapKind::Reentrance,
        TrapKind::TaskAlreadyResolved,
        TrapKind::TaskNotResolved,
        TrapKind::CancelNotDelivered,
        TrapKind::NotAsyncTask,
        TrapKind::TaskReturnMismatch,
        TrapKind::InvalidCallbackCode,
        TrapKind::WouldDeadlock,
        TrapKind::BackpressureRange,
        TrapKind::WaitableSetBusy,
        TrapKind::HasSyncWaiter,
        TrapKind::InWaitableSet,
        TrapKind::SubtaskState,
        TrapKind::CopyState,
        TrapKind::FutureNotWritten,
        TrapKind::BufferTooLong,
        TrapKind::SameInstanceCopy,
        TrapKind::ThreadNotSuspended,
        TrapKind::GuestTrap,
        TrapKind::Assertion,
        TrapKind::Unclassified,
    ];

    /// The class named `name` (as `name()` spells it).
    pub fn from_name(name: &str) -> Option<TrapKind> {
        TrapKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kebab-case name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            TrapKind::MisalignedPointer => "misaligned-pointer",
            TrapKind::OutOfBounds => "out-of-bounds",
            TrapKind::ReallocMisaligned => "realloc-misaligned",
            TrapKind::ReallocOutOfBounds => "realloc-out-of-bounds",
            TrapKind::InvalidDiscriminant => "invalid-discriminant",
            TrapKind::InvalidChar => "invalid-char",
            TrapKind::InvalidUtf8 => "invalid-utf8",
            TrapKind::InvalidUtf16 => "invalid-utf16",
            TrapKind::StringTooLong => "string-too-long",
            TrapKind::ListTooLong => "list-too-long",
            TrapKind::UnknownHandle => "unknown-handle",
            TrapKind::HandleTypeMismatch => "handle-type-mismatch",
            TrapKind::HandleLent => "handle-lent",
            TrapKind::NotOwned => "not-owned",
            TrapKind::BorrowNotDropped => "borrow-not-dropped",
            TrapKind::TableFull => "table-full",
            TrapKind::MayNotLeave => "may-not-leave",
            TrapKind::Reentrance => "reentrance",
            TrapKind::TaskAlreadyResolved => "task-already-resolved",
            TrapKind::TaskNotResolved => "task-not-resolved",
            TrapKind::CancelNotDelivered => "cancel-not-delivered",
            TrapKind::NotAsyncTask => "not-async-task",
            TrapKind::TaskReturnMismatch => "task-return-mismatch",
            TrapKind::InvalidCallbackCode => "invalid-callback-code",
            TrapKind::WouldDeadlock => "would-deadlock",
            TrapKind::BackpressureRange => "backpressure-range",
            TrapKind::WaitableSetBusy => "waitable-set-busy",
            TrapKind::HasSyncWaiter => "has-sync-waiter",
            TrapKind::InWaitableSet => "in-waitable-set",
            TrapKind::SubtaskState => "subtask-state",
            TrapKind::CopyState => "copy-state",
            TrapKind::FutureNotWritten => "future-not-written",
            TrapKind::BufferTooLong => "buffer-too-long",
            TrapKind::SameInstanceCopy => "same-instance-copy",
            TrapKind::ThreadNotSuspended => "thread-not-suspended",
            TrapKind::GuestTrap => "guest-trap",
            TrapKind::Assertion => "assertion",
            TrapKind::Unclassified => "unclassified",
        }
    }
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A trap: its class plus a message that says which rule fired and with what numbers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Trap {
    pub kind: TrapKind,
    pub message: String,
}

impl Trap {
    pub fn new(kind: TrapKind, message: impl Into<String>) -> Trap {
        Trap { kind, message: message.into() }
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Trap {}

pub type Result<T, E = Trap> = std::result::Result<T, E>;

/// `trap_if(cond)`: the message is only built when the trap fires.
pub fn trap_if(cond: bool, kind: TrapKind, message: impl FnOnce() -> String) -> Result<()> {
    if cond { Err(Trap::new(kind, message())) } else { Ok(()) }
}

/// The spec's `assert(cond)`: a broken precondition of the harness, reported as a value.
pub fn assert_that(cond: bool, what: &str) -> Result<()> {
    if cond { Ok(()) } else { Err(assertion_failed(what)) }
}

/// The trap of an `assert` that failed (where the code already knows it did).
pub fn assertion_failed(what: &str) -> Trap {
    Trap::new(TrapKind::Assertion, format!("spec assertion failed: {what}"))
}
