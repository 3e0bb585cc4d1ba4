# model/ core (issue #3): the one model description, ViT backbone with elastic sub-networks,
# projection heads, extraction and the memory plan.  Tests of this code are declared here too.
MODEL_CORE_SOURCES = \
	src/model/model_config.c src/model/model_config.h \
	src/model/model.c src/model/model.h \
	src/model/layers.h \
	src/model/vit.c src/model/vit.h \
	src/model/head.c src/model/head.h \
	src/model/extract.c src/model/extract.h \
	src/model/memplan.c

EXTRA_DIST += src/model/README.md tests/model/h5ref.h

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

# PyTorch parity: the .sh runs tests/reference/model_ref.py, then the program on its output.
check_PROGRAMS += tests/model/test_model_parity
tests_model_test_model_parity_SOURCES = tests/model/test_model_parity.c \
	tests/model/h5ref.c tests/model/h5ref.h
tests_model_test_model_parity_CFLAGS = $(TEST_CFLAGS)
tests_model_test_model_parity_LDADD = $(TEST_LDADD)
dist_noinst_SCRIPTS += tests/model/test_model_parity.sh
if HAVE_TORCH
TESTS += tests/model/test_model_parity.sh
endif
endif
