#!/bin/sh
# Ansible managed
# keepalived calls this on every transition of the node-id instances of hash
# cluster mesh: "take K" when hs-fw1 becomes master of instance
# mesh_idK, "release K" on backup, fault and stop. The owner hook changes the
# cluster-match rules (replay-safe, under a lock).
set -u
action=${1:-}
id=${2:-}
own_id=0
state_file=/run/fwcluster/vrrp-state
run_dir=$(dirname "$state_file")

mkdir -p "$run_dir"
case $action:$id in
take:*[!0-9]* | release:*[!0-9]* | take: | release:)
	logger -t fwcluster "transition '$*' names no node id"
	exit 1
	;;
take:* | release:*) ;;
*)
	logger -t fwcluster "unknown transition '$*'"
	exit 1
	;;
esac

# keepalived starts each transition's script at once, beside those still
# running (only its notify FIFO keeps the order). A take waits for its commit,
# so the release that follows it could finish first and the late take leave
# the id owned by a node that is no longer its master. Each transition of the
# id takes a ticket, in the order keepalived started them; only the newest
# ticket's change is made. Lock 8 guards the ticket (held for a moment), lock 9
# the change (held while it is made): a ticket never waits behind a change.
ticket_file=$run_dir/hash-id$id.ticket
exec 8>"$ticket_file.lock" 9>"$run_dir/hash-id$id.lock"
flock 8
ticket=$(($(cat "$ticket_file" 2>/dev/null || echo 0) + 1))
echo "$ticket" >"$ticket_file"
flock -u 8

newest() {
	flock 8
	current=$(cat "$ticket_file")
	flock -u 8
	[ "$current" = "$ticket" ]
}

# Taking a node id: its flows are in conntrackd's external cache (a peer's,
# replicated as they went; this node's own after a restart, from its resync).
# They go into the kernel table before the owner hook lets the id's packets
# in, or those packets would meet no state and be dropped as invalid. A flow
# the kernel table already holds is replaced by the cache's copy (conntrackd
# destroys and creates it again). Two ids taken at once commit one after the
# other: conntrackd answers a commit asked for while one runs at once, before
# that one is done.
if [ "$action" = take ] && newest; then
	flock "$run_dir/conntrackd-commit.lock" \
		timeout 10 conntrackd -C /etc/conntrackd/conntrackd.conf -c ||
		logger -t fwcluster "conntrackd -c failed before taking node id $id"
fi

# A ticket taken after this check waits for lock 9: its change comes after this one.
flock 9
if ! newest; then
	logger -t fwcluster "hash: $action $id dropped, a later transition of the id came first"
	exit 0
fi
/usr/local/sbin/fwcluster-hash-owner "$action" "$id"
rc=$?
[ $rc -eq 0 ] || logger -t fwcluster "hash: $action $id failed ($rc)"

# The node's own instance is its role: primary while it owns its own id.
if [ "$id" = "$own_id" ]; then
	if [ "$action" = take ]; then role=primary; else role=backup; fi
	echo "$(date +%s.%N) $role" >>"$state_file"
fi
flock -u 9
exit $rc
