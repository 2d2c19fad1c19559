#!/usr/bin/env python3
"""Times commands side by side, alternating: each round runs every command once, in an order
that rotates from round to round, so that a change in the machine's load (other people's
builds) falls on all of them alike and their ratios stay meaningful. Sourced results are
medians; the load average is read before and after, and a run during which it moved by more
than MAX_LOAD_MOVE is marked so that the caller prints no verdict from it.

  alternate.py [--rounds N] [--warmup W] [--gap-ms G] [--out FILE] NAME=COMMAND ...

A COMMAND is split as a shell would (shlex) and run without a shell. `A ;; B` is a pair timed
together: B runs after A, with `{}` in it replaced by A's output (an id). `--prepare NAME=CMD`
runs CMD, untimed, before each timed run of NAME. The JSON written to FILE (and printed with
--json) holds, per name: median, p25, p75 and mean in ms, the runs and the failures; and
load_before, load_after, load_moved and steady (load_moved <= 1).
"""
import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time

MAX_LOAD_MOVE = 1.0


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# A command's output goes to files, not pipes: a runtime's detached container (`berth-runc run
# -d`) keeps the stdio it was given, and a pipe would not reach its end until the container did.
OUT = tempfile.TemporaryFile()
ERR = tempfile.TemporaryFile()


def captured(f):
    f.seek(0)
    text = f.read().decode(errors="replace").strip()
    f.seek(0)
    f.truncate()
    return text


def run(argv):
    """Runs argv; returns (seconds, stdout) or raises on failure."""
    start = time.perf_counter()
    p = subprocess.run(argv, stdout=OUT, stderr=ERR, stdin=subprocess.DEVNULL)
    took = time.perf_counter() - start
    out, err = captured(OUT), captured(ERR)
    if p.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)}: exit {p.returncode}: {err[:300]}")
    return took, out


def timed(spec):
    """One timed run of a command spec (a list of argv, a pair when two)."""
    total, out = 0.0, ""
    for argv in spec:
        argv = [a.replace("{}", out) for a in argv]
        took, out = run(argv)
        total += took
    return total


def parse(cmd):
    return [shlex.split(part) for part in cmd.split(";;")]


def quantile(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    i = (len(xs) - 1) * q
    lo, hi = int(i), min(int(i) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--gap-ms", type=float, default=0.0, help="untimed pause before each run")
    ap.add_argument("--out")
    ap.add_argument("--prepare", action="append", default=[])
    ap.add_argument("commands", nargs="+")
    a = ap.parse_intermixed_args()
    cmds = []
    for c in a.commands:
        name, _, cmd = c.partition("=")
        cmds.append((name, parse(cmd)))
    prep = {}
    for p in a.prepare:
        name, _, cmd = p.partition("=")
        prep[name] = parse(cmd)
    times = {name: [] for name, _ in cmds}
    failures = {name: [] for name, _ in cmds}
    dead = set()
    load_before = load1()
    for r in range(a.warmup + a.rounds):
        k = r % len(cmds)
        for name, spec in cmds[k:] + cmds[:k]:
            if name in dead:
                continue
            try:
                if name in prep:
                    timed(prep[name])
                if a.gap_ms:
                    time.sleep(a.gap_ms / 1000)
                took = timed(spec)
            except RuntimeError as e:
                failures[name].append(str(e))
                if len(failures[name]) >= 3:
                    dead.add(name)
                continue
            if r >= a.warmup:
                times[name].append(took * 1000)
    load_after = load1()
    result = {
        "rounds": a.rounds,
        "load_before": load_before,
        "load_after": load_after,
        "load_moved": round(abs(load_after - load_before), 2),
        "steady": abs(load_after - load_before) <= MAX_LOAD_MOVE,
        "results": {},
    }
    for name, _ in cmds:
        xs = times[name]
        result["results"][name] = {
            "median": quantile(xs, 0.5),
            "p25": quantile(xs, 0.25),
            "p75": quantile(xs, 0.75),
            "mean": sum(xs) / len(xs) if xs else None,
            "runs": len(xs),
            "failures": failures[name][:3],
        }
    text = json.dumps(result, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
