//! `kind: component` in `witness adapter`: the component on Wasmtime, values converted
//! between the protocol's JSON and Wasmtime `Val`s through reference values. Host resources
//! are dynamic host resource types named by rep; guest resources the host receives are
//! numbered in the order received (adapters/PROTOCOL.md, "Resources").

use std::collections::HashMap;

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use serde_json::{Value as Json, json};
use wasmtime::component::{Component, ComponentExportIndex, Instance, InstancePre, Linker, ResourceAny, Val};
use wasmtime::{AsContextMut, Config, Store, StoreContextMut};

use super::json::{ResourceNames, value_from_json, value_to_json};
use super::server::{Compiled, Decl, RequestResources, Shared, call_args, decls, lock, trap_reply};
use crate::reference::types::{FuncType, ResourceType};
use crate::runtime::FUEL;
use crate::runtime::HarnessError;
use crate::runtime::wasmtime::{GuestSlots, StoreHandles, classify, from_val_with, to_val_with};

/// Store data: limits, and the guest resources the host holds.
struct Data {
    limits: wasmtime::StoreLimits,
    slots: Vec<Option<ResourceAny>>,
}

impl GuestSlots for Data {
    fn slots(&mut self) -> &mut Vec<Option<ResourceAny>> {
        &mut self.slots
    }
}

fn handles<'a, 's>(store: &'a mut StoreContextMut<'s, Data>) -> StoreHandles<'a, 's, Data> {
    StoreHandles { store }
}

pub(super) struct ServedComponent {
    engine: wasmtime::Engine,
    pre: InstancePre<Data>,
    exports: HashMap<(Option<String>, String), (ComponentExportIndex, FuncType)>,
    running: Option<(Store<Data>, Instance)>,
}

/// Define import `decl` on `linker` as a call back into witness.
fn define_import(linker: &mut Linker<Data>, io: &Shared, decl: Decl) -> Result<()> {
    let io = io.clone();
    let Decl { interface, name, ft, .. } = decl;
    let (iface, func) = (interface.clone(), name.clone());
    let host = move |mut store: StoreContextMut<'_, Data>,
                     _ty: wasmtime::component::types::ComponentFunc,
                     params: &[Val],
                     results: &mut [Val]|
          -> wasmtime::Result<()> {
        let harness = |e: anyhow::Error| wasmtime::Error::new(HarnessError(format!("{e:#}")));
        let args = ft
            .params
            .iter()
            .zip(params)
            .map(|((_, t), v)| value_to_json(t, &from_val_with(t, v, &mut handles(&mut store))?))
            .collect::<Result<Vec<_>>>()
            .map_err(harness)?;
        let v = lock(&io).import_call(iface.as_deref(), &func, args).map_err(harness)?;
        match (&ft.result, results.first_mut()) {
            (Some(t), Some(slot)) => {
                let v = value_from_json(t, &v).map_err(harness)?;
                *slot = to_val_with(t, &v, &mut handles(&mut store)).map_err(harness)?;
            }
            (None, None) => {}
            _ => return Err(harness(anyhow!("the import's result does not match its declaration"))),
        }
        Ok(())
    };
    match &interface {
        Some(i) => linker.instance(i)?.func_new(&name, host)?,
        None => linker.root().func_new(&name, host)?,
    }
    Ok(())
}

/// Define host resource `j` (an import-side resource type) on `linker`; its destructor is a
/// callback to witness.
fn define_resource(linker: &mut Linker<Data>, io: &Shared, j: &Json, rt: &ResourceType) -> Result<()> {
    let (io, resource) = (io.clone(), j.clone());
    let dtor = move |_store: StoreContextMut<'_, Data>, rep: u32| -> wasmtime::Result<()> {
        let message = json!({ "op": "dtor", "resource": resource, "rep": rep });
        lock(&io).callback(&message).map_err(|e| wasmtime::Error::new(HarnessError(format!("{e:#}"))))?;
        Ok(())
    };
    let ty = wasmtime::component::ResourceType::host_dynamic(rt.id);
    match j["interface"].as_str() {
        Some(i) => linker.instance(i)?.resource(&rt.name, ty, dtor)?,
        None => linker.root().resource(&rt.name, ty, dtor)?,
    }
    Ok(())
}

impl ServedComponent {
    pub(super) fn compile(io: &Shared, request: &Json) -> Result<ServedComponent> {
        let wasm = base64::engine::general_purpose::STANDARD
            .decode(request["wasm"].as_str().ok_or_else(|| anyhow!("`wasm` missing"))?)
            .context("`wasm` is not base64")?;
        let mut config = Config::new();
        config.wasm_component_model(true).consume_fuel(true);
        let engine = wasmtime::Engine::new(&config)?;
        let component = Component::new(&engine, &wasm).map_err(|e| anyhow!("Wasmtime rejects the component: {e:#}"))?;
        let mut linker = Linker::new(&engine);
        let mut names = RequestResources::default();
        for j in request["resources"].as_array().map_or(&[][..], Vec::as_slice) {
            let rt = names.resource_of(j)?;
            define_resource(&mut linker, io, j, &rt)?;
        }
        for decl in decls(request, "imports", &mut names)? {
            define_import(&mut linker, io, decl)?;
        }
        let pre = linker.instantiate_pre(&component).map_err(|e| anyhow!("{e:#}"))?;
        let mut exports = HashMap::new();
        for Decl { interface, name, ft, .. } in decls(request, "exports", &mut names)? {
            let parent = match &interface {
                Some(i) => Some(component.get_export_index(None, i).ok_or_else(|| anyhow!("no export {i}"))?),
                None => None,
            };
            let index =
                component.get_export_index(parent.as_ref(), &name).ok_or_else(|| anyhow!("no export {name}"))?;
            exports.insert((interface, name), (index, ft));
        }
        Ok(ServedComponent { engine, pre, exports, running: None })
    }
}

/// The reply to a Wasmtime call that failed: a trap, or an adapter error for a harness error.
fn failure_reply(e: &wasmtime::Error) -> Result<Json> {
    if let Some(h) = e.downcast_ref::<HarnessError>() {
        bail!("{h}");
    }
    Ok(trap_reply(&classify(e)))
}

impl Compiled for ServedComponent {
    fn instantiate(&mut self) -> Result<()> {
        self.running = None;
        let limits = wasmtime::StoreLimitsBuilder::new().memory_size(crate::runtime::MEMORY_LIMIT).build();
        let mut store = Store::new(&self.engine, Data { limits, slots: vec![] });
        store.limiter(|d| &mut d.limits);
        store.set_fuel(FUEL)?;
        // The spec's handle table holds 2^28 - 1 entries (see the `wasmtime` engine).
        store.set_max_component_handles(1 << 28);
        let instance = self.pre.instantiate(&mut store).map_err(|e| anyhow!("{e:#}"))?;
        self.running = Some((store, instance));
        Ok(())
    }

    fn call(&mut self, request: &Json) -> Result<Json> {
        let (store, instance) = self.running.as_mut().ok_or_else(|| anyhow!("`call` before `instantiate`"))?;
        let key = (request["interface"].as_str().map(str::to_string), request["name"].as_str().unwrap_or("").into());
        let (index, ft) = self.exports.get(&key).ok_or_else(|| anyhow!("no declared export {key:?}"))?;
        let func = instance.get_func(&mut *store, index).ok_or_else(|| anyhow!("export {key:?} is not a function"))?;
        let mut ctx = store.as_context_mut();
        let args = ft
            .params
            .iter()
            .zip(call_args(request, ft)?)
            .map(|((_, t), j)| to_val_with(t, &value_from_json(t, j)?, &mut handles(&mut ctx)))
            .collect::<Result<Vec<_>>>()?;
        let mut results = vec![Val::Bool(false); ft.result.iter().count()];
        if let Err(e) = func.call(&mut *store, &args, &mut results) {
            return failure_reply(&e);
        }
        let mut ctx = store.as_context_mut();
        let result = match (&ft.result, results.first()) {
            (Some(t), Some(v)) => value_to_json(t, &from_val_with(t, v, &mut handles(&mut ctx))?)?,
            _ => Json::Null,
        };
        Ok(json!({ "ok": result }))
    }

    fn drop_handle(&mut self, handle: u32) -> Result<Json> {
        let (store, _) = self.running.as_mut().ok_or_else(|| anyhow!("`drop` before `instantiate`"))?;
        let any = store.data_mut().slots.get_mut(handle as usize).and_then(Option::take);
        let any = any.ok_or_else(|| anyhow!("the host holds no guest resource {handle}"))?;
        match any.resource_drop(&mut *store) {
            Ok(()) => Ok(json!({ "ok": null })),
            Err(e) => failure_reply(&e),
        }
    }
}
