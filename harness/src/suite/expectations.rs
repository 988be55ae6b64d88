//! Expectations files (TOML, one per runtime, like wasi-testsuite's): what an engine is known
//! to get wrong, so a runtime can track its gaps. Four kinds of entries:
//! * `[[divergence]]`: a kind of difference (oracle area, trap classes) with the rule it breaks
//!   and the evidence; any case showing exactly that difference is an expected failure.
//! * `[[failure]]`: cases (by `area/name`, `*` matching any text) expected to fail, with the
//!   rule and evidence; such a case that passes is reported, so the file stays true.
//! * `[[skip]]`: cases not run on the engine, with the reason.
//! * `[[bug]]`: a bug of the engine's execution of core wasm, of a kind `witness smith` knows
//!   how to recognize (`BugKind`), with the evidence.
//!
//! `engine` is one engine name or a list of them.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Deserialize;

use crate::oracle::{Area, Difference};
use crate::runtime::{REGISTRY, fused_name};

/// One name or several, as an entry writes them: its engines, or the trap classes it expects
/// (any of them).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Names {
    One(String),
    Many(Vec<String>),
}

impl Names {
    fn contains(&self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        match self {
            Names::One(n) => std::slice::from_ref(n),
            Names::Many(ns) => ns.as_slice(),
        }
        .iter()
        .map(String::as_str)
    }
}

/// One known divergence.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KnownDivergence {
    pub engine: Names,
    /// The oracle's area (`trap`, `value`, `realloc`, ...).
    pub area: Area,
    /// For `trap`: the class the reference expects (or a list of classes, any of which) and
    /// the class the engine shows.
    pub expected: Option<Names>,
    pub actual: Option<String>,
    /// For a guest-log area (`realloc`, `params`, ...): text the expected event and the
    /// engine's event must contain (their Debug form, e.g. `align: 1, new_size`), so that an
    /// entry explains one kind of difference, not the whole area.
    pub expected_event: Option<String>,
    pub actual_event: Option<String>,
    /// For `trap`: texts one of which the engine's side of the difference (its trap message)
    /// must contain, so that an entry for a broad class (`unclassified`) explains only the
    /// checks its evidence names, not whatever else lands in that class.
    pub actual_message: Option<Vec<String>>,
    /// The definitions.py function whose rule the engine breaks.
    pub rule: String,
    pub evidence: String,
}

impl KnownDivergence {
    /// Trap classes are named as the oracle names them (a misspelt one would match nothing).
    fn check(&self) -> Result<()> {
        let expected = self.expected.iter().flat_map(Names::names);
        for class in expected.chain(self.actual.as_deref()) {
            if class != "none" && crate::reference::TrapKind::from_name(class).is_none() {
                anyhow::bail!(
                    "`{class}` is no trap class (the classes are listed in adapters/PROTOCOL.md; `none` is no trap)"
                );
            }
            if self.area != Area::Trap {
                anyhow::bail!("`expected` and `actual` are trap classes, for area `trap` only");
            }
        }
        if self.actual_message.is_some() && self.area != Area::Trap {
            anyhow::bail!("`actual-message` is a trap message, for area `trap` only");
        }
        Ok(())
    }
}

/// Cases known to fail on an engine.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KnownFailure {
    pub engine: Names,
    /// `area/name` (the area is the suite file's stem); `*` matches any text.
    pub case: String,
    pub rule: String,
    pub evidence: String,
    #[serde(skip)]
    pub file: PathBuf,
}

impl KnownFailure {
    /// Where the entry comes from, for messages.
    pub fn origin(&self) -> String {
        format!("{} ([[failure]] case = {:?})", self.file.display(), self.case)
    }
}

/// Cases not run on an engine.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Skip {
    pub engine: Names,
    /// `area/name`; `*` matches any text.
    pub case: String,
    pub reason: String,
    #[serde(skip)]
    pub file: PathBuf,
}

/// A bug of an engine's execution of core wasm (not of its Canonical ABI) that `witness
/// smith` knows how to recognize, so that a mismatch it causes is counted as expected.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BugKind {
    /// `select` picks the wrong operand: recognized when the same module with every select's
    /// condition guarded (`i32.const 0 i32.or`, the same semantics) ends alike on both engines.
    SelectMiscompilation,
}

/// A known bug of an engine's core-wasm execution.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EngineBug {
    pub engine: Names,
    pub kind: BugKind,
    pub evidence: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    divergence: Vec<KnownDivergence>,
    #[serde(default)]
    failure: Vec<KnownFailure>,
    #[serde(default)]
    skip: Vec<Skip>,
    #[serde(default)]
    bug: Vec<EngineBug>,
}

#[derive(Clone, Debug, Default)]
pub struct Expectations {
    pub entries: Vec<KnownDivergence>,
    pub failures: Vec<KnownFailure>,
    pub skips: Vec<Skip>,
    pub bugs: Vec<EngineBug>,
    /// Engine names close to an embedded runtime's but not one: `(file, name, the runtime)`.
    /// Adapters' names are known only when they greet, so these are judged after a run.
    pub near_misses: Vec<(PathBuf, String, String)>,
}

/// The embedded runtime (or composition mode) a name not among them is a likely misspelling
/// of: at most two edits away.
fn near_miss(name: &str) -> Option<String> {
    let known = REGISTRY.iter().flat_map(|r| {
        let fused = r.compositions.then(|| fused_name(r.name));
        std::iter::once(r.name.to_string()).chain(fused)
    });
    let known: Vec<String> = known.collect();
    if known.iter().any(|k| k == name) {
        return None;
    }
    known.into_iter().find(|k| strsim::levenshtein(k, name) <= 2)
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

impl Expectations {
    /// Load and merge expectations files. A malformed file is an error naming it (toml's
    /// message carries the line and column).
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Expectations> {
        let mut texts = vec![];
        for path in paths {
            let path = path.as_ref();
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            texts.push((path.to_path_buf(), text));
        }
        Expectations::parse(&texts)
    }

    /// The expectations of files already read: (path, for messages; text).
    pub fn parse(texts: &[(PathBuf, String)]) -> Result<Expectations> {
        let mut all = Expectations::default();
        for (path, text) in texts {
            let path = path.as_path();
            let file: File =
                toml::from_str(text).with_context(|| format!("{}: invalid expectations file", path.display()))?;
            for k in &file.divergence {
                k.check().with_context(|| format!("{}: the [[divergence]] of rule `{}`", path.display(), k.rule))?;
            }
            let named = file.divergence.iter().map(|k| &k.engine);
            let named = named.chain(file.failure.iter().map(|k| &k.engine)).chain(file.skip.iter().map(|k| &k.engine));
            for name in named.chain(file.bug.iter().map(|k| &k.engine)).flat_map(Names::names) {
                if let Some(runtime) = near_miss(name) {
                    all.near_misses.push((path.to_path_buf(), name.to_string(), runtime));
                }
            }
            all.entries.extend(file.divergence);
            all.failures.extend(file.failure.into_iter().map(|f| KnownFailure { file: path.to_path_buf(), ..f }));
            all.skips.extend(file.skip.into_iter().map(|k| Skip { file: path.to_path_buf(), ..k }));
            all.bugs.extend(file.bug);
        }
        Ok(all)
    }

    /// The known divergence that explains `diff` on `engine`, if any.
    pub fn explain(&self, engine: &str, diff: &Difference) -> Option<&KnownDivergence> {
        self.entries.iter().find(|k| {
            k.engine.contains(engine)
                && k.area == diff.area
                && match &diff.trap_classes {
                    Some((expected, actual)) => {
                        k.expected.as_ref().is_none_or(|e| e.contains(expected))
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
                && k.actual_message.as_ref().is_none_or(|texts| {
                    // The oracle writes a trap difference as "expected ..., engine: ...".
                    let engine = diff.detail.rsplit_once(", engine: ").map_or("", |(_, e)| e);
                    texts.iter().any(|t| engine.contains(t.as_str()))
                })
        })
    }

    /// The known bug of kind `kind` of `engine`, if any.
    pub fn bug(&self, engine: &str, kind: BugKind) -> Option<&EngineBug> {
        self.bugs.iter().find(|b| b.kind == kind && b.engine.contains(engine))
    }

    /// The entry saying case `area/name` fails on `engine`, if any.
    pub fn known_failure(&self, engine: &str, area: &str, name: &str) -> Option<&KnownFailure> {
        let id = format!("{area}/{name}");
        self.failures.iter().find(|f| f.engine.contains(engine) && glob(&f.case, &id))
    }

    /// The entry saying case `area/name` is not run on `engine`, if any.
    pub fn skip(&self, engine: &str, area: &str, name: &str) -> Option<&Skip> {
        let id = format!("{area}/{name}");
        self.skips.iter().find(|s| s.engine.contains(engine) && glob(&s.case, &id))
    }

    /// Engine names close to an embedded runtime's that are neither a runtime nor an engine
    /// that ran (an adapter's greeting name): likely misspellings, whose entries match nothing.
    pub fn misspelt_engines<'a>(&self, ran: impl Iterator<Item = &'a str> + Clone) -> Vec<String> {
        let mut out: Vec<String> = self
            .near_misses
            .iter()
            .filter(|(_, name, _)| !ran.clone().any(|r| r == name))
            .map(|(file, name, runtime)| {
                format!("{}: engine `{name}` is no runtime and did not run (did you mean `{runtime}`?)", file.display())
            })
            .collect();
        // A name misspelt in several entries is said once.
        out.sort();
        out.dedup();
        out
    }

    /// The `[[failure]]` and `[[skip]]` entries that matched no case of a run in which one of
    /// their engines ran, given as `(engine, area, name)` of every case that ran: stale entries
    /// (a case renamed or removed) that would otherwise stay in the files unseen.
    pub fn unused<'a>(&self, ran: impl Iterator<Item = (&'a str, &'a str, &'a str)>) -> Vec<String> {
        let ran: Vec<(&str, String)> = ran.map(|(e, area, name)| (e, format!("{area}/{name}"))).collect();
        let entries = self.failures.iter().map(|f| ("failure", &f.engine, &f.case, &f.file));
        let entries = entries.chain(self.skips.iter().map(|s| ("skip", &s.engine, &s.case, &s.file)));
        let mut out = vec![];
        for (kind, engines, case, file) in entries {
            let ran_here: Vec<&str> = engines.names().filter(|e| ran.iter().any(|(r, _)| r == e)).collect();
            let matched = ran.iter().any(|(e, id)| engines.contains(e) && glob(case, id));
            if !ran_here.is_empty() && !matched {
                out.push(format!(
                    "{}: [[{kind}]] case = {case:?} matches no case run on {}",
                    file.display(),
                    ran_here.join(", ")
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_stars_only() {
        assert!(glob("strings/*", "strings/a b"));
        assert!(glob("*/empty*", "lists/empty list"));
        assert!(glob("a*b*c", "a-x-b-y-c"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exact2"));
        assert!(!glob("a*c", "ab"));
        assert!(!glob("strings/*", "lists/x"));
        assert!(glob("*", ""));
        assert!(!glob("ab*ba", "aba"));
    }

    /// A trap difference as the oracle writes it ("expected ..., engine: CLASS: MESSAGE").
    fn trap_difference(expected: &str, actual: &str, message: &str) -> Difference {
        Difference {
            area: crate::oracle::Area::Trap,
            detail: format!("expected {expected}, engine: {actual}: {message}"),
            trap_classes: Some((expected.into(), actual.into())),
            events: None,
        }
    }

    fn realloc_difference(expected: &str, actual: &str) -> Difference {
        Difference {
            area: crate::oracle::Area::Realloc,
            detail: String::new(),
            trap_classes: None,
            events: Some((expected.into(), actual.into())),
        }
    }

    #[test]
    fn a_misspelt_trap_class_is_an_error_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("witness-expectations-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("e.toml");
        let entry = |class: &str, area: &str| {
            format!(
                "[[divergence]]\nengine = \"e\"\narea = \"{area}\"\nexpected = \"{class}\"\nrule = \"r\"\nevidence = \"x\"\n"
            )
        };
        std::fs::write(&file, entry("out-of-bound", "trap")).unwrap();
        let e = format!("{:#}", Expectations::load(&[&file]).unwrap_err());
        assert!(e.contains("e.toml") && e.contains("`out-of-bound` is no trap class"), "{e}");
        std::fs::write(&file, entry("out-of-bounds", "realloc")).unwrap();
        let e = format!("{:#}", Expectations::load(&[&file]).unwrap_err());
        assert!(e.contains("for area `trap` only"), "{e}");
        std::fs::write(&file, entry("none", "trap")).unwrap();
        assert!(Expectations::load(&[&file]).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
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
        let ex = Expectations { entries: file.divergence, ..Expectations::default() };
        let event = |align: u32| format!("Realloc {{ old_ptr: 8, old_size: 4, align: {align}, new_size: 2 }}");
        assert!(ex.explain("e", &realloc_difference(&event(1), &event(2))).is_some());
        assert!(ex.explain("e", &realloc_difference(&event(2), &event(1))).is_none());
        assert!(ex.explain("other", &realloc_difference(&event(1), &event(2))).is_none());
    }

    #[test]
    fn a_list_of_expected_classes_explains_each_of_them_only() {
        let text = r#"
[[divergence]]
engine = "e"
area = "trap"
expected = ["misaligned-pointer", "invalid-utf8"]
actual = "guest-trap"
rule = "r"
evidence = "x"
"#;
        let file: File = toml::from_str(text).unwrap();
        let ex = Expectations { entries: file.divergence, ..Expectations::default() };
        let trap = |expected: &str, actual: &str| trap_difference(expected, actual, "m");
        assert!(ex.explain("e", &trap("misaligned-pointer", "guest-trap")).is_some());
        assert!(ex.explain("e", &trap("invalid-utf8", "guest-trap")).is_some());
        assert!(ex.explain("e", &trap("none", "guest-trap")).is_none());
        assert!(ex.explain("e", &trap("invalid-utf8", "out-of-bounds")).is_none());
        // A misspelt class in the list is refused like a single one.
        let file: File = toml::from_str(&text.replace("invalid-utf8", "invalid-utf-8")).unwrap();
        assert!(file.divergence[0].check().is_err());
    }

    #[test]
    fn a_trap_entry_with_messages_explains_only_those_messages() {
        let text = r#"
[[divergence]]
engine = "e"
area = "trap"
expected = "none"
actual = "unclassified"
actual-message = ["must be between", "extraneous bits"]
rule = "r"
evidence = "x"
"#;
        let file: File = toml::from_str(text).unwrap();
        let ex = Expectations { entries: file.divergence, ..Expectations::default() };
        let trap = |message: &str| trap_difference("none", "unclassified", message);
        assert!(ex.explain("e", &trap("TypeError: must be between 0 and 255")).is_some());
        assert!(ex.explain("e", &trap("TypeError: flags have extraneous bits set")).is_some());
        // Same classes, another check (an adapter's own bug, say): not this entry's.
        assert!(ex.explain("e", &trap("TypeError: expected a Map")).is_none());
    }

    #[test]
    fn an_engine_name_a_typo_away_from_a_runtime_is_reported_unless_it_ran() {
        let dir = std::env::temp_dir().join(format!("witness-misspelt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("e.toml");
        let skip = |engine: &str| format!("[[skip]]\nengine = {engine}\ncase = \"x/y\"\nreason = \"r\"\n");
        let text =
            [skip(r#"["wasmtim", "wasmtime"]"#), skip(r#""wasmtime-fusde""#), skip(r#""jco""#), skip(r#""wasmtim""#)]
                .concat();
        std::fs::write(&file, text).unwrap();
        let ex = Expectations::load(&[&file]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let warned = ex.misspelt_engines(["wasmtime"].into_iter());
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert!(warned[0].contains("engine `wasmtim`") && warned[0].contains("did you mean `wasmtime`?"));
        assert!(warned[1].contains("engine `wasmtime-fusde`") && warned[1].contains("`wasmtime-fused`"));
        // An adapter that greets with such a name ran: its name is its own.
        assert_eq!(ex.misspelt_engines(["wasmtim", "wasmtime-fusde"].into_iter()), Vec::<String>::new());
    }

    #[test]
    fn an_entry_matching_no_case_run_on_its_engines_is_reported() {
        let text = r#"
[[failure]]
engine = ["a", "b"]
case = "strings/gone*"
rule = "r"
evidence = "x"

[[failure]]
engine = "a"
case = "strings/*"
rule = "r"
evidence = "x"

[[skip]]
engine = "c"
case = "lists/gone"
reason = "c did not run"
"#;
        let file: File = toml::from_str(text).unwrap();
        let ex = Expectations { failures: file.failure, skips: file.skip, ..Expectations::default() };
        let ran = [("a", "strings", "kept"), ("reference", "strings", "gone case"), ("b", "lists", "gone")];
        // Only the first entry: its engines ran, but not on a case it names (the reference
        // row does not count); the third names an engine that did not run.
        assert_eq!(
            ex.unused(ran.iter().copied()),
            vec![r#": [[failure]] case = "strings/gone*" matches no case run on a, b"#]
        );
    }
}
