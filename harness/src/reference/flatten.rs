//! Flattening (CanonicalABI.md "Flattening"): component types to core value types, and
//! `flatten_functype` with the spill rules of the synchronous ABI.

use super::layout::discriminant_type;
use super::types::{CaseType, CoreType, FieldType, FuncType, PtrType, ValType, despecialize};
use crate::reference::reached::reached;

pub const MAX_FLAT_PARAMS: usize = 16;
pub const MAX_FLAT_ASYNC_PARAMS: usize = 4;
pub const MAX_FLAT_RESULTS: usize = 1;

/// `canon lift` (a core function called by the component) or `canon lower` (a component
/// function called by core code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    Lift,
    Lower,
}

/// `CoreFuncType(params, results)`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CoreFuncType {
    pub params: Vec<CoreType>,
    pub results: Vec<CoreType>,
}

/// The canonopts `flatten_functype` reads: the memory's pointer type, 🔀 `async` and
/// 🔀 `callback`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlattenOpts {
    pub ptr_type: PtrType,
    pub async_: bool,
    pub callback: bool,
}

impl FlattenOpts {
    /// A synchronous `canon lift` or `canon lower`.
    pub fn sync(ptr_type: PtrType) -> FlattenOpts {
        FlattenOpts { ptr_type, async_: false, callback: false }
    }

    /// 🔀 An `async` `canon lift` or `canon lower` (`callback` only for a lift).
    pub fn async_(ptr_type: PtrType, callback: bool) -> FlattenOpts {
        FlattenOpts { ptr_type, async_: true, callback }
    }
}

/// `flatten_functype(opts, ft, context)`. Synchronous: params over `MAX_FLAT_PARAMS` become
/// one pointer; results over `MAX_FLAT_RESULTS` become a returned pointer ('lift') or a
/// caller-supplied out-pointer param ('lower'). 🔀 Async lift: the same params, and results
/// go through `task.return`, so the core function returns nothing, or the callback code (i32)
/// with `callback`. 🔀 Async lower: params over `MAX_FLAT_ASYNC_PARAMS` become one pointer, any
/// result adds an out-pointer param, and the core function returns the subtask state (i32).
pub fn flatten_functype(opts: FlattenOpts, ft: &FuncType, context: Context) -> CoreFuncType {
    reached!(flatten_functype);
    let ptr = opts.ptr_type.core_type();
    let mut flat_params = flatten_types(&ft.param_types(), opts.ptr_type);
    let mut flat_results = flatten_types(&ft.result_type(), opts.ptr_type);
    if !opts.async_ {
        if flat_params.len() > MAX_FLAT_PARAMS {
            flat_params = vec![ptr];
        }
        if flat_results.len() > MAX_FLAT_RESULTS {
            match context {
                Context::Lift => flat_results = vec![ptr],
                Context::Lower => {
                    flat_params.push(ptr);
                    flat_results = vec![];
                }
            }
        }
        return CoreFuncType { params: flat_params, results: flat_results };
    }
    match context {
        Context::Lift => {
            if flat_params.len() > MAX_FLAT_PARAMS {
                flat_params = vec![ptr];
            }
            flat_results = if opts.callback { vec![CoreType::I32] } else { vec![] };
        }
        Context::Lower => {
            if flat_params.len() > MAX_FLAT_ASYNC_PARAMS {
                flat_params = vec![ptr];
            }
            if !flat_results.is_empty() {
                flat_params.push(ptr);
            }
            flat_results = vec![CoreType::I32];
        }
    }
    CoreFuncType { params: flat_params, results: flat_results }
}

/// `flatten_types(ts, opts)`.
pub fn flatten_types(ts: &[ValType], ptr_type: PtrType) -> Vec<CoreType> {
    ts.iter().flat_map(|t| flatten_type(t, ptr_type)).collect()
}

/// `flatten_type(t, opts)`.
pub fn flatten_type(t: &ValType, ptr_type: PtrType) -> Vec<CoreType> {
    reached!(flatten_type);
    match despecialize(t).as_ref() {
        ValType::Bool
        | ValType::U8
        | ValType::U16
        | ValType::U32
        | ValType::S8
        | ValType::S16
        | ValType::S32
        | ValType::Char => vec![CoreType::I32],
        ValType::S64 | ValType::U64 => vec![CoreType::I64],
        ValType::F32 => vec![CoreType::F32],
        ValType::F64 => vec![CoreType::F64],
        ValType::String => vec![ptr_type.core_type(), ptr_type.core_type()],
        ValType::List(t, l) => flatten_list(t, *l, ptr_type),
        ValType::Record(fields) => flatten_record(fields, ptr_type),
        ValType::Variant(cases) => flatten_variant(cases, ptr_type),
        ValType::Flags(_) => vec![CoreType::I32],
        ValType::Own(_) | ValType::Borrow(_) => vec![CoreType::I32],
        ValType::Stream(_) | ValType::Future(_) | ValType::ErrorContext => vec![CoreType::I32],
        ValType::Tuple(_) | ValType::Enum(_) | ValType::Option(_) | ValType::Result(..) | ValType::Map(..) => {
            unreachable!("despecialized")
        }
    }
}

/// `flatten_list`: a fixed-length list flattens like a tuple, a list to (ptr, len).
pub fn flatten_list(elem_type: &ValType, maybe_length: Option<u32>, ptr_type: PtrType) -> Vec<CoreType> {
    match maybe_length {
        Some(l) => {
            let one = flatten_type(elem_type, ptr_type);
            (0..l).flat_map(|_| one.iter().copied()).collect()
        }
        None => vec![ptr_type.core_type(), ptr_type.core_type()],
    }
}

/// `flatten_record`: the fields' flattenings in sequence.
pub fn flatten_record(fields: &[FieldType], ptr_type: PtrType) -> Vec<CoreType> {
    fields.iter().flat_map(|f| flatten_type(&f.t, ptr_type)).collect()
}

/// `flatten_variant`: the discriminant (i32), then the position-wise `join` of every case's
/// payload flattening.
pub fn flatten_variant(cases: &[CaseType], ptr_type: PtrType) -> Vec<CoreType> {
    reached!(flatten_variant);
    let mut flat: Vec<CoreType> = Vec::new();
    for c in cases {
        if let Some(t) = &c.t {
            for (i, ft) in flatten_type(t, ptr_type).into_iter().enumerate() {
                if i < flat.len() {
                    flat[i] = join(flat[i], ft);
                } else {
                    flat.push(ft);
                }
            }
        }
    }
    let mut out = flatten_type(&discriminant_type(cases), ptr_type);
    out.extend(flat);
    out
}

/// `join(a, b)`: equal types stay; i32 and f32 meet at i32; every other pair at i64.
pub fn join(a: CoreType, b: CoreType) -> CoreType {
    reached!(join);
    if a == b {
        return a;
    }
    match (a, b) {
        (CoreType::I32, CoreType::F32) | (CoreType::F32, CoreType::I32) => CoreType::I32,
        _ => CoreType::I64,
    }
}
