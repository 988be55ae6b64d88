//! An adapter's side of the protocol, served from embedded engines (`witness adapter`): it
//! proves the protocol end to end and is the model for foreign adapters. Components run on
//! Wasmtime (`serve_component`); core modules of the core-module build target run on wasmi
//! with the reference host doing the lowering and lifting (`serve_module`).

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Value as Json, json};

use super::PROTOCOL_VERSION;
use super::json::{ResourceNames, func_from_json};
use crate::reference::types::{FuncType, ResourceType};
use crate::reference::{Trap, TrapKind};
use crate::world::wit::{GUEST_INSTANCE, HOST_INSTANCE};

/// The two ends of the conversation; host functions use them in the middle of a call.
pub(super) struct Io {
    input: Box<dyn BufRead + Send>,
    output: Box<dyn Write + Send>,
}

impl Io {
    pub(super) fn send(&mut self, message: &Json) -> Result<()> {
        writeln!(self.output, "{message}")?;
        Ok(self.output.flush()?)
    }

    /// The next message, or `None` at the end of input.
    pub(super) fn receive(&mut self) -> Result<Option<Json>> {
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&line).with_context(|| format!("not a JSON line: {line:?}"))?))
    }

    /// Send a callback to witness (an import call, a destructor); its answer (`ok`'s value).
    pub(super) fn callback(&mut self, message: &Json) -> Result<Json> {
        self.send(message)?;
        let reply = self.receive()?.ok_or_else(|| anyhow!("input ended in a callback"))?;
        if let Some(e) = reply.get("error") {
            bail!("witness failed the callback {}: {e}", message["op"]);
        }
        reply.get("ok").cloned().ok_or_else(|| anyhow!("bad reply to a callback: {reply}"))
    }

    /// Forward an import call to witness; its result.
    pub(super) fn import_call(&mut self, interface: Option<&str>, name: &str, args: Vec<Json>) -> Result<Json> {
        self.callback(&json!({ "op": "import", "interface": interface, "name": name, "args": args }))
    }
}

pub(super) type Shared = Arc<Mutex<Io>>;

pub(super) fn lock(io: &Shared) -> std::sync::MutexGuard<'_, Io> {
    io.lock().unwrap_or_else(|e| e.into_inner())
}

/// A function declaration of a `compile` request, with the request's `core` field if any.
pub(super) struct Decl {
    pub interface: Option<String>,
    pub name: String,
    pub ft: FuncType,
    pub core: Json,
}

/// The `imports` or `exports` of a `compile` request.
pub(super) fn decls(request: &Json, key: &str, r: &mut dyn ResourceNames) -> Result<Vec<Decl>> {
    let list = request[key].as_array().ok_or_else(|| anyhow!("`{key}` missing"))?;
    list.iter()
        .map(|j| {
            let (interface, name, ft) = func_from_json(j, r)?;
            Ok(Decl { interface, name, ft, core: j["core"].clone() })
        })
        .collect()
}

/// The `args` of a `call` request, checked against the function's arity.
pub(super) fn call_args<'a>(request: &'a Json, ft: &FuncType) -> Result<&'a Vec<Json>> {
    let args = request["args"].as_array().ok_or_else(|| anyhow!("`args` missing"))?;
    if args.len() != ft.params.len() {
        bail!("{} arguments for {} params", args.len(), ft.params.len());
    }
    Ok(args)
}

/// The reply to a call that trapped: the class, unless the trap is unclassified.
pub(super) fn trap_reply(trap: &Trap) -> Json {
    let class = (trap.kind != TrapKind::Unclassified).then_some(trap.kind.name());
    json!({ "trap": { "class": class, "message": trap.message } })
}

/// The resource types a `compile` request names, each made a reference `ResourceType` with
/// its own id (the id of its dynamic host resource type in Wasmtime).
#[derive(Default)]
pub(super) struct RequestResources {
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

/// What a `compile` produced.
pub(super) trait Compiled {
    /// Replace the instance by a fresh one.
    fn instantiate(&mut self) -> Result<()>;
    /// The final reply to a `call` request (`Err`: an adapter error).
    fn call(&mut self, request: &Json) -> Result<Json>;
    /// The final reply to a `drop` request.
    fn drop_handle(&mut self, handle: u32) -> Result<Json>;
}

fn compile(io: &Shared, request: &Json) -> Result<Box<dyn Compiled>> {
    match request["kind"].as_str() {
        Some("component") => Ok(Box::new(super::serve_component::ServedComponent::compile(io, request)?)),
        Some("module") => Ok(Box::new(super::serve_module::ServedModule::compile(io, request)?)),
        other => bail!("unknown kind {other:?}"),
    }
}

/// Serve the protocol on `input` / `output` until the input ends.
pub fn serve(input: impl BufRead + Send + 'static, output: impl Write + Send + 'static) -> Result<()> {
    let io: Shared = Arc::new(Mutex::new(Io { input: Box::new(input), output: Box::new(output) }));
    let version = env!("CARGO_PKG_VERSION");
    let greeting = json!({
        "adapter": "witness-adapter",
        "version": version,
        "protocol": PROTOCOL_VERSION,
        "features": ["resources"],
    });
    lock(&io).send(&greeting)?;
    let mut compiled: Option<Box<dyn Compiled>> = None;
    loop {
        let Some(request) = lock(&io).receive()? else { return Ok(()) };
        let reply = match (request["op"].as_str(), compiled.as_mut()) {
            (Some("compile"), _) => compile(&io, &request).map(|c| {
                compiled = Some(c);
                Json::Null
            }),
            (Some("instantiate"), Some(c)) => c.instantiate().map(|()| Json::Null),
            (Some("call"), Some(c)) => c.call(&request),
            (Some("drop"), Some(c)) => match request["handle"].as_u64().and_then(|h| u32::try_from(h).ok()) {
                Some(h) => c.drop_handle(h),
                None => Err(anyhow!("bad handle in {request}")),
            },
            (Some("instantiate" | "call" | "drop"), None) => Err(anyhow!("{} before `compile`", request["op"])),
            _ => Err(anyhow!("unknown request {request}")),
        };
        let reply = match reply {
            // `call` and `drop` build their whole reply (a value or a trap); the others only succeed.
            Ok(Json::Null) if request["op"] != "call" && request["op"] != "drop" => json!({ "ok": null }),
            Ok(reply) => reply,
            Err(e) => json!({ "error": format!("{e:#}") }),
        };
        lock(&io).send(&reply)?;
    }
}
