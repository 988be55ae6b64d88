//! Flat lifting (CanonicalABI.md "Flat Lifting") and `lift_flat_values`.

use crate::reference::reached::reached;
use std::collections::VecDeque;

use super::concurrency::stream::lift_async_value;
use super::concurrency::subtask::Subtask;
use super::context::{BorrowScope, ComponentInstance, LiftLowerContext};
use super::error_context::lift_error_context;
use super::flatten::{flatten_types, flatten_variant};
use super::handles::{lift_borrow, lift_own};
use super::layout::{align_to, alignment, elem_size};
use super::load::{
    canonicalize_nan32, canonicalize_nan64, convert_i32_to_char, convert_int_to_bool, decode_i32_as_float,
    decode_i64_as_float, load, load_list_from_range, unpack_flags_from_int,
};
use super::memory::{Memory, exceeds};
use super::strings::load_string_from_range;
use super::trap::{Result, Trap, TrapKind, assert_that, trap_if};
use super::types::{CaseType, CoreType, FieldType, StringEncoding, ValType, despecialize};
use super::value::{Flat, Value};

/// A source of flat values that hands them out by core type (`CoreValueIter.next(t)`).
pub trait ValueIter {
    fn next(&mut self, t: CoreType) -> Result<Flat>;
}

/// `CoreValueIter`: the flat params or results of a core call, consumed in order.
#[derive(Clone, Debug)]
pub struct CoreValueIter {
    pub values: Vec<Flat>,
    pub i: usize,
}

impl CoreValueIter {
    pub fn new(values: Vec<Flat>) -> CoreValueIter {
        CoreValueIter { values, i: 0 }
    }

    /// `done()`: every value was consumed.
    pub fn done(&self) -> bool {
        self.i == self.values.len()
    }
}

impl ValueIter for CoreValueIter {
    fn next(&mut self, t: CoreType) -> Result<Flat> {
        let v = *self.values.get(self.i).ok_or_else(|| {
            Trap::new(TrapKind::Assertion, format!("CoreValueIter: wanted a {t} after {} values", self.i))
        })?;
        self.i += 1;
        assert_that(v.core_type() == t, "CoreValueIter: the value has the wanted core type")?;
        Ok(v)
    }
}

/// `lift_flat(cx, vi, t)`.
pub fn lift_flat(cx: &mut LiftLowerContext<'_>, vi: &mut dyn ValueIter, t: &ValType) -> Result<Value> {
    reached!(lift_flat);
    Ok(match despecialize(t).as_ref() {
        ValType::Bool => Value::Bool(convert_int_to_bool(next_i32(vi)?.into())),
        ValType::U8 => Value::U8(lift_flat_unsigned(vi, 32, 8)? as u8),
        ValType::U16 => Value::U16(lift_flat_unsigned(vi, 32, 16)? as u16),
        ValType::U32 => Value::U32(lift_flat_unsigned(vi, 32, 32)? as u32),
        ValType::U64 => Value::U64(lift_flat_unsigned(vi, 64, 64)?),
        ValType::S8 => Value::S8(lift_flat_signed(vi, 32, 8)? as i8),
        ValType::S16 => Value::S16(lift_flat_signed(vi, 32, 16)? as i16),
        ValType::S32 => Value::S32(lift_flat_signed(vi, 32, 32)? as i32),
        ValType::S64 => Value::S64(lift_flat_signed(vi, 64, 64)?),
        ValType::F32 => match vi.next(CoreType::F32)? {
            Flat::F32(f) => Value::F32(canonicalize_nan32(f)),
            other => return Err(wrong(other, CoreType::F32)),
        },
        ValType::F64 => match vi.next(CoreType::F64)? {
            Flat::F64(f) => Value::F64(canonicalize_nan64(f)),
            other => return Err(wrong(other, CoreType::F64)),
        },
        ValType::Char => Value::Char(convert_i32_to_char(next_i32(vi)?)?),
        ValType::String => lift_flat_string(cx, vi)?,
        ValType::List(t, l) => lift_flat_list(cx, vi, t, *l)?,
        ValType::Record(fields) => lift_flat_record(cx, vi, fields)?,
        ValType::Variant(cases) => lift_flat_variant(cx, vi, cases)?,
        ValType::Flags(labels) => lift_flat_flags(vi, labels)?,
        ValType::Own(_) => {
            let i = next_i32(vi)?;
            Value::Handle(lift_own(cx, i, t)?)
        }
        ValType::Borrow(_) => {
            let i = next_i32(vi)?;
            Value::Handle(lift_borrow(cx, i, t)?)
        }
        ValType::ErrorContext => {
            let i = next_i32(vi)?;
            Value::ErrorContext(lift_error_context(cx, i)?)
        }
        ValType::Stream(_) | ValType::Future(_) => {
            let i = next_i32(vi)?;
            lift_async_value(cx, i, t)?
        }
        ValType::Tuple(_) | ValType::Enum(_) | ValType::Option(_) | ValType::Result(..) | ValType::Map(..) => {
            unreachable!("despecialized")
        }
    })
}

fn wrong(v: Flat, t: CoreType) -> Trap {
    Trap::new(TrapKind::Assertion, format!("flat value {v:?} is not a {t}"))
}

fn next_i32(vi: &mut dyn ValueIter) -> Result<u32> {
    match vi.next(CoreType::I32)? {
        Flat::I32(i) => Ok(i),
        other => Err(wrong(other, CoreType::I32)),
    }
}

/// A pointer-sized flat value (i32 or i64 by the memory's address type).
fn next_ptr(cx: &LiftLowerContext<'_>, vi: &mut dyn ValueIter) -> Result<u64> {
    let t = cx.memory().ptr_type().core_type();
    match vi.next(t)? {
        Flat::I32(i) => Ok(i.into()),
        Flat::I64(i) => Ok(i),
        other => Err(wrong(other, t)),
    }
}

fn next_int(vi: &mut dyn ValueIter, core_width: u32) -> Result<u64> {
    let t = if core_width == 32 { CoreType::I32 } else { CoreType::I64 };
    match vi.next(t)? {
        Flat::I32(i) => Ok(i.into()),
        Flat::I64(i) => Ok(i),
        other => Err(wrong(other, t)),
    }
}

/// `lift_flat_unsigned`: high bits beyond the type's width are dropped, never a trap.
pub fn lift_flat_unsigned(vi: &mut dyn ValueIter, core_width: u32, t_width: u32) -> Result<u64> {
    reached!(lift_flat_unsigned);
    let i = next_int(vi, core_width)?;
    Ok(if t_width >= 64 { i } else { i % (1u64 << t_width) })
}

/// `lift_flat_signed`: keep the low `t_width` bits and read them as two's complement.
pub fn lift_flat_signed(vi: &mut dyn ValueIter, core_width: u32, t_width: u32) -> Result<i64> {
    reached!(lift_flat_signed);
    let i = next_int(vi, core_width)?;
    if t_width >= 64 {
        return Ok(i as i64);
    }
    let i = i % (1u64 << t_width);
    Ok(if i >= 1u64 << (t_width - 1) { i as i64 - (1i64 << t_width) } else { i as i64 })
}

/// `lift_flat_string`.
pub fn lift_flat_string(cx: &mut LiftLowerContext<'_>, vi: &mut dyn ValueIter) -> Result<Value> {
    reached!(lift_flat_string);
    let ptr = next_ptr(cx, vi)?;
    let packed_length = next_ptr(cx, vi)?;
    Ok(Value::String(load_string_from_range(cx, ptr, packed_length)?))
}

/// `lift_flat_list`: a fixed-length list lifts like a tuple, a list from (ptr, length).
pub fn lift_flat_list(
    cx: &mut LiftLowerContext<'_>,
    vi: &mut dyn ValueIter,
    elem_type: &ValType,
    maybe_length: Option<u32>,
) -> Result<Value> {
    reached!(lift_flat_list);
    if let Some(l) = maybe_length {
        let mut a = Vec::with_capacity(l as usize);
        for _ in 0..l {
            a.push(lift_flat(cx, vi, elem_type)?);
        }
        return Ok(Value::List(a));
    }
    let ptr = next_ptr(cx, vi)?;
    let length = next_ptr(cx, vi)?;
    load_list_from_range(cx, ptr, length, elem_type)
}

/// `lift_flat_record`.
pub fn lift_flat_record(cx: &mut LiftLowerContext<'_>, vi: &mut dyn ValueIter, fields: &[FieldType]) -> Result<Value> {
    reached!(lift_flat_record);
    let mut record = Vec::with_capacity(fields.len());
    for f in fields {
        record.push((f.label.clone(), lift_flat(cx, vi, &f.t)?));
    }
    Ok(Value::Record(record))
}

/// `CoerceValueIter` of `lift_flat_variant`: hands out the joined slot types as the active
/// case's types (i32→f32 reinterpret, i64→i32 wrap, i64→f32 wrap+reinterpret, i64→f64).
struct CoerceValueIter<'v> {
    vi: &'v mut dyn ValueIter,
    flat_types: &'v mut VecDeque<CoreType>,
}

impl ValueIter for CoerceValueIter<'_> {
    fn next(&mut self, want: CoreType) -> Result<Flat> {
        let have = self
            .flat_types
            .pop_front()
            .ok_or_else(|| Trap::new(TrapKind::Assertion, "lift_flat_variant: payload longer than its slots"))?;
        let x = self.vi.next(have)?;
        Ok(match (have, want, x) {
            (CoreType::I32, CoreType::F32, Flat::I32(x)) => Flat::F32(decode_i32_as_float(x)),
            (CoreType::I64, CoreType::I32, Flat::I64(x)) => Flat::I32(wrap_i64_to_i32(x)),
            (CoreType::I64, CoreType::F32, Flat::I64(x)) => Flat::F32(decode_i32_as_float(wrap_i64_to_i32(x))),
            (CoreType::I64, CoreType::F64, Flat::I64(x)) => Flat::F64(decode_i64_as_float(x)),
            _ => {
                assert_that(have == want, "lift_flat_variant: joined slot type is the wanted type")?;
                x
            }
        })
    }
}

/// `lift_flat_variant`: the whole i32 discriminant must name a case; the payload is read
/// through the joined slots, and slots the case does not use are consumed and ignored.
pub fn lift_flat_variant(cx: &mut LiftLowerContext<'_>, vi: &mut dyn ValueIter, cases: &[CaseType]) -> Result<Value> {
    reached!(lift_flat_variant);
    let mut flat_types: VecDeque<CoreType> = flatten_variant(cases, cx.memory().ptr_type()).into();
    assert_that(flat_types.pop_front() == Some(CoreType::I32), "variant discriminant flattens to i32")?;
    let case_index = next_i32(vi)?;
    trap_if(case_index as usize >= cases.len(), TrapKind::InvalidDiscriminant, || {
        format!("lift_flat_variant: discriminant {case_index} >= {} cases", cases.len())
    })?;
    let c = &cases[case_index as usize];
    let v = match &c.t {
        None => None,
        Some(t) => {
            let mut coerce = CoerceValueIter { vi: &mut *vi, flat_types: &mut flat_types };
            Some(Box::new(lift_flat(cx, &mut coerce, t)?))
        }
    };
    for have in flat_types {
        vi.next(have)?;
    }
    Ok(Value::Variant(c.label.clone(), v))
}

/// `wrap_i64_to_i32`.
pub fn wrap_i64_to_i32(i: u64) -> u32 {
    reached!(wrap_i64_to_i32);
    (i % (1u64 << 32)) as u32
}

/// `lift_flat_flags`: one i32; bits past the last label are ignored.
pub fn lift_flat_flags(vi: &mut dyn ValueIter, labels: &[String]) -> Result<Value> {
    reached!(lift_flat_flags);
    let i = next_i32(vi)?;
    Ok(unpack_flags_from_int(i.into(), labels))
}

/// `lift_flat_values(cx, max_flat, vi, ts)`: more than `max_flat` flat values means one
/// pointer to a tuple in memory, checked for alignment then bounds.
pub fn lift_flat_values(
    cx: &mut LiftLowerContext<'_>,
    max_flat: usize,
    vi: &mut dyn ValueIter,
    ts: &[ValType],
) -> Result<Vec<Value>> {
    reached!(lift_flat_values);
    let pt = cx.memory().ptr_type();
    let flat_types = flatten_types(ts, pt);
    if flat_types.len() > max_flat {
        let ptr = next_ptr(cx, vi)?;
        let tuple_type = ValType::Tuple(ts.into());
        let a = alignment(&tuple_type, pt);
        trap_if(ptr != align_to(ptr, a), TrapKind::MisalignedPointer, || {
            format!("lift_flat_values: tuple pointer {ptr} is not {a}-aligned")
        })?;
        let size = elem_size(&tuple_type, pt);
        let mem_len = cx.memory().len();
        trap_if(exceeds(ptr, size.into(), mem_len), TrapKind::OutOfBounds, || {
            format!("lift_flat_values: tuple {ptr}+{size} is past the end of memory ({mem_len})")
        })?;
        let Value::Record(fields) = load(cx, ptr, &tuple_type)? else {
            return Err(Trap::new(TrapKind::Assertion, "a tuple loads as a record"));
        };
        return Ok(fields.into_iter().map(|(_, v)| v).collect());
    }
    ts.iter().map(|t| lift_flat(cx, vi, t)).collect()
}

/// `lift_flat` of one value outside any call, the reference asked directly (`witness abi
/// lift`, the reference vectors): `memory` is the guest's memory, `inst` holds the handle
/// table, borrows are scoped to a fresh `Subtask`.
pub fn lift_value(
    inst: &mut ComponentInstance,
    t: &ValType,
    flats: Vec<Flat>,
    encoding: StringEncoding,
    memory: &mut dyn Memory,
) -> Result<Value> {
    let mut subtask = Subtask::default();
    let mut cx = LiftLowerContext::new(encoding, memory, inst, BorrowScope::Subtask(&mut subtask));
    lift_flat(&mut cx, &mut CoreValueIter::new(flats), t)
}
