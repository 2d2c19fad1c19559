//! Seccomp: the spec's filter compiled with libseccomp and loaded before exec.
