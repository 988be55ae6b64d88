//! Type validity the spec states as validation rules or `assert`s (Explainer.md / Binary.md):
//! the layout and ABI functions may rely on these after `validate_type` accepted a type.

use super::layout::elem_size;
use super::types::{KEY_TYPES, PtrType, ValType, contains_borrow};

/// The static size limit on value types: `elem_size(t, 'i64') < 2^28`.
pub const MAX_VALUE_SIZE: u64 = 1 << 28;

/// Check a type: records/tuples have fields, variants/enums cases, flags 1..=32 labels,
/// labels are unique, fixed-length lists are non-empty, and every type in it fits the size
/// limit (Binary.md: "for every defvaltype t", component-model #688; behind a list's pointer
/// too, so `list<list<u8, 268435456>>` is invalid though its own size is 8).
pub fn validate_type(t: &ValType) -> Result<(), String> {
    check(t)
}

fn unique<'a>(what: &str, labels: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for l in labels {
        if !seen.insert(l) {
            return Err(format!("{what} label `{l}` appears twice"));
        }
    }
    Ok(())
}

fn check(t: &ValType) -> Result<(), String> {
    let size = elem_size(t, PtrType::I64);
    if size >= MAX_VALUE_SIZE {
        return Err(format!("a type's size ({size} bytes with 64-bit pointers) is not below 2^28"));
    }
    match t {
        ValType::List(e, l) => {
            if *l == Some(0) {
                return Err("a fixed-length list must have a length above 0".into());
            }
            check(e)
        }
        ValType::Record(fields) => {
            if fields.is_empty() {
                return Err("a record must have at least one field".into());
            }
            unique("record field", fields.iter().map(|f| f.label.as_str()))?;
            fields.iter().try_for_each(|f| check(&f.t))
        }
        ValType::Tuple(ts) => {
            if ts.is_empty() {
                return Err("a tuple must have at least one element".into());
            }
            ts.iter().try_for_each(check)
        }
        ValType::Variant(cases) => {
            if cases.is_empty() {
                return Err("a variant must have at least one case".into());
            }
            unique("variant case", cases.iter().map(|c| c.label.as_str()))?;
            cases.iter().filter_map(|c| c.t.as_ref()).try_for_each(check)
        }
        ValType::Enum(labels) => {
            if labels.is_empty() {
                return Err("an enum must have at least one case".into());
            }
            unique("enum case", labels.iter().map(String::as_str))
        }
        ValType::Flags(labels) => {
            if labels.is_empty() || labels.len() > 32 {
                return Err(format!("flags must have 1 to 32 labels, not {}", labels.len()));
            }
            unique("flag", labels.iter().map(String::as_str))
        }
        ValType::Option(t) => check(t),
        // Explainer.md: validation rejects `(stream T)` and `(future T)` when T transitively
        // contains a `borrow`, and `(stream char)` for now.
        ValType::Stream(Some(t)) if **t == ValType::Char => Err("stream<char> is not valid yet".into()),
        ValType::Stream(Some(t)) | ValType::Future(Some(t)) => {
            if contains_borrow(t) {
                return Err("a stream or future payload may not contain a borrow".into());
            }
            check(t)
        }
        ValType::Map(k, v) => {
            if !KEY_TYPES.contains(k) {
                return Err(format!("a map key is a bool, an integer, a char or a string, not {k:?}"));
            }
            check(v)
        }
        ValType::Result(ok, err) => ok.iter().chain(err.iter()).try_for_each(|t| check(t)),
        _ => Ok(()),
    }
}
