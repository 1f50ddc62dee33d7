#!/bin/sh
# Ansible managed
# keepalived calls this on every transition of the node-id instances of hash
# cluster mesh: "take K" when hs-fw3 becomes master of instance
# mesh_idK, "release K" on backup, fault and stop. The owner hook changes the
# cluster-match rules (replay-safe, under a lock).
set -u
action=${1:-}
id=${2:-}
own_id=2
state_file=/run/fwcluster/vrrp-state

mkdir -p "$(dirname "$state_file")"
case $action in
take | release) ;;
*)
	logger -t fwcluster "unknown transition '$*'"
	exit 1
	;;
esac

/usr/local/sbin/fwcluster-hash-owner "$action" "$id"
rc=$?
[ $rc -eq 0 ] || logger -t fwcluster "hash: $action $id failed ($rc)"

# The node's own instance is its role: primary while it owns its own id.
if [ "$id" = "$own_id" ]; then
	if [ "$action" = take ]; then role=primary; else role=backup; fi
	echo "$(date +%s.%N) $role" >>"$state_file"
fi

# A peer's id taken over: its flows are in the kernel table already (conntrackd
# injects them), but not in conntrackd's internal cache, whose content is what
# this node resends when the owner returns and asks for a resync. Refill it.
if [ "$action" = take ] && [ "$id" != "$own_id" ]; then
	timeout 10 conntrackd -C /etc/conntrackd/conntrackd.conf -R ||
		logger -t fwcluster "conntrackd -R failed after taking node id $id"
fi
exit $rc
