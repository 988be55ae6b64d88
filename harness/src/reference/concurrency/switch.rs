//! "Stack Switching" of definitions.py (`cont_new`, `resume`, `block`, `current_thread`).
//!
//! The spec runs each thread on a Python thread and hands a lock back and forth, so exactly
//! one runs at a time and `resume` returns when the resumed thread blocks. Here a thread's
//! body is a Rust future: `resume` polls it once, and `block` is the one future that returns
//! `Pending`, so a poll runs the thread up to its next `block` (or its end). Every `.await`
//! in this module tree is therefore a point where the spec may switch threads; nothing else
//! suspends. The spec's `thread_local_handler` is a per-OS-thread stack of handlers, one for
//! each `resume` in progress (resumes nest: a running thread may resume another).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::thread::Thread;
use crate::reference::trap::{Result, Trap, assertion_failed};

/// `Cancelled`: what a blocked thread is told when it resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancelled {
    False = 0,
    True = 1,
}

impl Cancelled {
    pub fn is_true(self) -> bool {
        self == Cancelled::True
    }
}

/// A future that runs on a thread of the reference (never sent across OS threads).
pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// `Continuation`: the rest of a thread, from where it blocked.
pub struct Continuation {
    body: LocalFuture<Result<()>>,
}

/// `Handler`: the `resume` in progress (the thread it runs, and what `block` tells it).
struct Handler {
    current_thread: Rc<Thread>,
    block_arg: Option<Rc<Thread>>,
    block_result: Cancelled,
    blocked: bool,
}

thread_local! {
    static HANDLERS: RefCell<Vec<Handler>> = const { RefCell::new(Vec::new()) };
}

/// `cont_new(f)`: a continuation that, when first resumed, runs `f(block_result)`.
pub fn cont_new<F, Fut>(f: F) -> Continuation
where
    F: FnOnce(Cancelled) -> Fut + 'static,
    Fut: Future<Output = Result<()>> + 'static,
{
    Continuation { body: Box::pin(async move { f(handler_block_result()?).await }) }
}

fn handler_block_result() -> Result<Cancelled> {
    HANDLERS.with(|h| h.borrow().last().map(|h| h.block_result)).ok_or_else(outside_thread)
}

fn outside_thread() -> Trap {
    assertion_failed("called outside a thread of the store")
}

/// `resume(cont, block_result, current_thread)`: run `cont` until it blocks (its continuation
/// and the thread it asked to switch to come back) or ends (`None`). A trap ends the run.
pub fn resume(
    mut cont: Continuation,
    block_result: Cancelled,
    current_thread: Rc<Thread>,
) -> Result<(Option<Continuation>, Option<Rc<Thread>>)> {
    HANDLERS.with(|h| h.borrow_mut().push(Handler { current_thread, block_arg: None, block_result, blocked: false }));
    let poll = cont.body.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    let handler = HANDLERS.with(|h| h.borrow_mut().pop()).expect("pushed above");
    match poll {
        Poll::Ready(Ok(())) => Ok((None, None)),
        Poll::Ready(Err(trap)) => Err(trap),
        Poll::Pending if handler.blocked => Ok((Some(cont), handler.block_arg)),
        Poll::Pending => Err(assertion_failed("a thread suspended without `block`")),
    }
}

/// `block(switch_to)`: give control back to the `resume` running this thread, asking it to
/// resume `switch_to` next; resolves to the `block_result` of the `resume` that continues it.
pub fn block(switch_to: Option<Rc<Thread>>) -> impl Future<Output = Result<Cancelled>> {
    Block { switch_to: Some(switch_to) }
}

struct Block {
    switch_to: Option<Option<Rc<Thread>>>,
}

impl Future for Block {
    type Output = Result<Cancelled>;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<Cancelled>> {
        match self.switch_to.take() {
            Some(switch_to) => {
                let set = HANDLERS.with(|h| {
                    h.borrow_mut().last_mut().map(|h| {
                        h.block_arg = switch_to;
                        h.blocked = true;
                    })
                });
                match set {
                    Some(()) => Poll::Pending,
                    None => Poll::Ready(Err(outside_thread())),
                }
            }
            None => Poll::Ready(handler_block_result()),
        }
    }
}

/// `current_thread()`.
pub fn current_thread() -> Result<Rc<Thread>> {
    HANDLERS.with(|h| h.borrow().last().map(|h| h.current_thread.clone())).ok_or_else(outside_thread)
}
