# tests/step/: tests of issue #4 (losses, sampler, schedules, optimizer, the POA step).
# The backend-op test test_train_ops is declared in src/backend/cpu/train.mk.
EXTRA_DIST += tests/step/step_test_util.h

if HAVE_CMOCKA
check_PROGRAMS += tests/step/test_schedule tests/step/test_optim
tests_step_test_schedule_SOURCES = tests/step/test_schedule.c
tests_step_test_schedule_CFLAGS = $(TEST_CFLAGS)
tests_step_test_schedule_LDADD = $(TEST_LDADD)
tests_step_test_optim_SOURCES = tests/step/test_optim.c
tests_step_test_optim_CFLAGS = $(TEST_CFLAGS)
tests_step_test_optim_LDADD = $(TEST_LDADD)
TESTS += tests/step/test_schedule tests/step/test_optim
endif
