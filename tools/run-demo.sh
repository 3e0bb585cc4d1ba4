#!/bin/sh
# run-demo.sh — THE main job (README "Quick start"): install, build, and run the pipeline on the
# embedded default data (Fashion-MNIST from Debian's dataset-fashion-mnist), on this machine.
#   sh tools/run-demo.sh [WORKDIR]        (default WORKDIR: ./demo-run)
# Stages: install deps → build (CPU) → poa-prep-fmnist → poa-pack (+ --verify) → poa-train
# (2 MPI ranks, configs/demo.yaml: 1,200 iterations, about 6 minutes of training on 2 idle cores)
# → the final checkpoint read back with h5py and checked against hdf5-schemas/checkpoint.md →
# poa-extract --all (every sub-network as a standalone ViT) → poa-eval-knn --all-subnets --pixels
# on the full splits (every sub-network and the raw-pixel baseline) and on the teacher of every
# evaluation checkpoint → WORKDIR/report/ (loss.png, knn_heatmap.png, knn_over_time.png,
# summary.md; tools/demo-report.py).  Re-running it skips what is done and resumes training.
# Environment: POA_DEMO_CONFIG (the training configuration, default configs/demo.yaml;
# configs/fmnist.yaml is the long run, 2.4-2.8 hours on 2 idle cores, that beats raw pixels:
# docs/demo-learning-study.md; one WORKDIR per configuration), POA_JOBS (make -j, default 2),
# POA_DEMO_RANKS (default 2), PYTHON (the Python
# that has Debian's python3-h5py/python3-torch, default /usr/bin/python3), OPENBLAS_CORETYPE
# (default: chosen from the CPU flags, below).
# Exit status: 0 done; 2 POA_DEMO_CONFIG names no file, or WORKDIR holds another configuration's
# run; otherwise the failing stage's (its output says which).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$top/demo-run}
jobs=${POA_JOBS:-2}
ranks=${POA_DEMO_RANKS:-2}
config=${POA_DEMO_CONFIG:-$top/configs/demo.yaml}
[ -f "$config" ] || { echo "demo: POA_DEMO_CONFIG=$config: no such file" >&2; exit 2; }
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
mkdir -p "$work"
work=$(cd "$work" && pwd)
# A work directory holds one configuration's run: resuming it with another would mix two runs.
if [ -f "$work/.demo-config" ] && [ "$(cat "$work/.demo-config")" != "$config" ]; then
    echo "demo: $work holds a run of $(cat "$work/.demo-config"), not of $config;" \
         "choose another WORKDIR (or remove this one)" >&2
    exit 2
fi
echo "$config" >"$work/.demo-config"
build=$work/build
# The Debian packages put h5py/torch under /usr/bin/python3; a python3 earlier in PATH (pyenv,
# a virtualenv) usually lacks them.
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

say() { echo; echo "=== demo: $* ($(date -u +%H:%M:%S), load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null))"; }
t_start=$(date +%s)

say "install Debian packages"
sh "$top/tools/install-deps.sh"

# OpenBLAS picks its kernels from the CPU model; when a hypervisor hides it (as on many VMs),
# OpenBLAS falls back to its generic Prescott (SSE3) kernels, 3-5x slower GEMMs.  Unless the
# user set OPENBLAS_CORETYPE, choose the kernel set from the CPU flags, as bench/local.mk does
# (poa-train warns at start when the fallback is in use).
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$(sh "$top/tools/openblas-coretype.sh")}
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
    export OPENBLAS_CORETYPE
    echo "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE"
fi

say "build (CPU backend) in $build"
if [ ! -x "$top/configure" ]; then (cd "$top" && autoreconf -fi); fi
mkdir -p "$build"
if [ ! -f "$build/Makefile" ]; then
    (cd "$build" && "$top/configure" --without-cuda >configure.out 2>&1) || {
        cat "$build/configure.out"; exit 1; }
fi
make -C "$build" -j"$jobs" >"$build/make.out" 2>&1 || { tail -40 "$build/make.out"; exit 1; }
prep=$build/poa-prep-fmnist
pack=$build/poa-pack
train=$build/src/poa-train
for p in "$prep" "$pack" "$train"; do
    [ -x "$p" ] || { echo "demo: $p was not built (see $build/make.out)"; exit 1; }
done
echo "built: poa-prep-fmnist poa-pack poa-train"

say "Fashion-MNIST → ImageNet layout"
if [ -f "$work/fmnist/labels.txt" ]; then
    echo "$work/fmnist exists: kept"
else
    rm -rf "$work/fmnist"
    "$prep" --output "$work/fmnist"
fi

say "pack into sharded HDF5"
if [ -f "$work/packed/metadata.h5" ] && "$pack" --verify "$work/packed" >/dev/null 2>&1; then
    echo "$work/packed exists and verifies: kept"
else
    rm -rf "$work/packed"
    "$pack" --root "$work/fmnist" --output "$work/packed"
    "$pack" --verify "$work/packed"
fi

say "pretrain ($(basename "$config"), $ranks MPI ranks)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
t_train=$(date +%s)
mpiexec -n "$ranks" --oversubscribe -x OMP_NUM_THREADS=1 \
    "$train" --config "$config" --data "$work/packed" --output "$work/train"
t_end=$(date +%s)

say "the final checkpoint, read back"
echo "wall time: training $((t_end - t_train)) s, whole demo $((t_end - t_start)) s"
ckpt=$(ls "$work/train"/checkpoint_*.h5 | sort | tail -n 1)
"$PYTHON" - "$work/train/training_metrics.json" "$ckpt" "$top/hdf5-schemas" <<'EOF'
import json, math, sys
metrics, ckpt, schemas = sys.argv[1:4]
recs = [json.loads(l) for l in open(metrics) if l.strip()]
terms = ["dino_is", "dino_es1", "distill_global", "distill_local", "ibot_is", "ibot_es",
         "koleo_is", "koleo_es"]
print("loss curve (training_metrics.json):")
print("%5s %9s " % ("it", "total") + " ".join("%8s" % t[:8] for t in terms) + "  ibot    tt")
for r in recs:
    print("%5d %9.4f " % (r["iteration"], r["total_loss"])
          + " ".join("%8.4f" % r[t] for t in terms)
          + "  %d  %.4f" % (r["ibot_active"], r["teacher_temp"]))
tot = [r["total_loss"] for r in recs]
print("total loss %.4f -> %.4f over %d records" % (tot[0], tot[-1], len(tot)))
# The checkpoint, read back with h5py + torch (hdf5-schemas/load_checkpoint_example.py), and
# its /teacher names and shapes against the table of hdf5-schemas/checkpoint.md.
sys.path.insert(0, schemas)
import h5py
from load_checkpoint_example import read_state_dict, model_meta
sd = read_state_dict(ckpt, "teacher")
with h5py.File(ckpt, "r") as f:
    m = {k: f["model"].attrs[k] for k in f["model"].attrs}
    print("%s: format %s v%d, content %s, iteration %d, groups %s" % (
        ckpt, f.attrs["format"], f.attrs["format_version"], f.attrs["content"],
        f.attrs["iteration"], sorted(f.keys())))
    for g in ("student", "optimizer/exp_avg", "optimizer/exp_avg_sq"):
        same = [k for k in f[g]] == list(sd) and all(f[g][k].shape == tuple(sd[k].shape) for k in sd)
        print("/%s: %d tensors, names and shapes as /teacher: %s" % (g, len(f[g]), same))
        assert same
D, L, P, S = int(m["embed_dim"]), int(m["depth"]), int(m["patch_size"]), int(m["img_size"])
C, HID, BOT = int(m["in_chans"]), int(m["head_hidden_dim"]), int(m["head_bottleneck_dim"])
M = int(m["mlp_ratio"]) * D
want = {"backbone.cls_token": [1, 1, D], "backbone.pos_embed": [1, 1 + (S // P) ** 2, D],
        "backbone.mask_token": [1, D], "backbone.patch_embed.proj.weight": [D, C, P, P],
        "backbone.patch_embed.proj.bias": [D]}
for i in range(L):
    b = "backbone.blocks.%d." % i
    want.update({b + "norm1.norm.weight": [D], b + "norm1.norm.bias": [D],
                 b + "attn.qkv.linear.weight": [3 * D, D], b + "attn.qkv.linear.bias": [3 * D],
                 b + "attn.proj.linear.weight": [D, D], b + "attn.proj.linear.bias": [D],
                 b + "ls1.gamma": [D], b + "norm2.norm.weight": [D], b + "norm2.norm.bias": [D],
                 b + "mlp.fc1.linear.weight": [M, D], b + "mlp.fc1.linear.bias": [M],
                 b + "mlp.fc2.linear.weight": [D, M], b + "mlp.fc2.linear.bias": [D],
                 b + "ls2.gamma": [D]})
want.update({"backbone.norm.norm.weight": [D], "backbone.norm.norm.bias": [D]})
for h, K in enumerate(int(k) for k in m["head_prototypes"]):
    want.update({"dino_head.mlp%d.0.linear.weight" % h: [HID, D],
                 "dino_head.mlp%d.0.linear.bias" % h: [HID],
                 "dino_head.mlp%d.2.weight" % h: [HID, HID], "dino_head.mlp%d.2.bias" % h: [HID],
                 "dino_head.mlp%d.4.weight" % h: [BOT, HID], "dino_head.mlp%d.4.bias" % h: [BOT],
                 "dino_head.last_layer%d.weight_g" % h: [K, 1],
                 "dino_head.last_layer%d.weight_v" % h: [K, BOT]})
got = {k: list(v.shape) for k, v in sd.items()}
bad = sorted(set(want) ^ set(got)) + [k for k in want if k in got and want[k] != got[k]]
print("/teacher: %d tensors, %d values; model %s" % (len(sd), sum(v.numel() for v in sd.values()),
                                                     model_meta(ckpt)))
print("names and shapes as documented in hdf5-schemas/checkpoint.md: %s"
      % ("yes" if not bad else "NO: " + ", ".join(bad[:10])))
assert not bad
assert all(math.isfinite(float(v.abs().sum())) for v in sd.values())
EOF
extract=$build/src/poa-extract
knn=$build/src/poa-eval-knn
for p in "$extract" "$knn"; do
    [ -x "$p" ] || { echo "demo: $p was not built (see $build/make.out)"; exit 1; }
done
# newer_than OUT IN: OUT exists and IN was not written after it (a stage is redone when its input
# changed); find -newer, as test's -nt is not POSIX
newer_than() { [ -f "$1" ] && [ -z "$(find "$2" -prune -newer "$1" 2>/dev/null)" ]; }

say "extract every sub-network of the teacher ($work/extracted)"
if newer_than "$work/extracted/DONE" "$ckpt"; then
    echo "$work/extracted is up to date: kept"
else
    rm -rf "$work/extracted"
    "$extract" --checkpoint "$ckpt" --output "$work/extracted" --all
    echo "$ckpt" >"$work/extracted/DONE"
fi

say "k-NN of every sub-network and of the raw pixels, full splits ($ranks MPI ranks)"
if newer_than "$work/knn/results_eval_knn.json" "$ckpt"; then
    echo "$work/knn is up to date: kept"
else
    mpiexec -n "$ranks" --oversubscribe -x OMP_NUM_THREADS=1 \
        "$knn" --checkpoint "$ckpt" --data "$work/packed" --output "$work/knn" --all-subnets --pixels
fi

say "k-NN of the teacher at each evaluation checkpoint"
# The evaluation checkpoints before the final one (the final one was measured above).
final_it=$(basename "$ckpt" .h5 | sed 's/^checkpoint_0*//')
earlier=
for d in "$work/train/eval"/training_*; do
    it=${d##*_}
    [ -f "$d/teacher_checkpoint.h5" ] && [ "$it" -lt "${final_it:-0}" ] && earlier="$earlier $d/teacher_checkpoint.h5"
done
if [ -z "$earlier" ]; then
    echo "no evaluation checkpoint before iteration $final_it"
elif newer_than "$work/knn-over-time/results_eval_knn.json" "$ckpt"; then
    echo "$work/knn-over-time is up to date: kept"
else
    # shellcheck disable=SC2086
    mpiexec -n "$ranks" --oversubscribe -x OMP_NUM_THREADS=1 \
        "$knn" --checkpoint $earlier --data "$work/packed" --output "$work/knn-over-time" --k 20
fi

say "report ($work/report)"
"$PYTHON" "$top/tools/demo-report.py" --run "$work/train" --knn "$work/knn" \
    --over-time "$work/knn-over-time" --extracted "$work/extracted" --output "$work/report"
echo "demo: done in $(( $(date +%s) - t_start )) s; outputs in $work (training: $work/train, models: $work/extracted, report: $work/report/summary.md)"
