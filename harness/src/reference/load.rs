//! Loading values from linear memory (CanonicalABI.md "Loading"). Strings are in `strings`,
//! handles in `handles`.

use super::context::LiftLowerContext;
use super::error_context::lift_error_context;
use super::handles::{lift_borrow, lift_own};
use super::layout::{align_to, alignment, discriminant_type, elem_size, elem_size_flags, max_case_alignment};
use super::memory::exceeds;
use super::strings::load_string;
use super::trap::{Result, Trap, TrapKind, assert_that, trap_if};
use super::types::{CaseType, FieldType, ValType, despecialize};
use super::value::Value;
use crate::reference::reached::reached;

pub const MAX_LIST_BYTE_LENGTH: u64 = (1 << 28) - 1;
pub const CANONICAL_FLOAT32_NAN: u32 = 0x7fc0_0000;
pub const CANONICAL_FLOAT64_NAN: u64 = 0x7ff8_0000_0000_0000;

/// `load(cx, ptr, t)`.
pub fn load(cx: &mut LiftLowerContext<'_>, ptr: u64, t: &ValType) -> Result<Value> {
    reached!(load);
    let pt = cx.memory().ptr_type();
    assert_that(ptr == align_to(ptr, alignment(t, pt)), "load: ptr is aligned")?;
    assert_that(!exceeds(ptr, elem_size(t, pt).into(), cx.memory().len()), "load: ptr is in bounds")?;
    Ok(match despecialize(t).as_ref() {
        ValType::Bool => Value::Bool(convert_int_to_bool(load_int(cx, ptr, 1)?)),
        ValType::U8 => Value::U8(load_int(cx, ptr, 1)? as u8),
        ValType::U16 => Value::U16(load_int(cx, ptr, 2)? as u16),
        ValType::U32 => Value::U32(load_int(cx, ptr, 4)? as u32),
        ValType::U64 => Value::U64(load_int(cx, ptr, 8)?),
        ValType::S8 => Value::S8(load_int(cx, ptr, 1)? as u8 as i8),
        ValType::S16 => Value::S16(load_int(cx, ptr, 2)? as u16 as i16),
        ValType::S32 => Value::S32(load_int(cx, ptr, 4)? as u32 as i32),
        ValType::S64 => Value::S64(load_int(cx, ptr, 8)? as i64),
        ValType::F32 => Value::F32(decode_i32_as_float(load_int(cx, ptr, 4)? as u32)),
        ValType::F64 => Value::F64(decode_i64_as_float(load_int(cx, ptr, 8)?)),
        ValType::Char => Value::Char(convert_i32_to_char(load_int(cx, ptr, 4)? as u32)?),
        ValType::String => Value::String(load_string(cx, ptr)?),
        ValType::List(t, l) => load_list(cx, ptr, t, *l)?,
        ValType::Record(fields) => load_record(cx, ptr, fields)?,
        ValType::Variant(cases) => load_variant(cx, ptr, cases)?,
        ValType::Flags(labels) => load_flags(cx, ptr, labels)?,
        ValType::Own(_) => {
            let i = load_int(cx, ptr, 4)? as u32;
            Value::Handle(lift_own(cx, i, t)?)
        }
        ValType::Borrow(_) => {
            let i = load_int(cx, ptr, 4)? as u32;
            Value::Handle(lift_borrow(cx, i, t)?)
        }
        ValType::ErrorContext => Value::ErrorContext(lift_error_context(cx, load_int(cx, ptr, 4)? as u32)?),
        ValType::Stream(_) | ValType::Future(_) => {
            crate::reference::concurrency::stream::lift_async_value(cx, load_int(cx, ptr, 4)? as u32, t)?
        }
        ValType::Tuple(_) | ValType::Enum(_) | ValType::Option(_) | ValType::Result(..) | ValType::Map(..) => {
            unreachable!("despecialized")
        }
    })
}

/// `load_int(cx, ptr, nbytes)`: little-endian, unsigned (callers reinterpret signed types).
pub fn load_int(cx: &LiftLowerContext<'_>, ptr: u64, nbytes: u64) -> Result<u64> {
    reached!(load_int);
    let mut buf = [0u8; 8];
    cx.memory().read(ptr, &mut buf[..nbytes as usize])?;
    Ok(u64::from_le_bytes(buf))
}

/// `convert_int_to_bool`: 0 is false, every other bit pattern true.
pub fn convert_int_to_bool(i: u64) -> bool {
    reached!(convert_int_to_bool);
    i != 0
}

/// `canonicalize_nan32`: every NaN becomes `CANONICAL_FLOAT32_NAN`.
pub fn canonicalize_nan32(f: f32) -> f32 {
    reached!(canonicalize_nan32);
    if f.is_nan() { f32::from_bits(CANONICAL_FLOAT32_NAN) } else { f }
}

/// `canonicalize_nan64`.
pub fn canonicalize_nan64(f: f64) -> f64 {
    reached!(canonicalize_nan64);
    if f.is_nan() { f64::from_bits(CANONICAL_FLOAT64_NAN) } else { f }
}

/// `decode_i32_as_float`: `f32.reinterpret_i32`, then NaN canonicalisation.
pub fn decode_i32_as_float(i: u32) -> f32 {
    reached!(decode_i32_as_float);
    canonicalize_nan32(f32::from_bits(i))
}

/// `decode_i64_as_float`.
pub fn decode_i64_as_float(i: u64) -> f64 {
    reached!(decode_i64_as_float);
    canonicalize_nan64(f64::from_bits(i))
}

/// `convert_i32_to_char`: traps unless the unsigned value is a Unicode scalar value.
pub fn convert_i32_to_char(i: u32) -> Result<char> {
    reached!(convert_i32_to_char);
    trap_if(i >= 0x110000, TrapKind::InvalidChar, || format!("convert_i32_to_char: {i:#x} >= 0x110000"))?;
    trap_if((0xD800..=0xDFFF).contains(&i), TrapKind::InvalidChar, || {
        format!("convert_i32_to_char: {i:#x} is a surrogate")
    })?;
    char::from_u32(i).ok_or_else(|| Trap::new(TrapKind::InvalidChar, format!("{i:#x} is not a char")))
}

/// `load_list(cx, ptr, elem_type, maybe_length)`.
pub fn load_list(
    cx: &mut LiftLowerContext<'_>,
    ptr: u64,
    elem_type: &ValType,
    maybe_length: Option<u32>,
) -> Result<Value> {
    reached!(load_list);
    if let Some(length) = maybe_length {
        return load_list_from_valid_range(cx, ptr, length.into(), elem_type);
    }
    let ps = cx.memory().ptr_type().ptr_size();
    let begin = load_int(cx, ptr, ps)?;
    let length = load_int(cx, ptr + ps, ps)?;
    load_list_from_range(cx, begin, length, elem_type)
}

/// `load_list_from_range`: byte length limit, then alignment, then bounds.
pub fn load_list_from_range(
    cx: &mut LiftLowerContext<'_>,
    ptr: u64,
    length: u64,
    elem_type: &ValType,
) -> Result<Value> {
    reached!(load_list_from_range);
    let pt = cx.memory().ptr_type();
    let byte_length = u128::from(length) * u128::from(elem_size(elem_type, pt));
    trap_if(byte_length > MAX_LIST_BYTE_LENGTH.into(), TrapKind::ListTooLong, || {
        format!("load_list_from_range: {length} elements = {byte_length} bytes > MAX_LIST_BYTE_LENGTH")
    })?;
    let a = alignment(elem_type, pt);
    trap_if(ptr != align_to(ptr, a), TrapKind::MisalignedPointer, || {
        format!("load_list_from_range: list pointer {ptr} is not {a}-aligned")
    })?;
    let mem_len = cx.memory().len();
    trap_if(exceeds(ptr, byte_length, mem_len), TrapKind::OutOfBounds, || {
        format!("load_list_from_range: {ptr}+{byte_length} is past the end of memory ({mem_len})")
    })?;
    load_list_from_valid_range(cx, ptr, length, elem_type)
}

/// `load_list_from_valid_range`.
pub fn load_list_from_valid_range(
    cx: &mut LiftLowerContext<'_>,
    ptr: u64,
    length: u64,
    elem_type: &ValType,
) -> Result<Value> {
    reached!(load_list_from_valid_range);
    if *elem_type == ValType::U8 {
        // The loop below for `u8` elements, in one read: `load` of a u8 is the byte, and the
        // range is valid.
        let mut bytes = vec![0; usize::try_from(length).map_err(|_| assert_len())?];
        cx.memory().read(ptr, &mut bytes)?;
        return Ok(Value::List(bytes.into_iter().map(Value::U8).collect()));
    }
    let size = elem_size(elem_type, cx.memory().ptr_type());
    let mut a = Vec::with_capacity(length.min(1 << 16) as usize);
    for i in 0..length {
        a.push(load(cx, ptr + i * size, elem_type)?);
    }
    Ok(Value::List(a))
}

fn assert_len() -> Trap {
    Trap::new(TrapKind::Assertion, "a valid list range longer than the address space")
}

/// `load_record`: each field at its own alignment, in order.
pub fn load_record(cx: &mut LiftLowerContext<'_>, mut ptr: u64, fields: &[FieldType]) -> Result<Value> {
    reached!(load_record);
    let pt = cx.memory().ptr_type();
    let mut record = Vec::with_capacity(fields.len());
    for field in fields {
        ptr = align_to(ptr, alignment(&field.t, pt));
        record.push((field.label.clone(), load(cx, ptr, &field.t)?));
        ptr += elem_size(&field.t, pt);
    }
    Ok(Value::Record(record))
}

/// `load_variant`: the discriminant must name a case; the payload sits at the common offset.
pub fn load_variant(cx: &mut LiftLowerContext<'_>, mut ptr: u64, cases: &[CaseType]) -> Result<Value> {
    reached!(load_variant);
    let pt = cx.memory().ptr_type();
    let disc_size = elem_size(&discriminant_type(cases), pt);
    let case_index = load_int(cx, ptr, disc_size)?;
    ptr += disc_size;
    trap_if(case_index >= cases.len() as u64, TrapKind::InvalidDiscriminant, || {
        format!("load_variant: discriminant {case_index} >= {} cases", cases.len())
    })?;
    let c = &cases[case_index as usize];
    ptr = align_to(ptr, max_case_alignment(cases, pt));
    let payload = match &c.t {
        None => None,
        Some(t) => Some(Box::new(load(cx, ptr, t)?)),
    };
    Ok(Value::Variant(c.label.clone(), payload))
}

/// `load_flags`.
pub fn load_flags(cx: &mut LiftLowerContext<'_>, ptr: u64, labels: &[String]) -> Result<Value> {
    reached!(load_flags);
    let i = load_int(cx, ptr, elem_size_flags(labels))?;
    Ok(unpack_flags_from_int(i, labels))
}

/// `unpack_flags_from_int`: bit k is label k; bits past the last label are ignored.
pub fn unpack_flags_from_int(i: u64, labels: &[String]) -> Value {
    reached!(unpack_flags_from_int);
    Value::Flags(
        labels
            .iter()
            .enumerate()
            .filter(|(k, _)| i.checked_shr(*k as u32).unwrap_or(0) & 1 == 1)
            .map(|(_, l)| l.clone())
            .collect(),
    )
}
