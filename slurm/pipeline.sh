#!/bin/bash
# pipeline.sh — submit the poa pipeline to Slurm as one chain of jobs:
#   pack → pretrain → extract → eval
# each job starting only when the one before it succeeded (sbatch --dependency=afterok).  Prints
# the job ids and where each stage will write, and saves the same table in WORK/pipeline.jobs.
#
# Usage: slurm/pipeline.sh --work DIR [options]
#   --work DIR            every stage writes under DIR (required):
#                           DIR/packed    pack:     the sharded HDF5 data set (unless --packed)
#                           DIR/pretrain  pretrain: run directory (checkpoints, metrics, config)
#                           DIR/extract   extract:  the extracted sub-networks
#                           DIR/eval      eval:     k-NN results (DIR/eval/knn)
#                           DIR/logs      the job logs, <stage>-<jobid>.out
#   --images ROOT         ImageNet-layout folder to pack (required with the pack stage)
#   --packed DIR          packed data set (default DIR/packed; without the pack stage it must
#                         exist or be written by the job given to --after)
#   --config FILE         poa-train configuration (default: configs/vitl_poa.yaml next to slurm/)
#   --set KEY=VALUE       configuration override for poa-train (repeatable; checked with
#                         poa-config before anything is submitted)
#   --stages LIST         comma-separated stages to submit, in pipeline order (default
#                         pack,pretrain,extract,eval); a stage left out is taken as done
#   --pack-mode MODE      mpi (default): one job whose MPI ranks pack disjoint shards;
#                         array: a job array whose tasks pack every N-th shard, then a one-task
#                         job that writes metadata.h5 (if no task did) and verifies
#   --pack-tasks N        MPI ranks of the pack job (mpi; default: pack.sbatch's --ntasks) or
#                         array tasks (array; default 16)
#   --pack-args STR       extra poa-pack options (PACK_ARGS), e.g. "--max-side 512"
#   --extract-args STR    extra options for the extract stage (EXTRACT_ARGS)
#   --eval-args STR       extra options for the eval stage (EVAL_ARGS)
#   --sbatch OPT          sbatch option for every job, e.g. --sbatch --partition=gpu (repeatable)
#   --pack-sbatch OPT, --pretrain-sbatch OPT, --extract-sbatch OPT, --eval-sbatch OPT
#                         sbatch option for one stage's job(s) (repeatable), e.g.
#                         --pretrain-sbatch --nodes=8
#   --after JOBID         the first stage waits for this job to succeed
#   --dry-run             print the sbatch command lines (with their environment) instead of
#                         submitting; writes nothing
#   -h, --help            print this help
# Environment: POA_BIN (directory of the poa programs, default: this script's directory/../bin),
# SBATCH (the sbatch command, default sbatch).
#
# Each stage is one script in this directory: pack.sbatch, pretrain.sbatch, extract.sbatch,
# eval.sbatch; pipeline.sh stops (exit 2) before submitting anything when a stage's script or
# program is missing, when an option is wrong, or when the configuration does not check.
# What every stage's script receives (environment): POA_BIN, and
#   pack      IMAGENET, PACKED, PACK_ARGS (array mode: PACK_VERIFY=0 is implied by the array)
#   pretrain  PACKED, OUTPUT=DIR/pretrain, CONFIG; the --set overrides as arguments
#   extract   RUN=DIR/pretrain, CONFIG, OUTPUT=DIR/extract, EXTRACT_ARGS
#   eval      RUN=DIR/pretrain, EXTRACTED=DIR/extract, PACKED, OUTPUT=DIR/eval, EVAL_ARGS
# Exit codes: 0 submitted (or printed), 1 sbatch refused a job (the jobs of this chain already
# submitted are cancelled), 2 bad option, missing script, program or input, or a configuration
# that poa-config rejects.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
all_stages="pack pretrain extract eval"

die() { echo "pipeline.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^[^#]/{/^#!/d;/^#/s/^# \{0,1\}//p}' "$0"; }

work='' images='' packed='' config='' stages="pack,pretrain,extract,eval" pack_mode=mpi pack_tasks=''
pack_args='' extract_args='' eval_args='' after='' dry_run=no
sets=() sb_all=() sb_pack=() sb_pretrain=() sb_extract=() sb_eval=()
need() { [ $# -ge 2 ] || die "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
    case "$1" in
    --work) need "$@"; work=$2; shift ;;
    --images) need "$@"; images=$2; shift ;;
    --packed) need "$@"; packed=$2; shift ;;
    --config) need "$@"; config=$2; shift ;;
    --set) need "$@"; sets+=("$2"); shift ;;
    --stages) need "$@"; stages=$2; shift ;;
    --pack-mode) need "$@"; pack_mode=$2; shift ;;
    --pack-tasks) need "$@"; pack_tasks=$2; shift ;;
    --pack-args) need "$@"; pack_args=$2; shift ;;
    --extract-args) need "$@"; extract_args=$2; shift ;;
    --eval-args) need "$@"; eval_args=$2; shift ;;
    --sbatch) need "$@"; sb_all+=("$2"); shift ;;
    --pack-sbatch) need "$@"; sb_pack+=("$2"); shift ;;
    --pretrain-sbatch) need "$@"; sb_pretrain+=("$2"); shift ;;
    --extract-sbatch) need "$@"; sb_extract+=("$2"); shift ;;
    --eval-sbatch) need "$@"; sb_eval+=("$2"); shift ;;
    --after) need "$@"; after=$2; shift ;;
    --dry-run) dry_run=yes ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done

# ------------------------------------------------------------------ check the request
[ -n "$work" ] || die "--work DIR is required (see --help)"
case "$work" in /*) ;; *) work=$PWD/$work ;; esac
selected=()
IFS=, read -r -a requested <<<"$stages"
last=-1
for s in "${requested[@]}"; do
    i=0 pos=-1
    for a in $all_stages; do
        [ "$a" = "$s" ] && pos=$i
        i=$((i + 1))
    done
    [ $pos -ge 0 ] || die "--stages: unknown stage '$s' (stages: ${all_stages// /,})"
    [ $pos -gt $last ] || die "--stages: '$s' repeated or out of order (order: ${all_stages// /,})"
    last=$pos
    selected+=("$s")
done
[ ${#selected[@]} -gt 0 ] || die "--stages names no stage"
has() { case " ${selected[*]} " in *" $1 "*) return 0 ;; esac; return 1; }
case "$pack_mode" in mpi | array) ;; *) die "--pack-mode wants mpi or array, got '$pack_mode'" ;; esac
if [ -n "$pack_tasks" ]; then
    case "$pack_tasks" in '' | *[!0-9]* | 0) die "--pack-tasks wants a positive integer, got '$pack_tasks'" ;; esac
fi
[ "$pack_mode" = array ] && pack_tasks=${pack_tasks:-16}
case "$after" in *[!0-9]*) die "--after wants a job id, got '$after'" ;; esac

for s in "${selected[@]}"; do
    [ -f "$here/$s.sbatch" ] || die "stage '$s' needs $here/$s.sbatch, which does not exist"
done
POA_BIN=${POA_BIN:-$here/../bin}
case "$POA_BIN" in /*) ;; *) POA_BIN=$PWD/$POA_BIN ;; esac
programs() {
    case $1 in
    pack) echo poa-pack ;;
    pretrain) echo poa-train ;;
    extract) echo poa-extract ;;
    eval) echo poa-eval-knn ;;
    esac
}
for s in "${selected[@]}"; do
    for p in $(programs "$s"); do
        [ -x "$POA_BIN/$p" ] || die "stage '$s' needs $POA_BIN/$p, which is not there (set POA_BIN to the directory of the poa programs)"
    done
done
packed=${packed:-$work/packed}
case "$packed" in /*) ;; *) packed=$PWD/$packed ;; esac
if has pack; then
    [ -n "$images" ] || die "the pack stage needs --images ROOT (an ImageNet-layout folder)"
    [ -f "$images/labels.txt" ] || die "--images $images: no labels.txt there (not an ImageNet-layout folder)"
    images=$(cd "$images" && pwd)
elif [ -z "$after" ] && [ "${selected[0]}" != extract ] && [ "${selected[0]}" != eval ]; then
    [ -f "$packed/metadata.h5" ] || die "$packed/metadata.h5 does not exist: add the pack stage, or --after the job that writes it"
fi
config=${config:-$here/../configs/vitl_poa.yaml}
[ -f "$config" ] || die "--config $config: no such file"
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
if has pretrain && [ -x "$POA_BIN/poa-config" ]; then
    msg=$("$POA_BIN/poa-config" --quiet --config "$config" "${sets[@]}" 2>&1) ||
        die "the configuration does not check (poa-config --config $config ${sets[*]}):
$msg"
fi
SBATCH=${SBATCH:-sbatch}
if [ $dry_run = no ]; then
    command -v "${SBATCH%% *}" >/dev/null 2>&1 || die "$SBATCH not found (is this a Slurm login node?)"
fi

# ------------------------------------------------------------------ submit
q() { printf '%q' "$1"; }
# logname PATTERN JOB: the log of a job (%j, %A: job id; an array's %a stays)
logname() {
    local l=${1//%j/$2}
    echo "$work/logs/${l//%A/$2}"
}
submitted=()
table=()
# submit LABEL DEPENDENCY OUTPUT LOGPATTERN ENV... -- SBATCH-OPTIONS... -- SCRIPT ARGS...
# Sets job to the new job's id (dry run: a placeholder, $JOB_<label>) and adds a row to the table.
submit() {
    local label=$1 dep=$2 out=$3 log=$4
    shift 4
    local envs=() opts=() cmd=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    while [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    cmd=("$@")
    local sb=(--parsable --job-name="poa-$label" --output="$work/logs/$log" --open-mode=append)
    [ -n "$dep" ] && sb+=(--dependency="afterok:$dep")
    sb+=("${sb_all[@]}" "${opts[@]}")
    if [ $dry_run = yes ]; then
        # A line of a shell script that submits the chain: JOB_<label>=$(... sbatch --parsable ...)
        local line v
        job="\$JOB_${label//-/_}"
        line="${job#\$}=\$("
        for v in "POA_BIN=$POA_BIN" "${envs[@]}"; do line+="${v%%=*}=$(q "${v#*=}") "; done
        line+="$SBATCH"
        for v in "${sb[@]}" "${cmd[@]}"; do line+=" $(q "$v")"; done
        echo "${line//\\\$JOB_/\$JOB_})"
    else
        local reply
        reply=$(env POA_BIN="$POA_BIN" "${envs[@]}" $SBATCH "${sb[@]}" "${cmd[@]}" 2>&1)
        job=${reply%%;*}
        case "$job" in '' | *[!0-9]*)
            echo "pipeline.sh: sbatch refused the $label job: $reply" >&2
            if [ ${#submitted[@]} -gt 0 ]; then
                echo "pipeline.sh: cancelling the jobs of this chain already submitted: ${submitted[*]}" >&2
                scancel "${submitted[@]}" 2>/dev/null
            fi
            exit 1
            ;;
        esac
        submitted+=("$job")
    fi
    table+=("$(printf '%-12s %-10s %-18s %-40s %s' "$label" "$job" "${dep:+afterok:$dep}" "$out" "$(logname "$log" "$job")")")
}

if [ $dry_run = no ]; then
    mkdir -p "$work/logs" || die "cannot create $work/logs"
else
    echo "# pipeline.sh --dry-run: the chain as a shell script (JOB_x: the id of job x)"
    echo "mkdir -p $(q "$work/logs")"
fi
dep=$after
for s in "${selected[@]}"; do
    case $s in
    pack)
        envs=("IMAGENET=$images" "PACKED=$packed" "PACK_ARGS=$pack_args")
        if [ "$pack_mode" = array ]; then
            submit pack-array "$dep" "$packed (shards)" "pack-array-%A_%a.out" "${envs[@]}" -- \
                --array="0-$((pack_tasks - 1))" --ntasks=1 "${sb_pack[@]}" -- "$here/pack.sbatch"
            dep=$job
            submit pack "$dep" "$packed" "pack-%j.out" "${envs[@]}" -- \
                --ntasks=1 "${sb_pack[@]}" -- "$here/pack.sbatch"
        else
            submit pack "$dep" "$packed" "pack-%j.out" "${envs[@]}" -- \
                ${pack_tasks:+--ntasks="$pack_tasks"} "${sb_pack[@]}" -- "$here/pack.sbatch"
        fi
        ;;
    pretrain)
        submit pretrain "$dep" "$work/pretrain" "pretrain-%j.out" \
            "PACKED=$packed" "OUTPUT=$work/pretrain" "CONFIG=$config" -- \
            "${sb_pretrain[@]}" -- "$here/pretrain.sbatch" "${sets[@]}"
        ;;
    extract)
        submit extract "$dep" "$work/extract" "extract-%j.out" \
            "RUN=$work/pretrain" "CONFIG=$config" "OUTPUT=$work/extract" "EXTRACT_ARGS=$extract_args" -- \
            "${sb_extract[@]}" -- "$here/extract.sbatch"
        ;;
    eval)
        submit eval "$dep" "$work/eval" "eval-%j.out" \
            "RUN=$work/pretrain" "EXTRACTED=$work/extract" "PACKED=$packed" "OUTPUT=$work/eval" \
            "EVAL_ARGS=$eval_args" -- "${sb_eval[@]}" -- "$here/eval.sbatch"
        ;;
    esac
    dep=$job
done

header=$(printf '%-12s %-10s %-18s %-40s %s' stage job depends output log)
if [ $dry_run = yes ]; then
    echo "# the chain would write:"
    printf '# %s\n' "$header" "${table[@]}"
    exit 0
fi
printf '%s\n' "# slurm/pipeline.sh, submitted $(date -u +%FT%TZ)" "$header" "${table[@]}" >"$work/pipeline.jobs"
echo "pipeline.sh: submitted ${#submitted[@]} job(s): ${submitted[*]}"
printf '%s\n' "$header" "${table[@]}"
echo "pipeline.sh: this table is in $work/pipeline.jobs; follow with: squeue -j $(
    IFS=,
    echo "${submitted[*]}"
); cancel the chain with: scancel ${submitted[*]}"
