# tests/fault/: fault injection (README.md, "Reliability"): a full disk during a checkpoint,
# during packing and during poa-extract (the LD_PRELOAD library libpoa_enospc.so,
# enospc_shim.c; same_extracted.py compares extracted models), a rank killed in the middle of a
# step, a shard corrupted after packing, non-finite values in the weights and in the data, and
# stop signals at random times.  Every test runs poa-train / poa-pack on a few Fashion-MNIST
# images (tests/train/lib.sh) and skips without them.
# The shim is built without sanitizers (it is preloaded ahead of everything) and without
# AM_CFLAGS (no OpenMP): a plain shared object.
check_PROGRAMS += tests/fault/libpoa_enospc.so
tests_fault_libpoa_enospc_so_SOURCES = tests/fault/enospc_shim.c
tests_fault_libpoa_enospc_so_CFLAGS = -fPIC -O2 -Wall -Wextra
tests_fault_libpoa_enospc_so_LDFLAGS = -shared
tests_fault_libpoa_enospc_so_LDADD = -ldl
FAULT_TESTS = tests/fault/test_fault_enospc.sh tests/fault/test_fault_corrupt_shard.sh \
	tests/fault/test_fault_rank_kill.sh tests/fault/test_fault_nonfinite.sh \
	tests/fault/test_fault_signals.sh
TESTS += $(FAULT_TESTS)
EXTRA_DIST += $(FAULT_TESTS) tests/fault/same_extracted.py
