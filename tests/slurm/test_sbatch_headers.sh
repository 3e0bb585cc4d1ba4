#!/bin/sh
# test_sbatch_headers.sh — every slurm/*.sbatch documents in its header (its --help) each
# environment variable it reads and nothing it does not read; slurm/pipeline.sh's --help lists
# exactly the options it parses; and the variables pipeline.sh hands each stage's script are the
# ones that script reads.  The checks are in check_headers.py (no Slurm needed).
set -u
top_src=${POA_TOP_SRCDIR:?run through make check}
top_build=${POA_TOP_BUILDDIR:?run through make check}
py=${POA_PYTHON_REF:-}
[ -n "$py" ] && [ -x "$py" ] || py=$(command -v python3 || true)
[ -n "$py" ] || { echo "skip: no python3"; exit 77; }
exec "$py" "$top_src/tests/slurm/check_headers.py" "$top_src" "$top_build/tests/out/slurm/headers"
