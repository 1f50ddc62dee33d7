# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge a cluster from its plan and its nodes' live reports.

``assess(plan, first, second, rules=None)`` takes the cluster plan (docs/cluster-plan.md)
and two samples of node_status_info results per host, taken a few seconds
apart ({host: result, or None when the host did not answer}). It returns the
rows of a status table and the problems that make the cluster inconsistent:

- a VRRP instance with no master, or with two (split brain);
- a virtual address held by a node that is not its instance's master, or by nobody;
- (nodes that own node ids) a node id owned by no node, or by two;
- a node with a VRRP instance in FAULT (a tracked link is down, or one of
  its checks fails: conntrackd, upstream hosts; the plan's tracking), or whose keepalived does not
  track the checks its plan gives the instance (its configuration is not the
  plan's);
- a node whose keepalived is not running or whose conntrackd does not answer, whose replication
  link is down, or whose replication error counters grew between the samples;
- a node whose upstream hosts (the plan's tracking) answered no ping in either sample;
- a node that heard nothing on the replication link from a peer that
  answers (the counter of that peer's raw rule did not move between the
  samples: every peer pings every second), or has no rule counting a peer;
- (given live_ruleset_info results) a node whose live ruleset is not the
  one its rendered files hold (drift), or that could not be compared;
- (given the daemon files' comparison, {path: differs}) a node whose
  keepalived or conntrackd files are not the ones its plan renders;
- a node whose running daemons have not loaded their files: a keepalived
  instance whose VRID, interface, priority or VIPs are not the plan's, a
  conntrackd started before its file was last written.

With those results, the assessment also carries rules_digest: a fingerprint
of every node's rendered rules, the same while nobody changes the plan.

A node that does not answer is a warning, not a problem: a cluster whose
survivors took over a dead node's work is degraded but consistent.
"""

from __future__ import annotations

import hashlib


def _usable(result):
    """The node_status_info result, or None when the host did not answer or the module failed."""
    if not isinstance(result, dict) or result.get("unreachable") or result.get("failed"):
        return None
    if "keepalived" not in result:
        return None
    return result


def _why_unusable(result):
    if result is None:
        return "not sampled"
    if result.get("unreachable"):
        return "unreachable"
    return "status failed: %s" % result.get("msg", "no message")


def _members(plan):
    """Every host of the cluster plan: its nodes and its load balancers (the plan's balancers)."""
    members = dict(plan["nodes"])
    members.update(plan.get("balancers") or {})
    return members


def _held(status):
    """The addresses (without prefix, both families) a node holds, on any interface."""
    held = set(status.get("vips_held", []))
    for addresses in (status.get("addresses") or {}).values():
        held.update(address.split("/")[0] for address in addresses)
    return held


def _planned_instances(plan):
    """Instance name -> the addresses (without prefix) its master holds, over every host of the plan."""
    instances = {}
    for node in _members(plan).values():
        for instance in (node.get("keepalived") or {}).get("instances", []):
            vips = instances.setdefault(instance["name"], set())
            vips.update(vip.split("/")[0] for vip in instance.get("vips", []))
    return instances


def _instance_states(status):
    return dict((instance["name"], instance["state"]) for instance in status["keepalived"]["instances"])


def _check_instances(plan, current, problems):
    for name, vips in sorted(_planned_instances(plan).items()):
        masters = sorted(host for host, status in current.items() if _instance_states(status).get(name) == "MASTER")
        for host, status in sorted(current.items()):
            if status["keepalived"]["running"] and name not in _instance_states(status) \
                    and not status["keepalived"].get("error"):
                planned = [i["name"] for i in (_members(plan)[host].get("keepalived") or {}).get("instances", [])]
                if name in planned:
                    problems.append("%s: keepalived runs no VRRP instance %s (its configuration is not the plan's)"
                                    % (host, name))
        if not masters:
            problems.append("VRRP instance %s has no master" % name)
        elif len(masters) > 1:
            problems.append("VRRP instance %s has %d masters: %s (split brain)"
                            % (name, len(masters), ", ".join(masters)))
        for vip in sorted(vips):
            holders = sorted(host for host, status in current.items() if vip in _held(status))
            strays = [host for host in holders if host not in masters]
            if strays:
                problems.append("address %s of instance %s is held by %s, which %s not its master"
                                % (vip, name, ", ".join(strays), "is" if len(strays) == 1 else "are"))
            if masters and not holders:
                problems.append("address %s of instance %s is held by no node" % (vip, name))


# What a running keepalived shows of each instance, compared with the plan's:
# a configuration written but never loaded (a reload that failed, a run cut
# short) shows here while the file on disk is the plan's.
_LIVE_FIELDS = (("vrid", "vrid"), ("interface", "interface"), ("priority", "priority"))


def _unloaded(plan, host, status):
    """[(instance, field, live value, planned value)] where the running keepalived differs from the plan."""
    planned = dict((instance["name"], instance)
                   for instance in (_members(plan)[host].get("keepalived") or {}).get("instances", []))
    found = []
    for live in status["keepalived"].get("instances") or []:
        instance = planned.get(live["name"])
        if instance is None:
            continue
        for live_key, plan_key in _LIVE_FIELDS:
            if live.get(live_key) is not None and live[live_key] != instance.get(plan_key):
                found.append((live["name"], plan_key, live[live_key], instance.get(plan_key)))
        # keepalived's dump gives each VIP as configured (with its prefix length where one was set)
        vips = sorted(vip.split("/")[0] for vip in instance.get("vips") or [])
        live_vips = sorted(vip.split("/")[0] for vip in live.get("vips") or [])
        if live.get("vips") is not None and live_vips != vips:
            found.append((live["name"], "vips", ", ".join(live_vips) or "none", ", ".join(vips) or "none"))
    return found


def _stale_conntrackd(status):
    """Whether conntrackd's file was written after the daemon started (it runs an older configuration)."""
    conntrackd = status.get("conntrackd") or {}
    started, written = conntrackd.get("started"), conntrackd.get("config_mtime")
    return conntrackd.get("running") and started is not None and written is not None and written > started + 1


def _not_loaded(plan, host, status):
    """The host's daemons that run something else than their files, one problem each (the cell shows NOT LOADED)."""
    found = []
    if status["keepalived"]["running"]:
        for name, field, live, planned in _unloaded(plan, host, status):
            found.append("%s: keepalived runs %s with %s %s, the plan says %s (its file is not what it "
                         "runs: systemctl reload keepalived)" % (host, name, field, live, planned))
    if _members(plan)[host].get("replication") and _stale_conntrackd(status):
        found.append("%s: conntrackd runs a configuration older than its file (written after the daemon "
                     "started: systemctl restart conntrackd)" % host)
    return found


def _planned_tracking(plan, host):
    """Instance name -> the check scripts the plan has it track, for one host."""
    return dict((instance["name"], instance.get("track_scripts") or [])
                for instance in (_members(plan)[host].get("keepalived") or {}).get("instances", []))


def _untracked(plan, host, status):
    """The host's live instances that track fewer checks than its plan gives them."""
    live = dict((instance["name"], instance.get("track_scripts") or []) for instance in status["keepalived"]["instances"])
    return sorted(name for name, scripts in _planned_tracking(plan, host).items()
                  if scripts and name in live and len(live[name]) < len(scripts))


# The plan's checks (keepalived's vrrp_script names) as the status names them.
CHECK_LABELS = {"fwcluster_conntrackd": "conntrackd", "fwcluster_upstream": "upstream"}


def _planned_checks(plan, host):
    """The labels of the checks the plan has the host's instances track, in the plan's order."""
    found = []
    for scripts in _planned_tracking(plan, host).values():
        found.extend(CHECK_LABELS.get(name, name) for name in scripts if CHECK_LABELS.get(name, name) not in found)
    return found


def _check_tracking(plan, current, problems):
    for host, status in sorted(current.items()):
        faulty = sorted(name for name, state in _instance_states(status).items() if state == "FAULT")
        if faulty:
            checks = _planned_checks(plan, host)
            problems.append("%s: VRRP instance%s %s in FAULT (a tracked link is down%s)"
                            % (host, "s" if len(faulty) > 1 else "", ", ".join(faulty),
                               " or a check fails: %s" % " or ".join(checks) if checks else ""))
        untracked = _untracked(plan, host, status)
        if untracked:
            problems.append("%s: keepalived does not track %s on %s as the plan says (its configuration "
                            "is not the plan's: run site.yml)"
                            % (host, " and ".join(_planned_checks(plan, host)), ", ".join(untracked)))


def _silent_upstream(first, status):
    """The upstream hosts that answered the node in neither sample: "HOST via IFACE" (one lost ping is not silence)."""
    answered = set()
    for sample in (first, status):
        answered.update((entry["host"], entry["interface"]) for entry in (sample or {}).get("upstream") or []
                        if entry.get("answers"))
    return ["%s via %s" % (entry["host"], entry["interface"]) for entry in status.get("upstream") or []
            if (entry["host"], entry["interface"]) not in answered]


def _check_upstream(first, current, problems):
    for host, status in sorted(current.items()):
        silent = _silent_upstream(first.get(host), status)
        if silent:
            problems.append("%s: upstream host%s %s answered no ping in either sample (its upstream check fails; "
                            "it steps down while a peer reaches %s)"
                            % (host, "s" if len(silent) > 1 else "", ", ".join(silent),
                               "them" if len(silent) > 1 else "it"))


def _tracking_cell(plan, host, status):
    """What the node's VRRP follows besides its links (the plan's checks), and whether it is in FAULT."""
    checks = _planned_checks(plan, host)
    if not checks:
        return "-"
    if _untracked(plan, host, status):
        return "UNTRACKED"
    states = _instance_states(status).values()
    return "+".join(checks) + (" FAULT" if "FAULT" in states else "")


def _check_static_vips(plan, current, problems):
    """Nodes that own node ids: every node holds every segment VIP of both families (they all answer for it)."""
    for segment_name, segment in sorted(plan["segments"].items()):
        for vip in (segment["vip_address"], segment.get("vip6_address")):
            for host, status in sorted(current.items()):
                if vip is not None and vip not in _held(status):
                    problems.append("%s: does not hold %s, the VIP of segment %s" % (host, vip, segment_name))


def _ids(node_ids):
    return ",".join(str(node_id) for node_id in node_ids) if node_ids else "none"


def _check_ownership(plan, current, problems):
    """Nodes that own node ids: every node id 0..n-1 is owned by exactly one answering node."""
    owners = {}
    for host, status in sorted(current.items()):
        cluster = status.get("cluster") or {}
        for node_id in cluster.get("node_ids", []):
            owners.setdefault(node_id, []).append(host)
        # a dual-stack node's IPv6 owner rules must own the same ids (the hook writes both at once)
        if "node_ids_ipv6" in cluster and cluster["node_ids_ipv6"] != cluster.get("node_ids"):
            problems.append("%s: owns node ids %s for IPv4 but %s for IPv6" % (
                host, _ids(cluster.get("node_ids")), _ids(cluster["node_ids_ipv6"])))
    for node_id in range(len(plan["nodes"])):
        hosts = sorted(owners.get(node_id, []))
        if not hosts:
            problems.append("node id %d is owned by no node: its flows are dropped" % node_id)
        elif len(hosts) > 1:
            problems.append("node id %d is owned by %d nodes: %s (its flows are forwarded twice)"
                            % (node_id, len(hosts), ", ".join(hosts)))


def _judged_errors(node, conntrackd):
    """The replication errors that mean something for this node, summed; None when unknown.

    conntrackd tracks one sequence number per link, not per peer: with more
    than one peer sending (three or more nodes over multicast) their interleaved sequences
    count as lost messages all the time, so "lost" is judged only with one peer.
    """
    errors = (conntrackd or {}).get("errors")
    if not errors:
        return None
    peers = len((node.get("replication") or {}).get("peers") or [])
    return sum(count for kind, count in errors.items() if kind != "lost" or peers <= 1)


def _heard(node, before, after):
    """{peer host: True (heard between the samples), False (not), None (no rule counts it)}; {} when unknown."""
    peer_hosts = (node.get("replication") or {}).get("peer_hosts") or {}
    before = (before or {}).get("replication_heard")
    after = (after or {}).get("replication_heard")
    if before is None or after is None:
        return {}
    heard = {}
    for address, peer in sorted(peer_hosts.items()):
        if address not in after or address not in before:
            heard[peer] = None
        else:
            heard[peer] = after[address] > before[address]
    return heard


def _check_heard(host, heard_by, current, problems):
    for peer, heard in sorted(heard_by.items()):
        if peer not in current:
            continue  # a peer that did not answer is reported as down already
        if heard is None:
            problems.append("%s: no rule counts what arrives from %s on the replication link (the node's rules "
                            "are not the plan's)" % (host, peer))
        elif not heard:
            problems.append("%s: heard nothing from %s on the replication link between the samples" % (host, peer))


# What a pending resync gate holds back, by the plan's resync_gate.holds.
_GATE_HOLDS = {"keepalived": "; keepalived starts once it has", "forwarding": "; the firewall forwards nothing until it has"}


def _check_resync_gate(host, node, gate, problems):
    """A gate that conntrackd's unit started and that has not opened: the node is not back yet."""
    if not gate:
        return
    if gate.get("error"):
        problems.append("%s: %s" % (host, gate["error"]))
    elif gate.get("pending") and not gate.get("open"):
        holds = ((node.get("conntrackd") or {}).get("resync_gate") or {}).get("holds")
        problems.append("%s: conntrackd's resync gate has not opened: the peers' flows are not all in yet%s"
                        % (host, _GATE_HOLDS.get(holds, "")))


def _check_daemons(plan, first, current, heard, problems):
    for host, status in sorted(current.items()):
        node = _members(plan)[host]
        keepalived = status["keepalived"]
        if node.get("keepalived") is None:
            pass  # no VRRP on this host (a firewall behind load balancers): keepalived is meant to be off
        elif not keepalived["running"]:
            problems.append("%s: keepalived is not running" % host)
        elif keepalived.get("error"):
            problems.append("%s: keepalived did not report its instances: %s" % (host, keepalived["error"]))
        if not node.get("replication"):
            continue
        conntrackd = status.get("conntrackd") or {}
        if not conntrackd.get("running"):
            problems.append("%s: conntrackd does not answer (%s)" % (host, conntrackd.get("error", "no answer")))
        _check_resync_gate(host, node, status.get("resync_gate"), problems)
        link = status.get("replication_link") or {}
        if link and not link.get("up"):
            problems.append("%s: replication link %s is down (operstate %s)"
                            % (host, link.get("interface"), link.get("operstate")))
        _check_heard(host, heard[host], current, problems)
        before = _judged_errors(node, (first.get(host) or {}).get("conntrackd"))
        after = _judged_errors(node, conntrackd)
        if before is not None and after is not None and after > before:
            problems.append("%s: conntrackd replication errors grew from %d to %d while sampling"
                            % (host, before, after))


def _rules_report(found):
    """The live_ruleset_info result, or None when the host did not answer or the module failed."""
    if not isinstance(found, dict) or found.get("unreachable") or found.get("failed") or "families" not in found:
        return None
    return found


def _check_rules(rules, current, problems):
    for host in sorted(current):
        found = _rules_report(rules.get(host))
        if found is None:
            problems.append("%s: the live rules could not be compared with the rendered ones: %s"
                            % (host, (rules.get(host) or {}).get("msg", "not sampled")))
            continue
        for family, finding in sorted(found["families"].items()):
            if finding.get("drift"):
                problems.append("%s: the live %s rules are not the rendered ones (%s): %s"
                                % (host, family, finding.get("file"), "; ".join(finding.get("differences") or [])))


def _rules_cell(found):
    found = _rules_report(found)
    if found is None:
        return "-"
    families = found["families"]
    if any(finding.get("drift") for finding in families.values()):
        return "DRIFT"
    return "as rendered %s" % (families.get("ipv4") or {}).get("rendered_digest", "")


def _cluster_digest(rules, hosts):
    """One fingerprint of every node's rendered rules (None unless every node reported them)."""
    parts = []
    for host in sorted(hosts):
        found = _rules_report(rules.get(host))
        if found is None:
            return None
        for family, finding in sorted(found["families"].items()):
            if not finding.get("rendered_digest"):
                return None
            parts.append("%s %s %s" % (host, family, finding["rendered_digest"]))
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:12]


def _row(plan, host, status, raw, heard):
    """One table row; status is the usable result or None, raw what the host returned, heard _heard's answer."""
    node = _members(plan)[host]
    row = {"host": host, "node_id": node["node_id"], "up": status is not None}
    if status is None:
        row["vrrp"] = _why_unusable(raw)
        return row
    states = _instance_states(status)
    row["vrrp"] = " ".join("%s=%s" % (name, states[name]) for name in sorted(states)) or \
        ("not running" if not status["keepalived"]["running"] else "no instances")
    planned = set(address for segment in plan["segments"].values()
                  for address in (segment["vip_address"], segment.get("vip6_address")) if address)
    for vips in _planned_instances(plan).values():
        planned |= vips
    # The host-scope markers of node-id instances (127.254.x.y) are not worth a column, nor the
    # link-local address of an IPv6 virtual router (fe80::1:VRID): its global VIP beside it says as much.
    shown = sorted(address for address in _held(status) & planned
                   if not address.startswith("127.") and not address.lower().startswith("fe80:"))
    row["vips"] = " ".join(shown) or "-"
    row["tracking"] = _tracking_cell(plan, host, status)
    cluster = status.get("cluster")
    row["node_ids"] = ",".join(str(i) for i in cluster["node_ids"]) if cluster else "-"
    conntrackd = status.get("conntrackd")
    if conntrackd and conntrackd.get("running"):
        internal, external = conntrackd.get("internal"), conntrackd.get("external")
        row["flows"] = "%s/%s" % ("-" if internal is None else internal, "-" if external is None else external)
        # The link's errors apart from the caches' bookkeeping (failed creations
        # and updates: every injected peer flow counts there where a cache is off).
        judged = _judged_errors(node, conntrackd)
        row["link_errors"] = "-" if judged is None else str(judged)
        row["cache_failures"] = str(conntrackd.get("cache_failures", "-"))
    else:
        row["flows"] = row["link_errors"] = row["cache_failures"] = "-"
    link = status.get("replication_link")
    row["link"] = ("%s %s" % (link["interface"], link["operstate"])) if link else "-"
    row["heard"] = "%d/%d" % (sum(1 for value in heard.values() if value), len(heard)) if heard else "-"
    return row


COLUMNS = (
    ("host", "node"), ("node_id", "id"), ("vrrp", "VRRP instances"), ("vips", "VIPs held"),
    ("tracking", "tracks"), ("node_ids", "ids owned"), ("flows", "flows int/ext"), ("link_errors", "link errors"),
    ("cache_failures", "cache fails"), ("link", "repl. link"),
    ("heard", "peers heard"), ("rules", "live rules"), ("configs", "config files"),
)


FLEET_COLUMNS = (
    ("cluster", "cluster"), ("architecture", "architecture"), ("nodes_up", "nodes up"), ("state", "state"),
    ("problems", "problems"), ("warnings", "warnings"), ("rules_digest", "rules digest"),
)


def table(rows, columns=COLUMNS):
    """Fixed-width text lines of the rows, a header first."""
    cells = [[label for key, label in columns]]
    cells.extend([str(row.get(key, "")) for key, label in columns] for row in rows)
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]


def fleet(assessments):
    """One line per cluster, a header first, from {cluster name: assess() result}: the fleet at a glance.

    A cluster is INCONSISTENT with a problem, degraded when it has none but a
    member did not answer (its survivors carry its work), consistent otherwise.
    """
    rows = []
    for name in sorted(assessments):
        assessment = assessments[name]
        up = sum(1 for row in assessment["rows"] if row["up"])
        if not assessment["healthy"]:
            state = "INCONSISTENT"
        elif up < len(assessment["rows"]):
            state = "degraded"
        else:
            state = "consistent"
        rows.append({"cluster": name, "architecture": assessment["architecture"],
                     "nodes_up": "%d/%d" % (up, len(assessment["rows"])), "state": state,
                     "problems": len(assessment["problems"]), "warnings": len(assessment["warnings"]),
                     "rules_digest": assessment["rules_digest"] or "-"})
    return table(rows, FLEET_COLUMNS)


def _check_configs(configs, current, problems):
    for host in sorted(current):
        found = configs.get(host)
        if not isinstance(found, dict):
            problems.append("%s: its keepalived and conntrackd files could not be compared with the rendered ones"
                            % host)
            continue
        for path in sorted(path for path, differs in found.items() if differs):
            problems.append("%s: %s is not the rendered one (edited by hand, or left behind by a failed run: "
                            "site.yml --check shows it, site.yml rewrites it)" % (host, path))


def _configs_cell(found):
    if not isinstance(found, dict):
        return "-"
    return "DRIFT" if any(found.values()) else "as rendered"


def assess(plan, first, second, rules=None, configs=None):
    """{healthy, problems, warnings, rows, table, rules_digest} for one cluster; see the module docstring.

    rules: {host: live_ruleset_info result}, or None where the rules were not compared.
    configs: {host: {daemon file: whether it differs from the rendered one}}, or None where the files
    were not compared.
    """
    current = {}
    warnings = []
    for host in sorted(_members(plan)):
        status = _usable(second.get(host))
        if status is None:
            warnings.append("%s: %s; counted as down" % (host, _why_unusable(second.get(host))))
        else:
            current[host] = status
    first_usable = dict((host, _usable(result)) for host, result in first.items())
    heard = dict((host, _heard(_members(plan)[host], first_usable.get(host), status)) for host, status in current.items())
    not_loaded = dict((host, _not_loaded(plan, host, status)) for host, status in current.items())
    problems = []
    if not current:
        problems.append("no node of cluster %s answered" % plan["name"])
    else:
        _check_daemons(plan, first_usable, current, heard, problems)
        _check_instances(plan, current, problems)
        _check_tracking(plan, current, problems)
        _check_upstream(first_usable, current, problems)
        for host in sorted(current):
            problems.extend(not_loaded[host])
        if plan["capabilities"]["owned_ids"]:
            _check_static_vips(plan, current, problems)
            _check_ownership(plan, current, problems)
        if rules is not None:
            _check_rules(rules, current, problems)
        if configs is not None:
            _check_configs(configs, current, problems)
    rows = [_row(plan, host, current.get(host), second.get(host), heard.get(host, {}))
            for host in sorted(_members(plan))]
    for row in rows:
        row["rules"] = _rules_cell((rules or {}).get(row["host"])) if row["up"] else "-"
        row["configs"] = _configs_cell((configs or {}).get(row["host"])) if row["up"] else "-"
        if row["up"] and not_loaded.get(row["host"]):
            row["configs"] = "NOT LOADED" if row["configs"] in ("as rendered", "-") else row["configs"]
    return {
        "cluster": plan["name"],
        "architecture": plan["architecture"],
        "healthy": not problems,
        "problems": problems,
        "warnings": warnings,
        "rows": rows,
        "table": table(rows),
        "rules_digest": _cluster_digest(rules, _members(plan)) if rules is not None else None,
    }
