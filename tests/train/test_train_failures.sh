#!/bin/sh
# test_train_failures.sh — every way a run can fail gets a clear message and its exit
# code, and nothing already written is lost:
#   configuration error → 2; missing / unpacked data directory, shard format mismatch → 3;
#   unwritable output → 4; non-finite step → 5 naming the term, last good checkpoint kept;
#   a different world size on resume → allowed, the message gives the re-derived batch and lr.
# Also --profile-at (rank 0's per-op table; a warning for an iteration not run; a negative value
# refused), and --dry-run for the official ViT-L recipe on 32 ranks and for the demo config,
# without data and without writing anything.
# shellcheck source=tests/train/lib.sh
. "$POA_TOP_SRCDIR/tests/train/lib.sh"
setup_out failures
need_python
make_data "$out" 64
base="--config $tiny train.batch_size_per_gpu=4 evaluation.eval_period_iterations=0"

# expect NAME CODE PATTERN [poa-train args]: exit CODE and PATTERN in the output (1 rank)
expect() {
    name=$1 code=$2 pat=$3
    shift 3
    run_ranks 1 "$@" >"$out/$name.log" 2>&1
    rc=$?
    if [ $rc -eq "$code" ] && grep -q -- "$pat" "$out/$name.log"; then
        ok "$name: exit $code ($(grep -m1 -- "$pat" "$out/$name.log" | cut -c1-150))"
    else
        tail -5 "$out/$name.log"
        bad "$name: exit $rc (want $code), pattern '$pat'"
    fi
}

expect config 2 "unknown key 'optim.base_lrr'" $base --data "$out/packed" --output "$out/o1" optim.base_lrr=1
expect nodata 3 "data directory $out/missing: No such file" $base --data "$out/missing" --output "$out/o2"
mkdir -p "$out/empty"
expect unpacked 3 "error: $out/empty/metadata.h5: cannot open" $base --data "$out/empty" --output "$out/o3"
cp -r "$out/packed" "$out/badshard"
"$py" -c "import h5py,sys; f=h5py.File(sys.argv[1],'r+'); f.attrs['format_version']=99" \
    "$out/badshard/train-00000-of-00001.h5"
expect shardversion 3 "version" $base --data "$out/badshard" --output "$out/o4"
: >"$out/afile"
expect unwritable 4 "cannot create output directory $out/afile" $base --data "$out/packed" --output "$out/afile/run"
# train.backend = cuda where no GPU can run it (a build without CUDA, or no device): exit 2 with
# the reason, before anything is written
if ! nvidia-smi -L >/dev/null 2>&1; then
    expect nocuda 2 "train.backend = cuda: " $base --data "$out/packed" --output "$out/o5" train.backend=cuda
    [ ! -e "$out/o5" ] && ok "train.backend = cuda without a GPU wrote nothing" || bad "nocuda wrote $out/o5"
fi
[ ! -e "$out/o1" ] && [ ! -e "$out/o2/checkpoint_0000000.h5" ] && ok "failed starts wrote no checkpoint" || bad "failed starts wrote files"

# non-finite: a good run to iteration 3, then a NaN before iteration 5 of the resumed run
run_ranks 1 $base --data "$out/packed" --output "$out/nan" --max-steps 4 >"$out/nan1.log" 2>&1 ||
    bad "run before the NaN failed"
cp "$out/nan/training_metrics.json" "$out/nan-metrics-before.json"
run_ranks 2 $base --data "$out/packed" --output "$out/nan" --debug-nonfinite-at 5 train.log_period_iterations=1 >"$out/nan2.log" 2>&1
rc=$?
[ $rc -eq 5 ] && ok "non-finite step: exit 5" || { tail -10 "$out/nan2.log"; bad "non-finite step: exit $rc"; }
grep -q "iteration 5: loss term [a-z_0-9]* .*is nan; stopping without writing a checkpoint (the last good one is iteration 3)" "$out/nan2.log" &&
    ok "the message names the term and the last good checkpoint" || bad "non-finite message"
[ "$(grep -c 'error: non-finite step: iteration 5: ' "$out/nan2.log")" = 2 ] && ok "both ranks stopped at the same step" || bad "the ranks did not stop together"
kept=$(cd "$out/nan" && ls checkpoint_*.h5 | tr '\n' ' ')
[ "$kept" = "checkpoint_0000003.h5 " ] && ok "last good checkpoint kept, nothing written" || bad "checkpoints after NaN: $kept"
head -4 "$out/nan/training_metrics.json" | cmp -s - "$out/nan-metrics-before.json" && ok "metrics written before are kept" || bad "metrics of the good run lost"

# different world size on resume: 1 rank wrote the checkpoint (above), 2 ranks continue
run_ranks 1 $base --data "$out/packed" --output "$out/ws" --max-steps 2 >"$out/ws1.log" 2>&1 || bad "1-rank run failed"
run_ranks 2 $base --data "$out/packed" --output "$out/ws" --max-steps 2 >"$out/ws2.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "written by 1 ranks, this run has 2: the global batch is now 8 images and the peak lr 0.000353553" "$out/ws2.log" &&
    ok "world size 1 -> 2 on resume: allowed, batch and lr re-derived" || { tail -10 "$out/ws2.log"; bad "world-size change: exit $rc"; }

# --profile-at IT: every op of iteration IT timed, rank 0's table printed (once, with 2 ranks);
# an iteration this invocation does not run gets a warning; a negative value is a usage error
run_ranks 2 $base --data "$out/packed" --output "$out/prof" --max-steps 2 --profile-at 1 >"$out/prof.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q '^profile of iteration 1 on rank 0 (--profile-at' "$out/prof.log" &&
    [ "$(grep -c '^profile: 1 step(s), [0-9]* timed op calls per step' "$out/prof.log")" -eq 1 ] &&
    grep -q '^  act_gemm_bias  ' "$out/prof.log" && grep -q '^  adamw  ' "$out/prof.log" &&
    grep -q '^  outside ops  ' "$out/prof.log" && ok "--profile-at 1: rank 0's per-op table of iteration 1" ||
    { tail -20 "$out/prof.log"; bad "--profile-at: exit $rc, no table"; }
run_ranks 1 $base --data "$out/packed" --output "$out/prof" --max-steps 1 --profile-at 1 >"$out/prof2.log" 2>&1
grep -q 'warning: --profile-at 1: this invocation runs iterations 2 to 2; nothing will be profiled' "$out/prof2.log" &&
    ! grep -q '^profile:' "$out/prof2.log" && ok "--profile-at an iteration not run: a warning" ||
    { tail -5 "$out/prof2.log"; bad "--profile-at outside the run: no warning"; }
expect profile-negative 2 "--profile-at" $base --data "$out/packed" --output "$out/o5" --profile-at -2

# --dry-run: the official ViT-L recipe on 32 ranks and the demo config, no data, nothing written
run_ranks 1 --config "$top_src/configs/vitl_poa.yaml" --dry-run --ranks 32 --output "$out/dry" >"$out/dry.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "global batch 1600, peak lr 0.005 " "$out/dry.log" &&
    grep -q "parameters .*362212352 (backbone 303351808, heads 58860544)" "$out/dry.log" &&
    grep -q "candidate list of 573, cycle of 572" "$out/dry.log" && grep -q "optimizer (AdamW m, v) .*2763.5 MiB" "$out/dry.log" &&
    grep -q "step total" "$out/dry.log" && grep -q "peak backend memory" "$out/dry.log" && [ ! -e "$out/dry" ] &&
    grep -q -E "^CUDA devices visible on this node: [0-9]+$" "$out/dry.log" &&
    ok "dry run of the ViT-L recipe (32 ranks)" || { tail -30 "$out/dry.log"; bad "ViT-L dry run: exit $rc"; }
# a bf16 CUDA job planned on a machine that may have no GPU (and a build that may lack CUDA):
# 2-byte activations (a global crop of ViT-L needs less than 60 % of its fp32 workspace),
# compute copies of the GEMM weights, drop path's kept images, and the step's planned peak within
# the 45 GB budget (docs/performance.md, "Memory of the step")
run_ranks 1 --config "$top_src/configs/vitl_poa.yaml" --dry-run --ranks 32 train.backend=cuda \
    compute_precision.compute_dtype=bf16 >"$out/drycuda.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "backend cuda" "$out/drycuda.log" && grep -q "compute bf16" "$out/drycuda.log" &&
    grep -q "GEMM weights, compute copies (student, teacher) .*1381.7 MiB" "$out/drycuda.log" &&
    grep -q "activations / image, global crop .*112.6 MiB" "$out/drycuda.log" &&
    grep -q "kept activations, intact student, global (80 of 100 images)" "$out/drycuda.log" &&
    awk '/peak backend memory/ { for (i = 1; i < NF; i++) if ($(i + 1) == "GB;") gb = $i + 0 }
         END { exit !(gb > 30 && gb <= 45) }' "$out/drycuda.log" &&
    ok "dry run of a bf16 CUDA job without its device" || { tail -30 "$out/drycuda.log"; bad "CUDA dry run: exit $rc"; }
run_ranks 1 --config "$top_src/configs/vitl_poa.yaml" --dry-run --ranks 32 train.backend=cpu >"$out/drycpu.log" 2>&1 &&
    grep -q "compute fp32" "$out/drycpu.log" && grep -q "activations / image, global crop .*284.0 MiB" "$out/drycpu.log" &&
    ! grep -q "compute copies" "$out/drycpu.log" && ok "the CPU plan is fp32 without compute copies" || bad "CPU dry run precision"
run_ranks 1 --config "$top_src/configs/demo.yaml" --dry-run >"$out/drydemo.log" 2>&1 &&
    grep -q "12 sub-networks\|4 depths = 12" "$out/drydemo.log" && ok "dry run of the demo config" || bad "demo dry run"
finish
