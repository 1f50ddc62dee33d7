#!/bin/sh
# Ansible managed
# keepalived calls this on every transition of sync group edge
# with primary, backup or fault.
# It records the transition ("<unix time> <state> [<segment>]") and, when the
# cluster replicates flow state, moves conntrackd's caches with it (the
# sequence of conntrack-tools' primary-backup.sh).
set -u
state=$1
segment=${2:-}
state_file=/run/fwcluster/vrrp-state

mkdir -p "$(dirname "$state_file")"
echo "$(date +%s.%N) $state${segment:+ $segment}" >>"$state_file"
logger -t fwcluster "VRRP transition to $state${segment:+ on segment $segment}"

ctd() {
	# A stuck conntrackd (the tracking's FAULT) must not hold this script forever.
	timeout 10 conntrackd -C /etc/conntrackd/conntrackd.conf "$@" ||
		logger -t fwcluster "conntrackd $* failed on transition to $state"
}

case $state in
primary)
	ctd -c # commit the peers' flows (external cache) to the kernel table
	ctd -f # flush both caches: the external one is stale now
	ctd -R # refill the internal cache from the kernel table
	ctd -B # send it all to the peers, who now are backups
	;;
backup)
	ctd -t # shorten the kernel timers of flows this node no longer forwards
	ctd -n # ask the primary to resend its flows
	;;
fault)
	ctd -t
	;;
*)
	logger -t fwcluster "unknown transition '$state'"
	exit 1
	;;
esac
exit 0
