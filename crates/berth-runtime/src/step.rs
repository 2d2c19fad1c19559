//! Errors inside the init process: the step that failed and why, sent back to the parent as
//! text since the init cannot return a Rust error across the fork.

use std::fmt::Display;

use crate::error::ExecErrorKind;

/// A failed step of the init: "mount proc on /proc" and "Operation not permitted (os error 1)".
#[derive(Debug)]
pub struct StepError {
    pub step: String,
    pub error: String,
    /// Set when the step was finding or executing the container's program.
    pub exec: Option<ExecErrorKind>,
}

impl StepError {
    /// Marks the error as a failure to run the container's program.
    pub fn exec(mut self, kind: ExecErrorKind) -> Self {
        self.exec = Some(kind);
        self
    }

    /// The exit status of a process that dies of this error before or at execve.
    pub fn exit_code(&self) -> i32 {
        self.exec.map_or(1, ExecErrorKind::exit_code)
    }

    /// The protocol message that reports this error to the runtime.
    pub fn to_message(&self) -> crate::process::protocol::FromInit {
        crate::process::protocol::FromInit::Failed {
            step: self.step.clone(),
            error: self.error.clone(),
            exec: self.exec,
        }
    }
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
            exec: None,
        })
    }
}

/// A step that failed for a reason of our own rather than an OS error.
pub fn fail<T>(step: impl Into<String>, error: impl Into<String>) -> StepResult<T> {
    Err(StepError {
        step: step.into(),
        error: error.into(),
        exec: None,
    })
}
