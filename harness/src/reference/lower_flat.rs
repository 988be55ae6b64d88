//! Flat lowering (CanonicalABI.md "Flat Lowering") and `lower_flat_values`.

use crate::reference::reached::reached;
use std::collections::VecDeque;

use super::context::LiftLowerContext;
use super::error_context::lower_error_context;
use super::flatten::{flatten_type, flatten_types, flatten_variant};
use super::handles::{lower_borrow, lower_own};
use super::layout::{align_to, alignment, elem_size};
use super::lift_flat::ValueIter;
use super::memory::exceeds;
use super::store::{
    char_to_i32, encode_float_as_i32, encode_float_as_i64, match_case, maybe_scramble_nan32, maybe_scramble_nan64,
    mismatch, pack_flags_into_int, record_fields, store, store_list_into_range,
};
use super::strings::store_string_into_range;
use super::trap::{Result, Trap, TrapKind, assert_that, trap_if};
use super::types::{CaseType, CoreType, FieldType, ValType, despecialize};
use super::value::{Flat, Value};

/// A pointer-sized flat value for the memory's address type.
fn ptr_flat(cx: &LiftLowerContext<'_>, v: u64) -> Flat {
    match cx.memory().ptr_type().core_type() {
        CoreType::I32 => Flat::I32(v as u32),
        _ => Flat::I64(v),
    }
}

/// `lower_flat(cx, v, t)`.
pub fn lower_flat(cx: &mut LiftLowerContext<'_>, v: &Value, t: &ValType) -> Result<Vec<Flat>> {
    reached!(lower_flat);
    Ok(match (despecialize(t).as_ref(), v) {
        (ValType::Bool, Value::Bool(b)) => vec![Flat::I32(u32::from(*b))],
        (ValType::ErrorContext, Value::ErrorContext(e)) => vec![Flat::I32(lower_error_context(cx, e)?)],
        (ValType::Stream(_), Value::Stream(_)) | (ValType::Future(_), Value::Future(_)) => {
            vec![Flat::I32(crate::reference::concurrency::stream::lower_async_value(cx, v, t)?)]
        }
        (ValType::U8, Value::U8(x)) => vec![Flat::I32(u32::from(*x))],
        (ValType::U16, Value::U16(x)) => vec![Flat::I32(u32::from(*x))],
        (ValType::U32, Value::U32(x)) => vec![Flat::I32(*x)],
        (ValType::U64, Value::U64(x)) => vec![Flat::I64(*x)],
        (ValType::S8, Value::S8(x)) => vec![lower_flat_signed(i64::from(*x), 32)],
        (ValType::S16, Value::S16(x)) => vec![lower_flat_signed(i64::from(*x), 32)],
        (ValType::S32, Value::S32(x)) => vec![lower_flat_signed(i64::from(*x), 32)],
        (ValType::S64, Value::S64(x)) => vec![lower_flat_signed(*x, 64)],
        (ValType::F32, Value::F32(f)) => vec![Flat::F32(maybe_scramble_nan32(*f))],
        (ValType::F64, Value::F64(f)) => vec![Flat::F64(maybe_scramble_nan64(*f))],
        (ValType::Char, Value::Char(c)) => vec![Flat::I32(char_to_i32(*c))],
        (ValType::String, Value::String(_)) => lower_flat_string(cx, v)?,
        (ValType::List(et, l), Value::List(vs)) => lower_flat_list(cx, vs, et, *l)?,
        (ValType::Record(fields), Value::Record(_)) => lower_flat_record(cx, v, fields)?,
        (ValType::Variant(cases), Value::Variant(..)) => lower_flat_variant(cx, v, cases)?,
        (ValType::Flags(labels), Value::Flags(_)) => lower_flat_flags(v, labels)?,
        (ValType::Own(_), Value::Handle(rep)) => vec![Flat::I32(lower_own(cx, *rep, t)?)],
        (ValType::Borrow(_), Value::Handle(rep)) => vec![Flat::I32(lower_borrow(cx, *rep, t)?)],
        _ => return Err(mismatch(v, t)),
    })
}

/// `lower_flat_signed(i, core_bits)`: two's complement into an unsigned core value.
pub fn lower_flat_signed(i: i64, core_bits: u32) -> Flat {
    reached!(lower_flat_signed);
    if core_bits == 32 { Flat::I32(i as i32 as u32) } else { Flat::I64(i as u64) }
}

/// `lower_flat_string`.
pub fn lower_flat_string(cx: &mut LiftLowerContext<'_>, v: &Value) -> Result<Vec<Flat>> {
    reached!(lower_flat_string);
    let Value::String(s) = v else {
        return Err(mismatch(v, &ValType::String));
    };
    let (ptr, packed_length) = store_string_into_range(cx, s)?;
    Ok(vec![ptr_flat(cx, ptr), ptr_flat(cx, packed_length)])
}

/// `lower_flat_list`: a fixed-length list lowers like a tuple, a list to (ptr, length).
pub fn lower_flat_list(
    cx: &mut LiftLowerContext<'_>,
    v: &[Value],
    elem_type: &ValType,
    maybe_length: Option<u32>,
) -> Result<Vec<Flat>> {
    reached!(lower_flat_list);
    if let Some(l) = maybe_length {
        assert_that(l as usize == v.len(), "fixed-length list value has the type's length")?;
        let mut flat = vec![];
        for e in v {
            flat.extend(lower_flat(cx, e, elem_type)?);
        }
        return Ok(flat);
    }
    let (ptr, length) = store_list_into_range(cx, v, elem_type)?;
    Ok(vec![ptr_flat(cx, ptr), ptr_flat(cx, length)])
}

/// `lower_flat_record`.
pub fn lower_flat_record(cx: &mut LiftLowerContext<'_>, v: &Value, fields: &[FieldType]) -> Result<Vec<Flat>> {
    reached!(lower_flat_record);
    let values = record_fields(v, fields)?;
    let mut flat = vec![];
    for (f, fv) in fields.iter().zip(values) {
        flat.extend(lower_flat(cx, fv, &f.t)?);
    }
    Ok(flat)
}

/// `lower_flat_variant`: discriminant, the payload coerced into the joined slots (f32→i32
/// and f32→i64 by bits, i32→i64 zero-extended, f64→i64 by bits), then zeros for unused slots.
pub fn lower_flat_variant(cx: &mut LiftLowerContext<'_>, v: &Value, cases: &[CaseType]) -> Result<Vec<Flat>> {
    reached!(lower_flat_variant);
    let (case_index, case_value) = match_case(v, cases)?;
    let pt = cx.memory().ptr_type();
    let mut flat_types: VecDeque<CoreType> = flatten_variant(cases, pt).into();
    assert_that(flat_types.pop_front() == Some(CoreType::I32), "variant discriminant flattens to i32")?;
    let c = &cases[case_index];
    let mut payload = match (&c.t, case_value) {
        (None, None) => vec![],
        (Some(t), Some(cv)) => {
            let mut payload = lower_flat(cx, cv, t)?;
            for (fv, have) in payload.iter_mut().zip(flatten_type(t, pt)) {
                let want = flat_types.pop_front().ok_or_else(|| {
                    Trap::new(TrapKind::Assertion, "lower_flat_variant: payload longer than its slots")
                })?;
                *fv = match (have, want, *fv) {
                    (CoreType::F32, CoreType::I32, Flat::F32(f)) => Flat::I32(encode_float_as_i32(f)),
                    (CoreType::I32, CoreType::I64, Flat::I32(i)) => Flat::I64(i.into()),
                    (CoreType::F32, CoreType::I64, Flat::F32(f)) => Flat::I64(encode_float_as_i32(f).into()),
                    (CoreType::F64, CoreType::I64, Flat::F64(f)) => Flat::I64(encode_float_as_i64(f)),
                    (have, want, fv) => {
                        assert_that(have == want, "lower_flat_variant: slot type is the case's type")?;
                        fv
                    }
                };
            }
            payload
        }
        _ => return Err(mismatch(v, &ValType::Variant(cases.into()))),
    };
    payload.extend(flat_types.into_iter().map(Flat::zero));
    let mut out = vec![Flat::I32(case_index as u32)];
    out.extend(payload);
    Ok(out)
}

/// `lower_flat_flags`.
pub fn lower_flat_flags(v: &Value, labels: &[String]) -> Result<Vec<Flat>> {
    reached!(lower_flat_flags);
    Ok(vec![Flat::I32(pack_flags_into_int(v, labels)? as u32)])
}

/// Where `lower_flat_values` puts a spilled tuple: memory from `realloc` (lowering params into
/// a callee), or the caller's out-param pointer (lowering results of an import).
pub enum SpillTo<'v> {
    Realloc,
    OutParam(&'v mut dyn ValueIter),
}

/// `lower_flat_values(cx, max_flat, vs, ts, out_param)`: more than `max_flat` flat values are
/// stored as a tuple in memory. (Since component-model #680 it leaves `may_leave` alone:
/// `reallocate` clears it around realloc.)
pub fn lower_flat_values(
    cx: &mut LiftLowerContext<'_>,
    max_flat: usize,
    vs: &[Value],
    ts: &[ValType],
    out_param: SpillTo<'_>,
) -> Result<Vec<Flat>> {
    reached!(lower_flat_values);
    assert_that(vs.len() == ts.len(), "one value per type")?;
    let pt = cx.memory().ptr_type();
    let flat_types = flatten_types(ts, pt);
    let flat_vals = if flat_types.len() > max_flat {
        let tuple_type = ValType::Tuple(ts.into());
        let tuple_value = Value::tuple(vs.iter().cloned());
        let a = alignment(&tuple_type, pt);
        let size = elem_size(&tuple_type, pt);
        let (ptr, flat_vals, from_realloc) = match out_param {
            SpillTo::Realloc => {
                let ptr = cx.allocate(a, size)?;
                (ptr, vec![ptr_flat(cx, ptr)], true)
            }
            SpillTo::OutParam(vi) => {
                let ptr = match vi.next(pt.core_type())? {
                    Flat::I32(p) => u64::from(p),
                    Flat::I64(p) => p,
                    other => {
                        return Err(Trap::new(TrapKind::Assertion, format!("out-param {other:?} is not a pointer")));
                    }
                };
                (ptr, vec![], false)
            }
        };
        let (misaligned, oob) = if from_realloc {
            (TrapKind::ReallocMisaligned, TrapKind::ReallocOutOfBounds)
        } else {
            (TrapKind::MisalignedPointer, TrapKind::OutOfBounds)
        };
        trap_if(ptr != align_to(ptr, a), misaligned, || {
            format!("lower_flat_values: tuple pointer {ptr} is not {a}-aligned")
        })?;
        let mem_len = cx.memory().len();
        trap_if(exceeds(ptr, size.into(), mem_len), oob, || {
            format!("lower_flat_values: tuple {ptr}+{size} is past the end of memory ({mem_len})")
        })?;
        store(cx, &tuple_value, &tuple_type, ptr)?;
        flat_vals
    } else {
        let mut flat_vals = vec![];
        for (v, t) in vs.iter().zip(ts) {
            flat_vals.extend(lower_flat(cx, v, t)?);
        }
        flat_vals
    };
    Ok(flat_vals)
}
