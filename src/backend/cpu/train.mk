# CPU loss/optimizer/reduction ops (issue #4).  Tests of these ops are declared here too.
CPU_TRAIN_SOURCES = src/backend/cpu/cpu_train.c src/backend/cpu/cpu_train_sk.c \
	src/backend/cpu/cpu_train_optim.c src/backend/cpu/cpu_train_impl.h

if HAVE_CMOCKA
check_PROGRAMS += tests/step/test_train_ops
tests_step_test_train_ops_SOURCES = tests/step/test_train_ops.c tests/step/step_test_util.h
tests_step_test_train_ops_CFLAGS = $(TEST_CFLAGS)
tests_step_test_train_ops_LDADD = $(TEST_LDADD)
TESTS += tests/step/test_train_ops
endif
