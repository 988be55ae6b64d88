//! `witness adapter`: serve the adapter protocol (adapters/PROTOCOL.md) on stdin/stdout from the
//! embedded Wasmtime, so `--engines 'process:witness adapter'` runs the suites end to end
//! through the protocol.

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct AdapterArgs {}

pub fn run(_: AdapterArgs) -> Result<()> {
    crate::adapter::server::serve(std::io::BufReader::new(std::io::stdin()), std::io::stdout())
}
