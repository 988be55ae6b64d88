//! Rule coverage: which functions of definitions.py the suites name (the synchronous ABI,
//! then 🔀 the async ABI).

pub use crate::reference::reached::{ASYNC_RULES, SYNC_RULES};

/// Whether cases may name `rule`.
pub fn is_rule(rule: &str) -> bool {
    SYNC_RULES.contains(&rule) || ASYNC_RULES.contains(&rule)
}

/// Per rule, how many cases name it (rules the suites never name have 0).
pub fn coverage<'a>(named: impl IntoIterator<Item = &'a str>) -> Vec<(&'static str, usize)> {
    let named: Vec<&str> = named.into_iter().collect();
    SYNC_RULES.iter().chain(ASYNC_RULES).map(|r| (*r, named.iter().filter(|n| *n == r).count())).collect()
}
