"""controller: how the controller's share of a run grows with the number of clusters.

    python3 benchmark/controller.py [--clusters 1 10 100 500] [--repeat 3] [--out DIR]

Run it from the project's environment (``. scripts/env.sh``); it needs no lab
and contacts no host. For each count N it writes an inventory of N clusters
(the example inventories in turn: primary_backup, multipath, hash with three
nodes, hash with four, sandwich with its four load balancers; every cluster
renamed, its hosts too) and measures, best of --repeat:

1. build: ``build_plans()`` in this process, from the variables as the
   inventory holds them: every cluster's plan (the model, the rules, what the
   templates print) and the check of the clusters together (no VRID or VIP
   twice on a shared network);
2. plan role: ``ansible-playbook benchmark/controller-plan.yml``, the first
   step of validate.yml and site.yml (the plan role: the role's argument check
   on every host, ``cluster_inputs`` over hostvars and the ``validate_node_ids``
   module once on the controller, then each host's ``fwcluster_plan`` and
   ``fwcluster_node`` facts), each task's time (from ansible.posix's
   ``profile_tasks`` callback) and the wall time of the whole command; the
   playbook ends with a per-host task that does nothing, what ansible-core
   itself costs for one task on every host.

It writes DIR/controller.json and DIR/controller.md (default DIR:
build/bench/controller). The committed figures in docs/controller-benchmark.md
come from ``python3 benchmark/controller.py --out docs/benchmark`` (its controller.json and controller.md).
"""

import argparse
import copy
import datetime
import ipaddress
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
# This checkout as fwcluster.netfilter (scripts/setup.sh makes the link): the plan and the examples' reader.
sys.path.insert(0, str(ROOT / "build" / "collections"))
# pylint: disable=wrong-import-position
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plans  # noqa: E402
from ansible_collections.fwcluster.netfilter.tests.unit.examples import load_inventory  # noqa: E402

PLAYBOOK = ROOT / "benchmark" / "controller-plan.yml"
# Which example each cluster copies, in turn; hash_4 is the hash example with a fourth node.
KINDS = ("primary_backup", "multipath", "hash", "hash_4", "sandwich")
IPV4 = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")
# The examples' IPv6 networks, all in 2001:db8::/32.
IPV6 = re.compile(r"\b2001:db8:", re.IGNORECASE)
TASK_TIME = re.compile(r"^(?P<task>.+?) -+ (?P<seconds>\d+\.\d+)s$")
# What each measured task's name (as profile_tasks prints it) starts or ends with.
TASKS = {
    "argument_check_s": ("fwcluster.netfilter.plan : Validating arguments against arg spec", None),
    "validation_task_s": (None, "Validate the inventory and compute the cluster plan"),
    "publication_s": (None, "Publish the plan of each node's cluster"),
    "per_host_nothing_s": (None, "Do nothing on every host"),
}


def with_fourth_node(cluster_vars, nodes, balancers):
    """The hash example with one node more: id 3, the next address on every segment."""
    last = max(nodes, key=lambda host: nodes[host]["fwcluster_node_id"])
    added = copy.deepcopy(nodes[last])
    added["fwcluster_node_id"] += 1

    def bump(value):
        """The next address, of each family where value lists several."""
        if isinstance(value, list):
            return [bump(address) for address in value]
        interface = ipaddress.ip_interface(value)
        return "%s/%d" % (interface.ip + 1, interface.network.prefixlen)

    added["fwcluster_addresses"] = {segment: bump(value) for segment, value in added["fwcluster_addresses"].items()}
    added["fwcluster_replication_address"] = bump(added["fwcluster_replication_address"])
    nodes = dict(nodes)
    nodes[last[:-1] + str(added["fwcluster_node_id"] + 1)] = added
    return cluster_vars, nodes, balancers


def relocate(value, index):
    """value with every unicast address moved to networks of cluster index's own.

    Clusters that share a network must not share a VRID or a VIP (plan/together.py):
    each copy's A.B.x.x networks become 10.N.x.x / 11.N.x.x..., N counted per cluster,
    its 2001:db8::/32 networks the same in 2001:M::/32 with M = 0x1000 + index.
    """
    spaces = {}

    def move(match):
        first, second, third, fourth = (int(part) for part in match.groups())
        if first in (0, 127) or first >= 224:
            return match.group(0)
        number = index * 16 + spaces.setdefault((first, second), len(spaces))
        return "%d.%d.%d.%d" % (10 + number // 256, number % 256, third, fourth)

    moved = IPV6.sub("2001:%x:" % (0x1000 + index), IPV4.sub(move, yaml.safe_dump(value)))
    return yaml.safe_load(moved)


def fleet(count):
    """{cluster name: (group variables, {node: host variables}, {balancer: host variables})} of count clusters."""
    examples = {kind: list(load_inventory(kind)) for kind in KINDS if kind != "hash_4"}
    examples["hash_4"] = list(with_fourth_node(*examples["hash"]))
    clusters = {}
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        cluster_vars, nodes, balancers = relocate(examples[kind], index)
        name = "c%04d_%s" % (index, cluster_vars["fwcluster_name"])
        cluster_vars["fwcluster_name"] = name
        prefix = "c%04d-" % index
        clusters[name] = (cluster_vars, {prefix + host: host_vars for host, host_vars in nodes.items()},
                          {prefix + host: host_vars for host, host_vars in balancers.items()})
    return clusters


def hosts_of(clusters):
    """Every host of the fleet: nodes and balancers."""
    return [host for _vars, nodes, balancers in clusters.values() for host in list(nodes) + list(balancers)]


def plan_inputs(clusters):
    """The fleet as build_plans() takes it (what the cluster_inputs filter returns)."""
    return dict((name, {"cluster": cluster_vars, "nodes": nodes, "balancers": balancers})
                for name, (cluster_vars, nodes, balancers) in clusters.items())


def write_inventory(clusters, path):
    """One YAML inventory: group fwcluster, a child group per cluster with its variables."""
    children = {}
    for name, (cluster_vars, nodes, balancers) in clusters.items():
        group = {"vars": cluster_vars, "hosts": nodes}
        if balancers:
            group["children"] = {name + "_balancers": {"hosts": balancers}}
        children[name] = group
    path.write_text(yaml.safe_dump({"all": {"children": {"fwcluster": {"children": children}}}}, sort_keys=False))


def time_build(clusters, repeat):
    """Seconds, best of repeat, to build every cluster's plan and check them together, in this process."""
    inputs = plan_inputs(clusters)
    best = None
    for _attempt in range(repeat):
        start = time.perf_counter()
        build_plans(copy.deepcopy(inputs))
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best


def task_times(output):
    """{key of TASKS: seconds} read from profile_tasks' recap in output."""
    times = {}
    for line in output.splitlines():
        match = TASK_TIME.match(line.strip())
        if not match:
            continue
        for key, (start, end) in TASKS.items():
            if (start and match.group("task").startswith(start)) or (end and match.group("task").endswith(end)):
                times[key] = float(match.group("seconds"))
    missing = sorted(set(TASKS) - set(times))
    if missing:
        sys.exit("controller: profile_tasks printed no time for %s" % ", ".join(missing))
    return times


def time_play(inventory, repeat):
    """{"play_s": wall seconds, key of TASKS: seconds}, each the best of repeat runs of the plan role."""
    env = dict(os.environ, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
               PROFILE_TASKS_TASK_OUTPUT_LIMIT="all", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    best = {}
    for _attempt in range(repeat):
        start = time.perf_counter()
        run = subprocess.run(["ansible-playbook", "-i", str(inventory), str(PLAYBOOK)], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if run.returncode != 0:
            sys.exit("controller: ansible-playbook failed (rc %d):\n%s%s" % (run.returncode, run.stdout[-4000:],
                                                                             run.stderr[-4000:]))
        times = dict(task_times(run.stdout), play_s=round(wall, 2))
        best = dict((key, min(value, best.get(key, value))) for key, value in times.items())
    return best


def summary(results):
    lines = [
        "| clusters | hosts | build (s) | per cluster (ms) | validation task (s) | publication (s) "
        "| argument check (s) | a task of nothing (s) | whole command (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["runs"]:
        lines.append("| %d | %d | %.3f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
            row["clusters"], row["hosts"], row["build_s"], 1000 * row["build_s"] / row["clusters"],
            row["validation_task_s"], row["publication_s"], row["argument_check_s"], row["per_host_nothing_s"],
            row["play_s"]))
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, nargs="+", default=[1, 10, 100, 500])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "build" / "bench" / "controller")
    args = parser.parse_args()
    results = {
        "command": "python3 benchmark/controller.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="fwcluster-fleet-") as work:
        for count in args.clusters:
            clusters = fleet(count)
            inventory = pathlib.Path(work) / ("fleet-%d.yml" % count)
            write_inventory(clusters, inventory)
            build = time_build(clusters, args.repeat)
            row = dict(time_play(inventory, args.repeat), clusters=count, hosts=len(hosts_of(clusters)),
                       build_s=round(build, 4))
            results["runs"].append(row)
            print("%(clusters)d clusters, %(hosts)d hosts: build %(build_s).3f s, validation task "
                  "%(validation_task_s).2f s, publication %(publication_s).2f s, argument check "
                  "%(argument_check_s).2f s, a task of nothing %(per_host_nothing_s).2f s, whole command "
                  "%(play_s).2f s" % row, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "controller.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "controller.md").write_text(summary(results))


if __name__ == "__main__":
    main()
