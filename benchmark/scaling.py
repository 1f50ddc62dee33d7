"""scaling: a hash cluster's aggregate throughput with 1 to 4 firewalls, each capped as a box of its own.

    python3 benchmark/bench.py --arch hash --only scaling [--out DIR] [--keep-lab]

Every lab node shares the machine's two cores, so a node added to the lab
adds no capacity of its own: left alone, the cluster's throughput is the
machine's, whatever the number of nodes. Each firewall's egress on its two
segments is capped instead (a token bucket, `tc qdisc ... tbf`, of
SETTINGS["scaling_cap_mbit"]), far below what the machine forwards: the cap is
the box, and the question is how much of n boxes' capacity a hash cluster of n
uses, as the paper's +40 to 45 % per node added.

The lab is molecule/hash_scaling (the hash example's with a fourth firewall,
hs-fw4: node id 3, the next address on every network). For 4, 3 and 2 nodes
the example inventory is written with that many firewalls (the others
stopped) and deployed (total_nodes n: each node owns one id of n); 1 node is
the 2-node cluster with hs-fw2 stopped, hs-fw1 owning both ids. With each
size, the session rate of objects of scaling_size bytes from the 1000 routed
sources (bench.py's rate test, repeated): the sessions per second and the
throughput, both bound by the caps, and the SYNs each firewall forwarded.
"""

import ipaddress
import os
import pathlib
import re
import shutil
import sys
import time

import yaml

import bench
import controller   # with_fourth_node: the controller benchmark's fourth hash node, made the same way

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCENARIO = "hash_scaling"
INVENTORIES = ROOT / "build" / "bench" / "scaling"
SETTINGS = {"scaling_nodes": [4, 3, 2, 1], "scaling_cap_mbit": 40, "scaling_size": 102400,
            "scaling_concurrency": 64, "scaling_duration_s": 4, "scaling_repeats": 3}
PAPER_GAIN = (0.40, 0.45)   # the paper: each node added brings 40 to 45 % of one node's throughput
ADDED = "hs-fw4"            # the fourth firewall of the scaling lab


def write_inventory(out, nodes, root=ROOT):
    """A copy of ROOT/inventories at OUT whose hash example has NODES (2 to 4) firewalls, the
    fourth (hs-fw4) made from the third: the next node id and the next address everywhere."""
    if not 2 <= nodes <= 4:
        raise bench.BenchError("a scaling inventory has 2 to 4 firewalls, not %d" % nodes)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(root / "inventories", out, symlinks=True)
    example = pathlib.Path(out) / "hash"
    hosts = yaml.safe_load((example / "hosts.yml").read_text(encoding="utf-8"))
    members = hosts["all"]["children"]["fwcluster"]["children"]["mesh"]["hosts"]
    third = yaml.safe_load((example / "host_vars" / "hs-fw3.yml").read_text(encoding="utf-8"))
    fourth = controller.with_fourth_node({}, {"hs-fw3": third}, {})[1][ADDED]
    (example / "host_vars" / ("%s.yml" % ADDED)).write_text(yaml.safe_dump(fourth, sort_keys=False), encoding="utf-8")
    members[ADDED] = {"ansible_host": str(ipaddress.ip_address(members["hs-fw3"]["ansible_host"]) + 1)}
    for name in sorted(members)[nodes:]:
        del members[name]
        (example / "host_vars" / ("%s.yml" % name)).unlink()
    (example / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False), encoding="utf-8")
    # The lab's SSH key and known hosts: the scaling lab's, wherever this copy is.
    connection = example / "group_vars" / "all" / "lab.yml"
    connection.write_text(re.sub(r"(?m)^lab_ssh_dir: .*$", 'lab_ssh_dir: "%s"' % (root / "build" / "lab" / SCENARIO),
                                 connection.read_text(encoding="utf-8")), encoding="utf-8")
    return out


def cluster_lab(nodes):
    """bench.Lab of the scaling lab, its inventory the example with NODES firewalls."""
    os.environ["FWCLUSTER_LAB_INVENTORY"] = str(write_inventory(INVENTORIES / ("n%d" % nodes), nodes))
    return bench.Lab(SCENARIO)


def cap(lab, nodes, mbit):
    """A token bucket of MBIT on the egress of every segment interface of NODES."""
    for node in nodes:
        interfaces = sorted({segment["interface"] for segment in lab.hostvars[node]["fwcluster_segments"].values()})
        bench.pexec(node, "; ".join("tc qdisc replace dev %s root tbf rate %dmbit burst 64kb latency 400ms"
                                    % (interface, mbit) for interface in interfaces))


def owned_ids(node):
    out = bench.pexec(node, "%s show" % bench.HASH_OWNER_COMMAND, check=False).stdout
    return sorted(int(word) for word in out.split() if word.isdigit())


def wait_owned(node, ids, timeout=30):
    deadline = time.time() + timeout
    while owned_ids(node) != sorted(ids):
        if time.time() > deadline:
            raise bench.BenchError("%s owns node ids %s, not %s, %d s after its peer stopped"
                                   % (node, owned_ids(node), sorted(ids), timeout))
        time.sleep(0.5)


def measure_size(lab, live, settings):
    """The capped session rate through LIVE: its row (bench.rate_row) with the SYNs per firewall."""
    cap(lab, live, settings["scaling_cap_mbit"])
    rate = dict(rate_duration_s=settings["scaling_duration_s"], rate_concurrency=settings["scaling_concurrency"])
    runs, share = [], {}
    for repeat in range(settings["scaling_repeats"]):
        row, forwarded = bench.rate_once(lab, rate, settings["scaling_size"])
        runs.append(row)
        for node, count in forwarded.items():
            share[node] = share.get(node, 0) + count
        bench.log("scaling, %d node%s, repeat %d: %s sessions/s, %.1f Mbit/s, %d failed" % (
            len(live), "" if len(live) == 1 else "s", repeat + 1, row["sessions_per_s"],
            row["throughput_bps"] / 1e6, row["failed"]))
    return dict(bench.rate_row(settings["scaling_size"], runs), nodes=len(live), live=live,
                share={node: share.get(node, 0) for node in live})


def measure(settings, keep_lab=False, reuse_lab=False):
    """{"cap_mbit", "size", "rows": [per size of the cluster]}; see the module docstring."""
    sizes = settings["scaling_nodes"]
    lab = cluster_lab(max(sizes))
    if reuse_lab and lab.running():
        bench.log("reusing the running %s lab" % SCENARIO)
    else:
        lab.molecule("destroy")
        lab.molecule("create")
    rows = []
    try:
        for nodes in sizes:
            lab = cluster_lab(max(nodes, 2))
            live = lab.firewalls[:nodes]
            stopped = [node for node in ["hs-fw1", "hs-fw2", "hs-fw3", ADDED] if node not in live]
            for node in stopped:
                bench.podman("stop", "--time", "0", node, check=False)
            for node in live:   # a node stopped for a smaller cluster is needed again
                bench.podman("start", node)
            if nodes >= 2:
                refusal = lab.deploy({}, "%d firewalls" % nodes)
                if refusal:
                    raise bench.BenchError(refusal)
                lab.settle()
            else:   # the 2-node cluster with its second node off: the first owns both ids
                wait_owned(live[0], [0, 1])
            if not rows:
                lab.prepare_load()
            lab.firewalls = live   # the captures run on the firewalls that forward
            rows.append(measure_size(lab, live, settings))
    finally:
        if not keep_lab:
            lab.molecule("destroy")
    return {"cap_mbit": settings["scaling_cap_mbit"], "size": settings["scaling_size"], "rows": rows,
            "paper_gain": list(PAPER_GAIN)}


if __name__ == "__main__":
    sys.exit("run it through benchmark/bench.py --arch hash --only scaling")
