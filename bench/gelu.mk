# bench-gelu (see src/model/README.md, Performance): the CPU backend's GELU forward and backward,
# libmvec (POA_CPU_GELU=libm) against the AVX-512 kernels, 1 and 2 threads, alternating rounds
# (bench/bench_gelu.c): on the 29 M values of one ViT-S/16 step's MLPs (bound by memory
# bandwidth on the development VM) and on 262,144 values (1 MB, cache-resident: the arithmetic).
# Built on demand only; never run by make check.
EXTRA_PROGRAMS += bench/bench_gelu
bench_bench_gelu_SOURCES = bench/bench_gelu.c
bench_bench_gelu_LDADD = $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS)
CLEANFILES += bench/bench_gelu$(EXEEXT)

BENCH_GELU_ROUNDS ?= 7
bench-gelu: bench/bench_gelu$(EXEEXT)
	./bench/bench_gelu$(EXEEXT) --rounds $(BENCH_GELU_ROUNDS)
	./bench/bench_gelu$(EXEEXT) --n 262144 --rounds 41
.PHONY: bench-gelu
