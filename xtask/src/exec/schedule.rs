//! Which step starts next. Unpacks and build commands run side by side, two
//! at a time, as soon as the steps they come after are done (the planner
//! names exactly what each uses): contrib compiles while the server installs
//! and a plugin builds. Two installs never run at once, since each records
//! the files it adds to the stage. Every other step (package, smoke,
//! install) runs alone, after every step before it, and nothing after it
//! starts before it: around them the plan's order is kept.

use crate::plan::{Action, Step};

/// At most this many steps at once. Each `make` already runs `-jN`; two
/// overlap only where one of them leaves cores idle (an install, a
/// configure, the end of a compile).
const SIDE_BY_SIDE: usize = 2;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Finished,
    Failed,
}

pub struct Schedule<'a> {
    steps: &'a [&'a Step],
    state: Vec<State>,
}

impl<'a> Schedule<'a> {
    pub fn new(steps: &'a [&'a Step]) -> Schedule<'a> {
        Schedule {
            steps,
            state: vec![State::Waiting; steps.len()],
        }
    }

    /// Whether `step` may run beside others, on a thread of its own.
    pub fn side_by_side(step: &Step) -> bool {
        matches!(step.action, Action::Unpack(_) | Action::Run(_))
    }

    /// Writes to the stage.
    fn installs(step: &Step) -> bool {
        matches!(&step.action, Action::Run(run) if run.installs || run.fresh_dir.is_some())
    }

    /// The first waiting step, in plan order, that may start now; it is
    /// running from now on.
    pub fn start_next(&mut self) -> Option<usize> {
        let running: Vec<usize> = (0..self.steps.len())
            .filter(|&index| self.state[index] == State::Running)
            .collect();
        for (index, step) in self.steps.iter().enumerate() {
            if self.state[index] != State::Waiting {
                continue;
            }
            if !Self::side_by_side(step) {
                let alone =
                    running.is_empty() && self.state[..index].iter().all(|s| *s == State::Finished);
                return alone.then(|| self.start(index));
            }
            if running.len() >= SIDE_BY_SIDE {
                return None;
            }
            let inputs_done = step.after.iter().all(|id| {
                self.steps
                    .iter()
                    .position(|other| &other.id == id)
                    .is_none_or(|other| self.state[other] == State::Finished)
            });
            let stage_free =
                !Self::installs(step) || !running.iter().any(|&i| Self::installs(self.steps[i]));
            if inputs_done && stage_free {
                return Some(self.start(index));
            }
        }
        None
    }

    fn start(&mut self, index: usize) -> usize {
        self.state[index] = State::Running;
        index
    }

    pub fn finished(&mut self, index: usize) {
        self.state[index] = State::Finished;
    }

    /// Failed, or never started: nothing that comes after it will start.
    pub fn stopped(&mut self, index: usize) {
        self.state[index] = State::Failed;
    }

    /// A step that never started, if any.
    pub fn waiting(&self) -> Option<usize> {
        self.state.iter().position(|s| *s == State::Waiting)
    }

    pub fn running(&self) -> bool {
        self.state.contains(&State::Running)
    }
}
