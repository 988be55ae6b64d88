//! Types and values in the adapter protocol's JSON encoding (adapters/PROTOCOL.md, "Types" and
//! "Values"), both ways. 64-bit integers travel as decimal strings and special floats as
//! names, so that a JavaScript adapter reads every value exactly.

use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value as Json, json};
use std::sync::Arc;

use crate::reference::types::{CaseType, FieldType, FuncType, ResourceType, ValType, map_entries};
use crate::reference::value::{HostString, Value};

/// How resource types are named in JSON (`{"interface":I,"name":N,"side":S}`): witness knows
/// each `ResourceType`'s interface and side; an adapter maps the names to its own types.
pub trait ResourceNames {
    fn name_of(&self, rt: &ResourceType) -> Result<Json>;
    fn resource_of(&mut self, j: &Json) -> Result<ResourceType>;
}

/// For worlds without resources.
pub struct NoResources;

impl ResourceNames for NoResources {
    fn name_of(&self, rt: &ResourceType) -> Result<Json> {
        bail!("resource `{}` in a world without resources", rt.name)
    }
    fn resource_of(&mut self, j: &Json) -> Result<ResourceType> {
        bail!("resource {j} in a world without resources")
    }
}

/// The JSON type of `t`.
pub fn type_to_json(t: &ValType, r: &dyn ResourceNames) -> Result<Json> {
    let name = |l: &str| json!(l);
    let ty = |t: &ValType| type_to_json(t, r);
    let opt = |t: Option<&ValType>| t.map(ty).transpose();
    Ok(match t {
        // 🔀 Feature `async`: the types only (no value of them crosses the protocol yet).
        ValType::Stream(e) => json!({ "stream": opt(e.as_deref())? }),
        ValType::Future(e) => json!({ "future": opt(e.as_deref())? }),
        ValType::ErrorContext => name("error-context"),
        ValType::Bool => name("bool"),
        ValType::S8 => name("s8"),
        ValType::U8 => name("u8"),
        ValType::S16 => name("s16"),
        ValType::U16 => name("u16"),
        ValType::S32 => name("s32"),
        ValType::U32 => name("u32"),
        ValType::S64 => name("s64"),
        ValType::U64 => name("u64"),
        ValType::F32 => name("f32"),
        ValType::F64 => name("f64"),
        ValType::Char => name("char"),
        ValType::String => name("string"),
        ValType::List(e, None) => json!({ "list": ty(e)? }),
        ValType::Map(k, v) => json!({ "map": { "key": ty(k)?, "value": ty(v)? } }),
        ValType::List(e, Some(n)) => json!({ "list": ty(e)?, "length": n }),
        ValType::Record(fields) => json!({ "record": fields
            .iter()
            .map(|f| Ok(json!({ "name": f.label, "type": ty(&f.t)? })))
            .collect::<Result<Vec<_>>>()? }),
        ValType::Tuple(ts) => json!({ "tuple": ts.iter().map(ty).collect::<Result<Vec<_>>>()? }),
        ValType::Variant(cases) => json!({ "variant": cases
            .iter()
            .map(|c| Ok(json!({ "name": c.label, "type": opt(c.t.as_ref())? })))
            .collect::<Result<Vec<_>>>()? }),
        ValType::Enum(labels) => json!({ "enum": &**labels }),
        ValType::Option(t) => json!({ "option": ty(t)? }),
        ValType::Result(ok, err) => json!({ "result": { "ok": opt(ok.as_deref())?, "error": opt(err.as_deref())? } }),
        ValType::Flags(labels) => json!({ "flags": &**labels }),
        ValType::Own(rt) => json!({ "own": r.name_of(rt)? }),
        ValType::Borrow(rt) => json!({ "borrow": r.name_of(rt)? }),
    })
}

/// `type_to_json` for a function: its params and result.
pub fn func_to_json(interface: Option<&str>, name: &str, ft: &FuncType, r: &dyn ResourceNames) -> Result<Json> {
    let params = ft
        .params
        .iter()
        .map(|(n, t)| Ok(json!({ "name": n, "type": type_to_json(t, r)? })))
        .collect::<Result<Vec<_>>>()?;
    let mut decl = json!({
        "interface": interface,
        "name": name,
        "params": params,
        "result": ft.result.as_ref().map(|t| type_to_json(t, r)).transpose()?,
    });
    // 🔀 Feature `async`: only an `async func` says so.
    if ft.async_ {
        decl["async"] = json!(true);
    }
    Ok(decl)
}

fn field<'a>(j: &'a Json, key: &str) -> Result<&'a Json> {
    j.get(key).ok_or_else(|| anyhow!("`{key}` missing in {j}"))
}

fn str_of(j: &Json) -> Result<&str> {
    j.as_str().ok_or_else(|| anyhow!("expected a string, got {j}"))
}

fn array_of(j: &Json) -> Result<&Vec<Json>> {
    j.as_array().ok_or_else(|| anyhow!("expected an array, got {j}"))
}

fn names_of(j: &Json) -> Result<Vec<String>> {
    array_of(j)?.iter().map(|n| str_of(n).map(str::to_string)).collect()
}

/// Parse a JSON type.
pub fn type_from_json(j: &Json, r: &mut dyn ResourceNames) -> Result<ValType> {
    if let Some(name) = j.as_str() {
        if name == "error-context" {
            return Ok(ValType::ErrorContext);
        }
        return ValType::primitive(name).ok_or_else(|| anyhow!("unknown type `{name}`"));
    }
    let obj = j.as_object().ok_or_else(|| anyhow!("a type is a string or an object, got {j}"))?;
    let (key, inner) =
        obj.iter().find(|(k, _)| *k != "length").ok_or_else(|| anyhow!("a type object needs a kind, got {j}"))?;
    let mut ty = |j: &Json| type_from_json(j, r);
    Ok(match key.as_str() {
        "list" => {
            let length = obj.get("length").map(|n| n.as_u64().map(|n| n as u32).ok_or_else(|| anyhow!("bad length")));
            ValType::List(Arc::new(ty(inner)?), length.transpose()?)
        }
        "record" => ValType::Record(
            array_of(inner)?
                .iter()
                .map(|f| Ok(FieldType { label: str_of(field(f, "name")?)?.into(), t: ty(field(f, "type")?)? }))
                .collect::<Result<_>>()?,
        ),
        "tuple" => ValType::Tuple(array_of(inner)?.iter().map(&mut ty).collect::<Result<_>>()?),
        "map" => ValType::Map(Arc::new(ty(field(inner, "key")?)?), Arc::new(ty(field(inner, "value")?)?)),
        "stream" => ValType::Stream((!inner.is_null()).then(|| ty(inner).map(Arc::new)).transpose()?),
        "future" => ValType::Future((!inner.is_null()).then(|| ty(inner).map(Arc::new)).transpose()?),
        "variant" => ValType::Variant(
            array_of(inner)?
                .iter()
                .map(|c| {
                    let t = field(c, "type")?;
                    Ok(CaseType {
                        label: str_of(field(c, "name")?)?.into(),
                        t: (!t.is_null()).then(|| ty(t)).transpose()?,
                    })
                })
                .collect::<Result<_>>()?,
        ),
        "enum" => ValType::Enum(names_of(inner)?.into()),
        "option" => ValType::option(ty(inner)?),
        "result" => {
            let (ok, err) = (field(inner, "ok")?, field(inner, "error")?);
            let ok = (!ok.is_null()).then(|| ty(ok)).transpose()?;
            let err = (!err.is_null()).then(|| ty(err)).transpose()?;
            ValType::result(ok, err)
        }
        "flags" => ValType::Flags(names_of(inner)?.into()),
        "own" => ValType::Own(r.resource_of(inner)?),
        "borrow" => ValType::Borrow(r.resource_of(inner)?),
        other => bail!("unknown type kind `{other}`"),
    })
}

/// Parse a JSON function declaration: (interface, name, type).
pub fn func_from_json(j: &Json, r: &mut dyn ResourceNames) -> Result<(Option<String>, String, FuncType)> {
    let interface = field(j, "interface")?.as_str().map(str::to_string);
    let name = str_of(field(j, "name")?)?.to_string();
    let params = array_of(field(j, "params")?)?
        .iter()
        .map(|p| Ok((str_of(field(p, "name")?)?.to_string(), type_from_json(field(p, "type")?, r)?)))
        .collect::<Result<_>>()?;
    let result = match j.get("result") {
        None | Some(Json::Null) => None,
        Some(t) => Some(type_from_json(t, r)?),
    };
    let async_ = match j.get("async") {
        None | Some(Json::Null) => false,
        Some(b) => b.as_bool().ok_or_else(|| anyhow!("`async` is not a boolean in {j}"))?,
    };
    Ok((interface, name, FuncType { params, result, async_ }))
}

fn float_to_json(x: f64) -> Json {
    if x.is_nan() {
        json!("nan")
    } else if x.is_infinite() {
        json!(if x > 0.0 { "inf" } else { "-inf" })
    } else if x == 0.0 && x.is_sign_negative() {
        json!("-0")
    } else {
        json!(x)
    }
}

fn float_from_json(j: &Json) -> Result<f64> {
    match j {
        Json::String(s) => match s.as_str() {
            "nan" => Ok(f64::NAN),
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            "-0" => Ok(-0.0),
            _ => bail!("not a float: {s:?}"),
        },
        _ => j.as_f64().ok_or_else(|| anyhow!("not a float: {j}")),
    }
}

fn case_to_json(label: &str, payload: Option<Json>) -> Json {
    match payload {
        Some(v) => json!({ "tag": label, "val": v }),
        None => json!({ "tag": label }),
    }
}

/// The JSON value of `v`, of type `t`.
pub fn value_to_json(t: &ValType, v: &Value) -> Result<Json> {
    let bad = || anyhow!("value {v:?} does not have type {t:?}");
    let payload = |t: Option<&ValType>, p: &Option<Box<Value>>| -> Result<Option<Json>> {
        match (t, p) {
            (Some(t), Some(p)) => Ok(Some(value_to_json(t, p)?)),
            (None, None) => Ok(None),
            _ => Err(bad()),
        }
    };
    Ok(match (t, v) {
        (ValType::Bool, Value::Bool(x)) => json!(x),
        (ValType::S8, Value::S8(x)) => json!(x),
        (ValType::U8, Value::U8(x)) => json!(x),
        (ValType::S16, Value::S16(x)) => json!(x),
        (ValType::U16, Value::U16(x)) => json!(x),
        (ValType::S32, Value::S32(x)) => json!(x),
        (ValType::U32, Value::U32(x)) => json!(x),
        (ValType::S64, Value::S64(x)) => json!(x.to_string()),
        (ValType::U64, Value::U64(x)) => json!(x.to_string()),
        (ValType::F32, Value::F32(x)) => float_to_json(f64::from(*x)),
        (ValType::F64, Value::F64(x)) => float_to_json(*x),
        (ValType::Char, Value::Char(c)) => json!(c.to_string()),
        (ValType::String, Value::String(s)) => json!(s.text),
        (ValType::List(e, _), Value::List(xs)) => {
            Json::Array(xs.iter().map(|x| value_to_json(e, x)).collect::<Result<_>>()?)
        }
        (ValType::Map(k, t), _) => value_to_json(&map_entries(k, t), v)?,
        (ValType::Record(fields), Value::Record(xs)) if fields.len() == xs.len() => {
            let mut obj = Map::new();
            for (f, (_, x)) in fields.iter().zip(xs) {
                obj.insert(f.label.clone(), value_to_json(&f.t, x)?);
            }
            Json::Object(obj)
        }
        (ValType::Tuple(ts), Value::Record(xs)) if ts.len() == xs.len() => {
            Json::Array(ts.iter().zip(xs).map(|(t, (_, x))| value_to_json(t, x)).collect::<Result<_>>()?)
        }
        (ValType::Variant(cases), Value::Variant(l, p)) => {
            let case = cases.iter().find(|c| c.label == *l).ok_or_else(bad)?;
            case_to_json(l, payload(case.t.as_ref(), p)?)
        }
        (ValType::Enum(labels), Value::Variant(l, None)) if labels.contains(l) => json!(l),
        (ValType::Option(t), Value::Variant(l, p)) => match l.as_str() {
            "none" => case_to_json(l, payload(None, p)?),
            "some" => case_to_json(l, payload(Some(t), p)?),
            _ => return Err(bad()),
        },
        (ValType::Result(ok, err), Value::Variant(l, p)) => match l.as_str() {
            "ok" => case_to_json(l, payload(ok.as_deref(), p)?),
            "error" => case_to_json(l, payload(err.as_deref(), p)?),
            _ => return Err(bad()),
        },
        (ValType::Flags(_), Value::Flags(set)) => json!(set),
        (ValType::Own(_) | ValType::Borrow(_), Value::Handle(x)) => json!(x),
        _ => return Err(bad()),
    })
}

fn int_from_json<T: TryFrom<i64> + std::str::FromStr>(j: &Json) -> Result<T> {
    let bad = || anyhow!("not an integer of the type: {j}");
    match j {
        Json::String(s) => s.parse().map_err(|_| bad()),
        _ => T::try_from(j.as_i64().ok_or_else(bad)?).map_err(|_| bad()),
    }
}

/// The value of type `t` that JSON value `j` encodes. Strings are host strings (UTF-8).
pub fn value_from_json(t: &ValType, j: &Json) -> Result<Value> {
    let bad = || anyhow!("JSON value {j} does not have type {t:?}");
    let case = |cases: &[(&str, Option<&ValType>)]| -> Result<Value> {
        let tag = str_of(field(j, "tag")?)?;
        let (_, pt) = cases.iter().find(|(l, _)| *l == tag).ok_or_else(bad)?;
        let payload = match (pt, j.get("val")) {
            (Some(pt), Some(v)) => Some(value_from_json(pt, v)?),
            (None, None | Some(Json::Null)) => None,
            _ => return Err(bad()),
        };
        Ok(Value::case(tag, payload))
    };
    Ok(match t {
        ValType::Stream(_) | ValType::Future(_) | ValType::ErrorContext => return Err(bad()),
        ValType::Bool => Value::Bool(j.as_bool().ok_or_else(bad)?),
        ValType::S8 => Value::S8(int_from_json(j)?),
        ValType::U8 => Value::U8(int_from_json(j)?),
        ValType::S16 => Value::S16(int_from_json(j)?),
        ValType::U16 => Value::U16(int_from_json(j)?),
        ValType::S32 => Value::S32(int_from_json(j)?),
        ValType::U32 => Value::U32(int_from_json(j)?),
        ValType::S64 => Value::S64(int_from_json(j)?),
        // u64 above i64::MAX only comes as a string.
        ValType::U64 => Value::U64(match j {
            Json::String(s) => s.parse().map_err(|_| bad())?,
            _ => j.as_u64().ok_or_else(bad)?,
        }),
        ValType::F32 => Value::F32(float_from_json(j)? as f32),
        ValType::F64 => Value::F64(float_from_json(j)?),
        ValType::Char => {
            let mut chars = str_of(j)?.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Value::Char(c),
                _ => return Err(bad()),
            }
        }
        ValType::String => Value::String(HostString::utf8(str_of(j)?)),
        ValType::List(e, _) => Value::List(array_of(j)?.iter().map(|x| value_from_json(e, x)).collect::<Result<_>>()?),
        ValType::Map(k, v) => value_from_json(&map_entries(k, v), j)?,
        ValType::Record(fields) => Value::Record(
            fields
                .iter()
                .map(|f| Ok((f.label.clone(), value_from_json(&f.t, field(j, &f.label)?)?)))
                .collect::<Result<_>>()?,
        ),
        ValType::Tuple(ts) => {
            let xs = array_of(j)?;
            if xs.len() != ts.len() {
                return Err(bad());
            }
            Value::tuple(ts.iter().zip(xs).map(|(t, x)| value_from_json(t, x)).collect::<Result<Vec<_>>>()?)
        }
        ValType::Variant(cases) => case(&cases.iter().map(|c| (c.label.as_str(), c.t.as_ref())).collect::<Vec<_>>())?,
        ValType::Enum(labels) => {
            let l = str_of(j)?;
            if !labels.iter().any(|x| x == l) {
                return Err(bad());
            }
            Value::case(l, None)
        }
        ValType::Option(t) => case(&[("none", None), ("some", Some(t))])?,
        ValType::Result(ok, err) => case(&[("ok", ok.as_deref()), ("error", err.as_deref())])?,
        ValType::Flags(labels) => {
            let set = names_of(j)?;
            if let Some(l) = set.iter().find(|l| !labels.contains(l)) {
                bail!("`{l}` is not a flag of {t:?}");
            }
            // Declaration order, whatever order the adapter sent.
            Value::Flags(labels.iter().filter(|l| set.contains(l)).cloned().collect())
        }
        ValType::Own(_) | ValType::Borrow(_) => Value::Handle(int_from_json(j)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::StringEncoding;
    use crate::world::arbitrary::{TypeConfig, arbitrary_type, arbitrary_value, seed_bytes};

    /// Every type survives type_to_json → type_from_json, and a value of it survives
    /// value_to_json → value_from_json (values from the arbitrary-world generator).
    #[test]
    fn types_and_values_round_trip() {
        let mut seen = 0;
        for seed in 0..300u64 {
            let data = seed_bytes(seed, 2048);
            let mut u = arbitrary::Unstructured::new(&data);
            let Ok(t) = arbitrary_type(&mut u, &TypeConfig::default()) else { continue };
            let j = type_to_json(&t, &NoResources).unwrap();
            assert_eq!(type_from_json(&j, &mut NoResources).unwrap(), t, "{j}");
            let Ok(v) = arbitrary_value(&mut u, &t, StringEncoding::Utf8, &[]) else { continue };
            // Through the text, as the protocol carries it.
            let text = serde_json::to_string(&value_to_json(&t, &v).unwrap()).unwrap();
            let back = value_from_json(&t, &serde_json::from_str(&text).unwrap()).unwrap();
            assert!(back.matches(&v), "{t:?}: {v:?} came back as {back:?}");
            seen += 1;
        }
        assert!(seen > 100, "only {seen} types tried");
    }

    /// The encodings PROTOCOL.md fixes, value by value.
    #[test]
    fn documented_encodings() {
        let cases: Vec<(ValType, Value, Json)> = vec![
            (ValType::U64, Value::U64(u64::MAX), json!("18446744073709551615")),
            (ValType::S64, Value::S64(i64::MIN), json!("-9223372036854775808")),
            (ValType::F32, Value::F32(-0.0), json!("-0")),
            (ValType::F64, Value::F64(f64::NEG_INFINITY), json!("-inf")),
            (ValType::F32, Value::F32(0.1), json!(0.10000000149011612)),
            (ValType::Char, Value::Char('😀'), json!("😀")),
            (ValType::option(ValType::U8), Value::case("some", Some(Value::U8(7))), json!({"tag":"some","val":7})),
            (
                ValType::result(None, Some(ValType::String)),
                Value::case("error", Some(Value::string("e"))),
                json!({"tag":"error","val":"e"}),
            ),
            (ValType::enum_(["a", "b"]), Value::case("b", None), json!("b")),
            (ValType::flags(["a", "b", "c"]), Value::Flags(vec!["a".into(), "c".into()]), json!(["a", "c"])),
            (
                ValType::Tuple(Arc::new([ValType::U8, ValType::Bool])),
                Value::tuple([Value::U8(1), Value::Bool(true)]),
                json!([1, true]),
            ),
            (
                ValType::record([("a-b", ValType::U16)]),
                Value::Record(vec![("a-b".into(), Value::U16(3))]),
                json!({"a-b": 3}),
            ),
        ];
        for (t, v, want) in cases {
            assert_eq!(value_to_json(&t, &v).unwrap(), want, "{t:?}");
            assert!(value_from_json(&t, &want).unwrap().matches(&v), "{t:?}");
        }
        // Found by `witness diff` through an adapter: without serde_json's float_roundtrip,
        // this f64 came back one ulp off from its shortest text form.
        let x = -1.295627827275675e308_f64;
        let text = serde_json::to_string(&value_to_json(&ValType::F64, &Value::F64(x)).unwrap()).unwrap();
        let back = value_from_json(&ValType::F64, &serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, Value::F64(x), "{text}");
        assert!(value_from_json(&ValType::U8, &json!(256)).is_err());
        assert!(value_from_json(&ValType::flags(["a"]), &json!(["z"])).is_err());
        assert!(value_from_json(&ValType::F64, &json!("nan")).is_ok_and(|v| matches!(v, Value::F64(x) if x.is_nan())));
    }
}
