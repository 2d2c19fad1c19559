//! process.ioPriority and process.scheduler: checked and turned into what `ioprio_set(2)` and
//! `sched_setattr(2)` take, applied by the process itself before it drops its capabilities
//! (as runc 1.2 applies them; runc 1.1 ignores both fields).

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxSchedulerFlag, LinuxSchedulerPolicy, Scheduler,
};

pub use berth_sys::sched::SchedAttr;

/// The I/O class and level of `ioPriority`; the level is 0 (highest) to 7.
pub fn io_priority(p: &LinuxIOPriority) -> Result<(u32, u32), String> {
    let level = u32::try_from(p.priority())
        .ok()
        .filter(|l| *l <= 7)
        .ok_or_else(|| {
            format!(
                "process.ioPriority.priority {} is out of range: use 0 (highest) to 7",
                p.priority()
            )
        })?;
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    Ok((class, level))
}

/// The `sched_attr` of `scheduler`. What a policy takes is the kernel's to judge (its EINVAL
/// names the policy); only what the fields cannot hold is refused here.
pub fn scheduler(s: &Scheduler) -> Result<SchedAttr, String> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(format!(
            "process.scheduler.nice {nice} is out of range: use -20 to 19"
        ));
    }
    let priority = u32::try_from(s.priority().unwrap_or(0)).map_err(|_| {
        "process.scheduler.priority must not be negative: use 1 to 99 for SCHED_FIFO and SCHED_RR, else 0".to_string()
    })?;
    let flags = s.flags().iter().flatten().fold(0u64, |all, f| {
        all | match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        }
    });
    Ok(SchedAttr {
        size: 0,
        policy,
        flags,
        nice,
        priority,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_priority_levels_and_classes() {
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class": "IOPRIO_CLASS_IDLE", "priority": 7}"#).unwrap();
        assert_eq!(io_priority(&p), Ok((3, 7)));
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class": "IOPRIO_CLASS_RT", "priority": 8}"#).unwrap();
        assert!(io_priority(&p).unwrap_err().contains("0 (highest) to 7"));
    }

    #[test]
    fn scheduler_fields() {
        let s: Scheduler = serde_json::from_str(
            r#"{"policy": "SCHED_BATCH", "nice": 5, "flags": ["SCHED_RESET_ON_FORK"]}"#,
        )
        .unwrap();
        let attr = scheduler(&s).unwrap();
        assert_eq!((attr.policy, attr.nice, attr.flags), (3, 5, 1));
        let s: Scheduler =
            serde_json::from_str(r#"{"policy": "SCHED_OTHER", "nice": 20}"#).unwrap();
        assert!(scheduler(&s).unwrap_err().contains("-20 to 19"));
    }
}
