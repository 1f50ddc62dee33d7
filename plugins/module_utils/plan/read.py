# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading inventory values: each reader returns a clean value or raises PlanError.

The architectures and the shared reader call these as ``read.integer(...)``,
``read.ipv4_network(...)``: host and variable travel with the value, so that
every refusal names where the value came from.
"""

from __future__ import annotations

import ipaddress
import math
import re

try:
    from collections.abc import Mapping
except ImportError:  # pragma: no cover - Python 2 is not supported, this keeps sanity's import test quiet
    Mapping = dict

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.errors import PlanError

MULTIPORT_SLOTS = 15  # the multiport match takes 15 ports, a range counts twice

# Patterns of names and values that reach rendered files. Always applied with fullmatch:
# "$" also matches before a final newline, so "inside\n" would pass a "^...$" match.
CLUSTER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
SEGMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
INTERFACE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")  # IFNAMSIZ: 15 characters
PORT_RANGE = re.compile(r"\s*([0-9]{1,5})\s*:\s*([0-9]{1,5})\s*")
PORT_NUMBER = re.compile(r"[0-9]{1,5}")
# Inventory host names reach keepalived.conf (router_id), systemd units (Description=) and
# the comments of the shell hooks that keepalived runs as root on every transition. There a
# newline starts a new line of configuration or of shell, a space splits a keepalived token,
# "#" and "!" start a keepalived comment, "%" is a systemd specifier. DNS names (at most 253
# characters), IPv4 addresses and the usual aliases are made of these characters.
_HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}")
_HOST_NAME_CHARACTER = re.compile(r"[A-Za-z0-9_.:-]")
_CHARACTER_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", " ": "a space"}


def describe(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "the boolean %s" % ("true" if value else "false")
    if isinstance(value, int):
        return "the integer %d" % value
    if isinstance(value, float):
        return "the number %s" % value
    if isinstance(value, str):
        text = str(value)
        return "the string %r" % (text if len(text) <= 60 else text[:57] + "...")
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a value of type %s" % type(value).__name__


def is_integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def mapping(value, host, variable):
    if not isinstance(value, Mapping):
        raise PlanError(host, variable, "must be a mapping, got %s" % describe(value))
    return value


def known_keys(raw, allowed, host, variable):
    for key in raw:
        if key not in allowed:
            raise PlanError(host, "%s.%s" % (variable, key),
                            "unknown key; known keys: %s" % ", ".join(allowed))


def sequence(value, host, variable):
    if not isinstance(value, (list, tuple)):
        raise PlanError(host, variable, "must be a list, got %s" % describe(value))
    return list(value)


def string(value, host, variable):
    if not isinstance(value, str) or not value.strip():
        raise PlanError(host, variable, "must be a non-empty string, got %s" % describe(value))
    return str(value).strip()


def choice(value, choices, host, variable):
    if not isinstance(value, str) or value not in choices:
        raise PlanError(host, variable, "must be one of %s, got %s" % (", ".join(choices), describe(value)))
    return str(value)


def integer(value, low, high, host, variable):
    if not is_integer(value):
        raise PlanError(host, variable, "must be an integer in %d..%d, got %s" % (low, high, describe(value)))
    if not low <= value <= high:
        raise PlanError(host, variable, "must be in %d..%d, got %d" % (low, high, value))
    return int(value)


def boolean(value, host, variable):
    if not isinstance(value, bool):
        raise PlanError(host, variable, "must be true or false, got %s" % describe(value))
    return bool(value)


def number(value, low, high, host, variable):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PlanError(host, variable, "must be a number in %s..%s, got %s" % (low, high, describe(value)))
    if isinstance(value, float) and not math.isfinite(value):
        # YAML's .nan and .inf are floats: a NaN fails every comparison, so it gets its own reason.
        raise PlanError(host, variable, "must be a finite number in %s..%s, got %s" % (low, high, value))
    if not low <= value <= high:
        raise PlanError(host, variable, "must be in %s..%s, got %s" % (low, high, value))
    return float(value)


def host_name(host):
    """An inventory host name that is safe in every file it reaches (see _HOST_NAME)."""
    host = str(host)
    if _HOST_NAME.fullmatch(host):
        return host
    # The name itself cannot be printed as it is: it may hold a newline.
    if len(host) > 253:
        problem = "is %d characters long" % len(host)
    elif not _HOST_NAME_CHARACTER.fullmatch(host[0]) or host[0] in ".:-":
        problem = "starts with %s" % _character(host[0])
    else:
        problem = "holds %s" % _character([char for char in host if not _HOST_NAME_CHARACTER.fullmatch(char)][0])
    raise PlanError(repr(host), "inventory_hostname",
                    "%s; a host name is written into keepalived.conf, systemd units and the shell hooks keepalived "
                    "runs as root: use at most 253 letters, digits, '.', '_', '-' or ':', starting with a letter, "
                    "digit or '_'" % problem)


def _character(char):
    return _CHARACTER_NAMES.get(char, repr(char))


def interface_name(value, host, variable):
    name = string(value, host, variable)
    if not INTERFACE_NAME.fullmatch(name) or name in (".", ".."):
        raise PlanError(host, variable,
                        "%r is not a valid interface name (at most 15 characters: letters, digits, _ . -)" % name)
    return name


def _parse_ipv4(text, host, variable, parse, what):
    """Parse text with an ipaddress constructor; refuse what is not IPv4."""
    try:
        value = parse(text)
    except ValueError:
        raise PlanError(host, variable, "%r is not an IPv4 %s" % (text, what))
    if value.version != 4:
        raise PlanError(host, variable, "%r is IPv6; this version handles IPv4 only" % text)
    return value


def ipv4_interface(value, host, variable):
    """An address with its prefix, e.g. 10.10.1.1/24."""
    text = string(value, host, variable)
    if "/" not in text:
        raise PlanError(host, variable, "%r needs a prefix length, e.g. 10.10.1.1/24" % text)
    return _parse_ipv4(text, host, variable, ipaddress.ip_interface, "address with prefix")


def ipv4_address(value, host, variable):
    return _parse_ipv4(string(value, host, variable), host, variable, ipaddress.ip_address, "address")


def ipv4_network(value, host, variable):
    """A network (10.10.1.0/24) or a single address (taken as /32)."""
    text = string(value, host, variable)
    network = _parse_ipv4(text, host, variable, lambda item: ipaddress.ip_network(item, strict=False), "network")
    if "/" in text and ipaddress.ip_interface(text).ip != network.network_address:
        raise PlanError(host, variable, "%r has host bits set; did you mean %s?" % (text, network.with_prefixlen))
    return network


def interfaces_by_family(value, host, variable, example):
    """An address with prefix, or a list of one per family: {4: IPv4Interface, 6: IPv6Interface}.

    Either family may be missing; a second address of one family is refused.
    Link-local, multicast, loopback and unspecified addresses are refused: a
    segment's and a node's addresses are the ones its neighbours route to
    (the cluster adds the link-local virtual address VRRP for IPv6 needs).
    """
    if not isinstance(value, (str, list, tuple)):
        raise PlanError(host, variable, "must be an address with prefix, or a list of one per family, e.g. %s; got %s"
                        % (example, describe(value)))
    items = [value] if isinstance(value, str) else list(value)
    if not items or len(items) > 2:
        raise PlanError(host, variable, "must be an address with prefix, or a list of one per family, e.g. %s"
                        % example)
    found = {}
    for index, item in enumerate(items):
        where = variable if isinstance(value, str) else "%s[%d]" % (variable, index)
        text = string(item, host, where)
        if "/" not in text:
            raise PlanError(host, where, "%r needs a prefix length, e.g. %s" % (text, example))
        try:
            address = ipaddress.ip_interface(text)
        except ValueError:
            raise PlanError(host, where, "%r is not an address with prefix" % text)
        if address.version in found:
            raise PlanError(host, where, "%s is a second IPv%d address; give one address per family"
                            % (address.with_prefixlen, address.version))
        ip = address.ip
        if ip.is_link_local or ip.is_multicast or ip.is_loopback or ip.is_unspecified:
            kind = ("link-local" if ip.is_link_local else "multicast" if ip.is_multicast
                    else "loopback" if ip.is_loopback else "unspecified")
            raise PlanError(host, where, "%s is a %s address; neighbours route to a global or unique local one%s"
                            % (ip, kind, " (VRRP's link-local virtual address is added by the cluster itself)"
                               if address.version == 6 and kind == "link-local" else ""))
        found[address.version] = address
    return found


def ip_network(value, host, variable):
    """A network of either family (10.10.1.0/24, 2001:db8:1::/64) or a single address (/32, /128)."""
    text = string(value, host, variable)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise PlanError(host, variable, "%r is not a network or an address" % text)
    if "/" in text and ipaddress.ip_interface(text).ip != network.network_address:
        raise PlanError(host, variable, "%r has host bits set; did you mean %s?" % (text, network.with_prefixlen))
    return network


def addresses_on(value, vips, host, variable, example, place, holder):
    """A host's own addresses on a network with vips ({version: VIP}): one per VIP family, each in its VIP's subnet.

    place names the network ("segment inside", "the front network"), holder
    the host ("node", "balancer"); what is refused names both. Returns
    {4: IPv4Interface, 6: IPv6Interface} (6 where the network carries IPv6).
    """
    addresses = interfaces_by_family(value, host, variable, example)
    if sorted(addresses) != sorted(vips):
        raise PlanError(host, variable, "%s has VIPs %s: this %s needs one address of each of their families, got %s"
                        % (place, ", ".join(vip.with_prefixlen for vip in vips.values()), holder,
                           ", ".join(address.with_prefixlen for address in addresses.values())))
    for version, address in sorted(addresses.items()):
        vip = vips[version]
        if address.ip not in vip.network:
            raise PlanError(host, variable, "%s is outside %s's subnet %s (VIP %s)"
                            % (address.ip, place, vip.network, vip.with_prefixlen))
        if address.network.prefixlen != vip.network.prefixlen:
            raise PlanError(host, variable, "%s must have the VIP's prefix /%d"
                            % (address.with_prefixlen, vip.network.prefixlen))
        if address.ip == vip.ip:
            raise PlanError(host, variable, "%s is the VIP of %s; a %s needs an address of its own"
                            % (address.ip, place, holder))
        refuse_network_or_broadcast(address, host, variable)
    return addresses


def refuse_network_or_broadcast(address, host, variable):
    """Refuse an address (with prefix) that is_network_or_broadcast, naming what it is."""
    if is_network_or_broadcast(address):
        raise PlanError(host, variable, "%s is the %s of %s" % (
            address.ip, "network or broadcast address" if address.version == 4 else "Subnet-Router anycast address",
            address.network))


def is_network_or_broadcast(address):
    """IPv4: the network or broadcast address of a /30 or wider; IPv6: the Subnet-Router anycast address."""
    network = address.network
    if address.version == 6:
        return network.prefixlen <= 126 and address.ip == network.network_address
    return network.prefixlen <= 30 and address.ip in (network.network_address, network.broadcast_address)


def ports(value, host, variable, allow_empty=False):
    """Destination ports: integers and 'low:high' ranges, at most one multiport match."""
    items = sequence(value, host, variable)
    if not items and not allow_empty:
        raise PlanError(host, variable, "must list at least one port")
    found = []
    slots = 0
    for index, item in enumerate(items):
        where = "%s[%d]" % (variable, index)
        if is_integer(item):
            found.append(integer(item, 1, 65535, host, where))
            slots += 1
            continue
        match = PORT_RANGE.fullmatch(item) if isinstance(item, str) else None
        if not match:
            raise PlanError(host, where, "must be a port (1..65535) or a range 'low:high', got %s" % describe(item))
        low, high = int(match.group(1)), int(match.group(2))
        if not 1 <= low < high <= 65535:
            raise PlanError(host, where, "range %r must satisfy 1 <= low < high <= 65535" % str(item))
        found.append((low, high))
        slots += 2
    if slots > MULTIPORT_SLOTS:
        raise PlanError(host, variable, "at most %d ports per entry (a range counts twice): split the entry"
                        % MULTIPORT_SLOTS)
    return found


def optional(raw, key, default=None):
    """A key that may be absent or null (an empty YAML value)."""
    value = raw.get(key)
    return default if value is None else value
