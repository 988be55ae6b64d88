//! Bugs planted in a copy of the reference host are caught by the cases witness builds: the
//! detection gaps found by mutating a third-party implementation stay closed. Each mutant is
//! the reference host with one change, run on the guest model, and compared with the
//! reference through the oracle, as an engine would be.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use witness::encode::names::NameScheme;
use witness::oracle::compare;
use witness::plan::{CallPlan, GuestValues, Misses, StepPlan, build_case};
use witness::reference::Trap;
use witness::reference::memory::Memory;
use witness::reference::types::{FieldType, StringEncoding, ValType};
use witness::reference::value::{Flat, Value};
use witness::runtime::core::{CoreGuest, HostState, call_export};
use witness::runtime::driver::{PlannedHost, load_script, read_log, run_case};
use witness::runtime::model::GuestModel;
use witness::runtime::{Artifact, Case, HostEvent, Instance, Outcome, Prepared, Step};

/// The guest model with a host that runs each export's post-return right after the export
/// returns, before the results are lifted (the planted bug).
struct PostReturnFirst {
    model: GuestModel,
    /// The post-return of each core export that has one.
    post_returns: HashMap<String, String>,
    /// The post-return run early for the call in progress.
    ran_early: Option<String>,
}

impl Memory for PostReturnFirst {
    fn len(&self) -> u64 {
        self.model.len()
    }
    fn read(&self, ptr: u64, out: &mut [u8]) -> witness::reference::trap::Result<()> {
        self.model.read(ptr, out)
    }
    fn write(&mut self, ptr: u64, bytes: &[u8]) -> witness::reference::trap::Result<()> {
        self.model.write(ptr, bytes)
    }
    fn realloc(&mut self, old: u64, old_size: u64, align: u64, new_size: u64) -> witness::reference::trap::Result<u64> {
        self.model.realloc(old, old_size, align, new_size)
    }
}

impl CoreGuest for PostReturnFirst {
    fn host(&mut self) -> &mut HostState {
        self.model.host()
    }
    fn call_export(&mut self, name: &str, args: &[Flat]) -> Result<Vec<Flat>, Trap> {
        // canon_lift's own post-return call comes after the lift: it already ran.
        if self.ran_early.as_deref() == Some(name) {
            self.ran_early = None;
            return Ok(vec![]);
        }
        let results = self.model.call_export(name, args)?;
        if let Some(post) = self.post_returns.get(name) {
            self.model.call_export(post, &results)?;
            self.ran_early = Some(post.clone());
        }
        Ok(results)
    }
}

struct Mutant<G> {
    guest: G,
    artifact: Arc<Artifact>,
}

impl<G: CoreGuest> Instance for Mutant<G> {
    fn call(&mut self, export: usize, args: &[Value]) -> anyhow::Result<Result<Option<Value>, Trap>> {
        Ok(call_export(&mut self.guest, &self.artifact.exports[export], args))
    }
    fn drop_resource(&mut self, _: u32) -> anyhow::Result<Result<(), Trap>> {
        anyhow::bail!("not planted")
    }
}

/// The guest model of `artifact`, its imports answered by `host`.
fn model(artifact: &Artifact, host: &Rc<RefCell<PlannedHost>>) -> GuestModel {
    let module = artifact.model.as_ref().unwrap().guest.clone();
    GuestModel::new(module, HostState::new(artifact, Box::new(host.clone())))
}

/// The reference host with post-return run before the lift.
fn post_return_first(artifact: &Arc<Artifact>, host: &Rc<RefCell<PlannedHost>>) -> Mutant<PostReturnFirst> {
    let post_returns = artifact
        .exports
        .iter()
        .filter_map(|e| e.core.as_ref())
        .filter_map(|c| Some((c.name.clone(), c.post_return.clone()?)))
        .collect();
    let guest = PostReturnFirst { model: model(artifact, host), post_returns, ran_early: None };
    Mutant { guest, artifact: artifact.clone() }
}

/// `t` with every record's fields sorted by name.
fn fields_by_name(t: &ValType) -> ValType {
    match t {
        ValType::Record(fields) => {
            let mut fields: Vec<FieldType> =
                fields.iter().map(|f| FieldType { label: f.label.clone(), t: fields_by_name(&f.t) }).collect();
            fields.sort_by(|a, b| a.label.cmp(&b.label));
            ValType::Record(fields.into())
        }
        ValType::List(e, n) => ValType::List(Arc::new(fields_by_name(e)), *n),
        other => other.clone(),
    }
}

/// The reference host laying out record fields in name order, not declaration order.
fn fields_in_name_order(artifact: &Arc<Artifact>, host: &Rc<RefCell<PlannedHost>>) -> Mutant<GuestModel> {
    let mut sorted = (**artifact).clone();
    for e in &mut sorted.exports {
        let ft = &mut e.func.ft;
        ft.params.iter_mut().for_each(|(_, t)| *t = fields_by_name(t));
        ft.result = ft.result.as_ref().map(fields_by_name);
    }
    Mutant { guest: model(artifact, host), artifact: Arc::new(sorted) }
}

/// Run `case` on a mutant: load the script, make the calls, read the log.
fn run_mutant<G: CoreGuest>(
    artifact: &Arc<Artifact>,
    case: &Case,
    mutant: fn(&Arc<Artifact>, &Rc<RefCell<PlannedHost>>) -> Mutant<G>,
) -> Outcome {
    let host = Rc::new(RefCell::new(PlannedHost::new(case)));
    let mut m = mutant(artifact, &host);
    load_script(&mut m, 0, &artifact.guests[0], &case.script).unwrap();
    let mut outcome = Outcome::default();
    for step in &case.steps {
        let Step::Call(call) = step else { panic!("calls only") };
        match m.call(call.export as usize, &call.args).unwrap() {
            Ok(result) => host.borrow_mut().events.push(HostEvent::Returned { export: call.export, result }),
            Err(trap) => {
                outcome.trap = Some(trap);
                break;
            }
        }
    }
    outcome.events = std::mem::take(&mut host.borrow_mut().events);
    if outcome.trap.is_none() {
        outcome.log = Some(read_log(&mut m, 0, &artifact.guests[0]).unwrap());
    }
    outcome
}

#[test]
fn post_return_before_the_results_are_lifted_is_caught() {
    let wit = "package t:t; world w { export get: func() -> list<string>; export num: func() -> u32; }";
    let p = Prepared::from_wit(wit, None, NameScheme::Standard, StringEncoding::Utf8).unwrap();
    let artifact = Arc::new(Artifact::of(&p).unwrap());
    let strings = Value::List(vec![Value::string("abc"), Value::string("de")]);
    let plan = |export: u32, values: Vec<Value>| {
        let result = GuestValues { values, corruption: None };
        StepPlan::Call(CallPlan { export, args: vec![], ops: vec![], result, realloc: vec![] })
    };
    let mut reference = witness::engine::compile(&witness::engine::Selection::reference(), &artifact).unwrap();
    // A result in memory: the mutant lifts the bytes the post-return clobbered.
    let case = build_case(&p, &[plan(0, vec![strings.clone()])], Misses::Refuse).unwrap();
    let expected = run_case(reference.as_mut(), &artifact, &case, &[]).unwrap();
    assert_eq!(expected.events, [HostEvent::Returned { export: 0, result: Some(strings) }]);
    let actual = run_mutant(&artifact, &case, post_return_first);
    assert!(!compare(&p, &expected, &actual).is_empty(), "the mutant passed: {actual:?}");
    // A flat result never touches memory: no case can see the order, and the mutant agrees.
    let case = build_case(&p, &[plan(1, vec![Value::U32(7)])], Misses::Refuse).unwrap();
    let expected = run_case(reference.as_mut(), &artifact, &case, &[]).unwrap();
    assert_eq!(compare(&p, &expected, &run_mutant(&artifact, &case, post_return_first)), []);
}

/// Whether the mutant that lays out record fields in name order passes a case whose guest
/// returns a record of world `wit`, `{<first>: 1, <second>: 2}`.
fn name_order_passes(wit: &str, value: &str) -> bool {
    let p = Prepared::from_wit(wit, None, NameScheme::Standard, StringEncoding::Utf8).unwrap();
    let artifact = Arc::new(Artifact::of(&p).unwrap());
    let t = p.exports[0].1.result.clone().unwrap();
    let v = witness::world::wave::parse_value(&t, value, StringEncoding::Utf8).unwrap();
    let result = GuestValues { values: vec![v], corruption: None };
    let plan = StepPlan::Call(CallPlan { export: 0, args: vec![], ops: vec![], result, realloc: vec![] });
    let case = build_case(&p, &[plan], Misses::Refuse).unwrap();
    let mut reference = witness::engine::compile(&witness::engine::Selection::reference(), &artifact).unwrap();
    let expected = run_case(reference.as_mut(), &artifact, &case, &[]).unwrap();
    compare(&p, &expected, &run_mutant(&artifact, &case, fields_in_name_order)).is_empty()
}

#[test]
fn record_fields_laid_out_in_name_order_are_caught_with_generated_names() {
    // Names that sort in declaration order (what the generator used to write) hide the bug.
    let sorted = "package t:t; world w { record r { f0: u8, f1: u32 } export get: func() -> r; }";
    assert!(name_order_passes(sorted, "{f0: 1, f1: 2}"));
    // The generator's names are never in sorted order: u8 at 0 and u32 at 4 are read as a u8
    // at 4 and a u32 at 0.
    let mut u = arbitrary::Unstructured::new(&[]);
    let names = witness::world::arbitrary::labels(&mut u, "f", 2).unwrap();
    let generated = format!(
        "package t:t; world w {{ record r {{ {}: u8, {}: u32 }} export get: func() -> r; }}",
        names[0], names[1]
    );
    assert!(!name_order_passes(&generated, &format!("{{{}: 1, {}: 2}}", names[0], names[1])), "{generated}");
}
