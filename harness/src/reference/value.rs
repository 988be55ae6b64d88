//! Component-level values in the spec's (despecialized) value model, and flat core values.
//!
//! As in definitions.py: records and tuples are label→value maps (tuple labels "0", "1", ...),
//! enums/options/results are single-case variants, flags are the set labels, handles are the
//! resource representation, and a string keeps its source encoding and tagged code units.

use super::concurrency::Obj;
use super::concurrency::future::SharedFutureImpl;
use super::concurrency::stream::SharedStreamImpl;
use super::types::{CoreType, StringEncoding};

/// A string value as `load_string` produces it: `(text, source encoding, tagged code units)`.
/// The source encoding and length are the size hint `store_string` uses, so they decide the
/// exact realloc sequence when the string is stored again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostString {
    pub text: String,
    pub encoding: StringEncoding,
    pub tagged_code_units: u64,
}

impl HostString {
    /// A string as a guest using `encoding` (in a 32-bit memory) would hand it over: the code
    /// units of that encoding, with latin1+utf16 picking Latin-1 when every char fits.
    pub fn new(text: &str, encoding: StringEncoding) -> HostString {
        let utf16_units = || text.encode_utf16().count() as u64;
        let tagged_code_units = match encoding {
            StringEncoding::Utf8 => text.len() as u64,
            StringEncoding::Utf16 => utf16_units(),
            StringEncoding::Latin1Utf16 => {
                if text.chars().all(|c| (c as u32) < 256) {
                    text.chars().count() as u64
                } else {
                    utf16_units() | super::strings::UTF16_TAG_I32
                }
            }
        };
        HostString { text: text.to_string(), encoding, tagged_code_units }
    }

    /// A UTF-8 string (how hosts usually hold strings).
    pub fn utf8(text: &str) -> HostString {
        HostString::new(text, StringEncoding::Utf8)
    }
}

/// A component-level value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    S8(i8),
    U8(u8),
    S16(i16),
    U16(u16),
    S32(i32),
    U32(u32),
    S64(i64),
    U64(u64),
    F32(f32),
    F64(f64),
    Char(char),
    String(HostString),
    List(Vec<Value>),
    /// Records and tuples, fields in declaration order.
    Record(Vec<(String, Value)>),
    /// Variants, enums, options ("none"/"some") and results ("ok"/"error").
    Variant(String, Option<Box<Value>>),
    /// The labels that are set, in declaration order.
    Flags(Vec<String>),
    /// A resource handle's representation (the lifted value of `own` and `borrow`).
    Handle(u32),
    /// 📝 An error context (the lifted value of `error-context`: the table element itself,
    /// which lowering adds to the receiving table, shared).
    ErrorContext(crate::reference::handles::ErrorContext),
    /// 🔀 A stream (the lifted value of `stream<T>`: the shared state, which lowering puts
    /// behind a new readable end in the receiving table).
    Stream(Obj<SharedStreamImpl>),
    /// 🔀 A future, as a stream.
    Future(Obj<SharedFutureImpl>),
}

impl Value {
    pub fn string(text: &str) -> Value {
        Value::String(HostString::utf8(text))
    }

    pub fn tuple(vs: impl IntoIterator<Item = Value>) -> Value {
        Value::Record(vs.into_iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect())
    }

    pub fn case(label: &str, payload: Option<Value>) -> Value {
        Value::Variant(label.to_string(), payload.map(Box::new))
    }

    /// Equality as the oracle uses it: strings by text (not by source encoding), and any NaN
    /// equal to any NaN (the spec scrambles NaN payloads on lowering).
    pub fn matches(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::F32(a), Value::F32(b)) => (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits(),
            (Value::F64(a), Value::F64(b)) => (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits(),
            (Value::String(a), Value::String(b)) => a.text == b.text,
            (Value::List(a), Value::List(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.matches(y)),
            (Value::Record(a), Value::Record(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|((la, x), (lb, y))| la == lb && x.matches(y))
            }
            (Value::Variant(la, pa), Value::Variant(lb, pb)) => {
                la == lb
                    && match (pa, pb) {
                        (None, None) => true,
                        (Some(x), Some(y)) => x.matches(y),
                        _ => false,
                    }
            }
            _ => self == other,
        }
    }
}

/// A flat core value. Integers are unsigned, as in definitions.py (`0 <= v < 2**32`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Flat {
    I32(u32),
    I64(u64),
    F32(f32),
    F64(f64),
}

impl Flat {
    pub fn core_type(self) -> CoreType {
        match self {
            Flat::I32(_) => CoreType::I32,
            Flat::I64(_) => CoreType::I64,
            Flat::F32(_) => CoreType::F32,
            Flat::F64(_) => CoreType::F64,
        }
    }

    /// The zero of a core type (`lower_flat_variant` pads unused slots with 0).
    pub fn zero(t: CoreType) -> Flat {
        match t {
            CoreType::I32 => Flat::I32(0),
            CoreType::I64 => Flat::I64(0),
            CoreType::F32 => Flat::F32(0.0),
            CoreType::F64 => Flat::F64(0.0),
        }
    }

    /// The bits of the value, zero-extended to 64 (for printing and comparing bit-exactly).
    pub fn bits(self) -> u64 {
        match self {
            Flat::I32(v) => u64::from(v),
            Flat::I64(v) => v,
            Flat::F32(v) => u64::from(v.to_bits()),
            Flat::F64(v) => v.to_bits(),
        }
    }

    /// Parse `type:value`, e.g. `i32:16`, `i64:-1`, `f32:1.5`, `f64:nan`, `f32:0x7fc00000`
    /// (a hex float value is taken as its bit pattern).
    pub fn parse(s: &str) -> Result<Flat, String> {
        let (t, v) = s.split_once(':').ok_or_else(|| format!("`{s}`: expected TYPE:VALUE, e.g. i32:16"))?;
        let bad = |what: &str| format!("`{s}`: {what}");
        let int = |v: &str, bits: u32| -> Result<u64, String> {
            let parsed = if let Some(hex) = v.strip_prefix("0x") {
                u64::from_str_radix(hex, 16).map_err(|e| bad(&e.to_string()))?
            } else if let Some(neg) = v.strip_prefix('-') {
                let n: u64 = neg.parse().map_err(|e: std::num::ParseIntError| bad(&e.to_string()))?;
                if bits < 64 && n > 1u64 << (bits - 1) || bits == 64 && n > 1u64 << 63 {
                    return Err(bad("out of range"));
                }
                (n as i64).wrapping_neg() as u64 & mask(bits)
            } else {
                v.parse().map_err(|e: std::num::ParseIntError| bad(&e.to_string()))?
            };
            if parsed & !mask(bits) != 0 {
                return Err(bad("out of range"));
            }
            Ok(parsed)
        };
        match t {
            "i32" => Ok(Flat::I32(int(v, 32)? as u32)),
            "i64" => Ok(Flat::I64(int(v, 64)?)),
            "f32" if v.starts_with("0x") => Ok(Flat::F32(f32::from_bits(int(v, 32)? as u32))),
            "f64" if v.starts_with("0x") => Ok(Flat::F64(f64::from_bits(int(v, 64)?))),
            "f32" => v.parse().map(Flat::F32).map_err(|_| bad("not a float")),
            "f64" => v.parse().map(Flat::F64).map_err(|_| bad("not a float")),
            _ => Err(bad("type must be i32, i64, f32 or f64")),
        }
    }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 }
}

/// `types_match_values(ts, vs)`: each flat value has its core type.
pub fn types_match_values(ts: &[CoreType], vs: &[Flat]) -> bool {
    ts.len() == vs.len() && ts.iter().zip(vs).all(|(t, v)| v.core_type() == *t)
}
