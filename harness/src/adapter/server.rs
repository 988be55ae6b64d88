//! An adapter's side of the protocol, served from any embedded runtime (`witness adapter`): it
//! proves the protocol end to end and is the model for foreign adapters. A `compile` request
//! becomes an `Artifact`, compiled by the runtime that serves its kind; each instance's
//! imports and host destructors call back into witness.

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Value as Json, json};

use base64::Engine as _;

use super::PROTOCOL_VERSION;
use super::json::{ResourceNames, func_from_json, value_from_json, value_to_json};
use crate::reference::flatten::{Context, CoreFuncType, FlattenOpts, flatten_functype};
use crate::reference::types::{CoreType, PtrType, ResourceType, StringEncoding};
use crate::reference::value::Value;
use crate::reference::{Trap, TrapKind};
use crate::runtime::artifact::{Artifact, Builtin, CoreExport, CoreImport, CoreModule, Export, Func, Import, Resource};
use crate::runtime::{Compiled, Host, Instance, Runtime};
use crate::world::wit::{GUEST_INSTANCE, HOST_INSTANCE};

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

    /// Send the final reply to `request`, naming its `id` as the protocol asks.
    fn reply(&mut self, request: &Json, mut reply: Json) -> Result<()> {
        reply["id"] = request.get("id").cloned().unwrap_or(Json::Null);
        self.send(&reply)
    }

    /// Send a callback to witness (an import call, a destructor); its answer: `ok`'s value,
    /// and the whole reply.
    fn callback(&mut self, message: &Json) -> Result<(Json, Json)> {
        self.send(message)?;
        let reply = self.receive()?.ok_or_else(|| anyhow!("input ended in a callback"))?;
        if let Some(e) = reply.get("error") {
            bail!("witness failed the callback {}: {e}", message["op"]);
        }
        let ok = reply.get("ok").cloned().ok_or_else(|| anyhow!("bad reply to a callback: {reply}"))?;
        Ok((ok, reply))
    }

    /// Forward an import call to witness; its result, and 🔀 whether to give it later.
    fn import_call(&mut self, interface: Option<&str>, name: &str, args: Vec<Json>) -> Result<(Json, bool)> {
        let (ok, reply) =
            self.callback(&json!({ "op": "import", "interface": interface, "name": name, "args": args }))?;
        let later = match reply.get("later") {
            None | Some(Json::Null) => false,
            Some(b) => b.as_bool().ok_or_else(|| anyhow!("`later` is not a boolean in {reply}"))?,
        };
        Ok((ok, later))
    }
}

type Shared = Arc<Mutex<Io>>;

fn lock(io: &Shared) -> std::sync::MutexGuard<'_, Io> {
    io.lock().unwrap_or_else(|e| e.into_inner())
}

/// The reply to a call that trapped: the class, unless the trap is unclassified.
fn trap_reply(trap: &Trap) -> Json {
    let class = (trap.kind != TrapKind::Unclassified).then_some(trap.kind.name());
    json!({ "trap": { "class": class, "message": trap.message } })
}

/// The resource types a `compile` request names, each made a reference `ResourceType` with
/// its own id (the id of its dynamic host resource type in Wasmtime).
#[derive(Default)]
struct RequestResources {
    seen: Vec<(Json, ResourceType)>,
}

impl ResourceNames for RequestResources {
    fn name_of(&self, rt: &ResourceType) -> Result<Json> {
        self.seen
            .iter()
            .find(|(_, t)| t.id == rt.id)
            .map(|(j, _)| j.clone())
            .ok_or_else(|| anyhow!("no resource {rt:?}"))
    }

    fn resource_of(&mut self, j: &Json) -> Result<ResourceType> {
        if let Some((_, rt)) = self.seen.iter().find(|(k, _)| k == j) {
            return Ok(rt.clone());
        }
        let name = j["name"].as_str().ok_or_else(|| anyhow!("resource without a name: {j}"))?.to_string();
        let impl_instance = match j["side"].as_str() {
            Some("export") => GUEST_INSTANCE,
            Some("import") => HOST_INSTANCE,
            _ => bail!("resource without a side: {j}"),
        };
        let rt = ResourceType { id: self.seen.len() as u32 + 1, name, impl_instance };
        self.seen.push((j.clone(), rt.clone()));
        Ok(rt)
    }
}

fn text(j: &Json, key: &str) -> Result<String> {
    j[key].as_str().map(str::to_string).ok_or_else(|| anyhow!("`{key}` missing in {j}"))
}

fn list<'a>(request: &'a Json, key: &str) -> &'a [Json] {
    request[key].as_array().map_or(&[][..], Vec::as_slice)
}

/// The artifact a `compile` request describes. For a core module, function imports come
/// first, then the resource built-ins (the thunk order of the reference host).
pub fn artifact_of(request: &Json) -> Result<Artifact> {
    let wasm = base64::engine::general_purpose::STANDARD
        .decode(request["wasm"].as_str().ok_or_else(|| anyhow!("`wasm` missing"))?)
        .context("`wasm` is not base64")?;
    let module = match request["kind"].as_str() {
        Some("component") => false,
        Some("module") => true,
        other => bail!("unknown kind {other:?}"),
    };
    let mut names = RequestResources::default();
    for j in list(request, "resources") {
        names.resource_of(j)?;
    }
    let func = |j: &Json, names: &mut RequestResources| -> Result<Func> {
        let (interface, name, ft) = func_from_json(j, names)?;
        Ok(Func { interface, name, ft })
    };
    let mut imports = vec![];
    for j in list(request, "imports") {
        let func = func(j, &mut names)?;
        let core = match module {
            true => Some(CoreImport {
                module: text(&j["core"], "module")?,
                name: text(&j["core"], "name")?,
                sig: flatten_functype(FlattenOpts::sync(PtrType::I32), &func.ft, Context::Lower),
            }),
            false => None,
        };
        imports.push(Import::Func { func, core });
    }
    for j in list(request, "builtins") {
        let builtin =
            j["builtin"].as_str().and_then(Builtin::from_name).ok_or_else(|| anyhow!("unknown built-in in {j}"))?;
        let results = if builtin == Builtin::Drop { vec![] } else { vec![CoreType::I32] };
        let sig = CoreFuncType { params: vec![CoreType::I32], results };
        let core = CoreImport { module: text(&j["core"], "module")?, name: text(&j["core"], "name")?, sig };
        imports.push(Import::Builtin { builtin, rt: names.resource_of(&j["resource"])?, core });
    }
    let mut exports = vec![];
    for j in list(request, "exports") {
        let func = func(j, &mut names)?;
        let core = match module {
            true => Some(CoreExport {
                name: text(&j["core"], "name")?,
                post_return: j["core"]["post-return"].as_str().map(str::to_string),
            }),
            false => None,
        };
        exports.push(Export { func, core });
    }
    let dtors = list(request, "dtors")
        .iter()
        .map(|j| Ok((names.resource_of(&j["resource"])?.id, text(j, "core")?)))
        .collect::<Result<Vec<_>>>()?;
    let resources = names
        .seen
        .iter()
        .map(|(j, rt)| Resource { rt: rt.clone(), interface: j["interface"].as_str().map(str::to_string) })
        .collect();
    let (component, core, encoding) = match module {
        false => (Some(wasm), None, StringEncoding::Utf8),
        true => {
            let encoding =
                StringEncoding::parse(&text(request, "encoding")?).ok_or_else(|| anyhow!("bad `encoding`"))?;
            let core = CoreModule {
                wasm,
                memory: text(request, "memory")?,
                realloc: text(request, "realloc")?,
                initialize: request["initialize"].as_str().map(str::to_string),
            };
            (None, Some(core), encoding)
        }
    };
    Ok(Artifact {
        component,
        core,
        encoding,
        imports,
        exports,
        guests: vec![],
        resources,
        dtors,
        model: None,
        import_types: OnceLock::new(),
    })
}

/// The host of a served instance: imports and host destructors are callbacks to witness.
struct ProtocolHost {
    io: Shared,
    artifact: Arc<Artifact>,
    /// Whether witness said to give the last import's answer later.
    later: bool,
}

impl ProtocolHost {
    fn resource_name(&self, rt: &ResourceType) -> Result<Json> {
        let r = self.artifact.resource(rt)?;
        let side = if rt.impl_instance == GUEST_INSTANCE { "export" } else { "import" };
        Ok(json!({ "interface": r.interface, "name": rt.name, "side": side }))
    }
}

impl Host for ProtocolHost {
    fn import(&mut self, thunk: u32, args: Vec<Value>) -> Result<Option<Value>> {
        let Some(Import::Func { func, .. }) = self.artifact.imports.get(thunk as usize) else {
            bail!("import {thunk} is no function");
        };
        let args = func.ft.params.iter().zip(&args).map(|((_, t), v)| value_to_json(t, v)).collect::<Result<_>>()?;
        let (v, later) = lock(&self.io).import_call(func.interface.as_deref(), &func.name, args)?;
        self.later = later && func.ft.async_;
        func.ft.result.as_ref().map(|t| value_from_json(t, &v)).transpose()
    }

    fn answered_later(&self) -> bool {
        self.later
    }

    fn dtor(&mut self, rt: &ResourceType, rep: u32) -> Result<()> {
        let resource = self.resource_name(rt)?;
        lock(&self.io).callback(&json!({ "op": "dtor", "resource": resource, "rep": rep }))?;
        Ok(())
    }
}

/// Which runtime serves which kind of `compile` request.
pub struct Served {
    pub component: Box<dyn Runtime>,
    pub module: Box<dyn Runtime>,
    /// 🔀 The component runtime runs async worlds: the greeting offers feature `async`.
    pub asynchronous: bool,
}

/// The reply to a `call` request on `instance`.
fn call(instance: &mut dyn Instance, artifact: &Artifact, request: &Json) -> Result<Json> {
    let interface = request["interface"].as_str();
    let name = request["name"].as_str().unwrap_or("");
    let (index, export) = artifact
        .exports
        .iter()
        .enumerate()
        .find(|(_, e)| e.func.interface.as_deref() == interface && e.func.name == name)
        .ok_or_else(|| anyhow!("no declared export {interface:?} {name:?}"))?;
    let ft = &export.func.ft;
    let args = request["args"].as_array().ok_or_else(|| anyhow!("`args` missing"))?;
    if args.len() != ft.params.len() {
        bail!("{} arguments for {} params", args.len(), ft.params.len());
    }
    let args = ft.params.iter().zip(args).map(|((_, t), j)| value_from_json(t, j)).collect::<Result<Vec<_>>>()?;
    Ok(match instance.call(index, &args)? {
        Ok(result) => match (&ft.result, result) {
            (Some(t), Some(v)) => json!({ "ok": value_to_json(t, &v)? }),
            _ => json!({ "ok": null }),
        },
        Err(trap) => trap_reply(&trap),
    })
}

/// The reply to a `drop` request on `instance`.
fn drop_handle(instance: &mut dyn Instance, request: &Json) -> Result<Json> {
    let handle = request["handle"].as_u64().and_then(|h| u32::try_from(h).ok());
    let handle = handle.ok_or_else(|| anyhow!("bad handle in {request}"))?;
    Ok(match instance.drop_resource(handle)? {
        Ok(()) => json!({ "ok": null }),
        Err(trap) => trap_reply(&trap),
    })
}

fn error_reply(e: anyhow::Error) -> Json {
    json!({ "error": format!("{e:#}") })
}

/// Serve one instance of `compiled` (its `instantiate` request has arrived): answer its calls
/// and drops until another request comes, which is returned (`None`: the input ended).
fn serve_instance(
    io: &Shared,
    compiled: &mut dyn Compiled,
    artifact: &Arc<Artifact>,
    request: &Json,
) -> Result<Option<Json>> {
    let host = ProtocolHost { io: io.clone(), artifact: artifact.clone(), later: false };
    // No instance: say why, and hand the next request back.
    let refuse = |reply: Json| -> Result<Option<Json>> {
        lock(io).reply(request, reply)?;
        lock(io).receive()
    };
    let mut instance = match compiled.instantiate(Box::new(host)) {
        Ok(Ok(instance)) => instance,
        Ok(Err(trap)) => return refuse(trap_reply(&trap)),
        Err(e) => return refuse(error_reply(e)),
    };
    lock(io).reply(request, json!({ "ok": null }))?;
    loop {
        let Some(request) = lock(io).receive()? else { return Ok(None) };
        let reply = match request["op"].as_str() {
            Some("call") => call(instance.as_mut(), artifact, &request),
            Some("drop") => drop_handle(instance.as_mut(), &request),
            _ => return Ok(Some(request)),
        };
        lock(io).reply(&request, reply.unwrap_or_else(error_reply))?;
    }
}

/// Serve the protocol on `input` / `output` until the input ends.
pub fn serve(served: Served, input: impl BufRead + Send + 'static, output: impl Write + Send + 'static) -> Result<()> {
    let io: Shared = Arc::new(Mutex::new(Io { input: Box::new(input), output: Box::new(output) }));
    let version = env!("CARGO_PKG_VERSION");
    let greeting = json!({
        "adapter": "witness-adapter",
        "version": version,
        "protocol": PROTOCOL_VERSION,
        "features": if served.asynchronous { json!(["resources", "async"]) } else { json!(["resources"]) },
    });
    lock(&io).send(&greeting)?;
    let mut compiled: Option<(Box<dyn Compiled>, Arc<Artifact>)> = None;
    let mut next = None;
    loop {
        let request = match next.take() {
            Some(r) => r,
            None => match lock(&io).receive()? {
                Some(r) => r,
                None => return Ok(()),
            },
        };
        match (request["op"].as_str(), compiled.as_mut()) {
            (Some("compile"), _) => {
                compiled = None;
                let made = artifact_of(&request).and_then(|artifact| {
                    let artifact = Arc::new(artifact);
                    let runtime = if artifact.core.is_some() { &served.module } else { &served.component };
                    Ok((runtime.compile(artifact.clone())?, artifact))
                });
                let reply = match made {
                    Ok(c) => {
                        compiled = Some(c);
                        json!({ "ok": null })
                    }
                    Err(e) => error_reply(e),
                };
                lock(&io).reply(&request, reply)?;
            }
            (Some("instantiate"), Some((c, artifact))) => {
                let artifact = artifact.clone();
                match serve_instance(&io, c.as_mut(), &artifact, &request)? {
                    Some(r) => next = Some(r),
                    None => return Ok(()),
                }
            }
            (Some("instantiate" | "call" | "drop"), _) => {
                let what = if compiled.is_none() { "`compile`" } else { "`instantiate`" };
                lock(&io).reply(&request, json!({ "error": format!("{} before {what}", request["op"]) }))?;
            }
            _ => lock(&io).reply(&request, json!({ "error": format!("unknown request {request}") }))?,
        }
    }
}
