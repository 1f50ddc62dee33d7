# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node's network interfaces, read live: does one exist, is it up, which IPv4 addresses does it hold.

Shared by the modules that check a node before any change
(validate_replication_link, validate_interfaces). A failed check is a
LinkError naming the host, the inventory variable and what is wrong.
"""

from __future__ import annotations

import json
import os
import re

SYS_CLASS_NET = "/sys/class/net"
IFF_UP = 0x1
_INET = re.compile(r"\binet\s+([0-9.]+/[0-9]+)")


class LinkError(Exception):
    """A failed node check; result holds what was found before it, for the failure's return values."""

    def __init__(self, host, variable, rule, result=None):
        super(LinkError, self).__init__(host, variable, rule)
        self.host = host
        self.variable = variable
        self.rule = rule
        self.result = result or {}

    def __str__(self):
        return "%s: %s: %s" % (self.host, self.variable, self.rule)


def read_sys(interface, attribute):
    with open(os.path.join(SYS_CLASS_NET, interface, attribute)) as handle:
        return handle.read().strip()


def link_state(interface):
    """{"interface", "operstate", "up"} of the interface, read from sysfs; operstate "missing" if it does not exist.

    Usable ("up") means operstate up, or unknown with IFF_UP: loopback and
    some tunnels report no carrier state.
    """
    if "/" in interface or interface in ("", ".", "..") or not os.path.isdir(os.path.join(SYS_CLASS_NET, interface)):
        return {"interface": interface, "operstate": "missing", "up": False, "admin_up": False}
    operstate = read_sys(interface, "operstate")
    admin_up = bool(int(read_sys(interface, "flags"), 16) & IFF_UP)
    return {"interface": interface, "operstate": operstate, "admin_up": admin_up,
            "up": operstate == "up" or (operstate == "unknown" and admin_up)}


def interface_state(host, interface, variable):
    """operstate, failing unless the link is usable (link_state's "up")."""
    state = link_state(interface)
    if state["operstate"] == "missing":
        raise LinkError(host, variable, "interface %s does not exist on this node" % interface)
    if not state["up"]:
        raise LinkError(host, variable, "interface %s is not up (operstate %s, %s)"
                        % (interface, state["operstate"],
                           "administratively up" if state["admin_up"] else "administratively down"))
    return state["operstate"]


def interface_addresses(module, host, interface, variable):
    """The IPv4 addresses with prefix on the interface, from iproute2 (JSON, text as a fallback)."""
    ip = module.get_bin_path("ip")
    if ip is None:
        raise LinkError(host, variable, "the ip command (iproute2) is not installed on this node")
    rc, out, err = module.run_command([ip, "-j", "-4", "addr", "show", "dev", interface])
    if rc == 0:
        try:
            entries = json.loads(out or "[]")
            return ["%s/%d" % (info["local"], info["prefixlen"])
                    for entry in entries for info in entry.get("addr_info", [])
                    if info.get("family", "inet") == "inet" and "local" in info]
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # an iproute2 without JSON output: read the text form below
    rc, out, err = module.run_command([ip, "-o", "-4", "addr", "show", "dev", interface])
    if rc != 0:
        raise LinkError(host, variable, "cannot read the addresses of %s: %s" % (interface, (err or out).strip()))
    return _INET.findall(out)
