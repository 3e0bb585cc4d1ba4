# backend/: the device interface (backend.h; src/backend/README.md) and backend creation by
# name (backend.c).  The backends have their own fragments (cpu/local.mk, cuda/local.mk);
# backend.c goes into the CPU archive, which every build has.
noinst_HEADERS += src/backend/backend.h src/backend/backend_profile.h
EXTRA_DIST += src/backend/README.md
src_backend_cpu_libpoa_backend_cpu_a_SOURCES = src/backend/backend.c src/backend/backend_profile.c
if HAVE_CUDA
POA_BACKEND_ARCHIVES = src/backend/cpu/libpoa_backend_cpu.a src/backend/cuda/libpoa_backend_cuda.a
else
POA_BACKEND_ARCHIVES = src/backend/cpu/libpoa_backend_cpu.a
endif
