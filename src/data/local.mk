# data/: dataset shards (HDF5), JPEG decoding, multi-crop augmentation, iBOT masks, loader.
# See README.md, "Source layout", and hdf5-schemas/dataset.md for the file formats.
# Tests: tests/data/.
noinst_LIBRARIES += src/data/libpoa_data.a
src_data_libpoa_data_a_SOURCES = \
	src/data/data_util.c src/data/data_util.h \
	src/data/h5data.c src/data/h5data.h \
	src/data/schema.c src/data/schema.h \
	src/data/shard.c src/data/shard.h \
	src/data/metadata.c src/data/metadata.h \
	src/data/npy.c src/data/npy.h \
	src/data/scan.c src/data/scan.h \
	src/data/jpeg.c src/data/jpeg.h \
	src/data/image.c src/data/image.h \
	src/data/augment.c src/data/augment.h \
	src/data/mask.c src/data/mask.h \
	src/data/sampler.c src/data/sampler.h \
	src/data/dataset.c src/data/dataset.h \
	src/data/loader.c src/data/loader.h
# No FMA contraction: the augmentation reproduces torchvision's float32 arithmetic exactly.
# Vectorisation with the dynamic cost model (not only -O2's "very cheap" one) for the pixel loops;
# neither flag changes a result.
src_data_libpoa_data_a_CFLAGS = $(AM_CFLAGS) -ffp-contract=off $(POA_VECT_CFLAGS)
POA_DATA_A = src/data/libpoa_data.a
