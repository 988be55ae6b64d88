//! Engines: what the command line (`--engine`) and the runs select. An engine is a registered
//! runtime (`runtime::REGISTRY`), plain or in its composition mode (`NAME-fused`), or a runtime
//! behind an adapter process (`process:CMD`, `process-core:CMD`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::adapter::client::{Kind, ProcessRuntime};
use crate::adapter::process::DEFAULT_TIMEOUT;
use crate::runtime::{Artifact, Compiled, FUSED_SUFFIX, REGISTRY, Registered, Role, Runtime, fused_name};

/// A runtime as the command line selects it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// An embedded runtime on plain worlds, or (`fused`) on compositions only.
    Embedded { name: &'static str, fused: bool },
    /// `process:CMD` (components) or `process-core:CMD` (core modules): an adapter, and how
    /// long one line to or from it may take.
    Process { command: String, kind: Kind, timeout: Duration },
}

impl Selection {
    pub fn parse(arg: &str) -> Result<Selection> {
        if let Some(command) = arg.strip_prefix("process:") {
            return Ok(Selection::Process { command: command.into(), kind: Kind::Component, timeout: DEFAULT_TIMEOUT });
        }
        if let Some(command) = arg.strip_prefix("process-core:") {
            return Ok(Selection::Process { command: command.into(), kind: Kind::Module, timeout: DEFAULT_TIMEOUT });
        }
        let (base, fused) = match arg.strip_suffix(FUSED_SUFFIX) {
            Some(base) => (base, true),
            None => (arg, false),
        };
        match REGISTRY.iter().find(|r| r.name == base && (!fused || r.compositions)) {
            Some(r) => Ok(Selection::Embedded { name: r.name, fused }),
            None => {
                bail!("unknown engine `{arg}` (known: {}, process:CMD, process-core:CMD)", known_names().join(", "))
            }
        }
    }

    /// `parse_args`, with adapters given `timeout` seconds a line (`--adapter-timeout`).
    pub fn parse_args_with(args: &[String], timeout: Option<u64>) -> Result<Vec<Selection>> {
        let mut out = Selection::parse_args(args)?;
        for s in &mut out {
            if let (Selection::Process { timeout: t, .. }, Some(secs)) = (s, timeout) {
                *t = Duration::from_secs(secs);
            }
        }
        Ok(out)
    }

    /// Engine arguments as given on the command line: embedded names may be comma-separated;
    /// a `process:CMD` or `process-core:CMD` argument is one engine whatever its command holds.
    pub fn parse_args(args: &[String]) -> Result<Vec<Selection>> {
        let mut out = vec![];
        for a in args {
            if a.starts_with("process:") || a.starts_with("process-core:") {
                out.push(Selection::parse(a)?);
            } else {
                for s in a.split(',').filter(|s| !s.is_empty()) {
                    out.push(Selection::parse(s)?);
                }
            }
        }
        Ok(out)
    }

    /// The default selection: every default runtime, and its compositions where it has them.
    pub fn defaults() -> Vec<Selection> {
        let default = |r: &&Registered| r.role == Role::Default;
        let plain = REGISTRY.iter().filter(default).map(|r| Selection::Embedded { name: r.name, fused: false });
        let fused = REGISTRY
            .iter()
            .filter(default)
            .filter(|r| r.compositions)
            .map(|r| Selection::Embedded { name: r.name, fused: true });
        plain.chain(fused).collect()
    }

    /// Every embedded runtime but the reference, and every composition mode.
    pub fn all() -> Vec<Selection> {
        let plain = REGISTRY
            .iter()
            .filter(|r| r.role != Role::Reference)
            .map(|r| Selection::Embedded { name: r.name, fused: false });
        let fused =
            REGISTRY.iter().filter(|r| r.compositions).map(|r| Selection::Embedded { name: r.name, fused: true });
        plain.chain(fused).collect()
    }

    /// The reference.
    pub fn reference() -> Selection {
        let r = REGISTRY.iter().find(|r| r.role == Role::Reference).expect("the registry has the reference");
        Selection::Embedded { name: r.name, fused: false }
    }

    /// An embedded runtime whose Canonical ABI is the reference's (`Registered::reference_abi`).
    pub fn reference_abi(&self) -> bool {
        match self {
            Selection::Embedded { name, .. } => REGISTRY.iter().any(|r| r.name == *name && r.reference_abi),
            Selection::Process { .. } => false,
        }
    }

    /// Runs compositions (and nothing else).
    pub fn fused(&self) -> bool {
        matches!(self, Selection::Embedded { fused: true, .. })
    }

    /// The runtime.
    pub fn runtime(&self) -> Box<dyn Runtime> {
        match self {
            Selection::Embedded { name, .. } => {
                let r = REGISTRY.iter().find(|r| r.name == *name).expect("selections name registered runtimes");
                (r.make)()
            }
            Selection::Process { command, kind, timeout } => Box::new(ProcessRuntime::new(command, *kind, *timeout)),
        }
    }
}

impl Selection {
    /// As a shell command line names it (quoted where it holds a space).
    pub fn shell_arg(&self) -> String {
        let arg = self.to_string();
        if arg.contains(' ') { format!("'{arg}'") } else { arg }
    }
}

impl std::fmt::Display for Selection {
    /// As the command line names it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::Embedded { name, fused: false } => f.write_str(name),
            Selection::Embedded { name, fused: true } => f.write_str(&fused_name(name)),
            Selection::Process { command, kind: Kind::Component, .. } => write!(f, "process:{command}"),
            Selection::Process { command, kind: Kind::Module, .. } => write!(f, "process-core:{command}"),
        }
    }
}

/// Every embedded name a selection may use, compositions included.
pub fn known_names() -> Vec<String> {
    let plain = REGISTRY.iter().map(|r| r.name.to_string());
    let fused = REGISTRY.iter().filter(|r| r.compositions).map(|r| fused_name(r.name));
    plain.chain(fused).collect()
}

/// Compile `artifact` on the runtime `selection` names.
pub fn compile(selection: &Selection, artifact: &Arc<Artifact>) -> Result<Box<dyn Compiled>> {
    selection.runtime().compile(artifact.clone())
}
