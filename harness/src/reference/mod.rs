//! The reference Canonical ABI: a Rust mirror of the Component Model's
//! `definitions.py` (CanonicalABI.md), function by function and with the same names, so that
//! anyone holding the spec can check each rule here.
//!
//! | spec section            | module      |
//! |-------------------------|-------------|
//! | value types, despecialize | `types`   |
//! | Alignment, Element Size | `layout`    |
//! | Flattening              | `flatten`   |
//! | Loading                 | `load`, `strings` |
//! | Storing                 | `store`, `strings` |
//! | Flat Lifting / `lift_flat_values` | `lift_flat` |
//! | Flat Lowering / `lower_flat_values` | `lower_flat` |
//! | Table/Resource state, resource built-ins | `handles` |
//! | 📝 error-context built-ins | `error_context` |
//! | ComponentInstance, Task, Subtask, LiftLowerContext | `context` |
//! | `canon_lift`, `canon_lower` (synchronous) | `canon` |
//! | 🔀 the async part: threads, tasks, Store, waitables, streams, futures, async built-ins | `concurrency` |
//!
//! Every `trap_if` is an early return of a [`Trap`] with a [`TrapKind`]; every spec `assert`
//! is a `TrapKind::Assertion` (a broken precondition of the caller). Arithmetic never wraps.

pub mod canon;
pub mod concurrency;
pub mod context;
pub mod error_context;
pub mod flatten;
pub mod handles;
pub mod layout;
pub mod lift_flat;
pub mod load;
pub mod lower_flat;
pub mod memory;
pub mod reached;
pub mod store;
pub mod strings;
pub mod trap;
pub mod types;
pub mod validate;
pub mod value;

pub use memory::{BumpHeap, Memory, ReallocCall};
pub use trap::{Trap, TrapKind};
pub use types::{CoreType, FuncType, PtrType, StringEncoding, ValType};
pub use value::{Flat, HostString, Value};
