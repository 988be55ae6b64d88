//! Plans: what a case does. A plan says which export the host calls with which arguments, what
//! the guest does in it (call imports with which values, return which value), and how the
//! guest's realloc answers; `build_case` turns it into a `Case` (a script plus host
//! behaviour), using the reference to lay out the values the guest hands over.

use anyhow::{Context as _, Result, anyhow, bail};
use arbitrary::Unstructured;
use std::sync::Arc;

use crate::encode::protocol as p;
use crate::encode::script::{ReallocAnswer, Script};
use crate::reference::context::{BorrowScope, ComponentInstance, LiftLowerContext};
use crate::reference::flatten::{
    Context, FlattenOpts, MAX_FLAT_ASYNC_PARAMS, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS, flatten_functype, flatten_type,
};
use crate::reference::handles::Table;
use crate::reference::layout::{alignment, elem_size};
use crate::reference::load::{CANONICAL_FLOAT32_NAN, CANONICAL_FLOAT64_NAN};
use crate::reference::lower_flat::{SpillTo, lower_flat_values};
use crate::reference::memory::BumpHeap;
use crate::reference::types::{FuncType, PtrType, StringEncoding, ValType, contains_async_value};
use crate::reference::value::{Flat, Value};
use crate::runtime::prepared::{AsyncImport, ImportType};
use crate::runtime::resources::has_handles;
use crate::runtime::{Case, ExportCall, ImportAnswer, Prepared, Step};
use crate::world::arbitrary::arbitrary_value;
use crate::world::wit::GUEST_INSTANCE;

pub mod fused;
pub mod resources;

/// A corruption of the bytes or flat values the guest hands over (invalid data to lift).
#[derive(Clone, Debug, PartialEq)]
pub enum Corruption {
    /// Replace flat value `index` with these raw bits.
    Flat { index: usize, bits: u64 },
    /// XOR one byte of the written data (`index` counts bytes across all writes).
    Byte { index: usize, xor: u8 },
    /// Set the high 32 bits of flat value `index`, a joined i64 slot that holds an i32 or f32
    /// payload: lifting must ignore them (`CoerceValueIter`: `wrap_i64_to_i32`), so this one
    /// changes nothing a correct engine reports.
    HighBits { index: usize, high: u32 },
}

/// Values the guest hands to the engine: laid out by the reference, then maybe corrupted.
#[derive(Clone, Debug, PartialEq)]
pub struct GuestValues {
    pub values: Vec<Value>,
    pub corruption: Option<Corruption>,
}

/// An import call the guest makes while running an export.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportPlan {
    pub thunk: u32,
    pub args: GuestValues,
    /// What the host's implementation returns.
    pub result: Option<Value>,
    /// 🔀 The host answers an async-lowered call later, once the caller's event loop has
    /// nothing else to run (so the caller sees its subtask STARTED); otherwise at once.
    pub later: bool,
}

/// Something the guest does during an export call.
#[derive(Clone, Debug, PartialEq)]
pub enum GuestOp {
    /// Call a host import.
    Import(ImportPlan),
    /// Call a resource built-in (`resource.new` / `.rep` / `.drop`, by thunk) with one i32.
    Builtin { thunk: u32, arg: u32 },
    /// 🔀 Call `task.return` with the call's planned result (an async export).
    TaskReturn,
    /// 🔀 Call an async built-in (by thunk) with these i32 arguments.
    AsyncBuiltin { thunk: u32, args: Vec<u32> },
    /// 🔀 Write these bytes into the guest's memory (data a stream or future copy reads).
    Poke { addr: u32, bytes: Vec<u8> },
    /// 🔀 Log `len` bytes of the guest's memory at `addr` (what a copy wrote).
    Peek { addr: u32, len: u32 },
    /// 🔀 End this activation of an async export (its first call, then each callback call)
    /// with callback code `code` (packed: `EXIT` 0, `YIELD` 1, `WAIT` 2 with the set's index
    /// above 4 bits); the ops after it run in the next callback call.
    Activation { code: u32 },
}

/// 🔀 `CallbackCode.EXIT`: an activation that ends the async call's callback loop.
pub const CALLBACK_EXIT: u32 = 0;
/// 🔀 `CallbackCode.YIELD`: the callback is called again once no thread is exclusive.
pub const CALLBACK_YIELD: u32 = 1;
/// 🔀 `CallbackCode.WAIT` (the set's index goes above the code's 4 bits).
pub const CALLBACK_WAIT: u32 = 2;

/// One export call. Handles in the guest's values (`result`, import arguments) are indices
/// in the guest's table.
#[derive(Clone, Debug, PartialEq)]
pub struct CallPlan {
    pub export: u32,
    pub args: Vec<Value>,
    pub ops: Vec<GuestOp>,
    pub result: GuestValues,
    pub realloc: Vec<ReallocAnswer>,
}

/// One step of a case.
#[derive(Clone, Debug, PartialEq)]
pub enum StepPlan {
    Call(CallPlan),
    /// The host drops the guest resource in this slot.
    Drop {
        slot: u32,
    },
}

/// The guest hands over a handle as the index in its table: lay it out as a `u32`.
pub fn guest_type(t: &ValType) -> ValType {
    use crate::reference::types::{CaseType, FieldType};
    match t {
        ValType::Own(_) | ValType::Borrow(_) => ValType::U32,
        ValType::List(e, l) => ValType::List(Arc::new(guest_type(e)), *l),
        ValType::Map(k, v) => ValType::Map(Arc::new(guest_type(k)), Arc::new(guest_type(v))),
        ValType::Record(fs) => {
            ValType::Record(fs.iter().map(|f| FieldType { label: f.label.clone(), t: guest_type(&f.t) }).collect())
        }
        ValType::Tuple(ts) => ValType::Tuple(ts.iter().map(guest_type).collect()),
        ValType::Variant(cs) => ValType::Variant(
            cs.iter().map(|c| CaseType { label: c.label.clone(), t: c.t.as_ref().map(guest_type) }).collect(),
        ),
        ValType::Option(t) => ValType::option(guest_type(t)),
        ValType::Result(o, e) => ValType::result(o.as_deref().map(guest_type), e.as_deref().map(guest_type)),
        other => other.clone(),
    }
}

fn guest_value(v: &Value) -> Value {
    match v {
        Value::Handle(i) => Value::U32(*i),
        Value::List(xs) => Value::List(xs.iter().map(guest_value).collect()),
        Value::Record(fs) => Value::Record(fs.iter().map(|(l, x)| (l.clone(), guest_value(x))).collect()),
        Value::Variant(l, p) => Value::Variant(l.clone(), p.as_ref().map(|x| Box::new(guest_value(x)))),
        other => other.clone(),
    }
}

/// Lower `values` of `types` the way the guest would (in its encoding, into its scratch area),
/// returning the flat values and the bytes to write.
fn lay_out(
    encoding: StringEncoding,
    values: &[Value],
    types: &[ValType],
    max_flat: usize,
    scratch: &mut BumpHeap,
) -> Result<Vec<Flat>> {
    let types: Vec<ValType> = types.iter().map(guest_type).collect();
    let values: Vec<Value> = values.iter().map(guest_value).collect();
    let mut inst = ComponentInstance::new(GUEST_INSTANCE);
    let task = inst.start_task();
    let mut cx = LiftLowerContext::new(encoding, scratch, &mut inst, BorrowScope::Task(task));
    lower_flat_values(&mut cx, max_flat, &values, &types, SpillTo::Realloc)
        .map_err(|t| anyhow!("laying out guest values: {t}"))
}

/// What to do with a corruption that points past the data the guest hands over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misses {
    /// Drop it: the generator picks offsets before it knows how much data a value makes.
    Ignore,
    /// Refuse the case: a suite's author named that offset and means it.
    Refuse,
}

/// Apply a corruption; `Err` says why it missed the data.
fn apply(corruption: &Option<Corruption>, flats: &mut [Flat], writes: &mut [(u64, Vec<u8>)]) -> Result<()> {
    match corruption {
        None => Ok(()),
        Some(Corruption::Flat { index, bits }) => {
            let count = flats.len();
            let f = flats
                .get_mut(*index)
                .ok_or_else(|| anyhow!("corrupt: flat value {index}, but the guest hands over {count} flat values"))?;
            *f = match f {
                Flat::I32(_) => Flat::I32(*bits as u32),
                Flat::I64(_) => Flat::I64(*bits),
                Flat::F32(_) => Flat::F32(f32::from_bits(*bits as u32)),
                Flat::F64(_) => Flat::F64(f64::from_bits(*bits)),
            };
            Ok(())
        }
        Some(Corruption::HighBits { index, high }) => match flats.get_mut(*index) {
            Some(Flat::I64(bits)) => {
                *bits |= u64::from(*high) << 32;
                Ok(())
            }
            other => bail!("corrupt: flat value {index} is {other:?}, not a joined i64 slot"),
        },
        Some(Corruption::Byte { index, xor }) => {
            let mut i = *index;
            for (_, bytes) in writes.iter_mut() {
                if i < bytes.len() {
                    bytes[i] ^= xor;
                    return Ok(());
                }
                i -= bytes.len();
            }
            let total: usize = writes.iter().map(|(_, b)| b.len()).sum();
            bail!("corrupt: byte {index}, but the guest writes {total} bytes to memory")
        }
    }
}

/// Script the writes and return the flat values as raw bits.
fn emit(script: &mut Script, heap: &BumpHeap, gv: &GuestValues, flats: Vec<Flat>, misses: Misses) -> Result<Vec<u64>> {
    let mut flats = flats;
    let mut writes = heap.written_ranges();
    if let Err(e) = apply(&gv.corruption, &mut flats, &mut writes)
        && misses == Misses::Refuse
    {
        return Err(e);
    }
    for (addr, bytes) in writes {
        script.write(addr as u32, &bytes);
    }
    Ok(flats.iter().map(|f| f.bits()).collect())
}

/// What a post-return XORs into every byte the call returned through memory.
pub const POST_RETURN_CLOBBER: u8 = 0xa5;

/// Turn step plans into a case.
pub fn build_case(prepared: &Prepared, steps: &[StepPlan], misses: Misses) -> Result<Case> {
    let mut case = Case::default();
    let enc = prepared.encoding;
    for step in steps {
        let call = match step {
            StepPlan::Call(call) => call,
            StepPlan::Drop { slot } => {
                case.steps.push(Step::Drop { slot: *slot });
                continue;
            }
        };
        let (_, ft) = prepared.exports.get(call.export as usize).ok_or_else(|| anyhow!("no export {}", call.export))?;
        case.script.realloc.extend(call.realloc.iter().copied());
        if ft.async_ {
            async_call(&mut case, prepared, ft, call, misses)?;
            continue;
        }
        case.script.frame(p::export_entry(call.export));
        // What the engine wrote while lowering the arguments.
        case.script.log_heap(p::HEAP as u32);
        let mut scratch = BumpHeap::new(p::HEAP, p::SCRATCH);
        for op in &call.ops {
            let imp = match op {
                GuestOp::Import(imp) => imp,
                GuestOp::Builtin { thunk, arg } => {
                    case.script.arg((*arg).into());
                    case.script.call(*thunk);
                    continue;
                }
                GuestOp::TaskReturn
                | GuestOp::AsyncBuiltin { .. }
                | GuestOp::Poke { .. }
                | GuestOp::Peek { .. }
                | GuestOp::Activation { .. } => {
                    bail!("an async operation in a call of synchronous export {}", call.export)
                }
            };
            import_call(&mut case, prepared, &mut scratch, imp, misses)?;
        }
        let mark = scratch.writes.len();
        let flats = lay_out(enc, &call.result.values, &ft.result_type(), MAX_FLAT_RESULTS, &mut scratch)
            .context("the planned result")?;
        let mut part = scratch.clone();
        part.writes.drain(..mark);
        let raws = emit(&mut case.script, &part, &call.result, flats, misses)?;
        // Everything the engine wrote into the guest during the call (import results too).
        case.script.log_heap(p::HEAP as u32);
        for raw in raws {
            case.script.result(raw);
        }
        case.script.ret();
        // The post-return clobbers what the call returned, as a guest freeing it may: an
        // engine that runs post-return before it lifts the results lifts the clobbered bytes.
        let returned = part.written_ranges();
        if !returned.is_empty() {
            case.script.frame(p::post_return_entry(call.export));
            for (addr, bytes) in returned {
                let clobbered: Vec<u8> = bytes.iter().map(|b| b ^ POST_RETURN_CLOBBER).collect();
                case.script.write(addr as u32, &clobbered);
            }
            case.script.ret();
        }
        case.steps.push(Step::Call(ExportCall { export: call.export, args: call.args.clone() }));
    }
    Ok(case)
}

/// The script of one import call: its arguments laid out (in the guest's encoding, into its
/// scratch area), the call, and the return area logged where its results go through one. 🔀 An
/// async-lowered import takes up to MAX_FLAT_ASYNC_PARAMS flat params and always returns its
/// result through memory; its one flat result (the subtask's state and index) is logged.
/// Returns the return area (pointer, size), if any.
fn import_call(
    case: &mut Case,
    prepared: &Prepared,
    scratch: &mut BumpHeap,
    imp: &ImportPlan,
    misses: Misses,
) -> Result<Option<(u32, u32)>> {
    let Some(ImportType::Func { ft: ift, .. }) = prepared.imports.get(imp.thunk as usize) else {
        bail!("import {} is not a function", imp.thunk);
    };
    let (opts, max_flat) = match ift.async_ {
        false => (FlattenOpts::sync(PtrType::I32), MAX_FLAT_PARAMS),
        true => (FlattenOpts::async_(PtrType::I32, false), MAX_FLAT_ASYNC_PARAMS),
    };
    let core = flatten_functype(opts, ift, Context::Lower);
    let mark = scratch.writes.len();
    let flats = lay_out(prepared.encoding, &imp.args.values, &ift.param_types(), max_flat, scratch)?;
    let n_params = flats.len();
    let mut part = scratch.clone();
    part.writes.drain(..mark);
    for raw in emit(&mut case.script, &part, &imp.args, flats, misses)? {
        case.script.arg(raw);
    }
    // A spilled result goes to a return area the guest provides.
    let ret_area = if core.params.len() > n_params {
        let tuple = ValType::Tuple(ift.result_type().into());
        let size = elem_size(&tuple, PtrType::I32);
        let ptr = crate::reference::memory::Memory::realloc(scratch, 0, 0, alignment(&tuple, PtrType::I32), size)
            .map_err(|t| anyhow!("return area: {t}"))?;
        case.script.arg(ptr);
        Some((ptr, size))
    } else {
        None
    };
    case.script.call(imp.thunk);
    let ret_area = ret_area.map(|(ptr, size)| (ptr as u32, size as u32));
    if let Some((ptr, size)) = ret_area {
        case.script.log_memory(ptr, size);
    }
    case.import_answers.push(ImportAnswer { result: imp.result.clone(), later: imp.later });
    Ok(ret_area)
}

/// 🔀 The frames of an async export call: its activations, each ending with its callback code.
/// Ops that do not end an activation last end with the planned result returned (unless a
/// `TaskReturn` came already) and EXIT.
fn async_call(case: &mut Case, prepared: &Prepared, ft: &FuncType, call: &CallPlan, misses: Misses) -> Result<()> {
    let task_return = prepared
        .imports
        .iter()
        .position(|i| {
            matches!(i, ImportType::Async(AsyncImport::TaskReturn { func, .. }) if *func == prepared.exports[call.export as usize].0)
        })
        .ok_or_else(|| anyhow!("the guest imports no task.return for export {}", call.export))? as u32;
    let mut ops = call.ops.clone();
    if !matches!(ops.last(), Some(GuestOp::Activation { .. })) {
        if !ops.contains(&GuestOp::TaskReturn) {
            ops.push(GuestOp::TaskReturn);
        }
        ops.push(GuestOp::Activation { code: CALLBACK_EXIT });
    }
    case.script.frame(p::export_entry(call.export));
    // What the engine wrote while lowering the arguments.
    case.script.log_heap(p::HEAP as u32);
    let mut scratch = BumpHeap::new(p::HEAP, p::SCRATCH);
    let mut open = true;
    // Return areas of calls answered later, logged when the next callback call begins (the
    // answer may have come in between), with what the engine wrote into the heap.
    let mut unread: Vec<(u32, u32)> = vec![];
    for op in &ops {
        if !open {
            case.script.frame(p::callback_entry(call.export));
            if !unread.is_empty() {
                case.script.log_heap(p::HEAP as u32);
            }
            for (ptr, size) in unread.drain(..) {
                case.script.log_memory(ptr, size);
            }
            open = true;
        }
        match op {
            GuestOp::Import(imp) => {
                let ret_area = import_call(case, prepared, &mut scratch, imp, misses)?;
                if imp.later {
                    unread.extend(ret_area);
                }
            }
            GuestOp::Builtin { thunk, arg } => {
                case.script.arg((*arg).into());
                case.script.call(*thunk);
            }
            GuestOp::AsyncBuiltin { thunk, args } => {
                for a in args {
                    case.script.arg((*a).into());
                }
                case.script.call(*thunk);
            }
            GuestOp::Poke { addr, bytes } => {
                case.script.write(*addr, bytes);
            }
            GuestOp::Peek { addr, len } => {
                case.script.log_memory(*addr, *len);
            }
            GuestOp::TaskReturn => {
                // `task.return` takes the result as its params: MAX_FLAT_PARAMS of them.
                let mark = scratch.writes.len();
                let flats =
                    lay_out(prepared.encoding, &call.result.values, &ft.result_type(), MAX_FLAT_PARAMS, &mut scratch)
                        .context("the planned result")?;
                let mut part = scratch.clone();
                part.writes.drain(..mark);
                for raw in emit(&mut case.script, &part, &call.result, flats, misses)? {
                    case.script.arg(raw);
                }
                case.script.call(task_return);
            }
            GuestOp::Activation { code } => {
                case.script.result((*code).into());
                case.script.ret();
                open = false;
            }
        }
    }
    case.steps.push(Step::Call(ExportCall { export: call.export, args: call.args.clone() }));
    Ok(())
}

/// Whether plans can drive a function (resources come with resource plans; 🔀 no plan makes
/// stream or future values yet).
pub fn plannable(ft: &FuncType) -> bool {
    !ft.params.iter().any(|(_, t)| has_handles(t))
        && !ft.result.as_ref().is_some_and(has_handles)
        && !moves_async_values(ft)
}

/// 🔀 Whether a function takes or returns streams or futures, which no plan makes yet.
pub fn moves_async_values(ft: &FuncType) -> bool {
    ft.params.iter().map(|(_, t)| t).chain(&ft.result).any(contains_async_value)
}

/// NaNs the host passes are canonical: engines may keep a NaN's payload where the reference
/// (deterministic profile) stores the canonical NaN, and both are right.
pub fn canonical_nans(v: Value) -> Value {
    match v {
        Value::F32(f) if f.is_nan() => Value::F32(f32::from_bits(CANONICAL_FLOAT32_NAN)),
        Value::F64(f) if f.is_nan() => Value::F64(f64::from_bits(CANONICAL_FLOAT64_NAN)),
        Value::List(vs) => Value::List(vs.into_iter().map(canonical_nans).collect()),
        Value::Record(fs) => Value::Record(fs.into_iter().map(|(l, v)| (l, canonical_nans(v))).collect()),
        Value::Variant(l, p) => Value::Variant(l, p.map(|b| Box::new(canonical_nans(*b)))),
        other => other,
    }
}

/// Knobs of arbitrary plans.
#[derive(Clone, Debug)]
pub struct PlanConfig {
    /// 1 in N plans corrupts the data the guest hands over.
    pub corrupt_one_in: u32,
    /// 1 in N plans scripts an adversarial realloc answer.
    pub adversarial_realloc_one_in: u32,
}

impl Default for PlanConfig {
    fn default() -> PlanConfig {
        PlanConfig { corrupt_one_in: 4, adversarial_realloc_one_in: 6 }
    }
}

pub(crate) fn arbitrary_values(
    u: &mut Unstructured<'_>,
    types: &[ValType],
    enc: StringEncoding,
) -> arbitrary::Result<Vec<Value>> {
    types.iter().map(|t| arbitrary_value(u, t, enc, &[]).map(canonical_nans)).collect()
}

/// For each flat value `lower_flat` makes of `v` (of type `t`), whether it is a joined i64
/// slot of a variant holding a narrower payload value (an i32 or f32 of the case's own
/// flattening), whose high bits lifting ignores.
fn narrow_slots(t: &ValType, v: &Value, out: &mut Vec<bool>) {
    use crate::reference::types::{CoreType, despecialize};
    let pt = PtrType::I32;
    match (despecialize(t).as_ref(), v) {
        (ValType::Record(fields), Value::Record(xs)) => {
            for (f, (_, x)) in fields.iter().zip(xs) {
                narrow_slots(&f.t, x, out);
            }
        }
        (ValType::List(e, Some(_)), Value::List(xs)) => xs.iter().for_each(|x| narrow_slots(e, x, out)),
        (ValType::Variant(cases), Value::Variant(label, payload)) => {
            let joined = crate::reference::flatten::flatten_variant(cases, pt);
            out.push(false);
            let case = cases.iter().find(|c| c.label == *label);
            let mut inner = vec![];
            let mut own = vec![];
            if let (Some(ct), Some(p)) = (case.and_then(|c| c.t.as_ref()), payload) {
                narrow_slots(ct, p, &mut inner);
                own = flatten_type(ct, pt);
            }
            for (i, slot) in joined.iter().skip(1).enumerate() {
                let widened = *slot == CoreType::I64 && matches!(own.get(i), Some(CoreType::I32 | CoreType::F32));
                out.push(widened || inner.get(i).copied().unwrap_or(false));
            }
        }
        (t, _) => out.extend(std::iter::repeat_n(false, flatten_type(t, pt).len())),
    }
}

/// Sometimes, high bits in a joined slot of values the guest hands over flat (a slot only a
/// variant's wider case fills): lifting must ignore them.
pub(crate) fn high_bits(
    u: &mut Unstructured<'_>,
    values: &[Value],
    types: &[ValType],
    max_flat: usize,
) -> arbitrary::Result<Option<Corruption>> {
    let mut slots = vec![];
    for (v, t) in values.iter().zip(types) {
        narrow_slots(t, v, &mut slots);
    }
    let narrow: Vec<usize> = (0..slots.len()).filter(|&i| slots[i]).collect();
    if slots.len() > max_flat || narrow.is_empty() || !u.ratio(3, 4)? {
        return Ok(None);
    }
    Ok(Some(Corruption::HighBits { index: *u.choose(&narrow)?, high: u.int_in_range(1..=u32::MAX)? }))
}

pub(crate) fn corruption(u: &mut Unstructured<'_>, cfg: &PlanConfig) -> arbitrary::Result<Option<Corruption>> {
    if !u.ratio(1, cfg.corrupt_one_in.max(1))? {
        return Ok(None);
    }
    Ok(Some(if u.arbitrary()? {
        let bits = match u.int_in_range(0..=3)? {
            0 => u64::from(u.int_in_range(0u32..=8)?),
            1 => 0xd800,
            2 => u64::MAX,
            _ => u.arbitrary()?,
        };
        Corruption::Flat { index: u.int_in_range(0..=4)?, bits }
    } else {
        Corruption::Byte { index: u.int_in_range(0..=64)?, xor: u.int_in_range(1..=255)? }
    }))
}

/// An arbitrary pointer moved out of the scripted guest's own state, script and log (below
/// `SCRATCH`): a host writing there would overwrite the instrument (its cursors, its log), not
/// the values under test, and the guest could no longer report what it saw. Its alignment is
/// kept.
fn above_guest_state(ptr: u32) -> u32 {
    if u64::from(ptr) < p::SCRATCH { ptr + p::SCRATCH as u32 } else { ptr }
}

/// Sometimes, an adversarial realloc answer after a few honest ones.
pub(crate) fn realloc_answers(u: &mut Unstructured<'_>, cfg: &PlanConfig) -> arbitrary::Result<Vec<ReallocAnswer>> {
    let mut realloc = vec![];
    if u.ratio(1, cfg.adversarial_realloc_one_in.max(1))? {
        for _ in 0..u.int_in_range(0..=3)? {
            realloc.push(ReallocAnswer::Bump);
        }
        realloc.push(match u.int_in_range(0..=3)? {
            0 => ReallocAnswer::Trap,
            1 => ReallocAnswer::Value(p::HEAP as u32 + 1),
            2 => ReallocAnswer::Value(p::MEMORY_SIZE as u32 - u.int_in_range(0..=8)?),
            _ => ReallocAnswer::Value(above_guest_state(u.arbitrary()?)),
        });
    }
    Ok(realloc)
}

/// An arbitrary call plan for one of the plannable exports, or `None` if there is none.
pub fn arbitrary_call(
    u: &mut Unstructured<'_>,
    prepared: &Prepared,
    cfg: &PlanConfig,
) -> arbitrary::Result<Option<CallPlan>> {
    let exports: Vec<u32> =
        (0..prepared.exports.len() as u32).filter(|&k| plannable(&prepared.exports[k as usize].1)).collect();
    let Ok(&export) = u.choose(&exports) else {
        return Ok(None);
    };
    let ft = &prepared.exports[export as usize].1;
    let host_enc = StringEncoding::Utf8;
    let args = arbitrary_values(u, &ft.param_types(), host_enc)?;
    let mut imports = vec![];
    // 🔀 An async export whose guest can wait for a subtask (a table that starts empty: the
    // call's params hold no handles).
    let waits = if ft.async_ { WaitBuiltins::of(prepared) } else { None };
    // 🔀 Async imports are called from async exports only (the reference models async-lowered
    // calls inside an async task so far).
    let thunks: Vec<u32> = (0..prepared.imports.len() as u32)
        .filter(|&t| {
            matches!(&prepared.imports[t as usize], ImportType::Func { ft: ift, .. } if plannable(ift) && (ft.async_ || !ift.async_))
        })
        .collect();
    for _ in 0..u.int_in_range(0..=2)? {
        let Ok(&thunk) = u.choose(&thunks) else { break };
        let ImportType::Func { ft: ift, .. } = &prepared.imports[thunk as usize] else {
            continue;
        };
        let values = arbitrary_values(u, &ift.param_types(), prepared.encoding)?;
        let result =
            ift.result.as_ref().map(|t| arbitrary_value(u, t, host_enc, &[]).map(canonical_nans)).transpose()?;
        let max_flat = if ift.async_ { MAX_FLAT_ASYNC_PARAMS } else { MAX_FLAT_PARAMS };
        let corruption = match high_bits(u, &values, &ift.param_types(), max_flat)? {
            Some(c) => Some(c),
            None => corruption(u, cfg)?,
        };
        // 🔀 One async call in three is answered later (when the guest waits for it).
        let later = ift.async_ && waits.is_some() && u.ratio(1, 3)?;
        imports.push(ImportPlan { thunk, args: GuestValues { values, corruption }, result, later });
    }
    let values = arbitrary_values(u, &ft.result_type(), prepared.encoding)?;
    let result = GuestValues { values, corruption: corruption(u, cfg)? };
    let realloc = realloc_answers(u, cfg)?;
    // 🔀 An async export yields a few times first (its callback runs once per yield), then
    // calls its imports, returns its result and exits (`build_case`). A call answered later
    // gets a set of its own, which the guest WAITs on; the callback drops both.
    let yields = if ft.async_ { u.int_in_range(0..=2)? } else { 0 };
    let mut ops: Vec<GuestOp> = std::iter::repeat_n(GuestOp::Activation { code: CALLBACK_YIELD }, yields).collect();
    // The guest's table as the spec's `Table` numbers it (it starts empty: see `waits`).
    let mut table: Table<()> = Table::default();
    let full = |_: crate::reference::Trap| arbitrary::Error::IncorrectFormat;
    for imp in imports {
        let later = imp.later;
        ops.push(GuestOp::Import(imp));
        if let (true, Some(w)) = (later, &waits) {
            let (subtask, set) = (table.add(()).map_err(full)?, table.add(()).map_err(full)?);
            let builtin = |thunk: u32, args: Vec<u32>| GuestOp::AsyncBuiltin { thunk, args };
            ops.push(builtin(w.set_new, vec![]));
            ops.push(builtin(w.join, vec![subtask, set]));
            ops.push(GuestOp::Activation { code: CALLBACK_WAIT | (set << 4) });
            ops.push(builtin(w.subtask_drop, vec![subtask]));
            ops.push(builtin(w.set_drop, vec![set]));
            table.remove(subtask).map_err(full)?;
            table.remove(set).map_err(full)?;
        }
    }
    Ok(Some(CallPlan { export, args, ops, result, realloc }))
}

/// 🔀 The thunks of the built-ins with which a guest waits for one subtask.
struct WaitBuiltins {
    set_new: u32,
    join: u32,
    subtask_drop: u32,
    set_drop: u32,
}

impl WaitBuiltins {
    fn of(prepared: &Prepared) -> Option<WaitBuiltins> {
        Some(WaitBuiltins {
            set_new: prepared.builtin_thunk("[waitable-set-new]")?,
            join: prepared.builtin_thunk("[waitable-join]")?,
            subtask_drop: prepared.builtin_thunk("[subtask-drop]")?,
            set_drop: prepared.builtin_thunk("[waitable-set-drop]")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::arbitrary::seed_bytes;

    /// An adversarial realloc answer never points into the scripted guest's state, script or
    /// log (the host would overwrite the instrument): found by differential_cached, whose
    /// arbitrary answer once pointed at the log cursor.
    #[test]
    fn adversarial_realloc_answers_stay_above_the_guest_state() {
        let cfg = PlanConfig { corrupt_one_in: 4, adversarial_realloc_one_in: 1 };
        let (mut values, mut moved) = (0, 0);
        for seed in 0..2000 {
            // Random choices; for odd seeds the arbitrary pointer then comes from mostly zero
            // bytes (a pointer below 256, which must move), for even ones from random bytes.
            let mut data = seed_bytes(seed, 64);
            if seed % 2 == 1 {
                data[3..].fill(0);
            }
            for answer in realloc_answers(&mut Unstructured::new(&data), &cfg).unwrap() {
                if let ReallocAnswer::Value(ptr) = answer {
                    assert!(u64::from(ptr) >= p::SCRATCH, "seed {seed}: realloc answer {ptr}");
                    values += 1;
                    moved += u32::from(u64::from(ptr) < p::SCRATCH + 256);
                }
            }
        }
        assert!(values > 1000 && moved > 50, "{values} value answers, {moved} moved from below 256");
        // Low addresses move up with their alignment kept.
        assert_eq!(above_guest_state(3), p::SCRATCH as u32 + 3);
        assert_eq!(above_guest_state(p::SCRATCH as u32), p::SCRATCH as u32);
    }
}
