//! BPF programs for cgroup v2 device control (BPF_PROG_TYPE_CGROUP_DEVICE): the instruction
//! encoding and the `bpf(2)` commands to load, attach, list and detach programs on a cgroup.

use std::ffi::CStr;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `enum bpf_prog_type`: a program run on each device access in a cgroup.
pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `enum bpf_attach_type`: attach point of `PROG_TYPE_CGROUP_DEVICE` programs.
pub const ATTACH_CGROUP_DEVICE: u32 = 6;
/// Attach flag: programs of descendants and ancestors all run, each one must allow.
pub const F_ALLOW_MULTI: u32 = 2;

/// Byte offsets of the fields of `struct bpf_cgroup_dev_ctx`, the program's input in R1.
pub mod dev_ctx {
    /// `u32 access_type`: low 16 bits the device type, high 16 bits the access mask.
    pub const ACCESS_TYPE: i16 = 0;
    pub const MAJOR: i16 = 4;
    pub const MINOR: i16 = 8;
    /// `BPF_DEVCG_DEV_*`, in the low half of `access_type`.
    pub const DEV_BLOCK: i32 = 1;
    pub const DEV_CHAR: i32 = 2;
    /// `BPF_DEVCG_ACC_*`, in the high half of `access_type`.
    pub const ACC_MKNOD: i32 = 1;
    pub const ACC_READ: i32 = 2;
    pub const ACC_WRITE: i32 = 4;
}

/// Opcode parts (`include/uapi/linux/bpf_common.h` and `bpf.h`).
pub mod op {
    pub const LDX: u8 = 0x01;
    pub const ALU: u8 = 0x04;
    pub const JMP: u8 = 0x05;
    pub const W: u8 = 0x00;
    pub const MEM: u8 = 0x60;
    pub const K: u8 = 0x00;
    pub const X: u8 = 0x08;
    pub const AND: u8 = 0x50;
    pub const RSH: u8 = 0x70;
    pub const MOV: u8 = 0xb0;
    pub const JEQ: u8 = 0x10;
    pub const JNE: u8 = 0x50;
    pub const EXIT: u8 = 0x90;
}

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// `dst_reg:4, src_reg:4` as a C bitfield, whose nibble order follows the byte order.
    regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        let regs = if cfg!(target_endian = "little") {
            ((src & 0x0f) << 4) | (dst & 0x0f)
        } else {
            ((dst & 0x0f) << 4) | (src & 0x0f)
        };
        Self {
            code,
            regs,
            off,
            imm,
        }
    }

    pub const fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0x0f
        } else {
            self.regs >> 4
        }
    }

    pub const fn src(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0x0f
        }
    }

    /// `dst = *(u32 *)(src + off)`
    pub const fn load_u32(dst: u8, src: u8, off: i16) -> Self {
        Self::new(op::LDX | op::MEM | op::W, dst, src, off, 0)
    }

    /// 32-bit `dst = dst <alu_op> imm` (the upper half of dst is zeroed).
    pub const fn alu32_imm(alu_op: u8, dst: u8, imm: i32) -> Self {
        Self::new(op::ALU | alu_op | op::K, dst, 0, 0, imm)
    }

    /// 32-bit `dst = src`.
    pub const fn mov32_reg(dst: u8, src: u8) -> Self {
        Self::new(op::ALU | op::MOV | op::X, dst, src, 0, 0)
    }

    /// `if (dst <jmp_op> imm) goto pc + 1 + off`
    pub const fn jump_imm(jmp_op: u8, dst: u8, imm: i32, off: i16) -> Self {
        Self::new(op::JMP | jmp_op | op::K, dst, 0, off, imm)
    }

    /// `if (dst <jmp_op> src) goto pc + 1 + off`
    pub const fn jump_reg(jmp_op: u8, dst: u8, src: u8, off: i16) -> Self {
        Self::new(op::JMP | jmp_op | op::X, dst, src, off, 0)
    }

    pub const fn exit() -> Self {
        Self::new(op::JMP | op::EXIT, 0, 0, 0, 0)
    }
}

const CMD_PROG_LOAD: libc::c_int = 5;
const CMD_PROG_ATTACH: libc::c_int = 8;
const CMD_PROG_DETACH: libc::c_int = 9;
const CMD_PROG_GET_FD_BY_ID: libc::c_int = 13;
const CMD_PROG_QUERY: libc::c_int = 16;

/// Verifier log size: enough for the few hundred instructions of a device filter.
const LOG_SIZE: usize = 256 * 1024;

/// The `BPF_PROG_LOAD` member of `union bpf_attr`, up to the fields we set.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// The `BPF_PROG_ATTACH`/`BPF_PROG_DETACH` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The `BPF_PROG_QUERY` member of `union bpf_attr`, up to `prog_cnt` and its padding.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// The `BPF_PROG_GET_FD_BY_ID` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Calls `bpf(cmd, attr, sizeof attr)`; the kernel zero-extends an attr shorter than its own.
fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed `#[repr(C)]` prefix of `union bpf_attr`
    // for `cmd`, and its size is passed so the kernel reads and writes only within it. Any
    // pointers inside it are set by our callers to buffers that outlive this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn fd_from_ret(ret: libc::c_long) -> io::Result<OwnedFd> {
    let raw =
        libc::c_int::try_from(ret).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel returned this fd from a successful call just now and nobody else owns
    // it, so wrapping it transfers sole ownership.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // A borrowed fd is never negative, so the conversion is lossless.
    fd.as_raw_fd() as u32
}

/// Loads a program; on failure loads it again with the verifier log enabled and returns an
/// error carrying the OS error and the log (the log is only paid for when it is needed).
pub fn prog_load(prog_type: u32, insns: &[Insn], license: &CStr) -> io::Result<OwnedFd> {
    let insn_cnt = u32::try_from(insns.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many instructions"))?;
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    if let Ok(ret) = bpf(CMD_PROG_LOAD, &mut attr) {
        return fd_from_ret(ret);
    }
    let mut log = vec![0u8; LOG_SIZE];
    attr.log_level = 1;
    attr.log_size = LOG_SIZE as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    match bpf(CMD_PROG_LOAD, &mut attr) {
        Ok(ret) => fd_from_ret(ret),
        Err(err) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let text = text.trim();
            if text.is_empty() {
                Err(err)
            } else {
                let kind = err.kind();
                Err(io::Error::new(kind, format!("{err}; verifier log: {text}")))
            }
        }
    }
}

/// Attaches `prog` to the cgroup directory `target` (e.g. with `F_ALLOW_MULTI`).
pub fn prog_attach(
    prog: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(target),
        attach_bpf_fd: fd_u32(prog),
        attach_type,
        attach_flags: flags,
        ..Default::default()
    };
    bpf(CMD_PROG_ATTACH, &mut attr).map(drop)
}

/// Detaches the program `prog` from the cgroup directory `target`.
pub fn prog_detach(
    prog: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(target),
        attach_bpf_fd: fd_u32(prog),
        attach_type,
        ..Default::default()
    };
    bpf(CMD_PROG_DETACH, &mut attr).map(drop)
}

/// Ids of the programs attached directly to the cgroup directory `target` (not inherited).
pub fn prog_query(target: BorrowedFd<'_>, attach_type: u32) -> io::Result<Vec<u32>> {
    let mut ids: Vec<u32> = vec![0; 16];
    loop {
        let mut attr = QueryAttr {
            target_fd: fd_u32(target),
            attach_type,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        match bpf(CMD_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // The kernel reports the full count when the buffer is too small.
            Err(err)
                if err.raw_os_error() == Some(libc::ENOSPC)
                    && attr.prog_cnt as usize > ids.len() =>
            {
                ids = vec![0; attr.prog_cnt as usize];
            }
            Err(err) => return Err(err),
        }
    }
}

/// Opens the loaded program with this id (as listed by `prog_query`).
pub fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdByIdAttr {
        prog_id: id,
        ..Default::default()
    };
    bpf(CMD_PROG_GET_FD_BY_ID, &mut attr).and_then(fd_from_ret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insn_layout_matches_struct_bpf_insn() {
        assert_eq!(size_of::<Insn>(), 8);
        let insn = Insn::jump_reg(op::JNE, 1, 3, -2);
        assert_eq!((insn.dst(), insn.src(), insn.off), (1, 3, -2));
        assert_eq!(insn.code, 0x5d);
        let load = Insn::load_u32(2, 1, 4);
        assert_eq!(
            (load.code, load.dst(), load.src(), load.off),
            (0x61, 2, 1, 4)
        );
        #[cfg(target_endian = "little")]
        assert_eq!(load.regs, 0x12);
    }

    #[test]
    fn load_reports_the_verifier_log() {
        // R0 is never written, which the verifier rejects with a readable message.
        let bad = [Insn::exit()];
        match prog_load(PROG_TYPE_CGROUP_DEVICE, &bad, c"Apache") {
            Ok(_) => panic!("the verifier accepted a program that reads an unset R0"),
            Err(err) if err.raw_os_error() == Some(libc::EPERM) => {
                crate::skip!("needs CAP_BPF/CAP_SYS_ADMIN to load BPF programs")
            }
            Err(err) => assert!(err.to_string().contains("verifier log"), "{err}"),
        }
    }

    #[test]
    fn load_accepts_an_allow_all_program() {
        let allow = [Insn::alu32_imm(op::MOV, 0, 1), Insn::exit()];
        match prog_load(PROG_TYPE_CGROUP_DEVICE, &allow, c"Apache") {
            Ok(fd) => assert!(fd.as_raw_fd() >= 0),
            Err(err) if err.raw_os_error() == Some(libc::EPERM) => {
                crate::skip!("needs CAP_BPF/CAP_SYS_ADMIN to load BPF programs")
            }
            Err(err) => panic!("load: {err}"),
        }
    }
}
