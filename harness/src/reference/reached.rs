//! Which functions of definitions.py ran: each function of the synchronous ABI, and 🔀 of the async
//! one, that the reference mirrors marks itself (`reached!`, one bit in a thread-local), so a fuzzing run can
//! report what its cases exercised (`witness fuzz-report`). `take` reads and clears the marks.

use std::cell::Cell;

/// The definitions.py functions whose rules a synchronous Canonical ABI implementation must
/// follow (the ones the reference mirrors), in the spec's order.
pub const SYNC_RULES: &[&str] = &[
    "despecialize",
    "alignment",
    "alignment_list",
    "alignment_record",
    "alignment_variant",
    "discriminant_type",
    "max_case_alignment",
    "alignment_flags",
    "elem_size",
    "elem_size_list",
    "elem_size_record",
    "align_to",
    "elem_size_variant",
    "elem_size_flags",
    "load",
    "load_int",
    "convert_int_to_bool",
    "canonicalize_nan32",
    "canonicalize_nan64",
    "decode_i32_as_float",
    "decode_i64_as_float",
    "convert_i32_to_char",
    "load_string",
    "load_string_from_range",
    "load_list",
    "load_list_from_range",
    "load_list_from_valid_range",
    "load_record",
    "load_variant",
    "load_flags",
    "unpack_flags_from_int",
    "lift_own",
    "lift_borrow",
    "store",
    "store_int",
    "maybe_scramble_nan32",
    "maybe_scramble_nan64",
    "encode_float_as_i32",
    "encode_float_as_i64",
    "char_to_i32",
    "store_string",
    "store_string_into_range",
    "store_string_copy",
    "store_utf16_to_utf8",
    "store_latin1_to_utf8",
    "store_string_to_utf8",
    "store_utf8_to_utf16",
    "store_string_to_latin1_or_utf16",
    "store_probably_utf16_to_latin1_or_utf16",
    "store_list",
    "store_list_into_range",
    "store_list_into_valid_range",
    "store_record",
    "store_variant",
    "match_case",
    "store_flags",
    "pack_flags_into_int",
    "lower_own",
    "lower_borrow",
    "flatten_functype",
    "flatten_type",
    "flatten_variant",
    "join",
    "lift_flat",
    "lift_flat_unsigned",
    "lift_flat_signed",
    "lift_flat_string",
    "lift_flat_list",
    "lift_flat_record",
    "lift_flat_variant",
    "wrap_i64_to_i32",
    "lift_flat_flags",
    "lower_flat",
    "lower_flat_signed",
    "lower_flat_string",
    "lower_flat_list",
    "lower_flat_record",
    "lower_flat_variant",
    "lower_flat_flags",
    "lift_flat_values",
    "lower_flat_values",
    "canon_lift",
    "canon_lower",
    "canon_resource_new",
    "canon_resource_drop",
    "canon_resource_rep",
];

/// 🔀 The functions and methods of definitions.py's async ABI that cases may name.
pub const ASYNC_RULES: &[&str] = &[
    "unpack_callback_result",
    "Task.enter_implicit_thread",
    "Task.exit_implicit_thread",
    "Task.return_",
    "Task.cancel",
    "Task.request_cancellation",
    "canon_context_get",
    "canon_context_set",
    "canon_backpressure_inc",
    "canon_backpressure_dec",
    "canon_task_return",
    "canon_task_cancel",
    "canon_waitable_set_new",
    "canon_waitable_set_wait",
    "canon_waitable_set_poll",
    "canon_waitable_set_drop",
    "canon_waitable_join",
    "canon_subtask_cancel",
    "canon_subtask_drop",
    "canon_stream_new",
    "canon_stream_read",
    "canon_stream_write",
    "canon_stream_cancel_read",
    "canon_stream_cancel_write",
    "canon_stream_drop_readable",
    "canon_stream_drop_writable",
    "canon_future_new",
    "canon_future_read",
    "canon_future_write",
    "canon_future_cancel_read",
    "canon_future_cancel_write",
    "canon_future_drop_readable",
    "canon_future_drop_writable",
    "canon_thread_yield",
    "stream_copy",
    "future_copy",
    "cancel_copy",
    "lift_async_value",
    "lower_async_value",
    "SharedStreamImpl.read",
    "SharedStreamImpl.write",
    "SharedStreamImpl.drop",
    "SharedFutureImpl.read",
    "SharedFutureImpl.write",
    "SharedFutureImpl.drop",
    "Subtask.drop",
    "canon_error_context_new",
    "canon_error_context_debug_message",
    "canon_error_context_drop",
];

thread_local! {
    /// The marks of this thread: the reference runs on the thread that runs the case (every
    /// runtime calls its host on the caller's thread), so cases on other threads (parallel
    /// tests, suite workers) do not mix their marks in.
    static REACHED: [Cell<u64>; RULES.div_ceil(64)] = const { [const { Cell::new(0) }; RULES.div_ceil(64)] };
}

/// How many functions are marked: `SYNC_RULES`, then `ASYNC_RULES`.
const RULES: usize = SYNC_RULES.len() + ASYNC_RULES.len();

/// The rule of mark `i`.
const fn rule(i: usize) -> &'static str {
    if i < SYNC_RULES.len() { SYNC_RULES[i] } else { ASYNC_RULES[i - SYNC_RULES.len()] }
}

/// The index of `name` in `SYNC_RULES` then `ASYNC_RULES`, at compile time (a name in neither
/// fails the build).
pub const fn rule_index(name: &str) -> usize {
    let mut i = 0;
    while i < RULES {
        let (a, b) = (rule(i).as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut k = 0;
            while k < a.len() && a[k] == b[k] {
                k += 1;
            }
            if k == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("not a function of SYNC_RULES or ASYNC_RULES")
}

pub fn mark(index: usize) {
    REACHED.with(|words| {
        let word = &words[index / 64];
        word.set(word.get() | 1 << (index % 64));
    });
}

/// The functions marked since the last `take`, in `SYNC_RULES` then `ASYNC_RULES` order; the
/// marks are cleared.
pub fn take() -> Vec<&'static str> {
    let words: Vec<u64> = REACHED.with(|words| words.iter().map(|w| w.take()).collect());
    (0..RULES).filter(|i| words[i / 64] & (1 << (i % 64)) != 0).map(rule).collect()
}

/// Mark the enclosing function (named as in definitions.py) as reached.
macro_rules! reached {
    ($name:ident) => {{
        const INDEX: usize = $crate::reference::reached::rule_index(stringify!($name));
        $crate::reference::reached::mark(INDEX);
    }};
    // A method, as `Task.return_`.
    ($name:literal) => {{
        const INDEX: usize = $crate::reference::reached::rule_index($name);
        $crate::reference::reached::mark(INDEX);
    }};
}
pub(crate) use reached;
