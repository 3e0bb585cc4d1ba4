#!/bin/sh
# device-check.sh — the one command a GPU session runs on a lent GPU machine: from the bundle that
# tools/gpu-bundle.sh made (default ./_gpu), stage after stage under one time budget,
#
#   env       GPU, driver, nvcc and PyTorch versions; the bundle's files and libraries resolve
#   ops       the norm/loss kernel check, then the backend op tests on CUDA
#             (tests/ops/test_backend_ops: fp32, bf16, --grad, simple attention, --perf)
#   memcheck  compute-sanitizer memcheck on the norm/loss check and the op tests (small shapes;
#             racecheck if time is left)
#   parity    every test_gpu_* program of the bundle and tests/**/test_gpu_*.sh (run-test.sh)
#   train     poa-train, 20 steps of the ViT-L recipe on synthetic data in bf16: img/s, memory,
#             iteration 3 profiled op by op (--profile-at)
#   bench     bench/bench_step_gpu.py: poa's step next to PyTorch's, ViT-S/16 and ViT-L/16, and
#             poa's step profiled op by op; then bench/bench_ops_gpu.py: poa's attention next to
#             PyTorch's SDPA backends (cuDNN, flash, ...), fc1 + GELU next to a fused epilogue
#
# and writes $OUT/device-check-summary.md (one row per stage: status, time, key figures) and
# $OUT/device-check.log (every command line and all output).  A failed stage does not stop the
# next one.  tests/gpu/README.md gives the device-tool call and how to read the summary.
#
# usage: sh tests/gpu/device-check.sh [--stages LIST] [--quick] [--dry-run] [--budget SECONDS]
#                                     [--bundle DIR] [--out DIR]
#   --stages LIST  comma-separated subset, in the order above (default: all)
#   --quick        shorter stages for a rerun: no --perf, no racecheck, 10 training steps,
#                  ViT-L only and one PyTorch setting in the benchmark, no op benchmark;
#                  budget 270 s
#   --dry-run      check that the bundle is complete and print what each stage would run
#   --budget S     seconds for all stages together (default 450; 270 with --quick)
#   --bundle DIR   the bundle (default: POA_BUNDLE, else _gpu in the repository)
#   --out DIR      where the summary and the log go (default: $OUT, else ./_devcheck-out)
# Rehearsals on the CPU emulator of CUDA (tests/gpu/emu/rehearse-device-check.sh) set
# POA_DEVCHECK_TRAIN_CONFIG (the train stage's configuration instead of configs/vitl_poa.yaml),
# POA_DEVCHECK_PERF=no (no op timings, no op benchmark) and may set POA_DEVCHECK_BENCH_ARGS
# (options added to bench_step_gpu.py's, e.g. "--models tiny --batch tiny=2") and
# POA_DEVCHECK_OPS_BENCH_ARGS (added to bench_ops_gpu.py's, e.g. "--images 1 --reps 1").
# Exit codes: 0 no stage failed (passed, skipped or not built yet), 1 a stage failed or timed
# out, 2 bad command line, 3 the bundle is missing or incomplete.
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bundle=${POA_BUNDLE:-$repo/_gpu}
out=${OUT:-$repo/_devcheck-out}
all_stages="env ops memcheck parity train bench"
train_config=${POA_DEVCHECK_TRAIN_CONFIG:-$repo/configs/vitl_poa.yaml}
perf=${POA_DEVCHECK_PERF:-yes}
bench_args=${POA_DEVCHECK_BENCH_ARGS:-}
ops_bench_args=${POA_DEVCHECK_OPS_BENCH_ARGS:-}
bundle_cuda_libs='' # where each CUDA library was found: set by bundle-env.sh
stages=$all_stages
quick=no
dry=no
budget=

usage() { sed -n '/^# usage:/,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
    --stages) stages=$(echo "${2:?--stages needs a list}" | tr ',' ' '); shift ;;
    --quick) quick=yes ;;
    --dry-run) dry=yes ;;
    --budget) budget=${2:?--budget needs seconds}; shift ;;
    --bundle) bundle=${2:?--bundle needs a folder}; shift ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "device-check: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for s in $stages; do
    case " $all_stages " in *" $s "*) ;; *) echo "device-check: unknown stage '$s' (stages: $all_stages)" >&2; exit 2 ;; esac
done
case $bundle in /*) ;; *) bundle=$(pwd)/$bundle ;; esac
case $budget in
"") [ $quick = yes ] && budget=270 || budget=450 ;;
*[!0-9]*) echo "device-check: --budget $budget: not a number of seconds" >&2; exit 2 ;;
esac
mode=full
[ $quick = yes ] && mode=quick
[ $dry = yes ] && mode="$mode, dry run"

# Stage table: name, budget (full), budget (quick), minimum worth starting with (seconds).
stage_budget() {
    case $1 in
    env) [ $quick = yes ] && echo 30 || echo 40 ;;
    ops) [ $quick = yes ] && echo 40 || echo 80 ;;
    memcheck) [ $quick = yes ] && echo 50 || echo 80 ;;
    parity) [ $quick = yes ] && echo 70 || echo 120 ;;
    train) [ $quick = yes ] && echo 45 || echo 80 ;;
    bench) [ $quick = yes ] && echo 90 || echo 160 ;;
    esac
}
stage_minimum() {
    case $1 in env) echo 5 ;; ops | memcheck | parity) echo 15 ;; train) echo 30 ;; bench) echo 60 ;; esac
}

mkdir -p "$out" || exit 4
log=$out/device-check.log
summary=$out/device-check-summary.md
: >"$log"
work=$(mktemp -d "${TMPDIR:-/tmp}/poa-devcheck.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
# stopped from outside (the device call's time limit): say so in the summary before leaving
on_signal() {
    rows="$rows| ${_s_name:-?} | INTERRUPTED | $(($(now) - ${_s_t0:-$start}))s | - | stopped by a signal |
"
    write_summary
    exit 130
}
trap on_signal INT TERM
start=$(date +%s)
deadline=$((start + budget))

say() { echo "$*" | tee -a "$log"; }
# the arguments as one shell command line (quoted where needed), for the log
quote() {
    _q_out=
    for _q_a in "$@"; do
        case $_q_a in
        '' | *[!A-Za-z0-9_./=:,+@%-]*) _q_a="'$(printf '%s' "$_q_a" | sed "s/'/'\\\\''/g")'" ;;
        esac
        _q_out="$_q_out $_q_a"
    done
    echo "${_q_out# }"
}
now() { date +%s; }

# --------------------------------------------------------------------------- environment
py=${POA_DEVCHECK_PYTHON:-$(command -v python3 || echo python3)}
orig_path=$PATH
if [ ! -d "$bundle" ]; then
    say "device-check: no bundle at $bundle (make it with: sh tools/gpu-bundle.sh, then carry _gpu)"
    exit 3
fi
# A packed bundle (tools/gpu-bundle.sh --pack) is unpacked into the scratch folder first.
# (xz, or Python's lzma where the machine has no xz)
if [ -f "$bundle/bundle.tar.xz" ]; then
    mkdir -p "$work/bundle"
    if command -v xz >/dev/null 2>&1; then
        xz -dc "$bundle/bundle.tar.xz" | tar -C "$work/bundle" -xf -
    else
        "$py" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
            "$bundle/bundle.tar.xz" "$work/bundle"
    fi || {
        say "device-check: cannot unpack $bundle/bundle.tar.xz"
        exit 3
    }
    say "device-check: unpacked $bundle/bundle.tar.xz into $work/bundle"
    bundle=$work/bundle
fi
POA_BUNDLE=$bundle
# shellcheck source=tests/gpu/bundle-env.sh
. "$here/bundle-env.sh"

# Python runs without the bundle's libraries (they are Debian's, the machine's Python is not);
# the C benchmark, started from Python, gets them back through poa-run.
mkdir -p "$work/bin"
{
    echo '#!/bin/sh'
    if [ -n "$bundle_saved_ld_path" ]; then
        echo "LD_LIBRARY_PATH='$bundle_saved_ld_path'; export LD_LIBRARY_PATH"
    else
        echo "unset LD_LIBRARY_PATH"
    fi
    echo "unset OPAL_PREFIX PMIX_PREFIX HWLOC_PLUGINS_PATH"
    echo "PATH='$orig_path'; export PATH"
    echo "exec '$py' \"\$@\""
} >"$work/bin/python3-clean"
{
    echo '#!/bin/sh'
    echo "LD_LIBRARY_PATH='$LD_LIBRARY_PATH' PATH='$PATH' OPAL_PREFIX='$OPAL_PREFIX' PMIX_PREFIX='$PMIX_PREFIX' HWLOC_PLUGINS_PATH='$HWLOC_PLUGINS_PATH'"
    echo "export LD_LIBRARY_PATH PATH OPAL_PREFIX PMIX_PREFIX HWLOC_PLUGINS_PATH"
    echo 'exec "$@"'
} >"$work/bin/poa-run"
chmod +x "$work/bin/python3-clean" "$work/bin/poa-run"
pyclean=$work/bin/python3-clean
export POA_TOP_SRCDIR=$repo POA_TOP_BUILDDIR=$bundle POA_PYTHON_REF=$pyclean
POA_HAVE_TORCH=no
"$pyclean" -c 'import torch, h5py, numpy' >/dev/null 2>&1 && POA_HAVE_TORCH=yes
export POA_HAVE_TORCH POA_PROGRESS=0 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1

gpu_name=unknown
gpu_driver=unknown
nvcc_version=unknown
torch_version=unknown
mpiexec_ok=unknown
find_tool() { # NAME [FALLBACK...]: the first that exists
    _n=$1
    shift
    command -v "$_n" 2>/dev/null && return 0
    for _f in "$@"; do [ -x "$_f" ] && { echo "$_f"; return 0; }; done
    return 1
}
nvcc=$(find_tool nvcc /usr/local/cuda/bin/nvcc) || nvcc=
sanitizer=$(find_tool compute-sanitizer /usr/local/cuda/bin/compute-sanitizer \
    /usr/local/cuda/compute-sanitizer/compute-sanitizer) || sanitizer=
info() { sed -n "s/^$1: //p" "$bundle/BUILD-INFO" 2>/dev/null; } # a BUILD-INFO field
bundle_programs=$(info programs)
# The bundle's program PATH, if it is there; in a dry run its path all the same.
prog() {
    if [ -x "$bundle/$1" ]; then echo "$bundle/$1"; return 0; fi
    [ $dry = yes ] || return 0
    echo "  ($1 is not in the bundle: a real run skips what needs it)" | tee -a "$log" >&2
    echo "$bundle/$1"
    return 0
}

# ------------------------------------------------------------------------ running commands
# Stage bookkeeping: counts of passed / failed / timed-out / skipped commands and key figures.
stage_reset() { n_pass=0 n_fail=0 n_timeout=0 n_skip=0 figs='' stage_note=''; }
fig() { [ $dry = yes ] || figs="${figs:+$figs; }$*"; }
stage_end=0
stage_left() { echo $((stage_end - $(now))); }

# run LIMIT LABEL CMD...: runs CMD for at most LIMIT seconds ("-": what is left of the
# stage's time; never more than that), logs the command line and all output, prints the last
# lines, counts the result.  $last_out is the file with the output, $last_rc the exit status.
n_cmd=0
run() {
    _r_limit=$1
    _r_label=$2
    shift 2
    n_cmd=$((n_cmd + 1))
    last_out=$work/cmd-$n_cmd.out
    : >"$last_out"
    [ "$_r_limit" = - ] && _r_limit=$(stage_left)
    [ "$_r_limit" -gt "$(stage_left)" ] && _r_limit=$(stage_left)
    if [ $dry = yes ]; then
        say "  would run [$_r_label, <= ${_r_limit}s]: $(quote "$@")"
        last_rc=0
        return 0
    fi
    if [ "$_r_limit" -lt 3 ]; then
        say "  [$_r_label] not run: no time left in the stage"
        n_skip=$((n_skip + 1))
        last_rc=124
        return 124
    fi
    say "  \$ $(quote "$@")   [$_r_label, limit ${_r_limit}s]"
    _r_t0=$(now)
    timeout -k 10 "$_r_limit" "$@" >"$last_out" 2>&1 </dev/null
    last_rc=$?
    cat "$last_out" >>"$log"
    tail -n 4 "$last_out" | sed 's/^/    | /'
    case $last_rc in
    0) _r_st=PASS; n_pass=$((n_pass + 1)) ;;
    77) _r_st=SKIP; n_skip=$((n_skip + 1)) ;;
    124 | 137) _r_st=TIMEOUT; n_timeout=$((n_timeout + 1)) ;;
    *) _r_st="FAIL (exit $last_rc)"; n_fail=$((n_fail + 1)) ;;
    esac
    say "  -> $_r_label: $_r_st in $(($(now) - _r_t0))s"
    return $last_rc
}

stage_status() {
    if [ $n_fail -gt 0 ]; then echo FAIL
    elif [ $n_timeout -gt 0 ]; then echo TIMEOUT
    elif [ $n_pass -gt 0 ]; then echo PASS
    elif [ -n "$stage_note" ]; then echo "$stage_note"
    else echo SKIP
    fi
}

# ------------------------------------------------------------------------------ summary
rows=
write_summary() {
    {
        echo "# poa device check"
        echo
        echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); mode: $mode; stages: $stages;" \
            "budget ${budget}s; elapsed $(($(now) - start))s"
        echo "- GPU: $gpu_name; driver $gpu_driver; nvcc $nvcc_version; PyTorch $torch_version"
        echo "- bundle: $(info commit) built $(info date) (sm_$(info cuda_arch))"
        echo "- CUDA libraries:$bundle_cuda_libs"
        echo
        echo "| stage | status | time | limit | key figures |"
        echo "|---|---|---|---|---|"
        printf '%s' "$rows"
        echo
        echo "Every command line and its whole output: device-check.log."
    } >"$summary"
}

# stage NAME FUNCTION: runs the stage within its share of the time left, then adds its row.
stage() {
    _s_name=$1
    case " $stages " in *" $_s_name "*) ;; *) return 0 ;; esac
    stage_reset
    _s_later=0
    _s_seen=no
    for _s_each in $stages; do
        [ $_s_seen = yes ] && _s_later=$((_s_later + $(stage_minimum "$_s_each")))
        [ "$_s_each" = "$_s_name" ] && _s_seen=yes
    done
    _s_limit=$(stage_budget "$_s_name")
    _s_avail=$((deadline - $(now) - _s_later))
    [ $_s_avail -lt "$_s_limit" ] && _s_limit=$_s_avail
    say ""
    say "== stage $_s_name (limit ${_s_limit}s) =="
    _s_t0=$(now)
    if [ $dry = no ] && [ "$_s_limit" -lt "$(stage_minimum "$_s_name")" ]; then
        stage_note="SKIP (no time left)"
        say "  not run: ${_s_limit}s left for it, under its minimum of $(stage_minimum "$_s_name")s"
    else
        stage_end=$((_s_t0 + _s_limit))
        "stage_$_s_name"
    fi
    _s_st=$(stage_status)
    [ $dry = yes ] && _s_st=DRY
    rows="$rows| $_s_name | $_s_st | $(($(now) - _s_t0))s | ${_s_limit}s | ${figs:--} |
"
    [ -n "$figs" ] && say "  figures: $figs"
    say "  status: $_s_st"
    case $_s_st in FAIL* | TIMEOUT*) failed=1 ;; esac
    write_summary
}
failed=0

# ------------------------------------------------------------------------- bundle check
# Every file of the manifest present and intact, the programs executable, every library each
# program and Open MPI object needs found (the CUDA ones on this machine).
check_bundle() {
    _b_ok=yes
    if [ ! -f "$bundle/MANIFEST" ] || [ ! -f "$bundle/BUILD-INFO" ]; then
        say "bundle: $bundle has no MANIFEST/BUILD-INFO: not made by tools/gpu-bundle.sh"
        return 1
    fi
    if ! (cd "$bundle" && sha256sum -c --quiet MANIFEST) >"$work/manifest.out" 2>&1; then
        say "bundle: files missing or changed since tools/gpu-bundle.sh made it:"
        head -n 20 "$work/manifest.out" | tee -a "$log"
        _b_ok=no
    fi
    for _b_p in $bundle_programs; do
        [ -x "$bundle/$_b_p" ] || { say "bundle: $_b_p is not executable"; _b_ok=no; }
    done
    for _b_f in $bundle_programs mpi/bin/orterun mpi/bin/orted; do
        [ -f "$bundle/$_b_f" ] || { say "bundle: $_b_f missing"; _b_ok=no; continue; }
        ldd "$bundle/$_b_f" 2>&1 | grep 'not found' | sed "s|^|bundle: $_b_f: |" >>"$work/ldd.out"
    done
    for _b_f in "$OPAL_PREFIX"/lib/*/openmpi/lib/openmpi*/*.so; do
        ldd "$_b_f" 2>&1 | grep 'not found' | sed "s|^|bundle: $(basename "$_b_f"): |" >>"$work/ldd.out"
    done
    if [ -s "$work/ldd.out" ]; then
        sort -u "$work/ldd.out" | head -n 20 | tee -a "$log"
        _b_ok=no
    fi
    [ -z "$bundle_missing" ] || say "bundle: CUDA libraries not found on this machine:$bundle_missing"
    [ $_b_ok = yes ]
}

# ------------------------------------------------------------------------------- stages
stage_env() {
    if [ $dry = yes ] || command -v nvidia-smi >/dev/null 2>&1; then
        run 15 nvidia-smi nvidia-smi
        run 10 gpu-query nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv,noheader
        if [ $dry = no ] && [ $last_rc -eq 0 ]; then
            gpu_name=$(head -n 1 "$last_out" | cut -d, -f1 | sed 's/^ *//;s/ *$//')
            gpu_driver=$(head -n 1 "$last_out" | cut -d, -f2 | sed 's/^ *//;s/ *$//')
            fig "$(head -n 1 "$last_out")"
        fi
    else
        say "  nvidia-smi not found: no NVIDIA driver on this machine"
        n_fail=$((n_fail + 1))
        fig "no nvidia-smi"
    fi
    if [ -n "$nvcc" ]; then
        run 10 nvcc "$nvcc" --version
        nvcc_version=$(sed -n 's/.*release \([0-9.]*\).*/\1/p' "$last_out")
        [ $dry = yes ] && nvcc_version=$("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
    fi
    run 30 torch "$pyclean" -c 'import torch; c = torch.cuda.is_available()
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", c,
      torch.cuda.get_device_name(0) if c else "")'
    torch_version=$(sed -n 's/^torch \([^ ]*\).*/\1/p' "$last_out")
    [ -n "$sanitizer" ] && run 10 compute-sanitizer "$sanitizer" --version
    _glibc=$(ldd --version 2>/dev/null | sed -n '1s/.* //p')
    fig "nvcc ${nvcc_version:-?}, torch ${torch_version:-?}, glibc $_glibc (bundle: $(info glibc))"
    say "  CUDA libraries:$bundle_cuda_libs"
    if [ $dry = no ]; then
        if check_bundle; then fig "bundle complete"; else n_fail=$((n_fail + 1)); fig "bundle INCOMPLETE"; fi
    fi
    run 20 mpiexec mpiexec -n 2 --bind-to none sh -c 'echo rank ${OMPI_COMM_WORLD_RANK:-?} of ${OMPI_COMM_WORLD_SIZE:-?}'
    if [ $last_rc -eq 0 ]; then mpiexec_ok=yes; else mpiexec_ok=no; fig "mpiexec FAILED (runs fall back to singletons)"; fi
    if [ -n "$(prog src/poa-train)" ]; then
        run 20 poa-train-plan "$bundle/src/poa-train" --config "$repo/configs/vitl_poa.yaml" --dry-run --ranks 1 train.backend=cuda
    fi
}

ops_prog=tests/ops/test_backend_ops
norm_check_prog=tests/gpu/cuda_norm_loss_check
# The memory-bound ops' bandwidth in an op-test --perf table, next to the device copy's: how
# close the passes that the cost model (docs/performance.md §9) prices by bandwidth come to it.
perf_bandwidths() {
    awk '$1 == "perf" && $NF == "GB/s" && ($3 == "copy" || index($0, " ViT-L/16 ")) {
            if ($3 ~ /^(copy|act_gelu_fwd|act_gelu_bwd|residual_ls_fwd|residual_ls_bwd|layernorm_fwd|layernorm_bwd|act_gather_rows|act_scatter_add_rows)$/ && !($3 in seen)) {
                seen[$3] = 1
                printf "%s%s %s", (n++ ? ", " : ""), $3, $(NF - 1)
            }
        }' "$1"
}

stage_ops() {
    # the norm, loss and optimizer kernels alone first: its failures are the most specific
    _n=$(prog $norm_check_prog)
    if [ -n "$_n" ]; then
        run 30 norm-loss-check "$_n"
        fig "norm/loss check rc=$last_rc"
    fi
    _p=$(prog $ops_prog)
    if [ -z "$_p" ]; then
        stage_note="NOT BUILT"
        fig "$ops_prog is not in the bundle (rebuild the bundle)"
        return 0
    fi
    if [ $quick = yes ]; then
        run $(($(stage_left) / 2)) ops-fp32 "$_p" --backend cuda --dtype fp32
        fig "fp32 rc=$last_rc"
        run - ops-bf16 "$_p" --backend cuda --dtype bf16
        fig "bf16 rc=$last_rc"
    else
        run $(($(stage_left) / 5)) ops-fp32 "$_p" --backend cuda --dtype fp32
        fig "fp32 rc=$last_rc"
        run $(($(stage_left) / 4)) ops-bf16 "$_p" --backend cuda --dtype bf16
        fig "bf16 rc=$last_rc"
        run $(($(stage_left) / 3)) ops-grad "$_p" --backend cuda --dtype all --grad
        fig "grad rc=$last_rc"
        # the attention's FFMA kernels, which bf16 uses only when asked (tc is the default)
        run $(($(stage_left) / 2)) ops-attn-simple env POA_CUDA_ATTN=simple "$_p" --backend cuda \
            --dtype bf16 --op attention
        fig "attention simple rc=$last_rc"
        if [ "$perf" = yes ]; then
            run - ops-perf "$_p" --backend cuda --dtype bf16 --perf
            fig "perf rc=$last_rc (table in the log)"
            _bw=$(perf_bandwidths "$last_out")
            [ -n "$_bw" ] && fig "GB/s at ViT-L/16 rows: $_bw"
        else
            fig "perf not run (POA_DEVCHECK_PERF=no)"
        fi
    fi
}

stage_memcheck() {
    if [ -z "$sanitizer" ]; then
        [ $dry = yes ] && sanitizer=compute-sanitizer
        [ $dry = yes ] || { stage_note="SKIP (no compute-sanitizer)"; return 0; }
    fi
    _p=$(prog $ops_prog)
    _cs="$sanitizer --error-exitcode 99 --print-limit 20"
    if [ -n "$_p" ]; then
        # the op test's small-shape switch, if it has one (memcheck is slow)
        _small=$("$_p" --help 2>/dev/null | grep -o -e '--small' -e '--quick' | head -n 1)
        [ $dry = yes ] && [ -z "$_small" ] && _small="[--small if the op test has it]"
        if [ $quick = yes ]; then
            run - memcheck-fp32 $_cs --tool memcheck "$_p" --backend cuda --dtype fp32 $_small
            fig "memcheck fp32 rc=$last_rc"
        else
            _n=$(prog $norm_check_prog)
            if [ -n "$_n" ]; then
                run $(($(stage_left) / 5)) memcheck-norm-loss $_cs --tool memcheck "$_n"
                fig "memcheck norm/loss check rc=$last_rc"
            fi
            run $(($(stage_left) * 2 / 5)) memcheck-fp32 $_cs --tool memcheck "$_p" --backend cuda --dtype fp32 $_small
            fig "memcheck fp32 rc=$last_rc"
            run $(($(stage_left) * 2 / 3)) memcheck-bf16 $_cs --tool memcheck "$_p" --backend cuda --dtype bf16 $_small
            fig "memcheck bf16 rc=$last_rc"
            run - racecheck-bf16 $_cs --tool racecheck "$_p" --backend cuda --dtype bf16 $_small
            fig "racecheck bf16 rc=$last_rc"
        fi
    else
        # until the op test exists: memcheck over the GPU smoke test
        _s=$(prog tests/gpu/test_gpu_smoke)
        if [ -z "$_s" ]; then
            stage_note="NOT BUILT"
            fig "neither $ops_prog nor tests/gpu/test_gpu_smoke in the bundle"
            return 0
        fi
        run - memcheck-smoke $_cs --tool memcheck "$_s"
        fig "$ops_prog not built; memcheck on test_gpu_smoke rc=$last_rc"
    fi
}

stage_parity() {
    _progs=$(cd "$bundle" && find tests -type f -name 'test_gpu_*' -perm -u+x | sort |
        awk '/test_gpu_smoke$/ {print; next} {rest = rest $0 "\n"} END {printf "%s", rest}')
    _scripts=$(cd "$repo" && find tests -type f -name 'test_gpu_*.sh' | sort)
    _n=$(echo $_progs $_scripts | wc -w)
    if [ "$_n" -eq 0 ]; then
        stage_note="NOT BUILT"
        fig "no test_gpu_* programs or scripts"
        return 0
    fi
    _res=
    for _t in $_progs $_scripts; do
        case $_t in *.sh) _path=$repo/$_t ;; *) _path=$bundle/$_t ;; esac
        _share=$(($(stage_left) / _n))
        _n=$((_n - 1))
        run $((_share + 15)) "$(basename "$_t")" \
            env POA_TEST_TIMEOUT=$_share sh "$repo/tests/scripts/run-test.sh" "$_path"
        case $last_rc in 0) _r=pass ;; 77) _r=skip ;; 124 | 137) _r=timeout ;; *) _r="FAIL($last_rc)" ;; esac
        _res="$_res $(basename "$_t" .sh)=$_r"
    done
    [ $dry = yes ] && return 0
    fig "$n_pass passed, $n_fail failed, $n_skip skipped, $n_timeout timed out:$_res"
}

stage_train() {
    _p=$(prog src/poa-train)
    if [ -z "$_p" ]; then
        stage_note="NOT BUILT"
        return 0
    fi
    _steps=20
    [ $quick = yes ] && _steps=10
    # iteration 3 profiled op by op (inside the first log window, with the warm-up)
    set -- "$_p" --config "$train_config" --synthetic-data --max-steps $_steps \
        --no-resume --output "$work/train" train.backend=cuda compute_precision.compute_dtype=bf16 \
        train.log_period_iterations=5 --profile-at 3
    [ "$mpiexec_ok" = no ] || set -- mpiexec -n 1 --bind-to none "$@"
    _sampler=
    if [ $dry = no ] && command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$work/train-mem.txt" 2>/dev/null &
        _sampler=$!
    fi
    run - "poa-train-${_steps}-steps" "$@"
    [ -n "$_sampler" ] && kill "$_sampler" 2>/dev/null
    [ $dry = yes ] && return 0
    _imgs=$(grep -o 'img/s [0-9.]*' "$last_out" | tail -n 1 | cut -d' ' -f2)
    _spit=$(grep -o '[0-9.]*s/it' "$last_out" | tail -n 1)
    _mem=$(sort -n "$work/train-mem.txt" 2>/dev/null | tail -n 1)
    _mem=$([ -n "$_mem" ] && awk -v m="$_mem" 'BEGIN { printf "%.1f GiB", m / 1024 }' || echo ?)
    fig "img/s ${_imgs:-?} (last log line), ${_spit:-? s/it}, peak GPU memory $_mem"
    # the four longest ops of the profiled iteration, and what no op covers
    _prof=$(awk '/^profile: / { inprof = 1; n = 0; top = ""; next }
        inprof && /^  outside ops / { printf "iteration 3 per op: %s; outside ops %s%%", top, $4; inprof = 0; next }
        inprof && /^  [a-z_0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+/ { if (n < 4) top = top (n ? ", " : "") $1 " " $4 "%"; n++ }' "$last_out")
    [ -n "$_prof" ] && fig "$_prof"
    # poa's own messages: "poa-train: error: …" or a fatal "[rank r/n host] file:line …"
    [ $last_rc -eq 0 ] || fig "exit $last_rc: $(grep -m 1 -E 'error|^\[rank [0-9]+/[0-9]+ ' "$last_out" | cut -c 1-200)"
    if [ $last_rc -eq 2 ] && grep -q 'does not implement' "$last_out"; then
        n_fail=$((n_fail - 1)) # not a failure of what exists: the backend is not finished
        stage_note="NOT READY"
        fig "the CUDA backend does not implement every op yet: $(grep -o 'does not implement.*' "$last_out" | head -n 1)"
    fi
}

stage_bench() {
    _c=$(prog bench/bench_step)
    if [ -z "$_c" ]; then
        stage_note="NOT BUILT"
        return 0
    fi
    # the op benchmark after it needs about 30 s (it is not run with --quick or without --perf);
    # the step's benchmark comes first: the op benchmark gets its 40 s only from a stage of at
    # least 130 s
    _ops_s=0
    if [ $quick = no ] && [ "$perf" = yes ]; then
        if [ $dry = yes ] || [ "$(stage_left)" -ge 130 ]; then
            _ops_s=40
        else
            fig "op benchmark not run: $(stage_left)s in the stage, under 130s"
        fi
    fi
    set -- "$pyclean" "$repo/bench/bench_step_gpu.py" --c-bench "$work/bin/poa-run $_c" \
        --budget $(($(stage_left) - 10 - _ops_s))
    [ $quick = yes ] && set -- "$@" --quick
    # shellcheck disable=SC2086 # a list of options
    [ -n "$bench_args" ] && set -- "$@" $bench_args
    run - bench-step-gpu "$@"
    if [ $dry = yes ]; then
        [ $_ops_s -gt 0 ] && bench_ops
        return 0
    fi
    grep '^RESULT' "$last_out" >"$work/results.txt"
    while read -r _line; do
        fig "$(echo "$_line" | sed 's/^RESULT //' | tr ' ' '\n' |
            grep -E '^(model|batch|img_s|torch_img_s|torch_setting|ratio_torch|mfu|mem_gb|torch_mem_gb|peak)=' | tr '\n' ' ' | sed 's/ $//')"
    done <"$work/results.txt"
    [ -s "$work/results.txt" ] || fig "no RESULT line"
    # per model, the four ops that took longest in poa's profiled step, and what no op covers
    awk '/^model=/ { split($1, a, "="); model = a[2]; inprof = 0; next }
        /^  profile: / { inprof = 1; n = 0; top = ""; next }
        inprof && /^    outside ops / { printf "%s per op: %s; outside ops %s%%\n", model, top, $4; inprof = 0; next }
        inprof && /^    [a-z_0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+/ { if (n < 4) top = top (n ? ", " : "") $1 " " $4 "%"; n++ }' \
        "$last_out" >"$work/profiles.txt"
    while read -r _line; do fig "$_line"; done <"$work/profiles.txt"
    [ $_ops_s -gt 0 ] && bench_ops
}

# poa's attention against PyTorch's SDPA backends (cuDNN's fused attention among them) and fc1 +
# GELU against cuBLASLt's fused epilogue: the figures that settle two choices of the backend
bench_ops() {
    _p=$(prog $ops_prog)
    [ -n "$_p" ] || return 0
    set -- "$pyclean" "$repo/bench/bench_ops_gpu.py" --c-ops "$work/bin/poa-run $_p" \
        --budget $(($(stage_left) - 5))
    # shellcheck disable=SC2086 # a list of options
    [ -n "$ops_bench_args" ] && set -- "$@" $ops_bench_args
    run - bench-ops-gpu "$@"
    _r=$(grep '^RESULT' "$last_out" | tail -n 1 | sed 's/^RESULT //' | tr ' ' '\n' |
        grep -E '^(attn_poa_ms|attn_torch_best|attn_torch_ms|ratio_attn|attn_cudnn_ms|cudnn_deterministic|fc1_gelu_poa_us|fc1_gelu_torch_us|fc1_gelu_fused_tanh_us)=' |
        tr '\n' ' ' | sed 's/ $//')
    fig "ops: ${_r:-no RESULT line}"
}

# --------------------------------------------------------------------------------- main
say "device-check: bundle $bundle, output $out, stages: $stages, budget ${budget}s, $mode"
if [ $dry = yes ]; then
    if check_bundle; then
        say "bundle: complete ($(echo $bundle_programs | wc -w) programs, $(ls "$bundle/lib" | wc -l) libraries, $(du -sh "$bundle" | cut -f1))"
    else
        say "bundle: INCOMPLETE; remake it with: sh tools/gpu-bundle.sh"
        write_summary
        exit 3
    fi
fi
write_summary
for st in $all_stages; do stage "$st"; done
say ""
say "device-check: done in $(($(now) - start))s; summary $summary"
cat "$summary"
exit $failed
