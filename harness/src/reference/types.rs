//! The value types of definitions.py (`BoolType` ... `BorrowType`), `despecialize`, and the
//! small enums the ABI is parameterised by (pointer type, core types, string encodings).

use crate::reference::reached::reached;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// The address type of a memory (`ptr_type` in definitions.py): i32 now, i64 with memory64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PtrType {
    #[default]
    I32,
    I64,
}

impl PtrType {
    /// `ptr_size(ptr_type)`.
    pub fn ptr_size(self) -> u64 {
        match self {
            PtrType::I32 => 4,
            PtrType::I64 => 8,
        }
    }

    /// The core type of a pointer-sized flat value.
    pub fn core_type(self) -> CoreType {
        match self {
            PtrType::I32 => CoreType::I32,
            PtrType::I64 => CoreType::I64,
        }
    }
}

/// A core wasm value type, as flattening produces them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CoreType {
    I32,
    I64,
    F32,
    F64,
}

impl CoreType {
    pub fn name(self) -> &'static str {
        match self {
            CoreType::I32 => "i32",
            CoreType::I64 => "i64",
            CoreType::F32 => "f32",
            CoreType::F64 => "f64",
        }
    }
}

impl fmt::Display for CoreType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `string-encoding` canonopt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum StringEncoding {
    #[default]
    Utf8,
    Utf16,
    Latin1Utf16,
}

impl StringEncoding {
    pub const ALL: [StringEncoding; 3] = [StringEncoding::Utf8, StringEncoding::Utf16, StringEncoding::Latin1Utf16];

    /// The spelling of the canonopt (`utf8`, `utf16`, `latin1+utf16`).
    pub fn name(self) -> &'static str {
        match self {
            StringEncoding::Utf8 => "utf8",
            StringEncoding::Utf16 => "utf16",
            StringEncoding::Latin1Utf16 => "latin1+utf16",
        }
    }

    pub fn parse(s: &str) -> Option<StringEncoding> {
        StringEncoding::ALL.into_iter().find(|e| e.name() == s)
    }
}

impl fmt::Display for StringEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Identity of a component instance (the spec compares instances by object identity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub u32);

/// `ResourceType`: identity is by object in the spec, by `id` here. `impl_instance` is the
/// instance that defines the resource (`rt.impl`); the destructor is reported, not called, by
/// the reference (see `handles::canon_resource_drop`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceType {
    pub id: u32,
    pub name: String,
    pub impl_instance: InstanceId,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldType {
    pub label: String,
    pub t: ValType,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CaseType {
    pub label: String,
    pub t: Option<ValType>,
}

/// The value types of the synchronous Canonical ABI. What a type holds is shared (`Arc`), so
/// that cloning one, as definitions.py's `despecialize` and the runtimes do all the time, costs
/// no allocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ValType {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    /// `ListType(t, l)`: `l` is the length of a fixed-length list (🔧), `None` for `list<T>`.
    List(Arc<ValType>, Option<u32>),
    Record(Arc<[FieldType]>),
    Tuple(Arc<[ValType]>),
    Variant(Arc<[CaseType]>),
    Enum(Arc<[String]>),
    Option(Arc<ValType>),
    Result(Option<Arc<ValType>>, Option<Arc<ValType>>),
    Flags(Arc<[String]>),
    /// `MapType(k, v)` (🗺️, component-model #554): `k` is a `keytype` (`bool`, the integers,
    /// `char`, `string`); despecialized to a list of (key, value) tuples.
    Map(Arc<ValType>, Arc<ValType>),
    Own(ResourceType),
    Borrow(ResourceType),
    /// 🔀 `StreamType(t)`: the readable end of a stream of `t` (`None`: `stream` with no
    /// payload), passed as an i32 handle.
    Stream(Option<Arc<ValType>>),
    /// 🔀 `FutureType(t)`: the readable end of a future of `t`, passed as an i32 handle.
    Future(Option<Arc<ValType>>),
    /// 🔀 `ErrorContextType`, passed as an i32 handle.
    ErrorContext,
}

impl ValType {
    /// The primitive type spelled `name` in WIT (`bool`, `s8`, ..., `char`, `string`).
    pub fn primitive(name: &str) -> Option<ValType> {
        Some(match name {
            "bool" => ValType::Bool,
            "s8" => ValType::S8,
            "u8" => ValType::U8,
            "s16" => ValType::S16,
            "u16" => ValType::U16,
            "s32" => ValType::S32,
            "u32" => ValType::U32,
            "s64" => ValType::S64,
            "u64" => ValType::U64,
            "f32" => ValType::F32,
            "f64" => ValType::F64,
            "char" => ValType::Char,
            "string" => ValType::String,
            _ => return None,
        })
    }

    pub fn list(t: ValType) -> ValType {
        ValType::List(Arc::new(t), None)
    }

    pub fn option(t: ValType) -> ValType {
        ValType::Option(Arc::new(t))
    }

    pub fn result(ok: Option<ValType>, err: Option<ValType>) -> ValType {
        ValType::Result(ok.map(Arc::new), err.map(Arc::new))
    }

    pub fn record<'a>(fields: impl IntoIterator<Item = (&'a str, ValType)>) -> ValType {
        ValType::Record(fields.into_iter().map(|(l, t)| FieldType { label: l.to_string(), t }).collect())
    }

    pub fn variant<'a>(cases: impl IntoIterator<Item = (&'a str, Option<ValType>)>) -> ValType {
        ValType::Variant(cases.into_iter().map(|(l, t)| CaseType { label: l.to_string(), t }).collect())
    }

    pub fn flags<'a>(labels: impl IntoIterator<Item = &'a str>) -> ValType {
        ValType::Flags(labels.into_iter().map(str::to_string).collect())
    }

    pub fn enum_<'a>(labels: impl IntoIterator<Item = &'a str>) -> ValType {
        ValType::Enum(labels.into_iter().map(str::to_string).collect())
    }
}

/// `despecialize(t)`: tuples become records with fields "0", "1", ...; enums, options and
/// results become variants. `string` and `flags` keep their own representations.
pub fn despecialize(t: &ValType) -> Cow<'_, ValType> {
    reached!(despecialize);
    if !matches!(t, ValType::Tuple(_) | ValType::Enum(_) | ValType::Option(_) | ValType::Result(..) | ValType::Map(..))
    {
        return Cow::Borrowed(t);
    }
    Cow::Owned(DESPECIALIZED.with_borrow_mut(|memo| {
        if let Some(d) = memo.get(t) {
            return d.clone();
        }
        if memo.len() >= DESPECIALIZED_MAX {
            memo.clear();
        }
        let d = despecialize_anew(t);
        memo.insert(t.clone(), d.clone());
        d
    }))
}

/// What `despecialize` builds for a specialized type.
fn despecialize_anew(t: &ValType) -> ValType {
    match t {
        ValType::Tuple(ts) => ValType::Record(
            ts.iter().enumerate().map(|(i, t)| FieldType { label: i.to_string(), t: t.clone() }).collect(),
        ),
        ValType::Enum(labels) => {
            ValType::Variant(labels.iter().map(|l| CaseType { label: l.clone(), t: None }).collect())
        }
        ValType::Option(t) => ValType::Variant(Arc::new([
            CaseType { label: "none".into(), t: None },
            CaseType { label: "some".into(), t: Some((**t).clone()) },
        ])),
        ValType::Result(ok, err) => ValType::Variant(Arc::new([
            CaseType { label: "ok".into(), t: ok.as_deref().cloned() },
            CaseType { label: "error".into(), t: err.as_deref().cloned() },
        ])),
        ValType::Map(k, v) => ValType::List(Arc::new(despecialize_anew(&map_tuple(k, v))), None),
        other => other.clone(),
    }
}

fn map_tuple(k: &ValType, v: &ValType) -> ValType {
    ValType::Tuple(Arc::new([k.clone(), v.clone()]))
}

/// Entries before the memo starts again (a world has far fewer specialized types; inputs that
/// make new types each time, as the fuzz targets do, must not grow it without end).
const DESPECIALIZED_MAX: usize = 4096;

thread_local! {
    /// `despecialize`'s results, by type: the reference despecializes a type at every step of
    /// lifting and lowering, and building the variant or record anew each time was a fifth of
    /// a fuzz input's allocations. Keyed by value, not by the address of the type's parts, so
    /// that the temporary types the ABI builds (a spilled tuple of params) hit it too, and a
    /// run adds entries only for types it has not seen (libFuzzer's leak check runs after
    /// every input that allocates more than it frees).
    static DESPECIALIZED: std::cell::RefCell<std::collections::HashMap<ValType, ValType>> = Default::default();
}

/// `contains(t, p)`: whether `p` holds for `t` or a type in it (through lists, stream and
/// future payloads, fields and cases, after despecialization). The spec's match has no case for
/// flags and error-context (it asserts); here they are leaves like the other primitive types.
pub fn contains(t: &ValType, p: &dyn Fn(&ValType) -> bool) -> bool {
    let t = despecialize(t);
    p(&t)
        || match t.as_ref() {
            ValType::List(u, _) | ValType::Stream(Some(u)) | ValType::Future(Some(u)) => contains(u, p),
            ValType::Record(fields) => fields.iter().any(|f| contains(&f.t, p)),
            ValType::Variant(cases) => cases.iter().filter_map(|c| c.t.as_ref()).any(|u| contains(u, p)),
            _ => false,
        }
}

/// `contains_borrow(t)`.
pub fn contains_borrow(t: &ValType) -> bool {
    contains(t, &|u| matches!(u, ValType::Borrow(_)))
}

/// 🔀 `contains_async_value(t)`: whether `t` holds a stream or a future.
pub fn contains_async_value(t: &ValType) -> bool {
    contains(t, &|u| matches!(u, ValType::Stream(_) | ValType::Future(_)))
}

/// 🗺️ `keytype ::= bool | s8 | u8 | s16 | u16 | s32 | u32 | s64 | u64 | char | string`
/// (Explainer.md): the types a map's keys may have.
pub const KEY_TYPES: &[ValType] = &[
    ValType::Bool,
    ValType::S8,
    ValType::U8,
    ValType::S16,
    ValType::U16,
    ValType::S32,
    ValType::U32,
    ValType::S64,
    ValType::U64,
    ValType::Char,
    ValType::String,
];

/// The list of (key, value) tuples a `map<k, v>` is: how values, WAVE text and the adapter
/// protocol see a map (despecialize goes on to a list of records).
pub fn map_entries(k: &ValType, v: &ValType) -> ValType {
    ValType::List(Arc::new(map_tuple(k, v)), None)
}

/// A component-level function type: named params, at most one result, and 🔀 whether it is
/// an `async` function type (`FuncType.async_`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncType {
    pub params: Vec<(String, ValType)>,
    pub result: Option<ValType>,
    pub async_: bool,
}

impl FuncType {
    pub fn param_types(&self) -> Vec<ValType> {
        self.params.iter().map(|(_, t)| t.clone()).collect()
    }

    /// `ft.result_type()`: zero or one types.
    pub fn result_type(&self) -> Vec<ValType> {
        self.result.iter().cloned().collect()
    }
}
