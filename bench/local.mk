# bench/: the benchmarks (make bench-*), never run by make check.  Each prints ours next to the
# reference measured in the same run and ends with a RESULT line (README.md, "Performance").
# bench_loss_ops, bench_step and bench_train_knn are built with the programs (so that they keep
# compiling); bench_model, bench_loader and bench_gelu only on demand.
#
# OpenBLAS's DYNAMIC_ARCH picks its kernels from the CPU model; on virtual machines that hide it
# it falls back to "Prescott" (SSE3, 3-5x slower sgemm).  Unless OPENBLAS_CORETYPE is already
# set, bench-model and bench-step select the kernel from the CPU flags (SkylakeX for AVX-512,
# Haswell for AVX2) -- for both poa and PyTorch, which use the same OpenBLAS, so the comparison
# stays like for like.
BENCH_LDADD = $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS)
BENCH_CORETYPE = OPENBLAS_CORETYPE=$${OPENBLAS_CORETYPE:-`$(SHELL) $(top_srcdir)/tools/openblas-coretype.sh`}; \
	if test -n "$$OPENBLAS_CORETYPE"; then export OPENBLAS_CORETYPE; fi

# bench-model (README.md, Performance): forward+backward of the ViT backbone on the CPU backend
# (bench_model.c, 1 and 2 threads) next to OpenBLAS's sgemm on as many threads, wall clock, in
# the same process (bench_sgemm.c: frac_sgemm), and the same model in PyTorch at every
# combination of intra-op and OpenBLAS threads, 1 or 2, each in its own process
# (bench_model.py; best against best, naming the winners), for the demo config and ViT-S/16 at
# 224 px.
EXTRA_PROGRAMS += bench/bench_model
bench_bench_model_SOURCES = bench/bench_model.c bench/bench_sgemm.c bench/bench_sgemm.h
bench_bench_model_LDADD = $(BENCH_LDADD)
EXTRA_DIST += bench/bench_model.py
CLEANFILES += bench/bench_model$(EXEEXT)
BENCH_MODEL_THREADS = 2
BENCH_MODEL_REPS = 3
BENCH_MODEL_ROUNDS = 3
bench-model: bench/bench_model$(EXEEXT)
	@$(BENCH_CORETYPE); \
	if test "$(HAVE_TORCH)" = yes; then \
	  $(PYTHON_REF) $(top_srcdir)/bench/bench_model.py --c-bench ./bench/bench_model$(EXEEXT) \
	    --threads $(BENCH_MODEL_THREADS) --reps $(BENCH_MODEL_REPS) --rounds $(BENCH_MODEL_ROUNDS); \
	else \
	  echo "bench-model: PyTorch not available; C figures only (torch_img_s=nan)"; \
	  OMP_NUM_THREADS=$(BENCH_MODEL_THREADS) ./bench/bench_model$(EXEEXT) --config demo --batch 64 --reps $(BENCH_MODEL_REPS) && \
	  OMP_NUM_THREADS=$(BENCH_MODEL_THREADS) ./bench/bench_model$(EXEEXT) --config vit_small --size 224 --batch 8 --reps $(BENCH_MODEL_REPS); \
	fi

# bench-step (src/train/README.md, Performance): the complete POA step on the CPU backend
# (bench_step.c, 1 and 2 threads, each next to OpenBLAS's sgemm on as many threads) and the same
# step in PyTorch at every combination of intra-op and OpenBLAS threads, 1 or 2, each in its own
# process (bench_step.py: interleaved rounds, best against best): the demo config, and ViT-B/16
# at 224/96 with a small batch.
noinst_PROGRAMS += bench/bench_step
bench_bench_step_SOURCES = bench/bench_step.c bench/bench_sgemm.c bench/bench_sgemm.h
bench_bench_step_LDADD = $(BENCH_LDADD)
EXTRA_DIST += bench/bench_step.py
BENCH_STEP_THREADS ?= 2
BENCH_STEP_REPS ?= 3
bench-step: bench/bench_step$(EXEEXT)
	@$(BENCH_CORETYPE); \
	if test "$(HAVE_TORCH)" = yes; then \
	  $(PYTHON_REF) $(top_srcdir)/bench/bench_step.py --c-bench ./bench/bench_step$(EXEEXT) \
	    --reps $(BENCH_STEP_REPS); \
	else \
	  echo "bench-step: PyTorch not available; C figures only (torch_img_s=nan)"; \
	  OMP_NUM_THREADS=$(BENCH_STEP_THREADS) ./bench/bench_step$(EXEEXT) --config demo --batch 32 --reps $(BENCH_STEP_REPS) && \
	  OMP_NUM_THREADS=$(BENCH_STEP_THREADS) ./bench/bench_step$(EXEEXT) --config vit_base --batch 2 --reps $(BENCH_STEP_REPS); \
	fi

# bench-step-gpu (bench/bench_step_gpu.py; tests/gpu/README.md, "The GPU benchmark"): the complete
# POA step on one GPU, poa (bench/bench_step --backend cuda --dtype bf16) next to the same step in
# PyTorch 2.x at its best setting, ViT-L/16 and ViT-S/16 at the official crops: img/s, model FLOP
# utilisation, memory.  Needs the CUDA build, a GPU and a Python with PyTorch (BENCH_PYTHON,
# default PYTHON_REF).  Never run by make check; tests/gpu/test_bench_step_gpu_cpu.sh runs the
# script on the CPU with a tiny model.
BENCH_PYTHON ?= $(PYTHON_REF)
BENCH_STEP_GPU_ARGS ?=
EXTRA_DIST += bench/bench_step_gpu.py
bench-step-gpu: bench/bench_step$(EXEEXT)
	$(BENCH_PYTHON) $(top_srcdir)/bench/bench_step_gpu.py \
	  --c-bench ./bench/bench_step$(EXEEXT) $(BENCH_STEP_GPU_ARGS)

# bench-ops-gpu (bench/bench_ops_gpu.py; src/backend/cuda/README.md, "Attention" and "GEMMs"):
# poa's attention kernels next to PyTorch's F.scaled_dot_product_attention with each backend
# (cuDNN's fused attention, FlashAttention-2, memory-efficient, math) at the ViT-S/16 and ViT-L/16
# step's shapes, and the MLP's fc1 + GELU next to PyTorch's unfused and cuBLASLt-epilogue-fused
# versions.  Needs the CUDA build, a GPU and a Python with PyTorch 2.x.  Never run by make check;
# tests/gpu/test_bench_step_gpu_cpu.sh runs the script on the CPU.
BENCH_OPS_GPU_ARGS ?=
EXTRA_DIST += bench/bench_ops_gpu.py
bench-ops-gpu: tests/ops/test_backend_ops$(EXEEXT)
	$(BENCH_PYTHON) $(top_srcdir)/bench/bench_ops_gpu.py \
	  --c-ops ./tests/ops/test_backend_ops$(EXEEXT) $(BENCH_OPS_GPU_ARGS)

# bench-loader (data-prep/README.md, "Loader performance"): the poa loader (decode, 2 global + V
# local crops, masks, batches; bench_loader.c, 1 and 2 threads) next to torchvision/PIL's DINOv2
# transform on the same JPEGs (every combination of intra-op and OpenBLAS threads, 1 or 2, each
# in its own process), interleaved rounds, and poa-pack throughput (bench_loader.py).  Needs
# python3-skimage for the photographs.
EXTRA_PROGRAMS += bench/bench_loader
bench_bench_loader_SOURCES = bench/bench_loader.c
bench_bench_loader_LDADD = $(BENCH_LDADD)
EXTRA_DIST += bench/bench_loader.py
CLEANFILES += bench/bench_loader$(EXEEXT)
bench-loader: bench/bench_loader$(EXEEXT) poa-pack$(EXEEXT) poa-prep-fmnist$(EXEEXT)
	$(PYTHON_REF) $(top_srcdir)/bench/bench_loader.py --build . --out bench/out-loader

# bench-train (src/train/README-train.md, "Performance"): end-to-end poa-train throughput on the
# demo configuration with packed Fashion-MNIST, 1 and 2 ranks, data-wait and exposed
# communication shares (bench_train.sh).
EXTRA_DIST += bench/bench_train.sh
BENCH_TRAIN_STEPS ?= 20
BENCH_TRAIN_IMAGES ?= 8192
bench-train: all
	rm -f bench/out-train/results
	$(SHELL) $(top_srcdir)/bench/bench_train.sh --build . --src $(top_srcdir) \
	  --steps $(BENCH_TRAIN_STEPS) --images $(BENCH_TRAIN_IMAGES)

# bench_train_knn: k-NN probe of a checkpoint's teacher features against its random
# initialisation and the raw-pixel baseline (did the demo run learn something, and enough to
# beat raw pixels?  see README-train.md).
noinst_PROGRAMS += bench/bench_train_knn
bench_bench_train_knn_SOURCES = bench/bench_train_knn.c
bench_bench_train_knn_LDADD = $(BENCH_LDADD)

# bench-loss-ops (src/train/README.md, Performance): the CPU backend's loss ops (xent,
# softmax_rows, the Sinkhorn-Knopp pieces) alone at the sizes of one ViT-B head, 151 rows x
# 65,536 prototypes, one thread (bench_loss_ops.c).
noinst_PROGRAMS += bench/bench_loss_ops
bench_bench_loss_ops_SOURCES = bench/bench_loss_ops.c
bench_bench_loss_ops_LDADD = $(BENCH_LDADD)
BENCH_LOSS_OPS_THREADS ?= 1
bench-loss-ops: bench/bench_loss_ops$(EXEEXT)
	OMP_NUM_THREADS=$(BENCH_LOSS_OPS_THREADS) ./bench/bench_loss_ops$(EXEEXT) --rows 151 --k 65536 --reps 7

# bench-gelu (src/model/README.md, Performance): the CPU backend's GELU forward and backward,
# libmvec (POA_CPU_GELU=libm) against the AVX-512 kernels, 1 and 2 threads, alternating rounds
# (bench_gelu.c): on the 29 M values of one ViT-S/16 step's MLPs (bound by memory bandwidth on
# the development VM) and on 262,144 values (1 MB, cache-resident: the arithmetic).
EXTRA_PROGRAMS += bench/bench_gelu
bench_bench_gelu_SOURCES = bench/bench_gelu.c
bench_bench_gelu_LDADD = $(BENCH_LDADD)
CLEANFILES += bench/bench_gelu$(EXEEXT)
BENCH_GELU_ROUNDS ?= 7
bench-gelu: bench/bench_gelu$(EXEEXT)
	./bench/bench_gelu$(EXEEXT) --rounds $(BENCH_GELU_ROUNDS)
	./bench/bench_gelu$(EXEEXT) --n 262144 --rounds 41

.PHONY: bench-model bench-step bench-step-gpu bench-ops-gpu bench-loader bench-train bench-loss-ops bench-gelu

# bench-eval (src/eval/README.md, "Performance"): feature extraction of the evaluation programs,
# poa's inference forward (bench_eval.c: poa_features_run) next to a PyTorch forward of the same
# extracted ViT (bench_eval.py, tests/reference/vit_ref.py), each at its best setting: poa at 1
# and 2 threads, PyTorch at every combination of intra-op and OpenBLAS threads in {1, 2}, each in
# its own process; the demo's 128x6 at 32 px and ViT-S/16 at 224 px (seeded checkpoints,
# poa-extract).
EXTRA_PROGRAMS += bench/bench_eval
bench_bench_eval_SOURCES = bench/bench_eval.c
bench_bench_eval_LDADD = $(POA_TOOL_ARCHIVES) $(POA_EXTERNAL_LIBS)
EXTRA_DIST += bench/bench_eval.py
CLEANFILES += bench/bench_eval$(EXEEXT)
BENCH_EVAL_REPS ?= 5
BENCH_EVAL_ROUNDS ?= 3
bench-eval: bench/bench_eval$(EXEEXT) src/poa-extract$(EXEEXT) tests/modelio/ckpt_write_seeded$(EXEEXT)
	@$(BENCH_CORETYPE); \
	if test "$(HAVE_TORCH)" = yes; then \
	  $(PYTHON_REF) $(top_srcdir)/bench/bench_eval.py --build . --src $(top_srcdir) \
	    --reps $(BENCH_EVAL_REPS) --rounds $(BENCH_EVAL_ROUNDS); \
	else \
	  echo "bench-eval: PyTorch not available (configure --enable-parity-tests)"; exit 1; \
	fi
.PHONY: bench-eval
