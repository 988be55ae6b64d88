//! `wasmtime` (and `wasmtime-winch`, `wasmtime-pulley`): the guest component on Wasmtime; the
//! host calls exports and implements imports with the dynamic `component::Val` API, so
//! Wasmtime's own Canonical ABI does all lowering and lifting. Post-return runs inside
//! `Func::call` (Wasmtime 48); the guest's log shows it. A composition's component is the
//! composite, with no imports: its values cross Wasmtime's fused adapters.

use std::cell::RefCell;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, ResourceAny, ResourceDynamic, Val};
use wasmtime::{AsContextMut, Config, Store, StoreContextMut};

use super::artifact::{Artifact, Import};
use super::resources::is_guest_resource;
use super::{Compiled, FUEL, HarnessError, Host, Instance, MAX_HANDLES, MEMORY_LIMIT, Runtime, Unsupported};
use crate::reference::types::{FuncType, ResourceType, ValType, despecialize};
use crate::reference::value::{HostString, Value};
use crate::reference::{Trap, TrapKind};

/// Wasmtime's trap messages and trap codes, by class. The first matching substring wins; a
/// message matching none is `Unclassified`, a finding in itself.
pub const TRAP_TABLE: &[(&str, TrapKind)] = &[
    // 🔀 The async ABI (wasmtime-environ's `Trap` texts).
    ("async-lifted export failed to produce a result", TrapKind::TaskNotResolved),
    ("deadlock detected: event loop cannot make further progress", TrapKind::WouldDeadlock),
    ("called more than once for current task", TrapKind::TaskAlreadyResolved),
    ("called by task which has not been cancelled", TrapKind::CancelNotDelivered),
    ("`subtask.cancel` called after terminal status delivered", TrapKind::SubtaskState),
    ("cannot drop a subtask which has not yet resolved", TrapKind::SubtaskState),
    ("invalid `task.return` signature and/or options", TrapKind::TaskReturnMismatch),
    ("cannot drop waitable set with waiters", TrapKind::WaitableSetBusy),
    // Wasmtime's resource table refuses to delete a waitable set that has members (children).
    ("resource has children", TrapKind::WaitableSetBusy),
    ("backpressure counter overflow", TrapKind::BackpressureRange),
    ("unsupported callback code", TrapKind::InvalidCallbackCode),
    ("cannot resume thread which is not suspended", TrapKind::ThreadNotSuspended),
    ("cannot have concurrent operations active on a future/stream", TrapKind::CopyState),
    ("stream read/write count too large", TrapKind::BufferTooLong),
    ("cannot be used synchronously while added to a waitable set", TrapKind::InWaitableSet),
    // "cannot lift stream while it's in a waitable set" (lift_async_value).
    ("while it's in a waitable set", TrapKind::InWaitableSet),
    ("after being notified that the readable end dropped", TrapKind::CopyState),
    ("after being notified that the writable end dropped", TrapKind::CopyState),
    ("after previous write succeeded or readable end dropped", TrapKind::CopyState),
    ("after previous read succeeded", TrapKind::CopyState),
    ("cancelled when no write is pending", TrapKind::CopyState),
    ("cancelled when no read is pending", TrapKind::CopyState),
    ("cannot drop busy", TrapKind::CopyState),
    // Dropping a readable end mid-copy ("cannot remove busy future").
    ("cannot remove busy", TrapKind::CopyState),
    // The other end of the right stream or future: "passed read end to `future.drop-writable`".
    ("passed read end to", TrapKind::HandleTypeMismatch),
    ("passed write end to", TrapKind::HandleTypeMismatch),
    ("without first writing a value", TrapKind::FutureNotWritten),
    // "handle is not a waitable-set", "... a subtask", "... a readable end of a stream", ...
    ("handle is not a", TrapKind::HandleTypeMismatch),
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

/// Store data: the guest resources the host holds (by slot). It must be `Send` for Wasmtime's
/// async calls, so the host behind the imports (whose values may hold `Rc`s) is not in it: it
/// is seated on the calling thread for the length of each call (`Seat`).
pub struct Data {
    slots: Vec<Option<ResourceAny>>,
    limits: wasmtime::StoreLimits,
}

thread_local! {
    /// The host of the Wasmtime call running on this thread.
    static SEATED_HOST: RefCell<Option<Box<dyn Host>>> = const { RefCell::new(None) };
}

/// Run `f` on the host of the call running on this thread.
fn with_host<R>(f: impl FnOnce(&mut dyn Host) -> Result<R>) -> Result<R> {
    SEATED_HOST.with(|seated| {
        let mut seated = seated.try_borrow_mut().map_err(|_| anyhow!("the host was reached from inside itself"))?;
        let host = seated.as_mut().ok_or_else(|| anyhow!("no host is seated on this thread"))?;
        f(host.as_mut())
    })
}

/// A host seated on this thread for one call into Wasmtime; it goes home when the seat drops.
struct Seat<'a> {
    home: &'a mut Option<Box<dyn Host>>,
}

impl<'a> Seat<'a> {
    fn new(home: &'a mut Option<Box<dyn Host>>) -> Result<Seat<'a>> {
        let host = home.take().ok_or_else(|| anyhow!("the instance's host is gone"))?;
        SEATED_HOST.with(|seated| {
            let mut seated = seated.try_borrow_mut().map_err(|_| anyhow!("a Wasmtime call inside a host call"))?;
            if seated.is_some() {
                bail!("another Wasmtime call is running on this thread");
            }
            *seated = Some(host);
            Ok(())
        })?;
        Ok(Seat { home })
    }
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        *self.home = SEATED_HOST.with(|seated| seated.try_borrow_mut().ok().and_then(|mut s| s.take()));
    }
}

/// Poll Wasmtime's future of an async call until it is ready. Host functions are synchronous,
/// so nothing outside the future wakes it: each poll runs it as far as it can go, and a future
/// still pending after `MAX_POLLS` polls is a failure, never a hang.
fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    const MAX_POLLS: u32 = 1_000_000;
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..MAX_POLLS {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Ok(v);
        }
    }
    bail!("Wasmtime's async call was still pending after {MAX_POLLS} polls")
}

/// Store data that keeps the guest resources the host holds, by slot.
pub(crate) trait GuestSlots: 'static {
    fn slots(&mut self) -> &mut Vec<Option<ResourceAny>>;
}

impl GuestSlots for Data {
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
pub fn value_to_val(t: &ValType, v: &Value) -> Result<Val> {
    value_to_val_with(t, v, &mut NoHandles)
}

/// A Wasmtime `Val` of type `t` as a reference value (no handles inside).
pub fn val_to_value(t: &ValType, v: &Val) -> Result<Value> {
    val_to_value_with(t, v, &mut NoHandles)
}

/// A reference value as a Wasmtime `Val` of type `t`.
pub fn value_to_val_with(t: &ValType, v: &Value, h: &mut dyn HandleMap) -> Result<Val> {
    let bad = || anyhow!("value {v:?} does not have type {t:?}");
    let recurse = |t: &ValType, v: &Value, h: &mut dyn HandleMap| value_to_val_with(t, v, h);
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
            Val::List(xs.iter().map(|x| recurse(e, x, h)).collect::<Result<_>>()?)
        }
        (ValType::List(e, Some(_)), Value::List(xs)) => {
            Val::FixedLengthList(xs.iter().map(|x| recurse(e, x, h)).collect::<Result<_>>()?)
        }
        (ValType::Map(k, v), Value::List(entries)) => Val::Map(
            entries
                .iter()
                .map(|entry| match entry {
                    Value::Record(kv) if kv.len() == 2 => Ok((recurse(k, &kv[0].1, h)?, recurse(v, &kv[1].1, h)?)),
                    other => Err(anyhow!("map entry {other:?} is not a (key, value) tuple")),
                })
                .collect::<Result<_>>()?,
        ),
        (ValType::Own(rt), Value::Handle(x)) => h.lower(rt, true, *x)?,
        (ValType::Borrow(rt), Value::Handle(x)) => h.lower(rt, false, *x)?,
        (ValType::Record(fields), Value::Record(xs)) => Val::Record(
            fields
                .iter()
                .map(|f| {
                    let (_, x) = xs.iter().find(|(l, _)| *l == f.label).ok_or_else(bad)?;
                    Ok((f.label.clone(), recurse(&f.t, x, h)?))
                })
                .collect::<Result<_>>()?,
        ),
        (ValType::Tuple(ts), Value::Record(xs)) if ts.len() == xs.len() => {
            Val::Tuple(ts.iter().zip(xs).map(|(t, (_, x))| recurse(t, x, h)).collect::<Result<_>>()?)
        }
        (ValType::Variant(cases), Value::Variant(label, p)) => {
            let case = cases.iter().find(|c| c.label == *label).ok_or_else(bad)?;
            let payload = match (&case.t, p) {
                (Some(t), Some(p)) => Some(Box::new(recurse(t, p, h)?)),
                (None, None) => None,
                _ => return Err(bad()),
            };
            Val::Variant(label.clone(), payload)
        }
        (ValType::Enum(_), Value::Variant(label, None)) => Val::Enum(label.clone()),
        (ValType::Option(t), Value::Variant(label, p)) => match (label.as_str(), p) {
            ("none", None) => Val::Option(None),
            ("some", Some(p)) => Val::Option(Some(Box::new(recurse(t, p, h)?))),
            _ => return Err(bad()),
        },
        (ValType::Result(ok, err), Value::Variant(label, p)) => {
            let mut side = |t: &Option<Arc<ValType>>| -> Result<Option<Box<Val>>> {
                match (t, p) {
                    (Some(t), Some(p)) => Ok(Some(Box::new(recurse(t, p, h)?))),
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
pub fn val_to_value_with(t: &ValType, v: &Val, h: &mut dyn HandleMap) -> Result<Value> {
    let bad = || anyhow!("Wasmtime value {v:?} does not have type {t:?}");
    let recurse = |t: &ValType, v: &Val, h: &mut dyn HandleMap| val_to_value_with(t, v, h);
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
            Value::List(xs.iter().map(|x| recurse(e, x, h)).collect::<Result<_>>()?)
        }
        (_, ValType::Map(k, v), Val::Map(entries)) => Value::List(
            entries
                .iter()
                .map(|(key, val)| Ok(Value::tuple([recurse(k, key, h)?, recurse(v, val, h)?])))
                .collect::<Result<_>>()?,
        ),
        (_, ValType::Record(fields), Val::Record(xs)) => Value::Record(
            fields
                .iter()
                .map(|f| {
                    let (_, x) = xs.iter().find(|(l, _)| *l == f.label).ok_or_else(bad)?;
                    Ok((f.label.clone(), recurse(&f.t, x, h)?))
                })
                .collect::<Result<_>>()?,
        ),
        (_, ValType::Tuple(ts), Val::Tuple(xs)) if ts.len() == xs.len() => {
            Value::tuple(ts.iter().zip(xs).map(|(t, x)| recurse(t, x, h)).collect::<Result<Vec<_>>>()?)
        }
        (ValType::Variant(cases), ValType::Variant(_), Val::Variant(label, p)) => {
            let case = cases.iter().find(|c| c.label == *label).ok_or_else(bad)?;
            let payload = match (&case.t, p) {
                (Some(t), Some(p)) => Some(recurse(t, p, h)?),
                (None, None) => None,
                _ => return Err(bad()),
            };
            Value::case(label, payload)
        }
        (_, ValType::Enum(labels), Val::Enum(label)) if labels.contains(label) => Value::case(label, None),
        (_, ValType::Option(t), Val::Option(p)) => match p {
            None => Value::case("none", None),
            Some(p) => Value::case("some", Some(recurse(t, p, h)?)),
        },
        (_, ValType::Result(ok, err), Val::Result(r)) => {
            let mut side = |t: &Option<Arc<ValType>>, p: &Option<Box<Val>>| -> Result<Option<Value>> {
                match (t, p) {
                    (Some(t), Some(p)) => Ok(Some(recurse(t, p, h)?)),
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

/// Which of Wasmtime's code generators runs the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Cranelift,
    Winch,
    Pulley,
}

/// The names of the three runtimes of this file.
pub const NAME: &str = "wasmtime";
pub const WINCH: &str = "wasmtime-winch";
pub const PULLEY: &str = "wasmtime-pulley";

/// The `wasmtime` runtime.
pub fn cranelift() -> Box<dyn Runtime> {
    Box::new(WasmtimeRuntime(Strategy::Cranelift))
}

/// The `wasmtime-winch` runtime.
pub fn winch() -> Box<dyn Runtime> {
    Box::new(WasmtimeRuntime(Strategy::Winch))
}

/// The `wasmtime-pulley` runtime.
pub fn pulley() -> Box<dyn Runtime> {
    Box::new(WasmtimeRuntime(Strategy::Pulley))
}

/// A Wasmtime engine for components with fuel, compiled by `strategy`.
pub fn engine(strategy: Strategy) -> Result<wasmtime::Engine> {
    let mut config = Config::new();
    // `map<K, V>` (🗺️) is behind a flag in Wasmtime 48, and so is error-context (📝), whose
    // built-ins every async scripted guest imports.
    config
        .wasm_component_model(true)
        .wasm_component_model_map(true)
        .wasm_component_model_error_context(true)
        .consume_fuel(true);
    match strategy {
        Strategy::Cranelift => {}
        Strategy::Winch => {
            config.strategy(wasmtime::Strategy::Winch);
        }
        Strategy::Pulley => {
            config.target("pulley64").map_err(|e| anyhow!("{e:#}"))?;
        }
    }
    wasmtime::Engine::new(&config).map_err(|e| anyhow!("{e:#}"))
}

/// A fresh store with fuel, a memory limit and the spec's handle-table size.
pub fn store<T: 'static>(
    engine: &wasmtime::Engine,
    data: T,
    limits: fn(&mut T) -> &mut wasmtime::StoreLimits,
) -> Result<Store<T>> {
    let mut store = Store::new(engine, data);
    store.limiter(move |d| limits(d) as &mut dyn wasmtime::ResourceLimiter);
    store.set_fuel(FUEL).map_err(|e| anyhow!("{e:#}"))?;
    store.set_max_component_handles(MAX_HANDLES);
    Ok(store)
}

/// The memory limit of one store.
pub fn limits() -> wasmtime::StoreLimits {
    wasmtime::StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT).build()
}

/// The index of export `name` of interface `interface` (`None`: the root) of `component`.
pub fn export_index(component: &Component, interface: Option<&str>, name: &str) -> Result<ComponentExportIndex> {
    let parent = match interface {
        Some(i) => Some(component.get_export_index(None, i).ok_or_else(|| anyhow!("no export {i}"))?),
        None => None,
    };
    component.get_export_index(parent.as_ref(), name).ok_or_else(|| anyhow!("no export {name}"))
}

/// Every resource `component` imports, as (instance, name, type): the root's and those of
/// its imported instances. A `use`d resource appears under each interface that names it, with
/// the type of the interface that defines it.
fn imported_resources(
    component: &Component,
    engine: &wasmtime::Engine,
) -> Vec<(Option<String>, String, wasmtime::component::ResourceType)> {
    use wasmtime::component::types::ComponentItem;
    let mut out = vec![];
    for (name, import) in component.component_type().imports(engine) {
        match import.ty {
            ComponentItem::Resource(t) => out.push((None, name.to_string(), t)),
            ComponentItem::ComponentInstance(instance) => {
                for (export, item) in instance.exports(engine) {
                    if let ComponentItem::Resource(t) = item.ty {
                        out.push((Some(name.to_string()), export.to_string(), t));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

struct WasmtimeRuntime(Strategy);

impl WasmtimeRuntime {
    /// How results name it: a composition runs in its `-fused` mode (see `Selection`).
    fn label(&self, artifact: &Artifact) -> String {
        let name = match self.0 {
            Strategy::Cranelift => NAME,
            Strategy::Winch => WINCH,
            Strategy::Pulley => PULLEY,
        };
        if artifact.guests.len() > 1 { super::fused_name(name) } else { name.to_string() }
    }
}

impl Runtime for WasmtimeRuntime {
    fn compile(&self, artifact: Arc<Artifact>) -> Result<Box<dyn Compiled>> {
        let label = self.label(&artifact);
        let Some(wasm) = &artifact.component else {
            bail!(Unsupported { engine: label, reason: "the world has no component".into() });
        };
        let engine = engine(self.0)?;
        let component =
            Component::new(&engine, wasm).map_err(|e| anyhow!("Wasmtime rejects the guest component: {e:#}"))?;
        let mut linker = Linker::<Data>::new(&engine);
        for (thunk, import) in artifact.imports.iter().enumerate() {
            let Import::Func { func, .. } = import else { continue };
            let ft = func.ft.clone();
            let thunk = thunk as u32;
            let host = move |mut store: wasmtime::StoreContextMut<'_, Data>,
                             _ty: wasmtime::component::types::ComponentFunc,
                             params: &[Val],
                             results: &mut [Val]|
                  -> wasmtime::Result<()> {
                answer_import(thunk, &ft, params, results, &mut store)
            };
            if func.ft.async_ {
                // 🔀 An `async func` import needs a concurrent host function.
                let concurrent = concurrent_import(thunk, func.ft.clone());
                match &func.interface {
                    Some(iface) => linker.instance(iface)?.func_new_concurrent(&func.name, concurrent)?,
                    None => linker.root().func_new_concurrent(&func.name, concurrent)?,
                }
                continue;
            }
            match &func.interface {
                Some(iface) => linker.instance(iface)?.func_new(&func.name, host)?,
                None => linker.root().func_new(&func.name, host)?,
            }
        }
        // Host resources the guest imports: dynamic host resource types named by the
        // reference's resource id; their destructor goes to the host. A resource another
        // imported interface `use`s is the same type there, so it is defined there too.
        let places = imported_resources(&component, &engine);
        for r in artifact.resources.iter().filter(|r| !is_guest_resource(&r.rt)) {
            let own = places.iter().find(|p| p.0 == r.interface && p.1 == r.rt.name).map(|p| p.2);
            let same: Vec<(Option<String>, String)> = match own {
                Some(t) => places.iter().filter(|p| p.2 == t).map(|p| (p.0.clone(), p.1.clone())).collect(),
                None => vec![(r.interface.clone(), r.rt.name.clone())],
            };
            for (interface, name) in same {
                let rt = r.rt.clone();
                let dtor = move |_: wasmtime::StoreContextMut<'_, Data>, rep: u32| -> wasmtime::Result<()> {
                    let harness = |e: anyhow::Error| wasmtime::Error::new(HarnessError(format!("{e:#}")));
                    with_host(|host| host.dtor(&rt, rep)).map_err(harness)
                };
                let rty = wasmtime::component::ResourceType::host_dynamic(r.rt.id);
                match &interface {
                    Some(iface) => linker.instance(iface)?.resource(&name, rty, dtor)?,
                    None => linker.root().resource(&name, rty, dtor)?,
                }
            }
        }
        linker.define_unknown_imports_as_traps(&component)?;
        let pre = linker.instantiate_pre(&component)?;
        let exports = artifact
            .exports
            .iter()
            .map(|e| export_index(&component, e.func.interface.as_deref(), &e.func.name))
            .collect::<Result<Vec<_>>>()?;
        let asynchronous = artifact.is_async();
        Ok(Box::new(WasmtimeCompiled { label, engine, pre, exports, artifact, asynchronous }))
    }
}

struct WasmtimeCompiled {
    label: String,
    engine: wasmtime::Engine,
    pre: InstancePre<Data>,
    /// The index of each artifact export.
    exports: Vec<ComponentExportIndex>,
    artifact: Arc<Artifact>,
    /// 🔀 The world is async: instantiation and every call go through Wasmtime's async API.
    asynchronous: bool,
}

impl Compiled for WasmtimeCompiled {
    fn label(&self) -> &str {
        &self.label
    }

    fn instantiate(&mut self, host: Box<dyn Host>) -> Result<Result<Box<dyn Instance + '_>, Trap>> {
        let mut store = store(&self.engine, Data { slots: vec![], limits: limits() }, |c| &mut c.limits)?;
        let mut host = Some(host);
        let seat = Seat::new(&mut host)?;
        // 🔀 Concurrent host functions (async imports) need the async instantiation.
        let instance = match self.asynchronous {
            true => block_on(self.pre.instantiate_async(&mut store)).and_then(ending),
            false => ending(self.pre.instantiate(&mut store)),
        };
        drop(seat);
        let instance = match instance? {
            Ok(instance) => instance,
            Err(trap) => return Ok(Err(trap)),
        };
        Ok(Ok(Box::new(WasmtimeInstance { compiled: self, store, instance, host })))
    }
}

struct WasmtimeInstance<'c> {
    compiled: &'c WasmtimeCompiled,
    store: Store<Data>,
    instance: wasmtime::component::Instance,
    /// The host behind the imports, seated for each call.
    host: Option<Box<dyn Host>>,
}

type ImportFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = wasmtime::Result<()>> + Send + 'a>>;

/// 🔀 The concurrent host function of async import `thunk`.
fn concurrent_import(
    thunk: u32,
    ft: FuncType,
) -> impl for<'a> Fn(
    &'a wasmtime::component::Accessor<Data>,
    wasmtime::component::types::ComponentFunc,
    &'a [Val],
    &'a mut [Val],
) -> ImportFuture<'a>
+ Send
+ Sync
+ 'static {
    move |accessor, _, params, results| {
        let done = accessor.with(|mut access| answer_import(thunk, &ft, params, results, &mut access.as_context_mut()));
        // An answer given later: the future is pending when Wasmtime first polls it, so the
        // guest's call gives a STARTED subtask, and it is ready the next time.
        let later = with_host(|host| Ok(host.answered_later())).unwrap_or(false);
        Box::pin(async move {
            if later {
                PendingOnce(false).await;
            }
            done
        })
    }
}

/// A future that is pending once (waking its task at once) and then ready.
struct PendingOnce(bool);

impl std::future::Future for PendingOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// The host's answer to a call of import `thunk` (of type `ft`), handles through `store`.
fn answer_import(
    thunk: u32,
    ft: &FuncType,
    params: &[Val],
    results: &mut [Val],
    store: &mut wasmtime::StoreContextMut<'_, Data>,
) -> wasmtime::Result<()> {
    let harness = |e: anyhow::Error| wasmtime::Error::new(HarnessError(format!("{e:#}")));
    let mut h = StoreHandles { store };
    let args = ft
        .params
        .iter()
        .zip(params)
        .map(|((_, t), v)| val_to_value_with(t, v, &mut h))
        .collect::<Result<Vec<_>>>()
        .map_err(harness)?;
    let result = with_host(|host| host.import(thunk, args)).map_err(host_failure)?;
    match (&ft.result, result, results.first_mut()) {
        (Some(t), Some(v), Some(slot)) => *slot = value_to_val_with(t, &v, &mut h).map_err(harness)?,
        (None, None, None) => {}
        _ => return Err(harness(anyhow!("planned result does not match the import's type"))),
    }
    Ok(())
}

/// A Wasmtime failure: a trap (a trap the host raised in an import comes back as it was
/// raised), or (a harness error inside a host function) a failure of the harness.
fn ending<T>(r: wasmtime::Result<T>) -> Result<Result<T, Trap>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) => match (e.downcast_ref::<HarnessError>(), e.downcast_ref::<Trap>()) {
            (Some(h), _) => bail!("{h}"),
            (_, Some(t)) => Ok(Err(t.clone())),
            _ => Ok(Err(classify(&e))),
        },
    }
}

/// A host failure inside an import: a trap it raised (see `Host::import`) stays a trap.
fn host_failure(e: anyhow::Error) -> wasmtime::Error {
    match e.downcast::<Trap>() {
        Ok(t) => wasmtime::Error::new(t),
        Err(e) => wasmtime::Error::new(HarnessError(format!("{e:#}"))),
    }
}

impl Instance for WasmtimeInstance<'_> {
    fn call(&mut self, export: usize, args: &[Value]) -> Result<Result<Option<Value>, Trap>> {
        let ft = &self.compiled.artifact.exports.get(export).ok_or_else(|| anyhow!("no export {export}"))?.func.ft;
        let store = &mut self.store;
        store.set_fuel(FUEL).map_err(|e| anyhow!("{e:#}"))?;
        let f = self
            .instance
            .get_func(&mut *store, self.compiled.exports[export])
            .ok_or_else(|| anyhow!("export {export} is not a function"))?;
        let mut ctx = store.as_context_mut();
        let mut h = StoreHandles { store: &mut ctx };
        let args = ft
            .params
            .iter()
            .zip(args)
            .map(|((_, t), v)| value_to_val_with(t, v, &mut h))
            .collect::<Result<Vec<_>>>()?;
        let mut results = vec![Val::Bool(false); ft.result.iter().count()];
        let seat = Seat::new(&mut self.host)?;
        // 🔀 An async-lifted export runs in Wasmtime's event loop until its task returns; in an
        // async world every call goes that way (a store with concurrent host functions
        // refuses synchronous calls).
        let ended = match self.compiled.asynchronous {
            true => block_on(f.call_async(&mut *store, &args, &mut results)),
            false => Ok(f.call(&mut *store, &args, &mut results)),
        };
        drop(seat);
        if let Err(trap) = ending(ended?)? {
            return Ok(Err(trap));
        }
        let mut ctx = store.as_context_mut();
        let mut h = StoreHandles { store: &mut ctx };
        Ok(Ok(match (&ft.result, results.first()) {
            (Some(t), Some(v)) => Some(val_to_value_with(t, v, &mut h)?),
            _ => None,
        }))
    }

    fn drop_resource(&mut self, slot: u32) -> Result<Result<(), Trap>> {
        let any = self.store.data_mut().slots.get_mut(slot as usize).and_then(Option::take);
        let any = any.ok_or_else(|| anyhow!("host slot {slot} holds no resource"))?;
        self.store.set_fuel(FUEL).map_err(|e| anyhow!("{e:#}"))?;
        let _seat = Seat::new(&mut self.host)?;
        match self.compiled.asynchronous {
            true => ending(block_on(any.resource_drop_async(&mut self.store))?),
            false => ending(any.resource_drop(&mut self.store)),
        }
    }
}
