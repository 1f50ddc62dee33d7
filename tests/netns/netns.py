"""Network namespaces for the kernel tests: a firewall node between host namespaces, its rules loaded as a role would.

Every namespace is named fwq-*; whatever an interrupted run left behind is
removed before a new one starts (cleanup()).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan
from ansible_collections.fwcluster.netfilter.tests.unit.examples import load_inventory
from ansible_collections.fwcluster.netfilter.tests.unit.roles.rendering import render

PREFIX = "fwq-"
AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent.py")
BACKENDS = ("iptables", "nftables")


def run(namespace, *argv, stdin=None):
    done = subprocess.run(["ip", "netns", "exec", namespace] + list(argv), input=stdin, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise AssertionError("%s in %s failed (%d): %s%s" % (" ".join(argv), namespace, done.returncode, done.stdout,
                                                             done.stderr))
    return done.stdout


def cleanup():
    listed = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=False).stdout.strip()
    for entry in json.loads(listed or "[]"):
        if entry["name"].startswith(PREFIX):
            subprocess.run("ip netns pids %s | xargs -r kill -9" % entry["name"], shell=True, check=False)
            subprocess.run(["ip", "netns", "delete", entry["name"]], check=True)


def plan_of(example, backend, change=None):
    """The plan of inventories/EXAMPLE with fwcluster_backend set; change(cluster, nodes) may edit the inventory."""
    cluster, nodes, balancers = copy.deepcopy(load_inventory(example))
    cluster["fwcluster_backend"] = backend
    if change is not None:
        change(cluster, nodes)
    return build_plan(cluster, nodes, balancers)


class Lab(object):
    """Namespaces, the links between them, and the agents serving in them; close() removes them all."""

    def __init__(self):
        self.namespaces = []
        self.servers = []
        self.workdir = tempfile.mkdtemp(prefix="fwcluster-netns-")

    def namespace(self, name):
        full = PREFIX + name
        subprocess.run(["ip", "netns", "add", full], check=True)
        self.namespaces.append(full)
        run(full, "ip", "link", "set", "lo", "up")
        # No duplicate address detection on the links made next: a link-local address still tentative
        # (a second after the link came up) leaves neighbour solicitations unsent, and the first IPv6
        # packets of a test unanswered. Real nodes are up long before their first flow.
        run(full, "sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0")
        return full

    def link(self, left, left_name, right, right_name):
        """A veth pair, left_name in namespace left, right_name in right, both up."""
        subprocess.run(["ip", "link", "add", left_name, "netns", left, "type", "veth",
                        "peer", "name", right_name, "netns", right], check=True)
        run(left, "ip", "link", "set", left_name, "up")
        run(right, "ip", "link", "set", right_name, "up")

    def host(self, name, firewall, firewall_interface, addresses, routes=()):
        """A host namespace on the firewall's interface: addresses (the first with its prefix), routes (dest, via)."""
        namespace = self.namespace(name)
        self.link(firewall, firewall_interface, namespace, "eth0")
        for address in addresses:
            add_address(namespace, address, "eth0")
        for destination, via in routes:
            run(namespace, "ip", "-6" if ":" in via else "-4", "route", "add", destination, "via", via)
        return namespace

    def serve(self, namespace, tcp_ports=(), udp_ports=()):
        """Start an agent answering on the ports; its bare-ACK sightings gather in the returned list."""
        process = subprocess.Popen(["ip", "netns", "exec", namespace, "python3", AGENT, "serve",
                                    ",".join(map(str, tcp_ports)), ",".join(map(str, udp_ports))],
                                   stdout=subprocess.PIPE, text=True)
        self.servers.append(process)
        if process.stdout.readline().strip() != "ready":
            raise AssertionError("the agent in %s did not start" % namespace)
        seen = []
        threading.Thread(target=lambda: seen.extend(line.split() for line in process.stdout), daemon=True).start()
        return seen

    def probe(self, namespace, cases):
        return json.loads(run(namespace, "python3", AGENT, "probe", json.dumps(cases)))

    def file(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, 0o755)
        return path

    def close(self):
        for process in self.servers:
            process.kill()
            process.wait()
        for namespace in self.namespaces:
            subprocess.run("ip netns pids %s | xargs -r kill -9" % namespace, shell=True, check=False)
            subprocess.run(["ip", "netns", "delete", namespace], check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)


def add_address(namespace, address, interface):
    """An address on an interface; an IPv6 one without duplicate address detection (usable at once)."""
    run(namespace, "ip", "address", "add", address, "dev", interface, *(["nodad"] if ":" in address else []))


def load_rules(lab, namespace, plan, host):
    """The node's rules as its role loads them: rules.v4/rules.v6 with iptables-restore, or rules.nft with nft -f."""
    if plan["backend"] == "nftables":
        rules = lab.file("%s-rules.nft" % host, render("firewall", "rules.nft.j2", plan, host))
        run(namespace, "nft", "-c", "-f", rules)
        run(namespace, "nft", "-f", rules)
    else:
        run(namespace, "iptables-restore", lab.file("%s-rules.v4" % host, render("firewall", "rules.v4.j2", plan, host)))
        run(namespace, "ip6tables-restore", lab.file("%s-rules.v6" % host, render("firewall", "rules.v6.j2", plan, host)))
    node = plan["nodes"].get(host) or plan["balancers"][host]
    for name, value in node["sysctls"].items():
        if os.path.exists("/proc/sys/" + name.replace(".", "/")):
            run(namespace, "sysctl", "-q", "-w", "%s=%s" % (name, value))


def hash_scripts(lab, namespace, plan, host):
    """The links script run (VIPs, multicast MACs, ARP) and the owner hook installed; returns the hook's path."""
    state = os.path.join(lab.workdir, "%s-state" % host)
    script = render("firewall", "fwcluster-hash-links.j2", plan, host, fwcluster_firewall_hash_state_dir=state)
    links = lab.file("%s-links" % host, script)
    run(namespace, "sh", links)
    hook = render("firewall", "fwcluster-hash-owner.j2", plan, host, fwcluster_firewall_hash_state_dir=state)
    return lab.file("%s-owner" % host, hook)


def _neighbours(namespace, address):
    return json.loads(run(namespace, "ip", "-j", "neigh", "show", address) or "[]")


def neighbour_mac(namespace, address):
    """The MAC the namespace has learnt for address (None before it has)."""
    for entry in _neighbours(namespace, address):
        if entry.get("lladdr"):
            return entry["lladdr"]
    return None


def neighbour_state(namespace, address):
    """(state, MAC) of the namespace's entry for address, e.g. ("REACHABLE", "01:00:5e:14:01:fe"); None without one."""
    for entry in _neighbours(namespace, address):
        return (entry.get("state", [None])[0], entry.get("lladdr"))
    return None


def addresses(network, first, count):
    """count host addresses of network from its first-th one, as text."""
    base = ipaddress.ip_network(network)
    return [str(base.network_address + first + index) for index in range(count)]


def wait_for(condition, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
