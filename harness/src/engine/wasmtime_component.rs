//! `wasmtime`: the scripted guest as a component on Wasmtime; the host calls exports and
//! implements imports with the dynamic `component::Val` API, so Wasmtime's own Canonical ABI
//! does all lowering and lifting. Post-return runs inside `Func::call` (Wasmtime 48); the
//! guest's log shows it.

use std::collections::VecDeque;

use anyhow::{Result, anyhow, bail};
use wasmtime::component::{
    Component, ComponentExportIndex, Func, InstancePre, Linker, ResourceAny, ResourceDynamic, Val,
};
use wasmtime::{AsContextMut, Config, Store, StoreContextMut};

use super::prepared::ImportType;
use super::resources::{is_guest_resource, resource_owner};
use super::{Case, Engine, ExportCall, HarnessError, HostEvent, Outcome, Prepared, Step};
use crate::encode::guest::{EntryKind, ImportKind, LOAD_CHUNK, control_interface};
use crate::encode::script::parse_log;
use crate::reference::types::{ResourceType, ValType, despecialize};
use crate::reference::value::{HostString, Value};
use crate::reference::{Trap, TrapKind};

/// Fuel per case.
pub const FUEL: u64 = 10_000_000;

/// Wasmtime's trap messages and trap codes, by class. The first matching substring wins; a
/// message matching none is `Unclassified`, a finding in itself.
pub const TRAP_TABLE: &[(&str, TrapKind)] = &[
    ("realloc return: result not aligned", TrapKind::ReallocMisaligned),
    ("realloc return: beyond end of memory", TrapKind::ReallocOutOfBounds),
    ("pointer not aligned", TrapKind::MisalignedPointer),
    ("pointer is not aligned", TrapKind::MisalignedPointer),
    ("unaligned pointer", TrapKind::MisalignedPointer),
    ("out of bounds of memory", TrapKind::OutOfBounds),
    ("pointer out of bounds", TrapKind::OutOfBounds),
    ("content out-of-bounds", TrapKind::OutOfBounds),
    ("invalid variant discriminant", TrapKind::InvalidDiscriminant),
    ("invalid option discriminant", TrapKind::InvalidDiscriminant),
    ("invalid expected discriminant", TrapKind::InvalidDiscriminant),
    ("out of range [0..", TrapKind::InvalidDiscriminant),
    ("invalid `char` bit pattern", TrapKind::InvalidChar),
    ("converted integer out of range for `char`", TrapKind::InvalidChar),
    ("invalid utf8 encoding", TrapKind::InvalidUtf8),
    ("invalid utf-8 sequence", TrapKind::InvalidUtf8),
    ("incomplete utf-8 byte sequence", TrapKind::InvalidUtf8),
    ("invalid utf16 encoding", TrapKind::InvalidUtf16),
    ("unpaired surrogate", TrapKind::InvalidUtf16),
    ("unknown handle index", TrapKind::UnknownHandle),
    ("is not a resource", TrapKind::HandleTypeMismatch),
    ("used with the wrong type", TrapKind::HandleTypeMismatch),
    ("resource type mismatch", TrapKind::HandleTypeMismatch),
    ("mismatched resource types", TrapKind::HandleTypeMismatch),
    ("cannot lift own resource from a borrow", TrapKind::NotOwned),
    ("is not an own resource", TrapKind::NotOwned),
    ("while borrowed", TrapKind::HandleLent),
    ("borrow handles still remain", TrapKind::BorrowNotDropped),
    ("cannot allocate another handle", TrapKind::TableFull),
    ("cannot leave component instance", TrapKind::MayNotLeave),
    ("cannot enter component instance", TrapKind::Reentrance),
    ("wasm `unreachable` instruction executed", TrapKind::GuestTrap),
    ("out of bounds memory access", TrapKind::GuestTrap),
    ("all fuel consumed", TrapKind::GuestTrap),
    ("undefined element", TrapKind::GuestTrap),
    ("uninitialized element", TrapKind::GuestTrap),
    ("indirect call type mismatch", TrapKind::GuestTrap),
    ("integer overflow", TrapKind::GuestTrap),
    ("integer divide by zero", TrapKind::GuestTrap),
    ("invalid conversion to integer", TrapKind::GuestTrap),
    ("call stack exhausted", TrapKind::GuestTrap),
];

/// The error's message chain without Wasmtime's wasm backtrace lines.
fn strip_backtrace(message: &str) -> String {
    message
        .lines()
        .filter(|l| !l.starts_with("error while executing at wasm backtrace"))
        .map(|l| {
            let t = l.trim_start();
            // "    3:    0x6a9 - <unknown>!<wasm function 10>: the message" keeps "the message".
            if t.split(':').next().is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())) {
                t.rsplit_once(">: ").map_or("", |(_, m)| m)
            } else {
                l
            }
        })
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Classify an error Wasmtime returned from a call.
pub fn classify(e: &wasmtime::Error) -> Trap {
    let chain = strip_backtrace(&format!("{e:#}"));
    let message = match e.downcast_ref::<wasmtime::Trap>() {
        Some(t) => format!("{t}: {chain}"),
        None => chain,
    };
    let kind = TRAP_TABLE.iter().find(|(m, _)| message.contains(m)).map_or(TrapKind::Unclassified, |&(_, k)| k);
    Trap::new(kind, message)
}

/// Store data: what the host's imports return, what they received, and the guest resources
/// the host holds (by slot).
#[derive(Default)]
pub struct Ctx {
    results: VecDeque<Option<Value>>,
    events: Vec<HostEvent>,
    slots: Vec<Option<ResourceAny>>,
    limits: wasmtime::StoreLimits,
}

/// Store data that keeps the guest resources the host holds, by slot.
pub(crate) trait GuestSlots: 'static {
    fn slots(&mut self) -> &mut Vec<Option<ResourceAny>>;
}

impl GuestSlots for Ctx {
    fn slots(&mut self) -> &mut Vec<Option<ResourceAny>> {
        &mut self.slots
    }
}

/// Handles through a store: host resources are `ResourceDynamic`s typed by the reference
/// resource id; guest resources the host receives go to slots.
pub(crate) struct StoreHandles<'a, 's, T: GuestSlots> {
    pub(crate) store: &'a mut StoreContextMut<'s, T>,
}

impl<T: GuestSlots> HandleMap for StoreHandles<'_, '_, T> {
    fn lower(&mut self, rt: &ResourceType, own: bool, x: u32) -> Result<Val> {
        if is_guest_resource(rt) {
            let slots = self.store.data_mut().slots();
            let slot = slots.get_mut(x as usize).ok_or_else(|| anyhow!("no host slot {x}"))?;
            let any = if own { slot.take() } else { *slot };
            return Ok(Val::Resource(any.ok_or_else(|| anyhow!("host slot {x} is empty"))?));
        }
        // A borrow is lent from an owned host resource: Wasmtime 48 panics ("BUG: no current
        // scope") when a host borrow becomes a ResourceAny outside a call. The owned one is
        // never dropped, so no destructor runs that the spec would not run.
        let r = ResourceDynamic::new_own(x, rt.id);
        Ok(Val::Resource(r.try_into_resource_any(&mut *self.store).map_err(|e| anyhow!("{e:#}"))?))
    }

    fn lift(&mut self, rt: &ResourceType, any: ResourceAny) -> Result<u32> {
        if is_guest_resource(rt) {
            let slots = self.store.data_mut().slots();
            slots.push(Some(any));
            return Ok(slots.len() as u32 - 1);
        }
        let r = ResourceDynamic::try_from_resource_any(any, &mut *self.store).map_err(|e| anyhow!("{e:#}"))?;
        Ok(r.rep())
    }
}

/// How handles convert between host-side values and Wasmtime's `ResourceAny`.
pub trait HandleMap {
    /// Host-side handle `x` (a rep for host resources, a slot for guest ones) as a `Val`.
    fn lower(&mut self, rt: &ResourceType, own: bool, x: u32) -> Result<Val>;
    /// A resource Wasmtime handed to the host, as a host-side handle.
    fn lift(&mut self, rt: &ResourceType, any: ResourceAny) -> Result<u32>;
}

/// For values without handles.
pub struct NoHandles;

impl HandleMap for NoHandles {
    fn lower(&mut self, _: &ResourceType, _: bool, _: u32) -> Result<Val> {
        bail!("handles need a store")
    }
    fn lift(&mut self, _: &ResourceType, _: ResourceAny) -> Result<u32> {
        bail!("handles need a store")
    }
}

/// A reference value as a Wasmtime `Val` of type `t` (no handles inside).
pub fn to_val(t: &ValType, v: &Value) -> Result<Val> {
    to_val_with(t, v, &mut NoHandles)
}

/// A Wasmtime `Val` of type `t` as a reference value (no handles inside).
pub fn from_val(t: &ValType, v: &Val) -> Result<Value> {
    from_val_with(t, v, &mut NoHandles)
}

/// A reference value as a Wasmtime `Val` of type `t`.
pub fn to_val_with(t: &ValType, v: &Value, h: &mut dyn HandleMap) -> Result<Val> {
    let bad = || anyhow!("value {v:?} does not have type {t:?}");
    let to_val = |t: &ValType, v: &Value, h: &mut dyn HandleMap| to_val_with(t, v, h);
    Ok(match (t, v) {
        (ValType::Bool, Value::Bool(x)) => Val::Bool(*x),
        (ValType::S8, Value::S8(x)) => Val::S8(*x),
        (ValType::U8, Value::U8(x)) => Val::U8(*x),
        (ValType::S16, Value::S16(x)) => Val::S16(*x),
        (ValType::U16, Value::U16(x)) => Val::U16(*x),
        (ValType::S32, Value::S32(x)) => Val::S32(*x),
        (ValType::U32, Value::U32(x)) => Val::U32(*x),
        (ValType::S64, Value::S64(x)) => Val::S64(*x),
        (ValType::U64, Value::U64(x)) => Val::U64(*x),
        (ValType::F32, Value::F32(x)) => Val::Float32(*x),
        (ValType::F64, Value::F64(x)) => Val::Float64(*x),
        (ValType::Char, Value::Char(x)) => Val::Char(*x),
        (ValType::String, Value::String(s)) => Val::String(s.text.clone()),
        (ValType::List(e, None), Value::List(xs)) => {
            Val::List(xs.iter().map(|x| to_val(e, x, h)).collect::<Result<_>>()?)
        }
        (ValType::List(e, Some(_)), Value::List(xs)) => {
            Val::FixedLengthList(xs.iter().map(|x| to_val(e, x, h)).collect::<Result<_>>()?)
        }
        (ValType::Own(rt), Value::Handle(x)) => h.lower(rt, true, *x)?,
        (ValType::Borrow(rt), Value::Handle(x)) => h.lower(rt, false, *x)?,
        (ValType::Record(fields), Value::Record(xs)) => Val::Record(
            fields
                .iter()
                .map(|f| {
                    let (_, x) = xs.iter().find(|(l, _)| *l == f.label).ok_or_else(bad)?;
                    Ok((f.label.clone(), to_val(&f.t, x, h)?))
                })
                .collect::<Result<_>>()?,
        ),
        (ValType::Tuple(ts), Value::Record(xs)) if ts.len() == xs.len() => {
            Val::Tuple(ts.iter().zip(xs).map(|(t, (_, x))| to_val(t, x, h)).collect::<Result<_>>()?)
        }
        (ValType::Variant(cases), Value::Variant(label, p)) => {
            let case = cases.iter().find(|c| c.label == *label).ok_or_else(bad)?;
            let payload = match (&case.t, p) {
                (Some(t), Some(p)) => Some(Box::new(to_val(t, p, h)?)),
                (None, None) => None,
                _ => return Err(bad()),
            };
            Val::Variant(label.clone(), payload)
        }
        (ValType::Enum(_), Value::Variant(label, None)) => Val::Enum(label.clone()),
        (ValType::Option(t), Value::Variant(label, p)) => match (label.as_str(), p) {
            ("none", None) => Val::Option(None),
            ("some", Some(p)) => Val::Option(Some(Box::new(to_val(t, p, h)?))),
            _ => return Err(bad()),
        },
        (ValType::Result(ok, err), Value::Variant(label, p)) => {
            let mut side = |t: &Option<Box<ValType>>| -> Result<Option<Box<Val>>> {
                match (t, p) {
                    (Some(t), Some(p)) => Ok(Some(Box::new(to_val(t, p, h)?))),
                    (None, None) => Ok(None),
                    _ => Err(bad()),
                }
            };
            match label.as_str() {
                "ok" => Val::Result(Ok(side(ok)?)),
                "error" => Val::Result(Err(side(err)?)),
                _ => return Err(bad()),
            }
        }
        (ValType::Flags(_), Value::Flags(set)) => Val::Flags(set.clone()),
        _ => return Err(bad()),
    })
}

/// A Wasmtime `Val` of type `t` as a reference value.
pub fn from_val_with(t: &ValType, v: &Val, h: &mut dyn HandleMap) -> Result<Value> {
    let bad = || anyhow!("Wasmtime value {v:?} does not have type {t:?}");
    let from_val = |t: &ValType, v: &Val, h: &mut dyn HandleMap| from_val_with(t, v, h);
    Ok(match (despecialize(t).as_ref(), t, v) {
        (_, ValType::Bool, Val::Bool(x)) => Value::Bool(*x),
        (_, ValType::S8, Val::S8(x)) => Value::S8(*x),
        (_, ValType::U8, Val::U8(x)) => Value::U8(*x),
        (_, ValType::S16, Val::S16(x)) => Value::S16(*x),
        (_, ValType::U16, Val::U16(x)) => Value::U16(*x),
        (_, ValType::S32, Val::S32(x)) => Value::S32(*x),
        (_, ValType::U32, Val::U32(x)) => Value::U32(*x),
        (_, ValType::S64, Val::S64(x)) => Value::S64(*x),
        (_, ValType::U64, Val::U64(x)) => Value::U64(*x),
        (_, ValType::F32, Val::Float32(x)) => Value::F32(*x),
        (_, ValType::F64, Val::Float64(x)) => Value::F64(*x),
        (_, ValType::Char, Val::Char(x)) => Value::Char(*x),
        (_, ValType::String, Val::String(s)) => Value::String(HostString::utf8(s)),
        (_, ValType::List(e, _), Val::List(xs) | Val::FixedLengthList(xs)) => {
            Value::List(xs.iter().map(|x| from_val(e, x, h)).collect::<Result<_>>()?)
        }
        (_, ValType::Record(fields), Val::Record(xs)) => Value::Record(
            fields
                .iter()
                .map(|f| {
                    let (_, x) = xs.iter().find(|(l, _)| *l == f.label).ok_or_else(bad)?;
                    Ok((f.label.clone(), from_val(&f.t, x, h)?))
                })
                .collect::<Result<_>>()?,
        ),
        (_, ValType::Tuple(ts), Val::Tuple(xs)) if ts.len() == xs.len() => {
            Value::tuple(ts.iter().zip(xs).map(|(t, x)| from_val(t, x, h)).collect::<Result<Vec<_>>>()?)
        }
        (ValType::Variant(cases), ValType::Variant(_), Val::Variant(label, p)) => {
            let case = cases.iter().find(|c| c.label == *label).ok_or_else(bad)?;
            let payload = match (&case.t, p) {
                (Some(t), Some(p)) => Some(from_val(t, p, h)?),
                (None, None) => None,
                _ => return Err(bad()),
            };
            Value::case(label, payload)
        }
        (_, ValType::Enum(labels), Val::Enum(label)) if labels.contains(label) => Value::case(label, None),
        (_, ValType::Option(t), Val::Option(p)) => match p {
            None => Value::case("none", None),
            Some(p) => Value::case("some", Some(from_val(t, p, h)?)),
        },
        (_, ValType::Result(ok, err), Val::Result(r)) => {
            let mut side = |t: &Option<Box<ValType>>, p: &Option<Box<Val>>| -> Result<Option<Value>> {
                match (t, p) {
                    (Some(t), Some(p)) => Ok(Some(from_val(t, p, h)?)),
                    (None, None) => Ok(None),
                    _ => Err(bad()),
                }
            };
            match r {
                Ok(p) => Value::case("ok", side(ok, p)?),
                Err(p) => Value::case("error", side(err, p)?),
            }
        }
        (_, ValType::Flags(labels), Val::Flags(set)) => {
            Value::Flags(labels.iter().filter(|l| set.contains(l)).cloned().collect())
        }
        (_, ValType::Own(rt) | ValType::Borrow(rt), Val::Resource(any)) => Value::Handle(h.lift(rt, *any)?),
        _ => return Err(bad()),
    })
}

pub struct WasmtimeEngine<'p> {
    prepared: &'p Prepared,
    engine: wasmtime::Engine,
    pre: InstancePre<Ctx>,
    /// Export index of each function export k.
    exports: Vec<ComponentExportIndex>,
    load: ComponentExportIndex,
    reset: ComponentExportIndex,
    read_log: ComponentExportIndex,
}

impl<'p> WasmtimeEngine<'p> {
    pub fn new(prepared: &'p Prepared) -> Result<WasmtimeEngine<'p>> {
        let mut config = Config::new();
        config.wasm_component_model(true).consume_fuel(true);
        let engine = wasmtime::Engine::new(&config)?;
        let component = Component::new(&engine, &prepared.component)
            .map_err(|e| anyhow!("Wasmtime rejects the guest component: {e:#}"))?;
        let mut linker = Linker::<Ctx>::new(&engine);
        for (thunk, (imp, ty)) in prepared.spec.imports.iter().zip(&prepared.imports).enumerate() {
            let (ImportKind::Func { interface, func }, ImportType::Func { ft, .. }) = (&imp.kind, ty) else { continue };
            let ft = ft.clone();
            let thunk = thunk as u32;
            let host = move |mut store: wasmtime::StoreContextMut<'_, Ctx>,
                             _ty: wasmtime::component::types::ComponentFunc,
                             params: &[Val],
                             results: &mut [Val]|
                  -> wasmtime::Result<()> {
                let harness = |e: anyhow::Error| wasmtime::Error::new(HarnessError(format!("{e:#}")));
                let mut h = StoreHandles { store: &mut store };
                let args = ft
                    .params
                    .iter()
                    .zip(params)
                    .map(|((_, t), v)| from_val_with(t, v, &mut h))
                    .collect::<Result<Vec<_>>>()
                    .map_err(harness)?;
                let ctx = store.data_mut();
                ctx.events.push(HostEvent::Import { thunk, args });
                let result = ctx
                    .results
                    .pop_front()
                    .ok_or_else(|| harness(anyhow!("no planned result for this import call")))?;
                let mut h = StoreHandles { store: &mut store };
                match (&ft.result, result, results.first_mut()) {
                    (Some(t), Some(v), Some(slot)) => *slot = to_val_with(t, &v, &mut h).map_err(harness)?,
                    (None, None, None) => {}
                    _ => return Err(harness(anyhow!("planned result does not match the import's type"))),
                }
                Ok(())
            };
            match interface {
                Some(iface) => {
                    let name = prepared.interface_name(*iface, true)?;
                    linker.instance(&name)?.func_new(func, host)?;
                }
                None => {
                    linker.root().func_new(func, host)?;
                }
            }
        }
        // Host resources the guest imports: dynamic host resource types named by the
        // reference's resource id; their destructor is a host event.
        for ty in &prepared.imports {
            let ImportType::ResourceDrop(rt) = ty else { continue };
            if is_guest_resource(rt) {
                continue;
            }
            let dtor = |mut store: wasmtime::StoreContextMut<'_, Ctx>, rep: u32| -> wasmtime::Result<()> {
                store.data_mut().events.push(HostEvent::Dtor { rep });
                Ok(())
            };
            let rty = wasmtime::component::ResourceType::host_dynamic(rt.id);
            match resource_owner(prepared, rt)? {
                Some(iface) => linker.instance(&iface)?.resource(&rt.name, rty, dtor)?,
                None => linker.root().resource(&rt.name, rty, dtor)?,
            }
        }
        linker.define_unknown_imports_as_traps(&component)?;
        let pre = linker.instantiate_pre(&component)?;
        let export_index = |iface: Option<String>, func: &str| -> Result<ComponentExportIndex> {
            let parent = match iface {
                Some(name) => Some(component.get_export_index(None, &name).ok_or_else(|| anyhow!("no export {name}"))?),
                None => None,
            };
            component.get_export_index(parent.as_ref(), func).ok_or_else(|| anyhow!("no export {func}"))
        };
        let mut exports = vec![];
        for e in &prepared.spec.exports {
            if let EntryKind::Func { interface, func } = &e.kind {
                let iface = interface.map(|i| prepared.interface_name(i, false)).transpose()?;
                exports.push(export_index(iface, func)?);
            }
        }
        let control = control_interface(&prepared.wit.resolve, prepared.world)?;
        let control_name = Some(prepared.interface_name(control, false)?);
        Ok(WasmtimeEngine {
            prepared,
            load: export_index(control_name.clone(), "load")?,
            reset: export_index(control_name.clone(), "reset")?,
            read_log: export_index(control_name, "read-log")?,
            engine,
            pre,
            exports,
        })
    }
}

impl WasmtimeEngine<'_> {
    /// One export call; a Wasmtime error (a trap, or a harness error inside a host function)
    /// comes back as is.
    fn call(
        &self,
        store: &mut Store<Ctx>,
        instance: &wasmtime::component::Instance,
        call: &ExportCall,
    ) -> wasmtime::Result<()> {
        let harness = |e: anyhow::Error| wasmtime::Error::new(HarnessError(format!("{e:#}")));
        let (_, ft) = &self.prepared.exports[call.export as usize];
        let f = instance
            .get_func(&mut *store, self.exports[call.export as usize])
            .ok_or_else(|| harness(anyhow!("export is not a function")))?;
        let mut ctx = store.as_context_mut();
        let mut h = StoreHandles { store: &mut ctx };
        let args = ft
            .params
            .iter()
            .zip(&call.args)
            .map(|((_, t), v)| to_val_with(t, v, &mut h))
            .collect::<Result<Vec<_>>>()
            .map_err(harness)?;
        let mut results = vec![Val::Bool(false); ft.result.iter().count()];
        f.call(&mut *store, &args, &mut results)?;
        let mut ctx = store.as_context_mut();
        let mut h = StoreHandles { store: &mut ctx };
        let result = match (&ft.result, results.first()) {
            (Some(t), Some(v)) => Some(from_val_with(t, v, &mut h).map_err(harness)?),
            _ => None,
        };
        store.data_mut().events.push(HostEvent::Returned { export: call.export, result });
        Ok(())
    }
}

impl Engine for WasmtimeEngine<'_> {
    fn name(&self) -> &'static str {
        "wasmtime"
    }

    fn run(&mut self, case: &Case) -> Result<Outcome> {
        let mut store = Store::new(
            &self.engine,
            Ctx {
                results: case.import_results.iter().cloned().collect(),
                events: vec![],
                slots: vec![],
                limits: wasmtime::StoreLimitsBuilder::new().memory_size(super::MEMORY_LIMIT).build(),
            },
        );
        store.limiter(|c| &mut c.limits);
        store.set_fuel(FUEL)?;
        // The spec's handle table holds 2^28 - 1 entries; Wasmtime's default store limit is
        // lower (a denial-of-service cap), which would show up as a false table-full trap.
        store.set_max_component_handles(1 << 28);
        // A fresh instance per case: no state leaks between cases, and a trap poisons only it.
        let instance =
            self.pre.instantiate(&mut store).map_err(|e| anyhow!("instantiating the guest component: {e:#}"))?;
        let func = |store: &mut Store<Ctx>, idx: &ComponentExportIndex| -> Result<Func> {
            instance.get_func(&mut *store, idx).ok_or_else(|| anyhow!("export is not a function"))
        };
        let control = |store: &mut Store<Ctx>, f: Func, args: &[Val], results: &mut [Val]| -> Result<()> {
            f.call(&mut *store, args, results).map_err(|e| anyhow!("control call trapped: {e:#}"))
        };
        let reset = func(&mut store, &self.reset)?;
        control(&mut store, reset, &[], &mut [])?;
        let load = func(&mut store, &self.load)?;
        let image = case.script.control_image()?;
        for (i, chunk) in image.chunks(LOAD_CHUNK).enumerate() {
            let mut padded = chunk.to_vec();
            padded.resize(LOAD_CHUNK, 0);
            let mut args = vec![Val::U32((i * LOAD_CHUNK) as u32)];
            args.extend(padded.chunks(8).map(|w| Val::U64(u64::from_le_bytes(w.try_into().unwrap()))));
            control(&mut store, load, &args, &mut [])?;
        }
        let mut outcome = Outcome::default();
        for step in &case.steps {
            let r = match step {
                Step::Call(call) => self.call(&mut store, &instance, call),
                Step::Drop { slot } => {
                    let any = store.data_mut().slots.get_mut(*slot as usize).and_then(Option::take);
                    let any = any.ok_or_else(|| anyhow!("host slot {slot} holds no resource"))?;
                    any.resource_drop(&mut store)
                        .map(|()| store.data_mut().events.push(HostEvent::Dropped { slot: *slot }))
                }
            };
            if let Err(e) = r {
                if let Some(h) = e.downcast_ref::<HarnessError>() {
                    bail!("{h}");
                }
                outcome.trap = Some(classify(&e));
                break;
            }
        }
        outcome.events = std::mem::take(&mut store.data_mut().events);
        if outcome.trap.is_none() {
            let read_log = func(&mut store, &self.read_log)?;
            let mut out = [Val::Bool(false)];
            control(&mut store, read_log, &[], &mut out)?;
            let Val::List(bytes) = &out[0] else { bail!("read-log returned {:?}", out[0]) };
            let bytes: Vec<u8> = bytes.iter().map(|b| if let Val::U8(b) = b { *b } else { 0 }).collect();
            outcome.log = Some(parse_log(&bytes)?);
        }
        Ok(outcome)
    }
}
