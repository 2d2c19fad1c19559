//! BPF programs for cgroup v2 device control (BPF_PROG_TYPE_CGROUP_DEVICE).
