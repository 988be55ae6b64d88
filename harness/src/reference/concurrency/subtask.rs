//! Subtask State (CanonicalABI.md): the caller's side of a call, a waitable in the caller's
//! table while the call is in flight. It remembers the handles lent for `borrow` arguments,
//! so their `num_lends` drop when the resolution is delivered.

use std::fmt;

use super::task::OnCancel;
use super::waitable::{HasWaitable, Waitable};
use crate::reference::context::ComponentInstance;
use crate::reference::trap::{Result, assert_that};
use crate::reference::value::Flat;

/// `Subtask.State`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum SubtaskState {
    #[default]
    Starting = 0,
    Started = 1,
    Returned = 2,
    CancelledBeforeStarted = 3,
    CancelledBeforeReturned = 4,
}

#[derive(Default)]
pub struct Subtask {
    pub waitable: Waitable,
    pub state: SubtaskState,
    pub on_cancel: Option<OnCancel>,
    /// `lenders`: indices of the lending handles in the caller's table.
    pub lenders: Vec<u32>,
    /// `resolve_delivered()` (the spec sets `lenders` to `None`).
    delivered: bool,
    pub cancellation_requested: bool,
    pub flat_results: Vec<Flat>,
}

impl fmt::Debug for Subtask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<subtask {:?}>", self.state)
    }
}

impl HasWaitable for Subtask {
    fn waitable(&mut self) -> &mut Waitable {
        &mut self.waitable
    }
}

impl Subtask {
    pub fn resolved(&self) -> bool {
        match self.state {
            SubtaskState::Starting | SubtaskState::Started => false,
            SubtaskState::Returned | SubtaskState::CancelledBeforeStarted | SubtaskState::CancelledBeforeReturned => {
                true
            }
        }
    }

    /// `resolve(state, flat_results)`.
    pub fn resolve(&mut self, state: SubtaskState, flat_results: Vec<Flat>) -> Result<()> {
        assert_that(
            state == SubtaskState::Returned || flat_results.is_empty(),
            "Subtask.resolve: results only when returned",
        )?;
        assert_that(!self.resolved(), "Subtask.resolve: once")?;
        self.state = state;
        self.flat_results = flat_results;
        assert_that(self.resolved(), "Subtask.resolve: a resolved state")
    }

    /// `deliver_resolve()`: the lent handles are free again.
    pub fn deliver_resolve(&mut self, inst: &mut ComponentInstance) -> Result<()> {
        assert_that(!self.delivered && self.resolved(), "deliver_resolve: resolved, not yet delivered")?;
        for i in self.lenders.drain(..) {
            if let Some(h) = inst.handles.resource_mut(i) {
                h.num_lends = h.num_lends.saturating_sub(1);
            }
        }
        self.delivered = true;
        Ok(())
    }

    pub fn resolve_delivered(&self) -> bool {
        self.delivered
    }
}
