# bench-step (see src/train/README.md, Performance): the complete POA step on the CPU backend
# (bench/bench_step.c) next to the backend's sgemm and the same step in PyTorch
# (bench/bench_step.py: both with 1 and 2 threads, interleaved rounds): the demo config, and
# ViT-B/16 at 224/96 with a small batch.  Built with the programs (so that it keeps compiling);
# run only by make bench-step.
#
# OpenBLAS's DYNAMIC_ARCH picks its kernels from the CPU model; on virtual machines that hide it
# it falls back to "Prescott" (SSE3, 3-5x slower sgemm).  Unless OPENBLAS_CORETYPE is already
# set, the run selects the kernel from the CPU flags (SkylakeX for AVX-512, Haswell for AVX2),
# exactly as bench-model does (bench/model.mk) — for both poa and PyTorch, which use the same
# OpenBLAS, so the comparison stays like for like.
noinst_PROGRAMS += bench/bench_step
bench_bench_step_SOURCES = bench/bench_step.c
bench_bench_step_LDADD = $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS)
EXTRA_DIST += bench/bench_step.py

BENCH_STEP_THREADS ?= 2
BENCH_STEP_REPS ?= 3
bench-step: bench/bench_step$(EXEEXT)
	@OPENBLAS_CORETYPE=$${OPENBLAS_CORETYPE:-`$(SHELL) $(top_srcdir)/tools/openblas-coretype.sh`}; \
	if test -n "$$OPENBLAS_CORETYPE"; then export OPENBLAS_CORETYPE; fi; \
	if test "$(HAVE_TORCH)" = yes; then \
	  $(PYTHON_REF) $(top_srcdir)/bench/bench_step.py --c-bench ./bench/bench_step$(EXEEXT) \
	    --reps $(BENCH_STEP_REPS); \
	else \
	  echo "bench-step: PyTorch not available; C figures only (torch_img_s=nan)"; \
	  OMP_NUM_THREADS=$(BENCH_STEP_THREADS) ./bench/bench_step$(EXEEXT) --config demo --batch 32 --reps $(BENCH_STEP_REPS) && \
	  OMP_NUM_THREADS=$(BENCH_STEP_THREADS) ./bench/bench_step$(EXEEXT) --config vit_base --batch 2 --reps $(BENCH_STEP_REPS); \
	fi
.PHONY: bench-step
