#!/usr/bin/env python3
"""Writes crates/berth/text-order and crates/berth-runc/text-order: the functions berth runs to
start, run, exec into and remove a container, and those berth-runc runs for its callers' usual
commands, which scripts/link-text-order places together at the head of each release binary's
.text (bench/README.md, "ninth pass" and "tenth pass"). Run as root after scripts/setup, when
the paths a container's start takes changed much (a list gone stale costs speed, never
correctness):

    bench/text-order.py                  # both
    bench/text-order.py berth-runc       # one of them
    BERTH=path bench/text-order.py berth # that berth, built as below (symbols kept); BERTH_RUNC too

It builds each binary as scripts/install does but with its symbols (target/text-order), runs
the commands below (against a private root) under ptrace, following every process they make,
with a breakpoint on the entry of every function of each process of that binary (berth's CLI,
its monitor, which runs from a read-only view of the same file, and the container's init before
its exec; berth-runc and its init), each taken out at its first hit; and keeps every function
entered. berth's list has those both the CLI and the monitor entered first, then the CLI's, then
the monitor's; berth-runc's those its `run` entered, then the rest; each group in the order the
link has them (which keeps each crate's together), by size and the name scripts/link-text-order
matches (`key`). x86-64 only (the registers' layout). (The kernel's uprobes, tried first,
corrupted SSE registers in hashbrown's probe loop here.)
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
# What users wait for: run --rm (no network and the default bridge), run -d, exec, rm -f, and the
# monitor's whole life behind them.
BERTH_WORKLOAD = [
    "run --rm --network none bench/busybox true",
    "run --rm --network none bench/busybox true",
    "run --rm bench/busybox true",
    "run -d --network none --name order-a bench/busybox sleep 60",
    "exec order-a true",
    "rm -f order-a",
    "run -d --name order-b bench/busybox sleep 60",
    "rm -f order-b",
]

# What runtime.sh times first (`run` of true), then what containerd's shim and podman run for a
# container's life: create, start, state, exec, kill, delete; `delete --force` of a running one.
RUNC_WORKLOAD = [
    "run -b {work}/true order-a",
    "run -b {work}/true order-a",
    "create -b {work}/sleep order-b",
    "start order-b",
    "state order-b",
    "exec order-b true",
    "list",
    "kill order-b KILL",
    "delete --force order-b",
    "create -b {work}/sleep order-c",
    "start order-c",
    "delete --force order-c",
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


def build(name):
    """The release `name` as scripts/lib.sh's build_fast_* links it, symbols kept; its path."""
    env = dict(os.environ, CARGO_PROFILE_RELEASE_STRIP="false",
               CARGO_PROFILE_RELEASE_RUNC_STRIP="false",
               CARGO_TARGET_DIR=os.path.join(ROOT, "target/text-order"))
    how = "build_fast_berth" if name == "berth" else "build_fast_runc"
    out = subprocess.run(["bash", "-c", f". scripts/lib.sh && {how}"], cwd=ROOT,
                         env=env, stdout=subprocess.PIPE, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.endswith("/" + name)][-1]


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
    # A position-independent binary (berth-runc, static-pie) runs at a base of its own in each
    # process, which its forks keep: the addresses above are from 0.
    pie = image[16:18] == b"\x03\x00"  # e_type ET_DYN
    bases = {}
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
            bases.pop(pid, None)
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
                bases.pop(pid, None)
                if _is(pid, me):
                    done = entered.setdefault(role(pid), set())
                    base = bases[pid] = _base(pid, me, pie)
                    with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
                        for address in entries:
                            if address not in done:
                                mem.seek(base + address)
                                mem.write(b"\xcc")
            elif event:
                pass  # a fork, vfork or clone: the new process stops on its own, seen then
            elif sig == signal.SIGTRAP:
                # A fork keeps its parent's command line, and so its role, until it executes.
                if not _is(pid, me):
                    deliver = sig
                else:
                    if pid not in bases:
                        bases[pid] = _base(pid, me, pie)
                    if not _hit(pid, regs, bases[pid], entries, original,
                                entered.setdefault(role(pid), set())):
                        deliver = sig
            elif sig != signal.SIGSTOP:  # a new process's first stop, or a stop asked for
                deliver = sig
        except OSError:
            if not _gone(pid):
                raise
            live.discard(pid)  # it was killed meanwhile (a SIGKILL of rm -f)
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


def _base(pid, me, pie):
    """Where the binary's first byte is in process `pid`."""
    if not pie:
        return 0
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and int(fields[4]) == me.st_ino and int(fields[2], 16) == 0:
                return int(fields[0].split("-")[0], 16)
    raise RuntimeError(f"text-order: process {pid} does not map the binary")


def _gone(pid):
    """Whether process `pid` is dead or dying (a zombie, or reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _hit(pid, regs, base, entries, original, entered):
    """A breakpoint of ours: recorded, its byte put back, the function entered again."""
    ptrace(PTRACE_GETREGS, pid, 0, ctypes.addressof(regs))
    address = regs[RIP] - 1 - base
    if address not in entries:
        return False
    entered.add(address)
    with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
        mem.seek(base + address)
        mem.write(original[address])
    regs[RIP] = base + address
    ptrace(PTRACE_SETREGS, pid, 0, ctypes.addressof(regs))
    return True


def order_berth(binary, funcs, work):
    """berth's groups: what both the CLI and the monitor run first, then the CLI's alone, then
    the monitor's, then the rest: each process maps the windows of its own code and few of the
    other's."""
    env = dict(os.environ, BERTH_ROOT=os.path.join(work, "berth"))
    subprocess.run([binary, "import", f"{work}/rootfs.tar", "bench/busybox:latest"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    try:
        entered = traced(binary, funcs, script(binary, BERTH_WORKLOAD), env)
    finally:
        subprocess.run([binary, "rm", "-f", "order-a", "order-b"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli, monitor = entered.get("cli", set()), entered.get("__monitor", set())
    everything = set().union(*entered.values())
    return {"both": cli & monitor, "cli": cli - monitor, "monitor": monitor - cli,
            "other": everything - cli - monitor}


def order_runc(binary, funcs, work):
    """berth-runc's groups: what `run` runs (the runtime and its init), then the rest."""
    for name, args in [("true", '["/bin/true"]'), ("sleep", '["/bin/sleep", "60"]')]:
        bundle = os.path.join(work, name)
        os.mkdir(bundle)
        subprocess.run([binary, "spec"], cwd=bundle, check=True)
        with open(os.path.join(bundle, "config.json")) as f:
            config = f.read()
        config = config.replace('"terminal": true', '"terminal": false')
        config = config.replace('"path": "rootfs"', f'"path": "{work}/rootfs"')
        config = re.sub(r'"args": \[[^\]]*\]', f'"args": {args}', config)
        write(os.path.join(bundle, "config.json"), config)
    runc = f"{shlex.quote(binary)} --root {work}/state"
    commands = [c.format(work=work) for c in RUNC_WORKLOAD]
    runs = [c for c in commands if c.startswith("run ")]
    try:
        run = set().union(*traced(binary, funcs, script(runc, runs), os.environ).values())
        rest = set().union(*traced(binary, funcs, script(runc, commands), os.environ).values())
    finally:
        for id in ["order-a", "order-b", "order-c"]:
            subprocess.run([binary, "--root", f"{work}/state", "delete", "--force", id],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"run": run, "other": rest - run}


TARGETS = {"berth": ("BERTH", order_berth, "a container's start, exec and removal run"),
           "berth-runc": ("BERTH_RUNC", order_runc, "its run, create, start, exec, kill and "
                          "delete run")}


def script(command, workload):
    return "set -e\n" + "".join(f"{command} {c} >/dev/null\n" for c in workload)


def main():
    if os.geteuid() != 0:
        sys.exit("text-order: run as root (ptrace, containers)")
    names = sys.argv[1:] or list(TARGETS)
    for name in names:
        if name not in TARGETS:
            sys.exit(f"text-order: {name}: not one of {', '.join(TARGETS)}")
    for name in names:
        variable, order, what = TARGETS[name]
        binary = os.environ.get(variable) or build(name)
        funcs = functions(binary)
        with tempfile.TemporaryDirectory(prefix="berth-text-order-") as work:
            subprocess.run(["bash", "-c", f". bench/lib/busybox.sh && busybox_image_tar {work}"],
                           cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            try:
                groups = order(binary, funcs, work)
            finally:
                subprocess.run(["bash", "-c", f"grep -o ' {work}[^ ]*' /proc/mounts | sort -r | "
                                "xargs -r -n1 umount -l"], stderr=subprocess.DEVNULL)
        rank = {address: i for i, group in enumerate(groups.values()) for address in group}
        chosen = sorted((f for f in funcs if f[1] in rank), key=lambda f: (rank[f[1]], f[1]))
        # By name and size: Rust's legacy mangling tells a generic function's instances apart
        # by a hash alone, which another build does not keep; their sizes stay.
        lines = list(dict.fromkeys(f"{size} {key(fname)}" for _, _, fname, size in chosen))
        out = os.path.join(ROOT, "crates", name, "text-order")
        write(out, "# Made by bench/text-order.py, for scripts/link-text-order: the functions\n"
                   f"# {what} (size in bytes, name without its build's hashes).\n"
                   "# Generated: do not edit.\n" + "".join(l + "\n" for l in lines))
        sizes = ", ".join(f"{group} {sum(f[3] for f in funcs if f[1] in members) // 1024} KiB"
                          for group, members in groups.items())
        print(f"text-order: {name}: {len(chosen)} of {len(funcs)} functions entered ({sizes}), "
              f"{len(lines)} lines -> {os.path.relpath(out, ROOT)}")


if __name__ == "__main__":
    main()
