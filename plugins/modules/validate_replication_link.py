#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: validate_replication_link
short_description: Check the conntrackd replication link on a node
version_added: "1.0.0"
author: "fwcluster.netfilter developers (!UNKNOWN)"  # sanity wants a GitHub handle or !UNKNOWN
description:
  - The replication-link validator. It changes nothing.
  - It checks the link on the node it runs on - the interface exists and is up, it holds the node's replication
    address with its prefix, and every peer is reachable through it - it answers a ping or, when ping gets no
    answer, an ARP request the module sends on the interface itself.
  - The settings of the link (a dedicated interface that carries no segment, every node's address on one subnet
    and distinct, transport, mode, port and multicast group consistent) are checked on the controller, before
    any host is touched, by M(fwcluster.netfilter.validate_node_ids); this module takes its values from the plan
    that module returns.
  - The ARP fallback makes the check independent of the node's current filter rules. A node deployed with
    replication off drops ICMP on that interface until the new rules are applied, later in the run; its
    kernel still answers ARP, which proves the peer's link layer and address. A peer that answers
    neither is an error.
  - Every failure names the host, the variable and what is wrong.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The checks only read; check mode runs the same checks.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Needs Linux (C(/sys/class/net), C(ip) from iproute2, C(ping) from iputils) and root
      for the ARP fallback (a raw C(AF_PACKET) socket; without it the fallback reads the neighbour table).
options:
  scope:
    description:
      - V(node) checks the link on the node the task runs on; it is the only scope. The controller scope of
        earlier versions is gone (M(fwcluster.netfilter.validate_node_ids) makes those checks).
    type: str
    choices: [node]
    default: node
  name:
    description:
      - The node's inventory name, used in messages. Defaults to the node's host name.
    type: str
  interface:
    description:
      - The replication interface on this node (the plan's C(nodes[host].replication.interface)).
    type: str
    required: true
  address:
    description:
      - This node's replication address, without prefix (the plan's C(replication.address)).
    type: str
    required: true
  prefix:
    description:
      - The prefix length of O(address) (the plan's C(replication.prefix)).
    type: int
    required: true
  peers:
    description:
      - The other nodes' replication addresses (the plan's C(replication.peers)); each must answer a ping or,
        failing that, an ARP request on O(interface).
    type: list
    elements: str
    default: []
  peer_hosts:
    description:
      - Peer address to inventory name (the plan's C(replication.peer_hosts)), so that messages name the peer host.
    type: dict
    default: {}
  timeout:
    description:
      - Seconds to wait for each peer's answer. C(ping -W) takes whole seconds, so it is rounded up, at least 1.
        The ARP fallback waits as long again.
    type: float
    default: 1.0
seealso:
  - module: fwcluster.netfilter.validate_node_ids
"""

EXAMPLES = r"""
- name: Check the replication link on each node
  fwcluster.netfilter.validate_replication_link:
    name: "{{ inventory_hostname }}"
    interface: "{{ fwcluster_node.replication.interface }}"
    address: "{{ fwcluster_node.replication.address }}"
    prefix: "{{ fwcluster_node.replication.prefix }}"
    peers: "{{ fwcluster_node.replication.peers }}"
    peer_hosts: "{{ fwcluster_node.replication.peer_hosts }}"
  when: fwcluster_node.replication is not none
"""

RETURN = r"""
interface:
  description: The interface checked.
  returned: always
  type: str
  sample: eth3
operstate:
  description: The interface's operational state, from C(/sys/class/net/IF/operstate).
  returned: the interface exists
  type: str
  sample: up
addresses:
  description: The IPv4 addresses (with prefix) the interface holds.
  returned: the interface exists
  type: list
  elements: str
  sample: [192.168.100.1/24]
peers:
  description: Every peer and whether it answered.
  returned: the address check passed
  type: list
  elements: dict
  contains:
    address:
      description: The peer's replication address.
      type: str
    host:
      description: The peer's inventory name, when O(peer_hosts) names it.
      type: str
    reachable:
      description: Whether the peer answered the ping or the ARP request.
      type: bool
    via:
      description:
        - How the peer answered. V(ping) (an ICMP echo reply), V(arp) (no echo reply, but an ARP reply to the
          module's request, or without a raw socket a V(REACHABLE) neighbour entry on the interface), null when
          it answered neither.
      type: str
    mac:
      description: The peer's link-layer address from its ARP reply, when RV(peers[].via) is V(arp).
      type: str
    rtt_ms:
      description: Round-trip time of the ping in milliseconds, null when the peer did not answer the ping.
      type: float
  sample:
    - {address: 192.168.100.2, host: pb-fw2, reachable: true, via: ping, rtt_ms: 0.08}
    - {address: 192.168.100.3, host: pb-fw3, reachable: true, via: arp, mac: "52:54:00:12:34:56", rtt_ms: null}
host:
  description: The host whose variable breaks a rule (C(cluster NAME) for group variables).
  returned: failure
  type: str
  sample: pb-fw1
variable:
  description: The variable that breaks the rule.
  returned: failure
  type: str
  sample: fwcluster_replication_address
rule:
  description: What is wrong.
  returned: failure
  type: str
  sample: 192.168.100.1/24 is not configured on eth3
"""

import json
import math
import re
import socket
import struct
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fwcluster.netfilter.plugins.module_utils.node_links import (
    LinkError,
    interface_addresses,
    interface_state,
    read_sys,
)

INTERFACE_VARIABLE = "fwcluster_replication.interface"
ADDRESS_VARIABLE = "fwcluster_replication_address"
_RTT = re.compile(r"time[=<]\s*([0-9.]+)\s*ms")
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARP_REQUEST = 1
ARP_REPLY = 2
_ARP = struct.Struct("!HHBBH6s4s6s4s")  # htype ptype hlen plen op sha spa tha tpa


def ping_peer(module, ping, interface, peer, timeout):
    wait = max(1, int(math.ceil(timeout)))  # ping -W takes whole seconds here
    rc, out, err = module.run_command([ping, "-n", "-c", "1", "-W", str(wait), "-I", interface, peer])
    if rc != 0:
        return False, None
    match = _RTT.search(out)
    return True, float(match.group(1)) if match else None


def _mac_text(raw):
    return ":".join("%02x" % byte for byte in bytearray(raw))


def arp_request(source_mac, source, target):
    """An Ethernet broadcast frame asking who has target, from source (IPv4 text) at source_mac (6 bytes)."""
    header = b"\xff" * 6 + source_mac + struct.pack("!H", ETH_P_ARP)
    return header + _ARP.pack(1, ETH_P_IP, 6, 4, ARP_REQUEST, source_mac, socket.inet_aton(source),
                              b"\x00" * 6, socket.inet_aton(target))


def arp_reply_from(frame, target):
    """The sender MAC (text) when frame is an ARP reply from target (IPv4 text), else None."""
    if len(frame) < 14 + _ARP.size or struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack(frame[14:14 + _ARP.size])
    if (htype, ptype, hlen, plen, op) != (1, ETH_P_IP, 6, 4, ARP_REPLY) or spa != socket.inet_aton(target):
        return None
    return _mac_text(sha)


def arp_probe(interface, source, target, timeout):
    """Ask for target's MAC on interface with one ARP request; its MAC (text) or None when nothing answers.

    Raises OSError when no raw packet socket can be had (not root). arptables does not see
    frames of a packet socket, and the peer's kernel answers ARP before its iptables."""
    source_mac = bytes(bytearray(int(part, 16) for part in read_sys(interface, "address").split(":")))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    try:
        sock.bind((interface, ETH_P_ARP))
        deadline = time.monotonic() + timeout
        sock.send(arp_request(source_mac, source, target))
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            try:
                frame = sock.recv(2048)
            except socket.timeout:
                return None
            mac = arp_reply_from(frame, target)
            if mac is not None:
                return mac
    finally:
        sock.close()


def neighbour_reachable(module, interface, peer):
    """The MAC of a REACHABLE neighbour entry for peer on interface (just confirmed by the kernel), else None."""
    ip = module.get_bin_path("ip")
    if ip is None:
        return None
    rc, out, err = module.run_command([ip, "-j", "neigh", "show", "to", peer, "dev", interface])
    if rc != 0:
        return None
    try:
        entries = json.loads(out or "[]")
    except ValueError:
        return None
    for entry in entries:
        if isinstance(entry, dict) and "REACHABLE" in (entry.get("state") or []) and entry.get("lladdr"):
            return entry["lladdr"]
    return None


def peer_by_arp(module, interface, source, peer, timeout):
    """The peer's MAC if it answers ARP on interface (the neighbour table without a raw socket), else None."""
    try:
        return arp_probe(interface, source, peer, timeout)
    except OSError:
        return neighbour_reachable(module, interface, peer)


def check_peer(module, ping, interface, source, peer, timeout):
    """{reachable, via, mac, rtt_ms} of one peer: ping first, then ARP, which no filter rule of ours blocks."""
    reachable, rtt = ping_peer(module, ping, interface, peer, timeout)
    if reachable:
        return {"reachable": True, "via": "ping", "rtt_ms": rtt}
    mac = peer_by_arp(module, interface, source, peer, max(1, int(math.ceil(timeout))))
    if mac is not None:
        return {"reachable": True, "via": "arp", "mac": mac, "rtt_ms": None}
    return {"reachable": False, "via": None, "rtt_ms": None}


def check_node(module):
    params = module.params
    host = params["name"] or socket.gethostname()
    interface = params["interface"]
    wanted = "%s/%d" % (params["address"], params["prefix"])
    result = {"interface": interface}

    result["operstate"] = interface_state(host, interface, INTERFACE_VARIABLE)
    result["addresses"] = interface_addresses(module, host, interface, INTERFACE_VARIABLE)
    if wanted not in result["addresses"]:
        held = ", ".join(result["addresses"]) or "no IPv4 address"
        raise LinkError(host, ADDRESS_VARIABLE, "%s is not configured on %s (it holds %s)"
                        % (wanted, interface, held), result)

    ping = module.get_bin_path("ping")
    if ping is None and params["peers"]:
        raise LinkError(host, INTERFACE_VARIABLE, "ping (iputils-ping) is not installed on this node; "
                        "the link check needs it", result)
    peer_hosts = params["peer_hosts"] or {}
    result["peers"] = []
    silent = []
    for peer in params["peers"]:
        answer = check_peer(module, ping, interface, params["address"], peer, params["timeout"])
        answer.update(address=peer, host=peer_hosts.get(peer))
        result["peers"].append(answer)
        if not answer["reachable"]:
            silent.append(peer)
    if silent:
        peer = silent[0]
        others = " (also silent: %s)" % ", ".join(silent[1:]) if len(silent) > 1 else ""
        raise LinkError(peer_hosts.get(peer, host), ADDRESS_VARIABLE,
                        "peer %s answers neither ping nor ARP from %s through %s within %s s%s"
                        % (peer, host, interface, max(1, int(math.ceil(params["timeout"]))), others), result)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            scope=dict(type="str", default="node", choices=["node"]),
            name=dict(type="str"),
            interface=dict(type="str", required=True),
            address=dict(type="str", required=True),
            prefix=dict(type="int", required=True),
            peers=dict(type="list", elements="str", default=[]),
            peer_hosts=dict(type="dict", default={}),
            timeout=dict(type="float", default=1.0),
        ),
        supports_check_mode=True,
    )
    if module.params["timeout"] <= 0:
        module.fail_json(msg="timeout must be positive, got %s" % module.params["timeout"])
    try:
        result = check_node(module)
    except LinkError as error:
        module.fail_json(msg=str(error), host=error.host, variable=error.variable, rule=error.rule, **error.result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
