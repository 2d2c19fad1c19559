//! Errors inside the init process: the step that failed and why, sent back to the parent as
//! text since the init cannot return a Rust error across the fork.

use std::fmt::Display;

/// A failed step of the init: "mount proc on /proc" and "Operation not permitted (os error 1)".
#[derive(Debug)]
pub struct StepError {
    pub step: String,
    pub error: String,
}

impl Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.error)
    }
}

pub type StepResult<T> = Result<T, StepError>;

/// Names the step of a fallible call.
pub trait Step<T> {
    fn step(self, step: impl FnOnce() -> String) -> StepResult<T>;
}

impl<T, E: Display> Step<T> for Result<T, E> {
    fn step(self, step: impl FnOnce() -> String) -> StepResult<T> {
        self.map_err(|e| StepError {
            step: step(),
            error: e.to_string(),
        })
    }
}

/// A step that failed for a reason of our own rather than an OS error.
pub fn fail<T>(step: impl Into<String>, error: impl Into<String>) -> StepResult<T> {
    Err(StepError {
        step: step.into(),
        error: error.into(),
    })
}
