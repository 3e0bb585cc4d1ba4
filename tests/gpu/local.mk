# tests/gpu/: the CUDA backend on a device; exits 77 (skipped) without one.
if HAVE_CMOCKA
if HAVE_CUDA
check_PROGRAMS += tests/gpu/test_gpu_smoke
tests_gpu_test_gpu_smoke_SOURCES = tests/gpu/test_gpu_smoke.c
tests_gpu_test_gpu_smoke_CFLAGS = $(TEST_CFLAGS)
tests_gpu_test_gpu_smoke_LDADD = $(TEST_LDADD)
TESTS += tests/gpu/test_gpu_smoke
endif
endif
EXTRA_DIST += tests/gpu/test_gpu_smoke.c
