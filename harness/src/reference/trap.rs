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
    pub const ALL: [TrapKind; 21] = [
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
    trap_if(!cond, TrapKind::Assertion, || format!("spec assertion failed: {what}"))
}
