#!/usr/bin/env python3
"""Times commands in alternation: round after round, each command once per round, so that a
change of load falls on all of them alike (hyperfine runs each command's runs in one block).

    alternate.py ROUNDS WARMUP OUT.csv NAME=COMMAND...

Each COMMAND is split as a shell would (no shell runs it: as hyperfine -N) and must exit 0. Writes
name,median_s,min_s,max_s,runs to OUT.csv and prints the medians.
"""
import shlex
import statistics
import subprocess
import sys
import time


def main():
    rounds, warmup, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    cmds = [arg.split("=", 1) for arg in sys.argv[4:]]
    times = {name: [] for name, _ in cmds}
    for r in range(warmup + rounds):
        for name, cmd in cmds:
            argv = shlex.split(cmd)
            start = time.perf_counter()
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            took = time.perf_counter() - start
            if done.returncode != 0:
                sys.exit(f"alternate: {name} exited {done.returncode}: {cmd}")
            if r >= warmup:
                times[name].append(took)
    with open(out, "w") as f:
        f.write("command,median,min,max,runs\n")
        for name, t in times.items():
            f.write(f"{name},{statistics.median(t)},{min(t)},{max(t)},{len(t)}\n")
            print(f"{name:12} median {statistics.median(t) * 1000:8.2f} ms   "
                  f"min {min(t) * 1000:7.2f}   max {max(t) * 1000:7.2f}   ({len(t)} runs)")


main()
