//! Runtime state the ABI needs (CanonicalABI.md "Runtime State" / "Options"):
//! the component instance with its handle table and `may_leave` flag, the task and subtask
//! that scope borrows, and `LiftLowerContext`.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::concurrency::embedding::Store;
use super::concurrency::subtask::Subtask;
use super::concurrency::thread::Thread;
use super::handles::Table;
use super::memory::Memory;
use super::trap::{Result, TrapKind, assert_that, trap_if};
use super::types::{InstanceId, StringEncoding};

/// `ComponentInstance`: one handle table for every resource type (and 🔀 waitables), `may_leave`,
/// and the borrow scopes of the tasks running in it; 🔀 for the async runtime also its store,
/// its threads, backpressure and the thread that runs exclusively. (No `may_enter`:
/// component-model #705 removed the reentrance flag and its trap.)
#[derive(Clone, Debug)]
pub struct ComponentInstance {
    pub id: InstanceId,
    /// 🔀 `store` (`None` for an instance the synchronous ABI alone uses).
    pub store: Option<Rc<Store>>,
    pub handles: Table,
    /// 🔀 `threads`.
    pub threads: Table<Rc<Thread>>,
    pub may_leave: bool,
    /// 🔀 `backpressure` (0 to 2^16 - 1).
    pub backpressure: i64,
    /// 🔀 `num_waiting_to_enter`.
    pub num_waiting_to_enter: u32,
    /// 🔀 `exclusive_thread`.
    pub exclusive_thread: Option<Rc<Thread>>,
    pub tasks: BTreeMap<TaskId, Task>,
    next_task: u32,
}

impl ComponentInstance {
    pub fn new(id: InstanceId) -> ComponentInstance {
        ComponentInstance {
            id,
            store: None,
            handles: Table::default(),
            threads: Table::default(),
            may_leave: true,
            backpressure: 0,
            num_waiting_to_enter: 0,
            exclusive_thread: None,
            tasks: BTreeMap::new(),
            next_task: 0,
        }
    }

    /// Swap the state both ABIs use (the handle table, the borrow scopes, `may_leave`) with
    /// `other`: an embedding that keeps one instance as two objects (the sync ABI's, borrowed
    /// mutably, and the async runtime's, shared) keeps its one state where the running code is.
    pub fn trade_shared_state(&mut self, other: &mut ComponentInstance) {
        std::mem::swap(&mut self.handles, &mut other.handles);
        std::mem::swap(&mut self.tasks, &mut other.tasks);
        std::mem::swap(&mut self.next_task, &mut other.next_task);
        std::mem::swap(&mut self.may_leave, &mut other.may_leave);
    }

    /// Start a `Task` for a call into this instance (the borrow scope of `lower_borrow`).
    pub fn start_task(&mut self) -> TaskId {
        let id = TaskId(self.next_task);
        self.next_task += 1;
        self.tasks.insert(id, Task::default());
        id
    }

    /// `Task.return_`: a task may not return while it still holds borrowed handles.
    pub fn task_return(&mut self, task: TaskId) -> Result<()> {
        let num_borrows = self.tasks.get(&task).map_or(0, |t| t.num_borrows);
        trap_if(num_borrows != 0, TrapKind::BorrowNotDropped, || {
            format!("Task.return_: {num_borrows} borrowed handle(s) not dropped before the call returned")
        })
    }

    /// `Task.exit`: the task is over.
    pub fn task_exit(&mut self, task: TaskId) {
        self.tasks.remove(&task);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u32);

/// `Task`: the callee side of a call; counts the borrow handles it received.
#[derive(Clone, Debug, Default)]
pub struct Task {
    pub num_borrows: u32,
}

/// `LiftLowerContext.borrow_scope`: a `Task` when lowering into the callee, a `Subtask` when
/// lifting a caller's arguments, nothing where no handles can appear.
#[derive(Debug)]
pub enum BorrowScope<'a> {
    None,
    Task(TaskId),
    Subtask(&'a mut Subtask),
}

/// `LiftLowerOptions`: the string encoding (the memory and its realloc are reached through
/// the context, see `Reach`).
pub struct LiftLowerOptions {
    pub string_encoding: StringEncoding,
}

/// An instance as a lift or lower reaches it: its memory (with realloc) and its state. One
/// object, because realloc runs guest code, and that code may reach the instance again
/// (`canon resource.rep` from inside realloc): neither may stay borrowed across the call.
pub trait InstanceMemory {
    fn memory(&self) -> &dyn Memory;
    fn memory_mut(&mut self) -> &mut dyn Memory;
    fn inst(&mut self) -> &mut ComponentInstance;
}

/// How a context reaches memory and instance: two separate objects (the reference on its
/// own heap), or one embedding that owns both.
enum Reach<'a> {
    Split { memory: &'a mut dyn Memory, inst: &'a mut ComponentInstance },
    Joined(&'a mut dyn InstanceMemory),
}

/// `LiftLowerContext(opts, inst, borrow_scope)`: `cx.opts.memory` is `cx.memory()` and
/// `cx.inst` is `cx.inst()`.
pub struct LiftLowerContext<'a> {
    pub opts: LiftLowerOptions,
    reach: Reach<'a>,
    pub borrow_scope: BorrowScope<'a>,
}

impl<'a> LiftLowerContext<'a> {
    pub fn new(
        string_encoding: StringEncoding,
        memory: &'a mut dyn Memory,
        inst: &'a mut ComponentInstance,
        borrow_scope: BorrowScope<'a>,
    ) -> LiftLowerContext<'a> {
        LiftLowerContext {
            opts: LiftLowerOptions { string_encoding },
            reach: Reach::Split { memory, inst },
            borrow_scope,
        }
    }

    /// A context over an embedding that holds the instance beside its memory.
    pub fn joined(
        string_encoding: StringEncoding,
        instance: &'a mut dyn InstanceMemory,
        borrow_scope: BorrowScope<'a>,
    ) -> LiftLowerContext<'a> {
        LiftLowerContext { opts: LiftLowerOptions { string_encoding }, reach: Reach::Joined(instance), borrow_scope }
    }

    /// `cx.opts.memory`, to read.
    pub fn memory(&self) -> &dyn Memory {
        match &self.reach {
            Reach::Split { memory, .. } => &**memory,
            Reach::Joined(i) => i.memory(),
        }
    }

    /// `cx.opts.memory`, to write or realloc.
    pub fn memory_mut(&mut self) -> &mut dyn Memory {
        match &mut self.reach {
            Reach::Split { memory, .. } => &mut **memory,
            Reach::Joined(i) => i.memory_mut(),
        }
    }

    /// `cx.inst`.
    pub fn inst(&mut self) -> &mut ComponentInstance {
        match &mut self.reach {
            Reach::Split { inst, .. } => inst,
            Reach::Joined(i) => i.inst(),
        }
    }

    /// `LiftLowerContext.reallocate`: realloc runs like a fresh synchronous export call
    /// (component-model #680), with `may_leave` cleared around it alone, so it cannot call
    /// imports or built-ins that need it.
    pub fn reallocate(&mut self, old: u64, old_byte_length: u64, alignment: u64, new_byte_length: u64) -> Result<u64> {
        assert_that(self.inst().may_leave, "reallocate: may_leave is set")?;
        self.inst().may_leave = false;
        let ptr = self.memory_mut().realloc(old, old_byte_length, alignment, new_byte_length)?;
        self.inst().may_leave = true;
        Ok(ptr)
    }

    /// `LiftLowerContext.allocate`.
    pub fn allocate(&mut self, alignment: u64, byte_length: u64) -> Result<u64> {
        self.reallocate(0, 0, alignment, byte_length)
    }
}
