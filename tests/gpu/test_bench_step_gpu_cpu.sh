#!/bin/sh
# test_bench_step_gpu_cpu.sh — what of the GPU check runs without a GPU:
#  - bench/bench_step_gpu.py with --device cpu: poa's step (bench/bench_step) and the PyTorch
#    step (tests/reference/step_torch.py) both run on the tiny model, the RESULT line has finite
#    img/s for both, and bench_step.c and step_torch.py count the same FLOPs (the script warns
#    when they differ by more than 0.2 %), and poa's per-op profile table is printed;
#  - tests/gpu/device-check.sh's command line: --help, an unknown stage (exit 2), no bundle
#    (exit 3).
set -u
top_src=${POA_TOP_SRCDIR:?run through make check}
top_build=${POA_TOP_BUILDDIR:?run through make check}
py=${POA_PYTHON_REF:-/usr/bin/python3}
out=$top_build/tests/out/gpu
rm -rf "$out"
mkdir -p "$out" || exit 1
fail=0
bad() { echo "FAIL: $1"; fail=1; }

"$py" "$top_src/bench/bench_step_gpu.py" --device cpu --models tiny --batch tiny=2 --local 2 \
    --steps 1 --warmup 1 --c-bench "$top_build/bench/bench_step" >"$out/bench.txt" 2>&1 ||
    bad "bench_step_gpu.py exited $?"
cat "$out/bench.txt"
result=$(grep '^RESULT model=tiny ' "$out/bench.txt")
[ -n "$result" ] || bad "no RESULT line"
for key in img_s torch_img_s ratio_torch; do
    v=$(echo "$result" | tr ' ' '\n' | sed -n "s/^$key=//p")
    case $v in '' | nan | inf | -*) bad "$key=$v" ;; esac
done
grep -q 'warning' "$out/bench.txt" && bad "bench_step_gpu.py warned (see above)"
# poa's per-op table (bench_step --profile 1): the step's GEMMs and its optimizer among the ops
grep -q '^  profile: 1 step(s), [0-9]* timed op calls per step' "$out/bench.txt" &&
    grep -q '^    act_gemm_bias  ' "$out/bench.txt" && grep -q '^    adamw  ' "$out/bench.txt" &&
    grep -q '^    outside ops  ' "$out/bench.txt" || bad "no per-op profile of poa's step"

dc=$top_src/tests/gpu/device-check.sh
sh "$dc" --help >"$out/dc-help.txt" 2>&1 || bad "device-check.sh --help exited $?"
grep -q -- '--stages' "$out/dc-help.txt" || bad "device-check.sh --help does not list --stages"
sh "$dc" --stages nosuchstage >/dev/null 2>&1
[ $? -eq 2 ] || bad "device-check.sh --stages nosuchstage: expected exit 2"
sh "$dc" --dry-run --bundle "$out/no-bundle" --out "$out/dc" >/dev/null 2>&1
[ $? -eq 3 ] || bad "device-check.sh without a bundle: expected exit 3"

[ $fail -eq 0 ] && echo "all checks passed"
exit $fail
