#!/bin/sh
# Ansible managed
# keepalived calls this on every transition of sync group edge
# with primary, backup or fault.
# It records the transition ("<unix time> <state> [<segment>]") and, when the
# cluster replicates flow state, moves conntrackd's caches with it (the
# sequence of conntrack-tools' primary-backup.sh).
set -u
state=${1:-}
segment=${2:-}
state_file=/run/fwcluster/vrrp-state
run_dir=$(dirname "$state_file")

# (segment names hold letters, digits, _ and -: the plan checked them)
case $state:$segment in
primary:*[!A-Za-z0-9_-]* | backup:*[!A-Za-z0-9_-]* | fault:*[!A-Za-z0-9_-]*)
	logger -t fwcluster "unknown segment in transition '$*'"
	exit 1
	;;
primary:* | backup:* | fault:*) ;;
*)
	logger -t fwcluster "unknown transition '$*'"
	exit 1
	;;
esac
mkdir -p "$run_dir"
# keepalived starts each transition's script at once, beside those still
# running (only its notify FIFO keeps the order). Each transition takes a
# ticket, in the order keepalived started them, and records itself in that
# order; only the newest ticket moves conntrackd's caches: a primary's
# sequence that ended after the backup's that followed it would flush what the
# backup asked the primary to resend.
ticket_file=$run_dir/notify${segment:+-$segment}.ticket
exec 8>"$ticket_file.lock"
flock 8
ticket=$(($(cat "$ticket_file" 2>/dev/null || echo 0) + 1))
echo "$ticket" >"$ticket_file"
echo "$(date +%s.%N) $state${segment:+ $segment}" >>"$state_file"
flock -u 8
logger -t fwcluster "VRRP transition to $state${segment:+ on segment $segment}"

# One sequence at a time, under lock 9 (lock 8 guards the ticket for a
# moment only): a ticket taken after the check waits, its sequence comes after.
exec 9>"$run_dir/notify${segment:+-$segment}.lock"
flock 9
flock 8
newest=$(cat "$ticket_file")
flock -u 8
if [ "$newest" != "$ticket" ]; then
	logger -t fwcluster "transition to $state skipped: a later transition came first"
	exit 0
fi

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
esac
exit 0
