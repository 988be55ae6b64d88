//! The guest model: the scripted guest of `encode::guest`, implemented again in Rust over a
//! byte vector, step for step (same memory map, same script semantics, same log bytes). Run
//! with the reference host it is the `reference` runtime: the prediction every runtime is
//! compared with. In a composition the caller model's imports reach the callee model through
//! the reference's `canon_lower` and `canon_lift`.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};

use super::artifact::Artifact;
use super::core::{CoreGuest, CoreInstance, CoreStore, HostState, call_export, serve_import};
use super::model_async::{AsyncState, ModelSlot, serve_async, serve_async_import};
use super::prepared::ImportType;
use super::{Compiled, Host, Instance, NoHost, Runtime, Unsupported};
use crate::encode::guest::{GuestModule, LOAD_CHUNK};
use crate::encode::protocol::{self as p, answer, log, op};
use crate::reference::memory::{Memory, exceeds, read_at, write_at};
use crate::reference::types::CoreType;
use crate::reference::types::ResourceType;
use crate::reference::value::Flat;
use crate::reference::value::Value;
use crate::reference::{Trap, TrapKind};

fn guest_trap(what: impl Into<String>) -> Trap {
    Trap::new(TrapKind::GuestTrap, what)
}

/// The scripted guest, modelled, with the reference host's state (its store).
pub struct GuestModel {
    pub mem: Vec<u8>,
    module: Arc<GuestModule>,
    host: HostState,
    /// 🔀 Where the model is during an async call (the async built-ins reach it there).
    pub(super) async_slot: Weak<RefCell<ModelSlot>>,
}

impl GuestModel {
    pub fn new(module: Arc<GuestModule>, host: HostState) -> GuestModel {
        GuestModel { mem: vec![0; p::MEMORY_SIZE as usize], module, host, async_slot: Weak::new() }
    }

    pub(super) fn module(&self) -> &Arc<GuestModule> {
        &self.module
    }

    pub(super) fn encoding(&self) -> crate::reference::types::StringEncoding {
        self.host.encoding
    }

    pub(super) fn host_state(&mut self) -> &mut HostState {
        &mut self.host
    }

    fn check(&self, addr: u64, len: u64) -> Result<(), Trap> {
        if exceeds(addr, len.into(), self.mem.len() as u64) {
            return Err(guest_trap(format!("out of bounds memory access at {addr}+{len}")));
        }
        Ok(())
    }

    fn u32_at(&self, addr: u64) -> Result<u32, Trap> {
        self.check(addr, 4)?;
        let a = addr as usize;
        Ok(u32::from_le_bytes(self.mem[a..a + 4].try_into().unwrap()))
    }

    fn u64_at(&self, addr: u64) -> Result<u64, Trap> {
        self.check(addr, 8)?;
        let a = addr as usize;
        Ok(u64::from_le_bytes(self.mem[a..a + 8].try_into().unwrap()))
    }

    fn set_u32(&mut self, addr: u64, v: u32) -> Result<(), Trap> {
        self.put(addr, &v.to_le_bytes())
    }

    fn set_u64(&mut self, addr: u64, v: u64) -> Result<(), Trap> {
        self.put(addr, &v.to_le_bytes())
    }

    fn put(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Trap> {
        self.check(addr, bytes.len() as u64)?;
        let a = addr as usize;
        self.mem[a..a + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    /// `memory.copy(dst, src, len)`.
    fn copy(&mut self, dst: u64, src: u64, len: u64) -> Result<(), Trap> {
        self.check(src, len)?;
        self.check(dst, len)?;
        self.mem.copy_within(src as usize..(src + len) as usize, dst as usize);
        Ok(())
    }

    fn log_record(&mut self, tag: u32, a: u32, b: u64) -> Result<(), Trap> {
        let c = self.u32_at(p::LOG_CURSOR)?;
        if u64::from(c) + 16 > p::SCRATCH {
            return self.set_u32(p::LOG_OVERFLOW, 1);
        }
        self.set_u32(c.into(), tag)?;
        self.set_u32(u64::from(c) + 4, a)?;
        self.set_u64(u64::from(c) + 8, b)?;
        self.set_u32(p::LOG_CURSOR, c + 16)
    }

    fn log_memory(&mut self, addr: u32, len: u32) -> Result<(), Trap> {
        let padded = u64::from(len).next_multiple_of(16);
        let c = self.u32_at(p::LOG_CURSOR)?;
        if u64::from(c) + 16 + padded > p::SCRATCH {
            return self.set_u32(p::LOG_OVERFLOW, 1);
        }
        self.log_record(log::MEMORY, addr, len.into())?;
        self.copy(u64::from(c) + 16, addr.into(), len.into())?;
        self.set_u32(p::LOG_CURSOR, (u64::from(c) + 16 + padded) as u32)
    }

    fn guest_realloc(&mut self, old_ptr: u32, old_size: u32, align: u32, new_size: u32) -> Result<u32, Trap> {
        self.log_record(log::REALLOC, old_ptr, old_size.into())?;
        self.log_record(log::REALLOC_ARGS, align, new_size.into())?;
        let rc = self.u32_at(p::REALLOC_CURSOR)?;
        let kind = self.u32_at(rc.into())?;
        if kind != answer::END {
            self.set_u32(p::REALLOC_CURSOR, rc + 8)?;
        }
        if kind == answer::CALL {
            let thunk = self.u32_at(u64::from(rc) + 4)?;
            let arg = self.u32_at(u64::from(rc) + 8)?;
            self.set_u64(p::ARG_BUF, u64::from(arg))?;
            self.set_u32(p::REALLOC_CURSOR, rc + 16)?;
            self.call_thunk(thunk)?;
        }
        let ptr = match kind {
            answer::TRAP => return Err(guest_trap("realloc: scripted trap")),
            answer::VALUE => self.u32_at(u64::from(rc) + 4)?,
            _ if old_ptr != 0 && new_size <= old_size => old_ptr,
            _ => {
                let a = u64::from(align.max(1));
                let next = u64::from(self.u32_at(p::HEAP_NEXT)?);
                let ptr = next.div_ceil(a) * a;
                let end = ptr + u64::from(new_size);
                if end > p::MEMORY_SIZE {
                    return Err(guest_trap(format!("realloc: out of memory ({new_size} bytes at {ptr})")));
                }
                self.set_u32(p::HEAP_NEXT, end as u32)?;
                let keep = old_size.min(new_size);
                if keep != 0 {
                    self.copy(ptr, old_ptr.into(), keep.into())?;
                }
                ptr as u32
            }
        };
        self.log_record(log::REALLOC_RET, ptr, 0)?;
        Ok(ptr)
    }

    fn push_value(&mut self, count_at: u64, buf: u64, b: u64) -> Result<(), Trap> {
        let n = self.u32_at(count_at)?;
        if u64::from(n) >= p::MAX_VALUES {
            return Err(guest_trap("script pushed too many values"));
        }
        self.set_u64(buf + 8 * u64::from(n), b)?;
        self.set_u32(count_at, n + 1)
    }

    /// The typed value the guest loads from `addr` (i32/f32 read 4 bytes, i64/f64 read 8).
    fn load_typed(&self, t: CoreType, addr: u64) -> Result<Flat, Trap> {
        Ok(match t {
            CoreType::I32 => Flat::I32(self.u32_at(addr)?),
            CoreType::I64 => Flat::I64(self.u64_at(addr)?),
            CoreType::F32 => Flat::F32(f32::from_bits(self.u32_at(addr)?)),
            CoreType::F64 => Flat::F64(f64::from_bits(self.u64_at(addr)?)),
        })
    }

    fn run_frame(&mut self, entry: u32, optional: bool) -> Result<(), Trap> {
        let mut ip = u64::from(self.u32_at(p::SCRIPT_CURSOR)?);
        if self.u32_at(ip)? != op::FRAME || self.u32_at(ip + 4)? != entry {
            if optional {
                return Ok(());
            }
            return Err(guest_trap(format!("the script has no frame for entry {entry:#x} here")));
        }
        ip += 16;
        self.set_u32(p::RESULT_COUNT, 0)?;
        loop {
            let tag = self.u32_at(ip)?;
            let a = self.u32_at(ip + 4)?;
            let b = self.u64_at(ip + 8)?;
            ip += 16;
            self.set_u32(p::SCRIPT_CURSOR, ip as u32)?;
            match tag {
                op::WRITE => {
                    self.copy(a.into(), ip, u64::from(b as u32))?;
                    ip = (ip + u64::from(b as u32).next_multiple_of(16)) & 0xffff_ffff;
                    self.set_u32(p::SCRIPT_CURSOR, ip as u32)?;
                }
                op::ARG => self.push_value(p::ARG_COUNT, p::ARG_BUF, b)?,
                op::CALL => self.call_thunk(a)?,
                op::LOG_MEMORY => self.log_memory(a, b as u32)?,
                op::LOG_HEAP => {
                    let next = self.u32_at(p::HEAP_NEXT)?;
                    self.log_memory(a, next.wrapping_sub(a))?;
                }
                op::RESULT => self.push_value(p::RESULT_COUNT, p::RESULT_BUF, b)?,
                op::RETURN => return Ok(()),
                op::TRAP => return Err(guest_trap("scripted trap")),
                _ => {
                    return Err(guest_trap(format!("script instruction {tag} at {}", ip - 16)));
                }
            }
        }
    }

    fn call_thunk(&mut self, k: u32) -> Result<(), Trap> {
        let imp =
            self.module.imports.get(k as usize).ok_or_else(|| guest_trap(format!("call_indirect: no thunk {k}")))?;
        let sig = imp.sig.clone();
        let imports = self.host.imports.clone();
        let (builtin, async_import) = match imports.get(k as usize) {
            Some(ImportType::Async(builtin)) => (Some(builtin), None),
            Some(ImportType::Func { ft, .. }) if ft.async_ => (None, Some(ft)),
            _ => (None, None),
        };
        let args = sig
            .params
            .iter()
            .enumerate()
            .map(|(i, &t)| self.load_typed(t, p::ARG_BUF + 8 * i as u64))
            .collect::<Result<Vec<_>, _>>()?;
        let results = match (builtin, async_import) {
            (Some(builtin), _) => serve_async(self, builtin, args)?,
            (_, Some(ft)) => serve_async_import(self, k, ft, args)?,
            _ => serve_import(self, k, args)?,
        };
        self.log_record(log::IMPORT_DONE, k, 0)?;
        for r in results {
            self.log_record(log::IMPORT_RESULT, 0, r.bits())?;
        }
        self.set_u32(p::ARG_COUNT, 0)
    }

    pub(super) fn entry(&mut self, name: &str, args: &[Flat]) -> Result<Vec<Flat>, Trap> {
        let module = self.module.clone();
        if name == module.control_load {
            let offset = match args.first() {
                Some(Flat::I32(o)) => u64::from(*o),
                _ => return Err(Trap::new(TrapKind::Assertion, "load: bad arguments")),
            };
            if offset + LOAD_CHUNK as u64 > p::LOG - p::CONTROL {
                return Err(guest_trap("load: past the control region"));
            }
            for (i, w) in args[1..].iter().enumerate() {
                self.set_u64(p::CONTROL + offset + 8 * i as u64, w.bits())?;
            }
            return Ok(vec![]);
        }
        if name == module.control_reset {
            for (addr, value) in p::RESET {
                self.set_u32(addr, value as u32)?;
            }
            self.mem[p::LOG as usize..].fill(0);
            return Ok(vec![]);
        }
        if name == module.control_read_log {
            let len = self.u32_at(p::LOG_CURSOR)? - p::LOG as u32;
            self.set_u32(p::RET_AREA, p::LOG as u32)?;
            self.set_u32(p::RET_AREA + 4, len)?;
            return Ok(vec![Flat::I32(p::RET_AREA as u32)]);
        }
        let exp = module
            .exports
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| Trap::new(TrapKind::Assertion, format!("no export {name}")))?;
        self.log_record(log::ENTER, exp.entry, 0)?;
        for a in args {
            self.log_record(log::PARAM, 0, a.bits())?;
        }
        self.run_frame(exp.entry, exp.frame_optional())?;
        exp.sig.results.iter().enumerate().map(|(j, &t)| self.load_typed(t, p::RESULT_BUF + 8 * j as u64)).collect()
    }
}

impl Memory for GuestModel {
    fn len(&self) -> u64 {
        self.mem.len() as u64
    }

    fn read(&self, ptr: u64, out: &mut [u8]) -> Result<(), Trap> {
        read_at(&self.mem, ptr, out)
    }

    fn write(&mut self, ptr: u64, bytes: &[u8]) -> Result<(), Trap> {
        write_at(&mut self.mem, ptr, bytes)
    }

    fn realloc(&mut self, old_ptr: u64, old_size: u64, align: u64, new_size: u64) -> Result<u64, Trap> {
        let arg =
            |v: u64| u32::try_from(v).map_err(|_| Trap::new(TrapKind::Assertion, "realloc argument over 32 bits"));
        self.guest_realloc(arg(old_ptr)?, arg(old_size)?, arg(align)?, arg(new_size)?).map(u64::from)
    }
}

impl CoreGuest for GuestModel {
    fn host(&mut self) -> &mut HostState {
        &mut self.host
    }

    fn call_export(&mut self, name: &str, args: &[Flat]) -> Result<Vec<Flat>, Trap> {
        self.entry(name, args)
    }
}

/// The name of this runtime, and of the rows that are the prediction.
pub const NAME: &str = "reference";

/// The `reference` runtime.
pub fn runtime() -> Box<dyn Runtime> {
    Box::new(ModelRuntime)
}

struct ModelRuntime;

impl Runtime for ModelRuntime {
    fn compile(&self, artifact: Arc<Artifact>) -> Result<Box<dyn Compiled>> {
        let Some(model) = &artifact.model else {
            bail!(Unsupported { engine: NAME.into(), reason: "the world was not prepared here".into() });
        };
        if artifact.is_async() {
            let unsupported =
                |what: &str| Unsupported { engine: NAME.into(), reason: format!("{what}: not modelled yet") };
            if model.composition.is_some() {
                bail!(unsupported("an async composition"));
            }
        }
        Ok(Box::new(ModelCompiled { artifact }))
    }
}

struct ModelCompiled {
    artifact: Arc<Artifact>,
}

/// A fresh model of `artifact`'s guest, whose imports reach `host`.
fn model_of(artifact: &Artifact, host: Box<dyn Host>) -> Result<GuestModel> {
    let model = artifact.model.as_ref().ok_or_else(|| anyhow!("the artifact has no model"))?;
    let mut host = HostState::new(artifact, host);
    // The scripted guest has no start function.
    host.started = true;
    Ok(GuestModel::new(model.guest.clone(), host))
}

/// A model of `artifact` with no memory and no host, that stands where the model was while the
/// model is elsewhere (see `model_async`).
fn stand_in(artifact: &Artifact) -> Result<GuestModel> {
    let model = artifact.model.as_ref().ok_or_else(|| anyhow!("the artifact has no model"))?;
    let host = HostState::new(artifact, Box::new(NoHost));
    Ok(GuestModel { mem: Vec::new(), module: model.guest.clone(), host, async_slot: Weak::new() })
}

impl CoreStore for GuestModel {
    type Guest<'a> = &'a mut GuestModel;

    fn guest(&mut self) -> &mut GuestModel {
        self
    }
}

/// The callee of a composition, behind the caller's imports: each import thunk reaches one
/// callee export (`canon_lower` in the caller, then `canon_lift` of the callee).
struct CalleeHost {
    callee: Rc<RefCell<CoreInstance<GuestModel>>>,
    thunk_to_export: Vec<Option<u32>>,
}

impl Host for CalleeHost {
    fn import(&mut self, thunk: u32, args: Vec<Value>) -> Result<Option<Value>> {
        let k = self
            .thunk_to_export
            .get(thunk as usize)
            .copied()
            .flatten()
            .ok_or_else(|| anyhow!("caller import {thunk} reaches no callee export"))?;
        let mut callee = self.callee.borrow_mut();
        let artifact = callee.artifact.clone();
        let export = &artifact.exports[k as usize];
        // A trap of the callee is the caller's trap (see `Host::import`).
        Ok(call_export(&mut callee.store, export, &args)?)
    }

    fn dtor(&mut self, _: &ResourceType, _: u32) -> Result<()> {
        Ok(())
    }
}

/// A model instance: the guest, and in a composition the callee its imports reach.
struct ModelInstance {
    caller: CoreInstance<GuestModel>,
    /// The callee, and the artifact's export index where its control functions start.
    callee: Option<(Rc<RefCell<CoreInstance<GuestModel>>>, usize)>,
    /// 🔀 Made on the first async call.
    async_state: Option<AsyncState>,
}

impl Compiled for ModelCompiled {
    fn label(&self) -> &str {
        NAME
    }

    fn instantiate(&mut self, host: Box<dyn Host>) -> Result<Result<Box<dyn Instance + '_>, Trap>> {
        let artifact = &self.artifact;
        let model = artifact.model.as_ref().ok_or_else(|| anyhow!("the artifact has no model"))?;
        let Some(c) = &model.composition else {
            let store = model_of(artifact, host)?;
            let caller = CoreInstance { store, artifact: artifact.clone() };
            return Ok(Ok(Box::new(ModelInstance { caller, callee: None, async_state: None })));
        };
        let callee_store = model_of(&c.callee, Box::new(NoHost))?;
        let callee = Rc::new(RefCell::new(CoreInstance { store: callee_store, artifact: c.callee.clone() }));
        let forward = CalleeHost { callee: callee.clone(), thunk_to_export: c.thunk_to_export.clone() };
        let store = model_of(&c.caller, Box::new(forward))?;
        Ok(Ok(Box::new(ModelInstance {
            caller: CoreInstance { store, artifact: c.caller.clone() },
            callee: Some((callee, c.caller.exports.len())),
            async_state: None,
        })))
    }
}

impl Instance for ModelInstance {
    fn call(&mut self, export: usize, args: &[Value]) -> Result<Result<Option<Value>, Trap>> {
        match &self.callee {
            // The callee's control functions: the callee artifact's own, in the same order.
            Some((callee, first)) if export >= *first => {
                let mut callee = callee.borrow_mut();
                // Both lists hold the three control functions in one order from their first.
                let index = callee.artifact.guests[0].load + (export - first);
                callee.call(index, args)
            }
            _ => {
                let artifact = self.caller.artifact.clone();
                if !artifact.exports.get(export).is_some_and(|e| e.func.ft.async_) {
                    return self.caller.call(export, args);
                }
                let state = match &mut self.async_state {
                    Some(state) => state,
                    none => none.insert(AsyncState::new(stand_in(&artifact)?, stand_in(&artifact)?)),
                };
                match state.call(&mut self.caller.store, &artifact, export, args) {
                    Err(t) if t.kind == TrapKind::Assertion => bail!("harness assertion: {t}"),
                    r => Ok(r),
                }
            }
        }
    }

    fn drop_resource(&mut self, slot: u32) -> Result<Result<(), Trap>> {
        self.caller.drop_resource(slot)
    }

    fn with_guest_memory(&mut self, guest: usize, f: &mut dyn FnMut(&mut dyn Memory) -> Result<()>) -> Result<bool> {
        match (guest, &self.callee) {
            (0, _) => self.caller.with_guest_memory(0, f),
            (1, Some((callee, _))) => callee.borrow_mut().with_guest_memory(0, f),
            _ => bail!("the model has no guest {guest}"),
        }
    }
}
