//! 📝 Error contexts (CanonicalABI.md "`canon error-context.new`" and the two after it): an
//! `ErrorContext` element in the handle table, made, read and dropped by the three built-ins.
//! The choice the spec leaves (keep the message, loaded from memory and transformed as the host
//! likes, or keep none) is made as the deterministic profile makes it: none.

use super::context::{ComponentInstance, LiftLowerContext};
use super::handles::ErrorContext;
use super::strings::store_string;
use super::trap::{Result, TrapKind, trap_if};
use super::types::StringEncoding;
use super::value::HostString;
use crate::reference::reached::reached;

/// `lift_error_context(cx, i)`: `Table.get`, so the element stays where it is (an error context
/// is shared by every table it is lowered into, not moved).
pub fn lift_error_context(cx: &mut LiftLowerContext<'_>, i: u32) -> Result<ErrorContext> {
    Ok(cx.inst().handles.get(i)?.error_context("lift_error_context")?.clone())
}

/// `lower_error_context(cx, v)`: `Table.add` of the same error context.
pub fn lower_error_context(cx: &mut LiftLowerContext<'_>, v: &ErrorContext) -> Result<u32> {
    cx.inst().handles.add(v.clone())
}

/// `canon_error_context_new(opts, ptr, tagged_code_units)`, deterministic profile: the message
/// is `String(('', 'utf8', 0))`, so memory is not read (and a bad pointer is no trap here; a
/// runtime that loads the message may trap on it, which the spec allows).
pub fn canon_error_context_new(inst: &mut ComponentInstance, _ptr: u64, _tagged_code_units: u64) -> Result<u32> {
    reached!(canon_error_context_new);
    trap_if(!inst.may_leave, TrapKind::MayNotLeave, || "error-context.new while may_leave is false".into())?;
    inst.handles.add(ErrorContext { debug_message: HostString::new("", StringEncoding::Utf8) })
}

/// `canon_error_context_debug_message(opts, i, ptr)`: the message is stored as a string
/// (through realloc) at `ptr`.
pub fn canon_error_context_debug_message(cx: &mut LiftLowerContext<'_>, i: u32, ptr: u64) -> Result<()> {
    reached!(canon_error_context_debug_message);
    let may_leave = cx.inst().may_leave;
    trap_if(!may_leave, TrapKind::MayNotLeave, || "error-context.debug-message while may_leave is false".into())?;
    let message = cx.inst().handles.get(i)?.error_context("error-context.debug-message")?.debug_message.clone();
    store_string(cx, &message, ptr)
}

/// `canon_error_context_drop(i)`: the element is removed, then checked.
pub fn canon_error_context_drop(inst: &mut ComponentInstance, i: u32) -> Result<()> {
    reached!(canon_error_context_drop);
    trap_if(!inst.may_leave, TrapKind::MayNotLeave, || "error-context.drop while may_leave is false".into())?;
    inst.handles.remove(i)?.error_context("error-context.drop")?;
    Ok(())
}
