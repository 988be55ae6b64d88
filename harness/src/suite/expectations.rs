//! Expectations files (TOML, one per runtime, like wasi-testsuite's): known divergences of an
//! engine from the spec, each with the rule and the evidence. A difference they match is an
//! expected failure; an entry that never matches is reported as stale.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Deserialize;

use crate::oracle::Difference;

/// One known divergence.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KnownDivergence {
    pub engine: String,
    /// The oracle's area (`trap`, `value`, `realloc`, ...).
    pub area: String,
    /// For `trap`: the class the reference expects and the class the engine shows.
    pub expected: Option<String>,
    pub actual: Option<String>,
    /// For a guest-log area (`realloc`, `params`, ...): text the expected event and the
    /// engine's event must contain (their Debug form, e.g. `align: 1, new_size`), so that an
    /// entry explains one kind of difference, not the whole area.
    pub expected_event: Option<String>,
    pub actual_event: Option<String>,
    /// The definitions.py function whose rule the engine breaks.
    pub rule: String,
    pub evidence: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    divergence: Vec<KnownDivergence>,
}

#[derive(Clone, Debug, Default)]
pub struct Expectations {
    pub entries: Vec<KnownDivergence>,
}

impl Expectations {
    /// Load and merge expectations files. A malformed file is an error naming it (toml's
    /// message carries the line and column).
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Expectations> {
        let mut entries = vec![];
        for path in paths {
            let path = path.as_ref();
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let file: File =
                toml::from_str(&text).with_context(|| format!("{}: invalid expectations file", path.display()))?;
            entries.extend(file.divergence);
        }
        Ok(Expectations { entries })
    }

    /// The known divergence that explains `diff` on `engine`, if any.
    pub fn explain(&self, engine: &str, diff: &Difference) -> Option<&KnownDivergence> {
        self.entries.iter().find(|k| {
            k.engine == engine
                && k.area == diff.area
                && match &diff.trap_classes {
                    Some((expected, actual)) => {
                        k.expected.as_deref().is_none_or(|e| e == expected)
                            && k.actual.as_deref().is_none_or(|a| a == actual)
                    }
                    None => k.expected.is_none() && k.actual.is_none(),
                }
                && match &diff.events {
                    Some((expected, actual)) => {
                        k.expected_event.as_deref().is_none_or(|e| expected.contains(e))
                            && k.actual_event.as_deref().is_none_or(|a| actual.contains(a))
                    }
                    None => k.expected_event.is_none() && k.actual_event.is_none(),
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realloc_difference(expected: &str, actual: &str) -> Difference {
        Difference {
            area: "realloc",
            detail: String::new(),
            trap_classes: None,
            events: Some((expected.into(), actual.into())),
        }
    }

    #[test]
    fn a_log_entry_explains_only_the_events_it_names() {
        let text = r#"
[[divergence]]
engine = "e"
area = "realloc"
expected-event = "align: 1, new_size"
actual-event = "align: 2, new_size"
rule = "r"
evidence = "x"
"#;
        let file: File = toml::from_str(text).unwrap();
        let ex = Expectations { entries: file.divergence };
        let event = |align: u32| format!("Realloc {{ old_ptr: 8, old_size: 4, align: {align}, new_size: 2 }}");
        assert!(ex.explain("e", &realloc_difference(&event(1), &event(2))).is_some());
        assert!(ex.explain("e", &realloc_difference(&event(2), &event(1))).is_none());
        assert!(ex.explain("other", &realloc_difference(&event(1), &event(2))).is_none());
    }
}
