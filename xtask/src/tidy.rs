//! `cargo xtask tidy`: what keeps the house clean, checked. rustfmt and clippy (warnings are
//! errors), then ARCHITECTURE.md's two promises: the dependency rule (its `layers` block: a
//! module uses only the modules of the layers above its own) and the code map (its `text`
//! block names every `.rs` file the repository tracks, and every `.rs` file it names exists).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, anyhow, bail};

/// The first fenced block of `markdown` whose info string is `tag`.
fn fenced<'a>(markdown: &'a str, tag: &str) -> Result<Vec<&'a str>> {
    let mut lines = markdown.lines();
    lines
        .by_ref()
        .find(|l| l.trim() == format!("```{tag}"))
        .ok_or_else(|| anyhow!("ARCHITECTURE.md has no ```{tag} block"))?;
    Ok(lines.take_while(|l| l.trim() != "```").collect())
}

/// The layer of each top-level module, 0 the lowest, from the `layers` block.
pub fn layers(markdown: &str) -> Result<BTreeMap<String, usize>> {
    let mut out = BTreeMap::new();
    for (rank, line) in fenced(markdown, "layers")?.iter().enumerate() {
        for module in line.split_whitespace() {
            if out.insert(module.to_string(), rank).is_some() {
                bail!("the layers block names `{module}` twice");
            }
        }
    }
    Ok(out)
}

/// The top-level modules a source file names through `crate::` (comments left out), with
/// the line of each.
pub fn crate_uses(source: &str) -> Vec<(usize, String)> {
    let mut out = vec![];
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::x, b}`: the first segment of each item, up to the closing brace
                // (a group spanning lines is read on its first line only).
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let name = item.trim().split("::").next().unwrap_or("").trim();
                    if !name.is_empty() {
                        out.push((n + 1, name.to_string()));
                    }
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.push((n + 1, name));
                }
            }
        }
    }
    out
}

/// The top-level module a file of `src/` belongs to (`None`: the crate root files).
fn module_of(relative: &Path) -> Option<String> {
    let mut parts = relative.components();
    let first = parts.next()?.as_os_str().to_str()?;
    match (first.strip_suffix(".rs"), parts.next()) {
        (Some("lib" | "main"), None) => None,
        (Some(stem), None) => Some(stem.to_string()),
        (None, Some(_)) => Some(first.to_string()),
        _ => None,
    }
}

/// Every use of a module against the rule: `file:line: a uses b`.
pub fn rule_breaks(files: &[(String, String)], layers: &BTreeMap<String, usize>) -> Vec<String> {
    let mut out = vec![];
    for (path, source) in files {
        let Some(module) = module_of(Path::new(path)) else { continue };
        let Some(&own) = layers.get(&module) else {
            out.push(format!("{path}: module `{module}` is in no layer of ARCHITECTURE.md"));
            continue;
        };
        for (line, used) in crate_uses(source) {
            if used == module {
                continue;
            }
            match layers.get(&used) {
                Some(&rank) if rank < own => {}
                Some(_) => {
                    out.push(format!("{path}:{line}: `{module}` uses `{used}`, which is not in a layer above it"))
                }
                None => out.push(format!("{path}:{line}: `{module}` uses `{used}`, which is in no layer")),
            }
        }
    }
    out
}

/// The paths the `text` code map names: one entry a line, nested by indentation (two spaces
/// a level); a directory ends with `/`; lines that continue a description are indented deeper
/// and start with no path.
pub fn code_map(markdown: &str) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    // (indent, directory path) of the directories enclosing the current line.
    let mut dirs: Vec<(usize, String)> = vec![];
    for line in fenced(markdown, "text")? {
        let indent = line.len() - line.trim_start().len();
        let Some(name) = line.split_whitespace().next() else { continue };
        let is_dir = name.ends_with('/');
        let is_file = name.rsplit_once('.').is_some_and(|(stem, ext)| {
            !stem.is_empty() && !ext.is_empty() && ext.chars().all(|c| c.is_ascii_lowercase())
        });
        let is_path = name.chars().all(|c| c.is_alphanumeric() || "._-/".contains(c));
        if !(is_path && (is_dir || is_file)) {
            continue;
        }
        while dirs.last().is_some_and(|(i, _)| *i >= indent) {
            dirs.pop();
        }
        let path = format!("{}{name}", dirs.last().map_or("", |(_, d)| d.as_str()));
        if is_dir {
            dirs.push((indent, path));
        } else {
            out.insert(path);
        }
    }
    Ok(out)
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(name: &str, mut cmd: Command) -> Result<bool> {
    eprintln!("== {name}");
    let ok = cmd.status().with_context(|| format!("cannot run {name}"))?.success();
    if !ok {
        eprintln!("== {name}: FAILED");
    }
    Ok(ok)
}

/// Run every check from the repository `root`; `Ok(false)` if one fails.
pub fn tidy(root: &Path) -> Result<bool> {
    let mut ok = true;
    let mut fmt = cargo();
    fmt.current_dir(root).args(["fmt", "--all", "--", "--check"]);
    ok &= run("rustfmt (workspace)", fmt)?;
    let mut fmt = cargo();
    fmt.current_dir(root.join("fuzz")).args(["fmt", "--all", "--", "--check"]);
    ok &= run("rustfmt (fuzz)", fmt)?;
    let mut clippy = cargo();
    clippy.current_dir(root).args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]);
    ok &= run("clippy", clippy)?;

    eprintln!("== ARCHITECTURE.md: the dependency rule and the code map");
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).context("reading ARCHITECTURE.md")?;
    let listed = Command::new("git")
        .current_dir(root)
        .args(["ls-files", "--cached", "--others", "--exclude-standard", "*.rs"])
        .output()
        .context("cannot run git ls-files")?;
    let tracked: BTreeSet<String> =
        String::from_utf8(listed.stdout)?.lines().filter(|p| root.join(p).exists()).map(str::to_string).collect();
    let mut problems = vec![];
    let src = root.join("harness/src");
    let mut sources = vec![];
    for path in tracked.iter().filter_map(|p| p.strip_prefix("harness/src/")) {
        let source = std::fs::read_to_string(src.join(path)).with_context(|| format!("reading {path}"))?;
        sources.push((path.to_string(), source));
    }
    problems.extend(rule_breaks(&sources, &layers(&architecture)?).into_iter().map(|p| format!("harness/src/{p}")));
    let mapped = code_map(&architecture)?;
    for path in tracked.difference(&mapped) {
        problems.push(format!("{path}: not in ARCHITECTURE.md's code map"));
    }
    for path in mapped.iter().filter(|p| p.ends_with(".rs")).filter(|p| !tracked.contains(*p)) {
        problems.push(format!("{path}: in ARCHITECTURE.md's code map, but there is no such file"));
    }
    for p in &problems {
        eprintln!("  {p}");
    }
    if !problems.is_empty() {
        eprintln!("== ARCHITECTURE.md: FAILED ({} problems)", problems.len());
    }
    Ok(ok && problems.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "intro\n\n```layers\nreference\nworld encode\ncli\n```\n\n```text\nCargo.toml   the workspace\nharness/     the crate\n  src/\n    lib.rs     modules\n    reference/ the mirror\n      mod.rs   sections\n               continued: names like a.rs here are prose\n    cli.rs     the CLI\n  tests/\n    t.rs\nxtask/\n  src/\n    main.rs\n```\n";

    #[test]
    fn layers_rank_each_module_by_its_line() {
        let l = layers(DOC).unwrap();
        assert_eq!((l["reference"], l["world"], l["encode"], l["cli"]), (0, 1, 1, 2));
        assert!(layers("```layers\na\na\n```\n").is_err(), "a module named twice");
        assert!(layers("no block").is_err());
    }

    #[test]
    fn crate_uses_reads_paths_and_groups_not_comments() {
        let src = "use crate::world::wit::Wit;\nuse crate::{encode::x, cli};\n// crate::smith in a comment\nlet a = crate::diff::f(); // crate::suite\n";
        let uses = crate_uses(src);
        let got: Vec<(usize, &str)> = uses.iter().map(|(n, m)| (*n, m.as_str())).collect();
        assert_eq!(got, vec![(1, "world"), (2, "encode"), (2, "cli"), (4, "diff")]);
    }

    #[test]
    fn a_use_of_the_same_layer_or_below_breaks_the_rule() {
        let l = layers(DOC).unwrap();
        let files = vec![
            ("reference/mod.rs".to_string(), "use crate::reference::x;".to_string()),
            ("world/wit.rs".to_string(), "use crate::reference::x; use crate::encode::y;".to_string()),
            ("cli.rs".to_string(), "use crate::world::x;".to_string()),
            ("encode.rs".to_string(), "use crate::cli::x; use crate::nowhere::y;".to_string()),
            ("lib.rs".to_string(), "use crate::cli::x;".to_string()),
            ("stray.rs".to_string(), String::new()),
        ];
        let breaks = rule_breaks(&files, &l);
        assert_eq!(breaks.len(), 4, "{breaks:#?}");
        assert!(breaks[0].starts_with("world/wit.rs:1: `world` uses `encode`"));
        assert!(breaks[1].starts_with("encode.rs:1: `encode` uses `cli`"));
        assert!(breaks[2].contains("`nowhere`, which is in no layer"));
        assert!(breaks[3].starts_with("stray.rs: module `stray` is in no layer"));
    }

    #[test]
    fn the_code_map_nests_by_indentation_and_skips_prose() {
        let got = code_map(DOC).unwrap();
        let want: BTreeSet<String> = [
            "Cargo.toml",
            "harness/src/lib.rs",
            "harness/src/reference/mod.rs",
            "harness/src/cli.rs",
            "harness/tests/t.rs",
            "xtask/src/main.rs",
        ]
        .into_iter()
        .map(str::to_string)
        .collect();
        assert_eq!(got, want);
    }
}
