//! 🔀 The asynchronous part of definitions.py: threads and their stack switching, tasks,
//! the store's event loop, waitables and waitable sets, subtasks, copy buffers, stream and
//! future ends, async `canon_lift`/`canon_lower` and the async built-ins.
//!
//! | spec section                         | module      |
//! |--------------------------------------|-------------|
//! | Stack Switching                      | `switch`    |
//! | Threads                              | `thread`    |
//! | Tasks (`Task`, `OnStart`, ...)       | `task`      |
//! | Embedding API (`Store`)              | `embedding` |
//! | (the spec's random choices)          | `choice`    |
//! | Waitable State                       | `waitable`  |
//! | Subtask State                        | `subtask`   |
//! | Buffer State                         | `buffer`    |
//! | Stream State (`CopyResult`, `CopyEnd`, ...) | `stream` |
//! | Future State                         | `future`    |
//! | async `canon lift` / `canon lower`   | `canon`     |
//! | the 🔀 and 🧵 built-ins              | `builtins`  |
//!
//! Python objects are shared and compared by identity: here they are [`Obj`] (an `Rc` of a
//! `RefCell`, equal only to itself). No `RefCell` borrow is held across an `.await` or a
//! call that may run guest code.

pub mod buffer;
pub mod builtins;
pub mod canon;
pub mod choice;
pub mod embedding;
pub mod future;
pub mod stream;
pub mod subtask;
pub mod switch;
pub mod task;
pub mod thread;
pub mod waitable;

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::rc::Rc;

use super::context::ComponentInstance;

/// A shared, mutable spec object, equal only to itself (Python's `is`).
pub struct Obj<T: ?Sized>(pub Rc<RefCell<T>>);

impl<T> Obj<T> {
    pub fn new(v: T) -> Obj<T> {
        Obj(Rc::new(RefCell::new(v)))
    }
}

impl<T: ?Sized> Obj<T> {
    pub fn borrow(&self) -> Ref<'_, T> {
        self.0.borrow()
    }
    pub fn borrow_mut(&self) -> RefMut<'_, T> {
        self.0.borrow_mut()
    }
    /// `a is b`.
    pub fn is(&self, other: &Obj<T>) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl<T: ?Sized> Clone for Obj<T> {
    fn clone(&self) -> Obj<T> {
        Obj(self.0.clone())
    }
}

impl<T: ?Sized> PartialEq for Obj<T> {
    fn eq(&self, other: &Obj<T>) -> bool {
        self.is(other)
    }
}

impl<T: ?Sized> fmt::Debug for Obj<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = std::any::type_name::<T>().rsplit("::").next().unwrap_or("object");
        write!(f, "<{name} {:p}>", Rc::as_ptr(&self.0))
    }
}

/// A component instance as the async runtime shares it between threads.
pub type InstRef = Obj<ComponentInstance>;
