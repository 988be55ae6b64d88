//! Resource plans: sequences of steps that create guest resources, lend and move them, pass
//! host resources in, and drop handles, rightly and wrongly (drop twice, drop a borrow too
//! late, use another type's built-in). A model of the guest's handle table (the reference's
//! own `Table`) tells the script which indices the engine will hand the guest.

use arbitrary::Unstructured;

use super::{
    CallPlan, GuestOp, GuestValues, ImportPlan, PlanConfig, StepPlan, arbitrary_values, moves_async_values, plannable,
};
use crate::encode::protocol as p;
use crate::reference::context::{BorrowScope, ComponentInstance, LiftLowerContext};
use crate::reference::flatten::{MAX_FLAT_PARAMS, MAX_FLAT_RESULTS, flatten_type, flatten_types};
use crate::reference::handles::{canon_resource_drop, canon_resource_new};
use crate::reference::lower_flat::{SpillTo, lower_flat_values};
use crate::reference::memory::BumpHeap;
use crate::reference::types::{FuncType, PtrType, ResourceType, StringEncoding, ValType};
use crate::reference::value::{Flat, Value};
use crate::runtime::Prepared;
use crate::runtime::prepared::ImportType;
use crate::runtime::resources::{has_handle_of, has_handles, is_guest_resource, map_handles};
use crate::world::arbitrary::arbitrary_value;
use crate::world::wit::GUEST_INSTANCE;

/// What a parameter of a resource-plannable function is.
#[derive(Clone, Debug)]
enum Param {
    Plain(ValType),
    Handle { rt: ResourceType, own: bool },
}

/// A function whose handles are all top-level parameters (so the model knows where they land)
/// and whose parameters do not spill.
fn shape(ft: &FuncType) -> Option<Vec<Param>> {
    if flatten_types(&ft.param_types(), PtrType::I32).len() > MAX_FLAT_PARAMS || moves_async_values(ft) {
        return None;
    }
    ft.params
        .iter()
        .map(|(_, t)| match t {
            ValType::Own(rt) => Some(Param::Handle { rt: rt.clone(), own: true }),
            ValType::Borrow(rt) => Some(Param::Handle { rt: rt.clone(), own: false }),
            t if has_handles(t) => None,
            t => Some(Param::Plain(t.clone())),
        })
        .collect()
}

fn thunk(prepared: &Prepared, f: impl Fn(&ImportType) -> bool) -> Option<u32> {
    prepared.imports.iter().position(f).map(|i| i as u32)
}

fn new_thunk(prepared: &Prepared, rt: &ResourceType) -> Option<u32> {
    thunk(prepared, |i| matches!(i, ImportType::ResourceNew(r) if r.id == rt.id))
}
fn rep_thunk(prepared: &Prepared, rt: &ResourceType) -> Option<u32> {
    thunk(prepared, |i| matches!(i, ImportType::ResourceRep(r) if r.id == rt.id))
}
fn drop_thunk(prepared: &Prepared, rt: &ResourceType) -> Option<u32> {
    thunk(prepared, |i| matches!(i, ImportType::ResourceDrop(r) if r.id == rt.id))
}

/// The model: the guest's handle table, and the guest resources the host holds.
struct Model {
    inst: ComponentInstance,
    slots: Vec<Option<(ResourceType, u32)>>,
    next_rep: u32,
}

impl Model {
    fn fresh_rep(&mut self) -> u32 {
        self.next_rep += 1;
        self.next_rep
    }

    /// Lower host arguments into the model table; the flat value of each handle parameter.
    fn lower_args(&mut self, ft: &FuncType, params: &[Param], args: &[Value]) -> Option<Vec<Option<u32>>> {
        let reps: Vec<Value> = params
            .iter()
            .zip(args)
            .map(|(param, v)| match (param, v) {
                (Param::Handle { rt, .. }, Value::Handle(x)) if is_guest_resource(rt) => {
                    self.slots.get(*x as usize).cloned().flatten().map(|(_, rep)| Value::Handle(rep))
                }
                _ => Some(v.clone()),
            })
            .collect::<Option<_>>()?;
        let mut scratch = BumpHeap::new(p::MEMORY_SIZE, p::HEAP);
        let task = self.inst.start_task();
        let flats = {
            let mut cx =
                LiftLowerContext::new(StringEncoding::Utf8, &mut scratch, &mut self.inst, BorrowScope::Task(task));
            lower_flat_values(&mut cx, MAX_FLAT_PARAMS, &reps, &ft.param_types(), SpillTo::Realloc).ok()?
        };
        let mut offset = 0;
        let mut out = vec![];
        for (param, (_, t)) in params.iter().zip(&ft.params) {
            out.push(match (param, flats.get(offset)) {
                (Param::Handle { .. }, Some(Flat::I32(i))) => Some(*i),
                _ => None,
            });
            offset += flatten_type(t, PtrType::I32).len();
        }
        Some(out)
    }

    /// The host resources the guest owns and may hand over: (table index, type).
    fn held_host_handles(&self) -> Vec<(u32, ResourceType)> {
        self.inst
            .handles
            .resources()
            .filter(|(_, h)| h.own && h.num_lends == 0 && !is_guest_resource(&h.rt))
            .map(|(i, h)| (i, h.rt.clone()))
            .collect()
    }

    /// Lower an import's result into the guest's table as the engine will (its own handles
    /// become new entries); `None` if the reference refuses it.
    fn lower_result(&mut self, t: &ValType, v: &Value) -> Option<()> {
        let mut scratch = BumpHeap::new(p::MEMORY_SIZE, p::HEAP);
        let task = self.inst.start_task();
        let mut cx = LiftLowerContext::new(StringEncoding::Utf8, &mut scratch, &mut self.inst, BorrowScope::Task(task));
        let lowered = lower_flat_values(
            &mut cx,
            MAX_FLAT_RESULTS,
            std::slice::from_ref(v),
            std::slice::from_ref(t),
            SpillTo::Realloc,
        );
        self.inst.task_exit(task);
        lowered.ok().map(|_| ())
    }
}

/// Import calls a guest makes from a plain export (`witness-drive` or any other): functions of
/// host resources, passed the host handles the guest holds (each once per call: an own moves it
/// to the host) and returning new ones (fresh reps), which the model lowers into its table; then
/// maybe drops of held host handles. `None` when nothing fit.
fn import_round(
    u: &mut Unstructured<'_>,
    prepared: &Prepared,
    m: &mut Model,
    drivers: &[u32],
    imports: &[u32],
) -> arbitrary::Result<Option<CallPlan>> {
    let export = *u.choose(drivers)?;
    let ft = &prepared.exports[export as usize].1;
    // 🔀 Async imports are called from async exports only (async-lowered calls run in a task).
    let imports: Vec<u32> = imports
        .iter()
        .copied()
        .filter(|&t| ft.async_ || !matches!(&prepared.imports[t as usize], ImportType::Func { ft, .. } if ft.async_))
        .collect();
    let args = arbitrary_values(u, &ft.param_types(), StringEncoding::Utf8)?;
    let mut ops = vec![];
    for _ in 0..u.int_in_range(1..=4)? {
        let Ok(&thunk) = u.choose(&imports) else { break };
        let ImportType::Func { ft: ift, .. } = &prepared.imports[thunk as usize] else { continue };
        let mut free = m.held_host_handles();
        let mut moved = vec![];
        let mut values = vec![];
        let mut fits = true;
        for t in ift.param_types() {
            let v = super::canonical_nans(arbitrary_value(u, &t, prepared.encoding, &[0])?);
            let picked = map_handles(&t, &v, &mut |rt, own, _| {
                let at = free.iter().position(|(_, r)| r.id == rt.id).ok_or_else(|| {
                    crate::reference::Trap::new(crate::reference::TrapKind::Assertion, "no handle".to_string())
                })?;
                let (i, _) = free.remove(at);
                if own {
                    moved.push(i);
                }
                Ok(i)
            });
            match picked {
                Ok(v) => values.push(v),
                Err(_) => fits = false,
            }
        }
        if !fits {
            continue;
        }
        // The engine lifts the arguments (lift_own takes an owned handle out of the guest's
        // table), then lowers the result (its handles may reuse the freed indices): the model
        // does the same, and is put back as it was if the reference refuses the result.
        let before = m.inst.clone();
        for i in moved {
            let _ = m.inst.handles.remove(i);
        }
        let result = match &ift.result {
            Some(t) => {
                let v = super::canonical_nans(arbitrary_value(u, t, StringEncoding::Utf8, &[0])?);
                let v = map_handles(t, &v, &mut |_, _, _| Ok(m.fresh_rep())).ok();
                match v {
                    Some(v) if m.lower_result(t, &v).is_some() => Some(v),
                    _ => {
                        m.inst = before;
                        break;
                    }
                }
            }
            None => None,
        };
        ops.push(GuestOp::Import(ImportPlan {
            thunk,
            args: GuestValues { values, corruption: None },
            result,
            later: false,
        }));
    }
    // The guest drops some of what it holds: the host's destructor runs.
    for (i, rt) in m.held_host_handles() {
        if let Some(drop) = drop_thunk(prepared, &rt)
            && u.ratio(1, 3)?
        {
            ops.push(GuestOp::Builtin { thunk: drop, arg: i });
            let _ = canon_resource_drop(&mut m.inst, &rt, i);
        }
    }
    if ops.is_empty() {
        return Ok(None);
    }
    let result = arbitrary_values(u, &ft.result_type(), prepared.encoding)?;
    Ok(Some(CallPlan { export, args, ops, result: GuestValues { values: result, corruption: None }, realloc: vec![] }))
}

/// Arbitrary resource steps for a world with resources, or `None` if it has none to drive.
/// (Resource plans corrupt nothing and answer realloc honestly, so `_cfg` has no knob for them
/// yet; it is taken for symmetry with `arbitrary_call`.)
pub fn arbitrary_resource_steps(
    u: &mut Unstructured<'_>,
    prepared: &Prepared,
    _cfg: &PlanConfig,
) -> arbitrary::Result<Option<Vec<StepPlan>>> {
    let shapes: Vec<(u32, Vec<Param>)> = prepared
        .exports
        .iter()
        .enumerate()
        .filter_map(|(k, (_, ft))| shape(ft).map(|s| (k as u32, s)))
        .filter(|(_, s)| s.iter().any(|p| matches!(p, Param::Handle { .. })))
        .collect();
    // Producers: a guest resource comes back from the call (constructors, statics).
    let producers: Vec<(u32, ResourceType)> = prepared
        .exports
        .iter()
        .enumerate()
        .filter_map(|(k, (_, ft))| match (&ft.result, shape(ft)) {
            (Some(ValType::Own(rt)), Some(s))
                if is_guest_resource(rt)
                    && s.iter().all(|p| matches!(p, Param::Plain(_)))
                    && new_thunk(prepared, rt).is_some() =>
            {
                Some((k as u32, rt.clone()))
            }
            _ => None,
        })
        .collect();
    // Plain exports to make import calls from, and the imports of host resources to call.
    let drivers: Vec<u32> =
        (0..prepared.exports.len() as u32).filter(|&k| plannable(&prepared.exports[k as usize].1)).collect();
    // Functions with handles (the plain ones are `arbitrary_call`'s), all of host resources,
    // whose params do not spill.
    let imports: Vec<u32> = (0..prepared.imports.len() as u32)
        .filter(|&t| match &prepared.imports[t as usize] {
            ImportType::Func { ft, .. } => {
                let types: Vec<&ValType> = ft.params.iter().map(|(_, t)| t).chain(&ft.result).collect();
                types.iter().any(|t| has_handles(t))
                    && !types.iter().any(|t| has_handle_of(t, &is_guest_resource))
                    && !moves_async_values(ft)
                    && flatten_types(&ft.param_types(), PtrType::I32).len() <= MAX_FLAT_PARAMS
            }
            _ => false,
        })
        .collect();
    let import_rounds = !drivers.is_empty() && !imports.is_empty();
    if shapes.is_empty() && producers.is_empty() && !import_rounds {
        return Ok(None);
    }
    let mut m = Model { inst: ComponentInstance::new(GUEST_INSTANCE), slots: vec![], next_rep: 100 };
    let mut steps = vec![];
    for _ in 0..u.int_in_range(1..=5)? {
        let live: Vec<u32> = (0..m.slots.len() as u32).filter(|&s| m.slots[s as usize].is_some()).collect();
        match u.int_in_range(0..=9)? {
            0..=3 if !producers.is_empty() => {
                let (k, rt) = u.choose(&producers)?.clone();
                let ft = &prepared.exports[k as usize].1;
                let args = arbitrary_values(u, &ft.param_types(), StringEncoding::Utf8)?;
                let rep = m.fresh_rep();
                let Some(new) = new_thunk(prepared, &rt) else { continue };
                let Ok(idx) = canon_resource_new(&mut m.inst, &rt, rep) else { break };
                // lift_own moves the handle out of the guest's table to the host.
                let _ = m.inst.handles.remove(idx);
                m.slots.push(Some((rt, rep)));
                steps.push(StepPlan::Call(CallPlan {
                    export: k,
                    args,
                    ops: vec![GuestOp::Builtin { thunk: new, arg: rep }],
                    result: GuestValues { values: vec![Value::Handle(idx)], corruption: None },
                    realloc: vec![],
                }));
            }
            4 if !live.is_empty() => {
                let slot = *u.choose(&live)?;
                m.slots[slot as usize] = None;
                steps.push(StepPlan::Drop { slot });
            }
            pick if import_rounds && (pick >= 7 || shapes.is_empty()) => {
                if let Some(call) = import_round(u, prepared, &mut m, &drivers, &imports)? {
                    steps.push(StepPlan::Call(call));
                }
            }
            _ if !shapes.is_empty() => {
                let (k, params) = u.choose(&shapes)?.clone();
                let ft = prepared.exports[k as usize].1.clone();
                // Arguments: a live slot of the right type for guest resources, a fresh rep for
                // host resources, arbitrary values otherwise.
                let mut args = vec![];
                let mut ok = true;
                // Each slot serves one parameter of a call (an own moves it away).
                let mut free = live.clone();
                for param in &params {
                    args.push(match param {
                        Param::Plain(t) => super::canonical_nans(crate::world::arbitrary::arbitrary_value(
                            u,
                            t,
                            StringEncoding::Utf8,
                            &[],
                        )?),
                        Param::Handle { rt, .. } if is_guest_resource(rt) => {
                            let fits: Vec<u32> = free
                                .iter()
                                .copied()
                                .filter(|&s| m.slots[s as usize].as_ref().is_some_and(|(r, _)| r.id == rt.id))
                                .collect();
                            match u.choose(&fits) {
                                Ok(&s) => {
                                    free.retain(|&f| f != s);
                                    Value::Handle(s)
                                }
                                Err(_) => {
                                    ok = false;
                                    Value::Handle(0)
                                }
                            }
                        }
                        Param::Handle { .. } => Value::Handle(m.fresh_rep()),
                    });
                }
                if !ok {
                    continue;
                }
                let Some(received) = m.lower_args(&ft, &params, &args) else { continue };
                for (param, arg) in params.iter().zip(&args) {
                    if let (Param::Handle { rt, own: true }, Value::Handle(s)) = (param, arg)
                        && is_guest_resource(rt)
                    {
                        m.slots[*s as usize] = None;
                    }
                }
                let mut ops = vec![];
                let mut misuse = false;
                for (param, idx) in params.iter().zip(&received) {
                    let (Param::Handle { rt, own }, Some(idx)) = (param, idx) else { continue };
                    if is_guest_resource(rt)
                        && let Some(rep) = rep_thunk(prepared, rt)
                        && u.arbitrary()?
                    {
                        ops.push(GuestOp::Builtin { thunk: rep, arg: *idx });
                    }
                    let Some(drop) = drop_thunk(prepared, rt) else { continue };
                    // Borrowed handles must be dropped before the call returns; owned ones may be.
                    let drop_it = if *own { u.ratio(1, 2)? } else { u.ratio(7, 8)? };
                    if drop_it {
                        ops.push(GuestOp::Builtin { thunk: drop, arg: *idx });
                        let _ = canon_resource_drop(&mut m.inst, rt, *idx);
                    }
                    if u.ratio(1, 10)? {
                        // Misuse: drop again (unknown handle), or drop with another type's
                        // built-in (type mismatch), or index 0.
                        let other = prepared
                            .imports
                            .iter()
                            .position(|i| matches!(i, ImportType::ResourceDrop(r) if r.id != rt.id));
                        let (thunk, arg) = match (u.int_in_range(0..=2)?, other) {
                            (0, Some(o)) => (o as u32, *idx),
                            (1, _) => (drop, 0),
                            _ => (drop, *idx),
                        };
                        ops.push(GuestOp::Builtin { thunk, arg });
                        misuse = true;
                    }
                }
                let result = match &ft.result {
                    Some(t) if !has_handles(t) => arbitrary_values(u, std::slice::from_ref(t), prepared.encoding)?,
                    Some(_) => continue,
                    None => vec![],
                };
                steps.push(StepPlan::Call(CallPlan {
                    export: k,
                    args,
                    ops,
                    result: GuestValues { values: result, corruption: None },
                    realloc: vec![],
                }));
                // The engines stop at a misuse trap; a model past it would be wrong.
                if misuse {
                    break;
                }
                // Handles the guest kept stay in its table; its borrows ended with the call.
                let tasks: Vec<_> = m.inst.tasks.keys().copied().collect();
                for t in tasks {
                    m.inst.task_exit(t);
                }
            }
            _ => {}
        }
    }
    Ok(if steps.is_empty() { None } else { Some(steps) })
}
