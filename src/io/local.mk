# io/: HDF5 helpers and training checkpoints (format: hdf5-schemas/checkpoint.md, distributed
# with the whole hdf5-schemas/ folder, like load_checkpoint_example.py).  Tests: tests/io/.
noinst_LIBRARIES += src/io/libpoa_io.a
src_io_libpoa_io_a_SOURCES = \
	src/io/h5util.c src/io/h5util.h \
	src/io/checkpoint.c src/io/checkpoint.h
POA_IO_A = src/io/libpoa_io.a
