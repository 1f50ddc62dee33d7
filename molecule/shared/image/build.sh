#!/usr/bin/env bash
# Build the lab's node image: Debian bookworm from debootstrap, imported into
# podman. No container registry is reachable, so the image is made locally.
# Reused when it exists; FWCLUSTER_REBUILD_IMAGE=1 forces a rebuild.
set -euo pipefail

image=${FWCLUSTER_IMAGE:-localhost/fwcluster-node:bookworm}
mirror=${FWCLUSTER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/../containers.conf}

if [[ ${FWCLUSTER_REBUILD_IMAGE:-0} != 1 ]] && podman image exists "$image"; then
    echo "lab image $image already present"
    exit 0
fi

# What the lab needs inside: systemd as init, the daemons under test, python3
# for Ansible, and the small tools the scenarios use to push traffic.
packages=(
    systemd systemd-sysv dbus iproute2 iputils-ping procps python3 python3-apt
    iptables arptables keepalived conntrackd conntrack
    netcat-openbsd tcpdump
)

rootfs=$(mktemp -d /var/tmp/fwcluster-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "debootstrap bookworm into $rootfs"
debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
    bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2
    exit 1
}
rm -f "$rootfs.log"

# A container has no console to log in on, and the daemons under test are
# started by the roles, not at first boot.
chroot "$rootfs" systemctl mask getty@tty1.service console-getty.service \
    systemd-networkd-wait-online.service >/dev/null 2>&1 || true
chroot "$rootfs" systemctl disable keepalived.service conntrackd.service >/dev/null 2>&1 || true
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

echo "importing into podman as $image"
tar -C "$rootfs" -c . | podman import \
    --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=podman' \
    --change 'STOPSIGNAL SIGRTMIN+3' - "$image"
