# io/: HDF5 helpers and training checkpoints (format: hdf5-schemas/checkpoint.md, distributed
# with the whole hdf5-schemas/ folder, like load_checkpoint_example.py).
noinst_LIBRARIES += src/io/libpoa_io.a
src_io_libpoa_io_a_SOURCES = $(IO_SOURCES)
POA_IO_A = src/io/libpoa_io.a
IO_SOURCES = \
	src/io/h5util.c src/io/h5util.h \
	src/io/checkpoint.c src/io/checkpoint.h

# Tests of io/ (tests/io/).  test_checkpoint_h5py.sh: a checkpoint written by ckpt_write_tiny,
# read with /usr/bin/python3 h5py + torch into the official module tree (names and shapes).
if HAVE_CMOCKA
check_PROGRAMS += tests/io/test_checkpoint
noinst_HEADERS += tests/io/tiny_table.h
tests_io_test_checkpoint_SOURCES = tests/io/test_checkpoint.c
tests_io_test_checkpoint_CFLAGS = $(TEST_CFLAGS)
tests_io_test_checkpoint_LDADD = $(TEST_LDADD)
TESTS += tests/io/test_checkpoint
endif
check_PROGRAMS += tests/io/ckpt_write_tiny
tests_io_ckpt_write_tiny_SOURCES = tests/io/ckpt_write_tiny.c
tests_io_ckpt_write_tiny_LDADD = $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS)
EXTRA_DIST += tests/io/test_checkpoint_h5py.sh tests/io/check_checkpoint_h5py.py
if HAVE_TORCH
TESTS += tests/io/test_checkpoint_h5py.sh
endif
