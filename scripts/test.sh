#!/usr/bin/env bash
# The test command of fwcluster.netfilter. Run it as root on Debian 12:
#     sudo ./scripts/test.sh
#
# It installs what it needs (scripts/setup.sh), clears leftovers of earlier
# labs (scripts/lab-cleanup.sh), then runs the steps below in order, each
# timed under its own header, and stops at the first failure (exit 1). The
# steps without a lab (unit, yamllint, lint, sanity, build, docs, netns) run
# at once when more than one is selected, and with them the first lab
# scenario, multipath's; then the hash and sandwich scenarios side by side,
# then the hash scenario on iptables beside primary_backup's (two labs share
# nothing; beside a lab the steps without one run at the lowest
# priority, in the CPU time the lab leaves while it waits on its daemons'
# timers; the logs are printed one after the other when all have ended).
#
# Steps:
#   unit          pytest tests/unit (no test collected counts as a failure)
#   yamllint      yamllint over the repository (.yamllint)
#   lint          ansible-lint --profile production (.ansible-lint)
#   sanity        ansible-test sanity --requirements --python 3.11 on a copy
#                 of the tracked and untracked-not-ignored files
#   build         ansible-galaxy collection build; install the tarball into a
#                 scratch path; ansible-doc every module and role from it;
#                 ansible-builder reads its controller dependencies and makes
#                 the build context of ee/execution-environment.yml;
#                 antsibull-changelog writes the release notes of its version
#   docs          the collection's documentation site built with
#                 antsibull-docs and Sphinx, warnings as errors
#                 (tests/docsite/build.py, in build/venv-docs)
#   netns         pytest tests/netns: each architecture's packet cases sent
#                 through a node's rules of both backends (iptables,
#                 nftables) in network namespaces; the same verdicts
#   molecule      molecule test -s NAME for every scenario in molecule/
#                 but fleet (one step per scenario, named molecule:NAME);
#                 each ends with the scenario's ten slowest tasks
#   bench         the short run of the failover benchmark (scripts/bench.sh
#                 --smoke): one object size, one kill, in the lab that
#                 molecule:primary_backup leaves running for it (a new lab
#                 when that step did not run); its results, plots and
#                 summary go to build/test-logs/bench-smoke/
#   core:VERSION  (--cores only) the unit tests, ansible-test sanity and a
#                 syntax check of every playbook with every example inventory,
#                 on that ansible-core (build/venv-core-VERSION)
#   molecule:fleet  (--fleet only) the fleet scenario: three clusters of
#                 inventories/fleet deployed by one run of site.yml, a
#                 failure that stops one cluster only, status.yml's table of
#                 every cluster (about 8 min)
#   molecule:NAME@BACKEND-RELEASE  scenario NAME with every node on BACKEND
#                 (iptables, nftables: a copy of the example inventories with
#                 that fwcluster_backend) and RELEASE (bookworm, trixie: every
#                 lab host's image); molecule:hash@iptables-bookworm is a
#                 default step (the iptables backend's proof on the hash
#                 cluster, whose example is dual stack on nftables; it also
#                 keeps the peers' flows in the kernel,
#                 fwcluster_replication.peer_flows: kernel, the hash
#                 cluster's other cache choice), the other cells run with
#                 --matrix
#
# Options:
#   --only STEP   run only STEP (repeatable, or comma separated); a scenario
#                 can be named alone: --only molecule:primary_backup
#   --skip STEP   do not run STEP (repeatable, or comma separated)
#   --keep-lab    do not run scripts/lab-cleanup.sh when the run ends
#   --cores       also test the older ansible-core lines requires_ansible
#                 claims (meta/runtime.yml) that run on Python 3.11: the
#                 steps core:VERSION, after the steps above; the rest of the
#                 command runs the ansible-core of requirements.txt
#   --fleet       also run the fleet scenario (molecule:fleet), before
#                 molecule:primary_backup
#   --keep-going  go on after a failed step (the summary lists every step's
#                 result; the run still exits 1)
#   --matrix      also run the rest of the cross product architecture x
#                 backend x release: after the steps above, every scenario
#                 in every cell the default steps do not prove (a scenario
#                 whose molecule.yml names no image proves its example's
#                 backend on bookworm; primary_backup mixes releases, so
#                 it proves no single cell): 12 more scenario runs (the 13
#                 cells, hash on iptables then among them, took 82 min in
#                 the run of docs/lab-measurements.md)
#   --list        print the steps that would run, and exit
#   -h, --help    print this help
#
# Environment: FWCLUSTER_STEP_TIMEOUT (seconds, default 1800) bounds each
# step; FWCLUSTER_MOLECULE_TIMEOUT (default 1500) each Molecule scenario.
# Logs of every step: build/test-logs/STEP.log.
#
# The run ends with a summary of every step with its duration, and the line
# "N passed, M failed" counting steps (", K skipped" for steps not reached
# after a failure).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

only=()
skip=()
keep_lab=0
list_only=0
matrix=0
cores=0
fleet=0
keep_going=0
while (($#)); do
    case $1 in
        --only) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; IFS=, read -ra v <<<"$2"; only+=("${v[@]}"); shift 2 ;;
        --only=*) IFS=, read -ra v <<<"${1#*=}"; only+=("${v[@]}"); shift ;;
        --skip) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; IFS=, read -ra v <<<"$2"; skip+=("${v[@]}"); shift 2 ;;
        --skip=*) IFS=, read -ra v <<<"${1#*=}"; skip+=("${v[@]}"); shift ;;
        --keep-lab) keep_lab=1; shift ;;
        --matrix) matrix=1; shift ;;
        --cores) cores=1; shift ;;
        --fleet) fleet=1; shift ;;
        --keep-going) keep_going=1; shift ;;
        --list) list_only=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "test.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

# The scenario whose lab the bench step measures in: it runs last of the
# scenarios and leaves its lab standing for the bench step.
bench_scenario=primary_backup

# The scenario that runs at once with the steps without a lab, first of the
# scenarios: the one whose checks leave the widest margins to its timers (a
# failover within three adverts and a second; no flow gap bound under a
# second).
overlap_scenario=multipath

# Steps run at once (run_together), each set where two or more of it are
# selected, in the place of its first: the steps without a lab beside the
# first scenario; then two labs side by side, each about half waiting on its
# daemons' timers and its probes (their networks, addresses and container
# names are their own).
at_once=(
    "unit yamllint lint sanity build docs netns molecule:$overlap_scenario"
    "molecule:hash molecule:sandwich"
    "molecule:hash@iptables-bookworm molecule:$bench_scenario"
)

# The cells of the cross product the default steps run too, before the bench's
# scenario: the iptables backend keeps its lab proof on two architectures, the
# hash cluster among them (the sandwich's example is on iptables).
default_cells=(hash@iptables-bookworm)
default_cell() {  # default_cell STEP: is STEP (molecule:CELL or CELL) one of default_cells?
    [[ " ${default_cells[*]} " == *" ${1#molecule:} "* ]]
}
# The hash example's own scenario proves the external cache (its default); the
# default hash cell proves the other choice, the peers' flows in the kernel.
cell_peer_flows() {  # cell_peer_flows CELL: the fwcluster_replication.peer_flows its hash cluster runs with, or nothing
    if [[ $1 == hash@iptables-bookworm ]]; then echo kernel; fi
}

# The scenario of several clusters at once (--fleet): not an architecture's,
# outside the cross product.
fleet_scenario=fleet

# The benchmark's lab of a 4-firewall hash cluster (benchmark/scaling.py):
# never a step of the test command.
scaling_scenario=hash_scaling

# The steps, in order. Molecule scenarios: every directory of molecule/ with
# a molecule.yml, except shared/ and the fleet; the overlap scenario first,
# the bench's scenario last.
scenarios=()
for f in molecule/*/molecule.yml; do
    [[ -f $f ]] || continue
    name=$(basename "$(dirname "$f")")
    [[ $name == shared || $name == "$bench_scenario" || $name == "$fleet_scenario" || $name == "$overlap_scenario" ||
        $name == "$scaling_scenario" ]] ||
        scenarios+=("$name")
done
[[ -f molecule/$overlap_scenario/molecule.yml ]] && scenarios=("$overlap_scenario" "${scenarios[@]}")
[[ -f molecule/$bench_scenario/molecule.yml ]] && scenarios+=("$bench_scenario")
all_steps=(unit yamllint lint sanity build docs netns)
if ((${#scenarios[@]})); then
    for s in "${scenarios[@]}"; do
        # the fleet's lab and the default cells before the one the bench step reuses
        if [[ $s == "$bench_scenario" ]]; then
            ((fleet)) && all_steps+=("molecule:$fleet_scenario")
            for c in "${default_cells[@]}"; do [[ -f molecule/${c%@*}/molecule.yml ]] && all_steps+=("molecule:$c"); done
        fi
        all_steps+=("molecule:$s")
    done
else
    all_steps+=(molecule)   # fails: there must be scenarios
fi
all_steps+=(bench)

# The older ansible-core lines (--cores): the newest release of each line
# from 2.16 (meta/runtime.yml's requires_ansible) that runs on Python 3.11,
# below the line requirements.txt pins.
core_versions=(2.16.19 2.17.14 2.18.19)
if ((cores)); then
    for v in "${core_versions[@]}"; do all_steps+=("core:$v"); done
fi

# The cross product's cells (--matrix): scenario@backend-release for every
# cell the default steps do not prove.
matrix_backends=(iptables nftables)
matrix_releases=(bookworm trixie)
example_backend() {  # example_backend NAME: the fwcluster_backend line of inventories/NAME
    local b
    b=$(sed -n 's/^fwcluster_backend: *\([a-z]*\).*/\1/p' inventories/"$1"/group_vars/*.yml)
    echo "${b:-iptables}"
}
if ((matrix)); then
    for s in "${scenarios[@]}"; do
        for b in "${matrix_backends[@]}"; do
            for r in "${matrix_releases[@]}"; do
                if ! grep -q '^ *image:' "molecule/$s/molecule.yml" && [[ $b == "$(example_backend "$s")" && $r == bookworm ]]; then
                    continue
                fi
                default_cell "$s@$b-$r" && continue
                all_steps+=("molecule:$s@$b-$r")
            done
        done
    done
fi

known() {
    local s
    for s in "${all_steps[@]}"; do
        [[ $s == "$1" || ${s%%:*} == "$1" ]] && return 0
    done
    return 1
}
for s in "${only[@]}" "${skip[@]}"; do
    if [[ $s == *@* ]] && ((!matrix)) && ! default_cell "$s"; then echo "test.sh: '$s' is a cell of the cross product: add --matrix" >&2; exit 2; fi
    if [[ $s == core:* ]] && ((!cores)); then echo "test.sh: '$s' needs --cores" >&2; exit 2; fi
    if [[ $s == "molecule:$fleet_scenario" ]] && ((!fleet)); then echo "test.sh: '$s' needs --fleet" >&2; exit 2; fi
    known "$s" || { echo "test.sh: unknown step '$s'; steps: ${all_steps[*]}" >&2; exit 2; }
done
selected() {  # selected STEP: is STEP chosen by --only/--skip?
    local s step=$1 family=${1%%:*} hit
    if ((${#only[@]})); then
        hit=0
        for s in "${only[@]}"; do [[ $s == "$step" || $s == "$family" ]] && hit=1; done
        ((hit)) || return 1
    fi
    for s in "${skip[@]}"; do [[ $s == "$step" || $s == "$family" ]] && return 1; done
    return 0
}
steps=()
for s in "${all_steps[@]}"; do selected "$s" && steps+=("$s"); done
if ((list_only)); then
    printf '%s\n' "${steps[@]}"
    exit 0
fi
if ((!${#steps[@]})); then
    echo "test.sh: --only/--skip leave no step to run" >&2
    exit 2
fi

needs_lab=0
for s in "${steps[@]}"; do [[ $s == molecule* || $s == bench ]] && needs_lab=1; done

logs=$root/build/test-logs
step_timeout=${FWCLUSTER_STEP_TIMEOUT:-1800}
molecule_timeout=${FWCLUSTER_MOLECULE_TIMEOUT:-1500}

# --- helpers ----------------------------------------------------------------
bold=''; reset=''
if [[ -t 1 ]]; then bold=$'\e[1m'; reset=$'\e[0m'; fi
header() { printf '\n%s==== %s ====%s\n' "$bold" "$*" "$reset"; }
fmt_dur() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

lab_cleanup() {
    if [[ -x scripts/lab-cleanup.sh ]]; then
        scripts/lab-cleanup.sh || echo "test.sh: scripts/lab-cleanup.sh failed (exit $?)" >&2
    elif [[ -f scripts/lab-cleanup.sh ]]; then
        bash scripts/lab-cleanup.sh || echo "test.sh: scripts/lab-cleanup.sh failed (exit $?)" >&2
    fi
}

results=()      # "STEP STATUS SECONDS"
passed=0
failed=0
failed_step=""    # the step that failed, and its log (summary shows its end)
failed_log=""
run_start=$(date +%s)

summary() {
    local r name status secs nrun=0 not_run=0 s done_steps=" "
    header "summary"
    for r in "${results[@]}"; do
        read -r name status secs <<<"$r"
        done_steps+="$name "
        printf '  %-32s %-7s %s\n' "$name" "$status" "$(fmt_dur "$secs")"
        nrun=$((nrun + 1))
    done
    for s in "${steps[@]}"; do
        if [[ $done_steps != *" $s "* ]]; then
            printf '  %-32s %-7s\n' "$s" "not run"
            not_run=$((not_run + 1))
        fi
    done
    printf '  %-32s %-7s %s\n' "total" "" "$(fmt_dur $(($(date +%s) - run_start)))"
    if ((not_run)); then
        printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$not_run"
    else
        printf '%d passed, %d failed\n' "$passed" "$failed"
    fi
    # What failed, last: a CI page shows the end of a long log. A lab step's
    # failed tasks or Ansible's errors (a playbook that does not parse), their
    # first lines; or the end of another step's log.
    if [[ -n $failed_step && -f $failed_log ]]; then
        echo "What failed in $failed_step:"
        if grep -qE '^(fatal|failed): |^\[ERROR\]: ' "$failed_log"; then
            grep -E -A20 '^(fatal|failed): |^\[ERROR\]: ' "$failed_log" | head -40
        else
            tail -n 20 "$failed_log"
        fi
    fi
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if ((needs_lab && !keep_lab)); then
        echo
        echo "test.sh: removing the lab (scripts/lab-cleanup.sh)"
        lab_cleanup
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'echo "test.sh: interrupted" >&2; exit 130' INT TERM

# run_step NAME TIMEOUT FUNCTION: time FUNCTION, log it, record the result,
# stop the run on failure.
step_log() {  # step_log STEP: the file its output goes to
    echo "$logs/${1//[:\/]/_}.log"
}

run_step() {
    local name=$1 limit=$2 fn=$3 start rc log
    log=$(step_log "$name")
    mkdir -p "$logs"
    header "$name"
    start=$(date +%s)
    set +e
    (set -euo pipefail; "$fn" "$name" "$limit") 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    record "$name" "$rc" $(($(date +%s) - start)) "$log" || { summary; exit 1; }
}

# run_together NAME...: steps that share nothing run at once (on two cores,
# the CPU-bound ones end sooner together than in turn); then each log is
# printed under its own header and each result recorded; the run stops when
# one failed. Beside a lab the others run at the lowest priority (nice 19),
# in the time the lab leaves idle while it waits on its daemons' timers: a
# lab's containers share one CPU cgroup (podman's libpod_parent), which
# weighs as much as one process of normal priority, so every busy process
# at that priority would take the lab's share.
run_together() {
    local name pids=() rc i=0 ok=1 log lab=0
    mkdir -p "$logs"
    header "$* (at once)"
    for name in "$@"; do [[ $name == molecule* ]] && lab=1; done
    for name in "$@"; do
        (
            set -euo pipefail
            if ((lab)) && [[ $name != molecule* ]]; then renice -n 19 -p "$BASHPID" >/dev/null; fi
            # shellcheck disable=SC2034 # read by the trap below
            started=$(date +%s)
            trap 'echo $(($(date +%s) - started)) >"$(step_log "$name").secs"' EXIT
            "$(step_function "$name")" "$name" "$(step_limit "$name")"
        ) >"$(step_log "$name")" 2>&1 &
        pids+=($!)
    done
    for name in "$@"; do
        rc=0
        wait "${pids[i]}" || rc=$?
        i=$((i + 1))
        log=$(step_log "$name")
        header "$name"
        cat "$log"
        record "$name" "$rc" "$(cat "$log.secs" 2>/dev/null || echo 0)" "$log" || ok=0
    done
    ((ok)) || { summary; exit 1; }
}

# record NAME RC SECONDS LOG: count the step's result and print it; 1 when it
# failed (0 with --keep-going: the run goes on).
record() {
    local name=$1 rc=$2 secs=$3 log=$4
    if ((rc == 0)); then
        passed=$((passed + 1))
        results+=("$name passed $secs")
        printf '%s---- %s passed in %s ----%s\n' "$bold" "$name" "$(fmt_dur "$secs")" "$reset"
    else
        failed=$((failed + 1))
        results+=("$name FAILED $secs")
        printf '%s---- %s FAILED (exit %d) after %s; log: %s ----%s\n' \
            "$bold" "$name" "$rc" "$(fmt_dur "$secs")" "${log#"$root"/}" "$reset"
        failed_step=$name
        failed_log=$log
        ((keep_going)) || return 1
    fi
}

# --- the steps --------------------------------------------------------------
step_setup() {
    local args=()
    ((needs_lab)) || args+=(--no-image)
    scripts/setup.sh "${args[@]}"
    if ((needs_lab)); then lab_cleanup; fi
}

step_unit() {
    [[ -d tests/unit ]] || { echo "tests/unit does not exist: no unit test to run"; return 1; }
    local rc=0
    # The collection is importable as ansible_collections.fwcluster.netfilter
    # through build/collections; caches go to build/, not into the checkout.
    PYTHONPATH="$root/build/collections${PYTHONPATH:+:$PYTHONPATH}" \
        timeout -k 30 "$2" pytest -o cache_dir="$root/build/pytest-cache" tests/unit || rc=$?
    if ((rc == 5)); then
        echo "pytest collected no test in tests/unit: that is a failure here"
    fi
    return "$rc"
}

step_netns() {
    # Beside the CPU-bound steps: its probes wait up to 2 s for an answer that
    # a namespace gives in well under a millisecond.
    PYTHONPATH="$root/build/collections${PYTHONPATH:+:$PYTHONPATH}" \
        timeout -k 30 "$2" pytest -o cache_dir="$root/build/pytest-cache" tests/netns
}

step_yamllint() {
    timeout -k 30 "$2" yamllint --strict .
}

step_lint() {
    timeout -k 30 "$2" ansible-lint --profile production
}

# sanity_copy DEST: what git would commit, copied to DEST (a collection's
# directory for ansible-test), as a repository of its own.
sanity_copy() {
    local dest=$1 f
    rm -rf "$dest"
    mkdir -p "$dest"
    # What git would commit: tracked files still present, plus untracked files
    # that .gitignore does not exclude (never the venv or build products, even
    # as symlinks, which a "/.venv/" pattern does not match).
    git -c safe.directory="$root" ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
        case $f in .venv | .venv/* | build | build/*) continue ;; esac
        [[ -e $f || -L $f ]] && printf '%s\0' "$f"
    done | tar --null -T - -cf - | tar -xf - -C "$dest"
    echo "copied $(find "$dest" -type f | wc -l) files to ${dest#"$root"/}"
    # ansible-test lists a collection's files with git when it is in a repo.
    (cd "$dest" && git init -q . && git add -A)
}

step_sanity() {
    local dest=$root/build/ansible-test/ansible_collections/fwcluster/netfilter
    sanity_copy "$dest"
    cd "$dest"
    timeout -k 30 "$2" ansible-test sanity --requirements --python 3.11 --color "$([[ -t 1 ]] && echo yes || echo no)"
}

# An older ansible-core: its own venv with the unit tests' packages (the pins of
# requirements.txt); the unit tests (not the benchmark's: they use no Ansible),
# ansible-test sanity, and ansible-playbook --syntax-check of every playbook with
# every example inventory (ansible.posix from the project venv's ansible package).
step_core() {
    local version=${1#core:} venv pin pins=() dest p i rc=0
    venv=$root/build/venv-core-$version
    if [[ ! -x $venv/bin/ansible-test ]] || [[ $("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)') != "$version" ]]; then
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
    for pin in pytest hypothesis; do pins+=("$(grep -i "^$pin==" requirements.txt)"); done
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile \
        "ansible-core==$version" "${pins[@]}" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }
    # ansible-test's pip bootstrap for this version, as scripts/setup.sh places it for the project venv
    pip_version=$("$venv/bin/python" -c 'import re, pathlib, ansible_test
print(re.search(r"pip=.([0-9.]+).", (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()).group(1))')
    p=${HOME:-/root}/.ansible/test/cache/get_pip_${pip_version//./_}.py
    [[ -f $p ]] || install -D -m 0644 scripts/lib/get_pip_standin.py "$p"
    echo "== unit tests, ansible-core $version"
    PYTHONPATH="$root/build/collections" timeout -k 30 "$2" "$venv/bin/python" -m pytest -q \
        -o cache_dir="$root/build/pytest-cache-core" tests/unit --ignore tests/unit/benchmark || rc=1
    echo "== playbooks' syntax, ansible-core $version"
    for p in playbooks/*.yml; do
        for i in inventories/*/; do
            ANSIBLE_COLLECTIONS_PATH="$root/build/collections:$root/.venv/lib/python3.11/site-packages" \
                "$venv/bin/ansible-playbook" --syntax-check -i "$i" "$p" >/dev/null ||
                { echo "syntax check failed: $p with $i"; rc=1; }
        done
    done
    local playbooks=(playbooks/*.yml) inventories=(inventories/*/)
    echo "syntax checked ${#playbooks[@]} playbooks with ${#inventories[@]} inventories"
    echo "== ansible-test sanity, ansible-core $version"
    dest=$root/build/ansible-test-core/ansible_collections/fwcluster/netfilter
    sanity_copy "$dest"
    (cd "$dest" && timeout -k 30 "$2" "$venv/bin/ansible-test" sanity --requirements --python 3.11 --color no) || rc=1
    return "$rc"
}

doc_head() {  # doc_head CMD...: run an ansible-doc command, show its first lines
    local out
    echo "\$ $*"
    out=$("$@") || { printf '%s\n' "$out"; return 1; }
    [[ -n $out ]] || { echo "(no output)"; return 1; }
    printf '%s\n' "$out" | sed -n '1,4s/^/    /p'
}

# The documentation site's builder has a venv of its own (Sphinx wants an
# older docutils than the project venv's rstcheck), made again when
# tests/docsite/requirements.txt changes.
step_docs() {
    local venv=$root/build/venv-docs
    if ! cmp -s tests/docsite/requirements.txt "$venv/requirements.txt" 2>/dev/null; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile \
            -r tests/docsite/requirements.txt
        cp tests/docsite/requirements.txt "$venv/requirements.txt"
    fi
    PATH=$venv/bin:$PATH timeout -k 30 "$2" python3 tests/docsite/build.py "$root/build/docsite"
}

step_build() {
    local dist=$root/build/dist inst=$root/build/install tarball
    rm -rf "$dist" "$inst"
    mkdir -p "$dist" "$inst"
    timeout -k 30 "$2" ansible-galaxy collection build --force --output-path "$dist" .
    tarball=$(ls "$dist"/fwcluster-netfilter-*.tar.gz)
    echo "built ${tarball#"$root"/} ($(du -h "$tarball" | cut -f1), $(tar -tzf "$tarball" | wc -l) entries)"
    # Nothing of the checkout's machinery may be packed.
    # Nor the lab's: Molecule's config, the example inventories' lab connection, tests of scripts/.
    if tar -tzf "$tarball" | grep -E '^(\./)?(\.venv|build|\.git|\.ci|tests/output|\.ansible|\.config|molecule|tests/unit/scripts)/|/\.cache/|__pycache__|group_vars/all/lab\.yml'; then
        echo "the tarball holds the paths above: extend build_ignore in galaxy.yml"
        return 1
    fi
    # Resolve everything from the installed tarball only, not from the
    # checkout: cwd elsewhere, ANSIBLE_COLLECTIONS_PATH = the scratch path
    # (else ansible-galaxy sees build/collections and installs nothing).
    # Galaxy is unreachable (--offline): the dependency ansible.posix must be
    # satisfied by the one the `ansible` package put in the venv.
    cd /
    export ANSIBLE_COLLECTIONS_PATH=$inst
    timeout -k 30 "$2" ansible-galaxy collection install --offline --force -p "$inst" "$tarball"
    local coll=$inst/ansible_collections/fwcluster/netfilter
    [[ -d $coll ]] || { echo "not installed: $coll"; return 1; }
    ansible-galaxy collection list -p "$inst" fwcluster.netfilter
    local required=(validate_node_ids validate_replication_link) m n=0
    for m in "${required[@]}"; do
        [[ -f $coll/plugins/modules/$m.py ]] || { echo "missing required module: plugins/modules/$m.py"; return 1; }
    done
    for f in "$coll"/plugins/modules/*.py; do
        [[ -f $f ]] || continue
        m=$(basename "$f" .py)
        [[ $m == __init__ ]] && continue
        doc_head ansible-doc "fwcluster.netfilter.$m"
        n=$((n + 1))
    done
    if compgen -G "$coll/plugins/filter/*.py" >/dev/null; then
        doc_head ansible-doc -t filter -l fwcluster.netfilter
        # Captured first: under pipefail, `ansible-doc | grep -q` could fail
        # when grep exits at its first match and ansible-doc dies of SIGPIPE.
        local filters
        filters=$(ansible-doc -t filter -l fwcluster.netfilter 2>/dev/null || true)
        if grep -q UNDOCUMENTED <<<"$filters"; then
            echo "warning: undocumented filters above (add plugins/filter/NAME.yml docs)"
        fi
    fi
    local roles=0 r
    for r in "$coll"/roles/*/; do
        r=$(basename "$r")
        [[ -f $coll/roles/$r/meta/argument_specs.yml || -f $coll/roles/$r/meta/argument_specs.yaml ]] || {
            echo "role $r has no meta/argument_specs.yml"; return 1; }
        doc_head ansible-doc -t role "fwcluster.netfilter.$r"
        roles=$((roles + 1))
    done
    ((roles)) || { echo "the collection has no role"; return 1; }
    [[ -d $coll/roles/firewall ]] || { echo "missing required role: firewall"; return 1; }
    echo "ansible-doc resolved $n modules and $roles roles from the installed tarball"
    # The execution environment: ansible-builder finds the collection's
    # controller dependencies (meta/execution-environment.yml) in the
    # installed artifact and makes the build context of ee/ (no image: no
    # container registry is reachable from here).
    local ee=$root/build/ee deps
    deps=$(ansible-builder introspect --sanitize "$inst" 2>/dev/null)
    echo "$deps"
    grep -qF "openssh-client [platform:dpkg]  # from collection fwcluster.netfilter" <<<"$deps" || {
        echo "ansible-builder does not see meta/execution-environment.yml's dependencies in the installed artifact"
        return 1
    }
    rm -rf "$ee"
    mkdir -p "$ee"
    cp "$root/ee/execution-environment.yml" "$tarball" "$ee/"
    (cd "$ee" && timeout -k 30 "$2" ansible-builder create -f execution-environment.yml -c context)
    [[ -f $ee/context/Containerfile && -f $ee/context/_build/collection/$(basename "$tarball") ]] || {
        echo "no build context with $(basename "$tarball") (does ee/execution-environment.yml name another version?)"
        return 1
    }
    echo "execution environment build context: ${ee#"$root"/}/context"
    # The release notes: antsibull-changelog writes them from the fragments,
    # as at a release of galaxy.yml's version, in a copy of the install.
    local notes=$root/build/release-notes version
    version=$(sed -n 's/^version: *//p' "$root/galaxy.yml")
    rm -rf "$notes"
    mkdir -p "$notes/ansible_collections/fwcluster"
    cp -r "$coll" "$notes/ansible_collections/fwcluster/netfilter"
    # galaxy.yml marks the copy as the collection's root (else antsibull-changelog
    # looks for it in the directories above, and would release the checkout)
    cp "$root/galaxy.yml" "$notes/ansible_collections/fwcluster/netfilter/"
    (cd "$notes/ansible_collections/fwcluster/netfilter" && antsibull-changelog lint &&
        ANSIBLE_COLLECTIONS_PATH=$notes antsibull-changelog release --version "$version")
    grep -qxF "## v${version//./\\.}" "$notes/ansible_collections/fwcluster/netfilter/CHANGELOG.md" || {
        echo "antsibull-changelog release wrote no section for $version"
        return 1
    }
    echo "release notes of $version: ${notes#"$root"/}/ansible_collections/fwcluster/netfilter/CHANGELOG.md"
}

# matrix_inventories BACKEND [PEER_FLOWS]: a copy of inventories/ whose
# clusters all run BACKEND (every fwcluster_backend line rewritten), printed.
# On iptables a hash cluster keeps the IPv4 half of each dual-stack VIP and
# address ([IPv4, "IPv6"] -> IPv4): its IPv6 VIPs need nftables (the lab then
# checks IPv4 alone, molecule/hash/lab.yml). With PEER_FLOWS a hash cluster's
# fwcluster_replication gains peer_flows: PEER_FLOWS.
matrix_inventories() {
    local dir=$root/build/lab-inventories/$1${2:+-$2} f
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    cp -r inventories "$dir"
    for f in "$dir"/*/group_vars/*.yml "$dir"/*/group_vars/*/*.yml; do
        [[ -f $f ]] && sed -i "s/^fwcluster_backend: .*/fwcluster_backend: $1/" "$f"
    done
    for f in "$dir"/*/; do
        [[ $(cat "$f"group_vars/*.yml "$f"group_vars/*/*.yml 2>/dev/null | grep -c "^fwcluster_backend: $1\$") -ge 1 ]] ||
            { echo "test.sh: ${f#"$root"/} must name fwcluster_backend in its cluster's group_vars" >&2; return 1; }
        if [[ $1 == iptables ]] && grep -qx "fwcluster_architecture: hash" "$f"group_vars/*.yml 2>/dev/null; then
            sed -i -E 's#\[([0-9.]+/[0-9]+), "[0-9a-fA-F:]+/[0-9]+"\]#\1#' "$f"group_vars/*.yml "$f"host_vars/*.yml
            ! grep -qE '"[0-9a-fA-F]*:[0-9a-fA-F:]*/[0-9]+"' "$f"group_vars/*.yml "$f"host_vars/*.yml ||
                { echo "test.sh: ${f#"$root"/}: an IPv6 address left in the IPv4 copy" >&2; return 1; }
        fi
        if [[ -n ${2:-} ]] && grep -qx "fwcluster_architecture: hash" "$f"group_vars/*.yml 2>/dev/null; then
            sed -i "s/^fwcluster_replication:\$/&\n  peer_flows: $2/" "$f"group_vars/*.yml
            grep -qx "  peer_flows: $2" "$f"group_vars/*.yml ||
                { echo "test.sh: ${f#"$root"/} must set fwcluster_replication in its cluster's group_vars" >&2; return 1; }
        fi
    done
    echo "$dir"
}

step_molecule() {
    local name=${1#molecule:} rc=0 args=() log cell backend release peer_flows
    [[ $name != molecule ]] || { echo "no Molecule scenario (molecule/*/molecule.yml) found"; return 1; }
    # The bench step reuses this lab: leave it standing for it (bench.py
    # destroys it; on_exit's lab cleanup catches any run that stops before).
    if [[ $name == "$bench_scenario" ]] && selected bench; then args+=(--destroy never); fi
    log=$logs/molecule-${name//@/_}.out
    if [[ $name == *@* ]]; then  # a cell of the cross product: the molecule.yml links and vars.yml read these
        cell=${name#*@} name=${name%@*}
        backend=${cell%-*} release=${cell#*-}
        peer_flows=$(cell_peer_flows "$name@$cell")
        FWCLUSTER_LAB_INVENTORY=$(matrix_inventories "$backend" "$peer_flows") || return 1
        export FWCLUSTER_LAB_INVENTORY FWCLUSTER_LAB_RELEASE=$release
        echo "cell: $name with every node on $backend, every lab host on $release${peer_flows:+, peer_flows $peer_flows}" \
            "($FWCLUSTER_LAB_INVENTORY)"
    fi
    timeout -k 60 "$2" molecule test -s "$name" "${args[@]}" 2>&1 | tee "$log" || rc=$?
    echo
    python3 scripts/lib/slowest_tasks.py --top 10 "$log" || true
    return "$rc"
}

step_function() {  # step_function STEP: the function that runs STEP
    case $1 in
        molecule*) echo step_molecule ;;
        core:*) echo step_core ;;
        *) echo "step_$1" ;;
    esac
}

step_limit() {  # step_limit STEP: its timeout in seconds
    if [[ $1 == molecule* ]]; then echo "$molecule_timeout"; else echo "$step_timeout"; fi
}

step_bench() {
    timeout -k 60 "$2" python3 benchmark/bench.py --smoke --reuse-lab --out "$logs/bench-smoke" \
        --command "scripts/bench.sh --smoke"
}

# --- run --------------------------------------------------------------------
header "fwcluster.netfilter tests: ${steps[*]}"
# Setup and lab cleanup are counted as a step: they can fail like any other.
all_run=(setup "${steps[@]}")
steps=("${all_run[@]}")
run_step setup "$step_timeout" step_setup
# shellcheck source=scripts/env.sh
. "$root/scripts/env.sh"
# at_once_with STEP: the selected steps of STEP's set in at_once, in the
# order of the run, when two or more of them are; else nothing.
at_once_with() {
    local set t chosen=()
    for set in "${at_once[@]}"; do
        [[ " $set " == *" $1 "* ]] || continue
        for t in "${steps[@]:1}"; do [[ " $set " == *" $t "* ]] && chosen+=("$t"); done
    done
    ((${#chosen[@]} >= 2)) && echo "${chosen[*]}"
    return 0
}
for s in "${steps[@]:1}"; do
    read -ra together <<<"$(at_once_with "$s")"
    if ((${#together[@]})); then
        [[ $s == "${together[0]}" ]] && run_together "${together[@]}"
        continue
    fi
    run_step "$s" "$(step_limit "$s")" "$(step_function "$s")"
done
summary
((failed == 0))
