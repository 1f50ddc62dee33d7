#!/usr/bin/env bash
# Build the lab, deploy an example firewall cluster in it, check it, and show
# it working. Run as root on Debian 12:
#     sudo ./scripts/demo.sh [SCENARIO]        (default: primary_backup)
#
# Installs what it needs (scripts/setup.sh), removes leftovers of earlier labs
# (scripts/lab-cleanup.sh), then runs `molecule create`, `prepare`,
# `converge` and `verify` of the scenario, prints which node holds the
# virtual addresses, conntrackd's statistics, and one request from the
# client through the cluster to the server. The lab is left running.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

case ${1:-} in
    -h | --help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
esac
scenario=${1:-primary_backup}
if [[ ! -f molecule/$scenario/molecule.yml ]]; then
    echo "demo.sh: no scenario molecule/$scenario/molecule.yml; scenarios:" >&2
    for f in molecule/*/molecule.yml; do [[ -f $f ]] && basename "$(dirname "$f")" >&2; done
    exit 2
fi

step() { printf '\n==== %s ====\n' "$*"; }

step "setup"
scripts/setup.sh
# shellcheck source=scripts/env.sh
. scripts/env.sh

step "removing leftovers of earlier labs"
molecule destroy -s "$scenario" >/dev/null 2>&1 || true
if [[ -f scripts/lab-cleanup.sh ]]; then bash scripts/lab-cleanup.sh; fi

for action in create prepare converge verify; do
    step "molecule $action -s $scenario"
    molecule "$action" -s "$scenario"
done

# What the scenario is made of, from its molecule.yml and the inventory it
# links: firewall nodes, client, server, the VIPs, the service port.
step "the cluster"
nodes='' vips='' client='' server='' server_ip='' server_ip6='' port=''
eval "$(python3 - "$scenario" <<'PY'
import pathlib, shlex, sys
import yaml
sys.path.insert(0, "scripts/lib")
from lab_scenario import inventory_links, molecule_config

scenario = sys.argv[1]
sdir = pathlib.Path("molecule") / scenario
mol = molecule_config(sdir)
platforms = mol.get("platforms", [])
lab = [p for p in platforms if "lab" in (p.get("groups") or [])]
nodes = [p["name"] for p in platforms if p not in lab]
client = next((p for p in lab if "client" in p["name"]), None)
server = next((p for p in lab if "server" in p["name"]), None)

vips = []
gv = inventory_links(sdir).get("group_vars")
if gv:
    for f in sorted(gv.rglob("*.yml")):
        data = yaml.safe_load(f.read_text()) or {}
        for seg, spec in (data.get("fwcluster_segments") or {}).items():
            if isinstance(spec, dict) and spec.get("vip"):
                # an address, or a list of one per family (dual stack)
                for vip in spec["vip"] if isinstance(spec["vip"], list) else [spec["vip"]]:
                    vips.append(f"{seg}={str(vip).split('/')[0]}")
port = 8080
labvars = sdir / "lab.yml"
if labvars.is_file():
    port = (yaml.safe_load(labvars.read_text()) or {}).get("lab_echo_port", port)

def out(k, v):
    print(f"{k}={shlex.quote(v)}")

out("nodes", " ".join(nodes))
out("vips", " ".join(vips))
out("client", client["name"] if client else "")
out("server", server["name"] if server else "")
out("server_ip", (server.get("networks") or [{}])[0].get("ip", "") if server else "")
out("server_ip6", (server.get("networks") or [{}])[0].get("ip6", "") if server else "")
out("port", str(port))
PY
)"

for vip in $vips; do
    seg=${vip%%=*} addr=${vip#*=} holders=()
    for n in $nodes; do
        # Read the addresses first: under pipefail, `... | grep -q` fails when
        # grep exits at the first match and ip dies of SIGPIPE.
        addrs=$(podman exec "$n" ip -o addr show 2>/dev/null || true)
        if grep -qF " $addr/" <<<"$addrs"; then holders+=("$n"); fi
    done
    printf '  VIP %-16s (%s) held by: %s\n' "$addr" "$seg" "${holders[*]:-nobody}"
done
for n in $nodes; do
    state=$(podman exec "$n" systemctl is-active keepalived 2>/dev/null || true)
    printf '  %-10s keepalived: %s\n' "$n" "${state:-?}"
done

step "conntrackd -s (state replication)"
for n in $nodes; do
    echo "  $n:"
    if out=$(podman exec "$n" conntrackd -s 2>&1); then
        # The active-connection count of each cache, and the link's counters.
        printf '%s\n' "$out" | awk '
            /^cache (internal|external):/ { cache = $2 }
            /^current active connections:/ { printf "    %-10s %s active connections\n", cache, $NF }
            /traffic \(active device=/ { link = 1; print "    " $0; next }
            link && NF == 0 { link = 0 }
            link { sub(/^ +/, ""); print "      " $0 }
            /Lost msgs/ { sub(/^ +/, ""); print "    " $0 }'
    else
        echo "    conntrackd not running here (${out%%$'\n'*})"
    fi
done

if [[ -n $client && -n $server_ip ]]; then
    step "one request: $client -> cluster -> $server ($server_ip:$port)"
    podman exec "$client" flowprobe connect --to "$server_ip:$port" --timeout 5 --whoami \
        || podman exec "$client" sh -c "echo hello | nc -w 5 $server_ip $port"
fi
if [[ -n $client && -n $server_ip6 ]]; then
    step "one IPv6 request (routed, not translated): $client -> cluster -> $server ([$server_ip6]:$port)"
    podman exec "$client" flowprobe connect --to "[$server_ip6]:$port" --timeout 5 --whoami
fi

# The example inventory reaches the lab over SSH as it would reach real
# nodes: the status playbook, run as an operator runs it.
inventory=inventories/$scenario
if [[ -f $inventory/hosts.yml ]]; then
    step "ansible-playbook -i $inventory fwcluster.netfilter.status"
    ansible-playbook -i "$inventory" fwcluster.netfilter.status
fi

first=${nodes%% *}
first_address=$(ansible-inventory -i "$inventory" --host "$first" 2>/dev/null \
    | python3 -c 'import json, sys; print(json.load(sys.stdin).get("ansible_host", "?"))' || echo "?")
step "the lab is running"
cat <<EOF
  Look around:   podman ps --filter label=fwcluster.lab=1
                 ssh -i build/lab/$scenario/id_ed25519 -o UserKnownHostsFile=build/lab/$scenario/known_hosts root@$first_address
                 ansible-playbook -i $inventory fwcluster.netfilter.status
  Tear it down:  . scripts/env.sh && molecule destroy -s $scenario
             or: sudo scripts/lab-cleanup.sh
EOF
