# backend/: the op table (backend.h), the CPU reference backend and the CUDA backend.
noinst_HEADERS += src/backend/backend.h
noinst_LIBRARIES += src/backend/cpu/libpoa_backend_cpu.a
src_backend_cpu_libpoa_backend_cpu_a_SOURCES = \
	src/backend/backend.c \
	src/backend/cpu/cpu_backend.c src/backend/cpu/cpu_backend.h

if HAVE_CUDA
noinst_LIBRARIES += src/backend/cuda/libpoa_backend_cuda.a
src_backend_cuda_libpoa_backend_cuda_a_SOURCES = \
	src/backend/cuda/cuda_backend.c src/backend/cuda/cuda_backend.h \
	src/backend/cuda/cuda_kernels.cu src/backend/cuda/cuda_kernels.h
POA_BACKEND_ARCHIVES = src/backend/cpu/libpoa_backend_cpu.a src/backend/cuda/libpoa_backend_cuda.a
else
EXTRA_DIST += src/backend/cuda/cuda_backend.c src/backend/cuda/cuda_backend.h \
	src/backend/cuda/cuda_kernels.cu src/backend/cuda/cuda_kernels.h
POA_BACKEND_ARCHIVES = src/backend/cpu/libpoa_backend_cpu.a
endif
