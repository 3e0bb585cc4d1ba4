# tests/io/: checkpoints (cmocka), and a checkpoint written by ckpt_write_tiny read with
# /usr/bin/python3 h5py + torch into the official module tree (test_checkpoint_h5py.sh: names and
# shapes).
if HAVE_CMOCKA
check_PROGRAMS += tests/io/test_checkpoint
tests_io_test_checkpoint_SOURCES = tests/io/test_checkpoint.c
tests_io_test_checkpoint_CFLAGS = $(TEST_CFLAGS)
tests_io_test_checkpoint_LDADD = $(TEST_LDADD)
TESTS += tests/io/test_checkpoint
endif
check_PROGRAMS += tests/io/ckpt_write_tiny
tests_io_ckpt_write_tiny_SOURCES = tests/io/ckpt_write_tiny.c
tests_io_ckpt_write_tiny_LDADD = $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS)
EXTRA_DIST += tests/io/tiny_table.h tests/io/test_checkpoint_h5py.sh tests/io/check_checkpoint_h5py.py
if HAVE_TORCH
TESTS += tests/io/test_checkpoint_h5py.sh
endif
