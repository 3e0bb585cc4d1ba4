# backend/: the device interface (backend.h, README.md), the CPU reference backend and the CUDA
# backend.
# The CPU archive's sources come from two fragments with separate owners:
#   src/backend/cpu/nn.mk     layer ops        (CPU_NN_SOURCES)
#   src/backend/cpu/train.mk  loss/optim ops   (CPU_TRAIN_SOURCES)
noinst_HEADERS += src/backend/backend.h
EXTRA_DIST += src/backend/README.md
include src/backend/cpu/nn.mk
include src/backend/cpu/train.mk
noinst_LIBRARIES += src/backend/cpu/libpoa_backend_cpu.a
src_backend_cpu_libpoa_backend_cpu_a_SOURCES = \
	src/backend/backend.c \
	src/backend/cpu/cpu_backend.c src/backend/cpu/cpu_backend.h \
	$(CPU_NN_SOURCES) $(CPU_TRAIN_SOURCES)

if HAVE_CUDA
noinst_LIBRARIES += src/backend/cuda/libpoa_backend_cuda.a
src_backend_cuda_libpoa_backend_cuda_a_SOURCES = \
	src/backend/cuda/cuda_backend.c src/backend/cuda/cuda_backend.h \
	src/backend/cuda/cuda_kernels.cu src/backend/cuda/cuda_impl.h \
	src/backend/cuda/cuda_ops.h src/backend/cuda/cuda_common.cuh
POA_BACKEND_ARCHIVES = src/backend/cpu/libpoa_backend_cpu.a src/backend/cuda/libpoa_backend_cuda.a
else
EXTRA_DIST += src/backend/cuda/cuda_backend.c src/backend/cuda/cuda_backend.h \
	src/backend/cuda/cuda_kernels.cu src/backend/cuda/cuda_impl.h \
	src/backend/cuda/cuda_ops.h src/backend/cuda/cuda_common.cuh
POA_BACKEND_ARCHIVES = src/backend/cpu/libpoa_backend_cpu.a
endif
