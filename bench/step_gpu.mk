# bench-step-gpu (bench/bench_step_gpu.py; tests/gpu/README.md, "The GPU benchmark"): the complete
# POA step on one GPU, poa (bench/bench_step --backend cuda --dtype bf16) next to the same step in
# PyTorch 2.x at its best setting, ViT-L/16 and ViT-S/16 at the official crops: img/s, model FLOP
# utilisation, memory.  Needs the CUDA build, a GPU and a Python with PyTorch (BENCH_PYTHON,
# default PYTHON_REF).  Never run by make check; tests/gpu/test_bench_step_gpu_cpu.sh runs the
# script on the CPU with a tiny model.
BENCH_PYTHON ?= $(PYTHON_REF)
BENCH_STEP_GPU_ARGS ?=
EXTRA_DIST += bench/bench_step_gpu.py bench/step_gpu.mk
bench-step-gpu: bench/bench_step$(EXEEXT)
	$(BENCH_PYTHON) $(top_srcdir)/bench/bench_step_gpu.py \
	  --c-bench ./bench/bench_step$(EXEEXT) $(BENCH_STEP_GPU_ARGS)
.PHONY: bench-step-gpu
