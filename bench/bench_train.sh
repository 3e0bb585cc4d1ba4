#!/bin/sh
# bench_train.sh — end-to-end training throughput of poa-train (make bench-train): the demo
# configuration on packed Fashion-MNIST, 1 rank (OMP_NUM_THREADS=2) and 2 ranks (1 thread each)
# on this machine, real loader, real checkpoints off.  Reports images/s and the share of the
# iteration time spent waiting for data and waiting for the gradient all-reduce, from
# training_metrics.json (one record per iteration; the first WARMUP iterations are left out).
#   bench_train.sh --build BUILDDIR --src SRCDIR [--steps N] [--images N] [--warmup N]
# Last line: RESULT ranks=… img_s=… data_wait_frac=… comm_exposed_frac=…  (2 ranks)
set -eu
build=. src=. steps=20 images=8192 warmup=2
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$2; shift 2 ;;
    --src) src=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    *) echo "bench_train.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
build=$(cd "$build" && pwd)
py=${PYTHON_REF:-/usr/bin/python3}
out=$build/bench/out-train
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none POA_PROGRESS=0
# OpenBLAS kernels from the CPU flags unless set (tools/openblas-coretype.sh; the SSE3 fallback
# that VMs get otherwise makes every GEMM 3-5x slower).
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$(sh "$src/tools/openblas-coretype.sh")}
[ -z "$OPENBLAS_CORETYPE" ] || export OPENBLAS_CORETYPE
find_prog() { for p in "$build/data-prep/$1" "$build/$1"; do [ -x "$p" ] && { echo "$p"; return; }; done; echo "$1"; }

if [ ! -f "$out/packed/metadata.h5" ]; then
    echo "bench-train: packing $images Fashion-MNIST images into $out/packed"
    "$(find_prog poa-prep-fmnist)" --output "$out/root" --limit "$images" >/dev/null
    "$(find_prog poa-pack)" --root "$out/root" --output "$out/packed" --splits train >/dev/null
fi

echo "bench-train: demo config, $steps iterations per run, first $warmup left out, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-8s %10s %10s %12s %12s %12s\n' ranks threads img/s s/it data_wait comm_exposed comm
for ranks in 1 2; do
    threads=$((2 / ranks))
    rm -rf "$out/run$ranks"
    mpiexec -n $ranks -x OMP_NUM_THREADS=$threads -x POA_PROGRESS "$build/src/poa-train" \
        --config "$src/configs/demo.yaml" --data "$out/packed" --output "$out/run$ranks" \
        --max-steps "$steps" train.log_period_iterations=1 train.checkpoint_period_iterations=100000 \
        evaluation.eval_period_iterations=0 >"$out/run$ranks.log" 2>&1 ||
        { tail -20 "$out/run$ranks.log"; echo "bench-train: the $ranks-rank run failed"; exit 1; }
    "$py" - "$out/run$ranks/training_metrics.json" "$warmup" "$ranks" "$threads" <<'PY' >>"$out/results"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2]):]
t = sum(r["iter_time"] for r in recs)
img = sum(r["current_batch_size"] for r in recs)
data = sum(r["data_time"] for r in recs)
exp = sum(r["comm_exposed_time"] for r in recs)
comm = sum(r["comm_time"] for r in recs)
print("%s %s %.2f %.3f %.4f %.4f %.4f" % (sys.argv[3], sys.argv[4], img / t, t / len(recs), data / t, exp / t, comm / len(recs)))
PY
    read -r n_ranks n_threads img_s s_it data_wait comm_exposed comm_s <<EOF
$(tail -1 "$out/results")
EOF
    printf '%-6s %-8s %10s %10s %12s %12s %11ss\n' "$n_ranks" "$n_threads" "$img_s" "$s_it" "$data_wait" \
        "$comm_exposed" "$comm_s"
    last="RESULT ranks=$n_ranks img_s=$img_s data_wait_frac=$data_wait comm_exposed_frac=$comm_exposed"
    echo "$last" >"$out/result$ranks"
done
echo "bench-train: load at the end $(cut -d' ' -f1-3 /proc/loadavg) (other users' work slows both runs)"
cat "$out/result1"
cat "$out/result2"
