#!/bin/sh
# test_gpu_train_parity.sh — whole runs of poa-train on the CUDA backend against the CPU
# backend (src/backend/cuda/README.md, "Verification on a GPU"), on synthetic data so that no data set is needed on the GPU
# machine.  Exit 77 without a CUDA device (poa-train's train.backend=auto does not choose cuda).
#
#   fp32   the tiny and the demo configuration, 10 steps on each backend, CUDA in fp32 with TF32
#          off: the losses of iterations 0-4 within 1e-4 relative, and after 5 steps (the
#          checkpoint of iteration 4) student, teacher and both AdamW moments within 1e-4
#          (norm-wise per group; check_train.py close).  Every gradient tensor is compared
#          against the float64 reference by test_gpu_step_parity.sh.
#   bf16   the same 10 steps with compute_precision.compute_dtype=bf16 on CUDA against the CPU's
#          fp32 run: every loss term of every iteration within 2e-2 relative.
#   memory a run whose step cannot fit the device stops before allocating (exit 2, sizes named).
#   resume a bf16 run stopped after iteration 5 (--max-steps 6) and resumed on the same GPU gives
#          bit-identical losses and a bit-identical final checkpoint.
#   ranks  with two or more GPUs: 2 ranks (one GPU each, NCCL) equal 1 rank with 2 rank groups,
#          fp32, 3 steps, with the tolerances of the CPU's test_train_equiv.sh; skipped on one
#          GPU (the one-rank NCCL communicator runs in every run above and in test_gpu_nccl).
#
# The tiny runs use LayerScale 1 and iBOT from iteration 0, as test_train_equiv.sh explains:
# with the official 1e-5 the tiny model's KoLeo term measures rounding noise.
# shellcheck source=tests/train/lib.sh
. "$POA_TOP_SRCDIR/tests/train/lib.sh"
need_python
[ -x "$train" ] || { echo "no $train"; exit 99; }
"$train" --config "$tiny" --dry-run train.backend=auto 2>&1 | grep -q ', backend cuda$' ||
    { echo "skip: no CUDA device (train.backend=auto chooses the CPU)"; exit 77; }
setup_out gpu-parity

# a step that cannot fit the device (the ViT-L recipe at 400 images per GPU plans about 300 GiB)
# stops before allocating: exit 2 (configuration), both sizes named, nothing written
run_ranks 1 --config "$top_src/configs/vitl_poa.yaml" --synthetic-data --max-steps 1 \
    --output "$out/too-big" train.backend=cuda train.batch_size_per_gpu=400 >"$out/too-big.log" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "needs [0-9.]* GiB of device memory .* the device has [0-9.]* GiB free" "$out/too-big.log" &&
    [ ! -e "$out/too-big" ] && ok "a step larger than the device's memory: exit 2 with both sizes, nothing written" ||
    { tail -n 5 "$out/too-big.log"; bad "a step larger than the device: exit $rc"; }

base="--synthetic-data --max-steps 10 train.log_period_iterations=1
      train.checkpoint_period_iterations=5 train.checkpoint_keep=4"
tiny_cfg="--config $tiny optim.ibot_activate_epochs=0 student.layerscale=1.0"
demo_cfg="--config $top_src/configs/demo.yaml"

# run NAME BACKEND DTYPE CONFIG... : one rank, output in $out/NAME, log in $out/NAME.log
run() {
    name=$1 backend=$2 dtype=$3
    shift 3
    run_ranks 1 "$@" $base --output "$out/$name" train.backend=$backend \
        compute_precision.compute_dtype=$dtype >"$out/$name.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] && ok "$name: exit 0" || { tail -n 20 "$out/$name.log"; bad "$name exited $rc"; }
}

# POA_GPU_PARITY_CONFIGS chooses the configurations of the fp32 and bf16 comparisons (default
# both); the CUDA emulator's CI phase takes the tiny one alone (tests/gpu/emu/README.md)
configs=${POA_GPU_PARITY_CONFIGS:-tiny demo}
case " $configs " in *" tiny "*) ;; *) echo "POA_GPU_PARITY_CONFIGS must include tiny (the resume check continues its run)"; exit 99 ;; esac
for c in $configs; do
    case $c in
    tiny) cfg=$tiny_cfg ;;
    demo) cfg=$demo_cfg ;;
    *) echo "POA_GPU_PARITY_CONFIGS: unknown configuration '$c' (tiny, demo)"; exit 99 ;;
    esac
    run $c-cpu cpu fp32 $cfg
    run $c-cuda-fp32 cuda fp32 $cfg
    run $c-cuda-bf16 cuda bf16 $cfg
    check losses "$out/$c-cpu/training_metrics.json" "$out/$c-cuda-fp32/training_metrics.json" \
        --rtol 1e-4 --to 4 && ok "$c fp32: losses of iterations 0-4 within 1e-4" ||
        bad "$c fp32: losses differ"
    check close "$out/$c-cuda-fp32/checkpoint_0000004.h5" "$out/$c-cpu/checkpoint_0000004.h5" \
        --params 1e-4 --moments 1e-4 && ok "$c fp32: parameters, teacher and moments after 5 steps within 1e-4" ||
        bad "$c fp32: parameters differ"
    check losses "$out/$c-cuda-bf16/training_metrics.json" "$out/$c-cpu/training_metrics.json" \
        --rtol 2e-2 && ok "$c bf16: every loss term of 10 steps within 2e-2 of CPU fp32" ||
        bad "$c bf16: losses differ from CPU fp32"
done

# resume on the GPU: iterations 0-5, then the same command continues with 6-9 (--max-steps
# counts the iterations of one invocation; the later option wins)
run_ranks 1 $tiny_cfg $base --max-steps 6 --output "$out/tiny-part" train.backend=cuda \
    compute_precision.compute_dtype=bf16 >"$out/tiny-part1.log" 2>&1 &&
    run_ranks 1 $tiny_cfg $base --max-steps 4 --output "$out/tiny-part" train.backend=cuda \
        compute_precision.compute_dtype=bf16 >"$out/tiny-part2.log" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "bf16 run stopped after iteration 5 and resumed: exit 0" ||
    { tail -n 20 "$out/tiny-part1.log" "$out/tiny-part2.log"; bad "stop/resume exited $rc"; }
grep -q "resuming from .*checkpoint_0000005.h5" "$out/tiny-part2.log" &&
    ok "resumed from iteration 5" || bad "did not resume from checkpoint_0000005.h5"
check identical "$out/tiny-cuda-bf16/checkpoint_0000009.h5" "$out/tiny-part/checkpoint_0000009.h5" &&
    ok "resumed run: final checkpoint bit-identical" || bad "resumed run: final checkpoints differ"
check losses "$out/tiny-cuda-bf16/training_metrics.json" "$out/tiny-part/training_metrics.json" &&
    ok "resumed run: losses of every iteration bit-identical" || bad "resumed run: losses differ"

# two ranks on two GPUs against one rank with two groups
gpus=$("$train" --config "$tiny" --dry-run 2>/dev/null | sed -n 's/^CUDA devices visible on this node: //p')
if [ "${gpus:-0}" -ge 2 ]; then
    eq="$tiny_cfg --synthetic-data --max-steps 3 train.log_period_iterations=1 train.batch_size_per_gpu=4
        train.backend=cuda compute_precision.compute_dtype=fp32"
    run_ranks 2 $eq --output "$out/ranks2" train.rank_groups=1 >"$out/ranks2.log" 2>&1 &&
        run_ranks 1 $eq --output "$out/groups2" train.rank_groups=2 >"$out/groups2.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] && ok "2 ranks x 1 group and 1 rank x 2 groups: exit 0" ||
        { tail -n 20 "$out/ranks2.log" "$out/groups2.log"; bad "rank layouts exited $rc"; }
    check losses "$out/ranks2/training_metrics.json" "$out/groups2/training_metrics.json" --rtol 1e-5 &&
        ok "2 GPUs: losses equal one rank with two groups" || bad "2 GPUs: losses differ"
    check close "$out/ranks2/checkpoint_0000002.h5" "$out/groups2/checkpoint_0000002.h5" \
        --params 1e-5 --moments 1e-4 && ok "2 GPUs: parameters and moments agree" ||
        bad "2 GPUs: parameters differ"
else
    echo "note: ${gpus:-0} GPU visible: the two-GPU comparison needs two (not run)"
fi
finish
