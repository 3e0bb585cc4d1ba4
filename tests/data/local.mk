# tests/data/: tests of src/data and data-prep/.
if HAVE_CMOCKA
check_PROGRAMS += tests/data/test_data_schema
tests_data_test_data_schema_SOURCES = tests/data/test_data_schema.c tests/data/data_test_util.h
tests_data_test_data_schema_CFLAGS = $(TEST_CFLAGS)
tests_data_test_data_schema_LDADD = $(TEST_LDADD)
TESTS += tests/data/test_data_schema
check_PROGRAMS += tests/data/test_data_loader
tests_data_test_data_loader_SOURCES = tests/data/test_data_loader.c tests/data/data_test_util.h \
	tests/data/data_test_pack.c tests/data/data_test_pack.h
tests_data_test_data_loader_CFLAGS = $(TEST_CFLAGS)
tests_data_test_data_loader_LDADD = $(TEST_LDADD)
TESTS += tests/data/test_data_loader
check_PROGRAMS += tests/data/test_mpi_data_loader
tests_data_test_mpi_data_loader_SOURCES = tests/data/test_mpi_data_loader.c \
	tests/data/data_test_pack.c tests/data/data_test_pack.h
tests_data_test_mpi_data_loader_CFLAGS = $(TEST_CFLAGS)
tests_data_test_mpi_data_loader_LDADD = $(TEST_LDADD)
TESTS += tests/data/test_mpi_data_loader
endif

# Shell tests of poa-pack / poa-prep-fmnist: need PIL, h5py and torchvision ($POA_PYTHON_REF).
if HAVE_TORCH
TESTS += tests/data/test_data_pack.sh tests/data/test_data_badinput.sh
endif
EXTRA_DIST += tests/data/test_data_pack.sh tests/data/test_data_badinput.sh \
	tests/data/check_pack.py tests/data/make_bad_corpus.py tests/data/same_packed.py \
	tests/data/check_extra.py

# Augmentation against torchvision/PIL (tests/reference/augment_ref.py).
if HAVE_CMOCKA
if HAVE_TORCH
check_PROGRAMS += tests/data/test_data_augment
tests_data_test_data_augment_SOURCES = tests/data/test_data_augment.c tests/data/data_test_util.h
tests_data_test_data_augment_CFLAGS = $(TEST_CFLAGS)
tests_data_test_data_augment_LDADD = $(TEST_LDADD)
TESTS += tests/data/test_data_augment
endif
endif
