//! Two scripted guests composed into one component (`wasmtime-fused`): a caller guest whose
//! imports are the callee guest's exports, each guest with its own memory and string encoding,
//! so every value crosses Wasmtime's fused adapters (all 9 encoding pairs over the campaign).
//! The reference side chains two guest models: the caller's import call lifts the arguments
//! from the caller and calls the callee (`canon_lower` then `canon_lift`), and the results
//! travel back the same way.

use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use wasm_encoder::ComponentExportKind;
use wasmtime::component::{Component, ComponentExportIndex, Func, Linker, Val};
use wasmtime::{Config, Store};
use wit_parser::{Function, FunctionKind, WorldItem, WorldKey};

use super::host::{Forward, HostState, call_export};
use super::sim::{SimGuest, load_script, read_log};
use super::wasmtime_component::{FUEL, classify};
use super::{Case, HostEvent, Outcome, Prepared, Step};
use crate::encode::compose::compose;
use crate::encode::guest::{CALLER_CONTROL_PACKAGE, EntryKind, ImportKind, LOAD_CHUNK, control_interface};
use crate::encode::names::NameScheme;
use crate::encode::script::{Script, parse_log};
use crate::reference::types::StringEncoding;
use crate::reference::value::Value;
use crate::reference::{Trap, TrapKind};
use crate::world::wit::Wit;

/// The composition engine's name (it runs fused cases, not plain ones).
pub const FUSED: &str = "wasmtime-fused";

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
        caller.imports.extend(links.iter().cloned());
        let run = Function {
            name: "run".into(),
            kind: FunctionKind::Freestanding,
            params: vec![],
            result: None,
            docs: Default::default(),
            stability: Default::default(),
            span: Default::default(),
            external_id: None,
        };
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
            .spec
            .imports
            .iter()
            .map(|imp| match &imp.kind {
                ImportKind::Func { interface, func } => callee
                    .spec
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
}

/// The callee behind the caller's imports, for the reference model.
struct Callee {
    prepared: Arc<Prepared>,
    host: HostState,
    guest: SimGuest,
    thunk_to_export: Vec<Option<u32>>,
}

impl Forward for Callee {
    fn call(&mut self, thunk: u32, args: Vec<Value>) -> Result<Option<Value>, Trap> {
        let k =
            self.thunk_to_export.get(thunk as usize).copied().flatten().ok_or_else(|| {
                Trap::new(TrapKind::Assertion, format!("caller import {thunk} reaches no callee export"))
            })?;
        call_export(&mut self.host, &mut self.guest, &self.prepared, k, &args)
    }

    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// An engine that runs fused cases.
pub trait FusedEngine {
    fn name(&self) -> &'static str;
    fn run(&mut self, case: &FusedCase) -> Result<Outcome>;
}

/// Instantiate fused engine `name` (`reference` or `wasmtime-fused`) for `prepared`.
pub fn make_fused_engine<'p>(name: &str, prepared: &'p FusedPrepared) -> Result<Box<dyn FusedEngine + 'p>> {
    Ok(match name {
        "reference" => Box::new(SimFused::new(prepared)),
        FUSED => Box::new(WasmtimeFused::new(prepared)?),
        other => bail!("engine `{other}` does not run fused cases (reference, {FUSED})"),
    })
}

/// The reference for fused cases: caller model → reference canon_lower/canon_lift → callee model.
pub struct SimFused<'p> {
    prepared: &'p FusedPrepared,
}

impl<'p> SimFused<'p> {
    pub fn new(prepared: &'p FusedPrepared) -> SimFused<'p> {
        SimFused { prepared }
    }
}

impl FusedEngine for SimFused<'_> {
    fn name(&self) -> &'static str {
        "reference"
    }

    fn run(&mut self, case: &FusedCase) -> Result<Outcome> {
        let fp = self.prepared;
        let mut callee = Callee {
            prepared: fp.callee.clone(),
            host: HostState::new(&fp.callee),
            guest: SimGuest::new(Arc::new(fp.callee.spec.clone())),
            thunk_to_export: fp.thunk_to_export.clone(),
        };
        load_script(&mut callee.guest, &mut callee.host, &fp.callee, &case.callee)?;
        let mut caller_guest = SimGuest::new(Arc::new(fp.caller.spec.clone()));
        let mut caller_host = HostState::new(&fp.caller);
        load_script(&mut caller_guest, &mut caller_host, &fp.caller, &case.caller.script)?;
        caller_host.forward = Some(Box::new(callee));
        let mut outcome = Outcome::default();
        for step in &case.caller.steps {
            let Step::Call(call) = step else { bail!("fused cases only call") };
            match call_export(&mut caller_host, &mut caller_guest, &fp.caller, call.export, &call.args) {
                Ok(result) => outcome.events.push(HostEvent::Returned { export: call.export, result }),
                Err(t) if t.kind == TrapKind::Assertion => bail!("harness assertion: {t}"),
                Err(t) => {
                    outcome.trap = Some(t);
                    break;
                }
            }
        }
        if outcome.trap.is_none() {
            outcome.log = Some(read_log(&mut caller_guest, &mut caller_host, &fp.caller)?);
            let mut forward = caller_host.forward.take();
            let callee = forward
                .as_mut()
                .and_then(|f| f.as_any().downcast_mut::<Callee>())
                .ok_or_else(|| anyhow!("callee lost"))?;
            outcome.callee_log = Some(read_log(&mut callee.guest, &mut callee.host, &callee.prepared)?);
        }
        Ok(outcome)
    }
}

/// `wasmtime-fused`: the composite on Wasmtime.
pub struct WasmtimeFused {
    engine: wasmtime::Engine,
    pre: wasmtime::component::InstancePre<wasmtime::StoreLimits>,
    run: ComponentExportIndex,
    caller_control: [ComponentExportIndex; 3],
    callee_control: [ComponentExportIndex; 3],
}

impl WasmtimeFused {
    pub fn new(prepared: &FusedPrepared) -> Result<WasmtimeFused> {
        let mut config = Config::new();
        config.wasm_component_model(true).consume_fuel(true);
        let engine = wasmtime::Engine::new(&config)?;
        let component = Component::new(&engine, &prepared.composite)
            .map_err(|e| anyhow!("Wasmtime rejects the composite: {e:#}"))?;
        let linker = Linker::<wasmtime::StoreLimits>::new(&engine);
        let pre = linker.instantiate_pre(&component).map_err(|e| anyhow!("{e:#}"))?;
        let index = |parent: Option<&str>, name: &str| -> Result<ComponentExportIndex> {
            let parent = match parent {
                Some(p) => Some(component.get_export_index(None, p).ok_or_else(|| anyhow!("no export {p}"))?),
                None => None,
            };
            component.get_export_index(parent.as_ref(), name).ok_or_else(|| anyhow!("no export {name}"))
        };
        let control = |p: &Prepared| -> Result<[ComponentExportIndex; 3]> {
            let iface = control_interface(&p.wit.resolve, p.world)?;
            let name = p.wit.resolve.id_of(iface).ok_or_else(|| anyhow!("control interface without a name"))?;
            Ok([index(Some(&name), "reset")?, index(Some(&name), "load")?, index(Some(&name), "read-log")?])
        };
        Ok(WasmtimeFused {
            run: index(None, "run")?,
            caller_control: control(&prepared.caller)?,
            callee_control: control(&prepared.callee)?,
            engine,
            pre,
        })
    }
}

fn func(
    store: &mut Store<wasmtime::StoreLimits>,
    instance: &wasmtime::component::Instance,
    idx: &ComponentExportIndex,
) -> Result<Func> {
    instance.get_func(&mut *store, idx).ok_or_else(|| anyhow!("export is not a function"))
}

fn control_call(store: &mut Store<wasmtime::StoreLimits>, f: Func, args: &[Val], results: &mut [Val]) -> Result<()> {
    f.call(&mut *store, args, results).map_err(|e| anyhow!("control call trapped: {e:#}"))
}

fn wasmtime_load(
    store: &mut Store<wasmtime::StoreLimits>,
    instance: &wasmtime::component::Instance,
    control: &[ComponentExportIndex; 3],
    script: &Script,
) -> Result<()> {
    let reset = func(store, instance, &control[0])?;
    control_call(store, reset, &[], &mut [])?;
    let load = func(store, instance, &control[1])?;
    for (i, chunk) in script.control_image()?.chunks(LOAD_CHUNK).enumerate() {
        let mut padded = chunk.to_vec();
        padded.resize(LOAD_CHUNK, 0);
        let mut args = vec![Val::U32((i * LOAD_CHUNK) as u32)];
        args.extend(padded.chunks(8).map(|w| Val::U64(u64::from_le_bytes(w.try_into().unwrap()))));
        control_call(store, load, &args, &mut [])?;
    }
    Ok(())
}

fn wasmtime_read_log(
    store: &mut Store<wasmtime::StoreLimits>,
    instance: &wasmtime::component::Instance,
    control: &[ComponentExportIndex; 3],
) -> Result<Vec<crate::encode::script::Event>> {
    let mut out = [Val::Bool(false)];
    let read = func(store, instance, &control[2])?;
    control_call(store, read, &[], &mut out)?;
    let Val::List(bytes) = &out[0] else { bail!("read-log returned {:?}", out[0]) };
    let bytes: Vec<u8> = bytes.iter().map(|b| if let Val::U8(b) = b { *b } else { 0 }).collect();
    parse_log(&bytes)
}

impl FusedEngine for WasmtimeFused {
    fn name(&self) -> &'static str {
        FUSED
    }

    fn run(&mut self, case: &FusedCase) -> Result<Outcome> {
        let limits = wasmtime::StoreLimitsBuilder::new().memory_size(super::MEMORY_LIMIT).build();
        let mut store = Store::new(&self.engine, limits);
        store.limiter(|limits| limits);
        store.set_fuel(FUEL)?;
        store.set_max_component_handles(1 << 28);
        let instance = self.pre.instantiate(&mut store).map_err(|e| anyhow!("instantiating the composite: {e:#}"))?;
        wasmtime_load(&mut store, &instance, &self.callee_control, &case.callee)?;
        wasmtime_load(&mut store, &instance, &self.caller_control, &case.caller.script)?;
        let mut outcome = Outcome::default();
        let run = func(&mut store, &instance, &self.run)?;
        match run.call(&mut store, &[], &mut []) {
            Ok(()) => outcome.events.push(HostEvent::Returned { export: 0, result: None }),
            Err(e) => outcome.trap = Some(classify(&e)),
        }
        if outcome.trap.is_none() {
            outcome.log = Some(wasmtime_read_log(&mut store, &instance, &self.caller_control)?);
            outcome.callee_log = Some(wasmtime_read_log(&mut store, &instance, &self.callee_control)?);
        }
        Ok(outcome)
    }
}
