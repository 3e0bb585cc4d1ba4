# tests/data/: tests of src/data and data-prep/ (included from src/data/local.mk).
if HAVE_CMOCKA
check_PROGRAMS += tests/data/test_data_schema
tests_data_test_data_schema_SOURCES = tests/data/test_data_schema.c tests/data/data_test_util.h
tests_data_test_data_schema_CFLAGS = $(TEST_CFLAGS)
tests_data_test_data_schema_LDADD = $(TEST_LDADD)
TESTS += tests/data/test_data_schema
endif

# Shell tests of poa-pack / poa-prep-fmnist: need PIL, h5py and torchvision ($POA_PYTHON_REF).
if HAVE_TORCH
TESTS += tests/data/test_data_pack.sh tests/data/test_data_badinput.sh
endif
EXTRA_DIST += tests/data/test_data_pack.sh tests/data/test_data_badinput.sh \
	tests/data/check_pack.py tests/data/make_bad_corpus.py tests/data/same_packed.py
