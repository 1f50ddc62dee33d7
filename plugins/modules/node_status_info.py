#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: node_status_info
short_description: Report a firewall cluster node's live state
version_added: "1.0.0"
author: "fwcluster.netfilter developers (!UNKNOWN)"  # sanity wants a GitHub handle or !UNKNOWN
description:
  - Reads what a node of a fwcluster.netfilter cluster is doing right now, from the daemons themselves.
  - The VRRP state, VRID, priority and addresses of every keepalived instance, from keepalived's JSON dump
    (keepalived writes it to O(keepalived_dump) when sent the signal C(keepalived --signum=JSON) names).
  - The addresses (IPv4 and IPv6) on every interface and which of O(vips) this node holds.
  - The xt_cluster node ids this node filters for (hash architecture), from the C(cluster) match rules of
    C(iptables-save -t mangle).
  - conntrackd's internal and external cache counts and its replication error counters, from C(conntrackd -s).
  - The link state of the replication interface, and how many packets arrived from each peer on it (the counter
    of the peer's raw rule, C(iptables-save -c -t raw)).
  - It changes no configuration and no state. The only thing it writes is keepalived's dump file.
  - A daemon that is not running, or a conntrackd that does not answer within 5 s (hung), is reported, not failed
    on; P(fwcluster.netfilter.cluster_health#filter)
    judges the reports of all nodes together.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: It only reads; check mode runs the same reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux with iproute2; keepalived, conntrackd and iptables where they are reported.
options:
  backend:
    description:
      - What wrote the node's rules (the plan's C(backend)) - where the ownership and the replication counters
        are read, C(iptables-save) or C(nft list table ip fwcluster).
    type: str
    choices: [iptables, nftables]
    default: iptables
  owner_chain:
    description:
      - With O(backend=nftables), the chain of the owner rules (the plan's C(hash.listed_chain)).
    type: str
    default: mangle_FWCLUSTER-OWN
  vips:
    description:
      - Addresses, without prefix, to look for on the node's interfaces (the plan's C(vip_addresses)).
    type: list
    elements: str
    default: []
  replication_interface:
    description:
      - The replication interface whose link state to report (the plan's C(nodes[host].replication.interface)).
      - Omit it when replication is off.
    type: str
  upstream:
    description:
      - Upstream hosts to ping once each, through the interface named with each (the plan's
        C(tracking.upstream), with the node's interface of each segment), as the node's upstream check does.
    type: list
    elements: dict
    default: []
    suboptions:
      host: {description: The host's IPv4 address., type: str, required: true}
      interface: {description: The interface the ping leaves by., type: str, required: true}
  resync_gate:
    description:
      - The state file of conntrackd's resync gate (the plan's C(nodes[host].conntrackd.resync_gate.state_file));
        the gate is pending while the same path with C(.pending) appended exists. Omit it when replication is off.
    type: path
  keepalived_pid_file:
    description: keepalived's PID file; a missing file or process means keepalived is not running.
    type: path
    default: /run/keepalived.pid
  keepalived_dump:
    description: Where keepalived writes its JSON dump.
    type: path
    default: /tmp/keepalived.json
  conntrackd_config:
    description:
      - conntrackd's configuration, which names the control socket C(conntrackd -s) talks to.
      - Set it to an empty string to skip conntrackd.
    type: str
    default: /etc/conntrackd/conntrackd.conf
  flows:
    description:
      - Also list the flows of conntrackd's internal and external caches (C(conntrackd -i), C(conntrackd -e)),
        each as C(proto src:sport>dst:dport) of its original direction. For a planned switchover, which checks that
        a peer holds every flow of the node it replaces; the lists can be long on a busy node.
    type: bool
    default: false
  flow_caches:
    description:
      - Which of conntrackd's caches O(flows=true) lists, C(internal) (this node's flows) and C(external) (the
        peers'). A planned switchover waits on each survivor's external cache only, which is what the survivor
        commits as it takes over (its kernel table, RV(kernel_flows), where the peers' flows go into the kernel).
    type: list
    elements: str
    choices: [internal, external]
    default: [internal, external]
  kernel_flows:
    description:
      - Also list the flows of the kernel's connection tracking table (C(conntrack -L)), in the form of O(flows),
        as RV(kernel_flows); of the TCP flows only the C(ESTABLISHED) ones (a handshake not done or a flow that
        is closing carries no data a peer would have to take over, and may not be replicated, see
        C(fwcluster_conntrackd_tcp_states)).
      - Where the external cache is disabled (C(DisableExternalCache On), as in sandwich clusters and hash clusters
        with C(fwcluster_replication.peer_flows=kernel)) the peers' flows are only there. A planned switchover of a
        hash node checks that each survivor's external cache (or, without one, its kernel table) holds the node's
        flows.
    type: bool
    default: false
  kernel_flows_ignore:
    description:
      - Leave out of RV(kernel_flows) the flows from or to these addresses, the node's own traffic, which
        conntrackd never replicates (its C(Address Ignore), the plan's C(conntrackd.ignore_addresses)). A
        planned switchover of a hash node without an internal cache reads the node's flows from its kernel
        table this way.
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait for keepalived to write a fresh dump.
    type: float
    default: 5.0
notes:
  - The parsers are in C(plugins/module_utils/node_status.py), tested against output of the real daemons.
seealso:
  - module: fwcluster.netfilter.validate_replication_link
"""

EXAMPLES = r"""
- name: Read this node's cluster state
  fwcluster.netfilter.node_status_info:
    vips: "{{ fwcluster_plan.vip_addresses }}"
    replication_interface: "{{ fwcluster_node.replication.interface if fwcluster_node.replication else omit }}"
  register: node_status
"""

RETURN = r"""
keepalived:
  description: keepalived's state.
  returned: always
  type: dict
  contains:
    running:
      description: Whether keepalived runs (its PID file names a live process).
      type: bool
    instances:
      description: Every VRRP instance, sorted by name.
      type: list
      elements: dict
      contains:
        name: {description: The instance name., type: str}
        state: {description: "V(MASTER), V(BACKUP), V(FAULT) or V(INIT).", type: str}
        vrid: {description: The virtual router id., type: int}
        interface: {description: The interface the instance runs on., type: str}
        priority: {description: The configured priority., type: int}
        effective_priority: {description: The priority after track scripts., type: int}
        vips: {description: The instance's virtual addresses with prefix., type: list, elements: str}
        last_transition: {description: Unix time of the last state change., type: float}
        become_master: {description: How often the instance became master., type: int}
        track_interfaces: {description: "The interfaces whose link the instance tracks (FAULT while one is down).",
                           type: list, elements: str}
        track_scripts: {description: "The check scripts the instance tracks (FAULT while one fails), as run.",
                        type: list, elements: str}
    error:
      description: Why the instances could not be read, when keepalived runs but did not answer.
      type: str
  sample:
    running: true
    instances:
      - {name: edge_inside, state: MASTER, vrid: 51, interface: eth1, priority: 254, effective_priority: 254,
         vips: [10.10.1.254/24], last_transition: 1795558837.86, become_master: 1,
         track_interfaces: [eth2, eth3], track_scripts: [/etc/keepalived/fwcluster-check-conntrackd.sh]}
addresses:
  description: Interface name to its addresses (IPv4 and IPv6) with prefix.
  returned: always
  type: dict
  sample: {eth1: [10.10.1.1/24, 10.10.1.254/24]}
vips_held:
  description: The addresses of O(vips) this node holds.
  returned: always
  type: list
  elements: str
  sample: [10.10.1.254]
cluster:
  description:
    - The ownership of this node (hash architecture), null when the mangle table has no owner rule
      (O(backend=nftables) reads the owner chain of table C(ip fwcluster)).
  returned: always
  type: dict
  contains:
    total_nodes: {description: The cluster size the rules hash over., type: int}
    nodemask: {description: The union of the rules' local node masks., type: str}
    node_ids: {description: "The node ids owned: mask bit k is node id k (xt_cluster node k+1).", type: list,
               elements: int}
    node_ids_ipv6:
      description:
        - With O(backend=nftables), the node ids the owner chain of table C(ip6 fwcluster) owns (a dual-stack
          hash cluster's; an empty list when it owns none), absent without that chain (an IPv4-only cluster).
          The owner hook writes both chains in one transaction, so they differ only when something else
          changed one.
      type: list
      elements: int
  sample: {total_nodes: 3, nodemask: "0x00000005", node_ids: [0, 2]}
conntrackd:
  description: conntrackd's caches and error counters; null when O(conntrackd_config) is empty.
  returned: always
  type: dict
  contains:
    running: {description: Whether C(conntrackd -s) got an answer., type: bool}
    internal: {description: "Flows in the internal cache (this node's own); null when that cache is disabled.", type: int}
    external: {description: Flows in the external cache (the peers'); null when that cache is disabled., type: int}
    errors: {description: "The replication link's error counters by kind: send, recv, malformed, lost.", type: dict}
    error_total: {description: The sum of the error counters., type: int}
    cache_failures: {description: "The caches' failed creations, updates and deletions (bookkeeping, not the link).",
                     type: int}
    started: {description: When the conntrackd daemon started (Unix time); null when no process is found., type: float}
    config_mtime: {description: "When O(conntrackd_config) was last written (Unix time): after RV(conntrackd.started),
                                 the daemon runs an older configuration.", type: float}
    error: {description: Why conntrackd did not answer., type: str}
    internal_flows: {description: "The internal cache's flows (O(flows=true), C(internal) in O(flow_caches)).",
                     type: list, elements: str}
    external_flows: {description: "The external cache's flows (O(flows=true), C(external) in O(flow_caches)).",
                     type: list, elements: str}
  sample: {running: true, internal: 4, external: 2, error_total: 0, cache_failures: 0,
           errors: {send: 0, recv: 0, malformed: 0, lost: 0}}
kernel_flows:
  description:
    - The kernel's tracked flows (O(kernel_flows=true)), each as C(proto src:sport>dst:dport) of its original
      direction, sorted; null when C(conntrack) is not installed or cannot list the table.
  returned: O(kernel_flows=true)
  type: list
  elements: str
  sample: ["tcp 10.20.1.100:40112>198.51.100.10:8080"]
replication_heard:
  description:
    - Packets received from each peer on the replication link (its conntrackd messages and heartbeat pings), by
      the peer's replication address, from the counter of the peer's raw rule; null without
      O(replication_interface) or without iptables, empty without such rules.
    - Two samples a few seconds apart tell whether each peer is heard.
  returned: always
  type: dict
  sample: {192.168.100.2: 1234}
upstream:
  description: Each host of O(upstream), and whether it answered a ping within 1 s (C(error) when it could not be asked).
  returned: always
  type: list
  elements: dict
  sample: [{host: 203.0.113.10, interface: eth2, answers: true}]
resync_gate:
  description:
    - conntrackd's resync gate since the node's last boot; null without O(resync_gate).
  returned: always
  type: dict
  contains:
    pending: {description: "The gate is running (conntrackd's unit started it) and has not finished.", type: bool}
    open: {description: "The gate has opened: the peers' flows are in.", type: bool}
    opened_at: {description: When it last opened (Unix time)., type: float}
    peers_answered: {description: The peers' replication addresses that answered and were asked., type: list,
                     elements: str}
    flows_received: {description: The flows received from the peers while it waited., type: int}
    settled: {description: "Whether they had stopped arriving (false: it opened after its longest wait).",
              type: bool}
    error: {description: Why the state file could not be read., type: str}
  sample: {pending: false, open: true, opened_at: 1796414757.63, peers_answered: [192.168.101.1, 192.168.101.3],
           flows_received: 207, settled: true}
replication_link:
  description: The replication interface's state; null without O(replication_interface).
  returned: always
  type: dict
  contains:
    interface: {description: The interface., type: str}
    operstate: {description: "From C(/sys/class/net/IF/operstate); V(missing) when the interface does not exist.",
                type: str}
    up: {description: Whether the link can carry traffic., type: bool}
  sample: {interface: eth3, operstate: up, up: true}
"""

import ipaddress
import os
import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fwcluster.netfilter.plugins.module_utils.node_status import (
    StatusParseError,
    cluster_ownership,
    cluster_ownership_nft,
    conntrackd_flow_keys,
    conntrackd_stats,
    interface_addresses,
    keepalived_instances,
    replication_heard,
    replication_heard_nft,
    resync_gate_state,
)
from ansible_collections.fwcluster.netfilter.plugins.module_utils.cluster_hash import flow_addresses
from ansible_collections.fwcluster.netfilter.plugins.module_utils.node_links import link_state
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.read import INTERFACE_NAME
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.vrrp import UPSTREAM_ANSWER_S


def _running_pid(pid_file):
    try:
        with open(pid_file) as handle:
            pid = int(handle.read().strip())
    except (IOError, OSError, ValueError):
        return None
    return pid if os.path.isdir("/proc/%d" % pid) else None


def _mtime(path):
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def read_keepalived(module):
    params = module.params
    pid = _running_pid(params["keepalived_pid_file"])
    if pid is None:
        return {"running": False, "instances": []}
    keepalived = module.get_bin_path("keepalived")
    if keepalived is None:
        return {"running": True, "instances": [], "error": "the keepalived binary is not on PATH"}
    rc, out, err = module.run_command([keepalived, "--signum=JSON"])
    if rc != 0 or not out.strip().isdigit():
        return {"running": True, "instances": [],
                "error": "this keepalived cannot dump JSON: %s" % (err or out).strip()}
    dump = params["keepalived_dump"]
    before = _mtime(dump)
    os.kill(pid, int(out.strip()))
    deadline = time.time() + params["timeout"]
    last_error = "keepalived wrote no dump to %s within %s s" % (dump, params["timeout"])
    while time.time() < deadline:
        time.sleep(0.05)
        if _mtime(dump) == before:
            continue
        try:
            with open(dump) as handle:
                return {"running": True, "instances": keepalived_instances(handle.read())}
        except (IOError, OSError, StatusParseError) as error:
            last_error = str(error)  # caught mid-write: read again
    return {"running": True, "instances": [], "error": last_error}


def read_addresses(module):
    rc, out, err = module.run_command([module.get_bin_path("ip", required=True), "-j", "addr", "show"])
    if rc != 0:
        module.fail_json(msg="ip -j addr show failed: %s" % (err or out).strip())
    try:
        return interface_addresses(out)
    except StatusParseError as error:
        module.fail_json(msg=str(error))


def read_nft_table(module, family="ip"):
    """nft list table FAMILY fwcluster, None without nft or the table."""
    nft = module.get_bin_path("nft")
    if nft is None:
        return None
    rc, out, err = module.run_command([nft, "list", "table", family, "fwcluster"])
    return out if rc == 0 else None


def read_cluster(module, nft_listing):
    """The node ids owned; nft_listing: read_nft_table()'s, read once for this and read_heard (nftables)."""
    if module.params["backend"] == "nftables":
        if nft_listing is None:
            return None
        return cluster_ownership_nft(nft_listing, module.params["owner_chain"], read_nft_table(module, "ip6"))
    iptables_save = module.get_bin_path("iptables-save")
    if iptables_save is None:
        return None
    rc, out, err = module.run_command([iptables_save, "-t", "mangle"])
    return cluster_ownership(out) if rc == 0 else None


def read_heard(module, nft_listing):
    """Packets received from each peer on the replication link (its raw rule's counter); None without the tool."""
    if module.params["backend"] == "nftables":
        return replication_heard_nft(nft_listing) if nft_listing is not None else None
    iptables_save = module.get_bin_path("iptables-save")
    if iptables_save is None:
        return None
    rc, out, err = module.run_command([iptables_save, "-c", "-t", "raw"])
    return replication_heard(out) if rc == 0 else None


# A hung conntrackd (stopped, or stuck in a loop) accepts the control
# socket's connection and never answers: without a bound, the status would
# hang with it.
CONNTRACKD_ANSWER_S = 5
TIMED_OUT = 124  # timeout(1)'s exit status when the command did not end in time


def read_conntrackd(module):
    config = module.params["conntrackd_config"]
    if not config:
        return None
    conntrackd = module.get_bin_path("conntrackd")
    if conntrackd is None:
        return {"running": False, "error": "conntrackd is not installed"}
    bounded = [module.get_bin_path("timeout", required=True), str(CONNTRACKD_ANSWER_S), conntrackd, "-C", config]
    rc, out, err = module.run_command(bounded + ["-s"])
    if rc == TIMED_OUT:
        return {"running": False, "error": "hung: no answer within %d s" % CONNTRACKD_ANSWER_S}
    if rc != 0:
        lines = (err or out).strip().splitlines()
        return {"running": False, "error": lines[-1] if lines else "conntrackd -s exited %d" % rc}
    try:
        stats = conntrackd_stats(out)
    except StatusParseError as error:
        return {"running": True, "error": str(error)}
    stats["running"] = True
    # A configuration written after the daemon started is not the one it runs
    # (conntrackd reads its file only when it starts).
    stats["started"] = process_started("conntrackd")
    stats["config_mtime"] = os.stat(config).st_mtime if os.path.exists(config) else None
    if module.params["flows"]:
        for cache, option in (("internal", "-i"), ("external", "-e")):
            if cache in module.params["flow_caches"]:
                rc, out, err = module.run_command(bounded + [option])
                stats[cache + "_flows"] = conntrackd_flow_keys(out) if rc == 0 else []
    return stats


def process_started(name):
    """When the oldest process called name started (Unix time), or None when none runs.

    The oldest: the daemon, not a client of the same name (`conntrackd -s` of the checks).
    """
    with open("/proc/uptime") as handle:
        booted = time.time() - float(handle.read().split()[0])
    ticks = os.sysconf("SC_CLK_TCK")
    found = None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % entry) as handle:
                if handle.read().strip() != name:
                    continue
            with open("/proc/%s/stat" % entry) as handle:
                stat = handle.read()
        except OSError:
            continue  # the process ended meanwhile
        # starttime is field 22 of stat; the name (field 2) may hold spaces, so count after its ")".
        started = booted + int(stat[stat.rindex(")") + 2:].split()[19]) / ticks
        found = started if found is None else min(found, started)
    return found


def read_link(interface):
    state = link_state(interface)
    return {"interface": interface, "operstate": state["operstate"], "up": state["up"]}


_NOT_ESTABLISHED = re.compile(r"^\s*tcp\s+\d+\s+\d+\s+(?!ESTABLISHED\s)[A-Z_0-9]+\s")


def read_upstream(module):
    """Ping each upstream host once through its interface, as the node's upstream check does."""
    ping = module.get_bin_path("ping")
    found = []
    for entry in module.params["upstream"]:
        try:
            ipaddress.ip_address(entry["host"])
        except ValueError:
            module.fail_json(msg="upstream host %r is not an IP address" % entry["host"])
        if not INTERFACE_NAME.fullmatch(entry["interface"]):
            module.fail_json(msg="upstream interface %r is not an interface name" % entry["interface"])
        if ping is None:
            found.append(dict(entry, answers=False, error="ping is not installed"))
            continue
        rc = module.run_command([ping, "-n", "-q", "-c", "1", "-W", str(UPSTREAM_ANSWER_S),
                                 "-I", entry["interface"], entry["host"]])[0]
        found.append({"host": entry["host"], "interface": entry["interface"], "answers": rc == 0})
    return found


def read_resync_gate(path):
    try:
        with open(path) as handle:
            text = handle.read()
    except (IOError, OSError):
        text = None
    try:
        state = resync_gate_state(text)
    except StatusParseError as error:
        state = {"open": False, "error": str(error)}
    state["pending"] = os.path.exists(path + ".pending")
    return state


def read_kernel_flows(module):
    conntrack = module.get_bin_path("conntrack")
    if conntrack is None:
        return None
    rc, out, err = module.run_command([conntrack, "-L"])
    if rc != 0:
        return None
    # Of the TCP flows only the established ones (not SYN_SENT, SYN_RECV, or closing).
    flows = conntrackd_flow_keys("\n".join(line for line in out.splitlines() if not _NOT_ESTABLISHED.search(line)))
    ignored = set(module.params["kernel_flows_ignore"])
    return [flow for flow in flows if not ignored.intersection(flow_addresses(flow))]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backend=dict(type="str", choices=["iptables", "nftables"], default="iptables"),
            owner_chain=dict(type="str", default="mangle_FWCLUSTER-OWN"),
            vips=dict(type="list", elements="str", default=[]),
            replication_interface=dict(type="str"),
            resync_gate=dict(type="path"),
            upstream=dict(type="list", elements="dict", default=[], options=dict(
                host=dict(type="str", required=True),
                interface=dict(type="str", required=True),
            )),
            keepalived_pid_file=dict(type="path", default="/run/keepalived.pid"),
            keepalived_dump=dict(type="path", default="/tmp/keepalived.json"),
            conntrackd_config=dict(type="str", default="/etc/conntrackd/conntrackd.conf"),
            flows=dict(type="bool", default=False),
            flow_caches=dict(type="list", elements="str", choices=["internal", "external"],
                             default=["internal", "external"]),
            kernel_flows=dict(type="bool", default=False),
            kernel_flows_ignore=dict(type="list", elements="str", default=[]),
            timeout=dict(type="float", default=5.0),
        ),
        supports_check_mode=True,
    )
    if module.params["timeout"] <= 0:
        module.fail_json(msg="timeout must be positive, got %s" % module.params["timeout"])
    addresses = read_addresses(module)
    held = set(address.split("/")[0] for entries in addresses.values() for address in entries)
    interface = module.params["replication_interface"]
    # One listing of the nftables table serves the ownership and the counters.
    nft_listing = read_nft_table(module) if module.params["backend"] == "nftables" else None
    extra = {}
    if module.params["kernel_flows"]:
        extra["kernel_flows"] = read_kernel_flows(module)
    module.exit_json(
        changed=False,
        keepalived=read_keepalived(module),
        addresses=addresses,
        vips_held=[vip for vip in module.params["vips"] if vip in held],
        cluster=read_cluster(module, nft_listing),
        conntrackd=read_conntrackd(module),
        replication_link=read_link(interface) if interface else None,
        replication_heard=read_heard(module, nft_listing) if interface else None,
        upstream=read_upstream(module),
        resync_gate=read_resync_gate(module.params["resync_gate"]) if module.params["resync_gate"] else None,
        **extra
    )


if __name__ == "__main__":
    main()
