# bench-train (see src/train/README-train.md, "Performance"): end-to-end poa-train throughput on
# the demo configuration with packed Fashion-MNIST, 1 and 2 ranks, data-wait and exposed
# communication shares (bench/bench_train.sh).  Never run by make check.
EXTRA_DIST += bench/bench_train.sh
BENCH_TRAIN_STEPS ?= 20
BENCH_TRAIN_IMAGES ?= 8192
bench-train: all
	rm -f bench/out-train/results
	$(SHELL) $(top_srcdir)/bench/bench_train.sh --build . --src $(top_srcdir) \
	  --steps $(BENCH_TRAIN_STEPS) --images $(BENCH_TRAIN_IMAGES)
.PHONY: bench-train

# bench_train_knn: k-NN probe of a checkpoint's teacher features against its random
# initialisation and the raw-pixel baseline (did the demo run learn something, and enough to
# beat raw pixels?  see README-train.md).
noinst_PROGRAMS += bench/bench_train_knn
bench_bench_train_knn_SOURCES = bench/bench_train_knn.c
bench_bench_train_knn_LDADD = $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS)
