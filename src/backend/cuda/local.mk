# backend/cuda/: the CUDA backend (host code in C, kernels in CUDA; headers seen by C code carry
# no CUDA types; cuda_impl.h and cuda_common.cuh are the backend's private headers).  Built with
# configure --with-cuda; distributed in every configuration.
CUDA_BACKEND_SOURCES = \
	src/backend/cuda/cuda_backend.c src/backend/cuda/cuda_backend.h \
	src/backend/cuda/cuda_kernels.cu src/backend/cuda/cuda_impl.h \
	src/backend/cuda/cuda_ops.h src/backend/cuda/cuda_common.cuh
if HAVE_CUDA
noinst_LIBRARIES += src/backend/cuda/libpoa_backend_cuda.a
src_backend_cuda_libpoa_backend_cuda_a_SOURCES = $(CUDA_BACKEND_SOURCES)
else
EXTRA_DIST += $(CUDA_BACKEND_SOURCES)
endif
