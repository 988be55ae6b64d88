//! The oracle: compare an engine's outcome with the reference's prediction, field by field.
//! Values compare modulo NaN class (and strings by text); traps by class; the guest's log
//! (realloc calls, flat params, import results, bytes written) exactly, except float bits that
//! are NaN on both sides.

use crate::encode::script::Event;
use crate::reference::load::{CANONICAL_FLOAT32_NAN, CANONICAL_FLOAT64_NAN};
use crate::reference::types::CoreType;
use crate::runtime::fused::FusedPrepared;
use crate::runtime::prepared::ImportType;
use crate::runtime::{HostEvent, Outcome, Prepared};

/// What part of an outcome differs: the oracle's rule areas, as expectations files name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Area {
    /// The engine could not take a valid world.
    Compile,
    /// The trap, or its class.
    Trap,
    /// A value an export returned.
    Value,
    /// The arguments an import received.
    ImportArgs,
    /// The host's other events (destructors, drops), or their number.
    Events,
    /// The guest's log: its realloc calls,
    Realloc,
    /// the flat params of its entries,
    Params,
    /// the flat results of its import calls,
    ImportResult,
    /// the memory it logged,
    Memory,
    /// or where one log ends before the other.
    Log,
}

impl Area {
    pub fn name(self) -> &'static str {
        match self {
            Area::Compile => "compile",
            Area::Trap => "trap",
            Area::Value => "value",
            Area::ImportArgs => "import-args",
            Area::Events => "events",
            Area::Realloc => "realloc",
            Area::Params => "params",
            Area::ImportResult => "import-result",
            Area::Memory => "memory",
            Area::Log => "log",
        }
    }
}

impl std::fmt::Display for Area {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One difference between the prediction and an engine.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    pub area: Area,
    pub detail: String,
    /// For `trap`: the trap classes expected and seen (`none` for no trap).
    pub trap_classes: Option<(String, String)>,
    /// For a guest-log area: the event expected and the engine's (`nothing` where one log ends).
    pub events: Option<(String, String)>,
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

/// Memory bytes equal, except that where the reference stored a canonical NaN (it runs the
/// deterministic profile) the engine may have stored any NaN: `maybe_scramble_nan32/64` lets
/// lowering produce an arbitrary NaN. Floats sit at aligned addresses, so aligned windows
/// holding the canonical patterns are compared by NaN class.
fn memory_equal(addr: u32, expected: &[u8], actual: &[u8]) -> bool {
    if expected.len() != actual.len() {
        return false;
    }
    let mut i = 0;
    while i < expected.len() {
        let at = u64::from(addr) + i as u64;
        let window = |n: usize| {
            (at.is_multiple_of(n as u64) && i + n <= expected.len()).then(|| (&expected[i..i + n], &actual[i..i + n]))
        };
        if let Some((e, a)) = window(8)
            && e == CANONICAL_FLOAT64_NAN.to_le_bytes()
            && f64::from_le_bytes(a.try_into().unwrap()).is_nan()
        {
            i += 8;
            continue;
        }
        if let Some((e, a)) = window(4)
            && e == CANONICAL_FLOAT32_NAN.to_le_bytes()
            && f32::from_le_bytes(a.try_into().unwrap()).is_nan()
        {
            i += 4;
            continue;
        }
        if expected[i] != actual[i] {
            return false;
        }
        i += 1;
    }
    true
}

fn event_area(e: &Event) -> Area {
    match e {
        Event::Enter { .. } => Area::Params,
        Event::Realloc { .. } => Area::Realloc,
        Event::Import { .. } => Area::ImportResult,
        Event::Memory { .. } => Area::Memory,
    }
}

fn events_equal(prepared: &Prepared, a: &Event, b: &Event) -> bool {
    match (a, b) {
        (Event::Enter { entry: ea, params: pa }, Event::Enter { entry: eb, params: pb }) => {
            let types = prepared.guest.export_of(*ea).map(|e| e.sig.params.as_slice());
            ea == eb && raws_equal(types, pa, pb)
        }
        (Event::Import { thunk: ta, results: ra }, Event::Import { thunk: tb, results: rb }) => {
            let types = prepared.guest.imports.get(*ta as usize).map(|i| i.sig.results.as_slice());
            ta == tb && raws_equal(types, ra, rb)
        }
        (Event::Memory { addr: aa, bytes: ba }, Event::Memory { addr: ab, bytes: bb }) => {
            aa == ab && memory_equal(*aa, ba, bb)
        }
        _ => a == b,
    }
}

/// An event as text, for reports and for expectations files' `expected-event` patterns: an
/// import call names what it called (`resource.new thing`, or the function).
fn describe(prepared: &Prepared, e: &Event) -> String {
    match e {
        Event::Memory { addr, bytes } if bytes.len() > 64 => {
            format!("Memory {{ addr: {addr}, {} bytes }}", bytes.len())
        }
        Event::Import { thunk, results } => {
            let what = match prepared.imports.get(*thunk as usize) {
                Some(ImportType::Func { name, .. }) => name.clone(),
                Some(ImportType::ResourceNew(rt)) => format!("resource.new {}", rt.name),
                Some(ImportType::ResourceRep(rt)) => format!("resource.rep {}", rt.name),
                Some(ImportType::ResourceDrop(rt)) => format!("resource.drop {}", rt.name),
                Some(ImportType::Async(builtin)) => builtin.describe(),
                None => "?".into(),
            };
            format!("Import {{ thunk: {thunk} ({what}), results: {results:?} }}")
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

/// An engine could not set a world up at all (an adapter's compile failed): a difference of
/// area `compile`, whose `actual-event` text is the engine's message, so expectations files can
/// name a known inability.
pub fn compile_difference(message: &str) -> Difference {
    Difference {
        area: Area::Compile,
        detail: format!("the engine cannot set the world up: {message}"),
        trap_classes: None,
        events: Some(("the world compiles".into(), message.into())),
    }
}

/// Where two logged memory ranges at one address first differ, with the bytes around it:
/// the length alone says nothing of what went wrong.
fn first_byte_difference(a: Option<&Event>, b: Option<&Event>) -> String {
    let (Some(Event::Memory { addr, bytes: ea }), Some(Event::Memory { addr: ab, bytes: eb })) = (a, b) else {
        return String::new();
    };
    let Some(i) = (0..ea.len().min(eb.len())).find(|&i| ea[i] != eb[i]).filter(|_| addr == ab) else {
        return String::new();
    };
    let window =
        |bytes: &[u8]| bytes[i..(i + 8).min(bytes.len())].iter().map(|b| format!("{b:02x}")).collect::<String>();
    format!(
        "; the first differing byte is at {} (offset {i}): expected {}.., engine {}..",
        u64::from(*addr) + i as u64,
        window(ea),
        window(eb)
    )
}

/// Compare two guest logs (when both exist), reporting the first difference.
fn compare_logs(
    prepared: &Prepared,
    la: Option<&[Event]>,
    lb: Option<&[Event]>,
    whose: &str,
    out: &mut Vec<Difference>,
) {
    let (Some(la), Some(lb)) = (la, lb) else { return };
    for i in 0..la.len().max(lb.len()) {
        match (la.get(i), lb.get(i)) {
            (Some(a), Some(b)) if events_equal(prepared, a, b) => {}
            (a, b) => {
                let area = a.or(b).map_or(Area::Log, event_area);
                let show = |e: Option<&Event>| e.map_or("nothing".into(), |e| describe(prepared, e));
                let at = first_byte_difference(a, b);
                let (a, b) = (show(a), show(b));
                let detail = format!("{whose} log event {i}: expected {a}, engine {b}{at}");
                out.push(Difference { area, detail, trap_classes: None, events: Some((a, b)) });
                return;
            }
        }
    }
}

/// Compare a composition's outcome: the caller side as `compare` does, and the callee's log.
pub fn compare_fused(fp: &FusedPrepared, expected: &Outcome, actual: &Outcome) -> Vec<Difference> {
    let mut out = compare(&fp.caller, expected, actual);
    compare_logs(&fp.callee, expected.callee_log.as_deref(), actual.callee_log.as_deref(), "callee", &mut out);
    out
}

/// Compare `actual` (an engine) with `expected` (the reference).
pub fn compare(prepared: &Prepared, expected: &Outcome, actual: &Outcome) -> Vec<Difference> {
    let mut out = vec![];
    if expected.trap_kind() != actual.trap_kind() {
        let show = |o: &Outcome| o.trap.as_ref().map_or("no trap".to_string(), |t| t.to_string());
        let class = |o: &Outcome| o.trap_kind().map_or("none".to_string(), |k| k.name().to_string());
        out.push(Difference {
            area: Area::Trap,
            detail: format!("expected {}, engine: {}", show(expected), show(actual)),
            trap_classes: Some((class(expected), class(actual))),
            events: None,
        });
    }
    // A trap ends a run: when the runs end differently (one side trapped, or they trapped in
    // different classes), what one went on to do is that trap difference again, so only the
    // events both sides had are compared. Runs that end alike must match event for event.
    let (ne, na) = (expected.events.len(), actual.events.len());
    let n = if expected.trap_kind() != actual.trap_kind() { ne.min(na) } else { ne.max(na) };
    for i in 0..n {
        match (expected.events.get(i), actual.events.get(i)) {
            (Some(a), Some(b)) if host_event_equal(a, b) => {}
            (a, b) => {
                let area = match a.or(b) {
                    Some(HostEvent::Import { .. }) => Area::ImportArgs,
                    Some(HostEvent::Returned { .. }) => Area::Value,
                    _ => Area::Events,
                };
                out.push(Difference {
                    area,
                    detail: format!("host event {i}: expected {a:?}, engine {b:?}"),
                    trap_classes: None,
                    events: None,
                });
                break;
            }
        }
    }
    compare_logs(prepared, expected.log.as_deref(), actual.log.as_deref(), "guest", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::{Area, compare, first_byte_difference, memory_equal};

    #[test]
    fn a_memory_difference_names_its_first_byte() {
        use crate::encode::script::Event;
        let mut bytes = vec![0u8; 200];
        let expected = Event::Memory { addr: 65536, bytes: bytes.clone() };
        bytes[130] = 0xab;
        let actual = Event::Memory { addr: 65536, bytes };
        let at = first_byte_difference(Some(&expected), Some(&actual));
        assert_eq!(
            at,
            "; the first differing byte is at 65666 (offset 130): expected 0000000000000000.., engine ab00000000000000.."
        );
    }
    use crate::reference::{Trap, TrapKind};
    use crate::runtime::{HostEvent, Outcome, Prepared};

    #[test]
    fn when_only_the_engine_traps_the_trap_is_the_one_difference() {
        let world = "package t:t; world w { export f: func(); }";
        let p =
            Prepared::from_wit(world, None, crate::encode::names::NameScheme::Standard, Default::default()).unwrap();
        let returned = Outcome { events: vec![HostEvent::Returned { export: 0, result: None }], ..Default::default() };
        let trapped = Outcome { trap: Some(Trap::new(TrapKind::MisalignedPointer, "x")), ..Default::default() };
        let areas = |d: Vec<super::Difference>| d.into_iter().map(|d| d.area).collect::<Vec<_>>();
        assert_eq!(areas(compare(&p, &returned, &trapped)), [Area::Trap]);
        assert_eq!(areas(compare(&p, &trapped, &returned)), [Area::Trap]);
        // Both returned: a missing event is a difference of its own.
        assert_eq!(areas(compare(&p, &returned, &Outcome::default())), [Area::Value]);
        // Both trapped in one class, one of them a call later: the extra event is a difference.
        let returned_then_trapped = Outcome { trap: trapped.trap.clone(), ..returned.clone() };
        assert_eq!(areas(compare(&p, &returned_then_trapped, &trapped)), [Area::Value]);
        // Both trapped, in different classes: the trap is the one difference.
        let other = Outcome { trap: Some(Trap::new(TrapKind::OutOfBounds, "y")), ..Default::default() };
        assert_eq!(areas(compare(&p, &returned_then_trapped, &other)), [Area::Trap]);
    }

    #[test]
    fn memory_compares_stored_nans_by_class_only_where_the_reference_stored_one() {
        // maybe_scramble_nan64: any NaN may be stored where the reference stored the canonical one.
        let canonical = 0x7ff8_0000_0000_0000u64.to_le_bytes();
        let other_nan = 0xfff0_00cd_0000_0000u64.to_le_bytes();
        assert!(memory_equal(16, &canonical, &other_nan));
        // Not aligned: bytes compare exactly.
        assert!(!memory_equal(17, &canonical, &other_nan));
        // A NaN where the reference stored a number, or a number where it stored a NaN, differs.
        assert!(!memory_equal(16, &1.5f64.to_le_bytes(), &other_nan));
        assert!(!memory_equal(16, &canonical, &1.5f64.to_le_bytes()));
        // f32 windows.
        assert!(memory_equal(8, &0x7fc0_0000u32.to_le_bytes(), &0xffc0_0001u32.to_le_bytes()));
        assert!(!memory_equal(8, &[1, 2, 3, 4], &[1, 2, 3, 5]));
    }
}
