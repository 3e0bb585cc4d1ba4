#!/bin/sh
# test_model_parity.sh — PyTorch parity of the model engine: model_ref.py writes the reference
# (float64 PyTorch, tiny config) under the build tree, test_model_parity compares every output
# and every parameter gradient.  Skipped (77) without torch/h5py.
set -eu
if [ "${POA_HAVE_TORCH:-no}" != yes ]; then
    echo "test_model_parity: PyTorch reference not available (configure found no torch/h5py)"
    exit 77
fi
export PYTHONDONTWRITEBYTECODE=1 # never write into a (possibly read-only) source tree
out="$POA_TOP_BUILDDIR/tests/out/model"
mkdir -p "$out"
"$POA_PYTHON_REF" "$POA_TOP_SRCDIR/tests/reference/model_ref.py" --arch tiny --out "$out/parity_tiny.h5"
exec "$POA_TOP_BUILDDIR/tests/model/test_model_parity" "$out/parity_tiny.h5"
