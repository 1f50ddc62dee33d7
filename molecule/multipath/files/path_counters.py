"""What a multipath node's request and reply rules counted, and the forwarded flows it tracks.

Run on the node (podman exec NODE python3 -c "$(cat this)" NODE BACKEND CLIENT SERVER [BEFORE]):
prints {"node": NODE, "counters": {chain: {rule comment: packets}}, "tracked_flows": n} as JSON.
BACKEND is iptables or nftables, as the cluster runs; the family is the
client's address's (IPv6 rules and flows for an IPv6 client); given BEFORE (this
script's earlier output on the same node), the counters are what each rule
counted since then: nftables 1.0.6 cannot zero a rule's counter, so both
backends are read the same way, as differences.
"""

import json
import re
import subprocess
import sys

CHAINS = ("fwcluster-request", "fwcluster-reply")


def iptables_counters(ipv6):
    out = subprocess.run(["ip6tables-save" if ipv6 else "iptables-save", "-c", "-t", "filter"], capture_output=True,
                         text=True, check=True).stdout
    counters = {}
    for line in out.splitlines():
        found = re.match(r'^\[(\d+):\d+\] -A (\S+) .*--comment "([^"]*)"', line)
        if found and found.group(2) in CHAINS:
            counters.setdefault(found.group(2), {})[found.group(3)] = int(found.group(1))
    return counters


def nftables_counters(ipv6):
    out = subprocess.run(["nft", "-j", "list", "table", "ip6" if ipv6 else "ip", "fwcluster"], capture_output=True,
                         text=True, check=True).stdout
    counters = {}
    for item in json.loads(out)["nftables"]:
        rule = item.get("rule")
        chain = (rule or {}).get("chain", "").replace("filter_", "", 1)
        if chain in CHAINS and "comment" in rule:
            packets = [expr["counter"]["packets"] for expr in rule["expr"] if "counter" in expr]
            if packets:
                counters.setdefault(chain, {})[rule["comment"]] = packets[0]
    return counters


def tracked_flows(client, server, ipv6):
    flows = 0
    for source, destination in ((client, server), (server, client)):
        listed = subprocess.run(["conntrack", "-L", "-f", "ipv6" if ipv6 else "ipv4", "-s", source, "-d", destination],
                                capture_output=True, text=True, check=False)
        flows += len([line for line in listed.stdout.splitlines() if line.strip()])
    return flows


def main(node, backend, client, server, before=None):
    ipv6 = ":" in client
    counters = iptables_counters(ipv6) if backend == "iptables" else nftables_counters(ipv6)
    if before:
        earlier = json.loads(before)["counters"]
        counters = dict((chain, dict((comment, packets - earlier.get(chain, {}).get(comment, 0))
                                     for comment, packets in rules.items()))
                        for chain, rules in counters.items())
    print(json.dumps({"node": node, "counters": counters, "tracked_flows": tracked_flows(client, server, ipv6)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
