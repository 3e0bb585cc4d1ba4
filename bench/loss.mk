# bench-loss-ops (see src/train/README.md, Performance): the CPU backend's loss ops (xent,
# softmax_rows, the Sinkhorn-Knopp pieces) alone at the sizes of one ViT-B head, 151 rows ×
# 65,536 prototypes, one thread (bench/bench_loss_ops.c).  Built with the programs (so that it
# keeps compiling); run only by make bench-loss-ops.
noinst_PROGRAMS += bench/bench_loss_ops
bench_bench_loss_ops_SOURCES = bench/bench_loss_ops.c
bench_bench_loss_ops_LDADD = $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS)

BENCH_LOSS_OPS_THREADS ?= 1
bench-loss-ops: bench/bench_loss_ops$(EXEEXT)
	OMP_NUM_THREADS=$(BENCH_LOSS_OPS_THREADS) ./bench/bench_loss_ops$(EXEEXT) --rows 151 --k 65536 --reps 7
.PHONY: bench-loss-ops
