//! witness's side of the protocol as a runtime (`process:CMD` / `process-core:CMD`): the
//! scripted guest, as a component or as the core module of the core-module build target, on a
//! runtime witness drives through an adapter process (adapters/PROTOCOL.md). The adapter's
//! runtime (or its host, for a core module) does all lowering and lifting; witness plays the
//! host: the driver's calls and drops become requests, and the adapter's import and
//! destructor callbacks go to the instance's `Host`.

use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use base64::Engine as _;
use serde_json::{Value as Json, json};

use super::json::{ResourceNames, func_to_json, value_from_json, value_to_json};
use super::process::{AdapterProcess, brief};
use crate::reference::types::ResourceType;
use crate::reference::value::Value;
use crate::reference::{Trap, TrapKind};
use crate::runtime::artifact::{Artifact, Func, Import};
use crate::runtime::resources::is_guest_resource;
use crate::runtime::{CompileFailed, Compiled, Host, Instance, REGISTRY, Runtime, Unsupported, fused_name};

/// What witness hands the adapter: the component, or the core module of the core-module
/// build target (the adapter's host then lowers and lifts itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Component,
    Module,
}

/// Resource types as the protocol names them: the instance that defines them, on the side
/// that implements them.
pub struct ArtifactResources<'a>(pub &'a Artifact);

impl ResourceNames for ArtifactResources<'_> {
    fn name_of(&self, rt: &ResourceType) -> Result<Json> {
        let side = if is_guest_resource(rt) { "export" } else { "import" };
        Ok(json!({ "interface": self.0.resource(rt)?.interface, "name": rt.name, "side": side }))
    }

    fn resource_of(&mut self, j: &Json) -> Result<ResourceType> {
        bail!("witness does not read resource types ({j})")
    }
}

/// The `compile` request of an artifact (adapters/PROTOCOL.md).
pub fn compile_request(artifact: &Artifact, kind: Kind) -> Result<Json> {
    let names = ArtifactResources(artifact);
    let module = kind == Kind::Module;
    let declare = |func: &Func, core: Json| -> Result<Json> {
        let mut decl = func_to_json(func.interface.as_deref(), &func.name, &func.ft, &names)?;
        if module {
            decl["core"] = core;
        }
        Ok(decl)
    };
    let mut imports = vec![];
    let mut builtins = vec![];
    for import in &artifact.imports {
        match import {
            Import::Func { func, core } => {
                let core = core.as_ref().map_or(Json::Null, |c| json!({ "module": c.module, "name": c.name }));
                imports.push(declare(func, core)?);
            }
            Import::Builtin { builtin, rt, core } => builtins.push(json!({
                "builtin": builtin.name(),
                "resource": names.name_of(rt)?,
                "core": { "module": core.module, "name": core.name },
            })),
            // 🔀 The component's own async built-ins: no host function serves them.
            Import::Async { .. } if !module => {}
            Import::Async { .. } => bail!("a core module's async ABI is no adapter's yet"),
        }
    }
    let exports = artifact
        .exports
        .iter()
        .map(|e| {
            let core = e.core.as_ref().map_or(Json::Null, |c| json!({ "name": c.name, "post-return": c.post_return }));
            declare(&e.func, core)
        })
        .collect::<Result<Vec<_>>>()?;
    let resources = artifact
        .resources
        .iter()
        .filter(|r| !is_guest_resource(&r.rt))
        .map(|r| names.name_of(&r.rt))
        .collect::<Result<Vec<_>>>()?;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(match kind {
        Kind::Component => json!({
            "op": "compile",
            "kind": "component",
            "wasm": b64(artifact.component.as_deref().ok_or_else(|| anyhow!("the world has no component"))?),
            "imports": imports,
            "exports": exports,
            "resources": resources,
        }),
        Kind::Module => {
            let core = artifact.core.as_ref().ok_or_else(|| anyhow!("the world has no core module"))?;
            let dtors = artifact
                .dtors
                .iter()
                .map(|(id, export)| {
                    let r = artifact
                        .resources
                        .iter()
                        .find(|r| r.rt.id == *id)
                        .ok_or_else(|| anyhow!("no resource {id}"))?;
                    Ok(json!({ "resource": names.name_of(&r.rt)?, "core": export }))
                })
                .collect::<Result<Vec<_>>>()?;
            json!({
                "op": "compile",
                "kind": "module",
                "wasm": b64(&core.wasm),
                "encoding": artifact.encoding.name(),
                "memory": core.memory,
                "realloc": core.realloc,
                "initialize": core.initialize,
                "imports": imports,
                "exports": exports,
                "resources": resources,
                "builtins": builtins,
                "dtors": dtors,
            })
        }
    })
}

/// Answer a callback witness cannot take with an error (so the adapter is not left waiting),
/// and fail the exchange with `why`.
fn reject(adapter: &mut AdapterProcess, why: String) -> anyhow::Error {
    let _ = adapter.send(&json!({ "error": why }));
    anyhow!("{why}")
}

/// The trap of a `trap` reply: its class, or `unclassified` where the adapter gives none.
fn trap_of(t: &Json) -> Trap {
    let message = t["message"].as_str().unwrap_or_default().to_string();
    let kind = t["class"].as_str().and_then(TrapKind::from_name).unwrap_or(TrapKind::Unclassified);
    Trap::new(kind, message)
}

/// A runtime behind an adapter process (`process:CMD`, `process-core:CMD`).
#[derive(Clone)]
pub struct ProcessRuntime {
    command: String,
    kind: Kind,
    /// How long one line to or from the adapter may take.
    timeout: std::time::Duration,
}

impl ProcessRuntime {
    pub fn new(command: &str, kind: Kind, timeout: std::time::Duration) -> ProcessRuntime {
        ProcessRuntime { command: command.into(), kind, timeout }
    }
}

impl Runtime for ProcessRuntime {
    /// Start the adapter and compile the artifact on it: one adapter process per world.
    fn compile(&self, artifact: Arc<Artifact>) -> Result<Box<dyn Compiled>> {
        let (label, adapter) = self.start(&artifact)?;
        Ok(Box::new(ProcessCompiled { runtime: self.clone(), label, adapter, artifact, broken: false, restarts: 0 }))
    }
}

impl ProcessRuntime {
    /// A new adapter process with `artifact` compiled on it, and the label of its results.
    fn start(&self, artifact: &Artifact) -> Result<(String, AdapterProcess)> {
        let mut adapter = AdapterProcess::spawn(&self.command, self.timeout)?;
        let label = match self.kind {
            Kind::Component => adapter.greeting.adapter.clone(),
            Kind::Module => format!("{}-core", adapter.greeting.adapter),
        };
        let taken = REGISTRY.iter().any(|r| label == r.name || label == fused_name(r.name));
        if taken {
            bail!(
                "adapter `{}` labels its results `{label}`, the name of an embedded runtime: they would \
                 merge; give the adapter another name in its greeting",
                self.command
            );
        }
        let unsupported = |reason: &str| Unsupported { engine: label.clone(), reason: reason.into() };
        if artifact.core.is_none() {
            bail!(unsupported("adapters do not run compositions"));
        }
        if artifact.is_async() && self.kind == Kind::Module {
            bail!(unsupported("the world is async (the protocol sends async worlds to component adapters only)"));
        }
        if artifact.is_async() && !adapter.greeting.features.iter().any(|f| f == "async") {
            bail!(unsupported("the world is async (the adapter lacks the `async` feature)"));
        }
        if artifact.has_resources() && !adapter.greeting.features.iter().any(|f| f == "resources") {
            bail!(unsupported("the world has resources (the adapter lacks the `resources` feature)"));
        }
        let request = compile_request(artifact, self.kind)?;
        adapter.request(&request).map_err(|e| CompileFailed { engine: label.clone(), message: format!("{e:#}") })?;
        Ok((label, adapter))
    }
}

/// The most times one compiled world's adapter is started again after it broke.
const MAX_RESTARTS: u32 = 8;

struct ProcessCompiled {
    runtime: ProcessRuntime,
    label: String,
    adapter: AdapterProcess,
    artifact: Arc<Artifact>,
    /// The adapter broke the protocol, crashed or hung: its state is unknown, so the next
    /// instance starts a new one (the case it broke in has failed with the reason).
    broken: bool,
    restarts: u32,
}

impl Compiled for ProcessCompiled {
    fn label(&self) -> &str {
        &self.label
    }

    fn instantiate(&mut self, mut host: Box<dyn Host>) -> Result<std::result::Result<Box<dyn Instance + '_>, Trap>> {
        if self.broken {
            if self.restarts == MAX_RESTARTS {
                bail!("adapter `{}` broke {MAX_RESTARTS} times on this world: not started again", self.runtime.command);
            }
            self.restarts += 1;
            self.adapter = self.runtime.start(&self.artifact)?.1;
            self.broken = false;
        }
        let request = json!({ "op": "instantiate" });
        let done = exchange(&mut self.adapter, &self.artifact, host.as_mut(), &request);
        self.broken = done.is_err();
        if let Err(trap) = done? {
            return Ok(Err(trap));
        }
        Ok(Ok(Box::new(ProcessInstance { compiled: self, host })))
    }
}

struct ProcessInstance<'c> {
    compiled: &'c mut ProcessCompiled,
    host: Box<dyn Host>,
}

impl ProcessInstance<'_> {
    /// `exchange`; an adapter that fails it is broken (see `ProcessCompiled::broken`).
    fn run(&mut self, request: &Json) -> Result<std::result::Result<Json, Trap>> {
        let done = exchange(&mut self.compiled.adapter, &self.compiled.artifact, self.host.as_mut(), request);
        self.compiled.broken |= done.is_err();
        done
    }
}

/// Send `request` and run it to its final reply, answering import and destructor callbacks
/// through `host` (a `call`, or an `instantiate` whose start function calls imports).
/// `Ok(Err(trap))` is a trap of the guest.
fn exchange(
    adapter: &mut AdapterProcess,
    artifact: &Artifact,
    host: &mut dyn Host,
    request: &Json,
) -> Result<std::result::Result<Json, Trap>> {
    let id = adapter.send_request(request)?;
    loop {
        let reply = adapter.receive()?;
        if reply["op"] == "dtor" {
            let rep = reply["rep"].as_u64().and_then(|r| u32::try_from(r).ok());
            let names = ArtifactResources(artifact);
            let rt = artifact
                .resources
                .iter()
                .filter(|r| !is_guest_resource(&r.rt))
                .find(|r| names.name_of(&r.rt).is_ok_and(|j| j == reply["resource"]));
            let (Some(rep), Some(r)) = (rep, rt) else {
                return Err(reject(
                    adapter,
                    format!("the adapter reports a bad destructor call: {}", brief(&reply.to_string())),
                ));
            };
            host.dtor(&r.rt, rep)?;
            adapter.send(&json!({ "ok": null }))?;
            continue;
        }
        if reply["op"] == "import" {
            let (thunk, func) = artifact
                .imports
                .iter()
                .enumerate()
                .find_map(|(k, i)| match i {
                    Import::Func { func, .. }
                        if reply["interface"].as_str() == func.interface.as_deref() && reply["name"] == *func.name =>
                    {
                        Some((k as u32, func))
                    }
                    _ => None,
                })
                .ok_or_else(|| {
                    reject(adapter, format!("the adapter calls an undeclared import: {}", brief(&reply.to_string())))
                })?;
            let args = reply["args"].as_array().filter(|args| args.len() == func.ft.params.len()).ok_or_else(|| {
                reject(adapter, format!("import callback with bad args: {}", brief(&reply.to_string())))
            })?;
            let args = func
                .ft
                .params
                .iter()
                .zip(args)
                .map(|((_, t), j)| value_from_json(t, j))
                .collect::<Result<Vec<_>>>()
                .map_err(|e| {
                    reject(adapter, format!("import callback with bad args ({e:#}): {}", brief(&reply.to_string())))
                })?;
            let mut answer = match host.import(thunk, args) {
                Ok(result) => match (result, &func.ft.result) {
                    (Some(v), Some(t)) => json!({ "ok": value_to_json(t, &v)? }),
                    (None, None) => json!({ "ok": null }),
                    _ => json!({ "error": "the import's result does not match its type" }),
                },
                Err(e) => json!({ "error": format!("{e:#}") }),
            };
            // 🔀 An async import's answer the host gives later.
            if func.ft.async_ && host.answered_later() && answer.get("ok").is_some() {
                answer["later"] = json!(true);
            }
            adapter.send(&answer)?;
            if let Some(e) = answer.get("error") {
                bail!("import call {} failed: {e}", brief(&reply.to_string()));
            }
            continue;
        }
        adapter.check_id(&reply, id)?;
        if let Some(v) = reply.get("ok") {
            return Ok(Ok(v.clone()));
        }
        if let Some(t) = reply.get("trap") {
            return Ok(Err(trap_of(t)));
        }
        bail!("the adapter failed the call {}: {}", request["name"], reply.get("error").unwrap_or(&reply));
    }
}

impl Instance for ProcessInstance<'_> {
    fn call(&mut self, export: usize, args: &[Value]) -> Result<std::result::Result<Option<Value>, Trap>> {
        let func = &self.compiled.artifact.exports.get(export).ok_or_else(|| anyhow!("no export {export}"))?.func;
        let json_args =
            func.ft.params.iter().zip(args).map(|((_, t), v)| value_to_json(t, v)).collect::<Result<Vec<_>>>()?;
        let request = json!({ "op": "call", "interface": func.interface, "name": func.name, "args": json_args });
        let (result, name) = (func.ft.result.clone(), func.name.clone());
        Ok(match self.run(&request)? {
            Ok(v) => match result {
                Some(t) => Ok(Some(value_from_json(&t, &v)?)),
                None if v.is_null() => Ok(None),
                None => {
                    bail!("the adapter returns {} from `{name}`, which has no result", brief(&v.to_string()))
                }
            },
            Err(trap) => Err(trap),
        })
    }

    fn drop_resource(&mut self, slot: u32) -> Result<std::result::Result<(), Trap>> {
        Ok(self.run(&json!({ "op": "drop", "handle": slot }))?.map(|_| ()))
    }
}
