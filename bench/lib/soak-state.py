#!/usr/bin/env python3
"""What berth holds on this machine, for bench/soak.sh.

  soak-state.py DATA_ROOT CID_DIR          the state as JSON on stdout
  soak-state.py --pending DATA_ROOT CID_DIR  exit 0 once no container of CID_DIR is left
  soak-state.py --compare BEFORE AFTER     a table; exit 1 if the soak's own things grew

The soak's containers are those whose ids are in CID_DIR (one --cidfile each). "ours" counts
only them (or the soak's private data root); "machine" counts everything of berth's on the
machine, other people's containers included, and is printed for context.
"""
import hashlib
import json
import os
import re
import subprocess
import sys

RUN = "/run/berth"
CGROUP = "/sys/fs/cgroup"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def our_ids(cid_dir):
    ids = set()
    for name in os.listdir(cid_dir):
        with open(os.path.join(cid_dir, name)) as f:
            ids.add(f.read().strip())
    return ids


def runtime_dir(root):
    """The runtime state directory of a data root, as berth-engine's engine.rs names it."""
    return os.path.join(RUN, "runtime", hashlib.sha256(root.encode()).hexdigest()[:16])


def veth_name(container_id, network_id):
    """The host end of a container's veth, as berth-net's attach.rs names it (FNV-1a)."""
    h = 0xCBF29CE484222325
    for b in container_id.encode() + b"\0" + network_id.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "vberth%09x" % (h & 0xFFFFFFFFF)


def networks(root):
    """(id, record, leases) of every network: the machine's shared ones and the root's."""
    found = []
    for base in (os.path.join(RUN, "network"), os.path.join(root, "network")):
        if not os.path.isdir(base):
            continue
        for net in os.listdir(base):
            record = os.path.join(base, net, "network.json")
            if not os.path.isfile(record):
                continue
            with open(record) as f:
                rec = json.load(f)
            found.append((net, rec, net_leases(os.path.join(base, net))))
    return found


def net_leases(net_dir):
    """ip -> lease of a network: one file `<ip>_<container id>` each in leases/, and the
    leases.json of a network made before those (both are read)."""
    leases = {}
    path = os.path.join(net_dir, "leases.json")
    if os.path.isfile(path):
        with open(path) as f:
            leases = json.load(f)
    d = os.path.join(net_dir, "leases")
    for name in os.listdir(d) if os.path.isdir(d) else []:
        if name.startswith(".") or "_" not in name:
            continue
        try:
            with open(os.path.join(d, name)) as f:
                leases[name.split("_", 1)[0]] = json.load(f)
        except (FileNotFoundError, ValueError):
            pass  # released (or being written) while we listed
    return leases


def mounts(root):
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split(" ")[4].replace("\\040", " ")
            points.append(point)
    under = lambda d: [p for p in points if p == d or p.startswith(d + "/")]
    # /run/berth/exe holds one read-only view per berth binary (made once per build, by
    # whichever berth runs first), not per container.
    exe = os.path.join(RUN, "exe")
    run = [p for p in under(RUN) if not p.startswith(exe + "/")]
    return {
        "ours": len(under(root)),
        "run_berth": len(run),
        "exe_views": len(under(exe)),
        "machine": len(points),
    }


def cgroups(ids):
    hierarchies = [CGROUP] + [
        os.path.join(CGROUP, e) for e in sorted(os.listdir(CGROUP))
        if os.path.isdir(os.path.join(CGROUP, e))
    ]
    ours, machine = [], 0
    for h in hierarchies:
        d = os.path.join(h, "berth")
        if not os.path.isdir(d) or os.path.islink(h):
            continue
        names = [n for n in os.listdir(d) if HEX64.match(n)]
        machine += len(names)
        ours += [os.path.join(d, n) for n in names if n in ids]
    return {"ours": ours, "machine": machine, "hierarchies": len(hierarchies)}


def links(ids, nets):
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = {l.split(": ")[1].split("@")[0] for l in out.splitlines() if ": " in l}
    mine = {veth_name(i, net) for i in ids for net, _, _ in nets}
    return {
        "ours": sorted(names & mine),
        "machine_vberth": sum(1 for n in names if n.startswith("vberth")),
        "machine": len(names),
    }


def nft():
    out = subprocess.run(["nft", "-j", "list", "table", "ip", "berth"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return {"rules": 0, "elements": 0}
    rules = elements = 0
    for obj in json.loads(out.stdout).get("nftables", []):
        if "rule" in obj:
            rules += 1
        for kind in ("set", "map"):
            if kind in obj:
                elements += len(obj[kind].get("elem", []))
    return {"rules": rules, "elements": elements}


def leases(ids, nets):
    held = [(net, ip, l["container_id"]) for net, _, ls in nets for ip, l in ls.items()]
    return {
        "ours": ["%s %s %s" % h for h in held if h[2] in ids],
        "machine": len(held),
    }


def count_files(d):
    return sum(len(fs) + len(ds) for _, ds, fs in os.walk(d)) if os.path.isdir(d) else 0


def files(root):
    return {
        "containers": count_files(os.path.join(root, "containers")),
        "runtime": count_files(runtime_dir(root)),
        "run_berth": count_files(RUN),
    }


def processes(ids, root):
    """berth's processes: pid -> (command line, open fds, whether it is the soak's, whether
    it outlives the runs: a DNS server or an API service)."""
    procs = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            exe = os.path.basename(os.readlink("/proc/%s/exe" % pid))
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            fds = len(os.listdir("/proc/%s/fd" % pid))
        except OSError:
            continue
        if not exe.startswith("berth"):
            continue
        # A DNS server lives as long as its network, which outlives the runs; an API service
        # (bench/api.sh) as long as the benchmark.
        lasting = " __dns " in cmd or " system service " in cmd
        ours = not lasting and (root in cmd or any(i in cmd for i in ids))
        procs[pid] = {"cmd": cmd[:200], "fds": fds, "ours": ours, "lasting": lasting}
    return procs


def snapshot(root, cid_dir):
    ids = our_ids(cid_dir)
    nets = networks(root)
    return {
        "containers": len(ids),
        "mounts": mounts(root),
        "cgroups": cgroups(ids),
        "links": links(ids, nets),
        "nft": nft(),
        "leases": leases(ids, nets),
        "files": files(root),
        "processes": processes(ids, root),
    }


def pending(root, cid_dir):
    ids = our_ids(cid_dir)
    containers = os.path.join(root, "containers")
    left = [n for n in os.listdir(containers) if HEX64.match(n)] if os.path.isdir(containers) else []
    return bool(left) or any(p["ours"] for p in processes(ids, root).values())


def compare(before, after):
    b, a = before, after
    rows = []  # (what, before, after, counts against the soak)

    def row(what, x, y, ours):
        rows.append((what, x, y, ours))

    row("mounts under the data root", b["mounts"]["ours"], a["mounts"]["ours"], True)
    row("mounts under /run/berth (but exe/)", b["mounts"]["run_berth"], a["mounts"]["run_berth"],
        True)
    row("cgroups of its containers (%d hierarchies)" % a["cgroups"]["hierarchies"],
        len(b["cgroups"]["ours"]), len(a["cgroups"]["ours"]), True)
    row("veths of its containers", len(b["links"]["ours"]), len(a["links"]["ours"]), True)
    row("IPAM leases of its containers", len(b["leases"]["ours"]), len(a["leases"]["ours"]), True)
    row("files under <root>/containers", b["files"]["containers"], a["files"]["containers"], True)
    row("files in its runtime state dir", b["files"]["runtime"], a["files"]["runtime"], True)
    ours_b = sum(1 for p in b["processes"].values() if p["ours"])
    ours_a = sum(1 for p in a["processes"].values() if p["ours"])
    row("berth processes of its own", ours_b, ours_a, True)
    # The long-lived processes the runs talk to: DNS servers (of user networks) and its own.
    lasting = [p for p in sorted(set(b["processes"]) & set(a["processes"]), key=int)
               if a["processes"][p]["lasting"] or a["processes"][p]["ours"]]
    fds_b = sum(b["processes"][p]["fds"] for p in lasting)
    fds_a = sum(a["processes"][p]["fds"] for p in lasting)
    row("fds of %d DNS servers, services and own processes" % len(lasting), fds_b, fds_a, True)
    row("machine: mounts", b["mounts"]["machine"], a["mounts"]["machine"], False)
    row("machine: /run/berth/exe views", b["mounts"]["exe_views"], a["mounts"]["exe_views"], False)
    row("machine: berth/<id> cgroups", b["cgroups"]["machine"], a["cgroups"]["machine"], False)
    row("machine: vberth links", b["links"]["machine_vberth"], a["links"]["machine_vberth"], False)
    row("machine: nft rules", b["nft"]["rules"], a["nft"]["rules"], False)
    row("machine: nft set/map elements", b["nft"]["elements"], a["nft"]["elements"], False)
    row("machine: IPAM leases", b["leases"]["machine"], a["leases"]["machine"], False)
    row("machine: files under /run/berth", b["files"]["run_berth"], a["files"]["run_berth"], False)
    row("machine: berth processes", len(b["processes"]), len(a["processes"]), False)

    print("%-50s %8s %8s" % ("after %d containers" % a["containers"], "before", "after"))
    grew = False
    for what, x, y, ours in rows:
        flag = ""
        if ours and y > x:
            flag, grew = "  LEAK", True
        print("%-50s %8d %8d%s" % (what, x, y, flag))
    print("(machine: everything of berth's here, other people's containers included)")
    for key, what in (("cgroups", "cgroup"), ("links", "veth"), ("leases", "lease")):
        for item in a[key]["ours"][:10]:
            print("left: %s %s" % (what, item))
    for pid, p in sorted(a["processes"].items(), key=lambda kv: int(kv[0])):
        if p["ours"]:
            print("left: process %s (%d fds) %s" % (pid, p["fds"], p["cmd"]))
        elif pid in lasting and p["fds"] > b["processes"][pid]["fds"]:
            print("fds grew: process %s %d -> %d %s" % (pid, b["processes"][pid]["fds"],
                                                        p["fds"], p["cmd"]))
    return grew


def main(args):
    if args[:1] == ["--compare"]:
        with open(args[1]) as f, open(args[2]) as g:
            return 1 if compare(json.load(f), json.load(g)) else 0
    if args[:1] == ["--pending"]:
        return 1 if pending(args[1], args[2]) else 0
    json.dump(snapshot(args[0], args[1]), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
