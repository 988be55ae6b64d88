//! Arbitrary type + arbitrary flat values + arbitrary memory → the reference's `lift_flat`
//! returns a value or a guest-visible trap; never a panic, never a broken spec assertion.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use witness::reference::context::{BorrowScope, ComponentInstance, LiftLowerContext, Subtask};
use witness::reference::flatten::flatten_type;
use witness::reference::lift_flat::{CoreValueIter, lift_flat};
use witness::reference::types::{CoreType, InstanceId, PtrType, StringEncoding};
use witness::reference::{BumpHeap, Flat, TrapKind};
use witness::world::arbitrary::{TypeConfig, arbitrary_type};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(t) = arbitrary_type(&mut u, &TypeConfig::default()) else { return };
    let mut flats = vec![];
    for ct in flatten_type(&t, PtrType::I32) {
        let f = match ct {
            CoreType::I32 => u.arbitrary().map(Flat::I32),
            CoreType::I64 => u.arbitrary().map(Flat::I64),
            CoreType::F32 => u.arbitrary().map(|b| Flat::F32(f32::from_bits(b))),
            CoreType::F64 => u.arbitrary().map(|b| Flat::F64(f64::from_bits(b))),
        };
        let Ok(f) = f else { return };
        flats.push(f);
    }
    let Ok(enc) = u.choose(&StringEncoding::ALL).copied() else { return };
    let mut heap = BumpHeap::new(4096, 16);
    let bytes = u.take_rest();
    let _ = heap.preload(0, &bytes[..bytes.len().min(4096)]);
    let mut inst = ComponentInstance::new(InstanceId(1));
    let mut subtask = Subtask::default();
    let mut cx = LiftLowerContext::new(enc, &mut heap, &mut inst, BorrowScope::Subtask(&mut subtask));
    if let Err(trap) = lift_flat(&mut cx, &mut CoreValueIter::new(flats), &t) {
        assert_ne!(trap.kind, TrapKind::Assertion, "{trap}");
    }
});
