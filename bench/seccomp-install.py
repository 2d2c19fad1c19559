#!/usr/bin/env python3
"""How long the kernel takes to install a seccomp filter, median of N installs.

    bench/seccomp-install.py FILE... [--runs N]

FILE is a compiled program as berth caches it (/run/berth/seccomp/<key>.bpf: four bytes of
filter flags, then the `struct sock_filter` records). Each install happens in a forked child
with no_new_privs set, timed around seccomp(SECCOMP_SET_MODE_FILTER) alone. Several files are
measured in alternation (one install of each per round), so their ratio comes from one run.
An older berth's cache (another key) next to a newer one compares two layouts of one profile.
Numbers, not tests: run as any user.
"""
import ctypes
import os
import statistics
import struct
import sys
import time

SYS_SECCOMP = 317  # x86_64
SECCOMP_SET_MODE_FILTER = 1
PR_SET_NO_NEW_PRIVS = 38


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_us(insns: bytes) -> float:
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(insns, len(insns))
    prog = SockFprog(len(insns) // 8, ctypes.cast(buf, ctypes.c_void_p))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        start = time.perf_counter()
        rc = libc.syscall(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, 0, ctypes.byref(prog))
        took = time.perf_counter() - start
        os.write(w, struct.pack("d", took * 1e6 if rc == 0 else -1.0))
        os._exit(0)
    os.close(w)
    data = os.read(r, 8)
    os.close(r)
    os.waitpid(pid, 0)
    (us,) = struct.unpack("d", data)
    if us < 0:
        sys.exit("seccomp(SECCOMP_SET_MODE_FILTER) refused the program")
    return us


def main() -> None:
    args = sys.argv[1:]
    runs = 200
    if "--runs" in args:
        i = args.index("--runs")
        runs = int(args[i + 1])
        del args[i : i + 2]
    if not args:
        sys.exit(__doc__)
    programs = {}
    for path in args:
        data = open(path, "rb").read()[4:]
        if not data or len(data) % 8:
            sys.exit(f"{path}: not a cached seccomp program")
        programs[path] = data
    times = {path: [] for path in programs}
    for _ in range(runs):
        for path, insns in programs.items():
            times[path].append(install_us(insns))
    for path, insns in programs.items():
        print(f"{len(insns) // 8:5d} instructions  {statistics.median(times[path]):7.1f} us  {path}")


if __name__ == "__main__":
    main()
