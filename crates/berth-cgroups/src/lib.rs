//! berth-cgroups: create, limit, freeze, inspect and remove a container's cgroup on v1, v2 and
//! hybrid hosts, rooted at a caller-given path so that it can be tested on plain directories.
#![forbid(unsafe_code)]
