# bench-model (see README.md, Performance): forward+backward of the ViT backbone on the CPU
# backend (bench/bench_model.c) next to the backend's sgemm and the same model in PyTorch
# (bench/bench_model.py, best of 1 and 2 threads), for the demo config and ViT-S/16 at 224 px.
# Built on demand only; never run by make check.
#
# OpenBLAS's DYNAMIC_ARCH picks its kernels from the CPU model; on virtual machines that hide it
# it falls back to "Prescott" (SSE3, 3-5x slower sgemm).  Unless OPENBLAS_CORETYPE is already
# set, the run selects the kernel from the CPU flags (SkylakeX for AVX-512, Haswell for AVX2) —
# for both poa and PyTorch, which use the same OpenBLAS.
EXTRA_PROGRAMS = bench/bench_model
bench_bench_model_SOURCES = bench/bench_model.c
bench_bench_model_LDADD = $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS)
EXTRA_DIST += bench/bench_model.py
CLEANFILES += bench/bench_model$(EXEEXT)

BENCH_MODEL_THREADS = 2
BENCH_MODEL_REPS = 3
BENCH_MODEL_ROUNDS = 3
bench-model: bench/bench_model$(EXEEXT)
	@OPENBLAS_CORETYPE=$${OPENBLAS_CORETYPE:-`$(SHELL) $(top_srcdir)/tools/openblas-coretype.sh`}; \
	if test -n "$$OPENBLAS_CORETYPE"; then export OPENBLAS_CORETYPE; fi; \
	if test "$(HAVE_TORCH)" = yes; then \
	  $(PYTHON_REF) $(top_srcdir)/bench/bench_model.py --c-bench ./bench/bench_model$(EXEEXT) \
	    --threads $(BENCH_MODEL_THREADS) --reps $(BENCH_MODEL_REPS) --rounds $(BENCH_MODEL_ROUNDS); \
	else \
	  echo "bench-model: PyTorch not available; C figures only (torch_img_s=nan)"; \
	  OMP_NUM_THREADS=$(BENCH_MODEL_THREADS) ./bench/bench_model$(EXEEXT) --config demo --batch 64 --reps $(BENCH_MODEL_REPS) && \
	  OMP_NUM_THREADS=$(BENCH_MODEL_THREADS) ./bench/bench_model$(EXEEXT) --config vit_small --size 224 --batch 8 --reps $(BENCH_MODEL_REPS); \
	fi
.PHONY: bench-model
