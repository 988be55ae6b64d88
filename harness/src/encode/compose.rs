//! Composition of two scripted guests into one component (wasm-encoder): the callee is
//! instantiated first, the caller with the callee's exported interfaces as its imports, so
//! values between them cross Wasmtime's fused adapters (lift from one memory, lower into the
//! other, transcoding strings between the two guests' encodings).

use anyhow::{Context as _, Result};
use wasm_encoder::{
    Alias, Component, ComponentAliasSection, ComponentExportKind, ComponentExportSection, ComponentInstanceSection,
    ComponentSectionId, RawSection,
};

/// The index an alias of `kind` gets in its index space.
fn next_index(kind: ComponentExportKind, next_func: &mut u32, next_instance: &mut u32) -> u32 {
    let next = if kind == ComponentExportKind::Func { next_func } else { next_instance };
    *next += 1;
    *next - 1
}

/// The composite: `callee` instantiated with no imports; `caller` with the callee exports named
/// in `links` (instances or functions: the caller's imports, exported by the callee under the
/// same names).
/// It exports the caller's items `caller_exports` and the callee's instance `callee_control`.
pub fn compose(
    callee: &[u8],
    caller: &[u8],
    links: &[(String, ComponentExportKind)],
    caller_exports: &[(String, ComponentExportKind)],
    callee_control: &str,
) -> Result<Vec<u8>> {
    let mut c = Component::new();
    c.section(&RawSection { id: ComponentSectionId::Component as u8, data: callee });
    c.section(&RawSection { id: ComponentSectionId::Component as u8, data: caller });
    let mut next_instance = 0;
    let mut next_func = 0;
    let mut instances = ComponentInstanceSection::new();
    instances.instantiate(0, Vec::<(&str, ComponentExportKind, u32)>::new());
    c.section(&instances);
    let callee_instance = next_instance;
    next_instance += 1;
    // The callee's exported interfaces, as instances the caller is instantiated with.
    let mut aliases = ComponentAliasSection::new();
    let mut args = vec![];
    for (name, kind) in links {
        aliases.alias(Alias::InstanceExport { instance: callee_instance, kind: *kind, name });
        args.push((name.as_str(), *kind, next_index(*kind, &mut next_func, &mut next_instance)));
    }
    let control = next_instance;
    aliases.alias(Alias::InstanceExport {
        instance: callee_instance,
        kind: ComponentExportKind::Instance,
        name: callee_control,
    });
    next_instance += 1;
    c.section(&aliases);
    let mut instances = ComponentInstanceSection::new();
    instances.instantiate(1, args);
    c.section(&instances);
    let caller_instance = next_instance;
    next_instance += 1;
    let mut aliases = ComponentAliasSection::new();
    let mut exported = vec![];
    for (name, kind) in caller_exports {
        aliases.alias(Alias::InstanceExport { instance: caller_instance, kind: *kind, name });
        exported.push((name.as_str(), *kind, next_index(*kind, &mut next_func, &mut next_instance)));
    }
    c.section(&aliases);
    let mut exports = ComponentExportSection::new();
    for (name, kind, index) in exported {
        exports.export(name, kind, index, None);
    }
    exports.export(callee_control, ComponentExportKind::Instance, control, None);
    c.section(&exports);
    let bytes = c.finish();
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&bytes)
        .context("the composed component does not validate")?;
    Ok(bytes)
}
