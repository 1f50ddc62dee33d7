#!/usr/bin/env bash
# Install everything the lab and the tests of fwcluster.netfilter need, on a
# fresh Debian 12 machine, as root. Idempotent: a second run changes nothing
# and takes a few seconds.
#
#   1. Debian packages (podman, runc, debootstrap, iptables, ...), only those
#      missing; apt-get update only when something is missing. keepalived and
#      conntrackd serve as config checkers: they are left disabled, stopped.
#   2. The venv .venv from requirements.txt; pip is skipped while
#      requirements.txt and the interpreter are unchanged (hash stamp in .venv).
#      Ansible's module payloads compiled once (scripts/lib/ansiballz_code_cache.py).
#   3. ansible-test's pip bootstrap script, which it would download from a host
#      these machines cannot reach (see scripts/lib/get_pip_standin.py).
#   4. build/collections/ansible_collections/fwcluster/netfilter -> this repo.
#   5. The lab's node images, Debian 12 (bookworm) and Debian 13 (trixie)
#      (molecule/shared/image/build.sh reuses each).
#
# Usage: scripts/setup.sh [--no-image]
#   --no-image   skip step 5 (nothing that needs the lab will run)
# Environment: FWCLUSTER_PYTHON (default /usr/bin/python3), and those of
# molecule/shared/image/build.sh (FWCLUSTER_REBUILD_IMAGE).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

build_image=1
for arg in "$@"; do
    case $arg in
        --no-image) build_image=0 ;;
        -h | --help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

say() { printf 'setup: %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: run as root (rootful podman, apt-get, network namespaces): sudo $0" >&2
    exit 1
fi

# 1. Debian packages -------------------------------------------------------
packages=(
    # rootful podman with runc (crun refuses this host's hybrid cgroups)
    podman runc conmon catatonit netavark aardvark-dns uidmap slirp4netns fuse-overlayfs
    # the lab's node image is debootstrapped locally (no registry reachable)
    debootstrap
    # netfilter, VRRP and replication tools, also used on the controller to
    # check rendered configuration and by the lab's network namespaces
    iptables arptables nftables conntrack conntrackd keepalived iproute2 iputils-ping procps
    # the venv, the harness and ansible-test sanity's shellcheck test
    python3 python3-venv git ca-certificates rsync shellcheck tar
)
missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # No service may start because of this install (keepalived would send
    # VRRP adverts from the controller): Debian's policy-rc.d convention,
    # unless the machine already has a policy of its own.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        made_policy=1
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
    if ((made_policy)); then rm -f "$policy"; trap - EXIT; fi
else
    say "Debian packages present"
fi

# keepalived and conntrackd are here for their config checkers only (the
# roles' `keepalived -t`, the tests' `conntrackd -C`): never as services of
# the controller. Debian enables them at install; disable and stop them.
for unit in keepalived.service conntrackd.service; do
    if systemctl is-enabled --quiet "$unit" 2>/dev/null; then
        say "disabling $unit on this machine (installed for its config checker only)"
        systemctl disable --quiet "$unit" 2>/dev/null || rm -f "/etc/systemd/system/multi-user.target.wants/$unit"
    fi
    if systemctl is-active --quiet "$unit" 2>/dev/null; then
        systemctl stop "$unit"
    fi
done

# 2. The project venv ------------------------------------------------------
python=${FWCLUSTER_PYTHON:-/usr/bin/python3}
venv=$root/.venv
stamp=$venv/.requirements.sha256
want=$( { sha256sum requirements.txt; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    say "creating $venv with $python"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    say "installing requirements.txt into .venv"
    rm -f "$stamp"
    # --no-compile: pip would byte-compile every file of the `ansible`
    # package's collections (half the install time); Python compiles what it
    # imports, once, when it first imports it.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-virtualenv --no-compile -r requirements.txt 2>&1 \
        | { grep -v "^WARNING: Location '.*' is ignored" || true; }
    "$venv/bin/python" -m pip check --disable-pip-version-check
    # Only a complete install writes the stamp.
    "$venv/bin/ansible" --version >/dev/null
    echo "$want" >"$stamp"
else
    say ".venv up to date with requirements.txt"
fi
# The modules the controller runs on itself (the lab playbooks' podman
# commands) compiled once, as on the lab's nodes (molecule/shared/image).
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
install -m 0644 scripts/lib/ansiballz_code_cache.py "$site/fwcluster_ansiballz_code_cache.py"
echo 'import fwcluster_ansiballz_code_cache' >"$site/fwcluster-ansiballz-code-cache.pth"

# 3. ansible-test's pip bootstrap ------------------------------------------
pip_version=$("$venv/bin/python" - <<'PY'
import re, pathlib, ansible_test
src = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", src.read_text()).group(1))
PY
)
get_pip=${HOME:-/root}/.ansible/test/cache/get_pip_${pip_version//./_}.py
# A real get-pip.py placed there by hand is kept; an older stand-in refreshed.
if [[ ! -f $get_pip ]] || { grep -q 'Stand-in for the get-pip.py' "$get_pip" &&
    ! cmp -s scripts/lib/get_pip_standin.py "$get_pip"; }; then
    say "placing ansible-test's pip $pip_version bootstrap stand-in at $get_pip"
    install -D -m 0644 scripts/lib/get_pip_standin.py "$get_pip"
fi

# 4. This checkout as the collection fwcluster.netfilter -------------------
link=build/collections/ansible_collections/fwcluster/netfilter
mkdir -p "$(dirname "$link")"
if [[ $(readlink "$link" 2>/dev/null) != ../../../.. ]]; then
    rm -rf "$link"
    ln -s ../../../.. "$link"
    say "linked $link -> repo root"
fi

# 5. The lab's node image --------------------------------------------------
if ((build_image)); then
    # shellcheck source=scripts/env.sh
    . "$root/scripts/env.sh"
    for release in bookworm trixie; do
        FWCLUSTER_IMAGE=localhost/fwcluster-node:$release molecule/shared/image/build.sh
    done
fi
say "done"
