//! A case and its outcome: what the host does (its steps, what its imports return), what the
//! guest does (its script), and everything observable about one run.

use crate::encode::script::{Event, Script};
use crate::reference::value::Value;
use crate::reference::{Trap, TrapKind};

/// One call the host makes: world export `export` (its index among the guest's function
/// exports) with these arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportCall {
    pub export: u32,
    pub args: Vec<Value>,
}

/// One thing the host does.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Call an export.
    Call(ExportCall),
    /// Drop the guest resource held in host slot `slot` (its destructor runs in the guest).
    Drop { slot: u32 },
}

/// The host's answer to one import call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportAnswer {
    /// What the import returns (`None` for a function without a result).
    pub result: Option<Value>,
    /// 🔀 Answered later (see `ImportPlan::later`).
    pub later: bool,
}

/// What a case does: the guest's script, the host's steps, and how the host answers its
/// imports (one entry per import call, in order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Case {
    pub script: Script,
    pub steps: Vec<Step>,
    pub import_answers: Vec<ImportAnswer>,
}

impl Case {
    /// The number of export calls.
    pub fn calls(&self) -> usize {
        self.steps.iter().filter(|s| matches!(s, Step::Call(_))).count()
    }

    /// The number of import calls the guest's script makes.
    pub fn script_calls(&self) -> usize {
        self.import_answers.len()
    }
}

/// What the host saw.
#[derive(Clone, Debug, PartialEq)]
pub enum HostEvent {
    /// The guest called host import thunk `thunk`; the host received these arguments.
    Import { thunk: u32, args: Vec<Value> },
    /// Export `export` returned this result.
    Returned { export: u32, result: Option<Value> },
    /// The host's destructor of a host resource ran with this rep.
    Dtor { rep: u32 },
    /// The host dropped the guest resource in this slot.
    Dropped { slot: u32 },
}

/// Everything observable about one run of a case on one engine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub events: Vec<HostEvent>,
    /// The class and message of the trap that ended the case, if any.
    pub trap: Option<Trap>,
    /// The guest's log, read after the case (absent after a trap: a trapped component
    /// instance cannot be entered again).
    pub log: Option<Vec<Event>>,
    /// In a composition, the callee guest's log (the caller's is `log`).
    pub callee_log: Option<Vec<Event>>,
}

impl Outcome {
    pub fn trap_kind(&self) -> Option<TrapKind> {
        self.trap.as_ref().map(|t| t.kind)
    }
}
