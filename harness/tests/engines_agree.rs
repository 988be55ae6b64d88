//! Engines agree with the reference on generated worlds and plans (the differential oracle
//! end to end), and a planted disagreement is caught.

mod common;

use arbitrary::Unstructured;
use witness::encode::names::NameScheme;
use witness::engine::{Prepared, make_engine};
use witness::oracle::compare;
use witness::plan::{PlanConfig, arbitrary_call, build_case};
use witness::reference::StringEncoding;
use witness::world::generate::{WorldConfig, arbitrary_world};

#[test]
fn engines_agree_with_the_reference_on_generated_worlds() {
    let mut cases = 0;
    let mut traps = 0;
    for seed in 0..common::cases(12) {
        let data = common::bytes(seed, 4096);
        let mut u = Unstructured::new(&data);
        let world = arbitrary_world(&mut u, &WorldConfig::default()).unwrap();
        let scheme = if seed % 2 == 0 { NameScheme::Standard } else { NameScheme::Legacy };
        let enc = StringEncoding::ALL[(seed % 3) as usize];
        let prepared = Prepared::from_wit(&world.wit, Some("w"), scheme, enc)
            .unwrap_or_else(|e| panic!("seed {seed}: {e:?}\n{}", world.wit));
        let mut reference = make_engine("reference", &prepared).unwrap();
        let mut engines: Vec<_> = ["core", "wasmtime"].iter().map(|e| make_engine(e, &prepared).unwrap()).collect();
        for c in 0..20 {
            let Ok(Some(plan)) = arbitrary_call(&mut u, &prepared, &PlanConfig::default()) else {
                break;
            };
            let case = build_case(&prepared, &[plan]).unwrap();
            let expected = reference.run(&case).unwrap_or_else(|e| panic!("seed {seed} case {c}: reference: {e:?}"));
            for engine in &mut engines {
                let name = engine.name();
                let actual = engine.run(&case).unwrap_or_else(|e| panic!("seed {seed} case {c}: {name}: {e:?}"));
                let diffs = compare(&prepared, &expected, &actual);
                assert!(diffs.is_empty(), "seed {seed} case {c} {name}: {diffs:#?}\n{}\n{case:?}", world.wit);
            }
            cases += 1;
            traps += usize::from(expected.trap.is_some());
        }
    }
    assert!(cases > 50, "only {cases} cases ran");
    assert!(traps > 0 && traps < cases, "{traps} of {cases} cases trapped");
}
