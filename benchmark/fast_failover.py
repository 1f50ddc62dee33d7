"""fast_failover: how fast a cluster fails over without false alarms, per setting.

    python3 benchmark/bench.py [--arch NAME ...] --only fast-failover [--fast-soak S] [--fast-settings LIST]

For each failover setting, longest first (VRRP's fwcluster_vrrp.advert_int;
the sandwich's firewalls: the balancers' health probe interval, with a
timeout of TIMEOUT_SHARE of it and fall 3), the example inventory is
deployed with it, then:

1. the soak: the kill test's load (its clients, sessions with the think
   time) runs for SETTINGS["fast_soak_s"] with nothing failing. Every
   transition a node makes in that time is a false failover: any VRRP
   instance's change of state on any node (keepalived's journal, "Entering
   ... STATE"), and a balancer's health service dropping a firewall (its
   state file's "down" events). The sessions of the soak that
   failed are counted too;
2. SETTINGS["fast_kills"] hard kills of the firewall carrying the most flows
   (bench.kill_test: the same power-off, recovered flows and timing): the
   time from the kill to the first packet of its flows that a survivor
   forwards.

A setting holds when every kill forwarded within SETTINGS["fast_target_ms"]
and its soak saw no transition; the fastest that holds is the result.
"""

import time

import bench

SETTINGS = {"fast_settings": [1.0, 0.5, 0.2, 0.1, 0.05, 0.03, 0.02], "fast_soak_s": 600, "fast_kills": 3,
            "fast_target_ms": 200, "fast_fall": 3}
SMOKE_SETTINGS = dict(SETTINGS, fast_settings=[0.2, 0.05], fast_soak_s=30, fast_kills=1)
# What a row keeps of each kill (bench.kill_test's result): the timing, the flows and the evidence.
KILL_KEYS = ("label", "victim", "first_forward_ms", "bound_ms", "hold_gap_ms", "recovery", "sessions_near_kill",
             "takeovers", "balancer_transitions")
TIMEOUT_SHARE = 0.75    # a sandwich health probe's timeout, of its interval
FALL, RISE = 3, 6       # the sandwich's health probes: fall (unless --fast-fall) and rise at every interval


def overrides(lab, value, fall=FALL):
    """The extra vars of a deploy with failover setting VALUE, and its label (the
    sandwich's fall named there when it is not FALL)."""
    if lab.architecture == "sandwich":
        health = dict(lab.balancers["health"], interval=value, timeout=round(value * TIMEOUT_SHARE, 3),
                      fall=fall, rise=RISE)
        label = "health every %g s" % value + ("" if fall == FALL else ", fall %d" % fall)
        return {"fwcluster_balancers": dict(lab.balancers, health=health)}, label
    return {"fwcluster_vrrp": dict(lab.vrrp, advert_int=value)}, "advert_int %g" % value


def transitions(lab, start, end):
    """Every transition a node made between START and END: [{"node", "time_ms" (from START), "event"}]:
    each VRRP instance's change of state in keepalived's journal (the notify scripts' state file holds
    only the node's own role), and each firewall a sandwich balancer's health service dropped."""
    found = []
    for node in sorted(lab.members):
        journal = bench.pexec(node, "journalctl -u keepalived -o short-unix --no-pager --since @%d --until @%d"
                              % (start, end + 1), check=False).stdout
        for at, instance, state in bench.vrrp_transitions(journal, start, end):
            found.append({"node": node, "time_ms": round((at - start) * 1000), "event": "vrrp %s %s" % (instance, state)})
        if node not in lab.firewalls:   # a sandwich balancer: its health service's record
            for event in bench.balancer_events(node):
                if event.get("event") == "down" and start <= event.get("time", 0) <= end:
                    found.append({"node": node, "time_ms": round((event["time"] - start) * 1000),
                                  "event": "health: %s down" % event.get("firewall")})
    return sorted(found, key=lambda entry: entry["time_ms"])


def soak(lab, settings):
    """The kill test's load for fast_soak_s, nothing killed: the transitions and the failed sessions."""
    out, stop = "/tmp/bench-soak.json", "/tmp/bench-soak.stop"
    bench.pexec(lab.client, "rm -f %s %s" % (out, stop))
    seconds = settings["fast_soak_s"]
    bench.log("soak: %d s of load, nothing killed" % seconds)
    start = time.time()
    load = bench.start_recover_load(lab, settings, bench.clients_per_size(lab, settings), seconds + 60, stop, out)
    time.sleep(seconds)
    end = time.time()
    bench.pexec(lab.client, "touch %s" % stop)
    load.wait(timeout=120)
    sessions = bench.read_json(lab.client, out)["sessions"]
    # [slot, size, start, end, ok, bytes, error, connected]: those begun and ended within the soak
    done = [s for s in sessions if s[3] is not None and start <= s[2] and s[3] <= end]
    failed = [s for s in done if not s[4]]
    found = transitions(lab, start, end)
    bench.log("soak: %d transitions, %d of %d sessions failed" % (len(found), len(failed), len(done)))
    return {"seconds": round(end - start, 1), "transitions": found, "sessions": len(done), "failed_sessions": len(failed),
            "failed_sample": sorted(failed)[:5]}


def measure(lab, settings, result):
    """Every setting of fast_settings, longest first: RESULT["fast_failover"]."""
    on = "replication on" if lab.replication else "no replication"
    rows = []
    for value in sorted(settings["fast_settings"], reverse=True):
        extra, setting = overrides(lab, value, settings.get("fast_fall", FALL))
        refusal = lab.deploy(extra, setting)
        if refusal:
            rows.append({"setting": value, "refused": refusal})
            continue
        row = {"setting": value, "soak": None, "kills": []}
        rows.append(row)
        try:
            measure_setting(lab, settings, on, value, extra, setting, row)
        except bench.BenchError as exc:
            # The rows so far are kept; a cluster that does not settle again ends the measure.
            row["failed"] = " ".join(str(exc).split())[:400]
            row["holds"] = False
            bench.log("%s: failed: %s" % (setting, row["failed"]))
            break
    holding = [row["setting"] for row in rows if row.get("holds")]
    result["fast_failover"] = {
        "knob": "balancers' health interval (s)" if lab.architecture == "sandwich" else "advert_int (s)",
        "target_ms": settings["fast_target_ms"], "soak_s": settings["fast_soak_s"], "rows": rows,
        "fastest_holding": min(holding) if holding else None}
    return result


def measure_setting(lab, settings, on, value, extra, setting, row):
    """One setting, deployed: ROW's soak, kills and verdict."""
    lab.settle()
    row["soak"] = soak(lab, settings)
    health = extra.get("fwcluster_balancers", {}).get("health")
    advert_int = float(lab.vrrp.get("advert_int", 1)) if health else value
    for k in range(settings["fast_kills"]):   # each kill_test ends with the cluster settled again
        kill = bench.kill_test(lab, settings, "%s, %s, fast-failover kill %d" % (on, setting, k + 1),
                               bool(lab.replication), advert_int, bench.bound_ms(lab, value, health))
        row["kills"].append(dict((key, kill[key]) for key in KILL_KEYS))
    firsts = [kill["first_forward_ms"] for kill in row["kills"]]
    row["holds"] = (not row["soak"]["transitions"] and bool(firsts)
                    and all(first is not None and first <= settings["fast_target_ms"] for first in firsts))
    bench.log("%s: first forward %s ms, %d false transitions: %s" % (
        setting, firsts, len(row["soak"]["transitions"]), "holds" if row["holds"] else "does not hold"))
