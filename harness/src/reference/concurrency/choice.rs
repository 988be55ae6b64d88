//! The points where definitions.py picks at random (`random.choice`, `random.randint`,
//! `random.shuffle`), made explicit: each asks a [`Chooser`], and the store keeps the trail of
//! what was asked and answered. An oracle can then follow an engine's choice at each point
//! (replay) instead of assuming one order; the deterministic chooser is the spec's
//! `DETERMINISTIC_PROFILE` where it has one and "the first candidate" elsewhere.
//!
//! Candidates are always offered in a fixed order (the order the spec's lists hold them, or
//! table index order for its sets), so a trail replays exactly.

/// Where the spec chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChoicePoint {
    /// `Thread.wait_until` with `ready_func()` already true: 0 blocks (as the deterministic
    /// profile always does), 1 returns at once without switching.
    WaitUntilReady,
    /// `WaitableSet.get_pending_event`: which of the members with a pending event is
    /// delivered (the spec shuffles the members and takes the first with an event).
    PendingEvent,
    /// `Store.tick`: which ready thread of the store runs.
    Tick,
    /// `canon_lift` of a synchronous function: which ready thread of the callee's instance
    /// runs while the call has not resolved.
    SyncCallCandidate,
    /// `Task.request_cancellation`: which cancellable thread of the task receives it.
    CancelCandidate,
}

/// One answered question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub point: ChoicePoint,
    /// How many options there were (at least 2: a single option is not a choice).
    pub options: usize,
    pub chosen: usize,
}

/// Answers the spec's random choices.
pub trait Chooser {
    /// Pick one of `options` (>= 2) at `point`; an answer out of range is taken modulo.
    fn choose(&mut self, point: ChoicePoint, options: usize) -> usize;
}

/// `DETERMINISTIC_PROFILE`: never return early from `wait_until`, and take the first candidate.
#[derive(Clone, Copy, Debug, Default)]
pub struct Deterministic;

impl Chooser for Deterministic {
    fn choose(&mut self, _: ChoicePoint, _: usize) -> usize {
        0
    }
}

/// Uniform choices from a seed (xorshift64*), so a failing order can be re-run.
#[derive(Clone, Debug)]
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Seeded {
        Seeded(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
}

impl Chooser for Seeded {
    fn choose(&mut self, _: ChoicePoint, options: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % options
    }
}

/// The given answers in order, then the first candidate: re-runs a recorded trail, or
/// follows the order another implementation took.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    answers: std::collections::VecDeque<usize>,
}

impl Replay {
    pub fn new(answers: impl IntoIterator<Item = usize>) -> Replay {
        Replay { answers: answers.into_iter().collect() }
    }
}

impl Chooser for Replay {
    fn choose(&mut self, _: ChoicePoint, _: usize) -> usize {
        self.answers.pop_front().unwrap_or(0)
    }
}

/// One run of [`explore`]: the answers given at its choice points, and what it ended with.
#[derive(Clone, Debug)]
pub struct Run<R> {
    pub answers: Vec<usize>,
    pub outcome: R,
}

/// Every way the spec's choices can go in `scenario`, depth first: `scenario` builds its store
/// with the given `Replay` and returns its outcome and the store's trail; each choice past the
/// replayed answers is tried with every other option in later runs. So the outcomes are
/// exactly those the spec allows (an oracle accepts an engine's result if it is among them).
/// Stops after `limit` runs; the flag says whether some were left out.
pub fn explore<R>(limit: usize, mut scenario: impl FnMut(Replay) -> (R, Vec<Choice>)) -> (Vec<Run<R>>, bool) {
    let mut runs = vec![];
    let mut prefixes: Vec<Vec<usize>> = vec![vec![]];
    while let Some(prefix) = prefixes.pop() {
        if runs.len() == limit {
            return (runs, true);
        }
        let (outcome, trail) = scenario(Replay::new(prefix.clone()));
        let answers: Vec<usize> = trail.iter().map(|c| c.chosen).collect();
        for i in (prefix.len()..trail.len()).rev() {
            for other in (1..trail[i].options).rev() {
                let mut p = answers[..i].to_vec();
                p.push(other);
                prefixes.push(p);
            }
        }
        runs.push(Run { answers, outcome });
    }
    (runs, false)
}
