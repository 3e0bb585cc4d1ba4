# tests/step/: losses, sampler, schedules, optimizer and the POA step, with PyTorch parity
# (tests/reference/loss_ref.py, step_ref.py) and the step under mpiexec -n 2.  The backends'
# training ops are tested by tests/ops/test_backend_ops (tests/ops/local.mk).
EXTRA_DIST += tests/step/step_test_util.h tests/step/step_test_batch.h tests/step/h5_test_read.h \
	tests/step/test_loss_parity.sh tests/step/test_step_parity.sh \
	tests/step/test_gpu_step_parity.sh

if HAVE_CMOCKA
STEP_TESTS = tests/step/test_schedule tests/step/test_subnet_sampler \
	tests/step/test_optim tests/step/test_mpi_sinkhorn tests/step/test_step_guard \
	tests/step/test_step_memory tests/step/test_step_profile \
	tests/step/test_mpi_step_groups tests/step/test_mpi_step_overlap
check_PROGRAMS += $(STEP_TESTS)
TESTS += $(STEP_TESTS)
tests_step_test_schedule_SOURCES = tests/step/test_schedule.c
tests_step_test_schedule_CFLAGS = $(TEST_CFLAGS)
tests_step_test_schedule_LDADD = $(TEST_LDADD)
tests_step_test_subnet_sampler_SOURCES = tests/step/test_subnet_sampler.c
tests_step_test_subnet_sampler_CFLAGS = $(TEST_CFLAGS)
tests_step_test_subnet_sampler_LDADD = $(TEST_LDADD)
tests_step_test_optim_SOURCES = tests/step/test_optim.c
tests_step_test_optim_CFLAGS = $(TEST_CFLAGS)
tests_step_test_optim_LDADD = $(TEST_LDADD)
tests_step_test_mpi_sinkhorn_SOURCES = tests/step/test_mpi_sinkhorn.c
tests_step_test_mpi_sinkhorn_CFLAGS = $(TEST_CFLAGS)
tests_step_test_mpi_sinkhorn_LDADD = $(TEST_LDADD)
tests_step_test_step_guard_SOURCES = tests/step/test_step_guard.c
tests_step_test_step_guard_CFLAGS = $(TEST_CFLAGS)
tests_step_test_step_guard_LDADD = $(TEST_LDADD)
tests_step_test_step_memory_SOURCES = tests/step/test_step_memory.c
tests_step_test_step_memory_CFLAGS = $(TEST_CFLAGS)
tests_step_test_step_memory_LDADD = $(TEST_LDADD)
tests_step_test_step_profile_SOURCES = tests/step/test_step_profile.c
tests_step_test_step_profile_CFLAGS = $(TEST_CFLAGS)
tests_step_test_step_profile_LDADD = $(TEST_LDADD)
tests_step_test_mpi_step_groups_SOURCES = tests/step/test_mpi_step_groups.c
tests_step_test_mpi_step_groups_CFLAGS = $(TEST_CFLAGS)
tests_step_test_mpi_step_groups_LDADD = $(TEST_LDADD)
tests_step_test_mpi_step_overlap_SOURCES = tests/step/test_mpi_step_overlap.c
tests_step_test_mpi_step_overlap_CFLAGS = $(TEST_CFLAGS)
tests_step_test_mpi_step_overlap_LDADD = $(TEST_LDADD)

# PyTorch parity: each .sh runs its tests/reference/*_ref.py, then the program on its output
# (test_gpu_step_parity.sh: step_parity on the CUDA backend; skipped without a GPU).
if HAVE_TORCH
check_PROGRAMS += tests/step/loss_parity tests/step/step_parity
tests_step_loss_parity_SOURCES = tests/step/loss_parity.c tests/step/h5_test_read.h \
	tests/step/parity_backend.h
tests_step_loss_parity_CFLAGS = $(TEST_CFLAGS)
tests_step_loss_parity_LDADD = $(TEST_LDADD)
tests_step_step_parity_SOURCES = tests/step/step_parity.c tests/step/h5_test_read.h \
	tests/step/parity_backend.h
tests_step_step_parity_CFLAGS = $(TEST_CFLAGS)
tests_step_step_parity_LDADD = $(TEST_LDADD)
TESTS += tests/step/test_loss_parity.sh tests/step/test_step_parity.sh \
	tests/step/test_gpu_step_parity.sh
endif
endif
