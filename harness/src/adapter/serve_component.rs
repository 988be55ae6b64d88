//! `kind: component` in `witness adapter`: the component on Wasmtime, values converted
//! between the protocol's JSON and Wasmtime `Val`s through reference values.

use std::collections::HashMap;

use anyhow::{Context as _, Result, anyhow};
use base64::Engine as _;
use serde_json::{Value as Json, json};
use wasmtime::component::{Component, ComponentExportIndex, Instance, InstancePre, Linker, Val};
use wasmtime::{Config, Store};

use super::json::{value_from_json, value_to_json};
use super::server::{Compiled, Decl, Shared, call_args, decls, lock, trap_reply};
use crate::engine::HarnessError;
use crate::engine::wasmtime_component::{FUEL, classify, from_val, to_val};
use crate::reference::types::FuncType;

struct Limits(wasmtime::StoreLimits);

pub(super) struct ServedComponent {
    engine: wasmtime::Engine,
    pre: InstancePre<Limits>,
    exports: HashMap<(Option<String>, String), (ComponentExportIndex, FuncType)>,
    running: Option<(Store<Limits>, Instance)>,
}

/// Define import `decl` on `linker` as a call back into witness.
fn define_import(linker: &mut Linker<Limits>, io: &Shared, decl: Decl) -> Result<()> {
    let io = io.clone();
    let Decl { interface, name, ft, .. } = decl;
    let (iface, func) = (interface.clone(), name.clone());
    let host = move |_store: wasmtime::StoreContextMut<'_, Limits>,
                     _ty: wasmtime::component::types::ComponentFunc,
                     params: &[Val],
                     results: &mut [Val]|
          -> wasmtime::Result<()> {
        let harness = |e: anyhow::Error| wasmtime::Error::new(HarnessError(format!("{e:#}")));
        let args = ft
            .params
            .iter()
            .zip(params)
            .map(|((_, t), v)| value_to_json(t, &from_val(t, v)?))
            .collect::<Result<Vec<_>>>()
            .map_err(harness)?;
        let v = lock(&io).import_call(iface.as_deref(), &func, args).map_err(harness)?;
        match (&ft.result, results.first_mut()) {
            (Some(t), Some(slot)) => *slot = value_from_json(t, &v).and_then(|v| to_val(t, &v)).map_err(harness)?,
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
        for decl in decls(request, "imports")? {
            define_import(&mut linker, io, decl)?;
        }
        let pre = linker.instantiate_pre(&component).map_err(|e| anyhow!("{e:#}"))?;
        let mut exports = HashMap::new();
        for Decl { interface, name, ft, .. } in decls(request, "exports")? {
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

impl Compiled for ServedComponent {
    fn instantiate(&mut self) -> Result<()> {
        self.running = None;
        let limits = wasmtime::StoreLimitsBuilder::new().memory_size(crate::engine::MEMORY_LIMIT).build();
        let mut store = Store::new(&self.engine, Limits(limits));
        store.limiter(|l| &mut l.0);
        store.set_fuel(FUEL)?;
        let instance = self.pre.instantiate(&mut store).map_err(|e| anyhow!("{e:#}"))?;
        self.running = Some((store, instance));
        Ok(())
    }

    fn call(&mut self, request: &Json) -> Result<Json> {
        let (store, instance) = self.running.as_mut().ok_or_else(|| anyhow!("`call` before `instantiate`"))?;
        let key = (request["interface"].as_str().map(str::to_string), request["name"].as_str().unwrap_or("").into());
        let (index, ft) = self.exports.get(&key).ok_or_else(|| anyhow!("no declared export {key:?}"))?;
        let func = instance.get_func(&mut *store, index).ok_or_else(|| anyhow!("export {key:?} is not a function"))?;
        let args = ft
            .params
            .iter()
            .zip(call_args(request, ft)?)
            .map(|((_, t), j)| to_val(t, &value_from_json(t, j)?))
            .collect::<Result<Vec<_>>>()?;
        let mut results = vec![Val::Bool(false); ft.result.iter().count()];
        if let Err(e) = func.call(&mut *store, &args, &mut results) {
            if let Some(h) = e.downcast_ref::<HarnessError>() {
                anyhow::bail!("{h}");
            }
            return Ok(trap_reply(&classify(&e)));
        }
        let result = match (&ft.result, results.first()) {
            (Some(t), Some(v)) => value_to_json(t, &from_val(t, v)?)?,
            _ => Json::Null,
        };
        Ok(json!({ "ok": result }))
    }
}
