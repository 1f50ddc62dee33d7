"""The balancer health service: which buckets move when a firewall dies, and the rules it owns."""

from __future__ import annotations

import importlib.util
import os

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.build import build_plan

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir,
                      "roles", "balancer", "files", "balancer_health.py")


def load_health():
    spec = importlib.util.spec_from_file_location("balancer_health", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


health = load_health()


def buckets(count, firewalls):
    return [{"bucket": b, "mark": 0x100 + b, "priority": 1000 + b, "home": b % firewalls} for b in range(count)]


def test_all_up_keeps_every_bucket_home():
    assert health.assign(buckets(16, 2), {0, 1}) == dict((b, b % 2) for b in range(16))


def test_a_dead_firewall_loses_only_its_buckets():
    before = health.assign(buckets(16, 3), {0, 1, 2})
    after = health.assign(buckets(16, 3), {0, 2})
    moved = [b for b in before if before[b] != after[b]]
    assert moved == [b for b in range(16) if b % 3 == 1]
    assert set(after[b] for b in moved) == {0, 2}  # spread over the survivors
    assert all(after[b] == before[b] for b in before if b not in moved)


def test_the_spread_depends_only_on_the_live_set():
    """Every balancer, on either side, must compute the same map from the same live firewalls."""
    assert health.assign(buckets(32, 4), {3, 0}) == health.assign(list(reversed(buckets(32, 4))), {0, 3})


def test_no_live_firewall_keeps_the_home_map():
    assert health.assign(buckets(8, 2), set()) == dict((b, b % 2) for b in range(8))


def test_return_restores_the_home_map():
    assert health.assign(buckets(16, 2), {0, 1}) == health.assign(buckets(16, 2), {1, 0})


def test_fall_and_rise_count_rounds():
    firewall = health.Firewall({"name": "fw", "node_id": 0, "table": 101}, fall=3, rise=2)
    assert [firewall.record(False, t) for t in range(3)] == [False, False, True]
    assert not firewall.up and firewall.changed == 2
    assert [firewall.record(True, t) for t in range(3, 5)] == [False, True]
    assert firewall.up
    # a single failure between successes does not count toward fall
    assert [firewall.record(ok, t) for t, ok in enumerate([False, True, False, False], 10)] == [False] * 4
    assert firewall.up


def test_desired_rules_follow_the_plan(sandwich):
    config = build_plan(*sandwich)["balancers"]["sw-lbi1"]["balancer"]
    rules = health.desired_rules(config, health.assign(config["buckets"], {1}))
    assert rules[:2] == [(900, 0x200, 101), (901, 0x201, 102)]  # probes always go to their own firewall
    assert rules[2:] == [(1000 + b, 0x100 + b, 102) for b in range(16)]  # every bucket on the survivor


def test_each_new_rule_is_added_before_the_old_one_goes():
    """No packet finds no rule; a rule already right is left alone."""
    existing = {1000: [(0x100, "101")], 1001: [(0x101, "102")], 1002: [(0x102, "101"), (None, "250")]}
    commands, changed = health.rule_changes([(1000, 0x100, 102), (1001, 0x101, 102), (1002, 0x102, 101)], existing)
    assert changed == 2
    assert commands == [
        "rule add priority 1000 fwmark 0x100 lookup 102",
        "rule del priority 1000 fwmark 0x100 lookup 101",
        "rule del priority 1002 lookup 250",
    ]


def test_one_batch_per_family_and_none_when_nothing_changes(monkeypatch):
    """The rewrite's time is a process per family, not per rule (the kernel's answer: tests/netns)."""
    calls = []

    class Result(object):
        def __init__(self, stdout=""):
            self.stdout, self.stderr, self.returncode = stdout, "", 0

    def fake_run(argv, check=True, stdin=None):
        calls.append((argv, stdin))
        if "-j" in argv:
            return Result('[{"priority": 1000, "fwmark": "0x100", "table": "101"},'
                          ' {"priority": 1001, "fwmark": "0x101", "table": "101"}]')
        return Result()

    monkeypatch.setattr(health, "run", fake_run)
    assert health.apply_rules([(1000, 0x100, 102), (1001, 0x101, 102)], ["inet", "inet6"]) == 4
    batches = [(argv, stdin) for argv, stdin in calls if "-batch" in argv]
    assert [argv[:3] for argv, _stdin in batches] == [["ip", "-f", "inet"], ["ip", "-f", "inet6"]]
    assert all(stdin.count("\n") == 4 for _argv, stdin in batches)
    calls[:] = []
    assert health.apply_rules([(1000, 0x100, 101), (1001, 0x101, 101)], ["inet"]) == 0
    assert not [argv for argv, _stdin in calls if "-batch" in argv]


def test_an_echo_request_carries_a_valid_checksum_and_its_reply_is_read():
    request = health.echo_request(0x1234, 7)
    assert request[0] == health.ICMP_ECHO and health.icmp_checksum(request) == 0   # RFC 1071: sums to zero
    ip_header = bytes([0x45]) + bytes(19)   # a 20-byte IPv4 header, as a raw socket receives it
    reply = bytes([health.ICMP_ECHO_REPLY]) + request[1:]
    assert health.echo_reply(ip_header + reply) == (0x1234, 7)
    assert health.echo_reply(ip_header + request) is None   # a request (ours, looped back) is no answer
    assert health.echo_reply(ip_header[:12]) is None
