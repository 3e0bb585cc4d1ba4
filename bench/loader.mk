# bench-loader (see data-prep/README.md, "Loader performance"): the poa loader (decode, 2 global +
# V local crops, masks, batches) next to torchvision/PIL's DINOv2 transform on the same JPEGs, 1 and
# 2 threads, and poa-pack throughput (bench/bench_loader.py).  Needs python3-skimage for the
# photographs.  Built on demand only; never run by make check.
EXTRA_PROGRAMS += bench/bench_loader
bench_bench_loader_SOURCES = bench/bench_loader.c
bench_bench_loader_LDADD = $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS)
EXTRA_DIST += bench/bench_loader.py
CLEANFILES += bench/bench_loader$(EXEEXT)

bench-loader: bench/bench_loader$(EXEEXT) poa-pack$(EXEEXT) poa-prep-fmnist$(EXEEXT)
	$(PYTHON_REF) $(top_srcdir)/bench/bench_loader.py --build . --out bench/out-loader
.PHONY: bench-loader
