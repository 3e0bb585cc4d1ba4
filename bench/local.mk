# bench/: benchmarks (make bench-*), never run by make check.  One fragment per owner.
include bench/model.mk
include bench/step.mk
include bench/step_gpu.mk
include bench/loader.mk
include bench/train.mk
include bench/loss.mk
include bench/gelu.mk
