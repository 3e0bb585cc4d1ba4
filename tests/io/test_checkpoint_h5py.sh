#!/bin/sh
# test_checkpoint_h5py.sh — a checkpoint written by poa is read by /usr/bin/python3 (h5py + torch)
# into a mirror of the official POA module tree (strict load_state_dict: every name and shape),
# and converted by hdf5-schemas/load_checkpoint_example.py for the official tools and for a
# standard ViT.
set -eu
: "${POA_TOP_BUILDDIR:?run through make check}"
: "${POA_TOP_SRCDIR:?run through make check}"
py=${POA_PYTHON_REF:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1 # never write into a (possibly read-only) source tree
out="$POA_TOP_BUILDDIR/tests/out/io/h5py"
rm -rf "$out"
mkdir -p "$out"
"$POA_TOP_BUILDDIR/tests/io/ckpt_write_tiny" "$out"
"$py" "$POA_TOP_SRCDIR/tests/io/check_checkpoint_h5py.py" \
    "$out/checkpoint_0000799.h5" "$out/eval/training_799/teacher_checkpoint.h5" \
    "$POA_TOP_SRCDIR/hdf5-schemas/load_checkpoint_example.py" "$out"
