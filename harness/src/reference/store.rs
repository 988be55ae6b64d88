//! Storing values into linear memory (CanonicalABI.md "Storing"). Strings are in `strings`,
//! handles in `handles`.
//!
//! NaNs: the reference runs the spec's deterministic profile (`DETERMINISTIC_PROFILE = True`,
//! as run_tests.py does), so a stored NaN is the canonical NaN. Engines may store any NaN; the
//! oracle compares NaNs by class.

use super::context::LiftLowerContext;
use super::error_context::lower_error_context;
use super::handles::{lower_borrow, lower_own};
use super::layout::{align_to, alignment, discriminant_type, elem_size, elem_size_flags, max_case_alignment};
use super::load::{CANONICAL_FLOAT32_NAN, CANONICAL_FLOAT64_NAN};
use super::memory::exceeds;
use super::strings::{REALLOC_I32_MAX, store_string};
use super::trap::{Result, Trap, TrapKind, assert_that, trap_if};
use super::types::{CaseType, FieldType, ValType, despecialize};
use super::value::Value;
use crate::reference::reached::reached;

/// A value that does not inhabit its type: the caller's mistake, never the guest's.
pub(crate) fn mismatch(v: &Value, t: &ValType) -> Trap {
    Trap::new(TrapKind::Assertion, format!("value {v:?} does not have type {t:?}"))
}

/// `store(cx, v, t, ptr)`.
pub fn store(cx: &mut LiftLowerContext<'_>, v: &Value, t: &ValType, ptr: u64) -> Result<()> {
    reached!(store);
    let pt = cx.memory().ptr_type();
    assert_that(ptr == align_to(ptr, alignment(t, pt)), "store: ptr is aligned")?;
    assert_that(!exceeds(ptr, elem_size(t, pt).into(), cx.memory().len()), "store: ptr is in bounds")?;
    match (despecialize(t).as_ref(), v) {
        (ValType::Bool, Value::Bool(b)) => store_int(cx, u64::from(*b), ptr, 1),
        (ValType::ErrorContext, Value::ErrorContext(e)) => {
            let i = lower_error_context(cx, e)?;
            store_int(cx, u64::from(i), ptr, 4)
        }
        (ValType::Stream(_), Value::Stream(_)) | (ValType::Future(_), Value::Future(_)) => {
            let i = crate::reference::concurrency::stream::lower_async_value(cx, v, t)?;
            store_int(cx, u64::from(i), ptr, 4)
        }
        (ValType::U8, Value::U8(x)) => store_int(cx, u64::from(*x), ptr, 1),
        (ValType::U16, Value::U16(x)) => store_int(cx, u64::from(*x), ptr, 2),
        (ValType::U32, Value::U32(x)) => store_int(cx, u64::from(*x), ptr, 4),
        (ValType::U64, Value::U64(x)) => store_int(cx, *x, ptr, 8),
        (ValType::S8, Value::S8(x)) => store_int(cx, *x as u64, ptr, 1),
        (ValType::S16, Value::S16(x)) => store_int(cx, *x as u64, ptr, 2),
        (ValType::S32, Value::S32(x)) => store_int(cx, *x as u64, ptr, 4),
        (ValType::S64, Value::S64(x)) => store_int(cx, *x as u64, ptr, 8),
        (ValType::F32, Value::F32(f)) => store_int(cx, encode_float_as_i32(*f).into(), ptr, 4),
        (ValType::F64, Value::F64(f)) => store_int(cx, encode_float_as_i64(*f), ptr, 8),
        (ValType::Char, Value::Char(c)) => store_int(cx, char_to_i32(*c).into(), ptr, 4),
        (ValType::String, Value::String(s)) => store_string(cx, s, ptr),
        (ValType::List(et, l), Value::List(vs)) => store_list(cx, vs, ptr, et, *l),
        (ValType::Record(fields), Value::Record(_)) => store_record(cx, v, ptr, fields),
        (ValType::Variant(cases), Value::Variant(..)) => store_variant(cx, v, ptr, cases),
        (ValType::Flags(labels), Value::Flags(_)) => store_flags(cx, v, ptr, labels),
        (ValType::Own(_), Value::Handle(rep)) => {
            let i = lower_own(cx, *rep, t)?;
            store_int(cx, i.into(), ptr, 4)
        }
        (ValType::Borrow(_), Value::Handle(rep)) => {
            let i = lower_borrow(cx, *rep, t)?;
            store_int(cx, i.into(), ptr, 4)
        }
        _ => Err(mismatch(v, t)),
    }
}

/// `store_int(cx, v, ptr, nbytes)`: the low `nbytes` bytes, little-endian.
pub fn store_int(cx: &mut LiftLowerContext<'_>, v: u64, ptr: u64, nbytes: u64) -> Result<()> {
    reached!(store_int);
    cx.memory_mut().write(ptr, &v.to_le_bytes()[..nbytes as usize])
}

/// `maybe_scramble_nan32` in the deterministic profile: NaN becomes the canonical NaN.
pub fn maybe_scramble_nan32(f: f32) -> f32 {
    reached!(maybe_scramble_nan32);
    if f.is_nan() { f32::from_bits(CANONICAL_FLOAT32_NAN) } else { f }
}

/// `maybe_scramble_nan64` in the deterministic profile.
pub fn maybe_scramble_nan64(f: f64) -> f64 {
    reached!(maybe_scramble_nan64);
    if f.is_nan() { f64::from_bits(CANONICAL_FLOAT64_NAN) } else { f }
}

/// `encode_float_as_i32`: `i32.reinterpret_f32` of the (scrambled) float.
pub fn encode_float_as_i32(f: f32) -> u32 {
    reached!(encode_float_as_i32);
    maybe_scramble_nan32(f).to_bits()
}

/// `encode_float_as_i64`.
pub fn encode_float_as_i64(f: f64) -> u64 {
    reached!(encode_float_as_i64);
    maybe_scramble_nan64(f).to_bits()
}

/// `char_to_i32`: a `char` is already a valid scalar value.
pub fn char_to_i32(c: char) -> u32 {
    reached!(char_to_i32);
    c as u32
}

/// `store_list(cx, v, ptr, elem_type, maybe_length)`.
pub fn store_list(
    cx: &mut LiftLowerContext<'_>,
    v: &[Value],
    ptr: u64,
    elem_type: &ValType,
    maybe_length: Option<u32>,
) -> Result<()> {
    reached!(store_list);
    if let Some(l) = maybe_length {
        assert_that(l as usize == v.len(), "fixed-length list value has the type's length")?;
        return store_list_into_valid_range(cx, v, ptr, elem_type);
    }
    let (begin, length) = store_list_into_range(cx, v, elem_type)?;
    let ps = cx.memory().ptr_type().ptr_size();
    store_int(cx, begin, ptr, ps)?;
    store_int(cx, length, ptr + ps, ps)
}

/// `store_list_into_range`: exactly one `realloc(0, 0, alignment, byte_length)` per list, even
/// an empty one; its result is checked for alignment before bounds.
pub fn store_list_into_range(cx: &mut LiftLowerContext<'_>, v: &[Value], elem_type: &ValType) -> Result<(u64, u64)> {
    reached!(store_list_into_range);
    let pt = cx.memory().ptr_type();
    let byte_length = v.len() as u64 * elem_size(elem_type, pt);
    assert_that(byte_length <= REALLOC_I32_MAX, "byte_length <= REALLOC_I32_MAX")?;
    let a = alignment(elem_type, pt);
    let ptr = cx.allocate(a, byte_length)?;
    trap_if(ptr != align_to(ptr, a), TrapKind::ReallocMisaligned, || {
        format!("store_list_into_range: realloc returned {ptr}, not {a}-aligned")
    })?;
    let mem_len = cx.memory().len();
    trap_if(exceeds(ptr, byte_length.into(), mem_len), TrapKind::ReallocOutOfBounds, || {
        format!(
            "store_list_into_range: realloc returned {ptr}, and {ptr}+{byte_length} is past the end of memory ({mem_len})"
        )
    })?;
    store_list_into_valid_range(cx, v, ptr, elem_type)?;
    Ok((ptr, v.len() as u64))
}

/// `store_list_into_valid_range`.
pub fn store_list_into_valid_range(
    cx: &mut LiftLowerContext<'_>,
    v: &[Value],
    ptr: u64,
    elem_type: &ValType,
) -> Result<()> {
    reached!(store_list_into_valid_range);
    let size = elem_size(elem_type, cx.memory().ptr_type());
    for (i, e) in v.iter().enumerate() {
        store(cx, e, elem_type, ptr + i as u64 * size)?;
    }
    Ok(())
}

/// The field values of a record value in the type's field order.
pub(crate) fn record_fields<'v>(v: &'v Value, fields: &[FieldType]) -> Result<Vec<&'v Value>> {
    let not_record = || mismatch(v, &ValType::Record(fields.into()));
    let Value::Record(vs) = v else {
        return Err(not_record());
    };
    fields.iter().map(|f| vs.iter().find(|(l, _)| *l == f.label).map(|(_, x)| x).ok_or_else(not_record)).collect()
}

/// `store_record`.
pub fn store_record(cx: &mut LiftLowerContext<'_>, v: &Value, mut ptr: u64, fields: &[FieldType]) -> Result<()> {
    reached!(store_record);
    let pt = cx.memory().ptr_type();
    let values = record_fields(v, fields)?;
    for (f, fv) in fields.iter().zip(values) {
        ptr = align_to(ptr, alignment(&f.t, pt));
        store(cx, fv, &f.t, ptr)?;
        ptr += elem_size(&f.t, pt);
    }
    Ok(())
}

/// `store_variant`: discriminant, then the payload at the common offset.
pub fn store_variant(cx: &mut LiftLowerContext<'_>, v: &Value, mut ptr: u64, cases: &[CaseType]) -> Result<()> {
    reached!(store_variant);
    let pt = cx.memory().ptr_type();
    let (case_index, case_value) = match_case(v, cases)?;
    let disc_size = elem_size(&discriminant_type(cases), pt);
    store_int(cx, case_index as u64, ptr, disc_size)?;
    ptr += disc_size;
    ptr = align_to(ptr, max_case_alignment(cases, pt));
    match (&cases[case_index].t, case_value) {
        (Some(t), Some(cv)) => store(cx, cv, t, ptr),
        (None, None) => Ok(()),
        _ => Err(mismatch(v, &ValType::Variant(cases.into()))),
    }
}

/// `match_case(v, cases)`: the index of the value's case and its payload.
pub fn match_case<'v>(v: &'v Value, cases: &[CaseType]) -> Result<(usize, Option<&'v Value>)> {
    reached!(match_case);
    let Value::Variant(label, payload) = v else {
        return Err(mismatch(v, &ValType::Variant(cases.into())));
    };
    let index =
        cases.iter().position(|c| c.label == *label).ok_or_else(|| mismatch(v, &ValType::Variant(cases.into())))?;
    Ok((index, payload.as_deref()))
}

/// `store_flags`.
pub fn store_flags(cx: &mut LiftLowerContext<'_>, v: &Value, ptr: u64, labels: &[String]) -> Result<()> {
    reached!(store_flags);
    let i = pack_flags_into_int(v, labels)?;
    store_int(cx, i, ptr, elem_size_flags(labels))
}

/// `pack_flags_into_int`: label k sets bit k.
pub fn pack_flags_into_int(v: &Value, labels: &[String]) -> Result<u64> {
    reached!(pack_flags_into_int);
    let Value::Flags(set) = v else {
        return Err(mismatch(v, &ValType::Flags(labels.into())));
    };
    if let Some(unknown) = set.iter().find(|l| !labels.contains(l)) {
        return Err(Trap::new(TrapKind::Assertion, format!("flag `{unknown}` is not a label of the type")));
    }
    Ok(labels
        .iter()
        .enumerate()
        .filter(|(_, l)| set.contains(l))
        .fold(0, |i, (k, _)| i | 1u64.checked_shl(k as u32).unwrap_or(0)))
}
