# bench-step (see src/train/README.md, Performance): the complete POA step on the CPU backend
# (bench/bench_step.c) next to the backend's sgemm and the same step in PyTorch
# (bench/bench_step.py: both with 1 and 2 threads, interleaved rounds): the demo config, and
# ViT-B/16 at 224/96 with a small batch.  Built with the programs (so that it keeps compiling);
# run only by make bench-step.
noinst_PROGRAMS += bench/bench_step
bench_bench_step_SOURCES = bench/bench_step.c
bench_bench_step_LDADD = $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS)
EXTRA_DIST += bench/bench_step.py

BENCH_STEP_THREADS ?= 2
BENCH_STEP_REPS ?= 3
bench-step: bench/bench_step$(EXEEXT)
	@if test "$(HAVE_TORCH)" = yes; then \
	  $(PYTHON_REF) $(top_srcdir)/bench/bench_step.py --c-bench ./bench/bench_step$(EXEEXT) \
	    --reps $(BENCH_STEP_REPS); \
	else \
	  echo "bench-step: PyTorch not available; C figures only (torch_img_s=nan)"; \
	  OMP_NUM_THREADS=$(BENCH_STEP_THREADS) ./bench/bench_step$(EXEEXT) --config demo --batch 32 --reps $(BENCH_STEP_REPS) && \
	  OMP_NUM_THREADS=$(BENCH_STEP_THREADS) ./bench/bench_step$(EXEEXT) --config vit_base --batch 2 --reps $(BENCH_STEP_REPS); \
	fi
.PHONY: bench-step
