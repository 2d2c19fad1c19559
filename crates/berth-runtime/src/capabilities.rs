//! Capabilities: the five sets of the process, from the spec to the kernel.
