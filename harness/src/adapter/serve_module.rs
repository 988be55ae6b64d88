//! `kind: module` in `witness adapter`: a core module of the core-module build target
//! (`cm32p2` or legacy names) on wasmi, with the reference host doing all lowering and lifting
//! — what a core-only runtime's host must do, the handle table included. Import calls and host
//! destructors reach witness through the protocol.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use serde_json::{Value as Json, json};
use wasmi::{Config, Linker, Module, Store};

use super::json::{ResourceNames, value_from_json, value_to_json};
use super::server::{Compiled, Decl, RequestResources, Shared, call_args, decls, lock, trap_reply};
use crate::reference::TrapKind;
use crate::reference::context::ComponentInstance;
use crate::reference::flatten::{Context, CoreFuncType, flatten_functype};
use crate::reference::types::{CoreType, FuncType, PtrType, ResourceType, StringEncoding};
use crate::reference::value::Value;
use crate::runtime::Host;
use crate::runtime::core::{CoreGuest as _, HostState, call_core_export, drop_slot};
use crate::runtime::prepared::ImportType;
use crate::runtime::wasmi::{CoreImport, Ctx, WasmiGuestParts, instantiate, reference_linker};
use crate::world::wit::GUEST_INSTANCE;

/// The module's imports by thunk: (interface, name, type).
type Imports = Arc<Vec<(Option<String>, String, FuncType)>>;

/// The reference host's imports and host destructors go to witness, over the protocol.
struct ProtocolForward {
    io: Shared,
    imports: Imports,
    resources: Arc<RequestResources>,
}

impl Host for ProtocolForward {
    fn import(&mut self, thunk: u32, args: Vec<Value>) -> Result<Option<Value>> {
        let (interface, name, ft) = self.imports.get(thunk as usize).ok_or_else(|| anyhow!("no import"))?;
        let args = ft.params.iter().zip(&args).map(|((_, t), v)| value_to_json(t, v)).collect::<Result<_>>()?;
        let v = lock(&self.io).import_call(interface.as_deref(), name, args)?;
        ft.result.as_ref().map(|t| value_from_json(t, &v)).transpose()
    }

    fn dtor(&mut self, rt: &ResourceType, rep: u32) -> Result<()> {
        let resource = self.resources.name_of(rt)?;
        lock(&self.io).callback(&json!({ "op": "dtor", "resource": resource, "rep": rep }))?;
        Ok(())
    }
}

/// A resource built-in the module imports: `resource-new`, `resource-rep` or `resource-drop`.
fn builtin(j: &Json, names: &mut RequestResources) -> Result<(ImportType, String, String)> {
    let rt = names.resource_of(&j["resource"])?;
    let ty = match j["builtin"].as_str() {
        Some("resource-new") => ImportType::ResourceNew(rt),
        Some("resource-rep") => ImportType::ResourceRep(rt),
        Some("resource-drop") => ImportType::ResourceDrop(rt),
        _ => bail!("unknown built-in in {j}"),
    };
    Ok((ty, text(&j["core"], "module")?, text(&j["core"], "name")?))
}

/// The core signature of a resource built-in: an i32 in, an i32 out but for drop.
fn builtin_sig(ty: &ImportType) -> CoreFuncType {
    let results = if matches!(ty, ImportType::ResourceDrop(_)) { vec![] } else { vec![CoreType::I32] };
    CoreFuncType { params: vec![CoreType::I32], results }
}

/// A core export: its type, core name and post-return.
struct CoreExport {
    ft: FuncType,
    name: String,
    post_return: Option<String>,
}

pub(super) struct ServedModule {
    io: Shared,
    engine: wasmi::Engine,
    module: Module,
    linker: Linker<Ctx>,
    memory: String,
    realloc: String,
    initialize: Option<String>,
    encoding: StringEncoding,
    imports: Imports,
    /// Every import by thunk: the functions, then the resource built-ins.
    import_types: Vec<ImportType>,
    /// The guest's destructor export of each guest resource type (by id).
    dtors: Vec<(u32, String)>,
    resources: Arc<RequestResources>,
    exports: HashMap<(Option<String>, String), CoreExport>,
    running: Option<(Store<Ctx>, HostState, WasmiGuestParts)>,
}

fn text(j: &Json, key: &str) -> Result<String> {
    j[key].as_str().map(str::to_string).ok_or_else(|| anyhow!("`{key}` missing in {j}"))
}

impl ServedModule {
    pub(super) fn compile(io: &Shared, request: &Json) -> Result<ServedModule> {
        let wasm = base64::engine::general_purpose::STANDARD
            .decode(request["wasm"].as_str().ok_or_else(|| anyhow!("`wasm` missing"))?)
            .context("`wasm` is not base64")?;
        let encoding = StringEncoding::parse(&text(request, "encoding")?).ok_or_else(|| anyhow!("bad `encoding`"))?;
        let (memory, realloc) = (text(request, "memory")?, text(request, "realloc")?);
        let mut config = Config::default();
        config.consume_fuel(true);
        let engine = wasmi::Engine::new(&config);
        let module = Module::new(&engine, &wasm[..]).map_err(|e| anyhow!("wasmi rejects the module: {e}"))?;
        let mut names = RequestResources::default();
        for j in request["resources"].as_array().map_or(&[][..], Vec::as_slice) {
            names.resource_of(j)?;
        }
        let imports = decls(request, "imports", &mut names)?;
        let builtins = request["builtins"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|j| builtin(j, &mut names))
            .collect::<Result<Vec<_>>>()?;
        let dtors = request["dtors"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|j| Ok((names.resource_of(&j["resource"])?.id, text(j, "core")?)))
            .collect::<Result<Vec<_>>>()?;
        let mut core_imports = vec![];
        for d in &imports {
            let sig = flatten_functype(PtrType::I32, &d.ft, Context::Lower);
            core_imports.push((text(&d.core, "module")?, text(&d.core, "name")?, sig));
        }
        for (ty, module, name) in &builtins {
            core_imports.push((module.clone(), name.clone(), builtin_sig(ty)));
        }
        let linker = reference_linker(
            &engine,
            core_imports.iter().map(|(module, name, sig)| CoreImport { module, name, sig }),
            &memory,
            &realloc,
        )?;
        let mut exports = HashMap::new();
        for Decl { interface, name, ft, core } in decls(request, "exports", &mut names)? {
            let post_return = core["post-return"].as_str().map(str::to_string);
            exports.insert((interface, name), CoreExport { ft, name: text(&core, "name")?, post_return });
        }
        let import_types = imports
            .iter()
            .map(|d| ImportType::Func { name: d.name.clone(), ft: d.ft.clone() })
            .chain(builtins.into_iter().map(|(ty, _, _)| ty))
            .collect();
        Ok(ServedModule {
            io: io.clone(),
            engine,
            module,
            linker,
            memory,
            realloc,
            initialize: request["initialize"].as_str().map(str::to_string),
            encoding,
            imports: Arc::new(imports.into_iter().map(|d| (d.interface, d.name, d.ft)).collect()),
            import_types,
            dtors,
            resources: Arc::new(names),
            exports,
            running: None,
        })
    }
}

impl Compiled for ServedModule {
    fn instantiate(&mut self) -> Result<()> {
        self.running = None;
        let host = HostState {
            inst: ComponentInstance::new(GUEST_INSTANCE),
            encoding: self.encoding,
            imports: self.import_types.clone(),
            dtors: self.dtors.clone(),
            present: true,
            host: Box::new(ProtocolForward {
                io: self.io.clone(),
                imports: self.imports.clone(),
                resources: self.resources.clone(),
            }),
            ..HostState::default()
        };
        let (mut store, mut host, parts) =
            instantiate(&self.engine, &self.linker, &self.module, host, &self.memory, &self.realloc)?;
        if let Some(init) = self.initialize.as_deref().filter(|i| parts.exports.contains_key(*i)) {
            parts.guest(&mut store).call(init, &[], &mut host).map_err(|t| anyhow!("{init} trapped: {t}"))?;
        }
        self.running = Some((store, host, parts));
        Ok(())
    }

    fn call(&mut self, request: &Json) -> Result<Json> {
        let (store, host, parts) = self.running.as_mut().ok_or_else(|| anyhow!("`call` before `instantiate`"))?;
        let key = (request["interface"].as_str().map(str::to_string), request["name"].as_str().unwrap_or("").into());
        let export = self.exports.get(&key).ok_or_else(|| anyhow!("no declared export {key:?}"))?;
        let ft = &export.ft;
        let args = ft
            .params
            .iter()
            .zip(call_args(request, ft)?)
            .map(|((_, t), j)| value_from_json(t, j))
            .collect::<Result<Vec<_>>>()?;
        let mut guest = parts.guest(store);
        match call_core_export(host, &mut guest, &export.name, export.post_return.as_deref(), ft, &args) {
            Ok(result) => {
                let result = match (&ft.result, result) {
                    (Some(t), Some(v)) => value_to_json(t, &v)?,
                    _ => Json::Null,
                };
                Ok(json!({ "ok": result }))
            }
            Err(t) if t.kind == TrapKind::Assertion => bail!("{t}"),
            Err(t) => Ok(trap_reply(&t)),
        }
    }

    fn drop_handle(&mut self, handle: u32) -> Result<Json> {
        let (store, host, parts) = self.running.as_mut().ok_or_else(|| anyhow!("`drop` before `instantiate`"))?;
        match drop_slot(host, &mut parts.guest(store), handle) {
            Ok(()) => Ok(json!({ "ok": null })),
            Err(t) if t.kind == TrapKind::Assertion => bail!("{t}"),
            Err(t) => Ok(trap_reply(&t)),
        }
    }
}
