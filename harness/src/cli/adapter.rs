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
    let served = match &args.engine {
        Some(name) => Served { component: runtime(name)?, module: runtime(name)? },
        None => Served {
            component: runtime(crate::runtime::wasmtime::NAME)?,
            module: runtime(crate::runtime::wasmi::NAME)?,
        },
    };
    serve(served, std::io::BufReader::new(std::io::stdin()), std::io::stdout())
}
