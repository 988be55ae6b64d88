//! Runtimes, in the shape of the adapter protocol (adapters/PROTOCOL.md): a `Runtime`
//! compiles an `Artifact` (a prepared world: component, core module, boundary); a `Compiled`
//! world makes fresh instances, each with the `Host` that answers its imports; an `Instance`
//! calls exports with values and drops resources. One file per runtime; `REGISTRY` is the only
//! list of their names; `driver` runs a case on any of them.

pub mod artifact;
pub mod case;
pub mod core;
pub mod driver;
pub mod fused;
pub mod model;
pub mod model_async;
pub mod prepared;
pub mod resources;
pub mod wasmi;
pub mod wasmtime;
pub mod wasmtime_core;

use std::sync::Arc;

use anyhow::{Result, bail};

use crate::reference::Trap;
use crate::reference::types::ResourceType;
use crate::reference::value::Value;

pub use artifact::Artifact;
pub use case::{Case, ExportCall, HostEvent, ImportAnswer, Outcome, Step};
pub use prepared::Prepared;

/// A runtime: compiles artifacts.
pub trait Runtime {
    /// Compile `artifact`: its component or its core module, whichever this runtime runs.
    /// `Err(Unsupported)` when it cannot run this artifact at all.
    fn compile(&self, artifact: Arc<Artifact>) -> Result<Box<dyn Compiled>>;
}

/// A compiled world.
pub trait Compiled {
    /// How results name this runtime (an adapter names itself).
    fn label(&self) -> &str;
    /// A fresh instance whose imports `host` answers; no state survives from the last one.
    /// `Ok(Err(trap))`: the instantiation trapped (a start function, an initialization export).
    fn instantiate(&mut self, host: Box<dyn Host>) -> Result<Result<Box<dyn Instance + '_>, Trap>>;
}

/// One instance of a compiled world. `Err` is a failure of the harness or the runtime's
/// setup; `Ok(Err(trap))` a trap (the instance is not called again).
pub trait Instance {
    /// Call export `export` (an index into the artifact's exports) with `args`. Handles are
    /// the host's: reps of host resources, slots of guest ones (see `resources`).
    fn call(&mut self, export: usize, args: &[Value]) -> Result<Result<Option<Value>, Trap>>;
    /// Drop the guest resource in host slot `slot`: its destructor runs in the guest.
    fn drop_resource(&mut self, slot: u32) -> Result<Result<(), Trap>>;
    /// Run `f` on the linear memory of scripted guest `guest` (its index in the artifact's
    /// `guests`) where the host reaches it (a core runtime), and say so; `false` where it does
    /// not (a component's memories are reached through its exports only). The driver loads
    /// scripts and reads logs this way where it can: the control calls are the instrument, not
    /// the ABI under test, and took a quarter of a fuzz input's time.
    fn with_guest_memory(
        &mut self,
        _guest: usize,
        _f: &mut dyn FnMut(&mut dyn crate::reference::Memory) -> Result<()>,
    ) -> Result<bool> {
        Ok(false)
    }
}

/// The host side of an instance: what its imports return, and its resources' destructors.
pub trait Host {
    /// The guest called import `thunk` with these arguments; the result. An error that is a
    /// `Trap` is a trap of whatever the import reached (a composition's callee); any other
    /// error is a failure of the harness.
    fn import(&mut self, thunk: u32, args: Vec<Value>) -> Result<Option<Value>>;
    /// The last own handle of host resource `rt` with this rep was dropped.
    fn dtor(&mut self, rt: &ResourceType, rep: u32) -> Result<()>;
    /// 🔀 Whether the answer of the import call just made is delivered later, when the
    /// caller's event loop has nothing else to run (an async-lowered call then sees its subtask
    /// STARTED). Synchronous calls are always answered at once.
    fn answered_later(&self) -> bool {
        false
    }
}

/// A host the caller keeps a handle on (to read its events after the run).
impl<H: Host + ?Sized> Host for std::rc::Rc<std::cell::RefCell<H>> {
    fn import(&mut self, thunk: u32, args: Vec<Value>) -> Result<Option<Value>> {
        self.borrow_mut().import(thunk, args)
    }
    fn dtor(&mut self, rt: &ResourceType, rep: u32) -> Result<()> {
        self.borrow_mut().dtor(rt, rep)
    }
    fn answered_later(&self) -> bool {
        self.borrow().answered_later()
    }
}

/// A host with nothing to answer (a composition's callee: its imports were removed).
pub struct NoHost;

impl Host for NoHost {
    fn import(&mut self, thunk: u32, _: Vec<Value>) -> Result<Option<Value>> {
        bail!("import {thunk} was called, but nothing implements it")
    }
    fn dtor(&mut self, _: &ResourceType, _: u32) -> Result<()> {
        Ok(())
    }
}

/// A failure of the harness inside a host function (not a trap of the guest), carried through
/// an engine's error type.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "harness: {}", self.0)
    }
}

impl std::error::Error for HarnessError {}

/// 🔀 Why a runtime without the async ABI refuses an async world.
pub const ASYNC_UNSUPPORTED: &str = "the world is async: this runtime runs the synchronous Canonical ABI only";

/// An artifact runtime `engine` cannot run (its cases are skipped, not failed).
#[derive(Debug)]
pub struct Unsupported {
    pub engine: String,
    pub reason: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Unsupported {}

/// A runtime that should have taken a valid world failed to (an adapter's `compile`): the
/// error carries the runtime's label, so expectations files can name the failure.
#[derive(Debug)]
pub struct CompileFailed {
    pub engine: String,
    pub message: String,
}

impl std::fmt::Display for CompileFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CompileFailed {}

/// Fuel for an instantiation and for each call of a guest: a guest that loops costs one call,
/// not the run.
pub const FUEL: u64 = 10_000_000;

/// The memory one store may hold (guest memories are 2 pages and never grow; arbitrary guests
/// may try): a runaway guest costs one case, not the machine.
pub const MEMORY_LIMIT: usize = 16 << 20;

/// The handles one instance may hold: the spec's table holds 2^28 - 1 entries, and a lower
/// cap in a runtime shows up as a false table-full trap.
pub const MAX_HANDLES: usize = 1 << 28;

/// What a registered runtime is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The prediction the others are compared with.
    Reference,
    /// Under test, run when `--engine` is not given.
    Default,
    /// Under test when selected.
    Optional,
}

/// What names a runtime's composition mode: `wasmtime-fused`.
pub const FUSED_SUFFIX: &str = "-fused";

/// The name of a runtime's composition mode.
pub fn fused_name(name: &str) -> String {
    format!("{name}{FUSED_SUFFIX}")
}

/// An embedded runtime.
pub struct Registered {
    pub name: &'static str,
    /// What runs, and who lowers and lifts.
    pub about: &'static str,
    pub role: Role,
    /// Runs compositions (two guests in one component); selected as `NAME-fused`.
    pub compositions: bool,
    /// Its Canonical ABI is the reference's (the reference host lowers and lifts): where it
    /// and another engine end differently, the other one diverges from the spec.
    pub reference_abi: bool,
    /// 🔀 Runs async worlds (the others report them as not supported, `ASYNC_UNSUPPORTED`).
    pub asynchronous: bool,
    pub make: fn() -> Box<dyn Runtime>,
}

/// Every embedded runtime: the only list of their names.
pub const REGISTRY: &[Registered] = &[
    Registered {
        name: model::NAME,
        about: "the guest model with the reference host: the prediction",
        role: Role::Reference,
        compositions: false,
        reference_abi: true,
        asynchronous: true,
        make: model::runtime,
    },
    Registered {
        name: wasmtime::NAME,
        about: "the guest component on Wasmtime (Cranelift); Wasmtime lowers and lifts",
        role: Role::Default,
        compositions: true,
        reference_abi: false,
        asynchronous: true,
        make: wasmtime::cranelift,
    },
    Registered {
        name: wasmi::NAME,
        about: "the guest core module on wasmi; the reference host lowers and lifts",
        role: Role::Default,
        compositions: false,
        reference_abi: true,
        asynchronous: false,
        make: wasmi::runtime,
    },
    Registered {
        name: wasmtime_core::NAME,
        about: "the guest core module on Wasmtime's core API; the reference host lowers and lifts",
        role: Role::Default,
        compositions: false,
        reference_abi: true,
        asynchronous: false,
        make: wasmtime_core::runtime,
    },
    Registered {
        name: wasmtime::WINCH,
        about: "the guest component on Wasmtime with the Winch compiler",
        role: Role::Optional,
        compositions: true,
        reference_abi: false,
        asynchronous: true,
        make: wasmtime::winch,
    },
    Registered {
        name: wasmtime::PULLEY,
        about: "the guest component on Wasmtime's Pulley interpreter",
        role: Role::Optional,
        compositions: true,
        reference_abi: false,
        asynchronous: true,
        make: wasmtime::pulley,
    },
];
