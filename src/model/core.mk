# model/ core (issue #3): the one model description, ViT backbone with elastic sub-networks,
# projection heads, extraction and the memory plan.  Tests of this code are declared here too.
MODEL_CORE_SOURCES = \
	src/model/model_config.c src/model/model_config.h \
	src/model/model.c src/model/model.h

EXTRA_DIST += src/model/README.md

if HAVE_CMOCKA
check_PROGRAMS += tests/model/test_model_table
tests_model_test_model_table_SOURCES = tests/model/test_model_table.c
tests_model_test_model_table_CFLAGS = $(TEST_CFLAGS)
tests_model_test_model_table_LDADD = $(TEST_LDADD)
TESTS += tests/model/test_model_table
endif
