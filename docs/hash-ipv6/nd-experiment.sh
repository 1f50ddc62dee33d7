#!/usr/bin/env bash
# hash-ipv6-nd-experiment.sh -- can the "hash" cluster architecture (shared VIP, shared
# multicast cluster MAC, per-node hash ownership) work for IPv6 Neighbour Discovery with
# nftables only?  Builds a lab of network namespaces, applies the rules, prints PASS/FAIL per
# check, and removes everything it created (also at start, after an interrupted run).
#
# Needs: root, iproute2, nftables (bookworm 1.0.6 is enough), tcpdump, python3.
# Usage: hash-ipv6-nd-experiment.sh [--keep]     (--keep: leave the lab up at the end;
#        NDX_ONLY=build: only build the lab and leave it up; ~2.5 min for a full run)
#
# Lab (all names start with "ndx"):
#   netns ndxsw: bridges ndxbr0 (client side) and ndxbr1 (server side)
#   netns ndxc : client  ndxc-e  2001:db8:99::10/64        gw to 2001:db8:98::/64 = VIP
#   netns ndx0 : node 0  ndx0-e  2001:db8:99::1/64  + VIP 2001:db8:99::fe (nodad)
#                        ndx0-b  2001:db8:98::1/64  + VIP 2001:db8:98::fe (nodad)
#   netns ndx1 : node 1  ndx1-e  2001:db8:99::2/64  + VIP ...  ndx1-b 2001:db8:98::2/64 + VIP
#   netns ndxs : server  ndxs-e  2001:db8:98::20/64        gw to 2001:db8:99::/64 = VIP
# The nodes' ndxK-e / ndxK-b are macvlan devices on top of the veths (ndxK-l / ndxK-m):
# a macvlan filters multicast frames by its multicast list like a real NIC does (a veth
# does not), so the `ip maddress add` step is really exercised.

set -u
KEEP=0; [ "${1:-}" = "--keep" ] && KEEP=1

VIP=2001:db8:99::fe;  VIPB=2001:db8:98::fe
CLI=2001:db8:99::10;  SRV=2001:db8:98::20
SEED=0x1; NODES=2
NSES="ndxc ndx0 ndx1 ndxs ndxsw"
WORK=$(mktemp -d /tmp/ndx-run.XXXXXX)
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
PASSES=0; FAILS=0; BGPIDS=""

say()  { printf '\n=== %s\n' "$*"; }
pass() { PASSES=$((PASSES+1)); printf 'PASS  %s\n' "$*"; }
fail() { FAILS=$((FAILS+1)); printf 'FAIL  %s\n' "$*"; }
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
inn()  { ip netns exec "$@"; }

cleanup() {
	local p
	for p in $BGPIDS; do kill "$p" 2>/dev/null; done
	for n in $NSES; do ip netns del "$n" 2>/dev/null; done
	# veth peers die with their namespace; nothing of ours lives in the root namespace
	rm -rf "$WORK"
}

# 48-bit MAC -> hex without colons
hexmac() { echo "${1//:/}"; }
# IPv6 address -> 0x + 32 hex digits
hexip6() { $PY -c 'import ipaddress,sys;print("0x"+ipaddress.IPv6Address(sys.argv[1]).packed.hex())' "$1"; }
# 16-bit word that keeps the ICMPv6 checksum valid when the 6-byte option payload changes
# from OWN to CLUSTER: one's-complement sum(OWN) - sum(CLUSTER).  Written into a reserved,
# zero 16-bit word of the same message (bytes 6-7 of NS and NA), the sum is unchanged.
compword() {
	$PY - "$1" "$2" <<'EOF'
import sys
def s(h):
    v = sum(int(h[i:i+4], 16) for i in range(0, 12, 4))
    while v >> 16: v = (v & 0xffff) + (v >> 16)
    return v
own, cl = (a.replace(':', '') for a in sys.argv[1:3])
x = s(own) + (~s(cl) & 0xffff)
while x >> 16: x = (x & 0xffff) + (x >> 16)
print('0x%04x' % x)
EOF
}

# Linux jhash()/reciprocal_scale() in python: owner of address $3.. for seed $1, $2 nodes;
# $4 = 16 (nft: jhash ip6 saddr, all 128 bits) or 4 (xt_cluster: see the notes, first 32 bits)
jowner() {
	$PY - "$@" <<'EOF'
import ipaddress,struct,sys
M=0xffffffff
rol=lambda x,k:((x<<k)|(x>>(32-k)))&M
def mix(a,b,c):
    a=(a-c)&M; a^=rol(c,4); c=(c+b)&M
    b=(b-a)&M; b^=rol(a,6); a=(a+c)&M
    c=(c-b)&M; c^=rol(b,8); b=(b+a)&M
    a=(a-c)&M; a^=rol(c,16); c=(c+b)&M
    b=(b-a)&M; b^=rol(a,19); a=(a+c)&M
    c=(c-b)&M; c^=rol(b,4); b=(b+a)&M
    return a,b,c
def final(a,b,c):
    c^=b; c=(c-rol(b,14))&M
    a^=c; a=(a-rol(c,11))&M
    b^=a; b=(b-rol(a,25))&M
    c^=b; c=(c-rol(b,16))&M
    a^=c; a=(a-rol(c,4))&M
    b^=a; b=(b-rol(a,14))&M
    c^=b; c=(c-rol(b,24))&M
    return c
def jhash(k,iv):
    n=len(k); a=b=c=(0xdeadbeef+n+iv)&M
    while n>12:
        x,y,z=struct.unpack('<3I',k[:12]); a=(a+x)&M;b=(b+y)&M;c=(c+z)&M
        a,b,c=mix(a,b,c); k=k[12:]; n-=12
    if n==0: return c
    k=k+bytes(12-n); x,y,z=struct.unpack('<3I',k)
    return final((a+x)&M,(b+y)&M,(c+z)&M)
seed, n, a, nb = int(sys.argv[1], 0), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
print((jhash(ipaddress.IPv6Address(a).packed[:nb], seed) * n) >> 32)
EOF
}

cap_start() { # ns if file filter...
	local ns=$1 ifc=$2 f=$3; shift 3
	ip netns exec "$ns" tcpdump -lnni "$ifc" -vv -e "$@" >"$WORK/$f" 2>/dev/null &
	BGPIDS="$BGPIDS $!"; echo $! >"$WORK/$f.pid"
}
cap_stop() { local p; sleep 0.5; for f in "$@"; do p=$(cat "$WORK/$f.pid"); kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }

build() {
	say "build lab"
	ip netns add ndxsw; ip -n ndxsw link set lo up
	inn ndxsw sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n ndxsw link add ndxbr0 type bridge
	ip -n ndxsw link add ndxbr1 type bridge
	inn ndxsw sysctl -qw net.ipv6.conf.ndxbr0.disable_ipv6=0   # the MLD querier needs an address
	for n in ndxc ndx0 ndx1 ndxs; do
		ip netns add $n; ip -n $n link set lo up
		inn $n sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	done
	# plain veth for client and server
	ip link add ndxc-e netns ndxc address 02:00:00:00:00:c0 type veth peer name ndxc-p netns ndxsw
	ip link add ndxs-e netns ndxs address 02:00:00:00:01:50 type veth peer name ndxs-p netns ndxsw
	# nodes: veth (lower) + macvlan (the "NIC" the node uses)
	for i in 0 1; do
		ip link add ndx$i-l netns ndx$i address 02:00:00:00:0f:a$i type veth peer name ndx$i-p netns ndxsw
		ip link add ndx$i-m netns ndx$i address 02:00:00:00:1f:a$i type veth peer name ndx$i-q netns ndxsw
		ip -n ndx$i link set ndx$i-l up; ip -n ndx$i link set ndx$i-m up
		ip -n ndx$i link add ndx$i-e link ndx$i-l address 02:00:00:00:00:a$i type macvlan mode bridge
		ip -n ndx$i link add ndx$i-b link ndx$i-m address 02:00:00:00:01:a$i type macvlan mode bridge
		inn ndx$i sysctl -qw net.ipv6.conf.ndx$i-l.disable_ipv6=1 net.ipv6.conf.ndx$i-m.disable_ipv6=1
	done
	for p in ndxc-p ndx0-p ndx1-p; do ip -n ndxsw link set $p master ndxbr0 up; done
	for p in ndxs-p ndx0-q ndx1-q; do ip -n ndxsw link set $p master ndxbr1 up; done
	ip -n ndxsw link set ndxbr0 up; ip -n ndxsw link set ndxbr1 up
	ip -n ndxc link set ndxc-e up; ip -n ndxs link set ndxs-e up
	ip -n ndxc addr add $CLI/64 dev ndxc-e nodad
	ip -n ndxc route add 2001:db8:98::/64 via $VIP
	ip -n ndxs addr add $SRV/64 dev ndxs-e nodad
	ip -n ndxs route add 2001:db8:99::/64 via $VIPB
	# faster NUD on the client for the probe test
	inn ndxc sysctl -qw net.ipv6.neigh.ndxc-e.delay_first_probe_time=1
	for i in 0 1; do
		ip -n ndx$i link set ndx$i-e up; ip -n ndx$i link set ndx$i-b up
		ip -n ndx$i addr add 2001:db8:99::$((i+1))/64 dev ndx$i-e nodad
		ip -n ndx$i addr add 2001:db8:98::$((i+1))/64 dev ndx$i-b nodad
		# VIP: nodad (every node holds it), preferred_lft 0 so self-originated traffic
		# does not pick the VIP as source address
		ip -n ndx$i addr add $VIP/64 dev ndx$i-e nodad preferred_lft 0
		ip -n ndx$i addr add $VIPB/64 dev ndx$i-b nodad preferred_lft 0
		inn ndx$i sysctl -qw net.ipv6.conf.all.forwarding=1
	done
	sleep 1
}

# --- rules -------------------------------------------------------------------------------
# ND rewrite on node $1 for interface $2, VIP $3, own MAC $4, cluster MAC $5, mode $6:
#   comp   : option rewrite + compensation word (the working variant)
#   raw    : option rewrite only (checksum left stale -- negative control)
#   na-only: comp, but NA only (no rewrite of NS sent from the VIP -- negative control)
#   egress : comp, in a netdev egress chain instead of ip6 output
nd_rules() {
	local n=$1 ifc=$2 vip=$3 own=$4 cm=$5 mode=$6 t=ndxnd_${2//-/_}
	local vh ownh cmh x na ns
	vh=$(hexip6 "$vip"); ownh=$(hexmac "$own"); cmh=$(hexmac "$cm"); x=$(compword "$own" "$cm")
	# NA: target (@th,64,128) is the VIP, first option (@th,192,16) is TLLA (type 2, len 1)
	#     holding our own MAC (@th,208,48); reserved word @th,48,16 is 0
	na="icmpv6 type nd-neighbor-advert @th,64,128 $vh @th,48,16 0 @th,192,16 0x0201 @th,208,48 0x$ownh @th,208,48 set 0x$cmh @th,48,16 set $x counter"
	# NS sent from the VIP: first option is SLLA (type 1, len 1)
	ns="icmpv6 type nd-neighbor-solicit ip6 saddr $vip @th,48,16 0 @th,192,16 0x0101 @th,208,48 0x$ownh @th,208,48 set 0x$cmh @th,48,16 set $x counter"
	case $mode in
	raw)     na="icmpv6 type nd-neighbor-advert @th,64,128 $vh @th,192,16 0x0201 @th,208,48 0x$ownh @th,208,48 set 0x$cmh counter"; ns="" ;;
	na-only) ns="" ;;
	esac
	local nsline=""; [ -n "$ns" ] && nsline="oifname \"$ifc\" $ns"
	inn "$n" nft delete table ip6 "$t" 2>/dev/null; inn "$n" nft delete table netdev "$t" 2>/dev/null
	if [ "$mode" = egress ]; then
		inn "$n" nft -f - <<EOF
table netdev $t {
	chain egress { type filter hook egress device "$ifc" priority 0;
		$na
		$ns
	}
}
EOF
	else
		inn "$n" nft -f - <<EOF
table ip6 $t {
	chain output { type filter hook output priority 0;
		oifname "$ifc" $na
		$nsline
	}
}
EOF
	fi
}

# hash ownership on node $1 (node id = $1's digit): frames to the cluster MAC not owned are
# dropped, owned ones become PACKET_HOST.  Mode $2:
#   host   : stateless  jhash ip6 saddr (front) / ip6 daddr (back) ... meta pkttype set host
#   nohost : the same without "meta pkttype set host"                    (negative control)
#   ct     : front hashed like the collection's IPv4 rule, jhash ct original ip6 saddr
#   ctnd   : ct, plus ND (NS/NA) to the cluster MAC exempted from the hash (both nodes take it)
own_rules() {
	local n=$1 k=${1#ndx} mode=${2:-host} set="meta pkttype set host" key="ip6 saddr" nd=""
	[ "$mode" = nohost ] && set=""
	case $mode in ct|ctnd) key="ct original ip6 saddr";; esac
	[ "$mode" = ctnd ] && nd="iifname \"$n-e\" ether daddr $CM icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } meta pkttype set host counter accept"
	inn "$n" nft delete table ip6 ndxown 2>/dev/null
	inn "$n" nft -f - <<EOF
table ip6 ndxown {
	chain prerouting { type filter hook prerouting priority -150;
		$nd
		iifname "$n-e" ether daddr $CM jhash $key mod $NODES seed $SEED $k $set counter accept
		iifname "$n-e" ether daddr $CM counter drop
		iifname "$n-b" ether daddr $CMB jhash ip6 daddr mod $NODES seed $SEED $k $set counter accept
		iifname "$n-b" ether daddr $CMB counter drop
	}
}
EOF
}

all_nd_rules() { # mode
	for i in 0 1; do
		nd_rules ndx$i ndx$i-e $VIP  02:00:00:00:00:a$i "$CM"  "$1"
		nd_rules ndx$i ndx$i-b $VIPB 02:00:00:00:01:a$i "$CMB" "$1"
	done
}
maddr() { # add|del
	for i in 0 1; do
		ip -n ndx$i maddress "$1" "$CM" dev ndx$i-e 2>/dev/null
		ip -n ndx$i maddress "$1" "$CMB" dev ndx$i-b 2>/dev/null
	done
}
# UDP datagrams to the VIP for ~3 s: unlike iputils ping (MSG_CONFIRM), nothing confirms
# reachability, so the neighbour entry goes STALE -> DELAY -> PROBE (unicast NS)
udp_burst() { inn ndxc $PY -c '
import socket,sys,time
s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)
for i in range(7): s.sendto(b"x",(sys.argv[1],9)); time.sleep(0.5)' $VIP; }
flush_neigh() { for n in ndxc ndxs ndx0 ndx1; do ip -n $n -6 neigh flush all 2>/dev/null; done; }
lladdr_of() { ip -n "$1" -6 neigh show "$2" | awk '{for(i=1;i<NF;i++) if($i=="lladdr") print $(i+1)}'; }
nud_of() { ip -n "$1" -6 neigh show "$2" | awk '{print $NF}'; }
lower() { echo "$1" | tr 'A-F' 'a-f'; }
# the words of $1 joined by single spaces (what an unquoted `echo $1` printed, minus globbing)
squash() { local -a w; read -rd '' -a w <<<"$1"; echo "${w[*]}"; }

# --- the test round for one cluster-MAC form -----------------------------------------------
round() {
	CM=$1; CMB=$2
	say "cluster MAC form $CM (server side $CMB)"
	for n in ndx0 ndx1; do inn $n nft flush ruleset; done

	# (c) multicast filter: before `ip maddress add` the (macvlan) NIC drops the frames.
	#     (Done before the first join: in this lab a macvlan kept accepting a group after
	#     `ip maddress del`, so a join-then-leave control would prove nothing.)
	ip -n ndxc -6 neigh replace $VIP dev ndxc-e lladdr "$CM" nud permanent
	inn ndxc ping -c2 -i0.3 -W1 -q $VIP >"$WORK/ping0.txt" 2>&1
	check "[$CM] without 'ip maddress add' the node NICs (macvlan) filter the frames: ping fails" \
		grep -q ' 0 received' "$WORK/ping0.txt"
	maddr add
	inn ndxc ping -c2 -i0.3 -W1 -q $VIP >"$WORK/ping0b.txt" 2>&1
	check "[$CM] after 'ip maddress add $CM dev IF' on the nodes the frames get in" \
		grep -q ' 2 received' "$WORK/ping0b.txt"
	ip -n ndxc -6 neigh del $VIP dev ndxc-e

	# (a) raw option rewrite: does nft fix the ICMPv6 checksum?  (negative control)
	all_nd_rules raw; flush_neigh
	cap_start ndxc ndxc-e raw.txt icmp6
	sleep 1; inn ndxc ping -c2 -W1 -q $VIP >/dev/null 2>&1
	cap_stop raw.txt
	inn ndxc grep Icmp6InCsumErrors /proc/net/snmp6 >"$WORK/csum.txt"
	check "[$CM] raw '@th,208,48 set' leaves a bad ICMPv6 checksum (nft does not fix it)" \
		grep -q 'bad icmp6 cksum.*neighbor advertisement' "$WORK/raw.txt"
	check "[$CM] client drops those NAs: VIP unresolved, Icmp6InCsumErrors > 0 ($(awk '{print $2}' "$WORK/csum.txt"))" \
		bash -c "[ -z '$(lladdr_of ndxc $VIP)' ] && [ $(awk '{print $2}' "$WORK/csum.txt") -gt 0 ]"
	grep -m1 -A2 'bad icmp6 cksum' "$WORK/raw.txt" | sed 's/^/      | /'

	# (b) rewrite + compensation word, no ownership yet
	all_nd_rules comp; flush_neigh
	cap_start ndxc ndxc-e na.txt icmp6
	cap_start ndx0 ndx0-e n0.txt icmp6 and ip6 dst $VIP
	cap_start ndx1 ndx1-e n1.txt icmp6 and ip6 dst $VIP
	sleep 1; inn ndxc ping -c3 -i0.3 -W1 $VIP >"$WORK/ping1.txt" 2>&1
	cap_stop na.txt n0.txt n1.txt
	check "[$CM] rewritten NA (TLLA = cluster MAC) has a valid checksum" \
		grep -q 'icmp6 sum ok.*neighbor advertisement.*tgt is '$VIP "$WORK/na.txt"
	check "[$CM] no NA with a bad checksum" bash -c "! grep -q 'bad icmp6 cksum' '$WORK/na.txt'"
	grep -m1 -A2 "neighbor advertisement, length 32, tgt is $VIP" "$WORK/na.txt" | sed 's/^/      | /'
	check "[$CM] client: ip -6 neigh $VIP = cluster MAC ($(lladdr_of ndxc $VIP))" \
		[ "$(lladdr_of ndxc $VIP)" = "$(lower "$CM")" ]
	check "[$CM] client's echo requests go to the cluster MAC" \
		grep -q "> $(lower "$CM"), .*echo request" "$WORK/na.txt"
	check "[$CM] node 0 receives the echo requests ($(grep -c 'echo request' "$WORK/n0.txt"))" \
		[ "$(grep -c 'echo request' "$WORK/n0.txt")" -ge 3 ]
	check "[$CM] node 1 receives the echo requests ($(grep -c 'echo request' "$WORK/n1.txt"))" \
		[ "$(grep -c 'echo request' "$WORK/n1.txt")" -ge 3 ]
	check "[$CM] without ownership both nodes answer (DUP replies)" grep -q 'DUP' "$WORK/ping1.txt"

	# (d) ownership: exactly one node answers
	own_rules ndx0; own_rules ndx1
	cap_start ndxc ndxc-e own.txt icmp6
	sleep 1; inn ndxc ping -c6 -i0.2 -W1 $VIP >"$WORK/ping2.txt" 2>&1
	cap_stop own.txt
	OWNMAC=$(grep 'echo reply' "$WORK/own.txt" | awk '{print $2}' | sort -u)
	check "[$CM] with jhash ownership: 6/6 replies, no DUP" \
		bash -c "grep -q '6 received' '$WORK/ping2.txt' && ! grep -q DUP '$WORK/ping2.txt'"
	check "[$CM] exactly one node answers (reply source MACs: $(squash "$OWNMAC"))" \
		[ "$(echo "$OWNMAC" | wc -w)" = 1 ]
	OWNER=ndx${OWNMAC: -1}
	printf '      | owner of %s is %s; counters:\n' "$CLI" "$OWNER"
	for n in ndx0 ndx1; do inn $n nft list chain ip6 ndxown prerouting | grep -- '-e"' | sed "s/^\s*/      | $n: /"; done

	# (e) NUD: STALE entry, unicast NS to the cluster MAC, entry keeps the cluster MAC
	ip -n ndxc -6 neigh replace $VIP dev ndxc-e lladdr "$CM" nud stale
	cap_start ndxc ndxc-e nud.txt icmp6
	sleep 1; udp_burst; sleep 1
	cap_stop nud.txt
	check "[$CM] NUD: client probes with unicast NS to the cluster MAC" \
		grep -q "> $(lower "$CM"), .*neighbor solicitation, length 32, who has $VIP" "$WORK/nud.txt"
	check "[$CM] NUD: exactly one node (the owner of the probe's source) answers the unicast NS; NA has no TLLA option (length 24)" \
		bash -c "[ \$(grep -c '$VIP > .*neighbor advertisement, length 24, tgt is $VIP' '$WORK/nud.txt') = 1 ]"
	grep -m1 "> $(lower "$CM"), .*who has $VIP" "$WORK/nud.txt" | sed 's/^/      | /'
	grep -m1 "$VIP > .*neighbor advertisement, length 24, tgt is $VIP" "$WORK/nud.txt" | sed 's/^/      | /'
	check "[$CM] NUD: entry is $(nud_of ndxc $VIP) with the cluster MAC afterwards" \
		bash -c "[ '$(lladdr_of ndxc $VIP)' = '$(lower "$CM")' ] && [ '$(nud_of ndxc $VIP)' = REACHABLE ]"

	# (f) a node's own NS from the VIP (it resolves the client while answering from the VIP)
	ip -n "$OWNER" -6 neigh flush all
	cap_start ndxc ndxc-e ns.txt icmp6
	sleep 1; inn "$OWNER" ping -c1 -W1 -I $VIP $CLI >/dev/null 2>&1
	cap_stop ns.txt
	check "[$CM] node NS from the VIP carries SLLA = cluster MAC, checksum ok" \
		grep -A1 "icmp6 sum ok.*$VIP > .*neighbor solicitation" "$WORK/ns.txt" | grep -q "link-address option (1).*: $(lower "$CM")"
	grep -m1 -A1 "$VIP > .*neighbor solicitation" "$WORK/ns.txt" | sed 's/^/      | /'
	check "[$CM] client keeps $VIP -> cluster MAC after the node's NS ($(lladdr_of ndxc $VIP))" \
		[ "$(lladdr_of ndxc $VIP)" = "$(lower "$CM")" ]
	# negative control: without the NS rewrite the client learns the node's own MAC
	for i in 0 1; do nd_rules ndx$i ndx$i-e $VIP 02:00:00:00:00:a$i "$CM" na-only; done
	ip -n "$OWNER" -6 neigh flush all
	inn "$OWNER" ping -c1 -W1 -I $VIP $CLI >/dev/null 2>&1; sleep 0.3
	check "[$CM] (control) without the NS rewrite the client's entry flips to the node's MAC ($(lladdr_of ndxc $VIP))" \
		bash -c "[ '$(lladdr_of ndxc $VIP)' != '$(lower "$CM")' ]"
	all_nd_rules comp

	# (f2) hashing on conntrack (as the collection's IPv4 rule does): ND is untracked, so the
	#      unicast NS (NUD) and the client's NA to the VIP miss the hash and are dropped
	for m in ct ctnd; do
		own_rules ndx0 $m; own_rules ndx1 $m
		ip -n ndxc -6 neigh replace $VIP dev ndxc-e lladdr "$CM" nud stale
		cap_start ndxc ndxc-e ct$m.txt icmp6
		sleep 1; udp_burst; sleep 1
		ip -n "$OWNER" -6 neigh flush all
		inn "$OWNER" ping -c1 -W2 -I $VIP $CLI >"$WORK/ct$m.ping" 2>&1
		cap_stop ct$m.txt
		NA=$(grep -c "$VIP > .*neighbor advertisement, length 24, tgt is $VIP" "$WORK/ct$m.txt")
		if [ $m = ct ]; then
			check "[$CM] (control) 'jhash ct original ip6 saddr' without ND exemption: unicast NUD NS unanswered ($NA NAs) and the node's VIP-sourced resolution fails" \
				bash -c "[ $NA = 0 ] && grep -q ' 0 received' '$WORK/ct$m.ping'"
		else
			check "[$CM] 'jhash ct original ip6 saddr' with ND exempted: NUD NS answered ($NA NAs), VIP-sourced resolution works, entry = $(lladdr_of ndxc $VIP)" \
				bash -c "[ $NA -ge 1 ] && grep -q ' 1 received' '$WORK/ct$m.ping' && [ '$(lladdr_of ndxc $VIP)' = '$(lower "$CM")' ]"
		fi
	done
	own_rules ndx0; own_rules ndx1

	# (g) local TCP on the VIP needs PACKET_HOST
	for n in ndx0 ndx1; do
		ip netns exec $n $PY -c '
import socket,sys
s=socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind((sys.argv[1],8080)); s.listen(8)
while True:
    c,_=s.accept(); c.sendall(sys.argv[2].encode()); c.close()' $VIP $n &
		BGPIDS="$BGPIDS $!"
	done
	sleep 0.5
	tcp() { inn ndxc $PY -c '
import socket,sys
try: print(socket.create_connection((sys.argv[1],8080),timeout=2).recv(16).decode())
except Exception as e: print("ERR",e)' $VIP; }
	flush_neigh; inn ndxc ping -c1 -W1 -q $VIP >/dev/null 2>&1
	R=$(tcp)
	check "[$CM] TCP to the VIP answered by the owner only (got '$R')" [ "$R" = "$OWNER" ]
	own_rules ndx0 nohost; own_rules ndx1 nohost
	R=$(tcp)
	check "[$CM] (control) without 'meta pkttype set host' TCP to the VIP fails (got '$R')" \
		bash -c "[[ '$R' == ERR* ]]"
	own_rules ndx0; own_rules ndx1

	# (h) forwarding client -> server via the VIP as gateway
	flush_neigh
	cap_start ndxs ndxs-e fwd.txt icmp6 and ip6 src $CLI
	sleep 1; inn ndxc ping -c4 -i0.3 -W1 $SRV >"$WORK/ping3.txt" 2>&1
	cap_stop fwd.txt
	FWMAC=$(grep 'echo request' "$WORK/fwd.txt" | awk '{print $2}' | sort -u)
	check "[$CM] forwarding through the VIP: 4/4 replies from the server, no DUP" \
		bash -c "grep -q '4 received' '$WORK/ping3.txt' && ! grep -q DUP '$WORK/ping3.txt'"
	check "[$CM] the server sees each request once, from one node ($(squash "$FWMAC"); $(grep -c 'echo request' "$WORK/fwd.txt") requests)" \
		bash -c "[ $(grep -c 'echo request' "$WORK/fwd.txt") = 4 ] && [ $(echo "$FWMAC" | wc -w) = 1 ]"
	check "[$CM] server resolved the server-side VIP to the cluster MAC ($(lladdr_of ndxs $VIPB))" \
		[ "$(lladdr_of ndxs $VIPB)" = "$(lower "$CMB")" ]
	own_rules ndx0 nohost; own_rules ndx1 nohost
	inn ndxc ping -c2 -i0.3 -W1 -q $SRV >"$WORK/ping4.txt" 2>&1
	check "[$CM] (control) without 'meta pkttype set host' the node does not forward (ip6_forward drops PACKET_MULTICAST)" \
		grep -q ' 0 received' "$WORK/ping4.txt"
	own_rules ndx0; own_rules ndx1

	# (i) the same rewrite from a netdev egress chain instead of ip6 output
	for i in 0 1; do
		inn ndx$i nft delete table ip6 ndxnd_ndx${i}_e
		nd_rules ndx$i ndx$i-e $VIP 02:00:00:00:00:a$i "$CM" egress
	done
	flush_neigh
	cap_start ndxc ndxc-e eg.txt icmp6
	sleep 1; inn ndxc ping -c2 -i0.3 -W1 -q $VIP >/dev/null 2>&1
	cap_stop eg.txt
	check "[$CM] netdev egress variant: NA rewritten, checksum ok, client has cluster MAC" \
		bash -c "grep -q 'icmp6 sum ok.*neighbor advertisement.*tgt is $VIP' '$WORK/eg.txt' && [ '$(lladdr_of ndxc $VIP)' = '$(lower "$CM")' ]"
	for i in 0 1; do inn ndx$i nft delete table netdev ndxnd_ndx${i}_e; done
	# shellcheck disable=SC2046  # jobs -p prints one PID per line: splitting intended
	kill $(jobs -p) 2>/dev/null; wait 2>/dev/null
	maddr del
}

# --- MLD snooping on the bridge: a querier is present -------------------------------------
snoop() {
	CM=$1; CMB=$2
	say "bridge with MLD snooping and an active querier (cluster MAC $CM)"
	for n in ndx0 ndx1; do inn $n nft flush ruleset; done
	maddr add; all_nd_rules comp; own_rules ndx0; own_rules ndx1
	ip -n ndxsw link set ndxbr0 type bridge mcast_snooping 1 mcast_querier 1 mcast_query_response_interval 100 mcast_startup_query_interval 200
	flush_neigh
	# wait (up to ~30 s) until the bridge's own MLD querier is active
	for t in $(seq 15); do
		inn ndxc ping -c3 -i0.3 -W1 -q $VIP >"$WORK/sn1.txt" 2>&1
		grep -q ' 0 received' "$WORK/sn1.txt" && break
		sleep 1
	done
	echo "      | (querier active after ~$((t*3)) s)"
	check "[snoop $CM] with a querier, frames to the cluster MAC (unicast IPv6 dst) are NOT flooded: ping fails" \
		grep -q ' 0 received' "$WORK/sn1.txt"
	ip -n ndxsw -6 neigh >/dev/null
	printf '      | bridge mdb: %s\n' "$(bridge -n ndxsw mdb show dev ndxbr0 | tr '\n' ';')"
	# joining an MLD group whose MAC is the cluster MAC does not help a Linux bridge: it
	# forwards by IPv6 destination (the VIP), not by MAC
	G=$($PY -c 'import sys;m=sys.argv[1].split(":");print("ff05::%s%s:%s%s"%tuple(m[2:6]))' "$CM")
	for n in ndx0 ndx1; do
		ip netns exec $n $PY -c '
import socket,struct,sys,time
s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_JOIN_GROUP,socket.inet_pton(socket.AF_INET6,sys.argv[1])+struct.pack("@I",socket.if_nametoindex(sys.argv[2])))
time.sleep(30)' "$G" $n-e & BGPIDS="$BGPIDS $!"
	done
	sleep 2
	inn ndxc ping -c3 -i0.3 -W1 -q $VIP >"$WORK/sn2.txt" 2>&1
	printf '      | bridge mdb after joining %s: %s\n' "$G" "$(bridge -n ndxsw mdb show dev ndxbr0 | tr '\n' ';')"
	check "[snoop $CM] nodes joining MLD group $G (same MAC) does not help on a Linux bridge" \
		grep -q ' 0 received' "$WORK/sn2.txt"
	for p in ndx0-p ndx1-p; do bridge -n ndxsw link set dev $p mcast_router 2; done
	inn ndxc ping -c3 -i0.3 -W1 -q $VIP >"$WORK/sn3.txt" 2>&1
	check "[snoop $CM] node ports as permanent multicast-router ports: works again" \
		grep -q ' 3 received' "$WORK/sn3.txt"
	for p in ndx0-p ndx1-p; do bridge -n ndxsw link set dev $p mcast_router 1; done
	ip -n ndxsw link set ndxbr0 type bridge mcast_snooping 0
	inn ndxc ping -c3 -i0.3 -W1 -q $VIP >"$WORK/sn4.txt" 2>&1
	check "[snoop $CM] snooping off: works" grep -q ' 3 received' "$WORK/sn4.txt"
	ip -n ndxsw link set ndxbr0 type bridge mcast_snooping 1 mcast_querier 0
	# shellcheck disable=SC2046  # jobs -p prints one PID per line: splitting intended
	kill $(jobs -p) 2>/dev/null; wait 2>/dev/null
}

# --- iptables side ---------------------------------------------------------------------------
# owner (node digit) of each client source address ::11..::18 as seen from the client
owners() {
	local a out=""
	for a in 11 12 13 14 15 16 17 18; do
		cap_start ndxc ndxc-e o$a.txt icmp6 and ip6 dst 2001:db8:99::$a and ip6[40] == 129
		sleep 0.7; inn ndxc ping -c1 -W1 -q -I 2001:db8:99::$a $VIP >/dev/null 2>&1
		cap_stop o$a.txt
		out="$out $a:$(awk '{print substr($2,length($2))}' "$WORK/o$a.txt" | sort -u | tr -d '\n')"
	done
	squash "$out"
}
iptables_side() {
	say "ip6tables: ownership with -m cluster (same numbers as nft jhash?), no payload mangling"
	for n in ndx0 ndx1; do inn $n nft flush ruleset; done
	CM=33:33:01:02:03:04; CMB=33:33:01:02:03:05
	for a in 11 12 13 14 15 16 17 18; do ip -n ndxc addr add 2001:db8:99::$a/64 dev ndxc-e nodad; done
	maddr add; all_nd_rules comp          # the one small nft table beside ip6tables
	own_rules ndx0; own_rules ndx1; flush_neigh
	NFT=$(owners)
	for i in 0 1; do
		inn ndx$i nft delete table ip6 ndxown
		# the collection's IPv4 layout, plus the ND exemption IPv6 needs
		inn ndx$i ip6tables-restore <<EOF
*mangle
:PREROUTING ACCEPT [0:0]
:FWCLUSTER-OWN - [0:0]
-A PREROUTING -d 2001:db8:99::$((i+1))/128 -i ndx$i-e -j ACCEPT
-A PREROUTING -d fe80::/10 -i ndx$i-e -j ACCEPT
-A PREROUTING -d ff00::/8 -i ndx$i-e -j ACCEPT
-A PREROUTING -i ndx$i-e -p ipv6-icmp -m icmp6 --icmpv6-type neighbour-solicitation -j ACCEPT
-A PREROUTING -i ndx$i-e -p ipv6-icmp -m icmp6 --icmpv6-type neighbour-advertisement -j ACCEPT
-A PREROUTING -i ndx$i-e -j FWCLUSTER-OWN
-A PREROUTING -i ndx$i-e -m mark ! --mark 0x40000000/0x40000000 -j DROP
-A FWCLUSTER-OWN -m cluster --cluster-local-nodemask $((1<<i)) --cluster-total-nodes 2 --cluster-hash-seed $SEED -j MARK --set-xmark 0x40000000/0x40000000
COMMIT
EOF
	done
	flush_neigh
	IPT=$(owners)
	echo "      | owners by nft  jhash ip6 saddr mod 2 seed $SEED : $NFT"
	echo "      | owners by ip6tables -m cluster (nodemask 1<<k)  : $IPT"
	P16=""; P4=""
	for a in 11 12 13 14 15 16 17 18; do
		P16="$P16 $a:$(jowner $SEED 2 2001:db8:99::$a 16)"; P4="$P4 $a:$(jowner $SEED 2 2001:db8:99::$a 4)"
	done
	echo "      | python jhash model, 128-bit key (nft)          : $P16"
	echo "      | python jhash model, first 32 bits only         : $P4"
	check "nft 'jhash ip6 saddr mod 2 seed $SEED' = Linux jhash of the 16-byte address (8 addresses, one answer each)" \
		[ "$NFT" = "$(squash "$P16")" ]
	check "ip6tables -m cluster hashes only the first 32 bits of the IPv6 source (matches the 4-byte model)" \
		[ "$IPT" = "$(squash "$P4")" ]
	check "so xt_cluster and nft jhash do NOT agree for IPv6 (they do for IPv4)" [ "$NFT" != "$IPT" ]
	# more evidence for the 32-bit key: vary the seed, predict with the 4-byte model
	OK=1; OUT=""
	for sd in 2 3 4 5 6 7; do
		for i in 0 1; do inn ndx$i ip6tables -t mangle -R FWCLUSTER-OWN 1 -m cluster --cluster-local-nodemask $((1<<i)) --cluster-total-nodes 2 --cluster-hash-seed $sd -j MARK --set-xmark 0x40000000/0x40000000; done
		inn ndx0 conntrack -F >/dev/null 2>&1; inn ndx1 conntrack -F >/dev/null 2>&1
		cap_start ndxc ndxc-e sd$sd.txt icmp6 and ip6[40] == 129
		sleep 0.7; inn ndxc ping -c1 -W1 -q -I 2001:db8:99::13 $VIP >/dev/null 2>&1
		cap_stop sd$sd.txt
		GOT=$(awk '{print substr($2,length($2))}' "$WORK/sd$sd.txt" | sort -u | tr -d '\n')
		EXP=$(jowner $sd 2 2001:db8:99::13 4); OUT="$OUT seed$sd:$GOT/$EXP"
		[ "$GOT" = "$EXP" ] || OK=0
	done
	check "xt_cluster owner of ::13 for seeds 2..7 = 4-byte jhash model (got/expected:$OUT)" [ $OK = 1 ]
	cap_start ndxc ndxc-e ipt.txt icmp6
	sleep 1; inn ndxc ping -c3 -i0.3 -W1 -q $VIP >/dev/null 2>&1
	cap_stop ipt.txt
	check "with ip6tables for ownership, the nft ND table still gives the client the cluster MAC ($(lladdr_of ndxc $VIP))" \
		[ "$(lladdr_of ndxc $VIP)" = "$(lower "$CM")" ]
	inn ndx0 ip6tables-save -t mangle | grep -- '^-A' | sed 's/^/      | /'
	XT=$(find /usr/lib/x86_64-linux-gnu/xtables/ -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sed -n 's/^lib\(xt\|ip6t\)_\([A-Z][A-Za-z0-9]*\)\.so$/\2/p' | sort -u | tr '\n' ' ')
	echo "      | ip6tables targets installed: $XT"
	check "no ip6tables target writes arbitrary payload/ICMPv6 option bytes (only header fields: HL, TOS/DSCP, TCPMSS/TCPOPTSTRIP, MARK...)" \
		bash -c "! echo '$XT' | grep -qwE 'PAYLOAD|MANGLE|ND|ICMPV6|U32'"
	for i in 0 1; do inn ndx$i ip6tables -t mangle -F; inn ndx$i ip6tables -t mangle -X; done
	maddr del
}

trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup; WORK=$(mktemp -d /tmp/ndx-run.XXXXXX)
say "versions"
uname -r; nft --version; ip -V; tcpdump --version 2>&1 | head -1; ip6tables -V
build
if [ "${NDX_ONLY:-}" = build ]; then trap - EXIT; rm -rf "$WORK"; exit 0; fi
round 33:33:01:02:03:04 33:33:01:02:03:05
round 01:00:5e:01:02:03 01:00:5e:01:02:04
snoop 33:33:01:02:03:04 33:33:01:02:03:05
iptables_side
say "result: $PASSES passed, $FAILS failed"
if [ $KEEP = 1 ]; then trap - EXIT; echo "lab kept; remove with: for n in $NSES; do ip netns del \$n; done"; fi
[ $FAILS = 0 ]
