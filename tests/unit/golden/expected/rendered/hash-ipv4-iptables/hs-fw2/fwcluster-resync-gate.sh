#!/bin/sh
# Ansible managed
# The resync gate of hs-fw2: conntrackd's unit runs it at every start.
#
#   hold     (ExecStartPre)  the gate is pending
#   run      (ExecStartPost, in the background) wait until the peers answer a
#            ping over eth3, ask them for their flows, wait until those have
#            stopped arriving, open the gate: /run/fwcluster/resync-gate
#   release  (ExecStopPost)   the gate is no longer pending
#   wait     (keepalived's ExecStartPre) return once the pending gate has opened
#   heartbeat (fwcluster-heartbeat.service) ping every peer over eth3 each
#            second; a peer heard again after a silence gets this node's
#            flows (conntrackd -B), push_delay seconds later
#
# conntrackd tells when it has asked for a resync, not when the answer is in:
# the gate takes the answer as in once the flows received from the peers
# (conntrackd -s: created and updated in its external section) grow no faster
# than the peers' live updates did in the second before the request (with a
# little to spare), two half-second samples in a row. A peer sends its whole
# answer at once, so this holds from the first sample after the last of it.
# Each wait has a bound: with every peer down the gate opens without a
# resync (nobody has flows to give).
#
# The heartbeat: each peer counts these pings in its raw rule "fwcluster
# replication from hs-fw2", so a link that stays up but carries nothing
# shows within seconds (the status playbook), whatever conntrackd has to send.
# conntrackd does not notice a link that comes back: NOTRACK never resends,
# so the flows that opened while the link was cut or silent would stay on
# their own node and die at the next failover. So when a peer answers again
# after silence_s, this node sends it its flows. A peer that was away because
# it restarted asks for them itself (its gate): the push waits push_delay
# seconds, after that gate's measure of the live updates.
set -u

conf=/etc/conntrackd/conntrackd.conf
state=/run/fwcluster/resync-gate
pending=/run/fwcluster/resync-gate.pending
interface=eth3
peers="192.168.101.1 192.168.101.3"
peer_wait=10
settle_wait=60
silence_s=3
push_delay=5

log() {
	logger -t fwcluster-resync-gate -- "$*" 2>/dev/null || true
}

# The flows received from the peers so far.
received() {
	timeout 5 conntrackd -C "$conf" -s 2>/dev/null | awk '
		/^(cache external|external inject):/ { on = 1; next }
		/^[[:space:]]*$/ { on = 0 }
		on && /^connections (created|updated):/ { n += $3 }
		END { print n + 0 }'
}

resync() {
	timeout 10 conntrackd -C "$conf" -n >/dev/null 2>&1 || log "conntrackd did not take the resync request"
}

answers() {
	ping -n -q -c 1 -W 1 -I "$interface" "$1" >/dev/null 2>&1
}

hold() {
	mkdir -p "${state%/*}"
	: >"$pending"
}

release() {
	rm -f "$pending"
}

run() {
	started=$(date +%s)
	n=0
	until timeout 2 conntrackd -C "$conf" -s >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -ge 10 ] && { log "conntrackd does not answer"; break; }
		sleep 0.5
	done
	# The peers that answer within the wait; a dead one has no flows to give.
	answered=""
	for peer in $peers; do
		until answers "$peer"; do
			[ $(($(date +%s) - started)) -ge "$peer_wait" ] && continue 2
			sleep 0.5
		done
		answered="$answered $peer"
	done
	log "peers answering:${answered:- none}"
	# What the peers' live updates bring in a second, the link up both ways.
	before=$(received)
	sleep 1
	baseline=$(($(received) - before))
	[ -n "$answered" ] && resync
	last=$(received)
	quiet=0
	samples=0
	while [ $quiet -lt 2 ] && [ $samples -lt $((settle_wait * 2)) ]; do
		sleep 0.5
		now=$(received)
		# Half a second's growth against the second's baseline, with a
		# quarter and two flows to spare for the live updates' jitter.
		if [ $((2 * (now - last))) -le $((baseline + baseline / 4 + 2)) ]; then
			quiet=$((quiet + 1))
		else
			quiet=0
		fi
		last=$now
		samples=$((samples + 1))
	done
	settled=yes
	[ $quiet -ge 2 ] || settled=no
	printf 'opened_at=%s peers_answered=%s flows_received=%s waited_s=%s settled=%s\n' \
		"$(date +%s.%N)" "$(echo "${answered# }" | tr ' ' ,)" "$((last - before))" "$(($(date +%s) - started))" "$settled" >"$state.tmp"
	mv "$state.tmp" "$state"
	log "open: $(cat "$state")"
	release
}

# One peer's heartbeat: its last answer, and the push after a silence.
watch_peer() {
	peer=$1
	heard=""
	while :; do
		if answers "$peer"; then
			now=$(date +%s)
			if [ -n "$heard" ] && [ $((now - heard)) -gt $silence_s ]; then
				log "$peer answers again after $((now - heard)) s of silence: sending it this node's flows in $push_delay s"
				(
					sleep $push_delay
					if timeout 10 conntrackd -C "$conf" -B >/dev/null 2>&1; then
						log "sent this node's flows (conntrackd -B) after $peer came back"
					else
						log "conntrackd did not take the bulk send after $peer came back"
					fi
				) &
			fi
			heard=$now
			sleep 1
		else
			# ping waited 1 s, or failed at once (the interface is down)
			sleep 0.5
		fi
	done
}

heartbeat() {
	for peer in $peers; do
		watch_peer "$peer" &
	done
	wait
}

wait_open() {
	while [ -e "$pending" ] && ! [ -e "$state" ]; do
		sleep 0.5
	done
}

case "${1:-}" in
hold) hold ;;
run) run ;;
release) release ;;
wait) wait_open ;;
heartbeat) heartbeat ;;
*)
	echo "usage: $0 hold|run|release|wait|heartbeat" >&2
	exit 2
	;;
esac
