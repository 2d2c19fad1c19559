//! Scheduling of the calling process: `ioprio_set(2)` and `sched_setattr(2)`, which nix and
//! libc do not wrap (process.ioPriority and process.scheduler of the runtime-spec).

use std::io;

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, (class << 13) | level)`: the I/O class and level of the
/// calling process. Classes: 1 realtime, 2 best effort, 3 idle.
pub fn set_io_priority(class: u32, level: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_SHIFT: u32 = 13;
    let value = (class << IOPRIO_CLASS_SHIFT) | level;
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The kernel's `struct sched_attr` (SCHED_ATTR_SIZE_VER0, 48 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// `sched_setattr(0, attr, 0)`: the policy and parameters of the calling thread (the whole
/// process, for a single-threaded one); `size` is filled in.
pub fn set_scheduler(attr: &SchedAttr) -> io::Result<()> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        ..*attr
    };
    // SAFETY: attr is a valid, initialised struct sched_attr of the size it declares, which
    // the kernel only reads for the duration of the call.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sched_attr_is_the_kernels_first_version() {
        assert_eq!(std::mem::size_of::<SchedAttr>(), 48);
    }

    #[test]
    fn the_default_policy_and_best_effort_io_are_accepted() {
        set_scheduler(&SchedAttr::default()).expect("SCHED_OTHER, nice 0");
        set_io_priority(2, 4).expect("best effort, level 4");
    }
}
