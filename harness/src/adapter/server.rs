//! An adapter's side of the protocol, served from the embedded Wasmtime (`witness adapter`):
//! it proves the protocol end to end and is the model for foreign adapters. Values cross as
//! reference values (`adapter::json`) and Wasmtime `Val`s (`engine::wasmtime_component`).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use serde_json::{Value as Json, json};
use wasmtime::component::{Component, ComponentExportIndex, Instance, InstancePre, Linker, Val};
use wasmtime::{Config, Store};

use super::PROTOCOL_VERSION;
use super::json::{func_from_json, value_from_json, value_to_json};
use crate::engine::HarnessError;
use crate::engine::wasmtime_component::{FUEL, classify, from_val, to_val};
use crate::reference::TrapKind;
use crate::reference::types::FuncType;

/// The two ends of the conversation; host functions use them in the middle of a call.
struct Io {
    input: Box<dyn BufRead + Send>,
    output: Box<dyn Write + Send>,
}

impl Io {
    fn send(&mut self, message: &Json) -> Result<()> {
        writeln!(self.output, "{message}")?;
        Ok(self.output.flush()?)
    }

    /// The next message, or `None` at the end of input.
    fn receive(&mut self) -> Result<Option<Json>> {
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&line).with_context(|| format!("not a JSON line: {line:?}"))?))
    }
}

type Shared = Arc<Mutex<Io>>;

fn lock(io: &Shared) -> std::sync::MutexGuard<'_, Io> {
    io.lock().unwrap_or_else(|e| e.into_inner())
}

struct Limits(wasmtime::StoreLimits);

/// A compiled component: how to instantiate it and where its exports are.
struct Compiled {
    engine: wasmtime::Engine,
    pre: InstancePre<Limits>,
    exports: HashMap<(Option<String>, String), (ComponentExportIndex, FuncType)>,
}

/// Define import `(interface, name)` on `linker` as a call back into witness.
fn define_import(
    linker: &mut Linker<Limits>,
    io: &Shared,
    interface: Option<String>,
    name: String,
    ft: FuncType,
) -> Result<()> {
    let io = io.clone();
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
        let mut io = lock(&io);
        io.send(&json!({ "op": "import", "interface": iface, "name": func, "args": args })).map_err(harness)?;
        let reply = io.receive().map_err(harness)?.ok_or_else(|| harness(anyhow!("input ended in an import call")))?;
        if let Some(e) = reply.get("error") {
            return Err(harness(anyhow!("witness failed the import call: {e}")));
        }
        let v = reply.get("ok").ok_or_else(|| harness(anyhow!("bad reply to an import call: {reply}")))?;
        match (&ft.result, results.first_mut()) {
            (Some(t), Some(slot)) => *slot = value_from_json(t, v).and_then(|v| to_val(t, &v)).map_err(harness)?,
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

fn compile(io: &Shared, request: &Json) -> Result<Compiled> {
    if request["kind"] != "component" {
        bail!("only `kind: component` is supported");
    }
    let wasm = base64::engine::general_purpose::STANDARD
        .decode(request["wasm"].as_str().ok_or_else(|| anyhow!("`wasm` missing"))?)
        .context("`wasm` is not base64")?;
    let decls = |key: &str| -> Result<Vec<(Option<String>, String, FuncType)>> {
        request[key].as_array().ok_or_else(|| anyhow!("`{key}` missing"))?.iter().map(func_from_json).collect()
    };
    let mut config = Config::new();
    config.wasm_component_model(true).consume_fuel(true);
    let engine = wasmtime::Engine::new(&config)?;
    let component = Component::new(&engine, &wasm).map_err(|e| anyhow!("Wasmtime rejects the component: {e:#}"))?;
    let mut linker = Linker::new(&engine);
    for (interface, name, ft) in decls("imports")? {
        define_import(&mut linker, io, interface, name, ft)?;
    }
    let pre = linker.instantiate_pre(&component).map_err(|e| anyhow!("{e:#}"))?;
    let mut exports = HashMap::new();
    for (interface, name, ft) in decls("exports")? {
        let parent = match &interface {
            Some(i) => Some(component.get_export_index(None, i).ok_or_else(|| anyhow!("no export {i}"))?),
            None => None,
        };
        let index = component.get_export_index(parent.as_ref(), &name).ok_or_else(|| anyhow!("no export {name}"))?;
        exports.insert((interface, name), (index, ft));
    }
    Ok(Compiled { engine, pre, exports })
}

fn instantiate(compiled: &Compiled) -> Result<(Store<Limits>, Instance)> {
    let limits = wasmtime::StoreLimitsBuilder::new().memory_size(crate::engine::MEMORY_LIMIT).build();
    let mut store = Store::new(&compiled.engine, Limits(limits));
    store.limiter(|l| &mut l.0);
    store.set_fuel(FUEL)?;
    let instance = compiled.pre.instantiate(&mut store).map_err(|e| anyhow!("{e:#}"))?;
    Ok((store, instance))
}

/// The final reply to a `call`.
fn call(compiled: &Compiled, running: &mut Option<(Store<Limits>, Instance)>, request: &Json) -> Result<Json> {
    let (store, instance) = running.as_mut().ok_or_else(|| anyhow!("`call` before `instantiate`"))?;
    let key = (request["interface"].as_str().map(str::to_string), request["name"].as_str().unwrap_or("").to_string());
    let (index, ft) = compiled.exports.get(&key).ok_or_else(|| anyhow!("no declared export {key:?}"))?;
    let func = instance.get_func(&mut *store, index).ok_or_else(|| anyhow!("export {key:?} is not a function"))?;
    let args = request["args"].as_array().ok_or_else(|| anyhow!("`args` missing"))?;
    if args.len() != ft.params.len() {
        bail!("{} arguments for {} params", args.len(), ft.params.len());
    }
    let args =
        ft.params.iter().zip(args).map(|((_, t), j)| to_val(t, &value_from_json(t, j)?)).collect::<Result<Vec<_>>>()?;
    let mut results = vec![Val::Bool(false); ft.result.iter().count()];
    if let Err(e) = func.call(&mut *store, &args, &mut results) {
        if let Some(h) = e.downcast_ref::<HarnessError>() {
            bail!("{h}");
        }
        let trap = classify(&e);
        let class = (trap.kind != TrapKind::Unclassified).then_some(trap.kind.name());
        return Ok(json!({ "trap": { "class": class, "message": trap.message } }));
    }
    let result = match (&ft.result, results.first()) {
        (Some(t), Some(v)) => value_to_json(t, &from_val(t, v)?)?,
        _ => Json::Null,
    };
    Ok(json!({ "ok": result }))
}

/// Serve the protocol on `input` / `output` until the input ends.
pub fn serve(input: impl BufRead + Send + 'static, output: impl Write + Send + 'static) -> Result<()> {
    let io: Shared = Arc::new(Mutex::new(Io { input: Box::new(input), output: Box::new(output) }));
    lock(&io).send(&json!({ "adapter": "wasmtime-adapter", "version": "48.0.8", "protocol": PROTOCOL_VERSION }))?;
    let mut compiled: Option<Compiled> = None;
    let mut running = None;
    loop {
        let Some(request) = lock(&io).receive()? else { return Ok(()) };
        let reply = match request["op"].as_str() {
            Some("compile") => {
                running = None;
                compile(&io, &request).map(|c| {
                    compiled = Some(c);
                    json!({ "ok": null })
                })
            }
            Some("instantiate") => {
                compiled.as_ref().ok_or_else(|| anyhow!("`instantiate` before `compile`")).and_then(instantiate).map(
                    |r| {
                        running = Some(r);
                        json!({ "ok": null })
                    },
                )
            }
            Some("call") => match &compiled {
                Some(c) => call(c, &mut running, &request),
                None => Err(anyhow!("`call` before `compile`")),
            },
            _ => Err(anyhow!("unknown request {request}")),
        };
        let reply = reply.unwrap_or_else(|e| json!({ "error": format!("{e:#}") }));
        lock(&io).send(&reply)?;
    }
}
