# comm/: MPI/NCCL collectives, gradient buckets, signals (see src/comm/README.md).
# Tests: tests/comm/.
noinst_LIBRARIES += src/comm/libpoa_comm.a
src_comm_libpoa_comm_a_SOURCES = \
	src/comm/comm.c src/comm/comm.h src/comm/comm_internal.h src/comm/comm_nccl.h \
	src/comm/buckets.c src/comm/buckets.h \
	src/comm/signals.c src/comm/signals.h
POA_COMM_A = src/comm/libpoa_comm.a
EXTRA_DIST += src/comm/README.md
# NCCL half: host calls in plain C, one scale kernel in CUDA.
if HAVE_NCCL
src_comm_libpoa_comm_a_SOURCES += src/comm/comm_nccl.c src/comm/comm_kernels.cu
else
EXTRA_DIST += src/comm/comm_nccl.c src/comm/comm_kernels.cu
endif
