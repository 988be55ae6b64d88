//! `process:CMD` / `process-core:CMD`: the scripted guest, as a component or as the core module
//! of the core-module build target, on a runtime witness drives through an adapter process
//! (adapters/PROTOCOL.md). The adapter's runtime (or its host, for a core module) does all
//! lowering and lifting; witness plays the host exactly as the `wasmtime` engine does: it loads
//! the script through the control interface, makes the calls and host drops, answers import
//! and destructor callbacks, and reads the guest's log.

use std::collections::VecDeque;

use anyhow::{Result, anyhow, bail};
use base64::Engine as _;
use serde_json::{Value as Json, json};

use super::prepared::ImportType;
use super::resources::{is_guest_resource, resource_owner};
use super::{Case, Engine, HostEvent, Outcome, Prepared, Step};
use crate::adapter::json::{ResourceNames, func_to_json, value_from_json, value_to_json};
use crate::adapter::process::AdapterProcess;
use crate::encode::guest::{EntryKind, ImportKind, LOAD_CHUNK, control_func_types, control_interface};
use crate::encode::script::parse_log;
use crate::reference::types::{FuncType, ResourceType, ValType};
use crate::reference::value::Value;
use crate::reference::{Trap, TrapKind};

/// A world the adapter of engine `engine` cannot take (its cases are skipped, not failed).
#[derive(Debug)]
pub struct Unsupported {
    pub engine: String,
    pub reason: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Unsupported {}

/// An adapter that greeted failed to set the world up (its `compile` failed): the error
/// carries the engine's label, so expectations files can name the failure.
#[derive(Debug)]
pub struct AdapterFailed {
    pub engine: String,
    pub message: String,
}

impl std::fmt::Display for AdapterFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AdapterFailed {}

/// A function as the protocol names it: (interface, name), its type, and for a core module
/// its core names (`null` for a component).
struct Func {
    interface: Option<String>,
    name: String,
    ft: FuncType,
    core: Json,
}

/// Resource types as the protocol names them: the instance that defines them, on the side
/// that implements them.
struct PreparedResources<'p>(&'p Prepared);

impl ResourceNames for PreparedResources<'_> {
    fn name_of(&self, rt: &ResourceType) -> Result<Json> {
        let side = if is_guest_resource(rt) { "export" } else { "import" };
        Ok(json!({ "interface": resource_owner(self.0, rt)?, "name": rt.name, "side": side }))
    }

    fn resource_of(&mut self, j: &Json) -> Result<ResourceType> {
        bail!("witness does not read resource types ({j})")
    }
}

impl Func {
    fn declaration(&self, r: &dyn ResourceNames) -> Result<Json> {
        let mut decl = func_to_json(self.interface.as_deref(), &self.name, &self.ft, r)?;
        if !self.core.is_null() {
            decl["core"] = self.core.clone();
        }
        Ok(decl)
    }

    fn call(&self, args: Vec<Json>) -> Json {
        json!({ "op": "call", "interface": self.interface, "name": self.name, "args": args })
    }
}

pub struct ProcessEngine {
    name: String,
    adapter: AdapterProcess,
    /// Function export k.
    exports: Vec<Func>,
    /// The function imports, with their thunk indices (resource built-ins are the runtime's).
    imports: Vec<(u32, Func)>,
    /// Host resource types, as the protocol names them (for destructor callbacks).
    resources: Vec<(Json, ResourceType)>,
    load: Func,
    reset: Func,
    read_log: Func,
}

/// What witness hands the adapter: the component, or the core module of the core-module
/// build target (the adapter's host then lowers and lifts itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Component,
    Module,
}

/// The adapter command and kind of an engine argument `process:CMD` / `process-core:CMD`.
pub fn process_spec(spec: &str) -> Option<(&str, Kind)> {
    if let Some(command) = spec.strip_prefix("process:") {
        return Some((command, Kind::Component));
    }
    spec.strip_prefix("process-core:").map(|command| (command, Kind::Module))
}

impl ProcessEngine {
    /// Start adapter `command` and compile `prepared`'s component or core module on it.
    pub fn new(prepared: &Prepared, command: &str, kind: Kind) -> Result<ProcessEngine> {
        let mut adapter = AdapterProcess::spawn(command)?;
        let name = match kind {
            Kind::Component => adapter.greeting.adapter.clone(),
            Kind::Module => format!("{}-core", adapter.greeting.adapter),
        };
        let unsupported = |reason: String| Unsupported { engine: name.clone(), reason };
        let has_resources = prepared.imports.iter().any(|i| !matches!(i, ImportType::Func { .. }));
        if has_resources && !adapter.greeting.features.iter().any(|f| f == "resources") {
            bail!(unsupported("the world has resources (the adapter lacks the `resources` feature)".into()));
        }
        let names = PreparedResources(prepared);
        let core = |json: Json| if kind == Kind::Module { json } else { Json::Null };
        let mut imports = vec![];
        let mut resources = vec![];
        // For a core module: the resource built-ins it imports, which the adapter's host serves.
        let mut builtins = vec![];
        let mut resource_types = vec![];
        for (thunk, (imp, ty)) in prepared.spec.imports.iter().zip(&prepared.imports).enumerate() {
            let (builtin, rt) = match (&imp.kind, ty) {
                (ImportKind::Func { interface, func }, ImportType::Func { ft, .. }) => {
                    let interface = interface.map(|i| prepared.interface_name(i, true)).transpose()?;
                    let core = core(json!({ "module": imp.module, "name": imp.name }));
                    imports.push((thunk as u32, Func { interface, name: func.clone(), ft: ft.clone(), core }));
                    continue;
                }
                (_, ImportType::ResourceNew(rt)) => ("resource-new", rt),
                (_, ImportType::ResourceRep(rt)) => ("resource-rep", rt),
                (_, ImportType::ResourceDrop(rt)) => ("resource-drop", rt),
                (_, ImportType::Func { .. }) => bail!("import {} is a function of another kind", imp.name),
            };
            // Each host resource type the guest imports has its drop built-in.
            if builtin == "resource-drop" && !is_guest_resource(rt) {
                resources.push((names.name_of(rt)?, rt.clone()));
            }
            let core = json!({ "module": imp.module, "name": imp.name });
            builtins.push(json!({ "builtin": builtin, "resource": names.name_of(rt)?, "core": core }));
            resource_types.push(rt.clone());
        }
        let dtors = prepared
            .dtors
            .iter()
            .map(|(id, core)| {
                let rt = resource_types.iter().find(|rt| rt.id == *id).ok_or_else(|| anyhow!("no resource {id}"))?;
                Ok(json!({ "resource": names.name_of(rt)?, "core": core }))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut exports = vec![];
        let entries = prepared.spec.exports.iter().filter_map(|e| match &e.kind {
            EntryKind::Func { interface, func } => Some((interface, func)),
            _ => None,
        });
        for (k, ((_, ft), (interface, func))) in prepared.exports.iter().zip(entries).enumerate() {
            let interface = interface.map(|i| prepared.interface_name(i, false)).transpose()?;
            let k = k as u32;
            let core = core(json!({ "name": prepared.export_name(k), "post-return": prepared.post_return_name(k) }));
            exports.push(Func { interface, name: func.clone(), ft: ft.clone(), core });
        }
        let control = Some(prepared.interface_name(control_interface(&prepared.wit.resolve, prepared.world)?, false)?);
        let spec = &prepared.spec;
        let [load, reset, read_log] = control_func_types().map(|(name, ft)| {
            let core_name = match name {
                "load" => &spec.control_load,
                "reset" => &spec.control_reset,
                _ => &spec.control_read_log,
            };
            let core = core(json!({ "name": core_name, "post-return": null }));
            Func { interface: control.clone(), name: name.into(), ft, core }
        });
        let declare =
            |fs: &mut dyn Iterator<Item = &Func>| -> Result<Vec<Json>> { fs.map(|f| f.declaration(&names)).collect() };
        let import_decls = declare(&mut imports.iter().map(|(_, f)| f))?;
        let export_decls = declare(&mut exports.iter().chain([&load, &reset, &read_log]))?;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let compile = match kind {
            Kind::Component => json!({
                "op": "compile",
                "kind": "component",
                "wasm": b64(&prepared.component),
                "imports": import_decls,
                "exports": export_decls,
                "resources": resources.iter().map(|(j, _)| j.clone()).collect::<Vec<_>>(),
            }),
            Kind::Module => json!({
                "op": "compile",
                "kind": "module",
                "wasm": b64(&prepared.core),
                "encoding": prepared.encoding.name(),
                "memory": spec.memory,
                "realloc": spec.realloc,
                "initialize": prepared.scheme.initialize(),
                "imports": import_decls,
                "exports": export_decls,
                "resources": resources.iter().map(|(j, _)| j.clone()).collect::<Vec<_>>(),
                "builtins": builtins,
                "dtors": dtors,
            }),
        };
        adapter.request(&compile).map_err(|e| AdapterFailed { engine: name.clone(), message: format!("{e:#}") })?;
        Ok(ProcessEngine { name, adapter, exports, imports, resources, load, reset, read_log })
    }

    /// Run one call to its final reply, answering import callbacks with `results` and recording
    /// them in `events`. `Ok(Err(trap))` is a trap of the guest.
    fn call(
        &mut self,
        request: &Json,
        results: &mut VecDeque<Option<Value>>,
        events: &mut Vec<HostEvent>,
    ) -> Result<std::result::Result<Json, Trap>> {
        self.adapter.send(request)?;
        loop {
            let reply = self.adapter.receive()?;
            if reply["op"] == "dtor" {
                let rep = reply["rep"].as_u64().and_then(|r| u32::try_from(r).ok());
                let known = self.resources.iter().any(|(j, _)| *j == reply["resource"]);
                let Some(rep) = rep.filter(|_| known) else {
                    bail!("the adapter reports a bad destructor call: {reply}")
                };
                events.push(HostEvent::Dtor { rep });
                self.adapter.send(&json!({ "ok": null }))?;
                continue;
            }
            if reply["op"] == "import" {
                let (thunk, f) = self
                    .imports
                    .iter()
                    .find(|(_, f)| reply["interface"].as_str() == f.interface.as_deref() && reply["name"] == *f.name)
                    .ok_or_else(|| anyhow!("the adapter calls an undeclared import: {reply}"))?;
                let args = reply["args"].as_array().ok_or_else(|| anyhow!("import callback without args: {reply}"))?;
                let args =
                    f.ft.params
                        .iter()
                        .zip(args)
                        .map(|((_, t), j)| value_from_json(t, j))
                        .collect::<Result<Vec<_>>>()?;
                events.push(HostEvent::Import { thunk: *thunk, args });
                let answer = match (results.pop_front(), &f.ft.result) {
                    (Some(Some(v)), Some(t)) => json!({ "ok": value_to_json(t, &v)? }),
                    (Some(None), None) => json!({ "ok": null }),
                    _ => {
                        self.adapter.send(&json!({ "error": "no planned result for this import call" }))?;
                        bail!("no planned result for import call {reply}");
                    }
                };
                self.adapter.send(&answer)?;
                continue;
            }
            if let Some(v) = reply.get("ok") {
                return Ok(Ok(v.clone()));
            }
            if let Some(t) = reply.get("trap") {
                let message = t["message"].as_str().unwrap_or_default().to_string();
                let kind = t["class"].as_str().and_then(TrapKind::from_name).unwrap_or(TrapKind::Unclassified);
                return Ok(Err(Trap::new(kind, message)));
            }
            bail!("the adapter failed the call {}: {}", request["name"], reply.get("error").unwrap_or(&reply));
        }
    }

    /// A control call, which must not trap.
    fn control(&mut self, f: &Json) -> Result<Json> {
        match self.call(f, &mut VecDeque::new(), &mut vec![])? {
            Ok(v) => Ok(v),
            Err(trap) => bail!("control call {} trapped: {trap}", f["name"]),
        }
    }
}

/// What a step's final reply completes.
enum Done {
    Returned(u32, Option<ValType>),
    Dropped(u32),
}

impl Engine for ProcessEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, case: &Case) -> Result<Outcome> {
        self.adapter.request(&json!({ "op": "instantiate" }))?;
        self.control(&self.reset.call(vec![]))?;
        let image = case.script.control_image()?;
        for (i, chunk) in image.chunks(LOAD_CHUNK).enumerate() {
            let mut padded = chunk.to_vec();
            padded.resize(LOAD_CHUNK, 0);
            let mut args = vec![json!(i * LOAD_CHUNK)];
            args.extend(padded.chunks(8).map(|w| json!(u64::from_le_bytes(w.try_into().unwrap()).to_string())));
            self.control(&self.load.call(args))?;
        }
        let mut results: VecDeque<Option<Value>> = case.import_results.iter().cloned().collect();
        let mut outcome = Outcome::default();
        for step in &case.steps {
            let (request, done) = match step {
                Step::Call(call) => {
                    let f = &self.exports[call.export as usize];
                    let args = f.ft.params.iter().zip(&call.args).map(|((_, t), v)| value_to_json(t, v));
                    (f.call(args.collect::<Result<_>>()?), Done::Returned(call.export, f.ft.result.clone()))
                }
                Step::Drop { slot } => (json!({ "op": "drop", "handle": slot }), Done::Dropped(*slot)),
            };
            match self.call(&request, &mut results, &mut outcome.events)? {
                Ok(v) => outcome.events.push(match done {
                    Done::Returned(export, t) => {
                        HostEvent::Returned { export, result: t.map(|t| value_from_json(&t, &v)).transpose()? }
                    }
                    Done::Dropped(slot) => HostEvent::Dropped { slot },
                }),
                Err(trap) => {
                    outcome.trap = Some(trap);
                    break;
                }
            }
        }
        if outcome.trap.is_none() {
            let bytes = self.control(&self.read_log.call(vec![]))?;
            let bytes = bytes
                .as_array()
                .ok_or_else(|| anyhow!("read-log returned {bytes}"))?
                .iter()
                .map(|b| b.as_u64().map(|b| b as u8).ok_or_else(|| anyhow!("read-log returned a non-byte {b}")))
                .collect::<Result<Vec<u8>>>()?;
            outcome.log = Some(parse_log(&bytes)?);
        }
        Ok(outcome)
    }
}
