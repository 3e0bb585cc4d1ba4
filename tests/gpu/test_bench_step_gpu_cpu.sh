#!/bin/sh
# test_bench_step_gpu_cpu.sh — what of the GPU check runs without a GPU:
#  - bench/bench_step_gpu.py with --device cpu: poa's step (bench/bench_step) and the PyTorch
#    step (tests/reference/step_torch.py) both run on the tiny model, the RESULT line has finite
#    img/s for both, and bench_step.c and step_torch.py count the same FLOPs (the script warns
#    when they differ by more than 0.2 %), and poa's per-op profile table is printed;
#  - bench/bench_ops_gpu.py with --device cpu: poa's attention (test_backend_ops --perf) and
#    PyTorch's at the same four shapes, fc1 + GELU on both sides; the RESULT line has finite
#    figures for poa and for the explicit PyTorch attention;
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

"$py" "$top_src/bench/bench_ops_gpu.py" --device cpu --images 1 --reps 1 \
    --c-ops "$top_build/tests/ops/test_backend_ops" >"$out/ops.txt" 2>&1 ||
    bad "bench_ops_gpu.py exited $?"
cat "$out/ops.txt"
result=$(grep '^RESULT bench=ops_gpu ' "$out/ops.txt")
[ -n "$result" ] || bad "bench_ops_gpu.py: no RESULT line"
for key in attn_poa_ms attn_torch_ms ratio_attn fc1_gelu_poa_us fc1_gelu_torch_us; do
    v=$(echo "$result" | tr ' ' '\n' | sed -n "s/^$key=//p")
    case $v in '' | nan | inf | -*) bad "bench_ops_gpu.py: $key=$v" ;; esac
done
# the four attention shapes of both models, global and local crops, timed on both sides
for shape in 'ViT-S/16 B=1 T=197 H=6 Dh=64' 'ViT-S/16 B=4 T=37 H=6 Dh=64' \
    'ViT-L/16 B=1 T=197 H=16 Dh=64' 'ViT-L/16 B=4 T=37 H=16 Dh=64'; do
    n=$(grep "^$shape " "$out/ops.txt" | grep -o -E '[0-9.]+ / [0-9.]+' | wc -l)
    [ "$n" -eq 2 ] ||
        bad "bench_ops_gpu.py: no poa and explicit PyTorch times at $shape"
done

dc=$top_src/tests/gpu/device-check.sh
sh "$dc" --help >"$out/dc-help.txt" 2>&1 || bad "device-check.sh --help exited $?"
grep -q -- '--stages' "$out/dc-help.txt" || bad "device-check.sh --help does not list --stages"
sh "$dc" --stages nosuchstage >/dev/null 2>&1
[ $? -eq 2 ] || bad "device-check.sh --stages nosuchstage: expected exit 2"
sh "$dc" --dry-run --bundle "$out/no-bundle" --out "$out/dc" >/dev/null 2>&1
[ $? -eq 3 ] || bad "device-check.sh without a bundle: expected exit 3"

[ $fail -eq 0 ] && echo "all checks passed"
exit $fail
