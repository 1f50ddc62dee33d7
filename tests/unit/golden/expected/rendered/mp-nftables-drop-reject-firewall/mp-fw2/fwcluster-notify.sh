#!/bin/sh
# Ansible managed
# keepalived calls this on every transition of an instance
# (duo_inside, duo_outside) with primary, backup
# or fault, and the instance's segment.
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
# order.
ticket_file=$run_dir/notify${segment:+-$segment}.ticket
exec 8>"$ticket_file.lock"
flock 8
ticket=$(($(cat "$ticket_file" 2>/dev/null || echo 0) + 1))
echo "$ticket" >"$ticket_file"
echo "$(date +%s.%N) $state${segment:+ $segment}" >>"$state_file"
flock -u 8
logger -t fwcluster "VRRP transition to $state${segment:+ on segment $segment}"
exit 0
