//! Values in WAVE (the WebAssembly Value Encoding, crate wasm-wave): parse text into reference
//! values and print reference values, both guided by the reference type.
//!
//! Handles have no WAVE syntax; an `own<R>` / `borrow<R>` value is written as its
//! representation, a `u32`.

use std::borrow::Cow;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use wasm_wave::value::{Type as WaveType, Value as WaveValue};
use wasm_wave::wasm::WasmValue;

use crate::reference::types::{StringEncoding, ValType, map_entries};
use crate::reference::value::{HostString, Value};

/// The WAVE type of a reference type.
pub fn wave_type(t: &ValType) -> Result<WaveType> {
    let bad = || anyhow!("type {t:?} has no WAVE form");
    Ok(match t {
        ValType::Bool => WaveType::BOOL,
        ValType::S8 => WaveType::S8,
        ValType::U8 => WaveType::U8,
        ValType::S16 => WaveType::S16,
        ValType::U16 => WaveType::U16,
        ValType::S32 => WaveType::S32,
        ValType::U32 | ValType::Own(_) | ValType::Borrow(_) => WaveType::U32,
        ValType::S64 => WaveType::S64,
        ValType::U64 => WaveType::U64,
        ValType::F32 => WaveType::F32,
        ValType::F64 => WaveType::F64,
        ValType::Char => WaveType::CHAR,
        ValType::String => WaveType::STRING,
        ValType::List(e, None) => WaveType::list(wave_type(e)?),
        // wasm-wave has no map syntax: a map is written as its list of (key, value) tuples.
        ValType::Map(k, v) => wave_type(&map_entries(k, v))?,
        ValType::List(e, Some(n)) => WaveType::fixed_length_list(wave_type(e)?, *n),
        ValType::Record(fields) => WaveType::record(
            fields.iter().map(|f| Ok((f.label.as_str(), wave_type(&f.t)?))).collect::<Result<Vec<_>>>()?,
        )
        .ok_or_else(bad)?,
        ValType::Tuple(ts) => WaveType::tuple(ts.iter().map(wave_type).collect::<Result<Vec<_>>>()?).ok_or_else(bad)?,
        ValType::Variant(cases) => WaveType::variant(
            cases
                .iter()
                .map(|c| Ok((c.label.as_str(), c.t.as_ref().map(wave_type).transpose()?)))
                .collect::<Result<Vec<_>>>()?,
        )
        .ok_or_else(bad)?,
        ValType::Enum(labels) => WaveType::enum_ty(labels.iter().map(String::as_str)).ok_or_else(bad)?,
        ValType::Option(t) => WaveType::option(wave_type(t)?),
        ValType::Stream(_) | ValType::Future(_) | ValType::ErrorContext => return Err(bad()),
        ValType::Result(ok, err) => {
            WaveType::result(ok.as_deref().map(wave_type).transpose()?, err.as_deref().map(wave_type).transpose()?)
        }
        ValType::Flags(labels) => WaveType::flags(labels.iter().map(String::as_str)).ok_or_else(bad)?,
    })
}

/// Parse a WAVE value of type `t`. Strings become host strings in `encoding` (the encoding
/// the value is said to come from, which decides how `store_string` transcodes it).
pub fn parse_value(t: &ValType, text: &str, encoding: StringEncoding) -> Result<Value> {
    let wt = wave_type(t)?;
    let wv: WaveValue = wasm_wave::from_str(&wt, text).map_err(|e| {
        // wasm-wave names the span in bytes; quote what it covers, which says more to a reader.
        let span = e.span();
        match text.get(span.clone()).filter(|s| !s.is_empty()) {
            Some(part) => anyhow!("invalid value `{text}`: {e}: `{part}`"),
            None => anyhow!("invalid value `{text}`: {e}"),
        }
    })?;
    from_wave(t, &wv, encoding)
}

fn from_wave(t: &ValType, v: &WaveValue, enc: StringEncoding) -> Result<Value> {
    Ok(match t {
        ValType::Bool => Value::Bool(v.unwrap_bool()),
        ValType::S8 => Value::S8(v.unwrap_s8()),
        ValType::U8 => Value::U8(v.unwrap_u8()),
        ValType::S16 => Value::S16(v.unwrap_s16()),
        ValType::U16 => Value::U16(v.unwrap_u16()),
        ValType::S32 => Value::S32(v.unwrap_s32()),
        ValType::U32 => Value::U32(v.unwrap_u32()),
        ValType::Own(_) | ValType::Borrow(_) => Value::Handle(v.unwrap_u32()),
        ValType::S64 => Value::S64(v.unwrap_s64()),
        ValType::U64 => Value::U64(v.unwrap_u64()),
        ValType::F32 => Value::F32(v.unwrap_f32()),
        ValType::F64 => Value::F64(v.unwrap_f64()),
        ValType::Char => Value::Char(v.unwrap_char()),
        ValType::String => Value::String(HostString::new(&v.unwrap_string(), enc)),
        ValType::List(e, _) => Value::List(v.unwrap_list().map(|x| from_wave(e, &x, enc)).collect::<Result<_>>()?),
        ValType::Map(k, val) => from_wave(&map_entries(k, val), v, enc)?,
        ValType::Record(fields) => {
            let got: Vec<(Cow<str>, Cow<WaveValue>)> = v.unwrap_record().collect();
            let mut out = vec![];
            for f in fields.iter() {
                let (_, x) =
                    got.iter().find(|(l, _)| *l == f.label).ok_or_else(|| anyhow!("missing field `{}`", f.label))?;
                out.push((f.label.clone(), from_wave(&f.t, x, enc)?));
            }
            Value::Record(out)
        }
        ValType::Stream(_) | ValType::Future(_) | ValType::ErrorContext => bail!("{t:?} has no WAVE form"),
        ValType::Tuple(ts) => {
            let xs: Vec<Cow<WaveValue>> = v.unwrap_tuple().collect();
            if xs.len() != ts.len() {
                bail!("expected a tuple of {} values", ts.len());
            }
            Value::tuple(ts.iter().zip(&xs).map(|(t, x)| from_wave(t, x, enc)).collect::<Result<Vec<_>>>()?)
        }
        ValType::Variant(cases) => {
            let (label, payload) = v.unwrap_variant();
            let case = cases.iter().find(|c| c.label == label).ok_or_else(|| anyhow!("no case `{label}`"))?;
            let payload = match (&case.t, payload) {
                (Some(t), Some(p)) => Some(from_wave(t, &p, enc)?),
                (None, None) => None,
                _ => bail!("case `{label}` payload does not match its type"),
            };
            Value::case(&label, payload)
        }
        ValType::Enum(_) => Value::case(&v.unwrap_enum(), None),
        ValType::Option(t) => match v.unwrap_option() {
            None => Value::case("none", None),
            Some(x) => Value::case("some", Some(from_wave(t, &x, enc)?)),
        },
        ValType::Result(ok, err) => {
            let side = |t: &Option<Arc<ValType>>, x: Option<Cow<WaveValue>>| -> Result<Option<Value>> {
                match (t, x) {
                    (Some(t), Some(x)) => Ok(Some(from_wave(t, &x, enc)?)),
                    _ => Ok(None),
                }
            };
            match v.unwrap_result() {
                Ok(x) => Value::case("ok", side(ok, x)?),
                Err(x) => Value::case("error", side(err, x)?),
            }
        }
        ValType::Flags(labels) => {
            let set: Vec<String> = v.unwrap_flags().map(|l| l.into_owned()).collect();
            Value::Flags(labels.iter().filter(|l| set.contains(l)).cloned().collect())
        }
    })
}

/// Print a value of type `t` in WAVE.
pub fn print_value(t: &ValType, v: &Value) -> Result<String> {
    let wv = to_wave(t, v)?;
    wasm_wave::to_string(&wv).map_err(|e| anyhow!("cannot print value: {e}"))
}

fn to_wave(t: &ValType, v: &Value) -> Result<WaveValue> {
    let wt = wave_type(t)?;
    let bad = || anyhow!("value {v:?} does not have type {t:?}");
    let err = |e: wasm_wave::wasm::WasmValueError| anyhow!("{e}");
    Ok(match (t, v) {
        (ValType::Bool, Value::Bool(x)) => WaveValue::make_bool(*x),
        (ValType::S8, Value::S8(x)) => WaveValue::make_s8(*x),
        (ValType::U8, Value::U8(x)) => WaveValue::make_u8(*x),
        (ValType::S16, Value::S16(x)) => WaveValue::make_s16(*x),
        (ValType::U16, Value::U16(x)) => WaveValue::make_u16(*x),
        (ValType::S32, Value::S32(x)) => WaveValue::make_s32(*x),
        (ValType::U32, Value::U32(x)) => WaveValue::make_u32(*x),
        (ValType::Own(_) | ValType::Borrow(_), Value::Handle(x)) => WaveValue::make_u32(*x),
        (ValType::S64, Value::S64(x)) => WaveValue::make_s64(*x),
        (ValType::U64, Value::U64(x)) => WaveValue::make_u64(*x),
        (ValType::F32, Value::F32(x)) => WaveValue::make_f32(*x),
        (ValType::F64, Value::F64(x)) => WaveValue::make_f64(*x),
        (ValType::Char, Value::Char(x)) => WaveValue::make_char(*x),
        (ValType::String, Value::String(s)) => WaveValue::make_string(Cow::Borrowed(s.text.as_str())),
        (ValType::Map(k, t), _) => to_wave(&map_entries(k, t), v)?,
        (ValType::List(e, _), Value::List(xs)) => {
            WaveValue::make_list(&wt, xs.iter().map(|x| to_wave(e, x)).collect::<Result<Vec<_>>>()?).map_err(err)?
        }
        (ValType::Record(fields), Value::Record(xs)) => {
            let mut out = vec![];
            for f in fields.iter() {
                let (_, x) = xs.iter().find(|(l, _)| *l == f.label).ok_or_else(bad)?;
                out.push((f.label.as_str(), to_wave(&f.t, x)?));
            }
            WaveValue::make_record(&wt, out).map_err(err)?
        }
        (ValType::Tuple(ts), Value::Record(xs)) if ts.len() == xs.len() => {
            WaveValue::make_tuple(&wt, ts.iter().zip(xs).map(|(t, (_, x))| to_wave(t, x)).collect::<Result<Vec<_>>>()?)
                .map_err(err)?
        }
        (ValType::Variant(cases), Value::Variant(label, p)) => {
            let case = cases.iter().find(|c| c.label == *label).ok_or_else(bad)?;
            let payload = match (&case.t, p) {
                (Some(t), Some(p)) => Some(to_wave(t, p)?),
                (None, None) => None,
                _ => return Err(bad()),
            };
            WaveValue::make_variant(&wt, label, payload).map_err(err)?
        }
        (ValType::Enum(_), Value::Variant(label, None)) => WaveValue::make_enum(&wt, label).map_err(err)?,
        (ValType::Option(t), Value::Variant(label, p)) => {
            let inner = match (label.as_str(), p) {
                ("none", None) => None,
                ("some", Some(p)) => Some(to_wave(t, p)?),
                _ => return Err(bad()),
            };
            WaveValue::make_option(&wt, inner).map_err(err)?
        }
        (ValType::Result(ok, er), Value::Variant(label, p)) => {
            let side = |t: &Option<Arc<ValType>>| -> Result<Option<WaveValue>> {
                match (t, p) {
                    (Some(t), Some(p)) => Ok(Some(to_wave(t, p)?)),
                    (None, None) => Ok(None),
                    _ => Err(bad()),
                }
            };
            let r = match label.as_str() {
                "ok" => Ok(side(ok)?),
                "error" => Err(side(er)?),
                _ => return Err(bad()),
            };
            WaveValue::make_result(&wt, r).map_err(err)?
        }
        (ValType::Flags(_), Value::Flags(set)) => {
            WaveValue::make_flags(&wt, set.iter().map(String::as_str)).map_err(err)?
        }
        _ => return Err(bad()),
    })
}
