#!/bin/sh
# test_step_parity.sh — complete POA steps against the PyTorch reference
# (tests/reference/step_ref.py): loss terms, schedules, gradient norms, every gradient, and the
# parameters, AdamW moments and teacher after the steps.
set -u
top_src=${POA_TOP_SRCDIR:?}
top_build=${POA_TOP_BUILDDIR:?}
out=$top_build/tests/out/step
mkdir -p "$out" || exit 1
"${POA_PYTHON_REF:-/usr/bin/python3}" "$top_src/tests/reference/step_ref.py" "$out/step_ref.h5" || exit 99
exec "$top_build/tests/step/step_parity" "$out/step_ref.h5"
