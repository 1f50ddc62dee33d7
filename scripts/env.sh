# shellcheck shell=bash
# Environment for working on fwcluster.netfilter; source it, don't run it:
#     . scripts/env.sh
# scripts/setup.sh makes what this points at (.venv, build/collections).

FWCLUSTER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export FWCLUSTER_ROOT

# The project venv first on PATH (ansible, ansible-lint, molecule, pytest...).
# pyenv's shims leave it: a shim of a Python that pyenv has but does not
# select (python3.13 here) is found by Ansible's interpreter discovery on
# localhost and then fails ("pyenv: python3.13: command not found").
export VIRTUAL_ENV="$FWCLUSTER_ROOT/.venv"
_fwc_path=$VIRTUAL_ENV/bin
IFS=: read -ra _fwc_dirs <<<"$PATH"
for _fwc_dir in "${_fwc_dirs[@]}"; do
    case $_fwc_dir in
        "$VIRTUAL_ENV/bin" | */.pyenv/shims | */.pyenv/plugins/*/shims | "") ;;
        *) _fwc_path+=:$_fwc_dir ;;
    esac
done
export PATH=$_fwc_path
unset _fwc_path _fwc_dirs _fwc_dir

# This checkout as fwcluster.netfilter, through the symlink
# build/collections/ansible_collections/fwcluster/netfilter -> repo root.
# The collections of the `ansible` package (ansible.posix, containers.podman)
# are found in the venv's site-packages without being named here.
export ANSIBLE_COLLECTIONS_PATH="$FWCLUSTER_ROOT/build/collections"

# The lab's podman settings (runc, low ulimits), without touching the host's.
export CONTAINERS_CONF="$FWCLUSTER_ROOT/molecule/shared/containers.conf"

# ansible-core 2.19 refuses to run under a non-UTF-8 locale; CI may have none.
case "${LC_ALL:-${LANG:-}}" in
    *[Uu][Tt][Ff]-8 | *[Uu][Tt][Ff]8) ;;
    *) export LANG=C.UTF-8 LC_ALL=C.UTF-8 ;;
esac

# Colour when a person watches, plain text in CI logs; an explicit setting wins.
if [[ -t 1 ]]; then _fwc_color=1; else _fwc_color=0; fi
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-$_fwc_color}"
export PY_COLORS="${PY_COLORS:-$_fwc_color}"
if [[ $ANSIBLE_FORCE_COLOR == 0 ]]; then export ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-1}"; fi
unset _fwc_color

export ANSIBLE_NOCOWS=1
export ANSIBLE_DEPRECATION_WARNINGS="${ANSIBLE_DEPRECATION_WARNINGS:-true}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
