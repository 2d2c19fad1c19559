//! Device rules on cgroup v2, which has no `devices.allow`: a BPF_PROG_TYPE_CGROUP_DEVICE
//! program generated from the rules (modelled on runc's `devicefilter.go`) and attached to the
//! container's cgroup directory.
//!
//! The rules are checked last to first and the first that matches decides, which is v1's
//! "the last matching rule wins"; no match denies. An allow rule matches when it grants all of
//! the requested access, a deny rule when it refuses any of it, so partial-access rules can
//! only make the result stricter. Programs of ancestor cgroups still run (`BPF_F_ALLOW_MULTI`):
//! each one must allow an access.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use berth_sys::bpf::{self, dev_ctx, op, Insn};
use oci_spec::runtime::LinuxDeviceCgroup;

use crate::devices::{parse_rules, DeviceKind, DeviceRule, ALL_ACCESS, MKNOD, READ, WRITE};
use crate::error::{CgroupError, Result};

/// The license string goes in the kernel's `MODULE_LICENSE` format; no GPL-only helper is used.
const LICENSE: &std::ffi::CStr = c"Apache";

// Registers: R1 holds the context on entry, R0 the verdict on exit.
const R0: u8 = 0;
const R1: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

/// The program enforcing `rules`, for `bpf::prog_load`.
pub fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    Ok(emit(&parse_rules(rules)?))
}

fn emit(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut insns = vec![
        Insn::load_u32(TYPE, R1, dev_ctx::ACCESS_TYPE),
        Insn::alu32_imm(op::AND, TYPE, 0xffff),
        Insn::load_u32(ACCESS, R1, dev_ctx::ACCESS_TYPE),
        Insn::alu32_imm(op::RSH, ACCESS, 16),
        Insn::load_u32(MAJOR, R1, dev_ctx::MAJOR),
        Insn::load_u32(MINOR, R1, dev_ctx::MINOR),
    ];
    for rule in rules.iter().rev() {
        insns.extend(block(rule));
    }
    insns.extend(verdict(false));
    insns
}

fn verdict(allow: bool) -> [Insn; 2] {
    [Insn::alu32_imm(op::MOV, R0, i32::from(allow)), Insn::exit()]
}

/// One rule: checks that jump past the block on a mismatch, then the rule's verdict.
fn block(rule: &DeviceRule) -> Vec<Insn> {
    // Jump offsets are filled in once the block's length is known.
    let mut checks: Vec<Insn> = Vec::new();
    match rule.kind {
        DeviceKind::All => {}
        DeviceKind::Block => checks.push(Insn::jump_imm(op::JNE, TYPE, dev_ctx::DEV_BLOCK, 0)),
        DeviceKind::Char => checks.push(Insn::jump_imm(op::JNE, TYPE, dev_ctx::DEV_CHAR, 0)),
    }
    if rule.access != ALL_ACCESS {
        let granted = bpf_access(rule.access);
        checks.push(Insn::mov32_reg(R1, ACCESS));
        checks.push(Insn::alu32_imm(op::AND, R1, granted));
        checks.push(if rule.allow {
            Insn::jump_reg(op::JNE, R1, ACCESS, 0)
        } else {
            Insn::jump_imm(op::JEQ, R1, 0, 0)
        });
    }
    // A number above i32::MAX sign-extends and so never matches, and no device has one
    // (majors have 12 bits, minors 20).
    if let Some(major) = rule.major {
        checks.push(Insn::jump_imm(op::JNE, MAJOR, major as i32, 0));
    }
    if let Some(minor) = rule.minor {
        checks.push(Insn::jump_imm(op::JNE, MINOR, minor as i32, 0));
    }
    let len = checks.len() + 2;
    for (i, insn) in checks.iter_mut().enumerate() {
        if insn.code & 0x07 == op::JMP {
            // Relative to the next instruction; the target is the first one after the block.
            insn.off = (len - i - 1) as i16;
        }
    }
    checks.extend(verdict(rule.allow));
    checks
}

fn bpf_access(access: u8) -> i32 {
    [
        (READ, dev_ctx::ACC_READ),
        (WRITE, dev_ctx::ACC_WRITE),
        (MKNOD, dev_ctx::ACC_MKNOD),
    ]
    .iter()
    .filter(|(bit, _)| access & bit != 0)
    .fold(0, |acc, (_, b)| acc | b)
}

/// Loads the program for `rules` and attaches it to the cgroup `dir`, then detaches the
/// programs an earlier `apply` left, so that an update replaces the rules instead of adding
/// to them. The new program is in place before the old ones go: there is no unguarded moment.
pub(crate) fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let insns = program(rules)?;
    let bpf_error = |step| {
        move |source| CgroupError::Bpf {
            step,
            path: dir.to_owned(),
            source,
        }
    };
    let cgroup = File::open(dir).map_err(|source| CgroupError::Open {
        path: dir.to_owned(),
        source,
    })?;
    let old = bpf::prog_query(cgroup.as_fd(), bpf::ATTACH_CGROUP_DEVICE)
        .map_err(bpf_error("list the"))?;
    let prog = bpf::prog_load(bpf::PROG_TYPE_CGROUP_DEVICE, &insns, LICENSE)
        .map_err(bpf_error("load the"))?;
    bpf::prog_attach(
        prog.as_fd(),
        cgroup.as_fd(),
        bpf::ATTACH_CGROUP_DEVICE,
        bpf::F_ALLOW_MULTI,
    )
    .map_err(bpf_error("attach the"))?;
    for id in old {
        let detached = bpf::prog_get_fd_by_id(id).and_then(|old| {
            bpf::prog_detach(old.as_fd(), cgroup.as_fd(), bpf::ATTACH_CGROUP_DEVICE)
        });
        match detached {
            // Gone meanwhile: nothing left to detach.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            other => other.map_err(bpf_error("detach the previous"))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::rule;
    use oci_spec::runtime::LinuxDeviceType::{A, B, C};

    const PROLOGUE: usize = 6;

    fn jump(code: u8, dst: u8, imm: i32, off: i16) -> Insn {
        Insn::jump_imm(code, dst, imm, off)
    }

    #[test]
    fn no_rules_deny_everything() {
        let insns = program(&[]).unwrap();
        assert_eq!(insns.len(), PROLOGUE + 2);
        assert_eq!(insns[PROLOGUE..], verdict(false));
    }

    #[test]
    fn prologue_splits_type_and_access() {
        let insns = program(&[]).unwrap();
        assert_eq!(insns[0], Insn::load_u32(TYPE, R1, 0));
        assert_eq!(insns[1], Insn::alu32_imm(op::AND, TYPE, 0xffff));
        assert_eq!(insns[3], Insn::alu32_imm(op::RSH, ACCESS, 16));
        assert_eq!(insns[4], Insn::load_u32(MAJOR, R1, 4));
        assert_eq!(insns[5], Insn::load_u32(MINOR, R1, 8));
    }

    #[test]
    fn a_full_access_rule_checks_type_major_minor() {
        let insns = program(&[rule(true, C, Some(1), Some(3), "rwm")]).unwrap();
        let body = &insns[PROLOGUE..];
        assert_eq!(
            body,
            [
                jump(op::JNE, TYPE, dev_ctx::DEV_CHAR, 4),
                jump(op::JNE, MAJOR, 1, 3),
                jump(op::JNE, MINOR, 3, 2),
                Insn::alu32_imm(op::MOV, R0, 1),
                Insn::exit(),
                Insn::alu32_imm(op::MOV, R0, 0),
                Insn::exit(),
            ]
        );
    }

    #[test]
    fn partial_access_allows_a_subset_and_denies_an_overlap() {
        let allow = program(&[rule(true, B, Some(8), None, "rw")]).unwrap();
        assert_eq!(
            allow[PROLOGUE..PROLOGUE + 5],
            [
                jump(op::JNE, TYPE, dev_ctx::DEV_BLOCK, 6),
                Insn::mov32_reg(R1, ACCESS),
                Insn::alu32_imm(op::AND, R1, dev_ctx::ACC_READ | dev_ctx::ACC_WRITE),
                Insn::jump_reg(op::JNE, R1, ACCESS, 3),
                jump(op::JNE, MAJOR, 8, 2),
            ]
        );
        let deny = program(&[rule(false, C, None, None, "m")]).unwrap();
        assert_eq!(deny[PROLOGUE + 3], jump(op::JEQ, R1, 0, 2));
        assert_eq!(deny[PROLOGUE + 4], Insn::alu32_imm(op::MOV, R0, 0));
    }

    #[test]
    fn the_last_rule_is_checked_first() {
        // Docker's shape: deny all, then allow /dev/null.
        let rules = [
            rule(false, A, None, None, "rwm"),
            rule(true, C, Some(1), Some(3), "rwm"),
        ];
        let insns = program(&rules).unwrap();
        // The null block (3 checks + verdict) comes first, then the bare deny-all verdict.
        assert_eq!(insns[PROLOGUE], jump(op::JNE, TYPE, dev_ctx::DEV_CHAR, 4));
        assert_eq!(insns[PROLOGUE + 3], Insn::alu32_imm(op::MOV, R0, 1));
        assert_eq!(insns[PROLOGUE + 5], Insn::alu32_imm(op::MOV, R0, 0));
        assert_eq!(insns.len(), PROLOGUE + 5 + 2 + 2);
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let rules = [
            rule(true, C, None, None, "m"),
            rule(true, B, None, None, "m"),
            rule(true, C, Some(136), None, "rwm"),
            rule(false, C, Some(5), Some(1), "w"),
        ];
        let insns = program(&rules).unwrap();
        for (pc, insn) in insns.iter().enumerate() {
            if insn.code & 0x07 == op::JMP && *insn != Insn::exit() {
                let target = pc as i64 + 1 + i64::from(insn.off);
                assert!(
                    target > pc as i64 && (target as usize) < insns.len(),
                    "{pc}"
                );
            }
        }
    }

    #[test]
    fn invalid_rules_are_errors() {
        assert!(program(&[rule(true, C, Some(1), Some(3), "rwx")]).is_err());
    }
}
