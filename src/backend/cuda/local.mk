# backend/cuda/: the CUDA backend (src/backend/cuda/README.md): host code in C, kernels in CUDA
# (the .cu files go through nvcc: Makefile.am's .cu rule, NVCCFLAGS and the --with-cuda-arch
# -gencode flags from configure).  Headers seen by C code carry no CUDA types; cuda_impl.h,
# cuda_helpers.h and the .cuh files are the backend's private headers.  Built with configure
# --with-cuda; distributed in every configuration.
CUDA_BACKEND_SOURCES = \
	src/backend/cuda/cuda_backend.c src/backend/cuda/cuda_backend.h \
	src/backend/cuda/cuda_impl.h src/backend/cuda/cuda_ops.h src/backend/cuda/cuda_helpers.h \
	src/backend/cuda/cuda_sizes.h src/backend/cuda/cuda_common.cuh \
	src/backend/cuda/cuda_core.cuh src/backend/cuda/cuda_chunks.cuh \
	src/backend/cuda/cuda_gemm.cu src/backend/cuda/cuda_elementwise.cu \
	src/backend/cuda/cuda_tokens.cu src/backend/cuda/cuda_attention.cu \
	src/backend/cuda/cuda_norm.cu src/backend/cuda/cuda_loss.cu src/backend/cuda/cuda_optim.cu
EXTRA_DIST += src/backend/cuda/README.md
if HAVE_CUDA
noinst_LIBRARIES += src/backend/cuda/libpoa_backend_cuda.a
src_backend_cuda_libpoa_backend_cuda_a_SOURCES = $(CUDA_BACKEND_SOURCES)
# Makefile.am's .cu rule tracks no header dependencies (automake's depfiles cover C only): the
# kernel objects depend on every header their .cu files include, so that editing one of them
# rebuilds the kernels instead of linking stale objects.
CUDA_KERNEL_OBJECTS = \
	src/backend/cuda/cuda_gemm.$(OBJEXT) src/backend/cuda/cuda_elementwise.$(OBJEXT) \
	src/backend/cuda/cuda_tokens.$(OBJEXT) src/backend/cuda/cuda_attention.$(OBJEXT) \
	src/backend/cuda/cuda_norm.$(OBJEXT) src/backend/cuda/cuda_loss.$(OBJEXT) \
	src/backend/cuda/cuda_optim.$(OBJEXT)
$(CUDA_KERNEL_OBJECTS): $(top_srcdir)/src/backend/backend.h $(top_srcdir)/src/common/poa_error.h \
	$(top_srcdir)/src/backend/cuda/cuda_impl.h $(top_srcdir)/src/backend/cuda/cuda_ops.h \
	$(top_srcdir)/src/backend/cuda/cuda_helpers.h $(top_srcdir)/src/backend/cuda/cuda_sizes.h \
	$(top_srcdir)/src/backend/cuda/cuda_common.cuh $(top_srcdir)/src/backend/cuda/cuda_core.cuh \
	$(top_srcdir)/src/backend/cuda/cuda_chunks.cuh
else
EXTRA_DIST += $(CUDA_BACKEND_SOURCES)
endif
