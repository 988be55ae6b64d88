//! Two scripted guests composed into one component (`wasmtime-fused`): a caller guest whose
//! imports are the callee guest's exports, each guest with its own memory and string encoding,
//! so every value crosses a runtime's fused adapters (all 9 encoding pairs over the campaign).
//! Its artifact is the composite, run by the same runtimes as any world; the reference models
//! both guests and chains them (`canon_lower` in the caller, then `canon_lift` of the callee).

use std::sync::{Arc, OnceLock};

use anyhow::{Result, anyhow, bail};
use wasm_encoder::ComponentExportKind;
use wit_parser::{InterfaceId, WorldItem, WorldKey};

use super::artifact::{Artifact, Composition, Model, add_control};
use super::{Case, Prepared, Unsupported};
use crate::encode::compose::compose;
use crate::encode::guest::{CALLER_CONTROL_PACKAGE, EntryKind, ImportKind, control_interface};
use crate::encode::names::NameScheme;
use crate::encode::script::Script;
use crate::reference::types::StringEncoding;
use crate::world::wit::{Wit, nullary_function};

/// A world prepared for composition: the callee implements its exports (imports removed),
/// the caller imports them and exports `run`.
pub struct FusedPrepared {
    pub callee: Arc<Prepared>,
    pub caller: Prepared,
    pub composite: Vec<u8>,
    /// For each caller import thunk, the callee's function export it reaches.
    pub thunk_to_export: Vec<Option<u32>>,
}

/// A fused case: the caller's case (one call of `run`) and the callee's script.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FusedCase {
    pub caller: Case,
    pub callee: Script,
}

impl FusedPrepared {
    /// Compose world `world` of `text` (its only world when `None`).
    pub fn new(
        text: &str,
        world: Option<&str>,
        scheme: NameScheme,
        caller_enc: StringEncoding,
        callee_enc: StringEncoding,
    ) -> Result<FusedPrepared> {
        let mut wit = Wit::parse("world.wit", text)?;
        let w = wit.world(world)?;
        let resolve = &mut wit.resolve;
        // New worlds, leaving `w` as it is. The callee serves nothing but `w`'s exported
        // interfaces (world-level functions and their types belong to `w`, which another world
        // cannot share); the caller imports them and exports `run`.
        let mut callee = resolve.worlds[w].clone();
        callee.name = "callee".into();
        callee.imports.clear();
        callee.exports.retain(|_, item| matches!(item, WorldItem::Interface { .. }));
        let mut caller = callee.clone();
        caller.name = "caller".into();
        let w = resolve.worlds.alloc(callee);
        if let Some(pkg) = resolve.worlds[w].package {
            resolve.packages[pkg].worlds.insert("callee".into(), w);
        }
        let links: Vec<(WorldKey, WorldItem)> =
            resolve.worlds[w].exports.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if links.is_empty() {
            bail!("the world exports nothing to compose");
        }
        // An exported interface that `use`s an imported one (wasi:http's incoming-handler uses
        // wasi:http/types) needs the composite to pass that import through to both guests,
        // which `compose` does not do yet.
        let exported: Vec<InterfaceId> = links
            .iter()
            .filter_map(|(_, item)| match item {
                WorldItem::Interface { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        for &id in &exported {
            if let Some(dep) = resolve.interface_direct_deps(id).find(|d| !exported.contains(d)) {
                let name = |i: InterfaceId| resolve.id_of(i).unwrap_or_else(|| "an unnamed interface".into());
                bail!(Unsupported {
                    engine: String::new(),
                    reason: format!(
                        "compositions of a world whose export `{}` uses imported interface `{}` are not built yet",
                        name(id),
                        name(dep)
                    ),
                });
            }
        }
        caller.imports.extend(links.iter().cloned());
        let run = nullary_function("run");
        caller.exports = [(WorldKey::Name("run".into()), WorldItem::Function(run))].into_iter().collect();
        let caller_world = resolve.worlds.alloc(caller);
        if let Some(pkg) = resolve.worlds[w].package {
            resolve.packages[pkg].worlds.insert("caller".into(), caller_world);
        }
        let callee = Arc::new(Prepared::with_control(
            Wit { resolve: wit.resolve.clone(), package: wit.package },
            w,
            scheme,
            callee_enc,
            crate::encode::guest::CONTROL_PACKAGE,
        )?);
        let caller = Prepared::with_control(wit, caller_world, scheme, caller_enc, CALLER_CONTROL_PACKAGE)?;
        let link_names: Vec<(String, ComponentExportKind)> = links
            .iter()
            .map(|(k, item)| {
                let kind = if matches!(item, WorldItem::Function(_)) {
                    ComponentExportKind::Func
                } else {
                    ComponentExportKind::Instance
                };
                (callee.wit.resolve.name_world_key(k), kind)
            })
            .collect();
        let control = |p: &Prepared| -> Result<String> {
            let iface = control_interface(&p.wit.resolve, p.world)?;
            p.wit.resolve.id_of(iface).ok_or_else(|| anyhow!("control interface without a name"))
        };
        let composite = compose(
            &callee.component,
            &caller.component,
            &link_names,
            &[("run".into(), ComponentExportKind::Func), (control(&caller)?, ComponentExportKind::Instance)],
            &control(&callee)?,
        )?;
        let thunk_to_export = caller
            .guest
            .imports
            .iter()
            .map(|imp| match &imp.kind {
                ImportKind::Func { interface, func } => callee
                    .guest
                    .exports
                    .iter()
                    .filter(|e| matches!(e.kind, EntryKind::Func { .. }))
                    .position(
                        |e| matches!(&e.kind, EntryKind::Func { interface: i, func: f } if i == interface && f == func),
                    )
                    .map(|k| k as u32),
                _ => None,
            })
            .collect();
        Ok(FusedPrepared { callee, caller, composite, thunk_to_export })
    }

    /// The composite as an artifact: the caller's exports (`run`) and both guests' control
    /// functions, no imports, no core module; the reference models the two guests.
    pub fn artifact(&self) -> Result<Artifact> {
        let caller = Arc::new(Artifact::of(&self.caller)?);
        let callee = Arc::new(Artifact::of(&self.callee)?);
        let mut exports = caller.exports.clone();
        let guests = vec![caller.guests[0], add_control(&mut exports, &self.callee)?];
        let guest = caller.model.as_ref().ok_or_else(|| anyhow!("the caller has no model"))?.guest.clone();
        let composition = Composition { caller: caller.clone(), callee, thunk_to_export: self.thunk_to_export.clone() };
        Ok(Artifact {
            component: Some(self.composite.clone()),
            core: None,
            encoding: caller.encoding,
            imports: vec![],
            exports,
            guests,
            resources: vec![],
            dtors: vec![],
            model: Some(Model { guest, composition: Some(composition) }),
            import_types: OnceLock::new(),
        })
    }
}
