"""cluster_health.assess: which live states make a cluster inconsistent."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.fwcluster.netfilter.plugins.module_utils.cluster_health import assess, fleet
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan


CHECK = "/etc/keepalived/fwcluster-check-conntrackd.sh"
UPSTREAM_CHECK = "/etc/keepalived/fwcluster-check-upstream.sh"


def status(states, vips=(), node_ids=None, errors=0, conntrackd=True, link_up=True, keepalived=True, lost=0,
           heard=None, tracked=True):
    """A node_status_info result: states is {instance: state}, heard {peer address: packets} or None;
    tracked: every instance tracks the example's checks (conntrackd, upstream)."""
    return {
        "replication_heard": heard,
        "changed": False,
        "keepalived": {"running": keepalived,
                       "instances": [{"name": name, "state": state, "track_scripts": [CHECK, UPSTREAM_CHECK] if tracked else []}
                                     for name, state in sorted(states.items())]},
        "addresses": {},
        "vips_held": list(vips),
        "cluster": None if node_ids is None else {"total_nodes": 3, "nodemask": "", "node_ids": list(node_ids)},
        "conntrackd": ({"running": True, "internal": 2, "external": 1, "error_total": errors,
                        "errors": {"send": errors, "lost": lost}} if conntrackd
                       else {"running": False, "error": "can't connect"}),
        "replication_link": {"interface": "eth3", "operstate": "up" if link_up else "down", "up": link_up},
    }


PRIMARY = {"edge_inside": "MASTER", "edge_outside": "MASTER"}
BACKUP = {"edge_inside": "BACKUP", "edge_outside": "BACKUP"}
VIPS = ("10.10.1.254", "203.0.113.254")


@pytest.fixture
def plan(example):
    return build_plan(*example)


@pytest.fixture
def plan_without_tracking(example):
    example[0]["fwcluster_tracking"] = {"conntrackd": False}   # example is a fresh copy
    return build_plan(*example)


def healthy_samples():
    sample = {"pb-fw1": status(PRIMARY, VIPS), "pb-fw2": status(BACKUP)}
    return sample, copy.deepcopy(sample)


def heard_samples():
    """Healthy samples where each node counted its peer's packets: 10, then 13 (a ping a second)."""
    first = {"pb-fw1": status(PRIMARY, VIPS, heard={"192.168.100.2": 10}),
             "pb-fw2": status(BACKUP, heard={"192.168.100.1": 10})}
    second = copy.deepcopy(first)
    for host, peer in (("pb-fw1", "192.168.100.2"), ("pb-fw2", "192.168.100.1")):
        second[host]["replication_heard"][peer] = 13
    return first, second


def test_every_peer_heard(plan):
    report = assess(plan, *heard_samples())
    assert report["healthy"], report["problems"]
    header, fw1, fw2 = report["table"]
    assert header.endswith("peers heard  live rules  config files")
    assert [(row["heard"], row["rules"], row["configs"]) for row in report["rows"]] == [("1/1", "-", "-")] * 2
    assert report["rules_digest"] is None


def test_a_peer_heard_nothing_from_is_a_problem(plan):
    # the link stays up but carries nothing: no error counter moves, only the peer's packets stop
    first, second = heard_samples()
    second["pb-fw2"]["replication_heard"]["192.168.100.1"] = 10
    report = assess(plan, first, second)
    assert report["problems"] == ["pb-fw2: heard nothing from pb-fw1 on the replication link between the samples"]
    assert report["rows"][1]["heard"] == "0/1"


def test_a_dead_peer_is_down_not_also_silent(plan):
    first, second = heard_samples()
    second["pb-fw1"] = {"unreachable": True, "msg": "Failed to connect"}
    second["pb-fw2"] = status(PRIMARY, VIPS, heard={"192.168.100.1": 10})
    report = assess(plan, first, second)
    assert report["healthy"], report["problems"]


def test_a_node_without_the_counting_rule(plan):
    first, second = heard_samples()
    second["pb-fw1"]["replication_heard"] = {}
    assert assess(plan, first, second)["problems"] == [
        "pb-fw1: no rule counts what arrives from pb-fw2 on the replication link (the node's rules are not the plan's)"]


def test_heard_is_not_judged_without_both_samples(plan):
    # an older node_status_info, or a first sample that failed: nothing to compare
    first, second = heard_samples()
    first["pb-fw2"]["replication_heard"] = None
    report = assess(plan, first, second)
    assert report["healthy"], report["problems"]
    assert report["rows"][1]["heard"] == "-"


def test_a_healthy_cluster(plan):
    report = assess(plan, *healthy_samples())
    assert report["healthy"], report["problems"]
    assert report["problems"] == [] and report["warnings"] == []
    assert report["table"][0].split()[:2] == ["node", "id"]
    assert "edge_inside=MASTER" in report["table"][1] and "10.10.1.254" in report["table"][1]
    assert "edge_inside=BACKUP" in report["table"][2]


def test_a_dead_primary_taken_over_is_consistent(plan):
    first, second = healthy_samples()
    second["pb-fw1"] = {"unreachable": True, "msg": "Failed to connect"}
    second["pb-fw2"] = status(PRIMARY, VIPS)
    report = assess(plan, first, second)
    assert report["healthy"], report["problems"]
    assert report["warnings"] == ["pb-fw1: unreachable; counted as down"]
    assert "unreachable" in report["table"][1]


def test_split_brain(plan):
    first, second = healthy_samples()
    second["pb-fw2"] = status(PRIMARY, VIPS)
    assert assess(plan, first, second)["problems"] == [
        "VRRP instance edge_inside has 2 masters: pb-fw1, pb-fw2 (split brain)",
        "VRRP instance edge_outside has 2 masters: pb-fw1, pb-fw2 (split brain)",
    ]


def test_no_master(plan):
    first, second = healthy_samples()
    second["pb-fw1"] = status(BACKUP)
    problems = assess(plan, first, second)["problems"]
    assert "VRRP instance edge_inside has no master" in problems
    assert "VRRP instance edge_outside has no master" in problems


def test_a_vip_left_on_the_backup(plan):
    first, second = healthy_samples()
    second["pb-fw2"] = status(BACKUP, vips=["10.10.1.254"])
    problems = assess(plan, first, second)["problems"]
    assert problems == ["address 10.10.1.254 of instance edge_inside is held by pb-fw2, which is not its master"]


def test_a_vip_held_by_nobody(plan):
    first, second = healthy_samples()
    second["pb-fw1"] = status(PRIMARY, vips=["10.10.1.254"])
    assert assess(plan, first, second)["problems"] == ["address 203.0.113.254 of instance edge_outside is held by "
                                                       "no node"]


def test_growing_replication_errors(plan):
    first, second = healthy_samples()
    second["pb-fw2"] = status(BACKUP, errors=3)
    assert assess(plan, first, second)["problems"] == ["pb-fw2: conntrackd replication errors grew from 0 to 3 "
                                                       "while sampling"]


def test_steady_replication_errors_are_history_not_a_problem(plan):
    first, second = healthy_samples()
    first["pb-fw2"] = status(BACKUP, errors=3)
    second["pb-fw2"] = status(BACKUP, errors=3)
    assert assess(plan, first, second)["healthy"]


@pytest.mark.parametrize("change, problem", [
    (dict(conntrackd=False), "pb-fw2: conntrackd does not answer (can't connect)"),
    (dict(link_up=False), "pb-fw2: replication link eth3 is down (operstate down)"),
    (dict(keepalived=False), "pb-fw2: keepalived is not running"),
])
def test_unhealthy_daemons(plan, change, problem):
    first, second = healthy_samples()
    second["pb-fw2"] = status(BACKUP, **change)
    assert problem in assess(plan, first, second)["problems"]


def test_an_instance_missing_from_a_node(plan):
    first, second = healthy_samples()
    second["pb-fw2"] = status({"edge_inside": "BACKUP"})
    assert assess(plan, first, second)["problems"] == ["pb-fw2: keepalived runs no VRRP instance edge_outside (its "
                                                       "configuration is not the plan's)"]


def test_nobody_answers(plan):
    report = assess(plan, {}, {})
    assert report["problems"] == ["no node of cluster edge answered"]
    assert len(report["warnings"]) == 2


def hash_plan():
    """The keys assess reads of a three-node hash plan: one VRRP instance per node id, no VIPs in them."""
    nodes = {}
    for node_id in range(3):
        nodes["fw%d" % node_id] = {
            "node_id": node_id,
            "replication": {"interface": "eth3", "peers": ["192.168.101.%d" % (k + 1) for k in range(3)
                                                           if k != node_id]},
            "keepalived": {"instances": [{"name": "mesh_id%d" % k, "vips": []} for k in range(3)]},
        }
    return {"name": "mesh", "architecture": "hash", "nodes": nodes, "capabilities": {"owned_ids": True},
            "segments": {"inside": {"vip_address": "10.20.1.254"}, "outside": {"vip_address": "198.51.100.254"}}}


def hash_status(node_id, owned):
    states = dict(("mesh_id%d" % k, "MASTER" if k in owned else "BACKUP") for k in range(3))
    return status(states, vips=("10.20.1.254", "198.51.100.254"), node_ids=owned)


def test_hash_ownership():
    plan = hash_plan()
    sample = dict(("fw%d" % k, hash_status(k, [k])) for k in range(3))
    assert assess(plan, sample, sample)["healthy"]
    taken_over = {"fw0": hash_status(0, [0, 1]), "fw1": {"unreachable": True}, "fw2": hash_status(2, [2])}
    assert assess(plan, sample, taken_over)["healthy"]
    orphan = {"fw0": hash_status(0, [0]), "fw1": {"unreachable": True}, "fw2": hash_status(2, [2])}
    problems = assess(plan, sample, orphan)["problems"]
    assert "node id 1 is owned by no node: its flows are dropped" in problems
    twice = dict(sample, fw2=hash_status(2, [1, 2]))
    assert "node id 1 is owned by 2 nodes: fw1, fw2 (its flows are forwarded twice)" in \
        assess(plan, sample, twice)["problems"]


def test_a_dual_stack_hash_node_owns_the_same_ids_in_both_families():
    plan = hash_plan()
    sample = dict(("fw%d" % k, hash_status(k, [k])) for k in range(3))
    for node_id, host in enumerate(sorted(sample)):
        sample[host]["cluster"]["node_ids_ipv6"] = [node_id]
    assert assess(plan, sample, sample)["healthy"]
    drifted = copy.deepcopy(sample)
    drifted["fw1"]["cluster"]["node_ids_ipv6"] = []
    drifted["fw2"]["cluster"]["node_ids_ipv6"] = [1, 2]
    assert assess(plan, sample, drifted)["problems"] == [
        "fw1: owns node ids 1 for IPv4 but none for IPv6", "fw2: owns node ids 2 for IPv4 but 1,2 for IPv6"]


def test_hash_nodes_hold_every_vip():
    plan = hash_plan()
    sample = dict(("fw%d" % k, hash_status(k, [k])) for k in range(3))
    sample["fw1"]["vips_held"] = ["10.20.1.254"]
    assert assess(plan, sample, sample)["problems"] == ["fw1: does not hold 198.51.100.254, the VIP of segment "
                                                        "outside"]
    # a dual-stack segment's IPv6 VIP too
    plan["segments"]["inside"]["vip6_address"] = "2001:db8:20:1::fe"
    for host in ("fw0", "fw2"):
        sample[host]["vips_held"].append("2001:db8:20:1::fe")
    assert assess(plan, sample, sample)["problems"] == [
        "fw1: does not hold 2001:db8:20:1::fe, the VIP of segment inside",
        "fw1: does not hold 198.51.100.254, the VIP of segment outside"]


def sandwich_sample(plan):
    """A healthy sandwich: firewalls without keepalived, node 0 of each balancer pair master of all its VIPs."""
    sample = dict((host, status({}, keepalived=False)) for host in plan["nodes"])
    for host, balancer in plan["balancers"].items():
        instances = balancer["keepalived"]["instances"]
        master = balancer["node_id"] == 0
        sample[host] = status(dict((i["name"], "MASTER" if master else "BACKUP") for i in instances),
                              vips=[vip.split("/")[0] for i in instances for vip in i["vips"]] if master else [],
                              conntrackd=False)
    return sample


def test_sandwich_balancers_are_judged_and_firewalls_need_no_keepalived(sandwich):
    plan = build_plan(*sandwich)
    sample = sandwich_sample(plan)
    report = assess(plan, sample, sample)
    assert report["healthy"], report["problems"]
    assert len(report["rows"]) == len(plan["nodes"]) + len(plan["balancers"])
    # The inside pair loses its master: both balancers of the pair backup.
    inside = sorted(host for host, balancer in plan["balancers"].items() if balancer["side"] == "inside")
    all_backup = dict((name, "BACKUP") for name in _instances_of(plan, inside[0]))
    broken = dict(sample, **{inside[0]: status(all_backup, conntrackd=False)})
    problems = assess(plan, sample, broken)["problems"]
    assert any("has no master" in problem for problem in problems), problems


def test_the_vips_column_shows_both_families_without_the_link_local_addresses(sandwich_dual_stack):
    plan = build_plan(*sandwich_dual_stack)
    sample = sandwich_sample(plan)
    report = assess(plan, sample, sample)
    assert report["healthy"], report["problems"]
    rows = dict((row["host"], row) for row in report["rows"])
    # held: fe80::1:3d and fe80::1:47 too (the virtual routers' link-local addresses), not shown
    assert rows["sw-lbi1"]["vips"] == "10.40.1.254 10.40.2.254 2001:db8:40:1::fe 2001:db8:40:2::fe"
    assert rows["sw-lbi2"]["vips"] == "-"


def _instances_of(plan, host):
    return [instance["name"] for instance in plan["balancers"][host]["keepalived"]["instances"]]


def test_lost_messages_count_with_one_peer_only(plan):
    """Two nodes: a lost message is a replication problem."""
    first, second = healthy_samples()
    second["pb-fw2"] = status(BACKUP, lost=4)
    assert assess(plan, first, second)["problems"] == ["pb-fw2: conntrackd replication errors grew from 0 to 4 "
                                                       "while sampling"]


def test_lost_messages_are_not_judged_with_several_peers():
    """Three nodes on multicast: interleaved sequences look lost; send errors still count."""
    plan = hash_plan()
    first = dict(("fw%d" % k, hash_status(k, [k])) for k in range(3))
    second = dict(first, fw1=dict(hash_status(1, [1]), conntrackd=dict(first["fw1"]["conntrackd"],
                                                                       errors={"send": 0, "lost": 150})))
    assert assess(plan, first, second)["healthy"]
    second["fw1"]["conntrackd"]["errors"] = {"send": 2, "lost": 150}
    assert assess(plan, first, second)["problems"] == ["fw1: conntrackd replication errors grew from 0 to 2 while "
                                                       "sampling"]


def test_the_table_shows_link_errors_apart_from_the_caches_bookkeeping():
    plan = hash_plan()
    sample = dict(("fw%d" % k, hash_status(k, [k])) for k in range(3))
    sample["fw1"]["conntrackd"] = dict(sample["fw1"]["conntrackd"], errors={"send": 2, "lost": 150},
                                       cache_failures=37)
    rows = dict((row["host"], row) for row in assess(plan, sample, sample)["rows"])
    # several peers: the lost count is the senders' interleaving, not the link's errors
    assert (rows["fw1"]["link_errors"], rows["fw1"]["cache_failures"]) == ("2", "37")
    assert (rows["fw0"]["link_errors"], rows["fw0"]["cache_failures"]) == ("0", "-")


def test_with_one_peer_lost_messages_are_link_errors(plan):
    first, second = healthy_samples()
    second["pb-fw2"] = status(BACKUP, lost=4)
    rows = dict((row["host"], row) for row in assess(plan, first, second)["rows"])
    assert rows["pb-fw2"]["link_errors"] == "4" and rows["pb-fw1"]["link_errors"] == "0"


def rules(drift=False, digest="3f2a9c0d11be"):
    """A live_ruleset_info result; drift: the IPv4 rules differ by one hand-added rule."""
    ipv4 = {"file": "/etc/fwcluster/rules.v4", "drift": drift, "rendered_digest": digest,
            "live_digest": "81c4e07a52f9" if drift else digest,
            "differences": ["+filter: -A INPUT -s 192.0.2.7/32 -j ACCEPT"] if drift else []}
    ipv6 = {"file": "/etc/fwcluster/rules.v6", "drift": False, "rendered_digest": "aa", "live_digest": "aa",
            "differences": []}
    return {"changed": False, "drift": drift, "families": {"ipv4": ipv4, "ipv6": ipv6}}


def test_rules_as_rendered_show_their_digest_and_the_cluster_one(plan):
    report = assess(plan, *heard_samples(), rules={"pb-fw1": rules(), "pb-fw2": rules(digest="5b5b5b5b5b5b")})
    assert report["healthy"], report["problems"]
    assert [row["rules"] for row in report["rows"]] == ["as rendered 3f2a9c0d11be", "as rendered 5b5b5b5b5b5b"]
    assert report["table"][1].endswith("as rendered 3f2a9c0d11be  -")
    digest = report["rules_digest"]
    assert len(digest) == 12
    # the same rendered rules give the same cluster digest; another node's change gives another
    again = assess(plan, *heard_samples(), rules={"pb-fw1": rules(), "pb-fw2": rules(digest="5b5b5b5b5b5b")})
    changed = assess(plan, *heard_samples(), rules={"pb-fw1": rules(), "pb-fw2": rules(digest="6c6c6c6c6c6c")})
    assert again["rules_digest"] == digest != changed["rules_digest"]


def test_drift_is_a_problem_that_says_what_differs(plan):
    report = assess(plan, *heard_samples(), rules={"pb-fw1": rules(), "pb-fw2": rules(drift=True)})
    assert report["problems"] == ["pb-fw2: the live ipv4 rules are not the rendered ones (/etc/fwcluster/rules.v4): "
                                  "+filter: -A INPUT -s 192.0.2.7/32 -j ACCEPT"]
    assert report["rows"][1]["rules"] == "DRIFT"


def test_rules_that_could_not_be_compared_are_a_problem(plan):
    failed = {"failed": True, "msg": "unshare: unshare failed: Operation not permitted"}
    report = assess(plan, *heard_samples(), rules={"pb-fw1": rules(), "pb-fw2": failed})
    assert report["problems"] == ["pb-fw2: the live rules could not be compared with the rendered ones: "
                                  "unshare: unshare failed: Operation not permitted"]
    assert report["rows"][1]["rules"] == "-" and report["rules_digest"] is None


def test_a_node_that_is_down_is_not_also_a_rules_problem(plan):
    first, second = heard_samples()
    second["pb-fw1"] = {"unreachable": True, "msg": "Failed to connect"}
    report = assess(plan, first, second, rules={"pb-fw1": {"unreachable": True}, "pb-fw2": rules()})
    assert not [problem for problem in report["problems"] if "rules" in problem]


def test_the_table_shows_what_each_node_tracks(plan):
    report = assess(plan, *healthy_samples())
    assert report["healthy"], report["problems"]
    assert [row["tracking"] for row in report["rows"]] == ["conntrackd+upstream", "conntrackd+upstream"]
    assert "tracks" in report["table"][0].split()


def test_an_instance_in_fault_is_a_problem(plan):
    # the primary's conntrackd hung: FAULT, and the backup took the VIPs
    first, second = healthy_samples()
    second["pb-fw1"] = status({"edge_inside": "FAULT", "edge_outside": "FAULT"})
    second["pb-fw2"] = status(PRIMARY, VIPS)
    report = assess(plan, first, second)
    assert report["problems"] == [
        "pb-fw1: VRRP instances edge_inside, edge_outside in FAULT (a tracked link is down or a check fails: "
        "conntrackd or upstream)"]
    assert [row["tracking"] for row in report["rows"]] == ["conntrackd+upstream FAULT", "conntrackd+upstream"]


def test_a_fault_without_tracking_names_only_the_links(plan_without_tracking):
    first = {"pb-fw1": status(PRIMARY, VIPS, tracked=False), "pb-fw2": status(BACKUP, tracked=False)}
    second = copy.deepcopy(first)
    second["pb-fw2"] = status({"edge_inside": "FAULT", "edge_outside": "FAULT"}, tracked=False)
    report = assess(plan_without_tracking, first, second)
    assert report["problems"] == ["pb-fw2: VRRP instances edge_inside, edge_outside in FAULT (a tracked link is down)"]
    assert [row["tracking"] for row in report["rows"]] == ["-", "-"]


def test_a_keepalived_that_does_not_track_the_plans_check_is_a_problem(plan):
    # a node left behind by a failed run, or a keepalived.conf edited by hand
    first, second = healthy_samples()
    second["pb-fw2"] = status(BACKUP, tracked=False)
    report = assess(plan, first, second)
    assert report["problems"] == ["pb-fw2: keepalived does not track conntrackd and upstream on edge_inside, "
                                  "edge_outside as the plan says (its configuration is not the plan's: run site.yml)"]
    assert [row["tracking"] for row in report["rows"]] == ["conntrackd+upstream", "UNTRACKED"]


def test_an_upstream_host_silent_in_both_samples_is_a_problem(plan):
    first, second = healthy_samples()
    answers = {"host": "203.0.113.10", "interface": "eth2", "answers": True}
    silent = dict(answers, answers=False)
    first["pb-fw1"]["upstream"] = [silent]
    second["pb-fw1"]["upstream"] = [silent]
    first["pb-fw2"]["upstream"] = [answers]
    second["pb-fw2"]["upstream"] = [silent]   # one lost ping is not silence
    report = assess(plan, first, second)
    assert report["problems"] == ["pb-fw1: upstream host 203.0.113.10 via eth2 answered no ping in either sample (its "
                                  "upstream check fails; it steps down while a peer reaches it)"]


KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
CONNTRACKD_CONF = "/etc/conntrackd/conntrackd.conf"


def test_daemon_files_as_rendered(plan):
    configs = dict((host, {KEEPALIVED_CONF: False, CONNTRACKD_CONF: False}) for host in ("pb-fw1", "pb-fw2"))
    report = assess(plan, *heard_samples(), configs=configs)
    assert report["healthy"], report["problems"]
    assert [row["configs"] for row in report["rows"]] == ["as rendered", "as rendered"]
    assert report["table"][1].endswith("as rendered")


def test_a_daemon_file_edited_by_hand_is_a_problem(plan):
    configs = {"pb-fw1": {KEEPALIVED_CONF: False, CONNTRACKD_CONF: False},
               "pb-fw2": {KEEPALIVED_CONF: True, CONNTRACKD_CONF: False}}
    report = assess(plan, *heard_samples(), configs=configs)
    assert report["problems"] == ["pb-fw2: /etc/keepalived/keepalived.conf is not the rendered one (edited by hand, "
                                  "or left behind by a failed run: site.yml --check shows it, site.yml rewrites it)"]
    assert [row["configs"] for row in report["rows"]] == ["as rendered", "DRIFT"]


def test_daemon_files_not_compared_are_a_problem_on_a_node_that_answers(plan):
    first, second = heard_samples()
    second["pb-fw2"] = {"unreachable": True, "msg": "Failed to connect"}
    report = assess(plan, first, second, configs={"pb-fw1": None})
    assert report["problems"] == ["pb-fw1: its keepalived and conntrackd files could not be compared with the "
                                  "rendered ones"]
    assert [row["configs"] for row in report["rows"]] == ["-", "-"]


def test_a_keepalived_that_has_not_loaded_the_plan_is_a_problem(plan):
    # the file is the plan's (a reload failed, or a run stopped before its handler): the running instances are not
    first, second = healthy_samples()
    for instance in second["pb-fw2"]["keepalived"]["instances"]:
        instance.update(vrid=51 if instance["name"] == "edge_inside" else 52, interface="eth1", priority=250)
    second["pb-fw2"]["keepalived"]["instances"][0].update(vips=["10.10.1.254/24"])   # as keepalived's dump gives it
    second["pb-fw2"]["keepalived"]["instances"][1].update(priority=200, vips=["203.0.113.254", "203.0.113.253/24"])
    second["pb-fw2"]["keepalived"]["instances"][1]["interface"] = "eth2"
    report = assess(plan, first, second, configs=dict((host, {"/etc/keepalived/keepalived.conf": False})
                                                      for host in ("pb-fw1", "pb-fw2")))
    assert report["problems"] == [
        "pb-fw2: keepalived runs edge_outside with priority 200, the plan says 250 (its file is not what it runs: "
        "systemctl reload keepalived)",
        "pb-fw2: keepalived runs edge_outside with vips 203.0.113.253, 203.0.113.254, the plan says 203.0.113.254 (its "
        "file is not what it runs: systemctl reload keepalived)"]
    assert [row["configs"] for row in report["rows"]] == ["as rendered", "NOT LOADED"]


def test_a_conntrackd_started_before_its_file_was_written_is_a_problem(plan):
    first, second = healthy_samples()
    second["pb-fw1"]["conntrackd"].update(started=1000.0, config_mtime=1000.5)   # written as it started: loaded
    second["pb-fw2"]["conntrackd"].update(started=1000.0, config_mtime=1060.0)
    report = assess(plan, first, second)
    assert report["problems"] == ["pb-fw2: conntrackd runs a configuration older than its file (written after the "
                                  "daemon started: systemctl restart conntrackd)"]
    assert [row["configs"] for row in report["rows"]] == ["-", "NOT LOADED"]


def test_a_pending_resync_gate_is_a_problem():
    # the returned node's gate started at conntrackd's start and has not opened: keepalived waits
    plan = hash_plan()
    plan["nodes"]["fw1"]["conntrackd"] = {"resync_gate": {"holds": "keepalived"}}
    sample = dict(("fw%d" % k, hash_status(k, [k])) for k in range(3))
    for host in sample:
        sample[host]["resync_gate"] = {"pending": False, "open": True, "settled": True}
    assert assess(plan, sample, sample)["healthy"]
    waiting = copy.deepcopy(sample)
    waiting["fw1"]["resync_gate"] = {"pending": True, "open": False}
    assert assess(plan, sample, waiting)["problems"] == [
        "fw1: conntrackd's resync gate has not opened: the peers' flows are not all in yet; keepalived starts once it has"]
    # a node that never ran the gate since its boot (conntrackd not restarted since the upgrade) is not judged
    never = copy.deepcopy(sample)
    never["fw1"]["resync_gate"] = {"pending": False, "open": False}
    assert assess(plan, sample, never)["healthy"]


def test_the_fleet_table_has_a_row_per_cluster_with_its_state(plan):
    healthy = assess(plan, *healthy_samples())
    first, second = healthy_samples()
    second["pb-fw1"] = {"unreachable": True, "msg": "Failed to connect"}
    second["pb-fw2"] = status(PRIMARY, VIPS)
    degraded = assess(plan, first, second)
    broken = assess(plan, {}, {})
    lines = fleet({"edge": healthy, "branch": degraded, "core": broken})
    assert lines[0].split() == ["cluster", "architecture", "nodes", "up", "state", "problems", "warnings", "rules",
                                "digest"]
    # sorted by cluster name, cells aligned under their headers
    assert [line.split() for line in lines[1:]] == [
        ["branch", "primary_backup", "1/2", "degraded", "0", "1", "-"],
        ["core", "primary_backup", "0/2", "INCONSISTENT", "1", "2", "-"],
        ["edge", "primary_backup", "2/2", "consistent", "0", "0", "-"],
    ]
    assert all(line[lines[0].index("state"):].split()[0] in ("state", "degraded", "INCONSISTENT", "consistent")
               for line in lines)
