#!/usr/bin/env python3
"""Writes crates/berth/text-order: the functions berth runs to start, run, exec into and remove
a container, which scripts/link-text-order places together at the head of the release binary's
.text (bench/README.md, "ninth pass"). Run as root after scripts/setup, when the paths a
container's start takes changed much (a list gone stale costs speed, never correctness):

    bench/text-order.py
    BERTH=path bench/text-order.py   # that berth, built as below (symbols kept)

It builds the release berth as scripts/install does but with its symbols (target/text-order),
runs the commands below against a private root under ptrace, following every process they make,
with a breakpoint on the entry of every function of each berth process (the CLI, the monitor,
which runs from a read-only view of the same file, and the container's init before its exec),
each taken out at its first hit; and keeps every function entered, those both the CLI and the
monitor entered first, then the CLI's, then the monitor's, each group in the order the link has
them (which keeps each crate's together), by size and the name scripts/link-text-order matches
(`key`). x86-64 only (the registers' layout). (The kernel's uprobes, tried first, corrupted SSE
registers in hashbrown's probe loop here.)
"""

import ctypes
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates/berth/text-order")

# What users wait for: run --rm (no network and the default bridge), run -d, exec, rm -f, and the
# monitor's whole life behind them.
WORKLOAD = [
    "run --rm --network none bench/busybox true",
    "run --rm --network none bench/busybox true",
    "run --rm bench/busybox true",
    "run -d --network none --name order-a bench/busybox sleep 60",
    "exec order-a true",
    "rm -f order-a",
    "run -d --name order-b bench/busybox sleep 60",
    "rm -f order-b",
]


def key(symbol):
    """A symbol's name without what changes between builds of the same source (the same
    normalisation as scripts/link-text-order's awk)."""
    symbol = re.sub(r"(\.llvm)?\.[0-9]+$", "", symbol)
    if symbol.startswith("_ZN"):
        return re.sub(r"17h[0-9a-f]+E$", "", symbol)
    if symbol.startswith("_R"):
        symbol = re.sub(r"Cs[0-9A-Za-z]*_", "C", symbol)
        return re.sub(r"B[0-9A-Za-z]*_", "B", symbol)
    return symbol


def build():
    """The release berth as build_fast_berth links it, symbols kept; returns its path."""
    env = dict(os.environ, CARGO_PROFILE_RELEASE_STRIP="false",
               CARGO_TARGET_DIR=os.path.join(ROOT, "target/text-order"))
    out = subprocess.run(["bash", "-c", ". scripts/lib.sh && build_fast_berth"], cwd=ROOT,
                         env=env, stdout=subprocess.PIPE, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.endswith("/berth")][-1]


def functions(binary):
    """(file offset, address, name, size) of every function with code in the binary."""
    segments = []
    for line in subprocess.run(["readelf", "-lW", binary], stdout=subprocess.PIPE, text=True,
                               check=True).stdout.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in f[6:-1]:
            segments.append((int(f[2], 16), int(f[4], 16), int(f[1], 16)))
    found = {}
    for line in subprocess.run(["nm", "-S", "--defined-only", binary], stdout=subprocess.PIPE,
                               text=True, check=True).stdout.splitlines():
        f = line.split()
        if len(f) != 4 or f[2] not in "tTwW" or int(f[1], 16) == 0:
            continue
        address = int(f[0], 16)
        for start, size, offset in segments:
            if start <= address < start + size:
                found.setdefault(address, (address - start + offset, address, f[3], int(f[1], 16)))
    return sorted(found.values(), key=lambda t: t[1])


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
PTRACE_TRACEME, PTRACE_CONT, PTRACE_GETREGS, PTRACE_SETREGS = 0, 7, 12, 13
PTRACE_SETOPTIONS = 0x4200
# Follow forks, vforks, clones and execs; kill every tracee if the tracer dies.
OPTIONS = 0x2 | 0x4 | 0x8 | 0x10 | 0x100000
EVENT_EXEC = 4
WALL = 0x40000000
RIP = 16  # user_regs_struct's rip, in words


def ptrace(request, pid, addr=0, data=0):
    if libc.ptrace(request, pid, addr, data) == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"ptrace({request}, {pid}): {os.strerror(err)}")


def traced(binary, funcs, script, env):
    """Runs `bash -c script` under ptrace, following every process it makes; each process that
    executes `binary` (or a view of the same file) gets a breakpoint on the entry of every
    function its role (`role`) has not entered yet, taken out at its first hit. Returns, per
    role, the functions entered (their addresses)."""
    entries = {address: offset for offset, address, *_ in funcs}
    with open(binary, "rb") as f:
        image = f.read()
    original = {address: image[offset:offset + 1] for address, offset in entries.items()}
    me = os.stat(binary)
    entered = {}
    child = os.fork()
    if child == 0:
        try:
            ptrace(PTRACE_TRACEME, 0)
            os.execvpe("bash", ["bash", "-c", script], env)
        finally:
            os._exit(127)
    regs = (ctypes.c_ulong * 27)()
    live = {child}
    started = False
    while live:
        pid, status = os.waitpid(-1, WALL)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            live.discard(pid)
            if pid == child:
                break
            continue
        live.add(pid)
        sig, event = os.WSTOPSIG(status), status >> 16
        deliver = 0
        try:
            if not started:  # bash, stopped at its exec
                ptrace(PTRACE_SETOPTIONS, pid, 0, OPTIONS)
                started = True
            elif event == EVENT_EXEC:
                if _is(pid, me):
                    done = entered.setdefault(role(pid), set())
                    with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
                        for address in entries:
                            if address not in done:
                                mem.seek(address)
                                mem.write(b"\xcc")
            elif event:
                pass  # a fork, vfork or clone: the new process stops on its own, seen then
            elif sig == signal.SIGTRAP:
                # A fork keeps its parent's command line, and so its role, until it executes.
                if not (_is(pid, me) and _hit(pid, regs, entries, original,
                                             entered.setdefault(role(pid), set()))):
                    deliver = sig
            elif sig != signal.SIGSTOP:  # a new process's first stop, or a stop asked for
                deliver = sig
        except OSError:  # it was killed meanwhile (a SIGKILL of rm -f)
            live.discard(pid)
            continue
        try:
            ptrace(PTRACE_CONT, pid, 0, deliver)
        except OSError:
            live.discard(pid)  # killed meanwhile
    # The workload is over: what it left running (a monitor, after a failure) goes too.
    for pid in live:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, WALL)
        except OSError:
            pass
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"text-order: the workload failed ({os.waitstatus_to_exitcode(status)})")
    return entered


def role(pid):
    """What a berth process is, from its command line: the monitor (and what it forks: the
    container's init, an exec'd process before its exec), another hidden command (the DNS
    server...), or the command line's."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        args = f.read().split(b"\0")
    hidden = [a.decode() for a in args if a.startswith(b"__")]
    return hidden[0] if hidden else "cli"


def _is(pid, me):
    try:
        st = os.stat(f"/proc/{pid}/exe")
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (me.st_dev, me.st_ino)


def _hit(pid, regs, entries, original, entered):
    """A breakpoint of ours: recorded, its byte put back, the function entered again."""
    ptrace(PTRACE_GETREGS, pid, 0, ctypes.addressof(regs))
    address = regs[RIP] - 1
    if address not in entries:
        return False
    entered.add(address)
    with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
        mem.seek(address)
        mem.write(original[address])
    regs[RIP] = address
    ptrace(PTRACE_SETREGS, pid, 0, ctypes.addressof(regs))
    return True


def main():
    if os.geteuid() != 0:
        sys.exit("text-order: run as root (ptrace, containers)")
    binary = os.environ.get("BERTH") or build()
    funcs = functions(binary)
    with tempfile.TemporaryDirectory(prefix="berth-text-order-") as work:
        env = dict(os.environ, BERTH_ROOT=os.path.join(work, "berth"))
        subprocess.run(["bash", "-c", f". bench/lib/busybox.sh && busybox_image_tar {work}"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([binary, "import", f"{work}/rootfs.tar", "bench/busybox:latest"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        script = "set -e\n" + "".join(f"{shlex.quote(binary)} {c} >/dev/null\n" for c in WORKLOAD)
        try:
            entered = traced(binary, funcs, script, env)
        finally:
            subprocess.run([binary, "rm", "-f", "order-a", "order-b"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run(["bash", "-c", f"grep -o ' {work}[^ ]*' /proc/mounts | sort -r | "
                            "xargs -r -n1 umount -l"], stderr=subprocess.DEVNULL)
    # What both the CLI and the monitor run first, then the CLI's alone, then the monitor's,
    # then the rest: each process maps the windows of its own code and few of the other's.
    cli, monitor = entered.get("cli", set()), entered.get("__monitor", set())
    everything = set().union(*entered.values())
    groups = [cli & monitor, cli - monitor, monitor - cli, everything - cli - monitor]
    rank = {address: i for i, group in enumerate(groups) for address in group}
    chosen = sorted((f for f in funcs if f[1] in rank), key=lambda f: (rank[f[1]], f[1]))
    # By name and size: Rust's legacy mangling tells a generic function's instances apart by a
    # hash alone, which another build does not keep; their sizes stay.
    lines = list(dict.fromkeys(f"{size} {key(name)}" for _, _, name, size in chosen))
    write(OUT, "# Made by bench/text-order.py, for scripts/link-text-order: the functions a "
               "container's\n# start, exec and removal run (size in bytes, name without its "
               "build's hashes).\n# Generated: do not edit.\n" + "".join(l + "\n" for l in lines))
    sizes = ", ".join(f"{what} {sum(f[3] for f in funcs if f[1] in group) // 1024} KiB"
                      for what, group in zip(["both", "cli", "monitor", "other"], groups))
    print(f"text-order: {len(chosen)} of {len(funcs)} functions entered ({sizes}), "
          f"{len(lines)} lines -> {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
