# tests/model/: the model description and the engine (cmocka), and PyTorch parity: the .sh runs
# tests/reference/model_ref.py, then test_model_parity on its output.
if HAVE_CMOCKA
check_PROGRAMS += tests/model/test_model_table
tests_model_test_model_table_SOURCES = tests/model/test_model_table.c
tests_model_test_model_table_CFLAGS = $(TEST_CFLAGS)
tests_model_test_model_table_LDADD = $(TEST_LDADD)
TESTS += tests/model/test_model_table

check_PROGRAMS += tests/model/test_model_engine
tests_model_test_model_engine_SOURCES = tests/model/test_model_engine.c
tests_model_test_model_engine_CFLAGS = $(TEST_CFLAGS)
tests_model_test_model_engine_LDADD = $(TEST_LDADD)
TESTS += tests/model/test_model_engine

check_PROGRAMS += tests/model/test_model_parity
tests_model_test_model_parity_SOURCES = tests/model/test_model_parity.c \
	tests/model/h5ref.c tests/model/h5ref.h
tests_model_test_model_parity_CFLAGS = $(TEST_CFLAGS)
tests_model_test_model_parity_LDADD = $(TEST_LDADD)
if HAVE_TORCH
TESTS += tests/model/test_model_parity.sh
endif
endif
dist_noinst_SCRIPTS += tests/model/test_model_parity.sh
EXTRA_DIST += tests/model/h5ref.h
