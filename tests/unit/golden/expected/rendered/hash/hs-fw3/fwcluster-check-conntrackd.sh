#!/bin/sh
# Ansible managed
# keepalived's check of this node's conntrackd (vrrp_script fwcluster_conntrackd,
# every 1 s): exit 1 counts as a failure, and 3 in a row
# put the node in FAULT, so a peer takes its VIPs or node ids.
#
# It fails only when conntrackd does not answer within 2 s (crashed
# or stuck) AND a peer's conntrackd is heard on the replication link meanwhile:
# a node steps down only for a peer that replicates. With every conntrackd
# down nobody steps down: a cluster whose flows go unreplicated still
# forwards, one without a master does not.
set -u

# A live conntrackd sends its peers messages (FTFW: an ALIVE a second at
# least; NOTRACK: when its flows change); the raw rule "fwcluster conntrackd
# from PEER" counts them.
peer_messages() {
	nft list chain ip fwcluster raw_prerouting 2>/dev/null | grep -F 'fwcluster conntrackd from '
}

before=$(peer_messages)
timeout 2 conntrackd -C /etc/conntrackd/conntrackd.conf -s >/dev/null 2>&1
case $? in
0) exit 0 ;;
124) ;;                               # stuck: the wait was long enough to hear a peer
*) sleep 1.5 ;;  # not running: wait for a peer's next message
esac
[ "$(peer_messages)" != "$before" ] && exit 1
exit 0
