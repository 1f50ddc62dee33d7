#!/bin/sh
# Ansible managed
# keepalived calls this on every transition of sync group stack_inside
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
exit 0
