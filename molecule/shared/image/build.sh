#!/usr/bin/env bash
# Build a lab node image: Debian from debootstrap, imported into podman. No
# container registry is reachable, so the image is made locally. The image's
# tag names the release: localhost/fwcluster-node:bookworm (Debian 12, the
# default) or localhost/fwcluster-node:trixie (Debian 13).
# Reused when it exists and was built by this very script (the image's
# fwcluster.recipe label holds the script's digest); FWCLUSTER_REBUILD_IMAGE=1
# forces a rebuild.
set -euo pipefail

image=${FWCLUSTER_IMAGE:-localhost/fwcluster-node:bookworm}
mirror=${FWCLUSTER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${image##*:}
case $suite in
bookworm | trixie) ;;
*) echo "build.sh: the image tag names the Debian release (bookworm or trixie), not '$suite'" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/../containers.conf}

code_cache=$here/../../../scripts/lib/ansiballz_code_cache.py
recipe=$(cat "$here/build.sh" "$code_cache" | sha256sum | cut -c1-16)
if [[ ${FWCLUSTER_REBUILD_IMAGE:-0} != 1 ]] && podman image exists "$image"; then
    built_by=$(podman image inspect --format '{{ index .Labels "fwcluster.recipe" }}' "$image" 2>/dev/null || true)
    if [[ $built_by == "$recipe" ]]; then
        echo "lab image $image already present"
        exit 0
    fi
    echo "lab image $image was built by another version of build.sh: rebuilding"
fi

# What the lab needs inside: systemd as init, sshd (the controller reaches the
# lab over SSH, as it reaches production), the daemons under test, python3 for
# Ansible, and the small tools the scenarios use to push traffic.
packages=(
    systemd systemd-sysv dbus openssh-server iproute2 iputils-ping procps python3 python3-apt
    iptables arptables nftables keepalived conntrackd conntrack
    netcat-openbsd tcpdump
)

rootfs=$(mktemp -d /var/tmp/fwcluster-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "debootstrap $suite into $rootfs"
debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
    "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
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

# Ansible's modules compiled once per lab, not twice per run (the hook's
# docstring says why; about half of a module run's CPU time).
site=/usr/lib/python3/dist-packages
install -m 0644 "$code_cache" "$rootfs$site/fwcluster_ansiballz_code_cache.py"
echo 'import fwcluster_ansiballz_code_cache' >"$rootfs$site/fwcluster-ansiballz-code-cache.pth"

# Each container makes its own SSH host keys at its first boot; the keys made
# by debootstrap would otherwise be shared by every lab host.
rm -f "$rootfs"/etc/ssh/ssh_host_*
mkdir -p "$rootfs/etc/systemd/system/ssh.service.d"
printf '%s\n' '[Service]' 'ExecStartPre=' 'ExecStartPre=/usr/bin/ssh-keygen -A' 'ExecStartPre=/usr/sbin/sshd -t' \
    >"$rootfs/etc/systemd/system/ssh.service.d/fwcluster-hostkeys.conf"
chroot "$rootfs" systemctl enable ssh.service >/dev/null

echo "importing into podman as $image"
tar -C "$rootfs" -c . | podman import \
    --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=podman' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    --change "LABEL fwcluster.recipe=$recipe" - "$image"
