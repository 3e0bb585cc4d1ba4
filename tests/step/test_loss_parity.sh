#!/bin/sh
# test_loss_parity.sh — the POA loss against the PyTorch reference (tests/reference/loss_ref.py):
# every loss term, the total, the SK targets and every logits/feature gradient, full and per term.
set -u
top_src=${POA_TOP_SRCDIR:?}
top_build=${POA_TOP_BUILDDIR:?}
out=$top_build/tests/out/step
mkdir -p "$out" || exit 1
"${POA_PYTHON_REF:-/usr/bin/python3}" "$top_src/tests/reference/loss_ref.py" "$out/loss_ref.h5" || exit 99
exec "$top_build/tests/step/loss_parity" "$out/loss_ref.h5"
