#!/bin/sh
# test_gpu_step_parity.sh — the POA loss and the complete POA step on the CUDA backend (fp32
# activations, TF32 off) against the float64 PyTorch references, with the programs, checks and
# 1e-4 tolerance (per tensor, norm-wise) of test_loss_parity.sh and test_step_parity.sh:
# loss_parity — every loss term, the Sinkhorn-Knopp targets and every logits/feature gradient,
# for the full loss and each term alone; step_parity — every loss term, schedule value and
# gradient norm, every gradient of every step (five steps in one case, two rank groups, both
# drop-path modes, iBOT on and off, the frozen last layer), and at the end every parameter,
# both AdamW moments and every teacher tensor.  Exit 77 without a CUDA device.
set -u
top_src=${POA_TOP_SRCDIR:?}
top_build=${POA_TOP_BUILDDIR:?}
py=${POA_PYTHON_REF:-/usr/bin/python3}
loss=$top_build/tests/step/loss_parity
step=$top_build/tests/step/step_parity
"$step" --backend cuda --available || exit $?
out=$top_build/tests/out/step-gpu
mkdir -p "$out" || exit 1
"$py" "$top_src/tests/reference/loss_ref.py" "$out/loss_ref.h5" || exit 99
"$py" "$top_src/tests/reference/step_ref.py" "$out/step_ref.h5" || exit 99
"$loss" --backend cuda "$out/loss_ref.h5"
rc_loss=$?
"$step" --backend cuda "$out/step_ref.h5"
rc_step=$?
echo "loss parity on CUDA: exit $rc_loss; step parity on CUDA: exit $rc_step"
[ $rc_loss -eq 0 ] && [ $rc_step -eq 0 ]
