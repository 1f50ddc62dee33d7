#!/bin/sh
# Ansible managed
# keepalived's check of this node's upstream hosts (vrrp_script fwcluster_upstream,
# every 1 s): exit 1 counts as a failure, and 3 in a row
# put the node in FAULT, so a peer takes its VIPs or node ids.
#
# The node is healthy when every upstream host answers a ping through its
# segment within 1 s, and has answered for 5 s since its last
# miss (the hold-down: a flapping uplink does not count as healthy). A
# healthy node says so to its peers on the replication link: a ping of
# 100 bytes each (the peers' raw rule "fwcluster upstream from pb-fw2").
#
# It fails only when the node is not healthy AND a peer said it is within
# 1.5 s: a node steps down only for a peer that reaches the
# upstream. When every node loses it, nobody steps down.
set -u
failed_at=/run/fwcluster/upstream-failed-at

peer_beacons() {
	iptables-save -c -t raw 2>/dev/null | grep -F 'fwcluster upstream from '
}

before=$(peer_beacons)
sleep 1.5 &
listening=$!

pings=""
ping -n -q -c 1 -W 1 -I eth2 203.0.113.10 >/dev/null 2>&1 &
pings="$pings $!"
answered=yes
for ping in $pings; do
	wait "$ping" || answered=no
done

now=$(date +%s)
if [ "$answered" = yes ]; then
	since=$(cat "$failed_at" 2>/dev/null || echo 0)
	if [ $((now - since)) -ge 5 ]; then
		rm -f "$failed_at"
		kill "$listening" 2>/dev/null
		ping -n -q -c 1 -W 1 -s 100 -I eth3 192.168.100.1 >/dev/null 2>&1 &
		exit 0
	fi
else
	mkdir -p "$(dirname "$failed_at")"
	echo "$now" >"$failed_at"
fi

wait "$listening"
[ "$(peer_beacons)" != "$before" ] && exit 1
exit 0
