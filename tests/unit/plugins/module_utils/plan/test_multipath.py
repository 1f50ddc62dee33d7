"""multipath: the plan of inventories/multipath, the refusals of state, and what the stateless rules admit."""

from __future__ import annotations

import copy
import ipaddress
import json
import shlex

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import (
    PlanError,
    build_plan,
)
from ansible_collections.fwcluster.netfilter.tests.unit.examples import set_in_cluster

CLUSTER = "cluster duo"
INSIDE, OUTSIDE = "eth1", "eth2"
CLIENT, SERVER = "10.30.1.10", "10.30.2.10"


def rules_of(plan, host, table_name="filter"):
    return [table for table in plan["nodes"][host]["ruleset"] if table["table"] == table_name][0]


# --------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------

def test_opposite_masters_no_sync_group_always_preempt(duo):
    plan = build_plan(*duo)
    assert plan["architecture"] == "multipath"
    assert plan["vrrp"]["preempt"] is True
    assert plan["vrrp"]["failover_bound"] == 4.0
    assert plan["replication"] is None
    fw1, fw2 = plan["nodes"]["mp-fw1"], plan["nodes"]["mp-fw2"]
    assert (fw1["role"], fw2["role"]) == ("outbound", "inbound")
    for node in (fw1, fw2):
        assert node["keepalived"]["sync_group"] is None
        assert node["conntrackd"] is None and node["replication"] is None
        assert [instance["name"] for instance in node["keepalived"]["instances"]] == ["duo_inside", "duo_outside"]
        assert all(instance["preempt"] and instance["state"] == "BACKUP"
                   for instance in node["keepalived"]["instances"])
    priorities = dict(((host, instance["segment"]), instance["priority"])
                      for host, node in plan["nodes"].items() for instance in node["keepalived"]["instances"])
    # Node id 0 masters the inside VIP, node id 1 the outside VIP.
    assert priorities[("mp-fw1", "inside")] > priorities[("mp-fw2", "inside")]
    assert priorities[("mp-fw2", "outside")] > priorities[("mp-fw1", "outside")]
    inside = fw1["keepalived"]["instances"][0]
    assert (inside["interface"], inside["vrid"], inside["vips"]) == ("eth1", 61, ["10.30.1.254/24"])
    json.dumps(plan)


def test_owner_follows_the_node_id_not_the_host_name(duo):
    cluster, nodes = duo
    nodes["mp-fw1"]["fwcluster_node_id"], nodes["mp-fw2"]["fwcluster_node_id"] = 1, 0
    plan = build_plan(cluster, nodes)
    assert plan["nodes"]["mp-fw2"]["role"] == "outbound"
    assert plan["nodes"]["mp-fw2"]["keepalived"]["instances"][0]["priority"] == 254


def test_unicast_peers_per_segment(duo):
    cluster, nodes = duo
    cluster["fwcluster_vrrp"] = {"advert_int": 0.5, "unicast": True}
    instances = build_plan(cluster, nodes)["nodes"]["mp-fw2"]["keepalived"]["instances"]
    assert [(i["unicast_src"], i["unicast_peers"]) for i in instances] == [
        ("10.30.1.2", ["10.30.1.1"]), ("10.30.2.2", ["10.30.2.1"])]


def test_preempt_true_is_accepted(duo):
    cluster, nodes = duo
    cluster["fwcluster_vrrp"] = {"preempt": True}
    assert build_plan(cluster, nodes)["vrrp"]["preempt"] is True


def test_forwarded_packets_are_not_tracked_and_the_forward_path_has_no_conntrack(duo):
    plan = build_plan(*duo)
    for host in plan["nodes"]:
        tables = [table["table"] for table in plan["nodes"][host]["ruleset"]]
        assert tables == ["raw", "filter", "nat"]
        assert rules_of(plan, host, "raw")["rules"] == [
            "-A PREROUTING -m addrtype ! --dst-type LOCAL -j CT --notrack"]
        assert rules_of(plan, host, "nat")["rules"] == []
        filter_table = rules_of(plan, host)
        assert filter_table["chains"]["FORWARD"] == "DROP"
        assert filter_table["user_chains"] == ["fwcluster-request", "fwcluster-reply"]
        forward = [rule for rule in filter_table["rules"] if not rule.startswith("-A INPUT")]
        assert forward[:2] == ["-A FORWARD -j fwcluster-request", "-A FORWARD -j fwcluster-reply"]
        assert not [rule for rule in forward if "conntrack" in rule or "state" in rule]
        # Traffic to the node itself is symmetric: INPUT stays stateful.
        assert "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" in filter_table["rules"]


def test_rules_of_the_example(duo):
    rules = rules_of(build_plan(*duo), "mp-fw1")["rules"]
    web = '-m comment --comment "inside clients to the web service'
    assert ("-A fwcluster-request -i eth1 -o eth2 -p tcp -m multiport --dports 8080,8443 %s\" -j ACCEPT" % web) in rules
    assert ("-A fwcluster-reply -i eth2 -o eth1 -p tcp ! --syn -m multiport --sports 8080,8443 %s (reply)\" -j ACCEPT"
            % web) in rules
    assert any(rule.startswith("-A fwcluster-request -i eth1 -o eth2 -p icmp --icmp-type echo-request ")
               for rule in rules)
    assert any(rule.startswith("-A fwcluster-reply -i eth2 -o eth1 -p icmp --icmp-type echo-reply ") for rule in rules)
    assert any(rule.startswith("-A fwcluster-request -i eth1 -o eth2 -p udp --dport 123 ") for rule in rules)
    assert any(rule.startswith("-A fwcluster-reply -i eth2 -o eth1 -p udp --sport 123 ") for rule in rules)


# --------------------------------------------------------------------------
# What the rules admit: a small evaluator of the forward path (the rule
# grammar ruleset.stateless_rule writes), packet by packet.
# --------------------------------------------------------------------------

def _parse(rule):
    words = shlex.split(rule)
    assert words[0] == "-A"
    parsed = {"chain": words[1]}
    index, negate = 2, False
    while index < len(words):
        word = words[index]
        if word == "!":
            negate = True
            index += 1
            continue
        if word == "-m":
            index += 2
            continue
        if word == "--syn":
            parsed["not_syn" if negate else "syn"] = True
            index, negate = index + 1, False
            continue
        value = words[index + 1]
        assert not negate, rule
        key = {"-i": "in", "-o": "out", "-s": "src", "-d": "dst", "-p": "proto", "--dport": "dports",
               "--dports": "dports", "--sport": "sports", "--sports": "sports", "--icmp-type": "icmp_type",
               "--comment": "comment", "-j": "jump"}[word]
        if key in ("dports", "sports"):
            value = [tuple(int(x) for x in part.split(":")) for part in value.split(",")]
        parsed[key] = value
        index += 2
        if word == "-j" and index < len(words):  # REJECT --reject-with ...
            parsed["jump_args"] = words[index:]
            break
    return parsed


def _port_in(port, specs):
    return any(spec[0] <= port <= spec[-1] for spec in specs)


def _matches(rule, packet):
    for key, field in (("in", "in"), ("out", "out")):
        if key in rule and rule[key] != packet[field]:
            return False
    for key in ("src", "dst"):
        if key in rule and ipaddress.ip_address(packet[key]) not in ipaddress.ip_network(rule[key]):
            return False
    if "proto" in rule and rule["proto"] != packet["proto"]:
        return False
    if "dports" in rule and not _port_in(packet["dport"], rule["dports"]):
        return False
    if "sports" in rule and not _port_in(packet["sport"], rule["sports"]):
        return False
    if rule.get("not_syn") and packet.get("flags") == "SYN":
        return False
    if "icmp_type" in rule and rule["icmp_type"] != packet.get("icmp_type"):
        return False
    return True


def verdict(plan, host, packet):
    """ACCEPT, DROP or REJECT for a forwarded packet on host."""
    chains = {}
    for rule in rules_of(plan, host)["rules"]:
        if rule.startswith("-A INPUT "):
            continue  # the node's own traffic, not the forward path
        parsed = _parse(rule)
        chains.setdefault(parsed["chain"], []).append(parsed)

    def walk(chain):
        for rule in chains.get(chain, []):
            if not _matches(rule, packet):
                continue
            if rule["jump"] == "RETURN":
                return None
            if rule["jump"] in chains:
                result = walk(rule["jump"])
                if result is not None:
                    return result
                continue
            return rule["jump"]
        return None

    return walk("FORWARD") or "DROP"


def tcp(src, sport, dst, dport, flags="ACK", outbound=True):
    return {"in": INSIDE if outbound else OUTSIDE, "out": OUTSIDE if outbound else INSIDE, "src": src, "dst": dst,
            "proto": "tcp", "sport": sport, "dport": dport, "flags": flags}


def udp(src, sport, dst, dport, outbound=True):
    return dict(tcp(src, sport, dst, dport, outbound=outbound), proto="udp", flags=None)


def icmp(src, dst, icmp_type, outbound=True):
    return {"in": INSIDE if outbound else OUTSIDE, "out": OUTSIDE if outbound else INSIDE, "src": src, "dst": dst,
            "proto": "icmp", "icmp_type": icmp_type}


@pytest.mark.parametrize("label, packet, expected", [
    ("client SYN to the web service", tcp(CLIENT, 40000, SERVER, 8080, "SYN"), "ACCEPT"),
    ("client data to the web service", tcp(CLIENT, 40000, SERVER, 8443, "ACK"), "ACCEPT"),
    ("server SYN-ACK back", tcp(SERVER, 8080, CLIENT, 40000, "SYN,ACK", outbound=False), "ACCEPT"),
    ("server data back", tcp(SERVER, 8443, CLIENT, 40000, "ACK", outbound=False), "ACCEPT"),
    ("client to a port the policy does not name", tcp(CLIENT, 40000, SERVER, 9090, "SYN"), "DROP"),
    ("server opens a connection inside", tcp(SERVER, 40000, CLIENT, 8080, "SYN", outbound=False), "DROP"),
    ("server SYN from the allowed port (dressed as a reply)",
     tcp(SERVER, 8080, CLIENT, 9191, "SYN", outbound=False), "DROP"),
    ("server non-SYN from another port", tcp(SERVER, 9090, CLIENT, 40000, "ACK", outbound=False), "DROP"),
    ("the reply rule is not valid the other way", tcp(CLIENT, 8080, SERVER, 40000, "ACK", outbound=True), "DROP"),
    ("client ping", icmp(CLIENT, SERVER, "echo-request"), "ACCEPT"),
    ("server echo-reply", icmp(SERVER, CLIENT, "echo-reply", outbound=False), "ACCEPT"),
    ("server ping inside", icmp(SERVER, CLIENT, "echo-request", outbound=False), "DROP"),
    ("client sends an echo-reply out", icmp(CLIENT, SERVER, "echo-reply"), "DROP"),
    ("client udp to the time service", udp(CLIENT, 40000, SERVER, 123), "ACCEPT"),
    ("udp reply from the time service", udp(SERVER, 123, CLIENT, 40000, outbound=False), "ACCEPT"),
    ("udp from outside to another port", udp(SERVER, 5353, CLIENT, 123, outbound=False), "DROP"),
])
def test_both_directions_of_what_the_policy_allows_and_nothing_more(duo, label, packet, expected):
    plan = build_plan(*duo)
    for host in plan["nodes"]:  # both nodes hold the whole policy: either can carry either path
        assert verdict(plan, host, packet) == expected, "%s on %s" % (label, host)


@pytest.fixture
def ordered(duo):
    """A policy where order matters: a drop and a reject before broader accepts."""
    cluster, nodes = duo
    cluster["fwcluster_policy"] = [
        {"name": "nothing from the server inward", "from": "outside", "to": "inside", "proto": "tcp",
         "source": SERVER, "action": "drop"},
        {"name": "no web for the lab host", "from": "inside", "to": "outside", "proto": "tcp", "ports": [8080],
         "source": "10.30.1.66", "action": "drop"},
        {"name": "no smtp", "from": "inside", "to": "outside", "proto": "tcp", "ports": [25], "action": "reject"},
        {"name": "web", "from": "inside", "to": "outside", "proto": "tcp", "ports": [8080], "action": "accept"},
        {"name": "anything tcp out", "from": "inside", "to": "any", "proto": "tcp", "action": "accept"},
        {"name": "ssh to the nodes", "from": "inside", "to": "firewall", "proto": "tcp", "ports": [2222],
         "action": "accept"},
    ]
    return build_plan(cluster, nodes)


@pytest.mark.parametrize("label, packet, expected", [
    ("the dropped host", tcp("10.30.1.66", 40000, SERVER, 8080, "SYN"), "DROP"),
    ("replies to the dropped host", tcp(SERVER, 8080, "10.30.1.66", 40000, "ACK", outbound=False), "DROP"),
    ("another host", tcp(CLIENT, 40000, SERVER, 8080, "SYN"), "ACCEPT"),
    ("smtp is rejected", tcp(CLIENT, 40000, SERVER, 25, "SYN"), "REJECT"),
    ("any other tcp port goes out", tcp(CLIENT, 40000, SERVER, 4444, "SYN"), "ACCEPT"),
    ("and comes back without SYN", tcp(SERVER, 4444, CLIENT, 40000, "ACK", outbound=False), "ACCEPT"),
    ("but nothing opens inward", tcp(SERVER, 4444, CLIENT, 40000, "SYN", outbound=False), "DROP"),
    # A drop written for requests ends the request view only: the same packet
    # is still the reply of an accepted flow (the drop entry must RETURN, not DROP).
    ("a reply is not caught by a drop written for requests",
     tcp(SERVER, 8080, CLIENT, 40000, "ACK", outbound=False), "ACCEPT"),
])
def test_first_match_order_holds_in_both_views(ordered, label, packet, expected):
    assert verdict(ordered, "mp-fw2", packet) == expected, label


def test_refuse_chain_only_when_the_policy_rejects(ordered, duo_source):
    filter_table = rules_of(ordered, "mp-fw1")
    assert filter_table["user_chains"] == ["fwcluster-request", "fwcluster-reply", "fwcluster-refuse"]
    refuse = [rule for rule in filter_table["rules"] if rule.startswith("-A fwcluster-refuse")]
    assert [rule.split(" -j ")[1] for rule in refuse] == ["DROP", "DROP", "REJECT --reject-with tcp-reset"]
    # to: firewall stays in INPUT, stateful (local traffic is symmetric).
    assert any(rule.startswith("-A INPUT -i eth1 -p tcp --dport 2222 -m conntrack --ctstate NEW")
               for rule in filter_table["rules"])
    assert "fwcluster-refuse" not in rules_of(build_plan(*copy.deepcopy(duo_source)), "mp-fw1")["user_chains"]


# --------------------------------------------------------------------------
# Refusals: host, variable, and the rule broken with its reason
# --------------------------------------------------------------------------

def _policy(**entry):
    base = {"name": "x", "from": "inside", "to": "outside", "action": "accept"}
    base.update(entry)
    return set_in_cluster(("fwcluster_policy",), [base])


def _third_node(cluster, nodes):
    nodes["mp-fw3"] = {"fwcluster_node_id": 2,
                       "fwcluster_addresses": {"inside": "10.30.1.3/24", "outside": "10.30.2.3/24"}}


def _rename_outside(cluster, nodes):
    cluster["fwcluster_segments"]["wan"] = cluster["fwcluster_segments"].pop("outside")
    for host_vars in nodes.values():
        host_vars["fwcluster_addresses"]["wan"] = host_vars["fwcluster_addresses"].pop("outside")
    cluster["fwcluster_policy"] = []


def _one_segment(cluster, nodes):
    del cluster["fwcluster_segments"]["outside"]
    for host_vars in nodes.values():
        del host_vars["fwcluster_addresses"]["outside"]
    cluster["fwcluster_policy"] = []


def _third_segment(cluster, nodes):
    cluster["fwcluster_segments"]["dmz"] = {"interface": "eth3", "vip": "192.168.104.254/24", "vrid": 63}
    for index, host_vars in enumerate(nodes.values()):
        host_vars["fwcluster_addresses"]["dmz"] = "192.168.104.%d/24" % (index + 1)


REPLICATION = {"enabled": True, "interface": "eth3", "transport": "udp"}

REFUSALS = [
    # id, mutation, variable, fragments of the rule
    ("replication enabled", set_in_cluster(("fwcluster_replication",), REPLICATION),
     "fwcluster_replication", ["filters statelessly", "asynchronous", "race", "enabled: false"]),
    # Refused as a whole before the details (replication addresses) are asked for.
    ("replication without enabled key", set_in_cluster(("fwcluster_replication",), {"interface": "eth3"}),
     "fwcluster_replication", ["race"]),
    ("masquerade", set_in_cluster(("fwcluster_nat",), [{"type": "masquerade", "out": "outside"}]),
     "fwcluster_nat", ["refuses NAT", "replies cross the other node", "race"]),
    ("dnat", set_in_cluster(("fwcluster_nat",), [{"type": "dnat", "in": "outside", "port": 80, "to": "10.30.1.10"}]),
     "fwcluster_nat", ["refuses NAT"]),
    ("preempt off", set_in_cluster(("fwcluster_vrrp",), {"preempt": False}),
     "fwcluster_vrrp.preempt", ["needs preemption", "never splits again"]),
    ("accept proto all", _policy(proto="all"),
     "fwcluster_policy[0].proto", ["needs connection state", "race", "Name the protocol"]),
    ("accept without proto (all)", _policy(),
     "fwcluster_policy[0].proto", ["needs connection state"]),
    ("accept udp without ports", _policy(proto="udp"),
     "fwcluster_policy[0].ports", ["needs connection state", "List the ports"]),
    ("three nodes", _third_node, "fwcluster_name", ["exactly 2 nodes", "3 hosts"]),
    ("segments not named inside and outside", _rename_outside,
     "fwcluster_segments", ["named inside and outside", "got inside, wan"]),
    ("one segment", _one_segment, "fwcluster_segments", ["exactly two segments"]),
    ("three segments", _third_segment, "fwcluster_segments", ["exactly two segments"]),
]


@pytest.mark.parametrize("mutation, variable, fragments", [case[1:] for case in REFUSALS],
                         ids=[case[0] for case in REFUSALS])
def test_refusal(duo, mutation, variable, fragments):
    cluster, nodes = duo
    mutation(cluster, nodes)
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    error = caught.value
    assert (error.host, error.variable) == (CLUSTER, variable), str(error)
    for fragment in fragments:
        assert fragment in error.rule, str(error)


def test_multipath_has_no_replication_link(duo):
    plan = build_plan(*duo)
    assert plan["replication"] is None
    assert [node["replication"] for node in plan["nodes"].values()] == [None, None]
    cluster, nodes = duo
    cluster["fwcluster_replication"] = dict(REPLICATION)
    with pytest.raises(PlanError) as caught:
        build_plan(cluster, nodes)
    assert caught.value.variable == "fwcluster_replication"


@pytest.mark.parametrize("label, mutation", [
    ("replication off", set_in_cluster(("fwcluster_replication",), {"enabled": False})),
    ("empty nat", set_in_cluster(("fwcluster_nat",), [])),
    ("drop proto all", _policy(proto="all", action="drop")),
    ("reject udp without ports", _policy(proto="udp", action="reject")),
    ("accept tcp without ports", _policy(proto="tcp")),
    ("accept icmp", _policy(proto="icmp")),
    ("proto all to the node itself", _policy(proto="all", to="firewall")),
])
def test_accepted_without_state(duo, label, mutation):
    cluster, nodes = duo
    mutation(cluster, nodes)
    build_plan(cluster, nodes)


@pytest.mark.parametrize("value", ["yes", 1, None, [], {"x": 1}])
def test_wrong_types_still_get_the_shared_messages(duo, value):
    """The multipath checks leave malformed values to the shared readers: a PlanError, never a traceback."""
    cluster, nodes = duo
    for key in ("fwcluster_replication", "fwcluster_nat", "fwcluster_vrrp"):
        mutated = dict(cluster, **{key: value})
        try:
            build_plan(mutated, nodes)
        except PlanError as error:
            assert error.variable.startswith(key), str(error)


# --------------------------------------------------------------------------
# Whatever is done to the multipath example: a plan or a PlanError.
# --------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2, max_value=70000), st.text(max_size=8),
    st.sampled_from(["inside", "outside", "any", "firewall", "all", "tcp", "udp", "icmp", "accept", "drop", "reject",
                     "masquerade", "10.30.1.3/24", "eth3", "primary_backup", "multipath"]),
    st.lists(st.sampled_from([123, "8000:8100", {"type": "snat", "out": "outside", "to": "10.30.2.254"}]),
             max_size=2),
    st.dictionaries(st.sampled_from(["enabled", "preempt", "interface", "proto", "ports", "action"]),
                    st.sampled_from([True, False, None, "udp", [80]]), max_size=2),
)


def _all_paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _all_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _all_paths(item, prefix + (index,))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_multipath_example_gives_plan_or_plan_error(duo_source, data):
    cluster, nodes = copy.deepcopy(duo_source)
    document = {"cluster": cluster, "nodes": nodes}
    for _step in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(list(_all_paths(document))[1:]))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["delete", "replace", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = copy.deepcopy(data.draw(_JUNK))  # sampled values are shared objects
        elif isinstance(parent, dict):
            parent["fwcluster_%s" % data.draw(st.sampled_from(["replication", "nat", "vrrp"]))] = copy.deepcopy(
                data.draw(_JUNK))
        if not document.get("cluster") or not isinstance(document.get("nodes"), dict):
            break
    try:
        plan = build_plan(document.get("cluster"), document.get("nodes"))
    except PlanError as error:
        assert str(error).count(": ") >= 2
        return
    json.dumps(plan)
    if plan["architecture"] == "multipath":
        # Whatever got through is stateless in the forward path and replicates nothing.
        assert plan["replication"] is None and plan["vrrp"]["preempt"] is True
        for node in plan["nodes"].values():
            forward = [rule for table in node["ruleset"] if table["table"] == "filter"
                       for rule in table["rules"] if not rule.startswith("-A INPUT")]
            assert not [rule for rule in forward if "conntrack" in rule]
            assert [table["rules"] for table in node["ruleset"] if table["table"] == "nat"] == [[]]
