# io/: HDF5 helpers (the atomic HDF5 writer over common/atomic_io.h), training checkpoints
# (format: hdf5-schemas/checkpoint.md, distributed with the whole hdf5-schemas/ folder, like load_checkpoint_example.py), the
# safetensors format and extracted-model files (hdf5-schemas/extracted-model.md).
# Tests: tests/io/, tests/modelio/.
noinst_LIBRARIES += src/io/libpoa_io.a
src_io_libpoa_io_a_SOURCES = \
	src/io/h5util.c src/io/h5util.h \
	src/io/checkpoint.c src/io/checkpoint.h \
	src/io/safetensors.c src/io/safetensors.h \
	src/io/extracted.c src/io/extracted.h
POA_IO_A = src/io/libpoa_io.a
