#!/usr/bin/env bash
# Remove everything an interrupted lab run may have left behind:
#   - every podman container labelled fwcluster.lab=1 (all scenarios),
#   - every podman network labelled fwcluster.lab=1,
#   - network namespaces whose name starts with "fwcluster",
#   - leftover image-build temp dirs /var/tmp/fwcluster-rootfs.*,
#   - the lab runs' SSH key pairs and known host keys (build/lab/).
# Safe to run when nothing is there. Needs root (rootful podman).
#   - molecule's state of this repository's scenarios (state.yml and
#     instance_config.yml in ~/.ansible/tmp/molecule.*.<scenario>), so that a
#     following `molecule create` really creates instead of skipping.
#
#   scripts/lab-cleanup.sh          # remove
#   scripts/lab-cleanup.sh --dry-run
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/../molecule/shared/containers.conf}
label=fwcluster.lab=1
dry=0
containers=()
networks=()
namespaces=()
[[ ${1:-} == --dry-run || ${1:-} == -n ]] && dry=1

run() {
    echo "+ $*"
    if [[ $dry == 0 ]]; then "$@"; fi
}

if command -v podman >/dev/null 2>&1; then
    mapfile -t containers < <(podman ps --all --quiet --filter "label=$label" --format '{{.Names}}')
    if (( ${#containers[@]} )); then
        run podman rm --force --ignore --time 0 "${containers[@]}"
    fi
    mapfile -t networks < <(podman network ls --quiet --filter "label=$label")
    for net in "${networks[@]}"; do
        run podman network rm --force "$net"
    done
else
    echo "podman not installed: no containers or networks to remove"
fi

if command -v ip >/dev/null 2>&1; then
    mapfile -t namespaces < <(ip netns list 2>/dev/null | awk '$1 ~ /^fwcluster/ {print $1}')
    for ns in "${namespaces[@]}"; do
        run ip netns delete "$ns"
    done
fi

shopt -s nullglob
for dir in /var/tmp/fwcluster-rootfs.*; do
    # A build in progress (molecule/shared/image/build.sh) still uses it.
    if pgrep -f -- "${dir%.log}" >/dev/null 2>&1; then
        echo "skip $dir: in use by a running build"
        continue
    fi
    # debootstrap may have left /proc, /sys or /dev mounted inside.
    while read -r mnt; do
        run umount --lazy "$mnt"
    done < <(awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
    run rm -rf --one-file-system "$dir"
done

if [[ -d $here/../build/lab ]]; then
    run rm -rf "$here/../build/lab"
fi

# Molecule keeps "created: true" in its state after an interrupted run.
cache=${MOLECULE_EPHEMERAL_CACHE:-$HOME/.ansible/tmp}
for scenario_dir in "$here"/../molecule/*/molecule.yml; do
    scenario=$(basename "$(dirname "$scenario_dir")")
    for f in "$cache"/molecule.*."$scenario"/state.yml "$cache"/molecule.*."$scenario"/instance_config.yml; do
        run rm -f "$f"
    done
done

echo "lab cleanup done: ${#containers[@]} container(s), ${#networks[@]} network(s), ${#namespaces[@]} netns"
