//! Rule coverage: which functions of definitions.py's synchronous ABI the suites name.

pub use crate::reference::reached::SYNC_RULES;

/// Per rule, how many cases name it (rules the suites never name have 0).
pub fn coverage<'a>(named: impl IntoIterator<Item = &'a str>) -> Vec<(&'static str, usize)> {
    let named: Vec<&str> = named.into_iter().collect();
    SYNC_RULES.iter().map(|r| (*r, named.iter().filter(|n| *n == r).count())).collect()
}
