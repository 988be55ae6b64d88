//! Rule coverage: which functions of definitions.py the suites name (the synchronous ABI,
//! then 🔀 the async ABI).

pub use crate::reference::reached::SYNC_RULES;

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
];

/// Whether cases may name `rule`.
pub fn is_rule(rule: &str) -> bool {
    SYNC_RULES.contains(&rule) || ASYNC_RULES.contains(&rule)
}

/// Per rule, how many cases name it (rules the suites never name have 0).
pub fn coverage<'a>(named: impl IntoIterator<Item = &'a str>) -> Vec<(&'static str, usize)> {
    let named: Vec<&str> = named.into_iter().collect();
    SYNC_RULES.iter().chain(ASYNC_RULES).map(|r| (*r, named.iter().filter(|n| *n == r).count())).collect()
}
