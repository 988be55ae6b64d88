//! One unit test (or a small group) per Canonical ABI rule of definitions.py, run against the
//! reference mirror `witness::reference`.
//!
//! Where expectations come from (never from running our own code):
//! * `run_tests.py` of WebAssembly/component-model (design/mvp/canonical-abi/run_tests.py):
//!   `test_pairs`, `test_heap`, `test_flatten`, `test_nan32/64`, `test_string`, and the flat
//!   variant vectors at the top of the file. Marked `run_tests.py`.
//! * test/*.wast of the same repository (values/numerics.wast, values/strings.wast,
//!   values/alignment.wast, values/realloc.wast, resources/handle-table.wast). Marked with the
//!   file name.
//! * The definitions.py text itself (current version: 2^28-1 length limits, `utf16_tag(ptr_type)`,
//!   one shared handle table), worked by hand in a comment next to each expectation.
//!   Realloc call sequences are computed by hand from definitions.py's `store_*` functions and
//!   the documented `BumpHeap` rule (memory.rs): `realloc(old, old_size, align, new)` returns
//!   `old` if `old != 0 && new <= old_size`, else `p = align_to(next, align); next = p + new`.
//!
//! Every test names the definitions.py function it checks.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::Arc;

use witness::reference::concurrency::subtask::{Subtask, SubtaskState};
use witness::reference::context::{BorrowScope, ComponentInstance, LiftLowerContext};
use witness::reference::flatten::{
    Context, CoreFuncType, FlattenOpts, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS, flatten_functype, flatten_type, join,
};
use witness::reference::handles::{
    DropEffect, canon_resource_drop, canon_resource_new, canon_resource_rep, lift_borrow, lift_own, lower_borrow,
    lower_own,
};
use witness::reference::layout::{alignment, discriminant_type, elem_size, field_offsets, payload_offset};
use witness::reference::lift_flat::{CoreValueIter, lift_flat, lift_flat_values};
use witness::reference::load::{CANONICAL_FLOAT32_NAN, CANONICAL_FLOAT64_NAN, MAX_LIST_BYTE_LENGTH, load};
use witness::reference::lower_flat::{SpillTo, lower_flat, lower_flat_values};
use witness::reference::memory::{BumpHeap, Memory, ReallocCall};
use witness::reference::store::store_list_into_range;
use witness::reference::strings::{
    MAX_STRING_BYTE_LENGTH, UTF16_TAG_I32, load_string_from_range, store_string_into_range, utf16_tag,
};
use witness::reference::trap::{Result, Trap, TrapKind};
use witness::reference::types::{
    CaseType, CoreType, FieldType, FuncType, InstanceId, PtrType, ResourceType, StringEncoding, ValType, despecialize,
};
use witness::reference::value::{Flat, HostString, Value};

use CoreType::{F32 as CF32, F64 as CF64, I32 as CI32, I64 as CI64};
use StringEncoding::{Latin1Utf16, Utf8, Utf16};

const I32P: PtrType = PtrType::I32;
const TAG: u64 = 1 << 31;

// ------------------------------------------------------------------------------------------
// Helpers

/// A linear memory whose `realloc` returns scripted pointers (and records its arguments), for
/// the traps on bad realloc results. It never copies: only used where the ABI traps or where
/// the copy does not matter.
struct Scripted {
    bytes: Vec<u8>,
    replies: VecDeque<u64>,
    calls: Vec<(u64, u64, u64, u64)>,
}

impl Scripted {
    fn new(size: usize, replies: &[u64]) -> Scripted {
        Scripted { bytes: vec![0; size], replies: replies.iter().copied().collect(), calls: vec![] }
    }
}

impl Memory for Scripted {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read(&self, ptr: u64, out: &mut [u8]) -> Result<()> {
        let p = ptr as usize;
        if p + out.len() > self.bytes.len() {
            return Err(Trap::new(TrapKind::Assertion, "Scripted: read out of range"));
        }
        out.copy_from_slice(&self.bytes[p..p + out.len()]);
        Ok(())
    }
    fn write(&mut self, ptr: u64, bytes: &[u8]) -> Result<()> {
        let p = ptr as usize;
        if p + bytes.len() > self.bytes.len() {
            return Err(Trap::new(TrapKind::Assertion, "Scripted: write out of range"));
        }
        self.bytes[p..p + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
    fn realloc(&mut self, old_ptr: u64, old_size: u64, align: u64, new_size: u64) -> Result<u64> {
        self.calls.push((old_ptr, old_size, align, new_size));
        Ok(self.replies.pop_front().expect("Scripted: realloc called more often than scripted"))
    }
}

/// A `BumpHeap` seen as a 64-bit memory (🐘), to check the `ptr_type`-dependent rules.
struct Mem64(BumpHeap);

impl Memory for Mem64 {
    fn ptr_type(&self) -> PtrType {
        PtrType::I64
    }
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read(&self, ptr: u64, out: &mut [u8]) -> Result<()> {
        self.0.read(ptr, out)
    }
    fn write(&mut self, ptr: u64, bytes: &[u8]) -> Result<()> {
        self.0.write(ptr, bytes)
    }
    fn realloc(&mut self, old_ptr: u64, old_size: u64, align: u64, new_size: u64) -> Result<u64> {
        self.0.realloc(old_ptr, old_size, align, new_size)
    }
}

fn with_cx<R>(mem: &mut dyn Memory, enc: StringEncoding, f: impl FnOnce(&mut LiftLowerContext<'_>) -> R) -> R {
    let mut inst = ComponentInstance::new(InstanceId(0));
    let mut cx = LiftLowerContext::new(enc, mem, &mut inst, BorrowScope::None);
    f(&mut cx)
}

/// A memory holding exactly `bytes` (as run_tests.py's `Heap(byte_array)` does).
fn heap_with(bytes: &[u8]) -> BumpHeap {
    let mut h = BumpHeap::new(bytes.len() as u64, 0);
    h.preload(0, bytes).unwrap();
    h
}

/// `lift_flat` over `flat`; on success every flat value must have been consumed
/// (run_tests.py: `assert(vi.i == len(vi.values))`).
fn lift_in(mem: &mut dyn Memory, enc: StringEncoding, t: &ValType, flat: Vec<Flat>) -> Result<Value> {
    with_cx(mem, enc, |cx| {
        let mut vi = CoreValueIter::new(flat);
        let r = lift_flat(cx, &mut vi, t);
        if r.is_ok() {
            assert!(vi.done(), "lift_flat left flat values unconsumed: {vi:?}");
        }
        r
    })
}

fn lift(t: &ValType, flat: Vec<Flat>) -> Result<Value> {
    lift_in(&mut BumpHeap::new(0, 0), Utf8, t, flat)
}

fn lift_heap(t: &ValType, flat: Vec<Flat>, bytes: &[u8]) -> Result<Value> {
    lift_in(&mut heap_with(bytes), Utf8, t, flat)
}

fn lower(t: &ValType, v: &Value) -> Result<Vec<Flat>> {
    with_cx(&mut BumpHeap::new(65536, 16), Utf8, |cx| lower_flat(cx, v, t))
}

fn kind<T: Debug>(r: Result<T>) -> TrapKind {
    match r {
        Err(t) => t.kind,
        Ok(v) => panic!("expected a trap, got {v:?}"),
    }
}

fn i32s(vs: &[u32]) -> Vec<Flat> {
    vs.iter().map(|&v| Flat::I32(v)).collect()
}

fn call(old_ptr: u64, old_size: u64, align: u64, new_size: u64, returned: u64) -> ReallocCall {
    ReallocCall { old_ptr, old_size, align, new_size, returned: Some(returned) }
}

fn size_align(t: &ValType) -> (u64, u64) {
    (elem_size(t, I32P), alignment(t, I32P))
}

fn tuple(ts: impl IntoIterator<Item = ValType>) -> ValType {
    ValType::Tuple(ts.into_iter().collect())
}

/// run_tests.py's `Union([...])` is a variant with cases "0", "1", ...
fn union(ts: impl IntoIterator<Item = ValType>) -> ValType {
    ValType::Variant(ts.into_iter().enumerate().map(|(i, t)| CaseType { label: i.to_string(), t: Some(t) }).collect())
}

fn labels(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

fn flags_n(n: usize) -> ValType {
    ValType::Flags(labels(n).into())
}

fn enum_n(n: usize) -> ValType {
    ValType::Enum((0..n).map(|i| format!("c{i}")).collect())
}

fn cases_of(t: &ValType) -> Vec<CaseType> {
    match despecialize(t).into_owned() {
        ValType::Variant(cases) => cases.to_vec(),
        other => panic!("not a variant: {other:?}"),
    }
}

fn fields_of(t: &ValType) -> Vec<FieldType> {
    match despecialize(t).into_owned() {
        ValType::Record(fields) => fields.to_vec(),
        other => panic!("not a record: {other:?}"),
    }
}

fn some(v: Value) -> Value {
    Value::case("some", Some(v))
}

fn flags(set: &[&str]) -> Value {
    Value::Flags(set.iter().map(|s| s.to_string()).collect())
}

fn func(params: Vec<ValType>, result: Option<ValType>) -> FuncType {
    FuncType {
        params: params.into_iter().enumerate().map(|(i, t)| (format!("p{i}"), t)).collect(),
        result,
        async_: false,
    }
}

fn core(params: &[CoreType], results: &[CoreType]) -> CoreFuncType {
    CoreFuncType { params: params.to_vec(), results: results.to_vec() }
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn latin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(c as u32).ok()).collect()
}

fn src_utf8(s: &str) -> HostString {
    HostString { text: s.into(), encoding: Utf8, tagged_code_units: s.len() as u64 }
}

fn src_utf16(s: &str) -> HostString {
    HostString { text: s.into(), encoding: Utf16, tagged_code_units: s.encode_utf16().count() as u64 }
}

/// latin1+utf16, untagged (every char < 256).
fn src_latin1(s: &str) -> HostString {
    assert!(latin1(s).is_some());
    HostString { text: s.into(), encoding: Latin1Utf16, tagged_code_units: s.chars().count() as u64 }
}

/// latin1+utf16, tagged UTF-16 (the producer chose UTF-16).
fn src_tagged(s: &str) -> HostString {
    HostString { text: s.into(), encoding: Latin1Utf16, tagged_code_units: s.encode_utf16().count() as u64 | TAG }
}

/// `store_string_into_range` into a fresh 64 KiB `BumpHeap` whose bump pointer starts at `base`.
fn store_str(dst: StringEncoding, base: u64, s: &HostString) -> (Result<(u64, u64)>, BumpHeap) {
    let mut heap = BumpHeap::new(65536, base);
    let r = with_cx(&mut heap, dst, |cx| store_string_into_range(cx, s));
    (r, heap)
}

fn bytes(heap: &BumpHeap, ptr: u64, len: usize) -> &[u8] {
    &heap.bytes[ptr as usize..ptr as usize + len]
}

// ------------------------------------------------------------------------------------------
// Alignment and element size (CanonicalABI.md "Alignment" and "Element Size" worked values)

#[test]
fn elem_size_and_alignment_worked_values() {
    use ValType::*;
    // elem_size_variant / alignment_variant: (size, alignment)
    // option<u8>: disc u8 (1), payload align 1 -> 1 + 1 = 2, align 1
    assert_eq!(size_align(&ValType::option(U8)), (2, 1));
    // option<u32>: 1 -> align_to(1,4)=4, +4 = 8
    assert_eq!(size_align(&ValType::option(U32)), (8, 4));
    // option<u64>: 1 -> 8, +8 = 16
    assert_eq!(size_align(&ValType::option(U64)), (16, 8));
    // option<string>: 1 -> 4, +8 = 12, align 4
    assert_eq!(size_align(&ValType::option(String)), (12, 4));
    // result (no payloads): just the u8 discriminant
    assert_eq!(size_align(&ValType::result(None, None)), (1, 1));
    // result<u8,u64>: 1 -> 8, + max(1,8) = 16
    assert_eq!(size_align(&ValType::result(Some(U8), Some(U64))), (16, 8));
    // option<option<u8>>: 1 + size(option<u8>)=2 -> 3, align 1
    assert_eq!(size_align(&ValType::option(ValType::option(U8))), (3, 1));
}

#[test]
fn elem_size_record_worked_values() {
    use ValType::*;
    // elem_size_record: tuple<u8,u32>: 0+1 -> align 4 -> 4+4 = 8
    assert_eq!(size_align(&tuple([U8, U32])), (8, 4));
    // tuple<u8,u16,u8>: 1 -> 2, +2 = 4, +1 = 5 -> align_to(5,2) = 6
    assert_eq!(size_align(&tuple([U8, U16, U8])), (6, 2));
    // record{u64,u8}: 8 + 1 = 9 -> align_to(9,8) = 16
    assert_eq!(size_align(&ValType::record([("a", U64), ("b", U8)])), (16, 8));
    // list<string,2> (🔧 fixed-length): 2 * 8 = 16, align(string) = 4
    assert_eq!(size_align(&List(Arc::new(String), Some(2))), (16, 4));
    // list<T>: (ptr, len) = 8 / 4 whatever T is
    assert_eq!(size_align(&ValType::list(U64)), (8, 4));
    // own/borrow: an i32 index
    let rt = ResourceType { id: 1, name: "r".into(), impl_instance: InstanceId(0) };
    assert_eq!(size_align(&Own(rt.clone())), (4, 4));
    assert_eq!(size_align(&Borrow(rt)), (4, 4));
}

#[test]
fn elem_size_record_test_heap_layouts() {
    use ValType::*;
    // run_tests.py test_heap: List(Tuple([U8(),U16(),U8(),U32()])) elements are 12 bytes:
    // [6,0xff, 7,0, 8,0xff,0xff,0xff, 9,0,0,0] -> fields at 0, 2, 4, 8
    let t = tuple([U8, U16, U8, U32]);
    assert_eq!(size_align(&t), (12, 4));
    assert_eq!(field_offsets(&fields_of(&t), I32P), vec![0, 2, 4, 8]);
    // [6,7, 8,0, 9,0,0,0]: tuple<u8,u8,u16,u32> -> offsets 0,1,2,4, size 8
    let t = tuple([U8, U8, U16, U32]);
    assert_eq!(field_offsets(&fields_of(&t), I32P), vec![0, 1, 2, 4]);
    assert_eq!(size_align(&t), (8, 4));
    // List(Tuple([U16(),U8()])): [6,0, 7, 0xff] -> 4 bytes
    assert_eq!(size_align(&tuple([U16, U8])), (4, 2));
    // List(Tuple([Tuple([U16(),U8()]),U8()])): [4,0, 5,0xff, 6,0xff] -> 6 bytes
    assert_eq!(size_align(&tuple([tuple([U16, U8]), U8])), (6, 2));
    // List(Union([U32(),U8()])): [0,0xff,0xff,0xff, 0,1,0,0] -> 8 bytes, payload at 4
    let u = union([U32, U8]);
    assert_eq!(size_align(&u), (8, 4));
    assert_eq!(payload_offset(&cases_of(&u), I32P), 4);
    // List(Tuple([Union([U8(),Tuple([U16(),U8()])]),U8()])): elements of 8 bytes:
    // union: disc 1 -> align 2 -> 2 + 4 = 6; tuple: 6 + 1 = 7 -> 8
    let u = union([U8, tuple([U16, U8])]);
    assert_eq!(size_align(&u), (6, 2));
    assert_eq!(size_align(&tuple([u, U8])), (8, 2));
    // result<u8,u64>: payload offset = align_to(1, 8) = 8
    assert_eq!(payload_offset(&cases_of(&ValType::result(Some(U8), Some(U64))), I32P), 8);
}

#[test]
fn elem_size_flags_by_label_count() {
    // alignment_flags / elem_size_flags: n <= 8 -> 1, n <= 16 -> 2, else 4 (n <= 32)
    assert_eq!(size_align(&flags_n(1)), (1, 1));
    assert_eq!(size_align(&flags_n(8)), (1, 1));
    assert_eq!(size_align(&flags_n(9)), (2, 2));
    assert_eq!(size_align(&flags_n(16)), (2, 2));
    assert_eq!(size_align(&flags_n(17)), (4, 4));
    assert_eq!(size_align(&flags_n(32)), (4, 4));
}

#[test]
fn discriminant_type_boundaries() {
    // discriminant_type: ceil(log2(n)/8) -> 0|1 -> u8, 2 -> u16, 3 -> u32
    let d = |n: usize| discriminant_type(&cases_of(&enum_n(n)));
    assert_eq!(d(1), ValType::U8); // log2(1) = 0
    assert_eq!(d(2), ValType::U8);
    assert_eq!(d(256), ValType::U8); // log2(256)/8 = 1
    assert_eq!(d(257), ValType::U16); // ceil(8.006/8) = 2
    assert_eq!(d(65536), ValType::U16); // 16/8 = 2
    assert_eq!(d(65537), ValType::U32); // ceil(16.00002/8) = 3
    // enum with 257 cases: u16 discriminant, no payload -> 2 / 2
    assert_eq!(size_align(&enum_n(257)), (2, 2));
    assert_eq!(size_align(&enum_n(256)), (1, 1));
}

#[test]
fn alignment_and_elem_size_i64_memory() {
    use ValType::*;
    let p = PtrType::I64;
    // alignment(String, 'i64') = ptr_size = 8; elem_size = 2 * ptr_size = 16
    assert_eq!((elem_size(&String, p), alignment(&String, p)), (16, 8));
    assert_eq!((elem_size(&ValType::list(U8), p), alignment(&ValType::list(U8), p)), (16, 8));
    // option<string>: 1 -> 8, + 16 = 24, align 8
    let o = ValType::option(String);
    assert_eq!((elem_size(&o, p), alignment(&o, p)), (24, 8));
    // handles stay 4/4 with a 64-bit memory
    let rt = ResourceType { id: 1, name: "r".into(), impl_instance: InstanceId(0) };
    assert_eq!((elem_size(&Own(rt.clone()), p), alignment(&Own(rt), p)), (4, 4));
}

// ------------------------------------------------------------------------------------------
// Flattening

#[test]
fn join_rules() {
    // join(a, b): equal -> a; {i32, f32} -> i32; everything else -> i64
    assert_eq!(join(CI32, CI32), CI32);
    assert_eq!(join(CF32, CF32), CF32);
    assert_eq!(join(CF64, CF64), CF64);
    assert_eq!(join(CI32, CF32), CI32);
    assert_eq!(join(CF32, CI32), CI32);
    assert_eq!(join(CF32, CF64), CI64);
    assert_eq!(join(CI32, CF64), CI64);
    assert_eq!(join(CI32, CI64), CI64);
    assert_eq!(join(CF64, CI64), CI64);
}

#[test]
fn flatten_variant_examples() {
    use ValType::*;
    let f = |t: &ValType| flatten_type(t, I32P);
    // flatten_variant: disc i32, then join position-wise
    assert_eq!(f(&ValType::result(Some(F32), Some(U32))), vec![CI32, CI32]);
    assert_eq!(f(&ValType::result(Some(F32), Some(F64))), vec![CI32, CI64]);
    let v = ValType::variant([("a", Some(U32)), ("b", Some(F32)), ("c", Some(U64))]);
    assert_eq!(f(&v), vec![CI32, CI64]);
    // tuple<f32,f32> | u64: [f32,f32] joined with [i64] -> [i64, f32]
    let v = ValType::variant([("a", Some(tuple([F32, F32]))), ("b", Some(U64))]);
    assert_eq!(f(&v), vec![CI32, CI64, CF32]);
    assert_eq!(f(&ValType::option(U64)), vec![CI32, CI64]);
    // run_tests.py: Union([Tuple([U8(),F32()]), U64()]) is lifted from [0, 42, 3.14]
    assert_eq!(f(&union([tuple([U8, F32]), U64])), vec![CI32, CI64, CF32]);
    assert_eq!(f(&ValType::enum_(["a", "b"])), vec![CI32]);
    assert_eq!(f(&flags_n(32)), vec![CI32]);
    assert_eq!(f(&String), vec![CI32, CI32]);
    assert_eq!(flatten_type(&String, PtrType::I64), vec![CI64, CI64]);
    // flatten_list with a fixed length: the element repeated
    assert_eq!(f(&List(Arc::new(F32), Some(3))), vec![CF32, CF32, CF32]);
}

#[test]
fn flatten_functype_examples() {
    use ValType::*;
    let both = |ft: &FuncType| {
        (
            flatten_functype(FlattenOpts::sync(I32P), ft, Context::Lift),
            flatten_functype(FlattenOpts::sync(I32P), ft, Context::Lower),
        )
    };
    // func(s: string) -> string: lift (i32 i32) -> (i32); lower (i32 i32 i32) -> ()
    let (l, w) = both(&func(vec![String], Some(String)));
    assert_eq!(l, core(&[CI32, CI32], &[CI32]));
    assert_eq!(w, core(&[CI32, CI32, CI32], &[]));
    // func() -> option<u64>: lift () -> (i32); lower (i32) -> ()
    let (l, w) = both(&func(vec![], Some(ValType::option(U64))));
    assert_eq!(l, core(&[], &[CI32]));
    assert_eq!(w, core(&[CI32], &[]));
    // 17 x u8 params: (i32) -> () both ways
    let (l, w) = both(&func(vec![U8; 17], None));
    assert_eq!(l, core(&[CI32], &[]));
    assert_eq!(w, core(&[CI32], &[]));
    // 16 x u8 is exactly MAX_FLAT_PARAMS: not spilled
    let (l, _) = both(&func(vec![U8; 16], None));
    assert_eq!(l, core(&[CI32; 16], &[]));
    // func(x: f32) -> f32: (f32) -> (f32) both ways
    let (l, w) = both(&func(vec![F32], Some(F32)));
    assert_eq!(l, core(&[CF32], &[CF32]));
    assert_eq!(w, core(&[CF32], &[CF32]));
    assert_eq!((MAX_FLAT_PARAMS, MAX_FLAT_RESULTS), (16, 1));
}

#[test]
fn flatten_functype_run_tests_vectors() {
    use ValType::*;
    // run_tests.py test_flatten
    let p = [U8, F32, F64].to_vec();
    let both = |ft: &FuncType| {
        (
            flatten_functype(FlattenOpts::sync(I32P), ft, Context::Lift),
            flatten_functype(FlattenOpts::sync(I32P), ft, Context::Lower),
        )
    };
    let (l, w) = both(&func(p.clone(), None));
    assert_eq!(l, core(&[CI32, CF32, CF64], &[]));
    assert_eq!(w, l);
    let (l, w) = both(&func(p.clone(), Some(F32)));
    assert_eq!(l, core(&[CI32, CF32, CF64], &[CF32]));
    assert_eq!(w, l);
    let (l, _) = both(&func(p.clone(), Some(U8)));
    assert_eq!(l, core(&[CI32, CF32, CF64], &[CI32]));
    let (l, _) = both(&func(p.clone(), Some(tuple([F32]))));
    assert_eq!(l, core(&[CI32, CF32, CF64], &[CF32]));
    // results [f32, f32] > MAX_FLAT_RESULTS: lift returns a pointer, lower gets an out-param
    let (l, w) = both(&func(p.clone(), Some(tuple([F32, F32]))));
    assert_eq!(l, core(&[CI32, CF32, CF64], &[CI32]));
    assert_eq!(w, core(&[CI32, CF32, CF64, CI32], &[]));
    let (l, w) = both(&func(vec![U8; 17], Some(tuple([U8, U8]))));
    assert_eq!(l, core(&[CI32], &[CI32]));
    assert_eq!(w, core(&[CI32, CI32], &[]));
}

#[test]
fn flatten_functype_i64_memory_uses_i64_pointers() {
    use ValType::*;
    // flatten_functype: spilled params/results use opts.memory.ptr_type()
    let p = PtrType::I64;
    let ft = func(vec![String], Some(String));
    assert_eq!(flatten_functype(FlattenOpts::sync(p), &ft, Context::Lift), core(&[CI64, CI64], &[CI64]));
    assert_eq!(flatten_functype(FlattenOpts::sync(p), &ft, Context::Lower), core(&[CI64, CI64, CI64], &[]));
    let ft = func(vec![U8; 17], None);
    assert_eq!(flatten_functype(FlattenOpts::sync(p), &ft, Context::Lift), core(&[CI64], &[]));
}

// ------------------------------------------------------------------------------------------
// Flat lifting of scalars (run_tests.py test_pairs, values/numerics.wast)

#[test]
fn lift_flat_unsigned_and_signed_truncate() {
    use ValType::*;
    let l = |t: &ValType, v: u32| lift(t, i32s(&[v])).unwrap();
    // run_tests.py test_pairs(U8(), ...)
    for (arg, want) in
        [(127, 127), (128, 128), (255, 255), (256, 0), (4294967295, 255), (4294967168, 128), (4294967167, 127)]
    {
        assert_eq!(l(&U8, arg), Value::U8(want), "u8 from {arg}");
    }
    for (arg, want) in
        [(127, 127), (128, -128), (255, -1), (256, 0), (4294967295, -1), (4294967168, -128), (4294967167, 127)]
    {
        assert_eq!(l(&S8, arg), Value::S8(want), "s8 from {arg}");
    }
    for (arg, want) in [
        (32767, 32767),
        (32768, 32768),
        (65535, 65535),
        (65536, 0),
        (u32::MAX, 65535),
        (u32::MAX - 32767, 32768),
        (u32::MAX - 32768, 32767),
    ] {
        assert_eq!(l(&U16, arg), Value::U16(want), "u16 from {arg}");
    }
    for (arg, want) in [
        (32767, 32767),
        (32768, -32768),
        (65535, -1),
        (65536, 0),
        (u32::MAX, -1),
        (u32::MAX - 32767, -32768),
        (u32::MAX - 32768, 32767),
    ] {
        assert_eq!(l(&S16, arg), Value::S16(want), "s16 from {arg}");
    }
    for (arg, want) in [((1 << 31) - 1, (1 << 31) - 1), (1 << 31, 1 << 31), (u32::MAX, u32::MAX)] {
        assert_eq!(l(&U32, arg), Value::U32(want));
    }
    for (arg, want) in [((1u32 << 31) - 1, i32::MAX), (1 << 31, i32::MIN), (u32::MAX, -1)] {
        assert_eq!(l(&S32, arg), Value::S32(want));
    }
    for (arg, want) in [((1u64 << 63) - 1, (1u64 << 63) - 1), (1 << 63, 1 << 63), (u64::MAX, u64::MAX)] {
        assert_eq!(lift(&U64, vec![Flat::I64(arg)]).unwrap(), Value::U64(want));
    }
    for (arg, want) in [((1u64 << 63) - 1, i64::MAX), (1 << 63, i64::MIN), (u64::MAX, -1)] {
        assert_eq!(lift(&S64, vec![Flat::I64(arg)]).unwrap(), Value::S64(want));
    }
    // values/numerics.wast: i-to-u8 0xf01 -> 1; i-to-s8 0xffffffff -> -1; 0xff00 as u8 -> 0
    assert_eq!(l(&U8, 0xf01), Value::U8(1));
    assert_eq!(l(&U8, 0xff00), Value::U8(0));
    assert_eq!(l(&S8, 0xffff), Value::S8(-1));
    assert_eq!(l(&U16, 0xff0000), Value::U16(0));
    assert_eq!(l(&S16, 0xffffff), Value::S16(-1));
}

#[test]
fn convert_int_to_bool_any_nonzero_is_true() {
    // run_tests.py test_pairs(Bool(), [(0,False),(1,True),(2,True),(4294967295,True)])
    for (arg, want) in [(0, false), (1, true), (2, true), (u32::MAX, true)] {
        assert_eq!(lift(&ValType::Bool, i32s(&[arg])).unwrap(), Value::Bool(want));
    }
    // values/numerics.wast: a nonzero bool reaches the callee as exactly 1 (lower_flat: int(v))
    let v = lift(&ValType::Bool, i32s(&[2])).unwrap();
    assert_eq!(lower(&ValType::Bool, &v).unwrap(), i32s(&[1]));
    // memory: load of a bool byte 2 is true (run_tests.py test_heap List(Bool()) [1,0,2])
    let r = lift_heap(&ValType::list(ValType::Bool), i32s(&[0, 3]), &[1, 0, 2]);
    assert_eq!(r.unwrap(), Value::List(vec![Value::Bool(true), Value::Bool(false), Value::Bool(true)]));
}

#[test]
fn convert_i32_to_char_boundaries() {
    let c = ValType::Char;
    // run_tests.py test_pairs(Char(), ...), values/numerics.wast
    assert_eq!(lift(&c, i32s(&[0])).unwrap(), Value::Char('\0'));
    assert_eq!(lift(&c, i32s(&[65])).unwrap(), Value::Char('A'));
    assert_eq!(lift(&c, i32s(&[0xD7FF])).unwrap(), Value::Char('\u{D7FF}'));
    assert_eq!(kind(lift(&c, i32s(&[0xD800]))), TrapKind::InvalidChar);
    assert_eq!(kind(lift(&c, i32s(&[0xDFFF]))), TrapKind::InvalidChar);
    assert_eq!(lift(&c, i32s(&[0xE000])).unwrap(), Value::Char('\u{E000}'));
    assert_eq!(lift(&c, i32s(&[0x10FFFF])).unwrap(), Value::Char('\u{10FFFF}'));
    assert_eq!(kind(lift(&c, i32s(&[0x110000]))), TrapKind::InvalidChar);
    assert_eq!(kind(lift(&c, i32s(&[0xFFFF_FFFF]))), TrapKind::InvalidChar);
    // load: the same rule on a value read from memory (0xD800 little-endian)
    let mut h = heap_with(&[0x00, 0xD8, 0, 0]);
    assert_eq!(kind(with_cx(&mut h, Utf8, |cx| load(cx, 0, &c))), TrapKind::InvalidChar);
    let mut h = heap_with(&[0xFF, 0xFF, 0x10, 0]);
    assert_eq!(with_cx(&mut h, Utf8, |cx| load(cx, 0, &c)).unwrap(), Value::Char('\u{10FFFF}'));
}

#[test]
fn canonicalize_nan32_on_lift_and_load() {
    // run_tests.py test_nan32 (DETERMINISTIC_PROFILE expectation = canonical bits on lift)
    for (inbits, outbits) in [
        (0x7fc00000u32, CANONICAL_FLOAT32_NAN),
        (0x7fc00001, CANONICAL_FLOAT32_NAN),
        (0x7fe00000, CANONICAL_FLOAT32_NAN),
        (0x7fffffff, CANONICAL_FLOAT32_NAN),
        (0xffffffff, CANONICAL_FLOAT32_NAN),
        (0x7f800000, 0x7f800000),
        (0x3fc00000, 0x3fc00000),
    ] {
        let Value::F32(f) = lift(&ValType::F32, vec![Flat::F32(f32::from_bits(inbits))]).unwrap() else { panic!() };
        assert_eq!(f.to_bits(), outbits, "lift_flat f32 {inbits:#x}");
        let mut h = heap_with(&inbits.to_le_bytes());
        let Value::F32(f) = with_cx(&mut h, Utf8, |cx| load(cx, 0, &ValType::F32)).unwrap() else { panic!() };
        assert_eq!(f.to_bits(), outbits, "load f32 {inbits:#x}");
    }
    assert_eq!(CANONICAL_FLOAT32_NAN, 0x7fc00000);
}

#[test]
fn canonicalize_nan64_on_lift_and_load() {
    // run_tests.py test_nan64
    for (inbits, outbits) in [
        (0x7ff8000000000000u64, CANONICAL_FLOAT64_NAN),
        (0x7ff8000000000001, CANONICAL_FLOAT64_NAN),
        (0x7ffc000000000000, CANONICAL_FLOAT64_NAN),
        (0x7fffffffffffffff, CANONICAL_FLOAT64_NAN),
        (0xffffffffffffffff, CANONICAL_FLOAT64_NAN),
        (0x7ff0000000000000, 0x7ff0000000000000),
        (0x3ff0000000000000, 0x3ff0000000000000),
    ] {
        let Value::F64(f) = lift(&ValType::F64, vec![Flat::F64(f64::from_bits(inbits))]).unwrap() else { panic!() };
        assert_eq!(f.to_bits(), outbits, "lift_flat f64 {inbits:#x}");
        let mut h = heap_with(&inbits.to_le_bytes());
        let Value::F64(f) = with_cx(&mut h, Utf8, |cx| load(cx, 0, &ValType::F64)).unwrap() else { panic!() };
        assert_eq!(f.to_bits(), outbits, "load f64 {inbits:#x}");
    }
    assert_eq!(CANONICAL_FLOAT64_NAN, 0x7ff8000000000000);
}

#[test]
fn maybe_scramble_nan_on_lower_keeps_nan() {
    // lower_flat / maybe_scramble_nan32: any NaN may come out, but it must be a NaN
    let out = lower(&ValType::F32, &Value::F32(f32::from_bits(0x7fc00001))).unwrap();
    assert!(matches!(out.as_slice(), [Flat::F32(f)] if f.is_nan()), "{out:?}");
    let out = lower(&ValType::F64, &Value::F64(f64::from_bits(0x7ff8000000000001))).unwrap();
    assert!(matches!(out.as_slice(), [Flat::F64(f)] if f.is_nan()), "{out:?}");
}

#[test]
fn unpack_flags_from_int_ignores_high_bits() {
    // run_tests.py: Flags(['a','b']) from [0] {}, [2] {b}, [3] {a,b}, [4] {}
    let t = ValType::flags(["a", "b"]);
    assert_eq!(lift(&t, i32s(&[0])).unwrap(), flags(&[]));
    assert_eq!(lift(&t, i32s(&[2])).unwrap(), flags(&["b"]));
    assert_eq!(lift(&t, i32s(&[3])).unwrap(), flags(&["a", "b"]));
    assert_eq!(lift(&t, i32s(&[4])).unwrap(), flags(&[]));
    // values/numerics.wast "junk-to-f9": 0xffffff11 as flags f1..f9 -> f1, f5, f9
    let f9 = ValType::flags(["f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9"]);
    assert_eq!(lift(&f9, i32s(&[0xffffff11])).unwrap(), flags(&["f1", "f5", "f9"]));
}

#[test]
fn lift_then_lower_flags_masks_undefined_bits() {
    // lift_flat_flags (unpack_flags_from_int) then lower_flat_flags (pack_flags_into_int):
    // values/numerics.wast: the callee sees only the defined bits
    // (f1: 0xffffff01 -> 0x1, f8: 0xffffff11 -> 0x11, f9: 0xffffff11 -> 0x111,
    //  f16: 0xffff1111 -> 0x1111, f17: 0xffff1111 -> 0x11111, f32: 0xffffffff -> 0xffffffff)
    for (n, input, want) in [
        (1, 0xffffff01u32, 0x1u32),
        (8, 0xffffff11, 0x11),
        (9, 0xffffff11, 0x111),
        (16, 0xffff1111, 0x1111),
        (17, 0xffff1111, 0x11111),
        (32, 0xffffffff, 0xffffffff),
    ] {
        let t = flags_n(n);
        let v = lift(&t, i32s(&[input])).unwrap();
        assert_eq!(lower(&t, &v).unwrap(), i32s(&[want]), "flags with {n} labels");
    }
}

#[test]
fn load_flags_ignores_high_bits_in_memory() {
    // run_tests.py test_heap: List(Flags 9 labels) [0xff,0x3, 0,0] -> all set, none set
    let t = ValType::list(flags_n(9));
    let all9: Vec<String> = labels(9);
    let want = Value::List(vec![Value::Flags(all9), flags(&[])]);
    assert_eq!(lift_heap(&t, i32s(&[0, 2]), &[0xff, 0x1, 0, 0]).unwrap(), want);
    assert_eq!(lift_heap(&t, i32s(&[0, 2]), &[0xff, 0x3, 0, 0]).unwrap(), want);
    // List(Flags 17 labels) [0xff,0xff,0x3,0, 0,0,0,0]
    let t = ValType::list(flags_n(17));
    let want = Value::List(vec![Value::Flags(labels(17)), flags(&[])]);
    assert_eq!(lift_heap(&t, i32s(&[0, 2]), &[0xff, 0xff, 0x3, 0, 0, 0, 0, 0]).unwrap(), want);
    // List(Flags(['a','b'])) [0,2,4] -> {}, {b}, {}
    let t = ValType::list(ValType::flags(["a", "b"]));
    assert_eq!(
        lift_heap(&t, i32s(&[0, 3]), &[0, 2, 4]).unwrap(),
        Value::List(vec![flags(&[]), flags(&["b"]), flags(&[])])
    );
}

// ------------------------------------------------------------------------------------------
// Variants: discriminants and joined flat slots

#[test]
fn lift_flat_variant_discriminant_out_of_range_traps() {
    use ValType::*;
    // run_tests.py: Enum(['a','b']) from 2 traps; Union([U8()]) from [1,256] traps
    let e = ValType::enum_(["a", "b"]);
    assert_eq!(lift(&e, i32s(&[1])).unwrap(), Value::case("b", None));
    assert_eq!(kind(lift(&e, i32s(&[2]))), TrapKind::InvalidDiscriminant);
    assert_eq!(kind(lift(&union([U8]), i32s(&[1, 256]))), TrapKind::InvalidDiscriminant);
    // lift_flat_variant compares the whole i32: 0x100 is not case 0 of a 2-case option
    assert_eq!(kind(lift(&ValType::option(U8), i32s(&[0x100, 0]))), TrapKind::InvalidDiscriminant);
    assert_eq!(kind(lift(&e, i32s(&[u32::MAX]))), TrapKind::InvalidDiscriminant);
    // 257 cases: indices 0..=256 valid
    let e257 = enum_n(257);
    assert_eq!(lift(&e257, i32s(&[256])).unwrap(), Value::case("c256", None));
    assert_eq!(kind(lift(&e257, i32s(&[257]))), TrapKind::InvalidDiscriminant);
}

#[test]
fn load_variant_discriminant_out_of_range_traps() {
    use ValType::*;
    let ld = |t: &ValType, bytes: &[u8]| {
        let mut h = heap_with(bytes);
        with_cx(&mut h, Utf8, |cx| load(cx, 0, t))
    };
    // load_variant: disc u8 = 2 >= 2 cases
    assert_eq!(kind(ld(&ValType::option(U8), &[2, 0])), TrapKind::InvalidDiscriminant);
    assert_eq!(ld(&ValType::option(U8), &[1, 7]).unwrap(), some(Value::U8(7)));
    // 257 cases: u16 little-endian discriminant; 0x0100 = 256 ok, 0x0101 = 257 traps
    assert_eq!(ld(&enum_n(257), &[0x00, 0x01]).unwrap(), Value::case("c256", None));
    assert_eq!(kind(ld(&enum_n(257), &[0x01, 0x01])), TrapKind::InvalidDiscriminant);
    // result<u8,u32>: payload at offset 4; [1, pad, pad, pad, 1000 LE] -> error(1000)
    let r = ValType::result(Some(U8), Some(U32));
    assert_eq!(ld(&r, &[1, 0xff, 0xff, 0xff, 0xe8, 0x03, 0, 0]).unwrap(), Value::case("error", Some(Value::U32(1000))));
}

#[test]
fn lift_flat_variant_run_tests_vectors() {
    use ValType::*;
    // run_tests.py: Variant([Case('x',U8()),Case('y',F32()),Case('z',None)]): flat [i32, i32]
    let t = ValType::variant([("x", Some(U8)), ("y", Some(F32)), ("z", None)]);
    assert_eq!(lift(&t, i32s(&[0, 42])).unwrap(), Value::case("x", Some(Value::U8(42))));
    assert_eq!(lift(&t, i32s(&[0, 256])).unwrap(), Value::case("x", Some(Value::U8(0))));
    // i32 slot wanted as f32: reinterpret (0x4048f5c3 = 3.140000104904175f32)
    assert_eq!(
        lift(&t, i32s(&[1, 0x4048f5c3])).unwrap(),
        Value::case("y", Some(Value::F32(f32::from_bits(0x4048f5c3))))
    );
    // unused slot consumed and ignored
    assert_eq!(lift(&t, i32s(&[2, 0xffffffff])).unwrap(), Value::case("z", None));
    // Option(F32()): run_tests.py lifts [0, 3.14] -> none (the f32 slot is consumed); 2.5 here
    let o = ValType::option(F32);
    assert_eq!(lift(&o, vec![Flat::I32(0), Flat::F32(2.5)]).unwrap(), Value::case("none", None));
    assert_eq!(lift(&o, vec![Flat::I32(1), Flat::F32(2.5)]).unwrap(), some(Value::F32(2.5)));
    // Result(U8(),U32()): [1, 1000] -> error(1000)
    let r = ValType::result(Some(U8), Some(U32));
    assert_eq!(lift(&r, i32s(&[0, 42])).unwrap(), Value::case("ok", Some(Value::U8(42))));
    assert_eq!(lift(&r, i32s(&[1, 1000])).unwrap(), Value::case("error", Some(Value::U32(1000))));
}

#[test]
fn lift_flat_variant_i64_slot_coercions() {
    use ValType::*;
    let f = |t: &ValType, d: u32, x: u64| lift(t, vec![Flat::I32(d), Flat::I64(x)]);
    // run_tests.py (older versions, Union == variant "0","1"):
    // Union([U32(),U64()]): [0, 1<<35] -> {'0': 0} (wrap_i64_to_i32 keeps the low 32 bits)
    let t = union([U32, U64]);
    assert_eq!(f(&t, 0, 42).unwrap(), Value::case("0", Some(Value::U32(42))));
    assert_eq!(f(&t, 0, 1 << 35).unwrap(), Value::case("0", Some(Value::U32(0))));
    assert_eq!(f(&t, 0, 0x1_2345_6789).unwrap(), Value::case("0", Some(Value::U32(0x2345_6789))));
    assert_eq!(f(&t, 1, 1 << 35).unwrap(), Value::case("1", Some(Value::U64(1 << 35))));
    // Union([F32(), U64()]): ('i64','f32') = decode_i32_as_float(wrap_i64_to_i32(x))
    let t = union([F32, U64]);
    assert_eq!(f(&t, 0, 0x4048f5c3).unwrap(), Value::case("0", Some(Value::F32(f32::from_bits(0x4048f5c3)))));
    assert_eq!(f(&t, 0, 1 << 35).unwrap(), Value::case("0", Some(Value::F32(0.0))));
    assert_eq!(f(&t, 1, 1 << 35).unwrap(), Value::case("1", Some(Value::U64(1 << 35))));
    // Union([F64(), U64()]): ('i64','f64') = reinterpret; [0, 1<<35] -> 1.69759663277e-313
    let t = union([F64, U64]);
    assert_eq!(f(&t, 0, 0x4004_0000_0000_0000).unwrap(), Value::case("0", Some(Value::F64(2.5))));
    let Value::Variant(_, Some(p)) = f(&t, 0, 1 << 35).unwrap() else { panic!() };
    assert!(matches!(*p, Value::F64(x) if x.to_bits() == 1 << 35), "{p:?}");
    // Union([Tuple([U8(),F32()]), U64()]): run_tests.py [0,42,3.14] -> (42, 3.14) (2.5 here); [1,1<<35,0] -> 1<<35
    let t = union([tuple([U8, F32]), U64]);
    assert_eq!(
        lift(&t, vec![Flat::I32(0), Flat::I64(42), Flat::F32(2.5)]).unwrap(),
        Value::case("0", Some(Value::tuple([Value::U8(42), Value::F32(2.5)])))
    );
    assert_eq!(
        lift(&t, vec![Flat::I32(1), Flat::I64(1 << 35), Flat::F32(0.0)]).unwrap(),
        Value::case("1", Some(Value::U64(1 << 35)))
    );
}

#[test]
fn lift_flat_variant_i32_slot_as_f32_canonicalizes_nan() {
    use ValType::*;
    // lift_flat_variant CoerceValueIter ('i32','f32') = decode_i32_as_float -> canonical NaN
    let t = ValType::variant([("i", Some(U32)), ("f", Some(F32))]);
    let Value::Variant(_, Some(p)) = lift(&t, i32s(&[1, 0x7fc00001])).unwrap() else { panic!() };
    assert!(matches!(*p, Value::F32(x) if x.to_bits() == 0x7fc00000), "{p:?}");
    // ('i64','f64') = decode_i64_as_float -> canonical NaN
    let t = ValType::variant([("i", Some(U64)), ("f", Some(F64))]);
    let Value::Variant(_, Some(p)) = lift(&t, vec![Flat::I32(1), Flat::I64(0x7ff8000000000001)]).unwrap() else {
        panic!()
    };
    assert!(matches!(*p, Value::F64(x) if x.to_bits() == 0x7ff8000000000000), "{p:?}");
}

#[test]
fn lower_flat_variant_slot_coercions() {
    use ValType::*;
    // lower_flat_variant: ('f32','i32') -> encode_float_as_i32 (bits)
    let t = ValType::result(Some(F32), Some(U32));
    assert_eq!(lower(&t, &Value::case("ok", Some(Value::F32(1.5)))).unwrap(), i32s(&[0, 0x3fc00000]));
    assert_eq!(lower(&t, &Value::case("error", Some(Value::U32(7)))).unwrap(), i32s(&[1, 7]));
    // variant{u32|f32|u64} -> [i32, i64]: ('i32','i64') zero-extends, ('f32','i64') = f32 bits
    // zero-extended (-1.0f32 = 0xbf800000 stays 0x00000000_bf800000)
    let t = ValType::variant([("a", Some(U32)), ("b", Some(F32)), ("c", Some(U64))]);
    assert_eq!(
        lower(&t, &Value::case("a", Some(Value::U32(0xffff_ffff)))).unwrap(),
        vec![Flat::I32(0), Flat::I64(0xffff_ffff)]
    );
    assert_eq!(
        lower(&t, &Value::case("b", Some(Value::F32(-1.0)))).unwrap(),
        vec![Flat::I32(1), Flat::I64(0xbf80_0000)]
    );
    assert_eq!(
        lower(&t, &Value::case("c", Some(Value::U64(u64::MAX)))).unwrap(),
        vec![Flat::I32(2), Flat::I64(u64::MAX)]
    );
    // s32 -1 lowers to the unsigned 0xffffffff (lower_flat_signed), then zero-extends
    let t = ValType::variant([("a", Some(S32)), ("c", Some(S64))]);
    assert_eq!(lower(&t, &Value::case("a", Some(Value::S32(-1)))).unwrap(), vec![Flat::I32(0), Flat::I64(0xffff_ffff)]);
    // result<f32,f64> -> [i32, i64]: ('f64','i64') = bits, ('f32','i64') = bits zero-extended
    let t = ValType::result(Some(F32), Some(F64));
    assert_eq!(
        lower(&t, &Value::case("error", Some(Value::F64(2.5)))).unwrap(),
        vec![Flat::I32(1), Flat::I64(0x4004_0000_0000_0000)]
    );
    assert_eq!(
        lower(&t, &Value::case("ok", Some(Value::F32(1.5)))).unwrap(),
        vec![Flat::I32(0), Flat::I64(0x3fc00000)]
    );
}

#[test]
fn lower_flat_variant_pads_unused_slots_with_zero() {
    use ValType::*;
    // variant{tuple<f32,f32> | u64} -> [i32, i64, f32]
    let t = ValType::variant([("a", Some(tuple([F32, F32]))), ("b", Some(U64))]);
    assert_eq!(
        lower(&t, &Value::case("a", Some(Value::tuple([Value::F32(1.0), Value::F32(2.0)])))).unwrap(),
        vec![Flat::I32(0), Flat::I64(0x3f80_0000), Flat::F32(2.0)]
    );
    assert_eq!(
        lower(&t, &Value::case("b", Some(Value::U64(5)))).unwrap(),
        vec![Flat::I32(1), Flat::I64(5), Flat::F32(0.0)]
    );
    // option<u64> none -> [0, 0]
    assert_eq!(lower(&ValType::option(U64), &Value::case("none", None)).unwrap(), vec![Flat::I32(0), Flat::I64(0)]);
}

// ------------------------------------------------------------------------------------------
// Strings: lifting

fn lift_str(mem: &[u8], enc: StringEncoding, ptr: u64, tagged: u64) -> Result<HostString> {
    let mut h = heap_with(mem);
    with_cx(&mut h, enc, |cx| load_string_from_range(cx, ptr, tagged))
}

#[test]
fn load_string_strings_wast_vectors() {
    // values/strings.wast f2: 14 bytes of UTF-8 -> "☃☺️öツ"
    let mut mem = vec![0u8; 32];
    mem[0..4].copy_from_slice(&8u32.to_le_bytes());
    mem[4..8].copy_from_slice(&14u32.to_le_bytes());
    mem[8..16].copy_from_slice(&0xb8_ef_ba_98_e2_83_98_e2u64.to_le_bytes());
    mem[16..20].copy_from_slice(&0xe3_b6_c3_8fu32.to_le_bytes());
    mem[20..22].copy_from_slice(&0x84_83u16.to_le_bytes());
    let mut h = heap_with(&mem);
    let v = with_cx(&mut h, Utf8, |cx| load(cx, 0, &ValType::String)).unwrap();
    assert_eq!(v, Value::String(HostString { text: "☃☺\u{fe0f}öツ".into(), encoding: Utf8, tagged_code_units: 14 }));
    // empty string, ptr 0 / ptr 100, len 0
    let page = vec![0u8; 65536];
    assert_eq!(lift_str(&page, Utf8, 0, 0).unwrap().text, "");
    assert_eq!(lift_str(&page, Utf8, 100, 0).unwrap().text, "");
    // out-of-bounds pointer traps even with len 0
    assert_eq!(kind(lift_str(&page, Utf8, 0xdeadbeef, 0)), TrapKind::OutOfBounds);
    // invalid UTF-8: 0xFF; truncated 0xC3
    let mut m = page.clone();
    m[8] = 0xff;
    assert_eq!(kind(lift_str(&m, Utf8, 8, 1)), TrapKind::InvalidUtf8);
    m[8] = 0xc3;
    assert_eq!(kind(lift_str(&m, Utf8, 8, 1)), TrapKind::InvalidUtf8);
}

#[test]
fn load_string_from_range_end_of_memory() {
    // values/strings.wast: "ok" at 65534..65536 is fine, 65535 + 2 traps
    let mut page = vec![0u8; 65536];
    page[65534] = b'o';
    page[65535] = b'k';
    assert_eq!(lift_str(&page, Utf8, 65534, 2).unwrap().text, "ok");
    assert_eq!(kind(lift_str(&page, Utf8, 65535, 2)), TrapKind::OutOfBounds);
    // zero-length at exactly the end is in bounds; one past is not
    assert_eq!(lift_str(&page, Utf8, 65536, 0).unwrap().text, "");
    assert_eq!(kind(lift_str(&page, Utf8, 65537, 0)), TrapKind::OutOfBounds);
    // values/alignment.wast StringOOB: ptr 0x80000000 len 1
    assert_eq!(kind(lift_str(&page, Utf8, 0x8000_0000, 1)), TrapKind::OutOfBounds);
    // utf16: 1 code unit = 2 bytes at 65534 fits, at 65536 does not
    assert_eq!(lift_str(&page, Utf16, 65534, 1).unwrap().text, "\u{6b6f}");
    assert_eq!(kind(lift_str(&page, Utf16, 65536, 1)), TrapKind::OutOfBounds);
}

#[test]
fn load_string_from_range_alignment_even_at_length_zero() {
    let page = vec![0u8; 64];
    // values/alignment.wast Utf16Src: utf16 (ptr 1, len 0) traps
    assert_eq!(kind(lift_str(&page, Utf16, 1, 0)), TrapKind::MisalignedPointer);
    // Latin1Utf16Src: both untagged (latin1) and tagged (utf16) lengths need alignment 2
    assert_eq!(kind(lift_str(&page, Latin1Utf16, 1, 0)), TrapKind::MisalignedPointer);
    assert_eq!(kind(lift_str(&page, Latin1Utf16, 1, TAG)), TrapKind::MisalignedPointer);
    assert_eq!(kind(lift_str(&page, Latin1Utf16, 3, 2)), TrapKind::MisalignedPointer);
    // utf8 has alignment 1
    assert_eq!(lift_str(&page, Utf8, 1, 0).unwrap().text, "");
    assert_eq!(lift_str(&page, Latin1Utf16, 2, 0).unwrap().text, "");
}

#[test]
fn load_string_from_range_utf16_tag() {
    // latin1+utf16: tagged_code_units & UTF16_TAG -> UTF-16 with (n ^ tag) code units
    // bytes E9 00 AC 20: as UTF-16 "é€" (U+00E9, U+20AC); as 2 Latin-1 bytes "é\0"
    let mem = [0xE9, 0x00, 0xAC, 0x20];
    assert_eq!(UTF16_TAG_I32, 1 << 31);
    assert_eq!(utf16_tag(PtrType::I32), 1 << 31);
    assert_eq!(utf16_tag(PtrType::I64), 1 << 63);
    let s = lift_str(&mem, Latin1Utf16, 0, 2 | TAG).unwrap();
    assert_eq!(s, HostString { text: "é€".into(), encoding: Latin1Utf16, tagged_code_units: 2 | TAG });
    let s = lift_str(&mem, Latin1Utf16, 0, 2).unwrap();
    assert_eq!(s.text, "é\0");
    // Latin-1 never fails: every byte is a code point
    let all: Vec<u8> = (0..=255).collect();
    let s = lift_str(&all, Latin1Utf16, 0, 256).unwrap();
    assert_eq!(s.text, (0..=255u8).map(char::from).collect::<String>());
    // in plain utf16 the high bit is not a tag: 2 * (2^31 + 2) bytes > MAX_STRING_BYTE_LENGTH
    assert_eq!(kind(lift_str(&mem, Utf16, 0, 2 | TAG)), TrapKind::StringTooLong);
}

#[test]
fn load_string_from_range_utf16_tag_i64_memory() {
    // utf16_tag('i64') = 1 << 63: with a 64-bit memory, 1<<31 is an ordinary (huge) length
    let mut m = Mem64(heap_with(&[0xE9, 0x00, 0xAC, 0x20]));
    let s = with_cx(&mut m, Latin1Utf16, |cx| {
        lift_flat(cx, &mut CoreValueIter::new(vec![Flat::I64(0), Flat::I64(2 | 1 << 63)]), &ValType::String)
    });
    assert_eq!(
        s.unwrap(),
        Value::String(HostString { text: "é€".into(), encoding: Latin1Utf16, tagged_code_units: 2 | 1 << 63 })
    );
    let r = with_cx(&mut m, Latin1Utf16, |cx| load_string_from_range(cx, 0, 2 | TAG));
    // untagged Latin-1 of 2^31 + 2 bytes
    assert_eq!(kind(r), TrapKind::StringTooLong);
}

#[test]
fn load_string_from_range_invalid_encodings_trap() {
    // strict UTF-8: overlong, encoded surrogate, truncated, stray continuation
    for bad in [&[0xC0, 0x80][..], &[0xED, 0xA0, 0x80], &[0xE2, 0x82], &[0x80], &[0xF4, 0x90, 0x80, 0x80]] {
        assert_eq!(kind(lift_str(bad, Utf8, 0, bad.len() as u64)), TrapKind::InvalidUtf8, "{bad:x?}");
    }
    // UTF-16: lone high surrogate, lone low surrogate, high followed by a non-low unit
    for bad in [&[0x00, 0xD8][..], &[0x00, 0xDC], &[0x00, 0xD8, 0x41, 0x00]] {
        let n = bad.len() as u64 / 2;
        assert_eq!(kind(lift_str(bad, Utf16, 0, n)), TrapKind::InvalidUtf16, "{bad:x?}");
        assert_eq!(kind(lift_str(bad, Latin1Utf16, 0, n | TAG)), TrapKind::InvalidUtf16, "{bad:x?}");
    }
    // a valid surrogate pair: U+1F600 = D83D DE00
    assert_eq!(lift_str(&[0x3D, 0xD8, 0x00, 0xDE], Utf16, 0, 2).unwrap().text, "😀");
}

#[test]
fn load_string_from_range_max_string_byte_length_before_alignment_and_bounds() {
    let mem = vec![0u8; 16];
    assert_eq!(MAX_STRING_BYTE_LENGTH, (1 << 28) - 1);
    // utf8: byte_length = tagged; 2^28 traps as too long, 2^28-1 only as out of bounds
    assert_eq!(kind(lift_str(&mem, Utf8, 0, 1 << 28)), TrapKind::StringTooLong);
    assert_eq!(kind(lift_str(&mem, Utf8, 0, (1 << 28) - 1)), TrapKind::OutOfBounds);
    // utf16: 2^27 units = 2^28 bytes; the length check comes before the alignment check
    assert_eq!(kind(lift_str(&mem, Utf16, 1, 1 << 27)), TrapKind::StringTooLong);
    assert_eq!(kind(lift_str(&mem, Utf16, 1, (1 << 27) - 1)), TrapKind::MisalignedPointer);
    assert_eq!(kind(lift_str(&mem, Utf16, 0, (1 << 27) - 1)), TrapKind::OutOfBounds);
    // latin1+utf16 tagged: 2 * (tagged ^ tag)
    assert_eq!(kind(lift_str(&mem, Latin1Utf16, 1, TAG | 1 << 27)), TrapKind::StringTooLong);
    assert_eq!(kind(lift_str(&mem, Latin1Utf16, 1, TAG | ((1 << 27) - 1))), TrapKind::MisalignedPointer);
    // latin1+utf16 untagged: byte_length = tagged
    assert_eq!(kind(lift_str(&mem, Latin1Utf16, 1, 1 << 28)), TrapKind::StringTooLong);
    assert_eq!(kind(lift_str(&mem, Latin1Utf16, 1, (1 << 28) - 1)), TrapKind::MisalignedPointer);
    assert_eq!(kind(lift_str(&mem, Latin1Utf16, 0, (1 << 28) - 1)), TrapKind::OutOfBounds);
}

// ------------------------------------------------------------------------------------------
// Strings: storing (realloc sequences of store_string_into_range; BumpHeap rule in the header)

#[test]
fn store_string_copy_sequences() {
    // utf8 <- utf8: store_string_copy(cx, src, n, 1, 1, 'utf-8'): realloc(0,0,1,n)
    let (r, h) = store_str(Utf8, 16, &src_utf8("hi"));
    assert_eq!(r.unwrap(), (16, 2));
    assert_eq!(h.calls, vec![call(0, 0, 1, 2, 16)]);
    assert_eq!(bytes(&h, 16, 2), b"hi");
    // "😀" is 4 UTF-8 bytes; heap base 17 with alignment 1 -> 17
    let (r, h) = store_str(Utf8, 17, &src_utf8("😀"));
    assert_eq!(r.unwrap(), (17, 4));
    assert_eq!(h.calls, vec![call(0, 0, 1, 4, 17)]);
    // utf16 <- utf16: realloc(0,0,2,2n); base 17 -> align_to(17,2) = 18
    let (r, h) = store_str(Utf16, 17, &src_utf16("xy\u{1ff}"));
    assert_eq!(r.unwrap(), (18, 3));
    assert_eq!(h.calls, vec![call(0, 0, 2, 6, 18)]);
    assert_eq!(bytes(&h, 18, 6), &[0x78, 0, 0x79, 0, 0xff, 0x01]);
    // utf16 <- latin1: store_string_copy(..., 2, 2, 'utf-16-le'): inflated with zero high bytes
    let (r, h) = store_str(Utf16, 17, &src_latin1("\u{80}b"));
    assert_eq!(r.unwrap(), (18, 2));
    assert_eq!(h.calls, vec![call(0, 0, 2, 4, 18)]);
    assert_eq!(bytes(&h, 18, 4), &[0x80, 0, 0x62, 0]);
    // latin1+utf16 <- latin1: store_string_copy(..., 1, 2, 'latin-1'): alignment 2, n bytes
    let (r, h) = store_str(Latin1Utf16, 17, &src_latin1("ab\u{ef}c"));
    assert_eq!(r.unwrap(), (18, 4));
    assert_eq!(h.calls, vec![call(0, 0, 2, 4, 18)]);
    assert_eq!(bytes(&h, 18, 4), &[0x61, 0x62, 0xef, 0x63]);
}

#[test]
fn store_utf16_to_utf8_sequences() {
    // store_string_to_utf8(cx, src, n, worst = 3n)
    // "hi": n = 2, all ASCII -> one realloc(0,0,1,2), result (ptr, n)
    let (r, h) = store_str(Utf8, 16, &src_utf16("hi"));
    assert_eq!(r.unwrap(), (16, 2));
    assert_eq!(h.calls, vec![call(0, 0, 1, 2, 16)]);
    // "xy\u{1ff}": n = 3, worst 9. realloc(0,0,1,3) -> 16 (next 19); 'x','y' written;
    // U+01FF >= 0x80: realloc(16,3,1,9) -> 19 (next 28, 3 bytes copied); encoded
    // 78 79 C7 BF (4 bytes); 9 > 4: realloc(19,9,1,4) -> 19 (shrink in place)
    let (r, h) = store_str(Utf8, 16, &src_utf16("xy\u{1ff}"));
    assert_eq!(r.unwrap(), (19, 4));
    assert_eq!(h.calls, vec![call(0, 0, 1, 3, 16), call(16, 3, 1, 9, 19), call(19, 9, 1, 4, 19)]);
    assert_eq!(bytes(&h, 19, 4), &[0x78, 0x79, 0xC7, 0xBF]);
    // "😀": n = 2 (surrogate pair), worst 6. realloc(0,0,1,2) -> 16 (next 18); first char
    // non-ASCII: realloc(16,2,1,6) -> 18 (next 24); encoded F0 9F 98 80; realloc(18,6,1,4) -> 18
    let (r, h) = store_str(Utf8, 16, &src_utf16("😀"));
    assert_eq!(r.unwrap(), (18, 4));
    assert_eq!(h.calls, vec![call(0, 0, 1, 2, 16), call(16, 2, 1, 6, 18), call(18, 6, 1, 4, 18)]);
    assert_eq!(bytes(&h, 18, 4), &[0xF0, 0x9F, 0x98, 0x80]);
}

#[test]
fn store_latin1_to_utf8_sequences() {
    // store_string_to_utf8(cx, src, n, worst = 2n)
    // "\u{80}b": n = 2, worst 4: realloc(0,0,1,2) -> 16; U+0080 at i = 0: realloc(16,2,1,4)
    // -> 18; encoded C2 80 62 (3); 4 > 3: realloc(18,4,1,3) -> 18
    let (r, h) = store_str(Utf8, 16, &src_latin1("\u{80}b"));
    assert_eq!(r.unwrap(), (18, 3));
    assert_eq!(h.calls, vec![call(0, 0, 1, 2, 16), call(16, 2, 1, 4, 18), call(18, 4, 1, 3, 18)]);
    assert_eq!(bytes(&h, 18, 3), &[0xC2, 0x80, 0x62]);
    // "ab\u{ef}c": n = 4, worst 8: realloc(0,0,1,4) -> 16 (next 20); 'a','b'; U+00EF at i = 2:
    // realloc(16,4,1,8) -> 20 (next 28); encoded 61 62 C3 AF 63 (5); realloc(20,8,1,5) -> 20
    let (r, h) = store_str(Utf8, 16, &src_latin1("ab\u{ef}c"));
    assert_eq!(r.unwrap(), (20, 5));
    assert_eq!(h.calls, vec![call(0, 0, 1, 4, 16), call(16, 4, 1, 8, 20), call(20, 8, 1, 5, 20)]);
    assert_eq!(bytes(&h, 20, 5), &[0x61, 0x62, 0xC3, 0xAF, 0x63]);
    // "\u{ff}\u{ff}": encoded C3 BF C3 BF = 4 = worst: no shrinking realloc
    let (r, h) = store_str(Utf8, 16, &src_latin1("\u{ff}\u{ff}"));
    assert_eq!(r.unwrap(), (18, 4));
    assert_eq!(h.calls, vec![call(0, 0, 1, 2, 16), call(16, 2, 1, 4, 18)]);
    // all ASCII: one realloc, result (ptr, n)
    let (r, h) = store_str(Utf8, 16, &src_latin1("abc"));
    assert_eq!(r.unwrap(), (16, 3));
    assert_eq!(h.calls, vec![call(0, 0, 1, 3, 16)]);
}

#[test]
fn store_utf8_to_utf16_sequences() {
    // store_utf8_to_utf16: realloc(0,0,2,2n); if encoded < 2n: realloc(ptr,2n,2,encoded)
    // "hi": n = 2 -> 4 bytes = 2n, no shrink; result (ptr, 2 code units)
    let (r, h) = store_str(Utf16, 16, &src_utf8("hi"));
    assert_eq!(r.unwrap(), (16, 2));
    assert_eq!(h.calls, vec![call(0, 0, 2, 4, 16)]);
    assert_eq!(bytes(&h, 16, 4), &[0x68, 0, 0x69, 0]);
    // "é": n = 2 (C3 A9) -> worst 4; encoded E9 00 (2): realloc(16,4,2,2) -> 16; 1 code unit
    let (r, h) = store_str(Utf16, 16, &src_utf8("é"));
    assert_eq!(r.unwrap(), (16, 1));
    assert_eq!(h.calls, vec![call(0, 0, 2, 4, 16), call(16, 4, 2, 2, 16)]);
    // "😀": n = 4 -> worst 8; encoded 3D D8 00 DE (4): realloc(16,8,2,4) -> 16; 2 code units
    let (r, h) = store_str(Utf16, 16, &src_utf8("😀"));
    assert_eq!(r.unwrap(), (16, 2));
    assert_eq!(h.calls, vec![call(0, 0, 2, 8, 16), call(16, 8, 2, 4, 16)]);
    assert_eq!(bytes(&h, 16, 4), &[0x3D, 0xD8, 0x00, 0xDE]);
    // base 17: the first realloc asks for alignment 2 -> 18
    let (r, h) = store_str(Utf16, 17, &src_utf8("hi"));
    assert_eq!(r.unwrap(), (18, 2));
    assert_eq!(h.calls, vec![call(0, 0, 2, 4, 18)]);
}

#[test]
fn store_string_to_latin1_or_utf16_sequences() {
    // from utf8, n = UTF-8 bytes. realloc(0,0,2,n)
    // "hi": all Latin-1, 2 bytes = n -> no shrink
    let (r, h) = store_str(Latin1Utf16, 16, &src_utf8("hi"));
    assert_eq!(r.unwrap(), (16, 2));
    assert_eq!(h.calls, vec![call(0, 0, 2, 2, 16)]);
    // "é": n = 2, one Latin-1 byte E9 -> dst_byte_length 1 < 2: realloc(16,2,2,1) -> 16
    let (r, h) = store_str(Latin1Utf16, 16, &src_utf8("é"));
    assert_eq!(r.unwrap(), (16, 1));
    assert_eq!(h.calls, vec![call(0, 0, 2, 2, 16), call(16, 2, 2, 1, 16)]);
    assert_eq!(bytes(&h, 16, 1), &[0xE9]);
    // "xy\u{1ff}": n = 4. realloc(0,0,2,4) -> 16 (next 20); 'x','y' as Latin-1; U+01FF:
    // realloc(16,4,2,8) -> 20 (next 28); inflate "xy" in place; encoded 78 00 79 00 FF 01 (6);
    // 8 > 6: realloc(20,8,2,6) -> 20; tagged 3 | UTF16_TAG
    let (r, h) = store_str(Latin1Utf16, 16, &src_utf8("xy\u{1ff}"));
    assert_eq!(r.unwrap(), (20, 3 | TAG));
    assert_eq!(h.calls, vec![call(0, 0, 2, 4, 16), call(16, 4, 2, 8, 20), call(20, 8, 2, 6, 20)]);
    assert_eq!(bytes(&h, 20, 6), &[0x78, 0, 0x79, 0, 0xFF, 0x01]);
    // "😀" from utf8: n = 4: realloc(0,0,2,4) -> 16; realloc(16,4,2,8) -> 20; encoded 4 bytes:
    // realloc(20,8,2,4) -> 20; 2 | tag
    let (r, h) = store_str(Latin1Utf16, 16, &src_utf8("😀"));
    assert_eq!(r.unwrap(), (20, 2 | TAG));
    assert_eq!(h.calls, vec![call(0, 0, 2, 4, 16), call(16, 4, 2, 8, 20), call(20, 8, 2, 4, 20)]);
    // from utf16, n = UTF-16 code units
    // "\u{80}b": n = 2, all Latin-1, 2 bytes = n -> one realloc
    let (r, h) = store_str(Latin1Utf16, 16, &src_utf16("\u{80}b"));
    assert_eq!(r.unwrap(), (16, 2));
    assert_eq!(h.calls, vec![call(0, 0, 2, 2, 16)]);
    assert_eq!(bytes(&h, 16, 2), &[0x80, 0x62]);
    // "abcdef\u{f123}": n = 7: realloc(0,0,2,7) -> 16 (next 23); 6 Latin-1 bytes; U+F123:
    // realloc(16,7,2,14) -> align_to(23,2) = 24 (next 38); encoded 14 bytes = worst: no shrink
    let (r, h) = store_str(Latin1Utf16, 16, &src_utf16("abcdef\u{f123}"));
    assert_eq!(r.unwrap(), (24, 7 | TAG));
    assert_eq!(h.calls, vec![call(0, 0, 2, 7, 16), call(16, 7, 2, 14, 24)]);
    assert_eq!(bytes(&h, 24, 14), utf16le("abcdef\u{f123}").as_slice());
    // "😀" from utf16: n = 2: realloc(0,0,2,2) -> 16 (next 18); realloc(16,2,2,4) -> 18;
    // encoded 4 = worst -> no shrink
    let (r, h) = store_str(Latin1Utf16, 16, &src_utf16("😀"));
    assert_eq!(r.unwrap(), (18, 2 | TAG));
    assert_eq!(h.calls, vec![call(0, 0, 2, 2, 16), call(16, 2, 2, 4, 18)]);
}

#[test]
fn store_probably_utf16_to_latin1_or_utf16_sequences() {
    // src latin1+utf16 tagged (UTF-16): realloc(0,0,2,2n) and copy
    // "xy\u{1ff}": a code point >= 256 -> done, tagged, no shrink
    let (r, h) = store_str(Latin1Utf16, 16, &src_tagged("xy\u{1ff}"));
    assert_eq!(r.unwrap(), (16, 3 | TAG));
    assert_eq!(h.calls, vec![call(0, 0, 2, 6, 16)]);
    assert_eq!(bytes(&h, 16, 6), &[0x78, 0, 0x79, 0, 0xFF, 0x01]);
    // "\u{80}b": all Latin-1 -> compact in place, realloc(ptr, 2n, 1, n) with alignment 1
    let (r, h) = store_str(Latin1Utf16, 16, &src_tagged("\u{80}b"));
    assert_eq!(r.unwrap(), (16, 2));
    assert_eq!(h.calls, vec![call(0, 0, 2, 4, 16), call(16, 4, 1, 2, 16)]);
    assert_eq!(bytes(&h, 16, 2), &[0x80, 0x62]);
    // "" tagged: realloc(0,0,2,0) -> 16; no char >= 256 -> realloc(16,0,1,0) -> 16
    let (r, h) = store_str(Latin1Utf16, 16, &src_tagged(""));
    assert_eq!(r.unwrap(), (16, 0));
    assert_eq!(h.calls, vec![call(0, 0, 2, 0, 16), call(16, 0, 1, 0, 16)]);
}

#[test]
fn store_string_empty_still_calls_realloc() {
    // every store path allocates even for 0 code units (store_string_copy / _to_utf8 /
    // _utf8_to_utf16 / _to_latin1_or_utf16): one realloc(0,0,align,0)
    for (dst, src, align) in [
        (Utf8, src_utf8(""), 1),
        (Utf8, src_utf16(""), 1),
        (Utf8, src_latin1(""), 1),
        (Utf16, src_utf8(""), 2),
        (Utf16, src_utf16(""), 2),
        (Latin1Utf16, src_utf8(""), 2),
        (Latin1Utf16, src_utf16(""), 2),
        (Latin1Utf16, src_latin1(""), 2),
    ] {
        let (r, h) = store_str(dst, 17, &src);
        let want = if align == 2 { 18 } else { 17 };
        assert_eq!(r.unwrap(), (want, 0), "{dst} <- {:?}", src.encoding);
        assert_eq!(h.calls, vec![call(0, 0, align, 0, want)], "{dst} <- {:?}", src.encoding);
    }
}

#[test]
fn store_string_to_latin1_or_utf16_i64_memory_tag() {
    // utf16_tag('i64') = 1 << 63 on the tagged result.
    // "€" from utf8 (n = 3): realloc(0,0,2,3) -> 16 (next 19); U+20AC: realloc(16,3,2,6) -> 20
    // (next 26); encoded AC 20 (2); 6 > 2: realloc(20,6,2,2) -> 20; 1 | 1<<63
    let mut m = Mem64(BumpHeap::new(65536, 16));
    let r = with_cx(&mut m, Latin1Utf16, |cx| store_string_into_range(cx, &src_utf8("€")));
    assert_eq!(r.unwrap(), (20, 1 | 1 << 63));
    assert_eq!(m.0.calls, vec![call(0, 0, 2, 3, 16), call(16, 3, 2, 6, 20), call(20, 6, 2, 2, 20)]);
}

#[test]
fn store_string_realloc_result_checks() {
    // store_string_copy: trap_if(ptr != align_to(ptr, 2)) before the bounds check
    let mut m = Scripted::new(65536, &[1]);
    let r = with_cx(&mut m, Utf16, |cx| store_string_into_range(cx, &src_utf16("hi")));
    assert_eq!(kind(r), TrapKind::ReallocMisaligned);
    let mut m = Scripted::new(65536, &[0xFFFF_FFFF]);
    let r = with_cx(&mut m, Utf16, |cx| store_string_into_range(cx, &src_utf16("hi")));
    assert_eq!(kind(r), TrapKind::ReallocMisaligned);
    // utf8 copy: alignment 1, only bounds: 65534 + 2 fits, 65535 + 2 does not
    let mut m = Scripted::new(65536, &[65534]);
    let r = with_cx(&mut m, Utf8, |cx| store_string_into_range(cx, &src_utf8("hi")));
    assert_eq!(r.unwrap(), (65534, 2));
    assert_eq!(&m.bytes[65534..], b"hi");
    let mut m = Scripted::new(65536, &[65535]);
    let r = with_cx(&mut m, Utf8, |cx| store_string_into_range(cx, &src_utf8("hi")));
    assert_eq!(kind(r), TrapKind::ReallocOutOfBounds);
    // store_utf8_to_utf16: misaligned first realloc
    let mut m = Scripted::new(65536, &[3]);
    let r = with_cx(&mut m, Utf16, |cx| store_string_into_range(cx, &src_utf8("hi")));
    assert_eq!(kind(r), TrapKind::ReallocMisaligned);
    assert_eq!(m.calls, vec![(0, 0, 2, 4)]);
    // store_string_to_latin1_or_utf16: misaligned first realloc, even for an empty string
    let mut m = Scripted::new(65536, &[5]);
    let r = with_cx(&mut m, Latin1Utf16, |cx| store_string_into_range(cx, &src_utf8("")));
    assert_eq!(kind(r), TrapKind::ReallocMisaligned);
    // store_string_to_utf8: the grown block is bounds-checked (second realloc 65530 + 6 > ..)
    let mut m = Scripted::new(65536, &[16, 65531]);
    let r = with_cx(&mut m, Utf8, |cx| store_string_into_range(cx, &src_utf16("😀")));
    assert_eq!(kind(r), TrapKind::ReallocOutOfBounds);
    assert_eq!(m.calls, vec![(0, 0, 1, 2), (16, 2, 1, 6)]);
}

#[test]
fn store_probably_utf16_to_latin1_or_utf16_final_realloc_not_alignment_checked() {
    // definitions.py: `ptr = realloc(ptr, src_byte_length, 1, latin1_size)` followed only by
    // `trap_if(ptr + latin1_size > len(memory))` -- no alignment check, although a
    // latin1+utf16 string must be 2-aligned when lifted (load_string_from_range). Spec quirk.
    let mut m = Scripted::new(64, &[16, 17]);
    let r = with_cx(&mut m, Latin1Utf16, |cx| store_string_into_range(cx, &src_tagged("ab")));
    assert_eq!(r.unwrap(), (17, 2));
    assert_eq!(m.calls, vec![(0, 0, 2, 4), (16, 4, 1, 2)]);
    let r = with_cx(&mut m, Latin1Utf16, |cx| load_string_from_range(cx, 17, 2));
    assert_eq!(kind(r), TrapKind::MisalignedPointer);
    // ... but it is bounds-checked
    let mut m = Scripted::new(64, &[16, 63]);
    let r = with_cx(&mut m, Latin1Utf16, |cx| store_string_into_range(cx, &src_tagged("ab")));
    assert_eq!(kind(r), TrapKind::ReallocOutOfBounds);
}

#[test]
fn store_string_round_trips_fun_strings() {
    // run_tests.py test_string: every fun string, from every source encoding (latin1+utf16 both
    // as Latin-1 when possible and as tagged UTF-16) to every destination, re-lifts to the same
    // text.
    let fun_strings = [
        "",
        "a",
        "hi",
        "\x00",
        "a\x00b",
        "\u{80}",
        "\u{80}b",
        "ab\u{ef}c",
        "\u{1ff}y",
        "xy\u{1ff}",
        "a\u{d7ff}b",
        "a\u{2ff}\u{3ff}\u{4ff}bc",
        "\u{f123}",
        "\u{f123}\u{f123}abc",
        "abcdef\u{f123}",
        "😀",
    ];
    for s in fun_strings {
        let mut sources: Vec<(StringEncoding, Vec<u8>, u64)> = vec![
            (Utf8, s.as_bytes().to_vec(), s.len() as u64),
            (Utf16, utf16le(s), s.encode_utf16().count() as u64),
            (Latin1Utf16, utf16le(s), s.encode_utf16().count() as u64 | TAG),
        ];
        if let Some(l1) = latin1(s) {
            let n = l1.len() as u64;
            sources.push((Latin1Utf16, l1, n));
        }
        for (src_enc, encoded, tagged) in sources {
            let lifted = lift_str(&encoded, src_enc, 0, tagged).unwrap();
            assert_eq!(lifted, HostString { text: s.into(), encoding: src_enc, tagged_code_units: tagged });
            for dst in StringEncoding::ALL {
                let mut h = BumpHeap::new(65536, 16);
                let back = with_cx(&mut h, dst, |cx| {
                    let (ptr, tagged) = store_string_into_range(cx, &lifted)?;
                    load_string_from_range(cx, ptr, tagged)
                });
                assert_eq!(back.unwrap().text, s, "{src_enc} -> {dst}: {s:?}");
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Lists

#[test]
fn load_list_test_heap_vectors() {
    use ValType::*;
    let l = |t: ValType, args: &[u32], mem: &[u8]| lift_heap(&ValType::list(t), i32s(args), mem);
    let u8s = |vs: &[u8]| Value::List(vs.iter().map(|&v| Value::U8(v)).collect());
    // run_tests.py test_heap
    assert_eq!(
        l(Bool, &[3, 3], &[0xff, 0xff, 0xff, 1, 0, 1]).unwrap(),
        Value::List(vec![Value::Bool(true), Value::Bool(false), Value::Bool(true)])
    );
    assert_eq!(
        l(U16, &[0, 3], &[1, 0, 2, 0, 3, 0]).unwrap(),
        Value::List(vec![Value::U16(1), Value::U16(2), Value::U16(3)])
    );
    assert_eq!(kind(l(U16, &[1, 3], &[0, 1, 0, 2, 0, 3, 0])), TrapKind::MisalignedPointer);
    assert_eq!(
        l(S16, &[0, 3], &[0xff, 0xff, 0xfe, 0xff, 0xfd, 0xff]).unwrap(),
        Value::List(vec![Value::S16(-1), Value::S16(-2), Value::S16(-3)])
    );
    assert_eq!(
        l(Char, &[0, 3], &[65, 0, 0, 0, 66, 0, 0, 0, 99, 0, 0, 0]).unwrap(),
        Value::List(vec![Value::Char('A'), Value::Char('B'), Value::Char('c')])
    );
    let strs = l(
        String,
        &[0, 2],
        &[16, 0, 0, 0, 2, 0, 0, 0, 21, 0, 0, 0, 3, 0, 0, 0, b'h', b'i', 0xf, 0xf, 0xf, b'w', b'a', b't'],
    )
    .unwrap();
    assert_eq!(strs, Value::List(vec![Value::string("hi"), Value::string("wat")]));
    let nested = l(
        ValType::list(U8),
        &[0, 3],
        &[24, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 27, 0, 0, 0, 2, 0, 0, 0, 3, 4, 5, 6, 7],
    )
    .unwrap();
    assert_eq!(nested, Value::List(vec![u8s(&[3, 4, 5]), u8s(&[]), u8s(&[6, 7])]));
    assert_eq!(
        kind(l(ValType::list(U16), &[0, 1], &[9, 0, 0, 0, 2, 0, 0, 0, 0, 5, 0, 6, 0])),
        TrapKind::MisalignedPointer
    );
    let tup = l(
        tuple([U8, U16, U8, U32]),
        &[0, 2],
        &[6, 0xff, 7, 0, 8, 0xff, 0xff, 0xff, 9, 0, 0, 0, 4, 0xff, 5, 0, 6, 0xff, 0xff, 0xff, 7, 0, 0, 0],
    )
    .unwrap();
    let t4 = |a, b, c, d| Value::tuple([Value::U8(a), Value::U16(b), Value::U8(c), Value::U32(d)]);
    assert_eq!(tup, Value::List(vec![t4(6, 7, 8, 9), t4(4, 5, 6, 7)]));
    let un =
        l(union([U32, U8]), &[0, 2], &[0, 0xff, 0xff, 0xff, 0, 1, 0, 0, 1, 0xff, 0xff, 0xff, 42, 0xff, 0xff, 0xff])
            .unwrap();
    assert_eq!(un, Value::List(vec![Value::case("0", Some(Value::U32(256))), Value::case("1", Some(Value::U8(42)))]));
    let t = tuple([union([U8, tuple([U16, U8])]), U8]);
    let v = l(t, &[0, 2], &[1, 0xff, 5, 0, 6, 0xff, 7, 0xff, 0, 0xff, 8, 0xff, 0xff, 0xff, 9, 0xff]).unwrap();
    assert_eq!(
        v,
        Value::List(vec![
            Value::tuple([Value::case("1", Some(Value::tuple([Value::U16(5), Value::U8(6)]))), Value::U8(7)]),
            Value::tuple([Value::case("0", Some(Value::U8(8))), Value::U8(9)]),
        ])
    );
}

#[test]
fn load_list_from_range_traps_in_order() {
    use ValType::*;
    let l = |t: ValType, ptr: u32, len: u32| lift_heap(&ValType::list(t), i32s(&[ptr, len]), &[0; 64]);
    assert_eq!(MAX_LIST_BYTE_LENGTH, (1 << 28) - 1);
    // length * elem_size > MAX_LIST_BYTE_LENGTH is checked first (before alignment)
    assert_eq!(kind(l(U32, 1, 1 << 26)), TrapKind::ListTooLong); // 2^28 bytes
    assert_eq!(kind(l(U32, 1, (1 << 26) - 1)), TrapKind::MisalignedPointer);
    assert_eq!(kind(l(U32, 0, (1 << 26) - 1)), TrapKind::OutOfBounds);
    assert_eq!(kind(l(U8, 0, 1 << 28)), TrapKind::ListTooLong);
    assert_eq!(kind(l(U8, 0, (1 << 28) - 1)), TrapKind::OutOfBounds);
    // no 32-bit wrap-around: 0xffffffff * 8 bytes is too long, not small
    assert_eq!(kind(l(U64, 0, u32::MAX)), TrapKind::ListTooLong);
    // empty lists still get the alignment and bounds checks
    assert_eq!(kind(l(U32, 2, 0)), TrapKind::MisalignedPointer);
    assert_eq!(l(U32, 64, 0).unwrap(), Value::List(vec![]));
    assert_eq!(kind(l(U8, 65, 0)), TrapKind::OutOfBounds);
    // last element ending exactly at the end of memory
    assert_eq!(l(U32, 60, 1).unwrap(), Value::List(vec![Value::U32(0)]));
    assert_eq!(kind(l(U32, 60, 2)), TrapKind::OutOfBounds);
}

#[test]
fn store_list_into_range_empty_list_calls_realloc() {
    use ValType::*;
    // values/realloc.wast: an empty list<u8> is lowered with realloc(0, 0, 1, 0)
    let mut h = BumpHeap::new(65536, 16);
    let r = with_cx(&mut h, Utf8, |cx| lower_flat(cx, &Value::List(vec![]), &ValType::list(U8)));
    assert_eq!(r.unwrap(), i32s(&[16, 0]));
    assert_eq!(h.calls, vec![call(0, 0, 1, 0, 16)]);
    // alignment(elem) is passed: list<u64> empty -> realloc(0,0,8,0); base 17 -> 24
    let mut h = BumpHeap::new(65536, 17);
    let r = with_cx(&mut h, Utf8, |cx| store_list_into_range(cx, &[], &U64));
    assert_eq!(r.unwrap(), (24, 0));
    assert_eq!(h.calls, vec![call(0, 0, 8, 0, 24)]);
}

#[test]
fn store_list_into_range_one_realloc_per_list_preorder() {
    use ValType::*;
    // list<list<u8>> [[1,2],[3]]: the outer buffer (2 * 8 bytes, align 4) first, then each
    // element in order: realloc(0,0,4,16) -> 16 (next 32); realloc(0,0,1,2) -> 32 (next 34);
    // realloc(0,0,1,1) -> 34
    let vs = [Value::List(vec![Value::U8(1), Value::U8(2)]), Value::List(vec![Value::U8(3)])];
    let mut h = BumpHeap::new(65536, 16);
    let r = with_cx(&mut h, Utf8, |cx| store_list_into_range(cx, &vs, &ValType::list(U8)));
    assert_eq!(r.unwrap(), (16, 2));
    assert_eq!(h.calls, vec![call(0, 0, 4, 16, 16), call(0, 0, 1, 2, 32), call(0, 0, 1, 1, 34)]);
    assert_eq!(bytes(&h, 16, 16), &[32, 0, 0, 0, 2, 0, 0, 0, 34, 0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(bytes(&h, 32, 3), &[1, 2, 3]);
}

#[test]
fn store_list_into_range_realloc_result_checks() {
    use ValType::*;
    let store = |elem: ValType, n: usize, reply: u64| {
        let mut m = Scripted::new(65536, &[reply]);
        let vs: Vec<Value> =
            (0..n).map(|i| if elem == U8 { Value::U8(i as u8) } else { Value::U32(i as u32) }).collect();
        let r = with_cx(&mut m, Utf8, |cx| store_list_into_range(cx, &vs, &elem));
        (r, m.calls)
    };
    // values/realloc.wast OobRealloc: empty list<u8>, realloc returns -1 -> out of bounds
    let (r, calls) = store(U8, 0, 0xFFFF_FFFF);
    assert_eq!(kind(r), TrapKind::ReallocOutOfBounds);
    assert_eq!(calls, vec![(0, 0, 1, 0)]);
    // MisalignedRealloc: list<u32> [x], realloc returns 2
    let (r, calls) = store(U32, 1, 2);
    assert_eq!(kind(r), TrapKind::ReallocMisaligned);
    assert_eq!(calls, vec![(0, 0, 4, 4)]);
    // HostOobRealloc: -4 is 4-aligned, the bounds check trips, also for size 0
    assert_eq!(kind(store(U32, 2, 0xFFFF_FFFC).0), TrapKind::ReallocOutOfBounds);
    assert_eq!(kind(store(U32, 0, 0xFFFF_FFFC).0), TrapKind::ReallocOutOfBounds);
    // HostMisalignedRealloc: -1 fails the alignment check before the bounds check
    assert_eq!(kind(store(U32, 2, 0xFFFF_FFFF).0), TrapKind::ReallocMisaligned);
    // an empty list may sit exactly at the end of memory, not one past it
    assert_eq!(store(U32, 0, 65536).0.unwrap(), (65536, 0));
    assert_eq!(kind(store(U8, 0, 65537).0), TrapKind::ReallocOutOfBounds);
    // the last byte fits exactly
    assert_eq!(store(U32, 2, 65528).0.unwrap(), (65528, 2));
    assert_eq!(kind(store(U32, 2, 65532).0), TrapKind::ReallocOutOfBounds);
}

// ------------------------------------------------------------------------------------------
// lift_flat_values / lower_flat_values (spilled tuples)

#[test]
fn lift_flat_values_17_params_through_one_pointer() {
    use ValType::*;
    // 17 u8 params flatten to 17 > MAX_FLAT_PARAMS: one pointer to tuple<u8 x 17> (size 17, align 1)
    let mut mem = vec![0u8; 200];
    for i in 0..17 {
        mem[101 + i] = i as u8 + 1;
    }
    let mut h = heap_with(&mem);
    let ts = vec![U8; 17];
    let mut vi = CoreValueIter::new(i32s(&[101]));
    let r = with_cx(&mut h, Utf8, |cx| lift_flat_values(cx, MAX_FLAT_PARAMS, &mut vi, &ts));
    assert_eq!(r.unwrap(), (1..=17).map(Value::U8).collect::<Vec<_>>());
    assert!(vi.done());
    // 16 params are passed flat
    let ts = vec![U8; 16];
    let mut vi = CoreValueIter::new(i32s(&[7; 16]));
    let r = with_cx(&mut h, Utf8, |cx| lift_flat_values(cx, MAX_FLAT_PARAMS, &mut vi, &ts));
    assert_eq!(r.unwrap(), vec![Value::U8(7); 16]);
}

#[test]
fn lift_flat_values_checks_tuple_pointer() {
    use ValType::*;
    // tuple<u32 x 17>: align 4, size 68. values/alignment.wast CallerArgptr: ptr 1 traps
    let ts = vec![U32; 17];
    let lv = |ptr: u32| {
        let mut h = BumpHeap::new(200, 0);
        let mut vi = CoreValueIter::new(i32s(&[ptr]));
        with_cx(&mut h, Utf8, |cx| lift_flat_values(cx, MAX_FLAT_PARAMS, &mut vi, &ts))
    };
    assert_eq!(kind(lv(1)), TrapKind::MisalignedPointer);
    assert_eq!(kind(lv(2)), TrapKind::MisalignedPointer);
    assert_eq!(lv(132).unwrap().len(), 17); // 132 + 68 = 200
    assert_eq!(kind(lv(136)), TrapKind::OutOfBounds);
    // results: MAX_FLAT_RESULTS = 1, tuple<u32,u32> returned by pointer (CalleeRetptr: 1 traps)
    let rt = vec![tuple([U32, U32])];
    let mut h = BumpHeap::new(64, 0);
    let mut vi = CoreValueIter::new(i32s(&[1]));
    let r = with_cx(&mut h, Utf8, |cx| lift_flat_values(cx, MAX_FLAT_RESULTS, &mut vi, &rt));
    assert_eq!(kind(r), TrapKind::MisalignedPointer);
}

#[test]
fn lower_flat_values_spill_reallocs_tuple_first() {
    use ValType::*;
    // 16 x u32 + string = 18 flat values > 16: tuple size 16*4 = 64, string at 64 (+8) = 72,
    // align 4. realloc(0,0,4,72) -> 16 (next 88) comes first, then the string's
    // realloc(0,0,1,2) -> 88.
    let mut ts = vec![U32; 16];
    ts.push(String);
    let mut vs: Vec<Value> = (1..=16).map(Value::U32).collect();
    vs.push(Value::string("hi"));
    let mut h = BumpHeap::new(65536, 16);
    let r = with_cx(&mut h, Utf8, |cx| lower_flat_values(cx, MAX_FLAT_PARAMS, &vs, &ts, SpillTo::Realloc));
    assert_eq!(r.unwrap(), i32s(&[16]));
    assert_eq!(h.calls, vec![call(0, 0, 4, 72, 16), call(0, 0, 1, 2, 88)]);
    assert_eq!(bytes(&h, 16, 4), &[1, 0, 0, 0]);
    assert_eq!(bytes(&h, 76, 4), &[16, 0, 0, 0]);
    assert_eq!(bytes(&h, 80, 8), &[88, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(bytes(&h, 88, 2), b"hi");
    // 16 x u32 + u8: size 65 -> 68, align 4; base 17 -> align_to(17,4) = 20
    let mut ts = vec![U32; 16];
    ts.push(U8);
    let mut vs: Vec<Value> = (1..=16).map(Value::U32).collect();
    vs.push(Value::U8(99));
    let mut h = BumpHeap::new(65536, 17);
    let r = with_cx(&mut h, Utf8, |cx| lower_flat_values(cx, MAX_FLAT_PARAMS, &vs, &ts, SpillTo::Realloc));
    assert_eq!(r.unwrap(), i32s(&[20]));
    assert_eq!(h.calls, vec![call(0, 0, 4, 68, 20)]);
    assert_eq!(bytes(&h, 84, 1), &[99]);
}

#[test]
fn lower_flat_values_checks_tuple_pointer() {
    use ValType::*;
    let ts = vec![U32; 17];
    let vs: Vec<Value> = (0..17).map(Value::U32).collect();
    // values/alignment.wast CalleeArgptr: realloc returning 1 for the spilled params traps
    for (reply, want) in
        [(1, TrapKind::ReallocMisaligned), (2, TrapKind::ReallocMisaligned), (65472, TrapKind::ReallocOutOfBounds)]
    {
        let mut m = Scripted::new(65536, &[reply]);
        let r = with_cx(&mut m, Utf8, |cx| lower_flat_values(cx, MAX_FLAT_PARAMS, &vs, &ts, SpillTo::Realloc));
        assert_eq!(kind(r), want, "realloc -> {reply}");
        assert_eq!(m.calls, vec![(0, 0, 4, 68)]);
    }
    let mut m = Scripted::new(65536, &[65468]);
    let r = with_cx(&mut m, Utf8, |cx| lower_flat_values(cx, MAX_FLAT_PARAMS, &vs, &ts, SpillTo::Realloc));
    assert_eq!(r.unwrap(), i32s(&[65468]));
    // results through the caller's out-param (CallerRetptr: retptr 1 traps); no realloc
    let rt = vec![tuple([U32, U32])];
    let rv = vec![Value::tuple([Value::U32(5), Value::U32(6)])];
    let mut m = Scripted::new(64, &[]);
    let mut out = CoreValueIter::new(i32s(&[1]));
    let r = with_cx(&mut m, Utf8, |cx| lower_flat_values(cx, MAX_FLAT_RESULTS, &rv, &rt, SpillTo::OutParam(&mut out)));
    assert_eq!(kind(r), TrapKind::MisalignedPointer);
    let mut out = CoreValueIter::new(i32s(&[60]));
    let r = with_cx(&mut m, Utf8, |cx| lower_flat_values(cx, MAX_FLAT_RESULTS, &rv, &rt, SpillTo::OutParam(&mut out)));
    assert_eq!(kind(r), TrapKind::OutOfBounds);
    let mut out = CoreValueIter::new(i32s(&[8]));
    let r = with_cx(&mut m, Utf8, |cx| lower_flat_values(cx, MAX_FLAT_RESULTS, &rv, &rt, SpillTo::OutParam(&mut out)));
    assert_eq!(r.unwrap(), vec![]);
    assert_eq!(&m.bytes[8..16], &[5, 0, 0, 0, 6, 0, 0, 0]);
    assert!(m.calls.is_empty());
}

// ------------------------------------------------------------------------------------------
// Handles and resources (resources/handle-table.wast and the Table / ResourceHandle rules)

fn rt(id: u32, impl_instance: u32) -> ResourceType {
    ResourceType { id, name: format!("r{id}"), impl_instance: InstanceId(impl_instance) }
}

fn destructor(r: &ResourceType, rep: u32, local: bool) -> DropEffect {
    DropEffect::Destructor { rt: r.clone(), rep, local }
}

#[test]
fn table_add_reuses_freed_indices_lifo() {
    // resources/handle-table.wast, first component (Table.add / Table.remove)
    let r = rt(1, 0);
    let mut inst = ComponentInstance::new(InstanceId(0));
    assert_eq!(canon_resource_new(&mut inst, &r, 100), Ok(1));
    assert_eq!(canon_resource_new(&mut inst, &r, 200), Ok(2));
    assert_eq!(canon_resource_new(&mut inst, &r, 300), Ok(3));
    assert_eq!(canon_resource_drop(&mut inst, &r, 2), Ok(destructor(&r, 200, true)));
    assert_eq!(canon_resource_new(&mut inst, &r, 400), Ok(2));
    assert_eq!(canon_resource_rep(&inst, &r, 1), Ok(100));
    assert_eq!(canon_resource_rep(&inst, &r, 2), Ok(400));
    assert_eq!(canon_resource_rep(&inst, &r, 3), Ok(300));
    for i in [1, 2, 3] {
        canon_resource_drop(&mut inst, &r, i).unwrap();
    }
    assert_eq!(canon_resource_new(&mut inst, &r, 500), Ok(3));
    assert_eq!(canon_resource_new(&mut inst, &r, 600), Ok(2));
    assert_eq!(canon_resource_new(&mut inst, &r, 700), Ok(1));
    assert_eq!(canon_resource_rep(&inst, &r, 3), Ok(500));
    assert_eq!(canon_resource_rep(&inst, &r, 2), Ok(600));
    assert_eq!(canon_resource_rep(&inst, &r, 1), Ok(700));
    assert_eq!(canon_resource_new(&mut inst, &r, 800), Ok(4));
}

#[test]
fn table_get_unknown_indices_trap() {
    // resources/handle-table.wast $Traps: never allocated (5), dropped, 0, 0xffffffff
    let r = rt(1, 0);
    let mut inst = ComponentInstance::new(InstanceId(0));
    assert_eq!(kind(canon_resource_drop(&mut inst, &r, 5)), TrapKind::UnknownHandle);
    assert_eq!(kind(canon_resource_rep(&inst, &r, 5)), TrapKind::UnknownHandle);
    assert_eq!(canon_resource_new(&mut inst, &r, 100), Ok(1));
    canon_resource_drop(&mut inst, &r, 1).unwrap();
    assert_eq!(kind(canon_resource_drop(&mut inst, &r, 1)), TrapKind::UnknownHandle);
    assert_eq!(kind(canon_resource_drop(&mut inst, &r, 0)), TrapKind::UnknownHandle);
    assert_eq!(kind(canon_resource_drop(&mut inst, &r, 0xffff_ffff)), TrapKind::UnknownHandle);
    assert_eq!(kind(canon_resource_rep(&inst, &r, 0)), TrapKind::UnknownHandle);
    // lifting handles at a call: own-use-after-drop, borrow-never-valid (index 3)
    let mut h = BumpHeap::new(0, 0);
    let mut st = Subtask::default();
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut inst, BorrowScope::Subtask(&mut st));
    assert_eq!(kind(lift_own(&mut cx, 1, &ValType::Own(r.clone()))), TrapKind::UnknownHandle);
    assert_eq!(kind(lift_borrow(&mut cx, 3, &ValType::Borrow(r.clone()))), TrapKind::UnknownHandle);
    assert_eq!(kind(lift_own(&mut cx, 0xffff_ffff, &ValType::Own(r))), TrapKind::UnknownHandle);
}

#[test]
fn handle_tables_are_per_instance() {
    // ComponentInstance.handles is per instance (Table.get on another instance's table)
    // resources/handle-table.wast: an index of one instance is unknown in a sibling
    let r = rt(1, 0);
    let mut a = ComponentInstance::new(InstanceId(0));
    let mut b = ComponentInstance::new(InstanceId(1));
    assert_eq!(canon_resource_new(&mut a, &r, 100), Ok(1));
    assert_eq!(kind(canon_resource_drop(&mut b, &r, 1)), TrapKind::UnknownHandle);
}

#[test]
fn handle_type_confusion_traps() {
    // resources/handle-table.wast $WrongType: an R1 handle used as R2
    // (canon_resource_drop / canon_resource_rep / lift_own / lift_borrow: trap_if(h.rt is not rt))
    let (r1, r2) = (rt(1, 0), rt(2, 0));
    let mut inst = ComponentInstance::new(InstanceId(0));
    assert_eq!(canon_resource_new(&mut inst, &r1, 100), Ok(1));
    assert_eq!(kind(canon_resource_rep(&inst, &r2, 1)), TrapKind::HandleTypeMismatch);
    assert_eq!(kind(canon_resource_drop(&mut inst, &r2, 1)), TrapKind::HandleTypeMismatch);
    let mut inst = ComponentInstance::new(InstanceId(0));
    assert_eq!(canon_resource_new(&mut inst, &r1, 100), Ok(1));
    let mut h = BumpHeap::new(0, 0);
    let mut st = Subtask::default();
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut inst, BorrowScope::Subtask(&mut st));
    assert_eq!(kind(lift_borrow(&mut cx, 1, &ValType::Borrow(r2.clone()))), TrapKind::HandleTypeMismatch);
    assert_eq!(kind(lift_own(&mut cx, 1, &ValType::Own(r2))), TrapKind::HandleTypeMismatch);
}

#[test]
fn lift_own_moves_the_handle_out() {
    // lift_own: cx.inst.handles.remove(i) -> the index is free afterwards
    let r = rt(1, 0);
    let mut inst = ComponentInstance::new(InstanceId(0));
    assert_eq!(canon_resource_new(&mut inst, &r, 42), Ok(1));
    let mut h = BumpHeap::new(0, 0);
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut inst, BorrowScope::None);
    assert_eq!(lift_own(&mut cx, 1, &ValType::Own(r.clone())), Ok(42));
    assert_eq!(kind(lift_own(&mut cx, 1, &ValType::Own(r.clone()))), TrapKind::UnknownHandle);
    // lower_own into another instance adds an owning handle there (index 1 of its table)
    let mut b = ComponentInstance::new(InstanceId(1));
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut b, BorrowScope::None);
    assert_eq!(lower_own(&mut cx, 42, &ValType::Own(r.clone())), Ok(1));
    assert_eq!(canon_resource_rep(&b, &r, 1), Ok(42));
    // dropping an own handle outside the implementation runs the destructor remotely
    assert_eq!(canon_resource_drop(&mut b, &r, 1), Ok(destructor(&r, 42, false)));
}

#[test]
fn lift_own_of_a_lent_handle_traps() {
    // lift_borrow -> Subtask.add_lender: num_lends += 1; lift_own: trap_if(h.num_lends != 0);
    // canon_resource_drop: trap_if(h.num_lends != 0)
    let r = rt(1, 0);
    let setup = || {
        let mut inst = ComponentInstance::new(InstanceId(0));
        assert_eq!(canon_resource_new(&mut inst, &r, 42), Ok(1));
        inst
    };
    let mut inst = setup();
    let mut h = BumpHeap::new(0, 0);
    let mut st = Subtask::default();
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut inst, BorrowScope::Subtask(&mut st));
    assert_eq!(lift_borrow(&mut cx, 1, &ValType::Borrow(r.clone())), Ok(42));
    assert_eq!(kind(lift_own(&mut cx, 1, &ValType::Own(r.clone()))), TrapKind::HandleLent);

    let mut inst = setup();
    let mut st = Subtask::default();
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut inst, BorrowScope::Subtask(&mut st));
    assert_eq!(lift_borrow(&mut cx, 1, &ValType::Borrow(r.clone())), Ok(42));
    assert_eq!(kind(canon_resource_drop(&mut inst, &r, 1)), TrapKind::HandleLent);

    // Subtask.deliver_resolve: num_lends -= 1, after which the handle can move again
    let mut inst = setup();
    let mut st = Subtask::default();
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut inst, BorrowScope::Subtask(&mut st));
    assert_eq!(lift_borrow(&mut cx, 1, &ValType::Borrow(r.clone())), Ok(42));
    st.resolve(SubtaskState::Returned, vec![]).unwrap();
    st.deliver_resolve(&mut inst).unwrap();
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut inst, BorrowScope::None);
    assert_eq!(lift_own(&mut cx, 1, &ValType::Own(r)), Ok(42));
}

#[test]
fn lift_own_of_a_borrow_traps() {
    // lower_borrow into a non-implementing instance creates a borrow handle;
    // lift_own: trap_if(not h.own)
    let r = rt(1, 0);
    let mut b = ComponentInstance::new(InstanceId(1));
    let task = b.start_task();
    let mut h = BumpHeap::new(0, 0);
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut b, BorrowScope::Task(task));
    assert_eq!(lower_borrow(&mut cx, 42, &ValType::Borrow(r.clone())), Ok(1));
    assert_eq!(kind(lift_own(&mut cx, 1, &ValType::Own(r))), TrapKind::NotOwned);
}

#[test]
fn lower_borrow_into_implementing_instance_passes_rep() {
    // lower_borrow: `if cx.inst is t.rt.impl: return rep` (no handle, no num_borrows)
    let r = rt(1, 0);
    let mut a = ComponentInstance::new(InstanceId(0));
    let task = a.start_task();
    let mut h = BumpHeap::new(0, 0);
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut a, BorrowScope::Task(task));
    assert_eq!(lower_borrow(&mut cx, 42, &ValType::Borrow(r.clone())), Ok(42));
    assert_eq!(lower_flat(&mut cx, &Value::Handle(43), &ValType::Borrow(r)), Ok(i32s(&[43])));
    assert_eq!(a.handles.entries().count(), 0);
    assert_eq!(a.tasks[&task].num_borrows, 0);
    assert_eq!(a.task_return(task), Ok(()));
}

#[test]
fn task_return_traps_while_borrows_are_held() {
    // lower_borrow: num_borrows += 1; Task.return_: trap_if(self.num_borrows > 0);
    // canon_resource_drop of a borrow: borrow_scope.num_borrows -= 1
    let r = rt(1, 0);
    let mut b = ComponentInstance::new(InstanceId(1));
    let task = b.start_task();
    let mut h = BumpHeap::new(0, 0);
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut b, BorrowScope::Task(task));
    assert_eq!(lower_borrow(&mut cx, 42, &ValType::Borrow(r.clone())), Ok(1));
    assert_eq!(b.tasks[&task].num_borrows, 1);
    assert_eq!(kind(b.task_return(task)), TrapKind::BorrowNotDropped);
    assert_eq!(canon_resource_rep(&b, &r, 1), Ok(42));
    assert_eq!(canon_resource_drop(&mut b, &r, 1), Ok(DropEffect::None));
    assert_eq!(b.tasks[&task].num_borrows, 0);
    assert_eq!(b.task_return(task), Ok(()));
}

#[test]
fn resource_builtins_check_may_leave() {
    // canon_resource_new / canon_resource_drop: trap_if(not inst.may_leave) first;
    // canon_resource_rep has no may_leave check (values/post-return.wast)
    let r = rt(1, 0);
    let mut inst = ComponentInstance::new(InstanceId(0));
    assert_eq!(canon_resource_new(&mut inst, &r, 42), Ok(1));
    inst.may_leave = false;
    assert_eq!(kind(canon_resource_new(&mut inst, &r, 43)), TrapKind::MayNotLeave);
    assert_eq!(kind(canon_resource_drop(&mut inst, &r, 1)), TrapKind::MayNotLeave);
    // the may_leave check comes before the table lookup
    assert_eq!(kind(canon_resource_drop(&mut inst, &r, 0)), TrapKind::MayNotLeave);
    assert_eq!(canon_resource_rep(&inst, &r, 1), Ok(42));
}

// ------------------------------------------------------------------------------------------
// Additions: fixed-length lists (🔧), i64 slots narrowed to small types, and a spec question

#[test]
fn fixed_length_lists_are_inline() {
    use ValType::*;
    let t = List(Arc::new(U16), Some(3));
    // elem_size_list: 3 * 2 = 6; alignment_list: alignment(u16) = 2
    assert_eq!(size_align(&t), (6, 2));
    // load_list(maybe_length): load_list_from_valid_range at ptr itself, no (ptr, len) pair
    let mut h = heap_with(&[1, 0, 2, 0, 3, 0]);
    let v = with_cx(&mut h, Utf8, |cx| load(cx, 0, &t)).unwrap();
    assert_eq!(v, Value::List(vec![Value::U16(1), Value::U16(2), Value::U16(3)]));
    // lift_flat_list(maybe_length): each element lifted flat (u8 from 261 -> 5)
    let t = List(Arc::new(U8), Some(2));
    assert_eq!(lift(&t, i32s(&[261, 6])).unwrap(), Value::List(vec![Value::U8(5), Value::U8(6)]));
    // lower_flat_list(maybe_length): elements lowered in place, realloc never called
    let mut h = BumpHeap::new(65536, 16);
    let r = with_cx(&mut h, Utf8, |cx| lower_flat(cx, &Value::List(vec![Value::U8(5), Value::U8(6)]), &t));
    assert_eq!(r.unwrap(), i32s(&[5, 6]));
    assert!(h.calls.is_empty());
}

#[test]
fn lift_flat_variant_i64_slot_wrapped_before_small_types() {
    use ValType::*;
    // CoerceValueIter ('i64','i32') = wrap_i64_to_i32, then lift_flat of the case type:
    // bool from 1<<32 -> wrap -> 0 -> false; s32 from 0xffff_ffff_ffff_fffe -> 0xfffffffe -> -2;
    // u8 from 0x1_0000_0105 -> 0x105 -> 5
    let f = |t: &ValType, d: u32, x: u64| lift(t, vec![Flat::I32(d), Flat::I64(x)]).unwrap();
    let t = union([Bool, U64]);
    assert_eq!(f(&t, 0, 1 << 32), Value::case("0", Some(Value::Bool(false))));
    assert_eq!(f(&t, 0, (1 << 32) | 2), Value::case("0", Some(Value::Bool(true))));
    let t = union([S32, U64]);
    assert_eq!(f(&t, 0, 0xffff_ffff_ffff_fffe), Value::case("0", Some(Value::S32(-2))));
    let t = union([U8, U64]);
    assert_eq!(f(&t, 0, 0x1_0000_0105), Value::case("0", Some(Value::U8(5))));
}

#[test]
fn store_string_into_range_reads_source_tag_with_destination_ptr_type_spec_question() {
    // SPEC QUESTION (see report). definitions.py store_string_into_range:
    //   tag = utf16_tag(cx.opts.memory.ptr_type())      # the *destination* memory
    //   if bool(src_tagged_code_units & tag): ...        # the *source's* tagged length
    // A tagged UTF-16 string lifted from a 32-bit memory (tag 1<<31) and stored into a 64-bit
    // memory (tag 1<<63) is taken for Latin-1 with 2^31 + n code units. These expectations are
    // the literal spec computation, which the reference mirrors; they are not a claim that this
    // is the intended behaviour.
    //
    // i32 source "é€" (2 | 1<<31) into an i64 latin1+utf16 memory: 'latin1' branch,
    // store_string_copy(cx, src, 2^31 + 2, 1, 2, 'latin-1'): dst_byte_length = 2^31 + 2
    // <= REALLOC_I32_MAX, so realloc(0, 0, 2, 2^31 + 2) is called; the 64 KiB BumpHeap traps.
    let src = HostString { text: "é€".into(), encoding: Latin1Utf16, tagged_code_units: 2 | TAG };
    let mut m = Mem64(BumpHeap::new(65536, 16));
    let r = with_cx(&mut m, Latin1Utf16, |cx| store_string_into_range(cx, &src));
    assert_eq!(kind(r), TrapKind::GuestTrap);
    assert_eq!(
        m.0.calls,
        vec![ReallocCall { old_ptr: 0, old_size: 0, align: 2, new_size: (1 << 31) + 2, returned: None }]
    );
    // i64 source (2 | 1<<63) into an i32 memory: 'latin1' with 2^63 + 2 code units, and
    // store_string_copy's `assert(dst_byte_length <= REALLOC_I32_MAX)` fails: a spec `assert`
    // reachable from guest-controlled values.
    let src = HostString { text: "é€".into(), encoding: Latin1Utf16, tagged_code_units: 2 | 1 << 63 };
    let (r, h) = store_str(Latin1Utf16, 16, &src);
    assert_eq!(kind(r), TrapKind::Assertion);
    assert!(h.calls.is_empty());
}

#[test]
fn store_string_tagged_utf16_source_to_utf8_and_utf16() {
    // store_string_into_range: a tagged latin1+utf16 source has src_simple_encoding 'utf16'
    // and src_code_units = tagged ^ tag, so it takes the plain-UTF-16 paths.
    // utf8 <- tagged "xy\u{1ff}": store_utf16_to_utf8 with n = 3 (worst 9):
    // realloc(0,0,1,3) -> 16; realloc(16,3,1,9) -> 19; encoded 4 bytes: realloc(19,9,1,4) -> 19
    let (r, h) = store_str(Utf8, 16, &src_tagged("xy\u{1ff}"));
    assert_eq!(r.unwrap(), (19, 4));
    assert_eq!(h.calls, vec![call(0, 0, 1, 3, 16), call(16, 3, 1, 9, 19), call(19, 9, 1, 4, 19)]);
    // utf8 <- tagged "hi": all ASCII, one realloc(0,0,1,2)
    let (r, h) = store_str(Utf8, 16, &src_tagged("hi"));
    assert_eq!(r.unwrap(), (16, 2));
    assert_eq!(h.calls, vec![call(0, 0, 1, 2, 16)]);
    // utf16 <- tagged: store_string_copy(cx, src, 3, 2, 2, 'utf-16-le'); the result carries
    // no tag (plain utf16 has none); base 17 -> 18
    let (r, h) = store_str(Utf16, 17, &src_tagged("xy\u{1ff}"));
    assert_eq!(r.unwrap(), (18, 3));
    assert_eq!(h.calls, vec![call(0, 0, 2, 6, 18)]);
    assert_eq!(bytes(&h, 18, 6), &[0x78, 0, 0x79, 0, 0xFF, 0x01]);
}

#[test]
fn canon_options_required_by_lift_and_lower() {
    use witness::encode::signature::requirements;
    use witness::reference::flatten::Context;
    // CanonicalABI.md "canon lower" (component-model #670): a spilled result needs `memory`
    // (the caller's out-param), not `realloc`; only a string or list result needs realloc.
    let spilled = func(vec![], Some(tuple([ValType::U32, ValType::U32])));
    assert_eq!(requirements(&spilled, Context::Lower), (true, false));
    assert_eq!(requirements(&func(vec![], Some(ValType::String)), Context::Lower), (true, true));
    // Spilled or string params of an import: memory only (lower(param)).
    let many = func(vec![ValType::U8; 17], None);
    assert_eq!(requirements(&many, Context::Lower), (true, false));
    assert_eq!(requirements(&func(vec![ValType::list(ValType::U8)], None), Context::Lower), (true, false));
    // "canon lift": spilled params need realloc, a spilled result memory, a string result memory.
    assert_eq!(requirements(&many, Context::Lift), (true, true));
    assert_eq!(requirements(&spilled, Context::Lift), (true, false));
    assert_eq!(requirements(&func(vec![], Some(ValType::String)), Context::Lift), (true, false));
    // Nothing to point at: neither.
    assert_eq!(requirements(&func(vec![ValType::U64], Some(ValType::F64)), Context::Lower), (false, false));
}

/// A memory whose realloc records the instance's `may_leave` as it runs.
struct WatchesMayLeave {
    heap: BumpHeap,
    seen: Vec<bool>,
    inst: ComponentInstance,
}

impl witness::reference::context::InstanceMemory for WatchesMayLeave {
    fn memory(&self) -> &dyn Memory {
        &self.heap
    }
    fn memory_mut(&mut self) -> &mut dyn Memory {
        self.seen.push(self.inst.may_leave);
        &mut self.heap
    }
    fn inst(&mut self) -> &mut ComponentInstance {
        &mut self.inst
    }
}

#[test]
fn realloc_runs_with_may_leave_cleared_and_lowering_leaves_it_set() {
    // LiftLowerContext.reallocate (component-model #680): assert(may_leave), clear it around
    // the realloc call only, set it again; lower_flat_values no longer touches it.
    let mut m = WatchesMayLeave {
        heap: BumpHeap::new(1 << 16, 16),
        seen: vec![],
        inst: ComponentInstance::new(witness::reference::types::InstanceId(1)),
    };
    {
        let mut cx = LiftLowerContext::joined(Utf8, &mut m, BorrowScope::None);
        let strings = [Value::string("ab"), Value::string("c")];
        let ts = [ValType::String, ValType::String];
        lower_flat_values(&mut cx, 16, &strings, &ts, SpillTo::Realloc).unwrap();
        assert!(cx.inst().may_leave, "may_leave is set again after lowering");
    }
    // memory_mut is reached for each realloc (then may_leave is clear) and each write (then
    // it is set: before #680 it was clear for the whole lowering).
    assert_eq!(m.heap.calls.len(), 2);
    assert_eq!(m.seen.iter().filter(|&&set| !set).count(), 2, "{:?}", m.seen);
    assert!(m.seen.contains(&true), "{:?}", m.seen);
    // Entered with may_leave clear (a reentrant lowering): the spec's assert fails.
    m.inst.may_leave = false;
    let mut cx = LiftLowerContext::joined(Utf8, &mut m, BorrowScope::None);
    assert_eq!(kind(cx.allocate(1, 4)), TrapKind::Assertion);
}

#[test]
fn every_type_in_a_type_is_below_the_static_size_limit() {
    // Binary.md / Explainer.md (component-model #688): elem_size(t, 'i64') < 2^28 for every
    // defvaltype t, boundaries as in test/validation/max-value-size.wast.
    use witness::reference::validate::validate_type;
    let fixed = |t: ValType, n: u32| ValType::List(Arc::new(t), Some(n));
    let record = |a: ValType, b: ValType| ValType::record([("a", a), ("b", b)]);
    let valid = [
        fixed(ValType::U8, (1 << 28) - 1),
        fixed(ValType::U64, (1 << 25) - 1),
        fixed(ValType::String, (1 << 24) - 1), // 16 bytes per string with 64-bit pointers
        tuple([fixed(ValType::U8, (1 << 28) - 2), fixed(ValType::U8, 1)]),
        record(fixed(ValType::U8, (1 << 27) - 1), fixed(ValType::U8, 1 << 27)),
        fixed(fixed(ValType::U8, (1 << 27) - 1), 2),
        // Behind a pointer the outer type is small, and the inner one is at the limit.
        ValType::list(fixed(ValType::U8, (1 << 28) - 1)),
    ];
    for t in &valid {
        assert_eq!(validate_type(t), Ok(()), "{t:?}");
    }
    let invalid = [
        fixed(ValType::U8, 1 << 28),
        fixed(ValType::U64, 1 << 25),
        fixed(ValType::U64, 1 << 29), // 2^32 bytes: wraps to 0 in a 32-bit product
        tuple([fixed(ValType::U8, (1 << 28) - 1), fixed(ValType::U8, 1)]),
        record(fixed(ValType::U8, 1 << 27), fixed(ValType::U8, 1 << 27)),
        fixed(fixed(ValType::U8, (1 << 28) - 1), 2),
        fixed(ValType::String, 1 << 24), // passes with 32-bit pointers, fails with 64-bit
        // #688: the limit holds for nested types too, not only the root.
        ValType::list(fixed(ValType::U8, 1 << 28)),
        ValType::option(record(ValType::U8, fixed(ValType::U64, 1 << 25))),
    ];
    for t in &invalid {
        assert!(validate_type(t).is_err(), "{t:?}");
    }
}

#[test]
fn the_handle_asserts_of_the_spec_are_assertion_traps() {
    let r = rt(1, 0);
    let mut h = BumpHeap::new(0, 0);
    // lower_borrow: assert(isinstance(cx.borrow_scope, Task)), and the Task is a live object
    // (`h.borrow_scope.num_borrows += 1`): a task that is not running is no scope.
    let mut b = ComponentInstance::new(InstanceId(1));
    let task = b.start_task();
    b.task_exit(task);
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut b, BorrowScope::Task(task));
    assert_eq!(kind(lower_borrow(&mut cx, 42, &ValType::Borrow(r.clone()))), TrapKind::Assertion);
    assert_eq!(b.handles.entries().count(), 0, "no handle is made");
    // lift_borrow: the Subtask assertion comes before the table lookup, so a missing handle
    // outside a Subtask is an assertion, not unknown-handle.
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut b, BorrowScope::None);
    assert_eq!(kind(lift_borrow(&mut cx, 7, &ValType::Borrow(r.clone()))), TrapKind::Assertion);
    // canon_resource_drop of an own handle: assert(h.borrow_scope is None).
    let mut c = ComponentInstance::new(InstanceId(1));
    let task = c.start_task();
    let i = c.handles.add(witness::reference::handles::ResourceHandle::new(r.clone(), 5, true, Some(task))).unwrap();
    assert_eq!(kind(canon_resource_drop(&mut c, &r, i)), TrapKind::Assertion);
    // ... of a borrow: `h.borrow_scope.num_borrows -= 1` on its live task.
    let i = c.handles.add(witness::reference::handles::ResourceHandle::new(r.clone(), 6, false, Some(task))).unwrap();
    c.task_exit(task);
    assert_eq!(kind(canon_resource_drop(&mut c, &r, i)), TrapKind::Assertion);
}

// ---- map<K, V> (🗺️, component-model #554) -----------------------------------------------------

fn map(k: ValType, v: ValType) -> ValType {
    ValType::Map(Arc::new(k), Arc::new(v))
}

#[test]
fn a_map_despecializes_to_a_list_of_key_value_records() {
    // despecialize: MapType(k, v) -> ListType(despecialize(TupleType([k, v]))), and a tuple
    // despecializes to a record with fields "0", "1".
    let t = map(ValType::String, ValType::U32);
    let fields =
        vec![FieldType { label: "0".into(), t: ValType::String }, FieldType { label: "1".into(), t: ValType::U32 }];
    assert_eq!(despecialize(&t).into_owned(), ValType::List(Arc::new(ValType::Record(fields.into())), None));
    // So a map is laid out and flattened as a list: (ptr, len), 8 bytes, 4-aligned.
    assert_eq!(size_align(&t), (8, 4));
    assert_eq!(flatten_type(&t, I32P), [CI32, CI32]);
    // Its entries are records: string (8) + u32 (4) = 12 bytes per entry, 4-aligned; a u8 key
    // before a u64 value pads to 16.
    assert_eq!(size_align(&tuple([ValType::String, ValType::U32])), (12, 4));
    assert_eq!(size_align(&tuple([ValType::U8, ValType::U64])), (16, 8));
}

#[test]
fn a_map_is_lowered_as_its_list_of_entries_in_order_duplicates_kept() {
    // Explainer.md: the Component Model does not make keys unique or ordered; the list of
    // (key, value) pairs is what crosses. store_list: realloc(0, 0, alignment(entry) = 8,
    // 2 * 16), then each entry at 16-byte stride: u8 key at 0, u64 value at 8.
    let t = map(ValType::U8, ValType::U64);
    let entries =
        Value::List(vec![Value::tuple([Value::U8(7), Value::U64(1)]), Value::tuple([Value::U8(7), Value::U64(2)])]);
    let mut h = BumpHeap::new(1 << 16, 16);
    let flat = with_cx(&mut h, Utf8, |cx| lower_flat(cx, &entries, &t)).unwrap();
    assert_eq!(flat, i32s(&[16, 2]));
    assert_eq!(h.calls, [call(0, 0, 8, 32, 16)]);
    let mut expected = [0u8; 32];
    expected[0] = 7;
    expected[8] = 1;
    expected[16] = 7;
    expected[24] = 2;
    assert_eq!(&h.bytes[16..48], &expected[..]);
    // And lifted back the same, both entries.
    assert_eq!(lift_heap(&t, i32s(&[16, 2]), &h.bytes[..48]).unwrap(), entries);
}

#[test]
fn a_map_key_is_a_keytype() {
    // keytype ::= bool | s8 | u8 | s16 | u16 | s32 | u32 | s64 | u64 | char | string
    use witness::reference::validate::validate_type;
    for k in [ValType::Bool, ValType::S64, ValType::Char, ValType::String] {
        assert_eq!(validate_type(&map(k.clone(), ValType::F32)), Ok(()), "{k:?}");
    }
    for k in
        [ValType::F32, ValType::F64, tuple([ValType::U8]), ValType::list(ValType::U8), ValType::option(ValType::U8)]
    {
        assert!(validate_type(&map(k.clone(), ValType::U8)).is_err(), "{k:?}");
    }
}

// ---- 🔀 async types and signatures ------------------------------------------------------------

#[test]
fn stream_future_and_error_context_are_i32_handles() {
    // alignment / elem_size: `case StreamType() | FutureType() | ErrorContextType(): return 4`;
    // flatten_type: ['i32'].
    for t in [
        ValType::Stream(None),
        ValType::Stream(Some(Arc::new(ValType::String))),
        ValType::Future(Some(Arc::new(ValType::U64))),
        ValType::ErrorContext,
    ] {
        assert_eq!(size_align(&t), (4, 4), "{t:?}");
        assert_eq!(flatten_type(&t, I32P), [CI32], "{t:?}");
    }
    // In a record they pack like u32s: { u8, stream } is 8 bytes, the handle at 4.
    assert_eq!(size_align(&tuple([ValType::U8, ValType::Stream(None)])), (8, 4));
}

#[test]
fn async_flatten_functype() {
    use witness::reference::flatten::{FlattenOpts, MAX_FLAT_ASYNC_PARAMS};
    assert_eq!(MAX_FLAT_ASYNC_PARAMS, 4);
    let lower = FlattenOpts::async_(I32P, false);
    // 'lower': up to 4 flat params stay flat; a result adds an out-pointer; the core function
    // returns the subtask state (i32).
    let four = func(vec![ValType::U32; 4], Some(ValType::U8));
    assert_eq!(flatten_functype(lower, &four, Context::Lower), core(&[CI32; 5], &[CI32]));
    let five = func(vec![ValType::U32; 5], None);
    assert_eq!(flatten_functype(lower, &five, Context::Lower), core(&[CI32], &[CI32]));
    // Sync, the same five params stay flat (MAX_FLAT_PARAMS = 16).
    assert_eq!(flatten_functype(FlattenOpts::sync(I32P), &five, Context::Lower), core(&[CI32; 5], &[]));
    // 'lift': params as sync (16); results go through task.return: nothing, or the callback
    // code with `callback`.
    let f = func(vec![ValType::U64, ValType::F32], Some(ValType::String));
    assert_eq!(flatten_functype(FlattenOpts::async_(I32P, true), &f, Context::Lift), core(&[CI64, CF32], &[CI32]));
    assert_eq!(flatten_functype(FlattenOpts::async_(I32P, false), &f, Context::Lift), core(&[CI64, CF32], &[]));
    let seventeen = func(vec![ValType::U8; 17], None);
    assert_eq!(flatten_functype(FlattenOpts::async_(I32P, true), &seventeen, Context::Lift), core(&[CI32], &[CI32]));
    // With 64-bit memory the pointers are i64 (🐘).
    let p64 = FlattenOpts::async_(PtrType::I64, false);
    assert_eq!(
        flatten_functype(p64, &func(vec![ValType::U8; 5], Some(ValType::U8)), Context::Lower),
        core(&[CI64, CI64], &[CI32])
    );
}

// ---- 📝 error-context and the table's element kinds ---------------------------------------

#[test]
fn error_context_built_ins() {
    use witness::reference::error_context::{
        canon_error_context_debug_message, canon_error_context_drop, canon_error_context_new,
    };
    let r = rt(1, 0);
    let mut inst = ComponentInstance::new(InstanceId(1));
    // error-context.new: Table.add of an ErrorContext (index 1 in a fresh table); the
    // deterministic profile keeps the message String(('', 'utf8', 0)), so a pointer past any
    // memory is not read.
    let e = canon_error_context_new(&mut inst, u64::from(u32::MAX), 5).unwrap();
    assert_eq!(e, 1);
    // Resources and error contexts share the one table: the next handle is 2.
    assert_eq!(canon_resource_new(&mut inst, &r, 42), Ok(2));
    // error-context.debug-message: store_string of the message at ptr: realloc(0, 0, 1, 0)
    // for the empty UTF-8 string, then its (ptr, len) at ptr.
    let mut h = BumpHeap::new(64, 16);
    {
        let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut inst, BorrowScope::None);
        canon_error_context_debug_message(&mut cx, e, 8).unwrap();
        // trap_if(not isinstance(errctx, ErrorContext)) on a resource handle.
        assert_eq!(kind(canon_error_context_debug_message(&mut cx, 2, 8)), TrapKind::HandleTypeMismatch);
    }
    assert_eq!(h.calls, [call(0, 0, 1, 0, 16)]);
    assert_eq!(&h.bytes[8..16], &[16, 0, 0, 0, 0, 0, 0, 0]);
    // resource.drop on an error-context: trap_if(not isinstance(h, ResourceHandle)).
    assert_eq!(kind(canon_resource_drop(&mut inst, &r, e)), TrapKind::HandleTypeMismatch);
    // error-context.drop on a resource handle traps the same way (after Table.remove).
    assert_eq!(kind(canon_error_context_drop(&mut inst, 2)), TrapKind::HandleTypeMismatch);
    // The first resource.drop above removed the error context: the slot is empty now.
    assert_eq!(kind(canon_error_context_drop(&mut inst, e)), TrapKind::UnknownHandle);
    // may_leave comes first for all three.
    inst.may_leave = false;
    assert_eq!(kind(canon_error_context_new(&mut inst, 0, 0)), TrapKind::MayNotLeave);
    assert_eq!(kind(canon_error_context_drop(&mut inst, 1)), TrapKind::MayNotLeave);
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut inst, BorrowScope::None);
    assert_eq!(kind(canon_error_context_debug_message(&mut cx, 1, 8)), TrapKind::MayNotLeave);
}

#[test]
fn stream_and_future_payloads_are_validated() {
    // Explainer.md: `(stream T)` and `(future T)` are rejected when T transitively contains a
    // `borrow`; `(stream char)` is rejected for now.
    use witness::reference::validate::validate_type;
    let r = rt(1, 0);
    let stream = |t: ValType| ValType::Stream(Some(Arc::new(t)));
    let future = |t: ValType| ValType::Future(Some(Arc::new(t)));
    assert!(validate_type(&stream(ValType::Char)).is_err());
    assert_eq!(validate_type(&future(ValType::Char)), Ok(()));
    assert_eq!(validate_type(&stream(ValType::list(ValType::Char))), Ok(()));
    assert!(validate_type(&future(ValType::option(ValType::Borrow(r.clone())))).is_err());
    assert!(validate_type(&stream(tuple([ValType::U8, ValType::Borrow(r.clone())]))).is_err());
    assert_eq!(validate_type(&stream(ValType::Own(r))), Ok(()));
    assert_eq!(validate_type(&ValType::Stream(None)), Ok(()));
}

#[test]
fn an_error_context_is_lifted_shared_and_lowered_into_the_other_table() {
    // lift_error_context: Table.get (the element stays) and trap_if(not isinstance(errctx,
    // ErrorContext)); lower_error_context: Table.add of the same object.
    use witness::reference::error_context::canon_error_context_new;
    let r = rt(1, 0);
    let mut a = ComponentInstance::new(InstanceId(1));
    let e = canon_error_context_new(&mut a, 0, 0).unwrap();
    let resource = canon_resource_new(&mut a, &r, 7).unwrap();
    let mut h = BumpHeap::new(64, 16);
    let mut st = Subtask::default();
    let v = {
        let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut a, BorrowScope::Subtask(&mut st));
        let v = lift_flat(&mut cx, &mut CoreValueIter::new(i32s(&[e])), &ValType::ErrorContext).unwrap();
        // A resource handle is no error context; index 0 is no element at all.
        let lifted = lift_flat(&mut cx, &mut CoreValueIter::new(i32s(&[resource])), &ValType::ErrorContext);
        assert_eq!(kind(lifted), TrapKind::HandleTypeMismatch);
        assert_eq!(
            kind(lift_flat(&mut cx, &mut CoreValueIter::new(i32s(&[0])), &ValType::ErrorContext)),
            TrapKind::UnknownHandle
        );
        v
    };
    assert!(matches!(v, Value::ErrorContext(_)));
    assert!(a.handles.get(e).is_ok(), "lifting leaves the error context in the caller's table");
    // Lowered into another instance, it gets that table's next index (its own handles first).
    let mut b = ComponentInstance::new(InstanceId(2));
    canon_resource_new(&mut b, &r, 8).unwrap();
    let task = b.start_task();
    let mut cx = LiftLowerContext::new(Utf8, &mut h, &mut b, BorrowScope::Task(task));
    assert_eq!(lower_flat(&mut cx, &v, &ValType::ErrorContext), Ok(i32s(&[2])));
    assert!(b.handles.get(2).unwrap().error_context("test").is_ok());
}
