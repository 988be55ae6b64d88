//! Property tests of the reference: lowering then lifting gives the value back (strings by
//! text, NaNs by class) for arbitrary types and values in all 3×3 (source, destination)
//! string-encoding pairs, through flat values and through spilled tuples; and lifting
//! arbitrary flat values and bytes never panics, it returns a value or a trap.

mod common;

use arbitrary::Unstructured;
use witness::reference::concurrency::subtask::Subtask;
use witness::reference::context::{BorrowScope, ComponentInstance, LiftLowerContext};
use witness::reference::flatten::{MAX_FLAT_PARAMS, flatten_type};
use witness::reference::lift_flat::{CoreValueIter, lift_flat, lift_flat_values};
use witness::reference::lower_flat::{SpillTo, lower_flat, lower_flat_values};
use witness::reference::types::{CoreType, InstanceId, PtrType, ResourceType, StringEncoding, ValType};
use witness::reference::validate::validate_type;
use witness::reference::{BumpHeap, Flat, TrapKind, Value};
use witness::world::arbitrary::{TypeConfig, arbitrary_type, arbitrary_value};

const GUEST: InstanceId = InstanceId(1);

fn resources() -> Vec<ResourceType> {
    vec![
        ResourceType { id: 1, name: "a".into(), impl_instance: InstanceId(0) },
        ResourceType { id: 2, name: "b".into(), impl_instance: InstanceId(0) },
    ]
}

/// Lower `vs` into a guest using `dst` as its encoding, then lift them back out.
fn roundtrip(
    ts: &[ValType],
    vs: &[Value],
    dst: StringEncoding,
    spill: bool,
) -> Result<Vec<Value>, witness::reference::Trap> {
    let mut heap = BumpHeap::new(1 << 20, 8);
    let mut inst = ComponentInstance::new(GUEST);
    let task = inst.start_task();
    let flat = {
        let mut cx = LiftLowerContext::new(dst, &mut heap, &mut inst, BorrowScope::Task(task));
        if spill {
            lower_flat_values(&mut cx, 0, vs, ts, SpillTo::Realloc)?
        } else {
            let mut flat = vec![];
            for (v, t) in vs.iter().zip(ts) {
                flat.extend(lower_flat(&mut cx, v, t)?);
            }
            flat
        }
    };
    let mut subtask = Subtask::default();
    let mut cx = LiftLowerContext::new(dst, &mut heap, &mut inst, BorrowScope::Subtask(&mut subtask));
    let mut vi = CoreValueIter::new(flat);
    let max_flat = if spill { 0 } else { usize::MAX };
    let out = lift_flat_values(&mut cx, max_flat, &mut vi, ts)?;
    assert!(vi.done(), "every flat value is consumed");
    Ok(out)
}

#[test]
fn lower_then_lift_returns_the_value_in_all_encoding_pairs() {
    let cfg = TypeConfig { resources: resources(), borrows: true, ..TypeConfig::default() };
    let n = common::cases(300);
    let mut checked = 0;
    for seed in 0..n {
        let data = common::bytes(seed, 2048);
        let mut u = Unstructured::new(&data);
        let Ok(t) = arbitrary_type(&mut u, &cfg) else {
            continue;
        };
        validate_type(&t).unwrap_or_else(|e| panic!("seed {seed}: generator made an invalid type: {e}"));
        for src in StringEncoding::ALL {
            let Ok(v) = arbitrary_value(&mut u, &t, src, &[7, 8, 9]) else {
                continue;
            };
            for dst in StringEncoding::ALL {
                for spill in [false, true] {
                    let back = roundtrip(std::slice::from_ref(&t), std::slice::from_ref(&v), dst, spill)
                        .unwrap_or_else(|trap| panic!("seed {seed} {src}->{dst} spill={spill}: {trap}\n{t:?}\n{v:?}"));
                    assert!(back[0].matches(&v), "seed {seed} {src}->{dst} spill={spill}\n{t:?}\n{v:?}\n{:?}", back[0]);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > n * 9, "only {checked} round trips ran");
}

#[test]
fn lowering_then_lifting_keeps_tagged_lengths_consistent() {
    // A string that went through a guest carries that guest's encoding and length: storing it
    // again must succeed from every encoding into every other (store_string_into_range
    // asserts the hint matches the text).
    for text in witness::world::arbitrary::TRICKY_STRINGS {
        let mut v = Value::string(text);
        for dst in
            [StringEncoding::Utf16, StringEncoding::Latin1Utf16, StringEncoding::Utf8, StringEncoding::Latin1Utf16]
        {
            let back = roundtrip(&[ValType::String], std::slice::from_ref(&v), dst, false).unwrap();
            let Value::String(s) = &back[0] else { panic!() };
            assert_eq!(s.text, *text);
            assert_eq!(s.encoding, dst);
            v = back[0].clone();
        }
    }
}

fn arbitrary_flat(u: &mut Unstructured<'_>, t: CoreType, mem_len: u32) -> arbitrary::Result<Flat> {
    // Small numbers often, so pointers land inside memory and discriminants in range.
    let small = u.ratio(3, 4)?;
    Ok(match t {
        CoreType::I32 => Flat::I32(if small { u.int_in_range(0..=mem_len + 8)? } else { u.arbitrary()? }),
        CoreType::I64 => Flat::I64(if small { u.int_in_range(0..=u64::from(mem_len))? } else { u.arbitrary()? }),
        CoreType::F32 => Flat::F32(f32::from_bits(u.arbitrary()?)),
        CoreType::F64 => Flat::F64(f64::from_bits(u.arbitrary()?)),
    })
}

#[test]
fn lifting_arbitrary_flat_values_and_bytes_never_panics() {
    let cfg = TypeConfig { resources: resources(), borrows: true, ..TypeConfig::default() };
    let n = common::cases(2000);
    let mut traps = std::collections::BTreeMap::<TrapKind, u32>::new();
    let mut values = 0;
    for seed in 0..n {
        let data = common::bytes(seed, 4096);
        let mut u = Unstructured::new(&data);
        let Ok(t) = arbitrary_type(&mut u, &cfg) else {
            continue;
        };
        let mem_len = 256u32;
        let mut heap = BumpHeap::new(mem_len.into(), 8);
        let noise: Vec<u8> = (0..mem_len).map(|_| u.arbitrary().unwrap_or(0)).collect();
        heap.preload(0, &noise).unwrap();
        let Ok(flat) = flatten_type(&t, PtrType::I32)
            .into_iter()
            .map(|ct| arbitrary_flat(&mut u, ct, mem_len))
            .collect::<arbitrary::Result<Vec<_>>>()
        else {
            continue;
        };
        let enc = StringEncoding::ALL[seed as usize % 3];
        let mut inst = ComponentInstance::new(GUEST);
        // A few live handles so that some handle indices are valid.
        for (i, rt) in resources().iter().enumerate() {
            witness::reference::handles::canon_resource_new(&mut inst, rt, 100 + i as u32).unwrap();
        }
        let mut subtask = Subtask::default();
        let mut cx = LiftLowerContext::new(enc, &mut heap, &mut inst, BorrowScope::Subtask(&mut subtask));
        match lift_flat(&mut cx, &mut CoreValueIter::new(flat), &t) {
            Ok(_) => values += 1,
            Err(trap) => {
                assert_ne!(trap.kind, TrapKind::Assertion, "seed {seed}: guest data broke an assertion: {trap}");
                *traps.entry(trap.kind).or_default() += 1;
            }
        }
    }
    // Both outcomes must be common, or the test is not exercising anything.
    assert!(values > 50, "only {values} lifts succeeded");
    assert!(traps.len() >= 5, "too few trap classes seen: {traps:?}");
}

#[test]
fn spilled_params_round_trip_through_one_pointer() {
    // 17 u8 params exceed MAX_FLAT_PARAMS and travel as one tuple in memory.
    let ts = vec![ValType::U8; MAX_FLAT_PARAMS + 1];
    let vs: Vec<Value> = (0..=MAX_FLAT_PARAMS as u8).map(Value::U8).collect();
    let back = roundtrip(&ts, &vs, StringEncoding::Utf8, true).unwrap();
    assert_eq!(back, vs);
}

#[test]
fn high_bits_in_a_joined_slot_change_nothing() {
    // lift_flat_variant's CoerceValueIter reads an i32 or f32 payload from a joined i64 slot
    // through wrap_i64_to_i32: the high 32 bits are ignored. Plans set them on import
    // arguments; on the reference the case must end exactly as without them.
    use witness::diff::{DiffConfig, world_of};
    use witness::plan::{Corruption, Misses, PlanConfig, StepPlan, arbitrary_call, build_case};
    use witness::runtime::Prepared;
    use witness::runtime::driver::run_case;
    let cfg = DiffConfig::default();
    let mut planted = 0;
    for seed in 0..common::cases(200) {
        let (world, scheme, enc) = world_of(seed, &cfg).unwrap();
        let p = Prepared::from_wit(&world.wit, Some("w"), scheme, enc).unwrap();
        let artifact = std::sync::Arc::new(witness::runtime::Artifact::of(&p).unwrap());
        let mut reference = witness::engine::compile(&witness::engine::Selection::reference(), &artifact).unwrap();
        for c in 0..40 {
            let data = witness::world::arbitrary::seed_bytes(seed * 1000 + c, 4096);
            let mut u = Unstructured::new(&data);
            let Ok(Some(mut plan)) = arbitrary_call(&mut u, &p, &PlanConfig::default()) else { continue };
            // Only the high bits stay: every other corruption would change the outcome.
            plan.result.corruption = None;
            let mut touched = false;
            for op in &mut plan.ops {
                if let witness::plan::GuestOp::Import(imp) = op {
                    match imp.args.corruption {
                        Some(Corruption::HighBits { .. }) => touched = true,
                        _ => imp.args.corruption = None,
                    }
                }
            }
            if !touched {
                continue;
            }
            let mut clean = plan.clone();
            for op in &mut clean.ops {
                if let witness::plan::GuestOp::Import(imp) = op {
                    imp.args.corruption = None;
                }
            }
            planted += 1;
            let mut run = |plan| {
                // Refuse: a high-bits corruption that found no joined i64 slot is a plan bug.
                let case = build_case(&p, &[StepPlan::Call(plan)], Misses::Refuse).unwrap();
                run_case(reference.as_mut(), &artifact, &case, &[]).unwrap()
            };
            let (with, without) = (run(plan), run(clean));
            // The oracle's comparison: NaNs by class, traps by class, events and guest logs.
            let differences = witness::oracle::compare(&p, &without, &with);
            assert!(differences.is_empty(), "seed {seed} case {c}: {differences:#?}");
        }
    }
    assert!(planted > 10, "only {planted} plans set high bits");
}
