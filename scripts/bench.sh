#!/usr/bin/env bash
# The failover benchmark of fwcluster.netfilter (benchmark/bench.py). Run it
# as root on Debian 12:
#     sudo ./scripts/bench.sh [--smoke] [--arch NAME ...] [--out DIR]
#
# Installs what it needs (scripts/setup.sh), then for each architecture builds
# its Molecule lab, deploys the example inventory with playbooks/site.yml,
# measures session rate, recovered flows and failover time, and destroys the
# lab. Writes DIR/results.json, the PNG plots and summary.md (default DIR:
# build/bench/latest). The committed results in docs/benchmark/ come from
#     sudo ./scripts/bench.sh --out docs/benchmark
# --smoke is the short run of the test command: primary_backup, one object
# size, two rate runs each way, one kill (3 minutes: 2m58s measured alone).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

case ${1:-} in
    -h | --help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
esac

scripts/setup.sh
# shellcheck source=scripts/env.sh
. scripts/env.sh
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
exec python3 benchmark/bench.py --command "scripts/bench.sh${*:+ $*}" "$@"
