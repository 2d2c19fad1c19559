//! Processes of the container: the runtime's side of create (parent), the init (child), and
//! the protocol between them.

pub(crate) mod fork;
pub mod init;
pub mod parent;
pub mod protocol;
pub mod reaper;

/// Makes the calling process, about to enter a container, lead a new session with no
/// controlling terminal (runc's and crun's processes do: the caller's terminal is no longer
/// reachable through /dev/tty). Never ignored.
pub(crate) fn new_session() -> crate::step::StepResult<()> {
    use crate::step::Step;
    nix::unistd::setsid()
        .map(drop)
        .step(|| "start a new session (setsid)".into())
}
