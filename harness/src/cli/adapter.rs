//! `witness adapter`: serve the adapter protocol (adapters/PROTOCOL.md) on stdin/stdout from
//! an embedded runtime, so `--engine 'process:witness adapter'` runs the suites end to end
//! through the protocol.

use anyhow::{Result, bail};
use clap::Args;

use crate::adapter::server::{Served, serve};
use crate::engine::Selection;

#[derive(Args)]
pub struct AdapterArgs {
    /// The embedded runtime that serves components and core modules alike (default: `wasmtime`
    /// for components, `core` for core modules).
    #[arg(long)]
    engine: Option<String>,
}

pub fn run(args: AdapterArgs) -> Result<()> {
    let runtime = |name: &str| -> Result<_> {
        match Selection::parse(name)? {
            s @ Selection::Embedded { fused: false, .. } => Ok(s.runtime()),
            _ => bail!("`{name}`: witness adapter serves an embedded runtime"),
        }
    };
    let component = args.engine.as_deref().unwrap_or(crate::runtime::wasmtime::NAME);
    let module = args.engine.as_deref().unwrap_or(crate::runtime::wasmi::NAME);
    let asynchronous = crate::runtime::REGISTRY.iter().any(|r| r.name == component && r.asynchronous);
    let served = Served { component: runtime(component)?, module: runtime(module)?, asynchronous };
    serve(served, std::io::BufReader::new(std::io::stdin()), std::io::stdout())
}
