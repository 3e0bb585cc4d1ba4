#!/bin/sh
# test_extract_python.sh — poa-extract's files read without poa: a demo-configuration
# checkpoint with seeded weights (ckpt_write_seeded), every sub-network extracted (--all),
# poa's own features of each sub-network inside the full model (extract_features), then
# check_extracted.py: the safetensors files parsed by hand with NumPy, the HDF5 files with h5py
# (same tensors, same metadata), every tensor against the documented slice of the teacher, and
# the plain PyTorch ViT of tests/reference/vit_ref.py (strict load) giving poa's features.
set -eu
: "${POA_TOP_BUILDDIR:?run through make check}"
: "${POA_TOP_SRCDIR:?run through make check}"
py=${POA_PYTHON_REF:-/usr/bin/python3}
"$py" -c 'import torch, h5py, numpy' 2>/dev/null || { echo "skip: $py lacks torch/h5py/numpy"; exit 77; }
export PYTHONDONTWRITEBYTECODE=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out="$POA_TOP_BUILDDIR/tests/out/modelio/python"
rm -rf "$out"
mkdir -p "$out"
"$POA_TOP_BUILDDIR/tests/modelio/ckpt_write_seeded" "$out/run" "$POA_TOP_SRCDIR/configs/demo.yaml" 31 399 >"$out/seeded.log"
"$POA_TOP_BUILDDIR/src/poa-extract" --checkpoint "$out/run" --output "$out/x" --all >"$out/extract.log"
"$POA_TOP_BUILDDIR/tests/modelio/extract_features" "$out/run" "$out/features.h5" 4 7 \
    64x3 64x4 64x5 64x6 96x3 96x4 96x5 96x6 128x3 128x4 128x5 128x6
"$py" "$POA_TOP_SRCDIR/tests/modelio/check_extracted.py" "$out/run/checkpoint_0000399.h5" "$out/x" \
    "$out/features.h5" "$POA_TOP_SRCDIR/tests/reference"
