//! The seccomp agent's side of `SCMP_ACT_NOTIFY`: the listener a container process's filter
//! gave, sent to the agent listening at `linux.seccomp.listenerPath` with the process's state,
//! as runc sends it (sendContainerProcessState): one connection per process, one message, the
//! state as JSON with the listener passed along (SCM_RIGHTS), named in `fds`.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use oci_spec::runtime::{ContainerProcessState, ContainerState, LinuxSeccomp, State};

use crate::error::{Error, IoContext, Result};
use crate::state::Record;

/// Sends `listener`, the filter's of process `pid` (host pid), to the agent of `seccomp`: the
/// init's while the container is `creating`, an exec'd process's while it is `running`.
pub fn hand_over(
    seccomp: &LinuxSeccomp,
    record: &Record,
    status: ContainerState,
    pid: i32,
    listener: OwnedFd,
) -> Result<()> {
    // compile() refuses SCMP_ACT_NOTIFY without it.
    let Some(path) = seccomp.listener_path() else {
        return Err(Error::Config("listenerPath is not set".into()));
    };
    let mut state = State::default();
    state
        .set_version(oci_spec::runtime::VERSION.to_string())
        .set_id(record.id.clone())
        .set_status(status)
        .set_pid(Some(record.pid))
        .set_bundle(record.bundle.clone())
        .set_annotations((!record.annotations.is_empty()).then(|| record.annotations.clone()));
    let mut message = ContainerProcessState::default();
    message
        .set_version(oci_spec::runtime::VERSION.to_string())
        .set_fds(vec![oci_spec::runtime::SECCOMP_FD_NAME.to_string()])
        .set_pid(pid)
        .set_metadata(
            seccomp
                .listener_metadata()
                .clone()
                .filter(|m| !m.is_empty()),
        )
        .set_state(state);
    let json = serde_json::to_vec(&message)
        .map_err(|e| Error::Config(format!("the seccomp agent's message: {e}")))?;
    let agent = UnixStream::connect(path).at(
        "failed to connect with seccomp agent specified in the seccomp profile, at",
        path,
    )?;
    berth_sys::fd::send_with_fds(agent.as_fd(), &json, &[listener.as_fd()])
        .at("send the seccomp listener to the agent at", path)
}
