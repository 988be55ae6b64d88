//! Componentization: the scripted guest core module plus its world, through wit-component.

use anyhow::{Context as _, Result};
use wit_component::{ComponentEncoder, StringEncoding as WcEncoding};
use wit_parser::{Resolve, WorldId};

use super::names::NameScheme;
use crate::reference::types::StringEncoding;

fn wc_encoding(e: StringEncoding) -> WcEncoding {
    match e {
        StringEncoding::Utf8 => WcEncoding::UTF8,
        StringEncoding::Utf16 => WcEncoding::UTF16,
        StringEncoding::Latin1Utf16 => WcEncoding::CompactUTF16,
    }
}

/// Embed `world` (with the guest's string encoding) into `core` and encode a component.
pub fn componentize(
    resolve: &Resolve,
    world: WorldId,
    core: &[u8],
    encoding: StringEncoding,
    scheme: NameScheme,
) -> Result<Vec<u8>> {
    let mut module = core.to_vec();
    wit_component::embed_component_metadata(&mut module, resolve, world, wc_encoding(encoding))
        .context("embedding the world into the guest")?;
    ComponentEncoder::default()
        .validate(true)
        .reject_legacy_names(scheme == NameScheme::Standard)
        .module(&module)
        .context("wit-component rejects the guest module")?
        .encode()
        .context("wit-component cannot encode the guest component")
}
