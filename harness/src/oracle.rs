//! The oracle: compare an engine's outcome with the reference's prediction, field by field.
//! Values compare modulo NaN class (and strings by text); traps by class; the guest's log
//! (realloc calls, flat params, import results, bytes written) exactly, except float bits that
//! are NaN on both sides.

use crate::encode::script::Event;
use crate::engine::{HostEvent, Outcome, Prepared};
use crate::reference::types::CoreType;

/// One difference between the prediction and an engine.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    /// The rule area: trap, value, import-args, realloc, params, import-result, memory, events.
    pub area: &'static str,
    pub detail: String,
    /// For `trap`: the trap classes expected and seen (`none` for no trap).
    pub trap_classes: Option<(String, String)>,
}

fn nan_bits_equal(t: CoreType, a: u64, b: u64) -> bool {
    match t {
        CoreType::F32 => a == b || (f32::from_bits(a as u32).is_nan() && f32::from_bits(b as u32).is_nan()),
        CoreType::F64 => a == b || (f64::from_bits(a).is_nan() && f64::from_bits(b).is_nan()),
        _ => a == b,
    }
}

fn raws_equal(types: Option<&[CoreType]>, a: &[u64], b: &[u64]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).enumerate().all(|(i, (x, y))| match types.and_then(|ts| ts.get(i)) {
            Some(&t) => nan_bits_equal(t, *x, *y),
            None => x == y,
        })
}

fn event_area(e: &Event) -> &'static str {
    match e {
        Event::Enter { .. } => "params",
        Event::Realloc { .. } => "realloc",
        Event::Import { .. } => "import-result",
        Event::Memory { .. } => "memory",
    }
}

fn events_equal(prepared: &Prepared, a: &Event, b: &Event) -> bool {
    match (a, b) {
        (Event::Enter { entry: ea, params: pa }, Event::Enter { entry: eb, params: pb }) => {
            let types = prepared.spec.export_of(*ea).map(|e| e.sig.params.as_slice());
            ea == eb && raws_equal(types, pa, pb)
        }
        (Event::Import { thunk: ta, results: ra }, Event::Import { thunk: tb, results: rb }) => {
            let types = prepared.spec.imports.get(*ta as usize).map(|i| i.sig.results.as_slice());
            ta == tb && raws_equal(types, ra, rb)
        }
        _ => a == b,
    }
}

fn describe(e: &Event) -> String {
    match e {
        Event::Memory { addr, bytes } if bytes.len() > 64 => {
            format!("Memory {{ addr: {addr}, {} bytes }}", bytes.len())
        }
        other => format!("{other:?}"),
    }
}

fn host_event_equal(a: &HostEvent, b: &HostEvent) -> bool {
    match (a, b) {
        (HostEvent::Import { thunk: ta, args: aa }, HostEvent::Import { thunk: tb, args: ab }) => {
            ta == tb && aa.len() == ab.len() && aa.iter().zip(ab).all(|(x, y)| x.matches(y))
        }
        (HostEvent::Returned { export: ea, result: ra }, HostEvent::Returned { export: eb, result: rb }) => {
            ea == eb
                && match (ra, rb) {
                    (Some(x), Some(y)) => x.matches(y),
                    (None, None) => true,
                    _ => false,
                }
        }
        _ => a == b,
    }
}

/// Compare `actual` (an engine) with `expected` (the reference).
pub fn compare(prepared: &Prepared, expected: &Outcome, actual: &Outcome) -> Vec<Difference> {
    let mut out = vec![];
    if expected.trap_kind() != actual.trap_kind() {
        let show = |o: &Outcome| o.trap.as_ref().map_or("no trap".to_string(), |t| t.to_string());
        let class = |o: &Outcome| o.trap_kind().map_or("none".to_string(), |k| k.name().to_string());
        out.push(Difference {
            area: "trap",
            detail: format!("expected {}, engine: {}", show(expected), show(actual)),
            trap_classes: Some((class(expected), class(actual))),
        });
    }
    let n = expected.events.len().max(actual.events.len());
    for i in 0..n {
        match (expected.events.get(i), actual.events.get(i)) {
            (Some(a), Some(b)) if host_event_equal(a, b) => {}
            (a, b) => {
                let area = match a.or(b) {
                    Some(HostEvent::Import { .. }) => "import-args",
                    Some(HostEvent::Returned { .. }) => "value",
                    _ => "events",
                };
                out.push(Difference {
                    area,
                    detail: format!("host event {i}: expected {a:?}, engine {b:?}"),
                    trap_classes: None,
                });
                break;
            }
        }
    }
    if let (Some(la), Some(lb)) = (&expected.log, &actual.log) {
        let n = la.len().max(lb.len());
        for i in 0..n {
            match (la.get(i), lb.get(i)) {
                (Some(a), Some(b)) if events_equal(prepared, a, b) => {}
                (a, b) => {
                    let area = a.or(b).map_or("log", event_area);
                    let detail = format!(
                        "guest log event {i}: expected {}, engine {}",
                        a.map_or("nothing".into(), describe),
                        b.map_or("nothing".into(), describe)
                    );
                    out.push(Difference { area, detail, trap_classes: None });
                    break;
                }
            }
        }
    }
    out
}
