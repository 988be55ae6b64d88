//! The guest model: the scripted guest of `encode::guest`, implemented again in Rust over a
//! byte vector, step for step (same memory map, same script semantics, same log bytes). Run
//! with the reference host it is the `reference` engine: the prediction every engine is
//! compared with.

use std::sync::Arc;

use anyhow::Result;

use super::host::{CoreGuest, HostState, call_export, drop_slot, serve_import};
use super::{Case, Engine, HostEvent, Outcome, Prepared, Step};
use crate::encode::guest::{EntryKind, GuestSpec, LOAD_CHUNK};
use crate::encode::protocol::{self as p, answer, log, op};
use crate::encode::script::{Event, Script, parse_log};
use crate::reference::memory::{Memory, exceeds, read_at, write_at};
use crate::reference::types::CoreType;
use crate::reference::value::Flat;
use crate::reference::{Trap, TrapKind};

fn guest_trap(what: impl Into<String>) -> Trap {
    Trap::new(TrapKind::GuestTrap, what)
}

/// The scripted guest, modelled.
pub struct SimGuest {
    pub mem: Vec<u8>,
    spec: Arc<GuestSpec>,
}

impl SimGuest {
    pub fn new(spec: Arc<GuestSpec>) -> SimGuest {
        SimGuest { mem: vec![0; p::MEMORY_SIZE as usize], spec }
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

    fn run_frame(&mut self, entry: u32, optional: bool, host: &mut HostState) -> Result<(), Trap> {
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
                op::CALL => self.call_thunk(a, host)?,
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

    fn call_thunk(&mut self, k: u32, host: &mut HostState) -> Result<(), Trap> {
        let imp =
            self.spec.imports.get(k as usize).ok_or_else(|| guest_trap(format!("call_indirect: no thunk {k}")))?;
        let sig = imp.sig.clone();
        let args = sig
            .params
            .iter()
            .enumerate()
            .map(|(i, &t)| self.load_typed(t, p::ARG_BUF + 8 * i as u64))
            .collect::<Result<Vec<_>, _>>()?;
        let results = serve_import(host, self, k, args)?;
        self.log_record(log::IMPORT_DONE, k, 0)?;
        for r in results {
            self.log_record(log::IMPORT_RESULT, 0, r.bits())?;
        }
        self.set_u32(p::ARG_COUNT, 0)
    }

    fn entry(&mut self, name: &str, args: &[Flat], host: &mut HostState) -> Result<Vec<Flat>, Trap> {
        let spec = self.spec.clone();
        if name == spec.control_load {
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
        if name == spec.control_reset {
            for (addr, value) in p::RESET {
                self.set_u32(addr, value as u32)?;
            }
            self.mem[p::LOG as usize..].fill(0);
            return Ok(vec![]);
        }
        if name == spec.control_read_log {
            let len = self.u32_at(p::LOG_CURSOR)? - p::LOG as u32;
            self.set_u32(p::RET_AREA, p::LOG as u32)?;
            self.set_u32(p::RET_AREA + 4, len)?;
            return Ok(vec![Flat::I32(p::RET_AREA as u32)]);
        }
        let exp = spec
            .exports
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| Trap::new(TrapKind::Assertion, format!("no export {name}")))?;
        self.log_record(log::ENTER, exp.entry, 0)?;
        for a in args {
            self.log_record(log::PARAM, 0, a.bits())?;
        }
        self.run_frame(exp.entry, !matches!(exp.kind, EntryKind::Func { .. }), host)?;
        exp.sig.results.iter().enumerate().map(|(j, &t)| self.load_typed(t, p::RESULT_BUF + 8 * j as u64)).collect()
    }
}

impl Memory for SimGuest {
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

impl CoreGuest for SimGuest {
    fn call(&mut self, name: &str, args: &[Flat], host: &mut HostState) -> Result<Vec<Flat>, Trap> {
        self.entry(name, args, host)
    }

    fn as_memory(&mut self) -> &mut dyn Memory {
        self
    }
}

fn control(guest: &mut dyn CoreGuest, host: &mut HostState, name: &str, args: &[Flat]) -> Result<Vec<Flat>> {
    guest.call(name, args, host).map_err(|t| anyhow::anyhow!("control call {name} trapped: {t}"))
}

/// Reset a guest and load a script into it through its control interface.
pub fn load_script(
    guest: &mut dyn CoreGuest,
    host: &mut HostState,
    prepared: &Prepared,
    script: &Script,
) -> Result<()> {
    let spec = &prepared.spec;
    let image = script.control_image()?;
    control(guest, host, &spec.control_reset, &[])?;
    for (i, chunk) in image.chunks(LOAD_CHUNK).enumerate() {
        let mut args = vec![Flat::I32((i * LOAD_CHUNK) as u32)];
        let mut padded = chunk.to_vec();
        padded.resize(LOAD_CHUNK, 0);
        args.extend(padded.chunks(8).map(|w| Flat::I64(u64::from_le_bytes(w.try_into().unwrap()))));
        control(guest, host, &spec.control_load, &args)?;
    }
    Ok(())
}

/// Read and parse a guest's log through its control interface.
pub fn read_log(guest: &mut dyn CoreGuest, host: &mut HostState, prepared: &Prepared) -> Result<Vec<Event>> {
    let ret = control(guest, host, &prepared.spec.control_read_log, &[])?;
    let Some(Flat::I32(ret)) = ret.first().copied() else { anyhow::bail!("read-log returned {ret:?}") };
    let mut pair = [0u8; 8];
    guest.read(ret.into(), &mut pair).map_err(|t| anyhow::anyhow!("{t}"))?;
    let (ptr, len) = (u32::from_le_bytes(pair[..4].try_into()?), u32::from_le_bytes(pair[4..].try_into()?));
    let mut bytes = vec![0; len as usize];
    guest.read(ptr.into(), &mut bytes).map_err(|t| anyhow::anyhow!("{t}"))?;
    parse_log(&bytes)
}

/// Drive any `CoreGuest` through a case with the reference host: reset, load the script, run
/// the steps, read the log. Shared by the model and the core engines.
pub fn run_core_case(
    guest: &mut dyn CoreGuest,
    host: &mut HostState,
    prepared: &Prepared,
    case: &Case,
) -> Result<Outcome> {
    load_script(guest, host, prepared, &case.script)?;
    host.results = case.import_results.iter().cloned().collect();
    host.events.clear();
    let mut outcome = Outcome::default();
    for step in &case.steps {
        let r = match step {
            Step::Call(call) => call_export(host, guest, prepared, call.export, &call.args)
                .map(|result| host.events.push(HostEvent::Returned { export: call.export, result })),
            Step::Drop { slot } => {
                drop_slot(host, guest, *slot).map(|()| host.events.push(HostEvent::Dropped { slot: *slot }))
            }
        };
        match r {
            Ok(()) => {}
            Err(trap) if trap.kind == TrapKind::Assertion => anyhow::bail!("harness assertion: {trap}"),
            Err(trap) => {
                outcome.trap = Some(trap);
                break;
            }
        }
    }
    outcome.events = std::mem::take(&mut host.events);
    if outcome.trap.is_none() {
        outcome.log = Some(read_log(guest, host, prepared)?);
    }
    Ok(outcome)
}

/// The `reference` engine: the guest model with the reference host.
pub struct SimEngine<'p> {
    prepared: &'p Prepared,
}

impl<'p> SimEngine<'p> {
    pub fn new(prepared: &'p Prepared) -> SimEngine<'p> {
        SimEngine { prepared }
    }
}

impl Engine for SimEngine<'_> {
    fn name(&self) -> &'static str {
        "reference"
    }

    fn run(&mut self, case: &Case) -> Result<Outcome> {
        // A fresh model per case: the model is cheap, and a trap poisons an instance anyway.
        let mut guest = SimGuest::new(Arc::new(self.prepared.spec.clone()));
        let mut host = HostState::new(self.prepared);
        run_core_case(&mut guest, &mut host, self.prepared, case)
    }
}
