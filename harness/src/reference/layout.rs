//! Alignment and element size (CanonicalABI.md "Alignment" and "Element Size"), plus the field
//! and payload offsets that `load_record` / `load_variant` walk through.
//!
//! Types are validated on construction (`validate::validate_type`), so the spec's `assert`s
//! here (non-empty records, 1..=32 flags) hold; on an invalid type the functions still return
//! a number rather than panic.

use super::types::{CaseType, FieldType, PtrType, ValType, despecialize};
use crate::reference::reached::reached;

/// `alignment(t, ptr_type)`.
pub fn alignment(t: &ValType, ptr_type: PtrType) -> u64 {
    reached!(alignment);
    match despecialize(t).as_ref() {
        ValType::Bool | ValType::S8 | ValType::U8 => 1,
        ValType::S16 | ValType::U16 => 2,
        ValType::S32 | ValType::U32 | ValType::F32 | ValType::Char => 4,
        ValType::S64 | ValType::U64 | ValType::F64 => 8,
        ValType::String => ptr_type.ptr_size(),
        ValType::Stream(_) | ValType::Future(_) | ValType::ErrorContext => 4,
        ValType::List(t, l) => alignment_list(t, *l, ptr_type),
        ValType::Record(fields) => alignment_record(fields, ptr_type),
        ValType::Variant(cases) => alignment_variant(cases, ptr_type),
        ValType::Flags(labels) => alignment_flags(labels),
        ValType::Own(_) | ValType::Borrow(_) => 4,
        ValType::Tuple(_) | ValType::Enum(_) | ValType::Option(_) | ValType::Result(..) | ValType::Map(..) => {
            unreachable!("despecialized")
        }
    }
}

/// `alignment_list`: a fixed-length list aligns like its element, a list like a pointer.
pub fn alignment_list(elem_type: &ValType, maybe_length: Option<u32>, ptr_type: PtrType) -> u64 {
    reached!(alignment_list);
    match maybe_length {
        Some(_) => alignment(elem_type, ptr_type),
        None => ptr_type.ptr_size(),
    }
}

/// `alignment_record`: the largest field alignment, at least 1.
pub fn alignment_record(fields: &[FieldType], ptr_type: PtrType) -> u64 {
    reached!(alignment_record);
    fields.iter().map(|f| alignment(&f.t, ptr_type)).fold(1, u64::max)
}

/// `alignment_variant`: the larger of the discriminant's and the payloads' alignment.
pub fn alignment_variant(cases: &[CaseType], ptr_type: PtrType) -> u64 {
    reached!(alignment_variant);
    alignment(&discriminant_type(cases), ptr_type).max(max_case_alignment(cases, ptr_type))
}

/// `discriminant_type(cases)`: the smallest unsigned integer covering the case indices,
/// `ceil(log2(n)/8)` bytes rounded to u8/u16/u32. (`ceil(ceil(log2 n)/8)` equals
/// `ceil(log2(n)/8)`, so integer arithmetic gives the spec's answer exactly.)
pub fn discriminant_type(cases: &[CaseType]) -> ValType {
    reached!(discriminant_type);
    let n = cases.len() as u64;
    let bits = if n <= 1 { 0 } else { 64 - (n - 1).leading_zeros() as u64 };
    match bits.div_ceil(8) {
        0 | 1 => ValType::U8,
        2 => ValType::U16,
        // The spec's match has no case for n > 2^24 (4 bytes); such types fail validation.
        _ => ValType::U32,
    }
}

/// `max_case_alignment`: the largest payload alignment, at least 1.
pub fn max_case_alignment(cases: &[CaseType], ptr_type: PtrType) -> u64 {
    reached!(max_case_alignment);
    cases.iter().filter_map(|c| c.t.as_ref()).map(|t| alignment(t, ptr_type)).fold(1, u64::max)
}

/// `alignment_flags`: 1, 2 or 4 bytes by label count.
pub fn alignment_flags(labels: &[String]) -> u64 {
    reached!(alignment_flags);
    match labels.len() {
        0..=8 => 1,
        9..=16 => 2,
        _ => 4,
    }
}

/// `elem_size(t, ptr_type)`: the number of bytes a value occupies as a list element.
pub fn elem_size(t: &ValType, ptr_type: PtrType) -> u64 {
    reached!(elem_size);
    match despecialize(t).as_ref() {
        ValType::Bool | ValType::S8 | ValType::U8 => 1,
        ValType::S16 | ValType::U16 => 2,
        ValType::S32 | ValType::U32 | ValType::F32 | ValType::Char => 4,
        ValType::S64 | ValType::U64 | ValType::F64 => 8,
        ValType::String => 2 * ptr_type.ptr_size(),
        ValType::Stream(_) | ValType::Future(_) | ValType::ErrorContext => 4,
        ValType::List(t, l) => elem_size_list(t, *l, ptr_type),
        ValType::Record(fields) => elem_size_record(fields, ptr_type),
        ValType::Variant(cases) => elem_size_variant(cases, ptr_type),
        ValType::Flags(labels) => elem_size_flags(labels),
        ValType::Own(_) | ValType::Borrow(_) => 4,
        ValType::Tuple(_) | ValType::Enum(_) | ValType::Option(_) | ValType::Result(..) | ValType::Map(..) => {
            unreachable!("despecialized")
        }
    }
}

/// `elem_size_list`: a fixed-length list is inline (`length * elem_size`), a list is (ptr, len).
pub fn elem_size_list(elem_type: &ValType, maybe_length: Option<u32>, ptr_type: PtrType) -> u64 {
    reached!(elem_size_list);
    match maybe_length {
        Some(l) => u64::from(l).saturating_mul(elem_size(elem_type, ptr_type)),
        None => 2 * ptr_type.ptr_size(),
    }
}

/// `elem_size_record`: fields in order, each aligned to itself; the total rounded up to the
/// record's alignment.
pub fn elem_size_record(fields: &[FieldType], ptr_type: PtrType) -> u64 {
    reached!(elem_size_record);
    let mut s = 0u64;
    for f in fields {
        s = align_to(s, alignment(&f.t, ptr_type));
        s = s.saturating_add(elem_size(&f.t, ptr_type));
    }
    align_to(s, alignment_record(fields, ptr_type))
}

/// `align_to(ptr, alignment)`: round up to a multiple of `alignment` (which is never 0 for a
/// valid type; 0 is treated as 1 so that no input can divide by zero).
pub fn align_to(ptr: u64, alignment: u64) -> u64 {
    reached!(align_to);
    let a = alignment.max(1);
    ptr.div_ceil(a).saturating_mul(a)
}

/// `elem_size_variant`: discriminant, padding to the payload alignment, the largest payload,
/// rounded up to the variant's alignment.
pub fn elem_size_variant(cases: &[CaseType], ptr_type: PtrType) -> u64 {
    reached!(elem_size_variant);
    let mut s = elem_size(&discriminant_type(cases), ptr_type);
    s = align_to(s, max_case_alignment(cases, ptr_type));
    let cs = cases.iter().filter_map(|c| c.t.as_ref()).map(|t| elem_size(t, ptr_type)).max();
    s = s.saturating_add(cs.unwrap_or(0));
    align_to(s, alignment_variant(cases, ptr_type))
}

/// `elem_size_flags`: 1, 2 or 4 bytes by label count.
pub fn elem_size_flags(labels: &[String]) -> u64 {
    reached!(elem_size_flags);
    alignment_flags(labels)
}

/// The offset of each field inside a record, as `load_record` / `store_record` step through
/// them (also used for tuples, whose fields are "0", "1", ...).
pub fn field_offsets(fields: &[FieldType], ptr_type: PtrType) -> Vec<u64> {
    let mut offsets = Vec::with_capacity(fields.len());
    let mut s = 0u64;
    for f in fields {
        s = align_to(s, alignment(&f.t, ptr_type));
        offsets.push(s);
        s = s.saturating_add(elem_size(&f.t, ptr_type));
    }
    offsets
}

/// The offset of a variant's payload, common to every case (`load_variant` / `store_variant`).
pub fn payload_offset(cases: &[CaseType], ptr_type: PtrType) -> u64 {
    align_to(elem_size(&discriminant_type(cases), ptr_type), max_case_alignment(cases, ptr_type))
}
